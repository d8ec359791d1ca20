//! `scripts/bench.sh webhook`: how fast svc-webhook sends webhooks, from `webhook.requested`
//! committed to the outbox (as the scheduler does) to the request arriving at a local receiver.
//! The real binaries run wired as in production: svc-webhook with svc-api, one hub replica and
//! one agent (the relay mode goes through hub and agent into the agent's network).
//!
//! Per mode (direct, then relay) two runs: a flood (every request committed at once, in batches:
//! throughput, `per_s`) and a paced run at a fixed rate (latency, `p50_ms`/`p99_ms`, which is
//! what a deployment waiting on one webhook sees). Prints a table, then one JSON line.
//!
//!   webhook_bench [FLOOD=4000] [PACED_RATE=500] [PACED_SECONDS=5] [RELAY_SCALE=4]
//!
//! The relay runs use FLOOD / RELAY_SCALE requests and PACED_RATE / RELAY_SCALE per second.

use ferry_bus::messages::{NetworkMode, WebhookCall, WebhookRequested};
use ferry_bus::{Envelope, WebhookMessage, outbox};
use ferry_stack_tests::measure::percentile_ms;
use ferry_stack_tests::{Cluster, Stack, StackOptions};
use ferry_store::DeploymentId;
use ferry_store::deployments::{self, NewDeployment, OnBusy};
use ferry_store::targets::NewTarget;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const CLUSTERS: [Cluster; 1] = [Cluster {
    account: "bench-cluster",
    namespaces: &["bench"],
}];

type Arrivals = Arc<Mutex<HashMap<Uuid, Instant>>>;

/// A keep-alive HTTP/1.1 receiver recording when each `Ferry-Delivery-Id` first arrived.
async fn receiver() -> (String, Arrivals) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let arrivals: Arrivals = Arc::default();
    let seen = arrivals.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(16 * 1024);
                let mut chunk = [0u8; 16 * 1024];
                loop {
                    // One request: its head, then its body by content-length.
                    let (head_end, length) = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (i + 4, length);
                        }
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    while buf.len() < head_end + length {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let now = Instant::now();
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    if let Some(id) = head
                        .lines()
                        .find_map(|l| l.strip_prefix("ferry-delivery-id:"))
                        .and_then(|v| v.trim().parse::<Uuid>().ok())
                    {
                        seen.lock().unwrap().entry(id).or_insert(now);
                    }
                    buf.drain(..head_end + length);
                    if socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (url, arrivals)
}

