//! svc-webhook as an operator runs it: the real binary against real Postgres and RabbitMQ.

use ferry_bus::topology::Topology;
use ferry_testkit::process::ServiceProcess;
use ferry_testkit::{TestDb, amqp};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ferry-svc-webhook");

#[tokio::test]
async fn starts_reports_ready_and_drains_on_sigterm() {
    let db = TestDb::new().await;
    let prefix = amqp::prefix();
    let mut svc = ServiceProcess::spawn(
        BIN,
        &[
            ("FERRY_DATABASE_URL", db.url.as_str()),
            ("FERRY_AMQP_URL", &amqp::amqp_url()),
            ("FERRY_BUS_PREFIX", &prefix),
        ],
    );
    let ready = svc.wait_ready(Duration::from_secs(30)).await;
    assert!(ready.contains(r#""postgres":"ok""#), "{ready}");
    assert!(ready.contains(r#""rabbitmq":"ok""#), "{ready}");
    let (status, metrics) = ferry_testkit::process::http_get(svc.admin, "/metrics")
        .await
        .expect("metrics answer");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("process_resident_memory_bytes"),
        "{metrics}"
    );

    let exited = svc.terminate(Duration::from_secs(30)).await;
    assert!(
        exited.status.success(),
        "exit {}: {}",
        exited.status,
        exited.stderr
    );
    assert!(exited.stderr.contains("draining"), "{}", exited.stderr);
    assert!(exited.stderr.contains("stopped"), "{}", exited.stderr);

    let bus = lapin::Connection::connect(&amqp::amqp_url(), Default::default())
        .await
        .expect("connect to RabbitMQ");
    let channel = bus.create_channel().await.expect("channel");
    Topology::new(prefix)
        .delete(&channel)
        .await
        .expect("delete test topology");
}

#[tokio::test]
async fn unreachable_database_fails_fast_naming_the_setting_without_the_password() {
    let svc = ServiceProcess::spawn(
        BIN,
        &[
            (
                "FERRY_DATABASE_URL",
                "postgres://ferry:hunter2@127.0.0.1:1/ferry?connect_timeout=2",
            ),
            ("FERRY_AMQP_URL", &amqp::amqp_url()),
        ],
    );
    let exited = svc.wait(Duration::from_secs(30)).await;
    assert!(!exited.status.success());
    assert!(
        exited.stderr.contains("FERRY_DATABASE_URL"),
        "{}",
        exited.stderr
    );
    assert!(!exited.stderr.contains("hunter2"), "{}", exited.stderr);
}
