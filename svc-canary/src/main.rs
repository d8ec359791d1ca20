use clap::Parser;
use ferry_svc_canary::{DEFAULT_ADMIN_ADDR, Settings, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    ferry_runtime::telemetry::init(&settings.common)?;
    let admin = tokio::net::TcpListener::bind(settings.common.admin_addr_or(DEFAULT_ADMIN_ADDR)).await?;
    run(settings, admin, ferry_runtime::shutdown::on_signals()).await
}
