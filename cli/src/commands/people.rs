//! `ferry users …` and `ferry roles …`: the tenant's people and roles, through the same `/v1`
//! endpoints the UI uses (Tenant Admin).

use std::process::ExitCode;

use anyhow::Context as _;
use ferry_api::people::{CreateRole, Member, PrincipalKind, Role, SetRoles, UserWithRoles};
use serde_json::json;

use super::{Ctx, segment};
use crate::args::people::{MemberKind, RolesCommand, UsersCommand};
use crate::output::{self, Table, joined, or_dash, when};

/// Runs `ferry users …`.
pub(super) async fn users(ctx: &Ctx, command: UsersCommand) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    match command {
        UsersCommand::Ls => {
            let users: Vec<UserWithRoles> = client.get("/v1/users", &[]).await?;
            output::emit(ctx.format(), &users, |all| {
                let mut table = Table::new(&["EMAIL", "NAME", "ROLES", "SINCE"]);
                for u in all {
                    table.row(vec![
                        u.user.email.clone(),
                        or_dash(Some(&u.user.display_name)),
                        joined(&u.roles),
                        when(Some(u.user.created_at)),
                    ]);
                }
                table.render("No users: invite one with `ferry users set EMAIL --role Viewer`.")
            });
        }
        UsersCommand::Set { email, roles, name } => {
            let body = SetRoles {
                roles,
                display_name: name,
            };
            let path = format!("/v1/users/{}/roles", segment(&email));
            let user: UserWithRoles = client.put(&path, &body).await?;
            output::emit(ctx.format(), &user, |u| {
                format!("{} holds: {}.\n", u.user.email, roles_or_none(&u.roles))
            });
        }
        UsersCommand::Rm { email } => {
            client
                .delete::<()>(&format!("/v1/users/{}", segment(&email)))
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
            let roles: Vec<Role> = client.get("/v1/roles", &[]).await?;
            output::emit(ctx.format(), &roles, |all| {
                let mut table = Table::new(&["NAME", "BUILT-IN", "GRANTS"]);
                for r in all {
                    table.row(vec![
                        r.name.clone(),
                        if r.built_in { "yes" } else { "no" }.into(),
                        joined(&r.grants),
                    ]);
                }
                table.render("No roles.")
            });
        }
        RolesCommand::Create { name, grants } => {
            let role: Role = client
                .post("/v1/roles", &CreateRole { name, grants })
                .await?;
            output::emit(ctx.format(), &role, |r| {
                format!("Role {} created.\n", r.name)
            });
        }
        RolesCommand::Add { name, kind, id } => {
            let path = format!("/v1/roles/{}/members", segment(&name));
            let member = member(kind, &id)?;
            client.post::<_, ()>(&path, &member).await?;
            output::emit(ctx.format(), &member, |m| {
                format!("Role {name} given to {} {id}.\n", m.kind.as_str())
            });
        }
        RolesCommand::Remove { name, kind, id } => {
            let path = format!("/v1/roles/{}/members", segment(&name));
            let member = member(kind, &id)?;
            client.delete_with::<_, ()>(&path, &member).await?;
            output::emit(ctx.format(), &member, |m| {
                format!("Role {name} taken from {} {id}.\n", m.kind.as_str())
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The body naming a role's member; `id` must be a user's or credential's id.
fn member(kind: MemberKind, id: &str) -> anyhow::Result<Member> {
    let kind = match kind {
        MemberKind::User => PrincipalKind::User,
        MemberKind::Credential => PrincipalKind::Credential,
    };
    let id = id.parse().with_context(|| {
        format!(
            "--id {id:?} is not a {} id (a UUID, see `ferry {} ls -o json`)",
            kind.as_str(),
            if kind == PrincipalKind::User {
                "users"
            } else {
                "creds"
            }
        )
    })?;
    Ok(Member { kind, id })
}

/// A user's roles for a sentence.
fn roles_or_none(roles: &[String]) -> String {
    if roles.is_empty() {
        "no roles of their own".into()
    } else {
        roles.join(", ")
    }
}
