//! The issuer's signing keys: generated here, sealed with the master key in Postgres
//! (`signing_keys`), shared by every replica, rotated when the signing key gets too old, and
//! published in the JWK set for as long as tokens they signed can still be outstanding.
//!
//! Lifecycle of a key (R = rotation period, T = token TTL, A = activation delay, the smaller of
//! two JWKS cache lifetimes and R/4):
//! - created once the newest key is `R - A` old (or when there is none), by one replica, under
//!   a transaction-scoped advisory lock, re-checking after taking the lock;
//! - published at once, but signs only once it is `A` old, so verifiers that cache the JWK set
//!   know it before they see tokens naming it (the very first key signs at once: nothing
//!   references the set before it exists);
//! - superseded when the next key starts signing, and published until that happened `2 × T`
//!   ago (every token it signed has expired by then, with margin); then deleted.
//!
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

/// The longest activation delay: twice the JWK set's cache lifetime
/// ([`crate::identity::discovery`] serves it with `max-age=60`).
const MAX_ACTIVATION_DELAY: Duration = Duration::from_secs(120);

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
    /// How long a new key is published before it signs.
    fn activation(&self) -> Duration {
        (self.rotation / 4).min(MAX_ACTIVATION_DELAY)
    }

    /// The age of the newest key at which its successor is created.
    fn creation_age(&self) -> Duration {
        self.rotation.saturating_sub(self.activation())
    }

    /// How long after its successor was created a key is still published: the successor's
    /// activation delay plus twice the token lifetime.
    fn retention(&self) -> Duration {
        self.token_ttl.saturating_mul(2) + self.activation()
    }

    /// How often the background task looks for a rotation or another replica's new key.
    fn check_interval(&self) -> Duration {
        (self.rotation / 4).clamp(Duration::from_millis(100), Duration::from_secs(60))
    }
}

/// What one load of the table produced.
struct Loaded {
    signer: Arc<Signer>,
    /// When this load goes stale: a published key starts signing, or the next one is due.
    next_change: DateTime<Utc>,
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
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

    /// Signs `claims` with the current key, rotating or switching keys first if that is due.
    pub async fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let mut loaded = self.current();
        if Utc::now() >= loaded.next_change {
            self.reload().await?;
            loaded = self.current();
        }
        Ok(loaded.signer.sign(claims)?)
    }

    /// Signs any claims set with the current key (the ID tokens of the authorization-code
    /// flow, whose claims are not [`Claims`]).
    pub async fn sign_claims<C: serde::Serialize>(&self, claims: &C) -> Result<String, KeyError> {
        let mut loaded = self.current();
        if Utc::now() >= loaded.next_change {
            self.reload().await?;
            loaded = self.current();
        }
        Ok(loaded.signer.sign_claims(claims)?)
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
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(loaded);
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

/// Creates a key when there is none or the newest is at least `R - A` old, and deletes keys past
/// retention. Cheap when nothing is due: one unlocked read.
async fn ensure_current(
    pool: &PgPool,
    master: &MasterKey,
    policy: KeyPolicy,
) -> Result<(), KeyError> {
    const DUE: &str = "SELECT NOT EXISTS (
             SELECT 1 FROM signing_keys WHERE created_at > now() - make_interval(secs => $1))";
    let rotation = policy.creation_age().as_secs_f64();
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

/// Loads the published keys and opens the signing one: the newest key past its activation
/// delay, or the oldest published key when none is (only right after the very first key).
async fn load(
    pool: &PgPool,
    master: &MasterKey,
    issuer: &str,
    policy: KeyPolicy,
) -> Result<Loaded, KeyError> {
    let rows = sqlx::query(
        "SELECT kid, algorithm, ciphertext, nonce, public_jwk, created_at,
                created_at <= now() - make_interval(secs => $2) AS active
         FROM signing_keys k
         WHERE NOT EXISTS (
             SELECT 1 FROM signing_keys n
             WHERE n.created_at > k.created_at
               AND n.created_at <= now() - make_interval(secs => $1))
         ORDER BY created_at DESC, kid DESC",
    )
    .bind(policy.retention().as_secs_f64())
    .bind(policy.activation().as_secs_f64())
    .fetch_all(pool)
    .await?;
    let mut active = None;
    for row in &rows {
        if row.try_get::<bool, _>("active")? {
            active = Some(row);
            break;
        }
    }
    let signing = active.or(rows.last()).ok_or(KeyError::NoKey)?;
    let kid: String = signing.try_get("kid")?;
    let algorithm = match signing.try_get::<String, _>("algorithm")?.as_str() {
        "RS256" => Algorithm::RS256,
        _ => Algorithm::ES256,
    };
    let sealed = Sealed {
        ciphertext: signing.try_get("ciphertext")?,
        nonce: signing.try_get("nonce")?,
    };
    let pem = master.open(&sealed, kid.as_bytes())?;
    let signer = Signer::from_pem(kid, algorithm, &pem)?;

    let activation = chrono::Duration::from_std(policy.activation()).unwrap_or_default();
    let creation_age = chrono::Duration::from_std(policy.creation_age()).unwrap_or_default();
    let mut next_change = DateTime::<Utc>::MAX_UTC;
    let mut keys = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let kid: String = row.try_get("kid")?;
        let created: DateTime<Utc> = row.try_get("created_at")?;
        if index == 0 {
            next_change = next_change.min(created + creation_age);
        }
        if !row.try_get::<bool, _>("active")? {
            next_change = next_change.min(created + activation);
        }
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
        next_change,
        jwks,
        api_verifier,
    })
}

/// An error with its sources, for one log line.
pub(crate) use ferry_runtime::error_chain;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_activate_before_rotation_and_outlive_their_tokens() {
        let hour = Duration::from_secs(3600);
        let month = KeyPolicy {
            rotation: Duration::from_secs(30 * 24 * 3600),
            token_ttl: hour,
        };
        assert_eq!(month.activation(), MAX_ACTIVATION_DELAY);
        assert_eq!(month.creation_age(), month.rotation - MAX_ACTIVATION_DELAY);
        assert_eq!(month.retention(), 2 * hour + MAX_ACTIVATION_DELAY);
        assert_eq!(month.check_interval(), Duration::from_secs(60));

        let fast = KeyPolicy {
            rotation: Duration::from_secs(4),
            token_ttl: Duration::from_secs(1),
        };
        assert_eq!(fast.activation(), Duration::from_secs(1));
        assert_eq!(fast.creation_age(), Duration::from_secs(3));
        assert_eq!(fast.check_interval(), Duration::from_secs(1));
    }
}
