//! The state every handler shares: the store, the issuer's keys and settings, the external
//! issuer people sign in with, the master key that seals tenant secrets, the rate limiter,
//! metrics. Cheap to clone; built once by
//! [`AppState::new`], which tests share with the service.

use crate::identity::crypto::MasterKey;
use crate::identity::keys::KeyRing;
use crate::identity::oidc::OidcIssuer;
use crate::identity::token_limits::TokenLimits;
use crate::metrics::ApiMetrics;
use crate::ratelimit::RateLimiter;
use ferry_store::Store;
use ferry_store::revocations::Revocations;
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

/// The request limits of one replica.
#[derive(Debug)]
pub struct Limits {
    /// Requests under `/v1`, per tenant.
    pub per_tenant: RateLimiter,
    /// The token endpoint's.
    pub token: TokenLimits,
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
    /// Cached revocation checks of machine credentials whose tokens are presented.
    pub revocations: Arc<Revocations>,
    /// The token endpoint's rate limits and verification slots.
    pub token_limits: Arc<TokenLimits>,
    /// The web UI's client secret at the external issuer, when it is a confidential client.
    pub oidc_client_secret: Option<Arc<str>>,
}

impl AppState {
    /// State over an open store and key ring.
    pub fn new(
        store: Store,
        keys: Arc<KeyRing>,
        issuer: IssuerConfig,
        metrics: ApiMetrics,
        master: MasterKey,
        limits: Limits,
        api: ApiConfig,
    ) -> AppState {
        AppState {
            revocations: Arc::new(Revocations::new(store.clone(), Revocations::DEFAULT_TTL)),
            store,
            keys,
            issuer: Arc::new(issuer),
            metrics,
            master,
            limiter: Arc::new(limits.per_tenant),
            token_limits: Arc::new(limits.token),
            api: Arc::new(api),
            people: None,
            oidc_client_secret: None,
        }
    }

    /// The same state, accepting people's tokens of `issuer`.
    pub fn with_people(mut self, issuer: OidcIssuer) -> AppState {
        self.people = Some(Arc::new(issuer));
        self
    }
}
