//! Tenants through the API: an Organization Admin lists and creates the organization's tenants
//! (a person creating one can then work in it), anyone else sees only their own tenant; and
//! users stay inside their tenant: another tenant's users are neither listed nor removable.

use crate::oidc_issuer::TestIssuer;
use crate::support::{Options, TestApp};
use ferry_store::tenants::{self, NewTenant};
use ferry_svc_api::identity::bootstrap::BootstrapOutcome;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// A tenant with slug `slug` in `organization`, and a credential in it holding `roles`.
async fn tenant_in(
    app: &TestApp,
    db: &ferry_testkit::TestDb,
    organization: Uuid,
    slug: &str,
    roles: &[&str],
) -> (BootstrapOutcome, String) {
    let mut conn = db.pool.acquire().await.unwrap();
    tenants::create(
        &mut conn,
        &NewTenant {
            slug: slug.into(),
            name: slug.into(),
            organization_id: Some(organization),
        },
    )
    .await
    .unwrap();
    let args = ferry_svc_api::settings::BootstrapArgs {
        tenant: slug.into(),
        client_name: "admin".into(),
        roles: roles.iter().map(std::string::ToString::to_string).collect(),
        json: true,
    };
    let outcome = ferry_svc_api::bootstrap(&app.settings, &args)
        .await
        .unwrap();
    let token = app.token(&outcome, "ferry-api").await;
    (outcome, token)
}

async fn organization(db: &ferry_testkit::TestDb, name: &str) -> Uuid {
    let mut conn = db.pool.acquire().await.unwrap();
    tenants::create_organization(&mut conn, name)
        .await
        .unwrap()
        .id
}

