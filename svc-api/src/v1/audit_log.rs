//! `GET /v1/audit`: the tenant's audit log, newest first, narrowed by actor, action (or an
//! action prefix such as `credential.`), resource and time range, paged with a `before` cursor.
//! Tenant administrators only: it says who did what.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
pub use ferry_api::audit::{AuditEntry, AuditPage, AuditQuery};
use ferry_store::audit::{self, AuditFilter};

/// Default and largest page.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

/// Longest accepted filter value.
const MAX_FILTER_LEN: usize = 256;

/// The resource's routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

/// The tenant's audit log.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "A page of entries, newest first", body = AuditPage),
        (status = 400, description = "A filter is malformed"),
        (status = 403, description = "Not a tenant administrator")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    principal.can_admin()?;
    for (name, value) in [
        ("actor", &query.actor),
        ("action", &query.action),
        ("resourceKind", &query.resource_kind),
        ("resourceId", &query.resource_id),
    ] {
        if value
            .as_ref()
            .is_some_and(|v| v.is_empty() || v.len() > MAX_FILTER_LEN)
        {
            return Err(ApiError::BadRequest(format!(
                "{name} must be 1 to {MAX_FILTER_LEN} characters"
            )));
        }
    }
    if let (Some(since), Some(until)) = (query.since, query.until)
        && since >= until
    {
        return Err(ApiError::BadRequest("since must be before until".into()));
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )));
    }
    let filter = AuditFilter {
        actor: query.actor,
        action: query.action,
        resource_kind: query.resource_kind,
        resource_id: query.resource_id,
        since: query.since,
        until: query.until,
    };
    let entries =
        audit::search(&state.store, principal.tenant, &filter, query.before, limit).await?;
    let next = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(AuditEntry::from).collect(),
        next,
    }))
}
