//! The agent's bearer token for the hub: obtained with the OAuth2 client-credentials grant from
//! an issuer found by OIDC discovery (`openidconnect`), or read from a file; cached, and renewed
//! at about 80 % of its lifetime, or at once when the hub refuses it.

use crate::metrics::Metrics;
use base64::Engine;
use openidconnect::core::{CoreClient, CoreErrorResponseType, CoreProviderMetadata};
use openidconnect::{
    ClientId, ClientSecret, HttpClientError, IssuerUrl, OAuth2TokenResponse, RequestTokenError,
    StandardErrorResponse,
};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The share of a token's lifetime after which it is renewed.
const RENEW_AT: f64 = 0.8;

/// The lifetime assumed for a token that states none.
const UNKNOWN_LIFETIME: Duration = Duration::from_secs(300);

/// How long one discovery or token request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

type HttpError = HttpClientError<openidconnect::reqwest::Error>;

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The issuer URL is malformed.
    #[error("FERRY_AGENT_ISSUER_URL is not a URL")]
    IssuerUrl(#[source] openidconnect::url::ParseError),
    /// The HTTP client could not be built.
    #[error("building the HTTP client for the issuer")]
    Client(#[source] openidconnect::reqwest::Error),
    /// OIDC discovery failed.
    #[error("OIDC discovery at the issuer failed")]
    Discovery(#[source] openidconnect::DiscoveryError<HttpError>),
    /// The issuer's metadata names no token endpoint.
    #[error("the issuer's discovery document names no token endpoint")]
    NoTokenEndpoint(#[source] openidconnect::ConfigurationError),
    /// The token endpoint refused or failed the grant.
    #[error("the client-credentials grant failed")]
    Grant(#[source] RequestTokenError<HttpError, StandardErrorResponse<CoreErrorResponseType>>),
    /// The token or client secret file could not be read.
    #[error("reading {path}")]
    File {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The token file is empty.
    #[error("the token file {0} is empty")]
    EmptyFile(String),
    /// A request to the issuer took too long.
    #[error("the issuer did not answer within {0:?}")]
    Timeout(Duration),
}

/// Where tokens come from.
#[derive(Clone)]
pub enum TokenSource {
    /// The client-credentials grant at an issuer found by discovery.
    ClientCredentials {
        /// The issuer URL.
        issuer: String,
        /// The client id.
        client_id: String,
        /// The client secret, given directly or as a file re-read on each grant.
        secret: Secret,
        /// The audience to ask for.
        audience: String,
    },
    /// A file holding the token, re-read on each renewal.
    File {
        /// The file.
        path: PathBuf,
        /// The longest time between two reads.
        refresh: Duration,
    },
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::ClientCredentials {
                issuer, client_id, ..
            } => f
                .debug_struct("ClientCredentials")
                .field("issuer", issuer)
                .field("client_id", client_id)
                .finish_non_exhaustive(),
            TokenSource::File { path, .. } => f
                .debug_struct("File")
                .field("path", path)
                .finish_non_exhaustive(),
        }
    }
}

/// A client secret.
#[derive(Clone)]
pub enum Secret {
    /// Given directly.
    Value(String),
    /// In a file (a mounted Secret may be rotated, so it is read on each grant).
    File(PathBuf),
}

/// A token and when to renew it.
#[derive(Clone)]
struct Cached {
    token: String,
    renew_at: Instant,
}

/// Hands out the current token, renewing it when due. Cheap to share behind an `Arc`.
pub struct TokenProvider {
    source: TokenSource,
    http: openidconnect::reqwest::Client,
    metrics: Metrics,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    /// The issuer's metadata, kept between grants; dropped after a failure so the next grant
    /// discovers again (the issuer may have moved its endpoints).
    metadata: Option<CoreProviderMetadata>,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl TokenProvider {
    /// A provider for `source`.
    pub fn new(source: TokenSource, metrics: Metrics) -> Result<TokenProvider, TokenError> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            // An OAuth2 client must not follow redirects (SSRF).
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(TokenError::Client)?;
        Ok(TokenProvider {
            source,
            http,
            metrics,
            state: Mutex::new(State::default()),
        })
    }

    /// The current token, renewed first when due.
    pub async fn token(&self) -> Result<String, TokenError> {
        let mut state = self.state.lock().await;
        if let Some(cached) = &state.cached
            && Instant::now() < cached.renew_at
        {
            return Ok(cached.token.clone());
        }
        self.renew_locked(&mut state).await
    }

    /// Forgets the current token (the hub refused it), so the next [`TokenProvider::token`]
    /// gets a fresh one.
    pub async fn invalidate(&self) {
        self.state.lock().await.cached = None;
    }

    /// When the current token is due for renewal; `None` when there is none.
    pub async fn renew_at(&self) -> Option<Instant> {
        self.state.lock().await.cached.as_ref().map(|c| c.renew_at)
    }

    async fn renew_locked(&self, state: &mut State) -> Result<String, TokenError> {
        let fetched = match &self.source {
            TokenSource::File { path, refresh } => read_token_file(path, *refresh).await,
            TokenSource::ClientCredentials {
                issuer,
                client_id,
                secret,
                audience,
            } => {
                let grant = self.grant(state, issuer, client_id, secret, audience);
                match tokio::time::timeout(REQUEST_TIMEOUT * 2, grant).await {
                    Ok(result) => result,
                    Err(_) => Err(TokenError::Timeout(REQUEST_TIMEOUT * 2)),
                }
            }
        };
        match fetched {
            Ok(cached) => {
                self.metrics.token_renewals.with_label_values(&["ok"]).inc();
                let token = cached.token.clone();
                state.cached = Some(cached);
                Ok(token)
            }
            Err(e) => {
                self.metrics
                    .token_renewals
                    .with_label_values(&["failed"])
                    .inc();
                state.metadata = None;
                Err(e)
            }
        }
    }

    async fn grant(
        &self,
        state: &mut State,
        issuer: &str,
        client_id: &str,
        secret: &Secret,
        audience: &str,
    ) -> Result<Cached, TokenError> {
        let metadata = match &state.metadata {
            Some(metadata) => metadata.clone(),
            None => {
                let url = IssuerUrl::new(issuer.to_string()).map_err(TokenError::IssuerUrl)?;
                let metadata = CoreProviderMetadata::discover_async(url, &self.http)
                    .await
                    .map_err(TokenError::Discovery)?;
                state.metadata = Some(metadata.clone());
                metadata
            }
        };
        let secret = match secret {
            Secret::Value(value) => value.clone(),
            Secret::File(path) => read_trimmed(path).await?,
        };
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(client_id.to_string()),
            Some(ClientSecret::new(secret)),
        );
        let started = Instant::now();
        let response = client
            .exchange_client_credentials()
            .map_err(TokenError::NoTokenEndpoint)?
            .add_extra_param("audience", audience.to_string())
            .request_async(&self.http)
            .await
            .map_err(TokenError::Grant)?;
        let token = response.access_token().secret().clone();
        let lifetime = response
            .expires_in()
            .or_else(|| jwt_lifetime(&token))
            .unwrap_or(UNKNOWN_LIFETIME);
        tracing::info!(lifetime_secs = lifetime.as_secs(), "obtained a hub token");
        Ok(Cached {
            token,
            renew_at: started + lifetime.mul_f64(RENEW_AT),
        })
    }
}

async fn read_trimmed(path: &PathBuf) -> Result<String, TokenError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| TokenError::File {
            path: path.display().to_string(),
            source,
        })?;
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(TokenError::EmptyFile(path.display().to_string()));
    }
    Ok(text)
}

