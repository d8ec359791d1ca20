//! Declaring the topology is idempotent: again on the same broker, and by many replicas at once
//! on an empty one.

use ferry_bus::{Bus, MessageHeaders, Topology, WorkQueue};
use ferry_testkit::amqp;

use crate::support::{cleanup, connect, fixture, started};

#[tokio::test]
async fn declare_twice_and_concurrently() {
    // Sequential: the fixture declared once already.
    let f = fixture().await;
    f.bus.declare().await.expect("second declare");
    f.bus.declare().await.expect("third declare");

    // Concurrent, from scratch: replicas starting together against a broker without the names.
    let fresh = Topology::new(amqp::prefix());
    let _cleanup = cleanup(&fresh);
    let mut buses: Vec<Bus> = Vec::new();
    for _ in 0..4 {
        buses.push(connect(&fresh).await);
    }
    let results = futures::future::join_all(buses.iter().map(ferry_bus::Bus::declare)).await;
    for result in results {
        result.expect("concurrent declare");
    }

    // The result is usable: work routes to the bound queue, readiness passes.
    let bus = &buses[0];
    bus.readiness().await.expect("ready");
    bus.publisher()
        .await
        .unwrap()
        .publish(&started(), &MessageHeaders::default())
        .await
        .expect("scheduler work is routable");
    let channel = bus.channel().await.unwrap();
    let queue = channel
        .queue_declare(
            fresh.work_queue(WorkQueue::Scheduler).as_str().into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(queue.message_count(), 1);
    for bus in &buses {
        bus.close().await;
    }
}

/// Readiness fails when the topology was never declared (a passive declare finds nothing).
#[tokio::test]
async fn readiness_requires_the_topology() {
    let undeclared = Topology::new(amqp::prefix());
    let bus = connect(&undeclared).await;
    assert!(bus.readiness().await.is_err());
    // The failed passive declare closed only its own channel; the connection is still good.
    bus.channel().await.expect("connection survives");
    bus.close().await;
}
