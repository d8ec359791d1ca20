//! OIDC discovery as a real client sees it: `openidconnect` parses the document and fetches the
//! JWK set, and that key set verifies a token the service issued.

use crate::support::{Options, TestApp, kid_of, kids};
use ferry_auth::Verifier;
use openidconnect::core::CoreProviderMetadata;
use openidconnect::{IssuerUrl, JsonWebKey};

#[tokio::test]
async fn discovery_parses_with_openidconnect_and_its_keys_verify_issued_tokens() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;

    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &app.http)
            .await
            .expect("openidconnect discovers the issuer");
    assert_eq!(metadata.issuer().as_str(), app.base);
    assert_eq!(
        metadata.token_endpoint().unwrap().as_str(),
        format!("{}/oauth/token", app.base)
    );
    assert_eq!(
        metadata.jwks_uri().as_str(),
        format!("{}/.well-known/jwks.json", app.base)
    );

    let credential = app.credential(&["Agent"]).await;
    let token = app.token(&credential, "ferry-hub").await;
    let kid = kid_of(&token);
    let keys = metadata.jwks().keys();
    assert!(
        keys.iter()
            .any(|k| k.key_id().map(|id| id.as_str()) == Some(kid.as_str())),
        "the discovered key set holds the token's key"
    );

    // The key set as openidconnect parsed it, handed to ferry-auth (as the hub does).
    let json = serde_json::to_vec(metadata.jwks()).unwrap();
    let verifier = Verifier::from_jwks_json(&json, app.base.clone(), "ferry-hub").unwrap();
    let claims = verifier.verify(&token).expect("the token verifies");
    assert_eq!(claims.iss, app.base);
    assert_eq!(claims.aud, "ferry-hub");
    assert_eq!(claims.tenant, credential.tenant_id.as_uuid());
    assert_eq!(claims.sub, credential.credential_id.to_string());
    assert_eq!(claims.roles, ["Agent"]);

    // The raw document advertises exactly what the issuer supports.
    let (status, document) = app.get("/.well-known/openid-configuration", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        document["grant_types_supported"],
        serde_json::json!([
            "client_credentials",
            "authorization_code",
            "urn:ietf:params:oauth:grant-type:device_code",
            "refresh_token"
        ])
    );
    assert_eq!(
        document["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    let (status, jwks) = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(kids(&jwks), [kid]);
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private key material is published"
    );
    app.stop().await.unwrap();
}
