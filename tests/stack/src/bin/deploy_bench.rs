//! `scripts/bench.sh deploy`: how fast Ferry deploys, end to end. The real binaries run wired as
//! in production (svc-api, two hub replicas, two scheduler replicas, one agent per cluster) against
//! Kubernetes API simulators whose Pods turn Ready at once, so what is measured is Ferry's own
//! overhead: the API call, the outbox, RabbitMQ, the engine, the tunnel through hub and agent,
//! and the readiness polling.
//!
//! Two levels: sequential (one deployment at a time: the latency a user sees) and concurrent
//! (many applications at once: throughput). Latency is from `POST /v1/deployments` answering to
//! the deployment's status turning `succeeded` in Postgres, observed every 20 ms.
//! Prints a table, then one JSON line.

use ferry_stack_tests::api::Api;
use ferry_stack_tests::measure::percentile_ms;
use ferry_stack_tests::{Cluster, Stack, StackOptions};
use ferry_store::DeploymentId;
use ferry_store::deployments::{self, DeploymentStatus};
use std::time::{Duration, Instant};

const CLUSTERS: [Cluster; 4] = [
    Cluster {
        account: "c1",
        namespaces: &["bench"],
    },
    Cluster {
        account: "c2",
        namespaces: &["bench"],
    },
    Cluster {
        account: "c3",
        namespaces: &["bench"],
    },
    Cluster {
        account: "c4",
        namespaces: &["bench"],
    },
];

fn deploy_file(app: &str, account: &str) -> String {
    format!(
        "version: v1\napplication: {app}\ntargets:\n  prod:\n    account: {account}\n    \
         namespace: bench\nmanifests:\n  - path: app.yaml\n"
    )
}

fn manifest(app: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\nspec:\n  replicas: 2\n  \
         selector:\n    matchLabels:\n      app: {app}\n  template:\n    metadata:\n      labels:\n        \
         app: {app}\n    spec:\n      containers:\n        - name: web\n          image: registry.example/{app}:1\n\
         ---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {app}-config\ndata:\n  K: v\n"
    )
}

/// Starts application `app` on `account`; returns its id and when the API answered.
async fn start(stack: &Stack, api: &Api, app: &str, account: &str) -> (DeploymentId, Instant) {
    let dir = stack.write_files(
        app,
        &[
            ("deploy.yml", &deploy_file(app, account)),
            ("app.yaml", &manifest(app)),
        ],
    );
    let (code, body) = api.start(&dir.join("deploy.yml"), &["app.yaml"]).await;
    assert_eq!(code, 201, "start {app}: {body}");
    let id = body["id"].as_str().expect("an id").parse().expect("a uuid");
    (id, Instant::now())
}

/// Waits until every deployment succeeded; returns each one's latency.
async fn finish(stack: &Stack, started: Vec<(DeploymentId, Instant)>) -> Vec<Duration> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut pending = started;
    let mut latencies = Vec::new();
    while !pending.is_empty() {
        assert!(
            Instant::now() < deadline,
            "deployments did not finish in 10 minutes"
        );
        let mut still = Vec::new();
        for (id, at) in pending {
            let status = deployments::get(&stack.store, stack.tenant, id)
                .await
                .expect("get")
                .status;
            match status {
                DeploymentStatus::Succeeded => latencies.push(at.elapsed()),
                s if s.is_terminal() => panic!("deployment {id} ended {s:?}:\n{}", stack.logs()),
                _ => still.push((id, at)),
            }
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    latencies
}

struct Level {
    name: &'static str,
    count: usize,
    wall: Duration,
    latencies: Vec<Duration>,
}

impl Level {
    fn row(&self) -> String {
        let s = &self.latencies;
        format!(
            "{:<12} {:>6} {:>9.1} {:>10.1} {:>10.1} {:>10.1} {:>12.2}",
            self.name,
            self.count,
            self.wall.as_secs_f64(),
            percentile_ms(s, 0.5),
            percentile_ms(s, 0.95),
            percentile_ms(s, 0.99),
            self.count as f64 / self.wall.as_secs_f64()
        )
    }

    fn json(&self) -> String {
        let s = &self.latencies;
        format!(
            "\"{}\":{{\"deployments\":{},\"wall_s\":{:.2},\"p50_ms\":{:.1},\"p95_ms\":{:.1},\"p99_ms\":{:.1},\"per_s\":{:.2}}}",
            self.name,
            self.count,
            self.wall.as_secs_f64(),
            percentile_ms(s, 0.5),
            percentile_ms(s, 0.95),
            percentile_ms(s, 0.99),
            self.count as f64 / self.wall.as_secs_f64()
        )
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let sequential: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let concurrent: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    // How long the simulated Pods take to turn Ready: above 0, every deployment waits for them,
    // and the latency shows how soon the scheduler notices (the readiness watch, or the tick).
    let ready_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let stack = Stack::start(StackOptions {
        clusters: CLUSTERS.to_vec(),
        hubs: 2,
        schedulers: 2,
        pod_ready_delay: Duration::from_millis(ready_ms),
        scheduler_tick_secs: 1,
    })
    .await;
    let api = Api::sign_in(&stack.api_url, &stack.admin).await;

    // Warm up: one deployment per cluster (connections, prepared statements, discovery).
    let mut warm = Vec::new();
    for (i, c) in CLUSTERS.iter().enumerate() {
        warm.push(start(&stack, &api, &format!("warm-{i}"), c.account).await);
    }
    finish(&stack, warm).await;

    let began = Instant::now();
    let mut latencies = Vec::new();
    for i in 0..sequential {
        let started = start(&stack, &api, &format!("seq-{i}"), CLUSTERS[i % 4].account).await;
        latencies.extend(finish(&stack, vec![started]).await);
    }
    latencies.sort();
    let seq = Level {
        name: "sequential",
        count: sequential,
        wall: began.elapsed(),
        latencies,
    };

    let began = Instant::now();
    let mut started = Vec::new();
    for i in 0..concurrent {
        started.push(start(&stack, &api, &format!("con-{i}"), CLUSTERS[i % 4].account).await);
    }
    let mut latencies = finish(&stack, started).await;
    latencies.sort();
    let con = Level {
        name: "concurrent",
        count: concurrent,
        wall: began.elapsed(),
        latencies,
    };

    println!(
        "deploy benchmark: one target, 2 replicas + a ConfigMap, first deployment, through svc-api,"
    );
    let watch = std::env::var("FERRY_SCHEDULER_WATCH_READINESS").unwrap_or_else(|_| "true".into());
    println!(
        "2 hub and 2 scheduler replicas, one agent per simulated cluster (4); Pods ready after \
         {ready_ms} ms; readiness watch {watch}, tick 1 s"
    );
    println!(
        "{:<12} {:>6} {:>9} {:>10} {:>10} {:>10} {:>12}",
        "level", "count", "wall s", "p50 ms", "p95 ms", "p99 ms", "deploys/s"
    );
    println!("{}", seq.row());
    println!("{}", con.row());
    println!(
        "{{\"bench\":\"deploy\",\"pod_ready_ms\":{ready_ms},\"watch\":{},{},{}}}",
        watch != "false",
        seq.json(),
        con.json()
    );
}
