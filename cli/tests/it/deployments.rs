//! `ferry deploy start|status|list` and the actions, against svc-api without a scheduler (so a
//! started deployment stays running): the id, the status tree and list in text and JSON, a busy
//! application (exit 3 naming the running deployment), and an invalid deploy file (exit 1,
//! every error with file:line:col).

use std::fs;

use crate::support::{Stack, examples};

#[tokio::test]
async fn start_prints_the_id_and_status_and_list_show_it() {
    let stack = Stack::start().await;
    let (admin, home) = stack.logged_in(&["Tenant Admin"]).await;
    let file = examples().join("hello-ferry/deploy-canary.yml");
    let file = file.to_str().unwrap();

    let out = home
        .run(
            &[],
            &["deploy", "start", "-f", file, "--add-context", "build=42"],
        )
        .await
        .ok();
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("Deployment ") && first.ends_with(" of hello-ferry started."),
        "{out}"
    );
    let id = first.split(' ').nth(1).unwrap().to_string();
    assert!(
        out.contains(&format!("Follow it: ferry deploy status {id} --watch")),
        "{out}"
    );

    // Status: the tree in text, the API's detail in JSON.
    let tree = home.run(&[], &["deploy", "status", &id]).await.ok();
    let lines: Vec<&str> = tree.lines().collect();
    assert_eq!(
        lines[0],
        format!("hello-ferry {id}, started by credential cli-test: running"),
        "{tree}"
    );
    assert!(
        lines[1].starts_with("├─ dev (dev-cluster/hello-dev): pending"),
        "{tree}"
    );
    assert!(
        lines[2].starts_with("├─ staging (staging-cluster/hello-staging): pending, waits for dev"),
        "{tree}"
    );
    assert!(
        lines[3].starts_with("├─ prod-us (prod-us-cluster/hello-prod): pending, waits for staging"),
        "{tree}"
    );
    assert!(
        lines[4].starts_with("└─ prod-eu (prod-eu-cluster/hello-prod): pending, waits for staging"),
        "{tree}"
    );
    let detail = home
        .run(&[], &["deploy", "status", &id, "-o", "json"])
        .await
        .json();
    assert_eq!(detail["deployment"]["id"], id.as_str());
    assert_eq!(detail["targets"].as_array().unwrap().len(), 4);
    let yaml = home
        .run(&[], &["deploy", "status", &id, "-o", "yaml"])
        .await
        .ok();
    assert!(yaml.contains(&format!("id: {id}\n")), "{yaml}");

    // The manifests went along, paths relative to the deploy file, and the caller's context.
    let store = ferry_store::Store::from_pool(stack.db.pool.clone());
    let stored = ferry_store::deployments::config(&store, admin.tenant_id, id.parse().unwrap())
        .await
        .unwrap();
    let paths: Vec<&str> = stored.manifests.0.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(paths, ["manifests/app.yaml", "manifests/service.yaml"]);
    assert_eq!(stored.plan.0["context"]["build"], "42");

    let list = home.run(&[], &["deploy", "list"]).await.ok();
    assert!(list.starts_with("ID "), "{list}");
    let row = list.lines().nth(1).unwrap();
    assert!(
        row.starts_with(&id) && row.contains("hello-ferry") && row.contains("running"),
        "{list}"
    );
    let page = home
        .run(
            &[],
            &[
                "deploy",
                "list",
                "-o",
                "json",
                "--application",
                "hello-ferry",
                "--status",
                "running",
            ],
        )
        .await
        .json();
    assert_eq!(page["items"][0]["id"], id.as_str());
    assert_eq!(
        home.run(&[], &["deploy", "ls", "--application", "other"])
            .await
            .ok(),
        "No deployments.\n"
    );

    // The same application again: refused while this one runs, exit 3, naming it.
    let run = home.run(&[], &["deploy", "start", "-f", file]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!(
            "error: application busy: deployment {id} is in progress"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);

    // Nothing is pending approval yet; abort is accepted; then approval has nothing to decide.
    let run = home.run(&[], &["deploy", "approve", &id]).await;
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        format!("error: deployment {id} has no pending approval\n")
    );
    let out = home
        .run(&[], &["deploy", "abort", &id, "--reason", "testing"])
        .await
        .ok();
    assert_eq!(
        out,
        format!("Requested abort of deployment {id}; the scheduler carries it out.\n")
    );
    let run = home
        .run(&[], &["deploy", "skip-pause", &id, "--target", "nope"])
        .await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("error: not found: "),
        "{}",
        run.stderr
    );
    let run = home
        .run(
            &[],
            &["deploy", "status", "0192f0d2-0000-7000-8000-000000000000"],
        )
        .await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("error: not found: "),
        "{}",
        run.stderr
    );
    stack.stop().await;
}

#[tokio::test]
async fn an_invalid_deploy_file_is_refused_with_every_error_positioned() {
    let stack = Stack::start().await;
    let (_, home) = stack.logged_in(&["Deployer"]).await;

    // Found by the API (problem+json), shown as `deploy validate` shows it.
    let path = examples().join("invalid/unknown-strategy.yml");
    let shown = path.display().to_string();
    let run = home.run(&[], &["deploy", "start", "-f", &shown]).await;
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "{shown}:9:15: targets.prod.strategy: unknown strategy \"canery\"; did you mean \"canary\"?"
        )
    );

    // Two problems, one of them in a manifest beside the deploy file.
    let dir = std::env::temp_dir().join(ferry_testkit::unique("ferry-cli-invalid"));
    fs::create_dir_all(dir.join("k8s")).unwrap();
    fs::write(dir.join("k8s/app.yaml"), "kind: [\n").unwrap();
    let deploy = dir.join("deploy.yml");
    fs::write(
        &deploy,
        "application: a\ntargets:\n  dev: {account: c, namespace: n, strategy: nope}\nmanifests:\n  - path: k8s\n",
    )
    .unwrap();
    let run = home
        .run(
            &[],
            &[
                "deploy",
                "start",
                "-f",
                deploy.to_str().unwrap(),
                "--target",
                "dev",
            ],
        )
        .await;
    assert_eq!(run.code, 1);
    let deploy_shown = deploy.display().to_string();
    let manifest_shown = dir.join("k8s/app.yaml").display().to_string();
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with(&format!("{deploy_shown}:3:")) && l.contains("strategy")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with(&format!("{manifest_shown}:2:")) && l.contains(": syntax: ")),
        "{}",
        run.stderr
    );

    // Broken YAML never leaves the machine.
    fs::write(&deploy, "application: [\n").unwrap();
    let run = home
        .run(&[], &["deploy", "start", "-f", deploy.to_str().unwrap()])
        .await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with(&format!("{deploy_shown}:")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(": syntax: "), "{}", run.stderr);
    fs::remove_dir_all(dir).unwrap();

    let list = home
        .run(&[], &["deploy", "list", "-o", "json"])
        .await
        .json();
    assert_eq!(list["items"], serde_json::json!([]), "nothing was stored");
    stack.stop().await;
}
