//! Login and the credentials file, whoami and tenants, credentials (the secret shown once),
//! secrets, agents, and the messages for bad credentials, no credentials and an unreachable
//! API, all through the real binary against svc-api.

use std::os::unix::fs::PermissionsExt as _;

use ferry_store::Store;
use ferry_store::agents::{self, Connect};

use crate::support::{Home, Stack, login};

#[tokio::test]
async fn login_saves_a_private_credentials_file_that_later_commands_use() {
    let stack = Stack::start().await;
    let admin = stack.tenant(&["Tenant Admin"]).await;
    let secret = admin.client_secret.clone().unwrap();
    let home = Home::new();

    let out = home
        .run(
            &[],
            &[
                "login",
                "--api",
                &stack.api,
                "--client-id",
                &admin.client_id,
                "--client-secret",
                &secret,
            ],
        )
        .await
        .ok();
    assert!(
        out.starts_with(&format!("Logged in to {} as ", stack.api)),
        "{out}"
    );
    assert!(
        out.contains(&format!("tenant {}", admin.tenant_id)),
        "{out}"
    );
    assert!(
        !out.contains(&secret),
        "the secret is never printed:\n{out}"
    );
    let file = home.credentials();
    assert!(out.contains(&file.display().to_string()), "{out}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved["version"], 2);
    assert_eq!(saved["current"], "default");
    let context = &saved["contexts"]["default"];
    assert_eq!(context["api"], stack.api.as_str());
    assert_eq!(context["clientId"], admin.client_id.as_str());

    // No flags and no environment: everything comes from the file.
    let me = home.run(&[], &["whoami", "-o", "json"]).await.json();
    assert_eq!(me["tenant"], admin.tenant_id.to_string());
    assert_eq!(me["subject"], admin.credential_id.to_string());
    let tenant = home.run(&[], &["tenants"]).await.ok();
    let mut lines = tenant.lines();
    assert!(lines.next().unwrap().starts_with("ID "), "{tenant}");
    assert!(lines.next().unwrap().contains(&admin.tenant), "{tenant}");
    let yaml = home.run(&[], &["tenants", "ls", "-o", "yaml"]).await.ok();
    assert!(yaml.starts_with("- "), "a list:\n{yaml}");
    assert!(
        yaml.contains(&format!("  slug: {}\n", admin.tenant)),
        "{yaml}"
    );
    let current = home
        .run(&[], &["tenants", "current", "-o", "json"])
        .await
        .json();
    assert_eq!(current["id"], admin.tenant_id.to_string());
    let run = home.run(&[], &["tenants", "create", "new-one"]).await;
    assert_eq!(run.code, 7, "not logged in or not allowed");
    assert!(
        run.stderr.starts_with("error: not authorised: "),
        "{}",
        run.stderr
    );

    // A token given by environment wins over the file; a bad one is refused clearly.
    let run = home
        .run(&[("FERRY_TOKEN", "not-a-token")], &["whoami"])
        .await;
    assert_eq!(run.code, 7, "not logged in or not allowed");
    assert!(
        run.stderr.starts_with("error: not authorised: "),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);

    // login --token checks and stores the token.
    let other = Home::new();
    let run = other
        .run(&[], &["login", "--api", &stack.api, "--token", "garbage"])
        .await;
    assert_eq!(run.code, 7, "not logged in or not allowed");
    assert!(
        run.stderr.starts_with("error: not authorised: "),
        "{}",
        run.stderr
    );
    assert!(
        !other.credentials().exists(),
        "nothing saved for a refused login"
    );
    stack.stop().await;
}

#[tokio::test]
async fn creds_create_shows_the_secret_once_and_ls_and_rm_never_do() {
    let stack = Stack::start().await;
    let (_, home) = stack.logged_in(&["Tenant Admin"]).await;

    let out = home
        .run(&[], &["creds", "create", "ci", "--role", "Deployer"])
        .await
        .ok();
    assert!(out.contains("The secret is shown only this once"), "{out}");
    let secret_line = out
        .lines()
        .find(|l| l.starts_with("client_secret: "))
        .unwrap();
    let secret = secret_line
        .trim_start_matches("client_secret:")
        .trim()
        .to_string();
    let id_line = out.lines().find(|l| l.starts_with("client_id: ")).unwrap();
    let client_id = id_line.trim_start_matches("client_id:").trim().to_string();
    assert!(secret.len() >= 20, "{out}");

    let created = home
        .run(
            &[],
            &[
                "-o", "json", "creds", "create", "viewer", "--role", "Viewer",
            ],
        )
        .await
        .json();
    assert!(created["clientSecret"].as_str().unwrap().len() >= 20);

    let table = home.run(&[], &["creds", "ls"]).await.ok();
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table.contains("ci ") && table.contains(&client_id) && table.contains("Deployer"),
        "{table}"
    );
    assert!(!table.contains(&secret), "{table}");
    let listed = home.run(&[], &["creds", "ls", "-o", "json"]).await.json();
    let listed_text = listed.to_string();
    assert!(
        !listed_text.contains(&secret) && !listed_text.contains("secret"),
        "{listed_text}"
    );
    let ci = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ci")
        .unwrap()
        .clone();

    // The new credential works through the environment, then not once revoked.
    let env = [
        ("FERRY_API", stack.api.as_str()),
        ("FERRY_CLIENT_ID", client_id.as_str()),
        ("FERRY_CLIENT_SECRET", secret.as_str()),
    ];
    let fresh = Home::new();
    let me = fresh.run(&env, &["whoami", "-o", "json"]).await.json();
    assert_eq!(me["roles"], serde_json::json!(["Deployer"]));
    let out = home
        .run(&[], &["creds", "rm", ci["id"].as_str().unwrap()])
        .await
        .ok();
    assert!(out.starts_with("Revoked credential ci "), "{out}");
    let run = fresh.run(&env, &["whoami"]).await;
    assert_eq!(run.code, 7, "not logged in or not allowed");
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "error: not authorised: client authentication failed (client id {client_id}, token endpoint {}/oauth/token)",
            stack.api
        )
    );
    // A Deployer may not manage credentials.
    let deployer = stack.tenant(&["Deployer"]).await;
    let home2 = Home::new();
    login(&home2, &stack, &deployer).await;
    let run = home2.run(&[], &["creds", "ls"]).await;
    assert_eq!(run.code, 7, "not logged in or not allowed");
    assert!(
        run.stderr
            .starts_with("error: not authorised: this operation needs one of the roles"),
        "{}",
        run.stderr
    );
    stack.stop().await;
}

