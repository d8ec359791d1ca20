//! A slow or failing Kubernetes API: deadlines stop the work, the concurrency bound holds,
//! and errors reach the caller without costing the stream.

use crate::support::{self, WAIT, World};
use ferry_kube_sim::Faults;
use ferry_proto::agent::ErrorCode;
use ferry_tunnel::{Deadline, TunnelError};
use std::time::{Duration, Instant};

fn get(path: &str, deadline: Duration) -> http::Request<bytes::Bytes> {
    let mut request = http::Request::get(path).body(bytes::Bytes::new()).unwrap();
    request.extensions_mut().insert(Deadline(deadline));
    request
}

#[tokio::test]
async fn a_deadline_stops_the_work_on_a_slow_api() {
    let world = World::new().await;
    let (hub, agent) = world.connected_agent("cluster-d", &[]).await;
    let tenant = world.tenant.to_string();

    world.sim.set_faults(Faults {
        latency_ms: 4_000,
        ..Faults::default()
    });
    let started = Instant::now();
    let err = world
        .tunnel
        .kubernetes(
            &tenant,
            "cluster-d",
            get("/api/v1/namespaces", Duration::from_millis(800)),
        )
        .await
        .expect_err("the API is slower than the deadline");
    assert!(
        matches!(
            err,
            TunnelError::Timeout(_)
                | TunnelError::Remote {
                    code: ErrorCode::DeadlineExceeded,
                    ..
                }
        ),
        "{err:?}"
    );
    // The agent stopped working on it at the deadline (a cancel from the hub or its own
    // deadline, whichever came first), long before the API would have answered.
    ferry_testkit::eventually("the agent to drop the request", WAIT, || async {
        let stopped = agent.metric(
            "ferry_agent_requests_total",
            &[("kind", "kubernetes"), ("outcome", "deadline_exceeded")],
        ) + agent.metric(
            "ferry_agent_requests_total",
            &[("kind", "kubernetes"), ("outcome", "cancelled")],
        );
        (stopped >= 1.0 && agent.metric("ferry_agent_requests_in_flight", &[]) == 0.0).then_some(())
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_millis(3_500),
        "work stopped after {:?}",
        started.elapsed()
    );
    assert_eq!(
        agent.metric("ferry_agent_requests_total", &[("outcome", "ok")]),
        0.0
    );

    // The stream is still the same and serves the next request once the API is quick.
    world.sim.set_faults(Faults::default());
    let response = world
        .tunnel
        .kubernetes(
            &tenant,
            "cluster-d",
            get("/api/v1/namespaces", Duration::from_secs(10)),
        )
        .await
        .expect("answered");
    assert_eq!(response.head.status, 200);
    assert_eq!(
        agent.metric(
            "ferry_agent_hub_connects_total",
            &[("outcome", "connected")]
        ),
        1.0
    );
    agent.stop().await.unwrap();
    hub.stop().await;
}

#[tokio::test]
async fn the_concurrency_bound_holds() {
    let world = World::new().await;
    let (hub, agent) = world
        .connected_agent("cluster-c", &["--max-in-flight", "2", "--max-queued", "2"])
        .await;
    let tenant = world.tenant.to_string();
    world.sim.set_faults(Faults {
        latency_ms: 700,
        ..Faults::default()
    });

    let started = Instant::now();
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let tunnel = world.tunnel.clone();
            let tenant = tenant.clone();
            tokio::spawn(async move {
                let response = tunnel
                    .kubernetes(
                        &tenant,
                        "cluster-c",
                        get("/api/v1/namespaces", Duration::from_secs(15)),
                    )
                    .await?;
                let status = response.head.status;
                response.bytes().await?;
                Ok::<_, TunnelError>(status)
            })
        })
        .collect();
    // Two execute, two wait, two are refused: watch the gauges while that holds.
    let peak = ferry_testkit::eventually("two executing and two waiting", WAIT, || async {
        let running = agent.metric("ferry_agent_requests_in_flight", &[]);
        let waiting = agent.metric("ferry_agent_requests_queued", &[]);
        assert!(running <= 2.0, "{running} requests executing at once");
        (running == 2.0 && waiting == 2.0).then_some(running)
    })
    .await;
    assert_eq!(peak, 2.0);

    let mut ok = 0;
    let mut busy = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(status) => {
                assert_eq!(status, 200);
                ok += 1;
            }
            Err(TunnelError::Remote {
                code: ErrorCode::Internal,
                message,
            }) => {
                assert!(message.contains("busy"), "{message}");
                busy += 1;
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!((ok, busy), (4, 2));
    // Two waves of two behind a 700ms API.
    assert!(
        started.elapsed() >= Duration::from_millis(1_400),
        "finished after {:?}",
        started.elapsed()
    );
    assert_eq!(
        agent.metric("ferry_agent_requests_total", &[("outcome", "rejected")]),
        2.0
    );
    agent.stop().await.unwrap();
    hub.stop().await;
}

