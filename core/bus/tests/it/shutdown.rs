//! Consumer shutdown: stop taking deliveries, finish the ones in flight, then return.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ferry_bus::inbox::first_delivery;
use ferry_bus::{
    ConsumerMetrics, Handler, HandlerError, Incoming, MessageHeaders, SchedulerMessage, WorkQueue,
};
use ferry_testkit::eventually;
use tokio::sync::Semaphore;

use crate::support::{CONSUMER, DEADLINE, config, fixture, started};

/// Blocks every message until released, then applies it.
struct Gated {
    pool: sqlx::PgPool,
    started: AtomicUsize,
    release: Semaphore,
}

impl Handler for Gated {
    type Message = SchedulerMessage;

    async fn handle(&self, message: Incoming<SchedulerMessage>) -> Result<(), HandlerError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        self.release
            .acquire()
            .await
            .map_err(HandlerError::permanent)?
            .forget();
        let mut tx = self.pool.begin().await?;
        if first_delivery(&mut tx, CONSUMER, &message.envelope).await? {
            sqlx::query("INSERT INTO effects (message_id, tenant_id) VALUES ($1, $2)")
                .bind(message.envelope.id)
                .bind(message.envelope.tenant_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[tokio::test]
async fn shutdown_drains_in_flight_and_takes_nothing_new() {
    let f = fixture().await;
    let work = f.topology.work_queue(WorkQueue::Scheduler);
    let handler = Arc::new(Gated {
        pool: f.db.pool.clone(),
        started: AtomicUsize::new(0),
        release: Semaphore::new(0),
    });
    let metrics = ConsumerMetrics::register(&prometheus::Registry::new()).unwrap();
    let publisher = f.bus.publisher().await.unwrap();

    // Prefetch 1: while the first message is in flight the broker holds the second back, so the
    // second is observably "not taken" whatever the timing of the shutdown.
    let mut settings = config(3);
    settings.prefetch = 1;
    let in_flight = started();
    publisher
        .publish(&in_flight, &MessageHeaders::default())
        .await
        .unwrap();
    let (stop, mut consumer) = f.start_consumer(settings, handler.clone(), metrics.clone());
    eventually("the handler holding the message", DEADLINE, || async {
        (handler.started.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    let later = started();
    publisher
        .publish(&later, &MessageHeaders::default())
        .await
        .unwrap();
    eventually(
        "the second message waiting in the queue",
        DEADLINE,
        || async { (f.depth(&work).await == 1).then_some(()) },
    )
    .await;

    stop.cancel();
    // Not a synchronisation sleep but the window of a negative assertion: with its handler
    // blocked, run must not return however long we wait.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut consumer)
            .await
            .is_err(),
        "run must wait for the in-flight handler"
    );

    // Releasing the handler lets the in-flight message finish and be acked before run returns;
    // the freed prefetch slot must not pull the second message in.
    handler.release.add_permits(10);
    consumer.await.unwrap();

    assert_eq!(
        f.effects(in_flight.id).await,
        1,
        "the in-flight message was applied"
    );
    assert_eq!(metrics.handled("scheduler", "deployment.started.v1"), 1);
    assert_eq!(
        handler.started.load(Ordering::SeqCst),
        1,
        "nothing new was taken"
    );
    assert_eq!(f.effects(later.id).await, 0);
    // The queue holds exactly the later message: the in-flight one was acked, not requeued.
    let left = f.get(&work).await.expect("the later message");
    assert_eq!(
        left.delivery
            .properties
            .message_id()
            .as_ref()
            .map(std::string::ToString::to_string),
        Some(later.id.to_string())
    );
    assert!(f.get(&work).await.is_none());
}
