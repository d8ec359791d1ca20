//! The guarded HTTP client: reqwest with a resolver that checks every answer against a
//! [`Policy`], no proxy, and redirects followed here so each hop is checked again. IP literals,
//! which reqwest connects to without resolving, are checked before each hop.

use crate::{GuardError, Policy};
use bytes::Bytes;
use ferry_runtime::error_chain;
use http::{HeaderMap, Method, StatusCode, header};
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Clients kept, one per distinct policy; past this many the cache starts over.
const MAX_CACHED_POLICIES: usize = 256;

/// A reqwest DNS resolver that answers only with addresses `policy` allows, and fails the
/// connection (with the [`GuardError`] in its source chain) when any answer is refused.
#[derive(Clone, Debug)]
pub struct Resolver {
    policy: Policy,
}

impl Resolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: Policy) -> Resolver {
        Resolver { policy }
    }
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port on the addresses it gets.
            let addrs = policy.resolve(name.as_str(), 0).await?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Limits of one request, redirects included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Everything: resolving, connecting, every hop, reading the body.
    pub timeout: Duration,
    /// Largest body read, in bytes.
    pub max_body: usize,
    /// Redirects followed.
    pub max_redirects: usize,
}

/// An answer, after redirects.
#[derive(Clone, Debug)]
pub struct GuardedResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, at most the limit.
    pub body: Bytes,
    /// The URL that answered (the last hop).
    pub url: Url,
}

/// Why a request got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// Not an absolute URL with a host.
    #[error("not a valid URL: {0}")]
    Invalid(String),
    /// A scheme other than http or https (a redirect may name one).
    #[error("only http and https URLs are reached, not {0}:")]
    Scheme(String),
    /// The guard refused an address (or the host did not resolve).
    #[error("{0}")]
    Guard(#[from] GuardError),
    /// A redirect without a usable `Location`.
    #[error("the server answered {0} without a valid Location header")]
    BadRedirect(StatusCode),
    /// More redirects than allowed.
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    /// The time limit passed.
    #[error("no complete answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The body is larger than the limit.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// Connecting, sending or reading failed.
    #[error("request to {host} failed: {reason}")]
    Connect {
        /// The host.
        host: String,
        /// The cause, one line.
        reason: String,
    },
}

impl HttpError {
    /// Whether the request never got an answer for a reason another attempt may not have
    /// (a connection failure or a timeout), as opposed to a refusal that will repeat.
    pub fn is_transient(&self) -> bool {
        matches!(self, HttpError::Connect { .. } | HttpError::Timeout(_))
    }
}

/// An HTTP client that reaches only what a [`Policy`] allows. Cheap to clone; share one.
#[derive(Clone)]
pub struct GuardedClient {
    clients: Arc<Mutex<HashMap<Policy, reqwest::Client>>>,
    connect_timeout: Duration,
}

impl std::fmt::Debug for GuardedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedClient")
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for GuardedClient {
    fn default() -> GuardedClient {
        GuardedClient::new(Duration::from_secs(10))
    }
}

/// The guard's refusal inside a reqwest error, if that is why it failed.
fn guard_error(error: &reqwest::Error) -> Option<GuardError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(g) = e.downcast_ref::<GuardError>() {
            return Some(g.clone());
        }
        source = e.source();
    }
    None
}

impl GuardedClient {
    /// A client whose connections must open within `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> GuardedClient {
        GuardedClient {
            clients: Arc::new(Mutex::new(HashMap::new())),
            connect_timeout,
        }
    }

    fn client(&self, policy: &Policy) -> Result<reqwest::Client, HttpError> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = clients.get(policy) {
            return Ok(c.clone());
        }
        // reqwest is built without a default TLS provider: name ring, as the rest of Ferry does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(Resolver::new(policy.clone())))
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| HttpError::Connect {
                host: "-".into(),
                reason: error_chain(&e),
            })?;
        if clients.len() >= MAX_CACHED_POLICIES {
            clients.clear();
        }
        clients.insert(policy.clone(), client.clone());
        Ok(client)
    }

    /// Sends `method url` with `headers` and `body` within `limits`, reaching only addresses
    /// `policy` allows; redirects are followed (each hop checked) up to the limit: 301, 302 and
    /// 303 turn into a GET without body (but for GET and HEAD), 307 and 308 repeat the request.
    /// Leaving the origin drops `Authorization`, `Cookie` and `Proxy-Authorization`.
    pub async fn send(
        &self,
        policy: &Policy,
        method: Method,
        url: &str,
        headers: &[(String, String)],
        body: Option<Bytes>,
        limits: Limits,
    ) -> Result<GuardedResponse, HttpError> {
        let work = self.follow(policy, method, url, headers, body, limits);
        match tokio::time::timeout(limits.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout(limits.timeout)),
        }
    }

    async fn follow(
        &self,
        policy: &Policy,
        mut method: Method,
        url: &str,
        headers: &[(String, String)],
        mut body: Option<Bytes>,
        limits: Limits,
    ) -> Result<GuardedResponse, HttpError> {
        let client = self.client(policy)?;
        // The URL may carry a credential (a token in its query): errors never repeat it.
        let mut url = Url::parse(url).map_err(|e| HttpError::Invalid(e.to_string()))?;
        let origin = url.origin();
        for _ in 0..=limits.max_redirects {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(HttpError::Scheme(url.scheme().to_string()));
            }
            let host = url
                .host_str()
                .ok_or_else(|| HttpError::Invalid("no host".into()))?
                .to_string();
            // reqwest connects to an IP literal without asking the resolver: check it here.
            let literal = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = literal.parse::<IpAddr>() {
                policy.check(ip).map_err(|class| GuardError::Refused {
                    host: host.clone(),
                    addr: ip,
                    class,
                })?;
            }
            let mut request = client.request(method.clone(), url.clone());
            let same_origin = url.origin() == origin;
            for (name, value) in headers {
                let sensitive = ["authorization", "cookie", "proxy-authorization"]
                    .iter()
                    .any(|s| name.eq_ignore_ascii_case(s));
                if same_origin || !sensitive {
                    request = request.header(name.as_str(), value.as_str());
                }
            }
            if let Some(b) = &body {
                request = request.body(b.clone());
            }
            let failed = |e: reqwest::Error| match guard_error(&e) {
                Some(g) => HttpError::Guard(g),
                None => HttpError::Connect {
                    host: host.clone(),
                    reason: error_chain(&e.without_url()),
                },
            };
            let mut response = request.send().await.map_err(failed)?;
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let next = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .ok_or(HttpError::BadRedirect(status))?;
                if matches!(
                    status,
                    StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::SEE_OTHER
                ) && !matches!(method, Method::GET | Method::HEAD)
                {
                    method = Method::GET;
                    body = None;
                }
                url = next;
                continue;
            }
            if response
                .content_length()
                .is_some_and(|n| n > limits.max_body as u64)
            {
                return Err(HttpError::TooLarge(limits.max_body));
            }
            let mut read = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(failed)? {
                if read.len() + chunk.len() > limits.max_body {
                    return Err(HttpError::TooLarge(limits.max_body));
                }
                read.extend_from_slice(&chunk);
            }
            return Ok(GuardedResponse {
                status,
                headers: response.headers().clone(),
                body: Bytes::from(read),
                url,
            });
        }
        Err(HttpError::TooManyRedirects(limits.max_redirects))
    }
}
