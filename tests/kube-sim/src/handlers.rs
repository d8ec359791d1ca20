//! The resource API: parses `/api/v1/...` and `/apis/{group}/{version}/...` paths and serves
//! get, list, watch, create, replace, patch (merge, JSON, strategic, apply), delete and
//! deletecollection, plus the `status` and `scale` subresources.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::objects::{for_version, stale};
use crate::openapi::{schemas, validate};
use crate::ops::{self, Propagation};
use crate::patch::{self, PatchKind};
use crate::resources::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::SimState;
use crate::{discovery, protobuf, table, watch, yaml};

/// A request for a resource (collection, object or subresource).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The resource.
    pub rt: ResourceType,
    /// The version in the path.
    pub version: String,
    /// Namespace from the path; empty for cluster-scoped or all-namespaces requests.
    pub ns: String,
    /// Object name.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`).
    pub sub: Option<String>,
}

/// Parses the path after `/api/v1` or `/apis/{group}/{version}`; `Ok(None)` for the group
/// version's discovery document.
pub(crate) fn parse_target(
    state: &SimState,
    group: &str,
    version: &str,
    segs: &[&str],
) -> Result<Option<Target>, ApiError> {
    if segs.is_empty() {
        return Ok(None);
    }
    let find = |plural: &str| state.registry.find(group, version, plural).cloned();
    let namespaced =
        segs[0] == "namespaces" && segs.len() >= 3 && find(segs[2]).is_some_and(|t| t.namespaced);
    let (ns, rest) = if namespaced {
        (segs[1].to_string(), &segs[2..])
    } else {
        (String::new(), segs)
    };
    let rt = find(rest[0]).ok_or_else(ApiError::no_such_path)?;
    if rest.len() > 3 || (!namespaced && rt.namespaced && rest.len() > 1) {
        return Err(ApiError::no_such_path());
    }
    let sub = rest.get(2).map(std::string::ToString::to_string);
    if let Some(s) = &sub
        && !((s == "status" && rt.status) || (s == "scale" && rt.scale))
    {
        return Err(ApiError::no_such_path());
    }
    Ok(Some(Target {
        rt,
        version: version.to_string(),
        ns,
        name: rest.get(1).map(std::string::ToString::to_string),
        sub,
    }))
}

fn ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

fn created(v: Value) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

fn manager(q: &HashMap<String, String>, headers: &HeaderMap) -> String {
    if let Some(m) = q.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.clone();
    }
    // Like the real server: the default manager is the client binary from the User-Agent.
    headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

/// Parses a request body: JSON or YAML, or protobuf for the built-in kinds kubectl's typed
/// commands send that way (see [`protobuf`]). CBOR bodies get 415.
fn body_json(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if ct.starts_with("application/vnd.kubernetes.protobuf") {
        return protobuf::decode(body);
    }
    if ct.contains("cbor") {
        return Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: \
             application/json, application/yaml, application/vnd.kubernetes.protobuf (got {ct})"
        )));
    }
    yaml::parse(body)
}

/// Field validation of a write to a built-in kind (see [`validate`]): `Err` when the object
/// cannot be accepted, otherwise the warnings to send.
fn validate_fields(
    state: &SimState,
    t: &Target,
    q: &HashMap<String, String>,
    obj: &mut Value,
) -> Result<Vec<String>, ApiError> {
    let directive = validate::Directive::parse(q.get("fieldValidation").map(String::as_str))?;
    if !t.rt.builtin || t.sub.as_deref() == Some("scale") {
        return Ok(Vec::new());
    }
    let def = schemas::definition_name(&t.rt, &t.version);
    let findings = validate::check(&state.openapi().definitions, &def, obj);
    validate::enforce(&t.rt.kind, &t.version, findings, directive)
}

/// Adds one `Warning` header per warning, as the real API server reports them (kubectl prints
/// them as `Warning: ...`).
fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = axum::http::HeaderValue::from_str(&text) {
            resp.headers_mut().append("warning", v);
        }
    }
    resp
}

/// The `autoscaling/v1` Scale of a workload (only workloads have a scale subresource, and they
/// are all namespaced).
fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let selector = LabelSelector::from_object(&obj["spec"]["selector"]).to_query();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {
            "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector,
        },
    })
}

