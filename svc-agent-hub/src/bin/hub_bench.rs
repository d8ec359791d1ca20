//! `hub-bench`: the hub benchmark run by `scripts/bench.sh hub` (not a timed test).
//!
//! (a) Round trip of a small request caller → bus → hub → agent → back, against a raw
//! RabbitMQ request/reply round trip of the same message size (the floor).
//! (b) Idle agent streams held by one replica at 1,000 and 10,000 agents, with the replica's
//! resident memory.
//!
//! The replica runs as a child process (this same binary, re-executed with
//! `FERRY_HUB_BENCH_CHILD=1`) so its resident memory is its own; callers and simulated agents
//! run in the parent. Prints a table, then one JSON line.
//!
//! The replica records its agents in Postgres like any other; they belong to the tenant with
//! slug `hub-bench`, created on the first run and reused (with the same agent rows) after.

use anyhow::{Context, bail};
use clap::Parser;
use ferry_agent_sim::{Script, SimAgent, SimOptions, SimReply};
use ferry_auth::{Claims, Signer};
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "FERRY_HUB_BENCH_CHILD";
const ISSUER: &str = "https://bench.ferry.local";
/// The slug of the tenant the benchmark's agents belong to.
const TENANT_SLUG: &str = "hub-bench";

/// Flags of the benchmark.
#[derive(Debug, Parser)]
#[command(name = "hub-bench")]
struct Args {
    /// Round trips measured per path (after a warm-up of a tenth as many).
    #[arg(long, default_value_t = 2000)]
    round_trips: usize,
    /// Stream counts to hold, in order.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    streams: Vec<usize>,
    /// Agents connecting at once while building up the streams.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// RabbitMQ.
    #[arg(
        long,
        env = "FERRY_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// Redis.
    #[arg(
        long,
        env = "FERRY_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
    /// Postgres, where the replica records its agents.
    #[arg(
        long,
        env = "FERRY_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/ferry"
    )]
    database_url: String,
}

fn main() -> anyhow::Result<()> {
    if std::env::var_os(CHILD_ENV).is_some() {
        return run_child();
    }
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(args))
}

/// The replica: the service itself, configured by the parent through the environment.
fn run_child() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let settings = ferry_svc_agent_hub::Settings::try_parse_from(["ferry-svc-agent-hub"])?;
        let _telemetry = ferry_runtime::telemetry::init(&settings.common, "ferry-svc-agent-hub")?;
        let listeners = ferry_svc_agent_hub::Listeners::bind(&settings).await?;
        ferry_svc_agent_hub::run(settings, listeners, ferry_runtime::shutdown::on_signals()).await
    })
}

struct Replica {
    child: Child,
    url: String,
}

