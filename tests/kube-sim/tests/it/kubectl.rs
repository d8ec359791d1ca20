//! kubectl against the simulator through the written kubeconfig: get namespaces, server-side
//! apply of a Deployment and a Service, get, scale and delete. The simulator serves no OpenAPI
//! documents, so `kubectl apply` runs with `--validate=false`.

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
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

async fn kubectl(bin: &Path, kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {stdout}\n{stderr}"
    );
    stdout.into_owned()
}

#[tokio::test]
async fn kubectl_get_apply_scale_delete() {
    let Some(bin) = kubectl_path() else {
        println!("SKIPPED: kubectl is not installed (neither /usr/bin/kubectl nor on PATH)");
        return;
    };
    let (sim, client) = sim("shop").await;
    let dir = std::env::temp_dir().join(format!("kube-sim-it-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let manifest = dir.join("shop.yaml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let kc = kubeconfig.as_path();

    let ns = kubectl(&bin, kc, &["get", "ns"]).await;
    assert!(
        ns.contains("NAME") && ns.contains("shop") && ns.contains("Active"),
        "{ns}"
    );

    let applied = kubectl(
        &bin,
        kc,
        &[
            "apply",
            "--server-side",
            "--validate=false",
            "-n",
            "shop",
            "-f",
            manifest.to_str().unwrap(),
        ],
    )
    .await;
    assert!(
        applied.contains("deployment.apps/shop serverside-applied"),
        "{applied}"
    );
    assert!(
        applied.contains("service/shop serverside-applied"),
        "{applied}"
    );
    let svc: Api<Service> = Api::namespaced(client.clone(), "shop");
    let managers: Vec<String> = svc
        .get("shop")
        .await
        .unwrap()
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["kubectl"]);

    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    eventually("two shop pods", DEADLINE, || async {
        (pods
            .list(&ListParams::default().labels("app=shop"))
            .await
            .unwrap()
            .items
            .len()
            == 2)
            .then_some(())
    })
    .await;
    let listing = kubectl(&bin, kc, &["get", "deploy,rs,pods", "-n", "shop"]).await;
    assert!(listing.contains("deployment.apps/shop"), "{listing}");
    assert!(listing.contains("replicaset.apps/shop-"), "{listing}");
    assert!(listing.contains("pod/shop-"), "{listing}");

    let scaled = kubectl(
        &bin,
        kc,
        &["scale", "deployment/shop", "--replicas=3", "-n", "shop"],
    )
    .await;
    assert!(scaled.contains("scaled"), "{scaled}");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    eventually("three ready replicas", DEADLINE, || async {
        let st = deploys.get("shop").await.unwrap().status?;
        (st.ready_replicas == Some(3) && st.updated_replicas == Some(3)).then_some(())
    })
    .await;

    let deleted = kubectl(&bin, kc, &["delete", "deployment", "shop", "-n", "shop"]).await;
    assert!(deleted.contains("deleted"), "{deleted}");
    eventually("pods collected after kubectl delete", DEADLINE, || async {
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
            .then_some(())
    })
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
    sim.shutdown().await;
}
