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
//!
//! One row cannot block the others. A row the broker refuses (returned as unroutable, nacked)
//! counts a failed attempt in the row and the rest of the batch is marked sent as usual; a row that
//! takes its channel down with it cannot be told apart from its batch, so after such a failure the
//! relay publishes the next `batch_size` rows one at a time, and the culprit alone counts its
//! attempts. A row that reaches [`RelayConfig::max_attempts`], or that retrying cannot help (larger
//! than [`RelayConfig::max_payload_bytes`], naming an unknown exchange), is *parked*: `parked_at`
//! and `parked_reason` are set and the relay never claims it again (clear `parked_at` to
//! republish). Parked rows are counted in `ferry_outbox_parked_total` by reason.
//!
//! With [`RelayMetrics`] the relay also counts what it published and how long rows waited, and
//! every [`RelayConfig::backlog_interval`] reads the backlog (rows pending, the oldest one's age,
//! rows parked) with queries bounded by [`BACKLOG_COUNT_CAP`] and the partial indexes on
//! `outbox`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
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
use crate::metrics::RelayMetrics;
use crate::publisher::{Outgoing, Publisher};
use crate::topology::Exchange;

/// The Postgres notification channel [`enqueue`] notifies and the relay listens on.
pub const NOTIFY_CHANNEL: &str = "ferry_outbox";

/// Writes `envelope` to the outbox in the caller's transaction, with the current span's trace context
/// (so the consumer continues the trace); it is published after commit.
pub async fn enqueue<M: Message>(
    conn: &mut PgConnection,
    envelope: &Envelope<M>,
) -> Result<(), BusError> {
    enqueue_with_headers(conn, envelope, &MessageHeaders::current()).await
}

/// [`enqueue`] with explicit headers (a trace context other than the current span's).
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

/// The default [`RelayConfig::max_payload_bytes`]: far above any message Ferry writes (they carry
/// ids and small facts), far below the broker's own limit.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 8 * 1024 * 1024;

/// The backlog gauges count at most this many rows: a count is exact up to here, and reading
/// more would make a large backlog (the broker away for an hour) expensive to observe.
pub const BACKLOG_COUNT_CAP: i64 = 100_000;

/// The `reason` label and `parked_reason` prefix of a row larger than the relay publishes.
pub const PARKED_OVERSIZED: &str = "oversized";
/// ... of a row naming an exchange this version does not know.
pub const PARKED_UNKNOWN_EXCHANGE: &str = "unknown_exchange";
/// ... of a row that failed `max_attempts` times.
pub const PARKED_FAILING: &str = "failing";

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
    /// The largest payload published; a larger row is parked at once (the broker would refuse it,
    /// closing the channel, every time).
    pub max_payload_bytes: usize,
    /// Failed publishes of one row before it is parked.
    pub max_attempts: i32,
    /// How often the backlog gauges are read from Postgres (only with [`RelayMetrics`]).
    pub backlog_interval: Duration,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            batch_size: 100,
            poll_interval: Duration::from_secs(1),
            retention: Duration::from_secs(24 * 3600),
            cleanup_interval: Duration::from_secs(600),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            max_attempts: 10,
            backlog_interval: Duration::from_secs(5),
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
    /// When each published row was written, for the publish lag.
    created: Vec<DateTime<Utc>>,
    /// Rows not published this time: counted (and parked at the limit) by [`Relay::mark_sent`].
    failures: Vec<RowFailure>,
    /// The first publish error, reported by [`Relay::relay_once`] after the batch is committed so
    /// the run loop backs off.
    error: Option<BusError>,
}

/// A claimed row that was not published.
#[derive(Debug)]
struct RowFailure {
    seq: i64,
    message_id: Uuid,
    /// Why, for `last_error` and `parked_reason`.
    text: String,
    /// Park now whatever the attempts (`Some(reason label)`), or count an attempt (`None`).
    park_now: Option<&'static str>,
    /// Whether this failure counts against the row (false: its batch failed as a whole).
    counts: bool,
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

    /// The ids of claimed rows that were not published (refused, failed, or to be parked).
    pub fn failed_ids(&self) -> Vec<Uuid> {
        self.failures.iter().map(|f| f.message_id).collect()
    }
}

