//! Deployments: one in flight per application (enforced by the database, also under racing
//! inserts), the enqueueOne queue, optimistic concurrency, reads and keyset pagination.

use crate::support::{
    assert_conflict, attempt, commit, create, new_deployment, setup, start, tenant,
};
use ferry_store::deployments::{self, Created, DeploymentFilter, DeploymentStatus, OnBusy};
use ferry_store::targets::{self, TargetPhase, TargetState, TargetStatus};
use ferry_store::{Cursor, DeploymentId};
use std::collections::HashSet;

#[tokio::test]
async fn racing_creates_start_exactly_one_deployment_per_application() {
    let (_db, store) = setup().await;
    let t = tenant(&store, "acme").await;
    let racers: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { create(&store, t, "web", OnBusy::Reject).await })
        })
        .collect();
    let mut started = Vec::new();
    let mut busy = Vec::new();
    for racer in racers {
        match racer.await.unwrap() {
            Created::Started(d) => started.push(d.id),
            Created::Busy { running } => busy.push(running),
            Created::Queued { .. } => panic!("Reject never queues"),
        }
    }
    assert_eq!(started.len(), 1, "exactly one wins");
    assert_eq!(busy, vec![started[0]; 5], "the others are told who runs");
    let all = deployments::list(&store, t, &DeploymentFilter::default(), None, 50)
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1, "a rejected create stores nothing");
}

#[tokio::test]
async fn database_refuses_a_second_active_deployment_even_bypassing_the_code() {
    let (_db, store) = setup().await;
    let t = tenant(&store, "acme").await;
    let insert = "INSERT INTO deployments (tenant_id, id, application, status, created_by,
                      deploy_file) VALUES ($1, $2, 'web', 'running', 'x', '')";
    let mut first = store.begin().await.unwrap();
    sqlx::query(insert)
        .bind(t)
        .bind(DeploymentId::new())
        .execute(&mut *first)
        .await
        .unwrap();
    // The second insert races the first, uncommitted one: it waits on the index, then fails.
    let second = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            sqlx::query(insert)
                .bind(t)
                .bind(DeploymentId::new())
                .execute(&mut *tx)
                .await
        })
    };
    first.commit().await.unwrap();
    let err = second
        .await
        .unwrap()
        .expect_err("second active deployment must be refused");
    assert!(
        err.as_database_error().unwrap().is_unique_violation(),
        "{err}"
    );
    // Paused also holds the slot; a finished one does not.
    let paused = sqlx::query(
        "INSERT INTO deployments (tenant_id, id, application, status, created_by, deploy_file)
         VALUES ($1, $2, 'web', 'paused', 'x', '')",
    )
    .bind(t)
    .bind(DeploymentId::new())
    .execute(store.pool())
    .await;
    assert!(
        paused
            .unwrap_err()
            .as_database_error()
            .unwrap()
            .is_unique_violation()
    );
    sqlx::query(
        "INSERT INTO deployments (tenant_id, id, application, status, created_by, deploy_file)
         VALUES ($1, $2, 'web', 'succeeded', 'x', '')",
    )
    .bind(t)
    .bind(DeploymentId::new())
    .execute(store.pool())
    .await
    .expect("finished deployments do not occupy the slot");
}

#[tokio::test]
async fn enqueue_one_keeps_only_the_newest_waiting_and_promotes_it_when_the_running_ends() {
    let (_db, store) = setup().await;
    let t = tenant(&store, "acme").await;
    let first = start(&store, t, "web").await;
    let Created::Queued {
        deployment: second,
        superseded,
    } = create(&store, t, "web", OnBusy::EnqueueOne).await
    else {
        panic!("expected queued")
    };
    assert_eq!(second.status, DeploymentStatus::Waiting);
    assert!(superseded.is_empty());
    let Created::Queued {
        deployment: third,
        superseded,
    } = create(&store, t, "web", OnBusy::EnqueueOne).await
    else {
        panic!("expected queued")
    };
    assert_eq!(
        superseded,
        vec![second.id],
        "the older waiting one is replaced"
    );
    let second_now = deployments::get(&store, t, second.id).await.unwrap();
    assert_eq!(second_now.status, DeploymentStatus::Superseded);
    assert!(second_now.ended_at.is_some());
    // Another application is unaffected.
    start(&store, t, "api").await;

    let done = commit!(store, |c| deployments::transition(
        c,
        t,
        first.id,
        first.version,
        DeploymentStatus::Succeeded,
        Some("all targets succeeded")
    ))
    .unwrap();
    assert_eq!(done.deployment.status, DeploymentStatus::Succeeded);
    assert!(done.deployment.ended_at.is_some());
    let promoted = done.promoted.expect("the newest waiting deployment starts");
    assert_eq!(
        (promoted.id, promoted.status),
        (third.id, DeploymentStatus::Running)
    );
    assert!(promoted.started_at.is_some());
    // A finished deployment cannot change again, and with nothing waiting nothing is promoted.
    assert_conflict(attempt!(store, |c| deployments::transition(
        c,
        t,
        first.id,
        done.deployment.version,
        DeploymentStatus::Running,
        None
    )));
    let last = commit!(store, |c| deployments::transition(
        c,
        t,
        third.id,
        promoted.version,
        DeploymentStatus::Failed,
        Some("canary failed")
    ))
    .unwrap();
    assert!(last.promoted.is_none());
    assert!(matches!(
        create(&store, t, "web", OnBusy::Reject).await,
        Created::Started(_)
    ));
}

