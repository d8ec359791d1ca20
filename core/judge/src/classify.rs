//! One metric, canary against baseline: High, Low, Pass, NoData or Inconclusive, which check
//! decided, and a one-line explanation in numbers a person can check (ANALYSIS.md).
//!
//! Order of checks: no data; the minimum-sample guard; then counts (whole numbers, mostly
//! zeros) go to the rate test and everything else to Mann-Whitney with the Hodges-Lehmann
//! shift; a location that holds is then checked for a growing spread (Brown-Forsythe).
//! A shift is High or Low only when it is significant (p below 1 − confidence), larger than
//! the tolerance (a share of the baseline's median, or rate), and beyond the allowed effect
//! size (the ratio of means). Whether High or Low fails depends on the metric's direction;
//! a growing spread always fails.

use crate::dispersion::{Dispersion, brown_forsythe};
use crate::format::{num, p, percent, signed};
use crate::hl::{Shift, shift};
use crate::mwu::{MannWhitney, Method, mann_whitney_sorted};
use crate::rate::{Counts, RateTest, looks_like_counts, rate_test};
use crate::sample::{Sorted, Summary};
use serde::{Deserialize, Serialize};

/// The harmful direction of a metric.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher is worse.
    #[default]
    Increase,
    /// Lower is worse.
    Decrease,
    /// Any change is harmful.
    Either,
}

/// A metric's judge settings (the deploy file's `judge` block).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSettings {
    /// Which change is harmful.
    pub direction: Direction,
    /// Confidence of the interval; the test's level is `1 − confidence`.
    pub confidence: f64,
    /// The smallest shift that counts, as a share of the baseline's median (or rate).
    pub tolerance: f64,
    /// The ratio of means a harmful change must exceed (its inverse for decreases).
    pub allowed_effect_size: f64,
    /// Points per side below which the metric is Inconclusive.
    pub min_samples: u32,
    /// A failure fails the whole judgement.
    pub critical: bool,
    /// No data counts as a failure.
    pub must_have_data: bool,
    /// The metric's group (its own name when `None`).
    pub group: Option<String>,
    /// The group's weight.
    pub weight: f64,
    /// How the p-value is computed.
    pub method: Method,
}

impl Default for MetricSettings {
    fn default() -> Self {
        MetricSettings {
            direction: Direction::Increase,
            confidence: 0.98,
            tolerance: 0.25,
            allowed_effect_size: 1.0,
            min_samples: 30,
            critical: false,
            must_have_data: false,
            group: None,
            weight: 1.0,
            method: Method::Auto,
        }
    }
}

/// A metric's class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Classification {
    /// No significant, relevant change.
    Pass,
    /// The canary is higher (or, for dispersion, more spread).
    High,
    /// The canary is lower.
    Low,
    /// A side has no finite value.
    NoData,
    /// Too few points to say.
    Inconclusive,
}

/// The check that decided a classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Mann-Whitney and the Hodges-Lehmann shift.
    Location,
    /// Brown-Forsythe on the spread.
    Dispersion,
    /// The rate test for counts.
    Rate,
    /// The minimum-sample guard.
    MinSamples,
    /// No data.
    NoData,
}

/// Everything known about one metric's judgement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    /// The metric (query) name.
    pub name: String,
    /// Its class.
    pub classification: Classification,
    /// Whether the class is a failure for this metric.
    pub failed: bool,
    /// Which check decided.
    pub decided_by: Check,
    /// Whether a failure fails the whole judgement.
    pub critical: bool,
    /// The metric's group.
    pub group: String,
    /// The group's weight.
    pub weight: f64,
    /// The canary side.
    pub canary: Summary,
    /// The baseline side.
    pub baseline: Summary,
    /// The Mann-Whitney test, when both sides have data.
    pub mann_whitney: Option<MannWhitney>,
    /// The Hodges-Lehmann shift and its interval, when both sides have data.
    pub shift: Option<Shift>,
    /// Ratio of means canary / baseline, when defined.
    pub effect_size: Option<f64>,
    /// The dispersion test, when it ran.
    pub dispersion: Option<Dispersion>,
    /// The rate test, for counts.
    pub rate: Option<RateTest>,
    /// One line, numbers included.
    pub explanation: String,
}