#[tokio::test]
async fn secrets_are_set_from_a_flag_or_stdin_listed_by_name_and_removed() {
    let stack = Stack::start().await;
    let (_, home) = stack.logged_in(&["Tenant Admin"]).await;

    let out = home
        .run(
            &[],
            &["secrets", "set", "db-password", "--value", "hunter2-flag"],
        )
        .await
        .ok();
    assert_eq!(out, "Secret db-password set.\n");
    home.run_with_stdin(
        &[],
        &["secrets", "set", "api.key"],
        Some("from-stdin-value\n"),
    )
    .await
    .ok();
    let table = home.run(&[], &["secrets", "ls"]).await.ok();
    assert!(table.starts_with("NAME "), "{table}");
    assert!(
        table.contains("db-password") && table.contains("api.key"),
        "{table}"
    );
    let json = home.run(&[], &["secrets", "ls", "-o", "json"]).await.json();
    let text = json.to_string();
    assert!(
        !text.contains("hunter2") && !text.contains("from-stdin"),
        "{text}"
    );
    assert_eq!(json.as_array().unwrap().len(), 2);

    let out = home.run(&[], &["secrets", "rm", "db-password"]).await.ok();
    assert_eq!(out, "Secret db-password deleted.\n");
    let names = home.run(&[], &["secrets", "ls", "-o", "json"]).await.json();
    assert_eq!(names.as_array().unwrap().len(), 1);
    assert_eq!(names[0]["name"], "api.key");
    let run = home.run(&[], &["secrets", "rm", "db-password"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("error: not found: "),
        "{}",
        run.stderr
    );
    let run = home
        .run_with_stdin(&[], &["secrets", "set", "empty"], Some(""))
        .await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("is empty"), "{}", run.stderr);
    stack.stop().await;
}

#[tokio::test]
async fn agents_ls_shows_each_agent_and_whether_it_is_connected() {
    let stack = Stack::start().await;
    let (admin, home) = stack.logged_in(&["Tenant Admin"]).await;
    assert_eq!(
        home.run(&[], &["agents", "ls"]).await.ok(),
        "No agents have connected yet.\n"
    );

    // An agent connects through the hub, which records it like this.
    let store = Store::from_pool(stack.db.pool.clone());
    let mut tx = store.begin().await.unwrap();
    agents::connect(
        &mut tx,
        admin.tenant_id,
        &Connect {
            identifier: "prod-us-cluster".into(),
            agent_version: "0.1.0".into(),
            kubernetes_version: "v1.33.1".into(),
            hub_replica: "hub-1".into(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let table = home.run(&[], &["agents", "ls"]).await.ok();
    let row = table.lines().nth(1).unwrap();
    for cell in ["prod-us-cluster", "yes", "0.1.0", "v1.33.1", "hub-1"] {
        assert!(row.contains(cell), "{cell} missing in:\n{table}");
    }
    let json = home.run(&[], &["agents", "ls", "-o", "json"]).await.json();
    assert_eq!(json[0]["identifier"], "prod-us-cluster");
    stack.stop().await;
}

#[tokio::test]
async fn missing_credentials_and_an_unreachable_api_get_one_clear_line() {
    let home = Home::new();
    let run = home
        .run(&[("FERRY_API", "http://127.0.0.1:9")], &["agents", "ls"])
        .await;
    assert_eq!(run.code, 7, "not logged in or not allowed");
    assert!(
        run.stderr
            .starts_with("error: not logged in: run `ferry login"),
        "{}",
        run.stderr
    );

    let port = ferry_testkit::process::CLOSED_PORT;
    let api = format!("http://127.0.0.1:{port}");
    let run = home
        .run(&[("FERRY_TOKEN", "t")], &["--api", &api, "deploy", "list"])
        .await;
    assert_eq!(run.code, 8, "Ferry unreachable");
    assert_eq!(
        run.stderr,
        format!("error: cannot reach the Ferry API at {api}: connection refused\n")
    );
    let run = home
        .run(
            &[],
            &[
                "--api",
                &api,
                "login",
                "--client-id",
                "x",
                "--client-secret",
                "y",
            ],
        )
        .await;
    assert_eq!(run.code, 8, "Ferry unreachable");
    assert!(
        run.stderr
            .starts_with("error: cannot reach the Ferry API at "),
        "{}",
        run.stderr
    );
    let run = home.run(&[], &["--api", "ferry.example", "whoami"]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("invalid API URL"), "{}", run.stderr);
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("skip-pause"), "{shell}: {text}");
    }
}
