//! The versioned REST API under `/v1`: one router per resource, merged here. Every handler
//! takes a [`Principal`](crate::auth::Principal), so nothing under `/v1` is reachable without a
//! valid token (a machine credential's `ferry-api` token, or a person's token of the sign-in
//! issuer for a tenant they belong to), and the tenant of every query is the principal's. The
//! one exception is [`schema`], the deploy file's JSON Schema, which holds no tenant data.
//!
//! State changes follow one shape: check, then in one transaction write the rows, the outbox
//! message ([`enqueue`]) and the audit entry ([`audit`]), and commit.

pub mod actions;
pub mod analysis;
pub mod audit_log;
pub mod credentials;
pub mod deployments;
pub mod events;
pub mod limits;
pub mod metric_providers;
pub mod notifications;
pub mod remote_manifests;
pub mod roles;
pub mod schema;
pub mod secrets;
pub mod tenant;
pub mod tenants;
pub mod users;
pub mod webhooks;
pub mod whoami;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use ferry_bus::Envelope;
use ferry_bus::messages::SchedulerMessage;
use ferry_store::audit::{self, NewAuditEntry};
use sqlx::PgConnection;

/// All `/v1` routes.
pub fn router() -> Router<AppState> {
    Router::new().nest(
        "/v1",
        Router::new()
            .merge(whoami::router())
            .merge(deployments::router())
            .merge(events::router())
            .merge(actions::router())
            .merge(tenant::router())
            .merge(tenants::router())
            .merge(users::router())
            .merge(roles::router())
            .merge(credentials::router())
            .merge(secrets::router())
            .merge(metric_providers::router())
            .merge(analysis::router())
            .merge(webhooks::router())
            .merge(notifications::router())
            .merge(audit_log::router())
            .merge(schema::router()),
    )
}

/// Writes `message` for the scheduler to the outbox, in the caller's transaction.
pub(crate) async fn enqueue(
    conn: &mut PgConnection,
    principal: &Principal,
    message: SchedulerMessage,
) -> Result<(), ApiError> {
    let envelope = Envelope::new(principal.tenant.as_uuid(), message);
    ferry_bus::outbox::enqueue(conn, &envelope).await?;
    Ok(())
}

/// Appends an audit entry by the caller, in the caller's transaction.
pub(crate) async fn audit(
    conn: &mut PgConnection,
    principal: &Principal,
    action: &str,
    resource_kind: &str,
    resource_id: String,
    details: serde_json::Value,
) -> Result<(), ApiError> {
    audit::append(
        conn,
        principal.tenant,
        &NewAuditEntry {
            actor: principal.subject.clone(),
            action: action.into(),
            resource_kind: resource_kind.into(),
            resource_id,
            details,
        },
    )
    .await?;
    Ok(())
}
