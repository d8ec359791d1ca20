//! The OpenAPI 3.1 document of the REST API, generated from the handlers' `#[utoipa::path]`
//! annotations and the request types' schemas (`GET /openapi.json`), and a small self-contained
//! documentation page (`GET /docs`) that renders it without loading anything from elsewhere,
//! so it works offline. The same document is committed at `docs/openapi.json`; after changing
//! the API, regenerate it with `cargo run -p ferry-svc-api -- openapi --out docs/openapi.json`
//! (tests fail while the two differ).

mod problems;

use problems::ProblemResponses;

use crate::state::AppState;
use crate::{armory, v1};
use axum::Router;
use axum::response::Html;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's root: every `/v1` operation and the request and response schemas.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ferry API",
        description = "Continuous deployment as a service. Authenticate with a bearer token from \
                       `POST /oauth/token` (client credentials, audience `ferry-api`), or as a \
                       person with a token of the configured OIDC issuer and the header \
                       `X-Ferry-Tenant: <tenant slug>`. Errors are \
                       `application/problem+json` with a stable `code`."
    ),
    paths(
        v1::whoami::whoami,
        v1::deployments::start,
        v1::deployments::list,
        v1::deployments::detail,
        v1::deployments::config,
        v1::deployments::redeploy,
        v1::events::stream_events,
        v1::actions::approve,
        v1::actions::reject,
        v1::actions::abort,
        v1::actions::rollback,
        v1::actions::skip_pause,
        v1::actions::roll_forward,
        v1::actions::callback,
        v1::tenant::tenant,
        v1::tenant::list_agents,
        v1::tenants::list,
        v1::tenants::create,
        v1::users::list,
        v1::users::set_roles,
        v1::users::remove,
        v1::roles::list,
        v1::roles::create,
        v1::roles::set_grants,
        v1::roles::add_member,
        v1::roles::remove_member,
        v1::credentials::create,
        v1::credentials::list,
        v1::credentials::revoke,
        v1::secrets::set,
        v1::secrets::list,
        v1::secrets::remove,
        v1::metric_providers::list,
        v1::metric_providers::read,
        v1::metric_providers::put_provider,
        v1::metric_providers::remove,
        v1::analysis::retrospective,
        v1::analysis::analyses,
        v1::audit_log::list,
        v1::webhooks::list,
        v1::webhooks::network_settings,
        v1::webhooks::set_network_settings,
        v1::notifications::list,
        v1::notifications::create,
        v1::notifications::remove,
        armory::start::start_kubernetes,
        armory::start::start_generic,
        armory::status::pipeline,
        armory::status::deployment,
        v1::schema::deploy_schema,
    ),
    modifiers(&BearerAuth, &ProblemResponses),
    security(("bearer" = [])),
    tags(
        (name = "deployments", description = "Start, list and read deployments; their events"),
        (name = "actions", description = "Approve, reject, abort, roll back, skip a pause, roll forward, webhook callbacks"),
        (name = "tenant", description = "The caller, its tenant and agents"),
        (name = "roles", description = "Roles and their members"),
        (name = "users", description = "People of the tenant (signed in through the external OIDC issuer) and their roles"),
        (name = "credentials", description = "Machine credentials"),
        (name = "secrets", description = "Write-only secrets"),
        (name = "metric-providers", description = "Metric providers for canary analysis"),
        (name = "analysis", description = "Canary analysis: a deployment's analyses, retrospective analysis"),
        (name = "armory", description = "Armory CD-as-a-Service's API (start a pipeline, read it and its deployments), for CI written for Armory; errors in Armory's envelope"),
        (name = "schema", description = "The deploy file's JSON Schema, for editors (public)"),
        (name = "audit", description = "The tenant's audit log (tenant administrators)"),
        (name = "notifications", description = "Where deployment events are sent: Slack-compatible or signed generic JSON endpoints"),
    )
)]
pub struct ApiDoc;

/// Declares the bearer-token scheme the document's `security` refers to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document exactly as `/openapi.json` serves it and `docs/openapi.json` holds it
/// (pretty-printed, with a final newline).
pub fn document_json() -> Result<String, serde_json::Error> {
    ApiDoc::openapi().to_pretty_json().map(|json| json + "\n")
}

/// The routes: `/openapi.json` and `/docs` (public, like any API description).
pub fn router() -> Router<AppState> {
    let document = document_json().unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        document,
                    )
                }
            }),
        )
        .route("/docs", get(|| async { Html(DOCS_PAGE) }))
}

