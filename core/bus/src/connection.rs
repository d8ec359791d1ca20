//! The broker connection: [`Bus`] holds one AMQP connection per process, reconnects it with
//! backoff when it is lost, and answers readiness checks.
//!
//! Expectations for users: open channels through the bus when you need them, and treat a channel
//! error as "this channel is gone" — drop it and ask the bus again. Long-running loops
//! ([`crate::run_consumer`], [`crate::Relay::run`]) do exactly that, waiting with [`Backoff`] between
//! attempts, so a broker restart costs a pause, not a crash. Lapin's automatic recovery is not
//! used: redoing consumers ourselves keeps one code path for "channel lost" whatever the cause.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::ExchangeDeclareOptions;
use lapin::types::{FieldTable, LongString};
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::error::BusError;
use crate::publisher::Publisher;
use crate::topology::{Exchange, Topology, short};

/// Exponential backoff with jitter between reconnect or retry attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The largest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (0-based): doubling from `initial`, capped at `max`, with
    /// the upper half jittered so replicas that lost the broker together do not return together.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(self.max);
        let half = exp / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::random_range(0..=jitter_ms))
    }

    /// Sleeps for [`Backoff::delay`], or returns `false` at once when `shutdown` fires.
    pub async fn wait(&self, attempt: u32, shutdown: &CancellationToken) -> bool {
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(self.delay(attempt)) => true,
        }
    }
}

/// The process's broker connection and topology. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    name: String,
    topology: Topology,
    backoff: Backoff,
    // A tokio mutex so that after a connection loss one caller reconnects while the others wait
    // for its result instead of opening connections of their own.
    connection: Mutex<Option<Arc<Connection>>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never print it.
        f.debug_struct("Bus")
            .field("name", &self.inner.name)
            .field("topology", &self.inner.topology)
            .finish()
    }
}

impl Bus {
    /// Connects to `url` (e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`) once, failing fast so a
    /// misconfigured service says so at start. `name` shows in the broker's connection list.
    pub async fn connect(url: &str, name: &str, topology: Topology) -> Result<Bus, BusError> {
        Bus::connect_with_backoff(url, name, topology, Backoff::default()).await
    }

    /// [`Bus::connect`] with the backoff used between later reconnect attempts.
    pub async fn connect_with_backoff(
        url: &str,
        name: &str,
        topology: Topology,
        backoff: Backoff,
    ) -> Result<Bus, BusError> {
        let connection = open(url, name).await?;
        Ok(Bus {
            inner: Arc::new(Inner {
                url: url.to_string(),
                name: name.to_string(),
                topology,
                backoff,
                connection: Mutex::new(Some(Arc::new(connection))),
            }),
        })
    }

    /// The names this bus publishes and consumes under.
    pub fn topology(&self) -> &Topology {
        &self.inner.topology
    }

    /// The backoff used between reconnect attempts.
    pub fn backoff(&self) -> Backoff {
        self.inner.backoff
    }

    /// The live connection, reconnecting once if it was lost.
    pub async fn connection(&self) -> Result<Arc<Connection>, BusError> {
        let mut guard = self.inner.connection.lock().await;
        if let Some(connection) = guard.as_ref()
            && connection.status().connected()
        {
            return Ok(connection.clone());
        }
        *guard = None;
        let connection = Arc::new(open(&self.inner.url, &self.inner.name).await?);
        tracing::info!(name = %self.inner.name, "connected to RabbitMQ");
        *guard = Some(connection.clone());
        Ok(connection)
    }

    /// The live connection, retrying with backoff until it is back or `shutdown` fires
    /// ([`BusError::ShuttingDown`]).
    pub async fn connection_or_wait(
        &self,
        shutdown: &CancellationToken,
    ) -> Result<Arc<Connection>, BusError> {
        let mut attempt = 0;
        loop {
            match self.connection().await {
                Ok(connection) => return Ok(connection),
                Err(error) => {
                    tracing::warn!(attempt, error = %error, "cannot reach RabbitMQ; retrying");
                }
            }
            if !self.inner.backoff.wait(attempt, shutdown).await {
                return Err(BusError::ShuttingDown);
            }
            attempt = attempt.saturating_add(1);
        }
    }

    /// A new channel on the live connection.
    pub async fn channel(&self) -> Result<Channel, BusError> {
        Ok(self.connection().await?.create_channel().await?)
    }

    /// A new confirm-mode publisher on the live connection.
    pub async fn publisher(&self) -> Result<Publisher, BusError> {
        Publisher::open(&*self.connection().await?, self.inner.topology.clone()).await
    }

    /// Declares the topology (idempotent; call it on every start).
    pub async fn declare(&self) -> Result<(), BusError> {
        let channel = self.channel().await?;
        let result = self.inner.topology.declare(&channel).await;
        close_channel(&channel).await;
        result
    }

    /// Readiness: the broker answers on a fresh channel and the topology is declared (a passive
    /// declare of the work exchange, which changes nothing).
    pub async fn readiness(&self) -> Result<(), BusError> {
        let channel = self.channel().await?;
        let result = channel
            .exchange_declare(
                short(&self.inner.topology.exchange(Exchange::Work)),
                Exchange::Work.kind(),
                ExchangeDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await;
        close_channel(&channel).await;
        Ok(result?)
    }

    /// Liveness of the broker connection alone: a fresh channel opens (a round trip, so a
    /// half-dead connection is caught), reconnecting first if the connection was lost. For
    /// processes that use only part of the topology (the hub's own exchange).
    pub async fn ping(&self) -> Result<(), BusError> {
        let channel = self.channel().await?;
        close_channel(&channel).await;
        Ok(())
    }

    /// Closes the connection (at shutdown, after consumers and relays stopped).
    pub async fn close(&self) {
        if let Some(connection) = self.inner.connection.lock().await.take()
            && connection.status().connected()
        {
            let _ = connection.close(200, short("shutting down")).await;
        }
    }
}

async fn open(url: &str, name: &str) -> Result<Connection, BusError> {
    let properties = ConnectionProperties::default().with_connection_name(LongString::from(name));
    Ok(Connection::connect(url, properties).await?)
}

/// Closes a channel, ignoring the error of one the broker already closed.
pub(crate) async fn close_channel(channel: &Channel) {
    if channel.status().connected() {
        let _ = channel.close(200, short("done")).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let first = b.delay(0);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = b.delay(3);
            assert!(third >= Duration::from_millis(400) && third <= Duration::from_millis(800));
            assert!(b.delay(40) <= Duration::from_secs(1));
        }
    }
}
