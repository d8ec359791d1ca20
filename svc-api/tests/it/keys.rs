//! Signing keys across time and replicas: rotation keeps old tokens verifiable, and replicas on
//! one database sign with the same key.

use crate::support::{Options, TestApp, kid_of, kids};
use std::time::Duration;

#[tokio::test]
async fn rotation_signs_with_a_new_key_and_keeps_publishing_the_previous_one() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(
        &db,
        Options {
            rotation_secs: 1,
            ..Options::default()
        },
    )
    .await;
    let credential = app.credential(&["Deployer"]).await;
    let first = app.token(&credential, "ferry-api").await;
    let first_kid = kid_of(&first);

    let second = ferry_testkit::eventually(
        "a token signed with a rotated key",
        Duration::from_secs(30),
        || async {
            let token = app.token(&credential, "ferry-api").await;
            (kid_of(&token) != first_kid).then_some(token)
        },
    )
    .await;
    let second_kid = kid_of(&second);

    let (_, jwks) = app.get("/.well-known/jwks.json", None).await;
    let published = kids(&jwks);
    assert!(published.contains(&first_kid), "{published:?}");
    assert!(published.contains(&second_kid), "{published:?}");

    for token in [&first, &second] {
        let (status, body) = app.get("/v1/whoami", Some(token)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["subject"], credential.credential_id.to_string());
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn superseded_keys_are_retired_after_twice_the_token_ttl() {
    let db = ferry_testkit::TestDb::new().await;
    // Tokens live 1s: a superseded key stays published for 2s after its successor appeared.
    let app = TestApp::start(
        &db,
        Options {
            rotation_secs: 1,
            token_ttl_secs: 1,
            ..Options::default()
        },
    )
    .await;
    let (_, jwks) = app.get("/.well-known/jwks.json", None).await;
    let original = kids(&jwks)[0].clone();
    ferry_testkit::eventually(
        "the original key to be retired",
        Duration::from_secs(30),
        || async {
            let (_, jwks) = app.get("/.well-known/jwks.json", None).await;
            (!kids(&jwks).contains(&original)).then_some(())
        },
    )
    .await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM signing_keys WHERE kid = $1")
        .bind(&original)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "a retired key is deleted");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn two_replicas_on_one_database_sign_with_the_same_key() {
    let db = ferry_testkit::TestDb::new().await;
    // Replicas behind one load balancer share the issuer URL.
    let options = Options {
        issuer: Some("https://ferry.test"),
        ..Options::default()
    };
    let (a, b) = tokio::join!(TestApp::start(&db, options), TestApp::start(&db, options));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM signing_keys")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(count, 1, "replicas starting together create one key");

    let credential = a.credential(&["Viewer"]).await;
    let from_a = a.token(&credential, "ferry-api").await;
    let from_b = b.token(&credential, "ferry-api").await;
    assert_eq!(kid_of(&from_a), kid_of(&from_b));

    let (_, jwks_a) = a.get("/.well-known/jwks.json", None).await;
    let (_, jwks_b) = b.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks_a, jwks_b);
    for (replica, token) in [(&b, &from_a), (&a, &from_b)] {
        let (status, body) = replica.get("/v1/whoami", Some(token)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["tenant"], credential.tenant_id.to_string());
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
