//! `kube::runtime::watcher` against the simulator's controller: Pods of a ReplicaSet turn
//! Ready, an image tagged `bad` never does, scaling down deletes Pods, and a watch resumed
//! from a compacted resourceVersion gets 410 and the watcher recovers by relisting.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_kube_sim::SimConfig;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use crate::util::{DEADLINE, eventually, sim, sim_with, workload};

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn waiting_reason(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .waiting
        .as_ref()?
        .reason
        .clone()
}

#[tokio::test]
async fn replicaset_pods_turn_ready_then_scale_down_deletes_pods() {
    let (sim, client) = sim("ready").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "ready");
    let sets: Api<ReplicaSet> = Api::namespaced(client, "ready");
    let mut events = watcher(pods.clone(), watcher::Config::default().labels("app=web"))
        .applied_objects()
        .boxed();
    let started = std::time::Instant::now();
    sets.create(
        &PostParams::default(),
        &serde_json::from_value(workload("web", "web", 3, "web:1")).unwrap(),
    )
    .await
    .unwrap();

    let mut seen: BTreeMap<String, bool> = BTreeMap::new();
    tokio::time::timeout(DEADLINE, async {
        while let Some(pod) = events.try_next().await.unwrap() {
            seen.insert(pod.metadata.name.clone().unwrap(), ready(&pod));
            if seen.len() == 3 && seen.values().all(|r| *r) {
                break;
            }
        }
    })
    .await
    .expect("three pods turn Ready");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "Ready only after the ready delay"
    );
    let rs = eventually("ReplicaSet status", DEADLINE, || async {
        let rs = sets.get("web").await.unwrap();
        let st = rs.status.clone()?;
        (st.ready_replicas == Some(3) && st.available_replicas == Some(3)).then_some(rs)
    })
    .await;
    assert_eq!(
        rs.status.unwrap().observed_generation,
        rs.metadata.generation
    );

    sets.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    eventually("scale down to one pod", DEADLINE, || async {
        let left = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items;
        (left.len() == 1).then_some(())
    })
    .await;
    eventually("status follows the scale down", DEADLINE, || async {
        let st = sets.get("web").await.unwrap().status?;
        (st.replicas == 1 && st.ready_replicas == Some(1)).then_some(())
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_image_never_turns_ready_and_shows_image_pull_backoff() {
    let (sim, client) = sim("bad").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "bad");
    let sets: Api<ReplicaSet> = Api::namespaced(client, "bad");
    let pp = PostParams::default();
    sets.create(
        &pp,
        &serde_json::from_value(workload("broken", "broken", 1, "registry:5000/web:bad")).unwrap(),
    )
    .await
    .unwrap();
    let broken = eventually("ImagePullBackOff", DEADLINE, || async {
        let items = pods
            .list(&ListParams::default().labels("app=broken"))
            .await
            .unwrap()
            .items;
        items
            .into_iter()
            .find(|p| waiting_reason(p).as_deref() == Some("ImagePullBackOff"))
    })
    .await;
    // A good pod created after the bad one turning Ready proves the delay has passed.
    sets.create(
        &pp,
        &serde_json::from_value(workload("fine", "fine", 1, "web:1")).unwrap(),
    )
    .await
    .unwrap();
    eventually("the good pod is Ready", DEADLINE, || async {
        let items = pods
            .list(&ListParams::default().labels("app=fine"))
            .await
            .unwrap()
            .items;
        items.iter().any(ready).then_some(())
    })
    .await;
    let again = pods
        .get(broken.metadata.name.as_deref().unwrap())
        .await
        .unwrap();
    assert!(!ready(&again));
    assert_eq!(again.status.unwrap().phase.as_deref(), Some("Pending"));
    assert_eq!(
        sets.get("broken")
            .await
            .unwrap()
            .status
            .unwrap()
            .ready_replicas
            .unwrap_or(0),
        0
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn watch_from_compacted_version_gets_410_and_watcher_recovers() {
    let config = SimConfig {
        watch_history: 5,
        ..SimConfig::default()
    };
    let (sim, client) = sim_with(config, "resume").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "resume");
    let first = create(&api, json!({"metadata": {"name": "first"}})).await;
    let old_rv = first.metadata.resource_version.unwrap();

    // The watcher lists, then watches with a 1s server timeout and no bookmarks, so after the
    // flood below its next watch resumes from a compacted version.
    let mut stream = watcher(
        api.clone(),
        watcher::Config::default()
            .labels("app=w")
            .timeout(1)
            .disable_bookmarks(),
    )
    .boxed();
    assert!(matches!(
        stream.next().await,
        Some(Ok(watcher::Event::Init))
    ));
    assert!(matches!(
        stream.next().await,
        Some(Ok(watcher::Event::InitDone))
    ));
    for i in 0..10 {
        let name = format!("noise-{i}");
        create(&api, json!({"metadata": {"name": name}})).await;
    }

    let mut raw = api
        .watch(&WatchParams::default(), &old_rv)
        .await
        .unwrap()
        .boxed();
    match raw.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }

    tokio::time::timeout(DEADLINE, async {
        loop {
            match stream.next().await {
                Some(Err(watcher::Error::WatchError(e))) if e.code == 410 => break,
                Some(_) => {}
                None => panic!("watcher ended"),
            }
        }
    })
    .await
    .expect("the watcher meets 410 when it resumes");
    create(
        &api,
        json!({"metadata": {"name": "target", "labels": {"app": "w"}}}),
    )
    .await;
    tokio::time::timeout(DEADLINE, async {
        loop {
            match stream.next().await {
                Some(Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)))
                    if cm.metadata.name.as_deref() == Some("target") =>
                {
                    break;
                }
                Some(_) => {}
                None => panic!("watcher ended"),
            }
        }
    })
    .await
    .expect("the watcher recovers and sees new objects");
    sim.shutdown().await;
}

