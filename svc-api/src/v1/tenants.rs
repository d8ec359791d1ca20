//! Tenants of the caller's organization: `GET /v1/tenants` (an Organization Admin sees every
//! tenant of the organization, anyone else only their own) and `POST /v1/tenants` (an
//! Organization Admin creates a tenant in the organization, inviting its first administrators).
//! A tenant outside any organization can see only itself and create nothing: tenants outside
//! organizations are an operator's (`ferry-svc-api bootstrap`).

use super::audit;
use super::users::{normalise_email, put_user};
use crate::auth::{Principal, roles as names};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::identity::bootstrap::valid_slug;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
pub use ferry_api::tenant::{CreateTenant, Tenant};
use ferry_store::StoreError;
use ferry_store::audit::{self as audit_log, NewAuditEntry};
use ferry_store::tenants::{self, NewTenant};
use std::collections::BTreeMap;

/// The resource's routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/tenants", get(list).post(create))
}

/// The tenants the caller may see.
#[utoipa::path(get, path = "/v1/tenants", tag = "tenant",
    responses((status = 200, description = "The organization's tenants (Organization Admin) or the caller's own", body = Vec<Tenant>)))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<Tenant>>, ApiError> {
    principal.can_read()?;
    let own = tenants::get(&state.store, principal.tenant).await?;
    match own.organization_id {
        Some(organization) if principal.has_role(names::ORGANIZATION_ADMIN) => Ok(Json(
            tenants::list_in_organization(&state.store, organization).await?,
        )),
        _ => Ok(Json(vec![own])),
    }
}

/// Creates a tenant in the caller's organization. A person creating it becomes its
/// Organization Admin; `adminEmails` are invited as Tenant Admins.
#[utoipa::path(post, path = "/v1/tenants", tag = "tenant", request_body = CreateTenant,
    responses((status = 201, description = "The tenant", body = Tenant), (status = 409, description = "The slug is taken, or the caller's tenant belongs to no organization")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(request): ApiJson<CreateTenant>,
) -> Result<Response, ApiError> {
    principal.require_role(names::ORGANIZATION_ADMIN)?;
    if !valid_slug(&request.slug) {
        return Err(ApiError::BadRequest(format!(
            "{:?} is not a tenant slug: [a-z0-9-], 1 to 63 characters, not starting with '-'",
            request.slug
        )));
    }
    let name = request.name.as_deref().unwrap_or(&request.slug).trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::BadRequest(
            "a tenant name is 1 to 200 characters".into(),
        ));
    }
    // Who gets which roles in the new tenant.
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for email in &request.admin_emails {
        members
            .entry(normalise_email(email)?)
            .or_default()
            .push(names::TENANT_ADMIN.into());
    }
    if let Some(email) = &principal.email {
        members
            .entry(email.clone())
            .or_default()
            .push(names::ORGANIZATION_ADMIN.into());
    }
    let own = tenants::get(&state.store, principal.tenant).await?;
    let organization = own.organization_id.ok_or_else(|| {
        ApiError::Conflict(
            "the caller's tenant belongs to no organization, so it cannot create tenants".into(),
        )
    })?;

    let mut tx = state.store.begin().await?;
    let tenant = tenants::create(
        &mut tx,
        &NewTenant {
            slug: request.slug.clone(),
            name: name.to_string(),
            organization_id: Some(organization),
        },
    )
    .await?;
    for (email, roles) in &members {
        put_user(&mut tx, tenant.id, email, "", roles).await?;
    }
    let details = serde_json::json!({ "slug": tenant.slug, "members": members });
    audit(
        &mut tx,
        &principal,
        "tenant.create",
        "tenant",
        tenant.id.to_string(),
        details,
    )
    .await?;
    // The new tenant's own log starts with its creation.
    audit_log::append(
        &mut tx,
        tenant.id,
        &NewAuditEntry {
            actor: principal.subject.clone(),
            action: "tenant.create".into(),
            resource_kind: "tenant".into(),
            resource_id: tenant.id.to_string(),
            details: serde_json::json!({ "by_tenant": principal.tenant, "members": members }),
        },
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((StatusCode::CREATED, Json(tenant)).into_response())
}
