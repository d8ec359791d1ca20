//! How a request on a tenant's behalf travels: directly from the control plane through the
//! network guard (`ferry-netguard`: only the addresses a [`Policy`] allows, checked on the
//! resolved address of every hop, no proxy, redirects re-checked), or through the named agent's
//! HTTP relay into its private network (the hub tunnel). Either way the answer's body is read
//! with a size cap, so a receiver (or anything posing as one) cannot make a service hold an
//! unbounded answer.

use async_trait::async_trait;
use bytes::Bytes;
use ferry_netguard::{GuardedClient, HttpError, Limits, Policy};
use ferry_store::TenantId;
use ferry_tunnel::AgentTunnel;
use http::HeaderMap;
use std::time::Duration;

/// A request.
#[derive(Clone)]
pub struct HttpRequest {
    /// The method.
    pub method: http::Method,
    /// The absolute URL.
    pub url: String,
    /// Headers; values may hold credentials, so this type is never logged whole.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Bytes>,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values and the URL's query may carry credentials: only the host and the
        // header names are shown.
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("host", &host_of(&self.url))
            .field("headers", &names)
            .finish_non_exhaustive()
    }
}

/// An answer.
#[derive(Clone, Debug, Default)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, at most the cap.
    pub body: Bytes,
}

/// Why a request got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// No connection, a reset, a TLS failure.
    #[error("cannot reach {host}: {reason}")]
    Connect {
        /// The host asked.
        host: String,
        /// What failed.
        reason: String,
    },
    /// No answer within the timeout.
    #[error("no answer from {host} within {secs} s")]
    Timeout {
        /// The host asked.
        host: String,
        /// The timeout.
        secs: u64,
    },
    /// The answer is larger than the cap.
    #[error("the answer exceeds {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: usize,
    },
    /// The agent relay failed.
    #[error("through agent {agent:?}: {reason}")]
    Agent {
        /// The agent.
        agent: String,
        /// What failed.
        reason: String,
        /// Whether trying again may help.
        transient: bool,
    },
    /// The URL is not one this service will call.
    #[error("bad URL (host {}): {reason}", host_of(url))]
    BadUrl {
        /// The URL (never shown: it may carry a credential).
        url: String,
        /// Why.
        reason: String,
    },
    /// The network guard refused the address, or a redirect went wrong.
    #[error("{0}")]
    Refused(String),
}

impl TransportError {
    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            TransportError::Connect { .. } | TransportError::Timeout { .. } => true,
            TransportError::Agent { transient, .. } => *transient,
            TransportError::TooLarge { .. }
            | TransportError::BadUrl { .. }
            | TransportError::Refused(_) => false,
        }
    }
}

/// Sends requests; a seam tests replace.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends `request`, directly or through `agent` of `tenant`.
    async fn send(
        &self,
        tenant: TenantId,
        agent: Option<&str>,
        request: HttpRequest,
    ) -> Result<HttpAnswer, TransportError>;
}

