//! The `ferry` CLI drives a deployment through the whole system: svc-api, two hub replicas, two
//! scheduler replicas, one agent per cluster dialling a hub, and a Kubernetes API simulator per
//! cluster. Exit codes are what CI relies on.

use crate::app::{self, CLUSTERS};
use ferry_stack_tests::{Stack, StackOptions};
use std::time::Duration;

#[tokio::test]
async fn the_cli_rolls_a_canary_out_through_hubs_and_agents() {
    let stack = Stack::start(StackOptions {
        clusters: CLUSTERS.to_vec(),
        hubs: 2,
        schedulers: 2,
        pod_ready_delay: Duration::from_millis(300),
        scheduler_tick_secs: 1,
    })
    .await;

    for version in ["1.0.0", "1.1.0"] {
        let file = app::write(&stack, version);
        let file = file.to_string_lossy();
        let out = stack
            .ferry(&["deploy", "start", "-f", &file, "--watch", "--auto-approve"])
            .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "deploy {version}:\n{stdout}\n{stderr}\n{}",
            stack.logs()
        );
        assert!(
            stdout.contains("prod"),
            "the watch shows the targets:\n{stdout}"
        );
    }

    for (account, namespace) in [("dev-cluster", "hello-dev"), ("prod-cluster", "hello-prod")] {
        let sets = app::replica_sets(&stack, account, namespace).await;
        assert_eq!(
            sets,
            [("registry.example/hello-stack:1.1.0".to_string(), 4, 4)],
            "{account}"
        );
    }

    // The hubs recorded both agents, and the API shows them connected.
    let agents = stack.ferry(&["agents", "ls", "-o", "json"]).await;
    let agents: serde_json::Value =
        serde_json::from_slice(&agents.stdout).expect("agents ls prints JSON");
    let mut connected: Vec<_> = agents
        .as_array()
        .expect("a list")
        .iter()
        .filter(|a| a["connected"] == true)
        .map(|a| a["identifier"].as_str().unwrap_or_default().to_string())
        .collect();
    connected.sort();
    assert_eq!(connected, ["dev-cluster", "prod-cluster"], "{agents}");

    // A start while one runs is refused with exit code 3 naming the running deployment.
    let file = app::write(&stack, "1.2.0");
    let file = file.to_string_lossy();
    let first = stack.ferry(&["deploy", "start", "-f", &file]).await;
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = stack.ferry(&["deploy", "start", "-f", &file]).await;
    assert_eq!(
        second.status.code(),
        Some(3),
        "{}{}",
        String::from_utf8_lossy(&second.stdout),
        String::from_utf8_lossy(&second.stderr)
    );
}
