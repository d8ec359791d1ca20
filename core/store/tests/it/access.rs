//! Tenancy and access data: tenants with built-in roles, custom roles and bindings, machine
//! credentials, agents' sessions, secrets, metric providers, the audit log, inbox purging.

use crate::support::{assert_conflict, assert_not_found, attempt, commit, setup, tenant};
use ferry_store::audit::{self, NewAuditEntry};
use ferry_store::credentials::{self, NewCredential};
use ferry_store::metric_providers::{self, ProviderKind, ProviderSettings};
use ferry_store::roles::{self, Principal, PrincipalKind};
use ferry_store::tenants::{self, NewTenant};
use ferry_store::{agents, maintenance, secrets, users};

#[tokio::test]
async fn tenants_come_with_built_in_roles_and_custom_roles_bind_to_users() {
    let (_db, store) = setup().await;
    let org = commit!(store, |c| tenants::create_organization(c, "Acme Corp")).unwrap();
    let new = NewTenant {
        slug: "acme-prod".into(),
        name: "Acme production".into(),
        organization_id: Some(org.id),
    };
    let t = commit!(store, |c| tenants::create(c, &new)).unwrap();
    assert_eq!(
        tenants::get(&store, t.id).await.unwrap().organization_id,
        Some(org.id)
    );
    assert_conflict(attempt!(store, |c| tenants::create(c, &new)));
    let bad_slug = NewTenant {
        slug: "Not A Slug".into(),
        ..new.clone()
    };
    let refused = attempt!(store, |c| tenants::create(c, &bad_slug));
    assert!(
        matches!(refused, Err(ferry_store::StoreError::Invalid { .. })),
        "{refused:?}"
    );
    let names: Vec<_> = roles::list(&store, t.id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    for built_in in roles::BUILT_IN {
        assert!(
            names.iter().any(|n| n == built_in),
            "{built_in} missing from {names:?}"
        );
    }
    assert_conflict(attempt!(store, |c| roles::delete(c, t.id, "Viewer")));

    let grants = vec![
        "deployments:approve".to_string(),
        "deployments:read".to_string(),
    ];
    let rm = commit!(store, |c| roles::create(
        c,
        t.id,
        "Release Manager",
        &grants
    ))
    .unwrap();
    assert_eq!(rm.grants, grants);
    assert!(!rm.built_in);
    assert_conflict(attempt!(store, |c| roles::create(
        c,
        t.id,
        "Release Manager",
        &[]
    )));
    let narrowed = commit!(store, |c| roles::set_grants(
        c,
        t.id,
        "Release Manager",
        &["deployments:approve".to_string()]
    ))
    .unwrap();
    assert_eq!(narrowed.grants, ["deployments:approve"]);

    let ann = commit!(store, |c| users::create(c, t.id, "ann@acme.example", "Ann")).unwrap();
    assert_conflict(attempt!(store, |c| users::create(
        c,
        t.id,
        "ann@acme.example",
        "Ann 2"
    )));
    let principal = Principal {
        kind: PrincipalKind::User,
        id: ann.id,
    };
    commit!(store, |c| roles::bind(
        c,
        t.id,
        principal,
        "Release Manager"
    ))
    .unwrap();
    commit!(store, |c| roles::bind(
        c,
        t.id,
        principal,
        "Release Manager"
    ))
    .unwrap();
    commit!(store, |c| roles::bind(c, t.id, principal, "Viewer")).unwrap();
    assert_not_found(attempt!(store, |c| roles::bind(
        c,
        t.id,
        principal,
        "No Such Role"
    )));
    let ghost = Principal {
        kind: PrincipalKind::User,
        id: uuid::Uuid::now_v7(),
    };
    assert_not_found(attempt!(store, |c| roles::bind(c, t.id, ghost, "Viewer")));
    let held: Vec<_> = roles::roles_of(&store, t.id, principal).await.unwrap();
    assert_eq!(
        held.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["Release Manager", "Viewer"]
    );
    assert_eq!(held[0].grants, ["deployments:approve"]);
    commit!(store, |c| roles::unbind(c, t.id, principal, "Viewer")).unwrap();
    assert_not_found(attempt!(store, |c| roles::unbind(
        c, t.id, principal, "Viewer"
    )));
    commit!(store, |c| roles::delete(c, t.id, "Release Manager")).unwrap();
    assert!(
        roles::roles_of(&store, t.id, principal)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn credentials_carry_roles_and_revoked_ones_cannot_get_tokens() {
    let (_db, store) = setup().await;
    let t = tenant(&store, "acme").await;
    let new = NewCredential {
        name: "github-actions".into(),
        client_id: "cid-123".into(),
        secret_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        roles: vec!["Deployer".into(), "Viewer".into()],
    };
    let created = commit!(store, |c| credentials::create(c, t, &new)).unwrap();
    assert_eq!(created.roles, ["Deployer", "Viewer"]);
    let json = serde_json::to_value(&created).unwrap();
    assert!(
        json.get("secret_hash").is_none(),
        "the hash never leaves in a response"
    );

    let for_token = credentials::find_for_token(&store, t, "cid-123")
        .await
        .unwrap();
    assert_eq!(
        (for_token.id, for_token.secret_hash.as_str()),
        (created.id, new.secret_hash.as_str())
    );
    let principal = Principal {
        kind: PrincipalKind::Credential,
        id: created.id,
    };
    assert_eq!(
        roles::roles_of(&store, t, principal).await.unwrap().len(),
        2
    );

    let dup = NewCredential {
        name: "other".into(),
        ..new.clone()
    };
    assert_conflict(attempt!(store, |c| credentials::create(c, t, &dup)));
    let bad_role = NewCredential {
        name: "x".into(),
        client_id: "cid-x".into(),
        roles: vec!["Nope".into()],
        ..new.clone()
    };
    assert_not_found(attempt!(store, |c| credentials::create(c, t, &bad_role)));

    let revoked = commit!(store, |c| credentials::revoke(c, t, created.id)).unwrap();
    let first_revocation = revoked.revoked_at.expect("revoked");
    let again = commit!(store, |c| credentials::revoke(c, t, created.id)).unwrap();
    assert_eq!(again.revoked_at, Some(first_revocation));
    assert_not_found(credentials::find_for_token(&store, t, "cid-123").await);
    assert_eq!(credentials::list(&store, t).await.unwrap().len(), 1);
}

#[tokio::test]
async fn only_the_current_agent_session_records_heartbeats_and_disconnects() {
    let (_db, store) = setup().await;
    let t = tenant(&store, "acme").await;
    let hello = |replica: &str, version: &str| agents::Connect {
        identifier: "prod-cluster".into(),
        agent_version: version.into(),
        kubernetes_version: "1.33".into(),
        hub_replica: replica.into(),
    };
    let first = commit!(store, |c| agents::connect(c, t, &hello("hub-0", "1.0.0"))).unwrap();
    let second = commit!(store, |c| agents::connect(c, t, &hello("hub-1", "1.1.0"))).unwrap();
    assert_eq!(second.id, first.id);
    assert!(second.session > first.session);
    // hub-0 lost the agent: its heartbeat and disconnect are stale and change nothing.
    assert_conflict(attempt!(store, |c| agents::heartbeat(
        c,
        t,
        "prod-cluster",
        first.session
    )));
    assert_conflict(attempt!(store, |c| agents::disconnect(
        c,
        t,
        "prod-cluster",
        first.session
    )));
    commit!(store, |c| agents::heartbeat(
        c,
        t,
        "prod-cluster",
        second.session
    ))
    .unwrap();
    let now = agents::get(&store, t, "prod-cluster").await.unwrap();
    assert!(now.is_connected());
    assert_eq!(
        (now.hub_replica.as_deref(), now.agent_version.as_str()),
        (Some("hub-1"), "1.1.0")
    );
    commit!(store, |c| agents::disconnect(
        c,
        t,
        "prod-cluster",
        second.session
    ))
    .unwrap();
    let gone = agents::get(&store, t, "prod-cluster").await.unwrap();
    assert!(!gone.is_connected() && gone.disconnected_at.is_some());
    assert_conflict(attempt!(store, |c| agents::heartbeat(
        c,
        t,
        "prod-cluster",
        second.session
    )));
    assert_not_found(attempt!(store, |c| agents::heartbeat(c, t, "unknown", 1)));
    assert_eq!(agents::list(&store, t).await.unwrap().len(), 1);
}

#[tokio::test]
async fn secrets_and_metric_providers_round_trip() {
    let (_db, store) = setup().await;
    let t = tenant(&store, "acme").await;
    commit!(store, |c| secrets::put(
        c,
        t,
        "dd-api-key",
        b"cipher-1",
        b"nonce-1",
        "key-2026"
    ))
    .unwrap();
    commit!(store, |c| secrets::put(
        c,
        t,
        "dd-api-key",
        b"cipher-2",
        b"nonce-2",
        "key-2027"
    ))
    .unwrap();
    commit!(store, |c| secrets::put(
        c,
        t,
        "dd-app-key",
        b"c",
        b"n",
        "key-2027"
    ))
    .unwrap();
    let sealed = secrets::get(&store, t, "dd-api-key").await.unwrap();
    assert_eq!(
        (sealed.ciphertext.as_slice(), sealed.nonce.as_slice()),
        (&b"cipher-2"[..], &b"nonce-2"[..])
    );
    assert_eq!(sealed.key_id, "key-2027");
    let names: Vec<_> = secrets::list(&store, t)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["dd-api-key", "dd-app-key"]);
    commit!(store, |c| secrets::delete(c, t, "dd-app-key")).unwrap();
    assert_not_found(attempt!(store, |c| secrets::delete(c, t, "dd-app-key")));

    let settings = ProviderSettings {
        name: "datadog".into(),
        kind: ProviderKind::Datadog,
        base_url: "https://api.datadoghq.eu".into(),
        secret_refs: [("apiKey".to_string(), "dd-api-key".to_string())].into(),
        agent: Some("prod-cluster".into()),
    };
    commit!(store, |c| metric_providers::put(c, t, &settings)).unwrap();
    let got = metric_providers::get(&store, t, "datadog").await.unwrap();
    assert_eq!(got.kind, ProviderKind::Datadog);
    assert_eq!(got.secret_refs.0, settings.secret_refs);
    assert_eq!(serde_json::to_value(&got).unwrap()["kind"], "datadog");
    // The schema refuses kinds the code does not know.
    let bad = sqlx::query(
        "INSERT INTO metric_providers (tenant_id, name, kind, base_url) VALUES ($1, 'x', 'graphite', 'u')",
    )
    .bind(t)
    .execute(store.pool())
    .await;
    assert!(
        bad.unwrap_err()
            .as_database_error()
            .unwrap()
            .is_check_violation()
    );
    commit!(store, |c| metric_providers::delete(c, t, "datadog")).unwrap();
    assert_not_found(metric_providers::get(&store, t, "datadog").await);
}

#[tokio::test]
async fn audit_log_pages_newest_first() {
    let (_db, store) = setup().await;
    let t = tenant(&store, "acme").await;
    for i in 0..5 {
        let entry = NewAuditEntry {
            actor: "ann@acme.example".into(),
            action: "secret.put".into(),
            resource_kind: "secret".into(),
            resource_id: format!("s{i}"),
            details: serde_json::json!({ "i": i }),
        };
        commit!(store, |c| audit::append(c, t, &entry)).unwrap();
    }
    let first = audit::list(&store, t, None, 3).await.unwrap();
    let rest = audit::list(&store, t, Some(first.last().unwrap().id), 3)
        .await
        .unwrap();
    let ids: Vec<_> = first
        .iter()
        .chain(&rest)
        .map(|e| e.resource_id.as_str())
        .collect();
    assert_eq!(ids, ["s4", "s3", "s2", "s1", "s0"]);
}

#[tokio::test]
async fn purge_removes_only_old_processed_messages() {
    let (_db, store) = setup().await;
    let t = tenant(&store, "acme").await;
    for age_days in [0, 3, 8, 30] {
        sqlx::query(
            "INSERT INTO processed_messages (consumer, message_id, tenant_id, processed_at)
             VALUES ('scheduler', $1, $2, now() - make_interval(days => $3))",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(t)
        .bind(age_days)
        .execute(store.pool())
        .await
        .unwrap();
    }
    assert_eq!(
        maintenance::purge_processed_messages(&store, 7)
            .await
            .unwrap(),
        2
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_messages")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(left, 2);
}

#[tokio::test]
async fn connect_runs_migrations_idempotently() {
    let (db, _store) = setup().await;
    // The database is already migrated; connecting again re-checks and applies nothing new.
    let store = ferry_store::Store::connect(&db.url, 2).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(applied as usize, ferry_store::MIGRATOR.iter().count());
    assert!(applied >= 3);
    tenant(&store, "after-reconnect").await;
}
