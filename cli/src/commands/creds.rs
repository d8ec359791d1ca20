//! `ferry creds create|ls|rm`: the tenant's machine credentials. A new credential's secret is
//! shown once, when it is created; listing never shows secrets.

use std::process::ExitCode;

use ferry_api::credentials::{CreateCredential, CreatedCredential, Credential};

use super::{Ctx, segment};
use crate::args::CredsCommand;
use crate::output::{self, Table, joined, when};

/// Runs `ferry creds …`.
pub(super) async fn run(ctx: &Ctx, command: CredsCommand) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    match command {
        CredsCommand::Create { name, roles } => {
            let created: CreatedCredential = client
                .post("/v1/credentials", &CreateCredential { name, roles })
                .await?;
            output::emit(ctx.format(), &created, |c| {
                format!(
                    "Created credential {} ({}).\nclient_id:     {}\nclient_secret: {}\nroles:         {}\n\n\
                     The secret is shown only this once: store it now.\n",
                    c.name,
                    c.id,
                    c.client_id,
                    c.client_secret,
                    joined(&c.roles),
                )
            });
        }
        CredsCommand::Ls => {
            let creds: Vec<Credential> = client.get("/v1/credentials", &[]).await?;
            output::emit(ctx.format(), &creds, |c| table(c));
        }
        CredsCommand::Rm { id } => {
            let revoked: Credential = client
                .delete(&format!("/v1/credentials/{}", segment(&id)))
                .await?;
            output::emit(ctx.format(), &revoked, |c| {
                format!(
                    "Revoked credential {} ({}); its tokens are refused from now on.\n",
                    c.name, c.id
                )
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn table(creds: &[Credential]) -> String {
    let mut table = Table::new(&["ID", "NAME", "CLIENT ID", "ROLES", "CREATED", "REVOKED"]);
    for c in creds {
        table.row(vec![
            c.id.to_string(),
            c.name.clone(),
            c.client_id.clone(),
            joined(&c.roles),
            when(Some(c.created_at)),
            when(c.revoked_at),
        ]);
    }
    table.render("No credentials.")
}