#[tokio::test]
async fn bookmarks_and_streaming_lists() {
    let config = SimConfig {
        bookmark_interval: Duration::from_millis(50),
        ..SimConfig::default()
    };
    let (sim, client) = sim_with(config, "marks").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "marks");
    let first = create(&api, json!({"metadata": {"name": "first"}})).await;
    let rv = first.metadata.resource_version.unwrap();

    // WatchParams enables bookmarks by default: one arrives with a version at least the last.
    let mut raw = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    let bookmark = tokio::time::timeout(DEADLINE, async {
        loop {
            if let Some(WatchEvent::Bookmark(b)) = raw.try_next().await.unwrap() {
                break b;
            }
        }
    })
    .await
    .expect("a bookmark");
    let marked: u64 = bookmark.metadata.resource_version.parse().unwrap();
    assert!(marked >= rv.parse::<u64>().unwrap());

    // A streaming list (sendInitialEvents) delivers existing objects, then the end marker.
    let mut stream = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut initial = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        loop {
            match stream.try_next().await.unwrap() {
                Some(watcher::Event::InitApply(cm)) => initial.push(cm.metadata.name.unwrap()),
                Some(watcher::Event::InitDone) => break,
                Some(_) => {}
                None => panic!("watcher ended"),
            }
        }
    })
    .await
    .expect("the initial events end");
    assert_eq!(initial, ["first"]);
    sim.shutdown().await;
}

/// Creates a ConfigMap from its JSON body.
async fn create(api: &Api<ConfigMap>, body: serde_json::Value) -> ConfigMap {
    let cm = serde_json::from_value(body).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap()
}

fn ready_rs(rs: &ReplicaSet) -> (i32, i32) {
    let spec = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let ready = rs
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    (spec, ready)
}

