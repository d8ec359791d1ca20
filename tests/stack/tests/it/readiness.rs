//! Readiness by watch through the tunnel: with the schedulers' readiness tick an hour long, the
//! application still rolls out on both clusters, because the watches of its ReplicaSets run
//! through the hubs and the agents and wake each wait as its pods turn ready.

use crate::app::{self, CLUSTERS};
use ferry_stack_tests::{Stack, StackOptions};
use std::time::Duration;

#[tokio::test]
async fn waits_for_pods_end_by_watch_through_hubs_and_agents() {
    let stack = Stack::start(StackOptions {
        clusters: CLUSTERS.to_vec(),
        hubs: 2,
        schedulers: 2,
        pod_ready_delay: Duration::from_millis(300),
        // Never within the test: only the watches can end a wait for pods.
        scheduler_tick_secs: 3600,
    })
    .await;
    // 1.0.0 is each cluster's first version (one wait at 100%); 1.1.0 waits at 25%, 50% and
    // 100% on prod.
    for version in ["1.0.0", "1.1.0"] {
        let file = app::write(&stack, version);
        let file = file.to_string_lossy();
        let out = stack
            .ferry(&[
                "deploy",
                "start",
                "-f",
                &file,
                "--watch",
                "--auto-approve",
                "--timeout",
                "90s",
            ])
            .await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "deploy {version}:\n{}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            stack.logs()
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
}
