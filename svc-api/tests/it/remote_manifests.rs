//! Manifests named by URL: svc-api fetches them from a real HTTP server on 127.0.0.1 (so the
//! tests turn private addresses on), stores them with the deployment and plans their objects;
//! a redeploy reuses them without fetching; 404, too large, too slow and redirect loops are a
//! 422 naming each entry; with private addresses refused (the default) a loopback URL is a 422
//! that says why, and nothing is fetched; a deploy file's URLs together are limited in number,
//! total size and total time, each a 422 naming the limit.

use crate::support::{Options, TestApp, count};
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const APP: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
";

const CONFIG: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data: {greeting: hello}
";

/// A manifest server on 127.0.0.1:0 counting the requests it answers.
struct ManifestServer {
    base: String,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl ManifestServer {
    async fn start() -> ManifestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let router = Router::new()
            .route("/app.yaml", get(|| async { APP }))
            .route(
                "/moved",
                get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/config.yaml")]) }),
            )
            .route("/config.yaml", get(|| async { CONFIG }))
            .route(
                "/big.yaml",
                get(|| async { format!("# {}\n{CONFIG}", "x".repeat(4096)) }),
            )
            .route(
                "/loop",
                get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
            )
            .route(
                "/tardy.yaml",
                get(|| async {
                    // Within the per-URL timeout the limits test sets, but many of them are not
                    // within the deploy file's total time.
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    CONFIG.into_response()
                }),
            )
            .route(
                "/slow.yaml",
                get(|| async {
                    // Far beyond the fetch timeout the tests set; the test waits on svc-api's
                    // answer, never on this.
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    CONFIG.into_response()
                }),
            )
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    next.run(request)
                },
            ));
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        ManifestServer { base, hits, task }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for ManifestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A deploy file whose manifests are `entries` (one `path:` each, in order).
fn request(application: &str, entries: &[String]) -> serde_json::Value {
    let mut text = format!(
        "version: v1
kind: kubernetes
application: {application}
deploymentConfig:
  ifDeploymentInProgress:
    strategy: enqueueOne
targets:
  dev:
    account: dev-cluster
    namespace: remote-dev
manifests:
"
    );
    for entry in entries {
        text.push_str(&format!("  - path: {entry}\n"));
    }
    serde_json::json!({ "deployFile": { "name": "deploy.yml", "content": text } })
}

fn allow_private(extra: &[&str]) -> Vec<String> {
    let mut flags = vec!["--manifest-fetch-allow-private".to_string()];
    flags.extend(extra.iter().map(std::string::ToString::to_string));
    flags
}

#[tokio::test]
async fn fetched_manifests_are_stored_planned_and_reused_by_redeploy() {
    let server = ManifestServer::start().await;
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start_with(&db, Options::default(), &allow_private(&[])).await;
    let (_, token) = app.tenant_token(&["Deployer"]).await;
    let app_url = format!("{}/app.yaml", server.base);
    let moved_url = format!("{}/moved", server.base);

    let (status, body) = app
        .post(
            "/v1/deployments",
            &token,
            &request("remote", &[app_url.clone(), moved_url.clone()]),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    // One request each, and one more for the redirect's target.
    assert_eq!(server.hits(), 3);

    let (status, config) = app
        .get(&format!("/v1/deployments/{id}/config"), Some(&token))
        .await;
    assert_eq!(status, 200, "{config}");
    // Stored under the URL as written (the redirect's content under the entry's URL).
    assert_eq!(
        config["manifests"],
        serde_json::json!([
            { "path": app_url, "content": APP },
            { "path": moved_url, "content": CONFIG },
        ])
    );
    let target = &config["plan"]["targets"][0];
    assert_eq!(target["remoteManifests"], serde_json::json!([]), "{target}");
    let objects: Vec<(&str, &str, &str, &str)> = target["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap(),
                m["name"].as_str().unwrap(),
                m["source"].as_str().unwrap(),
                m["object"]["metadata"]["namespace"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        objects,
        [
            ("Deployment", "web", app_url.as_str(), "remote-dev"),
            ("ConfigMap", "settings", moved_url.as_str(), "remote-dev"),
        ]
    );

    // A redeploy plans from the stored contents: nothing is fetched again.
    let (status, body) = app
        .post(
            &format!("/v1/deployments/{id}/redeploy"),
            &token,
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let again = body["id"].as_str().unwrap();
    assert_eq!(server.hits(), 3);
    let (_, replayed) = app
        .get(&format!("/v1/deployments/{again}/config"), Some(&token))
        .await;
    assert_eq!(replayed["manifests"], config["manifests"]);
    assert_eq!(replayed["plan"]["targets"], config["plan"]["targets"]);
}

#[tokio::test]
async fn failed_fetches_are_a_422_naming_each_entry_and_store_nothing() {
    let server = ManifestServer::start().await;
    let db = ferry_testkit::TestDb::new().await;
    let flags = allow_private(&[
        "--manifest-fetch-timeout-ms",
        "500",
        "--manifest-fetch-max-bytes",
        "1024",
    ]);
    let app = TestApp::start_with(&db, Options::default(), &flags).await;
    let (_, token) = app.tenant_token(&["Deployer"]).await;
    let url = |path: &str| format!("{}/{path}", server.base);
    let entries = [
        url("app.yaml"),
        url("missing.yaml"),
        url("big.yaml"),
        url("slow.yaml"),
        url("loop"),
    ];

    let (status, body) = app
        .post("/v1/deployments", &token, &request("broken", &entries))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "invalid_deploy_file");
    let errors: Vec<(u64, u64, &str, &str)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["file"], "deploy.yml");
            (
                e["line"].as_u64().unwrap(),
                e["column"].as_u64().unwrap(),
                e["path"].as_str().unwrap(),
                e["message"].as_str().unwrap(),
            )
        })
        .collect();
    let expected = [
        (13, "manifests[1].path", "the server answered 404 Not Found"),
        (
            14,
            "manifests[2].path",
            "the manifest is larger than 1024 bytes",
        ),
        (15, "manifests[3].path", "timed out after 500 ms"),
        (16, "manifests[4].path", "more than 3 redirects"),
    ];
    assert_eq!(errors.len(), expected.len(), "{body}");
    for ((line, column, path, message), (want_line, want_path, reason)) in
        errors.iter().zip(expected)
    {
        assert_eq!(
            (*line, *column, *path),
            (want_line, 11, want_path),
            "{body}"
        );
        let entry = &entries[want_path[10..11].parse::<usize>().unwrap()];
        assert_eq!(*message, format!("fetching manifest {entry}: {reason}"));
    }
    assert_eq!(count(&db, "deployments").await, 0);
}

