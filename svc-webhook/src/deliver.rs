//! One attempt of one delivery, and what it leaves behind. The delivery row is leased to this
//! replica (its attempt counted) before anything is sent; the request is built at send time
//! (`{{secrets.X}}` opened here, never stored or logged), sent directly through the network
//! guard with the tenant's policy or through the named agent's relay, and its answer decides:
//! success, another attempt later (connection failures, timeouts, 5xx and 429, honouring
//! `Retry-After`), or failure. The result and the scheduler's `webhook.completed` commit in one
//! transaction, only while the lease is still this replica's.

use crate::metrics::WebhookMetrics;
use crate::notify;
use crate::policy::{self, Backoff};
use bytes::Bytes;
use chrono::Utc;
use ferry_bus::messages::{NetworkMode, WebhookCompleted, WebhookRequested};
use ferry_bus::{Envelope, SchedulerMessage};
use ferry_netguard::{Cidr, Policy};
use ferry_outbound::secrets::{self, Unseal};
use ferry_outbound::transport::{HttpRequest, HttpTransport, SendOptions, host_of};
use ferry_store::webhooks::{self, Attempt, Delivery, DeliveryKind, DeliveryStatus};
use ferry_store::{Store, StoreError, TenantId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a tenant's network policy is reused before it is read again.
const POLICY_TTL: Duration = Duration::from_secs(5);
/// Characters of a receiver's answer kept in a failure's reason.
const SNIPPET_CHARS: usize = 200;
/// Attempts beyond `max_attempts` a delivery may get when replicas died while sending it.
const CRASH_ALLOWANCE: i32 = 2;

/// How deliveries are made.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// This replica's name in leases.
    pub owner: String,
    /// How long a lease lasts: longer than an attempt can take.
    pub lease: Duration,
    /// The time limit of one attempt (redirects included).
    pub attempt_timeout: Duration,
    /// Redirects a direct send follows (each checked by the guard).
    pub max_redirects: usize,
    /// Retry spacing.
    pub backoff: Backoff,
    /// Networks every tenant may reach besides public addresses (a service setting, e.g. for
    /// development); the tenant's own settings add to it.
    pub allowed_networks: Vec<Cidr>,
}

/// What sending needs. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    /// The database.
    pub store: Store,
    /// Sends requests.
    pub transport: HttpTransport,
    /// Opens tenant secrets.
    pub key: Arc<dyn Unseal>,
    /// Counts deliveries.
    pub metrics: WebhookMetrics,
    /// Tuning.
    pub config: Arc<DeliveryConfig>,
    policies: Arc<Mutex<HashMap<TenantId, (Instant, Policy)>>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context.
    pub fn new(
        store: Store,
        transport: HttpTransport,
        key: Arc<dyn Unseal>,
        metrics: WebhookMetrics,
        config: DeliveryConfig,
    ) -> Context {
        Context {
            store,
            transport,
            key,
            metrics,
            config: Arc::new(config),
            policies: Arc::default(),
        }
    }

    /// The addresses `tenant`'s direct requests may reach.
    async fn policy(&self, tenant: TenantId) -> Result<Policy, StoreError> {
        if let Some((at, p)) = self
            .policies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&tenant)
            && at.elapsed() < POLICY_TTL
        {
            return Ok(p.clone());
        }
        let stored = webhooks::allowed_networks(&self.store, tenant).await?;
        // Stored networks were validated by the API; one that no longer parses is skipped.
        let networks = stored
            .iter()
            .filter_map(|n| n.parse::<Cidr>().ok())
            .chain(self.config.allowed_networks.iter().copied());
        let policy = Policy::allowing(networks);
        self.policies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(tenant, (Instant::now(), policy.clone()));
        Ok(policy)
    }
}

/// What one attempt came to.
#[derive(Debug)]
enum Verdict {
    /// A 2xx answer.
    Success { status: u16, host: String },
    /// Worth another attempt, after at least `after` when the receiver said so.
    Retry {
        attempt: Attempt,
        reason: String,
        after: Option<Duration>,
    },
    /// Final failure.
    Fail { attempt: Attempt, reason: String },
}

fn fail(reason: impl Into<String>) -> Verdict {
    let reason = reason.into();
    Verdict::Fail {
        attempt: Attempt {
            status: None,
            error: Some(reason.clone()),
        },
        reason,
    }
}

/// A request ready to send: where, how, and for the metrics which way.
pub(crate) struct Prepared {
    pub(crate) request: HttpRequest,
    pub(crate) agent: Option<String>,
}

