//! Classifications and verdicts on samples with known shapes: normal quantiles laid out
//! evenly, so every test is deterministic.

use ferry_judge::special::norm_ppf;
use ferry_judge::{
    Check, Classification, Direction, Method, MetricSettings, Outcome, Thresholds, classify,
    verdict,
};

/// `n` evenly spaced quantiles of a normal distribution.
fn normal(n: usize, mean: f64, sd: f64) -> Vec<f64> {
    (0..n)
        .map(|i| mean + sd * norm_ppf((i as f64 + 0.5) / n as f64))
        .collect()
}

fn settings() -> MetricSettings {
    MetricSettings::default()
}

#[test]
fn an_unchanged_metric_passes_and_a_shifted_one_is_high_with_checkable_numbers() {
    let baseline = normal(60, 0.30, 0.03);
    let same = normal(60, 0.30, 0.03);
    let r = classify("p95 latency", &same, &baseline, &settings());
    assert_eq!(r.classification, Classification::Pass, "{}", r.explanation);
    assert!(!r.failed);
    assert_eq!(r.mann_whitney.as_ref().expect("test").p_value, 1.0);
    assert!(r.explanation.ends_with(": Pass"), "{}", r.explanation);

    let worse = normal(60, 0.41, 0.03);
    let r = classify("p95 latency", &worse, &baseline, &settings());
    assert_eq!(r.classification, Classification::High, "{}", r.explanation);
    assert!(r.failed);
    assert_eq!(r.decided_by, Check::Location);
    let shift = r.shift.as_ref().expect("shift");
    assert!(
        shift.ci_low > 0.0 && shift.ci_low <= shift.estimate && shift.estimate <= shift.ci_high
    );
    assert!((shift.estimate - 0.11).abs() < 0.01, "{shift:?}");
    assert!(
        r.explanation
            .starts_with("p95 latency up 36.67 % (median 0.41 vs 0.3, shift +0.11"),
        "{}",
        r.explanation
    );
    assert!(
        r.explanation
            .contains("98 % CI +0.09685..+0.1231, p=7.15e-21"),
        "{}",
        r.explanation
    );
    assert!(r.explanation.contains("n=60/60"), "{}", r.explanation);
    assert!(r.explanation.ends_with(": High"), "{}", r.explanation);
}

#[test]
fn directions_decide_which_change_is_harmful() {
    let baseline = normal(40, 100.0, 5.0);
    let lower = normal(40, 70.0, 5.0);
    let mut s = settings();
    let r = classify("throughput", &lower, &baseline, &s);
    assert_eq!(r.classification, Classification::Low);
    assert!(!r.failed, "a decrease is harmless by default");
    assert!(
        r.explanation
            .ends_with("Low (harmless: direction increase)"),
        "{}",
        r.explanation
    );
    s.direction = Direction::Decrease;
    assert!(classify("throughput", &lower, &baseline, &s).failed);
    s.direction = Direction::Either;
    assert!(classify("throughput", &lower, &baseline, &s).failed);
}

#[test]
fn a_small_significant_shift_within_tolerance_or_effect_size_passes() {
    let baseline = normal(200, 100.0, 1.0);
    let canary = normal(200, 101.0, 1.0);
    let r = classify("cpu", &canary, &baseline, &settings());
    assert!(r.mann_whitney.as_ref().expect("test").p_value < 1e-6);
    assert_eq!(
        r.classification,
        Classification::Pass,
        "1 % is inside the 25 % tolerance"
    );
    let mut s = settings();
    s.tolerance = 0.0;
    assert_eq!(
        classify("cpu", &canary, &baseline, &s).classification,
        Classification::High
    );
    s.allowed_effect_size = 1.05;
    assert_eq!(
        classify("cpu", &canary, &baseline, &s).classification,
        Classification::Pass,
        "a mean ratio of 1.01 is within the allowed effect size 1.05"
    );
}

#[test]
fn too_few_points_are_inconclusive_never_pass() {
    let r = classify(
        "latency",
        &normal(12, 1.0, 0.1),
        &normal(40, 1.0, 0.1),
        &settings(),
    );
    assert_eq!(r.classification, Classification::Inconclusive);
    assert_eq!(r.decided_by, Check::MinSamples);
    assert!(
        r.explanation.contains("at least 30 per side"),
        "{}",
        r.explanation
    );
    let v = verdict(vec![r.clone()], Thresholds::default());
    assert_eq!(v.outcome, Outcome::Inconclusive, "{}", v.explanation);
    assert_eq!(
        v.explanation,
        "Inconclusive: too few points to judge: latency"
    );
    // Beside a passing metric the verdict is still not Pass.
    let good = classify(
        "errors",
        &normal(40, 1.0, 0.1),
        &normal(40, 1.0, 0.1),
        &settings(),
    );
    let v = verdict(vec![good, r], Thresholds::default());
    assert_eq!(v.outcome, Outcome::Inconclusive, "{}", v.explanation);
    assert_eq!(v.score, Some(100.0));
}

