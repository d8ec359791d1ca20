//! Housekeeping that spans tenants by design (run by an operator job or a service's background
//! task, never on behalf of a tenant's request).

use crate::Store;
use crate::error::Result;

/// Deletes consumers' processed-message records older than `days` days; returns how many.
///
/// They only exist to drop redeliveries, which arrive within minutes; keeping them for days
/// covers a broker outage with margin.
pub async fn purge_processed_messages(store: &Store, days: u32) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM processed_messages WHERE processed_at < now() - make_interval(days => $1)",
    )
    .bind(i32::try_from(days).unwrap_or(i32::MAX))
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected())
}
