//! People: from a token of the external OIDC issuer ([`super::oidc`]) to a [`Principal`] of one
//! tenant.
//!
//! The tenant is the token's `ferry_tenant` claim or, without one, the request's
//! `X-Ferry-Tenant` header (a tenant slug). The person is the tenant's user bound to the token's
//! issuer and subject. Users exist only by invitation (`PUT /v1/users/{email}/roles` by a tenant
//! administrator): signing in never creates one, so a valid token of the provider alone reaches
//! nothing. An invitation names an email; the first sign-in with that email, verified by the
//! provider (`email_verified: true`), binds the user to the token's issuer and subject, and from
//! then on only that identity is that user (an email changed or reused at the provider reaches
//! nothing). The roles are the user's role bindings in the tenant plus those its provider groups
//! map to (`FERRY_OIDC_GROUP_ROLES`). A person who is not a user of the tenant, or holds no role
//! in it, is answered exactly as for a tenant that does not exist (404), so tenants and
//! memberships cannot be probed.

use super::oidc::{OidcError, OidcIssuer, TENANT_CLAIM};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use axum::http::HeaderMap;
use ferry_store::StoreError;
use ferry_store::roles::PrincipalKind;
use ferry_store::users;

/// The header naming the tenant (by slug) a person's request is for.
pub const TENANT_HEADER: &str = "x-ferry-tenant";

/// The principal of a person's `token` for the tenant `headers` (or the token) select.
pub async fn principal(
    state: &AppState,
    issuer: &OidcIssuer,
    headers: &HeaderMap,
    token: &str,
) -> Result<Principal, ApiError> {
    let person = issuer.verify(token).await.map_err(refusal)?;
    let slug = tenant_slug(person.tenant.as_deref(), headers)?;
    let sign_in = users::SignIn {
        issuer: issuer.issuer(),
        subject: &person.subject,
        email: &person.email,
        email_verified: person.email_verified,
    };
    member_principal(
        state,
        &slug,
        sign_in,
        &person.groups,
        &issuer.config().group_roles,
        person.expires_at,
    )
    .await
}

/// The principal of the person `sign_in` names in the tenant `slug`: the user bound to their
/// issuer and subject (bound now, on a first sign-in), with its roles plus those its `groups`
/// map to by `group_roles`. Shared by bearer tokens and the web UI's sessions, so both reach
/// exactly the same memberships and roles.
pub async fn member_principal(
    state: &AppState,
    slug: &str,
    sign_in: users::SignIn<'_>,
    groups: &[String],
    group_roles: &[(String, String)],
    expires_at: u64,
) -> Result<Principal, ApiError> {
    let membership = match users::membership(&state.store, slug, sign_in).await? {
        users::SignInOutcome::Member(membership) => membership,
        users::SignInOutcome::NotMember => return Err(no_such_tenant()),
        users::SignInOutcome::EmailUnverified => {
            return Err(ApiError::Unauthorized(
                "an invitation is accepted only with a verified email: the sign-in issuer's \
                 token must say email_verified: true"
                    .into(),
            ));
        }
    };
    let mut roles = membership.roles;
    for (group, role) in group_roles {
        if groups.contains(group) {
            roles.push(role.clone());
        }
    }
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        return Err(no_such_tenant());
    }
    Ok(Principal {
        tenant: membership.tenant,
        subject: membership.user.to_string(),
        roles,
        kind: PrincipalKind::User,
        email: Some(sign_in.email.to_string()),
        expires_at,
    })
}

/// The tenant slug: the token's claim, else the header. Both present must agree.
pub(crate) fn tenant_slug(claim: Option<&str>, headers: &HeaderMap) -> Result<String, ApiError> {
    let header = match headers.get(TENANT_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map(str::trim)
                .map_err(|_| ApiError::BadRequest("X-Ferry-Tenant is not a tenant slug".into()))?,
        ),
    };
    match (claim, header) {
        (Some(claim), Some(header)) if claim != header => Err(ApiError::BadRequest(format!(
            "X-Ferry-Tenant names another tenant than the token's {TENANT_CLAIM} claim"
        ))),
        (Some(slug), _) | (None, Some(slug)) if !slug.is_empty() => Ok(slug.to_string()),
        _ => Err(ApiError::BadRequest(
            "a person's request names its tenant: send the header X-Ferry-Tenant: <tenant slug>"
                .into(),
        )),
    }
}

/// The answer for a tenant the person cannot see, whether or not it exists.
fn no_such_tenant() -> ApiError {
    ApiError::Store(StoreError::not_found("tenant"))
}

/// What the caller is told about a refused person's token.
fn refusal(error: OidcError) -> ApiError {
    match error {
        OidcError::Unavailable(_) => ApiError::Unavailable(error.to_string()),
        refused => ApiError::Unauthorized(refused.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(tenant: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(tenant) = tenant {
            headers.insert(TENANT_HEADER, HeaderValue::from_static(tenant));
        }
        headers
    }

    #[test]
    fn the_claim_or_the_header_names_the_tenant() {
        assert_eq!(tenant_slug(Some("a"), &headers(None)).unwrap(), "a");
        assert_eq!(tenant_slug(None, &headers(Some("b"))).unwrap(), "b");
        assert_eq!(tenant_slug(Some("a"), &headers(Some("a"))).unwrap(), "a");
        for (claim, header) in [(Some("a"), Some("b")), (None, None), (None, Some(""))] {
            assert!(matches!(
                tenant_slug(claim, &headers(header)),
                Err(ApiError::BadRequest(_))
            ));
        }
    }
}
