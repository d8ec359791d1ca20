//! The auth matrix: every route of the OpenAPI document, asked with no token, an expired one,
//! one for another audience, one of another issuer, each built-in role, and another tenant's
//! token on this tenant's ids. Every cell must give the expected status, and another tenant's
//! answers must not mention anything of this tenant. The few public routes (they hold no tenant
//! data) are listed apart and must answer without a token.

use crate::support::{Options, TestApp, canary_request, examples, master_key, start_request};
use ferry_auth::Claims;
use ferry_svc_api::identity::crypto::MasterKey;
use ferry_svc_api::identity::keys::{KeyPolicy, KeyRing};
use openidconnect::reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// What a route asks of the caller's roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// Any valid token of the tenant (the Agent role included).
    Any,
    /// Viewer or more.
    Read,
    /// Deployer or more.
    Deploy,
    /// Tenant Admin or Organization Admin.
    Admin,
    /// Organization Admin.
    Organization,
}

/// Every route the API documents, with what it needs. A route missing here fails the test:
/// classify it when you add it.
const ROUTES: &[(&str, &str, Need)] = &[
    ("get", "/v1/whoami", Need::Any),
    ("get", "/v1/tenant", Need::Read),
    ("get", "/v1/tenants", Need::Read),
    ("post", "/v1/tenants", Need::Organization),
    ("get", "/v1/agents", Need::Read),
    ("get", "/v1/deployments", Need::Read),
    ("post", "/v1/deployments", Need::Deploy),
    ("get", "/v1/deployments/{id}", Need::Read),
    ("get", "/v1/deployments/{id}/analyses", Need::Read),
    ("get", "/v1/deployments/{id}/config", Need::Read),
    ("get", "/v1/deployments/{id}/events", Need::Read),
    // Approvals check the approval's own roles once it is found: a reader reaches the lookup.
    ("post", "/v1/deployments/{id}/approve", Need::Read),
    ("post", "/v1/deployments/{id}/reject", Need::Read),
    ("post", "/v1/deployments/{id}/abort", Need::Deploy),
    ("post", "/v1/deployments/{id}/redeploy", Need::Deploy),
    ("post", "/v1/deployments/{id}/rollback", Need::Deploy),
    ("post", "/v1/deployments/{id}/roll-forward", Need::Deploy),
    ("post", "/v1/deployments/{id}/skip-pause", Need::Deploy),
    (
        "post",
        "/v1/deployments/{id}/webhooks/{token}/callback",
        Need::Deploy,
    ),
    ("post", "/v1/analysis/retrospective", Need::Deploy),
    ("get", "/v1/metric-providers", Need::Read),
    ("get", "/v1/metric-providers/{name}", Need::Read),
    ("put", "/v1/metric-providers/{name}", Need::Admin),
    ("delete", "/v1/metric-providers/{name}", Need::Admin),
    ("get", "/v1/credentials", Need::Admin),
    ("post", "/v1/credentials", Need::Admin),
    ("delete", "/v1/credentials/{id}", Need::Admin),
    ("get", "/v1/roles", Need::Admin),
    ("post", "/v1/roles", Need::Admin),
    ("put", "/v1/roles/{name}/grants", Need::Admin),
    ("post", "/v1/roles/{name}/members", Need::Admin),
    ("delete", "/v1/roles/{name}/members", Need::Admin),
    ("get", "/v1/secrets", Need::Admin),
    ("put", "/v1/secrets/{name}", Need::Admin),
    ("delete", "/v1/secrets/{name}", Need::Admin),
    ("get", "/v1/users", Need::Admin),
    ("put", "/v1/users/{email}/roles", Need::Admin),
    ("delete", "/v1/users/{email}", Need::Admin),
    ("get", "/v1/audit", Need::Admin),
    ("get", "/v1/deployments/{id}/webhooks", Need::Read),
    ("get", "/v1/network-settings", Need::Read),
    ("put", "/v1/network-settings", Need::Admin),
    ("get", "/v1/notification-endpoints", Need::Read),
    ("post", "/v1/notification-endpoints", Need::Admin),
    ("delete", "/v1/notification-endpoints/{name}", Need::Admin),
    // Armory's API (svc-api/src/armory): the same roles as the /v1 operations they adapt.
    ("post", "/pipelines", Need::Deploy),
    ("post", "/pipelines/kubernetes", Need::Deploy),
    ("get", "/pipelines/{id}", Need::Read),
    ("get", "/deployments/{id}", Need::Read),
];

