//! Canary analysis in the API: `POST /v1/analysis/retrospective` runs analysis queries over a
//! past time range and answers every run's values and the verdict (ANALYSIS.md), so a user can
//! tune a query before putting it into a deploy file; `GET /v1/deployments/{id}/analyses`
//! shows a deployment's analyses with each run's values and explanation.
//!
//! The queries run here, with svc-canary's providers and judges (`ferry_svc_canary::retro`):
//! credentials are opened with this service's master key at query time and never returned.
//! Providers are reached directly; one that names an agent is refused with a reason (the
//! agent relay lives in svc-canary), and so is one whose host resolves to a link-local,
//! cloud-metadata, unspecified or multicast address (never a metric provider, and where a
//! request from svc-api could read the control plane's own secrets). Private and loopback
//! addresses stay allowed: self-hosted providers live there. The check is `ferry-netguard`'s,
//! and the queries go through the shared transport, which connects only to addresses the same
//! policy checked (no DNS rebinding in between).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::identity::crypto::{MasterKey, Sealed};
use crate::state::AppState;
use crate::v1::secrets::secret_context;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
pub use ferry_api::analysis::{
    Analysis, JudgmentRun, QueryVerdict, RetrospectiveResponse, Verdict,
};
use ferry_bus::messages::AnalysisRequested;
use ferry_deploy::{AnalysisStep, LookbackMethod, Mode};
use ferry_store::analysis::{self, AnalysisRun};
use ferry_store::secrets::SealedSecret;
use ferry_store::{DeploymentId, TenantId, deployments, metric_providers, targets};
use ferry_svc_canary::providers::Fetcher;
use ferry_svc_canary::providers::transport::HttpTransport;
use ferry_svc_canary::run::RunContext;
use ferry_svc_canary::secrets::Unseal;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// At most this many queries per retrospective request.
const MAX_QUERIES: usize = 20;
/// At most this many runs per retrospective request.
const MAX_RUNS: u64 = 60;
/// The longest time range accepted.
const MAX_RANGE_DAYS: i64 = 31;
/// How long one retrospective request may take in all.
const DEADLINE: Duration = Duration::from_secs(120);

/// The resource's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/analysis/retrospective", post(retrospective))
        .route("/deployments/{id}/analyses", get(analyses))
}

pub use ferry_api::analysis::RetrospectiveRequest;

/// Opens tenant secrets with svc-api's master key, for the providers' credentials.
#[derive(Debug)]
struct ApiUnseal(MasterKey);

