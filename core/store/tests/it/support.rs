//! Shared setup: a migrated database per test, tenants, and deployments in a few lines.

use ferry_store::deployments::{self, Created, Deployment, NewDeployment, OnBusy};
use ferry_store::targets::NewTarget;
use ferry_store::tenants::{self, NewTenant};
use ferry_store::{DeploymentId, Result, Store, StoreError, TenantId};
use ferry_testkit::TestDb;
use std::fmt::Debug;

/// Runs `$body` (which may use `$conn: &mut PgConnection`) in a transaction and commits it.
macro_rules! commit {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let mut tx = $store.begin().await.expect("begin");
        let $conn: &mut sqlx::PgConnection = &mut *tx;
        let result = $body.await;
        tx.commit().await.expect("commit");
        result
    }};
}

/// Runs `$body` in a transaction and rolls it back (for attempts expected to fail, which
/// would abort the transaction anyway).
macro_rules! attempt {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let mut tx = $store.begin().await.expect("begin");
        let $conn: &mut sqlx::PgConnection = &mut *tx;
        let result = $body.await;
        tx.rollback().await.expect("rollback");
        result
    }};
}

pub(crate) use {attempt, commit};

/// A fresh database and a store over it. Keep the `TestDb` alive for the whole test.
pub(crate) async fn setup() -> (TestDb, Store) {
    let db = TestDb::new().await;
    let store = Store::from_pool(db.pool.clone());
    (db, store)
}

/// Creates a tenant called `slug`.
pub(crate) async fn tenant(store: &Store, slug: &str) -> TenantId {
    let new = NewTenant {
        slug: slug.to_string(),
        name: format!("Tenant {slug}"),
        organization_id: None,
    };
    commit!(store, |c| tenants::create(c, &new))
        .expect("create tenant")
        .id
}

/// A deployment of `application` with the given target names.
pub(crate) fn new_deployment(application: &str, targets: &[&str]) -> NewDeployment {
    NewDeployment {
        id: DeploymentId::new(),
        application: application.to_string(),
        created_by: "alice@example.com".to_string(),
        deploy_file: format!("version: v1\napplication: {application}\n"),
        manifests: vec![deployments::ManifestFile {
            path: "app.yaml".to_string(),
            content: "kind: Deployment".to_string(),
        }],
        plan: serde_json::json!({ "targets": targets }),
        targets: targets
            .iter()
            .map(|name| NewTarget {
                name: name.to_string(),
                account: "prod-cluster".to_string(),
                namespace: "default".to_string(),
                desired: serde_json::json!({ "weight": 0 }),
            })
            .collect(),
    }
}

/// Creates a deployment of `application` in `on_busy` mode and commits it.
pub(crate) async fn create(
    store: &Store,
    tenant: TenantId,
    application: &str,
    on_busy: OnBusy,
) -> Created {
    let new = new_deployment(application, &["staging", "prod"]);
    commit!(store, |c| deployments::create(c, tenant, &new, on_busy)).expect("create deployment")
}

/// Creates a deployment of a free `application` and returns it (running).
pub(crate) async fn start(store: &Store, tenant: TenantId, application: &str) -> Deployment {
    match create(store, tenant, application, OnBusy::Reject).await {
        Created::Started(d) => d,
        other => panic!("expected a started deployment, got {other:?}"),
    }
}

/// Asserts `result` is `NotFound`.
#[track_caller]
pub(crate) fn assert_not_found<T: Debug>(result: Result<T>) {
    match result {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// Asserts `result` is `Conflict`.
#[track_caller]
pub(crate) fn assert_conflict<T: Debug>(result: Result<T>) {
    match result {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
}
