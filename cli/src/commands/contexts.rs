//! `ferry context ls|use|rm`: the named contexts of the credentials file (several APIs or
//! tenants, each with its own credential or sign-in).

use std::process::ExitCode;

use anyhow::bail;
use serde_json::{Value, json};

use super::Ctx;
use crate::args::ContextCommand;
use crate::config::{self, Credentials};
use crate::output;

/// Runs `ferry context …`.
pub(super) fn run(ctx: &Ctx, command: ContextCommand) -> anyhow::Result<ExitCode> {
    let path = config::credentials_path()?;
    let mut file = config::load_file(&path)?.unwrap_or_default();
    match command {
        ContextCommand::Ls => {
            let current = file.selected(ctx.global.context.as_deref()).to_string();
            let rows: Vec<Value> = file
                .contexts
                .iter()
                .map(|(name, c)| {
                    json!({
                        "name": name,
                        "current": *name == current,
                        "api": c.api,
                        "tenant": c.tenant,
                        "auth": auth_kind(c),
                    })
                })
                .collect();
            output::emit(ctx.format(), &Value::Array(rows), |v| {
                let mut text = String::new();
                for row in v.as_array().into_iter().flatten() {
                    text.push_str(&format!(
                        "{} {:<16} {:<32} {:<20} {}\n",
                        if row["current"] == true { "*" } else { " " },
                        output::field(row, "name"),
                        output::field(row, "api"),
                        row["tenant"].as_str().unwrap_or("-"),
                        output::field(row, "auth"),
                    ));
                }
                if text.is_empty() {
                    text.push_str("No contexts yet: ferry login [--context NAME].\n");
                }
                text
            });
        }
        ContextCommand::Use { name } => {
            config::check_context_name(&name)?;
            if !file.contexts.contains_key(&name) {
                bail!(
                    "there is no context {name:?} in {} (ferry context ls; ferry login --context {name})",
                    path.display()
                );
            }
            file.current = Some(name.clone());
            config::save(&path, &file)?;
            eprintln!("Now using context {name}.");
        }
        ContextCommand::Rm { name } => {
            config::check_context_name(&name)?;
            if file.contexts.remove(&name).is_none() {
                bail!("there is no context {name:?} in {}", path.display());
            }
            if file.current.as_deref() == Some(name.as_str()) {
                file.current = None;
            }
            config::save(&path, &file)?;
            eprintln!(
                "Removed context {name} (its tokens were not revoked: ferry logout does that)."
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How the context authenticates, without any secret.
fn auth_kind(c: &Credentials) -> String {
    match (&c.person, &c.client_id, &c.token) {
        (Some(p), _, _) => format!("person at {}", p.issuer),
        (None, Some(id), _) => format!("client {id}"),
        (None, None, Some(_)) => "token".into(),
        _ => "logged out".into(),
    }
}
