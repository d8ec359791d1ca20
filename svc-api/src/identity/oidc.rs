//! The external OIDC issuer people sign in with: its keys, found by discovery and reloaded when
//! a token names a key id not seen yet, at most once per configured interval
//! ([`ferry_auth::discovery`], shared with the agent hub), and the verification of a
//! person's ID or access token: signature, `iss`, `aud`, `exp` and `nbf`, then the email (and
//! groups, tenant) claims Ferry maps to a user.

use crate::settings::OidcConfig;
use ferry_auth::discovery::{Discovery, KeyCache, Refresh};
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

/// How long one request to the provider may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

/// The claim that may pin a person's token to one tenant (by slug).
pub const TENANT_CLAIM: &str = "ferry_tenant";

/// Asymmetric algorithms a provider may sign with. Symmetric ones (`HS*`) are refused: the
/// provider's published keys are public.
const ACCEPTED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Why a person's token was refused, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// Not a well-formed JWT.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// Signed with an algorithm Ferry does not accept.
    #[error("the token is signed with {0:?}, which is not accepted")]
    Algorithm(Algorithm),
    /// No key of the provider verifies the signature (unknown key id, wrong key, forged).
    #[error("the token's signature does not verify with the sign-in issuer's keys")]
    Signature,
    /// The token has expired.
    #[error("the token has expired")]
    Expired,
    /// The token's `nbf` is in the future.
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    /// The token names another issuer.
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// The token is meant for another client.
    #[error("the token is not meant for Ferry (audience {0})")]
    WrongAudience(String),
    /// A claim is missing or of the wrong type.
    #[error("the token's claims are invalid: {0}")]
    Claims(String),
    /// The provider says the email is not verified.
    #[error("the sign-in issuer has not verified the token's email")]
    EmailUnverified,
    /// The provider's keys could not be loaded (and none are loaded yet).
    #[error("the sign-in issuer's keys cannot be loaded: {0}")]
    Unavailable(String),
}

/// What a verified person's token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonClaims {
    /// The provider's subject.
    pub subject: String,
    /// The email, trimmed and lower-cased.
    pub email: String,
    /// The tenant slug of the [`TENANT_CLAIM`] claim, when the token carries one.
    pub tenant: Option<String>,
    /// The groups claim's strings (empty when absent).
    pub groups: Vec<String>,
    /// Whether the token says `email_verified: true` (needed to accept an invitation).
    pub email_verified: bool,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: u64,
    /// The `nonce` claim of an ID token (the web UI's code flow checks it).
    pub nonce: Option<String>,
}

/// Where the provider's code flow happens, from its discovery document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
}

/// One usable key of the provider.
#[derive(Clone)]
struct Key {
    key: DecodingKey,
    /// The algorithm the JWK pins, if it names one.
    algorithm: Option<Algorithm>,
}

/// The provider's keys by key id, as last loaded.
type KeySet = HashMap<String, Key>;

/// The external issuer: its settings, an HTTP client, and its keys as last loaded.
pub struct OidcIssuer {
    config: OidcConfig,
    http: reqwest::Client,
    discovery: Discovery,
    keys: KeyCache<KeySet>,
    /// The code flow's endpoints, once discovered.
    endpoints: RwLock<Option<Endpoints>>,
}

impl std::fmt::Debug for OidcIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcIssuer")
            .field("issuer", &self.config.issuer)
            .field("audience", &self.config.audience)
            .finish_non_exhaustive()
    }
}

