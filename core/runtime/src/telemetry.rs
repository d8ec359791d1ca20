//! Tracing set-up: one subscriber per process, text for terminals or JSON for production, filtered
//! by `FERRY_LOG`.

use crate::settings::{CommonArgs, LogFormat};
use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber. Call once, first thing in `main`.
pub fn init(common: &CommonArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&common.log)
        .map_err(|e| anyhow::anyhow!("FERRY_LOG / --log: invalid filter {:?}: {e}", common.log))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match common.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("installing the tracing subscriber: {e}"))
}
