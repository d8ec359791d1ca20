//! The comparison verdict over many metrics: the weighted share of passing metrics (groups
//! with weights, as Kayenta scores them), critical metrics that fail everything, and the
//! Pass / Inconclusive / Fail thresholds.

use crate::classify::{Classification, MetricResult};
use crate::format::num;
use serde::{Deserialize, Serialize};

/// Score thresholds (0..100).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// At or above: Pass.
    pub pass: f64,
    /// At or above (and below `pass`): Inconclusive; below: Fail.
    pub marginal: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            pass: 95.0,
            marginal: 75.0,
        }
    }
}

/// The verdict's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The canary is good.
    Pass,
    /// A person decides.
    Inconclusive,
    /// The canary is bad.
    Fail,
}

/// The verdict over all metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Pass, Inconclusive or Fail.
    pub outcome: Outcome,
    /// The weighted score, when any metric counted.
    pub score: Option<f64>,
    /// The thresholds applied.
    pub thresholds: Thresholds,
    /// Every metric's result.
    pub metrics: Vec<MetricResult>,
    /// One line: the score, the thresholds and what decided.
    pub explanation: String,
}

/// Whether a metric counts as passing (a harmless High or Low passes).
fn passes(m: &MetricResult) -> bool {
    matches!(
        m.classification,
        Classification::Pass | Classification::High | Classification::Low
    ) && !m.failed
}

/// Scores `metrics`. A group's score is the share of its counted metrics that pass (NoData
/// without `mustHaveData`, and Inconclusive metrics with too few points, do not count); its
/// weight is the largest its metrics give; the score is the weighted mean of group scores. An
/// Inconclusive metric keeps the verdict from being Pass: at best it is Inconclusive.
pub fn verdict(metrics: Vec<MetricResult>, thresholds: Thresholds) -> Verdict {
    let mut groups: Vec<(String, f64, usize, usize)> = Vec::new();
    for m in &metrics {
        let counted = !matches!(
            m.classification,
            Classification::NoData | Classification::Inconclusive
        ) || m.failed;
        let i = match groups.iter().position(|g| g.0 == m.group) {
            Some(i) => i,
            None => {
                groups.push((m.group.clone(), m.weight, 0, 0));
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        g.1 = g.1.max(m.weight);
        if counted {
            g.2 += 1;
            if passes(m) {
                g.3 += 1;
            }
        }
    }
    let (mut weighted, mut weights) = (0.0, 0.0);
    for (_, weight, counted, passing) in &groups {
        if *counted > 0 {
            weighted += weight * (*passing as f64 / *counted as f64 * 100.0);
            weights += weight;
        }
    }
    let score = (weights > 0.0).then(|| weighted / weights);
    let critical: Vec<&str> = metrics
        .iter()
        .filter(|m| m.critical && m.failed)
        .map(|m| m.name.as_str())
        .collect();
    let failing: Vec<String> = metrics
        .iter()
        .filter(|m| {
            !passes(m)
                && (!matches!(
                    m.classification,
                    Classification::NoData | Classification::Inconclusive
                ) || m.failed)
        })
        .map(|m| format!("{} {:?}", m.name, m.classification))
        .collect();
    let undecided: Vec<&str> = metrics
        .iter()
        .filter(|m| m.classification == Classification::Inconclusive)
        .map(|m| m.name.as_str())
        .collect();
    let rules = format!(
        "pass at {}, marginal at {}",
        num(thresholds.pass),
        num(thresholds.marginal)
    );
    let (outcome, explanation) = match score {
        _ if !critical.is_empty() => (
            Outcome::Fail,
            format!("critical metric failed: {}", critical.join(", ")),
        ),
        None if !undecided.is_empty() => (
            Outcome::Inconclusive,
            format!("too few points to judge: {}", undecided.join(", ")),
        ),
        None => (
            Outcome::Inconclusive,
            "no metric had data on both sides".to_string(),
        ),
        Some(s) => {
            let outcome = if s >= thresholds.pass {
                Outcome::Pass
            } else if s >= thresholds.marginal {
                Outcome::Inconclusive
            } else {
                Outcome::Fail
            };
            let mut why = if failing.is_empty() {
                "every judged metric passed".to_string()
            } else {
                format!("not passing: {}", failing.join(", "))
            };
            let outcome = if outcome == Outcome::Pass && !undecided.is_empty() {
                Outcome::Inconclusive
            } else {
                outcome
            };
            if !undecided.is_empty() {
                why.push_str(&format!(
                    "; too few points to judge: {}",
                    undecided.join(", ")
                ));
            }
            (outcome, format!("score {} ({rules}); {why}", num(s)))
        }
    };
    Verdict {
        outcome,
        score,
        thresholds,
        explanation: format!("{outcome:?}: {explanation}"),
        metrics,
    }
}
