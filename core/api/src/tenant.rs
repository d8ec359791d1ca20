//! The caller, its tenant, the tenants of an organization, and the tenant's agents.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ids::TenantId;
use crate::people::PrincipalKind;

/// `GET /v1/whoami`: the caller as the API sees its token.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct Whoami {
    /// The tenant the token was issued for.
    #[schema(value_type = String, format = Uuid)]
    pub tenant: TenantId,
    /// The credential's or user's id.
    pub subject: String,
    /// Role names bound to the subject.
    pub roles: Vec<String>,
    /// A machine credential or a person (`user`).
    pub kind: PrincipalKind,
    /// A person's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A tenant: the unit of isolation every other resource belongs to.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Tenant {
    /// Its id.
    #[schema(value_type = String, format = Uuid)]
    pub id: TenantId,
    /// The organization it belongs to, if any.
    pub organization_id: Option<Uuid>,
    /// URL-safe short name (`[a-z0-9-]`, unique), sent as `X-Ferry-Tenant`.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Body of `POST /v1/tenants`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateTenant {
    /// URL-safe short name, unique across Ferry: `[a-z0-9-]`, at most 63, not starting with `-`.
    pub slug: String,
    /// Display name; the slug when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// People invited as the new tenant's Tenant Admins.
    #[serde(default)]
    pub admin_emails: Vec<String>,
}

/// An agent of the tenant, as stored.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Agent {
    /// The tenant it belongs to.
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    /// Its id.
    pub id: Uuid,
    /// The name deploy files use in `account:`; unique per tenant.
    pub identifier: String,
    /// The agent's version.
    pub agent_version: String,
    /// The version of the cluster it reaches.
    pub kubernetes_version: String,
    /// The hub replica holding the connection; `null` when disconnected.
    pub hub_replica: Option<String>,
    /// Its connection's session number.
    pub session: i64,
    /// When it last connected.
    pub connected_at: Option<DateTime<Utc>>,
    /// Its last recorded heartbeat.
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// When it last disconnected.
    pub disconnected_at: Option<DateTime<Utc>>,
    /// When it first connected.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Agent {
    /// Whether a replica currently holds the agent's connection (as last recorded).
    pub fn is_connected(&self) -> bool {
        self.hub_replica.is_some()
    }
}

/// `GET /v1/agents`: an agent and whether it is connected now.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct AgentStatus {
    /// The agent.
    #[serde(flatten)]
    pub agent: Agent,
    /// Held by a hub replica that recorded a heartbeat recently.
    pub connected: bool,
}
