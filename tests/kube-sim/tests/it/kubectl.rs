//! The real `kubectl` against the simulator through the written kubeconfig, with validation on
//! (kubectl's default `--validate=strict`, which the simulator's OpenAPI documents turn into
//! server-side `fieldValidation=Strict`): typed creates (protobuf bodies), client-side apply
//! (created, unchanged, configured), server-side apply, scale, merge/JSON/strategic patches,
//! rollout status, wait, a bounded watch and delete, each checked through the simulator's API.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service, ServiceAccount};
use kube::api::{Api, ListParams};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::util::{DEADLINE, eventually, sim};

const MANIFEST: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  labels:
    app: shop
spec:
  replicas: 2
  selector:
    matchLabels:
      app: shop
  template:
    metadata:
      labels:
        app: shop
    spec:
      containers:
      - name: shop
        image: shop:1
        ports:
        - containerPort: 8080
        env:
        - name: MODE
          value: blue
---
apiVersion: v1
kind: Service
metadata:
  name: shop
spec:
  selector:
    app: shop
  ports:
  - port: 80
    targetPort: 8080
"#;

fn kubectl_path() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("kubectl"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    std::iter::once(PathBuf::from("/usr/bin/kubectl"))
        .chain(candidates)
        .find(|p| p.is_file())
}

