//! `ferry deploy start` in a GitHub Actions step, with the flags Armory's action passes
//! (`-n/--application`, `--add-context`, `-t/--targetFilters`): what reaches the API, and the
//! `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY` files it appends to.

use crate::support::{Stack, examples};

#[tokio::test]
async fn start_honours_armorys_flags_and_writes_the_step_outputs() {
    let stack = Stack::start().await;
    let (admin, home) = stack.logged_in(&["Deployer"]).await;
    let file = examples().join("hello-ferry/deploy-canary.yml");
    let dir = std::env::temp_dir().join(ferry_testkit::unique("ferry-cli-gha"));
    std::fs::create_dir_all(&dir).unwrap();
    let outputs = dir.join("output");
    let summary = dir.join("summary");
    // The workflow's earlier steps may have written outputs already: they stay.
    std::fs::write(&outputs, "EARLIER=1\n").unwrap();

    let out = home
        .run(
            &[
                ("GITHUB_OUTPUT", outputs.to_str().unwrap()),
                ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
            ],
            &[
                "deploy",
                "start",
                "-f",
                file.to_str().unwrap(),
                "-n",
                "Potato Facts",
                "--add-context",
                "build=42,sha=0a1b2c",
                "-t",
                "dev",
                "--targetFilters",
                "staging",
            ],
        )
        .await
        .ok();
    let id = out
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap()
        .to_string();

    // What the API stored: the application, context and targets the flags gave.
    let store = ferry_store::Store::from_pool(stack.db.pool.clone());
    let stored = ferry_store::deployments::config(&store, admin.tenant_id, id.parse().unwrap())
        .await
        .unwrap();
    let plan = &stored.plan.0;
    assert_eq!(plan["application"], "Potato Facts");
    assert_eq!(plan["context"]["build"], "42");
    assert_eq!(plan["context"]["sha"], "0a1b2c");
    let targets: Vec<&str> = plan["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["dev", "staging"]);

    // The step's outputs under Armory's names, appended; no RUN_RESULT without --watch.
    let written = std::fs::read_to_string(&outputs).unwrap();
    assert_eq!(
        written,
        format!(
            "EARLIER=1\nDEPLOYMENT_ID={id}\nLINK={}/v1/deployments/{id}\nFERRY_STATUS=running\n",
            stack.api
        )
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.starts_with("### Ferry deployment of Potato Facts\n"),
        "{summary}"
    );
    assert!(summary.contains(&format!("[`{id}`]")), "{summary}");
    assert!(summary.contains("- Status: running\n"), "{summary}");

    // Outside a workflow nothing is written anywhere.
    let again = home
        .run(
            &[],
            &[
                "deploy",
                "validate",
                "-f",
                file.to_str().unwrap(),
                "-t",
                "dev",
            ],
        )
        .await
        .ok();
    assert!(!again.is_empty());
    assert_eq!(std::fs::read_to_string(&outputs).unwrap(), written);
    std::fs::remove_dir_all(&dir).unwrap();
    stack.stop().await;
}

/// The script of the action's `start` step, as `action.yml` holds it: the `run: |` block of the
/// step with `id: start`, its indentation removed.
fn start_step_script() -> String {
    let text = std::fs::read_to_string(examples().join("../action.yml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let step = lines
        .iter()
        .position(|l| l.trim() == "id: start")
        .expect("a step with id start");
    let run = step
        + lines[step..]
            .iter()
            .position(|l| l.trim() == "run: |")
            .expect("its run block");
    let indent = lines[run].len() - lines[run].trim_start().len() + 2;
    let mut script = String::new();
    for line in &lines[run + 1..] {
        if !line.trim().is_empty() && line.len() - line.trim_start().len() < indent {
            break;
        }
        script.push_str(line.get(indent..).unwrap_or(""));
        script.push('\n');
    }
    script
}

/// Every exit code of `ferry` comes out of the action as the step's exit code, `exit-code` and
/// a `status` output that says what happened (a fake `ferry` stands in for each outcome).
#[tokio::test]
async fn the_action_maps_every_exit_code_to_its_outputs() {
    let script = start_step_script();
    let dir = std::env::temp_dir().join(ferry_testkit::unique("ferry-action"));
    std::fs::create_dir_all(&dir).unwrap();
    // (exit code, FERRY_STATUS ferry itself writes when a deployment started, status output)
    let cases = [
        (0, Some("succeeded"), "succeeded"),
        (1, None, "not_started"),
        (3, None, "busy"),
        (4, Some("rolled_back"), "rolled_back"),
        (5, Some("aborted"), "aborted"),
        (6, Some("paused"), "paused"),
        (7, None, "not_allowed"),
        (8, None, "unreachable"),
    ];
    for (code, written, status) in cases {
        let fake = dir.join(format!("ferry-{code}"));
        let write = written.map_or(String::new(), |s| {
            format!("echo FERRY_STATUS={s} >> \"$GITHUB_OUTPUT\"\n")
        });
        std::fs::write(&fake, format!("#!/bin/sh\n{write}exit {code}\n")).unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let output = dir.join(format!("output-{code}"));
        std::fs::write(&output, "").unwrap();
        let ran = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .env("FERRY", &fake)
            .env("FERRY_API", "ferry.example.com")
            .env("FERRY_CLIENT_ID", "id")
            .env("FERRY_CLIENT_SECRET", "secret")
            .env("DEPLOY_FILE", "deploy.yml")
            .env("ARMORY_FILE", "")
            .env("ADD_CONTEXT", "")
            .env("TARGETS", "")
            .env("APPLICATION", "")
            .env("WATCH", "true")
            .env("AUTO_APPROVE", "false")
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_WORKSPACE", &dir)
            .output()
            .await
            .unwrap();
        assert_eq!(ran.status.code(), Some(code), "{ran:?}");
        let outputs = std::fs::read_to_string(&output).unwrap();
        assert!(
            outputs.contains(&format!("\nstatus={status}\n"))
                || outputs.starts_with(&format!("status={status}\n")),
            "exit {code}: {outputs}"
        );
        assert!(
            outputs.ends_with(&format!("exit-code={code}\n")),
            "exit {code}: {outputs}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