fn request(deployment: DeploymentId, url: &str, relay: bool) -> WebhookRequested {
    WebhookRequested {
        deployment_id: deployment.as_uuid(),
        target: Some("prod".into()),
        step_index: Some(1),
        webhook_id: Uuid::now_v7(),
        webhook_name: "bench".into(),
        step_key: "step:1".into(),
        account: "bench-cluster".into(),
        call: WebhookCall {
            method: "POST".into(),
            uri: url.into(),
            headers: vec![("X-Bench".into(), "1".into())],
            body: Some(r#"{"bench":true}"#.into()),
            network_mode: if relay {
                NetworkMode::RemoteNetworkAgent
            } else {
                NetworkMode::Direct
            },
            agent_identifier: relay.then(|| "bench-cluster".to_string()),
            retry_count: 0,
            callback_uri: None,
        },
        context: BTreeMap::new(),
        deadline: None,
    }
}

/// Commits `requests` to the outbox in one transaction; returns when it committed.
async fn commit(stack: &Stack, requests: &[WebhookRequested]) -> Instant {
    let mut tx = stack.store.begin().await.unwrap();
    for r in requests {
        let message = WebhookMessage::WebhookRequested(r.clone());
        outbox::enqueue(&mut tx, &Envelope::new(stack.tenant.as_uuid(), message))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    Instant::now()
}

struct Run {
    name: String,
    sent: usize,
    per_s: f64,
    latencies: Vec<Duration>,
}

impl Run {
    fn row(&self) -> String {
        let s = &self.latencies;
        format!(
            "{:<16} {:>7} {:>10.0} {:>9.1} {:>9.1} {:>9.1}",
            self.name,
            self.sent,
            self.per_s,
            percentile_ms(s, 0.5),
            percentile_ms(s, 0.95),
            percentile_ms(s, 0.99)
        )
    }
}

/// Where a run sends: the stack, the deployment the webhooks belong to, the receiver.
#[derive(Clone, Copy)]
struct Target<'a> {
    stack: &'a Stack,
    deployment: DeploymentId,
    url: &'a str,
    arrivals: &'a Arrivals,
}

/// Sends `n` requests `per_tick` at a time every `tick` (all at once when `tick` is zero) and
/// waits for all to arrive.
async fn run(
    target: &Target<'_>,
    relay: bool,
    n: usize,
    per_tick: usize,
    tick: Duration,
    name: &str,
) -> Run {
    let Target {
        stack,
        deployment,
        url,
        arrivals,
    } = *target;
    arrivals.lock().unwrap().clear();
    let requests: Vec<WebhookRequested> = (0..n).map(|_| request(deployment, url, relay)).collect();
    let mut committed: HashMap<Uuid, Instant> = HashMap::with_capacity(n);
    let first = Instant::now();
    let mut next = first;
    for batch in requests.chunks(per_tick.max(1)) {
        if !tick.is_zero() {
            tokio::time::sleep_until(next.into()).await;
            next += tick;
        }
        let at = commit(stack, batch).await;
        for r in batch {
            committed.insert(r.webhook_id, at);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = arrivals.lock().unwrap().len();
        if got >= n {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("{name}: only {got} of {n} arrived within the deadline");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = arrivals.lock().unwrap().clone();
    let last = seen.values().max().copied().unwrap_or(first);
    let mut latencies: Vec<Duration> = seen
        .iter()
        .filter_map(|(id, at)| committed.get(id).map(|c| at.saturating_duration_since(*c)))
        .collect();
    latencies.sort();
    Run {
        name: name.to_string(),
        sent: n,
        per_s: seen.len() as f64 / last.duration_since(first).as_secs_f64().max(1e-9),
        latencies,
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric arguments"))
        .collect();
    let flood = args.first().copied().unwrap_or(4000);
    let rate = args.get(1).copied().unwrap_or(500);
    let seconds = args.get(2).copied().unwrap_or(5);
    let relay_scale = args.get(3).copied().unwrap_or(4).max(1);
    eprintln!("starting svc-api, a hub, an agent and svc-webhook");
    let mut stack = Stack::start(StackOptions {
        clusters: CLUSTERS.to_vec(),
        hubs: 1,
        schedulers: 0,
        pod_ready_delay: Duration::from_millis(10),
        scheduler_tick_secs: 1,
    })
    .await;
    stack
        .start_webhook(&[
            ("FERRY_DATABASE_MAX_CONNECTIONS", "24"),
            ("FERRY_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32"),
            ("FERRY_WEBHOOK_PREFETCH", "256"),
            ("FERRY_WEBHOOK_CONCURRENCY", "512"),
            ("FERRY_LOG", "warn"),
        ])
        .await;
    let deployment = DeploymentId::new();
    let mut tx = stack.store.begin().await.unwrap();
    deployments::create(
        &mut tx,
        stack.tenant,
        &NewDeployment {
            id: deployment,
            application: "webhook-bench".into(),
            created_by: "bench".into(),
            deploy_file: String::new(),
            manifests: Vec::new(),
            plan: serde_json::json!({}),
            targets: vec![NewTarget {
                name: "prod".into(),
                account: "bench-cluster".into(),
                namespace: "bench".into(),
                desired: serde_json::json!({}),
            }],
        },
        OnBusy::EnqueueOne,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (url, arrivals) = receiver().await;
    let target = Target {
        stack: &stack,
        deployment,
        url: &url,
        arrivals: &arrivals,
    };
    // Warm up: connections, pools, the agent's route.
    run(&target, false, 200, 50, Duration::ZERO, "warm-up").await;
    run(&target, true, 50, 10, Duration::ZERO, "warm-up").await;

    let tick = Duration::from_millis(10);
    let per_tick = |r: usize| (r / 100).max(1);
    let direct_flood = run(&target, false, flood, 100, Duration::ZERO, "direct flood").await;
    let direct_paced = run(
        &target,
        false,
        rate * seconds,
        per_tick(rate),
        tick,
        &format!("direct {rate}/s"),
    )
    .await;
    let relay_rate = (rate / relay_scale).max(1);
    let relay_flood = run(
        &target,
        true,
        flood / relay_scale,
        100,
        Duration::ZERO,
        "relay flood",
    )
    .await;
    let relay_paced = run(
        &target,
        true,
        relay_rate * seconds,
        per_tick(relay_rate),
        tick,
        &format!("relay {relay_rate}/s"),
    )
    .await;

    println!(
        "webhooks from webhook.requested committed to the receiver (svc-webhook, hub, agent on this machine)"
    );
    println!(
        "{:<16} {:>7} {:>10} {:>9} {:>9} {:>9}",
        "run", "sent", "per_s", "p50_ms", "p95_ms", "p99_ms"
    );
    for r in [&direct_flood, &direct_paced, &relay_flood, &relay_paced] {
        println!("{}", r.row());
    }
    let p = |r: &Run, q: f64| (percentile_ms(&r.latencies, q) * 10.0).round() / 10.0;
    println!(
        "{{\"bench\":\"webhook\",\"per_s\":{:.0},\"p50_ms\":{},\"p99_ms\":{},\"paced_rate\":{rate},\"flood_p99_ms\":{},\"relay\":{{\"per_s\":{:.0},\"p50_ms\":{},\"p99_ms\":{},\"paced_rate\":{relay_rate},\"flood_p99_ms\":{}}}}}",
        direct_flood.per_s,
        p(&direct_paced, 0.5),
        p(&direct_paced, 0.99),
        p(&direct_flood, 0.99),
        relay_flood.per_s,
        p(&relay_paced, 0.5),
        p(&relay_paced, 0.99),
        p(&relay_flood, 0.99),
    );
    drop(stack);
}
