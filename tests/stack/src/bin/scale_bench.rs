//! `scripts/bench.sh scale`: many canary rollouts at once across many clusters. svc-api, two hub
//! replicas and two scheduler replicas run as the real (release) binaries; AGENTS clusters are
//! Kubernetes API simulators, each with the real agent running inside this process (see
//! `ferry_stack_tests::fleet`), spread over the two hubs.
//!
//! 1. Seed: every application `sNNNNN` already runs version 1 as a plain Deployment (4 replicas)
//!    in its cluster, created directly in the simulator; the bench waits until all are ready.
//! 2. Roll out: ROLLOUTS deployments of version 2 are submitted through `POST /v1/deployments`
//!    (32 at a time), each a canary of 25% then 50% then promotion; Ferry adopts the running
//!    Deployment as the stable version. Pods turn Ready READY_MS plus up to JITTER_MS (by Pod)
//!    after they start.
//! 3. Measure, from the simulators' journals (one clock, this process's): each step's gap from
//!    the moment it may proceed (svc-api answered, for the first; the last Pod the previous step
//!    started turned Ready, for the others) to its first cluster write; readiness lag is the
//!    second kind alone. Every second: the schedulers' resident memory and Postgres connections;
//!    at the end, the messages the schedulers handled and the stale wake-ups among them.
//!
//! Prints a table, then one JSON line.
//!   scale_bench [AGENTS=1000] [ROLLOUTS=10000] [READY_MS=100] [JITTER_MS=400] [DB_CONNECTIONS=10]
//! DB_CONNECTIONS is every service's pool (`FERRY_DATABASE_MAX_CONNECTIONS`); a scheduler runs
//! half that many reconcile passes at once.

use ferry_stack_tests::api::Api;
use ferry_stack_tests::fleet::{Fleet, FleetOptions};
use ferry_stack_tests::measure::{CpuUse, counter_sum, percentile_ms, pids_named, rss_mib};
use ferry_stack_tests::timeline::{self, Gaps};
use ferry_stack_tests::{Stack, StackOptions};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api as KubeApi;
use kube::api::{ListParams, PostParams};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

const REPLICAS: i32 = 4;
const IN_FLIGHT: usize = 32;

fn app(i: usize) -> String {
    format!("s{i:05}")
}

fn manifest(app: &str, version: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\nspec:\n  replicas: {REPLICAS}\n  \
         selector:\n    matchLabels:\n      app: {app}\n  template:\n    metadata:\n      labels:\n        \
         app: {app}\n    spec:\n      containers:\n        - name: web\n          image: registry.example/{app}:{version}\n"
    )
}

fn deploy_file(app: &str, account: &str) -> String {
    format!(
        "version: v1\nkind: kubernetes\napplication: {app}\ntargets:\n  prod:\n    account: {account}\n    \
         namespace: load\n    strategy: canary\nmanifests:\n  - path: app.yaml\nstrategies:\n  canary:\n    \
         canary:\n      steps:\n        - setWeight:\n            weight: 25\n        - setWeight:\n            \
         weight: 50\n"
    )
}

/// Version 1 of `app`, as its team would have applied it before Ferry.
fn seed_object(app: &str) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "web", "image": format!("registry.example/{app}:1")}]},
            },
        },
    }))
    .expect("a Deployment")
}