#[tokio::test]
async fn promotion_supersedes_every_older_waiting_deployment() {
    let (_db, store) = setup().await;
    let t = tenant(&store, "acme").await;
    let running = start(&store, t, "web").await;
    // Two waiting rows at once can only come from outside enqueueOne (e.g. an older release);
    // promotion must still leave exactly one survivor.
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let id = DeploymentId::new();
        sqlx::query(
            "INSERT INTO deployments (tenant_id, id, application, status, created_by,
                                      deploy_file, created_at)
             VALUES ($1, $2, 'web', 'waiting', 'x', '', clock_timestamp())",
        )
        .bind(t)
        .bind(id)
        .execute(store.pool())
        .await
        .unwrap();
        waiting.push(id);
    }
    let done = commit!(store, |c| deployments::transition(
        c,
        t,
        running.id,
        running.version,
        DeploymentStatus::Aborted,
        Some("aborted by alice")
    ))
    .unwrap();
    assert_eq!(done.promoted.unwrap().id, waiting[2]);
    let mut older = waiting[..2].to_vec();
    older.sort();
    assert_eq!(done.superseded, older);
}

#[tokio::test]
async fn stale_versions_are_conflicts_and_change_nothing() {
    let (_db, store) = setup().await;
    let t = tenant(&store, "acme").await;
    let dep = start(&store, t, "web").await;
    let paused = commit!(store, |c| deployments::transition(
        c,
        t,
        dep.id,
        dep.version,
        DeploymentStatus::Paused,
        Some("paused by alice")
    ))
    .unwrap()
    .deployment;
    assert_eq!(paused.version, dep.version + 1);
    assert_conflict(attempt!(store, |c| deployments::transition(
        c,
        t,
        dep.id,
        dep.version,
        DeploymentStatus::Aborted,
        None
    )));
    assert_conflict(attempt!(store, |c| deployments::bump_version(
        c,
        t,
        dep.id,
        dep.version
    )));
    let bumped = commit!(store, |c| deployments::bump_version(
        c,
        t,
        dep.id,
        paused.version
    ))
    .unwrap();
    assert_eq!(bumped.version, paused.version + 1);
    assert_eq!(
        deployments::get(&store, t, dep.id).await.unwrap().status,
        DeploymentStatus::Paused
    );

    // Two replicas reconcile the same target from the same read: exactly one commit wins.
    let target = targets::get(&store, t, dep.id, "staging").await.unwrap();
    let racers: Vec<_> = (0..2)
        .map(|i| {
            let store = store.clone();
            let version = target.version;
            tokio::spawn(async move {
                let state = TargetState {
                    status: TargetStatus::Running,
                    phase: Some(TargetPhase::Steps),
                    desired: serde_json::json!({ "weight": 25, "replica": i }),
                    observed: serde_json::json!({ "ready": 1 }),
                    step_index: 1,
                    reason: Some("canary at 25% (1/4 pods ready)".into()),
                };
                let mut tx = store.begin().await.unwrap();
                let saved = targets::save(&mut tx, t, dep.id, "staging", version, &state).await;
                if saved.is_ok() {
                    tx.commit().await.unwrap();
                }
                saved
            })
        })
        .collect();
    let mut wins = Vec::new();
    for racer in racers {
        match racer.await.unwrap() {
            Ok(saved) => wins.push(saved),
            Err(e) => assert!(e.is_conflict(), "{e:?}"),
        }
    }
    assert_eq!(wins.len(), 1);
    let now = targets::get(&store, t, dep.id, "staging").await.unwrap();
    assert_eq!(now.version, target.version + 1);
    assert_eq!(now.desired, wins[0].desired);
    assert_eq!((now.status, now.step_index), (TargetStatus::Running, 1));
    assert!(now.started_at.is_some() && now.ended_at.is_none());
}

#[tokio::test]
async fn every_phase_is_stored_and_read_back_typed() {
    let (_db, store) = setup().await;
    let t = tenant(&store, "phases").await;
    let new = new_deployment("web", &["staging"]);
    commit!(store, |c| deployments::create(c, t, &new, OnBusy::Reject)).unwrap();
    let fresh = targets::get(&store, t, new.id, "staging").await.unwrap();
    assert_eq!(
        fresh.phase, None,
        "a target that has not started has no phase"
    );
    let mut version = fresh.version;
    for &phase in TargetPhase::ALL {
        let state = TargetState {
            status: TargetStatus::Running,
            phase: Some(phase),
            desired: serde_json::json!({}),
            observed: serde_json::json!({}),
            step_index: 0,
            reason: None,
        };
        let saved = commit!(store, |c| targets::save(
            c, t, new.id, "staging", version, &state
        ))
        .unwrap();
        version = saved.version;
        let read = targets::get(&store, t, new.id, "staging").await.unwrap();
        assert_eq!(read.phase, Some(phase));
    }
}

