//! Traces: a deployment started with a W3C `traceparent` is one trace across svc-api, the
//! scheduler (through the outbox and the bus), the agent hub (through the tunnel) and the agent,
//! exported over OTLP/HTTP to a collector (this test's, decoding the OTLP protobuf) because
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use crate::app::{self, CLUSTERS};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use ferry_stack_tests::api::Api;
use ferry_stack_tests::{Stack, StackOptions};
use ferry_testkit::eventually;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `(service.name, trace id in hex, span name)` of every span received.
type Received = Arc<Mutex<Vec<(String, String, String)>>>;

const TRACE_ID: &str = "5c2a8d1e9f3b4a6c8d0e2f4a6b8c0d1e";

/// An OTLP/HTTP trace receiver on a free loopback port; returns its base URL.
async fn collector(received: Received) -> String {
    async fn traces(State(received): State<Received>, body: Bytes) -> &'static str {
        let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
        let mut seen = received.lock().unwrap();
        for resource_spans in request.resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    AnyValue::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                let trace: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                seen.push((service.clone(), trace, span.name.clone()));
            }
        }
        ""
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/v1/traces", post(traces))
        .with_state(received);
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn a_deployment_started_with_a_traceparent_is_one_trace_through_every_service() {
    let received = Received::default();
    let endpoint = collector(received.clone()).await;
    let stack = Stack::start_with_env(
        StackOptions {
            clusters: CLUSTERS.to_vec(),
            hubs: 1,
            schedulers: 1,
            pod_ready_delay: Duration::from_millis(100),
            scheduler_tick_secs: 1,
        },
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            // Export every 200 ms instead of every 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
    )
    .await;
    let api = Api::sign_in(&stack.api_url, &stack.admin).await;
    let file = app::write(&stack, "1.0.0");
    let traceparent = format!("00-{TRACE_ID}-a1b2c3d4e5f60718-01");
    let (status, body) = api
        .start_traced(&file, &["manifests/app.yaml"], Some(&traceparent))
        .await;
    assert_eq!(status, 201, "{body}");

    // The request's trace reaches svc-api's request, the scheduler's handling of the start, the
    // hub's relay of the scheduler's cluster calls and the agent's execution of them.
    let wanted = [
        "ferry-agent",
        "ferry-svc-agent-hub",
        "ferry-svc-api",
        "ferry-svc-scheduler",
    ];
    let services = eventually(
        "spans of the deployment's trace from every service",
        Duration::from_secs(60),
        || {
            let received = received.clone();
            async move {
                let seen = received.lock().unwrap();
                let services: BTreeSet<&str> = seen
                    .iter()
                    .filter(|(_, trace, _)| trace == TRACE_ID)
                    .map(|(service, _, _)| service.as_str())
                    .collect();
                let all = wanted.iter().all(|w| services.contains(w));
                all.then(|| {
                    services
                        .iter()
                        .map(std::string::ToString::to_string)
                        .collect::<Vec<_>>()
                })
            }
        },
    )
    .await;
    assert_eq!(services, wanted, "only Ferry's services export spans");
    let seen = received.lock().unwrap();
    let names: BTreeSet<(&str, &str)> = seen
        .iter()
        .filter(|(_, trace, _)| trace == TRACE_ID)
        .map(|(service, _, name)| (service.as_str(), name.as_str()))
        .collect();
    for span in [
        ("ferry-svc-api", "request"),
        ("ferry-svc-scheduler", "message"),
        ("ferry-svc-agent-hub", "relay"),
        ("ferry-agent", "request"),
    ] {
        assert!(names.contains(&span), "{span:?} in {names:?}");
    }
}