/// Documented `/v1` routes that need no token because they hold no tenant data. Each must
/// answer 200 to a caller without a token (and to one with an invalid token).
const PUBLIC_ROUTES: &[(&str, &str)] = &[("get", "/v1/schema/deploy.json")];

/// The roles tried, and what each satisfies.
const ROLES: &[(&str, &[Need])] = &[
    ("Agent", &[Need::Any]),
    ("Viewer", &[Need::Any, Need::Read]),
    ("Deployer", &[Need::Any, Need::Read, Need::Deploy]),
    (
        "Tenant Admin",
        &[Need::Any, Need::Read, Need::Deploy, Need::Admin],
    ),
    (
        "Organization Admin",
        &[
            Need::Any,
            Need::Read,
            Need::Deploy,
            Need::Admin,
            Need::Organization,
        ],
    ),
];

/// A body the route accepts (so that a refusal is about the caller, not the body).
fn body_for(method: &str, path: &str, unique: &str) -> Option<Value> {
    let body = match (method, path) {
        ("post", "/v1/tenants") => json!({ "slug": format!("m-{unique}") }),
        ("post", "/v1/deployments") => start_request("hello-ferry/deploy-canary.yml"),
        ("post", "/v1/deployments/{id}/approve" | "/v1/deployments/{id}/reject") => {
            json!({ "target": "dev" })
        }
        ("post", "/v1/deployments/{id}/roll-forward" | "/v1/deployments/{id}/skip-pause") => {
            json!({ "target": "dev" })
        }
        ("post", "/v1/deployments/{id}/webhooks/{token}/callback") => json!({ "success": true }),
        ("post", "/v1/analysis/retrospective") => json!({
            "queries": [], "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:10:00Z"
        }),
        ("put", "/v1/metric-providers/{name}") => {
            json!({ "kind": "prometheus", "baseUrl": "http://prometheus.example:9090" })
        }
        ("post", "/v1/credentials") => json!({ "name": format!("m-{unique}"), "roles": [] }),
        ("post", "/v1/roles") => json!({ "name": format!("m-{unique}") }),
        ("put", "/v1/roles/{name}/grants") => json!({ "grants": [] }),
        ("post" | "delete", "/v1/roles/{name}/members") => {
            json!({ "kind": "credential", "id": uuid::Uuid::new_v4() })
        }
        ("put", "/v1/secrets/{name}") => json!({ "value": "s3cret-value" }),
        ("put", "/v1/users/{email}/roles") => json!({ "roles": ["Viewer"] }),
        ("put", "/v1/network-settings") => json!({ "allowed_networks": ["10.20.0.0/16"] }),
        ("post", "/v1/notification-endpoints") => json!({
            "name": format!("m-{unique}").to_lowercase(), "kind": "slack",
            "url": "https://hooks.example/x", "events": ["failed"]
        }),
        ("post", "/pipelines" | "/pipelines/kubernetes") => armory_request(),
        _ => return None,
    };
    Some(body)
}

/// A start as Armory's CLI sends it: the deploy file as JSON with its manifests' contents.
fn armory_request() -> Value {
    let app = std::fs::read_to_string(examples().join("hello-ferry/manifests/app.yaml")).unwrap();
    json!({
        "version": "v1",
        "kind": "kubernetes",
        "application": "matrix-armory",
        "targets": { "dev": { "account": "dev-cluster", "namespace": "matrix-dev" } },
        "manifests": [{ "path": "manifests/app.yaml" }],
        "files": { "manifests/app.yaml": [app] },
        "context": {},
        "targetFilters": null,
    })
}

