//! Bearer-token authentication for the REST API: the [`Principal`] extractor verifies the
//! `Authorization: Bearer` token against this issuer's own published keys (in process, audience
//! `ferry-api`) and yields who is calling, for which tenant, with which roles.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use ferry_auth::AuthError;
use ferry_store::TenantId;
use serde::Serialize;

/// The caller of an API request, from a verified token. The tenant is the only one the request
/// may touch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The tenant the token was issued for.
    pub tenant: TenantId,
    /// The credential (or user) id the token was issued to.
    pub subject: String,
    /// Role names bound to the subject when the token was issued.
    pub roles: Vec<String>,
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
                roles.iter().map(|r| r.to_string()).collect(),
            ))
        }
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
        let claims = state
            .keys
            .verify_api_token(token)
            .await
            .map_err(|error| ApiError::Unauthorized(refusal(&error).into()))?;
        Ok(Principal {
            tenant: TenantId(claims.tenant),
            subject: claims.sub,
            roles: claims.roles,
        })
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
