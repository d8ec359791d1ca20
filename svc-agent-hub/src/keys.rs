//! Where the hub gets the issuer's public keys: a JWK set file, or OIDC discovery
//! (`{issuer}/.well-known/openid-configuration` → `jwks_uri` → the JWK set).

use ferry_auth::Verifier;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::path::Path;
use std::time::Duration;

/// How long one discovery request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

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