/// Judges one metric. Never panics: NaN and infinities are dropped and counted, empty sides
/// are NoData, an impossible exact request falls back to the asymptotic method (and says so).
pub fn classify(
    name: &str,
    canary: &[f64],
    baseline: &[f64],
    settings: &MetricSettings,
) -> MetricResult {
    let (c, b) = (Sorted::new(canary), Sorted::new(baseline));
    let mut r = MetricResult {
        name: name.to_string(),
        classification: Classification::Pass,
        failed: false,
        decided_by: Check::Location,
        critical: settings.critical,
        group: settings.group.clone().unwrap_or_else(|| name.to_string()),
        weight: settings.weight,
        canary: c.summary(),
        baseline: b.summary(),
        mann_whitney: None,
        shift: None,
        effect_size: None,
        dispersion: None,
        rate: None,
        explanation: String::new(),
    };
    let dropped = c.dropped() + b.dropped();
    let dropped_note = if dropped > 0 {
        format!("; {dropped} NaN/infinite values dropped")
    } else {
        String::new()
    };
    let sizes = format!("n={}/{}", c.len(), b.len());
    if c.is_empty() || b.is_empty() {
        r.classification = Classification::NoData;
        r.decided_by = Check::NoData;
        r.failed = settings.must_have_data;
        let consequence = if settings.must_have_data {
            ", a failure (mustHaveData)"
        } else {
            ", left out of the score"
        };
        r.explanation = format!(
            "{name}: no data (canary {} points, baseline {} points{dropped_note}): NoData{consequence}",
            c.len(),
            b.len()
        );
        return r;
    }
    let mut method_note = String::new();
    let mw = match mann_whitney_sorted(&c, &b, settings.method) {
        Ok(mw) => mw,
        Err(e) => {
            method_note = format!("; {e}, used the asymptotic method");
            mann_whitney_sorted(&c, &b, Method::Asymptotic)
                .expect("the asymptotic method accepts any non-empty samples")
        }
    };
    let sh = shift(&c, &b, mw.method, mw.tie_term, settings.confidence);
    let (mean_c, mean_b) = (c.mean(), b.mean());
    let effect = (mean_b != 0.0).then(|| mean_c / mean_b);
    r.effect_size = effect.filter(|e| e.is_finite());
    let alpha = 1.0 - settings.confidence;
    let conf = percent(settings.confidence);
    let (med_c, med_b) = (c.median(), b.median());
    let min = settings.min_samples as usize;
    if c.len() < min || b.len() < min {
        r.classification = Classification::Inconclusive;
        r.decided_by = Check::MinSamples;
        r.explanation = format!(
            "{name}: too few points ({sizes}, at least {min} per side needed; median {} vs {}{dropped_note}): Inconclusive",
            num(med_c),
            num(med_b)
        );
        r.mann_whitney = Some(mw);
        r.shift = Some(sh);
        return r;
    }
    let counts = looks_like_counts(c.values(), b.values());
    if counts {
        let rt = rate_test(
            Counts {
                events: c.values().iter().sum(),
                exposure: c.len() as f64,
            },
            Counts {
                events: b.values().iter().sum(),
                exposure: b.len() as f64,
            },
        );
        let (rc, rb) = (rt.canary_rate, rt.baseline_rate);
        let significant = rt.p_value < alpha;
        let ratio = if rb > 0.0 { rc / rb } else { f64::INFINITY };
        let beyond = (rc - rb).abs() > settings.tolerance * rb;
        r.decided_by = Check::Rate;
        r.classification =
            if significant && rc > rb && beyond && ratio > settings.allowed_effect_size {
                Classification::High
            } else if significant && rc < rb && beyond && ratio < 1.0 / settings.allowed_effect_size
            {
                Classification::Low
            } else {
                Classification::Pass
            };
        let change = relative_change(rc, rb);
        r.explanation = format!(
            "{name} {change} (rate {} vs {} per point, {sizes}, p={}, rate test{dropped_note})",
            num(rc),
            num(rb),
            p(rt.p_value)
        );
        r.rate = Some(rt);
    } else {
        let significant = mw.p_value < alpha;
        let band = settings.tolerance * med_b.abs();
        let effect_high = if mean_b > 0.0 {
            mean_c / mean_b > settings.allowed_effect_size
        } else {
            mean_c > mean_b
        };
        let effect_low = if mean_b > 0.0 {
            mean_c / mean_b < 1.0 / settings.allowed_effect_size
        } else {
            mean_c < mean_b
        };
        r.classification = if significant && sh.estimate > band && effect_high {
            Classification::High
        } else if significant && sh.estimate < -band && effect_low {
            Classification::Low
        } else {
            Classification::Pass
        };
        let change = relative_change(med_c, med_b);
        r.explanation = format!(
            "{name} {change} (median {} vs {}, shift {}, {conf} CI {}..{}, p={}, {sizes}{method_note}{dropped_note})",
            num(med_c),
            num(med_b),
            signed(sh.estimate),
            signed(sh.ci_low),
            signed(sh.ci_high),
            p(mw.p_value)
        );
        if r.classification == Classification::Pass
            && let Some(d) = brown_forsythe(&c, &b)
        {
            let grew = d.canary_spread > d.baseline_spread * (1.0 + settings.tolerance);
            if d.p_value < alpha && grew {
                r.classification = Classification::High;
                r.decided_by = Check::Dispersion;
                r.explanation = format!(
                    "{name} spread up {} (mean absolute deviation {} vs {}, Brown-Forsythe p={}, {sizes}; median {} vs {}{dropped_note})",
                    percent_change(d.canary_spread, d.baseline_spread),
                    num(d.canary_spread),
                    num(d.baseline_spread),
                    p(d.p_value),
                    num(med_c),
                    num(med_b)
                );
            }
            r.dispersion = Some(d);
        }
    }
    r.failed = match (r.classification, r.decided_by) {
        (Classification::High, Check::Dispersion) => true,
        (Classification::High, _) => settings.direction != Direction::Decrease,
        (Classification::Low, _) => settings.direction != Direction::Increase,
        _ => false,
    };
    let class = format!("{:?}", r.classification);
    let tail = match r.classification {
        Classification::High | Classification::Low if !r.failed => {
            let direction = match settings.direction {
                Direction::Increase => "increase",
                Direction::Decrease => "decrease",
                Direction::Either => "either",
            };
            format!("{class} (harmless: direction {direction})")
        }
        _ => class,
    };
    r.explanation = format!("{}: {tail}", r.explanation);
    r.mann_whitney = Some(mw);
    r.shift = Some(sh);
    r
}

/// "up 38 %", "down 5 %", "unchanged", or "up from 0".
fn relative_change(canary: f64, baseline: f64) -> String {
    if canary == baseline {
        return "unchanged".into();
    }
    let word = if canary > baseline { "up" } else { "down" };
    if baseline == 0.0 {
        return format!("{word} from 0");
    }
    format!("{word} {}", percent_change(canary, baseline))
}

fn percent_change(canary: f64, baseline: f64) -> String {
    if baseline == 0.0 {
        return "from 0".into();
    }
    format!(
        "{} %",
        num(((canary - baseline) / baseline.abs()).abs() * 100.0)
    )
}
