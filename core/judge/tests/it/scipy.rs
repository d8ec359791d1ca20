//! Every vector: U, the p-value, the Hodges-Lehmann estimate and interval, Brown-Forsythe, and
//! the binomial tails.

use ferry_judge::dispersion::brown_forsythe;
use ferry_judge::hl::shift;
use ferry_judge::special::{binom_cdf, binom_sf_incl};
use ferry_judge::{Method, Sorted, mann_whitney_sorted};
use serde_json::Value;

const TOLERANCE: f64 = 1e-9;

fn vectors() -> Value {
    let text = include_str!("../data/vectors.json");
    serde_json::from_str(text).expect("vectors.json parses")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

fn method(name: &str) -> Method {
    match name {
        "exact" => Method::Exact,
        "asymptotic" => Method::Asymptotic,
        _ => Method::Auto,
    }
}

#[test]
fn mann_whitney_and_hodges_lehmann_equal_scipy_on_every_vector() {
    let all = vectors();
    let cases = all["cases"].as_array().expect("cases");
    assert!(cases.len() >= 70, "only {} vectors", cases.len());
    let mut worst = 0.0f64;
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let c = Sorted::new(&floats(&case["canary"]));
        let b = Sorted::new(&floats(&case["baseline"]));
        let mw = mann_whitney_sorted(&c, &b, method(case["method"].as_str().expect("method")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let used = format!("{:?}", mw.method).to_lowercase();
        assert_eq!(used, case["used"].as_str().expect("used"), "{name}: method");
        assert_eq!(mw.u, case["u"].as_f64().expect("u"), "{name}: U");
        let want_p = case["p_value"].as_f64().expect("p");
        let diff = (mw.p_value - want_p).abs();
        worst = worst.max(diff);
        assert!(
            diff <= TOLERANCE,
            "{name}: p {} vs SciPy {want_p} (diff {diff:e})",
            mw.p_value
        );
        let sh = shift(&c, &b, mw.method, mw.tie_term, 0.98);
        assert_eq!(
            sh.estimate,
            case["hl_estimate"].as_f64().expect("hl"),
            "{name}: HL"
        );
        assert_eq!(
            sh.ci_low,
            case["ci98_low"].as_f64().expect("lo"),
            "{name}: CI low"
        );
        assert_eq!(
            sh.ci_high,
            case["ci98_high"].as_f64().expect("hi"),
            "{name}: CI high"
        );
        if let Some(want) = case.get("brown_forsythe_p").and_then(Value::as_f64) {
            let got = brown_forsythe(&c, &b).expect("two points per side").p_value;
            assert!(
                (got - want).abs() <= TOLERANCE,
                "{name}: Brown-Forsythe p {got} vs SciPy {want}"
            );
        }
    }
    eprintln!(
        "largest |p - SciPy p| over {} vectors: {worst:e}",
        cases.len()
    );
}

#[test]
fn binomial_tails_equal_scipy() {
    let all = vectors();
    for check in all["binomial"].as_array().expect("binomial") {
        let k = check["k"].as_u64().expect("k");
        let n = check["n"].as_u64().expect("n");
        let p = check["p"].as_f64().expect("p");
        let cdf = binom_cdf(k, n, p);
        let sf = binom_sf_incl(k, n, p);
        assert!(
            (cdf - check["cdf"].as_f64().expect("cdf")).abs() <= TOLERANCE,
            "{check}"
        );
        assert!(
            (sf - check["sf_incl"].as_f64().expect("sf")).abs() <= TOLERANCE,
            "{check}"
        );
    }
}