impl OidcIssuer {
    /// An issuer whose keys are loaded on the first person's token (so svc-api starts, and
    /// machine credentials work, while the provider is unreachable).
    pub fn new(config: OidcConfig) -> Result<OidcIssuer, OidcError> {
        // reqwest is built without a default TLS provider: name ring, as the rest of Ferry does.
        ferry_runtime::telemetry::install_crypto();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| OidcError::Unavailable(format!("building the HTTP client: {e}")))?;
        let discovery = Discovery::new(&config.issuer)
            .map_err(|e| OidcError::Unavailable(ferry_runtime::errors::error_chain(&e)))?;
        Ok(OidcIssuer {
            keys: KeyCache::new(KeySet::new(), false, config.min_reload),
            config,
            http,
            discovery,
            endpoints: RwLock::new(None),
        })
    }

    /// The issuer URL people's tokens carry as `iss`.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The settings.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Verifies a person's token and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<PersonClaims, OidcError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| OidcError::Malformed)?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(OidcError::Algorithm(header.alg));
        }
        let key = self.key_for(header.kid.as_deref()).await?;
        if key.algorithm.is_some_and(|pinned| pinned != header.alg) {
            return Err(OidcError::Signature);
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| self.refusal(e))?
            .claims;
        self.person(&claims)
    }

    /// The verification error as the caller is told it.
    fn refusal(&self, error: jsonwebtoken::errors::Error) -> OidcError {
        use jsonwebtoken::errors::ErrorKind;
        match error.kind() {
            ErrorKind::ExpiredSignature => OidcError::Expired,
            ErrorKind::ImmatureSignature => OidcError::NotYetValid,
            ErrorKind::InvalidIssuer => OidcError::WrongIssuer,
            ErrorKind::InvalidAudience => OidcError::WrongAudience(self.config.audience.clone()),
            ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => OidcError::Signature,
            ErrorKind::MissingRequiredClaim(claim) => {
                OidcError::Claims(format!("the {claim:?} claim is missing"))
            }
            ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
                OidcError::Malformed
            }
            _ => OidcError::Claims(error.to_string()),
        }
    }

    /// The person the verified `claims` name.
    fn person(&self, claims: &Map<String, Value>) -> Result<PersonClaims, OidcError> {
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| OidcError::Claims("sub is not a string".into()))?
            .to_string();
        let email_claim = &self.config.email_claim;
        let email = claims
            .get(email_claim)
            .and_then(Value::as_str)
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty())
            .ok_or_else(|| OidcError::Claims(format!("the {email_claim:?} claim is missing")))?;
        if claims.get("email_verified") == Some(&Value::Bool(false)) {
            return Err(OidcError::EmailUnverified);
        }
        let tenant = match claims.get(TENANT_CLAIM) {
            None | Some(Value::Null) => None,
            Some(Value::String(slug)) => Some(slug.clone()),
            Some(_) => {
                return Err(OidcError::Claims(format!(
                    "{TENANT_CLAIM} must be a tenant slug"
                )));
            }
        };
        let groups = match claims.get(&self.config.groups_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        let email_verified = claims.get("email_verified") == Some(&Value::Bool(true));
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or_else(|| OidcError::Claims("exp is not a number of seconds".into()))?;
        let nonce = claims
            .get("nonce")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(PersonClaims {
            subject,
            email,
            tenant,
            groups,
            email_verified,
            expires_at,
            nonce,
        })
    }

    /// The key `kid` names (or the only key, when the token names none), reloading the keys
    /// once when it is unknown and the last load is older than the configured interval.
    async fn key_for(&self, kid: Option<&str>) -> Result<Key, OidcError> {
        if let Some(key) = pick(&self.keys.current(), kid) {
            return Ok(key);
        }
        let refresh = self
            .keys
            .refresh(|keys| pick(keys, kid).is_some(), || self.fetch_keys())
            .await;
        match &refresh {
            Refresh::Loaded(keys) => tracing::info!(
                issuer = %self.config.issuer,
                keys = keys.len(),
                "loaded the sign-in issuer's keys"
            ),
            Refresh::Failed(keys, error) => {
                tracing::warn!(issuer = %self.config.issuer, %error, "cannot load the sign-in issuer's keys");
                if keys.is_empty() {
                    return Err(OidcError::Unavailable(error.clone()));
                }
            }
            Refresh::Kept(_) => {}
        }
        pick(refresh.keys(), kid).ok_or_else(|| self.missing())
    }

    /// No key fits: unavailable when none was ever loaded, else a signature nobody can verify.
    fn missing(&self) -> OidcError {
        if self.keys.current().is_empty() {
            OidcError::Unavailable("no keys are loaded yet; retry shortly".into())
        } else {
            OidcError::Signature
        }
    }

    /// Discovery, then the JWK set; keys without a key id, for encryption, or of a type Ferry
    /// cannot use are skipped.
    async fn fetch_keys(&self) -> Result<KeySet, String> {
        let jwks = self
            .discovery
            .jwks()
            .await
            .map_err(|e| ferry_runtime::errors::error_chain(&e))?;
        let entries = jwks["keys"].as_array().into_iter().flatten();
        let mut keys = KeySet::new();
        for entry in entries {
            let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
                continue;
            };
            if let Some((kid, key)) = usable(&jwk) {
                keys.insert(kid, key);
            }
        }
        Ok(keys)
    }

    /// The provider's authorization and token endpoints (discovery, fetched once and kept).
    pub async fn endpoints(&self) -> Result<Endpoints, OidcError> {
        if let Some(known) = self.endpoints.read().ok().and_then(|e| e.clone()) {
            return Ok(known);
        }
        let discovery = self.discovery.document_url();
        let document = self
            .discovery
            .document()
            .await
            .map_err(|e| OidcError::Unavailable(ferry_runtime::errors::error_chain(&e)))?;
        let field = |name: &str| {
            document
                .get(name)
                .and_then(Value::as_str)
                .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
                .map(str::to_string)
                .ok_or_else(|| OidcError::Unavailable(format!("{discovery} has no {name}")))
        };
        let endpoints = Endpoints {
            authorization: field("authorization_endpoint")?,
            token: field("token_endpoint")?,
        };
        if let Ok(mut slot) = self.endpoints.write() {
            *slot = Some(endpoints.clone());
        }
        Ok(endpoints)
    }

    /// Trades an authorization code (with its PKCE verifier) at the provider's token endpoint
    /// for the person's ID token, as the client `FERRY_OIDC_AUDIENCE` (with
    /// `client_secret`, when Ferry is a confidential client there).
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        client_secret: Option<&str>,
    ) -> Result<String, OidcError> {
        let endpoints = self.endpoints().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("client_id", self.config.audience.as_str()),
        ];
        if let Some(secret) = client_secret {
            form.push(("client_secret", secret));
        }
        let body = serde_urlencoded::to_string(&form)
            .map_err(|e| OidcError::Unavailable(format!("encoding the token request: {e}")))?;
        let response = self
            .http
            .post(&endpoints.token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("{}: {e}", endpoints.token)))?;
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .map_err(|e| OidcError::Unavailable(format!("{} is not JSON: {e}", endpoints.token)))?;
        if !status.is_success() {
            let error = answer.get("error").and_then(Value::as_str).unwrap_or("?");
            return Err(OidcError::Claims(format!(
                "the sign-in issuer refused the code ({status}, {error})"
            )));
        }
        answer
            .get("id_token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| OidcError::Claims("the token response has no id_token".into()))
    }
}

