//! The OpenAPI document svc-api serves is the one committed at `docs/openapi.json`, byte for
//! byte, so clients generated from the file match the running service.

use crate::support::{Options, TestApp};

#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let response = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .expect("GET /openapi.json");
    assert_eq!(response.status(), 200);
    let served = response.text().await.expect("the document's body");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(
        served == committed,
        "the served /openapi.json differs from docs/openapi.json; regenerate the file with \
         `cargo run -p ferry-svc-api -- openapi --out docs/openapi.json` and commit it"
    );
    app.stop().await.unwrap();
}
