//! `ferry creds create|ls|rm`: the tenant's machine credentials. A new credential's secret is
//! shown once, when it is created; listing never shows secrets.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::{Ctx, segment};
use crate::args::CredsCommand;
use crate::output::{self, Table, field, list, time};

/// Runs `ferry creds …`.
pub(super) async fn run(ctx: &Ctx, command: CredsCommand) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    match command {
        CredsCommand::Create { name, roles } => {
            let created: Value = client
                .post("/v1/credentials", &json!({ "name": name, "roles": roles }))
                .await?;
            output::emit(ctx.format(), &created, |c| {
                format!(
                    "Created credential {} ({}).\nclient_id:     {}\nclient_secret: {}\nroles:         {}\n\n\
                     The secret is shown only this once: store it now.\n",
                    field(c, "name"),
                    field(c, "id"),
                    field(c, "clientId"),
                    field(c, "clientSecret"),
                    list(c, "roles"),
                )
            });
        }
        CredsCommand::Ls => {
            let creds: Value = client.get("/v1/credentials", &[]).await?;
            output::emit(ctx.format(), &creds, table);
        }
        CredsCommand::Rm { id } => {
            let revoked: Value = client
                .delete(&format!("/v1/credentials/{}", segment(&id)))
                .await?;
            output::emit(ctx.format(), &revoked, |c| {
                format!(
                    "Revoked credential {} ({}); its tokens are refused from now on.\n",
                    field(c, "name"),
                    field(c, "id")
                )
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn table(creds: &Value) -> String {
    let mut table = Table::new(&["ID", "NAME", "CLIENT ID", "ROLES", "CREATED", "REVOKED"]);
    for c in creds.as_array().into_iter().flatten() {
        table.row(vec![
            field(c, "id"),
            field(c, "name"),
            field(c, "client_id"),
            list(c, "roles"),
            time(c, "created_at"),
            time(c, "revoked_at"),
        ]);
    }
    table.render("No credentials.")
}
