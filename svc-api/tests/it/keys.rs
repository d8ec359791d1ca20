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
    // Rows past retention are deleted by the next rotation.
    ferry_testkit::eventually(
        "the retired key to be deleted",
        Duration::from_secs(30),
        || async {
            let stored: i64 =
                sqlx::query_scalar("SELECT count(*) FROM signing_keys WHERE kid = $1")
                    .bind(&original)
                    .fetch_one(&db.pool)
                    .await
                    .unwrap();
            (stored == 0).then_some(())
        },
    )
    .await;
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

/// Ages keys by moving their creation time back: the key ring measures every age with the
/// database's clock, so this is exactly what the passing of time looks like to it.
async fn age_key(db: &ferry_testkit::TestDb, kid: &str, secs: u64) {
    sqlx::query(
        "UPDATE signing_keys SET created_at = created_at - make_interval(secs => $2)
         WHERE kid = $1",
    )
    .bind(kid)
    .bind(secs as f64)
    .execute(&db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_new_key_is_published_before_it_signs_and_retired_after_its_tokens_expire() {
    use ferry_svc_api::identity::crypto::MasterKey;
    use ferry_svc_api::identity::keys::{KeyPolicy, KeyRing};

    let db = ferry_testkit::TestDb::new().await;
    // Rotation 400s: the activation delay is 100s (a quarter), a successor is created at 300s.
    let policy = KeyPolicy {
        rotation: Duration::from_secs(400),
        token_ttl: Duration::from_secs(3600),
    };
    let ring = KeyRing::open(
        db.pool.clone(),
        MasterKey::from_base64(&crate::support::master_key()).unwrap(),
        "https://ferry.test",
        policy,
    )
    .await
    .unwrap();
    let first = ring.current_kid();
    let published = |ring: &KeyRing| -> Vec<String> {
        ring.jwks()
            .keys
            .iter()
            .map(|k| k.common.key_id.clone().unwrap())
            .collect()
    };
    assert_eq!(published(&ring), vec![first.clone()]);

    // Not yet due: nothing changes.
    age_key(&db, &first, 250).await;
    ring.reload().await.unwrap();
    assert_eq!(published(&ring), vec![first.clone()]);

    // Due: a successor is created and published, but the first key still signs.
    age_key(&db, &first, 60).await;
    ring.reload().await.unwrap();
    let keys = published(&ring);
    assert_eq!(keys.len(), 2, "{keys:?}");
    let second = keys[0].clone();
    assert_ne!(second, first);
    assert_eq!(ring.current_kid(), first, "a new key does not sign at once");

    // Past its activation delay the successor signs; the first key is still published.
    age_key(&db, &second, 101).await;
    ring.reload().await.unwrap();
    assert_eq!(ring.current_kid(), second);
    let claims = ferry_auth::Claims::new(
        "https://ferry.test",
        "c",
        "ferry-api",
        uuid::Uuid::new_v4(),
        vec![],
        Duration::from_secs(60),
    );
    assert_eq!(kid_of(&ring.sign(&claims).await.unwrap()), second);
    assert!(published(&ring).contains(&first));

    // Two token lifetimes after the successor started signing, the first key is retired.
    age_key(&db, &first, 2 * 3600).await;
    age_key(&db, &second, 2 * 3600 + 10).await;
    ring.reload().await.unwrap();
    assert!(!published(&ring).contains(&first));
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM signing_keys WHERE kid = $1")
        .bind(&first)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "a retired key is deleted");
}
