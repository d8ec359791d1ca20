//! `ferry-svc-api bootstrap`: creates the first tenant and an admin credential without an
//! existing token. Idempotent: a second run with the same names creates nothing and does not
//! show the secret again (only its hash exists). Runs under an advisory lock so two concurrent
//! runs cannot both create the credential.

use crate::identity::crypto::{CryptoError, generate_client_id, generate_secret, hash_secret};
use crate::settings::BootstrapArgs;
use ferry_store::audit::{self, NewAuditEntry};
use ferry_store::credentials::{self, NewCredential};
use ferry_store::tenants::{self, NewTenant};
use ferry_store::{Store, StoreError, TenantId};
use serde::Serialize;
use uuid::Uuid;

/// The advisory lock key serialising bootstraps ("ferryboo").
const BOOTSTRAP_LOCK: i64 = 0x6665_7272_7962_6f6f;

/// Why bootstrap failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The store refused (an unknown role, an invalid slug) or failed.
    #[error("store operation failed")]
    Store(#[from] StoreError),
    /// Postgres failed outside a store call.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// The secret could not be hashed.
    #[error("hashing the secret")]
    Crypto(#[from] CryptoError),
    /// A credential with this name exists but is revoked; reusing the name would hide that.
    #[error("credential {0:?} exists in this tenant but is revoked; choose another name")]
    Revoked(String),
    /// The tenant slug is not `[a-z0-9][a-z0-9-]{0,62}`.
    #[error("tenant {0:?} is not a valid slug (lowercase letters, digits and '-', 63 at most)")]
    InvalidSlug(String),
}

/// What bootstrap did.
#[derive(Clone, Debug, Serialize)]
pub struct BootstrapOutcome {
    /// The tenant's id.
    pub tenant_id: TenantId,
    /// The tenant's slug.
    pub tenant: String,
    /// Whether this run created the tenant.
    pub tenant_created: bool,
    /// The credential's id (the `sub` of its tokens).
    pub credential_id: Uuid,
    /// The client id to authenticate with.
    pub client_id: String,
    /// The secret, only when this run created the credential: it is never shown again.
    pub client_secret: Option<String>,
    /// Whether this run created the credential.
    pub credential_created: bool,
    /// Roles bound to the credential.
    pub roles: Vec<String>,
}

impl BootstrapOutcome {
    /// The text printed for an operator: JSON (one object) or lines meant for a terminal.
    pub fn render(&self, json: bool) -> String {
        if json {
            return serde_json::to_string_pretty(self).unwrap_or_default();
        }
        let mut out = format!(
            "tenant:        {} ({}{})\nclient_id:     {}\nroles:         {}\n",
            self.tenant,
            self.tenant_id,
            if self.tenant_created {
                ", created"
            } else {
                ", existing"
            },
            self.client_id,
            self.roles.join(", "),
        );
        match &self.client_secret {
            Some(secret) => out.push_str(&format!(
                "client_secret: {secret}\n\nThe secret is shown only this once: store it now.\n"
            )),
            None => out.push_str(
                "\nThe credential already existed; its secret was shown when it was created \
                 and cannot be shown again.\n",
            ),
        }
        out
    }
}

/// Creates the tenant `args.tenant` and the credential `args.client_name` bound to
/// `args.roles`, each only if missing.
pub async fn bootstrap(
    store: &Store,
    args: &BootstrapArgs,
) -> Result<BootstrapOutcome, BootstrapError> {
    if !valid_slug(&args.tenant) {
        return Err(BootstrapError::InvalidSlug(args.tenant.clone()));
    }
    let mut tx = store.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(BOOTSTRAP_LOCK)
        .execute(&mut *tx)
        .await?;

    // Looking a tenant up by slug is an operator action across tenants; ferry-store has no
    // function for it, and the query is one line.
    let existing: Option<TenantId> = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1")
        .bind(&args.tenant)
        .fetch_optional(&mut *tx)
        .await?;
    let (tenant, tenant_created) = match existing {
        Some(id) => (id, false),
        None => {
            let created = tenants::create(
                &mut tx,
                &NewTenant {
                    slug: args.tenant.clone(),
                    name: args.tenant.clone(),
                    organization_id: None,
                },
            )
            .await?;
            audit::append(
                &mut tx,
                created.id,
                &audit_entry("tenant.create", "tenant", created.id.to_string()),
            )
            .await?;
            (created.id, true)
        }
    };

    let found = if tenant_created {
        None
    } else {
        credentials::list(store, tenant)
            .await?
            .into_iter()
            .find(|c| c.name == args.client_name)
    };
    let outcome = match found {
        Some(credential) if credential.revoked_at.is_some() => {
            return Err(BootstrapError::Revoked(args.client_name.clone()));
        }
        Some(credential) => BootstrapOutcome {
            tenant_id: tenant,
            tenant: args.tenant.clone(),
            tenant_created,
            credential_id: credential.id,
            client_id: credential.client_id,
            client_secret: None,
            credential_created: false,
            roles: credential.roles,
        },
        None => {
            let secret = generate_secret();
            let to_hash = secret.clone();
            let secret_hash = tokio::task::spawn_blocking(move || hash_secret(&to_hash))
                .await
                .map_err(|_| CryptoError::Seal)??;
            let credential = credentials::create(
                &mut tx,
                tenant,
                &NewCredential {
                    name: args.client_name.clone(),
                    client_id: generate_client_id(),
                    secret_hash,
                    roles: args.roles.clone(),
                },
            )
            .await?;
            audit::append(
                &mut tx,
                tenant,
                &audit_entry("credential.create", "credential", credential.id.to_string()),
            )
            .await?;
            BootstrapOutcome {
                tenant_id: tenant,
                tenant: args.tenant.clone(),
                tenant_created,
                credential_id: credential.id,
                client_id: credential.client_id,
                client_secret: Some(secret),
                credential_created: true,
                roles: credential.roles,
            }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

fn audit_entry(action: &str, kind: &str, id: String) -> NewAuditEntry {
    NewAuditEntry {
        actor: "bootstrap".into(),
        action: action.into(),
        resource_kind: kind.into(),
        resource_id: id,
        details: serde_json::json!({}),
    }
}

/// The tenants table's slug rule, checked first for a clear message.
pub(crate) fn valid_slug(slug: &str) -> bool {
    let bytes = slug.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_table_rule() {
        assert!(valid_slug("acme-1"));
        assert!(!valid_slug("-acme"));
        assert!(!valid_slug("Acme"));
        assert!(!valid_slug(""));
        assert!(!valid_slug(&"a".repeat(64)));
    }
}
