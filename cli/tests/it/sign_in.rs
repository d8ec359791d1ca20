//! A person signs in with `ferry login` (the device flow) against svc-api's own issuer: the
//! test reads the user code the CLI prints and approves it at the verification page over HTTP
//! as the person's browser would; later commands use the stored token, refresh it before it
//! expires and after a 401, and `ferry logout` revokes the sign-in. Contexts keep several
//! sign-ins apart, and a credentials file of the first version still loads.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::support::{Home, Stack};

const EMAIL: &str = "ada@example.test";
const PASSWORD: &str = "correct horse battery staple";

/// A local account `EMAIL` with `Deployer` in a new tenant: the tenant's slug.
async fn local_person(stack: &Stack) -> String {
    let tenant = stack.tenant(&["Tenant Admin"]).await;
    let store = ferry_store::Store::connect(&stack.db.url, 2).await.unwrap();
    let args = ferry_svc_api::settings::LocalUserArgs {
        email: EMAIL.into(),
        tenant: tenant.tenant.clone(),
        roles: vec!["Deployer".into()],
        json: false,
    };
    ferry_svc_api::identity::local_users::local_user(&store, &args, Some(PASSWORD.into()))
        .await
        .unwrap();
    tenant.tenant
}

/// Approves `user_code` at the verification page as the person's browser would: the page,
/// its CSRF cookie and field, then the form.
async fn approve(api: &str, user_code: &str) {
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{api}/oauth/device"))
        .query(&[("user_code", user_code)])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("the page's CSRF cookie")
        .to_string();
    let html = page.text().await.unwrap();
    let at = html.find("name=\"_csrf\" value=\"").expect("a CSRF field") + 20;
    let csrf = html[at..].split('"').next().unwrap().to_string();
    let done = http
        .post(format!("{api}/oauth/device"))
        .header("origin", api)
        .header("cookie", cookie)
        .form(&[
            ("user_code", user_code),
            ("email", EMAIL),
            ("password", PASSWORD),
            ("decision", "approve"),
            ("_csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("Device signed in"));
}

/// Runs `ferry login` (device flow) in `home`, approving the code it prints; its stdout.
async fn device_login(home: &Home, stack: &Stack, args: &[&str]) -> String {
    let mut command = home.command(&[], args);
    let mut child = command.spawn().expect("ferry starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut shown = String::new();
    let code = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            shown.push_str(&line);
            shown.push('\n');
            if let Some(code) = line.strip_prefix("Code: ") {
                return code.trim().to_string();
            }
        }
        panic!("ferry login ended without a code:\n{shown}");
    })
    .await
    .expect("ferry login prints a code");
    assert!(
        shown.contains(&format!("{}/oauth/device", stack.api)),
        "the verification URI is shown:\n{shown}"
    );
    approve(&stack.api, &code).await;
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("ferry login ends once approved")
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "ferry login failed:\n{stdout}");
    stdout
}

fn read_file(home: &Home) -> Value {
    serde_json::from_str(&std::fs::read_to_string(home.credentials()).unwrap()).unwrap()
}

fn write_file(home: &Home, file: &Value) {
    std::fs::write(home.credentials(), serde_json::to_string(file).unwrap()).unwrap();
}

