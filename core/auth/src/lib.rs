//! ferry-auth: bearer tokens for machine credentials. A [`Signer`] holds a private key (ES256 or
//! RS256) with a key id and issues [`Claims`]; a [`Verifier`] built from the issuer's JWK set
//! checks a token's signature (by `kid`), issuer, audience and expiry. svc-api is the issuer;
//! the agent hub and other services only verify. With the `discovery` feature, [`discovery`]
//! fetches and caches an issuer's published keys.

#[cfg(feature = "discovery")]
pub mod discovery;

use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// The built-in role a machine credential must hold to get tokens for the agent hub and to
/// connect there as an agent.
pub const AGENT_ROLE: &str = "Agent";

/// The audience of tokens for the agent hub.
pub const HUB_AUDIENCE: &str = "ferry-hub";

/// The claims of a Ferry token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The issuer URL.
    pub iss: String,
    /// The credential (machine client or user) the token was issued to.
    pub sub: String,
    /// The service the token is meant for, e.g. `ferry-hub`.
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: u64,
    /// The tenant that owns the credential and everything it touches.
    pub tenant: Uuid,
    /// Role names granted to the credential.
    #[serde(default)]
    pub roles: Vec<String>,
}

impl Claims {
    /// Claims issued now and valid for `ttl`.
    pub fn new(
        iss: impl Into<String>,
        sub: impl Into<String>,
        aud: impl Into<String>,
        tenant: Uuid,
        roles: Vec<String>,
        ttl: Duration,
    ) -> Claims {
        let now = unix_now();
        Claims {
            iss: iss.into(),
            sub: sub.into(),
            aud: aud.into(),
            exp: now + ttl.as_secs(),
            iat: now,
            tenant,
            roles,
        }
    }
}

/// Why a token or key was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token is not a well-formed JWT.
    #[error("malformed token")]
    Malformed(#[source] jsonwebtoken::errors::Error),
    /// The token names no key id.
    #[error("token header has no key id")]
    MissingKeyId,
    /// No key of the issuer's set has the token's key id.
    #[error("unknown key id {0:?}")]
    UnknownKey(String),
    /// The signature does not verify, or the algorithm does not match the key.
    #[error("invalid signature")]
    InvalidSignature(#[source] jsonwebtoken::errors::Error),
    /// The token has expired.
    #[error("token expired")]
    Expired,
    /// The token was issued by someone else.
    #[error("wrong issuer")]
    WrongIssuer,
    /// The token is meant for another service.
    #[error("wrong audience")]
    WrongAudience,
    /// The claims are missing or of the wrong type.
    #[error("invalid claims")]
    InvalidClaims(#[source] jsonwebtoken::errors::Error),
    /// A key could not be used (bad PEM, unsupported algorithm, bad JWK).
    #[error("invalid key")]
    InvalidKey(#[source] jsonwebtoken::errors::Error),
    /// A key could not be generated.
    #[error("key generation failed")]
    KeyGeneration(#[from] rcgen::Error),
    /// A JWK set document could not be parsed.
    #[error("invalid JWK set")]
    InvalidJwks(#[from] serde_json::Error),
}

impl AuthError {
    fn from_validation(err: jsonwebtoken::errors::Error) -> AuthError {
        use jsonwebtoken::errors::ErrorKind;
        match err.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            ErrorKind::InvalidAudience => AuthError::WrongAudience,
            ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                AuthError::InvalidSignature(err)
            }
            ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
                AuthError::Malformed(err)
            }
            _ => AuthError::InvalidClaims(err),
        }
    }
}

/// Issues tokens with one private key.
pub struct Signer {
    kid: String,
    algorithm: Algorithm,
    key: EncodingKey,
    public: Jwk,
}

impl std::fmt::Debug for Signer {
    // Never print the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer from a PKCS#8 PEM private key; `algorithm` is ES256 or RS256.
    pub fn from_pem(
        kid: impl Into<String>,
        algorithm: Algorithm,
        pem: &[u8],
    ) -> Result<Signer, AuthError> {
        let key = match algorithm {
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
            _ => {
                return Err(AuthError::InvalidKey(
                    jsonwebtoken::errors::ErrorKind::UnsupportedAlgorithm.into(),
                ));
            }
        }
        .map_err(AuthError::InvalidKey)?;
        let kid = kid.into();
        let mut public = Jwk::from_encoding_key(&key, algorithm).map_err(AuthError::InvalidKey)?;
        public.common.key_id = Some(kid.clone());
        public.common.key_algorithm = Some(match algorithm {
            Algorithm::ES256 => KeyAlgorithm::ES256,
            _ => KeyAlgorithm::RS256,
        });
        Ok(Signer {
            kid,
            algorithm,
            key,
            public,
        })
    }

    /// A signer with a freshly generated ES256 (P-256) key, e.g. for an issuer that rotates
    /// keys at start or for tests; private keys never need to be stored in the repository.
    pub fn generate_es256(kid: impl Into<String>) -> Result<Signer, AuthError> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        Signer::from_pem(kid, Algorithm::ES256, pair.serialize_pem().as_bytes())
    }

    /// The key id put in every token header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK, to publish in the issuer's JWK set.
    pub fn public_jwk(&self) -> Jwk {
        self.public.clone()
    }

    /// A JWK set holding only this signer's public key.
    pub fn jwk_set(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.public_jwk()],
        }
    }

    /// Signs `claims` into a compact JWT.
    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        self.sign_claims(claims)
    }

    /// Signs any claims set into a compact JWT: for tokens shaped by another issuer's rules
    /// (e.g. an OIDC provider's ID token in tests), where [`Claims`] does not fit.
    pub fn sign_claims<C: Serialize>(&self, claims: &C) -> Result<String, AuthError> {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).map_err(AuthError::InvalidKey)
    }
}

