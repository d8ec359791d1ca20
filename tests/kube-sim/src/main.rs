//! `kube-sim`: runs the Kubernetes API simulator (not a cluster) until Ctrl-C.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ferry_kube_sim::{Faults, SimConfig, parse_duration};

/// A Kubernetes API simulator for tests and demos: serves the Kubernetes REST API on
/// 127.0.0.1 and writes a kubeconfig for it. It is not a cluster: nothing runs.
#[derive(Debug, Parser)]
#[command(name = "kube-sim", version)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one; the kubeconfig has the real port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write the kubeconfig.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// How long a Pod takes to turn Ready (e.g. 500ms, 2s).
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    ready_delay: Duration,
    /// Serve plain HTTP instead of HTTPS with a generated CA (the bearer token is then not
    /// checked: kubectl does not send tokens over plain HTTP).
    #[arg(long)]
    plain_http: bool,
    /// Bearer token clients must send (default: random, written into the kubeconfig).
    #[arg(long, env = "KUBE_SIM_TOKEN")]
    token: Option<String>,
    /// Fault switch: latency added to every API request (e.g. 200ms).
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    latency: Duration,
    /// Fault switch: fraction of API requests answered with 500.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Fault switch: fraction of API requests whose connection is dropped.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Watch events kept per resource; older resourceVersions get 410 Gone.
    #[arg(long, default_value_t = 1000)]
    watch_history: usize,
    /// A namespace that exists from the start (repeatable), besides default, kube-system and
    /// kube-public.
    #[arg(long = "namespace", value_name = "NAME")]
    namespaces: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let faults = Faults {
        latency_ms: u64::try_from(args.latency.as_millis()).context("--latency is too large")?,
        error_rate: args.error_rate,
        drop_rate: args.drop_rate,
    };
    faults
        .validate()
        .map_err(anyhow::Error::msg)
        .context("invalid fault switches")?;
    let mut namespaces = SimConfig::default().namespaces;
    namespaces.extend(args.namespaces);
    let sim = ferry_kube_sim::start(SimConfig {
        port: args.port,
        plain_http: args.plain_http,
        ready_delay: args.ready_delay,
        token: args.token,
        faults,
        watch_history: args.watch_history,
        namespaces,
        ..SimConfig::default()
    })
    .await
    .context("starting the Kubernetes API simulator")?;
    sim.write_kubeconfig(&args.kubeconfig)
        .with_context(|| format!("writing the kubeconfig to {}", args.kubeconfig.display()))?;
    println!(
        "kube-sim (Kubernetes API simulator) serving {} ; kubeconfig: {}",
        sim.base_url(),
        args.kubeconfig.display()
    );
    // Stops on Ctrl-C or SIGTERM (how scripts and process managers stop it).
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    sim.shutdown().await;
    Ok(())
}