/// Serves one resource request.
pub(crate) async fn serve(
    state: Arc<SimState>,
    t: Target,
    method: Method,
    q: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = t.rt.key();
    let show = |obj: Value| for_version(&t.rt, &t.version, obj);
    let ns = t.ns.clone();
    if method != Method::GET && q.get("dryRun").is_some_and(|d| !d.is_empty()) {
        // Refused rather than ignored: ignoring it would persist what the client only meant to
        // try.
        return Err(ApiError::bad_request(
            "dryRun is not supported by kube-sim (a Kubernetes API simulator)",
        ));
    }
    match (&method, &t.name) {
        (&Method::GET, None) => {
            let labels = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?;
            let fields = FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str))?;
            let rv_param = q
                .get("resourceVersion")
                .filter(|s| !s.is_empty() && *s != "0");
            let from =
                match rv_param {
                    Some(s) => Some(s.parse::<u64>().map_err(|_| {
                        ApiError::bad_request(format!("invalid resourceVersion {s}"))
                    })?),
                    None => None,
                };
            if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
                let req = watch::WatchRequest {
                    rt: t.rt.clone(),
                    version: t.version.clone(),
                    namespace: (!ns.is_empty()).then_some(ns),
                    labels,
                    fields,
                    from: if q.get("sendInitialEvents").is_some_and(|v| v == "true") {
                        None
                    } else {
                        from
                    },
                    bookmarks: q.get("allowWatchBookmarks").is_some_and(|v| v == "true"),
                    send_initial: q.get("sendInitialEvents").is_some_and(|v| v == "true"),
                    timeout: q
                        .get("timeoutSeconds")
                        .and_then(|s| s.parse().ok())
                        .map(Duration::from_secs),
                    view: table::View::from_headers(&headers),
                };
                return Ok(watch::start(state, req));
            }
            if let Some(from) = from
                && q.get("resourceVersionMatch").is_some_and(|m| m == "Exact")
                && state.store.compacted_after(&key, from)
            {
                return Err(ApiError::gone(from));
            }
            let (items, rv) = state
                .store
                .list(&key, (!ns.is_empty()).then_some(ns.as_str()));
            let items: Vec<Value> = items
                .into_iter()
                .filter(|o| labels.matches(o) && fields.matches(o))
                .map(show)
                .collect();
            let list = json!({
                "kind": format!("{}List", t.rt.kind),
                "apiVersion": t.rt.api_version(&t.version),
                "metadata": {"resourceVersion": rv.to_string()},
                "items": items,
            });
            Ok(ok(table::View::from_headers(&headers).list(&t.rt, list)))
        }
        (&Method::GET, Some(name)) => {
            let obj = state
                .store
                .get(&key, &ns, name)
                .ok_or_else(|| ApiError::not_found(&t.rt.plural, &t.rt.group, name))?;
            if t.sub.as_deref() == Some("scale") {
                return Ok(ok(scale_of(&obj)));
            }
            Ok(ok(table::View::from_headers(&headers).one(&t.rt, show(obj))))
        }
        (&Method::POST, None) => {
            let mut new = body_json(&headers, &body)?;
            let warnings = validate_fields(&state, &t, &q, &mut new)?;
            let obj = ops::create(
                &state,
                &t.rt,
                &t.version,
                &ns,
                new,
                Some(&manager(&q, &headers)),
            )?;
            Ok(with_warnings(created(show(obj)), &warnings))
        }
        (&Method::PUT, Some(name)) => {
            let mut new = body_json(&headers, &body)?;
            let mgr = manager(&q, &headers);
            if t.sub.as_deref() == Some("scale") {
                return set_scale(&state, &t, name, &mgr, |_| Ok(new));
            }
            let warnings = validate_fields(&state, &t, &q, &mut new)?;
            let obj = ops::update(
                &state,
                &t.rt,
                &t.version,
                &ns,
                name,
                t.sub.as_deref(),
                Some(&mgr),
                |_| Ok(new),
            )?;
            Ok(with_warnings(ok(show(obj)), &warnings))
        }
        (&Method::PATCH, Some(name)) => {
            let ct = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let kind = PatchKind::from_content_type(ct).ok_or_else(|| {
                ApiError::unsupported_media_type(format!(
                    "the body of the request was in an unknown format: {ct}"
                ))
            })?;
            let mut p = body_json(&headers, &body)?;
            let mgr = manager(&q, &headers);
            if kind == PatchKind::Apply {
                let Some(fm) = q.get("fieldManager").filter(|m| !m.is_empty()) else {
                    return Err(ApiError::bad_request(
                        "PATCH requests with apply content type require a field manager",
                    ));
                };
                if t.sub.as_deref() == Some("scale") {
                    return Err(ApiError::unsupported_media_type(
                        "apply is not supported on the scale subresource",
                    ));
                }
                let warnings = validate_fields(&state, &t, &q, &mut p)?;
                let force = q.get("force").is_some_and(|f| f == "true");
                let obj = ops::apply(
                    &state,
                    &t.rt,
                    &t.version,
                    &ns,
                    name,
                    t.sub.as_deref(),
                    p,
                    fm,
                    force,
                )?;
                return Ok(with_warnings(ok(show(obj)), &warnings));
            }
            let builtin = t.rt.builtin;
            if t.sub.as_deref() == Some("scale") {
                return set_scale(&state, &t, name, &mgr, |scale| {
                    patch::apply(kind, scale, &p, true)
                });
            }
            let mut warnings = Vec::new();
            let obj = ops::update(
                &state,
                &t.rt,
                &t.version,
                &ns,
                name,
                t.sub.as_deref(),
                Some(&mgr),
                |cur| {
                    let mut base = for_version(&t.rt, &t.version, cur.clone());
                    // A merge or strategic patch carries a resourceVersion precondition only when
                    // it sets one; a JSON patch keeps it, so a `test` operation on it (kubectl's
                    // managed-fields migration sends one) can see it.
                    if kind != PatchKind::Json
                        && let Some(m) = base["metadata"].as_object_mut()
                    {
                        m.remove("resourceVersion");
                    }
                    let mut patched = patch::apply(kind, &base, &p, builtin)?;
                    warnings = validate_fields(&state, &t, &q, &mut patched)?;
                    Ok(patched)
                },
            )?;
            Ok(with_warnings(ok(show(obj)), &warnings))
        }
        (&Method::DELETE, Some(name)) => {
            let opts: Value = if body.is_empty() {
                json!({})
            } else {
                body_json(&headers, &body)?
            };
            let policy = q
                .get("propagationPolicy")
                .map(String::as_str)
                .or_else(|| opts["propagationPolicy"].as_str())
                .or_else(|| (opts["orphanDependents"] == true).then_some("Orphan"))
                .map(Propagation::parse)
                .transpose()?
                .unwrap_or(Propagation::Background);
            if let Some(rv) = opts["preconditions"]["resourceVersion"].as_str()
                && let Some(cur) = state.store.get(&key, &ns, name)
                && cur["metadata"]["resourceVersion"].as_str() != Some(rv)
            {
                return Err(stale(&t.rt, name));
            }
            let obj = ops::delete(&state, &t.rt, &ns, name, policy)?;
            Ok(ok(show(obj)))
        }
        (&Method::DELETE, None) => {
            let labels = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?;
            let fields = FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str))?;
            let (items, _) = state
                .store
                .list(&key, (!ns.is_empty()).then_some(ns.as_str()));
            let mut deleted = Vec::new();
            for o in items
                .into_iter()
                .filter(|o| labels.matches(o) && fields.matches(o))
            {
                let (ons, oname) = crate::objects::name_of(&o);
                if let Ok(d) = ops::delete(&state, &t.rt, ons, oname, Propagation::Background) {
                    deleted.push(show(d));
                }
            }
            Ok(ok(
                json!({"kind": format!("{}List", t.rt.kind), "apiVersion": t.rt.api_version(&t.version),
                          "metadata": {"resourceVersion": state.store.current_rv().to_string()}, "items": deleted}),
            ))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "{method} is not supported here"
        ))),
    }
}

