//! The Armory CD-as-a-Service API surface, driven with requests in the shape Armory's CLI sends
//! (`armory deploy start` without and with `-t`, `--add-context`, `--with-scm`, `-i <pipeline>`
//! and a URL file; `armory deploy status`): a token for Armory's audience, a start answered
//! 202 `{pipelineId, warnings}` that stores what `/v1` would, the pipeline and deployment
//! shapes, 409 and 422 in Armory's envelope writing nothing, link redeploys and URL starts,
//! and the same roles and tenant isolation as `/v1`.

use crate::support::{Options, TestApp, count, examples};
use axum::Router;
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};

const V2: &str = "application/vnd.start.kubernetes.pipeline.v2+json";
const V2_LINK: &str = "application/vnd.start.kubernetes.pipeline.v2.link+json";

fn manifest(name: &str) -> String {
    std::fs::read_to_string(examples().join("hello-ferry/manifests").join(name)).unwrap()
}

const CONFIG_MAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: potato-settings
data:
  greeting: hello
";

/// A deploy file as Armory's CLI sends it: the YAML read into a map and sent as JSON, with
/// `files` (every local manifest path to its files' contents), `context` (the file's merged
/// with `--add-context`), `targetFilters` (null without `-t`) and `sourceControl`
/// (`--with-scm` in a GitHub workflow).
fn cli_payload(application: &str, in_progress: &str) -> Value {
    json!({
        "version": "v1",
        "kind": "kubernetes",
        "application": application,
        "deploymentConfig": {
            "timeout": {"duration": 10, "unit": "minutes"},
            "ifDeploymentInProgress": {"strategy": in_progress}
        },
        "targets": {
            "staging": {
                "account": "staging-cluster",
                "namespace": "potato-staging",
                "strategy": "rolling"
            },
            "prod": {
                "account": "prod-cluster",
                "namespace": "potato-prod",
                "strategy": "canary",
                "constraints": {
                    "dependsOn": ["staging"],
                    "beforeDeployment": [{"pause": {"untilApproved": true}}],
                    "afterDeployment": [{"pause": {"duration": 1, "unit": "minutes"}}]
                }
            }
        },
        "manifests": [
            {"path": "manifests"},
            {"path": "extra/configmap.yml", "targets": ["prod"]}
        ],
        "strategies": {
            "rolling": {"canary": {"steps": [{"setWeight": {"weight": 100}}]}},
            "canary": {"canary": {"steps": [
                {"setWeight": {"weight": 25}},
                {"pause": {"duration": 30, "unit": "seconds"}},
                {"setWeight": {"weight": 75}}
            ]}}
        },
        "files": {
            "manifests": [manifest("app.yaml"), manifest("service.yaml")],
            "extra/configmap.yml": [CONFIG_MAP]
        },
        "context": {"build": "42", "env": "ci"},
        "targetFilters": null,
        "sourceControl": {
            "type": "github", "event": "push", "reference": "branch",
            "referenceName": "main", "principal": "octocat", "sha": "0a1b2c3d",
            "repository": "acme/potato-facts", "server": "https://github.com",
            "runId": "4242", "workflow": "deploy"
        }
    })
}

/// `POST path` with `content_type`, optional extra headers and a raw body.
async fn post_as(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = app
        .http
        .post(format!("{}{path}", app.base))
        .header("content-type", content_type)
        .header("accept", V2)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body, headers)
}

async fn start(app: &TestApp, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let (status, body, _) = post_as(
        app,
        path,
        Some(token),
        V2,
        &[],
        serde_json::to_vec(body).unwrap(),
    )
    .await;
    (status, body)
}

/// Armory's error envelope, with the first message.
fn envelope(body: &Value) -> String {
    assert!(
        !body["error_id"].as_str().unwrap_or_default().is_empty(),
        "no error_id: {body}"
    );
    let errors = body["errors"].as_array().expect("errors");
    assert!(!errors.is_empty(), "{body}");
    errors[0]["message"].as_str().unwrap().to_string()
}