/// `template` with its parameters filled from `ids`.
fn fill(template: &str, ids: &Ids) -> String {
    // Armory's deployment ids are a deployment's id and a target index.
    let deployment = if template == "/deployments/{id}" {
        format!("{}.0", ids.deployment)
    } else {
        ids.deployment.clone()
    };
    template
        .replace("{id}", &deployment)
        .replace("{token}", "not-a-callback-token")
        .replace(
            "{name}",
            if template.starts_with("/v1/roles") {
                &ids.role
            } else if template.starts_with("/v1/secrets") {
                &ids.secret
            } else {
                &ids.provider
            },
        )
        .replace("{email}", &ids.email)
}

/// The path parameters used: ids of one tenant's resources, or of nothing.
#[derive(Clone, Debug)]
struct Ids {
    deployment: String,
    role: String,
    secret: String,
    provider: String,
    email: String,
}

impl Ids {
    /// Parameters naming nothing that exists.
    fn nothing() -> Ids {
        Ids {
            deployment: uuid::Uuid::new_v4().to_string(),
            role: "no-such-role".into(),
            secret: "no-such-secret".into(),
            provider: "no-such-provider".into(),
            email: "nobody@example.com".into(),
        }
    }
}

async fn ask(
    app: &TestApp,
    method: &str,
    template: &str,
    ids: &Ids,
    token: Option<&str>,
) -> (u16, Value) {
    let path = fill(template, ids);
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let unique = ferry_testkit::unique("x").replace('_', "-");
    let body = body_for(&method.as_str().to_lowercase(), template, &unique);
    let (status, body, _) = app.send(method, &path, token, body.as_ref()).await;
    (status, body)
}

