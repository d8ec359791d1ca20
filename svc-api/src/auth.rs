//! Bearer-token authentication for the REST API: the [`Principal`] extractor verifies the
//! `Authorization: Bearer` token and yields who is calling, for which tenant, with which roles;
//! it also spends one token of the tenant's rate limit. A machine credential's token is checked
//! against this issuer's own published keys (in process, audience `ferry-api`); a person's token
//! of the external OIDC issuer goes to [`identity::people`](crate::identity::people). [`roles`]
//! names which roles each kind of operation needs.

use crate::error::ApiError;
use crate::identity::{self, oidc, people};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use ferry_auth::AuthError;
use ferry_store::TenantId;
use ferry_store::roles::PrincipalKind;
use serde::Serialize;
use uuid::Uuid;

/// The caller of an API request, from a verified token. The tenant is the only one the request
/// may touch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The tenant the token was issued for.
    pub tenant: TenantId,
    /// The credential's or user's id.
    pub subject: String,
    /// Role names bound to the subject (a credential's when its token was issued, a person's
    /// now).
    pub roles: Vec<String>,
    /// A machine credential or a person (`user`).
    pub kind: PrincipalKind,
    /// A person's email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// When the token expires, seconds since the Unix epoch (long-lived responses such as
    /// event streams end then).
    #[serde(skip)]
    pub expires_at: u64,
}

impl Principal {
    /// Whether the principal holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// `Ok` when the principal holds `role`, else 403.
    pub fn require_role(&self, role: &str) -> Result<(), ApiError> {
        self.require_any_role(&[role])
    }

    /// `Ok` when the principal holds at least one of `roles`, else 403 naming them.
    pub fn require_any_role(&self, roles: &[&str]) -> Result<(), ApiError> {
        if roles.iter().any(|role| self.has_role(role)) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                roles.iter().map(std::string::ToString::to_string).collect(),
            ))
        }
    }
}

/// Built-in role names and which of them each kind of operation needs. Admins can do what
/// deployers can, deployers what viewers can; the Agent role gets nothing under `/v1`.
pub mod roles {
    /// Administers the organization's tenants (and everything in them).
    pub const ORGANIZATION_ADMIN: &str = "Organization Admin";
    /// Administers one tenant: roles, credentials, secrets, metric providers.
    pub const TENANT_ADMIN: &str = "Tenant Admin";
    /// Starts deployments and acts on them.
    pub const DEPLOYER: &str = "Deployer";
    /// Reads everything of the tenant except secrets' values.
    pub const VIEWER: &str = "Viewer";

    /// Roles that may read.
    pub const READ: &[&str] = &[VIEWER, DEPLOYER, TENANT_ADMIN, ORGANIZATION_ADMIN];
    /// Roles that may start and act on deployments.
    pub const DEPLOY: &[&str] = &[DEPLOYER, TENANT_ADMIN, ORGANIZATION_ADMIN];
    /// Roles that may manage the tenant's roles, credentials, secrets and providers.
    pub const ADMIN: &[&str] = &[TENANT_ADMIN, ORGANIZATION_ADMIN];
}

impl Principal {
    /// `Ok` when the principal may read the tenant's resources, else 403.
    pub fn can_read(&self) -> Result<(), ApiError> {
        self.require_any_role(roles::READ)
    }

    /// `Ok` when the principal may start and act on deployments, else 403.
    pub fn can_deploy(&self) -> Result<(), ApiError> {
        self.require_any_role(roles::DEPLOY)
    }

    /// `Ok` when the principal administers the tenant, else 403.
    pub fn can_admin(&self) -> Result<(), ApiError> {
        self.require_any_role(roles::ADMIN)
    }

    /// Whether the principal administers the tenant.
    pub fn is_admin(&self) -> bool {
        roles::ADMIN.iter().any(|role| self.has_role(role))
    }
}

/// `Ok` when `principal` holds `role`, else 403; for handlers that read better as a function.
pub fn require_role(principal: &Principal, role: &str) -> Result<(), ApiError> {
    principal.require_role(role)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Principal, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header is not a bearer token".into())
            })?;
        let principal = match (&state.people, oidc::unverified_issuer(token)) {
            (Some(issuer), Some(iss)) if iss == issuer.issuer() => {
                people::principal(state, issuer, &parts.headers, token).await?
            }
            (_, Some(iss)) if iss != state.issuer.issuer => {
                return Err(ApiError::Unauthorized(
                    "the token was issued by an issuer this API does not accept".into(),
                ));
            }
            _ if identity::local_people::is_person_token(token) => {
                identity::local_people::principal(state, &parts.headers, token).await?
            }
            _ => machine(state, token).await?,
        };
        // Limited per tenant, after verification: an unauthenticated flood cannot spend a
        // tenant's budget.
        state
            .limiter
            .acquire(principal.tenant)
            .map_err(|wait| ApiError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            })?;
        Ok(principal)
    }
}

/// The principal of a machine credential's token of this issuer.
async fn machine(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    let claims = state
        .keys
        .verify_api_token(token)
        .await
        .map_err(|error| ApiError::Unauthorized(refusal(&error).into()))?;
    let tenant = TenantId(claims.tenant);
    let credential = Uuid::parse_str(&claims.sub)
        .map_err(|_| ApiError::Unauthorized("the token's subject is not a credential".into()))?;
    if state.revocations.is_revoked(tenant, credential).await? {
        return Err(ApiError::Unauthorized(
            "the token's credential was revoked".into(),
        ));
    }
    Ok(Principal {
        tenant,
        subject: claims.sub,
        roles: claims.roles,
        kind: PrincipalKind::Credential,
        email: None,
        expires_at: claims.exp,
    })
}

impl Principal {
    /// Whether the principal's token still stands: not expired, and (for a machine credential)
    /// not revoked. Long-lived responses ask this again as they go.
    pub async fn still_valid(&self, state: &AppState) -> bool {
        if ferry_auth::unix_now() >= self.expires_at {
            return false;
        }
        match (self.kind, Uuid::parse_str(&self.subject)) {
            (PrincipalKind::Credential, Ok(credential)) => {
                // A database hiccup is not a revocation: the next check decides.
                !matches!(
                    state.revocations.is_revoked(self.tenant, credential).await,
                    Ok(true)
                )
            }
            _ => true,
        }
    }
}

/// What the caller is told about a refused token: enough to fix their side, nothing about keys.
fn refusal(error: &AuthError) -> &'static str {
    match error {
        AuthError::Expired => "the token has expired",
        AuthError::WrongAudience => "the token is not meant for this API (audience ferry-api)",
        AuthError::WrongIssuer => "the token was issued by another issuer",
        _ => "the token is invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_required_by_name() {
        let principal = Principal {
            tenant: TenantId::new(),
            subject: "c".into(),
            roles: vec!["Deployer".into()],
            kind: PrincipalKind::Credential,
            email: None,
            expires_at: u64::MAX,
        };
        assert!(principal.require_role("Deployer").is_ok());
        assert!(require_role(&principal, "Tenant Admin").is_err());
        assert!(
            principal
                .require_any_role(&["Tenant Admin", "Deployer"])
                .is_ok()
        );
        assert!(matches!(
            principal.require_any_role(&["Viewer"]),
            Err(ApiError::Forbidden(roles)) if roles == ["Viewer"]
        ));
    }
}
