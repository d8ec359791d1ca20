//! A real, tiny OIDC issuer for tests: an axum server on 127.0.0.1:0 serving discovery and its
//! JWK set, signing people's tokens with `ferry_auth::Signer`, counting JWK set fetches, and
//! rotating its key on demand.

use axum::routing::get;
use axum::{Json, Router};
use ferry_auth::Signer;
use ferry_svc_api::identity::oidc::OidcIssuer;
use ferry_svc_api::settings::OidcConfig;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The audience (client id) Ferry is registered under at the test issuer.
pub(crate) const AUDIENCE: &str = "ferry-web";

/// A running test issuer; stops when dropped.
pub(crate) struct TestIssuer {
    /// `http://127.0.0.1:<port>`: the issuer URL and `iss` of its tokens.
    pub url: String,
    signer: Arc<RwLock<Arc<Signer>>>,
    jwks_fetches: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestIssuer {
    /// Starts an issuer with one fresh ES256 key.
    pub(crate) async fn start() -> TestIssuer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let signer = Arc::new(RwLock::new(Arc::new(
            Signer::generate_es256("idp-1").unwrap(),
        )));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let discovery = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/keys"),
            "authorization_endpoint": format!("{url}/authorize"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        });
        let keys = signer.clone();
        let fetches = jwks_fetches.clone();
        let router = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let discovery = discovery.clone();
                    async move { Json(discovery) }
                }),
            )
            .route(
                "/keys",
                get(move || {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let jwks = keys.read().unwrap().jwk_set();
                    async move { Json(jwks) }
                }),
            );
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        TestIssuer {
            url,
            signer,
            jwks_fetches,
            task,
        }
    }

    /// Replaces the key with a new one under `kid`; only the new one is published.
    pub(crate) fn rotate(&self, kid: &str) {
        *self.signer.write().unwrap() = Arc::new(Signer::generate_es256(kid).unwrap());
    }

    /// How often the JWK set was fetched.
    pub(crate) fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// The claims of a valid ID token for `email`, meant for Ferry, valid for an hour.
    pub(crate) fn claims(&self, email: &str) -> Value {
        let now = now();
        json!({
            "iss": self.url,
            "sub": format!("sub-{}", email.to_lowercase()),
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 3600,
            "email": email,
            "email_verified": true,
        })
    }

    /// `claims` signed with the current key.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.signer.read().unwrap().sign_claims(claims).unwrap()
    }

    /// A valid token for `email`.
    pub(crate) fn token(&self, email: &str) -> String {
        self.sign(&self.claims(email))
    }

    /// The flags that make svc-api accept this issuer's tokens.
    pub(crate) fn flags(&self, extra: &[&str]) -> Vec<String> {
        let mut flags = vec![
            "--oidc-issuer-url".to_string(),
            self.url.clone(),
            "--oidc-audience".to_string(),
            AUDIENCE.to_string(),
        ];
        flags.extend(extra.iter().map(std::string::ToString::to_string));
        flags
    }

    /// A verifier of this issuer's tokens, outside svc-api, reloading its keys at most once
    /// per `min_reload`.
    pub(crate) fn verifier(&self, min_reload: Duration) -> OidcIssuer {
        OidcIssuer::new(OidcConfig {
            issuer: self.url.clone(),
            audience: AUDIENCE.into(),
            email_claim: "email".into(),
            groups_claim: "groups".into(),
            group_roles: Vec::new(),
            min_reload,
        })
        .unwrap()
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
