//! What the scheduler relies on: ordered, resumable events; timers claimed exactly once;
//! approvals and webhook callbacks decided once.

use crate::support::{assert_conflict, assert_not_found, attempt, commit, setup, start, tenant};
use chrono::{Duration, Utc};
use ferry_store::approvals::{self, Decision, NewApproval};
use ferry_store::callbacks::{self, NewCallback};
use ferry_store::events::{self, NewEvent, StepChange, StepStatus};
use ferry_store::timers::{self, NewTimer};
use std::collections::HashSet;

fn event(kind: &str) -> NewEvent {
    NewEvent {
        kind: kind.to_string(),
        target: None,
        payload: serde_json::json!({}),
    }
}

#[tokio::test]
async fn events_are_numbered_in_order_and_resumable_after_any_seq() {
    let (_db, store) = setup().await;
    let t = tenant(&store, "acme").await;
    let dep = start(&store, t, "web").await;
    assert!(
        events::list_after(&store, t, dep.id, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Four writers append concurrently; the numbers come out gapless and unique.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..10 {
                    let e = event(&format!("test.w{w}.{i}"));
                    seqs.push(commit!(store, |c| events::append(c, t, dep.id, &e)).unwrap());
                }
                seqs
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in writers {
        let seqs = w.await.unwrap();
        assert!(
            seqs.windows(2).all(|p| p[0] < p[1]),
            "one writer's events stay in order"
        );
        all.extend(seqs);
    }
    all.sort();
    assert_eq!(all, (1..=40).collect::<Vec<i64>>());

    let step = StepChange {
        target: "staging".into(),
        step_index: Some(1),
        status: StepStatus::Progressing,
        reason: "canary at 25% (1/4 pods ready)".into(),
        details: serde_json::json!({ "ready": 1, "desired": 4 }),
    };
    let seq = commit!(store, |c| events::record_step(c, t, dep.id, &step)).unwrap();
    assert_eq!(seq, 41);

    // Resume in pages of 7 as an SSE client with Last-Event-ID would.
    let mut resumed = Vec::new();
    let mut last = 0;
    loop {
        let page = events::list_after(&store, t, dep.id, last, 7)
            .await
            .unwrap();
        let Some(tail) = page.last() else { break };
        last = tail.seq;
        resumed.extend(page);
    }
    assert_eq!(
        resumed.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=41).collect::<Vec<_>>()
    );
    let step_event = resumed.last().unwrap();
    assert_eq!(step_event.kind, "step.progressing");
    assert_eq!(step_event.target_name.as_deref(), Some("staging"));
    assert_eq!(
        step_event.payload.0["reason"],
        "canary at 25% (1/4 pods ready)"
    );
    let after_38: Vec<_> = events::list_after(&store, t, dep.id, 38, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(after_38, [39, 40, 41]);

    let history = events::step_history(&store, t, dep.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].status, history[0].step_index),
        (StepStatus::Progressing, Some(1))
    );
    // A step of a target the deployment does not have is refused, and writes no event.
    let bad = StepChange {
        target: "nope".into(),
        ..step.clone()
    };
    assert_not_found(attempt!(store, |c| events::record_step(c, t, dep.id, &bad)));
    assert_eq!(
        events::list_after(&store, t, dep.id, 41, 10)
            .await
            .unwrap()
            .len(),
        0
    );
}

fn due_timer(key: &str, seconds_from_now: i64) -> NewTimer {
    NewTimer {
        target: Some("staging".into()),
        kind: "pause".into(),
        key: key.to_string(),
        fire_at: Utc::now() + Duration::seconds(seconds_from_now),
        payload: serde_json::json!({ "key": key }),
    }
}

