//! `scripts/bench.sh api`: how many reads svc-api answers, and how fast, under concurrent load on
//! loopback. A real svc-api (release build, Postgres pool of 10, logs at warn, the per-tenant
//! request limit lifted) with a tenant of seeded deployments (four targets each) answers
//! `GET /v1/deployments/{id}` (a deployment's detail: the deployment, its targets and pending
//! approvals) and `GET /v1/deployments` (the newest 50) to CONCURRENCY keep-alive clients for
//! SECONDS each, after a warm-up. Prints a table, then one JSON line.
//!
//!   api_bench [CONCURRENCY=32] [SECONDS=10] [DEPLOYMENTS=500]

use ferry_stack_tests::api::Api;
use ferry_stack_tests::measure::percentile_ms;
use ferry_stack_tests::{Stack, StackOptions};
use ferry_store::DeploymentId;
use ferry_store::deployments::{self, NewDeployment, OnBusy};
use ferry_store::targets::NewTarget;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Run {
    name: &'static str,
    requests: usize,
    per_s: f64,
    latencies: Vec<Duration>,
}

impl Run {
    fn ms(&self, p: f64) -> f64 {
        (percentile_ms(&self.latencies, p) * 100.0).round() / 100.0
    }

    fn row(&self) -> String {
        format!(
            "{:<22} {:>9} {:>9.0} {:>8.2} {:>8.2} {:>8.2}",
            self.name,
            self.requests,
            self.per_s,
            self.ms(0.5),
            self.ms(0.95),
            self.ms(0.99)
        )
    }
}

/// `concurrency` clients sending GET `paths` (round robin) for `seconds`; every answer must be
/// a 200 with a body.
async fn load(
    http: &reqwest::Client,
    token: &str,
    paths: Arc<Vec<String>>,
    concurrency: usize,
    seconds: u64,
    name: &'static str,
) -> Run {
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut tasks = Vec::with_capacity(concurrency);
    for client in 0..concurrency {
        let http = http.clone();
        let auth = format!("Bearer {token}");
        let paths = paths.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = client;
            while Instant::now() < until {
                let path = &paths[i % paths.len()];
                i += concurrency;
                let sent = Instant::now();
                let response = http
                    .get(path)
                    .header("authorization", &auth)
                    .send()
                    .await
                    .expect("svc-api answers");
                let status = response.status();
                let body = response.bytes().await.expect("a whole body");
                assert!(
                    status == 200 && !body.is_empty(),
                    "GET {path}: {status} {body:?}"
                );
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("a client task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    Run {
        name,
        requests: latencies.len(),
        per_s: latencies.len() as f64 / elapsed,
        latencies,
    }
}

/// `count` deployments of distinct applications, four targets each, committed directly.
async fn seed(stack: &Stack, count: usize) -> Vec<DeploymentId> {
    let mut ids = Vec::with_capacity(count);
    let mut tx = stack.store.begin().await.unwrap();
    for n in 0..count {
        let id = DeploymentId::new();
        let targets = ["dev", "staging", "prod-us", "prod-eu"]
            .iter()
            .map(|name| NewTarget {
                name: (*name).into(),
                account: format!("{name}-cluster"),
                namespace: "hello".into(),
                desired: serde_json::json!({ "weight": 100 }),
            })
            .collect();
        deployments::create(
            &mut tx,
            stack.tenant,
            &NewDeployment {
                id,
                application: format!("bench-app-{n}"),
                created_by: "bench".into(),
                deploy_file: "version: v1\n".into(),
                manifests: Vec::new(),
                plan: serde_json::json!({}),
                targets,
            },
            OnBusy::Reject,
        )
        .await
        .unwrap();
        ids.push(id);
    }
    tx.commit().await.unwrap();
    ids
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric arguments"))
        .collect();
    let concurrency = args.first().copied().unwrap_or(32).max(1);
    let seconds = args.get(1).copied().unwrap_or(10).max(1) as u64;
    let count = args.get(2).copied().unwrap_or(500).max(1);
    eprintln!("starting svc-api and seeding {count} deployments");
    let mut stack = Stack::start(StackOptions {
        clusters: Vec::new(),
        hubs: 0,
        schedulers: 0,
        pod_ready_delay: Duration::from_millis(10),
        scheduler_tick_secs: 1,
    })
    .await;
    stack
        .restart_api(&[
            ("FERRY_DATABASE_MAX_CONNECTIONS", "10"),
            ("FERRY_LOG", "warn"),
            // The per-tenant request limit (50/s by default) is a policy, not a capacity: lifted
            // here so the benchmark measures what one svc-api can answer.
            ("FERRY_RATE_LIMIT_PER_SEC", "1000000"),
            ("FERRY_RATE_LIMIT_BURST", "1000000"),
        ])
        .await;
    let ids = seed(&stack, count).await;
    let api = Api::sign_in(&stack.api_url, &stack.admin).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let base = &stack.api_url;
    let details = Arc::new(
        ids.iter()
            .map(|id| format!("{base}/v1/deployments/{id}"))
            .collect::<Vec<_>>(),
    );
    let lists = Arc::new(vec![format!("{base}/v1/deployments?limit=50")]);
    eprintln!("warming up, then {seconds} s per endpoint with {concurrency} clients");
    load(
        &http,
        api.token(),
        details.clone(),
        concurrency,
        2,
        "warm-up",
    )
    .await;
    let detail = load(
        &http,
        api.token(),
        details,
        concurrency,
        seconds,
        "GET deployment",
    )
    .await;
    let list = load(
        &http,
        api.token(),
        lists,
        concurrency,
        seconds,
        "GET deployments (50)",
    )
    .await;

    println!(
        "svc-api on loopback, {concurrency} keep-alive clients, {seconds} s per endpoint, {count} deployments"
    );
    println!(
        "{:<22} {:>9} {:>9} {:>8} {:>8} {:>8}",
        "endpoint", "requests", "per_s", "p50_ms", "p95_ms", "p99_ms"
    );
    for r in [&detail, &list] {
        println!("{}", r.row());
    }
    println!(
        "{{\"bench\":\"api\",\"per_s\":{:.0},\"p50_ms\":{},\"p99_ms\":{},\"concurrency\":{concurrency},\"list\":{{\"per_s\":{:.0},\"p50_ms\":{},\"p99_ms\":{}}}}}",
        detail.per_s,
        detail.ms(0.5),
        detail.ms(0.99),
        list.per_s,
        list.ms(0.5),
        list.ms(0.99),
    );
    drop(stack);
}
