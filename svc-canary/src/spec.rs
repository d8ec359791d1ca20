//! What an analysis runs, resolved once when it is requested: the analysis step named by the
//! request (`step:<i>`, `before:<i>`, `after:<i>`, `redirect:<i>`, `shutdown:<i>`) from the
//! deployment's stored plan, and per run the time window and the variables its queries are
//! rendered with.
//!
//! Windows: run `k` (from 0) ends at `start + (k + 1) · interval`; `growing` windows begin at
//! the analysis start, `sliding` ones one interval before their end. Time variables per run:
//! `startTime*` and `endTime*` of the window, `intervalSeconds`/`intervalMillis` the step's
//! interval, `promQlStepInterval` the window's length (`"300s"`), for `rate(x[…])` over it.
//! A comparison query is rendered twice: as written for the canary, and with
//! `replicaSetName` set to `baselineReplicaSetName` for the baseline.

use crate::providers::Window;
use chrono::{DateTime, SecondsFormat, Utc};
use ferry_bus::messages::AnalysisRequested;
use ferry_deploy::rendering::{self, SecretRefs, Variables};
use ferry_deploy::{AnalysisStep, LookbackMethod, Plan, Step, Strategy};

/// Finds the analysis step `step_key` of `target` in `plan`.
pub fn find_step(plan: &Plan, target: &str, step_key: &str) -> Result<AnalysisStep, String> {
    let t = plan
        .targets
        .iter()
        .find(|t| t.name == target)
        .ok_or_else(|| format!("the deployment has no target {target:?}"))?;
    let (kind, index) = step_key
        .split_once(':')
        .and_then(|(k, i)| Some((k, i.parse::<usize>().ok()?)))
        .ok_or_else(|| format!("step key {step_key:?} is not <kind>:<index>"))?;
    let steps: &[Step] = match (kind, &t.strategy) {
        ("step", Strategy::Canary { steps }) => steps,
        ("before", _) => &t.before_deployment,
        ("after", _) => &t.after_deployment,
        (
            "redirect",
            Strategy::BlueGreen {
                redirect_traffic_after,
                ..
            },
        ) => redirect_traffic_after,
        (
            "shutdown",
            Strategy::BlueGreen {
                shut_down_old_version_after,
                ..
            },
        ) => shut_down_old_version_after,
        _ => return Err(format!("target {target:?} has no steps {kind:?}")),
    };
    match steps.get(index) {
        Some(Step::Analysis(a)) => Ok(a.clone()),
        Some(_) => Err(format!("step {step_key} of {target:?} is not an analysis")),
        None => Err(format!("target {target:?} has no step {step_key}")),
    }
}

/// The most judgment runs a deploy file may ask for.
const MAX_RUNS: u32 = 10_000;

/// A step's interval in seconds, at least one, at most the deploy file's longest duration (a
/// plan stored before durations were capped may hold more, which would overflow the window
/// arithmetic).
pub fn interval_secs(step: &AnalysisStep) -> u64 {
    step.interval_secs
        .clamp(1, ferry_deploy::limits::MAX_DURATION_SECS)
}

/// The window of run `k` (from 0).
pub fn window(step: &AnalysisStep, started: DateTime<Utc>, k: u32) -> Window {
    let interval = chrono::Duration::seconds(interval_secs(step) as i64);
    let end = started + interval * (k.min(MAX_RUNS) as i32 + 1);
    let start = match step.lookback_method {
        LookbackMethod::Growing => started,
        LookbackMethod::Sliding => end - interval,
    };
    Window { start, end }
}

/// The variables of one run.
pub fn variables(request: &AnalysisRequested, step: &AnalysisStep, window: Window) -> Variables {
    let mut vars = Variables::default();
    for (k, v) in &request.variables {
        vars.set(k, v.clone());
    }
    for (k, v) in &request.context {
        vars.context.insert(k.clone(), v.clone());
    }
    let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    vars.set("startTimeIso8601", iso(window.start))
        .set(
            "startTimeEpochSeconds",
            window.start.timestamp().to_string(),
        )
        .set(
            "startTimeEpochMillis",
            window.start.timestamp_millis().to_string(),
        )
        .set("endTimeIso8601", iso(window.end))
        .set("endTimeEpochSeconds", window.end.timestamp().to_string())
        .set(
            "endTimeEpochMillis",
            window.end.timestamp_millis().to_string(),
        )
        .set("intervalSeconds", interval_secs(step).to_string())
        .set("intervalMillis", (interval_secs(step) * 1000).to_string())
        .set("promQlStepInterval", format!("{}s", window.secs()));
    vars
}

