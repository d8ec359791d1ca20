//! `--watch` against real progress: svc-api and the scheduler engine in process, deploying to
//! a Kubernetes API simulator. A canary watched to success (approved by `--auto-approve`)
//! exits 0 and prints the tree's lines, one per change and without escape codes; an aborted
//! deployment ends the watch with exit 5 and, with `-o json`, the final state on stdout; a
//! watch whose `--timeout` passes first exits 6, leaving the deployment running.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{Home, Stack};

/// One production target with a canary: 50%, an approval, 100%.
const DEPLOY: &str = r#"
version: v1
kind: kubernetes
application: hello-watch
targets:
  prod:
    account: prod-cluster
    namespace: hello-prod
    strategy: canary
manifests:
  - path: app.yaml
strategies:
  canary:
    canary:
      steps:
        - setWeight: 50
        - pause:
            untilApproved: true
        - setWeight: 100
"#;

/// A folder with the deploy file and the example app at `image`.
fn project(image: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(ferry_testkit::unique("ferry-cli-watch"));
    std::fs::create_dir_all(&dir).unwrap();
    write_app(&dir, image);
    std::fs::write(dir.join("deploy.yml"), DEPLOY).unwrap();
    dir
}

fn write_app(dir: &Path, image: &str) {
    let example =
        std::fs::read_to_string(crate::support::examples().join("hello-ferry/manifests/app.yaml"))
            .unwrap();
    let app = example.replace("registry.example/hello-ferry:1.1.0", image);
    assert_ne!(app, example);
    std::fs::write(dir.join("app.yaml"), app).unwrap();
}

/// The deployment id from `Deployment <id> of … started.`
fn started_id(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.starts_with("Deployment ") && l.ends_with(" started."))
        .unwrap_or_else(|| panic!("no start line in:\n{text}"));
    line.split(' ').nth(1).unwrap().to_string()
}

/// Starts version 2.0.0 of the project in `dir` (its deploy file `file`), unwatched; its id.
async fn start_version_2(home: &Home, dir: &Path, file: &str) -> String {
    write_app(dir, "hello-ferry:2.0.0");
    let started = home
        .run(&[], &["deploy", "start", "-f", file, "-o", "json"])
        .await
        .json();
    started["id"].as_str().unwrap().to_string()
}

/// Waits until deployment `id` has a pending approval (the canary's pause).
async fn wait_for_approval(home: &Home, id: &str) {
    ferry_testkit::eventually(
        "the canary to wait for approval",
        Duration::from_secs(60),
        || async move {
            let detail = home
                .run(&[], &["deploy", "status", id, "-o", "json"])
                .await
                .json();
            (!detail["pending_approvals"].as_array()?.is_empty()).then_some(())
        },
    )
    .await;
}

/// Deploys version 1 (the first deployment to the target goes straight to 100%), watched.
async fn first_version(home: &Home, file: &str) {
    let out = home
        .run(&[], &["deploy", "start", "-f", file, "--watch"])
        .await
        .ok();
    let id = started_id(&out);
    assert!(
        out.contains(&format!(
            "hello-watch {id}, started by credential cli-test: succeeded"
        )),
        "{out}"
    );
    assert!(
        out.ends_with(&format!("Deployment {id} succeeded.\n")),
        "{out}"
    );
}

/// A stack with the scheduler and one simulated cluster, a Tenant Admin's CLI, and version
/// 1.0.0 of the project deployed (watched) to it: where every watch test starts.
struct Deployed {
    stack: Stack,
    home: Home,
    dir: PathBuf,
    file: String,
}

impl Deployed {
    async fn version_1() -> Deployed {
        let mut stack = Stack::start().await;
        stack.start_engine(&["prod-cluster"], &["hello-prod"]).await;
        let (_, home) = stack.logged_in(&["Tenant Admin"]).await;
        let dir = project("hello-ferry:1.0.0");
        let file = dir.join("deploy.yml").to_str().unwrap().to_string();
        first_version(&home, &file).await;
        Deployed {
            stack,
            home,
            dir,
            file,
        }
    }

    /// Removes the project and stops the stack.
    async fn stop(self) {
        std::fs::remove_dir_all(&self.dir).unwrap();
        self.stack.stop().await;
    }
}

