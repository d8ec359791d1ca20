//! `ferry secrets set|ls|rm`: the tenant's secrets. Values go one way: set from `--value` or
//! standard input, never shown again.

use std::process::ExitCode;

use anyhow::bail;
use ferry_api::secrets::{SecretInfo, SetSecret};
use serde_json::json;

use super::{Ctx, read_stdin, segment};
use crate::args::SecretsCommand;
use crate::output::{self, Table, when};

/// Runs `ferry secrets …`.
pub(super) async fn run(ctx: &Ctx, command: SecretsCommand) -> anyhow::Result<ExitCode> {
    match command {
        SecretsCommand::Set { name, value } => {
            let value = match value {
                Some(v) => v,
                None => read_stdin("secret value")?,
            };
            if value.is_empty() {
                bail!("the value of secret {name} is empty");
            }
            let client = ctx.client()?;
            let path = format!("/v1/secrets/{}", segment(&name));
            client.put::<_, ()>(&path, &SetSecret { value }).await?;
            output::emit(ctx.format(), &json!({ "name": name, "set": true }), |_| {
                format!("Secret {name} set.\n")
            });
        }
        SecretsCommand::Ls => {
            let secrets: Vec<SecretInfo> = ctx.client()?.get("/v1/secrets", &[]).await?;
            output::emit(ctx.format(), &secrets, |list| {
                let mut table = Table::new(&["NAME", "CREATED", "UPDATED"]);
                for s in list {
                    table.row(vec![
                        s.name.clone(),
                        when(Some(s.created_at)),
                        when(Some(s.updated_at)),
                    ]);
                }
                table.render("No secrets.")
            });
        }
        SecretsCommand::Rm { name } => {
            let client = ctx.client()?;
            client
                .delete::<()>(&format!("/v1/secrets/{}", segment(&name)))
                .await?;
            output::emit(
                ctx.format(),
                &json!({ "name": name, "deleted": true }),
                |_| format!("Secret {name} deleted.\n"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