#[tokio::test]
async fn due_timers_are_claimed_exactly_once_by_concurrent_claimers() {
    let (_db, store) = setup().await;
    let a = tenant(&store, "acme").await;
    let b = tenant(&store, "globex").await;
    let dep_a = start(&store, a, "web").await;
    let dep_b = start(&store, b, "web").await;
    let mut expected = HashSet::new();
    for i in 0..30 {
        let (t, dep) = if i % 2 == 0 {
            (a, dep_a.id)
        } else {
            (b, dep_b.id)
        };
        let timer = commit!(store, |c| timers::schedule(
            c,
            t,
            dep,
            &due_timer(&format!("k{i}"), -5)
        ))
        .unwrap();
        expected.insert(timer.id);
    }
    // Scheduling the same key again is a no-op that returns the same timer.
    let again = commit!(store, |c| timers::schedule(
        c,
        a,
        dep_a.id,
        &due_timer("k0", 100)
    ))
    .unwrap();
    assert!(expected.contains(&again.id));
    let future = commit!(store, |c| timers::schedule(
        c,
        a,
        dep_a.id,
        &due_timer("later", 3600)
    ))
    .unwrap();

    // A claim that rolls back (the replica died mid-work) leaves its timers due.
    let mut dying = store.begin().await.unwrap();
    let lost = timers::claim_due_all_tenants(&mut dying, 5).await.unwrap();
    assert_eq!(lost.len(), 5);
    // While it holds them, another claimer skips them instead of waiting or doubling them.
    let mut other = store.begin().await.unwrap();
    let meanwhile = timers::claim_due_all_tenants(&mut other, 100)
        .await
        .unwrap();
    assert_eq!(meanwhile.len(), 25);
    let lost_ids: HashSet<_> = lost.iter().map(|t| t.id).collect();
    assert!(meanwhile.iter().all(|t| !lost_ids.contains(&t.id)));
    other.rollback().await.unwrap();
    dying.rollback().await.unwrap();

    let claimers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let claimed = commit!(store, |c| timers::claim_due_all_tenants(c, 3)).unwrap();
                    if claimed.is_empty() {
                        return mine;
                    }
                    assert!(claimed.iter().all(|t| t.fired_at.is_some()));
                    mine.extend(claimed.into_iter().map(|t| t.id));
                }
            })
        })
        .collect();
    let mut fired = Vec::new();
    for claimer in claimers {
        fired.extend(claimer.await.unwrap());
    }
    assert_eq!(fired.len(), 30, "every timer fired once, none twice");
    assert_eq!(fired.iter().copied().collect::<HashSet<_>>(), expected);
    assert!(
        !fired.contains(&future.id),
        "a timer not yet due is not claimed"
    );
    assert_eq!(
        timers::list_pending(&store, a, dep_a.id)
            .await
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect::<Vec<_>>(),
        vec![future.id]
    );
    assert_conflict(attempt!(store, |c| timers::cancel(
        c,
        a,
        fired_of(&store, a, &fired).await
    )));
}

/// Some timer of `tenant` among `fired`.
async fn fired_of(
    store: &ferry_store::Store,
    tenant: ferry_store::TenantId,
    fired: &[uuid::Uuid],
) -> uuid::Uuid {
    let id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM timers WHERE tenant_id = $1 AND id = ANY($2) LIMIT 1")
            .bind(tenant)
            .bind(fired)
            .fetch_one(store.pool())
            .await
            .unwrap();
    id
}

#[tokio::test]
async fn tenant_claims_and_cancelled_timers() {
    let (_db, store) = setup().await;
    let a = tenant(&store, "acme").await;
    let b = tenant(&store, "globex").await;
    let dep_a = start(&store, a, "web").await;
    let dep_b = start(&store, b, "web").await;
    let a1 = commit!(store, |c| timers::schedule(
        c,
        a,
        dep_a.id,
        &due_timer("a1", -2)
    ))
    .unwrap();
    let a2 = commit!(store, |c| timers::schedule(
        c,
        a,
        dep_a.id,
        &due_timer("a2", -1)
    ))
    .unwrap();
    let b1 = commit!(store, |c| timers::schedule(
        c,
        b,
        dep_b.id,
        &due_timer("b1", -1)
    ))
    .unwrap();
    commit!(store, |c| timers::cancel(c, a, a2.id)).unwrap();
    let claimed = commit!(store, |c| timers::claim_due(c, a, 10)).unwrap();
    assert_eq!(
        claimed.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![a1.id]
    );
    assert_eq!(
        commit!(store, |c| timers::cancel_for_deployment(c, b, dep_b.id)).unwrap(),
        1
    );
    assert!(
        commit!(store, |c| timers::claim_due_all_tenants(c, 10))
            .unwrap()
            .is_empty()
    );
    assert_not_found(attempt!(store, |c| timers::cancel(c, a, b1.id)));
}

fn approval(step: &str, expires_in: Option<i64>) -> NewApproval {
    NewApproval {
        target: "prod".into(),
        step_key: step.to_string(),
        requires_roles: vec!["Release Manager".into()],
        expires_at: expires_in.map(|s| Utc::now() + Duration::seconds(s)),
    }
}

