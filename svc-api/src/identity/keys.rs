//! The issuer's signing keys: generated here, sealed with the master key in Postgres
//! (`signing_keys`), shared by every replica, rotated when the newest one gets too old, and
//! published in the JWK set for as long as tokens they signed can still be outstanding.
//!
//! Lifecycle of a key: created when the newest key is older than the rotation period (one replica
//! does it, under a transaction-scoped advisory lock, re-checking after taking the lock); used to
//! sign until a newer key exists; published until the key that superseded it is older than
//! `2 × token TTL` (by then every token it signed has expired, with margin); then deleted.
//! Ages are measured with the database's clock so replicas with skewed clocks agree.

use crate::identity::crypto::{CryptoError, MasterKey, Sealed};
use chrono::{DateTime, Utc};
use ferry_auth::{AuthError, Claims, Signer, Verifier};
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use sqlx::{PgPool, Row};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The audience of tokens for the REST API.
pub const API_AUDIENCE: &str = "ferry-api";

/// The advisory lock key serialising key creation across replicas ("ferrykey" in ASCII).
const ROTATION_LOCK: i64 = 0x6665_7272_796b_6579;

/// The least time between two reloads caused by tokens naming an unknown key id, so a flood of
/// forged tokens cannot turn into a flood of queries.
const UNKNOWN_KID_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Why the keys could not be created, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Postgres failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A key could not be sealed or opened (wrong master key?).
    #[error("sealing or opening a signing key")]
    Crypto(#[from] CryptoError),
    /// A key could not be generated.
    #[error("generating a signing key")]
    Generate(#[from] rcgen::Error),
    /// A key could not be used by ferry-auth.
    #[error("using a signing key")]
    Auth(#[from] AuthError),
    /// A stored public key is not a JWK.
    #[error("stored public key {kid} is not a valid JWK")]
    Jwk {
        /// The key.
        kid: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The table holds no key even after creating one (another process deleted it).
    #[error("no signing key")]
    NoKey,
}

/// How long keys live, from the service's settings.
#[derive(Clone, Copy, Debug)]
pub struct KeyPolicy {
    /// The newest key is replaced once it is this old.
    pub rotation: Duration,
    /// Lifetime of issued tokens; a superseded key is published for twice this long.
    pub token_ttl: Duration,
}

impl KeyPolicy {
    fn retention(&self) -> Duration {
        self.token_ttl.saturating_mul(2)
    }

    /// How often the background task looks for a rotation or another replica's new key.
    fn check_interval(&self) -> Duration {
        (self.rotation / 4).clamp(Duration::from_millis(100), Duration::from_secs(60))
    }
}

/// What one load of the table produced.
struct Loaded {
    signer: Arc<Signer>,
    signer_created: DateTime<Utc>,
    jwks: JwkSet,
    api_verifier: Verifier,
}

/// The keys of this issuer as last loaded, with the means to rotate and reload them. Shared by
/// the token endpoint (signing), the JWKS endpoint and the bearer-token extractor.
pub struct KeyRing {
    pool: PgPool,
    master: MasterKey,
    issuer: String,
    policy: KeyPolicy,
    loaded: RwLock<Arc<Loaded>>,
    // Serialises reloads inside this process; replicas serialise on the advisory lock.
    reload: tokio::sync::Mutex<Instant>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("issuer", &self.issuer)
            .field("policy", &self.policy)
            .field("current_kid", &self.current().signer.kid().to_string())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Makes sure a current key exists (creating or rotating it if needed) and loads the keys.
    pub async fn open(
        pool: PgPool,
        master: MasterKey,
        issuer: impl Into<String>,
        policy: KeyPolicy,
    ) -> Result<KeyRing, KeyError> {
        let issuer = issuer.into();
        ensure_current(&pool, &master, policy).await?;
        let loaded = load(&pool, &master, &issuer, policy).await?;
        Ok(KeyRing {
            pool,
            master,
            issuer,
            policy,
            loaded: RwLock::new(Arc::new(loaded)),
            reload: tokio::sync::Mutex::new(Instant::now()),
        })
    }

    /// The issuer URL tokens carry as `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn current(&self) -> Arc<Loaded> {
        // A poisoned lock only means a panic while swapping an Arc; the value is still whole.
        self.loaded
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The published public keys: the current one and superseded ones still in retention.
    pub fn jwks(&self) -> JwkSet {
        self.current().jwks.clone()
    }

    /// The key id new tokens are signed with.
    pub fn current_kid(&self) -> String {
        self.current().signer.kid().to_string()
    }

    /// Signs `claims` with the current key, rotating first if it is due.
    pub async fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let mut loaded = self.current();
        if rotation_due(loaded.signer_created, self.policy.rotation) {
            self.reload().await?;
            loaded = self.current();
        }
        Ok(loaded.signer.sign(claims)?)
    }

    /// Verifies a token for the REST API (audience [`API_AUDIENCE`]). A token naming a key id
    /// this replica has not loaded yet (another replica just rotated) triggers one reload.
    pub async fn verify_api_token(&self, token: &str) -> Result<Claims, AuthError> {
        let first = self.current().api_verifier.verify(token);
        let Err(AuthError::UnknownKey(_)) = &first else {
            return first;
        };
        {
            let last = self.reload.lock().await;
            if last.elapsed() < UNKNOWN_KID_RELOAD_INTERVAL {
                return first;
            }
        }
        if let Err(error) = self.reload().await {
            tracing::warn!(error = %error_chain(&error), "cannot reload signing keys");
            return first;
        }
        self.current().api_verifier.verify(token)
    }

    /// Rotates if due and reloads the published keys from the database.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let mut last = self.reload.lock().await;
        ensure_current(&self.pool, &self.master, self.policy).await?;
        let loaded = load(&self.pool, &self.master, &self.issuer, self.policy).await?;
        let previous = self.current_kid();
        if previous != loaded.signer.kid() {
            tracing::info!(
                kid = loaded.signer.kid(),
                previous,
                "signing with a new key"
            );
        }
        *self
            .loaded
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(loaded);
        *last = Instant::now();
        Ok(())
    }

    /// Rotates and reloads periodically until `shutdown` fires, so a replica that issues no
    /// tokens still publishes the keys other replicas created.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let interval = self.policy.check_interval();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            if let Err(error) = self.reload().await {
                tracing::warn!(error = %error_chain(&error), "cannot refresh signing keys");
            }
        }
    }
}

