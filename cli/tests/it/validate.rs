//! `ferry deploy validate` on the shipped examples (OK and the summary, exit 0), on the invalid
//! ones (every diagnostic on stderr, exit 1), and on missing or unreadable input (a clear
//! message, exit 1, no panic).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn ferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .output()
        .expect("the ferry binary runs")
}

fn validate(file: &Path, extra: &[&str]) -> (i32, String, String) {
    let file = file.to_string_lossy().to_string();
    let mut args = vec!["deploy", "validate", "-f", file.as_str()];
    args.extend_from_slice(extra);
    let out = ferry(&args);
    (
        out.status.code().expect("exited, not killed"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A fresh scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferry-cli-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_hello_ferry_example_prints_ok_and_a_summary() {
    let mut count = 0;
    for entry in fs::read_dir(examples().join("hello-ferry")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yml") {
            continue;
        }
        count += 1;
        let (code, stdout, stderr) = validate(&path, &[]);
        assert_eq!(code, 0, "{}: {stderr}", path.display());
        assert!(stdout.starts_with("OK\n"), "{stdout}");
        assert!(stdout.contains("application: hello-ferry"), "{stdout}");
        assert!(stdout.contains("manifests: "), "{stdout}");
        assert!(stderr.is_empty(), "{stderr}");
    }
    assert_eq!(count, 7);
}

#[test]
fn canary_summary_shows_order_steps_and_constraints() {
    let (code, stdout, _) = validate(&examples().join("hello-ferry/deploy-canary.yml"), &[]);
    assert_eq!(code, 0);
    let dev = stdout.find("1. dev").unwrap();
    let staging = stdout.find("2. staging").unwrap();
    let prod_us = stdout.find("3. prod-us").unwrap();
    assert!(dev < staging && staging < prod_us, "{stdout}");
    assert!(
        stdout.contains("account prod-us-cluster, namespace hello-prod"),
        "{stdout}"
    );
    assert!(
        stdout.contains("25% → pause 30s → 50% → approval → 100%"),
        "{stdout}"
    );
    assert!(stdout.contains("dependsOn: staging"), "{stdout}");
    assert!(
        stdout.contains("before: approval (Release Manager)"),
        "{stdout}"
    );
    assert!(stdout.contains("manifests: 3"), "{stdout}");
}

#[test]
fn every_invalid_example_exits_1_with_its_error_line() {
    let mut count = 0;
    for entry in fs::read_dir(examples().join("invalid")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yml") {
            continue;
        }
        count += 1;
        let text = fs::read_to_string(&path).unwrap();
        let wanted: Vec<String> = text
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("# error:")
            .split('|')
            .map(|p| format!(": {}: ", p.trim()))
            .collect();
        let (code, stdout, stderr) = validate(&path, &[]);
        assert_eq!(code, 1, "{}", path.display());
        assert!(stdout.is_empty(), "{stdout}");
        let shown = path.to_string_lossy().to_string();
        assert!(
            stderr.lines().any(
                |l| l.starts_with(&format!("{shown}:")) && wanted.iter().any(|w| l.contains(w))
            ),
            "{}: expected one of {wanted:?} in:\n{stderr}",
            path.display()
        );
    }
    assert_eq!(count, 10);
}

#[test]
fn diagnostics_are_printed_in_the_spec_format() {
    let path = examples().join("invalid/unknown-strategy.yml");
    let (code, _, stderr) = validate(&path, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "{}:9:15: targets.prod.strategy: unknown strategy \"canery\"; did you mean \"canary\"?",
            path.display()
        )
    );
}

#[test]
fn missing_deploy_file_is_a_clear_message() {
    let (code, stdout, stderr) = validate(Path::new("/nonexistent/deploy.yml"), &[]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(
        stderr.starts_with("error: cannot read deploy file /nonexistent/deploy.yml"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn missing_manifest_is_reported_at_its_entry() {
    let dir = scratch("missing-manifest");
    let deploy = dir.join("deploy.yml");
    fs::write(
        &deploy,
        "application: a\ntargets:\n  dev: {account: c, namespace: n}\nmanifests:\n  - path: nope.yaml\n",
    )
    .unwrap();
    let (code, _, stderr) = validate(&deploy, &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(
            "deploy.yml:5:11: manifests[0].path: manifest file \"nope.yaml\" does not exist"
        ),
        "{stderr}"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn directories_are_read_recursively_urls_are_left_to_the_server() {
    let dir = scratch("dirs");
    fs::create_dir_all(dir.join("k8s/nested")).unwrap();
    fs::write(
        dir.join("k8s/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
    )
    .unwrap();
    fs::write(
        dir.join("k8s/nested/svc.yml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: b}\n",
    )
    .unwrap();
    fs::write(dir.join("k8s/README.md"), "not a manifest").unwrap();
    let deploy = dir.join("deploy.yml");
    fs::write(
        &deploy,
        "application: a\ntargets:\n  dev: {account: c, namespace: n}\nmanifests:\n  - path: k8s\n  - path: https://example.com/x.yaml\n",
    )
    .unwrap();
    let (code, stdout, stderr) = validate(&deploy, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("note: manifest https://example.com/x.yaml is fetched by the server"),
        "{stdout}"
    );
    assert!(
        stdout.contains("manifests: 2 (+1 fetched by the server)"),
        "{stdout}"
    );

    // A broken manifest is named with its path beside the deploy file.
    fs::write(dir.join("k8s/nested/svc.yml"), "kind: [\n").unwrap();
    let (code, _, stderr) = validate(&deploy, &[]);
    assert_eq!(code, 1);
    let shown = dir.join("k8s/nested/svc.yml").display().to_string();
    assert!(stderr.contains(&format!("{shown}:2:")), "{stderr}");
    assert!(stderr.contains(": syntax: "), "{stderr}");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn overrides_reach_the_plan() {
    let path = examples().join("hello-ferry/deploy-analysis.yml");
    let (code, stdout, stderr) = validate(
        &path,
        &[
            "--application",
            "other-app",
            "--add-context",
            "build=42,owner=me",
            "--target",
            "prod",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("application: other-app"), "{stdout}");
    assert!(stdout.contains("context: owner=me, build=42"), "{stdout}");
    assert!(
        stdout.contains("targets (1, in deployment order)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("dependsOn"),
        "staging was filtered out:\n{stdout}"
    );

    let (code, _, stderr) = validate(&path, &["--target", "prd"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("unknown target (from the caller) \"prd\"; did you mean \"prod\"?"),
        "{stderr}"
    );

    let (code, _, stderr) = validate(&path, &["--add-context", "novalue"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("invalid --add-context entry \"novalue\""),
        "{stderr}"
    );
}

#[test]
fn json_and_yaml_output_print_the_plan() {
    let path = examples().join("hello-ferry/deploy-canary.yml");
    let path = path.to_string_lossy().to_string();
    let out = ferry(&["deploy", "validate", "-f", &path, "-o", "json"]);
    assert!(out.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["application"], "hello-ferry");
    assert_eq!(plan["targets"].as_array().unwrap().len(), 4);
    let out = ferry(&["deploy", "validate", "-f", &path, "-o", "yaml"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("application: hello-ferry\n"), "{text}");
}
