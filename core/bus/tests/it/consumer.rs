//! The consumer's failure handling: poison messages end in the dead-letter queue with their
//! reason and attempt count; a transient failure is retried and then applied once.

use ferry_bus::consumer::{REASON_PERMANENT, REASON_RETRIES_EXHAUSTED, REASON_UNDECODABLE};
use ferry_bus::headers::{ATTEMPTS, ERROR, KIND, QUEUE, REASON};
use ferry_bus::{
    ConsumerMetrics, Envelope, Exchange, HandlerError, MessageHeaders, Outgoing, SchedulerMessage,
    WorkQueue,
};
use ferry_testkit::eventually;

use crate::support::{DEADLINE, Fixture, Recorder, config, fixture, header, started};

const KIND_STARTED: &str = "deployment.started.v1";

fn metrics() -> ConsumerMetrics {
    ConsumerMetrics::register(&prometheus::Registry::new()).unwrap()
}

/// Waits for one dead letter and checks it is `envelope`'s body with the given reason and attempts.
async fn dead_letter(f: &Fixture) -> lapin::message::BasicGetMessage {
    let dlq = f.topology.dead_letter_queue(WorkQueue::Scheduler);
    eventually("a dead letter", DEADLINE, || async { f.get(&dlq).await }).await
}

#[tokio::test]
async fn undecodable_message_is_dead_lettered_with_reason() {
    let f = fixture().await;
    let handler = Recorder::new(f.db.pool.clone(), |_| Ok(()));
    let metrics = metrics();
    let publisher = f.bus.publisher().await.unwrap();
    let body = b"{\"kind\": \"deployment.started.v1\", \"payload\": ".to_vec();
    publisher
        .publish_outgoing(&Outgoing::new(
            f.topology.exchange(Exchange::Work),
            "scheduler",
            "not-an-envelope",
            body.clone(),
        ))
        .await
        .unwrap();

    let (stop, consumer) = f.start_consumer(config(3), handler.clone(), metrics.clone());
    let dead = dead_letter(&f).await;
    stop.cancel();
    consumer.await.unwrap();

    assert_eq!(
        dead.delivery.data, body,
        "the dead letter keeps the original body"
    );
    assert_eq!(header(&dead, REASON).as_deref(), Some(REASON_UNDECODABLE));
    assert_eq!(header(&dead, ATTEMPTS).as_deref(), Some("1"));
    assert_eq!(
        header(&dead, QUEUE),
        Some(f.topology.work_queue(WorkQueue::Scheduler))
    );
    let error = header(&dead, ERROR).unwrap();
    assert!(error.contains("cannot decode message"), "{error}");
    assert_eq!(
        dead.delivery
            .properties
            .message_id()
            .as_ref()
            .map(std::string::ToString::to_string)
            .as_deref(),
        Some("not-an-envelope")
    );
    assert_eq!(
        handler.call_count(),
        0,
        "the handler never sees an undecodable message"
    );
    assert_eq!(
        metrics.dead_lettered("scheduler", "undecodable", REASON_UNDECODABLE),
        1
    );
    assert_eq!(
        f.depth(&f.topology.work_queue(WorkQueue::Scheduler)).await,
        0
    );
}

#[tokio::test]
async fn permanent_error_is_dead_lettered_at_once() {
    let f = fixture().await;
    let handler = Recorder::new(f.db.pool.clone(), |_| {
        Err(HandlerError::permanent("deployment 42 does not exist"))
    });
    let metrics = metrics();
    let envelope = started();
    f.bus
        .publisher()
        .await
        .unwrap()
        .publish(&envelope, &MessageHeaders::default())
        .await
        .unwrap();

    let (stop, consumer) = f.start_consumer(config(5), handler.clone(), metrics.clone());
    let dead = dead_letter(&f).await;
    stop.cancel();
    consumer.await.unwrap();

    let body = Envelope::<SchedulerMessage>::from_json(&dead.delivery.data).unwrap();
    assert_eq!(body, envelope);
    assert_eq!(header(&dead, REASON).as_deref(), Some(REASON_PERMANENT));
    assert_eq!(header(&dead, ATTEMPTS).as_deref(), Some("1"));
    assert_eq!(header(&dead, KIND).as_deref(), Some(KIND_STARTED));
    let error = header(&dead, ERROR).unwrap();
    assert!(error.contains("deployment 42 does not exist"), "{error}");
    assert_eq!(
        handler.attempts(),
        vec![1],
        "a permanent error is not retried"
    );
    assert_eq!(f.effects(envelope.id).await, 0);
    assert_eq!(
        metrics.dead_lettered("scheduler", KIND_STARTED, REASON_PERMANENT),
        1
    );
    assert_eq!(metrics.retried("scheduler", KIND_STARTED), 0);
}

