//! `GET /v1/schema/deploy.json`: the deploy file's JSON Schema, public and cacheable, the same
//! document `ferry schema` prints.

use crate::support::{Options, TestApp};
use reqwest::header;

#[tokio::test]
async fn the_deploy_schema_is_public_and_cacheable() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let url = format!("{}/v1/schema/deploy.json", app.base);

    let answer = app.http.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let headers = answer.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "application/schema+json");
    assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=3600");
    let etag = headers[header::ETAG].to_str().unwrap().to_string();
    let body: serde_json::Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
    assert_eq!(body, ferry_deploy::json_schema());
    assert_eq!(body["$schema"], "http://json-schema.org/draft-07/schema#");

    // A client holding the current tag gets 304 without the body; another tag gets the body.
    let again = app
        .http
        .get(&url)
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()[header::ETAG], etag.as_str());
    assert!(again.bytes().await.unwrap().is_empty());
    let stale = app
        .http
        .get(&url)
        .header(header::IF_NONE_MATCH, "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);

    // The OpenAPI document describes it as needing no token.
    let (_, document) = app.get("/openapi.json", None).await;
    let operation = &document["paths"]["/v1/schema/deploy.json"]["get"];
    assert_eq!(
        operation["security"],
        serde_json::json!([{}]),
        "{operation}"
    );
    app.stop().await.unwrap();
}