#[tokio::test]
async fn a_watched_canary_with_auto_approve_succeeds_and_exits_0() {
    let app = Deployed::version_1().await;
    let (home, dir, file) = (&app.home, &app.dir, app.file.as_str());

    write_app(dir, "hello-ferry:2.0.0");
    let out = home
        .run(
            &[],
            &["deploy", "start", "-f", file, "--watch", "--auto-approve"],
        )
        .await
        .ok();
    let id = started_id(&out);
    assert!(
        !out.contains('\x1b'),
        "no escape codes without a terminal:\n{out}"
    );
    let expect = [
        format!("hello-watch {id}, started by credential cli-test: running"),
        "  prod (prod-cluster/hello-prod): paused, step 2/3 (approval), weight 50%: waiting for approval".to_string(),
        format!("    → waiting for approval: ferry deploy approve {id} --target prod"),
        "auto-approved target prod (step:1) because of --auto-approve".to_string(),
        format!("hello-watch {id}, started by credential cli-test: succeeded"),
        "  prod (prod-cluster/hello-prod): succeeded: deployed".to_string(),
        format!("Deployment {id} succeeded."),
    ];
    let mut from = 0;
    for line in &expect {
        let at = out[from..]
            .find(line.as_str())
            .unwrap_or_else(|| panic!("{line:?} missing (in order) in:\n{out}"));
        from += at + line.len();
    }
    // One line per change: the approval wait shows once.
    assert_eq!(
        out.matches("waiting for approval: ferry deploy approve")
            .count(),
        1,
        "{out}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_aborted_deployment_ends_the_watch_with_exit_5() {
    let app = Deployed::version_1().await;
    let (home, dir, file) = (&app.home, &app.dir, app.file.as_str());

    let id = start_version_2(home, dir, file).await;
    let watcher = home
        .command(&[], &["-o", "json", "deploy", "status", &id, "--watch"])
        .spawn()
        .unwrap();
    wait_for_approval(home, &id).await;
    // A watch with a timeout stops first, with its own exit code; the deployment goes on.
    let timed = home
        .run(
            &[],
            &["deploy", "status", &id, "--watch", "--timeout", "2s"],
        )
        .await;
    assert_eq!(
        timed.code, 6,
        "timed out: {}\n{}",
        timed.stdout, timed.stderr
    );
    assert!(
        timed.stderr.contains(&format!(
            "Stopped watching deployment {id} after 2s (--timeout): it is still"
        )),
        "{}",
        timed.stderr
    );
    home.run(&[], &["deploy", "abort", &id, "--reason", "wrong build"])
        .await
        .ok();

    let output = tokio::time::timeout(Duration::from_secs(60), watcher.wait_with_output())
        .await
        .expect("the watch ends once the deployment is aborted")
        .unwrap();
    let run = crate::support::Run::from(output);
    assert_eq!(run.code, 5, "aborted: {}\n{}", run.stdout, run.stderr);
    let last = run.stderr.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("Deployment {id} ended aborted")),
        "{}",
        run.stderr
    );
    // The watch drew the deployment in flight before it ended: running, or already paused at
    // the approval when the watch drew it first.
    assert!(
        run.stderr.contains(&format!(
            "hello-watch {id}, started by credential cli-test: running"
        )) || run.stderr.contains(&format!(
            "hello-watch {id}, started by credential cli-test: paused"
        )),
        "{}",
        run.stderr
    );
    let detail: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(detail["deployment"]["status"], "aborted");
    assert_eq!(detail["targets"][0]["reason"], "aborted: wrong build");
    app.stop().await;
}