#[tokio::test]
async fn detail_and_config_return_what_was_submitted() {
    let (_db, store) = setup().await;
    let t = tenant(&store, "acme").await;
    let new = new_deployment("web", &["staging", "prod"]);
    commit!(store, |c| deployments::create(c, t, &new, OnBusy::Reject)).unwrap();
    let detail = deployments::detail(&store, t, new.id).await.unwrap();
    assert_eq!(detail.deployment.application, "web");
    let names: Vec<_> = detail.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["prod", "staging"]);
    assert!(
        detail
            .targets
            .iter()
            .all(|t| t.status == TargetStatus::Pending)
    );
    assert!(detail.steps.is_empty());
    let config = deployments::config(&store, t, new.id).await.unwrap();
    assert_eq!(config.deploy_file, new.deploy_file);
    assert_eq!(config.manifests.0, new.manifests);
    assert_eq!(config.plan.0, new.plan);
    // Serializes for the API without surprises.
    let json = serde_json::to_value(&detail).unwrap();
    assert_eq!(json["deployment"]["status"], "running");
}

#[tokio::test]
async fn listing_pages_newest_first_without_gaps_or_repeats() {
    let (_db, store) = setup().await;
    let t = tenant(&store, "acme").await;
    let mut created = Vec::new();
    for i in 0..7 {
        let d = start(&store, t, &format!("app-{}", i % 3)).await;
        let done = commit!(store, |c| deployments::transition(
            c,
            t,
            d.id,
            d.version,
            if i % 2 == 0 {
                DeploymentStatus::Succeeded
            } else {
                DeploymentStatus::Failed
            },
            None
        ))
        .unwrap();
        created.push(done.deployment);
    }
    let newest_first: Vec<_> = created.iter().rev().map(|d| d.id).collect();

    let mut seen = Vec::new();
    let mut after: Option<Cursor> = None;
    let mut pages = 0;
    loop {
        let page = deployments::list(&store, t, &DeploymentFilter::default(), after, 3)
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|d| d.id));
        match page.next {
            // The cursor survives the trip through the API as text.
            Some(next) => after = Some(next.to_string().parse().unwrap()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, newest_first);

    let filter = DeploymentFilter {
        application: Some("app-0".into()),
        status: None,
    };
    let app0 = deployments::list(&store, t, &filter, None, 50)
        .await
        .unwrap();
    let expected: Vec<_> = created
        .iter()
        .rev()
        .filter(|d| d.application == "app-0")
        .map(|d| d.id)
        .collect();
    assert_eq!(
        app0.items.iter().map(|d| d.id).collect::<Vec<_>>(),
        expected
    );
    assert!(app0.next.is_none());

    let filter = DeploymentFilter {
        application: None,
        status: Some(DeploymentStatus::Failed),
    };
    let failed = deployments::list(&store, t, &filter, None, 50)
        .await
        .unwrap();
    let ids: HashSet<_> = failed.items.iter().map(|d| d.id).collect();
    assert_eq!(ids.len(), 3);
    assert!(
        failed
            .items
            .iter()
            .all(|d| d.status == DeploymentStatus::Failed)
    );
}

#[tokio::test]
async fn create_composes_with_the_callers_transaction() {
    let (_db, store) = setup().await;
    let t = tenant(&store, "acme").await;
    let running = start(&store, t, "web").await;

    // Busy: nothing is written and the transaction stays usable for the caller's other writes.
    let mut tx = store.begin().await.unwrap();
    let busy = deployments::create(
        &mut tx,
        t,
        &new_deployment("web", &["prod"]),
        OnBusy::Reject,
    )
    .await
    .unwrap();
    assert!(matches!(busy, Created::Busy { running: id } if id == running.id));
    let entry = ferry_store::audit::NewAuditEntry {
        actor: "alice".into(),
        action: "deployment.rejected".into(),
        resource_kind: "application".into(),
        resource_id: "web".into(),
        details: serde_json::json!({ "running": running.id }),
    };
    ferry_store::audit::append(&mut tx, t, &entry)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        ferry_store::audit::list(&store, t, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // A create whose transaction rolls back (say the outbox write failed) leaves no trace.
    let new = new_deployment("api", &["prod"]);
    let mut tx = store.begin().await.unwrap();
    deployments::create(&mut tx, t, &new, OnBusy::Reject)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO outbox (message_id, tenant_id, exchange, routing_key, payload)
         VALUES ($1, $2, 'ferry.work', 'scheduler', '\\x00')",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(t)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        deployments::get(&store, t, new.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(outbox, 0);
    // The application's slot was not taken by the rolled-back create.
    assert!(matches!(
        create(&store, t, "api", OnBusy::Reject).await,
        Created::Started(_)
    ));
}
