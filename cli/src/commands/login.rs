//! `ferry login` saves a context of the credentials file: a machine credential (client id and
//! secret) or a token, checked against the API, or a person's sign-in with the device flow
//! ([`crate::device`]) at the issuer the API names (or `--issuer`). `ferry logout` forgets the
//! context's tokens, revoking a person's refresh token at the issuer. `ferry whoami` shows who
//! the API takes the caller for.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use ferry_api::tenant::Whoami;
use serde_json::json;

use super::{Ctx, read_stdin};
use crate::args::LoginArgs;
use crate::client::Client;
use crate::config::{
    self, Auth, Credentials, DEFAULT_API, PersonAuth, PersonSession, SavedAt, Settings,
};
use crate::device::{self, SignInIssuer};
use crate::output::{self, list};

/// Runs `ferry login`.
pub(super) async fn login(ctx: &Ctx, args: &LoginArgs) -> anyhow::Result<ExitCode> {
    let g = &ctx.global;
    let path = config::credentials_path()?;
    let mut file = config::load_file(&path)?.unwrap_or_default();
    let name = file.selected(g.context.as_deref()).to_string();
    config::check_context_name(&name)?;
    let previous = file.contexts.get(&name).cloned();
    // A context keeps its API and tenant unless flags or environment name others.
    let api = config::normalize_api(
        g.api
            .as_deref()
            .or(previous.as_ref().map(|c| c.api.as_str()))
            .unwrap_or(DEFAULT_API),
    )?;
    let mut stored = Credentials {
        api: api.clone(),
        tenant: g.tenant.clone().or_else(|| previous.and_then(|c| c.tenant)),
        ..Credentials::default()
    };
    let person = args.device || (g.token.is_none() && g.client_id.is_none());
    let auth = match (&g.token, &g.client_id) {
        _ if person => {
            if g.token.is_some() || g.client_id.is_some() {
                bail!("--device signs a person in: drop --token and --client-id");
            }
            let session = sign_in_person(&api, args.issuer.as_deref()).await?;
            stored.person = Some(session.clone());
            Auth::Person(Box::new(PersonAuth {
                session,
                saved_at: None,
            }))
        }
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
        (None, None) => unreachable!("no credential means a person's sign-in"),
    };
    let settings = Settings::resolve(
        &config_only(g),
        Some(&stored),
        Some(SavedAt {
            path: path.clone(),
            context: name.clone(),
        }),
    )?;
    let client = Client::new(Settings { auth, ..settings })?;
    // Proves the credential works before anything is saved; a person without a tenant cannot
    // ask yet (the API needs X-Ferry-Tenant).
    let me: Option<Whoami> = if stored.person.is_some() && stored.tenant.is_none() {
        None
    } else {
        Some(client.get("/v1/whoami", &[]).await?)
    };
    file.contexts.insert(name.clone(), stored.clone());
    if file.current.is_none() || g.context.is_some() {
        file.current = Some(name.clone());
    }
    config::save(&path, &file)?;
    let shown = json!({
        "api": api,
        "context": name,
        "tenant": me.as_ref().map(|m| m.tenant),
        "tenantSlug": stored.tenant,
        "subject": me.as_ref().map_or("a person", |m| m.email.as_deref().unwrap_or(&m.subject)),
        "roles": me.as_ref().map_or(&[][..], |m| &m.roles[..]),
        "credentialsFile": path.display().to_string(),
    });
    output::emit(ctx.format(), &shown, |v| {
        let mut text = format!(
            "Logged in to {} as {} (context {}, tenant {}, roles: {}).\nCredentials saved to {}.\n",
            output::field(v, "api"),
            output::field(v, "subject"),
            output::field(v, "context"),
            v["tenantSlug"]
                .as_str()
                .map_or_else(|| output::field(v, "tenant"), str::to_string),
            list(v, "roles"),
            output::field(v, "credentialsFile"),
        );
        if v["tenantSlug"].is_null() && v["tenant"].is_null() {
            text.push_str(
                "No tenant chosen: pass --tenant SLUG (or set FERRY_TENANT) to commands, or log in again with it.\n",
            );
        }
        text
    });
    Ok(ExitCode::SUCCESS)
}

/// The global options without the credential flags (the login decides the credential).
fn config_only(g: &crate::args::GlobalArgs) -> crate::args::GlobalArgs {
    crate::args::GlobalArgs {
        token: None,
        client_id: None,
        client_secret: None,
        ..g.clone()
    }
}

