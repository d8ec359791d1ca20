//! The Containerfile and the image workflow: the binaries the image ships are the workspace's,
//! the charts run only those, as the image's user; the workflow builds it for amd64 and arm64.
//! (No container engine runs where the tests do, so the image itself is not built here.)

use ferry_chart_tests::render;
use ferry_chart_tests::workspace;
use serde_json::Value;
use std::collections::BTreeSet;

/// The binaries the Containerfile builds (`--bin X`) .
pub(crate) fn containerfile_binaries() -> BTreeSet<String> {
    let text = workspace::read("Containerfile");
    let mut out = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("--bin ") {
        let name: String = rest[at + 6..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        out.insert(name);
        rest = &rest[at + 6..];
    }
    out
}

#[test]
fn the_image_ships_the_workspace_binaries_the_charts_run() {
    let shipped = containerfile_binaries();
    let workspace_bins = workspace::binaries();
    let expected: BTreeSet<String> = [
        "ferry-svc-api",
        "ferry-svc-scheduler",
        "ferry-svc-canary",
        "ferry-svc-webhook",
        "ferry-svc-agent-hub",
        "ferry-agent",
        "ferry",
    ]
    .map(String::from)
    .into();
    assert_eq!(shipped, expected);
    for bin in &shipped {
        assert!(
            workspace_bins.contains(bin),
            "{bin} is no binary of the workspace: {workspace_bins:?}"
        );
    }
    // Each one is copied into the runtime stage.
    let text = workspace::read("Containerfile");
    for bin in &shipped {
        let copied = text
            .split("for bin in")
            .nth(1)
            .and_then(|s| s.split("; do").next())
            .is_some_and(|list| list.split_whitespace().any(|w| w == bin));
        assert!(copied, "{bin} is built but not copied to /out");
    }
    assert!(text.contains("COPY --from=build /out/ /usr/local/bin/"));
}

/// The Containerfile's instructions: continued lines joined, comments left out.
fn instructions() -> Vec<String> {
    let text = workspace::read("Containerfile");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || (current.is_empty() && line.trim().is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

#[test]
fn every_run_step_is_valid_shell() {
    let runs: Vec<String> = instructions()
        .into_iter()
        .filter_map(|i| i.strip_prefix("RUN ").map(str::to_string))
        .collect();
    assert!(runs.len() >= 2, "{runs:?}");
    for run in runs {
        // Leave out BuildKit's --mount flags: the rest is one /bin/sh script.
        let script: Vec<&str> = run
            .split(' ')
            .filter(|w| !w.starts_with("--mount="))
            .collect();
        let script = script.join(" ");
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            script.contains("set -eux"),
            "every step stops at its first failure: {script}"
        );
    }
}

#[test]
fn the_image_runs_as_the_charts_user_on_a_minimal_base() {
    let text = workspace::read("Containerfile");
    let stages: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(
        stages.len(),
        2,
        "a build stage and a runtime stage: {stages:?}"
    );
    assert!(stages[0].contains("rust:${RUST_VERSION}"), "{}", stages[0]);
    let rust_version = text
        .lines()
        .find_map(|l| l.strip_prefix("ARG RUST_VERSION="))
        .expect("ARG RUST_VERSION");
    let workspace_rust = workspace::read("Cargo.toml")
        .lines()
        .find_map(|l| {
            l.strip_prefix("rust-version = \"")
                .map(|v| v.trim_end_matches('"').to_string())
        })
        .unwrap();
    assert_eq!(
        rust_version, workspace_rust,
        "the image builds with the workspace's Rust"
    );
    assert!(
        stages[1].contains("distroless") || stages[1].contains("-slim"),
        "{}",
        stages[1]
    );
    assert!(
        text.contains("--locked"),
        "the image builds what Cargo.lock says"
    );
    let user = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER in the runtime stage");
    let uid: u64 = user.split(':').next().unwrap().parse().unwrap();
    assert_ne!(uid, 0);
    for chart in ["ferry", "ferry-agent"] {
        let values = render::yaml_file(&format!("helm/{chart}/values.yaml"));
        assert_eq!(values["podSecurityContext"]["runAsUser"], uid, "{chart}");
        let repo = values["image"]["repository"].as_str().unwrap();
        assert!(
            repo.ends_with("/ferry"),
            "{chart} names the image the workflow pushes: {repo}"
        );
    }
}

#[test]
fn the_workflow_builds_and_pushes_the_image_for_amd64_and_arm64() {
    let wf = render::yaml_file(".github/workflows/image.yml");
    // YAML 1.1 reads the key `on` as true.
    let on = wf.get("on").or_else(|| wf.get("true")).expect("triggers");
    assert!(
        on["push"]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "v*"),
        "{on}"
    );
    let steps = wf["jobs"]["image"]["steps"].as_array().unwrap();
    let build = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("docker/build-push-action@"))
        })
        .expect("a build-push step");
    let with = &build["with"];
    assert_eq!(with["file"], "Containerfile");
    let platforms: BTreeSet<&str> = with["platforms"].as_str().unwrap().split(',').collect();
    assert_eq!(platforms, BTreeSet::from(["linux/amd64", "linux/arm64"]));
    assert!(
        with["push"].as_str().unwrap().contains("pull_request"),
        "pushes except for pull requests"
    );
    let image = wf["env"]["IMAGE"].as_str().unwrap();
    assert!(
        image.starts_with("ghcr.io/") && image.ends_with("/ferry"),
        "{image}"
    );
    let permissions: &Value = &wf["permissions"];
    assert_eq!(permissions["packages"], "write");
}