/// Publishes outbox rows. Run one or more per deployment; see the module documentation.
pub struct Relay {
    pool: PgPool,
    bus: Bus,
    config: RelayConfig,
    // Reused across batches; replaced when its channel dies.
    publisher: Mutex<Option<Publisher>>,
    metrics: Option<RelayMetrics>,
    // Rows still to publish one at a time after a batch failed as a whole (see the module docs).
    isolate: AtomicU32,
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
    DateTime<Utc>,
);

/// What became of a claimed row.
enum RowResult {
    Sent,
    Failed(RowFailure),
}

impl Relay {
    /// A relay publishing the rows of `pool`'s outbox through `bus`.
    pub fn new(pool: PgPool, bus: Bus, config: RelayConfig) -> Relay {
        Relay {
            pool,
            bus,
            config,
            publisher: Mutex::new(None),
            metrics: None,
            isolate: AtomicU32::new(0),
        }
    }

    /// Counts parked and failed rows in `metrics`.
    pub fn with_metrics(mut self, metrics: RelayMetrics) -> Relay {
        self.metrics = Some(metrics);
        self
    }

    /// Claims up to `batch_size` unsent, unparked rows, publishes them in order and waits for every
    /// confirm. `None` when nothing is waiting. An error means nothing was tried (database or broker
    /// unreachable) and the rows stay as they were. Rows the broker refused, or that failed with
    /// their channel, are in the batch as failures for [`Relay::mark_sent`] to count or park.
    pub async fn publish_batch(&self) -> Result<Option<PublishedBatch>, BusError> {
        let isolated = self.isolate.load(Ordering::SeqCst) > 0;
        let limit = if isolated { 1 } else { self.config.batch_size };
        let mut tx = self.pool.begin().await?;
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "SELECT seq, message_id, exchange, routing_key, headers, payload, created_at
             FROM outbox
             WHERE sent_at IS NULL AND parked_at IS NULL
             ORDER BY seq
             LIMIT $1
             FOR UPDATE SKIP LOCKED",
        )
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        if isolated {
            let _ = self
                .isolate
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        }