/// Writes `.spec.replicas` through the `scale` subresource: `f` turns the current Scale into
/// the desired one.
fn set_scale(
    state: &SimState,
    t: &Target,
    name: &str,
    mgr: &str,
    f: impl FnOnce(&Value) -> Result<Value, ApiError>,
) -> Result<Response, ApiError> {
    let obj = ops::update(
        state,
        &t.rt,
        &t.version,
        &t.ns,
        name,
        None,
        Some(mgr),
        |cur| {
            let scale = scale_of(cur);
            let desired = f(&scale)?;
            if let Some(rv) = desired["metadata"]["resourceVersion"].as_str()
                && !rv.is_empty()
                && Some(rv) != cur["metadata"]["resourceVersion"].as_str()
            {
                return Err(stale(&t.rt, name));
            }
            let replicas = desired["spec"]["replicas"]
                .as_i64()
                .filter(|r| *r >= 0)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "spec.replicas: Invalid value: must be a non-negative integer",
                    )
                })?;
            let mut new = cur.clone();
            new["spec"]["replicas"] = json!(replicas);
            Ok(new)
        },
    )?;
    Ok(ok(scale_of(&obj)))
}

/// Serves discovery for a group version.
pub(crate) fn group_version_doc(
    state: &SimState,
    group: &str,
    version: &str,
) -> Result<Response, ApiError> {
    discovery::resource_list(&state.registry, group, version)
        .map(ok)
        .ok_or_else(ApiError::no_such_path)
}