#[tokio::test]
async fn deployment_rolls_over_and_a_bad_image_rollout_keeps_the_old_replicaset() {
    use k8s_openapi::api::apps::v1::Deployment;
    let (sim, client) = sim("roll").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "roll");
    let sets: Api<ReplicaSet> = Api::namespaced(client, "roll");
    let body = serde_json::from_value(workload("web", "web", 2, "web:1")).unwrap();
    deploys.create(&PostParams::default(), &body).await.unwrap();
    let first = eventually("first ReplicaSet ready", DEADLINE, || async {
        let items = sets.list(&ListParams::default()).await.unwrap().items;
        items.into_iter().find(|rs| ready_rs(rs) == (2, 2))
    })
    .await;
    let first_name = first.metadata.name.clone().unwrap();
    assert!(first_name.starts_with("web-"));

    let image = |tag: &str| {
        let c = json!([{"name": "app", "image": format!("web:{tag}")}]);
        Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": c}}}}))
    };
    deploys
        .patch("web", &PatchParams::default(), &image("2"))
        .await
        .unwrap();
    let second = eventually("roll-over to a new ReplicaSet", DEADLINE, || async {
        let items = sets.list(&ListParams::default()).await.unwrap().items;
        let old = items
            .iter()
            .find(|rs| rs.metadata.name.as_deref() == Some(first_name.as_str()))?;
        let new = items
            .iter()
            .find(|rs| rs.metadata.name.as_deref() != Some(first_name.as_str()))?;
        (ready_rs(old) == (0, 0) && ready_rs(new) == (2, 2))
            .then(|| new.metadata.name.clone().unwrap())
    })
    .await;
    eventually("Deployment status complete", DEADLINE, || async {
        let st = deploys.get("web").await.unwrap().status?;
        (st.updated_replicas == Some(2)
            && st.available_replicas == Some(2)
            && st.replicas == Some(2))
        .then_some(())
    })
    .await;

    // A bad image never becomes available: the last good ReplicaSet keeps serving.
    deploys
        .patch("web", &PatchParams::default(), &image("bad"))
        .await
        .unwrap();
    let bad = eventually("a third ReplicaSet", DEADLINE, || async {
        let items = sets.list(&ListParams::default()).await.unwrap().items;
        items.into_iter().find(|rs| {
            rs.spec.as_ref().is_some_and(|s| {
                s.template
                    .as_ref()
                    .and_then(|t| t.spec.as_ref())
                    .is_some_and(|p| p.containers[0].image.as_deref() == Some("web:bad"))
            })
        })
    })
    .await;
    eventually(
        "the bad ReplicaSet has its pods, none ready",
        DEADLINE,
        || async {
            let rs = sets
                .get(bad.metadata.name.as_deref().unwrap())
                .await
                .unwrap();
            (rs.status.as_ref().map(|s| s.replicas) == Some(2)).then_some(())
        },
    )
    .await;
    let good = sets.get(&second).await.unwrap();
    assert_eq!(
        ready_rs(&good),
        (2, 2),
        "the previous ReplicaSet is not scaled down"
    );
    // Updated pods exist but are not available; the old ones still are (4 pods in total).
    eventually(
        "Deployment status of the stuck rollout",
        DEADLINE,
        || async {
            let st = deploys.get("web").await.unwrap().status?;
            let counts = (st.updated_replicas, st.available_replicas, st.replicas);
            (counts == (Some(2), Some(2), Some(4))).then_some(())
        },
    )
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn statefulset_pods_have_ordinal_names_and_scale_down_from_the_top() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    let (sim, client) = sim("sts").await;
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "sts");
    let pods: Api<Pod> = Api::namespaced(client, "sts");
    let mut body = workload("db", "db", 3, "db:1");
    body["spec"]["serviceName"] = json!("db");
    sets.create(
        &PostParams::default(),
        &serde_json::from_value(body).unwrap(),
    )
    .await
    .unwrap();
    let names = || async {
        let mut items: Vec<(String, bool)> = pods
            .list(&ListParams::default().labels("app=db"))
            .await
            .unwrap()
            .items
            .iter()
            .map(|p| (p.metadata.name.clone().unwrap(), ready(p)))
            .collect();
        items.sort();
        items
    };
    eventually("three ready ordinal pods", DEADLINE, || async {
        let want: Vec<(String, bool)> = ["db-0", "db-1", "db-2"]
            .iter()
            .map(|n| (n.to_string(), true))
            .collect();
        (names().await == want).then_some(())
    })
    .await;
    sets.patch_scale(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    eventually("scaled down to db-0", DEADLINE, || async {
        (names().await == [("db-0".to_string(), true)]).then_some(())
    })
    .await;
    eventually("StatefulSet status", DEADLINE, || async {
        let st = sets.get("db").await.unwrap().status?;
        (st.replicas == 1 && st.ready_replicas == Some(1)).then_some(())
    })
    .await;
    sim.shutdown().await;
}
