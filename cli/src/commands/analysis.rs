//! `ferry analysis compare`: the comparison judge (`ferry-judge`) on two local samples, so a
//! user can check a metric offline with the numbers Ferry would use. Prints the explanation
//! and the test's figures, or with `--output json` one object with at least `u` (U of the
//! canary), `p_value`, `hl_estimate`, `ci_low`, `ci_high`, `classification`, `explanation`.
//!
//! `ferry analysis try`: a deploy file's queries over a past range through
//! `POST /v1/analysis/retrospective`, printed as a table of runs and the verdict (exit 0 when
//! it passed, 1 otherwise). Also the analyses section of `ferry deploy status`.

use std::path::Path;
use std::process::ExitCode;

use std::collections::BTreeMap;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use ferry_api::DeploymentId;
use ferry_api::analysis::{
    Analysis, AnalysisStatus, JudgmentRun, MetricProvider, PutProvider, RetrospectiveRequest,
    RetrospectiveResponse,
};
use ferry_judge::{Method, MetricSettings, classify};
use serde_json::{Value, json};

use crate::args::Format;
use crate::args::analysis::{
    AnalysisCommand, CompareArgs, DirectionArg, MethodArg, SetProviderArgs, TryArgs,
};
use crate::commands::Ctx;
use crate::output::{self, Table, or_dash};

/// Samples larger than this are refused: the file is not a sample but a mistake.
const MAX_POINTS: usize = 10_000_000;

/// Runs an `analysis` subcommand.
pub(super) async fn run(ctx: &Ctx, command: AnalysisCommand) -> anyhow::Result<ExitCode> {
    match command {
        AnalysisCommand::Compare(args) => compare(&args, ctx.format()),
        AnalysisCommand::Try(args) => try_queries(ctx, &args).await,
        AnalysisCommand::SetProvider(args) => set_provider(ctx, &args).await,
        AnalysisCommand::Providers => {
            let list: Vec<MetricProvider> = ctx.client()?.get("/v1/metric-providers", &[]).await?;
            output::emit(ctx.format(), &list, |l| providers_text(l));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The providers as `ferry analysis providers` lists them: the credential fields they use,
/// never the secrets' names or values.
fn providers_text(list: &[MetricProvider]) -> String {
    let mut t = Table::new(&["NAME", "KIND", "BASE URL", "AGENT", "SECRETS"]);
    for p in list {
        let refs: Vec<&str> = p.secret_refs.keys().map(String::as_str).collect();
        t.row(vec![
            or_dash(Some(&p.name)),
            p.kind.to_string(),
            or_dash(Some(&p.base_url)),
            or_dash(p.agent.as_deref()),
            refs.join(","),
        ]);
    }
    t.render("no metric providers")
}

/// Reads one number per line; `NaN` and `inf` are numbers the judge drops and counts.
pub(super) fn read_sample(path: &Path) -> anyhow::Result<Vec<f64>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut values = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let v: f64 = line.parse().map_err(|_| {
            anyhow::anyhow!("{}:{}: {line:?} is not a number", path.display(), i + 1)
        })?;
        values.push(v);
        if values.len() > MAX_POINTS {
            anyhow::bail!("{}: more than {MAX_POINTS} points", path.display());
        }
    }
    Ok(values)
}

fn compare(args: &CompareArgs, format: Format) -> anyhow::Result<ExitCode> {
    if !(args.confidence > 0.0 && args.confidence < 1.0) {
        anyhow::bail!("--confidence must be between 0 and 1");
    }
    let baseline = read_sample(&args.baseline)?;
    let canary = read_sample(&args.canary)?;
    let settings = MetricSettings {
        direction: match args.direction {
            DirectionArg::Increase => ferry_judge::Direction::Increase,
            DirectionArg::Decrease => ferry_judge::Direction::Decrease,
            DirectionArg::Either => ferry_judge::Direction::Either,
        },
        confidence: args.confidence,
        tolerance: args.tolerance,
        min_samples: args.min_samples,
        method: match args.method {
            MethodArg::Auto => Method::Auto,
            MethodArg::Exact => Method::Exact,
            MethodArg::Asymptotic => Method::Asymptotic,
        },
        ..MetricSettings::default()
    };
    let r = classify(&args.name, &canary, &baseline, &settings);
    let mw = r.mann_whitney.as_ref();
    let shift = r.shift.as_ref();
    let value = json!({
        "u": mw.map(|m| m.u),
        "p_value": mw.map(|m| m.p_value),
        "method": mw.map(|m| m.method),
        "z": mw.and_then(|m| m.z),
        "hl_estimate": shift.map(|s| s.estimate),
        "ci_low": shift.map(|s| s.ci_low),
        "ci_high": shift.map(|s| s.ci_high),
        "confidence": args.confidence,
        "classification": r.classification,
        "failed": r.failed,
        "decided_by": r.decided_by,
        "effect_size": r.effect_size,
        "canary": r.canary,
        "baseline": r.baseline,
        "dispersion": r.dispersion,
        "rate": r.rate,
        "explanation": r.explanation,
    });
    output::emit(format, &value, text);
    Ok(ExitCode::SUCCESS)
}

fn text(v: &Value) -> String {
    let mut out = format!("{}\n\n", output::field(v, "explanation"));
    let mut t = Table::new(&["", "CANARY", "BASELINE"]);
    for (label, key) in [("points", "n"), ("median", "median"), ("mean", "mean")] {
        t.row(vec![
            label.into(),
            output::field(&v["canary"], key),
            output::field(&v["baseline"], key),
        ]);
    }
    out.push_str(&t.render(""));
    out.push('\n');
    let mut t = Table::new(&["U", "P-VALUE", "METHOD", "HL SHIFT", "CI", "CLASS"]);
    t.row(vec![
        output::field(v, "u"),
        output::field(v, "p_value"),
        output::field(v, "method"),
        output::field(v, "hl_estimate"),
        format!(
            "{}..{}",
            output::field(v, "ci_low"),
            output::field(v, "ci_high")
        ),
        output::field(v, "classification"),
    ]);
    out.push_str(&t.render(""));
    out
}

/// A time: RFC 3339, `now`, or relative to now (`-2h`, `-30m`, `-90s`, `-1d`).
pub(super) fn parse_time(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    let text = text.trim();
    if text == "now" {
        return Ok(now);
    }
    if let Some(ago) = text.strip_prefix('-') {
        let secs = parse_secs(ago)?;
        return Ok(now - chrono::Duration::seconds(secs as i64));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| anyhow::anyhow!("{text:?} is not a time: RFC 3339, now, or -2h / -30m / -90s"))
}

/// Seconds from `90`, `90s`, `5m`, `2h`, `1d`.
pub(super) fn parse_secs(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| anyhow::anyhow!("{text:?} is not a duration (90s, 5m, 2h, 1d)"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => anyhow::bail!("{text:?}: the unit is s, m, h or d"),
    };
    Ok(n * scale)
}

fn pairs(entries: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for entry in entries.iter().flat_map(|e| e.split(',')) {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let (k, v) = entry
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("{what} {entry:?}: write KEY=VALUE"))?;
        out.insert(k.trim().to_string(), v.to_string());
    }
    Ok(out)
}

