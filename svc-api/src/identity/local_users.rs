//! `ferry-svc-api local-user`: a person with a local account of svc-api's own issuer, invited
//! to a tenant with roles, for installations and demos without an external identity provider.
//! The password comes from `FERRY_LOCAL_USER_PASSWORD` or is generated (32 random bytes) and
//! printed once; only its argon2 hash is stored. Running it again sets a new password and the
//! roles given. The person signs in to the web UI with it (the authorization-code flow of
//! [`super::authorize`]).

use crate::identity::crypto::{CryptoError, generate_secret, hash_secret};
use crate::settings::LocalUserArgs;
use ferry_store::audit::{self, NewAuditEntry};
use ferry_store::{Store, TenantId, sign_in};
use serde::Serialize;

/// Shortest password accepted from the environment.
const MIN_PASSWORD: usize = 12;

/// Why a local user could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LocalUserError {
    #[error("store operation failed")]
    Store(#[from] ferry_store::StoreError),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("hashing the password")]
    Crypto(#[from] CryptoError),
    #[error("the tenant {0:?} does not exist (create it with `bootstrap` first)")]
    NoTenant(String),
    #[error("{0:?} is not an email address")]
    Email(String),
    #[error("FERRY_LOCAL_USER_PASSWORD must be {MIN_PASSWORD} to 1024 characters")]
    Password,
    #[error("inviting the user: {0}")]
    Invite(String),
}

/// What was made.
#[derive(Clone, Debug, Serialize)]
pub struct LocalUser {
    pub email: String,
    pub tenant: String,
    pub roles: Vec<String>,
    /// Set when generated here: shown only this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl LocalUser {
    /// The outcome as text or one JSON object.
    pub fn render(&self, json: bool) -> String {
        if json {
            return serde_json::to_string_pretty(self).unwrap_or_default();
        }
        let mut out = format!(
            "email:    {}\ntenant:   {}\nroles:    {}\n",
            self.email,
            self.tenant,
            self.roles.join(", ")
        );
        if let Some(password) = &self.password {
            out.push_str(&format!(
                "password: {password}\n\nThe password is shown only this once.\n"
            ));
        }
        out
    }
}

/// Creates or updates the local account and invites it to the tenant with the roles.
pub async fn local_user(
    store: &Store,
    args: &LocalUserArgs,
    password: Option<String>,
) -> Result<LocalUser, LocalUserError> {
    let email = args.email.trim().to_lowercase();
    let valid_email = email.len() <= 254
        && email.split_once('@').is_some_and(|(user, host)| {
            !user.is_empty() && (host.contains(".") || host == "localhost")
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid_email {
        return Err(LocalUserError::Email(args.email.clone()));
    }
    let (password, generated) = match password {
        Some(p) if (MIN_PASSWORD..=1024).contains(&p.chars().count()) => (p, false),
        Some(_) => return Err(LocalUserError::Password),
        None => (generate_secret(), true),
    };
    let to_hash = password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_secret(&to_hash))
        .await
        .map_err(|_| CryptoError::Seal)??;
    let tenant: Option<TenantId> = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1")
        .bind(&args.tenant)
        .fetch_optional(store.pool())
        .await?;
    let tenant = tenant.ok_or_else(|| LocalUserError::NoTenant(args.tenant.clone()))?;
    let account = sign_in::put_local_account(store, &email, &hash).await?;
    let mut tx = store.begin().await?;
    let (user, _) = crate::v1::users::put_user(&mut tx, tenant, &email, &email, &args.roles)
        .await
        .map_err(|e| LocalUserError::Invite(e.to_string()))?;
    audit::append(
        &mut tx,
        tenant,
        &NewAuditEntry {
            actor: "ferry-svc-api local-user".into(),
            action: "user.local_account".into(),
            resource_kind: "user".into(),
            resource_id: user.user.id.to_string(),
            details: serde_json::json!({ "email": email, "roles": user.roles, "account": account }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(LocalUser {
        email,
        tenant: args.tenant.clone(),
        roles: user.roles,
        password: generated.then_some(password),
    })
}

/// Why a local account's email and password were not accepted.
#[derive(Debug)]
pub enum PasswordRefusal {
    /// Held back by the token endpoint's limits.
    Held(crate::identity::token_limits::Held),
    /// Unknown email or wrong password (told apart from neither).
    Wrong,
    /// The store failed (logged).
    Internal,
}

/// Checks a local account's email and password with the token endpoint's limits: per source
/// address, per account's failures (keyed apart from client ids), bounded argon2 verifications,
/// and a decoy hash for unknown emails so timing does not reveal which accounts exist. Shared
/// by the web UI's sign-in form and the device verification page.
pub async fn check_password(
    state: &crate::state::AppState,
    peer: std::net::IpAddr,
    email: &str,
    password: &str,
) -> Result<sign_in::LocalAccount, PasswordRefusal> {
    let failure_key = format!("local-account:{email}");
    state
        .token_limits
        .admit_address(peer)
        .map_err(PasswordRefusal::Held)?;
    state
        .token_limits
        .admit_client(&failure_key)
        .map_err(PasswordRefusal::Held)?;
    let account = sign_in::local_account(&state.store, email)
        .await
        .map_err(|error| {
            tracing::error!(error = %crate::identity::keys::error_chain(&error), "cannot look up a local account");
            PasswordRefusal::Internal
        })?;
    let hash = account.as_ref().map_or_else(
        || crate::identity::crypto::decoy_hash().to_string(),
        |a| a.password_hash.clone(),
    );
    let permit = state
        .token_limits
        .verification()
        .await
        .map_err(PasswordRefusal::Held)?;
    let password = password.to_string();
    let matches = tokio::task::spawn_blocking(move || {
        let _slot = permit;
        crate::identity::crypto::verify_secret(&password, &hash)
    })
    .await
    .unwrap_or(false);
    match account {
        Some(account) if matches => Ok(account),
        _ => {
            state.token_limits.failed(&failure_key);
            tracing::info!("local sign-in refused: wrong email or password");
            Err(PasswordRefusal::Wrong)
        }
    }
}
