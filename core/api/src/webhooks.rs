//! Webhook runs of a deployment and the tenant's webhook network settings.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::wire_enum;

wire_enum! {
    /// Where a delivery (a webhook call or a notification) is.
    #[derive(utoipa::ToSchema)]
    pub enum DeliveryStatus {
        /// To send (again), when due.
        Pending = "pending",
        /// Answered 2xx; its step waits for the callback.
        Delivered = "delivered",
        /// Final: done.
        Succeeded = "succeeded",
        /// Final: not delivered, or answered with a failure.
        Failed = "failed",
    }
}

impl DeliveryStatus {
    /// Whether svc-webhook is done with it.
    pub fn is_final(self) -> bool {
        !matches!(self, DeliveryStatus::Pending)
    }
}

#[cfg(feature = "sqlx")]
mod stored {
    use super::DeliveryStatus;
    use crate::sqlx_text;

    sqlx_text!(DeliveryStatus);
}

/// A callback's result.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct CallbackResult {
    /// Until when the callback URI works.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was used (by the caller, or closed because the call failed).
    pub used_at: Option<DateTime<Utc>>,
    /// What the caller reported.
    pub success: Option<bool>,
    /// The caller's message (Markdown), as sent.
    pub md_message: Option<String>,
}

impl CallbackResult {
    /// Where the callback is, in a few words: `success` or `failure` (the caller's report),
    /// `closed` (used without a report), or `waiting`.
    pub fn state(&self) -> &'static str {
        match (self.success, self.used_at) {
            (Some(true), _) => "success",
            (Some(false), _) => "failure",
            (None, None) => "waiting",
            (None, Some(_)) => "closed",
        }
    }
}

/// One webhook call of a deployment.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct WebhookRun {
    /// The run id (the `Ferry-Delivery-Id` the receiver saw).
    pub id: Uuid,
    /// The webhook's name in the deploy file.
    pub name: String,
    /// The target whose step or constraint called it.
    pub target: Option<String>,
    /// Which step: `step:<i>`, `before:<i>`, `after:<i>`, `redirect:<i>`, `shutdown:<i>`.
    pub step: String,
    /// `pending` (being sent or retried), `delivered` (answered 2xx, waiting for the
    /// callback), `succeeded` or `failed`.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: i32,
    /// Attempts allowed (`retryCount` + 1).
    pub max_attempts: i32,
    /// The last answer's HTTP status.
    pub last_status: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The outcome, one line.
    pub reason: Option<String>,
    /// When the call was made.
    pub created_at: DateTime<Utc>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
    /// The callback, when the webhook waits for one.
    pub callback: Option<CallbackResult>,
}

/// `GET /v1/deployments/{id}/webhooks`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct WebhookRuns {
    /// The calls, oldest first.
    pub items: Vec<WebhookRun>,
}

/// The tenant's network settings.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkSettings {
    /// Networks (CIDR, or one address) direct webhooks and notifications may reach besides
    /// public addresses, e.g. `10.20.0.0/16`. Everything else non-public (loopback, private,
    /// link-local, cloud metadata, carrier-grade NAT, benchmarking, reserved, multicast) is
    /// refused. Webhooks through an agent (`remoteNetworkAgent`) are not limited by this.
    pub allowed_networks: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callbacks_state_is_the_callers_report_else_whether_it_was_used() {
        let callback = |success, used: bool| CallbackResult {
            expires_at: None,
            used_at: used.then(Utc::now),
            success,
            md_message: None,
        };
        assert_eq!(callback(Some(true), true).state(), "success");
        assert_eq!(callback(Some(false), true).state(), "failure");
        assert_eq!(callback(None, false).state(), "waiting");
        assert_eq!(callback(None, true).state(), "closed");
    }
}
