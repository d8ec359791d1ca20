//! A fresh, migrated Postgres database per test, so tests run in parallel without sharing rows.
//!
//! The server is `FERRY_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! each test gets `ferry_test_<random>`, dropped when the `TestDb` is dropped (best effort;
//! `scripts/test.sh` also removes leftovers of killed runs).

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use std::str::FromStr;

/// The admin connection string tests create their databases through.
pub fn admin_url() -> String {
    std::env::var("FERRY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A migrated database that lives as long as this value.
pub struct TestDb {
    pub pool: PgPool,
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// Creates a new database and runs every migration in it.
    pub async fn new() -> TestDb {
        let admin = admin_url();
        let name = crate::unique("ferry_test");
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("connect to Postgres (is it running? see scripts/deps.sh)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.ok();
        let opts = PgConnectOptions::from_str(&admin)
            .expect("parse FERRY_TEST_DATABASE_URL")
            .database(&name);
        let url = opts.to_url_lossy().to_string();
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .expect("connect to test database");
        ferry_store::MIGRATOR.run(&pool).await.expect("run migrations");
        TestDb { pool, name, url }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = admin_url();
        // Drop on a separate thread with its own runtime: Drop cannot await, and the test's
        // runtime may already be shutting down.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(rt) = rt {
                rt.block_on(async move {
                    if let Ok(mut conn) = PgConnection::connect(&admin).await {
                        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                    }
                });
            }
        })
        .join();
    }
}
