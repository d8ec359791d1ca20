//! `ferry tenants [ls]|current|create`: the tenants the caller may see (an Organization Admin
//! sees the organization's, anyone else their own), the caller's tenant, and creating a tenant
//! in the organization.

use std::process::ExitCode;

use ferry_api::tenant::{CreateTenant, Tenant};

use super::Ctx;
use crate::args::TenantsCommand;
use crate::output::{self, Table, when};

/// Runs `ferry tenants …`.
pub(super) async fn run(ctx: &Ctx, command: Option<TenantsCommand>) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    match command.unwrap_or(TenantsCommand::Ls) {
        TenantsCommand::Ls => {
            let tenants: Vec<Tenant> = client.get("/v1/tenants", &[]).await?;
            output::emit(ctx.format(), &tenants, |list| table(list));
        }
        TenantsCommand::Current => {
            let tenant: Tenant = client.get("/v1/tenant", &[]).await?;
            output::emit(ctx.format(), &tenant, |t| table(std::slice::from_ref(t)));
        }
        TenantsCommand::Create {
            slug,
            name,
            admin_emails,
        } => {
            let body = CreateTenant {
                slug,
                name,
                admin_emails,
            };
            let tenant: Tenant = client.post("/v1/tenants", &body).await?;
            output::emit(ctx.format(), &tenant, |t| {
                format!("Created tenant {} ({}).\n", t.slug, t.id)
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn table(tenants: &[Tenant]) -> String {
    let mut table = Table::new(&["ID", "SLUG", "NAME", "CREATED"]);
    for t in tenants {
        table.row(vec![
            t.id.to_string(),
            t.slug.clone(),
            t.name.clone(),
            when(Some(t.created_at)),
        ]);
    }
    table.render("No tenants.")
}
