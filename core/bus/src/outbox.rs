//! The transactional outbox: messages written in the same transaction as the state change that
//! causes them, and the relay that publishes them.
//!
//! [`enqueue`] inserts a row into `outbox` on the caller's connection (inside its transaction) and
//! queues a `NOTIFY` that Postgres delivers only if the transaction commits. A rolled-back
//! transaction leaves neither row nor notification: nothing phantom is ever sent.
//!
//! The [`Relay`] claims unsent rows in `seq` order with `FOR UPDATE SKIP LOCKED` (so several relays
//! share the work without blocking each other), publishes them with publisher confirms, then marks
//! them sent and commits. A relay that dies after the broker confirmed but before the commit
//! releases its row locks; another relay publishes those rows again. Delivery is therefore at least
//! once, and consumers drop the duplicate with [`crate::inbox::first_delivery`]. The two halves are
//! public ([`Relay::publish_batch`], [`Relay::mark_sent`]) so a test can stop between them.
//!
//! The row lock is held across the broker round trip of one batch. That is deliberate and short
//! (a confirm takes milliseconds) and it is what lets relays run side by side; the rows locked are
//! the outbox's own, never a deployment's.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::connection::Bus;
use crate::envelope::Envelope;
use crate::error::{BusError, error_chain};
use crate::headers::{self, MessageHeaders};
use crate::messages::Message;
use crate::publisher::{Outgoing, Publisher};
use crate::topology::Exchange;

/// The Postgres notification channel [`enqueue`] notifies and the relay listens on.
pub const NOTIFY_CHANNEL: &str = "ferry_outbox";

/// Writes `envelope` to the outbox in the caller's transaction; it is published after commit.
pub async fn enqueue<M: Message>(
    conn: &mut PgConnection,
    envelope: &Envelope<M>,
) -> Result<(), BusError> {
    enqueue_with_headers(conn, envelope, &MessageHeaders::default()).await
}

/// [`enqueue`] with the trace context of the span causing the message.
pub async fn enqueue_with_headers<M: Message>(
    conn: &mut PgConnection,
    envelope: &Envelope<M>,
    trace: &MessageHeaders,
) -> Result<(), BusError> {
    let route = envelope.payload.route(envelope.tenant_id);
    let mut stored_headers = trace.to_map();
    stored_headers.insert(headers::KIND.to_string(), envelope.kind().to_string());
    sqlx::query(
        "INSERT INTO outbox (message_id, tenant_id, exchange, routing_key, headers, payload)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(envelope.id)
    .bind(envelope.tenant_id)
    .bind(route.exchange.logical_name())
    .bind(&route.routing_key)
    .bind(Json(&stored_headers))
    .bind(envelope.to_json()?)
    .execute(&mut *conn)
    .await?;
    // Delivered at commit, dropped on rollback; several in one transaction collapse into one.
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(NOTIFY_CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// How a relay batches, waits and cleans up.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Rows claimed and published per transaction.
    pub batch_size: u32,
    /// How often to look for rows without a notification (covers a lost `LISTEN` connection).
    pub poll_interval: Duration,
    /// How long sent rows are kept (for inspection) before they are deleted.
    pub retention: Duration,
    /// How often sent rows past retention are deleted.
    pub cleanup_interval: Duration,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            batch_size: 100,
            poll_interval: Duration::from_secs(1),
            retention: Duration::from_secs(24 * 3600),
            cleanup_interval: Duration::from_secs(600),
        }
    }
}

/// Rows published and confirmed by the broker but not yet marked sent. Their row locks are held
/// by the transaction inside; dropping the batch without [`Relay::mark_sent`] rolls it back and
/// leaves the rows for the next relay, which is exactly what a crash at this point does.
#[derive(Debug)]
pub struct PublishedBatch {
    tx: Transaction<'static, Postgres>,
    seqs: Vec<i64>,
    message_ids: Vec<Uuid>,
}

