//! The Hodges-Lehmann estimate of the shift between two samples (the median of all pairwise
//! differences canary − baseline) and its distribution-free confidence interval (order
//! statistics of those differences, as R's `wilcox.test(conf.int = TRUE)` picks them for the
//! exact case, and from the tie-corrected normal approximation otherwise).
//!
//! The `n1 · n2` differences are never all materialized: the k-th smallest is bracketed by
//! bisection in value space, counting differences `≤ t` with two pointers over the sorted
//! samples, until a few thousand candidates remain, which are collected and selected among.
//! Rounding is monotonic, so the counts are exact for the computed differences and the answer
//! is one of them, bit for bit.

use crate::mwu::{ExactU, Method, u_sigma};
use crate::sample::{Sorted, from_order_key as from_key, order_key as key};
use crate::special::norm_ppf;
use serde::{Deserialize, Serialize};

/// The shift estimate and its interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    /// Median of the pairwise differences canary − baseline.
    pub estimate: f64,
    /// Lower end of the confidence interval.
    pub ci_low: f64,
    /// Upper end of the confidence interval.
    pub ci_high: f64,
    /// The confidence asked for.
    pub confidence: f64,
}

/// How many differences `x_i - y_j` are `≤ t` (`x`, `y` sorted ascending).
fn count_le(x: &[f64], y: &[f64], t: f64) -> u64 {
    let mut j = 0usize;
    let mut count = 0u64;
    for &xi in x {
        while j < y.len() && xi - y[j] > t {
            j += 1;
        }
        count += (y.len() - j) as u64;
    }
    count
}

/// Candidates materialized at most once the bracket is this narrow.
const MATERIALIZE: u64 = 4096;

/// The `k`-th smallest (1-based) of the differences `x_i - y_j`; `x`, `y` sorted, non-empty.
///
/// Bisection in value space keeps `count(≤ lo) < k ≤ count(≤ hi)`; once at most a few thousand
/// differences lie in `(lo, hi]` they are collected and the answer selected among them. Exact:
/// the answer is one of the computed differences, bit for bit.
pub fn kth_difference(x: &[f64], y: &[f64], k: u64) -> f64 {
    let total = x.len() as u64 * y.len() as u64;
    let k = k.clamp(1, total);
    let min = x[0] - y[y.len() - 1];
    let mut hi = x[x.len() - 1] - y[0];
    if !(hi - min).is_finite() {
        return kth_by_keys(x, y, k);
    }
    let mut lo = min;
    let mut lo_count = count_le(x, y, lo);
    if lo_count >= k {
        return lo;
    }
    let mut hi_count = total;
    loop {
        if hi_count - lo_count <= MATERIALIZE {
            return select_between(x, y, lo, hi, k - lo_count);
        }
        let mid = lo + (hi - lo) / 2.0;
        if mid <= lo || mid >= hi {
            // No float lies between: every difference in (lo, hi] equals hi.
            return hi;
        }
        let c = count_le(x, y, mid);
        if c >= k {
            hi = mid;
            hi_count = c;
        } else {
            lo = mid;
            lo_count = c;
        }
    }
}

/// The `r`-th smallest (1-based) of the differences in `(lo, hi]`.
fn select_between(x: &[f64], y: &[f64], lo: f64, hi: f64, r: u64) -> f64 {
    let mut found = Vec::new();
    // For each x_i the differences fall as j grows: those in (lo, hi] are j in [a, b), with
    // a the first j where x_i - y_j <= hi and b the first where x_i - y_j <= lo; both only
    // move right as x_i grows.
    let (mut a, mut b) = (0usize, 0usize);
    for &xi in x {
        while a < y.len() && xi - y[a] > hi {
            a += 1;
        }
        if b < a {
            b = a;
        }
        while b < y.len() && xi - y[b] > lo {
            b += 1;
        }
        found.extend(y[a..b].iter().map(|yj| xi - yj));
    }
    if found.is_empty() {
        // Cannot happen while the counts hold; never a panic if they did not.
        return hi;
    }
    let i = (r as usize).saturating_sub(1).min(found.len() - 1);
    *found.select_nth_unstable_by(i, f64::total_cmp).1
}

