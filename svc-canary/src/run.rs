//! One judgment run: every query of the analysis step rendered for the run's window, sent to
//! its provider (credentials opened for this run only), and judged: a limits query yields one
//! value checked against its limits; a comparison query (a `judge` block) yields a canary and a
//! baseline series for the comparison judge. The run passes when every limits value is within
//! its limits and the comparison verdict is not Fail.

use crate::providers::{Answer, Fetcher, Provider, QueryError, Shape, Window};
use crate::secrets::{self, Unseal};
use crate::spec;
use ferry_bus::messages::AnalysisRequested;
use ferry_deploy::{AnalysisQuery, AnalysisStep};
use ferry_judge::{
    Limits, MetricResult, MetricSettings, Outcome, RunValue, Thresholds, judge_run, verdict,
};
use ferry_store::metric_providers;
use ferry_store::{Store, TenantId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a run needs besides its analysis.
#[derive(Clone, Debug)]
pub struct RunContext {
    /// The database.
    pub store: Store,
    /// Sends queries.
    pub fetcher: Fetcher,
    /// Opens provider credentials.
    pub key: std::sync::Arc<dyn Unseal>,
    /// Counts runs, queries and analyses.
    pub metrics: crate::metrics::CanaryMetrics,
}

/// One limits query's result in a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LimitsResult {
    /// The query.
    pub query: String,
    /// The value, missing value or error.
    pub value: RunValue,
    /// Whether the value is within the limits.
    pub passed: bool,
    /// One line.
    pub explanation: String,
}

/// One comparison query's result in a run (display only).
#[derive(Clone, Debug, Serialize)]
pub struct ComparisonResult {
    /// The query.
    pub query: String,
    /// The canary's points (`null` for NaN or infinite).
    pub canary: Vec<Option<f64>>,
    /// The baseline's points.
    pub baseline: Vec<Option<f64>>,
    /// The judgement, with its numbers.
    pub result: MetricResult,
}

/// What the final verdict needs of a run (stored with it and read back).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSummary {
    /// Whether the run passed.
    pub passed: bool,
    /// Limits queries.
    pub limits: Vec<LimitsResult>,
    /// The comparison verdict, when the step has comparison queries.
    pub comparison: Option<Outcome>,
    /// The comparison's one line.
    pub comparison_explanation: Option<String>,
}

/// A finished run: the summary, the comparison details, and one line.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// For the verdict.
    pub summary: RunSummary,
    /// For people.
    pub comparisons: Vec<ComparisonResult>,
    /// One line.
    pub explanation: String,
}

impl RunOutcome {
    /// The JSON stored in `analysis_runs.results`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "summary": self.summary, "comparisons": self.comparisons })
    }
}

/// The judge settings of a query's `judge` block.
pub fn settings(judge: &ferry_deploy::Judge) -> MetricSettings {
    MetricSettings {
        direction: match judge.direction {
            ferry_deploy::Direction::Increase => ferry_judge::Direction::Increase,
            ferry_deploy::Direction::Decrease => ferry_judge::Direction::Decrease,
            ferry_deploy::Direction::Either => ferry_judge::Direction::Either,
        },
        confidence: judge.confidence,
        tolerance: judge.tolerance,
        allowed_effect_size: judge.allowed_effect_size,
        min_samples: judge.min_samples,
        critical: judge.critical,
        must_have_data: judge.must_have_data,
        group: judge.group.clone(),
        weight: judge.weight,
        method: ferry_judge::Method::Auto,
    }
}

/// The score thresholds of the step: the strictest its queries ask for.
pub fn thresholds(step: &AnalysisStep) -> Thresholds {
    let judges: Vec<&ferry_deploy::Judge> = step
        .queries
        .iter()
        .filter_map(|q| q.judge.as_ref())
        .collect();
    if judges.is_empty() {
        return Thresholds::default();
    }
    Thresholds {
        pass: judges.iter().map(|j| j.pass).fold(0.0, f64::max),
        marginal: judges.iter().map(|j| j.marginal).fold(0.0, f64::max),
    }
}

/// Providers of one run, each opened once.
struct Providers<'a> {
    ctx: &'a RunContext,
    tenant: TenantId,
    opened: BTreeMap<String, Result<Provider, String>>,
}

impl Providers<'_> {
    async fn get(&mut self, name: &str) -> Result<Provider, String> {
        if let Some(p) = self.opened.get(name) {
            return p.clone();
        }
        let opened = match metric_providers::get(&self.ctx.store, self.tenant, name).await {
            Ok(row) => {
                match secrets::unseal(
                    &self.ctx.store,
                    self.ctx.key.as_ref(),
                    self.tenant,
                    &row.secret_refs,
                )
                .await
                {
                    Ok(credentials) => Ok(Provider {
                        name: row.name,
                        kind: row.kind,
                        base_url: row.base_url,
                        agent: row.agent,
                        credentials,
                    }),
                    Err(e) => Err(format!("metric provider {name:?}: {e}")),
                }
            }
            Err(e) if e.is_not_found() => Err(format!(
                "metric provider {name:?} is not configured in this tenant"
            )),
            Err(e) => Err(format!("metric provider {name:?}: {e}")),
        };
        self.opened.insert(name.to_string(), opened.clone());
        opened
    }
}