#[tokio::test]
async fn every_route_answers_every_kind_of_caller_as_expected() {
    let db = ferry_testkit::TestDb::new().await;
    let options = Options {
        rate_limit_burst: 100_000,
        ..Options::default()
    };
    let app = TestApp::start(&db, options).await;

    // Every documented route is classified, and every classified route is documented.
    let (_, document) = app.get("/openapi.json", None).await;
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .filter(|(_, path)| {
            path.starts_with("/v1/")
                || path.starts_with("/pipelines")
                || path.starts_with("/deployments/")
        })
        .collect();
    let classified: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .chain(
            PUBLIC_ROUTES
                .iter()
                .map(|(m, p)| (m.to_string(), p.to_string())),
        )
        .collect();
    assert_eq!(
        documented.difference(&classified).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes in the OpenAPI document the matrix does not classify"
    );
    assert_eq!(
        classified.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "classified routes missing from the OpenAPI document"
    );

    // Tokens that must be refused everywhere.
    let (owner, _) = app.tenant_token(&["Tenant Admin"]).await;
    let agent = app.same_tenant_credential(&owner, &["Agent"]).await;
    let hub_token = app.token(&agent, "ferry-hub").await;
    let keys = KeyRing::open(
        db.pool.clone(),
        MasterKey::from_base64(&master_key()).unwrap(),
        app.base.clone(),
        KeyPolicy {
            rotation: Duration::from_secs(30 * 24 * 3600),
            token_ttl: Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    let claims = |issuer: &str| {
        Claims::new(
            issuer,
            owner.credential_id.to_string(),
            "ferry-api",
            owner.tenant_id.as_uuid(),
            vec!["Organization Admin".into(), "Tenant Admin".into()],
            Duration::from_secs(3600),
        )
    };
    let mut old = claims(&app.base);
    old.iat -= 7200;
    old.exp -= 7200;
    let expired = keys.sign(&old).await.unwrap();
    let foreign_issuer = ferry_auth::Signer::generate_es256("elsewhere")
        .unwrap()
        .sign(&claims("https://elsewhere.example"))
        .unwrap();
    let refused: [(&str, Option<&str>); 4] = [
        ("no token", None),
        ("expired", Some(&expired)),
        ("hub audience", Some(&hub_token)),
        ("another issuer", Some(&foreign_issuer)),
    ];
    let nothing = Ids::nothing();
    for (method, path) in PUBLIC_ROUTES {
        for (what, token) in [
            ("no token", None),
            ("an invalid token", Some("not-a-token")),
        ] {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body, _) = app.send(method, path, token, None).await;
            assert_eq!(status, 200, "public route with {what}: {path}: {body}");
        }
    }
    for (method, template, _) in ROUTES {
        for (what, token) in refused {
            let (status, body) = ask(&app, method, template, &nothing, token).await;
            assert_eq!(status, 401, "{what}: {method} {template}: {body}");
        }
    }

    // Each role: 403 where it falls short, otherwise anything but an auth refusal or an error.
    for (role, satisfies) in ROLES {
        let token = app.same_tenant_token(&owner, &[role]).await;
        for (method, template, need) in ROUTES {
            let (status, body) = ask(&app, method, template, &nothing, Some(&token)).await;
            if satisfies.contains(need) {
                assert!(
                    ![401, 403].contains(&status) && status < 500,
                    "{role}: {method} {template} answered {status}: {body}"
                );
            } else {
                assert_eq!(status, 403, "{role}: {method} {template}: {body}");
            }
        }
    }

    // Another tenant's most powerful caller, on this tenant's real resources: 404 everywhere
    // an id or name is taken from the path, and no answer mentions this tenant's things.
    let owner_token = app
        .same_tenant_token(&owner, &["Organization Admin", "Tenant Admin"])
        .await;
    let (status, started) = app
        .post(
            "/v1/deployments",
            &owner_token,
            &canary_request("matrix-owned", "reject"),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let mine = Ids {
        deployment: started["id"].as_str().unwrap().to_string(),
        role: "matrix-role".into(),
        secret: "matrix-secret".into(),
        provider: "matrix-provider".into(),
        email: "matrix-person@example.com".into(),
    };
    for (path, body) in [
        ("/v1/roles", json!({ "name": mine.role })),
        (
            "/v1/users/matrix-person@example.com/roles",
            json!({ "roles": ["Viewer"] }),
        ),
    ] {
        let method = if path.starts_with("/v1/users") {
            Method::PUT
        } else {
            Method::POST
        };
        let (status, body, _) = app
            .send(method, path, Some(&owner_token), Some(&body))
            .await;
        assert!(status < 300, "{path}: {body}");
    }
    let (status, _) = app
        .put(
            "/v1/secrets/matrix-secret",
            &owner_token,
            &json!({ "value": "owner-secret-value" }),
        )
        .await;
    assert!(status < 300);
    let (status, body) = app
        .put(
            "/v1/metric-providers/matrix-provider",
            &owner_token,
            &json!({ "kind": "prometheus", "baseUrl": "http://owner-prometheus.example:9090" }),
        )
        .await;
    assert!(status < 300, "{body}");

    let (stranger, _) = app
        .tenant_token(&["Organization Admin", "Tenant Admin", "Deployer", "Viewer"])
        .await;
    let stranger_token = app.token(&stranger, "ferry-api").await;
    let owner_tenant = owner.tenant_id.to_string();
    let secrets_of_owner = [
        mine.deployment.as_str(),
        "owner-secret-value",
        "owner-prometheus",
        owner_tenant.as_str(),
        owner.tenant.as_str(),
    ];
    for (method, template, _) in ROUTES {
        let (status, body) = ask(&app, method, template, &mine, Some(&stranger_token)).await;
        if template.contains("{id}") {
            assert_eq!(status, 404, "another tenant: {method} {template}: {body}");
        }
        assert!(
            status < 500,
            "another tenant: {method} {template}: {status} {body}"
        );
        let text = body.to_string();
        for secret in secrets_of_owner {
            assert!(
                !text.contains(secret),
                "another tenant: {method} {template} mentions {secret:?}: {text}"
            );
        }
    }

    // The owner's things are as they were: the deployment stands, the secret and provider too.
    let (status, deployment) = app
        .get(
            &format!("/v1/deployments/{}", mine.deployment),
            Some(&owner_token),
        )
        .await;
    assert_eq!(status, 200);
    assert_ne!(deployment["status"], "aborted", "{deployment}");
    let (status, provider) = app
        .get("/v1/metric-providers/matrix-provider", Some(&owner_token))
        .await;
    assert_eq!(status, 200, "{provider}");
    let (_, secrets) = app.get("/v1/secrets", Some(&owner_token)).await;
    assert!(secrets.to_string().contains("matrix-secret"), "{secrets}");
    app.stop().await.unwrap();
}