fn step<'a>(pipeline: &'a Value, reference: &str) -> &'a Value {
    pipeline["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ref"] == reference)
        .unwrap_or_else(|| panic!("no step {reference}: {pipeline}"))
}

#[tokio::test]
async fn armory_cli_requests_start_read_and_refuse_like_v1() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let deployer = app.credential(&["Deployer"]).await;

    // The CLI's token request: a form with the client's id and secret and Armory's audience.
    let secret = deployer.client_secret.as_deref().unwrap();
    let (status, issued, _) = app
        .token_request(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &deployer.client_id),
                ("client_secret", secret),
                ("audience", "https://api.cloud.armory.io"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{issued}");
    let token = issued["access_token"].as_str().unwrap().to_string();
    let claims = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "ferry-api", "{claims}");
    let (status, _) = app.get("/v1/whoami", Some(&token)).await;
    assert_eq!(status, 200);

    // Start: 202 with the id and no warnings; what is stored is what /v1 stores.
    let (status, started) = start(
        &app,
        &token,
        "/pipelines/kubernetes",
        &cli_payload("Potato Facts", "reject"),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["warnings"], json!([]));
    let id = started["pipelineId"].as_str().unwrap().to_string();
    let (status, detail) = app
        .get(&format!("/v1/deployments/{id}"), Some(&token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(detail["deployment"]["application"], "Potato Facts");
    assert_eq!(detail["deployment"]["status"], "running");
    let (_, config) = app
        .get(&format!("/v1/deployments/{id}/config"), Some(&token))
        .await;
    let paths: Vec<&str> = config["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        // In the order of `files` (json! sorts an object's keys, as Go's encoder does).
        [
            "extra/configmap.yml",
            "manifests/armory-file-0.yaml",
            "manifests/armory-file-1.yaml"
        ]
    );
    let plan = &config["plan"];
    assert_eq!(plan["context"], json!({"build": "42", "env": "ci"}));
    let targets: Vec<&str> = plan["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["staging", "prod"]);
    // The extra ConfigMap only reaches the target its manifest entry names.
    let names = |target: usize| -> Vec<String> {
        plan["targets"][target]["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                m["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    assert!(
        !names(0).contains(&"potato-settings".to_string()),
        "{:?}",
        names(0)
    );
    assert!(
        names(1).contains(&"potato-settings".to_string()),
        "{:?}",
        names(1)
    );
    assert!(
        names(0).contains(&"hello-ferry".to_string()),
        "{:?}",
        names(0)
    );
    let audited: Value = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE resource_id = $1 AND action = 'deployment.start'",
    )
    .bind(&id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(audited["sourceControl"]["sha"], "0a1b2c3d", "{audited}");
    assert_eq!(audited["via"], "armory");

    // The pipeline: constraints and deployments linked as the targets are.
    let (status, pipeline) = app.get(&format!("/pipelines/{id}"), Some(&token)).await;
    assert_eq!(status, 200, "{pipeline}");
    assert_eq!(pipeline["id"], id.as_str());
    assert_eq!(pipeline["application"], "Potato Facts");
    assert_eq!(pipeline["status"], "RUNNING");
    assert_eq!(pipeline["context"]["build"], "42");
    assert_eq!(pipeline["environments"][1]["name"], "prod");
    let refs: Vec<&str> = pipeline["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        refs,
        [
            "deployment:staging",
            "before:prod:0",
            "deployment:prod",
            "after:prod:0"
        ]
    );
    let gate = step(&pipeline, "before:prod:0");
    assert_eq!(gate["type"], "pause");
    assert_eq!(gate["constraintFor"], "prod");
    assert_eq!(gate["pause"]["untilApproved"], true);
    assert_eq!(gate["dependsOn"], json!(["deployment:staging"]));
    assert_eq!(gate["status"], "NOT_STARTED");
    let prod = step(&pipeline, "deployment:prod");
    assert_eq!(prod["type"], "deployment");
    assert_eq!(prod["dependsOn"], json!(["before:prod:0"]));
    assert_eq!(prod["deployment"]["environment"], "prod");
    assert_eq!(prod["deployment"]["totalSteps"], 3);
    let after = step(&pipeline, "after:prod:0");
    assert_eq!(after["pause"], json!({"duration": 60, "unit": "SECONDS"}));
    assert_eq!(after["dependsOn"], json!(["deployment:prod"]));

    // One target's detail, by the id its step carries.
    let target_id = prod["deployment"]["id"].as_str().unwrap();
    let (status, target) = app
        .get(&format!("/deployments/{target_id}"), Some(&token))
        .await;
    assert_eq!(status, 200, "{target}");
    assert_eq!(target["pipelineId"], id.as_str());
    assert_eq!(target["environment"], "prod");
    assert_eq!(target["account"], "prod-cluster");
    assert_eq!(target["namespace"], "potato-prod");
    assert_eq!(target["strategy"], "canary");
    assert_eq!(target["status"], "NOT_STARTED");
    assert_eq!(target["ferryStatus"], "pending");
    let (status, body) = app.get(&format!("/deployments/{id}.7"), Some(&token)).await;
    assert_eq!(status, 404, "{body}");
    envelope(&body);
    let (status, body) = app.get(&format!("/deployments/{id}"), Some(&token)).await;
    assert_eq!(status, 400, "{body}");

    // Busy: 409 naming the running deployment, nothing stored.
    let before = count(&db, "deployments").await;
    let (status, busy) = start(
        &app,
        &token,
        "/pipelines/kubernetes",
        &cli_payload("Potato Facts", "reject"),
    )
    .await;
    assert_eq!(status, 409, "{busy}");
    assert!(envelope(&busy).contains(&id), "{busy}");
    assert_eq!(busy["errors"][0]["code"], "deployment_in_progress");
    assert_eq!(busy["errors"][0]["metadata"]["running"], id.as_str());

    // Invalid: 422 with every problem and where it is, nothing stored.
    let mut invalid = cli_payload("Broken Potato", "reject");
    invalid["targets"]["prod"]["strategy"] = json!("canray");
    invalid["targetz"] = json!({});
    invalid["files"] = json!({"manifests": [manifest("app.yaml")]});
    let (status, refused) = start(&app, &token, "/pipelines/kubernetes", &invalid).await;
    assert_eq!(status, 422, "{refused}");
    envelope(&refused);
    let errors = refused["errors"].as_array().unwrap();
    let paths: Vec<&str> = errors
        .iter()
        .map(|e| e["metadata"]["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"targetz"), "{refused}");
    assert!(
        paths.contains(&"targets.prod.strategy"),
        "{paths:?}: {refused}"
    );
    assert!(
        errors
            .iter()
            .all(|e| e["code"] == "invalid_deploy_file"
                && e["metadata"]["line"].as_u64().unwrap() > 0),
        "{refused}"
    );
    assert!(
        errors.iter().any(|e| e["message"]
            .as_str()
            .unwrap()
            .contains("extra/configmap.yml")),
        "the manifest sent for no path is missing: {refused}"
    );
    // `kind: lambda` at the generic route: refused at its key.
    let mut lambda = cli_payload("Lambda Potato", "reject");
    lambda["kind"] = json!("lambda");
    let (status, refused_lambda) = start(&app, &token, "/pipelines", &lambda).await;
    assert_eq!(status, 422, "{refused_lambda}");
    assert!(
        refused_lambda["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["metadata"]["path"] == "kind"),
        "{refused_lambda}"
    );
    assert_eq!(count(&db, "deployments").await, before);

    // enqueueOne goes to /pipelines as application/json (the CLI's choice): queued, 202.
    let queued_app = cli_payload("Queued Potato", "enqueueOne");
    let (status, first) = start(&app, &token, "/pipelines", &queued_app).await;
    assert_eq!(status, 202, "{first}");
    let (status, second, _) = post_as(
        &app,
        "/pipelines",
        Some(&token),
        "application/json",
        &[],
        serde_json::to_vec(&queued_app).unwrap(),
    )
    .await;
    assert_eq!(status, 202, "{second}");
    let queued = second["pipelineId"].as_str().unwrap();
    let (_, pipeline) = app.get(&format!("/pipelines/{queued}"), Some(&token)).await;
    assert_eq!(pipeline["status"], "NOT_STARTED", "{pipeline}");

    // Redeploy by link (`armory deploy start -i <id> -t staging`): the stored configuration,
    // only the filtered target; queued behind the running one of its application.
    let first_id = first["pipelineId"].as_str().unwrap();
    let location = format!("armory::{}/pipelines/{first_id}/config", app.base);
    let (status, redeployed, _) = post_as(
        &app,
        "/pipelines/kubernetes",
        Some(&token),
        V2_LINK,
        &[("X-Armory-Config-Location", &location)],
        br#"{"account": "", "targetFilters": [{"includeTarget": "staging"}]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 202, "{redeployed}");
    let redeployed = redeployed["pipelineId"].as_str().unwrap();
    let (_, config) = app
        .get(
            &format!("/v1/deployments/{redeployed}/config"),
            Some(&token),
        )
        .await;
    let targets: Vec<&str> = config["plan"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["staging"]);
    assert_eq!(config["plan"]["application"], "Queued Potato");
    // Without the header, or with an account override: refused, nothing stored.
    let stored = count(&db, "deployments").await;
    let (status, body, _) = post_as(
        &app,
        "/pipelines/kubernetes",
        Some(&token),
        V2_LINK,
        &[],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(envelope(&body).contains("X-Armory-Config-Location"));
    let (status, body, _) = post_as(
        &app,
        "/pipelines/kubernetes",
        Some(&token),
        V2_LINK,
        &[("X-Armory-Config-Location", &location)],
        br#"{"account": "another-cluster"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(envelope(&body).contains("account"));
    let (status, body, _) = post_as(
        &app,
        "/pipelines/kubernetes",
        Some(&token),
        "text/yaml",
        &[],
        b"application: x".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(count(&db, "deployments").await, stored);

    // Roles and tenants, exactly as /v1: no token 401, a viewer reads but cannot start,
    // another tenant sees nothing of this one.
    let (status, body, headers) = post_as(
        &app,
        "/pipelines/kubernetes",
        None,
        V2,
        &[],
        serde_json::to_vec(&cli_payload("x", "reject")).unwrap(),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    envelope(&body);
    assert!(headers.contains_key("www-authenticate"));
    let viewer = app.same_tenant_token(&deployer, &["Viewer"]).await;
    let (status, body) = start(
        &app,
        &viewer,
        "/pipelines/kubernetes",
        &cli_payload("Viewer Potato", "reject"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    envelope(&body);
    let (status, _) = app.get(&format!("/pipelines/{id}"), Some(&viewer)).await;
    assert_eq!(status, 200);
    let (_, stranger) = app.tenant_token(&["Tenant Admin"]).await;
    for path in [
        format!("/pipelines/{id}"),
        format!("/deployments/{target_id}"),
    ] {
        let (status, body) = app.get(&path, Some(&stranger)).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.to_string().contains("Potato"), "{body}");
    }
    let (status, body, _) = post_as(
        &app,
        "/pipelines/kubernetes",
        Some(&stranger),
        V2_LINK,
        &[("X-Armory-Config-Location", &location)],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 404, "another tenant's redeploy: {body}");
    assert_eq!(count(&db, "deployments").await, stored);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_link_to_a_deploy_file_url_starts_it_and_bodies_are_limited() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start_with(
        &db,
        Options {
            max_body_bytes: 64 * 1024,
            ..Options::default()
        },
        &["--manifest-fetch-allow-private".to_string()],
    )
    .await;
    let (_, token) = app.tenant_token(&["Deployer"]).await;

    // A deploy file served over HTTP whose manifests are URLs too (nothing local to send).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let files = format!("http://{}", listener.local_addr().unwrap());
    let deploy = format!(
        "version: v1\nkind: kubernetes\napplication: url-potato\ntargets:\n  dev:\n    \
         account: dev-cluster\n    namespace: potato-dev\n  prod:\n    account: prod-cluster\n    \
         namespace: potato-prod\n    constraints:\n      dependsOn: [dev]\nmanifests:\n  - path: \
         {files}/configmap.yaml\n"
    );
    let router = Router::new()
        .route("/deploy.yml", get(move || async move { deploy }))
        .route("/configmap.yaml", get(|| async { CONFIG_MAP }));
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let (status, started, headers) = post_as(
        &app,
        "/pipelines/kubernetes",
        Some(&token),
        V2_LINK,
        &[("X-Armory-Config-Location", &format!("{files}/deploy.yml"))],
        br#"{"account": "", "targetFilters": [{"includeTarget": "dev"}], "context": {"build": "7"}}"#
            .to_vec(),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let id = started["pipelineId"].as_str().unwrap();
    assert_eq!(headers["location"], format!("/pipelines/{id}").as_str());
    let (_, config) = app
        .get(&format!("/v1/deployments/{id}/config"), Some(&token))
        .await;
    assert_eq!(config["plan"]["application"], "url-potato");
    assert_eq!(config["plan"]["context"]["build"], "7");
    assert_eq!(config["plan"]["targets"].as_array().unwrap().len(), 1);
    assert_eq!(
        config["manifests"][0]["path"],
        format!("{files}/configmap.yaml")
    );

    // A URL that does not answer: 422 naming it.
    let (status, refused, _) = post_as(
        &app,
        "/pipelines/kubernetes",
        Some(&token),
        V2_LINK,
        &[("X-Armory-Config-Location", &format!("{files}/missing.yml"))],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert!(envelope(&refused).contains("missing.yml"), "{refused}");

    // The body limit holds here as under /v1.
    let mut big = cli_payload("Big Potato", "reject");
    big["files"]["manifests"] = json!(["#".repeat(128 * 1024)]);
    let (status, body) = start(&app, &token, "/pipelines/kubernetes", &big).await;
    assert_eq!(status, 413, "{body}");
    envelope(&body);
    server.abort();
    app.stop().await.unwrap();
}

#[tokio::test]
async fn armory_audiences_map_to_the_api_and_keep_the_hub_rule() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let agent = app.credential(&["Agent"]).await;
    let secret = agent.client_secret.as_deref().unwrap();
    let basic = Some((agent.client_id.as_str(), secret));
    for audience in [
        "https://api.staging.cloud.armory.io",
        "https://api.cloud.armory.io/",
    ] {
        let (status, body, _) = app
            .token_request(
                basic,
                &[("grant_type", "client_credentials"), ("audience", audience)],
            )
            .await;
        assert_eq!(status, 200, "{audience}: {body}");
    }
    let (status, body, _) = app
        .token_request(
            basic,
            &[
                ("grant_type", "client_credentials"),
                ("audience", "https://api.cloud.armory.io.example"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_target");
    // The hub audience stays for Agent-role credentials only.
    let deployer = app.same_tenant_credential(&agent, &["Deployer"]).await;
    let secret = deployer.client_secret.as_deref().unwrap();
    let (status, body, _) = app
        .token_request(
            Some((&deployer.client_id, secret)),
            &[
                ("grant_type", "client_credentials"),
                ("audience", "ferry-hub"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "unauthorized_client");
    app.stop().await.unwrap();
}
