//! The tenant's audit log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::ids::TenantId;

/// Query of `GET /v1/audit`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this actor (a user id, a credential's client id, or a service such as `svc-scheduler`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Only this action (`credential.revoke`), or every action under a prefix ending in `.`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Only this kind of resource (`credential`, `deployment`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_kind: Option<String>,
    /// Only this resource id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// At or after this instant (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Before this instant (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// The `next` cursor of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// Page size, 1..=200 (default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// One recorded action.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Increases with every entry; pass the smallest one seen as `before` for the next page.
    pub id: i64,
    /// The tenant it belongs to.
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    /// Who did it: a user id, a credential's client id, or a service name.
    pub actor: String,
    /// What was done, e.g. `deployment.create`.
    pub action: String,
    /// The kind of resource acted on, e.g. `credential`.
    pub resource_kind: String,
    /// The resource's id or name.
    pub resource_id: String,
    /// What the action recorded about itself; each action has its own fields (never a
    /// secret's value).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A page of the audit log.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct AuditPage {
    /// Entries, newest first.
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; absent on the last page (as a deployments
    /// page's `next`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}
