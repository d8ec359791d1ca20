//! The consumer's and the relay's metrics, read back the way Prometheus reads them (the text
//! exposition of the registry): published rows, publish lag and backlog, handle durations,
//! delivery lag and broker redeliveries.

use ferry_bus::{ConsumerMetrics, Relay, RelayConfig, RelayMetrics, WorkQueue, enqueue};
use ferry_testkit::eventually;
use lapin::options::BasicGetOptions;
use prometheus::{Encoder, Registry, TextEncoder};

use crate::support::{DEADLINE, Recorder, config, fixture, started};

fn scrape(registry: &Registry) -> String {
    let mut body = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut body)
        .unwrap();
    String::from_utf8(body).unwrap()
}

/// The value of the series `series` (name and labels exactly as exposed).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn relay_and_consumer_metrics_show_backlog_lag_and_redelivery() {
    let f = fixture().await;
    let pool = f.db.pool.clone();
    let registry = Registry::new();
    let relay_metrics = RelayMetrics::register(&registry).unwrap();
    let consumer_metrics = ConsumerMetrics::register(&registry).unwrap();
    let relay = Relay::new(pool.clone(), f.bus.clone(), RelayConfig::default())
        .with_metrics(relay_metrics.clone());

    let mut tx = pool.begin().await.unwrap();
    for _ in 0..3 {
        enqueue(&mut tx, &started()).await.unwrap();
    }
    tx.commit().await.unwrap();
    relay.refresh_backlog().await.unwrap();
    let (pending, oldest, parked) = relay_metrics.backlog();
    assert_eq!((pending, parked), (3, 0));
    assert!((0.0..60.0).contains(&oldest), "oldest pending age {oldest}");

    assert_eq!(relay.relay_once().await.unwrap(), 3);
    relay.refresh_backlog().await.unwrap();
    assert_eq!(relay_metrics.backlog(), (0, 0.0, 0));

    // One delivery taken and never acked: the broker hands it out again, flagged redelivered.
    let work = f.topology.work_queue(WorkQueue::Scheduler);
    let channel = f.bus.channel().await.unwrap();
    let taken = channel
        .basic_get(work.as_str().into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap();
    assert!(taken.is_some());
    channel
        .close(200, "leaving it unacked".into())
        .await
        .unwrap();

    let handler = Recorder::new(pool.clone(), |_| Ok(()));
    let (stop, consumer) = f.start_consumer(config(3), handler, consumer_metrics.clone());
    let kind = "deployment.started.v1";
    eventually("three messages handled", DEADLINE, || async {
        (consumer_metrics.handled("scheduler", kind) == 3).then_some(())
    })
    .await;
    stop.cancel();
    consumer.await.unwrap();

    let text = scrape(&registry);
    assert_eq!(value(&text, "ferry_outbox_published_total"), 3.0);
    assert_eq!(value(&text, "ferry_outbox_publish_lag_seconds_count"), 3.0);
    assert_eq!(value(&text, "ferry_outbox_pending_rows"), 0.0);
    assert_eq!(
        value(
            &text,
            r#"ferry_bus_messages_redelivered_total{queue="scheduler"}"#
        ),
        1.0
    );
    let handled = format!(r#"{{kind="{kind}",queue="scheduler"}}"#);
    assert_eq!(
        value(
            &text,
            &format!("ferry_bus_handle_duration_seconds_count{handled}")
        ),
        3.0
    );
    let seconds = value(
        &text,
        &format!("ferry_bus_handle_duration_seconds_sum{handled}"),
    );
    assert!((0.0..30.0).contains(&seconds), "handle seconds {seconds}");
    // The redelivered message is not a measure of the pipeline's lag.
    assert_eq!(
        value(
            &text,
            r#"ferry_bus_delivery_lag_seconds_count{queue="scheduler"}"#
        ),
        2.0
    );
}

/// The consumer's and the relay's metrics are the ones docs/metrics.md lists under ferry-bus.
#[test]
fn bus_metrics_are_documented() {
    let mut collectors = ConsumerMetrics::default().collectors();
    collectors.extend(RelayMetrics::default().collectors());
    let path = ferry_runtime::metrics::document_path(env!("CARGO_MANIFEST_DIR"), 2);
    if let Err(e) = ferry_runtime::metrics::check_documented(&path, "ferry-bus", &collectors) {
        panic!("{e}");
    }
}
