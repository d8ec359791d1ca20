//! `ferry-agent-sim`: opens N simulated agent streams against a hub, for load tests. Every
//! agent answers `GET /healthz` and `GET /api/v1/namespaces/default/pods` (an empty list).

use anyhow::Context;
use clap::Parser;
use ferry_agent_sim::{Script, SimAgent, SimOptions, SimReply};

/// Flags of the simulator.
#[derive(Debug, Parser)]
#[command(
    name = "ferry-agent-sim",
    about = "Simulated Ferry agents for load tests"
)]
struct Args {
    /// Hub address, e.g. `https://hub.example:7443` (repeat for several replicas).
    #[arg(long, required = true)]
    hub: Vec<String>,
    /// Number of agents to run.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// File holding the bearer token.
    #[arg(long)]
    token_file: std::path::PathBuf,
    /// PEM CA certificate to trust for https hubs.
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
    /// Agent ids are `{prefix}-{n}`.
    #[arg(long, default_value = "sim")]
    id_prefix: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let token = std::fs::read_to_string(&args.token_file)
        .with_context(|| format!("reading {}", args.token_file.display()))?
        .trim()
        .to_string();
    let ca_pem = match &args.ca_file {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    let script = Script::new()
        .on("GET", "/healthz", SimReply::text(200, "ok"))
        .on(
            "GET",
            "/api/v1/namespaces/default/pods",
            SimReply::json(r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[]}"#),
        );
    let mut agents = Vec::with_capacity(args.count);
    for n in 0..args.count {
        let options = SimOptions {
            endpoints: args.hub.clone(),
            ca_pem: ca_pem.clone(),
            tls_domain: None,
            token: token.clone(),
            agent_id: format!("{}-{n}", args.id_prefix),
            script: script.clone(),
            reconnect: true,
        };
        agents.push(
            SimAgent::start(options)
                .await
                .with_context(|| format!("connecting agent {n}"))?,
        );
    }
    tracing::info!(count = agents.len(), "agents connected; Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
