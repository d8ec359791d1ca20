//! An OIDC issuer's published keys, for every service that verifies its tokens (svc-api for
//! people's tokens, the agent hub for Ferry's own): [`Discovery`] reads
//! `{issuer}/.well-known/openid-configuration`, checks that it names exactly the configured
//! issuer (OIDC Discovery §4.3), follows its `jwks_uri` and returns the JWK set; every answer is
//! bounded in time and size and redirects are not followed. [`KeyCache`] keeps the keys as last
//! loaded and reloads them when a token names a key it lacks, at most once per interval and
//! once for all callers waiting at the same time, so a key rotation needs no restart and
//! tokens naming made-up key ids cannot make a service hammer the issuer.

use serde_json::Value;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// How long one request to the issuer may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest discovery document or JWK set read (real ones are a few KiB).
pub const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// Why the issuer's keys could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The HTTP client could not be built.
    #[error("building the HTTP client")]
    Client(#[source] reqwest::Error),
    /// A request failed (unreachable, timed out, TLS).
    #[error("fetching {url}")]
    Fetch {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The issuer answered with an error status (a redirect included: none is followed).
    #[error("{url} answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: reqwest::StatusCode,
    },
    /// An answer was larger than [`MAX_DOCUMENT_BYTES`].
    #[error("{url} sent more than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge {
        /// The URL.
        url: String,
    },
    /// An answer was not the JSON expected.
    #[error("{url} is not valid: {reason}")]
    Invalid {
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

/// Reads an issuer's discovery document and JWK set.
#[derive(Debug, Clone)]
pub struct Discovery {
    issuer: String,
    http: reqwest::Client,
}

impl Discovery {
    /// Discovery for `issuer` (the exact `iss` its tokens carry).
    pub fn new(issuer: &str) -> Result<Discovery, DiscoveryError> {
        // reqwest is built without a TLS provider of its own: ring, which every Ferry process
        // installs at start, is installed here if the caller has not (a test, a library user).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(DiscoveryError::Client)?;
        Ok(Discovery {
            issuer: issuer.to_string(),
            http,
        })
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The discovery document's URL.
    pub fn document_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        )
    }

    /// The discovery document, refused unless it names exactly this issuer.
    pub async fn document(&self) -> Result<serde_json::Map<String, Value>, DiscoveryError> {
        let url = self.document_url();
        let Value::Object(document) = self.get_json(&url).await? else {
            return Err(invalid(&url, "not a JSON object"));
        };
        if document.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(invalid(
                &url,
                &format!("it names another issuer than {:?}", self.issuer),
            ));
        }
        Ok(document)
    }

    /// The JWK set the discovery document's `jwks_uri` names, as JSON.
    pub async fn jwks(&self) -> Result<Value, DiscoveryError> {
        let document = self.document().await?;
        let jwks_uri = document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&self.document_url(), "it has no jwks_uri"))?;
        let jwks = self.get_json(jwks_uri).await?;
        if !jwks.get("keys").is_some_and(Value::is_array) {
            return Err(invalid(jwks_uri, "it has no keys array"));
        }
        Ok(jwks)
    }

    /// GETs `url` as JSON, within [`FETCH_TIMEOUT`] and [`MAX_DOCUMENT_BYTES`].
    pub async fn get_json(&self, url: &str) -> Result<Value, DiscoveryError> {
        let fetch = |source| DiscoveryError::Fetch {
            url: url.to_string(),
            source,
        };
        let mut response = self.http.get(url).send().await.map_err(fetch)?;
        if !response.status().is_success() {
            return Err(DiscoveryError::Status {
                url: url.to_string(),
                status: response.status(),
            });
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(DiscoveryError::TooLarge {
                url: url.to_string(),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fetch)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(DiscoveryError::TooLarge {
                    url: url.to_string(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| invalid(url, &e.to_string()))
    }
}

fn invalid(url: &str, reason: &str) -> DiscoveryError {
    DiscoveryError::Invalid {
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

/// What [`KeyCache::refresh`] did.
#[derive(Debug)]
pub enum Refresh<K, E> {
    /// No load: the keys already fit (another caller reloaded them meanwhile), or the last
    /// load is too recent. The keys as they are.
    Kept(Arc<K>),
    /// Loaded anew.
    Loaded(Arc<K>),
    /// The load failed; the keys as they were, and why.
    Failed(Arc<K>, E),
}

impl<K, E> Refresh<K, E> {
    /// The keys to use now, whatever happened.
    pub fn keys(&self) -> &Arc<K> {
        match self {
            Refresh::Kept(keys) | Refresh::Loaded(keys) | Refresh::Failed(keys, _) => keys,
        }
    }
}

/// Keys as last loaded, reloaded on demand at most once per interval.
#[derive(Debug)]
pub struct KeyCache<K> {
    keys: RwLock<Arc<K>>,
    /// When the keys were last loaded (`None`: never); held while loading, so callers that
    /// need a reload at the same time load once.
    last_load: tokio::sync::Mutex<Option<Instant>>,
    min_reload: Duration,
}

impl<K> KeyCache<K> {
    /// A cache holding `keys`; `loaded_now` when they were just loaded (the next reload then
    /// waits `min_reload`), false when they are a placeholder to be loaded on first need.
    pub fn new(keys: K, loaded_now: bool, min_reload: Duration) -> KeyCache<K> {
        KeyCache {
            keys: RwLock::new(Arc::new(keys)),
            last_load: tokio::sync::Mutex::new(loaded_now.then(Instant::now)),
            min_reload,
        }
    }

    /// Sets the least time between two loads.
    pub fn with_min_reload(mut self, min_reload: Duration) -> KeyCache<K> {
        self.min_reload = min_reload;
        self
    }

    /// The keys as last loaded.
    pub fn current(&self) -> Arc<K> {
        // A poisoned lock only means a panic while swapping an Arc; the value is whole.
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reloads the keys with `load` unless they `fit` (checked again once any concurrent
    /// reload finished) or the last load is younger than the interval.
    pub async fn refresh<E, F, Fut>(&self, fits: impl Fn(&K) -> bool, load: F) -> Refresh<K, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<K, E>>,
    {
        let mut last = self.last_load.lock().await;
        let current = self.current();
        if fits(&current) || last.is_some_and(|at| at.elapsed() < self.min_reload) {
            return Refresh::Kept(current);
        }
        *last = Some(Instant::now());
        match load().await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys.clone();
                Refresh::Loaded(keys)
            }
            Err(error) => Refresh::Failed(current, error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_reload_happens_once_per_interval_and_once_for_concurrent_callers() {
        let cache = Arc::new(KeyCache::new(vec!["a"], true, Duration::from_millis(200)));
        let loads = Arc::new(AtomicUsize::new(0));
        let load = |loads: Arc<AtomicUsize>| async move {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(vec!["a", "b"])
        };
        let has_b = |keys: &Vec<&str>| keys.contains(&"b");
        // Just loaded: too soon to load again.
        assert!(matches!(
            cache.refresh(has_b, || load(loads.clone())).await,
            Refresh::Kept(_)
        ));
        assert_eq!(loads.load(Ordering::SeqCst), 0);
        let_pass(Duration::from_millis(200)).await;
        // Ten callers need "b" at once: one load serves them all.
        let callers: Vec<_> = (0..10)
            .map(|_| {
                let cache = cache.clone();
                let loads = loads.clone();
                tokio::spawn(async move {
                    cache
                        .refresh(has_b, || load(loads))
                        .await
                        .keys()
                        .contains(&"b")
                })
            })
            .collect();
        for caller in callers {
            assert!(caller.await.unwrap());
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_load_keeps_the_keys_it_had() {
        let cache = KeyCache::new(vec!["a"], false, Duration::from_secs(60));
        let refresh = cache
            .refresh(|_| false, || async { Err::<Vec<&str>, _>("unreachable") })
            .await;
        assert!(matches!(&refresh, Refresh::Failed(keys, "unreachable") if **keys == vec!["a"]));
        assert_eq!(*cache.current(), vec!["a"]);
    }

    /// Lets real time pass (the cache reads the monotonic clock, not tokio's).
    async fn let_pass(at_least: Duration) {
        let until = Instant::now() + at_least;
        while Instant::now() < until {
            tokio::time::sleep(until - Instant::now()).await;
        }
    }
}