impl PublishedBatch {
    /// How many messages the batch published.
    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    /// Whether the batch is empty (never true for a batch [`Relay::publish_batch`] returns).
    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    /// The published message ids, in publish order.
    pub fn message_ids(&self) -> &[Uuid] {
        &self.message_ids
    }
}

/// Publishes outbox rows. Run one or more per deployment; see the module documentation.
pub struct Relay {
    pool: PgPool,
    bus: Bus,
    config: RelayConfig,
    // Reused across batches; replaced when its channel dies.
    publisher: Mutex<Option<Publisher>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("bus", &self.bus)
            .field("config", &self.config)
            .finish()
    }
}

type OutboxRow = (
    i64,
    Uuid,
    String,
    String,
    Json<BTreeMap<String, serde_json::Value>>,
    Vec<u8>,
);

impl Relay {
    /// A relay publishing the rows of `pool`'s outbox through `bus`.
    pub fn new(pool: PgPool, bus: Bus, config: RelayConfig) -> Relay {
        Relay {
            pool,
            bus,
            config,
            publisher: Mutex::new(None),
        }
    }

    /// Claims up to `batch_size` unsent rows, publishes them in order and waits for every confirm.
    /// `None` when nothing is waiting. On error nothing is marked and the rows stay unsent (some
    /// may have reached the broker: they will be published again, which consumers tolerate).
    pub async fn publish_batch(&self) -> Result<Option<PublishedBatch>, BusError> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "SELECT seq, message_id, exchange, routing_key, headers, payload
             FROM outbox
             WHERE sent_at IS NULL
             ORDER BY seq
             LIMIT $1
             FOR UPDATE SKIP LOCKED",
        )
        .bind(i64::from(self.config.batch_size))
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }

        let publisher = self.publisher().await?;
        let result = publish_rows(&publisher, &rows).await;
        if result.is_err() && !publisher.is_open() {
            *self.publisher.lock().await = None;
        }
        result?;
        Ok(Some(PublishedBatch {
            tx,
            seqs: rows.iter().map(|r| r.0).collect(),
            message_ids: rows.iter().map(|r| r.1).collect(),
        }))
    }

    /// Marks a published batch sent and commits, releasing its rows. Returns the row count.
    pub async fn mark_sent(&self, batch: PublishedBatch) -> Result<usize, BusError> {
        let PublishedBatch { mut tx, seqs, .. } = batch;
        sqlx::query("UPDATE outbox SET sent_at = now() WHERE seq = ANY($1)")
            .bind(&seqs)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(seqs.len())
    }

    /// Publishes and marks one batch; returns how many rows it sent (0: nothing waiting).
    pub async fn relay_once(&self) -> Result<usize, BusError> {
        match self.publish_batch().await? {
            Some(batch) => self.mark_sent(batch).await,
            None => Ok(0),
        }
    }

    /// Deletes rows sent before `cutoff`; returns how many.
    pub async fn delete_sent_before(&self, cutoff: DateTime<Utc>) -> Result<u64, BusError> {
        Ok(
            sqlx::query("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1")
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// Relays until `shutdown` fires: drains the outbox whenever a notification arrives or the
    /// poll interval passes, backs off on errors (broker or database away), and deletes sent rows
    /// past retention. A batch in flight when shutdown fires finishes first.
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut listener = self.listen().await;
        let mut failures: u32 = 0;
        let mut next_cleanup = Instant::now();
        while !shutdown.is_cancelled() {
            if let Err(error) = self.drain(&shutdown).await {
                tracing::warn!(error = %error_chain(&error), failures, "outbox relay failed; backing off");
                if !self.bus.backoff().wait(failures, &shutdown).await {
                    break;
                }
                failures = failures.saturating_add(1);
                continue;
            }
            failures = 0;

            if Instant::now() >= next_cleanup {
                let cutoff = Utc::now()
                    - chrono::Duration::from_std(self.config.retention)
                        .unwrap_or(chrono::Duration::MAX);
                match self.delete_sent_before(cutoff).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::debug!(deleted, "deleted sent outbox rows"),
                    Err(error) => tracing::warn!(error = %error, "cannot delete sent outbox rows"),
                }
                next_cleanup = Instant::now() + self.config.cleanup_interval;
            }

            if listener.is_none() {
                listener = self.listen().await;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.config.poll_interval) => {}
                notified = notification(&mut listener) => {
                    if let Err(error) = notified {
                        tracing::warn!(error = %error, "outbox LISTEN connection lost; polling until it is back");
                        listener = None;
                    }
                }
            }
        }
        if let Some(publisher) = self.publisher.lock().await.take() {
            publisher.close().await;
        }
    }

    /// Publishes batches until one comes back short (the outbox is drained) or shutdown fires.
    async fn drain(&self, shutdown: &CancellationToken) -> Result<(), BusError> {
        let full = usize::try_from(self.config.batch_size).unwrap_or(usize::MAX);
        while !shutdown.is_cancelled() {
            let sent = self.relay_once().await?;
            if sent > 0 {
                tracing::debug!(sent, "relayed outbox rows");
            }
            if sent < full {
                break;
            }
        }
        Ok(())
    }

    async fn listen(&self) -> Option<PgListener> {
        let result = async {
            let mut listener = PgListener::connect_with(&self.pool).await?;
            listener.listen(NOTIFY_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        match result {
            Ok(listener) => Some(listener),
            Err(error) => {
                tracing::warn!(error = %error, "cannot LISTEN for outbox rows; polling");
                None
            }
        }
    }

    async fn publisher(&self) -> Result<Publisher, BusError> {
        let mut guard = self.publisher.lock().await;
        if let Some(publisher) = guard.as_ref().filter(|p| p.is_open()) {
            return Ok(publisher.clone());
        }
        let publisher = self.bus.publisher().await?;
        *guard = Some(publisher.clone());
        Ok(publisher)
    }
}

/// Waits for the next notification; forever when there is no listener (the poll timer wakes us).
async fn notification(listener: &mut Option<PgListener>) -> Result<(), sqlx::Error> {
    match listener {
        Some(listener) => listener.recv().await.map(|_| ()),
        None => std::future::pending().await,
    }
}

/// Sends every row, then waits for every confirm: pipelining keeps a batch to about one round
/// trip, and one channel keeps the broker's order equal to `seq` order.
async fn publish_rows(publisher: &Publisher, rows: &[OutboxRow]) -> Result<(), BusError> {
    let mut pending = Vec::with_capacity(rows.len());
    for (seq, message_id, exchange, routing_key, stored_headers, payload) in rows {
        let exchange =
            Exchange::from_logical_name(exchange).ok_or_else(|| BusError::UnknownExchange {
                seq: *seq,
                exchange: exchange.clone(),
            })?;
        let mut strings = BTreeMap::new();
        for (key, value) in stored_headers.0.iter() {
            match value.as_str() {
                Some(text) => {
                    strings.insert(key.clone(), text.to_string());
                }
                None => tracing::warn!(seq, header = %key, "ignoring non-string outbox header"),
            }
        }
        let kind = strings.remove(headers::KIND);
        let mut outgoing = Outgoing::new(
            publisher.topology().exchange(exchange),
            routing_key.clone(),
            message_id.to_string(),
            payload.clone(),
        );
        outgoing.mandatory = exchange.mandatory();
        outgoing.kind = kind;
        outgoing.headers = headers::table_from_map(&strings);
        pending.push(publisher.send(&outgoing).await?);
    }
    // Await all before reporting, so no confirm is left dangling on the channel.
    let mut first_error = None;
    for confirm in pending {
        if let Err(error) = confirm.confirmed().await {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}
