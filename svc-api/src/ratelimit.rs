//! Rate limiting: an in-process token bucket per key. Per tenant, checked by the
//! [`Principal`](crate::auth::Principal) extractor once the tenant is known, so one tenant's
//! burst cannot starve the others on this replica; per client id and per source address at the
//! token endpoint ([`crate::identity::token`]). Each replica limits on its own; the configured
//! rates are per replica.

use ferry_store::TenantId;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Above this many tracked tenants, buckets that are full again are dropped (they carry no
/// information a fresh bucket would not).
const PRUNE_ABOVE: usize = 10_000;

/// One tenant's bucket.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl Bucket {
    /// The tokens held at `now`: those left at the last refill plus what `per_sec` added since,
    /// capped at `burst`.
    fn tokens_at(&self, now: Instant, per_sec: f64, burst: f64) -> f64 {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        (self.tokens + elapsed * per_sec).min(burst)
    }
}

/// Token buckets by key (a tenant unless said otherwise): `burst` requests at once, refilled
/// at `per_sec`.
#[derive(Debug)]
pub struct RateLimiter<K = TenantId> {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// A limiter allowing `burst` requests at once and `per_sec` sustained, per key.
    pub fn new(per_sec: f64, burst: u32) -> RateLimiter<K> {
        RateLimiter {
            per_sec,
            burst: f64::from(burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `key`'s bucket; `Err` carries how long until one is available.
    pub fn acquire(&self, key: K) -> Result<(), Duration> {
        self.acquire_at(key, Instant::now())
    }

    /// Whether `key`'s bucket holds a token, without taking it; `Err` carries how long until
    /// one is available.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let now = Instant::now();
        let buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match buckets.get(key) {
            Some(bucket) => {
                let tokens = bucket.tokens_at(now, self.per_sec, self.burst);
                if tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(Duration::from_secs_f64((1.0 - tokens) / self.per_sec))
                }
            }
            None => Ok(()),
        }
    }

    fn acquire_at(&self, key: K, now: Instant) -> Result<(), Duration> {
        // A poisoned lock only means another request panicked mid-update of plain numbers.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            let (per_sec, burst) = (self.per_sec, self.burst);
            buckets.retain(|_, b| b.tokens_at(now, per_sec, burst) < burst);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            refilled_at: now,
        });
        bucket.tokens = bucket.tokens_at(now, self.per_sec, self.burst);
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_sec,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_refills_and_is_per_tenant() {
        let limiter = RateLimiter::new(2.0, 3);
        let (a, b) = (TenantId::new(), TenantId::new());
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.acquire_at(a, start).is_ok());
        }
        let wait = limiter.acquire_at(a, start).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        // Another tenant is unaffected.
        assert!(limiter.acquire_at(b, start).is_ok());
        // Half a second refills one token at 2/s.
        let later = start + Duration::from_millis(500);
        assert!(limiter.acquire_at(a, later).is_ok());
        assert!(limiter.acquire_at(a, later).is_err());
    }

    #[test]
    fn checking_takes_nothing() {
        let limiter: RateLimiter<&str> = RateLimiter::new(0.001, 1);
        assert!(limiter.check(&"a").is_ok());
        assert!(limiter.check(&"a").is_ok());
        assert!(limiter.acquire("a").is_ok());
        assert!(limiter.check(&"a").is_err());
    }
}