/// Builds the webhook call of `d` (attempt `d.attempts`), its secrets opened.
async fn prepare_webhook(ctx: &Context, d: &Delivery) -> Result<Prepared, String> {
    let request: WebhookRequested = serde_json::from_value(d.request.0.clone())
        .map_err(|e| format!("the stored request does not decode: {e}"))?;
    let call = &request.call;
    let mut texts: Vec<&str> = vec![&call.uri];
    texts.extend(call.headers.iter().map(|(_, v)| v.as_str()));
    texts.extend(call.body.as_deref());
    let mut opened = secrets::resolve_all(&ctx.store, ctx.key.as_ref(), d.tenant_id, &texts)
        .await
        .map_err(|e| e.to_string())?
        .into_iter();
    let uri = opened.next().unwrap_or_default();
    let mut headers: Vec<(String, String)> = call
        .headers
        .iter()
        .map(|(name, _)| (name.clone(), opened.next().unwrap_or_default()))
        .collect();
    let body = call
        .body
        .as_ref()
        .map(|_| opened.next().unwrap_or_default());
    policy::check_call(call, &uri, &headers)?;
    let has = |headers: &[(String, String)], name: &str| {
        headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    if let Some(b) = &body
        && !has(&headers, "content-type")
    {
        let json = serde_json::from_str::<serde_json::Value>(b).is_ok();
        let kind = if json {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        headers.push(("Content-Type".into(), kind.into()));
    }
    if !has(&headers, "user-agent") {
        headers.push((
            "User-Agent".into(),
            concat!("ferry-webhook/", env!("CARGO_PKG_VERSION")).into(),
        ));
    }
    headers.push(("Ferry-Delivery-Id".into(), d.id.to_string()));
    headers.push(("Ferry-Attempt".into(), d.attempts.to_string()));
    let agent = match call.network_mode {
        NetworkMode::Direct => None,
        NetworkMode::RemoteNetworkAgent => Some(
            call.agent_identifier
                .clone()
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| request.account.clone()),
        ),
    };
    if agent.as_deref() == Some("") {
        return Err("networkMode remoteNetworkAgent needs an agentIdentifier".into());
    }
    let method = http::Method::from_bytes(call.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("method {:?} is not valid", call.method))?;
    Ok(Prepared {
        request: HttpRequest {
            method,
            url: uri,
            headers,
            body: body.map(Bytes::from),
        },
        agent,
    })
}

/// Sends attempt `d.attempts` of `d` and judges the answer.
async fn attempt(ctx: &Context, d: &Delivery) -> Verdict {
    let now = Utc::now();
    if let Some(deadline) = d.deadline
        && now >= deadline
    {
        return fail(format!(
            "not sent: its deadline {} passed",
            deadline.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    if d.attempts > d.max_attempts + CRASH_ALLOWANCE {
        return fail(format!(
            "gave up after {} attempts (replicas were lost while sending it)",
            d.attempts - 1
        ));
    }
    let prepared = match d.kind {
        DeliveryKind::Webhook => prepare_webhook(ctx, d).await,
        DeliveryKind::Notification => notify::prepare(ctx, d).await,
    };
    let prepared = match prepared {
        Ok(p) => p,
        Err(reason) => return fail(reason),
    };
    let policy = match ctx.policy(d.tenant_id).await {
        Ok(p) => p,
        Err(e) => {
            return Verdict::Retry {
                attempt: Attempt::default(),
                reason: format!("reading the tenant's network settings: {e}"),
                after: None,
            };
        }
    };
    let mut timeout = ctx.config.attempt_timeout;
    if let Some(left) = d.deadline.and_then(|at| (at - now).to_std().ok()) {
        timeout = timeout.min(left);
    }
    let host = host_of(&prepared.request.url);
    let mode = if prepared.agent.is_some() {
        "agent"
    } else {
        "direct"
    };
    let started = Instant::now();
    let options = SendOptions {
        policy: &policy,
        timeout,
        max_redirects: ctx.config.max_redirects,
    };
    let answer = ctx
        .transport
        .send_with(
            d.tenant_id,
            prepared.agent.as_deref(),
            prepared.request,
            &options,
        )
        .await;
    ctx.metrics
        .sent(d.kind.as_str(), mode, started.elapsed().as_secs_f64());
    match answer {
        Ok(a) if (200..300).contains(&a.status) => {
            ctx.metrics.attempt(d.kind.as_str(), "2xx");
            Verdict::Success {
                status: a.status,
                host,
            }
        }
        Ok(a) => {
            let class = if a.status >= 500 { "5xx" } else { "4xx" };
            ctx.metrics.attempt(d.kind.as_str(), class);
            let said = policy::snippet(&a.body, SNIPPET_CHARS);
            let reason = if said.is_empty() {
                format!("HTTP {} from {host}", a.status)
            } else {
                format!("HTTP {} from {host}: {said}", a.status)
            };
            let attempt = Attempt {
                status: Some(i32::from(a.status)),
                error: Some(reason.clone()),
            };
            if policy::retryable_status(a.status) {
                Verdict::Retry {
                    attempt,
                    reason,
                    after: policy::retry_after(&a.headers, Utc::now()),
                }
            } else {
                Verdict::Fail { attempt, reason }
            }
        }
        Err(e) => {
            ctx.metrics.attempt(d.kind.as_str(), "error");
            let reason = e.to_string();
            let attempt = Attempt {
                status: None,
                error: Some(reason.clone()),
            };
            if e.is_transient() {
                Verdict::Retry {
                    attempt,
                    reason,
                    after: None,
                }
            } else {
                Verdict::Fail { attempt, reason }
            }
        }
    }
}

/// Makes attempt `d.attempts` of the leased delivery `d` and records it.
pub async fn deliver(ctx: &Context, d: Delivery) {
    let verdict = attempt(ctx, &d).await;
    if let Err(e) = record(ctx, &d, verdict).await {
        // The lease expires and another attempt is made (receivers de-duplicate by
        // Ferry-Delivery-Id).
        tracing::warn!(delivery = %d.id, error = %e, "delivery not recorded");
    }
}

/// Why a result could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The database failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The outbox refused the completion.
    #[error("outbox: {0}")]
    Bus(#[from] ferry_bus::BusError),
    /// The stored request does not decode.
    #[error("stored request: {0}")]
    Decode(#[from] serde_json::Error),
}

async fn record(ctx: &Context, d: &Delivery, verdict: Verdict) -> Result<(), RecordError> {
    let kind = d.kind.as_str();
    let owner = ctx.config.owner.as_str();
    let (success, attempt, reason) = match verdict {
        Verdict::Success { status, host } => (
            true,
            Attempt {
                status: Some(i32::from(status)),
                error: None,
            },
            format!("HTTP {status} from {host}"),
        ),
        Verdict::Retry {
            attempt,
            reason,
            after,
        } => {
            let delay = ctx
                .config
                .backoff
                .delay(d.attempts.max(1) as u32, after, rand::random());
            let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
            let in_time = d.deadline.is_none_or(|deadline| at < deadline);
            if d.attempts < d.max_attempts && in_time {
                let mut tx = ctx.store.begin().await?;
                if webhooks::retry_at(&mut tx, d.tenant_id, d.id, owner, at, &attempt).await? {
                    tx.commit().await.map_err(StoreError::from)?;
                    ctx.metrics.retried(kind);
                    tracing::info!(delivery = %d.id, attempt = d.attempts, in_ms = delay.as_millis() as u64, %reason, "delivery will be retried");
                }
                return Ok(());
            }
            let reason = if d.max_attempts > 1 {
                format!("failed after {} attempts: {reason}", d.attempts)
            } else {
                reason
            };
            (false, attempt, reason)
        }
        Verdict::Fail { attempt, reason } => (false, attempt, reason),
    };
    let mut tx = ctx.store.begin().await?;
    let mut completion = None;
    let status = match d.kind {
        DeliveryKind::Notification if success => DeliveryStatus::Succeeded,
        DeliveryKind::Notification => DeliveryStatus::Failed,
        DeliveryKind::Webhook => {
            let request: WebhookRequested = serde_json::from_value(d.request.0.clone())?;
            let callback = request.call.callback_uri.is_some();
            let message = |success: bool, reason: &str| {
                SchedulerMessage::WebhookCompleted(WebhookCompleted {
                    deployment_id: request.deployment_id,
                    target: request.target.clone(),
                    step_index: request.step_index,
                    webhook_id: request.webhook_id,
                    success,
                    reason: Some(reason.to_string()),
                })
            };
            match (success, callback) {
                (true, true) => DeliveryStatus::Delivered,
                (true, false) => {
                    completion = Some(message(true, &reason));
                    DeliveryStatus::Succeeded
                }
                (false, with_callback) => {
                    // With a callback, the step waits for it: close it so a late one cannot
                    // report, and tell the scheduler, unless the callback came first.
                    if !with_callback
                        || webhooks::close_callback(&mut tx, d.tenant_id, d.id, &reason).await?
                    {
                        completion = Some(message(false, &reason));
                    }
                    DeliveryStatus::Failed
                }
            }
        }
    };
    // A delivered call's reason is its answer; whether its callback came is the callback's own
    // state, shown beside it.
    if !webhooks::finish(&mut tx, d.tenant_id, d.id, owner, status, &attempt, &reason).await? {
        // Another replica holds it now (this attempt outlived the lease): its result rules.
        tracing::info!(delivery = %d.id, "delivery taken over by another replica; result dropped");
        return Ok(());
    }
    if let Some(message) = completion {
        let envelope = Envelope::new(d.tenant_id.as_uuid(), message).with_correlation_id(d.id);
        ferry_bus::outbox::enqueue(&mut tx, &envelope).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    let took = (Utc::now() - d.created_at).to_std().unwrap_or_default();
    ctx.metrics
        .finished(kind, status.as_str(), took.as_secs_f64());
    tracing::info!(delivery = %d.id, kind, %status, attempts = d.attempts, reason = %reason, "delivery finished");
    Ok(())
}