/// Creates every application's version 1 directly in its simulator and waits until all run.
async fn seed(fleet: &Fleet, rollouts: usize) {
    let mut tasks = JoinSet::new();
    let clusters = fleet.members.len();
    for (m, member) in fleet.members.iter().enumerate() {
        let api: KubeApi<Deployment> = KubeApi::namespaced(member.client.clone(), "load");
        let apps: Vec<String> = (m..rollouts).step_by(clusters).map(app).collect();
        tasks.spawn(async move {
            for app in &apps {
                api.create(&PostParams::default(), &seed_object(app))
                    .await
                    .expect("create a seed Deployment");
            }
            let deadline = Instant::now() + Duration::from_secs(600);
            loop {
                let list = api.list(&ListParams::default()).await.expect("list");
                let ready = list
                    .items
                    .iter()
                    .filter(|d| d.status.as_ref().and_then(|s| s.ready_replicas) == Some(REPLICAS))
                    .count();
                if ready == apps.len() {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "seed Deployments not ready in 10 minutes"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("seeding a cluster");
    }
}

/// Submits every rollout, `IN_FLIGHT` at a time; returns when svc-api answered each one.
async fn submit(api: &Api, fleet: &Fleet, rollouts: usize) -> HashMap<u32, Instant> {
    let accounts: Arc<Vec<String>> =
        Arc::new(fleet.members.iter().map(|m| m.account.clone()).collect());
    let mut tasks = JoinSet::new();
    let mut answered = HashMap::with_capacity(rollouts);
    for i in 0..rollouts {
        let api = api.clone();
        let accounts = accounts.clone();
        tasks.spawn(async move {
            let name = app(i);
            let account = &accounts[i % accounts.len()];
            let manifests = [("app.yaml".to_string(), manifest(&name, 2))];
            let (code, body) = api
                .start_content("deploy.yml", &deploy_file(&name, account), &manifests, None)
                .await;
            assert_eq!(code, 201, "start {name}: {body}");
            (i as u32, Instant::now())
        });
        if tasks.len() >= IN_FLIGHT {
            let (i, at) = tasks.join_next().await.expect("a task").expect("joins");
            answered.insert(i, at);
        }
    }
    while let Some(done) = tasks.join_next().await {
        let (i, at) = done.expect("joins");
        answered.insert(i, at);
    }
    answered
}

/// The tenant's deployments by status.
async fn statuses(stack: &Stack) -> HashMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT status, count(*) FROM deployments WHERE tenant_id = $1 GROUP BY status",
    )
    .bind(stack.tenant.as_uuid())
    .fetch_all(stack.store.pool())
    .await
    .expect("count deployments")
    .into_iter()
    .collect()
}

/// Connections to the stack's database, the benchmark's own included.
async fn connections(stack: &Stack) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        .fetch_one(stack.store.pool())
        .await
        .expect("count connections")
}

/// The processes whose CPU time is reported, by part: Ferry's services (replicas summed), the
/// backing services, and this process (the simulators and the agents).
fn parts(stack: &Stack) -> Vec<(String, Vec<u32>)> {
    let mut parts: Vec<(String, Vec<u32>)> = Vec::new();
    for (name, pid) in stack.processes() {
        // Replicas are `hub-0`, `scheduler-1`, …: one part each.
        let part = match name.rsplit_once('-') {
            Some((part, n)) if n.parse::<usize>().is_ok() => part.to_string(),
            _ => name.clone(),
        };
        match parts.iter_mut().find(|(p, _)| *p == part) {
            Some((_, pids)) => pids.push(pid),
            None => parts.push((part, vec![pid])),
        }
    }
    parts.push(("postgres".into(), pids_named("postgres")));
    parts.push(("rabbitmq".into(), pids_named("beam.smp")));
    parts.push(("redis".into(), pids_named("redis-server")));
    parts.push(("sims+agents".into(), vec![std::process::id()]));
    parts
}

/// What was sampled while the rollouts ran.
#[derive(Default)]
struct Samples {
    /// Peak resident memory of each scheduler replica, MiB.
    rss_peak: Vec<f64>,
    /// Resident memory of each scheduler replica at the end, MiB.
    rss_end: Vec<f64>,
    pg_connections: i64,
}

/// Waits until every rollout ended (or `deadline` passed), sampling as it goes; returns the
/// count by status and when the last one ended.
async fn wait_all(
    stack: &Stack,
    rollouts: usize,
    deadline: Duration,
    samples: &mut Samples,
) -> (HashMap<String, i64>, Instant) {
    let began = Instant::now();
    let pids = stack.scheduler_pids();
    samples.rss_peak = vec![0.0; pids.len()];
    let mut last_report = Instant::now();
    loop {
        let counts = statuses(stack).await;
        let open: i64 = ["waiting", "running", "paused"]
            .iter()
            .map(|s| counts.get(*s).copied().unwrap_or(0))
            .sum();
        samples.pg_connections = samples.pg_connections.max(connections(stack).await);
        let rss: Vec<f64> = pids.iter().map(|p| rss_mib(*p).unwrap_or(0.0)).collect();
        for (peak, now) in samples.rss_peak.iter_mut().zip(&rss) {
            *peak = peak.max(*now);
        }
        samples.rss_end = rss;
        if last_report.elapsed() >= Duration::from_secs(10) {
            eprintln!(
                "{:>6.0} s: {} of {rollouts} still open, {counts:?}, scheduler RSS {:?} MiB",
                began.elapsed().as_secs_f64(),
                open,
                samples.rss_end
            );
            last_report = Instant::now();
        }
        let total: i64 = counts.values().sum();
        if open == 0 && total >= rollouts as i64 {
            return (counts, Instant::now());
        }
        if began.elapsed() > deadline {
            eprintln!("deadline of {deadline:?} passed with {open} rollouts open");
            return (counts, Instant::now());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A percentile for the JSON line: `null` when nothing was measured (NaN is not JSON).
fn json_ms(sorted: &[Duration], q: f64) -> String {
    match percentile_ms(sorted, q) {
        ms if ms.is_nan() => "null".to_string(),
        ms => format!("{ms:.1}"),
    }
}

fn arg(args: &[String], index: usize, default: u64) -> u64 {
    args.get(index).map_or(default, |a| {
        a.parse()
            .unwrap_or_else(|_| panic!("argument {a:?} is not a number"))
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let agents = arg(&args, 0, 1000) as usize;
    let rollouts = arg(&args, 1, 10_000) as usize;
    let ready_ms = arg(&args, 2, 100);
    let jitter_ms = arg(&args, 3, 400);
    let pool = arg(&args, 4, 10).to_string();
    assert!(
        agents >= 1 && rollouts >= 1,
        "AGENTS and ROLLOUTS must be at least 1"
    );
    assert!(
        rollouts <= 99_999,
        "applications are numbered with five digits"
    );

    // Production settings but quiet logs; svc-api's per-tenant and per-address rate limits are
    // raised because the whole load comes from one tenant at one address.
    let stack = Stack::start_with_env(
        StackOptions {
            clusters: Vec::new(),
            hubs: 2,
            schedulers: 2,
            pod_ready_delay: Duration::ZERO,
            scheduler_tick_secs: 5,
        },
        &[
            ("FERRY_LOG", "warn"),
            ("FERRY_DATABASE_MAX_CONNECTIONS", &pool),
            ("FERRY_RATE_LIMIT_PER_SEC", "100000"),
            ("FERRY_RATE_LIMIT_BURST", "100000"),
            ("FERRY_TOKEN_RATE_PER_ADDRESS", "100000"),
            ("FERRY_TOKEN_BURST_PER_ADDRESS", "100000"),
        ],
    )
    .await;
    let api = Api::sign_in(&stack.api_url, &stack.admin).await;
    let setup = Instant::now();
    let fleet = Fleet::start(
        &stack,
        &api,
        FleetOptions {
            clusters: agents,
            ready_delay: Duration::from_millis(ready_ms),
            ready_jitter: Duration::from_millis(jitter_ms),
        },
    )
    .await;
    eprintln!(
        "{agents} agents connected in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    let seeding = Instant::now();
    seed(&fleet, rollouts).await;
    for member in &fleet.members {
        member.sim.journal(); // what seeding did is not measured
    }
    eprintln!(
        "{rollouts} applications running version 1 in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    let cpu = CpuUse::start(&parts(&stack));
    let began = Instant::now();
    let answered = submit(&api, &fleet, rollouts).await;
    let submitted = began.elapsed();
    eprintln!(
        "{rollouts} rollouts submitted in {:.1} s",
        submitted.as_secs_f64()
    );
    let mut samples = Samples::default();
    let (counts, ended) = wait_all(&stack, rollouts, Duration::from_secs(7200), &mut samples).await;
    let wall = ended - began;
    let cpu = cpu.since(&parts(&stack));
    let admins = stack.scheduler_admins();
    let handled = counter_sum(&admins, "ferry_bus_messages_handled_total").await;
    let stale = counter_sum(&admins, "ferry_scheduler_stale_wakes_total").await;

    let mut dropped = 0;
    let mut entries = Vec::new();
    for member in &fleet.members {
        let (taken, lost) = member.sim.journal();
        entries.extend(taken);
        dropped += lost;
    }
    let events = timeline::by_application(entries);
    let mut first = Vec::new();
    let mut readiness = Vec::new();
    let mut unwritten = 0;
    for (i, start) in &answered {
        let gaps = events
            .get(i)
            .map(|e| timeline::gaps(*start, e))
            .unwrap_or_default();
        let Gaps {
            first: f,
            readiness: r,
        } = gaps;
        match f {
            Some(f) => first.push(f),
            None => unwritten += 1,
        }
        readiness.extend(r);
    }
    let mut steps: Vec<Duration> = first.iter().chain(&readiness).copied().collect();
    for v in [&mut first, &mut readiness, &mut steps] {
        v.sort();
    }
    let finished = counts.get("succeeded").copied().unwrap_or(0);
    let row = |name: &str, v: &[Duration]| {
        format!(
            "{name:<22} {:>8} {:>10.1} {:>10.1} {:>10.1}",
            v.len(),
            percentile_ms(v, 0.5),
            percentile_ms(v, 0.99),
            v.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
        )
    };
    let rss_peak = samples.rss_peak.iter().copied().fold(0.0, f64::max);

    println!(
        "scale benchmark: {agents} clusters (simulators, agents in process) over 2 hubs, 2 schedulers; \
         {rollouts} canary rollouts (25%, 50%, promote; {REPLICAS} replicas) of running applications; \
         Pods ready {ready_ms}-{} ms after they start; database pools of {pool}",
        ready_ms + jitter_ms
    );
    println!(
        "ended: {counts:?} in {:.1} s (submitting took {:.1} s); {unwritten} rollouts wrote nothing; \
         journal entries dropped: {dropped}",
        wall.as_secs_f64(),
        submitted.as_secs_f64()
    );
    println!(
        "scheduler RSS peak {:?} MiB, at the end {:?} MiB; Postgres connections at most {}",
        samples
            .rss_peak
            .iter()
            .map(|m| m.round())
            .collect::<Vec<_>>(),
        samples
            .rss_end
            .iter()
            .map(|m| m.round())
            .collect::<Vec<_>>(),
        samples.pg_connections
    );
    println!(
        "scheduler messages handled {handled:.0} ({:.2} per step), of which wake-ups acked \
         without a pass (older than the deployment's last pass) {stale:.0}",
        handled / (steps.len().max(1) as f64)
    );
    let cpu_total: f64 = cpu.iter().map(|(_, s)| s).sum();
    println!(
        "CPU seconds while rolling out ({:.0} s of 2 cores' {:.0}): {}",
        cpu_total,
        2.0 * wall.as_secs_f64(),
        cpu.iter()
            .map(|(part, s)| format!("{part} {s:.0} ({:.0}%)", 100.0 * s / cpu_total.max(1e-9)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "{:<22} {:>8} {:>10} {:>10} {:>10}",
        "gap", "samples", "p50 ms", "p99 ms", "max ms"
    );
    println!("{}", row("every step", &steps));
    println!("{}", row("first step (API)", &first));
    println!("{}", row("after readiness", &readiness));
    println!(
        "{{\"bench\":\"scale\",\"agents\":{agents},\"rollouts\":{rollouts},\"finished\":{finished},\
         \"wall_s\":{:.1},\"step_p50_ms\":{},\"step_p99_ms\":{},\"readiness_lag_p50_ms\":{},\
         \"readiness_lag_p99_ms\":{},\"scheduler_rss_mib\":{:.0},\"pg_connections\":{},\
         \"scheduler_messages\":{handled:.0},\"stale_wakes\":{stale:.0}}}",
        wall.as_secs_f64(),
        json_ms(&steps, 0.5),
        json_ms(&steps, 0.99),
        json_ms(&readiness, 0.5),
        json_ms(&readiness, 0.99),
        rss_peak,
        samples.pg_connections
    );
}
