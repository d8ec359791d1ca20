//! Where the hub gets the issuer's public keys: a JWK set file, or OIDC discovery
//! (`{issuer}/.well-known/openid-configuration` → `jwks_uri` → the JWK set); and
//! [`IssuerKeys`], which reloads them when a token names a key the hub has not seen yet, so a key
//! rotation at the issuer needs no hub restart.

use ferry_auth::{AuthError, Claims, Verifier};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::path::Path;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use std::time::Instant;

/// How long one discovery request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Least time between two reloads, so tokens naming made-up key ids cannot make the hub hammer
/// the issuer.
const MIN_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// Why the keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The JWK set file could not be read.
    #[error("reading the JWK set file {path}")]
    File {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The keys are unusable.
    #[error("loading the issuer's keys")]
    Auth(#[from] ferry_auth::AuthError),
    /// A discovery URL is malformed.
    #[error("invalid URL {0:?}")]
    Url(String),
    /// A discovery request failed.
    #[error("fetching {url}")]
    Fetch {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A discovery request answered with an error status.
    #[error("{url} answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: http::StatusCode,
    },
    /// The discovery document is malformed or has no `jwks_uri`.
    #[error("the discovery document of {0} has no jwks_uri")]
    NoJwksUri(String),
    /// The discovery document is not JSON.
    #[error("parsing the discovery document")]
    Json(#[from] serde_json::Error),
    /// The system's root certificates could not be loaded.
    #[error("loading root certificates")]
    Roots(#[source] std::io::Error),
}

/// A verifier for `issuer`/`audience` whose keys come from `jwks_file` when given, else from
/// the issuer's discovery document.
pub async fn load_verifier(
    issuer: &str,
    audience: &str,
    jwks_file: Option<&Path>,
) -> Result<Verifier, KeysError> {
    let jwks = match jwks_file {
        Some(path) => tokio::fs::read(path)
            .await
            .map_err(|source| KeysError::File {
                path: path.display().to_string(),
                source,
            })?,
        None => discover_jwks(issuer).await?,
    };
    Ok(Verifier::from_jwks_json(&jwks, issuer, audience)?)
}

/// The issuer's keys as the hub verifies tokens with them, reloaded on an unknown key id at most
/// once per [`MIN_RELOAD_INTERVAL`] (or the interval set with
/// [`IssuerKeys::with_min_reload_interval`]).
pub struct IssuerKeys {
    issuer: String,
    audience: String,
    jwks_file: Option<PathBuf>,
    verifier: RwLock<Arc<Verifier>>,
    last_load: Mutex<Instant>,
    min_reload_interval: Duration,
}

impl IssuerKeys {
    /// Loads the keys once; an error here means the hub cannot verify anything and should not
    /// start.
    pub async fn load(
        issuer: &str,
        audience: &str,
        jwks_file: Option<&Path>,
    ) -> Result<IssuerKeys, KeysError> {
        let verifier = load_verifier(issuer, audience, jwks_file).await?;
        Ok(IssuerKeys {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            jwks_file: jwks_file.map(Path::to_path_buf),
            verifier: RwLock::new(Arc::new(verifier)),
            last_load: Mutex::new(Instant::now()),
            min_reload_interval: MIN_RELOAD_INTERVAL,
        })
    }

    /// Sets the least time between two reloads (default [`MIN_RELOAD_INTERVAL`]).
    pub fn with_min_reload_interval(mut self, interval: Duration) -> IssuerKeys {
        self.min_reload_interval = interval;
        self
    }

    /// Verifies `token`; a token signed by a key this hub has not loaded triggers one reload
    /// (unless one happened within the last [`MIN_RELOAD_INTERVAL`]) and a second try.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        match self.current().verify(token) {
            Err(AuthError::UnknownKey(kid)) if self.claim_reload() => {
                match load_verifier(&self.issuer, &self.audience, self.jwks_file.as_deref()).await {
                    Ok(verifier) => {
                        tracing::info!(%kid, "reloaded the issuer's keys for an unknown key id");
                        *self.verifier.write().expect("verifier lock") = Arc::new(verifier);
                        self.current().verify(token)
                    }
                    Err(error) => {
                        tracing::warn!(%kid, error = %error, "reloading the issuer's keys failed");
                        Err(AuthError::UnknownKey(kid))
                    }
                }
            }
            other => other,
        }
    }

    fn current(&self) -> Arc<Verifier> {
        self.verifier.read().expect("verifier lock").clone()
    }

    /// True when this caller may reload now (and records that it does).
    fn claim_reload(&self) -> bool {
        let mut last = self.last_load.lock().expect("reload lock");
        if last.elapsed() < self.min_reload_interval {
            return false;
        }
        *last = Instant::now();
        true
    }
}

/// Fetches the issuer's JWK set by OIDC discovery.
pub async fn discover_jwks(issuer: &str) -> Result<Vec<u8>, KeysError> {
    let discovery = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let document: serde_json::Value = serde_json::from_slice(&get(&discovery).await?)?;
    let jwks_uri = document
        .get("jwks_uri")
        .and_then(|v| v.as_str())
        .ok_or_else(|| KeysError::NoJwksUri(issuer.to_string()))?;
    get(jwks_uri).await
}

async fn get(url: &str) -> Result<Vec<u8>, KeysError> {
    let uri: http::Uri = url.parse().map_err(|_| KeysError::Url(url.to_string()))?;
    // The provider is named rather than taken from the process default, which does not exist
    // when a build enables more than one rustls backend.
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
        .map_err(KeysError::Roots)?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<bytes::Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    let fetch = |source: Box<dyn std::error::Error + Send + Sync>| KeysError::Fetch {
        url: url.to_string(),
        source,
    };
    let response = tokio::time::timeout(FETCH_TIMEOUT, client.get(uri))
        .await
        .map_err(|e| fetch(Box::new(e)))?
        .map_err(|e| fetch(Box::new(e)))?;
    if !response.status().is_success() {
        return Err(KeysError::Status {
            url: url.to_string(),
            status: response.status(),
        });
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| fetch(Box::new(e)))?;
    Ok(body.to_bytes().to_vec())
}
