//! Publisher confirms: an unroutable mandatory message is an error, not a silent drop.

use ferry_bus::messages::{DeploymentEvent, Status};
use ferry_bus::{BusError, Envelope, Exchange, MessageHeaders, Outgoing, WorkQueue};
use uuid::Uuid;

use crate::support::{fixture, started};

#[tokio::test]
async fn unroutable_work_is_an_error() {
    let f = fixture().await;
    let publisher = f.bus.publisher().await.unwrap();

    let error = publisher
        .publish_outgoing(&Outgoing::new(
            f.topology.exchange(Exchange::Work),
            "no-such-service",
            "m-1",
            b"{}".to_vec(),
        ))
        .await
        .unwrap_err();
    match error {
        BusError::Unroutable {
            reply_code,
            routing_key,
            message_id,
            ..
        } => {
            assert_eq!(reply_code, 312);
            assert_eq!(routing_key, "no-such-service");
            assert_eq!(message_id, "m-1");
        }
        other => panic!("expected Unroutable, got {other:?}"),
    }

    // The channel survives a returned message: a routable publish on it still works.
    let envelope = started();
    publisher
        .publish(&envelope, &MessageHeaders::default())
        .await
        .unwrap();
    assert_eq!(
        f.depth(&f.topology.work_queue(WorkQueue::Scheduler)).await,
        1
    );

    // Events are not mandatory: nobody listening is fine.
    let event = Envelope::new(
        Uuid::new_v4(),
        DeploymentEvent::DeploymentStatus {
            deployment_id: Uuid::new_v4(),
            status: Status::Running,
            reason: None,
        },
    );
    publisher
        .publish(&event, &MessageHeaders::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn missing_exchange_is_an_error_and_closes_the_publisher() {
    let f = fixture().await;
    let publisher = f.bus.publisher().await.unwrap();
    let error = publisher
        .publish_outgoing(&Outgoing::new(
            format!("{}ferry.nope", f.topology.prefix()),
            "scheduler",
            "m-2",
            b"{}".to_vec(),
        ))
        .await
        .unwrap_err();
    assert!(matches!(error, BusError::Amqp(_)), "{error:?}");
    assert!(!publisher.is_open());
    // The bus hands out a fresh one.
    assert!(f.bus.publisher().await.unwrap().is_open());
}