#[tokio::test]
async fn history_lists_versions_and_undo_goes_back_to_the_previous_good_one() {
    let app = Deployed::version_1().await;
    let (home, dir, file) = (&app.home, &app.dir, app.file.as_str());
    write_app(dir, "hello-ferry:2.0.0");
    home.run(
        &[],
        &["deploy", "start", "-f", file, "--watch", "--auto-approve"],
    )
    .await
    .ok();

    let table = home
        .run(&[], &["deploy", "history", "hello-watch"])
        .await
        .ok();
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        rows[0].starts_with("1 ")
            && rows[0].contains("succeeded")
            && rows[0].contains("hello-ferry:2.0.0"),
        "{table}"
    );
    // Started by the logged-in credential, named rather than shown as its id.
    assert!(rows[0].contains("credential cli-test"), "{table}");
    assert!(
        rows[1].starts_with("2 ") && rows[1].contains("hello-ferry:1.0.0"),
        "{table}"
    );

    // Back to 1.0.0: the newest succeeded deployment before the running one.
    let run = home
        .run(
            &[],
            &[
                "deploy",
                "undo",
                "hello-watch",
                "--watch",
                "--auto-approve",
                "--timeout",
                "2m",
            ],
        )
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let history = home
        .run(&[], &["deploy", "history", "hello-watch", "-o", "json"])
        .await
        .json();
    assert_eq!(history[0]["status"], "succeeded", "{history}");
    let versions = history[0]["versions"][0].as_str().unwrap();
    assert!(versions.ends_with("hello-ferry:1.0.0"), "{history}");

    // --to names an entry; past the end is a clear error.
    let run = home
        .run(&[], &["deploy", "undo", "hello-watch", "--to", "9"])
        .await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("has 3 deployment(s) in its history"),
        "{}",
        run.stderr
    );

    // `deploy list` pages: one at a time it says how to go on; --all follows every page.
    let first = home
        .run(&[], &["deploy", "list", "--limit", "1"])
        .await
        .ok();
    assert_eq!(
        first.lines().count(),
        3,
        "a header, a row, the hint: {first}"
    );
    let cursor = first
        .lines()
        .last()
        .and_then(|l| l.split("--cursor ").nth(1))
        .map_or_else(
            || panic!("no cursor in {first}"),
            |c| c.trim_end_matches(')').to_string(),
        );
    let second = home
        .run(
            &[],
            &[
                "deploy", "list", "--limit", "1", "--cursor", &cursor, "-o", "json",
            ],
        )
        .await
        .json();
    let all = home
        .run(
            &[],
            &["deploy", "list", "--limit", "1", "--all", "-o", "json"],
        )
        .await
        .json();
    let ids: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{all}");
    assert!(all.get("next").is_none(), "{all}");
    assert_eq!(second["items"][0]["id"], ids[1], "{second}");
    app.stop().await;
}

/// What `COMPLETE=bash` makes `ferry` answer for the words typed so far (the last one is being
/// completed), as bash's registration asks it.
async fn complete(home: &Home, env: &[(&str, &str)], words: &[&str]) -> Vec<String> {
    // Word 0 is `ferry` itself.
    let index = words.len().to_string();
    let mut all_env = vec![
        ("COMPLETE", "bash"),
        ("_CLAP_COMPLETE_INDEX", index.as_str()),
        ("_CLAP_IFS", "\n"),
    ];
    all_env.extend_from_slice(env);
    let mut args = vec!["--", "ferry"];
    args.extend_from_slice(words);
    let run = home.run(&all_env, &args).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    run.stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_rollout_in_flight_shows_what_runs_where_and_completes_its_id_and_targets() {
    let app = Deployed::version_1().await;
    let (home, dir, file) = (&app.home, &app.dir, app.file.as_str());

    let id = start_version_2(home, dir, file).await;
    wait_for_approval(home, &id).await;

    // What runs where: the new version's ReplicaSet with its image, beside the one it replaces.
    let status = home.run(&[], &["deploy", "status", &id]).await.ok();
    let line = status
        .lines()
        .find(|l| l.contains("hello-ferry: new hello-ferry-"))
        .unwrap_or_else(|| panic!("no line for the workload in:\n{status}"));
    assert!(line.contains("image hello-ferry:2.0.0"), "{line}");
    assert!(line.contains(" replacing hello-ferry-"), "{line}");
    // The replaced version's image, and the new version's ready pods as the engine saw them.
    assert!(line.contains("(image hello-ferry:1.0.0, "), "{line}");
    assert!(line.contains(" ready) replacing "), "{line}");

    // Completion offers the deployment (and the one before it), then its target.
    let ids = complete(home, &[], &["deploy", "status", ""]).await;
    assert!(ids.contains(&id), "{ids:?}");
    // Ids are time-ordered: type as much as tells this one from the others.
    let shared = ids
        .iter()
        .filter(|other| **other != id)
        .map(|other| {
            id.chars()
                .zip(other.chars())
                .take_while(|(a, b)| a == b)
                .count()
        })
        .max()
        .unwrap_or(0);
    let prefix = &id[..=shared];
    let narrowed = complete(home, &[], &["deploy", "status", prefix]).await;
    assert_eq!(narrowed, [id.as_str()]);
    let targets = complete(home, &[], &["deploy", "approve", &id, "--target", ""]).await;
    assert_eq!(targets, ["prod"]);
    // With the API out of reach no id is offered, and the shell is not held up.
    let started = std::time::Instant::now();
    let none = complete(
        home,
        &[(
            "FERRY_API",
            &format!("http://127.0.0.1:{}", ferry_testkit::process::CLOSED_PORT),
        )],
        &["deploy", "status", ""],
    )
    .await;
    // (Only the command's flags, which need no API.)
    assert!(none.iter().all(|c| c.starts_with("--")), "{none:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    app.stop().await;
}