/// Runs `ferry analysis set-provider`.
async fn set_provider(ctx: &Ctx, args: &SetProviderArgs) -> anyhow::Result<ExitCode> {
    let body = PutProvider {
        kind: args.kind.clone(),
        base_url: args.base_url.clone(),
        secret_refs: pairs(&args.secret_refs, "--secret-ref")?,
        agent: args.agent.clone(),
    };
    let path = format!(
        "/v1/metric-providers/{}",
        crate::commands::segment(&args.name)
    );
    let saved: MetricProvider = ctx.client()?.put(&path, &body).await?;
    output::emit(ctx.format(), &saved, |p| {
        format!(
            "metric provider {} ({}) at {}\n",
            or_dash(Some(&p.name)),
            p.kind,
            or_dash(Some(&p.base_url))
        )
    });
    Ok(ExitCode::SUCCESS)
}

/// Runs `ferry analysis try`.
pub(super) async fn try_queries(ctx: &Ctx, args: &TryArgs) -> anyhow::Result<ExitCode> {
    let input = crate::files::DeployInput::read(&args.file, args.allow_outside_repo)?;
    if input.file.is_none() {
        return Ok(input.report(&input.parse_errors, &input.label));
    }
    let plan = match ferry_deploy::check(
        &input.label,
        &input.text,
        &input.sources,
        &ferry_deploy::Overrides::default(),
    ) {
        Ok(plan) => plan,
        Err(diags) => return Ok(input.report(diags.items(), &input.label)),
    };
    let queries: Vec<&ferry_deploy::AnalysisQuery> = if args.queries.is_empty() {
        plan.queries.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for name in &args.queries {
            let q = plan
                .queries
                .iter()
                .find(|q| &q.name == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = plan.queries.iter().map(|q| q.name.as_str()).collect();
                    anyhow::anyhow!(
                        "{}: no query {name:?} (it has: {})",
                        input.label,
                        known.join(", ")
                    )
                })?;
            chosen.push(q);
        }
        chosen
    };
    if queries.is_empty() {
        anyhow::bail!("{}: the file defines no analysis queries", input.label);
    }
    let now = Utc::now();
    let deployment_id = (args.deployment.as_deref())
        .map(|d| {
            d.parse::<DeploymentId>()
                .map_err(|_| anyhow::anyhow!("--deployment {d:?} is not a deployment id"))
        })
        .transpose()?;
    let body = RetrospectiveRequest {
        queries: queries.into_iter().cloned().collect(),
        metric_provider_name: plan.default_metric_provider_name.clone(),
        from: parse_time(&args.from, now)?,
        to: parse_time(&args.to, now)?,
        interval_seconds: args.interval.as_deref().map(parse_secs).transpose()?,
        lookback_method: args.lookback.clone(),
        context: pairs(&args.context, "--context")?,
        variables: pairs(&args.vars, "--var")?,
        deployment_id,
        target: args.target.clone(),
    };
    let answer: RetrospectiveResponse = ctx
        .client()?
        .post("/v1/analysis/retrospective", &body)
        .await?;
    output::emit(ctx.format(), &answer, try_text);
    Ok(if answer.verdict.status == AnalysisStatus::Passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A run's window as `MM-DD HH:MM:SS..MM-DD HH:MM:SS` (UTC).
fn window(run: &JudgmentRun) -> String {
    let short = |t: DateTime<Utc>| t.format("%m-%d %H:%M:%S").to_string();
    format!("{}..{}", short(run.window_start), short(run.window_end))
}

fn try_text(answer: &RetrospectiveResponse) -> String {
    let mut t = Table::new(&["RUN", "WINDOW (UTC)", "PASSED", "VALUES AND REASONS"]);
    for run in &answer.runs {
        t.row(vec![
            (u64::from(run.index) + 1).to_string(),
            window(run),
            if run.passed { "yes" } else { "no" }.into(),
            or_dash(Some(&run.explanation)),
        ]);
    }
    let mut out = t.render("no runs");
    out.push_str(&format!(
        "\nverdict: {}: {}\n",
        answer.verdict.status,
        or_dash(Some(&answer.verdict.reason))
    ));
    out
}

/// A deployment's analyses as `ferry deploy status` prints them under the progress tree.
pub(super) fn analyses_text(list: &[Analysis]) -> String {
    if list.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nAnalyses:\n");
    for a in list {
        let reason = (a.reason.as_deref())
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {} {}  {} (run {} of {}){reason}\n",
            or_dash(Some(&a.target)),
            or_dash(Some(&a.step_key)),
            a.status,
            a.runs_done,
            a.total_runs,
        ));
        for run in &a.runs {
            out.push_str(&format!(
                "    run {} {} {}: {}\n",
                u64::from(run.index) + 1,
                window(run),
                if run.passed { "passed" } else { "failed" },
                or_dash(Some(&run.explanation)),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_parse() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-02T20:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let time = |text: &str| parse_time(text, now).unwrap().to_rfc3339();
        assert_eq!(time("-2h"), "2026-12-02T18:00:00+00:00");
        assert_eq!(time("now"), "2026-12-02T20:00:00+00:00");
        assert_eq!(
            time("2026-12-02T19:00:00+01:00"),
            "2026-12-02T18:00:00+00:00"
        );
        assert!(parse_time("yesterday", now).is_err());
        assert_eq!(parse_secs("90").unwrap(), 90);
        assert_eq!(parse_secs("5m").unwrap(), 300);
        assert!(parse_secs("5w").is_err());
    }

    #[test]
    fn deploy_status_lists_each_analysis_and_its_runs() {
        let list: Vec<Analysis> = serde_json::from_value(json!([{
            "id": "0193a000-0000-7000-8000-000000000001",
            "startedAt": "2026-12-02T18:00:00Z", "nextRunAt": null, "completedAt": null,
            "verdict": null,
            "target": "prod", "stepKey": "step:1", "status": "failed",
            "reason": "run 2: error-rate = 3.2, above upperLimit 1",
            "runsDone": 2, "totalRuns": 3,
            "runs": [
                {"index": 0, "results": {}, "windowStart": "2026-12-02T18:00:00Z", "windowEnd": "2026-12-02T18:01:00Z",
                 "passed": true, "explanation": "error-rate = 0.2, within [0, 1]"},
                {"index": 1, "results": {}, "windowStart": "2026-12-02T18:00:00Z", "windowEnd": "2026-12-02T18:02:00Z",
                 "passed": false, "explanation": "error-rate = 3.2, above upperLimit 1"},
            ],
        }]))
        .unwrap();
        assert_eq!(
            analyses_text(&list),
            "\nAnalyses:\n  prod step:1  failed (run 2 of 3): run 2: error-rate = 3.2, above upperLimit 1\n    run 1 12-02 18:00:00..12-02 18:01:00 passed: error-rate = 0.2, within [0, 1]\n    run 2 12-02 18:00:00..12-02 18:02:00 failed: error-rate = 3.2, above upperLimit 1\n"
        );
        assert_eq!(analyses_text(&[]), "");
    }
}
