//! A first deployment through four environments: dependsOn order, parallel production branches
//! each gated by an approval, everything straight to 100%.

use crate::support::{Bench, WAIT, example, plan};
use ferry_store::deployments::DeploymentStatus;
use ferry_store::targets::TargetStatus;
use ferry_testkit::eventually;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams};

const ACCOUNTS: [&str; 4] = [
    "dev-cluster",
    "staging-cluster",
    "prod-us-cluster",
    "prod-eu-cluster",
];

#[tokio::test]
async fn targets_follow_depends_on_and_production_branches_run_in_parallel() {
    let mut bench = Bench::new(&ACCOUNTS, &["hello-dev", "hello-staging", "hello-prod"]).await;
    bench.start_engine();
    let plan = plan(&example("deploy-canary.yml"), "hello-ferry:1.1.0");
    let id = bench.start_deployment(&plan).await;

    // Both production targets wait for their approvals at the same time: independent branches.
    for prod in ["prod-us", "prod-eu"] {
        let t = bench
            .wait_target(id, prod, "production waiting for approval", |t| {
                t.status == TargetStatus::Paused
            })
            .await;
        assert_eq!(
            t.reason.as_deref(),
            Some(if prod == "prod-us" {
                "before deployment: waiting for approval (roles: Release Manager)"
            } else {
                "before deployment: waiting for approval"
            })
        );
    }
    // ...and only once both earlier environments succeeded, each at 100% on its own cluster.
    let dev = bench.target(id, "dev").await;
    let staging = bench.target(id, "staging").await;
    assert_eq!(dev.status, TargetStatus::Succeeded);
    assert_eq!(staging.status, TargetStatus::Succeeded);
    assert!(staging.started_at.unwrap() >= dev.ended_at.unwrap());
    for (account, ns) in [
        ("dev-cluster", "hello-dev"),
        ("staging-cluster", "hello-staging"),
    ] {
        let sets = bench.replica_sets(account, ns).await;
        assert_eq!(sets.len(), 1, "{sets:?}");
        let (name, (spec, ready, _)) = sets.iter().next().unwrap();
        assert!(name.starts_with("hello-ferry-"), "{name}");
        assert_eq!((*spec, *ready), (4, 4));
        // Other kinds are applied in the target's namespace.
        let cms: Api<ConfigMap> = Api::namespaced(bench.clients[account].clone(), ns);
        assert!(cms.get_opt("hello-ferry-config").await.unwrap().is_some());
        // Managed pods carry Ferry's annotations and environment.
        let pods: Api<Pod> = Api::namespaced(bench.clients[account].clone(), ns);
        let pod = pods.list(&ListParams::default()).await.unwrap().items[0].clone();
        let annotations = pod.metadata.annotations.unwrap();
        assert_eq!(annotations["ferry.dev/deployment-id"], id.to_string());
        assert_eq!(annotations["deploy.armory.io/replica-set-name"], *name);
        let env = pod.spec.unwrap().containers[0].env.clone().unwrap();
        assert!(env.iter().any(|e| e.name == "FERRY_ENVIRONMENT_NAME"
            && e.value.as_deref() == Some(ns.trim_start_matches("hello-"))));
    }
    // No production cluster has anything yet.
    for account in ["prod-us-cluster", "prod-eu-cluster"] {
        assert!(bench.replica_sets(account, "hello-prod").await.is_empty());
    }

    // Approving one branch moves only that branch.
    bench.decide(id, "prod-eu", true).await;
    bench
        .wait_target(id, "prod-eu", "prod-eu deployed", |t| {
            t.status == TargetStatus::Succeeded
        })
        .await;
    assert_eq!(
        bench.target(id, "prod-us").await.status,
        TargetStatus::Paused
    );
    assert!(
        bench
            .replica_sets("prod-us-cluster", "hello-prod")
            .await
            .is_empty()
    );

    bench.decide(id, "prod-us", true).await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    assert_eq!(end.reason.as_deref(), Some("all 4 targets succeeded"));
    let reasons = bench.reasons(id, "prod-us").await;
    assert!(
        reasons.contains(&"before deployment: approved by rita@example.com".to_string()),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r == "first deployment at 100% (4/4 pods ready)"),
        "{reasons:?}"
    );
    // Every target status change went to ferry.events through the outbox.
    let published: i64 = eventually("events relayed", WAIT, || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE exchange = 'ferry.events'
               AND routing_key LIKE '%.target_status' AND sent_at IS NOT NULL",
        )
        .fetch_one(&bench.db.pool)
        .await
        .unwrap();
        (n >= 8).then_some(n)
    })
    .await;
    assert!(published >= 8);
    bench.stop_engine().await;
}
