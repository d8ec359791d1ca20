//! ferry-store: Ferry's Postgres schema (sqlx migrations under `migrations/`) and the one database
//! gateway every service goes through.
//!
//! Tenancy is enforced here (DESIGN principle 6): every repository function takes the
//! [`TenantId`] the caller took from a verified token, and every statement filters by it, so a
//! row of another tenant is indistinguishable from a missing one ([`StoreError::NotFound`]).
//! Tenant-scoped tables key on `(tenant_id, id)` and their foreign keys include the tenant, so
//! the schema itself cannot link rows of two tenants.
//!
//! Functions that change state take `&mut sqlx::PgConnection` so the caller composes them with
//! its outbox rows and audit entry in one transaction (`&mut *tx`); plain reads take `&Store`.
//! The few functions that deliberately span tenants (claiming due timers for any tenant, purging
//! old inbox rows, creating organizations and tenants) say so in their names and docs.

pub mod agents;
pub mod analysis;
pub mod approvals;
pub mod audit;
pub mod callbacks;
pub mod credentials;
pub mod deployments;
pub mod error;
pub mod events;
pub mod ids;
pub mod maintenance;
pub mod metric_providers;
pub mod notifications;
pub mod page;
pub mod revocations;
pub mod roles;
pub mod secrets;
pub mod sign_in;
pub mod targets;
pub mod tenants;
mod text_enum;
pub mod timers;
pub mod users;
pub mod webhooks;

pub use error::{Result, StoreError, UnknownValue};
pub use ids::{DeploymentId, TenantId};
pub use page::{Cursor, Page};

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

/// The schema's migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The database gateway: a connection pool over a migrated schema. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects to `url` with a pool of at most `max_connections` and brings the schema up to
    /// date (migrations take an advisory lock, so replicas starting together do not race).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool })
    }

    /// Wraps a pool whose database is already migrated (tests, or a pool shared with the bus).
    pub fn from_pool(pool: PgPool) -> Store {
        Store { pool }
    }

    /// The underlying pool, for callers that open their own transactions.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Starts a transaction; pass `&mut *tx` to the repository functions and commit it.
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }
}
