//! The agent's side of one hub stream: dial (TLS or plaintext), authenticate with a bearer
//! token, say hello, wait for the welcome; then a sender for agent messages and the stream of hub
//! messages. The agent simulator (tests/agent-sim) dials with this too.

use ferry_proto::agent::agent_hub_client::AgentHubClient;
use ferry_proto::agent::{AgentMessage, Hello, HubMessage, Welcome, agent_message, hub_message};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Status, Streaming};

/// Agent messages queued before the sender waits.
const OUTBOUND_CAPACITY: usize = 16;

/// How to reach the hub and who the agent is.
#[derive(Debug, Clone)]
pub struct Dial {
    /// `http://host:port` (plaintext) or `https://host:port`.
    pub url: String,
    /// PEM CA certificate to trust for `https` (the system roots are not used by the sim).
    pub ca_pem: Option<Vec<u8>>,
    /// The TLS server name to expect, when it differs from the URL's host.
    pub tls_domain: Option<String>,
    /// The bearer token.
    pub token: String,
    /// The hello to send.
    pub hello: Hello,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

/// Why a stream could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The URL or TLS settings are unusable, or the TCP/TLS connection failed.
    #[error("connecting to the hub")]
    Transport(#[from] tonic::transport::Error),
    /// The hub refused the stream (bad token, bad hello) or it failed.
    #[error("the hub refused the stream: {0}")]
    Refused(#[from] Status),
    /// The token cannot be sent as metadata.
    #[error("the token is not valid metadata")]
    BadToken,
    /// No hub address was given.
    #[error("no hub address given")]
    NoEndpoint,
    /// The hub ended the stream before welcoming the agent.
    #[error("the hub closed the stream before its welcome")]
    NoWelcome,
}

/// An open, welcomed stream.
pub struct AgentStream {
    /// What the hub said on accepting the agent.
    pub welcome: Welcome,
    /// Messages to the hub.
    pub outbound: mpsc::Sender<AgentMessage>,
    /// Messages from the hub.
    pub inbound: Streaming<HubMessage>,
}

impl std::fmt::Debug for AgentStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentStream")
            .field("welcome", &self.welcome)
            .finish_non_exhaustive()
    }
}

/// Builds a channel to the hub (one HTTP/2 connection).
pub async fn channel(dial: &Dial) -> Result<Channel, DialError> {
    let mut endpoint = Endpoint::from_shared(dial.url.clone())?
        .connect_timeout(dial.connect_timeout)
        .tcp_nodelay(true);
    if dial.url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &dial.ca_pem {
            tls = tls.ca_certificate(Certificate::from_pem(ca));
        }
        if let Some(domain) = &dial.tls_domain {
            tls = tls.domain_name(domain.clone());
        }
        endpoint = endpoint.tls_config(tls)?;
    }
    Ok(endpoint.connect().await?)
}

/// Opens a stream on `channel`, says hello and waits for the welcome.
pub async fn open(channel: Channel, dial: &Dial) -> Result<AgentStream, DialError> {
    let (outbound, rx) = mpsc::channel(OUTBOUND_CAPACITY);
    let hello = AgentMessage {
        kind: Some(agent_message::Kind::Hello(dial.hello.clone())),
    };
    // The channel is new and empty, so this cannot wait.
    let _ = outbound.try_send(hello);
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    let bearer: MetadataValue<_> = format!("Bearer {}", dial.token)
        .parse()
        .map_err(|_| DialError::BadToken)?;
    request
        .metadata_mut()
        .insert(ferry_proto::AUTHORIZATION, bearer);
    let mut inbound = AgentHubClient::new(channel)
        .tunnel(request)
        .await?
        .into_inner();
    match inbound.message().await? {
        Some(HubMessage {
            kind: Some(hub_message::Kind::Welcome(welcome)),
        }) => Ok(AgentStream {
            welcome,
            outbound,
            inbound,
        }),
        _ => Err(DialError::NoWelcome),
    }
}
