//! Notifications: deployment events on `ferry.events` reach the tenant's endpoints that want
//! them — Slack's JSON, or Ferry's JSON signed with the endpoint's key — once per event however
//! often the event is redelivered, and never another tenant's endpoints.

use crate::receiver::Receiver;
use crate::support::{Bench, WAIT};
use ferry_bus::messages::Status;
use ferry_bus::{DeploymentEvent, Envelope, outbox};
use ferry_store::TenantId;
use ferry_store::notifications::{self, EndpointKind, NewEndpoint, NotifyEvent};
use ferry_store::webhooks::DeliveryStatus;
use ferry_testkit::eventually;
use uuid::Uuid;

async fn endpoint(
    bench: &Bench,
    tenant: TenantId,
    name: &str,
    kind: EndpointKind,
    url: String,
    events: Vec<NotifyEvent>,
) -> Uuid {
    let mut tx = bench.store.begin().await.unwrap();
    let e = notifications::create(
        &mut tx,
        tenant,
        &NewEndpoint {
            name: name.into(),
            kind,
            url,
            events,
            signing_secret: (kind == EndpointKind::Generic).then(|| "hook_key".to_string()),
            created_by: "alice".into(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    e.id
}

async fn publish(bench: &Bench, tenant: TenantId, event: &Envelope<DeploymentEvent>) {
    let _ = tenant;
    let mut tx = bench.store.begin().await.unwrap();
    outbox::enqueue(&mut tx, event).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn deployment_events_reach_subscribed_endpoints_signed_and_once() {
    let bench = Bench::new().await;
    bench.allow(&["127.0.0.1/32"]).await;
    bench.secret("hook_key", "k3y").await;
    let slack = Receiver::start(vec![]).await;
    let generic = Receiver::start(vec![]).await;
    let quiet = Receiver::start(vec![]).await;
    endpoint(
        &bench,
        bench.tenant,
        "team-slack",
        EndpointKind::Slack,
        slack.url("/services/T/B/X"),
        vec![NotifyEvent::Started, NotifyEvent::Failed],
    )
    .await;
    endpoint(
        &bench,
        bench.tenant,
        "audit",
        EndpointKind::Generic,
        generic.url("/ferry"),
        vec![NotifyEvent::Failed, NotifyEvent::WaitingForApproval],
    )
    .await;
    // Another tenant's endpoint wants everything; it must hear nothing of this tenant.
    let other = Bench::tenant(&bench.store, "globex").await;
    endpoint(
        &bench,
        other,
        "theirs",
        EndpointKind::Slack,
        quiet.url("/theirs"),
        vec![
            NotifyEvent::Started,
            NotifyEvent::Failed,
            NotifyEvent::WaitingForApproval,
        ],
    )
    .await;
    let worker = bench.start_worker();
    let d = bench.deployment.as_uuid();

    let started = Envelope::new(
        bench.tenant.as_uuid(),
        DeploymentEvent::DeploymentStatus {
            deployment_id: d,
            status: Status::Running,
            reason: None,
        },
    );
    publish(&bench, bench.tenant, &started).await;
    // Running again after a pause is not a second start.
    publish(
        &bench,
        bench.tenant,
        &Envelope::new(
            bench.tenant.as_uuid(),
            DeploymentEvent::DeploymentStatus {
                deployment_id: d,
                status: Status::Running,
                reason: None,
            },
        ),
    )
    .await;
    let waiting = Envelope::new(
        bench.tenant.as_uuid(),
        DeploymentEvent::TargetStatus {
            deployment_id: d,
            target: "prod".into(),
            status: Status::Paused,
            reason: Some("before deployment: waiting for approval".into()),
        },
    );
    publish(&bench, bench.tenant, &waiting).await;
    let failed = Envelope::new(
        bench.tenant.as_uuid(),
        DeploymentEvent::DeploymentStatus {
            deployment_id: d,
            status: Status::Failed,
            reason: Some("prod: webhook \"smoke\" failed".into()),
        },
    );
    publish(&bench, bench.tenant, &failed).await;
    // A deployment fails once: the same news again is not a second notification.
    let again = Envelope::new(bench.tenant.as_uuid(), failed.payload.clone());
    publish(&bench, bench.tenant, &again).await;

    eventually("every notification is delivered", WAIT, || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE kind = 'notification' AND status = 'succeeded'")
            .fetch_one(&bench.db.pool).await.unwrap();
        (n == 4).then_some(())
    }).await;
    eventually("every event is consumed", WAIT, || async {
        let n = worker
            .metrics
            .handled("notify", "event.deployment_status.v1");
        (n >= 4 && worker.metrics.handled("notify", "event.target_status.v1") >= 1).then_some(())
    })
    .await;

    let texts: Vec<String> = slack
        .received()
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            v["text"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts.contains(&format!("Deployment of hello-ferry started [{d}]")),
        "{texts:?}"
    );
    assert!(
        texts.contains(&format!(
            "Deployment of hello-ferry failed: prod: webhook \"smoke\" failed [{d}]"
        )),
        "{texts:?}"
    );

    let got = generic.received();
    assert_eq!(got.len(), 2);
    for r in &got {
        let signature = r.header("ferry-signature").unwrap();
        let (t, mac) = signature.split_once(",sha256=").unwrap();
        let t: i64 = t.trim_start_matches("t=").parse().unwrap();
        assert_eq!(
            format!("t={t},sha256={mac}"),
            ferry_svc_webhook::policy::signature(b"k3y", t, &r.body)
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["deployment"]["id"], d.to_string());
        assert_eq!(v["id"], r.header("ferry-delivery-id").unwrap());
    }
    let events: Vec<String> = got
        .iter()
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        events.contains(&"waiting_for_approval".to_string())
            && events.contains(&"failed".to_string()),
        "{events:?}"
    );
    assert!(
        quiet.received().is_empty(),
        "another tenant's endpoint heard this tenant's events"
    );
    let statuses: Vec<DeliveryStatus> =
        sqlx::query_scalar("SELECT status FROM webhook_deliveries WHERE kind = 'notification'")
            .fetch_all(&bench.db.pool)
            .await
            .unwrap();
    assert_eq!(statuses.len(), 4);
    worker.stop().await;
}
