//! Deployment gauges read from Postgres when `/metrics` is scraped: deployments in flight by
//! status, their targets by status and phase, and approvals waiting with the oldest one's age.
//!
//! These describe state every replica sees the same way, so each svc-api replica exports the
//! same values (aggregate with `max`, not `sum`). The cost of a scrape is bounded: results are
//! reused for [`MIN_REFRESH`], concurrent scrapes share one refresh, every query walks a partial
//! index (`deployments_one_active`, `approvals_pending`) over in-flight rows only, runs under a
//! statement timeout (2 s), and the (status, phase) pairs are capped at [`MAX_TARGET_SERIES`].

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use prometheus::core::Collector;
use prometheus::{Gauge, IntCounter, IntGauge, IntGaugeVec, Opts, Registry};
use sqlx::PgPool;
use tokio::sync::Mutex;

/// Scrapes closer together than this reuse the last values.
pub const MIN_REFRESH: Duration = Duration::from_secs(5);

/// At most this many (status, phase) series of targets; phases are the scheduler's vocabulary,
/// the cap guards against a future one that is not.
pub const MAX_TARGET_SERIES: i64 = 64;

/// The deployment statuses counted as in flight (the partial index covers exactly these).
const ACTIVE: &[&str] = &["running", "paused"];

/// The gauges and what refreshes them.
#[derive(Debug)]
pub struct DeploymentGauges {
    pool: PgPool,
    deployments: IntGaugeVec,
    targets: IntGaugeVec,
    approvals: IntGauge,
    oldest_approval: Gauge,
    failures: IntCounter,
    last: Mutex<Option<Instant>>,
}

impl DeploymentGauges {
    /// The gauges over `pool`'s database, registered nowhere.
    pub fn new(pool: PgPool) -> DeploymentGauges {
        DeploymentGauges {
            pool,
            deployments: IntGaugeVec::new(
                Opts::new(
                    "ferry_deployments_active",
                    "Deployments in flight (running or paused), by status, read from Postgres at scrape time",
                ),
                &["status"],
            )
            .expect("valid metric"),
            targets: IntGaugeVec::new(
                Opts::new(
                    "ferry_deployment_targets_active",
                    "Targets of deployments in flight, by target status and phase (none when unset, other when not a plain word), read from Postgres at scrape time",
                ),
                &["status", "phase"],
            )
            .expect("valid metric"),
            approvals: IntGauge::new(
                "ferry_approvals_pending",
                "Approvals waiting for a decision, read from Postgres at scrape time",
            )
            .expect("valid metric"),
            oldest_approval: Gauge::new(
                "ferry_approvals_oldest_pending_age_seconds",
                "How long the oldest approval waiting for a decision has waited (0 when none), read from Postgres at scrape time",
            )
            .expect("valid metric"),
            failures: IntCounter::new(
                "ferry_api_gauge_refresh_failures_total",
                "Scrape-time reads of the deployment gauges that failed (the gauges keep their last values)",
            )
            .expect("valid metric"),
            last: Mutex::new(None),
        }
    }

    /// The gauges over `pool`'s database, registered in `registry`.
    pub fn register(pool: PgPool, registry: &Registry) -> prometheus::Result<DeploymentGauges> {
        let gauges = DeploymentGauges::new(pool);
        ferry_runtime::metrics::register_all(registry, gauges.collectors())?;
        Ok(gauges)
    }

    /// Every collector, for registering and for the catalog.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.deployments.clone()),
            Box::new(self.targets.clone()),
            Box::new(self.approvals.clone()),
            Box::new(self.oldest_approval.clone()),
            Box::new(self.failures.clone()),
        ]
    }

    /// Reads the gauges unless they were read less than [`MIN_REFRESH`] ago.
    pub async fn refresh(&self) {
        let mut last = self.last.lock().await;
        if last.is_some_and(|at| at.elapsed() < MIN_REFRESH) {
            return;
        }
        match self.read().await {
            Ok(()) => *last = Some(Instant::now()),
            Err(error) => {
                self.failures.inc();
                tracing::warn!(error = %error, "reading the deployment gauges");
            }
        }
    }

    async fn read(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION READ ONLY")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SET LOCAL statement_timeout = '2s'")
            .execute(&mut *tx)
            .await?;
        let deployments: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, count(*) FROM deployments
             WHERE status IN ('running', 'paused') GROUP BY status",
        )
        .fetch_all(&mut *tx)
        .await?;
        let targets: Vec<(String, Option<String>, i64)> = sqlx::query_as(
            "SELECT t.status, t.phase, count(*) FROM deployments d
             JOIN targets t ON t.tenant_id = d.tenant_id AND t.deployment_id = d.id
             WHERE d.status IN ('running', 'paused')
             GROUP BY t.status, t.phase ORDER BY count(*) DESC LIMIT $1",
        )
        .bind(MAX_TARGET_SERIES)
        .fetch_all(&mut *tx)
        .await?;
        let (approvals, oldest): (i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*), extract(epoch FROM now() - min(created_at))::float8
             FROM approvals WHERE decision IS NULL",
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;

        for status in ACTIVE {
            let count = deployments
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n);
            self.deployments.with_label_values(&[status]).set(count);
        }
        // Pairs that disappeared must not linger with their last value.
        self.targets.reset();
        for (status, phase, count) in targets {
            let phase = phase_label(phase.as_deref());
            self.targets
                .with_label_values(&[status_label(&status), phase])
                .add(count);
        }
        self.approvals.set(approvals);
        self.oldest_approval.set(oldest.unwrap_or(0.0).max(0.0));
        Ok(())
    }
}

impl ferry_runtime::ScrapeHook for DeploymentGauges {
    fn refresh(&self) -> BoxFuture<'_, ()> {
        Box::pin(DeploymentGauges::refresh(self))
    }
}

/// A target status as a label: the table's check constraint bounds it; anything else is `other`.
fn status_label(status: &str) -> &str {
    match status {
        "pending" | "running" | "paused" | "rolling_back" | "succeeded" | "failed"
        | "rolled_back" | "aborted" | "skipped" => status,
        _ => "other",
    }
}

/// A phase as a label: `none` when unset, the phase when it is a plain word, else `other`.
fn phase_label(phase: Option<&str>) -> &str {
    match phase {
        None | Some("") => "none",
        Some(phase)
            if phase.len() <= 40
                && phase.starts_with(|c: char| c.is_ascii_lowercase())
                && phase
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') =>
        {
            phase
        }
        Some(_) => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(phase_label(None), "none");
        assert_eq!(phase_label(Some("before_deployment")), "before_deployment");
        assert_eq!(phase_label(Some("Weird Phase")), "other");
        assert_eq!(phase_label(Some(&"a".repeat(41))), "other");
        assert_eq!(status_label("rolling_back"), "rolling_back");
        assert_eq!(status_label("nonsense"), "other");
    }
}
