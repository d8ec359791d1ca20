//! Notification endpoints: where deployment events are sent.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::wire_enum;

wire_enum! {
    /// The body's format.
    #[derive(utoipa::ToSchema)]
    pub enum EndpointKind {
        /// Slack-compatible incoming-webhook JSON (`{"text": …}`).
        Slack = "slack",
        /// Ferry's JSON, signed (`Ferry-Signature: t=<unix seconds>,sha256=<hex>`).
        Generic = "generic",
    }
}

wire_enum! {
    /// The deployment events a tenant may be notified of.
    #[derive(utoipa::ToSchema)]
    pub enum NotifyEvent {
        /// A deployment started.
        Started = "started",
        /// A target waits for a manual approval.
        WaitingForApproval = "waiting_for_approval",
        /// A deployment succeeded.
        Succeeded = "succeeded",
        /// A deployment failed.
        Failed = "failed",
        /// A deployment or a target was rolled back.
        RolledBack = "rolled_back",
    }
}

#[cfg(feature = "sqlx")]
mod stored {
    use super::{EndpointKind, NotifyEvent};
    use crate::sqlx_text;

    sqlx_text!(EndpointKind);
    sqlx_text!(NotifyEvent);
}

// Kind and events are text here, not the enums, so that the server answers a value it does
// not know with the field's rules.
/// `POST /v1/notification-endpoints`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// Unique in the tenant: 1 to 63 of a-z, 0-9, '-'.
    pub name: String,
    /// `slack` (incoming-webhook JSON, `{"text": …}`) or `generic` (Ferry's JSON, signed).
    pub kind: String,
    /// Where to POST (http or https, at most 2048 bytes). Reached directly through the network
    /// guard: a non-public address needs the tenant's network settings to allow it.
    pub url: String,
    /// Which events: `started`, `waiting_for_approval`, `succeeded`, `failed`, `rolled_back`.
    pub events: Vec<String>,
    /// For `generic`: the name of the tenant secret whose value keys the HMAC-SHA256 signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

/// An endpoint as shown (the signing key's value never is).
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct EndpointView {
    /// Its id.
    pub id: Uuid,
    /// Its name, unique in the tenant.
    pub name: String,
    /// The body's format.
    pub kind: EndpointKind,
    /// Where events are POSTed.
    pub url: String,
    /// The events sent.
    pub events: Vec<NotifyEvent>,
    /// The name of the tenant secret that keys the signature (`generic` endpoints), never its
    /// value.
    pub signing_secret: Option<String>,
    /// The id of the person or credential that registered it.
    pub created_by: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// `GET /v1/notification-endpoints`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct EndpointList {
    /// The endpoints, by name.
    pub items: Vec<EndpointView>,
}