        let publisher = self.publisher().await?;
        let (results, error) = publish_rows(&publisher, &rows, &self.config).await;
        if error.is_some() && !publisher.is_open() {
            *self.publisher.lock().await = None;
        }
        let mut batch = PublishedBatch {
            tx,
            seqs: Vec::new(),
            message_ids: Vec::new(),
            created: Vec::new(),
            failures: Vec::new(),
            error,
        };
        // A failure that is not the row's own (its channel went down) counts against the row only
        // when it was published alone; otherwise the next rows go one at a time to find the culprit.
        let alone = rows.len() == 1;
        for (row, result) in rows.iter().zip(results) {
            match result {
                RowResult::Sent => {
                    batch.seqs.push(row.0);
                    batch.message_ids.push(row.1);
                    batch.created.push(row.6);
                }
                RowResult::Failed(mut failure) => {
                    if !failure.counts && alone {
                        failure.counts = true;
                    }
                    batch.failures.push(failure);
                }
            }
        }
        if batch.failures.iter().any(|f| !f.counts) {
            self.isolate.store(self.config.batch_size, Ordering::SeqCst);
        }
        Ok(Some(batch))
    }

    /// Marks a published batch's rows sent, counts its failed rows' attempts (parking those at the
    /// limit or beyond help) and commits, releasing its rows. Returns the count of rows sent.
    pub async fn mark_sent(&self, batch: PublishedBatch) -> Result<usize, BusError> {
        let PublishedBatch {
            mut tx,
            seqs,
            created,
            failures,
            ..
        } = batch;
        sqlx::query("UPDATE outbox SET sent_at = now() WHERE seq = ANY($1)")
            .bind(&seqs)
            .execute(&mut *tx)
            .await?;
        let mut parked = Vec::new();
        for failure in failures.iter().filter(|f| f.counts || f.park_now.is_some()) {
            let text = truncate(&failure.text);
            let attempts: i32 = sqlx::query_scalar(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE seq = $1
                 RETURNING attempts",
            )
            .bind(failure.seq)
            .bind(&text)
            .fetch_one(&mut *tx)
            .await?;
            let reason = match failure.park_now {
                Some(reason) => Some(reason),
                None if attempts >= self.config.max_attempts => Some(PARKED_FAILING),
                None => None,
            };
            if let Some(reason) = reason {
                sqlx::query(
                    "UPDATE outbox SET parked_at = now(), parked_reason = $2 WHERE seq = $1",
                )
                .bind(failure.seq)
                .bind(format!("{reason}: {text}"))
                .execute(&mut *tx)
                .await?;
                parked.push((failure, reason, attempts));
            }
        }
        tx.commit().await?;
        if let Some(metrics) = &self.metrics {
            let now = Utc::now();
            metrics.published.inc_by(seqs.len() as u64);
            for written in created {
                let lag = (now - written).to_std().unwrap_or_default();
                metrics.publish_lag_seconds.observe(lag.as_secs_f64());
            }
        }
        for failure in failures.iter().filter(|f| f.counts && f.park_now.is_none()) {
            if let Some(metrics) = &self.metrics {
                metrics.failed.inc();
            }
            tracing::debug!(seq = failure.seq, message_id = %failure.message_id, error = %failure.text, "outbox row not published");
        }
        for (failure, reason, attempts) in parked {
            if let Some(metrics) = &self.metrics {
                metrics.parked.with_label_values(&[reason]).inc();
            }
            tracing::warn!(
                seq = failure.seq,
                message_id = %failure.message_id,
                reason,
                attempts,
                error = %failure.text,
                "outbox row parked: it is not published again until someone clears parked_at"
            );
        }
        Ok(seqs.len())
    }

    /// Publishes and marks one batch; returns how many rows it sent (0: nothing waiting). A batch
    /// in which some row failed to publish is committed (what was sent is marked, the failures
    /// counted) and then reported as its first error, so a caller backs off.
    pub async fn relay_once(&self) -> Result<usize, BusError> {
        Ok(self.relay_claimed().await?.1)
    }

    /// [`Relay::relay_once`], returning the rows claimed (whatever became of them) and sent.
    async fn relay_claimed(&self) -> Result<(usize, usize), BusError> {
        match self.publish_batch().await? {
            Some(mut batch) => {
                let error = batch.error.take();
                let claimed = batch.seqs.len() + batch.failures.len();
                let sent = self.mark_sent(batch).await?;
                match error {
                    Some(error) => Err(error),
                    None => Ok((claimed, sent)),
                }
            }
            None => Ok((0, 0)),
        }
    }

    /// Rows parked so far, oldest first: `(message_id, parked_reason)`.
    pub async fn parked(&self) -> Result<Vec<(Uuid, String)>, BusError> {
        Ok(sqlx::query_as(
            "SELECT message_id, coalesce(parked_reason, '') FROM outbox
             WHERE parked_at IS NOT NULL ORDER BY parked_at, seq",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Reads the backlog into the gauges of the relay's metrics (nothing without metrics): rows
    /// pending and parked (each counted up to [`BACKLOG_COUNT_CAP`]) and the oldest pending row's
    /// age. Each query walks a partial index of `outbox` and stops at the cap.
    pub async fn refresh_backlog(&self) -> Result<(), BusError> {
        let Some(metrics) = &self.metrics else {
            return Ok(());
        };
        let (pending, oldest, parked): (i64, Option<f64>, i64) = sqlx::query_as(
            "SELECT
               (SELECT count(*) FROM (SELECT 1 FROM outbox
                  WHERE sent_at IS NULL AND parked_at IS NULL LIMIT $1) AS p),
               (SELECT extract(epoch FROM now() - created_at)::float8 FROM outbox
                  WHERE sent_at IS NULL AND parked_at IS NULL ORDER BY seq LIMIT 1),
               (SELECT count(*) FROM (SELECT 1 FROM outbox
                  WHERE parked_at IS NOT NULL LIMIT $1) AS k)",
        )
        .bind(BACKLOG_COUNT_CAP)
        .fetch_one(&self.pool)
        .await?;
        metrics.pending_rows.set(pending);
        metrics
            .oldest_pending_seconds
            .set(oldest.unwrap_or(0.0).max(0.0));
        metrics.parked_rows.set(parked);
        Ok(())
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
        let mut next_backlog = Instant::now();
        while !shutdown.is_cancelled() {
            // Read before draining too, so a relay that cannot publish still shows its backlog.
            if self.metrics.is_some() && Instant::now() >= next_backlog {
                if let Err(error) = self.refresh_backlog().await {
                    tracing::debug!(error = %error_chain(&error), "cannot read the outbox backlog");
                }
                next_backlog = Instant::now() + self.config.backlog_interval;
            }
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
        while !shutdown.is_cancelled() {
            let full = if self.isolate.load(Ordering::SeqCst) > 0 {
                1
            } else {
                usize::try_from(self.config.batch_size).unwrap_or(usize::MAX)
            };
            let (claimed, sent) = self.relay_claimed().await?;
            if sent > 0 {
                tracing::debug!(sent, "relayed outbox rows");
            }
            if claimed < full {
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
/// trip, and one channel keeps the broker's order equal to `seq` order. Returns each row's result
/// and the first publish error. Rows that can never be published are failed without sending.
async fn publish_rows(
    publisher: &Publisher,
    rows: &[OutboxRow],
    config: &RelayConfig,
) -> (Vec<RowResult>, Option<BusError>) {
    let mut pending = Vec::with_capacity(rows.len());
    let mut channel_error = None;
    for (seq, message_id, exchange, routing_key, stored_headers, payload, _) in rows {
        let fail = |text: String, park_now: Option<&'static str>, counts: bool| {
            RowResult::Failed(RowFailure {
                seq: *seq,
                message_id: *message_id,
                text,
                park_now,
                counts,
            })
        };
        if payload.len() > config.max_payload_bytes {
            let text = format!(
                "payload of {} bytes is over the relay's limit of {} bytes",
                payload.len(),
                config.max_payload_bytes
            );
            pending.push(Err(fail(text, Some(PARKED_OVERSIZED), true)));
            continue;
        }
        let Some(exchange) = Exchange::from_logical_name(exchange) else {
            let error = BusError::UnknownExchange {
                seq: *seq,
                exchange: exchange.clone(),
            };
            pending.push(Err(fail(
                error.to_string(),
                Some(PARKED_UNKNOWN_EXCHANGE),
                true,
            )));
            continue;
        };
        if let Some(error) = &channel_error {
            // The channel is gone: the rest of the batch waits for the next claim.
            pending.push(Err(fail(error_chain(error), None, false)));
            continue;
        }
        let mut strings = BTreeMap::new();
        for (key, value) in &stored_headers.0 {
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
        match publisher.send(&outgoing).await {
            Ok(confirm) => pending.push(Ok((*seq, *message_id, confirm))),
            Err(error) => {
                pending.push(Err(fail(error_chain(&error), None, false)));
                channel_error = Some(error);
            }
        }
    }
    // Await all before reporting, so no confirm is left dangling on the channel.
    let mut first_error = channel_error;
    let mut results = Vec::with_capacity(pending.len());
    for entry in pending {
        let (seq, message_id, confirm) = match entry {
            Ok(sent) => sent,
            Err(failed) => {
                results.push(failed);
                continue;
            }
        };
        match confirm.confirmed().await {
            Ok(()) => results.push(RowResult::Sent),
            Err(error) => {
                // Refused by the broker: this row's own failure. Anything else took the channel.
                let own = matches!(error, BusError::Unroutable { .. } | BusError::Nacked { .. });
                results.push(RowResult::Failed(RowFailure {
                    seq,
                    message_id,
                    text: error_chain(&error),
                    park_now: None,
                    counts: own,
                }));
                // A refused row is no reason to slow the others down; a lost channel is.
                if !own {
                    first_error.get_or_insert(error);
                }
            }
        }
    }
    (results, first_error)
}

/// Error texts kept in a row are bounded; they are a diagnosis.
fn truncate(text: &str) -> String {
    const MAX: usize = 2000;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
