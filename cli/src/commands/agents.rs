//! `ferry agents ls`: the tenant's agents, whether each is connected, its versions, last
//! heartbeat and hub replica.

use std::process::ExitCode;

use ferry_api::tenant::AgentStatus;

use super::Ctx;
use crate::args::AgentsCommand;
use crate::output::{self, Table, or_dash, when};

/// Runs `ferry agents …`.
pub(super) async fn run(ctx: &Ctx, command: AgentsCommand) -> anyhow::Result<ExitCode> {
    match command {
        AgentsCommand::Ls => {
            let agents: Vec<AgentStatus> = ctx.client()?.get("/v1/agents", &[]).await?;
            output::emit(ctx.format(), &agents, |a| text(a));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn text(agents: &[AgentStatus]) -> String {
    let mut table = Table::new(&[
        "IDENTIFIER",
        "CONNECTED",
        "AGENT",
        "KUBERNETES",
        "LAST HEARTBEAT",
        "HUB",
    ]);
    for a in agents {
        // The API judges staleness (a hub killed outright records no disconnect).
        let agent = &a.agent;
        table.row(vec![
            agent.identifier.clone(),
            if a.connected { "yes" } else { "no" }.into(),
            or_dash(Some(&agent.agent_version)),
            or_dash(Some(&agent.kubernetes_version)),
            when(agent.last_heartbeat_at),
            or_dash(agent.hub_replica.as_deref()),
        ]);
    }
    table.render("No agents have connected yet.")
}
