//! RabbitMQ for tests: the broker address and a unique name prefix per test.

/// The broker tests use: `FERRY_TEST_AMQP_URL`, default the local guest account.
pub fn amqp_url() -> String {
    std::env::var("FERRY_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string())
}

/// A prefix for exchange and queue names that no other test shares.
pub fn prefix() -> String {
    format!("{}.", crate::unique("t"))
}