async fn read_token_file(path: &PathBuf, refresh: Duration) -> Result<Cached, TokenError> {
    let token = read_trimmed(path).await?;
    // A JWT's own expiry calls for an earlier read when the file is rotated on that schedule.
    let due =
        jwt_lifetime(&token).map_or(refresh, |lifetime| lifetime.mul_f64(RENEW_AT).min(refresh));
    Ok(Cached {
        token,
        renew_at: Instant::now() + due,
    })
}

/// The time left until a JWT's `exp`, read without verifying it (the hub verifies); `None`
/// for a token that is not a JWT or has no expiry.
pub fn jwt_lifetime(token: &str) -> Option<Duration> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(exp.saturating_sub(now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            b64.encode(br#"{"alg":"ES256"}"#),
            b64.encode(claims.to_string())
        )
    }

    #[test]
    fn jwt_lifetimes_are_read_without_verification() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let left = jwt_lifetime(&jwt(serde_json::json!({"exp": now + 100}))).unwrap();
        assert!((99..=100).contains(&left.as_secs()), "{left:?}");
        let expired = jwt_lifetime(&jwt(serde_json::json!({"exp": now - 5}))).unwrap();
        assert_eq!(expired, Duration::ZERO);
        assert_eq!(jwt_lifetime(&jwt(serde_json::json!({"sub": "x"}))), None);
        assert_eq!(jwt_lifetime("opaque-token"), None);
    }

    #[tokio::test]
    async fn a_token_file_is_reread_when_due_or_invalidated() {
        let dir = std::env::temp_dir().join(format!("ferry-agent-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token-unit");
        std::fs::write(&path, "first\n").unwrap();
        let registry = prometheus::Registry::new();
        let metrics = Metrics::register(&registry).unwrap();
        let provider = TokenProvider::new(
            TokenSource::File {
                path: path.clone(),
                refresh: Duration::from_secs(3600),
            },
            metrics.clone(),
        )
        .unwrap();
        assert_eq!(provider.token().await.unwrap(), "first");
        std::fs::write(&path, "second").unwrap();
        // Not due yet: the cached token stays.
        assert_eq!(provider.token().await.unwrap(), "first");
        provider.invalidate().await;
        assert_eq!(provider.token().await.unwrap(), "second");
        std::fs::write(&path, "  \n").unwrap();
        provider.invalidate().await;
        assert!(matches!(
            provider.token().await,
            Err(TokenError::EmptyFile(_))
        ));
        let renewals = |outcome: &str| metrics.token_renewals.with_label_values(&[outcome]).get();
        assert_eq!((renewals("ok"), renewals("failed")), (2, 1));
        std::fs::remove_file(&path).unwrap();
    }
}