/// Runs kubectl (bounded by a timeout) and returns (success, stdout, stderr).
async fn run(bin: &Path, kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let child = Command::new(bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within 60s"))
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs kubectl, which must succeed without warnings; returns stdout.
async fn kubectl(bin: &Path, kubeconfig: &Path, args: &[&str]) -> String {
    let (ok, stdout, stderr) = run(bin, kubeconfig, args).await;
    assert!(ok, "kubectl {args:?} failed: {stdout}\n{stderr}");
    assert!(
        !stderr.contains("Warning") && !stderr.contains("error"),
        "kubectl {args:?} warned: {stderr}"
    );
    stdout
}

struct Kubectl {
    bin: PathBuf,
    dir: PathBuf,
}

impl Kubectl {
    /// `None` (and a SKIPPED line) when kubectl is not installed.
    fn new(sim: &ferry_kube_sim::RunningSim) -> Option<Kubectl> {
        let Some(bin) = kubectl_path() else {
            println!("SKIPPED: kubectl is not installed (neither /usr/bin/kubectl nor on PATH)");
            return None;
        };
        let dir = std::env::temp_dir().join(format!("kube-sim-it-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        sim.write_kubeconfig(&dir.join("kubeconfig")).unwrap();
        Some(Kubectl { bin, dir })
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    async fn ok(&self, args: &[&str]) -> String {
        kubectl(&self.bin, &self.kubeconfig(), args).await
    }

    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        run(&self.bin, &self.kubeconfig(), args).await
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn kubectl_typed_creates_send_protobuf_and_are_stored() {
    let (sim, client) = sim("unused").await;
    let Some(k) = Kubectl::new(&sim) else { return };

    let out = k.ok(&["create", "namespace", "shop"]).await;
    assert_eq!(out.trim(), "namespace/shop created");
    let ns = Api::<Namespace>::all(client.clone())
        .get("shop")
        .await
        .unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));

    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1",
        "--replicas=2",
        "--port=80",
        "-n",
        "shop",
    ])
    .await;
    let d = Api::<Deployment>::namespaced(client.clone(), "shop")
        .get("web")
        .await
        .unwrap();
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let c = &spec.template.spec.unwrap().containers[0];
    assert_eq!(
        (c.name.as_str(), c.image.as_deref()),
        ("nginx", Some("nginx:1"))
    );
    assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 80);

    k.ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=blue",
        "-n",
        "shop",
    ])
    .await;
    k.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=token=s3cr3t",
        "-n",
        "shop",
    ])
    .await;
    k.ok(&["create", "serviceaccount", "robot", "-n", "shop"])
        .await;
    k.ok(&[
        "expose",
        "deployment",
        "web",
        "--port=8080",
        "--target-port=80",
        "-n",
        "shop",
    ])
    .await;
    k.ok(&[
        "run",
        "once",
        "--image=busybox",
        "--restart=Never",
        "-n",
        "shop",
        "--",
        "true",
    ])
    .await;

    let cm = Api::<ConfigMap>::namespaced(client.clone(), "shop")
        .get("settings")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["mode"], "blue");
    let secret = Api::<Secret>::namespaced(client.clone(), "shop")
        .get("creds")
        .await
        .unwrap();
    assert_eq!(secret.data.unwrap()["token"].0, b"s3cr3t");
    Api::<ServiceAccount>::namespaced(client.clone(), "shop")
        .get("robot")
        .await
        .unwrap();
    let svc = Api::<Service>::namespaced(client.clone(), "shop")
        .get("web")
        .await
        .unwrap()
        .spec
        .unwrap();
    let port = &svc.ports.unwrap()[0];
    assert_eq!(
        (port.port, port.target_port.clone()),
        (
            8080,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(80))
        )
    );
    assert_eq!(svc.selector.unwrap()["app"], "web");
    let pod = Api::<Pod>::namespaced(client.clone(), "shop")
        .get("once")
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(
        pod.containers[0].args.as_deref(),
        Some(&["true".to_string()][..])
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    eventually("two web pods", DEADLINE, || async {
        (pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items
            .len()
            == 2)
            .then_some(())
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn kubectl_apply_patch_scale_rollout_wait_watch_delete() {
    let (sim, client) = sim("shop").await;
    let Some(k) = Kubectl::new(&sim) else { return };
    let manifest = k.file("shop.yaml", MANIFEST);
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "shop");

    // Client-side apply: created, then unchanged, then configured.
    let out = k.ok(&["apply", "-n", "shop", "-f", &manifest]).await;
    assert!(
        out.contains("deployment.apps/shop created") && out.contains("service/shop created"),
        "{out}"
    );
    let out = k.ok(&["apply", "-n", "shop", "-f", &manifest]).await;
    assert!(
        out.contains("deployment.apps/shop unchanged") && out.contains("service/shop unchanged"),
        "{out}"
    );
    let v2 = k.file(
        "shop2.yaml",
        &MANIFEST.replace("image: shop:1", "image: shop:2"),
    );
    let out = k.ok(&["apply", "-n", "shop", "-f", &v2]).await;
    assert!(
        out.contains("deployment.apps/shop configured") && out.contains("service/shop unchanged"),
        "{out}"
    );
    let d = deploys.get("shop").await.unwrap();
    let c = &d
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert_eq!(c.image.as_deref(), Some("shop:2"));
    assert!(
        d.metadata
            .annotations
            .unwrap()
            .contains_key("kubectl.kubernetes.io/last-applied-configuration")
    );

    // Validation is on: an unknown field is refused by the server (Strict), not kept.
    let typo = k.file(
        "typo.yaml",
        &MANIFEST.replace("image: shop:1", "image: shop:1\n        imagee: shop:3"),
    );
    let (ok, _, stderr) = k.run(&["apply", "-n", "shop", "-f", &typo]).await;
    assert!(
        !ok && stderr.contains("unknown field \"spec.template.spec.containers[0].imagee\""),
        "{stderr}"
    );

    // rollout status and wait use the Deployment controller's status and conditions.
    let out = k
        .ok(&[
            "rollout",
            "status",
            "deployment/shop",
            "-n",
            "shop",
            "--timeout=30s",
        ])
        .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let out = k
        .ok(&[
            "wait",
            "--for=condition=Available",
            "deployment/shop",
            "-n",
            "shop",
            "--timeout=30s",
        ])
        .await;
    assert!(out.contains("condition met"), "{out}");

    // Server-side apply takes over the fields kubectl's client-side apply managed.
    let out = k
        .ok(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-n",
            "shop",
            "-f",
            &v2,
        ])
        .await;
    assert!(
        out.contains("deployment.apps/shop serverside-applied"),
        "{out}"
    );
    let managers: Vec<(String, String)> = deploys
        .get("shop")
        .await
        .unwrap()
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                m.operation.unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        managers.contains(&("kubectl".to_string(), "Apply".to_string())),
        "{managers:?}"
    );

    // A bounded watch sees the scale as a MODIFIED event.
    let mut watch = tokio::process::Command::new(&k.bin)
        .arg("--kubeconfig")
        .arg(k.kubeconfig())
        .args([
            "get",
            "deployment",
            "shop",
            "-n",
            "shop",
            "--watch",
            "--output-watch-events",
            "--request-timeout=40s",
            "-o",
            "jsonpath={.type} {.object.spec.replicas}{\"\\n\"}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .expect("watch starts")
        .unwrap();
    assert_eq!(first.as_deref(), Some("ADDED 2"));

    let out = k
        .ok(&["scale", "deployment/shop", "--replicas=3", "-n", "shop"])
        .await;
    assert!(out.contains("scaled"), "{out}");
    tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line == "MODIFIED 3" {
                return;
            }
        }
        panic!("the watch ended before the scale showed");
    })
    .await
    .expect("the watch shows the scale within the deadline");
    watch.kill().await.unwrap();
    eventually("three ready replicas", DEADLINE, || async {
        let st = deploys.get("shop").await.unwrap().status?;
        (st.ready_replicas == Some(3) && st.updated_replicas == Some(3)).then_some(())
    })
    .await;

    // Patches: merge (labels), JSON (replicas), strategic (a container merged by name, an env
    // var by name, a port by containerPort).
    k.ok(&[
        "patch",
        "deployment",
        "shop",
        "-n",
        "shop",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"labels":{"team":"checkout"}}}"#,
    ])
    .await;
    k.ok(&[
        "patch",
        "deployment",
        "shop",
        "-n",
        "shop",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":1}]"#,
    ])
    .await;
    k.ok(&["patch", "deployment", "shop", "-n", "shop", "--type", "strategic", "-p",
           r#"{"spec":{"template":{"spec":{"containers":[
               {"name":"shop","env":[{"name":"LEVEL","value":"debug"}],"ports":[{"containerPort":9090}]},
               {"name":"proxy","image":"proxy:1"}]}}}}"#]).await;
    let d = deploys.get("shop").await.unwrap();
    assert_eq!(d.metadata.labels.unwrap()["team"], "checkout");
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(1));
    let containers = spec.template.spec.unwrap().containers;
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["shop", "proxy"]);
    let env: Vec<&str> = containers[0]
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(env, ["MODE", "LEVEL"]);
    let ports: Vec<i32> = containers[0]
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.container_port)
        .collect();
    assert_eq!(ports, [8080, 9090]);
    assert_eq!(containers[0].image.as_deref(), Some("shop:2"));
    k.ok(&[
        "rollout",
        "status",
        "deployment/shop",
        "-n",
        "shop",
        "--timeout=30s",
    ])
    .await;

    let listing = k.ok(&["get", "deploy,rs,pods,svc", "-n", "shop"]).await;
    assert!(
        listing.contains("deployment.apps/shop") && listing.contains("service/shop"),
        "{listing}"
    );

    let out = k.ok(&["delete", "deployment", "shop", "-n", "shop"]).await;
    assert!(out.contains("deleted"), "{out}");
    let (ok, _, stderr) = k.run(&["get", "deployment", "shop", "-n", "shop"]).await;
    assert!(!ok && stderr.contains("NotFound"), "{stderr}");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "shop");
    eventually(
        "replica sets and pods collected after kubectl delete",
        DEADLINE,
        || async {
            (sets
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty()
                && pods
                    .list(&ListParams::default())
                    .await
                    .unwrap()
                    .items
                    .is_empty())
            .then_some(())
        },
    )
    .await;
    sim.shutdown().await;
}
