//! The consumer-side inbox: which message ids a consumer already applied.
//!
//! A handler calls [`first_delivery`] inside the same transaction as its effect. If the message
//! was applied before (a redelivery after a lost ack, or an outbox relay that published twice),
//! the call returns `false` and the handler commits nothing else and returns `Ok`, so the
//! duplicate is acknowledged and dropped. Because the marker commits with the effect, a crash
//! before commit leaves neither, and the redelivery applies both.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::envelope::Envelope;
use crate::error::BusError;

/// Records that `consumer` (a stable name such as `scheduler`) is applying `envelope`, and tells
/// whether this is the first time. Run it inside the handler's transaction, before its effect.
///
/// A concurrent delivery of the same message in another transaction blocks on the primary key
/// until that transaction ends, then sees `false` if it committed: two replicas never both apply.
pub async fn first_delivery<T>(
    conn: &mut PgConnection,
    consumer: &str,
    envelope: &Envelope<T>,
) -> Result<bool, BusError> {
    let inserted = sqlx::query(
        "INSERT INTO processed_messages (consumer, message_id, tenant_id)
         VALUES ($1, $2, $3)
         ON CONFLICT (consumer, message_id) DO NOTHING",
    )
    .bind(consumer)
    .bind(envelope.id)
    .bind(envelope.tenant_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Forgets inbox entries processed before `cutoff`, returning how many. Keep them longer than
/// any message can be redelivered or republished (the outbox retention plus retry delays).
pub async fn forget_processed_before(
    pool: &PgPool,
    cutoff: DateTime<Utc>,
) -> Result<u64, BusError> {
    Ok(
        sqlx::query("DELETE FROM processed_messages WHERE processed_at < $1")
            .bind(cutoff)
            .execute(pool)
            .await?
            .rows_affected(),
    )
}
