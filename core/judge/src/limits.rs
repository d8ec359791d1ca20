//! The limits judge: the deploy file's own semantics. Each judgment run yields one value per
//! query; a run fails when its value is missing, an error, or outside `[lowerLimit,
//! upperLimit]` (inclusive); a query passes when every run has a value and their mean lies
//! within the limits.

use crate::format::num;
use serde::{Deserialize, Serialize};

/// What one run of a query produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunValue {
    /// A number.
    Value {
        /// The value.
        value: f64,
    },
    /// The query answered without a usable number (no series, many series, NaN).
    Missing {
        /// Why.
        reason: String,
    },
    /// The provider could not be asked or answered an error (after retries).
    Error {
        /// Why.
        reason: String,
    },
}

/// Inclusive limits; a missing side is unbounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Lower limit.
    pub lower: Option<f64>,
    /// Upper limit.
    pub upper: Option<f64>,
}

impl Limits {
    /// Whether `v` lies within the limits.
    pub fn contains(&self, v: f64) -> bool {
        v.is_finite() && self.lower.is_none_or(|l| v >= l) && self.upper.is_none_or(|u| v <= u)
    }

    fn describe(&self, v: f64) -> String {
        match (self.lower, self.upper) {
            (Some(l), _) if v < l => format!("below lowerLimit {}", num(l)),
            (_, Some(u)) if v > u => format!("above upperLimit {}", num(u)),
            (l, u) => format!(
                "within [{}, {}]",
                l.map_or_else(|| "-inf".into(), num),
                u.map_or_else(|| "+inf".into(), num)
            ),
        }
    }
}

/// A run's or a query's judgement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LimitsCheck {
    /// Whether it passed.
    pub passed: bool,
    /// The mean judged, when there was one.
    pub mean: Option<f64>,
    /// One line.
    pub explanation: String,
}

/// Judges one run's value of query `name`.
pub fn judge_run(name: &str, value: &RunValue, limits: Limits) -> LimitsCheck {
    match value {
        RunValue::Value { value } if value.is_finite() => LimitsCheck {
            passed: limits.contains(*value),
            mean: Some(*value),
            explanation: format!("{name} = {}, {}", num(*value), limits.describe(*value)),
        },
        RunValue::Value { value } => LimitsCheck {
            passed: false,
            mean: None,
            explanation: format!("{name}: the query returned {value}, not a number to judge"),
        },
        RunValue::Missing { reason } => LimitsCheck {
            passed: false,
            mean: None,
            explanation: format!("{name}: no value: {reason}"),
        },
        RunValue::Error { reason } => LimitsCheck {
            passed: false,
            mean: None,
            explanation: format!("{name}: provider error: {reason}"),
        },
    }
}

/// Judges a query over all its runs.
pub fn judge_query(name: &str, runs: &[RunValue], limits: Limits) -> LimitsCheck {
    if runs.is_empty() {
        return LimitsCheck {
            passed: false,
            mean: None,
            explanation: format!("{name}: no judgment run finished"),
        };
    }
    let mut values = Vec::with_capacity(runs.len());
    for (i, run) in runs.iter().enumerate() {
        let check = judge_run(name, run, limits);
        match (run, check.mean) {
            (RunValue::Value { .. }, Some(v)) => values.push(v),
            _ => {
                return LimitsCheck {
                    passed: false,
                    mean: None,
                    explanation: format!("run {}: {}", i + 1, check.explanation),
                };
            }
        }
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let passed = limits.contains(mean);
    LimitsCheck {
        passed,
        mean: Some(mean),
        explanation: format!(
            "{name} mean {} over {} run{}, {}",
            num(mean),
            values.len(),
            if values.len() == 1 { "" } else { "s" },
            limits.describe(mean)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(value: f64) -> RunValue {
        RunValue::Value { value }
    }

    #[test]
    fn the_mean_of_the_runs_decides_with_inclusive_limits() {
        let limits = Limits {
            lower: Some(0.0),
            upper: Some(1.0),
        };
        let ok = judge_query("errors", &[v(0.5), v(1.0), v(1.5)], limits);
        assert!(ok.passed, "{ok:?}");
        assert_eq!(ok.explanation, "errors mean 1 over 3 runs, within [0, 1]");
        let bad = judge_query("errors", &[v(1.0), v(1.2)], limits);
        assert!(!bad.passed);
        assert_eq!(
            bad.explanation,
            "errors mean 1.1 over 2 runs, above upperLimit 1"
        );
        assert!(judge_run("errors", &v(1.0), limits).passed);
        assert!(!judge_run("errors", &v(-0.001), limits).passed);
    }

    #[test]
    fn missing_values_errors_and_nan_fail_with_their_reason() {
        let limits = Limits {
            lower: None,
            upper: Some(1.0),
        };
        let runs = [
            v(0.1),
            RunValue::Missing {
                reason: "the query returned no series".into(),
            },
        ];
        let check = judge_query("latency", &runs, limits);
        assert!(!check.passed);
        assert_eq!(
            check.explanation,
            "run 2: latency: no value: the query returned no series"
        );
        let nan = judge_run("latency", &v(f64::NAN), limits);
        assert!(!nan.passed);
        assert!(nan.explanation.contains("NaN"), "{}", nan.explanation);
        let err = judge_query(
            "latency",
            &[RunValue::Error {
                reason: "HTTP 503".into(),
            }],
            limits,
        );
        assert_eq!(err.explanation, "run 1: latency: provider error: HTTP 503");
        assert!(!judge_query("latency", &[], limits).passed);
    }
}
