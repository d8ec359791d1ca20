//! `ferry users …` and `ferry roles …`: the tenant's people and roles, through the same `/v1`
//! endpoints the UI uses (Tenant Admin).

use std::process::ExitCode;

use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::{Ctx, segment};
use crate::args::people::{MemberKind, RolesCommand, UsersCommand};
use crate::output::{self, Table, field, list, time};

/// Runs `ferry users …`.
pub(super) async fn users(ctx: &Ctx, command: UsersCommand) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    match command {
        UsersCommand::Ls => {
            let users: Value = client.get("/v1/users", &[]).await?;
            output::emit(ctx.format(), &users, |all| {
                let mut table = Table::new(&["EMAIL", "NAME", "ROLES", "SINCE"]);
                for u in all.as_array().into_iter().flatten() {
                    table.row(vec![
                        field(u, "email"),
                        field(u, "display_name"),
                        list(u, "roles"),
                        time(u, "created_at"),
                    ]);
                }
                table.render("No users: invite one with `ferry users set EMAIL --role Viewer`.")
            });
        }
        UsersCommand::Set { email, roles, name } => {
            let mut body = json!({ "roles": roles });
            if let Some(name) = name {
                body["displayName"] = Value::String(name);
            }
            let path = format!("/v1/users/{}/roles", segment(&email));
            let user: Value = client.put(&path, &body).await?;
            output::emit(ctx.format(), &user, |u| {
                format!("{} holds: {}.\n", field(u, "email"), roles_or_none(u))
            });
        }
        UsersCommand::Rm { email } => {
            client
                .delete::<IgnoredAny>(&format!("/v1/users/{}", segment(&email)))
                .await?;
            output::emit(
                ctx.format(),
                &json!({ "email": email, "removed": true }),
                |_| format!("User {email} removed.\n"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `ferry roles …`.
pub(super) async fn roles(ctx: &Ctx, command: RolesCommand) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    match command {
        RolesCommand::Ls => {
            let roles: Value = client.get("/v1/roles", &[]).await?;
            output::emit(ctx.format(), &roles, |all| {
                let mut table = Table::new(&["NAME", "BUILT-IN", "GRANTS"]);
                for r in all.as_array().into_iter().flatten() {
                    let built_in = if r["built_in"].as_bool() == Some(true) {
                        "yes"
                    } else {
                        "no"
                    };
                    table.row(vec![field(r, "name"), built_in.into(), list(r, "grants")]);
                }
                table.render("No roles.")
            });
        }
        RolesCommand::Create { name, grants } => {
            let role: Value = client
                .post("/v1/roles", &json!({ "name": name, "grants": grants }))
                .await?;
            output::emit(ctx.format(), &role, |r| {
                format!("Role {} created.\n", field(r, "name"))
            });
        }
        RolesCommand::Add { name, kind, id } => {
            let path = format!("/v1/roles/{}/members", segment(&name));
            client
                .post::<_, IgnoredAny>(&path, &member(kind, &id))
                .await?;
            output::emit(ctx.format(), &member(kind, &id), |_| {
                format!("Role {name} given to {} {id}.\n", kind_name(kind))
            });
        }
        RolesCommand::Remove { name, kind, id } => {
            let path = format!("/v1/roles/{}/members", segment(&name));
            client
                .delete_with::<_, IgnoredAny>(&path, &member(kind, &id))
                .await?;
            output::emit(ctx.format(), &member(kind, &id), |_| {
                format!("Role {name} taken from {} {id}.\n", kind_name(kind))
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The body naming a role's member.
fn member(kind: MemberKind, id: &str) -> Value {
    json!({ "kind": kind_name(kind), "id": id })
}

fn kind_name(kind: MemberKind) -> &'static str {
    match kind {
        MemberKind::User => "user",
        MemberKind::Credential => "credential",
    }
}

/// A user's roles for a sentence.
fn roles_or_none(user: &Value) -> String {
    let roles = list(user, "roles");
    if roles.is_empty() || roles == "-" {
        "no roles of their own".into()
    } else {
        roles
    }
}