#[test]
fn nan_infinities_and_empty_samples_give_reasons_not_panics() {
    let mut canary = normal(40, 1.0, 0.1);
    canary.extend([f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
    let r = classify("latency", &canary, &normal(40, 1.0, 0.1), &settings());
    assert_eq!(r.canary.n, 40);
    assert_eq!(r.canary.dropped_non_finite, 3);
    assert!(
        r.explanation.contains("3 NaN/infinite values dropped"),
        "{}",
        r.explanation
    );

    let r = classify(
        "latency",
        &[f64::NAN, f64::NAN],
        &normal(40, 1.0, 0.1),
        &settings(),
    );
    assert_eq!(r.classification, Classification::NoData);
    assert!(!r.failed);
    assert_eq!(
        r.explanation,
        "latency: no data (canary 0 points, baseline 40 points; 2 NaN/infinite values dropped): NoData, left out of the score"
    );
    let mut s = settings();
    s.must_have_data = true;
    let r = classify("latency", &[], &[], &s);
    assert!(r.failed);
    assert!(r.explanation.ends_with("a failure (mustHaveData)"));
    assert!(ferry_judge::mann_whitney(&[], &[1.0], Method::Auto).is_err());
}

#[test]
fn a_growing_spread_with_the_same_median_fails_on_dispersion() {
    let baseline = normal(100, 50.0, 2.0);
    let canary = normal(100, 50.0, 10.0);
    let r = classify("latency", &canary, &baseline, &settings());
    assert_eq!(r.classification, Classification::High, "{}", r.explanation);
    assert_eq!(r.decided_by, Check::Dispersion);
    assert!(r.failed);
    assert!(
        r.explanation.starts_with("latency spread up"),
        "{}",
        r.explanation
    );
    assert!(
        r.explanation.contains("Brown-Forsythe p="),
        "{}",
        r.explanation
    );
}

#[test]
fn counts_of_mostly_zeros_are_judged_by_their_rates() {
    // Baseline: 3 errors in 100 intervals; canary: 20 in 100.
    let mut baseline = vec![0.0; 100];
    baseline[..3].fill(1.0);
    let mut canary = vec![0.0; 100];
    canary[..20].fill(1.0);
    let r = classify("errors", &canary, &baseline, &settings());
    assert_eq!(r.decided_by, Check::Rate);
    assert_eq!(r.classification, Classification::High, "{}", r.explanation);
    let rate = r.rate.as_ref().expect("rate test");
    assert_eq!((rate.canary_rate, rate.baseline_rate), (0.2, 0.03));
    assert!(rate.p_value < 0.001);
    assert!(
        r.explanation
            .starts_with("errors up 566.7 % (rate 0.2 vs 0.03 per point"),
        "{}",
        r.explanation
    );
    let r = classify("errors", &baseline, &baseline, &settings());
    assert_eq!(r.classification, Classification::Pass);
    assert_eq!(r.rate.as_ref().expect("rate").p_value, 1.0);
}

#[test]
fn an_exact_request_too_large_falls_back_and_says_so() {
    let mut s = settings();
    s.method = Method::Exact;
    let r = classify("big", &normal(2100, 1.0, 1.0), &normal(2100, 1.0, 1.0), &s);
    assert!(
        r.explanation.contains("used the asymptotic method"),
        "{}",
        r.explanation
    );
    assert_eq!(r.mann_whitney.expect("test").method, Method::Asymptotic);
}

#[test]
fn groups_weights_critical_metrics_and_thresholds_make_the_verdict() {
    let base = normal(50, 1.0, 0.1);
    let good = normal(50, 1.0, 0.1);
    let bad = normal(50, 2.0, 0.1);
    let with = |group: &str, weight: f64, critical: bool| MetricSettings {
        group: Some(group.into()),
        weight,
        critical,
        ..MetricSettings::default()
    };
    // Group "latency" (weight 3): one of two passes = 50; group "errors" (weight 1): 100.
    // Score = (3·50 + 1·100) / 4 = 62.5: Fail.
    let metrics = vec![
        classify("p50", &good, &base, &with("latency", 3.0, false)),
        classify("p99", &bad, &base, &with("latency", 3.0, false)),
        classify("5xx", &good, &base, &with("errors", 1.0, false)),
    ];
    let v = verdict(metrics.clone(), Thresholds::default());
    assert_eq!(v.score, Some(62.5));
    assert_eq!(v.outcome, Outcome::Fail);
    assert_eq!(
        v.explanation,
        "Fail: score 62.5 (pass at 95, marginal at 75); not passing: p99 High"
    );
    let lenient = Thresholds {
        pass: 90.0,
        marginal: 60.0,
    };
    assert_eq!(verdict(metrics, lenient).outcome, Outcome::Inconclusive);

    // A critical failure fails whatever the score.
    let mut many: Vec<_> = (0..20)
        .map(|i| {
            classify(
                &format!("m{i}"),
                &good,
                &base,
                &with(&format!("g{i}"), 1.0, false),
            )
        })
        .collect();
    many.push(classify("5xx", &bad, &base, &with("errors", 1.0, true)));
    let v = verdict(many, lenient);
    assert!(v.score.expect("score") > 90.0);
    assert_eq!(v.outcome, Outcome::Fail);
    assert_eq!(v.explanation, "Fail: critical metric failed: 5xx");

    // Nothing but NoData: Inconclusive, never Pass.
    let v = verdict(
        vec![classify("x", &[], &base, &MetricSettings::default())],
        Thresholds::default(),
    );
    assert_eq!(v.outcome, Outcome::Inconclusive);
    assert_eq!(v.score, None);
}
