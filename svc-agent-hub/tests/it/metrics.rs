//! The hub's `/metrics`, scraped over HTTP after agents connected, one was refused and calls went
//! through: agents connected on the replica, gRPC calls by method and code, relayed requests;
//! and the caller's tunnel metrics by outcome.

use crate::harness::{Env, get};
use ferry_agent_sim::{DialError, Script, SimAgent, SimOptions, SimReply};
use ferry_tunnel::TunnelMetrics;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const TUNNEL: &str = "/ferry.agent.v1.AgentHub/Tunnel";

/// The body of `GET /metrics` on an admin address.
async fn scrape(admin_url: &str) -> String {
    let authority = admin_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {authority}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"));
    answer
}

/// The value of a series (name and labels exactly as exposed), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_and_tunnel_metrics_count_streams_refusals_and_calls() {
    let env = Env::new().await;
    let hub = env.replica("rm").await;
    let tenant = Uuid::new_v4();
    let t = tenant.to_string();
    let script = Script::new().on("GET", "/whoami", SimReply::text(200, "x".to_string()));
    let agent = env.agent(&[&hub], tenant, "x", script).await;

    // A token for another audience is refused before the hello.
    let wrong = env.token_with(tenant, "ferry-api", Duration::from_secs(60));
    let mut options = SimOptions::new(&hub.url, &wrong, "y", Script::new());
    options.reconnect = false;
    assert!(matches!(
        SimAgent::start(options).await,
        Err(DialError::Refused(_))
    ));

    let tunnel_metrics = TunnelMetrics::default();
    let tunnel = (*env.tunnel().await)
        .clone()
        .with_metrics(tunnel_metrics.clone());
    for _ in 0..2 {
        let answer = tunnel.kubernetes(&t, "x", get("/whoami")).await.unwrap();
        assert_eq!(answer.head.status, 200);
    }
    assert!(
        tunnel
            .kubernetes(&t, "nobody", get("/whoami"))
            .await
            .is_err()
    );
    assert_eq!(tunnel_metrics.calls("kubernetes", "ok"), 2);
    assert_eq!(tunnel_metrics.timed("kubernetes", "ok"), 2);
    assert_eq!(tunnel_metrics.calls("kubernetes", "not_connected"), 1);
    hub.wait_metric("ferry_hub_requests_total", Some(("outcome", "ok")), 2.0)
        .await;

    let text = scrape(&hub.admin_url).await;
    assert_eq!(value(&text, "ferry_hub_connected_agents"), Some(1.0));
    let started = format!(r#"ferry_grpc_server_started_total{{method="{TUNNEL}"}}"#);
    assert_eq!(value(&text, &started), Some(2.0), "{text}");
    let refused =
        format!(r#"ferry_grpc_server_handled_total{{code="Unauthenticated",method="{TUNNEL}"}}"#);
    assert_eq!(value(&text, &refused), Some(1.0), "{text}");
    let relayed = r#"ferry_hub_request_duration_seconds_count"#;
    assert_eq!(value(&text, relayed), Some(2.0), "{text}");

    // The agent leaves: its stream ends and is timed.
    agent.stop();
    hub.wait_metric("ferry_hub_connected_agents", None, 0.0)
        .await;
    ferry_testkit::eventually(
        "the stream's end recorded",
        Duration::from_secs(10),
        || async {
            let text = scrape(&hub.admin_url).await;
            let count = format!(r#"ferry_grpc_server_handling_seconds_count{{method="{TUNNEL}"}}"#);
            (value(&text, &count) == Some(2.0)).then_some(text)
        },
    )
    .await;
}
