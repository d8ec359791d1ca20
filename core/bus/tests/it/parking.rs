//! The outbox cannot be blocked by one row: rows that can never be published (too large, an
//! unknown exchange) are parked at once, a row the broker keeps refusing is parked after its
//! attempts, each with its reason and counted in metrics, and the rows around them flow.

use std::time::Duration;

use ferry_bus::outbox::{PARKED_FAILING, PARKED_OVERSIZED, PARKED_UNKNOWN_EXCHANGE};
use ferry_bus::{Relay, RelayConfig, RelayMetrics, WorkQueue, enqueue};
use ferry_testkit::eventually;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::support::{DEADLINE, Fixture, fixture, started};

/// Writes a raw outbox row (what a buggy or older writer could leave) and returns its id.
async fn raw_row(f: &Fixture, exchange: &str, routing_key: &str, payload: Vec<u8>) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO outbox (message_id, tenant_id, exchange, routing_key, payload)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(Uuid::new_v4())
    .bind(exchange)
    .bind(routing_key)
    .bind(payload)
    .execute(&f.db.pool)
    .await
    .unwrap();
    id
}

async fn enqueue_started(f: &Fixture) -> Uuid {
    let envelope = started();
    let mut tx = f.db.pool.begin().await.unwrap();
    enqueue(&mut tx, &envelope).await.unwrap();
    tx.commit().await.unwrap();
    envelope.id
}

async fn sent(f: &Fixture, id: Uuid) -> bool {
    sqlx::query_scalar("SELECT sent_at IS NOT NULL FROM outbox WHERE message_id = $1")
        .bind(id)
        .fetch_one(&f.db.pool)
        .await
        .unwrap()
}

fn start(relay: Relay) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let token = stop.clone();
    (stop, tokio::spawn(async move { relay.run(token).await }))
}

#[tokio::test]
async fn rows_that_can_never_be_published_are_parked_and_the_others_flow() {
    let f = fixture().await;
    let metrics = RelayMetrics::register(&prometheus::Registry::new()).unwrap();
    let config = RelayConfig {
        max_payload_bytes: 4096,
        poll_interval: Duration::from_millis(50),
        ..RelayConfig::default()
    };
    // In seq order: good, too large, good, unknown exchange, good.
    let first = enqueue_started(&f).await;
    let oversized = raw_row(&f, "ferry.work", "scheduler", vec![b'x'; 10_000]).await;
    let second = enqueue_started(&f).await;
    let unknown = raw_row(&f, "ferry.nowhere", "scheduler", b"{}".to_vec()).await;
    let third = enqueue_started(&f).await;

    let relay = Relay::new(f.db.pool.clone(), f.bus.clone(), config).with_metrics(metrics.clone());
    let parked_view = Relay::new(f.db.pool.clone(), f.bus.clone(), RelayConfig::default());
    let (stop, task) = start(relay);
    let work = f.topology.work_queue(WorkQueue::Scheduler);
    eventually("the three good rows published", DEADLINE, || async {
        (f.depth(&work).await == 3).then_some(())
    })
    .await;
    // The broker confirms a publish before the relay's UPDATE commits: wait for the marks.
    eventually("the three good rows marked sent", DEADLINE, || async {
        for id in [first, second, third] {
            if !sent(&f, id).await {
                return None;
            }
        }
        Some(())
    })
    .await;
    let parked = eventually("both bad rows parked", DEADLINE, || async {
        let parked = parked_view.parked().await.unwrap();
        (parked.len() == 2).then_some(parked)
    })
    .await;
    stop.cancel();
    task.await.unwrap();

    let reason = |id: Uuid| {
        parked
            .iter()
            .find(|(m, _)| *m == id)
            .map(|(_, r)| r.clone())
            .unwrap()
    };
    let too_large = reason(oversized);
    assert!(
        too_large.starts_with(PARKED_OVERSIZED) && too_large.contains("10000 bytes"),
        "{too_large}"
    );
    let unknown_reason = reason(unknown);
    assert!(
        unknown_reason.starts_with(PARKED_UNKNOWN_EXCHANGE)
            && unknown_reason.contains("ferry.nowhere"),
        "{unknown_reason}"
    );
    assert!(!sent(&f, oversized).await && !sent(&f, unknown).await);
    assert_eq!(metrics.parked(PARKED_OVERSIZED), 1);
    assert_eq!(metrics.parked(PARKED_UNKNOWN_EXCHANGE), 1);
    assert_eq!(
        f.depth(&work).await,
        3,
        "nothing but the good rows reached the queue"
    );
}

#[tokio::test]
async fn a_row_the_broker_keeps_refusing_is_parked_after_its_attempts() {
    let f = fixture().await;
    let metrics = RelayMetrics::register(&prometheus::Registry::new()).unwrap();
    let config = RelayConfig {
        max_attempts: 3,
        poll_interval: Duration::from_millis(20),
        ..RelayConfig::default()
    };
    // Mandatory on the work exchange with a routing key no queue is bound to: returned each time.
    let refused = raw_row(&f, "ferry.work", "no-such-service", b"{}".to_vec()).await;
    let behind = enqueue_started(&f).await;

    let relay = Relay::new(f.db.pool.clone(), f.bus.clone(), config).with_metrics(metrics.clone());
    let parked_view = Relay::new(f.db.pool.clone(), f.bus.clone(), RelayConfig::default());
    let (stop, task) = start(relay);
    let work = f.topology.work_queue(WorkQueue::Scheduler);
    eventually(
        "the row behind the refused one published",
        DEADLINE,
        || async { (f.depth(&work).await == 1).then_some(()) },
    )
    .await;
    eventually("the row behind marked sent", DEADLINE, || async {
        sent(&f, behind).await.then_some(())
    })
    .await;
    let parked = eventually("the refused row parked", DEADLINE, || async {
        let parked = parked_view.parked().await.unwrap();
        (!parked.is_empty()).then_some(parked)
    })
    .await;
    stop.cancel();
    task.await.unwrap();

    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].0, refused);
    assert!(
        parked[0].1.starts_with(PARKED_FAILING) && parked[0].1.contains("unroutable"),
        "{}",
        parked[0].1
    );
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM outbox WHERE message_id = $1")
        .bind(refused)
        .fetch_one(&f.db.pool)
        .await
        .unwrap();
    assert_eq!(
        attempts, 3,
        "parked at the third failed attempt, not tried again"
    );
    assert_eq!(metrics.parked(PARKED_FAILING), 1);
    assert_eq!(metrics.failed(), 3, "every failed attempt is counted");
    assert!(!sent(&f, refused).await);
}
