//! `GET /v1/audit`: a tenant administrator reads who did what, narrowed by actor, action (or
//! prefix), resource and time, page by page; nobody else reads it, and no other tenant's
//! entries show.

use crate::support::{Options, TestApp};
use serde_json::json;

#[tokio::test]
async fn the_audit_log_is_read_filtered_and_paged_by_admins_only() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (admin, token) = app.tenant_token(&["Tenant Admin"]).await;
    for name in ["a", "b", "c"] {
        let (status, _) = app
            .put(
                &format!("/v1/secrets/{name}"),
                &token,
                &json!({ "value": "v" }),
            )
            .await;
        assert_eq!(status, 204);
    }
    let (status, created) = app
        .post(
            "/v1/credentials",
            &token,
            &json!({ "name": "ci", "roles": [] }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let ci = created["id"].as_str().unwrap();
    app.delete(&format!("/v1/credentials/{ci}"), &token).await;

    let (status, page) = app.get("/v1/audit", Some(&token)).await;
    assert_eq!(status, 200, "{page}");
    let actions: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..5],
        [
            "credential.revoke",
            "credential.create",
            "secret.put",
            "secret.put",
            "secret.put"
        ],
        "newest first: {actions:?}"
    );

    // By action prefix and by resource.
    // (The bootstrap that made the admin's own credential is in the log too.)
    let (_, page) = app.get("/v1/audit?action=credential.", Some(&token)).await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 3, "{page}");
    let (_, page) = app
        .get(
            &format!("/v1/audit?resourceKind=credential&resourceId={ci}&action=credential.revoke"),
            Some(&token),
        )
        .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1, "{page}");
    let actor = admin.credential_id.to_string();
    assert_eq!(page["entries"][0]["actor"], actor.as_str());
    let (_, page) = app
        .get(&format!("/v1/audit?actor={actor}"), Some(&token))
        .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 5, "{page}");
    let (_, page) = app.get("/v1/audit?actor=nobody", Some(&token)).await;
    assert_eq!(page["entries"], json!([]));
    let (_, page) = app
        .get("/v1/audit?until=2000-01-01T00:00:00Z", Some(&token))
        .await;
    assert_eq!(page["entries"], json!([]));

    // Pages of two, following `next` to the end.
    let mut seen = 0;
    let mut path = "/v1/audit?action=secret.&limit=2".to_string();
    loop {
        let (status, page) = app.get(&path, Some(&token)).await;
        assert_eq!(status, 200, "{page}");
        seen += page["entries"].as_array().unwrap().len();
        match page.get("next") {
            Some(next) => {
                let next = next.as_i64().expect("a number");
                path = format!("/v1/audit?action=secret.&limit=2&before={next}");
            }
            // The last page has no `next` at all, as a deployments page.
            None => break,
        }
    }
    assert_eq!(seen, 3);

    // Bad filters are refused; other roles and other tenants see nothing.
    for bad in [
        "limit=0",
        "limit=201",
        "since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z",
        "nope=1",
        "since=yesterday",
    ] {
        let (status, body) = app.get(&format!("/v1/audit?{bad}"), Some(&token)).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let viewer = app.same_tenant_token(&admin, &["Viewer", "Deployer"]).await;
    assert_eq!(app.get("/v1/audit", Some(&viewer)).await.0, 403);
    let (_, other) = app.tenant_token(&["Tenant Admin"]).await;
    let (_, page) = app.get("/v1/audit?action=secret.", Some(&other)).await;
    assert_eq!(
        page["entries"],
        json!([]),
        "another tenant's log is its own"
    );
    app.stop().await.unwrap();
}
