//! Notifications: deployment events (`ferry.events`, through svc-webhook's notify queue) turned
//! into deliveries to the tenant's endpoints that want them, and the body each endpoint gets:
//! Slack-compatible incoming-webhook JSON, or Ferry's JSON signed with HMAC-SHA256
//! (`Ferry-Signature: t=<unix seconds>,sha256=<hex>` over `"<t>.<body>"`, the key being the
//! tenant secret the endpoint names).
//!
//! Each (endpoint, event) is one delivery whose id is derived from both, so a redelivered event
//! changes nothing: `started`, `succeeded` and `failed` once per deployment (a deployment that
//! pauses and resumes is not "started" again); `waiting_for_approval` and `rolled_back` once
//! per event.

use crate::deliver::{Context, deliver};
use crate::policy;
use bytes::Bytes;
use chrono::Utc;
use ferry_bus::messages::Status;
use ferry_bus::{DeploymentEvent, Handler, HandlerError, Incoming};
use ferry_outbound::secrets;
use ferry_outbound::transport::HttpRequest;
use ferry_store::notifications::{self, EndpointKind, NotifyEvent};
use ferry_store::webhooks::{self, Delivery, DeliveryKind, NewDelivery};
use ferry_store::{DeploymentId, StoreError, TenantId, deployments};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// Attempts a notification gets.
const NOTIFY_ATTEMPTS: i32 = 5;
/// How long a notification may take to be delivered, retries included.
const NOTIFY_DEADLINE: chrono::Duration = chrono::Duration::hours(1);

/// What a notification delivery stores (and the generic body carries).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// The event.
    pub event: NotifyEvent,
    /// The deployment.
    pub deployment_id: Uuid,
    /// Its application.
    pub application: String,
    /// The target, for target events.
    pub target: Option<String>,
    /// Why, when the event has a reason.
    pub reason: Option<String>,
    /// When the event happened.
    pub occurred_at: chrono::DateTime<Utc>,
}

/// The notification an event means, with the key that makes its delivery unique per
/// endpoint, if it means one.
pub fn classify(event: &DeploymentEvent, event_id: Uuid) -> Option<(NotifyEvent, String)> {
    let once = |e: NotifyEvent, d: Uuid| Some((e, format!("{d}:{e}")));
    match event {
        DeploymentEvent::DeploymentStatus {
            deployment_id,
            status,
            ..
        } => match status {
            Status::Running => once(NotifyEvent::Started, *deployment_id),
            Status::Succeeded => once(NotifyEvent::Succeeded, *deployment_id),
            Status::Failed => once(NotifyEvent::Failed, *deployment_id),
            Status::RolledBack => Some((NotifyEvent::RolledBack, event_id.to_string())),
            _ => None,
        },
        DeploymentEvent::TargetStatus { status, reason, .. } => match status {
            Status::Paused
                if reason
                    .as_deref()
                    .is_some_and(|r| r.contains("waiting for approval")) =>
            {
                Some((NotifyEvent::WaitingForApproval, event_id.to_string()))
            }
            Status::RolledBack => Some((NotifyEvent::RolledBack, event_id.to_string())),
            _ => None,
        },
        DeploymentEvent::Step { .. } => None,
    }
}