/// [`kth_difference`] by bisection over the ordered bit patterns (any magnitudes).
fn kth_by_keys(x: &[f64], y: &[f64], k: u64) -> f64 {
    let mut lo = key(x[0] - y[y.len() - 1]);
    let mut hi = key(x[x.len() - 1] - y[0]);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if count_le(x, y, from_key(mid)) >= k {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    from_key(lo)
}

/// The Hodges-Lehmann estimate: the median of the differences (mean of the two middle ones
/// when their number is even).
pub fn hodges_lehmann(x: &[f64], y: &[f64]) -> f64 {
    let total = x.len() as u64 * y.len() as u64;
    if total % 2 == 1 {
        kth_difference(x, y, total / 2 + 1)
    } else {
        (kth_difference(x, y, total / 2) + kth_difference(x, y, total / 2 + 1)) / 2.0
    }
}

/// The estimate and its interval at `confidence` (0..1); `method` is the Mann-Whitney method
/// used (exact: order statistics from the exact distribution; else the normal approximation
/// with the tie-corrected variance). Samples must be non-empty.
pub fn shift(
    canary: &Sorted,
    baseline: &Sorted,
    method: Method,
    tie_term: f64,
    confidence: f64,
) -> Shift {
    let (x, y) = (canary.values(), baseline.values());
    let pairs = x.len() as u64 * y.len() as u64;
    let alpha = 1.0 - confidence;
    // `c` is the 1-based rank of the lower bound; the upper is the `pairs + 1 - c`-th.
    let c = match method {
        Method::Exact => ExactU::new(x.len(), y.len()).quantile(alpha / 2.0).max(1),
        _ => {
            let sigma = u_sigma(x.len() as f64, y.len() as f64, tie_term);
            let z = norm_ppf(1.0 - alpha / 2.0);
            let c = (pairs as f64 / 2.0 - z * sigma).round();
            if c < 1.0 { 1 } else { c as u64 }
        }
    };
    let c = c.min(pairs);
    Shift {
        estimate: hodges_lehmann(x, y),
        ci_low: kth_difference(x, y, c),
        ci_high: kth_difference(x, y, pairs + 1 - c),
        confidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sorted_differences(x: &[f64], y: &[f64]) -> Vec<f64> {
        let mut d: Vec<f64> = x
            .iter()
            .flat_map(|a| y.iter().map(move |b| a - b))
            .collect();
        d.sort_by(f64::total_cmp);
        d
    }

    proptest! {
        #[test]
        fn kth_difference_equals_sorting_every_difference(
            mut x in proptest::collection::vec(-1e6f64..1e6, 1..40),
            mut y in proptest::collection::vec(-1e6f64..1e6, 1..40),
            pick in 0.0f64..1.0,
        ) {
            x.sort_by(f64::total_cmp);
            y.sort_by(f64::total_cmp);
            let d = sorted_differences(&x, &y);
            let k = ((pick * d.len() as f64) as usize).min(d.len() - 1);
            prop_assert_eq!(kth_difference(&x, &y, k as u64 + 1), d[k]);
        }

        #[test]
        fn kth_difference_is_exact_on_large_samples_and_wide_magnitudes(
            mut x in proptest::collection::vec(-1e300f64..1e300, 60..120),
            mut y in proptest::collection::vec(-1e3f64..1e3, 60..120),
            pick in 0.0f64..1.0,
        ) {
            x.sort_by(f64::total_cmp);
            y.sort_by(f64::total_cmp);
            let d = sorted_differences(&x, &y);
            let k = ((pick * d.len() as f64) as usize).min(d.len() - 1);
            prop_assert_eq!(kth_difference(&x, &y, k as u64 + 1), d[k]);
        }

        #[test]
        fn kth_difference_selects_among_many_candidates(
            mut x in proptest::collection::vec(0.0f64..1.0, 100..160),
            mut y in proptest::collection::vec(0.0f64..1.0, 100..160),
            pick in 0.0f64..1.0,
        ) {
            x.sort_by(f64::total_cmp);
            y.sort_by(f64::total_cmp);
            let d = sorted_differences(&x, &y);
            let k = ((pick * d.len() as f64) as usize).min(d.len() - 1);
            prop_assert_eq!(kth_difference(&x, &y, k as u64 + 1), d[k]);
            prop_assert_eq!(kth_by_keys(&x, &y, k as u64 + 1), d[k]);
        }

        #[test]
        fn kth_difference_handles_heavy_ties(
            x in proptest::collection::vec(0u8..3, 1..30),
            y in proptest::collection::vec(0u8..3, 1..30),
        ) {
            let mut x: Vec<f64> = x.into_iter().map(f64::from).collect();
            let mut y: Vec<f64> = y.into_iter().map(f64::from).collect();
            x.sort_by(f64::total_cmp);
            y.sort_by(f64::total_cmp);
            let d = sorted_differences(&x, &y);
            for (k, want) in d.iter().enumerate() {
                prop_assert_eq!(kth_difference(&x, &y, k as u64 + 1), *want);
            }
        }
    }
}
