//! `ferry-fuzz`: fuzzing on the stable toolchain with proptest. A fuzz target is an ordinary
//! `#[test]` that calls [`run`] with a strategy (inputs: arbitrary bytes, YAML-ish text,
//! mutated example files, grammar-shaped deploy files, mutated protocol frames) and a property
//! (never panics, plus invariants such as decode → encode → decode round trips).
//!
//! In the normal test suite each target runs a few dozen cases, so it costs little. Under
//! `scripts/fuzz.sh SECONDS`, `FERRY_FUZZ_SECONDS` gives each target a time budget: it runs
//! fresh randomly seeded batches until the budget is spent or it finds a failure, which
//! proptest shrinks to a minimal input. Each target appends one JSON line (target, executions,
//! findings, seconds, the seed and minimal input of a finding) to `FERRY_FUZZ_REPORT`, which
//! the script turns into its table. A finding becomes a regression test next to the code it
//! broke, with its minimal input.

pub mod inputs;
pub mod proto;

use std::cell::Cell;
use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// Cases of one target in the normal test suite (`FERRY_FUZZ_CASES` overrides it).
pub const SUITE_CASES: u32 = 48;

/// Cases per batch under a time budget: a fresh seed per batch keeps the search wide.
const BATCH: u32 = 512;

/// What one target did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The target's name.
    pub target: String,
    /// Inputs the property ran on (shrinking included).
    pub executions: u64,
    /// Failures found (0 or 1: a target stops at its first).
    pub findings: u32,
    /// Wall-clock seconds spent.
    pub seconds: f64,
    /// The seed of the batch that failed and its minimal input, when one did.
    pub finding: Option<String>,
}

fn seed(n: u64) -> [u8; 32] {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut out = [0u8; 32];
    out[..8].copy_from_slice(&now.to_le_bytes());
    out[8..16].copy_from_slice(&n.to_le_bytes());
    out[16..24].copy_from_slice(&u64::from(std::process::id()).to_le_bytes());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `property` on inputs of `strategy`: [`SUITE_CASES`] of them, or batches until
/// `FERRY_FUZZ_SECONDS` pass. Reports the outcome (see the crate documentation) and panics
/// with the minimal failing input when the property failed.
pub fn run<S>(target: &str, strategy: S, property: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let budget = std::env::var("FERRY_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64);
    let suite_cases = std::env::var("FERRY_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SUITE_CASES);
    let executions = Cell::new(0u64);
    let counted = |value: S::Value| {
        executions.set(executions.get() + 1);
        property(value)
    };
    let started = Instant::now();
    let mut finding = None;
    let mut batch = 0u64;
    loop {
        let cases = if budget.is_some() { BATCH } else { suite_cases };
        let seed = seed(batch);
        let config = Config {
            cases,
            failure_persistence: None,
            // A bounded rejection budget: strategies here never filter much.
            max_global_rejects: cases * 4,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        match runner.run(&strategy, counted) {
            Ok(()) => {}
            Err(TestError::Fail(why, input)) => {
                finding = Some(format!(
                    "seed {} failed: {why}; minimal input: {input:?}",
                    hex(&seed)
                ));
            }
            Err(TestError::Abort(why)) => {
                finding = Some(format!("seed {} aborted: {why}", hex(&seed)));
            }
        }
        batch += 1;
        let over = budget.is_none_or(|b| started.elapsed() >= b);
        if finding.is_some() || over {
            break;
        }
    }
    let outcome = Outcome {
        target: target.to_string(),
        executions: executions.get(),
        findings: u32::from(finding.is_some()),
        seconds: started.elapsed().as_secs_f64(),
        finding,
    };
    report(&outcome);
    if let Some(finding) = &outcome.finding {
        panic!("fuzz target {target}: {finding}");
    }
}

/// Appends the outcome as one JSON line to `FERRY_FUZZ_REPORT`, when set.
fn report(outcome: &Outcome) {
    let line = serde_json::json!({
        "target": outcome.target,
        "executions": outcome.executions,
        "findings": outcome.findings,
        "seconds": (outcome.seconds * 10.0).round() / 10.0,
        "finding": outcome.finding,
    });
    eprintln!("fuzz {line}");
    if let Ok(path) = std::env::var("FERRY_FUZZ_REPORT")
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(file, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_failing_property_is_reported_with_its_minimal_input() {
        let result = std::panic::catch_unwind(|| {
            run("demo", 0u32..1000, |n| {
                prop_assert!(n < 500);
                Ok(())
            });
        });
        let message = *result.unwrap_err().downcast::<String>().unwrap();
        assert!(message.contains("minimal input: 500"), "{message}");
    }
}
