//! The state every handler shares: the store, the issuer's keys and settings, metrics. Cheap to
//! clone; built once by [`AppState::new`], which tests share with the service.

use crate::identity::keys::KeyRing;
use crate::metrics::ApiMetrics;
use ferry_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// The issuer's fixed settings.
#[derive(Clone, Debug)]
pub struct IssuerConfig {
    /// The issuer URL (no trailing slash): `iss` of every token, base of discovery.
    pub issuer: String,
    /// Lifetime of issued tokens.
    pub token_ttl: Duration,
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
}

impl AppState {
    /// State over an open store and key ring.
    pub fn new(
        store: Store,
        keys: Arc<KeyRing>,
        issuer: IssuerConfig,
        metrics: ApiMetrics,
    ) -> AppState {
        AppState {
            store,
            keys,
            issuer: Arc::new(issuer),
            metrics,
        }
    }
}
