//! The analysis verdict from its runs. Limits queries: the mean of each query's run values
//! within its limits, every run having a value (ferry-judge's limits judge). Comparison: Fail
//! if any run's comparison failed, otherwise the last run's outcome (a growing window's last
//! run holds all the data). Pass only when everything passed; Inconclusive when the comparison
//! could not decide; Fail otherwise. The reason is one line, failures first.

use crate::run::RunSummary;
use ferry_deploy::AnalysisStep;
use ferry_judge::{Limits, Outcome, RunValue, judge_query};
use ferry_store::analysis::AnalysisStatus;

/// The verdict and its reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Conclusion {
    /// Passed, Failed or Inconclusive.
    pub status: AnalysisStatus,
    /// One line.
    pub reason: String,
    /// Per query: its final one-line judgement and whether it passed.
    pub queries: Vec<(String, bool, String)>,
}

/// Concludes an analysis from the summaries of its finished runs. `aborted` is the run that
/// ended it early (abortOnFailedJudgment), if any.
pub fn conclude(step: &AnalysisStep, runs: &[RunSummary], aborted: Option<usize>) -> Conclusion {
    let mut queries = Vec::new();
    for q in step.queries.iter().filter(|q| q.judge.is_none()) {
        let values: Vec<RunValue> = runs
            .iter()
            .filter_map(|r| r.limits.iter().find(|l| l.query == q.name))
            .map(|l| l.value.clone())
            .collect();
        let check = judge_query(
            &q.name,
            &values,
            Limits {
                lower: q.lower_limit,
                upper: q.upper_limit,
            },
        );
        queries.push((q.name.clone(), check.passed, check.explanation));
    }
    let compared: Vec<(Outcome, &str)> = runs
        .iter()
        .filter_map(|r| Some((r.comparison?, r.comparison_explanation.as_deref()?)))
        .collect();
    let comparison = if compared.is_empty() {
        None
    } else if let Some((i, (_, why))) = compared
        .iter()
        .enumerate()
        .find(|(_, (o, _))| *o == Outcome::Fail)
    {
        Some((Outcome::Fail, format!("comparison in run {}: {why}", i + 1)))
    } else {
        let (o, why) = compared[compared.len() - 1];
        Some((o, format!("comparison: {why}")))
    };
    let limits_ok = queries.iter().all(|(_, ok, _)| *ok);
    let status = match (&comparison, limits_ok) {
        _ if aborted.is_some() => AnalysisStatus::Failed,
        (_, false) | (Some((Outcome::Fail, _)), _) => AnalysisStatus::Failed,
        (Some((Outcome::Inconclusive, _)), true) => AnalysisStatus::Inconclusive,
        _ => AnalysisStatus::Passed,
    };
    let mut failing: Vec<String> = queries
        .iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(_, _, why)| why.clone())
        .collect();
    let mut passing: Vec<String> = queries
        .iter()
        .filter(|(_, ok, _)| *ok)
        .map(|(_, _, why)| why.clone())
        .collect();
    if let Some((o, why)) = comparison {
        if o == Outcome::Pass {
            passing.push(why);
        } else {
            failing.push(why);
        }
    }
    failing.append(&mut passing);
    let mut reason = failing.join("; ");
    if let Some(run) = aborted.and_then(|i| Some((i, runs.get(i)?))) {
        // The run that stopped the analysis decides; its failing checks are the reason.
        let (i, summary) = run;
        let mut why: Vec<String> = summary
            .limits
            .iter()
            .filter(|l| !l.passed)
            .map(|l| l.explanation.clone())
            .collect();
        if summary.comparison == Some(Outcome::Fail) {
            why.extend(summary.comparison_explanation.clone());
        }
        reason = format!(
            "run {} of {} failed, analysis stopped (abortOnFailedJudgment): {}",
            i + 1,
            step.number_of_judgment_runs,
            why.join("; ")
        );
    }
    Conclusion {
        status,
        reason,
        queries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::LimitsResult;
    use ferry_deploy::{AnalysisQuery, LookbackMethod, Mode};

    fn step() -> AnalysisStep {
        AnalysisStep {
            interval_secs: 10,
            number_of_judgment_runs: 3,
            lookback_method: LookbackMethod::Growing,
            roll_back_mode: Mode::Automatic,
            roll_forward_mode: Mode::Automatic,
            abort_on_failed_judgment: false,
            context: Default::default(),
            queries: vec![AnalysisQuery {
                name: "errors".into(),
                query_template: "x".into(),
                upper_limit: Some(1.0),
                lower_limit: None,
                metric_provider_name: Some("prom".into()),
                judge: None,
            }],
        }
    }

    fn run(value: RunValue) -> RunSummary {
        RunSummary {
            passed: true,
            limits: vec![LimitsResult {
                query: "errors".into(),
                value,
                passed: true,
                explanation: String::new(),
            }],
            comparison: None,
            comparison_explanation: None,
        }
    }

    #[test]
    fn the_mean_of_all_runs_decides_and_errors_fail_with_their_reason() {
        let v = |value| run(RunValue::Value { value });
        let c = conclude(&step(), &[v(0.5), v(1.5), v(0.5)], None);
        assert_eq!(c.status, AnalysisStatus::Passed);
        assert_eq!(c.reason, "errors mean 0.8333 over 3 runs, within [-inf, 1]");
        let c = conclude(&step(), &[v(0.5), v(1.5), v(1.5)], None);
        assert_eq!(c.status, AnalysisStatus::Failed);
        let err = run(RunValue::Error {
            reason: "prom: cannot reach prom.internal".into(),
        });
        let c = conclude(&step(), &[v(0.5), err], None);
        assert_eq!(c.status, AnalysisStatus::Failed);
        assert_eq!(
            c.reason,
            "run 2: errors: provider error: prom: cannot reach prom.internal"
        );
    }

    #[test]
    fn an_aborted_analysis_fails_with_the_run_that_stopped_it() {
        let mut bad = run(RunValue::Value { value: 3.0 });
        bad.passed = false;
        bad.limits[0].passed = false;
        bad.limits[0].explanation = "errors = 3, above upperLimit 1".into();
        let c = conclude(
            &step(),
            &[run(RunValue::Value { value: 0.0 }), bad],
            Some(1),
        );
        assert_eq!(
            c.status,
            AnalysisStatus::Failed,
            "even though the mean 1.5 is not the point"
        );
        assert_eq!(
            c.reason,
            "run 2 of 3 failed, analysis stopped (abortOnFailedJudgment): errors = 3, above upperLimit 1"
        );
    }
}
