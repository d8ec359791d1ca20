//! ferry-runtime: what every Ferry process (the agent included) shares at run time — settings
//! common to all (admin address, logging, shutdown grace), tracing set-up, the admin server
//! (`/healthz`, `/readyz`, `/metrics`) and its readiness checks,
//! the metrics every service shares (HTTP and gRPC requests, the metric catalog checked against
//! `docs/metrics.md`), and the SIGTERM/SIGINT → [`CancellationToken`](tokio_util::sync::CancellationToken) bridge. Postgres, RabbitMQ and Redis are
//! `ferry-backends`' business.

pub mod admin;
pub mod checks;
pub mod errors;
pub mod lifecycle;
pub mod metrics;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod trace;

pub use admin::{Admin, Health, ReadinessCheck, ScrapeHook};
pub use errors::error_chain;
pub use settings::{CommonArgs, LogFormat};