impl Unseal for ApiUnseal {
    fn open(&self, tenant: TenantId, sealed: &SealedSecret) -> Option<String> {
        let plain = self
            .0
            .open(
                &Sealed {
                    ciphertext: sealed.ciphertext.clone(),
                    nonce: sealed.nonce.clone(),
                },
                &secret_context(tenant, &sealed.name),
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

fn bad(why: impl Into<String>) -> ApiError {
    ApiError::BadRequest(why.into())
}

/// Variables of a past deployment's target: what the scheduler would have sent.
async fn target_variables(
    state: &AppState,
    tenant: TenantId,
    deployment: DeploymentId,
    target: &str,
) -> Result<BTreeMap<String, String>, ApiError> {
    let d = deployments::get(&state.store, tenant, deployment).await?;
    let t = targets::get(&state.store, tenant, deployment, target).await?;
    let mut vars = BTreeMap::from([
        ("applicationName".to_string(), d.application.clone()),
        ("deploymentId".to_string(), deployment.to_string()),
        ("environmentName".to_string(), t.name.clone()),
        ("accountName".to_string(), t.account.clone()),
        ("namespace".to_string(), t.namespace.clone()),
    ]);
    let workload = t.observed.pointer("/workloads/0");
    if let Some(rs) = workload
        .and_then(|w| w.get("newRs"))
        .and_then(Value::as_str)
    {
        vars.insert("replicaSetName".into(), rs.to_string());
    }
    if let Some(stable) = workload
        .and_then(|w| w.pointer("/stable/0/name"))
        .and_then(Value::as_str)
    {
        vars.insert(
            "baselineReplicaSetName".into(),
            format!("{stable}-baseline"),
        );
    }
    Ok(vars)
}

/// Refuses a provider whose host resolves to an address no provider has (see the header): the
/// network guard's self-hosted policy (public, loopback, private and carrier-grade NAT
/// networks; never link-local, metadata, unspecified, multicast or reserved addresses).
async fn refuse_internal(name: &str, base_url: &str) -> Result<(), ApiError> {
    let Ok(url) = reqwest::Url::parse(base_url) else {
        return Err(bad(format!(
            "metric provider {name:?}: {base_url:?} is not a URL"
        )));
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return Err(bad(format!(
            "metric provider {name:?}: {base_url:?} names no host"
        )));
    };
    match ferry_netguard::Policy::self_hosted()
        .resolve(host, port)
        .await
    {
        Err(ferry_netguard::GuardError::Refused { addr, class, .. }) => Err(bad(format!(
            "metric provider {name:?}: {} resolves to {addr}, a {class} address",
            host.trim_start_matches('[').trim_end_matches(']')
        ))),
        // A host that does not resolve fails later, as the query's error.
        _ => Ok(()),
    }
}

/// Runs analysis queries over a past time range: every run's values and the verdict.
#[utoipa::path(post, path = "/v1/analysis/retrospective", tag = "analysis",
    request_body = RetrospectiveRequest,
    responses((status = 200, description = "Every run and the verdict", body = RetrospectiveResponse),
        (status = 400, description = "No queries, a bad time range, too many runs, an unknown provider kind"),
        (status = 404, description = "The deployment or target does not exist in this tenant")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant))]
pub async fn retrospective(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<RetrospectiveRequest>,
) -> Result<Json<RetrospectiveResponse>, ApiError> {
    principal.can_deploy()?;
    if body.queries.is_empty() || body.queries.len() > MAX_QUERIES {
        return Err(bad(format!("give between 1 and {MAX_QUERIES} queries")));
    }
    if body.from >= body.to {
        return Err(bad("from must be before to"));
    }
    if body.to > Utc::now() + chrono::Duration::seconds(5) {
        return Err(bad(
            "to must not be in the future: a retrospective analysis looks back",
        ));
    }
    let range = body.to - body.from;
    if range > chrono::Duration::days(MAX_RANGE_DAYS) {
        return Err(bad(format!(
            "the time range is longer than {MAX_RANGE_DAYS} days"
        )));
    }
    let range_secs = range.num_seconds().max(1) as u64;
    let interval = body.interval_seconds.unwrap_or(range_secs);
    if interval == 0 {
        return Err(bad("intervalSeconds must be at least 1"));
    }
    let runs = range_secs.div_ceil(interval).max(1);
    if runs > MAX_RUNS {
        return Err(bad(format!(
            "{runs} runs of {interval} s: at most {MAX_RUNS}; choose a longer interval"
        )));
    }
    let lookback = match body.lookback_method.as_deref().map(str::to_ascii_lowercase) {
        None => LookbackMethod::Growing,
        Some(m) if m == "growing" => LookbackMethod::Growing,
        Some(m) if m == "sliding" => LookbackMethod::Sliding,
        Some(other) => return Err(bad(format!("lookbackMethod {other:?}: growing or sliding"))),
    };
    let mut queries = body.queries.clone();
    for q in &mut queries {
        if q.metric_provider_name.is_none() {
            q.metric_provider_name = body.metric_provider_name.clone();
        }
        let Some(name) = &q.metric_provider_name else {
            return Err(bad(format!("query {:?} names no metric provider", q.name)));
        };
        let provider = metric_providers::get(&state.store, principal.tenant, name).await?;
        refuse_internal(name, &provider.base_url).await?;
        if let Some(agent) = provider.agent {
            return Err(bad(format!(
                "metric provider {name:?} is reached through agent {agent:?}; retrospective analysis reaches providers directly"
            )));
        }
    }
    let mut variables = match (body.deployment_id, &body.target) {
        (Some(d), Some(t)) => target_variables(&state, principal.tenant, d, t).await?,
        (None, None) => BTreeMap::new(),
        _ => return Err(bad("give deploymentId and target together")),
    };
    variables.extend(body.variables.clone());
    let step = AnalysisStep {
        interval_secs: interval,
        number_of_judgment_runs: runs as u32,
        lookback_method: lookback,
        roll_back_mode: Mode::Automatic,
        roll_forward_mode: Mode::Automatic,
        abort_on_failed_judgment: false,
        context: body.context.clone().into_iter().collect(),
        queries,
    };
    let request = AnalysisRequested {
        deployment_id: body.deployment_id.map(|d| d.as_uuid()).unwrap_or_default(),
        target: body.target.clone().unwrap_or_default(),
        step_index: 0,
        analysis_id: uuid::Uuid::now_v7(),
        step_key: "retrospective".into(),
        account: String::new(),
        variables,
        context: body.context.clone(),
    };
    let transport = HttpTransport::new(None, Duration::from_secs(20), 4 * 1024 * 1024)
        .map_err(|e| ApiError::Unavailable(format!("HTTP client: {e}")))?;
    let ctx = RunContext {
        store: state.store.clone(),
        fetcher: Fetcher::new(Arc::new(transport), 3, Duration::from_millis(300)),
        key: Arc::new(ApiUnseal(state.master.clone())),
        metrics: Default::default(),
    };
    let work = ferry_svc_canary::retro::run_all(&ctx, principal.tenant, &request, &step, body.from);
    let (runs, conclusion) = tokio::time::timeout(DEADLINE, work).await.map_err(|_| {
        ApiError::Unavailable(format!(
            "the providers did not answer every run within {} s",
            DEADLINE.as_secs()
        ))
    })?;
    let views = runs
        .into_iter()
        .enumerate()
        .map(|(i, r)| JudgmentRun {
            index: i as u32,
            window_start: r.window.start,
            window_end: r.window.end,
            passed: r.outcome.summary.passed,
            explanation: r.outcome.explanation.clone(),
            results: r.outcome.to_json(),
        })
        .collect();
    let queries = (conclusion.queries.into_iter())
        .map(|(query, passed, explanation)| QueryVerdict {
            query,
            passed,
            explanation,
        })
        .collect();
    Ok(Json(RetrospectiveResponse {
        runs: views,
        verdict: Verdict {
            status: conclusion.status,
            reason: conclusion.reason,
            queries,
        },
    }))
}

/// A stored judgment run as the API shows it.
fn judgment_run(r: AnalysisRun) -> JudgmentRun {
    JudgmentRun {
        // Run indexes are stored from 0 up.
        index: u32::try_from(r.run_index).unwrap_or_default(),
        window_start: r.window_start,
        window_end: r.window_end,
        passed: r.passed,
        explanation: r.explanation,
        results: r.results.0,
    }
}

/// A deployment's analyses: each with its status, reason and every run's explanation and values.
#[utoipa::path(get, path = "/v1/deployments/{id}/analyses", tag = "analysis",
    params(("id" = String, Path, description = "Deployment id")),
    responses((status = 200, description = "The analyses, oldest first", body = Vec<Analysis>),
        (status = 404, description = "No such deployment in this tenant")))]
#[tracing::instrument(skip_all, fields(tenant = %principal.tenant, deployment = %id))]
pub async fn analyses(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<DeploymentId>,
) -> Result<Json<Vec<Analysis>>, ApiError> {
    principal.can_read()?;
    // A deployment of another tenant is a 404, as everywhere.
    deployments::get(&state.store, principal.tenant, id).await?;
    let mut out = Vec::new();
    for a in analysis::list_for_deployment(&state.store, principal.tenant, id).await? {
        let runs = analysis::runs(&state.store, principal.tenant, a.id).await?;
        out.push(Analysis {
            id: a.id,
            target: a.target_name,
            step_key: a.step_key,
            status: a.status,
            reason: a.reason,
            runs_done: a.runs_done,
            total_runs: a.total_runs,
            started_at: a.started_at,
            next_run_at: (a.status == analysis::AnalysisStatus::Running).then_some(a.next_run_at),
            completed_at: a.completed_at,
            verdict: a.verdict.map(|v| v.0),
            runs: runs.into_iter().map(judgment_run).collect(),
        });
    }
    Ok(Json(out))
}
