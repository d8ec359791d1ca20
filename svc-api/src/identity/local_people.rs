//! People with a local account calling the REST API with an access token of svc-api's own
//! issuer ([`super::refresh::PersonClaims`], from the CLI's device sign-in): the token is
//! verified with this issuer's published keys (ES256, issuer, audience `ferry-api`, expiry,
//! `token_use: person`), then the person is looked up in the tenant `X-Ferry-Tenant` names
//! exactly as the web UI's local sessions are ([`super::people::member_principal`]).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::identity::keys::API_AUDIENCE;
use crate::identity::people::{member_principal, tenant_slug};
use crate::identity::refresh::{PERSON_TOKEN_USE, PersonClaims};
use crate::state::AppState;
use axum::http::HeaderMap;
use ferry_store::users;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Whether `token` says it is a person's access token of this issuer (unverified: it only
/// chooses the verification).
pub fn is_person_token(token: &str) -> bool {
    jsonwebtoken::dangerous::insecure_decode_claims::<Map<String, Value>>(token)
        .ok()
        .is_some_and(|claims| {
            claims.get("token_use").and_then(Value::as_str) == Some(PERSON_TOKEN_USE)
        })
}

/// Verifies a person's access token of this issuer.
fn verify(state: &AppState, token: &str) -> Result<PersonClaims, ApiError> {
    let refused = |why: &str| ApiError::Unauthorized(why.to_string());
    let header = jsonwebtoken::decode_header(token).map_err(|_| refused("the token is invalid"))?;
    if header.alg != Algorithm::ES256 {
        return Err(refused("the token is invalid"));
    }
    let kid = header.kid.ok_or_else(|| refused("the token is invalid"))?;
    let jwks = state.keys.jwks();
    let jwk = jwks
        .find(&kid)
        .ok_or_else(|| refused("the token's signing key is not (or no longer) published"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| refused("the token is invalid"))?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.leeway = 30;
    validation.set_issuer(&[&state.issuer.issuer]);
    validation.set_audience(&[API_AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<PersonClaims>(token, &key, &validation)
        .map_err(|error| match error.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => refused("the token has expired"),
            _ => refused("the token is invalid"),
        })?
        .claims;
    if claims.token_use != PERSON_TOKEN_USE {
        return Err(refused("the token is invalid"));
    }
    Ok(claims)
}

/// The principal of a person's access token of this issuer, in the tenant the request names.
pub async fn principal(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
) -> Result<Principal, ApiError> {
    let claims = verify(state, token)?;
    let slug = tenant_slug(None, headers)?;
    member_principal(
        state,
        &slug,
        users::SignIn {
            issuer: &state.issuer.issuer,
            subject: &claims.sub,
            email: &claims.email,
            // The account's email was set by an operator of this installation.
            email_verified: true,
        },
        &[],
        &[],
        claims.exp,
    )
    .await
}
