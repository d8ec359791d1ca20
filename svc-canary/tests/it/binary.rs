//! svc-canary as an operator runs it: the real binary against real Postgres and RabbitMQ.

use ferry_bus::topology::Topology;
use ferry_testkit::{TestDb, amqp, process};

const BIN: &str = env!("CARGO_BIN_EXE_ferry-svc-canary");

#[tokio::test]
async fn starts_reports_ready_and_drains_on_sigterm() {
    let db = TestDb::new().await;
    let topology = Topology::new(amqp::prefix());
    let _cleanup = amqp::Cleanup::new(topology.queue_names(), topology.exchange_names());
    let env = [
        ("FERRY_DATABASE_URL", db.url.as_str()),
        ("FERRY_AMQP_URL", &amqp::amqp_url()),
        ("FERRY_BUS_PREFIX", topology.prefix()),
        ("FERRY_DEV", "true"),
    ];
    process::assert_starts_and_drains(BIN, &env).await;
}

#[tokio::test]
async fn unreachable_database_fails_naming_the_setting_without_the_password() {
    process::assert_unreachable_database_fails(BIN).await;
}

/// The real binary's `/metrics` carries every unlabelled metric of the sections svc-canary
/// exports (labelled ones appear with their first observation): the process, and the outbox
/// relay's counters, gauges and lag histogram.
#[tokio::test]
async fn the_binary_exports_its_documented_metrics() {
    let db = TestDb::new().await;
    let topology = Topology::new(amqp::prefix());
    let _cleanup = amqp::Cleanup::new(topology.queue_names(), topology.exchange_names());
    let env = [
        ("FERRY_DATABASE_URL", db.url.as_str()),
        ("FERRY_AMQP_URL", &amqp::amqp_url()),
        ("FERRY_BUS_PREFIX", topology.prefix()),
        ("FERRY_DEV", "true"),
    ];
    let mut svc = process::ServiceProcess::spawn(BIN, &env);
    svc.wait_ready(std::time::Duration::from_secs(30)).await;
    let (status, text) = process::http_get(svc.admin, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    let doc = std::fs::read_to_string(ferry_runtime::metrics::document_path(
        env!("CARGO_MANIFEST_DIR"),
        1,
    ))
    .unwrap();
    let mut expected = Vec::new();
    for section in ["ferry-bus", "svc-canary"] {
        let metrics = ferry_runtime::metrics::catalog::parse_section(&doc, section).unwrap();
        expected.extend(metrics.into_iter().filter(|m| m.labels.is_empty()));
    }
    assert!(expected.len() >= 5, "{expected:?}");
    expected.push(ferry_runtime::metrics::Documented {
        name: "process_resident_memory_bytes".into(),
        kind: ferry_runtime::metrics::MetricKind::Gauge,
        labels: Vec::new(),
        help: String::new(),
    });
    for metric in expected {
        let series = metric.kind.series(&metric.name).pop().unwrap();
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{series} "))),
            "{series} missing from svc-canary's /metrics:\n{text}"
        );
    }
    let exited = svc.terminate(std::time::Duration::from_secs(30)).await;
    assert!(exited.status.success(), "{}", exited.stderr);
}
