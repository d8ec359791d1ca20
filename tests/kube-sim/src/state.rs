//! The simulator's shared state: store, resource registry, bearer token, ready delay, fault
//! switches and the shutdown token, handed to handlers and the controller as `Arc<SimState>`.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::faults::Faults;
use crate::journal::Journal;
use crate::openapi::Documents;
use crate::resources::Registry;
use crate::store::Store;

/// How long a Pod takes to turn Ready after it is created.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Readiness {
    /// The least time.
    pub delay: Duration,
    /// Up to this much more, spread over Pods by their uid.
    pub jitter: Duration,
}

impl Readiness {
    /// The delay of the Pod with `uid`: always the same for the same Pod.
    pub(crate) fn of(&self, uid: &str) -> Duration {
        if self.jitter.is_zero() {
            return self.delay;
        }
        // FNV-1a over the uid, spread over 0..=1000 thousandths of the jitter.
        let mut hash: u64 = 0xcbf29ce484222325;
        for b in uid.bytes() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x100000001b3);
        }
        self.delay + self.jitter.mul_f64((hash % 1001) as f64 / 1000.0)
    }
}

/// Everything a request handler or the controller needs.
#[derive(Debug)]
pub(crate) struct SimState {
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
    /// How long Pods take to turn Ready.
    pub readiness: Readiness,
    /// How often a watch that allows bookmarks gets one.
    pub bookmark_interval: Duration,
    /// `host:port` the simulator listens on (for `/api`'s serverAddressByClientCIDRs).
    pub server_address: String,
    /// Requests and Pods turning Ready, when enabled.
    pub journal: Journal,
    /// Cancelled on shutdown; ends watches and the controller.
    pub shutdown: CancellationToken,
    faults: Mutex<Faults>,
    openapi: OnceLock<Documents>,
}

impl SimState {
    /// New state with the given settings.
    #[allow(clippy::too_many_arguments)] // one per setting, called once by `start`
    pub(crate) fn new(
        registry: Registry,
        history: usize,
        token: String,
        require_token: bool,
        readiness: Readiness,
        faults: Faults,
        server_address: String,
        bookmark_interval: Duration,
        journal: Journal,
    ) -> SimState {
        SimState {
            store: Store::new(history),
            registry,
            token,
            require_token,
            readiness,
            server_address,
            bookmark_interval,
            journal,
            shutdown: CancellationToken::new(),
            faults: Mutex::new(faults),
            openapi: OnceLock::new(),
        }
    }

    /// The current fault switches.
    pub(crate) fn faults(&self) -> Faults {
        *self
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The OpenAPI documents, built from the registry on first use.
    pub(crate) fn openapi(&self) -> &Documents {
        self.openapi
            .get_or_init(|| Documents::build(&self.registry))
    }

    /// Replaces the fault switches.
    pub(crate) fn set_faults(&self, faults: Faults) {
        *self
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = faults;
    }
}