#[tokio::test]
async fn retryable_forever_is_dead_lettered_after_max_attempts() {
    let f = fixture().await;
    let handler = Recorder::new(f.db.pool.clone(), |_| {
        Err(HandlerError::retryable("cluster did not answer"))
    });
    let metrics = metrics();
    let envelope = started();
    f.bus
        .publisher()
        .await
        .unwrap()
        .publish(&envelope, &MessageHeaders::default())
        .await
        .unwrap();

    let (stop, consumer) = f.start_consumer(config(3), handler.clone(), metrics.clone());
    let dead = dead_letter(&f).await;
    stop.cancel();
    consumer.await.unwrap();

    assert_eq!(
        Envelope::<SchedulerMessage>::from_json(&dead.delivery.data).unwrap(),
        envelope
    );
    assert_eq!(
        header(&dead, REASON).as_deref(),
        Some(REASON_RETRIES_EXHAUSTED)
    );
    assert_eq!(header(&dead, ATTEMPTS).as_deref(), Some("3"));
    assert!(
        header(&dead, ERROR)
            .unwrap()
            .contains("cluster did not answer")
    );
    assert_eq!(handler.attempts(), vec![1, 2, 3]);
    assert_eq!(metrics.retried("scheduler", KIND_STARTED), 2);
    assert_eq!(
        metrics.dead_lettered("scheduler", KIND_STARTED, REASON_RETRIES_EXHAUSTED),
        1
    );
    assert_eq!(
        f.depth(&f.topology.retry_queue(WorkQueue::Scheduler)).await,
        0
    );
}

/// A message that fails transiently once is retried after the delay, keeps its trace context, and
/// is applied exactly once; nothing is dead-lettered.
#[tokio::test]
async fn retry_then_success_is_processed_once() {
    let f = fixture().await;
    let handler = Recorder::new(f.db.pool.clone(), |m| {
        if m.attempt == 1 {
            Err(HandlerError::retryable("database restarting"))
        } else {
            Ok(())
        }
    });
    let metrics = metrics();
    let envelope = started();
    let trace =
        MessageHeaders::with_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    f.bus
        .publisher()
        .await
        .unwrap()
        .publish(&envelope, &trace)
        .await
        .unwrap();

    let (stop, consumer) = f.start_consumer(config(3), handler.clone(), metrics.clone());
    eventually("the effect", DEADLINE, || async {
        (f.effects(envelope.id).await == 1).then_some(())
    })
    .await;
    eventually("the ack", DEADLINE, || async {
        (metrics.handled("scheduler", KIND_STARTED) == 1).then_some(())
    })
    .await;
    stop.cancel();
    consumer.await.unwrap();

    assert_eq!(handler.attempts(), vec![1, 2]);
    let calls = handler.calls.lock().unwrap().clone();
    assert!(calls.iter().all(|c| c.envelope == envelope));
    assert!(
        calls.iter().all(|c| c.headers == trace),
        "trace context survives the retry"
    );
    assert_eq!(metrics.retried("scheduler", KIND_STARTED), 1);
    assert_eq!(f.effects(envelope.id).await, 1);
    assert_eq!(
        f.depth(&f.topology.dead_letter_queue(WorkQueue::Scheduler))
            .await,
        0
    );
    assert_eq!(
        f.depth(&f.topology.work_queue(WorkQueue::Scheduler)).await,
        0
    );
    assert_eq!(
        f.depth(&f.topology.retry_queue(WorkQueue::Scheduler)).await,
        0
    );
}