impl Replica {
    fn start(prefix: &str, jwks: &std::path::Path, args: &Args) -> anyhow::Result<Replica> {
        let port = free_port()?;
        let admin = free_port()?;
        let child = Command::new(std::env::current_exe()?)
            .env(CHILD_ENV, "1")
            .env("FERRY_HUB_ADDR", format!("127.0.0.1:{port}"))
            .env("FERRY_ADMIN_ADDR", format!("127.0.0.1:{admin}"))
            .env("FERRY_HUB_INSECURE_PLAINTEXT", "true")
            .env("FERRY_BUS_PREFIX", prefix)
            .env("FERRY_AMQP_URL", &args.amqp_url)
            .env("FERRY_REDIS_URL", &args.redis_url)
            .env("FERRY_DATABASE_URL", &args.database_url)
            .env("FERRY_HUB_ISSUER", ISSUER)
            .env("FERRY_HUB_JWKS_FILE", jwks)
            .env("FERRY_HUB_REPLICA_ID", "bench")
            .env("FERRY_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("starting the replica process")?;
        Ok(Replica {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    /// Resident memory of the replica process, in KiB.
    fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc status")
    }

    fn stop(mut self) {
        // SIGTERM, so the replica drains and releases its routes.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The id of the `hub-bench` tenant (created if missing) and `count` fresh agent credentials of
/// it: each agent connects with its own, as the hub requires. Earlier runs' credentials are
/// deleted first, which frees their agents' identifiers.
async fn bench_tenant(
    database_url: &str,
    count: usize,
) -> anyhow::Result<(uuid::Uuid, Vec<uuid::Uuid>)> {
    use ferry_store::tenants;
    let pool = ferry_backends::connect::postgres(&ferry_backends::PostgresArgs {
        database_url: database_url.to_string(),
        database_max_connections: 1,
    })
    .await?;
    let store = ferry_store::Store::from_pool(pool);
    let tenant = match tenants::get_by_slug(&store, TENANT_SLUG).await {
        Ok(tenant) => tenant,
        Err(e) if e.is_not_found() => {
            let mut conn = store.pool().acquire().await?;
            let new = tenants::NewTenant {
                slug: TENANT_SLUG.into(),
                name: "Hub benchmark".into(),
                organization_id: None,
            };
            tenants::create(&mut conn, &new).await?
        }
        Err(e) => return Err(e.into()),
    };
    let tenant = tenant.id.as_uuid();
    sqlx::query("DELETE FROM credentials WHERE tenant_id = $1")
        .bind(tenant)
        .execute(store.pool())
        .await?;
    let credentials: Vec<uuid::Uuid> = sqlx::query_scalar(
        "INSERT INTO credentials (tenant_id, id, name, client_id, secret_hash)
         SELECT $1, gen_random_uuid(), 'bench-' || n, 'hub-bench-' || $1 || '-' || n, 'unused'
         FROM generate_series(1, $2) AS n
         RETURNING id",
    )
    .bind(tenant)
    .bind(i64::try_from(count)?)
    .fetch_all(store.pool())
    .await?;
    Ok((tenant, credentials))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// The small request's body and reply size, the same on both paths.
const SMALL: &str = r#"{"kind":"Status","apiVersion":"v1","status":"Success","code":200}"#;

async fn bench(args: Args) -> anyhow::Result<()> {
    ferry_runtime::telemetry::install_crypto();
    let prefix = format!(
        "bench_{}.",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let signer = Signer::generate_es256("bench")?;
    let jwks = std::env::temp_dir().join(format!("{prefix}jwks.json"));
    std::fs::write(&jwks, serde_json::to_vec(&signer.jwk_set())?)?;
    // One agent for the round trips, then the idle ones.
    let agents = 1 + args.streams.iter().copied().max().unwrap_or(0);
    let (tenant, credentials) = bench_tenant(&args.database_url, agents)
        .await
        .context("preparing the benchmark tenant in Postgres (FERRY_DATABASE_URL)")?;
    let tokens = credentials
        .iter()
        .map(|credential| {
            signer.sign(&Claims::new(
                ISSUER,
                credential.to_string(),
                ferry_auth::HUB_AUDIENCE,
                tenant,
                vec![ferry_auth::AGENT_ROLE.into()],
                Duration::from_secs(3600),
            ))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let replica = Replica::start(&prefix, &jwks, &args)?;
    let result = measure(&args, &replica, &prefix, &tokens, tenant).await;
    replica.stop();
    let _ = std::fs::remove_file(&jwks);
    let report = result?;

    println!();
    println!("{:<44} {:>12}", "measure", "value");
    println!("{:<44} {:>12}", "-".repeat(44), "-".repeat(12));
    println!(
        "{:<44} {:>12.3}",
        "tunnel round trip p50 (ms)", report.tunnel_p50
    );
    println!(
        "{:<44} {:>12.3}",
        "tunnel round trip p99 (ms)", report.tunnel_p99
    );
    println!(
        "{:<44} {:>12.3}",
        "raw RabbitMQ round trip p50 (ms)", report.raw_p50
    );
    println!(
        "{:<44} {:>12.3}",
        "raw RabbitMQ round trip p99 (ms)", report.raw_p99
    );
    println!(
        "{:<44} {:>12.2}",
        "tunnel p50 / raw p50",
        report.tunnel_p50 / report.raw_p50
    );
    println!(
        "{:<44} {:>12}",
        "replica RSS with no agent (KiB)", report.baseline_kib
    );
    for (streams, rss, per, setup) in &report.levels {
        println!(
            "{:<44} {:>12}",
            format!("replica RSS at {streams} streams (KiB)"),
            rss
        );
        println!(
            "{:<44} {:>12.1}",
            format!("  per stream at {streams} (KiB)"),
            per
        );
        println!(
            "{:<44} {:>12.1}",
            format!("  time to connect {streams} (s)"),
            setup
        );
    }
    let (streams, _, per_stream, _) = report.levels.last().copied().unwrap_or((0, 0, 0.0, 0.0));
    println!(
        "{}",
        serde_json::json!({
            "bench": "hub",
            "tunnel_p50_ms": round3(report.tunnel_p50),
            "tunnel_p99_ms": round3(report.tunnel_p99),
            "raw_p50_ms": round3(report.raw_p50),
            "ratio_p50": round3(report.tunnel_p50 / report.raw_p50),
            "streams": streams,
            "rss_per_stream_kib": round3(per_stream),
        })
    );
    Ok(())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

struct Report {
    tunnel_p50: f64,
    tunnel_p99: f64,
    raw_p50: f64,
    raw_p99: f64,
    baseline_kib: u64,
    /// (streams, RSS KiB, KiB per stream over the baseline, seconds to connect)
    levels: Vec<(usize, u64, f64, f64)>,
}

async fn measure(
    args: &Args,
    replica: &Replica,
    prefix: &str,
    tokens: &[String],
    tenant: uuid::Uuid,
) -> anyhow::Result<Report> {
    let bus = ferry_bus::Bus::connect(
        &args.amqp_url,
        "hub-bench",
        ferry_bus::Topology::new(prefix.to_string()),
    )
    .await?;
    let redis =
        redis::aio::ConnectionManager::new(redis::Client::open(args.redis_url.as_str())?).await?;
    let tunnel = ferry_tunnel::AgentTunnel::connect(&bus, redis, prefix).await?;

    // Wait for the replica to listen.
    let script = Script::new().on("GET", "/bench", SimReply::json(SMALL));
    let started = Instant::now();
    let agent = loop {
        match SimAgent::start(SimOptions::new(
            &replica.url,
            &tokens[0],
            "latency",
            script.clone(),
        ))
        .await
        {
            Ok(agent) => break agent,
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => bail!("the replica did not accept an agent within 30s: {e}"),
        }
    };
    let baseline_kib = replica.rss_kib()?;

    // (a) tunnel round trips.
    let t = tenant.to_string();
    let warm = (args.round_trips / 10).max(10);
    let mut tunnel_times = Vec::with_capacity(args.round_trips);
    for i in 0..warm + args.round_trips {
        let request =
            http::Request::get("/bench").body(bytes::Bytes::from_static(SMALL.as_bytes()))?;
        let start = Instant::now();
        let body = tunnel
            .kubernetes(&t, "latency", request)
            .await?
            .bytes()
            .await?;
        let elapsed = start.elapsed();
        if body.len() != SMALL.len() {
            bail!("unexpected tunnel reply of {} bytes", body.len());
        }
        if i >= warm {
            tunnel_times.push(elapsed);
        }
    }
    tunnel_times.sort();
    drop(agent);

    // (a) the floor: a raw request/reply over RabbitMQ with the same sizes.
    // The baseline: the same round trips over a plain connection, without hub or agent.
    let amqp = Connection::connect(&args.amqp_url, ConnectionProperties::default()).await?;
    let mut raw_times = raw_round_trips(&amqp, prefix, warm, args.round_trips).await?;
    raw_times.sort();

    // (b) idle streams.
    let mut levels = Vec::new();
    let mut agents: Vec<SimAgent> = Vec::new();
    for &target in &args.streams {
        let started = Instant::now();
        let needed = target.saturating_sub(agents.len());
        let base = agents.len();
        let new: Vec<_> = futures::stream::iter(0..needed)
            .map(|n| {
                let options = SimOptions::new(
                    &replica.url,
                    &tokens[1 + base + n],
                    &format!("idle-{}", base + n),
                    Script::new(),
                );
                async move { SimAgent::start(options).await }
            })
            .buffer_unordered(args.connect_concurrency)
            .collect()
            .await;
        for agent in new {
            agents.push(agent.context("connecting an idle agent")?);
        }
        let setup = started.elapsed().as_secs_f64();
        // Let connection set-up garbage settle (allocator caches, first heartbeats).
        tokio::time::sleep(Duration::from_secs(3)).await;
        let connected = agents.iter().filter(|a| a.welcome().is_some()).count();
        if connected != target {
            bail!("only {connected} of {target} agents are connected");
        }
        let rss = replica.rss_kib()?;
        let per = rss.saturating_sub(baseline_kib) as f64 / target as f64;
        eprintln!(
            "{target} streams: replica RSS {rss} KiB ({per:.1} KiB per stream), connected in {setup:.1}s"
        );
        levels.push((target, rss, per, setup));
    }
    drop(agents);

    Ok(Report {
        tunnel_p50: percentile(&tunnel_times, 0.5),
        tunnel_p99: percentile(&tunnel_times, 0.99),
        raw_p50: percentile(&raw_times, 0.5),
        raw_p99: percentile(&raw_times, 0.99),
        baseline_kib,
        levels,
    })
}

/// Request/reply over a plain queue and direct reply-to, same payload sizes as the tunnel.
async fn raw_round_trips(
    amqp: &Connection,
    prefix: &str,
    warm: usize,
    count: usize,
) -> anyhow::Result<Vec<Duration>> {
    let queue = format!("{prefix}raw-bench");
    let server = amqp.create_channel().await?;
    server
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let mut requests = server
        .basic_consume(
            queue.as_str().into(),
            "raw-server".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let responder = tokio::spawn(async move {
        while let Some(Ok(delivery)) = requests.next().await {
            let Some(reply_to) = delivery.properties.reply_to().clone() else {
                continue;
            };
            let _ = server
                .basic_publish(
                    "".into(),
                    reply_to,
                    BasicPublishOptions::default(),
                    SMALL.as_bytes(),
                    BasicProperties::default(),
                )
                .await;
        }
    });

    let client = amqp.create_channel().await?;
    let mut replies = client
        .basic_consume(
            "amq.rabbitmq.reply-to".into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let mut times = Vec::with_capacity(count);
    for i in 0..warm + count {
        let start = Instant::now();
        client
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                SMALL.as_bytes(),
                BasicProperties::default().with_reply_to("amq.rabbitmq.reply-to".into()),
            )
            .await?;
        let reply = replies.next().await.context("raw reply consumer ended")??;
        let elapsed = start.elapsed();
        if reply.data.len() != SMALL.len() {
            bail!("unexpected raw reply");
        }
        if i >= warm {
            times.push(elapsed);
        }
    }
    responder.abort();
    Ok(times)
}
