//! The life of a service process: serve the admin port while the service's work runs; on shutdown
//! mark the process not-ready first, give the work a bounded time to drain, then stop the admin
//! server last so `/healthz` answers until the very end.

use crate::admin::{self, Admin, Health};
use prometheus::Registry;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Runs `work` next to the admin server until `work` ends or `shutdown` fires, then drains.
///
/// `work` must itself watch `shutdown` and return once it has finished its in-flight work; if it
/// takes longer than `grace`, it is abandoned and an error is returned.
pub async fn run<W>(
    service: &'static str,
    admin_listener: TcpListener,
    health: Health,
    registry: Registry,
    shutdown: CancellationToken,
    grace: Duration,
    work: W,
) -> anyhow::Result<()>
where
    W: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let admin = Admin::new(health, registry);
    run_admin(service, admin_listener, admin, shutdown, grace, work).await
}

/// [`run`] with an admin server that has scrape hooks (see [`Admin`]).
pub async fn run_admin<W>(
    service: &'static str,
    admin_listener: TcpListener,
    admin: Admin,
    shutdown: CancellationToken,
    grace: Duration,
    work: W,
) -> anyhow::Result<()>
where
    W: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let health = admin.health.clone();
    let admin_stop = CancellationToken::new();
    let admin_task = tokio::spawn(admin::serve_admin(
        admin_listener,
        admin,
        admin_stop.clone(),
    ));
    let mut work = tokio::spawn(work);
    tracing::info!(service, "started");

    let result = tokio::select! {
        finished = &mut work => {
            // The work ended by itself: an error (a lost dependency it cannot recover from) or a
            // shutdown it saw first.
            health.set_draining();
            flatten(finished)
        }
        _ = shutdown.cancelled() => {
            health.set_draining();
            tracing::info!(service, grace_secs = grace.as_secs(), "draining");
            match tokio::time::timeout(grace, &mut work).await {
                Ok(finished) => flatten(finished),
                Err(_) => {
                    work.abort();
                    Err(anyhow::anyhow!("{service} did not drain within {}s", grace.as_secs()))
                }
            }
        }
    };
    admin_stop.cancel();
    if let Ok(Err(e)) = admin_task.await {
        tracing::warn!(error = %e, "admin server ended with an error");
    }
    match &result {
        Ok(()) => tracing::info!(service, "stopped"),
        Err(e) => tracing::error!(service, error = format!("{e:#}"), "stopped with an error"),
    }
    result
}

fn flatten(joined: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    match joined {
        Ok(result) => result,
        Err(e) => Err(anyhow::anyhow!("service task failed: {e}")),
    }
}
