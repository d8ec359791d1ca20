//! `ferry tenants [ls]|current|create`: the tenants the caller may see (an Organization Admin
//! sees the organization's, anyone else their own), the caller's tenant, and creating a tenant
//! in the organization.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::Ctx;
use crate::args::TenantsCommand;
use crate::output::{self, Table, field, time};

/// Runs `ferry tenants …`.
pub(super) async fn run(ctx: &Ctx, command: Option<TenantsCommand>) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    match command.unwrap_or(TenantsCommand::Ls) {
        TenantsCommand::Ls => {
            let tenants: Value = client.get("/v1/tenants", &[]).await?;
            output::emit(ctx.format(), &tenants, |list| {
                table(list.as_array().into_iter().flatten())
            });
        }
        TenantsCommand::Current => {
            let tenant: Value = client.get("/v1/tenant", &[]).await?;
            output::emit(ctx.format(), &tenant, |t| table([t]));
        }
        TenantsCommand::Create {
            slug,
            name,
            admin_emails,
        } => {
            let body = json!({ "slug": slug, "name": name, "adminEmails": admin_emails });
            let tenant: Value = client.post("/v1/tenants", &body).await?;
            output::emit(ctx.format(), &tenant, |t| {
                format!(
                    "Created tenant {} ({}).\n",
                    field(t, "slug"),
                    field(t, "id")
                )
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn table<'a>(tenants: impl IntoIterator<Item = &'a Value>) -> String {
    let mut table = Table::new(&["ID", "SLUG", "NAME", "CREATED"]);
    for t in tenants {
        table.row(vec![
            field(t, "id"),
            field(t, "slug"),
            field(t, "name"),
            time(t, "created_at"),
        ]);
    }
    table.render("No tenants.")
}
