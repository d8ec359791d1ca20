//! The state every handler shares: the store, the issuer's keys and settings, the external
//! issuer people sign in with, the master key that seals tenant secrets, the rate limiter,
//! metrics. Cheap to clone; built once by
//! [`AppState::new`], which tests share with the service.

use crate::identity::crypto::MasterKey;
use crate::identity::keys::KeyRing;
use crate::identity::oidc::OidcIssuer;
use crate::metrics::ApiMetrics;
use crate::ratelimit::RateLimiter;
use ferry_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The issuer's fixed settings.
#[derive(Clone, Debug)]
pub struct IssuerConfig {
    /// The issuer URL (no trailing slash): `iss` of every token, base of discovery.
    pub issuer: String,
    /// Lifetime of issued tokens.
    pub token_ttl: Duration,
}

/// The REST API's fixed settings.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// How often an open event stream polls for new events.
    pub events_poll: Duration,
    /// Interval of keep-alive comments on an idle event stream.
    pub events_keep_alive: Duration,
    /// Fires when the service stops: open event streams end so the server can drain.
    pub shutdown: CancellationToken,
    /// How manifests named by URL are fetched.
    pub manifest_fetch: crate::v1::remote_manifests::FetchConfig,
}

/// Shared handler state.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database gateway.
    pub store: Store,
    /// The signing keys (sign, publish, verify).
    pub keys: Arc<KeyRing>,
    /// Issuer settings.
    pub issuer: Arc<IssuerConfig>,
    /// The service's metrics.
    pub metrics: ApiMetrics,
    /// Seals tenant secrets at rest (the same key that seals signing keys).
    pub master: MasterKey,
    /// Per-tenant request budgets.
    pub limiter: Arc<RateLimiter>,
    /// REST API settings.
    pub api: Arc<ApiConfig>,
    /// The external OIDC issuer people sign in with, when one is configured.
    pub people: Option<Arc<OidcIssuer>>,
}

impl AppState {
    /// State over an open store and key ring.
    pub fn new(
        store: Store,
        keys: Arc<KeyRing>,
        issuer: IssuerConfig,
        metrics: ApiMetrics,
        master: MasterKey,
        limiter: RateLimiter,
        api: ApiConfig,
    ) -> AppState {
        AppState {
            store,
            keys,
            issuer: Arc::new(issuer),
            metrics,
            master,
            limiter: Arc::new(limiter),
            api: Arc::new(api),
            people: None,
        }
    }

    /// The same state, accepting people's tokens of `issuer`.
    pub fn with_people(mut self, issuer: OidcIssuer) -> AppState {
        self.people = Some(Arc::new(issuer));
        self
    }
}
