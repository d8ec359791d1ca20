//! The Brown-Forsythe test for a change of spread: a one-way ANOVA on the absolute deviations
//! from each sample's median (SciPy's `levene(..., center="median")`). It catches a canary
//! whose spread grows while its median holds.

use crate::sample::{Sorted, median_sorted};
use crate::special::f_sf;
use serde::{Deserialize, Serialize};

/// The test's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dispersion {
    /// The W (F) statistic.
    pub statistic: f64,
    /// Its p-value (F distribution with 1 and n1 + n2 − 2 degrees of freedom).
    pub p_value: f64,
    /// Mean absolute deviation of the canary from its median.
    pub canary_spread: f64,
    /// Mean absolute deviation of the baseline from its median.
    pub baseline_spread: f64,
}

fn deviations(s: &Sorted) -> Vec<f64> {
    let m = median_sorted(s.values());
    s.values().iter().map(|v| (v - m).abs()).collect()
}

/// Brown-Forsythe on two cleaned samples; `None` when a side has fewer than two points.
pub fn brown_forsythe(canary: &Sorted, baseline: &Sorted) -> Option<Dispersion> {
    if canary.len() < 2 || baseline.len() < 2 {
        return None;
    }
    let groups = [deviations(canary), deviations(baseline)];
    let means: Vec<f64> = groups
        .iter()
        .map(|g| g.iter().sum::<f64>() / g.len() as f64)
        .collect();
    let n: f64 = groups.iter().map(|g| g.len() as f64).sum();
    let grand = groups.iter().flatten().sum::<f64>() / n;
    let between: f64 = groups
        .iter()
        .zip(&means)
        .map(|(g, m)| g.len() as f64 * (m - grand) * (m - grand))
        .sum();
    let within: f64 = groups
        .iter()
        .zip(&means)
        .map(|(g, m)| g.iter().map(|z| (z - m) * (z - m)).sum::<f64>())
        .sum();
    let k = 2.0;
    let statistic = (n - k) / (k - 1.0) * between / within;
    let p_value = if within == 0.0 {
        if between == 0.0 { 1.0 } else { 0.0 }
    } else {
        f_sf(statistic, k - 1.0, n - k)
    };
    Some(Dispersion {
        statistic,
        p_value,
        canary_spread: means[0],
        baseline_spread: means[1],
    })
}
