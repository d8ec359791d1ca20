//! kube-rs typed `Api<T>` against the simulator: every verb, selectors, patches, server-side
//! apply, subresources, propagation policies, namespaces and a custom resource.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use serde_json::json;

use crate::util::{DEADLINE, code, eventually, sim, workload};

fn cm(name: &str, tier: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"tier": tier}}, "data": {"k": "v"}}),
    )
    .unwrap()
}

#[tokio::test]
async fn get_list_create_replace_with_selectors_and_errors() {
    let (sim, client) = sim("crud").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "crud");
    let pp = PostParams::default();
    for (n, t) in [("a", "front"), ("b", "front"), ("c", "back")] {
        api.create(&pp, &cm(n, t)).await.unwrap();
    }
    assert_eq!(code(api.create(&pp, &cm("a", "x")).await.unwrap_err()), 409);
    let names = |l: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        l.items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect()
    };
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier=front"))
                .await
                .unwrap()
        ),
        ["a", "b"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier notin (front)"))
                .await
                .unwrap()
        ),
        ["c"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=b"))
                .await
                .unwrap()
        ),
        ["b"]
    );

    let mut a = api.get("a").await.unwrap();
    assert!(a.metadata.uid.is_some() && a.metadata.creation_timestamp.is_some());
    let stale = a.clone();
    a.data = Some([("k".to_string(), "changed".to_string())].into());
    let replaced = api.replace("a", &pp, &a).await.unwrap();
    assert_eq!(replaced.data.unwrap()["k"], "changed");
    assert_ne!(
        replaced.metadata.resource_version,
        stale.metadata.resource_version
    );
    assert_eq!(code(api.replace("a", &pp, &stale).await.unwrap_err()), 409);
    assert_eq!(code(api.get("missing").await.unwrap_err()), 404);

    api.delete("c", &DeleteParams::default()).await.unwrap();
    assert_eq!(code(api.get("c").await.unwrap_err()), 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn merge_json_and_strategic_merge_patches() {
    let (sim, client) = sim("patches").await;
    let api: Api<Deployment> = Api::namespaced(client, "patches");
    let mut body = workload("web", "web", 1, "web:1");
    body["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "proxy", "image": "proxy:1"}));
    api.create(
        &PostParams::default(),
        &serde_json::from_value(body).unwrap(),
    )
    .await
    .unwrap();
    let pp = PatchParams::default();

    let merged = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.metadata.labels.unwrap()["team"], "a");

    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/spec/replicas", "value": 4}]))
            .unwrap();
    let patched = api
        .patch("web", &pp, &Patch::<()>::Json(ops))
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().replicas, Some(4));
    assert_eq!(
        patched.metadata.generation,
        Some(2),
        "a spec change bumps generation, a label change does not"
    );

    let smp = json!({"spec": {"template": {"spec": {"containers": [{"name": "web-missing", "image": "x:1"}, {"name": "app", "image": "web:2"}]}}}});
    let out = api.patch("web", &pp, &Patch::Strategic(smp)).await.unwrap();
    let containers = out.spec.unwrap().template.spec.unwrap().containers;
    let pairs: Vec<(String, String)> = containers
        .into_iter()
        .map(|c| (c.name, c.image.unwrap_or_default()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("app".into(), "web:2".into()),
            ("proxy".into(), "proxy:1".into()),
            ("web-missing".into(), "x:1".into())
        ]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_owns_fields_and_conflicts() {
    let (sim, client) = sim("ssa").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "ssa");
    let apply = |data: serde_json::Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": data});
    let alice = PatchParams::apply("alice");
    let created = api
        .patch(
            "settings",
            &alice,
            &Patch::Apply(apply(json!({"a": "1", "b": "1"}))),
        )
        .await
        .unwrap();
    assert_eq!(created.data.as_ref().unwrap()["a"], "1");
    // Alice drops `b`: nobody else owns it, so it is removed.
    let updated = api
        .patch("settings", &alice, &Patch::Apply(apply(json!({"a": "2"}))))
        .await
        .unwrap();
    assert_eq!(
        updated
            .data
            .clone()
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        [("a".to_string(), "2".to_string())]
    );

    let bob = PatchParams::apply("bob");
    let err = api
        .patch("settings", &bob, &Patch::Apply(apply(json!({"a": "3"}))))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert!(
                s.message.contains("alice") && s.message.contains(".data.a"),
                "{}",
                s.message
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let forced = api
        .patch(
            "settings",
            &bob.clone().force(),
            &Patch::Apply(apply(json!({"a": "3"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["a"], "3");
    let managers: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| format!("{}:{}", m.manager.unwrap(), m.operation.unwrap()))
        .collect();
    assert_eq!(managers, ["bob:Apply"], "alice lost her only field to bob");
    sim.shutdown().await;
}

#[tokio::test]
async fn status_and_scale_subresources() {
    let (sim, client) = sim("subres").await;
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), "subres");
    let rs: ReplicaSet = serde_json::from_value(workload("rs", "rs", 0, "web:1")).unwrap();
    rs_api.create(&PostParams::default(), &rs).await.unwrap();
    let pp = PatchParams::default();

    let st = rs_api
        .patch_status("rs", &pp, &Patch::Merge(json!({"spec": {"replicas": 7}, "status": {"replicas": 0, "readyReplicas": 0, "observedGeneration": 99}})))
        .await
        .unwrap();
    assert_eq!(
        st.spec.as_ref().unwrap().replicas,
        Some(0),
        "a status write leaves spec alone"
    );
    let main = rs_api
        .patch(
            "rs",
            &pp,
            &Patch::Merge(
                json!({"metadata": {"labels": {"x": "y"}}, "status": {"observedGeneration": 5}}),
            ),
        )
        .await
        .unwrap();
    assert_ne!(
        main.status.unwrap().observed_generation,
        Some(5),
        "a main write leaves status alone"
    );

    let scale = rs_api.get_scale("rs").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(0));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=rs"));
    let scaled = rs_api
        .patch_scale("rs", &pp, &Patch::Merge(json!({"spec": {"replicas": 2}})))
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(2));
    assert_eq!(
        rs_api.get("rs").await.unwrap().spec.unwrap().replicas,
        Some(2)
    );

    let deploy_api: Api<Deployment> = Api::namespaced(client, "subres");
    deploy_api
        .create(
            &PostParams::default(),
            &serde_json::from_value(workload("d", "d", 1, "web:1")).unwrap(),
        )
        .await
        .unwrap();
    deploy_api
        .patch_scale("d", &pp, &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .unwrap();
    assert_eq!(
        deploy_api
            .get_scale("d")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(3)
    );
    sim.shutdown().await;
}

fn owners(rs: &ReplicaSet) -> Vec<String> {
    rs.metadata
        .owner_references
        .iter()
        .flatten()
        .map(|o| o.uid.clone())
        .collect()
}

#[tokio::test]
async fn delete_propagation_orphan_background_and_adoption() {
    let (sim, client) = sim("gc").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "gc");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "gc");
    let pods: Api<Pod> = Api::namespaced(client, "gc");
    let pp = PostParams::default();
    let d = deploys
        .create(
            &pp,
            &serde_json::from_value(workload("web", "web", 2, "web:1")).unwrap(),
        )
        .await
        .unwrap();
    let uid = d.metadata.uid.unwrap();
    let rs = eventually("the Deployment's ReplicaSet", DEADLINE, || async {
        sets.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|rs| owners(rs) == [uid.clone()])
    })
    .await;
    let rs_name = rs.metadata.name.clone().unwrap();
    eventually("two pods", DEADLINE, || async {
        (pods.list(&ListParams::default()).await.unwrap().items.len() == 2).then_some(())
    })
    .await;

    deploys
        .delete("web", &DeleteParams::orphan())
        .await
        .unwrap();
    let orphan = sets.get(&rs_name).await.unwrap();
    assert!(
        owners(&orphan).is_empty(),
        "orphan delete removes the owner reference"
    );
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        2,
        "the orphaned ReplicaSet keeps its pods"
    );

    // A new Deployment with a matching selector adopts the orphaned ReplicaSet.
    let d2 = deploys
        .create(
            &pp,
            &serde_json::from_value(workload("web", "web", 2, "web:1")).unwrap(),
        )
        .await
        .unwrap();
    let uid2 = d2.metadata.uid.unwrap();
    eventually("adoption", DEADLINE, || async {
        (owners(&sets.get(&rs_name).await.unwrap()) == [uid2.clone()]).then_some(())
    })
    .await;

    deploys
        .delete("web", &DeleteParams::background())
        .await
        .unwrap();
    eventually("ReplicaSets and pods collected", DEADLINE, || async {
        let rs_left = sets.list(&ListParams::default()).await.unwrap().items.len();
        let pods_left = pods.list(&ListParams::default()).await.unwrap().items.len();
        (rs_left == 0 && pods_left == 0).then_some(())
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn cluster_scoped_namespace_and_custom_resource() {
    let (sim, client) = sim("mesh").await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| n.metadata.name.unwrap())
        .collect();
    assert!(
        names.contains(&"default".to_string()) && names.contains(&"mesh".to_string()),
        "{names:?}"
    );
    let ns = namespaces.get("mesh").await.unwrap();
    assert_eq!(ns.metadata.namespace, None);
    let ns_status = ns.status.clone();
    assert_eq!(ns_status.unwrap().phase.as_deref(), Some("Active"));
    // Metadata-only reads, as kube-rs `get_metadata` / `metadata_watcher` make them.
    let meta = namespaces.get_metadata("mesh").await.unwrap();
    assert_eq!(meta.types.unwrap().kind, "PartialObjectMetadata");
    assert_eq!(meta.metadata.uid, ns.metadata.uid);
    let metas = namespaces
        .list_metadata(&ListParams::default().labels("kubernetes.io/metadata.name=mesh"))
        .await
        .unwrap();
    assert_eq!(metas.items.len(), 1);

    let gvk = GroupVersionKind::gvk("networking.istio.io", "v1beta1", "VirtualService");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "virtualservices");
    let vs_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "mesh", &ar);
    let vs: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": "web"},
        "spec": {"hosts": ["web"], "http": [{"route": [
            {"destination": {"host": "web", "subset": "stable"}, "weight": 100},
            {"destination": {"host": "web", "subset": "canary"}, "weight": 0}]}]}
    }))
    .unwrap();
    vs_api.create(&PostParams::default(), &vs).await.unwrap();
    let weights = json!({"spec": {"http": [{"route": [
        {"destination": {"host": "web", "subset": "stable"}, "weight": 90},
        {"destination": {"host": "web", "subset": "canary"}, "weight": 10}]}]}});
    vs_api
        .patch("web", &PatchParams::default(), &Patch::Merge(weights))
        .await
        .unwrap();
    // The same object is served in every registered version.
    let v1 = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService"),
        "virtualservices",
    );
    let got = Api::<DynamicObject>::namespaced_with(client, "mesh", &v1)
        .get("web")
        .await
        .unwrap();
    assert_eq!(got.data["spec"]["http"][0]["route"][1]["weight"], 10);
    assert_eq!(got.types.unwrap().api_version, "networking.istio.io/v1");
    let err = vs_api
        .patch("web", &PatchParams::default(), &Patch::Strategic(json!({})))
        .await
        .unwrap_err();
    assert_eq!(
        code(err),
        415,
        "strategic merge patch is not supported for custom resources"
    );
    sim.shutdown().await;
}
