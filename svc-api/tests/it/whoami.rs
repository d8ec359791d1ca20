//! The bearer-token extractor, through `GET /v1/whoami`: the principal comes from a valid
//! `ferry-api` token, and anything else is a 401 problem.

use crate::support::{Options, TestApp, master_key};
use ferry_auth::Claims;
use ferry_svc_api::identity::crypto::MasterKey;
use ferry_svc_api::identity::keys::{KeyPolicy, KeyRing};
use std::time::Duration;

#[tokio::test]
async fn whoami_returns_the_principal_of_a_valid_api_token() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let credential = app.credential(&["Tenant Admin", "Viewer"]).await;
    let token = app.token(&credential, "ferry-api").await;

    let (status, body) = app.get("/v1/whoami", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tenant"], credential.tenant_id.to_string());
    assert_eq!(body["subject"], credential.credential_id.to_string());
    assert_eq!(body["roles"], serde_json::json!(["Tenant Admin", "Viewer"]));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn whoami_refuses_missing_foreign_audience_expired_and_forged_tokens() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let credential = app.credential(&["Agent"]).await;

    let hub_token = app.token(&credential, "ferry-hub").await;

    // A token signed with the service's own current key, but expired well past the leeway.
    let keys = KeyRing::open(
        db.pool.clone(),
        MasterKey::from_base64(&master_key()).unwrap(),
        app.base.clone(),
        KeyPolicy {
            rotation: Duration::from_secs(30 * 24 * 3600),
            token_ttl: Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    let mut claims = Claims::new(
        app.base.clone(),
        credential.credential_id.to_string(),
        "ferry-api",
        credential.tenant_id.as_uuid(),
        vec!["Agent".into()],
        Duration::from_secs(3600),
    );
    claims.iat -= 7200;
    claims.exp -= 7200;
    let expired = keys.sign(&claims).await.unwrap();
    // A fresh token from the same key verifies, so below only the expiry is refused; the same
    // claims signed by another key under the same kid are refused as forged.
    let valid = Claims::new(
        app.base.clone(),
        credential.credential_id.to_string(),
        "ferry-api",
        credential.tenant_id.as_uuid(),
        vec!["Agent".into()],
        Duration::from_secs(60),
    );
    let fresh = keys.sign(&valid).await.unwrap();
    assert_eq!(app.get("/v1/whoami", Some(&fresh)).await.0, 200);
    let forged = ferry_auth::Signer::generate_es256(keys.current_kid())
        .unwrap()
        .sign(&valid)
        .unwrap();

    for (what, token, detail) in [
        ("no token", None, "missing"),
        ("hub audience", Some(hub_token.as_str()), "audience"),
        ("expired", Some(expired.as_str()), "expired"),
        ("forged", Some(forged.as_str()), "invalid"),
        ("garbage", Some("not.a.jwt"), "invalid"),
    ] {
        let (status, body) = app.get("/v1/whoami", token).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["code"], "unauthorized", "{what}");
        assert_eq!(body["status"], 401);
        assert!(
            body["detail"].as_str().unwrap().contains(detail),
            "{what}: {body}"
        );
    }

    // Unknown routes are problems too.
    let (status, body) = app.get("/v1/nothing-here", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");
    app.stop().await.unwrap();
}