#[tokio::test]
async fn a_failing_api_returns_errors_without_dropping_the_stream() {
    let world = World::new().await;
    let (hub, agent) = world.connected_agent("cluster-f", &[]).await;
    let tenant = world.tenant.to_string();
    let route = world
        .tunnel
        .lookup(&tenant, "cluster-f")
        .await
        .unwrap()
        .unwrap();

    // The API answers 500: relayed as an answer, status and body intact.
    world.sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let response = world
        .tunnel
        .kubernetes(
            &tenant,
            "cluster-f",
            get("/api/v1/namespaces", Duration::from_secs(10)),
        )
        .await
        .expect("an answer");
    assert_eq!(response.head.status, 500);
    let body = response.bytes().await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("InternalError"));

    // The API drops the connection mid-answer: the caller gets the agent's error.
    world.sim.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    let outcome = async {
        let response = world
            .tunnel
            .kubernetes(
                &tenant,
                "cluster-f",
                get("/api/v1/namespaces", Duration::from_secs(10)),
            )
            .await?;
        response.bytes().await
    }
    .await;
    assert!(
        matches!(
            outcome,
            Err(TunnelError::Remote {
                code: ErrorCode::Unreachable,
                ..
            })
        ),
        "{outcome:?}"
    );

    // A typed client sees an ordinary API error.
    world.sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(world.client("cluster-f"));
    match namespaces.get("default").await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 500),
        other => panic!("expected a 500 API error, got {other:?}"),
    }

    // Healthy again: same stream, same session, answers flow.
    world.sim.set_faults(Faults::default());
    let ns = namespaces.get("default").await.expect("answered");
    assert_eq!(ns.metadata.name.as_deref(), Some("default"));
    assert_eq!(
        world.tunnel.lookup(&tenant, "cluster-f").await.unwrap(),
        Some(route)
    );
    assert_eq!(
        agent.metric(
            "ferry_agent_hub_connects_total",
            &[("outcome", "connected")]
        ),
        1.0
    );
    assert!(agent.metric("ferry_agent_requests_total", &[("outcome", "unreachable")]) >= 1.0);
    agent.stop().await.unwrap();
    hub.stop().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let world = World::new().await;
    let (hub, agent) = world.connected_agent("cluster-s", &[]).await;
    let tenant = world.tenant.to_string();
    world.sim.set_faults(Faults {
        latency_ms: 1_000,
        ..Faults::default()
    });
    let call = {
        let tunnel = world.tunnel.clone();
        let tenant = tenant.clone();
        tokio::spawn(async move {
            let response = tunnel
                .kubernetes(
                    &tenant,
                    "cluster-s",
                    get("/api/v1/namespaces", Duration::from_secs(10)),
                )
                .await?;
            let status = response.head.status;
            response.bytes().await?;
            Ok::<_, TunnelError>(status)
        })
    };
    ferry_testkit::eventually("the request to execute", WAIT, || async {
        (agent.metric("ferry_agent_requests_in_flight", &[]) == 1.0).then_some(())
    })
    .await;
    // SIGTERM while the API is still answering: the answer is completed, then the agent stops.
    let registry = agent.registry.clone();
    agent
        .stop()
        .await
        .expect("the agent drains and stops cleanly");
    assert_eq!(call.await.unwrap().expect("drained, not cut"), 200);
    let ok = support::metric(
        &registry,
        "ferry_agent_requests_total",
        &[("outcome", "ok")],
    );
    assert_eq!(ok, 1.0);
    // The agent closed its stream on the way out, so its route is released.
    ferry_testkit::eventually("the route to be released", WAIT, || async {
        world
            .tunnel
            .lookup(&tenant, "cluster-s")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    hub.stop().await;
}