/// The real transport.
#[derive(Clone)]
pub struct HttpTransport {
    client: GuardedClient,
    tunnel: Option<AgentTunnel>,
    /// The policy of [`Transport::send`] (callers with per-tenant policies use
    /// [`HttpTransport::send_with`]).
    policy: Policy,
    timeout: Duration,
    max_body: usize,
    max_redirects: usize,
    service: &'static str,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("timeout", &self.timeout)
            .field("max_body", &self.max_body)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The host of `url`, for messages (never the path or query, which may hold credentials).
pub fn host_of(url: &str) -> String {
    http::Uri::try_from(url)
        .ok()
        .and_then(|u| u.host().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// What one send may use, besides the transport's own defaults.
#[derive(Clone, Debug)]
pub struct SendOptions<'a> {
    /// Which addresses a direct send may reach.
    pub policy: &'a Policy,
    /// The whole request's time limit.
    pub timeout: Duration,
    /// Redirects a direct send follows.
    pub max_redirects: usize,
}

impl HttpTransport {
    /// A transport with a per-request `timeout` and a body cap of `max_body` bytes, following
    /// no redirects, reaching directly the public addresses and those of self-hosted services
    /// ([`Policy::self_hosted`]); without a tunnel, requests that name an agent fail with a
    /// clear reason.
    pub fn new(
        tunnel: Option<AgentTunnel>,
        timeout: Duration,
        max_body: usize,
    ) -> Result<HttpTransport, TransportError> {
        Ok(HttpTransport {
            client: GuardedClient::new(timeout.min(Duration::from_secs(10))),
            tunnel,
            policy: Policy::self_hosted(),
            timeout,
            max_body,
            max_redirects: 0,
            service: "this service",
        })
    }

    /// The same transport with another default policy for [`Transport::send`].
    pub fn with_policy(mut self, policy: Policy) -> HttpTransport {
        self.policy = policy;
        self
    }

    /// The same transport naming `service` when it has no tunnel.
    pub fn named(mut self, service: &'static str) -> HttpTransport {
        self.service = service;
        self
    }

    /// The request time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `request` directly (within `options`) or through `agent` of `tenant`.
    pub async fn send_with(
        &self,
        tenant: TenantId,
        agent: Option<&str>,
        request: HttpRequest,
        options: &SendOptions<'_>,
    ) -> Result<HttpAnswer, TransportError> {
        match agent {
            Some(agent) => self.relayed(tenant, agent, request, options.timeout).await,
            None => self.direct(request, options).await,
        }
    }

    async fn direct(
        &self,
        request: HttpRequest,
        options: &SendOptions<'_>,
    ) -> Result<HttpAnswer, TransportError> {
        let host = host_of(&request.url);
        let limits = Limits {
            timeout: options.timeout,
            max_body: self.max_body,
            max_redirects: options.max_redirects,
        };
        let answer = self
            .client
            .send(
                options.policy,
                request.method,
                &request.url,
                &request.headers,
                request.body,
                limits,
            )
            .await
            .map_err(|e| match e {
                HttpError::Connect { reason, .. } => TransportError::Connect { host, reason },
                HttpError::Timeout(d) => TransportError::Timeout {
                    host,
                    secs: d.as_secs(),
                },
                HttpError::TooLarge(limit) => TransportError::TooLarge { limit },
                HttpError::Invalid(reason) | HttpError::Scheme(reason) => TransportError::BadUrl {
                    url: request.url.clone(),
                    reason,
                },
                other => TransportError::Refused(other.to_string()),
            })?;
        Ok(HttpAnswer {
            status: answer.status.as_u16(),
            headers: answer.headers,
            body: answer.body,
        })
    }

    async fn relayed(
        &self,
        tenant: TenantId,
        agent: &str,
        request: HttpRequest,
        timeout: Duration,
    ) -> Result<HttpAnswer, TransportError> {
        let Some(tunnel) = &self.tunnel else {
            return Err(TransportError::Agent {
                agent: agent.to_string(),
                reason: format!("{} has no agent tunnel (FERRY_REDIS_URL)", self.service),
                transient: false,
            });
        };
        let mut builder = http::Request::builder()
            .method(request.method)
            .uri(&request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let mut req = builder
            .body(request.body.unwrap_or_default())
            .map_err(|e| TransportError::BadUrl {
                url: request.url.clone(),
                reason: e.to_string(),
            })?;
        req.extensions_mut().insert(ferry_tunnel::Deadline(timeout));
        let agent_error = |e: ferry_tunnel::TunnelError| TransportError::Agent {
            agent: agent.to_string(),
            // The receiver being down behind the agent is as transient as being down directly.
            transient: e.is_transient() || e.target_unreachable(),
            reason: e.to_string(),
        };
        let work = async {
            let response = tunnel
                .http(&tenant.to_string(), agent, req)
                .await
                .map_err(agent_error)?;
            let status = response.head.status.as_u16();
            let headers = response.head.headers.clone();
            let mut stream = response.body;
            let mut body = Vec::new();
            while let Some(chunk) = stream.next_chunk().await.map_err(agent_error)? {
                if body.len() + chunk.len() > self.max_body {
                    return Err(TransportError::TooLarge {
                        limit: self.max_body,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(HttpAnswer {
                status,
                headers,
                body: Bytes::from(body),
            })
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(answer) => answer,
            Err(_) => Err(TransportError::Timeout {
                host: host_of(&request.url),
                secs: timeout.as_secs(),
            }),
        }
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn send(
        &self,
        tenant: TenantId,
        agent: Option<&str>,
        request: HttpRequest,
    ) -> Result<HttpAnswer, TransportError> {
        let options = SendOptions {
            policy: &self.policy,
            timeout: self.timeout,
            max_redirects: self.max_redirects,
        };
        self.send_with(tenant, agent, request, &options).await
    }
}

/// An error and its sources on one line (re-exported for the workers that use this crate).
pub use ferry_runtime::error_chain;