/// The key for `kid`; without a kid, the only key of the set.
fn pick(keys: &KeySet, kid: Option<&str>) -> Option<Key> {
    match kid {
        Some(kid) => keys.get(kid).cloned(),
        None if keys.len() == 1 => keys.values().next().cloned(),
        None => None,
    }
}

/// A signing key with its id, when `jwk` is one Ferry can use.
fn usable(jwk: &Jwk) -> Option<(String, Key)> {
    let kid = jwk.common.key_id.clone()?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let algorithm = match jwk.common.key_algorithm {
        None => None,
        Some(pinned) => Some(signing_algorithm(pinned)?),
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, Key { key, algorithm }))
}

/// The JWS algorithm a JWK's `alg` names, if it is one Ferry accepts.
fn signing_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    let algorithm = match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    };
    Some(algorithm)
}

/// The `iss` of `token` before any verification, to choose which issuer verifies it.
pub fn unverified_issuer(token: &str) -> Option<String> {
    let claims: Map<String, Value> = jsonwebtoken::dangerous::insecure_decode_claims(token).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> OidcIssuer {
        OidcIssuer::new(OidcConfig {
            issuer: "https://idp.test".into(),
            audience: "ferry".into(),
            email_claim: "email".into(),
            groups_claim: "groups".into(),
            group_roles: Vec::new(),
            min_reload: Duration::from_secs(10),
        })
        .unwrap()
    }

    #[test]
    fn claims_map_to_a_person() {
        let issuer = issuer();
        let claims = serde_json::json!({
            "sub": "p1", "email": " Ada@Example.COM ", "ferry_tenant": "acme",
            "groups": ["sre", 3, "ops"], "exp": 4_102_444_800u64
        });
        let person = issuer.person(claims.as_object().unwrap()).unwrap();
        assert_eq!(person.email, "ada@example.com");
        assert_eq!(person.tenant.as_deref(), Some("acme"));
        assert_eq!(person.groups, ["sre", "ops"]);
        assert_eq!(person.expires_at, 4_102_444_800);
        assert!(!person.email_verified, "no claim is not a verified email");
        let verified = serde_json::json!({
            "sub": "p1", "email": "a@b", "email_verified": true, "exp": 1
        });
        assert!(
            issuer
                .person(verified.as_object().unwrap())
                .unwrap()
                .email_verified
        );

        let unverified =
            serde_json::json!({ "sub": "p1", "email": "a@b", "email_verified": false });
        assert!(matches!(
            issuer.person(unverified.as_object().unwrap()),
            Err(OidcError::EmailUnverified)
        ));
        let no_email = serde_json::json!({ "sub": "p1" });
        assert!(matches!(
            issuer.person(no_email.as_object().unwrap()),
            Err(OidcError::Claims(reason)) if reason.contains("email")
        ));
    }

    #[test]
    fn the_issuer_is_read_before_verification() {
        let signer = ferry_auth::Signer::generate_es256("k").unwrap();
        let token = signer
            .sign_claims(&serde_json::json!({ "iss": "https://idp.test", "sub": "x" }))
            .unwrap();
        assert_eq!(
            unverified_issuer(&token).as_deref(),
            Some("https://idp.test")
        );
        assert_eq!(unverified_issuer("garbage"), None);
    }

    #[test]
    fn a_key_set_without_kids_is_used_only_when_it_has_one_key() {
        let signer = ferry_auth::Signer::generate_es256("k").unwrap();
        let (kid, key) = usable(&signer.public_jwk()).unwrap();
        assert_eq!(key.algorithm, Some(Algorithm::ES256));
        let mut keys = KeySet::new();
        keys.insert(kid, key.clone());
        assert!(pick(&keys, None).is_some());
        assert!(pick(&keys, Some("other")).is_none());
        keys.insert("k2".into(), key);
        assert!(pick(&keys, None).is_none());
    }
}