/// Renders a query for the canary side; `{{secrets.X}}` stays for the last moment.
pub fn render(template: &str, vars: &Variables) -> Result<String, String> {
    rendering::render(template, vars, SecretRefs::Keep).map_err(|e| e.to_string())
}

/// Renders a query for the baseline side: `replicaSetName` is the baseline's.
pub fn render_baseline(template: &str, vars: &Variables) -> Result<String, String> {
    let Some(baseline) = vars.ferry.get("baselineReplicaSetName").cloned() else {
        return Err(
            "no baseline ReplicaSet for this analysis (the scheduler starts one for canary steps with judge queries)"
                .into(),
        );
    };
    let mut vars = vars.clone();
    vars.set("replicaSetName", baseline);
    render(template, &vars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use ferry_deploy::Mode;
    use std::collections::BTreeMap;

    fn step(lookback: LookbackMethod) -> AnalysisStep {
        AnalysisStep {
            interval_secs: 60,
            number_of_judgment_runs: 3,
            lookback_method: lookback,
            roll_back_mode: Mode::Automatic,
            roll_forward_mode: Mode::Automatic,
            abort_on_failed_judgment: false,
            context: Default::default(),
            queries: vec![],
        }
    }

    #[test]
    fn growing_windows_start_at_the_analysis_start_and_sliding_ones_move() {
        let t0 = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let g = window(&step(LookbackMethod::Growing), t0, 2);
        assert_eq!(
            (g.start.timestamp(), g.end.timestamp()),
            (1_700_000_000, 1_700_000_180)
        );
        let s = window(&step(LookbackMethod::Sliding), t0, 2);
        assert_eq!(
            (s.start.timestamp(), s.end.timestamp()),
            (1_700_000_120, 1_700_000_180)
        );
    }

    /// A plan stored before durations were capped may hold an interval of u32::MAX hours:
    /// the window arithmetic overflowed chrono (a panic on every delivery); now it is capped.
    #[test]
    fn windows_of_huge_intervals_do_not_overflow() {
        let t0 = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let mut huge = step(LookbackMethod::Sliding);
        huge.interval_secs = u64::from(u32::MAX) * 3600;
        let w = window(&huge, t0, 9_999);
        let year = ferry_deploy::limits::MAX_DURATION_SECS as i64;
        assert_eq!(w.end.timestamp() - w.start.timestamp(), year);
        assert_eq!(w.end.timestamp(), 1_700_000_000 + 10_000 * year);
        let _ = window(&huge, t0, u32::MAX);
    }

    #[test]
    fn queries_render_with_time_context_and_baseline_variables() {
        let t0 = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let st = step(LookbackMethod::Growing);
        let request = AnalysisRequested {
            deployment_id: uuid::Uuid::nil(),
            target: "prod".into(),
            step_index: 1,
            analysis_id: uuid::Uuid::nil(),
            step_key: "step:1".into(),
            account: "prod-cluster".into(),
            variables: BTreeMap::from([
                ("replicaSetName".to_string(), "web-new".to_string()),
                ("baselineReplicaSetName".to_string(), "web-base".to_string()),
            ]),
            context: BTreeMap::from([("slo".to_string(), "99.5".to_string())]),
        };
        let vars = variables(&request, &st, window(&st, t0, 1));
        let q = "rate(x{rs=\"{{ferry.replicaSetName}}\"}[{{armory.promQlStepInterval}}]) < {{context.slo}} @ {{ferry.endTimeEpochSeconds}} {{secrets.token}}";
        assert_eq!(
            render(q, &vars).unwrap(),
            "rate(x{rs=\"web-new\"}[120s]) < 99.5 @ 1700000120 {{secrets.token}}"
        );
        assert!(
            render_baseline(q, &vars)
                .unwrap()
                .contains("rs=\"web-base\"")
        );
        assert_eq!(
            vars.ferry["startTimeIso8601"], "2023-11-14T22:13:20Z",
            "ISO 8601 in UTC"
        );
        let err = render("{{context.missing}}", &vars).unwrap_err();
        assert!(err.contains("context.missing"), "{err}");
    }
}
