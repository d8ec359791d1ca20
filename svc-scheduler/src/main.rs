use anyhow::Context;
use clap::Parser;
use ferry_svc_scheduler::{DEFAULT_ADMIN_ADDR, Settings, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    let _telemetry = ferry_runtime::telemetry::init(&settings.common, "ferry-svc-scheduler")?;
    let addr = settings.common.admin_addr_or(DEFAULT_ADMIN_ADDR);
    let admin = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the admin address {addr} (FERRY_ADMIN_ADDR)"))?;
    run(settings, admin, ferry_runtime::shutdown::on_signals()).await
}
