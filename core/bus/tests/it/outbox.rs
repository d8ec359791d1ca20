//! The transactional outbox: at-least-once through a relay crash, nothing from a rollback, the
//! NOTIFY wake-up, and retention.

use std::time::Duration;

use ferry_bus::inbox::forget_processed_before;
use ferry_bus::{
    ConsumerMetrics, Envelope, Relay, RelayConfig, SchedulerMessage, WorkQueue, enqueue,
};
use ferry_testkit::eventually;
use tokio_util::sync::CancellationToken;

use crate::support::{DEADLINE, Recorder, config, fixture, started};

async fn unsent(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A committed message reaches its consumer although the first relay died after the broker
/// confirmed it but before marking it sent; the second relay publishes it again, and the
/// consumer's inbox turns the duplicate into a no-op: the effect happens exactly once.
#[tokio::test]
async fn relay_crash_republishes_and_inbox_applies_once() {
    let f = fixture().await;
    let pool = f.db.pool.clone();
    let work = f.topology.work_queue(WorkQueue::Scheduler);

    let envelope = started();
    let mut tx = pool.begin().await.unwrap();
    enqueue(&mut tx, &envelope).await.unwrap();
    tx.commit().await.unwrap();

    // The first relay publishes, the broker confirms, and the relay dies before mark_sent.
    let first = Relay::new(pool.clone(), f.bus.clone(), RelayConfig::default());
    let batch = first
        .publish_batch()
        .await
        .unwrap()
        .expect("one row to publish");
    assert_eq!(batch.message_ids(), &[envelope.id]);
    drop(batch);
    drop(first);
    assert_eq!(
        unsent(&pool).await,
        1,
        "the row must still be unsent after the crash"
    );
    eventually("the first copy in the work queue", DEADLINE, || async {
        (f.depth(&work).await == 1).then_some(())
    })
    .await;

    // The second relay (the real run loop) publishes it again and marks it sent.
    let second = Relay::new(pool.clone(), f.bus.clone(), RelayConfig::default());
    let relay_stop = CancellationToken::new();
    let relay_task = {
        let token = relay_stop.clone();
        tokio::spawn(async move { second.run(token).await })
    };
    eventually("the row marked sent", DEADLINE, || async {
        (unsent(&pool).await == 0).then_some(())
    })
    .await;
    eventually("both copies in the work queue", DEADLINE, || async {
        (f.depth(&work).await == 2).then_some(())
    })
    .await;

    let handler = Recorder::new(pool.clone(), |_| Ok(()));
    let metrics = ConsumerMetrics::register(&prometheus::Registry::new()).unwrap();
    let (stop, consumer) = f.start_consumer(config(3), handler.clone(), metrics.clone());
    eventually("both copies handled", DEADLINE, || async {
        (metrics.handled("scheduler", "deployment.started.v1") == 2).then_some(())
    })
    .await;
    stop.cancel();
    consumer.await.unwrap();
    relay_stop.cancel();
    relay_task.await.unwrap();

    let calls = handler.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "the duplicate must have been delivered");
    assert!(calls.iter().all(|c| c.envelope == envelope));
    assert_eq!(
        f.effects(envelope.id).await,
        1,
        "the effect must happen exactly once"
    );
    assert_eq!(f.depth(&work).await, 0);

    // The inbox forgets by age only.
    let now = chrono::Utc::now();
    let hour_ago = now - chrono::Duration::hours(1);
    assert_eq!(forget_processed_before(&pool, hour_ago).await.unwrap(), 0);
    let soon = now + chrono::Duration::seconds(1);
    assert_eq!(forget_processed_before(&pool, soon).await.unwrap(), 1);
}

/// A message enqueued in a rolled-back transaction is never published; a committed one next to it
/// is, alone.
#[tokio::test]
async fn rolled_back_transaction_sends_nothing() {
    let f = fixture().await;
    let pool = f.db.pool.clone();
    let work = f.topology.work_queue(WorkQueue::Scheduler);

    let phantom = started();
    let mut tx = pool.begin().await.unwrap();
    enqueue(&mut tx, &phantom).await.unwrap();
    tx.rollback().await.unwrap();

    let relay = Relay::new(pool.clone(), f.bus.clone(), RelayConfig::default());
    assert_eq!(
        relay.relay_once().await.unwrap(),
        0,
        "nothing to relay after a rollback"
    );
    assert_eq!(f.depth(&work).await, 0);

    let real = started();
    let mut tx = pool.begin().await.unwrap();
    enqueue(&mut tx, &real).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(relay.relay_once().await.unwrap(), 1);

    let message = eventually("the committed message", DEADLINE, || async {
        f.get(&work).await
    })
    .await;
    let got = Envelope::<SchedulerMessage>::from_json(&message.delivery.data).unwrap();
    assert_eq!(got, real);
    assert_eq!(
        message
            .delivery
            .properties
            .message_id()
            .as_ref()
            .map(std::string::ToString::to_string),
        Some(real.id.to_string())
    );
    assert_eq!(
        f.depth(&work).await,
        0,
        "only the committed message was published"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

/// The relay wakes on the NOTIFY of a commit, not on its poll timer (set to an hour here), and
/// deletes sent rows past retention.
#[tokio::test]
async fn relay_wakes_on_notify_and_deletes_old_rows() {
    let f = fixture().await;
    let pool = f.db.pool.clone();
    let work = f.topology.work_queue(WorkQueue::Scheduler);
    let config = RelayConfig {
        poll_interval: Duration::from_secs(3600),
        ..RelayConfig::default()
    };
    let relay = std::sync::Arc::new(Relay::new(pool.clone(), f.bus.clone(), config));
    let stop = CancellationToken::new();
    let task = {
        let relay = relay.clone();
        let token = stop.clone();
        tokio::spawn(async move { relay.run(token).await })
    };

    // Give the relay's first (empty) drain and LISTEN a head start by waiting for its LISTEN
    // connection to show up in Postgres.
    eventually("the relay listening", DEADLINE, || async {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        (listening > 0).then_some(())
    })
    .await;

    for _ in 0..3 {
        let mut tx = pool.begin().await.unwrap();
        enqueue(&mut tx, &started()).await.unwrap();
        tx.commit().await.unwrap();
    }
    eventually("three messages published on NOTIFY", DEADLINE, || async {
        (f.depth(&work).await == 3 && unsent(&pool).await == 0).then_some(())
    })
    .await;
    stop.cancel();
    task.await.unwrap();

    let now = chrono::Utc::now();
    assert_eq!(
        relay
            .delete_sent_before(now - chrono::Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        relay
            .delete_sent_before(now + chrono::Duration::seconds(1))
            .await
            .unwrap(),
        3
    );
}
