//! The judge's side of `scripts/bench.sh judge`: reads sample pairs written by
//! `scripts/bench/judge.py` (JSON), times the two-sided Mann-Whitney test on every pair (the
//! same work as SciPy's `mannwhitneyu`: clean, rank, U, p) and the whole metric judgement
//! (plus Hodges-Lehmann, its interval and Brown-Forsythe), best of several rounds, and prints
//! the timings and every p-value as JSON for the script to compare with SciPy's.

use ferry_judge::{Method, MetricSettings, classify, mann_whitney};
use serde_json::{Value, json};
use std::time::Instant;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("an array of numbers")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

fn best_of<F: FnMut()>(rounds: usize, mut f: F) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..rounds {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: judge_bench DATA.json");
    let text = std::fs::read_to_string(&path).expect("reading the data file");
    let data: Value = serde_json::from_str(&text).expect("the data file is JSON");
    let rounds = data["rounds"].as_u64().unwrap_or(5) as usize;
    let mut out = Vec::new();
    for set in data["sets"].as_array().expect("sets") {
        let pairs: Vec<(Vec<f64>, Vec<f64>)> = set["pairs"]
            .as_array()
            .expect("pairs")
            .iter()
            .map(|p| (floats(&p[0]), floats(&p[1])))
            .collect();
        let mut p_values = vec![0.0; pairs.len()];
        let mw = best_of(rounds, || {
            for (i, (x, y)) in pairs.iter().enumerate() {
                let r = mann_whitney(x, y, Method::Auto).expect("non-empty samples");
                p_values[i] = std::hint::black_box(r.p_value);
            }
        });
        let settings = MetricSettings::default();
        let full = best_of(rounds, || {
            for (x, y) in &pairs {
                std::hint::black_box(classify("metric", x, y, &settings));
            }
        });
        let n = pairs.len() as f64;
        out.push(json!({
            "n": set["n"],
            "pairs": pairs.len(),
            "mann_whitney_ms": mw * 1e3,
            "mann_whitney_us_per_test": mw / n * 1e6,
            "judgement_us_per_metric": full / n * 1e6,
            "p_values": p_values,
        }));
    }
    println!("{}", json!({ "sets": out }));
}