fn limits_of(q: &AnalysisQuery) -> Limits {
    Limits {
        lower: q.lower_limit,
        upper: q.upper_limit,
    }
}

/// Runs one query for one side; `Err` is why there is no answer (an error, not data).
async fn ask(
    ctx: &RunContext,
    providers: &mut Providers<'_>,
    tenant: TenantId,
    q: &AnalysisQuery,
    rendered: Result<String, String>,
    window: Window,
    shape: Shape,
) -> Result<Answer<Vec<f64>>, String> {
    let provider_name = q.metric_provider_name.as_deref().ok_or_else(|| {
        "no metric provider (metricProviderName or defaultMetricProviderName)".to_string()
    })?;
    let provider = providers.get(provider_name).await?;
    let rendered = rendered?;
    let query = secrets::resolve_in_query(&ctx.store, ctx.key.as_ref(), tenant, &rendered)
        .await
        .map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let answer = ctx
        .fetcher
        .fetch(tenant, &provider, &query, window, shape)
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let outcome = match &answer {
        Ok(Answer::Data(_)) => "data",
        Ok(Answer::Missing(_)) => "missing",
        Err(_) => "error",
    };
    ctx.metrics.query(provider.kind.as_str(), outcome, seconds);
    answer.map_err(|e: QueryError| format!("{provider_name}: {e}"))
}

fn points(values: &[f64]) -> Vec<Option<f64>> {
    values.iter().map(|v| v.is_finite().then_some(*v)).collect()
}

/// Runs judgment run `k` of `step`.
pub async fn judgment_run(
    ctx: &RunContext,
    tenant: TenantId,
    request: &AnalysisRequested,
    step: &AnalysisStep,
    window: Window,
) -> RunOutcome {
    let vars = spec::variables(request, step, window);
    let mut providers = Providers {
        ctx,
        tenant,
        opened: BTreeMap::new(),
    };
    let mut limits = Vec::new();
    let mut metrics = Vec::new();
    let mut comparisons = Vec::new();
    for q in &step.queries {
        match &q.judge {
            None => {
                let rendered = spec::render(&q.query_template, &vars);
                let value = match ask(
                    ctx,
                    &mut providers,
                    tenant,
                    q,
                    rendered,
                    window,
                    Shape::Value,
                )
                .await
                {
                    Ok(Answer::Data(v)) => RunValue::Value { value: v[0] },
                    Ok(Answer::Missing(reason)) => RunValue::Missing { reason },
                    Err(reason) => RunValue::Error { reason },
                };
                let check = judge_run(&q.name, &value, limits_of(q));
                limits.push(LimitsResult {
                    query: q.name.clone(),
                    value,
                    passed: check.passed,
                    explanation: check.explanation,
                });
            }
            Some(judge) => {
                let canary_q = spec::render(&q.query_template, &vars);
                let baseline_q = spec::render_baseline(&q.query_template, &vars);
                let canary = ask(
                    ctx,
                    &mut providers,
                    tenant,
                    q,
                    canary_q,
                    window,
                    Shape::Series,
                )
                .await;
                let baseline = ask(
                    ctx,
                    &mut providers,
                    tenant,
                    q,
                    baseline_q,
                    window,
                    Shape::Series,
                )
                .await;
                let settings = settings(judge);
                let (c, b, problem) = match (canary, baseline) {
                    (Ok(Answer::Data(c)), Ok(Answer::Data(b))) => (c, b, None),
                    (Err(e), _) => (vec![], vec![], Some(format!("canary: error: {e}"))),
                    (_, Err(e)) => (vec![], vec![], Some(format!("baseline: error: {e}"))),
                    (Ok(Answer::Missing(r)), _) => (vec![], vec![], Some(format!("canary: {r}"))),
                    (_, Ok(Answer::Missing(r))) => (vec![], vec![], Some(format!("baseline: {r}"))),
                };
                let mut result = ferry_judge::classify(&q.name, &c, &b, &settings);
                if let Some(problem) = problem {
                    result.explanation = format!("{} ({problem})", result.explanation);
                }
                comparisons.push(ComparisonResult {
                    query: q.name.clone(),
                    canary: points(&c),
                    baseline: points(&b),
                    result: result.clone(),
                });
                metrics.push(result);
            }
        }
    }
    let comparison = (!metrics.is_empty()).then(|| verdict(metrics, thresholds(step)));
    let passed = limits.iter().all(|l| l.passed)
        && comparison
            .as_ref()
            .is_none_or(|v| v.outcome != Outcome::Fail);
    let mut lines: Vec<String> = limits.iter().map(|l| l.explanation.clone()).collect();
    for c in &comparisons {
        lines.push(c.result.explanation.clone());
    }
    if let Some(v) = &comparison {
        lines.push(format!("comparison {}", v.explanation));
    }
    RunOutcome {
        summary: RunSummary {
            passed,
            limits,
            comparison: comparison.as_ref().map(|v| v.outcome),
            comparison_explanation: comparison.as_ref().map(|v| v.explanation.clone()),
        },
        comparisons,
        explanation: lines.join("; "),
    }
}
