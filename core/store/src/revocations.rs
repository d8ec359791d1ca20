//! Whether a machine credential still stands, for the services that verify its tokens (svc-api
//! and the agent hub). A token is signed for its whole lifetime, so revoking a credential must
//! also be checked where tokens are accepted: [`Revocations`] answers from a short-lived cache
//! (so a revocation takes effect within its time to live, without a query per request), and
//! [`revoked_among`] checks many credentials at once for sweeps over long-lived streams.

use crate::Store;
use crate::error::Result;
use crate::ids::TenantId;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Answers cached at most; past this the cache is emptied of stale answers, then of all.
const CAPACITY: usize = 50_000;

/// A cached revocation check.
#[derive(Debug)]
pub struct Revocations {
    store: Store,
    ttl: Duration,
    answers: Mutex<HashMap<(TenantId, Uuid), (Instant, bool)>>,
}

impl Revocations {
    /// The default time a "not revoked" answer is trusted.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(3);

    /// Checks against `store`, trusting a "not revoked" answer for `ttl`. A revocation is final,
    /// so a "revoked" answer is kept for as long as the cache holds it.
    pub fn new(store: Store, ttl: Duration) -> Revocations {
        Revocations {
            store,
            ttl,
            answers: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `credential` of `tenant` is revoked or no longer exists.
    pub async fn is_revoked(&self, tenant: TenantId, credential: Uuid) -> Result<bool> {
        let now = Instant::now();
        if let Some((at, revoked)) = self.lock().get(&(tenant, credential)).copied()
            && (revoked || now.duration_since(at) < self.ttl)
        {
            return Ok(revoked);
        }
        let standing: Option<bool> = sqlx::query_scalar(
            "SELECT revoked_at IS NULL FROM credentials WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(credential)
        .fetch_optional(self.store.pool())
        .await?;
        let revoked = standing != Some(true);
        let mut answers = self.lock();
        if answers.len() >= CAPACITY {
            answers.retain(|_, (at, revoked)| *revoked || now.duration_since(*at) < self.ttl);
            if answers.len() >= CAPACITY {
                answers.clear();
            }
        }
        answers.insert((tenant, credential), (now, revoked));
        Ok(revoked)
    }

    /// Records that `credential` of `tenant` is revoked (found by a sweep, or revoked through
    /// this process), so this cache refuses it at once.
    pub fn note_revoked(&self, tenant: TenantId, credential: Uuid) {
        self.lock()
            .insert((tenant, credential), (Instant::now(), true));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(TenantId, Uuid), (Instant, bool)>> {
        self.answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Which of `credentials` are revoked or no longer exist, in one query (uncached).
pub async fn revoked_among(
    store: &Store,
    credentials: &[(TenantId, Uuid)],
) -> Result<HashSet<(TenantId, Uuid)>> {
    if credentials.is_empty() {
        return Ok(HashSet::new());
    }
    let tenants: Vec<Uuid> = credentials.iter().map(|(t, _)| t.as_uuid()).collect();
    let ids: Vec<Uuid> = credentials.iter().map(|(_, c)| *c).collect();
    let standing: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT c.tenant_id, c.id FROM credentials c
         JOIN UNNEST($1::uuid[], $2::uuid[]) AS asked (tenant_id, id)
           ON asked.tenant_id = c.tenant_id AND asked.id = c.id
         WHERE c.revoked_at IS NULL",
    )
    .bind(&tenants)
    .bind(&ids)
    .fetch_all(store.pool())
    .await?;
    let standing: HashSet<(Uuid, Uuid)> = standing.into_iter().collect();
    Ok(credentials
        .iter()
        .filter(|(t, c)| !standing.contains(&(t.as_uuid(), *c)))
        .copied()
        .collect())
}