fn slugs(body: &Value) -> Vec<&str> {
    body.as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn organization_admins_list_and_create_the_organizations_tenants() {
    let db = ferry_testkit::TestDb::new().await;
    let idp = TestIssuer::start().await;
    let app = TestApp::start_with(&db, Options::default(), &idp.flags(&[])).await;
    let acme = organization(&db, "acme").await;
    let globex = organization(&db, "globex").await;
    let (acme_a, org_admin) = tenant_in(&app, &db, acme, "acme-a", &["Organization Admin"]).await;
    tenant_in(&app, &db, acme, "acme-b", &["Tenant Admin"]).await;
    let (_, tenant_admin) = tenant_in(&app, &db, acme, "acme-c", &["Tenant Admin"]).await;
    let (_, globex_admin) = tenant_in(&app, &db, globex, "globex-a", &["Organization Admin"]).await;
    let (_, loner) = app.tenant_token(&["Organization Admin"]).await;

    let (status, listed) = app.get("/v1/tenants", Some(&org_admin)).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(slugs(&listed), ["acme-a", "acme-b", "acme-c"]);
    let (_, listed) = app.get("/v1/tenants", Some(&tenant_admin)).await;
    assert_eq!(slugs(&listed), ["acme-c"]);
    let (_, listed) = app.get("/v1/tenants", Some(&globex_admin)).await;
    assert_eq!(slugs(&listed), ["globex-a"]);

    let request =
        json!({ "slug": "acme-new", "name": "Acme New", "adminEmails": ["Dee@Acme.test"] });
    let (status, created) = app.post("/v1/tenants", &org_admin, &request).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["organization_id"], acme.to_string());
    assert_eq!(created["name"], "Acme New");
    let (_, listed) = app.get("/v1/tenants", Some(&org_admin)).await;
    assert_eq!(slugs(&listed), ["acme-a", "acme-b", "acme-c", "acme-new"]);
    let (_, listed) = app.get("/v1/tenants", Some(&globex_admin)).await;
    assert_eq!(
        slugs(&listed),
        ["globex-a"],
        "another organization sees nothing new"
    );

    // The invited admin can work in the new tenant at once.
    let dee = idp.token("dee@acme.test");
    let (status, me) = app
        .person(Method::GET, "/v1/whoami", &dee, Some("acme-new"), None)
        .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["roles"], json!(["Tenant Admin"]), "{me}");

    // Audited in the creating tenant and in the new one.
    let entries: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'tenant.create' AND resource_id = $1
           AND tenant_id IN ($2, $1::uuid)",
    )
    .bind(created["id"].as_str().unwrap())
    .bind(acme_a.tenant_id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(entries, 2);

    for (what, token, body, status) in [
        ("taken slug", &org_admin, json!({ "slug": "globex-a" }), 409),
        ("bad slug", &org_admin, json!({ "slug": "Not A Slug" }), 400),
        (
            "bad email",
            &org_admin,
            json!({ "slug": "acme-x", "adminEmails": ["nobody"] }),
            400,
        ),
        (
            "tenant admin",
            &tenant_admin,
            json!({ "slug": "acme-y" }),
            403,
        ),
        ("no organization", &loner, json!({ "slug": "acme-z" }), 409),
    ] {
        let (got, answer) = app.post("/v1/tenants", token, &body).await;
        assert_eq!(got, status, "{what}: {answer}");
    }
    let (_, listed) = app.get("/v1/tenants", Some(&org_admin)).await;
    assert_eq!(slugs(&listed).len(), 4, "refused requests create nothing");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_person_creating_a_tenant_administers_it() {
    let db = ferry_testkit::TestDb::new().await;
    let idp = TestIssuer::start().await;
    let app = TestApp::start_with(&db, Options::default(), &idp.flags(&[])).await;
    let acme = organization(&db, "acme").await;
    let (_, org_admin) = tenant_in(&app, &db, acme, "acme-a", &["Organization Admin"]).await;
    let (status, _) = app
        .put(
            "/v1/users/eve@acme.test/roles",
            &org_admin,
            &json!({ "roles": ["Organization Admin"] }),
        )
        .await;
    assert_eq!(status, 201);

    let eve = idp.token("eve@acme.test");
    let (status, created) = app
        .person(
            Method::POST,
            "/v1/tenants",
            &eve,
            Some("acme-a"),
            Some(&json!({ "slug": "acme-eve" })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, me) = app
        .person(Method::GET, "/v1/whoami", &eve, Some("acme-eve"), None)
        .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["roles"], json!(["Organization Admin"]));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn users_of_another_tenant_are_not_found() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (owner, owner_token) = app.tenant_token(&["Tenant Admin"]).await;
    let (_, intruder) = app
        .tenant_token(&["Tenant Admin", "Organization Admin"])
        .await;
    let (status, _) = app
        .put(
            "/v1/users/fay@owner.test/roles",
            &owner_token,
            &json!({ "roles": ["Deployer"] }),
        )
        .await;
    assert_eq!(status, 201);

    let (status, listed) = app.get("/v1/users", Some(&intruder)).await;
    assert_eq!(status, 200);
    assert_eq!(listed, json!([]));
    let (status, body) = app.delete("/v1/users/fay@owner.test", &intruder).await;
    assert_eq!(status, 404, "{body}");
    let (_, tenants) = app.get("/v1/tenants", Some(&intruder)).await;
    assert!(!tenants.to_string().contains(&owner.tenant));

    // Inviting the same email elsewhere makes a separate user; the owner's is untouched.
    let (status, _) = app
        .put(
            "/v1/users/fay@owner.test/roles",
            &intruder,
            &json!({ "roles": ["Viewer"] }),
        )
        .await;
    assert_eq!(status, 201);
    let (_, listed) = app.get("/v1/users", Some(&owner_token)).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["roles"], json!(["Deployer"]));

    // A tenant admin cannot hand out Organization Admin, nor reach the users API as a Viewer.
    let (status, _) = app
        .put(
            "/v1/users/fay@owner.test/roles",
            &owner_token,
            &json!({ "roles": ["Organization Admin"] }),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .put(
            "/v1/users/fay@owner.test/roles",
            &owner_token,
            &json!({ "roles": ["No Such Role"] }),
        )
        .await;
    assert_eq!(status, 404);
    let viewer = app.same_tenant_token(&owner, &["Viewer"]).await;
    assert_eq!(app.get("/v1/users", Some(&viewer)).await.0, 403);
    app.stop().await.unwrap();
}