/// Verifies tokens against an issuer's public keys.
#[derive(Clone)]
pub struct Verifier {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    issuer: String,
    audience: String,
    leeway: Duration,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl Verifier {
    /// The clock skew tolerated on `exp`.
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

    /// A verifier for tokens of `issuer` meant for `audience`, with the keys of `jwks` that
    /// have a key id and a supported algorithm (others are skipped: a token naming them fails
    /// with [`AuthError::UnknownKey`]).
    pub fn new(
        jwks: &JwkSet,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Verifier, AuthError> {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let algorithm = match jwk.common.key_algorithm {
                Some(KeyAlgorithm::ES256) => Algorithm::ES256,
                Some(KeyAlgorithm::RS256) => Algorithm::RS256,
                _ => continue,
            };
            let key = DecodingKey::from_jwk(jwk).map_err(AuthError::InvalidKey)?;
            keys.insert(kid, (key, algorithm));
        }
        Ok(Verifier {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: Verifier::DEFAULT_LEEWAY,
        })
    }

    /// A verifier from a JWK set document (JSON).
    pub fn from_jwks_json(
        json: &[u8],
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Verifier, AuthError> {
        let jwks: JwkSet = serde_json::from_slice(json)?;
        Verifier::new(&jwks, issuer, audience)
    }

    /// Changes the tolerated clock skew.
    pub fn with_leeway(mut self, leeway: Duration) -> Verifier {
        self.leeway = leeway;
        self
    }

    /// The audience tokens must name.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Checks `token` and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(AuthError::Malformed)?;
        let kid = header.kid.ok_or(AuthError::MissingKeyId)?;
        let (key, algorithm) = self
            .keys
            .get(&kid)
            .ok_or_else(|| AuthError::UnknownKey(kid.clone()))?;
        let mut validation = Validation::new(*algorithm);
        validation.leeway = self.leeway.as_secs();
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(AuthError::from_validation)
    }
}

/// Now, in seconds since the Unix epoch (the unit of `exp` and `iat`).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://issuer.test";

    fn claims(aud: &str, ttl: Duration) -> Claims {
        Claims::new(
            ISS,
            "cred-1",
            aud,
            Uuid::new_v4(),
            vec!["agent".into()],
            ttl,
        )
    }

    #[test]
    fn a_signed_token_verifies_with_the_published_keys() {
        let signer = Signer::generate_es256("k1").unwrap();
        let verifier = Verifier::new(&signer.jwk_set(), ISS, "ferry-hub").unwrap();
        let issued = claims("ferry-hub", Duration::from_secs(60));
        let token = signer.sign(&issued).unwrap();
        assert_eq!(verifier.verify(&token).unwrap(), issued);
    }

    #[test]
    fn the_jwk_set_survives_json() {
        let signer = Signer::generate_es256("k1").unwrap();
        let json = serde_json::to_vec(&signer.jwk_set()).unwrap();
        let verifier = Verifier::from_jwks_json(&json, ISS, "ferry-hub").unwrap();
        let token = signer
            .sign(&claims("ferry-hub", Duration::from_secs(60)))
            .unwrap();
        assert!(verifier.verify(&token).is_ok());
    }

    #[test]
    fn wrong_audience_issuer_expiry_key_and_signature_are_refused() {
        let signer = Signer::generate_es256("k1").unwrap();
        let verifier = Verifier::new(&signer.jwk_set(), ISS, "ferry-hub").unwrap();

        let token = signer
            .sign(&claims("ferry-api", Duration::from_secs(60)))
            .unwrap();
        assert!(matches!(
            verifier.verify(&token),
            Err(AuthError::WrongAudience)
        ));

        let mut other_issuer = claims("ferry-hub", Duration::from_secs(60));
        other_issuer.iss = "https://evil.test".into();
        let token = signer.sign(&other_issuer).unwrap();
        assert!(matches!(
            verifier.verify(&token),
            Err(AuthError::WrongIssuer)
        ));

        let mut expired = claims("ferry-hub", Duration::from_secs(60));
        expired.exp = unix_now() - 3600;
        let token = signer.sign(&expired).unwrap();
        assert!(matches!(verifier.verify(&token), Err(AuthError::Expired)));

        let stranger = Signer::generate_es256("k2").unwrap();
        let token = stranger
            .sign(&claims("ferry-hub", Duration::from_secs(60)))
            .unwrap();
        assert!(matches!(verifier.verify(&token), Err(AuthError::UnknownKey(k)) if k == "k2"));

        // Same kid, different key: the signature cannot verify.
        let impostor = Signer::generate_es256("k1").unwrap();
        let token = impostor
            .sign(&claims("ferry-hub", Duration::from_secs(60)))
            .unwrap();
        assert!(matches!(
            verifier.verify(&token),
            Err(AuthError::InvalidSignature(_))
        ));

        assert!(matches!(
            verifier.verify("not-a-token"),
            Err(AuthError::Malformed(_))
        ));
    }
}