#[tokio::test]
async fn private_addresses_are_refused_by_default() {
    let server = ManifestServer::start().await;
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (_, token) = app.tenant_token(&["Deployer"]).await;
    let port = server.base.rsplit(':').next().unwrap();
    let literal = format!("{}/app.yaml", server.base);
    let named = format!("http://localhost:{port}/app.yaml");

    let (status, body) = app
        .post(
            "/v1/deployments",
            &token,
            &request("private", &[literal.clone(), named.clone()]),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let messages: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 2, "{body}");
    assert_eq!(
        messages[0],
        format!(
            "fetching manifest {literal}: refused: host 127.0.0.1 resolves to 127.0.0.1, a \
             loopback address (set FERRY_MANIFEST_FETCH_ALLOW_PRIVATE=true to allow private \
             addresses)"
        )
    );
    // A name is resolved, and every address it has is checked.
    assert!(
        messages[1].starts_with(&format!(
            "fetching manifest {named}: refused: host localhost resolves to "
        )) && messages[1].contains("a loopback address"),
        "{}",
        messages[1]
    );
    assert_eq!(body["errors"][1]["path"], "manifests[1].path");
    assert_eq!(server.hits(), 0);

    // A client may not send a URL's content itself: the server fetches (and checks) it.
    let mut sent = request("private", std::slice::from_ref(&literal));
    sent["manifests"] = serde_json::json!([{ "path": literal, "content": APP }]);
    let (status, body) = app.post("/v1/deployments", &token, &sent).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("manifests[0].path"),
        "{body}"
    );
    assert_eq!(count(&db, "deployments").await, 0);
}

#[tokio::test]
async fn the_urls_of_one_deploy_file_are_limited_in_number_size_and_time() {
    let server = ManifestServer::start().await;
    let db = ferry_testkit::TestDb::new().await;
    let flags = allow_private(&[
        "--manifest-fetch-timeout-ms",
        "500",
        "--manifest-fetch-max-bytes",
        "1024",
    ]);
    let app = TestApp::start_with(&db, Options::default(), &flags).await;
    let (_, token) = app.tenant_token(&["Deployer"]).await;
    let many = |path: &str, n: usize| -> Vec<String> {
        (0..n)
            .map(|i| format!("{}/{path}?n={i}", server.base))
            .collect()
    };
    let message = |body: &serde_json::Value| {
        assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");
        assert_eq!(body["errors"][0]["path"], "manifests", "{body}");
        body["errors"][0]["message"].as_str().unwrap().to_string()
    };

    // Too many URLs: refused before anything is fetched.
    let (status, body) = app
        .post(
            "/v1/deployments",
            &token,
            &request("many", &many("app.yaml", 33)),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        message(&body),
        "names 33 manifest URLs; a deploy file may name at most 32"
    );
    assert_eq!(server.hits(), 0);

    // Each within its own 1024 bytes, together beyond 4 x 1024.
    let (status, body) = app
        .post(
            "/v1/deployments",
            &token,
            &request("heavy", &many("app.yaml", 20)),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        message(&body),
        "the manifest URLs of this deploy file together return more than 4096 bytes (their total limit)"
    );

    // Each within its own 500 ms, together beyond 3 x 500 ms (four at a time).
    let (status, body) = app
        .post(
            "/v1/deployments",
            &token,
            &request("tardy", &many("tardy.yaml", 24)),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        message(&body),
        "fetching the manifest URLs took longer than 1500 ms, the total time all URLs of a deploy file may take"
    );
    assert_eq!(count(&db, "deployments").await, 0);

    // Within every limit, the same kind of file starts.
    let fine = [
        format!("{}/app.yaml", server.base),
        format!("{}/config.yaml", server.base),
    ];
    let (status, body) = app
        .post("/v1/deployments", &token, &request("fine", &fine))
        .await;
    assert_eq!(status, 201, "{body}");
    app.stop().await.unwrap();
}