/// A consumer whose connection is lost reconnects (with backoff) and carries on.
#[tokio::test]
async fn consumer_resumes_after_connection_loss() {
    let f = fixture().await;
    let handler = Recorder::new(f.db.pool.clone(), |_| Ok(()));
    let metrics = metrics();
    let (stop, consumer) = f.start_consumer(config(3), handler.clone(), metrics.clone());

    let first = started();
    f.bus
        .publisher()
        .await
        .unwrap()
        .publish(&first, &MessageHeaders::default())
        .await
        .unwrap();
    eventually("the first message applied", DEADLINE, || async {
        (f.effects(first.id).await == 1).then_some(())
    })
    .await;

    // Kill the shared connection under the consumer.
    let connection = f.bus.connection().await.unwrap();
    connection
        .close(320, "test: connection lost".into())
        .await
        .unwrap();
    assert!(!connection.status().connected());

    // Publishing reconnects the bus; the consumer re-subscribes on its own.
    let second = started();
    f.bus
        .publisher()
        .await
        .unwrap()
        .publish(&second, &MessageHeaders::default())
        .await
        .unwrap();
    eventually("the second message applied", DEADLINE, || async {
        (f.effects(second.id).await == 1).then_some(())
    })
    .await;
    stop.cancel();
    consumer.await.unwrap();
    assert_eq!(metrics.handled("scheduler", KIND_STARTED), 2);
}

/// The broker drops the connection (as in a restart): the consumer and the outbox relay sharing
/// the bus reconnect on their own and a message committed while the connection was down is
/// delivered and applied once.
#[tokio::test]
async fn consumer_and_relay_survive_a_broker_side_disconnect() {
    let f = fixture().await;
    // A connection name unique to this test, so only its connections are dropped.
    let name = format!("{}bus", f.topology.prefix());
    let bus = ferry_bus::Bus::connect_with_backoff(
        &ferry_testkit::amqp::amqp_url(),
        &name,
        f.topology.clone(),
        ferry_bus::Backoff {
            initial: std::time::Duration::from_millis(20),
            max: std::time::Duration::from_millis(300),
        },
    )
    .await
    .unwrap();
    let handler = Recorder::new(f.db.pool.clone(), |_| Ok(()));
    let metrics = metrics();
    let stop = tokio_util::sync::CancellationToken::new();
    let consumer = {
        let (bus, handler, metrics, token) =
            (bus.clone(), handler.clone(), metrics.clone(), stop.clone());
        tokio::spawn(async move {
            ferry_bus::run_consumer(&bus, config(3), handler, metrics, token).await;
        })
    };
    let relay = ferry_bus::Relay::new(
        f.db.pool.clone(),
        bus.clone(),
        ferry_bus::RelayConfig {
            poll_interval: std::time::Duration::from_millis(50),
            ..Default::default()
        },
    );
    let relay_task = {
        let token = stop.clone();
        tokio::spawn(async move { relay.run(token).await })
    };
    let commit = |envelope: ferry_bus::Envelope<ferry_bus::SchedulerMessage>| {
        let pool = f.db.pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            ferry_bus::enqueue(&mut tx, &envelope).await.unwrap();
            tx.commit().await.unwrap();
        }
    };

    let first = started();
    commit(first.clone()).await;
    eventually("the first message applied", DEADLINE, || async {
        (f.effects(first.id).await == 1).then_some(())
    })
    .await;

    assert!(
        ferry_testkit::amqp::drop_connections(&name).await >= 1,
        "the bus connection was found and dropped"
    );
    eventually("the bus ready again", DEADLINE, || async {
        bus.readiness().await.ok()
    })
    .await;
    let second = started();
    commit(second.clone()).await;
    eventually(
        "the second message applied after the drop",
        DEADLINE,
        || async { (f.effects(second.id).await == 1).then_some(()) },
    )
    .await;
    stop.cancel();
    consumer.await.unwrap();
    relay_task.await.unwrap();
    assert_eq!(metrics.handled("scheduler", KIND_STARTED), 2);
}