/// The device flow at the issuer `wanted` (else the first the API names): shows the code and
/// where to enter it, waits for the person, and returns the session.
async fn sign_in_person(api: &str, wanted: Option<&str>) -> anyhow::Result<PersonSession> {
    let http = Client::new(Settings {
        api: api.to_string(),
        auth: Auth::None,
        tenant: None,
    })?;
    let http = http.http();
    let document = device::sign_in_document(http, api).await?;
    let issuer: SignInIssuer = match wanted {
        Some(url) => {
            let url = url.trim_end_matches('/');
            document
                .issuers
                .iter()
                .find(|i| i.issuer.trim_end_matches('/') == url)
                .cloned()
                .with_context(|| {
                    let known: Vec<&str> =
                        document.issuers.iter().map(|i| i.issuer.as_str()).collect();
                    format!(
                        "the API at {api} does not accept people's tokens of {url} (--issuer); it accepts {known:?}"
                    )
                })?
        }
        None => document
            .issuers
            .first()
            .cloned()
            .with_context(|| format!("the API at {api} names no issuer people sign in with"))?,
    };
    let metadata = device::discover(http, &issuer.issuer).await?;
    let scope = if issuer.kind == "local" {
        "openid offline_access"
    } else {
        "openid email profile offline_access"
    };
    let started = device::start(http, &metadata, &issuer.client_id, scope).await?;
    // The code goes to standard error, so `-o json` keeps standard output for the result.
    eprintln!(
        "To sign in, open {}\nand enter the code {} (or open {}).\nCode: {}\nWaiting for approval…",
        started.verification_uri,
        started.user_code,
        started
            .verification_uri_complete
            .as_deref()
            .unwrap_or(&started.verification_uri),
        started.user_code,
    );
    let tokens = device::wait_for_tokens(http, &metadata, &issuer.client_id, &started).await?;
    let token = match (issuer.bearer.as_str(), &tokens.id_token) {
        ("id_token", Some(id_token)) => id_token.clone(),
        ("id_token", None) => bail!(
            "the issuer {} answered without an ID token, which the API needs",
            issuer.issuer
        ),
        _ => tokens.access_token.clone(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(PersonSession {
        issuer: issuer.issuer,
        client_id: issuer.client_id,
        token_endpoint: metadata.token_endpoint,
        revocation_endpoint: metadata.revocation_endpoint,
        bearer: issuer.bearer,
        token,
        refresh_token: tokens.refresh_token,
        expires_at: tokens.expires_in.map(|secs| now + secs),
    })
}

/// Runs `ferry logout`: forgets the context's tokens and secret (keeping its API and tenant),
/// revoking a person's refresh token at the issuer first when it offers revocation.
pub(super) async fn logout(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let path = config::credentials_path()?;
    let Some(mut file) = config::load_file(&path)? else {
        bail!(
            "not logged in: there is no credentials file {}",
            path.display()
        );
    };
    let name = file.selected(ctx.global.context.as_deref()).to_string();
    let Some(context) = file.contexts.get_mut(&name) else {
        bail!(
            "there is no context {name:?} in {} (ferry context ls)",
            path.display()
        );
    };
    let mut revoked = false;
    if let Some(session) = &context.person {
        let http = Client::new(Settings {
            api: context.api.clone(),
            auth: Auth::None,
            tenant: None,
        })?;
        match device::revoke(http.http(), session).await {
            Ok(done) => revoked = done,
            // The tokens are forgotten anyway; the refresh token dies at its expiry.
            Err(error) => eprintln!("warning: cannot revoke the sign-in at its issuer: {error:#}"),
        }
    }
    context.person = None;
    context.token = None;
    context.client_id = None;
    context.client_secret = None;
    config::save(&path, &file)?;
    let shown = json!({ "context": name, "revoked": revoked });
    output::emit(ctx.format(), &shown, |v| {
        format!(
            "Logged out of context {}{}.\n",
            output::field(v, "context"),
            if v["revoked"] == true {
                " (the sign-in was revoked at its issuer)"
            } else {
                ""
            }
        )
    });
    Ok(ExitCode::SUCCESS)
}

/// Runs `ferry whoami`.
pub(super) async fn whoami(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let client = ctx.client()?;
    let me: Whoami = client.get("/v1/whoami", &[]).await?;
    output::emit(ctx.format(), &me, |m| {
        format!(
            "api:     {}\ntenant:  {}\nsubject: {}\nroles:   {}\n",
            client.api(),
            m.tenant,
            m.email.as_deref().unwrap_or(&m.subject),
            output::joined(&m.roles)
        )
    });
    Ok(ExitCode::SUCCESS)
}