#[tokio::test]
async fn a_person_signs_in_with_the_device_flow_and_stays_signed_in() {
    let stack = Stack::start().await;
    let tenant = local_person(&stack).await;
    let home = Home::new();

    let said = device_login(
        &home,
        &stack,
        &[
            "login",
            "--api",
            &stack.api,
            "--tenant",
            &tenant,
            "--context",
            "dev",
        ],
    )
    .await;
    assert!(
        said.contains(&format!("Logged in to {} as {EMAIL}", stack.api)),
        "{said}"
    );
    assert!(
        said.contains("context dev") && said.contains("Deployer"),
        "{said}"
    );

    let mode = std::fs::metadata(home.credentials())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let file = read_file(&home);
    assert_eq!(file["version"], 2);
    assert_eq!(file["current"], "dev");
    let dev = &file["contexts"]["dev"];
    assert_eq!(dev["tenant"], tenant.as_str());
    assert_eq!(dev["person"]["issuer"], stack.api.as_str());
    assert_eq!(dev["person"]["clientId"], "ferry-cli");
    let first_refresh = dev["person"]["refreshToken"].as_str().unwrap().to_string();

    // The stored token works for ordinary commands.
    let listed = home
        .run(&[], &["deploy", "list", "-o", "json"])
        .await
        .json();
    assert!(listed.is_array() || listed.is_object(), "{listed}");
    let me = home.run(&[], &["whoami", "-o", "json"]).await.json();
    assert_eq!(me["email"], EMAIL);
    assert_eq!(me["roles"], serde_json::json!(["Deployer"]));

    // About to expire: refreshed before the request, and the rotated token saved.
    let mut file = read_file(&home);
    file["contexts"]["dev"]["person"]["expiresAt"] = Value::from(1);
    write_file(&home, &file);
    home.run(&[], &["deploy", "list", "-o", "json"]).await.ok();
    let file = read_file(&home);
    let second_refresh = file["contexts"]["dev"]["person"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second_refresh, first_refresh, "the refresh token rotated");
    assert!(
        file["contexts"]["dev"]["person"]["expiresAt"]
            .as_u64()
            .unwrap()
            > 1
    );

    // Refused by the API (401): refreshed once and tried again.
    let mut file = read_file(&home);
    file["contexts"]["dev"]["person"]["token"] = Value::from("not.a.token");
    write_file(&home, &file);
    let me = home.run(&[], &["whoami", "-o", "json"]).await.json();
    assert_eq!(me["email"], EMAIL);
    let file = read_file(&home);
    assert_ne!(
        file["contexts"]["dev"]["person"]["refreshToken"],
        second_refresh.as_str()
    );

    // Two commands at once find the token about to expire: one refreshes, the other waits and
    // takes its tokens (spending the refresh token twice would end the sign-in).
    let mut file = read_file(&home);
    file["contexts"]["dev"]["person"]["expiresAt"] = Value::from(1);
    write_file(&home, &file);
    let (one, two) = tokio::join!(
        home.run(&[], &["whoami", "-o", "json"]),
        home.run(&[], &["whoami", "-o", "json"])
    );
    assert_eq!(one.json()["email"], EMAIL);
    assert_eq!(two.json()["email"], EMAIL);
    let mut file = read_file(&home);
    file["contexts"]["dev"]["person"]["expiresAt"] = Value::from(1);
    write_file(&home, &file);
    let me = home.run(&[], &["whoami", "-o", "json"]).await.json();
    assert_eq!(me["email"], EMAIL, "the sign-in survived");

    // A second context for a machine credential; `context use` switches, FERRY_CONTEXT picks.
    let credential = stack.tenant(&["Viewer"]).await;
    home.run(
        &[],
        &[
            "login",
            "--context",
            "ci",
            "--api",
            &stack.api,
            "--client-id",
            &credential.client_id,
            "--client-secret",
            credential.client_secret.as_deref().unwrap(),
        ],
    )
    .await
    .ok();
    let contexts = home.run(&[], &["context", "ls", "-o", "json"]).await.json();
    let names: Vec<(&str, bool, &str)> = contexts
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["current"].as_bool().unwrap(),
                c["auth"].as_str().unwrap(),
            )
        })
        .collect();
    let person_auth = format!("person at {}", stack.api);
    assert_eq!(
        names,
        [
            (
                "ci",
                true,
                format!("client {}", credential.client_id).as_str()
            ),
            ("dev", false, person_auth.as_str()),
        ]
    );
    let me = home.run(&[], &["whoami", "-o", "json"]).await.json();
    assert_eq!(me["roles"], serde_json::json!(["Viewer"]));
    let me = home
        .run(&[("FERRY_CONTEXT", "dev")], &["whoami", "-o", "json"])
        .await
        .json();
    assert_eq!(me["email"], EMAIL);
    home.run(&[], &["context", "use", "dev"]).await.ok();
    let missing = home.run(&[], &["context", "use", "nope"]).await;
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("no context \"nope\""),
        "{}",
        missing.stderr
    );

    // Logout revokes the refresh token at the issuer and forgets the tokens.
    let refresh_token = read_file(&home)["contexts"]["dev"]["person"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();
    let out = home.run(&[], &["logout", "-o", "json"]).await.json();
    assert_eq!(out["revoked"], true);
    let file = read_file(&home);
    assert!(file["contexts"]["dev"].get("person").is_none());
    assert_eq!(file["contexts"]["dev"]["tenant"], tenant.as_str());
    let refused = reqwest::Client::new()
        .post(format!("{}/oauth/token", stack.api))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
            ("client_id", "ferry-cli"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let after = home.run(&[], &["whoami"]).await;
    assert_eq!(after.code, 7, "not logged in: {}", after.stderr);
    home.run(&[], &["context", "rm", "ci"]).await.ok();
    stack.stop().await;
}

#[tokio::test]
async fn a_credentials_file_of_the_first_version_still_works() {
    let stack = Stack::start().await;
    let credential = stack.tenant(&["Viewer"]).await;
    let home = Home::new();
    std::fs::create_dir_all(home.credentials().parent().unwrap()).unwrap();
    let old = serde_json::json!({
        "api": stack.api,
        "clientId": credential.client_id,
        "clientSecret": credential.client_secret,
    });
    write_file(&home, &old);
    let me = home.run(&[], &["whoami", "-o", "json"]).await.json();
    assert_eq!(me["roles"], serde_json::json!(["Viewer"]));
    let contexts = home.run(&[], &["context", "ls", "-o", "json"]).await.json();
    assert_eq!(contexts[0]["name"], "default");
    assert_eq!(contexts[0]["current"], true);
    // The next write converts the file.
    home.run(&[], &["context", "use", "default"]).await.ok();
    let file = read_file(&home);
    assert_eq!(file["version"], 2);
    assert_eq!(
        file["contexts"]["default"]["clientId"],
        credential.client_id.as_str()
    );
    stack.stop().await;
}
