//! The svc-agent-hub binary: parse settings, start tracing, run until SIGTERM.

use clap::Parser;
use ferry_svc_agent_hub::{Listeners, Settings, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    let _telemetry = ferry_runtime::telemetry::init(&settings.common, "ferry-svc-agent-hub")?;
    settings.validate()?;
    let listeners = Listeners::bind(&settings).await?;
    run(settings, listeners, ferry_runtime::shutdown::on_signals()).await
}
