//! The ferry-agent binary: parse settings, start tracing, run until SIGTERM.

use anyhow::Context;
use clap::Parser;
use ferry_agent::{DEFAULT_ADMIN_ADDR, Settings, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    let _telemetry = ferry_runtime::telemetry::init(&settings.common, "ferry-agent")?;
    settings.validate()?;
    let admin_addr = settings.common.admin_addr_or(DEFAULT_ADMIN_ADDR);
    let admin = tokio::net::TcpListener::bind(admin_addr)
        .await
        .with_context(|| format!("binding FERRY_ADMIN_ADDR {admin_addr}"))?;
    run(settings, admin, ferry_runtime::shutdown::on_signals()).await
}
