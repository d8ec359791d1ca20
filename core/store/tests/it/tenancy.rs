//! Tenant isolation: everything tenant A owns is invisible and untouchable for tenant B, on
//! every repository function (reads, updates and decisions answer `NotFound`, lists are empty),
//! and A's rows are unchanged afterwards.

use crate::support::{assert_not_found, attempt, commit, setup, start, tenant};
use chrono::{Duration, Utc};
use ferry_store::approvals::{self, Decision, NewApproval};
use ferry_store::audit::{self, NewAuditEntry};
use ferry_store::callbacks::{self, NewCallback};
use ferry_store::credentials::{self, NewCredential};
use ferry_store::deployments::{self, DeploymentFilter, DeploymentStatus};
use ferry_store::events::{self, NewEvent, StepChange, StepStatus};
use ferry_store::metric_providers::{self, ProviderKind, ProviderSettings};
use ferry_store::roles::{self, Principal, PrincipalKind};
use ferry_store::targets::{self, TargetState, TargetStatus};
use ferry_store::timers::{self, NewTimer};
use ferry_store::{agents, secrets, users};

#[tokio::test]
async fn tenant_b_can_neither_see_nor_change_tenant_a_rows() {
    let (_db, store) = setup().await;
    let a = tenant(&store, "tenant-a").await;
    let b = tenant(&store, "tenant-b").await;

    // Tenant A's world.
    let user = commit!(store, |c| users::create(c, a, "ann@a.example", "Ann")).unwrap();
    let user_principal = Principal {
        kind: PrincipalKind::User,
        id: user.id,
    };
    commit!(store, |c| roles::create(
        c,
        a,
        "Release Manager",
        &["approvals:decide".to_string()]
    ))
    .unwrap();
    commit!(store, |c| roles::bind(
        c,
        a,
        user_principal,
        "Release Manager"
    ))
    .unwrap();
    let cred = commit!(store, |c| credentials::create(
        c,
        a,
        &NewCredential {
            name: "ci".into(),
            client_id: "a-ci".into(),
            secret_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            roles: vec!["Deployer".into()],
        }
    ))
    .unwrap();
    let agent = commit!(store, |c| agents::connect(
        c,
        a,
        &agents::Connect {
            identifier: "prod-cluster".into(),
            agent_version: "1.0.0".into(),
            kubernetes_version: "1.33".into(),
            hub_replica: "hub-0".into(),
        }
    ))
    .unwrap();
    commit!(store, |c| secrets::put(
        c, a, "dd-key", b"sealed", b"nonce", "k1"
    ))
    .unwrap();
    commit!(store, |c| metric_providers::put(
        c,
        a,
        &ProviderSettings {
            name: "prom".into(),
            kind: ProviderKind::Prometheus,
            base_url: "http://prometheus:9090".into(),
            secret_refs: Default::default(),
            agent: None,
        }
    ))
    .unwrap();
    let dep = start(&store, a, "web").await;
    commit!(store, |c| events::append(
        c,
        a,
        dep.id,
        &NewEvent {
            kind: "deployment.started".into(),
            target: None,
            payload: serde_json::json!({})
        }
    ))
    .unwrap();
    let step = StepChange {
        target: "staging".into(),
        step_index: Some(0),
        status: StepStatus::Started,
        reason: "canary at 25% (1/4 pods ready)".into(),
        details: serde_json::json!({}),
    };
    commit!(store, |c| events::record_step(c, a, dep.id, &step)).unwrap();
    let new_approval = NewApproval {
        target: "prod".into(),
        step_key: "strategy/1".into(),
        requires_roles: vec!["Release Manager".into()],
        expires_at: None,
    };
    let approval = commit!(store, |c| approvals::create(c, a, dep.id, &new_approval)).unwrap();
    let new_timer = NewTimer {
        target: Some("staging".into()),
        kind: "pause".into(),
        key: "staging/1/pause".into(),
        fire_at: Utc::now() - Duration::seconds(1),
        payload: serde_json::json!({}),
    };
    let timer = commit!(store, |c| timers::schedule(c, a, dep.id, &new_timer)).unwrap();
    let new_callback = NewCallback {
        target: Some("staging".into()),
        webhook_name: "smoke".into(),
        token_hash: "hash-of-token".into(),
        expires_at: Utc::now() + Duration::hours(1),
    };
    let callback = commit!(store, |c| callbacks::create(c, a, dep.id, &new_callback)).unwrap();
    commit!(store, |c| audit::append(
        c,
        a,
        &NewAuditEntry {
            actor: "ann@a.example".into(),
            action: "deployment.create".into(),
            resource_kind: "deployment".into(),
            resource_id: dep.id.to_string(),
            details: serde_json::json!({}),
        }
    ))
    .unwrap();

    // Tenant B, reading.
    assert_not_found(users::get(&store, b, user.id).await);
    assert_not_found(users::get_by_email(&store, b, "ann@a.example").await);
    assert!(users::list(&store, b).await.unwrap().is_empty());
    assert_not_found(roles::get(&store, b, "Release Manager").await);
    assert!(
        roles::roles_of(&store, b, user_principal)
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(credentials::get(&store, b, cred.id).await);
    assert_not_found(credentials::find_for_token(&store, b, "a-ci").await);
    assert!(credentials::list(&store, b).await.unwrap().is_empty());
    assert_not_found(agents::get(&store, b, "prod-cluster").await);
    assert!(agents::list(&store, b).await.unwrap().is_empty());
    assert_not_found(secrets::get(&store, b, "dd-key").await);
    assert!(secrets::list(&store, b).await.unwrap().is_empty());
    assert_not_found(metric_providers::get(&store, b, "prom").await);
    assert!(metric_providers::list(&store, b).await.unwrap().is_empty());
    assert_not_found(deployments::get(&store, b, dep.id).await);
    assert_not_found(deployments::detail(&store, b, dep.id).await);
    assert_not_found(deployments::config(&store, b, dep.id).await);
    let page = deployments::list(&store, b, &DeploymentFilter::default(), None, 50)
        .await
        .unwrap();
    assert!(page.items.is_empty());
    assert_not_found(targets::get(&store, b, dep.id, "staging").await);
    assert_not_found(targets::list(&store, b, dep.id).await);
    assert_not_found(events::list_after(&store, b, dep.id, 0, 100).await);
    assert_not_found(events::step_history(&store, b, dep.id).await);
    assert_not_found(approvals::get(&store, b, approval.id).await);
    assert_not_found(approvals::list_pending(&store, b, Some(dep.id)).await);
    assert!(
        approvals::list_pending(&store, b, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(timers::list_pending(&store, b, dep.id).await);
    assert_not_found(callbacks::get(&store, b, callback.id).await);
    assert!(audit::list(&store, b, None, 50).await.unwrap().is_empty());

    // Tenant B, writing and deciding.
    assert_not_found(attempt!(store, |c| roles::set_grants(
        c,
        b,
        "Release Manager",
        &[]
    )));
    assert_not_found(attempt!(store, |c| roles::delete(c, b, "Release Manager")));
    assert_not_found(attempt!(store, |c| roles::bind(
        c,
        b,
        user_principal,
        "Deployer"
    )));
    assert_not_found(attempt!(store, |c| roles::unbind(
        c,
        b,
        user_principal,
        "Release Manager"
    )));
    assert_not_found(attempt!(store, |c| credentials::revoke(c, b, cred.id)));
    assert_not_found(attempt!(store, |c| agents::heartbeat(
        c,
        b,
        "prod-cluster",
        agent.session
    )));
    assert_not_found(attempt!(store, |c| agents::disconnect(
        c,
        b,
        "prod-cluster",
        agent.session
    )));
    assert_not_found(attempt!(store, |c| secrets::delete(c, b, "dd-key")));
    assert_not_found(attempt!(store, |c| metric_providers::delete(c, b, "prom")));
    assert_not_found(attempt!(store, |c| deployments::load_for_update(
        c, b, dep.id
    )));
    assert_not_found(attempt!(store, |c| deployments::transition(
        c,
        b,
        dep.id,
        dep.version,
        DeploymentStatus::Aborted,
        Some("hostile")
    )));
    assert_not_found(attempt!(store, |c| deployments::bump_version(
        c,
        b,
        dep.id,
        dep.version
    )));
    let hostile = TargetState {
        status: TargetStatus::Failed,
        phase: None,
        desired: serde_json::json!({}),
        observed: serde_json::json!({}),
        step_index: 0,
        reason: Some("hostile".into()),
    };
    assert_not_found(attempt!(store, |c| targets::save(
        c, b, dep.id, "staging", 1, &hostile
    )));
    let event = NewEvent {
        kind: "x".into(),
        target: None,
        payload: serde_json::json!({}),
    };
    assert_not_found(attempt!(store, |c| events::append(c, b, dep.id, &event)));
    assert_not_found(attempt!(store, |c| events::record_step(
        c, b, dep.id, &step
    )));
    assert_not_found(attempt!(store, |c| approvals::decide(
        c,
        b,
        approval.id,
        Decision::Approve,
        "mallory"
    )));
    let foreign_approval = NewApproval {
        step_key: "strategy/9".into(),
        ..new_approval.clone()
    };
    assert_not_found(attempt!(store, |c| approvals::create(
        c,
        b,
        dep.id,
        &foreign_approval
    )));
    let foreign_timer = NewTimer {
        key: "other".into(),
        ..new_timer.clone()
    };
    assert_not_found(attempt!(store, |c| timers::schedule(
        c,
        b,
        dep.id,
        &foreign_timer
    )));
    assert_not_found(attempt!(store, |c| timers::cancel(c, b, timer.id)));
    assert_eq!(
        attempt!(store, |c| timers::cancel_for_deployment(c, b, dep.id)).unwrap(),
        0
    );
    assert!(
        attempt!(store, |c| timers::claim_due(c, b, 100))
            .unwrap()
            .is_empty()
    );
    let foreign_callback = NewCallback {
        token_hash: "other".into(),
        ..new_callback.clone()
    };
    assert_not_found(attempt!(store, |c| callbacks::create(
        c,
        b,
        dep.id,
        &foreign_callback
    )));
    assert_not_found(attempt!(store, |c| callbacks::complete(
        c,
        b,
        "hash-of-token",
        true,
        &serde_json::json!({})
    )));
    // B's own agent and deployment of the same names live beside A's, not on top of them.
    let b_agent = commit!(store, |c| agents::connect(
        c,
        b,
        &agents::Connect {
            identifier: "prod-cluster".into(),
            agent_version: "9.9.9".into(),
            kubernetes_version: "1.30".into(),
            hub_replica: "hub-1".into(),
        }
    ))
    .unwrap();
    assert_ne!(b_agent.id, agent.id);
    let b_dep = start(&store, b, "web").await;
    assert_ne!(b_dep.id, dep.id);

    // Tenant A's rows are exactly as before.
    let a_agent = agents::get(&store, a, "prod-cluster").await.unwrap();
    assert_eq!(
        (a_agent.session, a_agent.agent_version.as_str()),
        (agent.session, "1.0.0")
    );
    assert_eq!(a_agent.hub_replica.as_deref(), Some("hub-0"));
    let a_dep = deployments::get(&store, a, dep.id).await.unwrap();
    assert_eq!(
        (a_dep.status, a_dep.version),
        (DeploymentStatus::Running, dep.version)
    );
    assert_eq!(a_dep.last_event_seq, 2);
    assert_eq!(
        events::list_after(&store, a, dep.id, 0, 100)
            .await
            .unwrap()
            .len(),
        2
    );
    let a_target = targets::get(&store, a, dep.id, "staging").await.unwrap();
    assert_eq!(
        (a_target.status, a_target.version),
        (TargetStatus::Pending, 1)
    );
    let a_approval = approvals::get(&store, a, approval.id).await.unwrap();
    assert_eq!(a_approval.decision, None);
    assert_eq!(
        timers::list_pending(&store, a, dep.id).await.unwrap().len(),
        1
    );
    assert!(
        callbacks::get(&store, a, callback.id)
            .await
            .unwrap()
            .used_at
            .is_none()
    );
    assert!(credentials::find_for_token(&store, a, "a-ci").await.is_ok());
    assert!(secrets::get(&store, a, "dd-key").await.is_ok());
    assert!(metric_providers::get(&store, a, "prom").await.is_ok());
    assert_eq!(
        roles::roles_of(&store, a, user_principal)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(audit::list(&store, a, None, 50).await.unwrap().len(), 1);
    // And A can still do what B could not.
    let claimed = commit!(store, |c| timers::claim_due(c, a, 100)).unwrap();
    assert_eq!(
        claimed.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![timer.id]
    );
}

#[tokio::test]
async fn schema_rejects_rows_that_link_two_tenants() {
    let (_db, store) = setup().await;
    let a = tenant(&store, "tenant-a").await;
    let b = tenant(&store, "tenant-b").await;
    let dep = start(&store, a, "web").await;
    // Bypassing the repository: a target of tenant B pointing at A's deployment.
    let err = sqlx::query(
        "INSERT INTO targets (tenant_id, deployment_id, name, account, namespace)
         VALUES ($1, $2, 'sneaky', 'acct', 'ns')",
    )
    .bind(b)
    .bind(dep.id)
    .execute(store.pool())
    .await
    .expect_err("cross-tenant foreign key must fail");
    let db_err = err.as_database_error().expect("database error");
    assert!(db_err.is_foreign_key_violation(), "{db_err}");
}
