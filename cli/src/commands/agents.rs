//! `ferry agents ls`: the tenant's agents, whether each is connected, its versions, last
//! heartbeat and hub replica.

use std::process::ExitCode;

use serde_json::Value;

use super::Ctx;
use crate::args::AgentsCommand;
use crate::output::{self, Table, field, time};

/// Runs `ferry agents …`.
pub(super) async fn run(ctx: &Ctx, command: AgentsCommand) -> anyhow::Result<ExitCode> {
    match command {
        AgentsCommand::Ls => {
            let agents: Value = ctx.client()?.get("/v1/agents", &[]).await?;
            output::emit(ctx.format(), &agents, text);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn text(agents: &Value) -> String {
    let mut table = Table::new(&[
        "IDENTIFIER",
        "CONNECTED",
        "AGENT",
        "KUBERNETES",
        "LAST HEARTBEAT",
        "HUB",
    ]);
    for a in agents.as_array().into_iter().flatten() {
        // The API judges staleness (a hub killed outright records no disconnect).
        let connected = a["connected"].as_bool().unwrap_or(false);
        table.row(vec![
            field(a, "identifier"),
            if connected { "yes" } else { "no" }.into(),
            field(a, "agent_version"),
            field(a, "kubernetes_version"),
            time(a, "last_heartbeat_at"),
            field(a, "hub_replica"),
        ]);
    }
    table.render("No agents have connected yet.")
}
