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
