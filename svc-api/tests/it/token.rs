//! `POST /oauth/token`: both client authentication methods, every refusal in RFC 6749 form,
//! the claims of an issued token, and its audit entry.

use crate::support::{Options, TestApp};
use ferry_auth::Verifier;
use ferry_store::{audit, credentials};

#[tokio::test]
async fn client_secret_basic_and_post_both_issue_tokens_with_the_credentials_claims() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let credential = app.credential(&["Deployer", "Viewer"]).await;
    let secret = credential.client_secret.clone().unwrap();

    let (status, basic, headers) = app
        .token_request(
            Some((&credential.client_id, &secret)),
            &[("grant_type", "client_credentials"), ("scope", "deploy")],
        )
        .await;
    assert_eq!(status, 200, "{basic}");
    assert_eq!(basic["token_type"], "Bearer");
    assert_eq!(basic["expires_in"], 3600);
    assert_eq!(basic["scope"], "deploy");
    assert_eq!(headers["cache-control"], "no-store");

    let (status, posted, _) = app
        .token_request(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &credential.client_id),
                ("client_secret", &secret),
                ("audience", "ferry-api"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{posted}");

    let (_, jwks) = app.get("/.well-known/jwks.json", None).await;
    let verifier = Verifier::from_jwks_json(
        &serde_json::to_vec(&jwks).unwrap(),
        app.base.clone(),
        "ferry-api",
    )
    .unwrap();
    for body in [basic, posted] {
        let claims = verifier
            .verify(body["access_token"].as_str().unwrap())
            .expect("an api token");
        assert_eq!(claims.iss, app.base);
        assert_eq!(claims.aud, "ferry-api");
        assert_eq!(claims.sub, credential.credential_id.to_string());
        assert_eq!(claims.tenant, credential.tenant_id.as_uuid());
        assert_eq!(claims.roles, ["Deployer", "Viewer"]);
        assert_eq!(claims.exp - claims.iat, 3600);
    }

    let store = ferry_store::Store::from_pool(db.pool.clone());
    let entries = audit::list(&store, credential.tenant_id, None, 50)
        .await
        .unwrap();
    let issued: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "token.issue")
        .collect();
    assert_eq!(issued.len(), 2, "each issuance is audited");
    for entry in issued {
        assert_eq!(entry.actor, credential.client_id);
        assert_eq!(entry.resource_id, credential.credential_id.to_string());
        assert_eq!(entry.details.0["audience"], "ferry-api");
        assert!(!entry.details.0.to_string().contains(&secret));
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn bad_credentials_are_refused_as_invalid_client() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let credential = app.credential(&["Deployer"]).await;
    let secret = credential.client_secret.clone().unwrap();
    let grant = [("grant_type", "client_credentials")];

    let wrong_secret = app
        .token_request(Some((&credential.client_id, "not-the-secret")), &grant)
        .await;
    let unknown_client = app
        .token_request(Some(("ferry-nobody", &secret)), &grant)
        .await;
    let no_authentication = app.token_request(None, &grant).await;
    let wrong_posted = app
        .token_request(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &credential.client_id),
                ("client_secret", "nope"),
            ],
        )
        .await;
    for (status, body, headers) in [
        wrong_secret,
        unknown_client,
        no_authentication,
        wrong_posted,
    ] {
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid_client");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
    }

    // Works, then revoked, then refused exactly like an unknown client.
    let (status, _, _) = app
        .token_request(Some((&credential.client_id, &secret)), &grant)
        .await;
    assert_eq!(status, 200);
    let mut conn = db.pool.acquire().await.unwrap();
    credentials::revoke(&mut conn, credential.tenant_id, credential.credential_id)
        .await
        .unwrap();
    let (status, body, _) = app
        .token_request(Some((&credential.client_id, &secret)), &grant)
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn malformed_requests_get_rfc6749_errors() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let credential = app.credential(&["Deployer"]).await;
    let secret = credential.client_secret.clone().unwrap();
    let basic = Some((credential.client_id.as_str(), secret.as_str()));

    let (status, body, _) = app
        .token_request(basic, &[("grant_type", "password")])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );

    let (status, body, _) = app.token_request(basic, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    let (status, body, _) = app
        .token_request(
            basic,
            &[
                ("grant_type", "client_credentials"),
                ("audience", "ferry-admin"),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target"))
    );

    // Two authentication methods at once.
    let (status, body, _) = app
        .token_request(
            basic,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &credential.client_id),
                ("client_secret", &secret),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // Not a form at all.
    let response = app
        .http
        .post(format!("{}/oauth/token", app.base))
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"client_credentials"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["error"], "invalid_request");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn only_agent_credentials_get_hub_tokens() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let deployer = app.credential(&["Deployer", "Tenant Admin"]).await;
    let secret = deployer.client_secret.clone().unwrap();

    let (status, body, _) = app
        .token_request(
            Some((&deployer.client_id, &secret)),
            &[
                ("grant_type", "client_credentials"),
                ("audience", "ferry-hub"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "unauthorized_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("Agent role"),
        "{body}"
    );
    // The same credential still gets API tokens.
    app.token(&deployer, "ferry-api").await;

    let agent = app.credential(&["Agent"]).await;
    app.token(&agent, "ferry-hub").await;
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_token_endpoint_limits_addresses_and_failing_client_ids() {
    let db = ferry_testkit::TestDb::new().await;
    let flags: Vec<String> = [
        "--token-burst-per-address",
        "6",
        "--token-rate-per-address",
        "0.01",
        "--token-failure-burst-per-client",
        "2",
        "--token-failures-per-client",
        "0.01",
    ]
    .iter()
    .map(std::string::ToString::to_string)
    .collect();
    let app = TestApp::start_with(&db, Options::default(), &flags).await;
    let victim = app.credential(&["Deployer"]).await;
    let other = app.credential(&["Deployer"]).await;
    let form = [("grant_type", "client_credentials")];

    // Two bad secrets for one client id lock that id out, even with the right secret...
    for _ in 0..2 {
        let (status, _, _) = app
            .token_request(Some((&victim.client_id, "wrong")), &form)
            .await;
        assert_eq!(status, 401);
    }
    let secret = victim.client_secret.clone().unwrap();
    let (status, body, headers) = app
        .token_request(Some((&victim.client_id, &secret)), &form)
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(headers.contains_key("retry-after"));
    // ...and no other client.
    let (status, body, _) = app
        .token_request(
            Some((&other.client_id, other.client_secret.as_deref().unwrap())),
            &form,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Four requests so far from this address (127.0.0.1); the burst is six.
    let (status, _, _) = app.token_request(None, &form).await;
    assert_eq!(status, 401);
    let (status, _, _) = app.token_request(None, &form).await;
    assert_eq!(status, 401);
    let (status, body, headers) = app
        .token_request(
            Some((&other.client_id, other.client_secret.as_deref().unwrap())),
            &form,
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("this address"),
        "{body}"
    );
    assert!(headers.contains_key("retry-after"));
    app.stop().await.unwrap();
}
