//! The journal: requests as they arrive and Pods as they turn Ready, in order, with each Pod's
//! ready delay inside the configured delay plus jitter.

use std::time::Duration;

use ferry_kube_sim::SimConfig;
use ferry_kube_sim::journal::Event;
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{Api, ListParams, PostParams};

use crate::util::{DEADLINE, eventually, sim_with, workload};

#[tokio::test]
async fn the_journal_orders_writes_and_pods_turning_ready_within_the_jitter() {
    let delay = Duration::from_millis(100);
    let jitter = Duration::from_millis(400);
    let (sim, client) = sim_with(
        SimConfig {
            ready_delay: delay,
            ready_jitter: jitter,
            journal: true,
            ..SimConfig::default()
        },
        "jrnl",
    )
    .await;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "jrnl");
    let rs: ReplicaSet = serde_json::from_value(workload("web", "web", 6, "web:1")).unwrap();
    sets.create(&PostParams::default(), &rs).await.unwrap();
    eventually("six ready pods", DEADLINE, || async {
        let rs = sets.get("web").await.ok()?;
        (rs.status?.ready_replicas == Some(6)).then_some(())
    })
    .await;
    sets.list(&ListParams::default()).await.unwrap();

    let (entries, dropped) = sim.journal();
    assert_eq!(dropped, 0);
    let created = entries
        .iter()
        .position(|e| {
            matches!(&e.event, Event::Request { method, path, watch: false }
                if method == "POST" && path.ends_with("/namespaces/jrnl/replicasets"))
        })
        .unwrap_or_else(|| panic!("the create is in the journal: {entries:?}"));
    let ready: Vec<_> = entries
        .iter()
        .filter(|e| {
            matches!(&e.event, Event::PodReady { namespace, name }
            if namespace == "jrnl" && name.starts_with("web-"))
        })
        .collect();
    assert_eq!(ready.len(), 6, "each pod turns Ready once: {ready:?}");
    let at = entries[created].at;
    for pod in &ready {
        let after = pod.at.duration_since(at);
        assert!(
            after >= delay && after <= delay + jitter + Duration::from_secs(2),
            "a pod turned Ready {after:?} after its ReplicaSet was created"
        );
    }
    let spread =
        ready.iter().map(|p| p.at).max().unwrap() - ready.iter().map(|p| p.at).min().unwrap();
    assert!(spread > Duration::ZERO, "the jitter spreads pods apart");
    let list = entries.last().expect("the list came last");
    assert!(
        matches!(&list.event, Event::Request { method, watch: false, .. } if method == "GET"),
        "{list:?}"
    );
    assert!(sim.journal().0.is_empty(), "reading the journal empties it");
}