#[tokio::test]
async fn an_approval_is_decided_once_even_by_racing_approvers() {
    let (_db, store) = setup().await;
    let t = tenant(&store, "acme").await;
    let dep = start(&store, t, "web").await;
    let first = commit!(store, |c| approvals::create(
        c,
        t,
        dep.id,
        &approval("strategy/2", None)
    ))
    .unwrap();
    let again = commit!(store, |c| approvals::create(
        c,
        t,
        dep.id,
        &approval("strategy/2", None)
    ))
    .unwrap();
    assert_eq!(
        again.id, first.id,
        "a redelivered request does not ask twice"
    );
    assert_eq!(again.requires_roles, ["Release Manager"]);
    let pending = approvals::list_pending(&store, t, Some(dep.id))
        .await
        .unwrap();
    assert_eq!(
        pending.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![first.id]
    );

    let deciders: Vec<_> = [("alice", Decision::Approve), ("bob", Decision::Reject)]
        .into_iter()
        .map(|(who, decision)| {
            let store = store.clone();
            tokio::spawn(async move {
                attempt_commit(&store, t, first.id, decision, who)
                    .await
                    .map(|a| (who, a))
            })
        })
        .collect();
    let mut winners = Vec::new();
    for d in deciders {
        match d.await.unwrap() {
            Ok(win) => winners.push(win),
            Err(e) => assert!(e.is_conflict(), "{e:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let (who, decided) = &winners[0];
    let stored = approvals::get(&store, t, first.id).await.unwrap();
    assert_eq!(stored.decided_by.as_deref(), Some(*who));
    assert_eq!(stored.decision, decided.decision);
    assert!(stored.decided_at.is_some());
    assert!(
        approvals::list_pending(&store, t, Some(dep.id))
            .await
            .unwrap()
            .is_empty()
    );
    assert_conflict(attempt!(store, |c| approvals::decide(
        c,
        t,
        first.id,
        Decision::Approve,
        "carol"
    )));

    let expired = commit!(store, |c| approvals::create(
        c,
        t,
        dep.id,
        &approval("strategy/3", Some(-1))
    ))
    .unwrap();
    assert_conflict(attempt!(store, |c| approvals::decide(
        c,
        t,
        expired.id,
        Decision::Approve,
        "alice"
    )));
    assert!(
        approvals::list_pending(&store, t, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        approvals::get(&store, t, expired.id)
            .await
            .unwrap()
            .decision,
        None
    );
}

async fn attempt_commit(
    store: &ferry_store::Store,
    t: ferry_store::TenantId,
    id: uuid::Uuid,
    decision: Decision,
    who: &str,
) -> ferry_store::Result<approvals::Approval> {
    let mut tx = store.begin().await?;
    let decided = approvals::decide(&mut tx, t, id, decision, who).await?;
    tx.commit().await?;
    Ok(decided)
}

#[tokio::test]
async fn a_webhook_callback_is_used_once_and_not_after_it_expires() {
    let (_db, store) = setup().await;
    let t = tenant(&store, "acme").await;
    let dep = start(&store, t, "web").await;
    let new = NewCallback {
        target: Some("staging".into()),
        webhook_name: "smoke-test".into(),
        token_hash: "sha256:abc".into(),
        expires_at: Utc::now() + Duration::minutes(10),
    };
    let created = commit!(store, |c| callbacks::create(c, t, dep.id, &new)).unwrap();
    let details = serde_json::json!({ "message": "all green" });
    let used = commit!(store, |c| callbacks::complete(
        c,
        t,
        "sha256:abc",
        true,
        &details
    ))
    .unwrap();
    assert_eq!((used.id, used.succeeded), (created.id, Some(true)));
    assert_eq!(used.details.unwrap().0, details);
    assert_conflict(attempt!(store, |c| callbacks::complete(
        c,
        t,
        "sha256:abc",
        false,
        &details
    )));
    assert_not_found(attempt!(store, |c| callbacks::complete(
        c,
        t,
        "sha256:other",
        true,
        &details
    )));
    let stale = NewCallback {
        token_hash: "sha256:old".into(),
        expires_at: Utc::now() - Duration::seconds(1),
        ..new.clone()
    };
    commit!(store, |c| callbacks::create(c, t, dep.id, &stale)).unwrap();
    assert_conflict(attempt!(store, |c| callbacks::complete(
        c,
        t,
        "sha256:old",
        true,
        &details
    )));
    // Token hashes are unique: reusing one is a conflict.
    assert_conflict(attempt!(store, |c| callbacks::create(c, t, dep.id, &new)));
}
