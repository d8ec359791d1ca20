//! `ferry login` against an external OIDC issuer the API names first: a tiny issuer in the
//! test (discovery, keys, the device flow and refresh, signing ID tokens with
//! `ferry_auth::Signer`, no revocation endpoint) whose ID tokens svc-api accepts for an invited
//! person. The CLI sends the ID token, refreshes it, and `--issuer` must name an issuer the API
//! accepts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use ferry_auth::Signer;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::TcpListener;

use crate::support::{Home, Stack};

/// The client id (and audience) Ferry has at the issuer.
const AUDIENCE: &str = "ferry-people";
const EMAIL: &str = "lin@example.test";
const USER_CODE: &str = "WDJB-MJHT";

/// What the issuer has seen.
#[derive(Default)]
struct Seen {
    approved: bool,
    polls: usize,
    refreshes: usize,
    refresh_token: String,
}

struct Idp {
    url: String,
    signer: Signer,
    seen: Mutex<Seen>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Idp {
    /// Tokens for `EMAIL`: an ID token for Ferry, an opaque access token, a new refresh token.
    fn tokens(&self, seen: &mut Seen) -> Value {
        let now = now();
        let id_token = self
            .signer
            .sign_claims(&json!({
                "iss": self.url, "sub": "lin-1", "aud": AUDIENCE, "iat": now, "exp": now + 300,
                "email": EMAIL, "email_verified": true,
            }))
            .unwrap();
        seen.refresh_token = format!("refresh-{}", seen.refreshes);
        json!({
            "access_token": "opaque, not for Ferry",
            "id_token": id_token,
            "refresh_token": seen.refresh_token,
            "token_type": "Bearer",
            "expires_in": 300,
        })
    }
}

async fn token(
    State(idp): State<Arc<Idp>>,
    Form(form): Form<Vec<(String, String)>>,
) -> (StatusCode, Json<Value>) {
    let get = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut seen = idp.seen.lock().unwrap();
    if get("client_id") != AUDIENCE {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        );
    }
    match get("grant_type").as_str() {
        "urn:ietf:params:oauth:grant-type:device_code" if get("device_code") == "dc-1" => {
            seen.polls += 1;
            if seen.approved {
                (StatusCode::OK, Json(idp.tokens(&mut seen)))
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": "authorization_pending"})),
                )
            }
        }
        "refresh_token" if get("refresh_token") == seen.refresh_token => {
            seen.refreshes += 1;
            (StatusCode::OK, Json(idp.tokens(&mut seen)))
        }
        _ => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        ),
    }
}

/// Starts the issuer.
async fn start_idp() -> Arc<Idp> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let idp = Arc::new(Idp {
        url: url.clone(),
        signer: Signer::generate_es256("idp-key").unwrap(),
        seen: Mutex::new(Seen::default()),
    });
    let discovery = json!({
        "issuer": url,
        "jwks_uri": format!("{url}/keys"),
        "token_endpoint": format!("{url}/token"),
        "device_authorization_endpoint": format!("{url}/device"),
    });
    let device = json!({
        "device_code": "dc-1",
        "user_code": USER_CODE,
        "verification_uri": format!("{url}/activate"),
        "expires_in": 120,
        "interval": 1,
    });
    let router = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { Json(discovery) }),
        )
        .route(
            "/keys",
            get(|State(idp): State<Arc<Idp>>| async move { Json(idp.signer.jwk_set()) }),
        )
        .route("/device", post(move || async move { Json(device) }))
        .route("/token", post(token))
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    idp
}

#[tokio::test]
async fn a_person_signs_in_at_the_external_issuer_the_api_names() {
    let idp = start_idp().await;
    let flags = [
        "--oidc-issuer-url".to_string(),
        idp.url.clone(),
        "--oidc-audience".to_string(),
        AUDIENCE.to_string(),
    ];
    let stack = Stack::start_with(&flags).await;
    let admin = stack.tenant(&["Tenant Admin"]).await;
    // The tenant admin invites the person.
    let admin_home = Home::new();
    crate::support::login(&admin_home, &stack, &admin).await;
    admin_home
        .run(&[], &["users", "set", EMAIL, "--role", "Viewer"])
        .await
        .ok();

    let home = Home::new();
    // An issuer the API does not accept is refused before anything starts.
    let refused = home
        .run(
            &[],
            &[
                "login",
                "--api",
                &stack.api,
                "--issuer",
                "https://idp.elsewhere.test",
            ],
        )
        .await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("does not accept people's tokens of"),
        "{}",
        refused.stderr
    );

    let mut child = home
        .command(
            &[],
            &["login", "--api", &stack.api, "--tenant", &admin.tenant],
        )
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let code = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if let Some(code) = line.strip_prefix("Code: ") {
                return code.to_string();
            }
        }
        panic!("no code shown");
    })
    .await
    .unwrap();
    assert_eq!(code, USER_CODE);
    idp.seen.lock().unwrap().approved = true;
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains(&format!("as {EMAIL}")), "{stdout}");

    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(home.credentials()).unwrap()).unwrap();
    let person = &file["contexts"]["default"]["person"];
    assert_eq!(person["issuer"], idp.url.as_str());
    assert_eq!(person["clientId"], AUDIENCE);
    assert_eq!(person["bearer"], "id_token");
    assert!(person.get("revocationEndpoint").is_none());

    // Expiring: refreshed at the issuer, the new ID token sent.
    let mut file = file;
    file["contexts"]["default"]["person"]["expiresAt"] = Value::from(1);
    std::fs::write(home.credentials(), file.to_string()).unwrap();
    let me = home.run(&[], &["whoami", "-o", "json"]).await.json();
    assert_eq!(me["email"], EMAIL);
    assert_eq!(me["roles"], json!(["Viewer"]));
    assert_eq!(idp.seen.lock().unwrap().refreshes, 1);

    // No revocation endpoint: logout forgets the tokens and says nothing was revoked.
    let out = home.run(&[], &["logout", "-o", "json"]).await.json();
    assert_eq!(out["revoked"], false);
    stack.stop().await;
}
