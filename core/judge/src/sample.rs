//! Samples as the judge takes them: non-finite values (NaN, ±∞) are removed and counted, so
//! a provider's gap never poisons ranks or means, and the explanation says how many went.

use serde::{Deserialize, Serialize};

/// A sample with its non-finite values removed, sorted ascending.
#[derive(Clone, Debug, PartialEq)]
pub struct Sorted {
    values: Vec<f64>,
    dropped: usize,
}

impl Sorted {
    /// Cleans and sorts `raw`.
    pub fn new(raw: &[f64]) -> Sorted {
        // Sorting the order-preserving integer images of the floats is several times faster
        // than comparing floats (`total_cmp`), and gives the same order.
        // `+ 0.0` turns -0.0 into 0.0, so equal floats have equal keys (ties stay ties).
        let mut keys: Vec<u64> = if raw.iter().all(|v| v.is_finite()) {
            raw.iter().map(|v| order_key(*v + 0.0)).collect()
        } else {
            raw.iter()
                .filter(|v| v.is_finite())
                .map(|v| order_key(*v + 0.0))
                .collect()
        };
        let dropped = raw.len() - keys.len();
        keys.sort_unstable();
        let values = keys.into_iter().map(from_order_key).collect();
        Sorted { values, dropped }
    }

    /// The finite values, ascending.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// How many points there are.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no finite value is left.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// How many non-finite values were removed.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// The median (NaN when empty).
    pub fn median(&self) -> f64 {
        median_sorted(&self.values)
    }

    /// The mean (NaN when empty).
    pub fn mean(&self) -> f64 {
        if self.values.is_empty() {
            return f64::NAN;
        }
        self.values.iter().sum::<f64>() / self.values.len() as f64
    }

    /// A summary for explanations.
    pub fn summary(&self) -> Summary {
        Summary {
            n: self.len(),
            median: finite_or_none(self.median()),
            mean: finite_or_none(self.mean()),
            dropped_non_finite: self.dropped,
        }
    }
}

/// An integer whose order is the float's total order (`f64::total_cmp`).
pub(crate) fn order_key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// The float of an [`order_key`].
pub(crate) fn from_order_key(k: u64) -> f64 {
    if k >> 63 == 1 {
        f64::from_bits(k & !(1 << 63))
    } else {
        f64::from_bits(!k)
    }
}

/// The median of sorted values, as NumPy computes it (mean of the two middle values).
pub(crate) fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn finite_or_none(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Size and location of one side, as explanations show them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Finite points.
    pub n: usize,
    /// Median, when there is a point.
    pub median: Option<f64>,
    /// Mean, when there is a point.
    pub mean: Option<f64>,
    /// NaN or infinite values removed.
    pub dropped_non_finite: usize,
}