/// The delivery id of `key` for `endpoint`: the same inputs always give the same id.
pub fn delivery_id(endpoint: Uuid, key: &str) -> Uuid {
    let digest = Sha256::digest(format!("ferry-notification:{endpoint}:{key}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // Version 8 (custom), RFC 4122 variant.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

fn headline(n: &Notice) -> String {
    let what = match n.event {
        NotifyEvent::Started => "started",
        NotifyEvent::WaitingForApproval => "is waiting for approval",
        NotifyEvent::Succeeded => "succeeded",
        NotifyEvent::Failed => "failed",
        NotifyEvent::RolledBack => "was rolled back",
    };
    let target = n
        .target
        .as_deref()
        .map(|t| format!(" (target {t})"))
        .unwrap_or_default();
    let reason = n
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    format!(
        "Deployment of {} {what}{target}{reason} [{}]",
        n.application, n.deployment_id
    )
}

/// The body of `notice` for an endpoint of `kind`, delivery `id`.
pub fn body(kind: EndpointKind, id: Uuid, tenant: TenantId, notice: &Notice) -> serde_json::Value {
    match kind {
        EndpointKind::Slack => serde_json::json!({ "text": headline(notice) }),
        EndpointKind::Generic => serde_json::json!({
            "id": id,
            "tenant": tenant,
            "event": notice.event,
            "deployment": { "id": notice.deployment_id, "application": notice.application },
            "target": notice.target,
            "reason": notice.reason,
            "occurred_at": notice.occurred_at,
            "text": headline(notice),
        }),
    }
}

/// Builds the request of notification delivery `d`.
pub(crate) async fn prepare(
    ctx: &Context,
    d: &Delivery,
) -> Result<crate::deliver::Prepared, String> {
    let notice: Notice = serde_json::from_value(d.request.0.clone())
        .map_err(|e| format!("the stored notification does not decode: {e}"))?;
    let endpoint_id = d.endpoint_id.ok_or("the notification names no endpoint")?;
    let endpoint = match notifications::get(&ctx.store, d.tenant_id, endpoint_id).await {
        Ok(e) => e,
        Err(e) if e.is_not_found() => return Err("the notification endpoint was removed".into()),
        Err(e) => return Err(format!("reading the notification endpoint: {e}")),
    };
    let payload = serde_json::to_vec(&body(endpoint.kind, d.id, d.tenant_id, &notice))
        .map_err(|e| e.to_string())?;
    let mut headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        (
            "User-Agent".to_string(),
            concat!("ferry-webhook/", env!("CARGO_PKG_VERSION")).to_string(),
        ),
        ("Ferry-Delivery-Id".to_string(), d.id.to_string()),
        ("Ferry-Attempt".to_string(), d.attempts.to_string()),
    ];
    if endpoint.kind == EndpointKind::Generic {
        let name = endpoint
            .signing_secret
            .clone()
            .ok_or("the endpoint has no signing secret")?;
        let refs = BTreeMap::from([(name.clone(), name.clone())]);
        let opened = secrets::unseal(&ctx.store, ctx.key.as_ref(), d.tenant_id, &refs)
            .await
            .map_err(|e| format!("signing key: {e}"))?;
        let key = opened.get(&name).unwrap_or_default();
        headers.push((
            "Ferry-Signature".to_string(),
            policy::signature(key.as_bytes(), Utc::now().timestamp(), &payload),
        ));
    }
    Ok(crate::deliver::Prepared {
        request: HttpRequest {
            method: http::Method::POST,
            url: endpoint.url,
            headers,
            body: Some(Bytes::from(payload)),
        },
        agent: None,
    })
}

/// Consumes deployment events and fans them out to the tenant's endpoints.
#[derive(Debug)]
pub struct EventHandler {
    ctx: Context,
    tracker: TaskTracker,
    room: Arc<Semaphore>,
}

impl EventHandler {
    /// A handler sending with `ctx`, its sends tracked by `tracker` and bounded by `room`.
    pub fn new(ctx: Context, tracker: TaskTracker, room: Arc<Semaphore>) -> EventHandler {
        EventHandler { ctx, tracker, room }
    }
}

fn store_error(e: StoreError) -> HandlerError {
    match e {
        StoreError::Database(db) => HandlerError::from(db),
        StoreError::NotFound { .. } | StoreError::Invalid { .. } => HandlerError::permanent(e),
        other => HandlerError::retryable(other),
    }
}

impl Handler for EventHandler {
    type Message = DeploymentEvent;

    async fn handle(&self, message: Incoming<DeploymentEvent>) -> Result<(), HandlerError> {
        let envelope = message.envelope;
        let Some((event, key)) = classify(&envelope.payload, envelope.id) else {
            return Ok(());
        };
        let tenant = TenantId(envelope.tenant_id);
        let endpoints = notifications::subscribed(&self.ctx.store, tenant, event)
            .await
            .map_err(store_error)?;
        if endpoints.is_empty() {
            return Ok(());
        }
        let deployment_id = envelope.payload.deployment_id();
        let application =
            match deployments::get(&self.ctx.store, tenant, DeploymentId(deployment_id)).await {
                Ok(d) => d.application,
                // The deployment is gone (its tenant deleted it): nothing to tell.
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(store_error(e)),
            };
        let (target, reason) = match &envelope.payload {
            DeploymentEvent::DeploymentStatus { reason, .. } => (None, reason.clone()),
            DeploymentEvent::TargetStatus { target, reason, .. } => {
                (Some(target.clone()), reason.clone())
            }
            DeploymentEvent::Step { .. } => (None, None),
        };
        let notice = Notice {
            event,
            deployment_id,
            application,
            target: target.clone(),
            reason,
            occurred_at: envelope.occurred_at,
        };
        let request = serde_json::to_value(&notice).map_err(HandlerError::permanent)?;
        for endpoint in endpoints {
            let permit = self
                .room
                .clone()
                .acquire_owned()
                .await
                .map_err(HandlerError::retryable)?;
            let new = NewDelivery {
                id: delivery_id(endpoint.id, &key),
                kind: DeliveryKind::Notification,
                deployment_id: DeploymentId(deployment_id),
                target: target.clone(),
                step_key: String::new(),
                name: endpoint.name.clone(),
                endpoint_id: Some(endpoint.id),
                request: request.clone(),
                max_attempts: NOTIFY_ATTEMPTS,
                deadline: Some(Utc::now() + NOTIFY_DEADLINE),
            };
            let mut tx = self.ctx.store.begin().await.map_err(store_error)?;
            let created = webhooks::create_leased(
                &mut tx,
                tenant,
                &new,
                &self.ctx.config.owner,
                self.ctx.config.lease,
            )
            .await
            .map_err(store_error)?;
            tx.commit().await?;
            if let Some(delivery) = created {
                let ctx = self.ctx.clone();
                self.tracker.spawn(async move {
                    deliver(&ctx, delivery).await;
                    drop(permit);
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_map_to_notifications_with_stable_keys() {
        let d = Uuid::now_v7();
        let e = Uuid::now_v7();
        let status = |s: Status| DeploymentEvent::DeploymentStatus {
            deployment_id: d,
            status: s,
            reason: None,
        };
        assert_eq!(
            classify(&status(Status::Running), e),
            Some((NotifyEvent::Started, format!("{d}:started")))
        );
        assert_eq!(
            classify(&status(Status::Running), Uuid::now_v7()),
            classify(&status(Status::Running), e),
            "a deployment that resumes is not started again"
        );
        assert_eq!(
            classify(&status(Status::Failed), e).unwrap().0,
            NotifyEvent::Failed
        );
        assert_eq!(classify(&status(Status::Paused), e), None);
        let paused = |reason: &str| DeploymentEvent::TargetStatus {
            deployment_id: d,
            target: "prod".into(),
            status: Status::Paused,
            reason: Some(reason.into()),
        };
        assert_eq!(
            classify(
                &paused("before deployment: waiting for approval (roles: sre)"),
                e
            ),
            Some((NotifyEvent::WaitingForApproval, e.to_string()))
        );
        assert_eq!(classify(&paused("paused for 5 minutes"), e), None);
        let a = delivery_id(d, "k");
        assert_eq!(a, delivery_id(d, "k"));
        assert_ne!(a, delivery_id(d, "j"));
        assert_eq!(a.get_version_num(), 8);
    }

    #[test]
    fn slack_gets_text_and_generic_gets_the_event() {
        let notice = Notice {
            event: NotifyEvent::Failed,
            deployment_id: Uuid::nil(),
            application: "Potato Facts".into(),
            target: Some("prod".into()),
            reason: Some("webhook \"smoke\" failed".into()),
            occurred_at: Utc::now(),
        };
        let slack = body(
            EndpointKind::Slack,
            Uuid::nil(),
            TenantId::default(),
            &notice,
        );
        assert_eq!(
            slack["text"],
            "Deployment of Potato Facts failed (target prod): webhook \"smoke\" failed [00000000-0000-0000-0000-000000000000]"
        );
        let generic = body(
            EndpointKind::Generic,
            Uuid::nil(),
            TenantId::default(),
            &notice,
        );
        assert_eq!(generic["event"], "failed");
        assert_eq!(generic["deployment"]["application"], "Potato Facts");
    }
}