/// Lists every operation of `/openapi.json` with its parameters, body schema and responses,
/// and lets the reader try a request with a token. Plain HTML and script, nothing fetched from
/// elsewhere.
const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ferry API</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}
h1{margin-bottom:.2rem} .op{border:1px solid #ddd;border-radius:6px;margin:.6rem 0;padding:.4rem .8rem}
.m{display:inline-block;min-width:4.5rem;font-weight:700;text-transform:uppercase}
.get{color:#0a6}.post{color:#06c}.put{color:#a60}.delete{color:#c22}
code,pre{background:#f5f5f5;border-radius:4px;padding:.1rem .3rem} pre{padding:.5rem;overflow:auto}
summary{cursor:pointer} input,textarea{width:100%;box-sizing:border-box;font:inherit}
</style></head><body>
<h1>Ferry API</h1><p id="desc"></p>
<p><label>Bearer token <input id="token" placeholder="from POST /oauth/token"></label></p>
<div id="ops">Loading /openapi.json…</div>
<script>
const esc = s => String(s ?? "").replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
fetch("/openapi.json").then(r => r.json()).then(doc => {
  document.getElementById("desc").textContent = doc.info.description || "";
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(item)) ops.push({path, method, op});
  document.getElementById("ops").innerHTML = ops.map((o, i) => {
    const params = (o.op.parameters || []).map(p => `<li><code>${esc(p.name)}</code> (${esc(p.in)}) ${esc(p.description)}</li>`).join("");
    const body = o.op.requestBody ? `<p>Body:</p><pre>${esc(JSON.stringify(o.op.requestBody.content, null, 1))}</pre>` : "";
    const responses = Object.entries(o.op.responses || {}).map(([c, r]) => `<li><b>${esc(c)}</b> ${esc(r.description)}</li>`).join("");
    return `<details class="op"><summary><span class="m ${o.method}">${o.method}</span> <code>${esc(o.path)}</code> ${esc(o.op.summary || o.op.description || "")}</summary>
      ${params ? `<p>Parameters:</p><ul>${params}</ul>` : ""}${body}<p>Responses:</p><ul>${responses}</ul>
      <p>Try it: path <input id="p${i}" value="${esc(o.path)}">${o.op.requestBody ? `body <textarea id="b${i}" rows="4"></textarea>` : ""}
      <button onclick="tryIt(${i}, '${o.method}')">Send</button></p><pre id="r${i}"></pre></details>`;
  }).join("");
}).catch(e => { document.getElementById("ops").textContent = "Cannot load /openapi.json: " + e; });
async function tryIt(i, method) {
  const headers = {"content-type": "application/json"};
  const token = document.getElementById("token").value.trim();
  if (token) headers.authorization = "Bearer " + token;
  const b = document.getElementById("b" + i);
  const r = await fetch(document.getElementById("p" + i).value, {method: method.toUpperCase(), headers, body: b && b.value ? b.value : undefined});
  document.getElementById("r" + i).textContent = r.status + "\n" + await r.text();
}
</script></body></html>"#;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Every `(METHOD, path)` routed by the `.route(..)` calls in one source file: the first
    /// string literal of the call is the path, and `get(`/`post(`/`put(`/`delete(`/`patch(`
    /// inside the call are its methods.
    fn routes_in(source: &str, prefix: &str, found: &mut BTreeSet<(String, String)>) {
        for (start, _) in source.match_indices(".route(") {
            let body = &source[start + ".route(".len()..];
            let mut depth = 1usize;
            let end = body
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map(|(i, _)| i)
                .expect("an unclosed .route(");
            let call = &body[..end];
            let path = call
                .split('"')
                .nth(1)
                .expect("a .route( without a path literal");
            for method in ["get", "post", "put", "delete", "patch"] {
                let token = format!("{method}(");
                let routed = call.match_indices(&token).any(|(i, _)| {
                    i == 0
                        || !call.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && call.as_bytes()[i - 1] != b'_'
                });
                if routed {
                    found.insert((method.to_uppercase(), format!("{prefix}{path}")));
                }
            }
        }
    }

    /// The routes of the API's routers, read from their sources (`src/v1/*.rs` under `/v1`, and
    /// the Armory routes at the root), so a route added anywhere there is seen.
    fn routed() -> BTreeSet<(String, String)> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = BTreeSet::new();
        for entry in std::fs::read_dir(src.join("v1")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                routes_in(&std::fs::read_to_string(&path).unwrap(), "/v1", &mut found);
            }
        }
        routes_in(
            &std::fs::read_to_string(src.join("armory/mod.rs")).unwrap(),
            "",
            &mut found,
        );
        found
    }

    #[test]
    fn every_route_is_in_the_document_with_its_responses() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let routed = routed();
        assert!(
            routed.len() > 40,
            "the route scan found too little: {routed:?}"
        );
        let mut missing = Vec::new();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                documented.insert((method.to_uppercase(), path.clone()));
                let responses = operation["responses"].as_object();
                assert!(
                    responses.is_some_and(|r| !r.is_empty()),
                    "{method} {path} documents no responses"
                );
                for (status, response) in responses.unwrap() {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert!(
                            response["content"]
                                .as_object()
                                .is_some_and(|c| !c.is_empty()),
                            "{method} {path}: the {status} response has no body schema"
                        );
                    }
                }
            }
        }
        for route in &routed {
            if !documented.contains(route) {
                missing.push(format!("{} {}", route.0, route.1));
            }
        }
        assert!(
            missing.is_empty(),
            "routes missing from the OpenAPI document (add their #[utoipa::path] to ApiDoc): {missing:?}"
        );
        let stale: Vec<_> = documented.difference(&routed).collect();
        assert!(stale.is_empty(), "documented but not routed: {stale:?}");
    }

    #[test]
    fn the_committed_document_is_the_generated_one() {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
        let committed = std::fs::read_to_string(&committed).unwrap_or_default();
        assert!(
            committed == document_json().unwrap(),
            "docs/openapi.json differs from the generated document; regenerate it with \
             `cargo run -p ferry-svc-api -- openapi --out docs/openapi.json`"
        );
    }

    #[test]
    fn the_document_is_generated() {
        let doc = ApiDoc::openapi();
        assert!(doc.paths.paths.contains_key("/v1/deployments"));
        // The schema is public: its operation overrides the document's bearer requirement.
        let schema = serde_json::to_value(&doc.paths.paths["/v1/schema/deploy.json"]).unwrap();
        assert_eq!(
            schema["get"]["security"],
            serde_json::json!([{}]),
            "{schema}"
        );
    }
}
