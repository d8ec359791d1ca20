//! The application the whole-system tests deploy: a deploy file for two clusters (dev, then prod
//! behind an approval with a 25% → 50% canary) and its manifests at a given version.

use ferry_stack_tests::{Cluster, Stack};
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{Api, ListParams};
use std::path::PathBuf;

pub(crate) const CLUSTERS: [Cluster; 2] = [
    Cluster {
        account: "dev-cluster",
        namespaces: &["hello-dev"],
    },
    Cluster {
        account: "prod-cluster",
        namespaces: &["hello-prod"],
    },
];

pub(crate) const DEPLOY_FILE: &str = r#"version: v1
kind: kubernetes
application: hello-stack
deploymentConfig:
  timeout:
    duration: 2
    unit: minutes
targets:
  dev:
    account: dev-cluster
    namespace: hello-dev
    strategy: rolling
  prod:
    account: prod-cluster
    namespace: hello-prod
    strategy: canary
    constraints:
      dependsOn: ["dev"]
      beforeDeployment:
        - pause:
            untilApproved: true
manifests:
  - path: manifests/app.yaml
strategies:
  rolling:
    canary:
      steps:
        - setWeight:
            weight: 100
  canary:
    canary:
      steps:
        - setWeight:
            weight: 25
        - pause:
            duration: 1
            unit: seconds
        - setWeight:
            weight: 50
        - pause:
            untilApproved: true
"#;

const APP: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello-stack
spec:
  replicas: 4
  selector:
    matchLabels:
      app: hello-stack
  template:
    metadata:
      labels:
        app: hello-stack
    spec:
      containers:
        - name: web
          image: registry.example/hello-stack:VERSION
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: hello-stack-config
data:
  GREETING: "hello"
"#;

/// Writes the deploy file and manifests of `version`; returns the deploy file's path.
pub(crate) fn write(stack: &Stack, version: &str) -> PathBuf {
    write_with(stack, version, DEPLOY_FILE)
}

/// Writes `deploy_file` and the manifests of `version`; returns the deploy file's path.
pub(crate) fn write_with(stack: &Stack, version: &str, deploy_file: &str) -> PathBuf {
    let dir = stack.write_files(
        version,
        &[
            ("deploy.yml", deploy_file),
            ("manifests/app.yaml", &APP.replace("VERSION", version)),
        ],
    );
    dir.join("deploy.yml")
}

/// `(image, desired replicas, ready replicas)` of each ReplicaSet of the application in
/// `account`'s `namespace`, sorted.
pub(crate) async fn replica_sets(
    stack: &Stack,
    account: &str,
    namespace: &str,
) -> Vec<(String, i32, i32)> {
    let api: Api<ReplicaSet> = Api::namespaced(stack.clusters[account].clone(), namespace);
    let list = api
        .list(&ListParams::default().labels("ferry.dev/application=hello-stack"))
        .await
        .expect("list ReplicaSets");
    let mut out: Vec<_> = list
        .items
        .into_iter()
        .map(|rs| {
            let image = rs
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref())
                .and_then(|p| p.containers.first())
                .and_then(|c| c.image.clone())
                .unwrap_or_default();
            let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let ready = rs
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            (image, desired, ready)
        })
        .collect();
    out.sort();
    out
}
