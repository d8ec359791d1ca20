//! Where the hub gets the issuer's public keys: a JWK set file, or OIDC discovery
//! (`{issuer}/.well-known/openid-configuration` → `jwks_uri` → the JWK set); and
//! [`IssuerKeys`], which reloads them when a token names a key the hub has not seen yet, so a key
//! rotation at the issuer needs no hub restart.

use ferry_auth::discovery::{Discovery, DiscoveryError, KeyCache, Refresh};
use ferry_auth::{AuthError, Claims, Verifier};
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

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
    Auth(#[from] AuthError),
    /// Discovery failed (unreachable, another issuer named, no keys).
    #[error("discovering the issuer's keys")]
    Discovery(#[from] DiscoveryError),
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
        None => Discovery::new(issuer)?
            .jwks()
            .await?
            .to_string()
            .into_bytes(),
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
    cache: KeyCache<Verifier>,
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
            cache: KeyCache::new(verifier, true, MIN_RELOAD_INTERVAL),
        })
    }

    /// Sets the least time between two reloads (default [`MIN_RELOAD_INTERVAL`]).
    pub fn with_min_reload_interval(mut self, interval: Duration) -> IssuerKeys {
        self.cache = self.cache.with_min_reload(interval);
        self
    }

    /// Verifies `token`; a token signed by a key this hub has not loaded triggers one reload
    /// (unless one happened within the interval; concurrent ones share it) and a second try.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let kid = match self.cache.current().verify(token) {
            Err(AuthError::UnknownKey(kid)) => kid,
            other => return other,
        };
        let knows_key =
            |verifier: &Verifier| !matches!(verifier.verify(token), Err(AuthError::UnknownKey(_)));
        let load = || load_verifier(&self.issuer, &self.audience, self.jwks_file.as_deref());
        match self.cache.refresh(knows_key, load).await {
            Refresh::Loaded(verifier) => {
                tracing::info!(%kid, "reloaded the issuer's keys for an unknown key id");
                verifier.verify(token)
            }
            Refresh::Kept(verifier) => verifier.verify(token),
            Refresh::Failed(_, error) => {
                tracing::warn!(%kid, error = %ferry_runtime::errors::error_chain(&error), "reloading the issuer's keys failed");
                Err(AuthError::UnknownKey(kid))
            }
        }
    }
}