fn rotation_due(created: DateTime<Utc>, rotation: Duration) -> bool {
    let age = Utc::now().signed_duration_since(created);
    age.to_std().is_ok_and(|age| age >= rotation)
}

/// Creates a key when there is none or the newest is at least `policy.rotation` old, and deletes
/// keys past retention. Cheap when nothing is due: one unlocked read.
async fn ensure_current(
    pool: &PgPool,
    master: &MasterKey,
    policy: KeyPolicy,
) -> Result<(), KeyError> {
    const DUE: &str = "SELECT NOT EXISTS (
             SELECT 1 FROM signing_keys WHERE created_at > now() - make_interval(secs => $1))";
    let rotation = policy.rotation.as_secs_f64();
    let due: bool = sqlx::query_scalar(DUE)
        .bind(rotation)
        .fetch_one(pool)
        .await?;
    if !due {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ROTATION_LOCK)
        .execute(&mut *tx)
        .await?;
    // Another replica may have rotated while this one waited for the lock.
    let still_due: bool = sqlx::query_scalar(DUE)
        .bind(rotation)
        .fetch_one(&mut *tx)
        .await?;
    if still_due {
        let kid = Uuid::now_v7().to_string();
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let pem = pair.serialize_pem();
        let signer = Signer::from_pem(kid.clone(), Algorithm::ES256, pem.as_bytes())?;
        let public = serde_json::to_value(signer.public_jwk()).map_err(|source| KeyError::Jwk {
            kid: kid.clone(),
            source,
        })?;
        let sealed = master.seal(pem.as_bytes(), kid.as_bytes())?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, ciphertext, nonce, public_jwk)
             VALUES ($1, 'ES256', $2, $3, $4)",
        )
        .bind(&kid)
        .bind(&sealed.ciphertext)
        .bind(&sealed.nonce)
        .bind(public)
        .execute(&mut *tx)
        .await?;
        tracing::info!(kid, "created a signing key");
    }
    let deleted = sqlx::query(
        "DELETE FROM signing_keys k WHERE EXISTS (
             SELECT 1 FROM signing_keys n
             WHERE n.created_at > k.created_at
               AND n.created_at <= now() - make_interval(secs => $1))",
    )
    .bind(policy.retention().as_secs_f64())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if deleted > 0 {
        tracing::info!(deleted, "deleted signing keys past retention");
    }
    tx.commit().await?;
    Ok(())
}

/// Loads the published keys and opens the newest one for signing.
async fn load(
    pool: &PgPool,
    master: &MasterKey,
    issuer: &str,
    policy: KeyPolicy,
) -> Result<Loaded, KeyError> {
    let rows = sqlx::query(
        "SELECT kid, algorithm, ciphertext, nonce, public_jwk, created_at FROM signing_keys k
         WHERE NOT EXISTS (
             SELECT 1 FROM signing_keys n
             WHERE n.created_at > k.created_at
               AND n.created_at <= now() - make_interval(secs => $1))
         ORDER BY created_at DESC, kid DESC",
    )
    .bind(policy.retention().as_secs_f64())
    .fetch_all(pool)
    .await?;
    let newest = rows.first().ok_or(KeyError::NoKey)?;
    let kid: String = newest.try_get("kid")?;
    let algorithm = match newest.try_get::<String, _>("algorithm")?.as_str() {
        "RS256" => Algorithm::RS256,
        _ => Algorithm::ES256,
    };
    let sealed = Sealed {
        ciphertext: newest.try_get("ciphertext")?,
        nonce: newest.try_get("nonce")?,
    };
    let pem = master.open(&sealed, kid.as_bytes())?;
    let signer = Signer::from_pem(kid, algorithm, &pem)?;
    let signer_created: DateTime<Utc> = newest.try_get("created_at")?;

    let mut keys = Vec::with_capacity(rows.len());
    for row in &rows {
        let kid: String = row.try_get("kid")?;
        let value: serde_json::Value = row.try_get("public_jwk")?;
        let mut jwk: Jwk =
            serde_json::from_value(value).map_err(|source| KeyError::Jwk { kid, source })?;
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        keys.push(jwk);
    }
    let jwks = JwkSet { keys };
    let api_verifier = Verifier::new(&jwks, issuer, API_AUDIENCE)?;
    Ok(Loaded {
        signer: Arc::new(signer),
        signer_created,
        jwks,
        api_verifier,
    })
}

/// An error with its sources, for one log line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_is_due_once_the_key_reaches_the_period() {
        let hour = Duration::from_secs(3600);
        assert!(!rotation_due(Utc::now(), hour));
        assert!(rotation_due(Utc::now() - chrono::Duration::hours(2), hour));
        let policy = KeyPolicy {
            rotation: Duration::from_secs(30 * 24 * 3600),
            token_ttl: hour,
        };
        assert_eq!(policy.retention(), Duration::from_secs(7200));
        assert_eq!(policy.check_interval(), Duration::from_secs(60));
    }
}
