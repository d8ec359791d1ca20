//! `ferry users` and `ferry roles` against the real API: invite, list, re-role and remove a
//! person; create a role, give it to a credential and take it back.

use crate::support::Stack;

#[tokio::test]
async fn users_and_roles_are_managed_from_the_command_line() {
    let stack = Stack::start().await;
    let (admin, home) = stack.logged_in(&["Tenant Admin"]).await;

    let out = home
        .run(
            &[],
            &[
                "users",
                "set",
                "Ada@Example.com",
                "--role",
                "Viewer",
                "--name",
                "Ada",
            ],
        )
        .await
        .ok();
    assert_eq!(out, "ada@example.com holds: Viewer.\n");
    let table = home.run(&[], &["users", "ls"]).await.ok();
    assert!(table.starts_with("EMAIL "), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("ada@example.com"))
        .unwrap();
    assert!(row.contains("Ada") && row.contains("Viewer"), "{table}");
    let out = home
        .run(
            &[],
            &[
                "users",
                "set",
                "ada@example.com",
                "--role",
                "Deployer",
                "--role",
                "Viewer",
            ],
        )
        .await
        .ok();
    assert_eq!(out, "ada@example.com holds: Deployer, Viewer.\n");

    let out = home
        .run(&[], &["roles", "create", "Release Manager"])
        .await
        .ok();
    assert_eq!(out, "Role Release Manager created.\n");
    let roles = home.run(&[], &["roles", "ls", "-o", "json"]).await.json();
    assert!(
        roles
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "Release Manager" && r["built_in"] == false),
        "{roles}"
    );
    let table = home.run(&[], &["roles", "ls"]).await.ok();
    assert!(table.contains("Release Manager") && table.contains("Tenant Admin"));

    let id = admin.credential_id.to_string();
    let out = home
        .run(
            &[],
            &[
                "roles",
                "add",
                "Release Manager",
                "--kind",
                "credential",
                "--id",
                &id,
            ],
        )
        .await
        .ok();
    assert_eq!(
        out,
        format!("Role Release Manager given to credential {id}.\n")
    );
    let held = |creds: &serde_json::Value| {
        creds
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id.as_str())
            .map(|c| c["roles"].clone())
            .unwrap()
    };
    let creds = home.run(&[], &["creds", "ls", "-o", "json"]).await.json();
    assert!(
        held(&creds)
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "Release Manager"),
        "{creds}"
    );
    home.run(
        &[],
        &[
            "roles",
            "remove",
            "Release Manager",
            "--kind",
            "credential",
            "--id",
            &id,
        ],
    )
    .await
    .ok();
    let creds = home.run(&[], &["creds", "ls", "-o", "json"]).await.json();
    assert_eq!(held(&creds), serde_json::json!(["Tenant Admin"]));

    let out = home
        .run(&[], &["users", "rm", "ada@example.com"])
        .await
        .ok();
    assert_eq!(out, "User ada@example.com removed.\n");
    let table = home.run(&[], &["users", "ls"]).await.ok();
    assert!(table.starts_with("No users"), "{table}");
    // A role that does not exist is a clear failure, not a silent one.
    let run = home
        .run(
            &[],
            &["roles", "add", "Nope", "--kind", "user", "--id", &id],
        )
        .await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.starts_with("error: not found"), "{}", run.stderr);

    // Everything above is in the audit log, newest first, filtered by prefix and paged.
    let log = home
        .run(&[], &["audit", "list", "--action", "role.", "-o", "json"])
        .await
        .json();
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["role.unbind", "role.bind", "role.create"],
        "{log}"
    );
    let table = home
        .run(
            &[],
            &[
                "audit", "list", "--action", "user.", "--limit", "1", "--all",
            ],
        )
        .await
        .ok();
    assert!(table.starts_with("WHEN "), "{table}");
    assert_eq!(
        table.lines().filter(|l| l.contains("user.")).count(),
        3,
        "{table}"
    );
    stack.stop().await;
}
