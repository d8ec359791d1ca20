//! ferry-testkit: helpers shared by integration tests: a fresh Postgres database per test,
//! unique RabbitMQ and Redis prefixes, `eventually` for waiting on a condition with a deadline, and
//! running a service binary as a child process (readiness, SIGTERM, exit status).

pub mod amqp;
pub mod eventually;
pub mod pg;
pub mod process;

pub use eventually::eventually;
pub use pg::TestDb;

/// A short unique token for naming per-test resources (databases, queues, keys).
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..12])
}
