//! ferry-store: Ferry's Postgres schema (sqlx migrations under `migrations/`) and the repository
//! functions services use. Every row carries `tenant_id` and every query takes it.

/// The schema's migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
