//! `ferry analysis compare` against SciPy: samples of ferry-judge's vectors (computed by
//! scripts/gen-judge-vectors.py) written to files, judged by the binary, and its JSON checked
//! to 1e-9; bad input gives a clear message and exit 1, never a panic.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../core/judge/tests/data/vectors.json"
);

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("ferry-cli-analysis-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_sample(path: &PathBuf, values: &serde_json::Value) {
    let lines: Vec<String> = values
        .as_array()
        .unwrap()
        .iter()
        // `{:?}` prints the shortest text that reads back to the same f64.
        .map(|v| format!("{:?}", v.as_f64().unwrap()))
        .collect();
    fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn compare(dir: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["analysis", "compare", "--baseline"])
        .arg(dir.join("baseline.txt"))
        .arg("--canary")
        .arg(dir.join("canary.txt"))
        .args(extra)
        .output()
        .expect("the ferry binary runs");
    (
        out.status.code().expect("exited"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn compare_prints_scipys_numbers_as_json() {
    let vectors: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(VECTORS).unwrap()).unwrap();
    let wanted = [
        "small-5x7-shift0.8",
        "exact-30x30-shift0.5",
        "asym-300x250-shift0.2",
        "rounded-40x40",
    ];
    let dir = scratch("scipy");
    let mut checked = 0;
    for case in vectors["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if !wanted.contains(&name) {
            continue;
        }
        write_sample(&dir.join("canary.txt"), &case["canary"]);
        write_sample(&dir.join("baseline.txt"), &case["baseline"]);
        let method = case["method"].as_str().unwrap();
        let (code, out, err) = compare(&dir, &["--method", method, "--output", "json"]);
        assert_eq!(code, 0, "{name}: {err}");
        let got: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(got["u"], case["u"], "{name}");
        let p = got["p_value"].as_f64().unwrap();
        let want = case["p_value"].as_f64().unwrap();
        assert!((p - want).abs() <= 1e-9, "{name}: p {p} vs SciPy {want}");
        assert_eq!(got["hl_estimate"], case["hl_estimate"], "{name}");
        assert_eq!(got["ci_low"], case["ci98_low"], "{name}");
        assert_eq!(got["ci_high"], case["ci98_high"], "{name}");
        assert!(got["classification"].is_string(), "{name}: {got}");
        assert!(
            got["explanation"].as_str().unwrap().contains("n="),
            "{name}: {got}"
        );
        checked += 1;
    }
    assert_eq!(checked, wanted.len(), "every chosen vector exists");
    let (code, out, _) = compare(&dir, &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("U"),
        "text output has the test's figures: {out}"
    );
}

#[test]
fn bad_samples_give_clear_messages_and_no_panic() {
    let dir = scratch("bad");
    fs::write(dir.join("baseline.txt"), "0.3\n0.31\n").unwrap();
    fs::write(dir.join("canary.txt"), "0.3\nfast\n").unwrap();
    let (code, _, err) = compare(&dir, &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("canary.txt:2: \"fast\" is not a number"),
        "{err}"
    );

    // Only NaN and infinities: no data, said plainly.
    fs::write(dir.join("canary.txt"), "NaN\ninf\n-inf\n").unwrap();
    let (code, out, err) = compare(&dir, &["-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["classification"], "NoData");
    assert!(got["p_value"].is_null());
    assert_eq!(
        got["explanation"],
        "metric: no data (canary 0 points, baseline 2 points; 3 NaN/infinite values dropped): NoData, left out of the score"
    );
    let (code, _, err) = compare(&dir.join("missing"), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("reading"), "{err}");
}

/// Answers every `/api/v1/query` with one series of value 0.5, as Prometheus does.
async fn fake_prometheus() -> String {
    let app = axum::Router::new().route(
        "/api/v1/query",
        axum::routing::get(|| async {
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0.5"]}]}}"#
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

#[tokio::test]
async fn try_runs_a_deploy_files_query_over_a_past_range_and_prints_each_run() {
    let stack = crate::support::Stack::start().await;
    let (_credential, home) = stack.logged_in(&["Tenant Admin", "Deployer"]).await;
    let prometheus = fake_prometheus().await;
    let set = home
        .run(
            &[],
            &[
                "analysis",
                "set-provider",
                "prometheus-prod",
                "--kind",
                "prometheus",
                "--base-url",
                &prometheus,
            ],
        )
        .await
        .ok();
    assert!(
        set.contains("metric provider prometheus-prod (prometheus)"),
        "{set}"
    );
    let listed = home.run(&[], &["analysis", "providers"]).await.ok();
    assert!(listed.contains("prometheus-prod  prometheus"), "{listed}");
    let file = crate::support::examples().join("hello-ferry/deploy-analysis.yml");
    let file = file.to_string_lossy().to_string();
    let args = [
        "analysis",
        "try",
        "-f",
        &file,
        "--query",
        "error-rate",
        "--from",
        "-10m",
        "--to",
        "-5m",
        "--interval",
        "150s",
        "--var",
        "replicaSetName=web-1",
    ];
    let out = home.run(&[], &args).await.ok();
    assert!(out.contains("RUN  WINDOW (UTC)"), "{out}");
    assert!(out.contains("error-rate = 0.5, within [0, 1]"), "{out}");
    assert!(
        out.contains("verdict: passed: error-rate mean 0.5 over 2 runs, within [0, 1]"),
        "{out}"
    );
    let mut json_args = args.to_vec();
    json_args.extend(["-o", "json"]);
    let answer = home.run(&[], &json_args).await.json();
    assert_eq!(answer["runs"].as_array().unwrap().len(), 2);
    let missing = [
        "analysis", "try", "-f", &file, "--query", "nope", "--from", "-10m",
    ];
    let run = home.run(&[], &missing).await;
    assert!(run.stderr.contains("no query \"nope\""), "{}", run.stderr);
    stack.stop().await;
}
