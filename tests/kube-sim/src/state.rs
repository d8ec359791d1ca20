//! The simulator's shared state: store, resource registry, bearer token, ready delay, fault
//! switches and the shutdown token, handed to handlers and the controller as `Arc<SimState>`.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::faults::Faults;
use crate::openapi::Documents;
use crate::resources::Registry;
use crate::store::Store;

/// Everything a request handler or the controller needs.
#[derive(Debug)]
pub struct SimState {
    /// Object storage and watch events.
    pub store: Store,
    /// Served resources.
    pub registry: Registry,
    /// The bearer token every API request must carry.
    pub token: String,
    /// Whether the token is checked (HTTPS). Over plain HTTP it is not: client-go (kubectl)
    /// never sends bearer tokens over plain HTTP, and the real API server's old insecure port
    /// did not authenticate either.
    pub require_token: bool,
    /// How long a Pod takes to turn Ready.
    pub ready_delay: Duration,
    /// How often a watch that allows bookmarks gets one.
    pub bookmark_interval: Duration,
    /// `host:port` the simulator listens on (for `/api`'s serverAddressByClientCIDRs).
    pub server_address: String,
    /// Cancelled on shutdown; ends watches and the controller.
    pub shutdown: CancellationToken,
    faults: Mutex<Faults>,
    openapi: OnceLock<Documents>,
}

impl SimState {
    /// New state with the given settings.
    #[allow(clippy::too_many_arguments)] // one per setting, called once by `start`
    pub fn new(
        registry: Registry,
        history: usize,
        token: String,
        require_token: bool,
        ready_delay: Duration,
        faults: Faults,
        server_address: String,
        bookmark_interval: Duration,
    ) -> SimState {
        SimState {
            store: Store::new(history),
            registry,
            token,
            require_token,
            ready_delay,
            server_address,
            bookmark_interval,
            shutdown: CancellationToken::new(),
            faults: Mutex::new(faults),
            openapi: OnceLock::new(),
        }
    }

    /// The current fault switches.
    pub fn faults(&self) -> Faults {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The OpenAPI documents, built from the registry on first use.
    pub fn openapi(&self) -> &Documents {
        self.openapi
            .get_or_init(|| Documents::build(&self.registry))
    }

    /// Replaces the fault switches.
    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }
}
