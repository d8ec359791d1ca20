//! What keeps `POST /oauth/token` from being used to exhaust svc-api: requests are limited per
//! source address, failed authentications per client id (so a flood of bad secrets for one
//! client id locks out that id for a while, not its legitimate holder's successful requests
//! from the start, and not other clients), and argon2 verifications run under a bounded
//! semaphore, so bad logins cannot occupy every CPU while other tenants wait.

use crate::ratelimit::RateLimiter;
use crate::settings::ApiArgs;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a token request waits for a verification slot before it is told to retry.
const VERIFICATION_WAIT: Duration = Duration::from_secs(2);

/// The token endpoint's limits on this replica.
#[derive(Debug)]
pub struct TokenLimits {
    per_address: RateLimiter<IpAddr>,
    failures_per_client: RateLimiter<String>,
    verifications: Arc<Semaphore>,
}

/// Why a token request is held back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// Too many requests from the address; retry after the duration.
    Address(Duration),
    /// Too many failed authentications for the client id; retry after the duration.
    Client(Duration),
    /// Every verification slot stayed busy.
    Busy,
}

impl TokenLimits {
    /// The limits `args` configure.
    pub fn new(args: &ApiArgs) -> TokenLimits {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        TokenLimits {
            per_address: RateLimiter::new(
                args.token_rate_per_address,
                args.token_burst_per_address,
            ),
            failures_per_client: RateLimiter::new(
                args.token_failures_per_client,
                args.token_failure_burst_per_client,
            ),
            verifications: Arc::new(Semaphore::new(args.token_verifications.unwrap_or(cpus))),
        }
    }

    /// Counts a request from `address`.
    pub fn admit_address(&self, address: IpAddr) -> Result<(), Held> {
        self.per_address.acquire(address).map_err(Held::Address)
    }

    /// Whether `client_id` may try to authenticate (its failures are under their limit).
    pub fn admit_client(&self, client_id: &str) -> Result<(), Held> {
        self.failures_per_client
            .check(&client_id.to_string())
            .map_err(Held::Client)
    }

    /// Counts a failed authentication of `client_id`.
    pub fn failed(&self, client_id: &str) {
        let _ = self.failures_per_client.acquire(client_id.to_string());
    }

    /// A verification slot, waiting at most a short while. The verification holds it until it
    /// is done, even when its request is cancelled meanwhile.
    pub async fn verification(&self) -> Result<OwnedSemaphorePermit, Held> {
        let slot = self.verifications.clone().acquire_owned();
        match tokio::time::timeout(VERIFICATION_WAIT, slot).await {
            Ok(Ok(permit)) => Ok(permit),
            // Timed out, or closed (never closed here).
            _ => Err(Held::Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        api: ApiArgs,
    }

    fn limits(flags: &[&str]) -> TokenLimits {
        let flags = Flags::parse_from(std::iter::once("test").chain(flags.iter().copied()));
        TokenLimits::new(&flags.api)
    }

    #[tokio::test(start_paused = true)]
    async fn verifications_are_bounded_and_a_waiter_gives_up() {
        let limits = limits(&["--token-verifications", "1"]);
        let held = limits.verification().await.unwrap();
        assert_eq!(limits.verification().await.unwrap_err(), Held::Busy);
        drop(held);
        assert!(limits.verification().await.is_ok());
    }

    #[test]
    fn failures_lock_a_client_id_out_and_no_other() {
        let limits = limits(&[
            "--token-failures-per-client",
            "0.001",
            "--token-failure-burst-per-client",
            "2",
        ]);
        for _ in 0..2 {
            assert!(limits.admit_client("a").is_ok());
            limits.failed("a");
        }
        assert!(matches!(limits.admit_client("a"), Err(Held::Client(_))));
        assert!(limits.admit_client("b").is_ok());
    }
}
