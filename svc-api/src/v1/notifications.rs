//! Notification endpoints: where the tenant wants deployment events sent (started, waiting for
//! approval, succeeded, failed, rolled back), as Slack-compatible incoming-webhook JSON or as
//! Ferry's JSON signed with HMAC-SHA256 (`Ferry-Signature: t=<unix seconds>,sha256=<hex>` over
//! `"<t>.<body>"`, keyed by the tenant secret `signing_secret` names). svc-webhook delivers
//! them. Tenant administrators manage them; anyone of the tenant may list them.

use super::audit;
use super::secrets::valid_secret_name;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
pub use ferry_api::notifications::{CreateEndpoint, EndpointList, EndpointView};
use ferry_store::notifications::{self, EndpointKind, NewEndpoint, NotifyEvent};
use ferry_store::{StoreError, secrets};

/// Most endpoints a tenant may register.
pub const MAX_ENDPOINTS: usize = 50;
/// Longest endpoint URL.
pub const MAX_URL_BYTES: usize = 2048;

/// The resource's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/notification-endpoints", get(list).post(create))
        .route("/notification-endpoints/{name}", delete(remove))
}

fn invalid(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::Invalid(format!("{field}: {why}"))
}

/// Checks a request, all of it, before anything is written.
fn validate(request: &CreateEndpoint) -> Result<NewEndpoint, ApiError> {
    let name_ok = !request.name.is_empty()
        && request.name.len() <= 63
        && request
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return Err(invalid("name", "1 to 63 of a-z, 0-9, '-'"));
    }
    let kind: EndpointKind = request
        .kind
        .parse()
        .map_err(|_| invalid("kind", "one of slack, generic"))?;
    if request.url.len() > MAX_URL_BYTES {
        return Err(invalid("url", format!("at most {MAX_URL_BYTES} bytes")));
    }
    match reqwest::Url::parse(&request.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
        _ => return Err(invalid("url", "an absolute http or https URL")),
    }
    if request.events.is_empty() {
        return Err(invalid("events", "at least one event"));
    }
    let mut events = Vec::new();
    for (i, e) in request.events.iter().enumerate() {
        let event: NotifyEvent = e.parse().map_err(|_| {
            invalid(
                &format!("events[{i}]"),
                format!(
                    "{e:?} is not one of {}",
                    NotifyEvent::ALL
                        .iter()
                        .map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    match (kind, &request.signing_secret) {
        (EndpointKind::Generic, None) => {
            return Err(invalid(
                "signing_secret",
                "a generic endpoint needs the name of a tenant secret to sign with",
            ));
        }
        (EndpointKind::Slack, Some(_)) => {
            return Err(invalid("signing_secret", "Slack endpoints are not signed"));
        }
        (_, Some(name)) => valid_secret_name(name)?,
        _ => {}
    }
    Ok(NewEndpoint {
        name: request.name.clone(),
        kind,
        url: request.url.clone(),
        events,
        signing_secret: request.signing_secret.clone(),
        created_by: String::new(),
    })
}

/// The tenant's notification endpoints.
#[utoipa::path(get, path = "/v1/notification-endpoints", tag = "notifications",
    responses((status = 200, description = "The endpoints", body = EndpointList)))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<EndpointList>, ApiError> {
    principal.can_read()?;
    let items = notifications::list(&state.store, principal.tenant).await?;
    Ok(Json(EndpointList {
        items: items.into_iter().map(EndpointView::from).collect(),
    }))
}

/// Registers a notification endpoint.
#[utoipa::path(post, path = "/v1/notification-endpoints", tag = "notifications",
    request_body = CreateEndpoint,
    responses((status = 201, description = "Registered", body = EndpointView),
        (status = 409, description = "The name is taken in this tenant"),
        (status = 422, description = "A field out of its rules, or an unknown signing secret")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(request): ApiJson<CreateEndpoint>,
) -> Result<(StatusCode, Json<EndpointView>), ApiError> {
    principal.can_admin()?;
    let mut new = validate(&request)?;
    new.created_by = principal.subject.clone();
    if let Some(name) = &new.signing_secret {
        match secrets::get(&state.store, principal.tenant, name).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {
                return Err(invalid(
                    "signing_secret",
                    format!("the tenant has no secret {name:?}"),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if notifications::list(&state.store, principal.tenant)
        .await?
        .len()
        >= MAX_ENDPOINTS
    {
        return Err(ApiError::Invalid(format!(
            "a tenant has at most {MAX_ENDPOINTS} notification endpoints"
        )));
    }
    let mut tx = state.store.begin().await?;
    let endpoint = notifications::create(&mut tx, principal.tenant, &new).await?;
    audit(
        &mut tx,
        &principal,
        "notification_endpoint.create",
        "notification_endpoint",
        endpoint.name.clone(),
        serde_json::json!({ "kind": endpoint.kind, "events": endpoint.events }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((StatusCode::CREATED, Json(endpoint.into())))
}

/// Removes a notification endpoint.
#[utoipa::path(delete, path = "/v1/notification-endpoints/{name}", tag = "notifications",
    params(("name" = String, Path, description = "The endpoint's name")),
    responses((status = 204, description = "Removed"),
        (status = 404, description = "No such endpoint in this tenant")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    principal.can_admin()?;
    let mut tx = state.store.begin().await?;
    let removed = notifications::delete(&mut tx, principal.tenant, &name).await?;
    audit(
        &mut tx,
        &principal,
        "notification_endpoint.delete",
        "notification_endpoint",
        removed.name,
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: &str, url: &str, events: &[&str], secret: Option<&str>) -> CreateEndpoint {
        CreateEndpoint {
            name: "team-chat".into(),
            kind: kind.into(),
            url: url.into(),
            events: events
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            signing_secret: secret.map(str::to_string),
        }
    }

    #[test]
    fn requests_are_validated_field_by_field() {
        let ok = validate(&request(
            "slack",
            "https://hooks.slack.com/services/T/B/X",
            &["failed", "failed"],
            None,
        ))
        .unwrap();
        assert_eq!(ok.events, vec![NotifyEvent::Failed]);
        let err = |r: CreateEndpoint| validate(&r).unwrap_err().to_string();
        assert_eq!(
            err(request("teams", "https://x.example", &["failed"], None)),
            "kind: one of slack, generic"
        );
        assert_eq!(
            err(request("slack", "ftp://x.example", &["failed"], None)),
            "url: an absolute http or https URL"
        );
        assert!(
            err(request("slack", "https://x.example", &["deployed"], None))
                .starts_with("events[0]: \"deployed\" is not one of started, waiting_for_approval")
        );
        assert_eq!(
            err(request("slack", "https://x.example", &[], None)),
            "events: at least one event"
        );
        assert!(
            err(request("generic", "https://x.example", &["failed"], None))
                .starts_with("signing_secret: ")
        );
        assert!(
            err(request(
                "slack",
                "https://x.example",
                &["failed"],
                Some("k")
            ))
            .starts_with("signing_secret: ")
        );
        let long = format!("https://x.example/{}", "a".repeat(MAX_URL_BYTES));
        assert!(err(request("slack", &long, &["failed"], None)).starts_with("url: at most"));
        let mut bad_name = request("slack", "https://x.example", &["failed"], None);
        bad_name.name = "Team Chat".into();
        assert!(validate(&bad_name).is_err());
    }
}
