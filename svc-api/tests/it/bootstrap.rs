//! `bootstrap`: creates the first tenant and admin credential once; running it again changes
//! nothing and shows no secret; the printed secret works at the token endpoint.

use crate::support::{Options, TestApp};
use ferry_svc_api::settings::BootstrapArgs;

#[tokio::test]
async fn bootstrap_is_idempotent_and_its_printed_secret_works() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let args = BootstrapArgs {
        tenant: "acme".into(),
        client_name: "admin".into(),
        roles: vec!["Tenant Admin".into()],
        json: true,
    };

    let first = ferry_svc_api::bootstrap(&app.settings, &args)
        .await
        .unwrap();
    let printed: serde_json::Value = serde_json::from_str(&first.render(true)).unwrap();
    assert_eq!(printed["tenant"], "acme");
    assert_eq!(printed["tenant_created"], true);
    assert_eq!(printed["credential_created"], true);
    assert_eq!(printed["roles"], serde_json::json!(["Tenant Admin"]));
    let client_id = printed["client_id"].as_str().unwrap().to_string();
    let secret = printed["client_secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 43, "at least 32 random bytes");
    let stored: String =
        sqlx::query_scalar("SELECT secret_hash FROM credentials WHERE client_id = $1")
            .bind(&client_id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$"));
    assert!(!stored.contains(&secret));

    let again = ferry_svc_api::bootstrap(&app.settings, &args)
        .await
        .unwrap();
    assert!(!again.tenant_created);
    assert!(!again.credential_created);
    assert_eq!(again.tenant_id, first.tenant_id);
    assert_eq!(again.client_id, client_id);
    assert_eq!(again.client_secret, None, "a secret is shown only once");
    assert!(!again.render(false).contains(&secret));
    let credentials: i64 = sqlx::query_scalar("SELECT count(*) FROM credentials")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(credentials, 1);

    let (status, body, _) = app
        .token_request(
            Some((&client_id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, whoami) = app.get("/v1/whoami", body["access_token"].as_str()).await;
    assert_eq!(status, 200);
    assert_eq!(whoami["tenant"], first.tenant_id.to_string());
    assert_eq!(whoami["roles"], serde_json::json!(["Tenant Admin"]));

    // An unknown role creates nothing (the transaction rolls back).
    let bad = BootstrapArgs {
        tenant: "globex".into(),
        client_name: "admin".into(),
        roles: vec!["No Such Role".into()],
        json: false,
    };
    assert!(ferry_svc_api::bootstrap(&app.settings, &bad).await.is_err());
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants WHERE slug = 'globex'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(tenants, 0);
    app.stop().await.unwrap();
}
