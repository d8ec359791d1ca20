//! `ferry login` checks a credential (client id and secret, or a token) against the API and
//! saves it with the API's address in the credentials file; `ferry whoami` shows who the API
//! takes the caller for.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::{Value, json};

use super::{Ctx, read_stdin};
use crate::args::LoginArgs;
use crate::client::Client;
use crate::config::{self, Auth, Credentials, DEFAULT_API, Settings};
use crate::output::{self, list};

/// Runs `ferry login`.
pub async fn login(ctx: &Ctx, args: &LoginArgs) -> anyhow::Result<ExitCode> {
    let g = &ctx.global;
    let api = config::normalize_api(g.api.as_deref().unwrap_or(DEFAULT_API))?;
    let mut stored = Credentials {
        api: api.clone(),
        ..Credentials::default()
    };
    let auth = match (&g.token, &g.client_id) {
        (Some(token), _) => {
            stored.token = Some(token.clone());
            Auth::Token(token.clone())
        }
        (None, Some(id)) => {
            let secret = match (&g.client_secret, args.client_secret_stdin) {
                (_, true) => read_stdin("client secret")?.trim().to_string(),
                (Some(secret), false) => secret.clone(),
                (None, false) => bail!(
                    "ferry login needs the client secret: pass --client-secret, set FERRY_CLIENT_SECRET, or use --client-secret-stdin"
                ),
            };
            if secret.is_empty() {
                bail!("the client secret is empty");
            }
            stored.client_id = Some(id.clone());
            stored.client_secret = Some(secret.clone());
            Auth::Client {
                id: id.clone(),
                secret,
            }
        }
        (None, None) => bail!(
            "ferry login needs a credential: --client-id and --client-secret (or FERRY_CLIENT_ID and FERRY_CLIENT_SECRET), or --token"
        ),
    };
    let client = Client::new(Settings {
        api: api.clone(),
        auth,
    })?;
    // Proves the credential works before anything is saved.
    let me = client.get("/v1/whoami", &[]).await?;
    let path = config::credentials_path()?;
    config::save(&path, &stored)?;
    let shown = json!({
        "api": api,
        "tenant": me["tenant"],
        "subject": me["subject"],
        "roles": me["roles"],
        "credentialsFile": path.display().to_string(),
    });
    output::emit(ctx.format(), &shown, |v| {
        format!(
            "Logged in to {} as {} (tenant {}, roles: {}).\nCredentials saved to {}.\n",
            output::field(v, "api"),
            output::field(v, "subject"),
            output::field(v, "tenant"),
            list(v, "roles"),
            output::field(v, "credentialsFile"),
        )
    });
    Ok(ExitCode::SUCCESS)
}

/// Runs `ferry whoami`.
pub async fn whoami(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    let me = client.get("/v1/whoami", &[]).await?;
    output::emit(ctx.format(), &me, |v: &Value| {
        format!(
            "api:     {}\ntenant:  {}\nsubject: {}\nroles:   {}\n",
            client.api(),
            output::field(v, "tenant"),
            output::field(v, "subject"),
            list(v, "roles")
        )
    });
    Ok(ExitCode::SUCCESS)
}
