//! svc-scheduler's integration tests: the binary as an operator runs it, and the engine in
//! process against real Postgres and RabbitMQ with Kubernetes API simulators as its clusters.

mod adoption;
mod analysis;
mod autoscalers;
mod bluegreen;
mod canary;
mod direct;
mod duplicates;
mod durability;
mod failures;
mod flows;
mod gates;
mod gateway;
mod queue;
mod readiness;
mod restart;
mod restore;
mod stale;
mod stored_state;
mod support;
mod templates;
mod traffic;
mod webhooks;
mod worker;

use ferry_bus::topology::Topology;
use ferry_testkit::{TestDb, amqp, process};

const BIN: &str = env!("CARGO_BIN_EXE_ferry-svc-scheduler");

#[tokio::test]
async fn starts_reports_ready_and_drains_on_sigterm() {
    let db = TestDb::new().await;
    let topology = Topology::new(amqp::prefix());
    let _cleanup = amqp::Cleanup::new(topology.queue_names(), topology.exchange_names());
    let env = [
        ("FERRY_DATABASE_URL", db.url.as_str()),
        ("FERRY_AMQP_URL", &amqp::amqp_url()),
        ("FERRY_BUS_PREFIX", topology.prefix()),
    ];
    process::assert_starts_and_drains(BIN, &env).await;
}

#[tokio::test]
async fn unreachable_database_fails_naming_the_setting_without_the_password() {
    process::assert_unreachable_database_fails(BIN).await;
}
