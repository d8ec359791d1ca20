//! The web UI in a real browser: Debian's `chromium` driven by Playwright for Python (both
//! installed by scripts/deps.sh: chromium from Debian's packages, Playwright from PyPI into
//! ~/.cache/ferry/venv-ui; no browser download), against the whole stack with Kubernetes API
//! simulators. This test prepares the people and deployments, then runs
//! `tests/ui/browser.py`, which says what it checks; screenshots land in the cargo target
//! directory's `ui-screenshots/` (never committed).

use crate::app::{self, CLUSTERS};
use ferry_stack_tests::api::Api;
use ferry_stack_tests::{Credential, Stack, StackOptions};
use std::path::PathBuf;
use std::time::Duration;

/// The Python with Playwright that scripts/deps.sh prepares.
fn python() -> PathBuf {
    if let Ok(path) = std::env::var("FERRY_UI_PYTHON") {
        return PathBuf::from(path);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/ferry/venv-ui/bin/python")
}

/// `target/ui-screenshots` beside the test binary's profile directory.
fn screenshots() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let target = exe
        .ancestors()
        .find(|dir| {
            dir.file_name()
                .is_some_and(|n| n == "debug" || n == "release")
        })
        .and_then(|profile| profile.parent())
        .map_or_else(std::env::temp_dir, PathBuf::from);
    target.join("ui-screenshots")
}

/// Makes `email` a local user of `tenant` with `roles`, with a password of the test's.
async fn local_user(stack: &Stack, tenant: &str, email: &str, roles: &str) -> (String, String) {
    let password = format!("pw-{}", ferry_testkit::unique("ui"));
    let out = stack
        .svc_api_command(
            &[
                "local-user",
                "--tenant",
                tenant,
                "--email",
                email,
                "--roles",
                roles,
            ],
            &[("FERRY_LOCAL_USER_PASSWORD", &password)],
        )
        .await;
    assert!(
        out.status.success(),
        "local-user {email}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (email.to_string(), password)
}

#[tokio::test]
async fn the_web_ui_in_a_browser() {
    let python = python();
    assert!(
        python.exists(),
        "{} is missing: run scripts/deps.sh (it installs chromium and Playwright for the browser tests)",
        python.display()
    );
    let stack = Stack::start(StackOptions {
        clusters: CLUSTERS.to_vec(),
        hubs: 1,
        schedulers: 1,
        pod_ready_delay: Duration::from_millis(300),
        scheduler_tick_secs: 1,
    })
    .await;

    let viewer = local_user(&stack, "demo", "viewer@ferry.test", "Viewer").await;
    let deployer = local_user(&stack, "demo", "deployer@ferry.test", "Deployer").await;
    let admin = local_user(&stack, "demo", "admin@ferry.test", "Tenant Admin").await;

    // Another tenant with a deployment of its own.
    let out = stack
        .svc_api_command(
            &[
                "bootstrap",
                "--tenant",
                "other",
                "--client-name",
                "other-admin",
                "--json",
            ],
            &[],
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bootstrap JSON");
    let other = Credential {
        client_id: json["client_id"].as_str().unwrap_or_default().into(),
        client_secret: json["client_secret"].as_str().unwrap_or_default().into(),
    };
    let other_api = Api::sign_in(&stack.api_url, &other).await;
    let file = app::write(&stack, "9.9.9");
    let (status, started) = other_api.start(&file, &["manifests/app.yaml"]).await;
    assert_eq!(status, 201, "{started}");
    let other_deployment = started["id"].as_str().expect("an id").to_string();

    // A running version, so 1.1.0 is a real canary (a first deployment goes straight to 100%).
    let file = app::write(&stack, "1.0.0");
    let out = stack
        .ferry(&[
            "deploy",
            "start",
            "-f",
            &file.to_string_lossy(),
            "--watch",
            "--auto-approve",
        ])
        .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "baseline:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        stack.logs()
    );
    let api = Api::sign_in(&stack.api_url, &stack.admin).await;
    let file = app::write(&stack, "1.1.0");
    let (status, started) = api.start(&file, &["manifests/app.yaml"]).await;
    assert_eq!(status, 201, "{started}");
    let deployment = started["id"].as_str().expect("an id").to_string();

    let shots = screenshots();
    let users = serde_json::json!({
        "viewer": [viewer.0, viewer.1],
        "deployer": [deployer.0, deployer.1],
        "admin": [admin.0, admin.1],
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ui/browser.py");
    let run = tokio::process::Command::new(&python)
        .arg(&script)
        .env("FERRY_UI_BASE", &stack.api_url)
        .env("FERRY_UI_TENANT", "demo")
        .env("FERRY_UI_DEPLOYMENT", &deployment)
        .env("FERRY_UI_OTHER_TENANT", "other")
        .env("FERRY_UI_OTHER_DEPLOYMENT", &other_deployment)
        .env("FERRY_UI_SCREENSHOTS", &shots)
        .env("FERRY_UI_USERS", users.to_string())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(420), run)
        .await
        .expect("the browser checks finish within 7 minutes")
        .expect("run the browser checks");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser checks failed:\n{stdout}\n{stderr}\n{}",
        stack.logs()
    );
    println!("{stdout}\nscreenshots: {}", shots.display());

    // The Redeploy from the page carried its reason into the audit log, as other actions do.
    let entries = redeploys(&stack).await;
    let redeploy = entries
        .iter()
        .find(|e| e["details"]["redeployOf"] == deployment.as_str())
        .unwrap_or_else(|| panic!("no redeploy of {deployment} in the audit log: {entries:?}"));
    assert_eq!(
        redeploy["details"]["reason"], "redeploy after the rollback",
        "{redeploy}"
    );
}

/// The `deployment.redeploy` entries of the audit log (`GET /v1/audit`), read as the admin
/// credential.
async fn redeploys(stack: &Stack) -> Vec<serde_json::Value> {
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{}/oauth/token", stack.api_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            form_encode(&stack.admin.client_id),
            form_encode(&stack.admin.client_secret)
        ))
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token response");
    let token = token["access_token"].as_str().expect("an access token");
    let page: serde_json::Value = http
        .get(format!(
            "{}/v1/audit?action=deployment.redeploy",
            stack.api_url
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("audit request")
        .json()
        .await
        .expect("audit response");
    page["entries"].as_array().cloned().unwrap_or_default()
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
