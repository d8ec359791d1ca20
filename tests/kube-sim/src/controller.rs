//! The simulator's controller: garbage collection of dependents whose owners are gone,
//! Deployments owning ReplicaSets (pod-template-hash, adoption, roll-over), ReplicaSets creating
//! and deleting Pods to match `.spec.replicas` and reporting status, and Pods turning Ready after
//! the configured delay (never, with ImagePullBackOff, when an image tag is `bad`).
//!
//! Simplifications: a Deployment rollout scales the new ReplicaSet to the full replica count at
//! once and scales old ReplicaSets to zero when the new one is fully available (a 100% surge,
//! whatever the strategy says); StatefulSets create Pods `{name}-{ordinal}` all at once (no
//! ordered readiness) and do not roll Pods when the template changes; HPAs are stored but not
//! reconciled; Pods are deleted at once (no graceful termination).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::journal::Event;
use crate::objects::{name_of, now_ts};
use crate::ops;
use crate::selector::LabelSelector;
use crate::state::SimState;

const PODS: &str = "/pods";
const REPLICASETS: &str = "apps/replicasets";
const DEPLOYMENTS: &str = "apps/deployments";
const STATEFULSETS: &str = "apps/statefulsets";
const HASH_LABEL: &str = "pod-template-hash";

/// The shortest time from one controller pass to the next.
const MIN_PASS: Duration = Duration::from_millis(10);

/// Runs the controller until shutdown.
pub(crate) async fn run(state: Arc<SimState>) {
    let mut ctl = Controller {
        state: state.clone(),
        first_seen: HashMap::new(),
        collected: None,
    };
    loop {
        let began = Instant::now();
        let next = ctl.reconcile();
        let wait = next.map_or(Duration::from_secs(1), |t| {
            t.saturating_duration_since(Instant::now())
        });
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = state.store.changed() => {}
            _ = tokio::time::sleep(wait.max(Duration::from_millis(5))) => {}
        }
        // A burst of changes (a client creating objects one by one, this pass's own writes) is
        // handled by one pass rather than one each: passes start at most every MIN_PASS.
        tokio::time::sleep_until((began + MIN_PASS).into()).await;
    }
}

struct Controller {
    state: Arc<SimState>,
    /// When the controller first saw a Pod with its current images (keyed by uid and images),
    /// the start of its ready delay.
    first_seen: HashMap<(String, String), Instant>,
    /// The store's ownership count when garbage was last collected.
    collected: Option<u64>,
}

fn controller_of(obj: &Value) -> Option<&str> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
        .and_then(|r| r["uid"].as_str())
}

fn owner_ref(owner: &Value, kind: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The tag of an image reference (`repo:tag`, `host:5000/repo:tag@sha256:...`).
pub(crate) fn image_tag(image: &str) -> Option<&str> {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, tag)| tag)
}

/// A short stable hash of a pod template (FNV-1a over its JSON), like pod-template-hash.
fn template_hash(template: &Value) -> String {
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in template.to_string().bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| ALPHABET[((hash >> (i * 6)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH_LABEL);
    }
    t
}

impl Controller {
    fn state(&self) -> &SimState {
        &self.state
    }

    /// One pass over everything; returns when the next Pod is due to turn Ready.
    fn reconcile(&mut self) -> Option<Instant> {
        // The scan reads every object; it is due only when ownership changed since the last.
        let ownership = self.state().store.ownership();
        if self.collected != Some(ownership) {
            while ops::collect_garbage(self.state()) > 0 {}
            self.collected = Some(self.state().store.ownership());
        }
        self.deployments();
        self.replicasets();
        self.statefulsets();
        self.pods()
    }

    fn rt(&self, group: &str, plural: &str) -> crate::resources::ResourceType {
        self.state()
            .registry
            .by_plural(group, plural)
            .expect("built-in resource")
            .clone()
    }

    /// Writes `status` through the status path when it differs (no-op writes are skipped).
    fn write_status(&self, group: &str, plural: &str, obj: &Value, status: Value) {
        if obj["status"] == status {
            return;
        }
        let rt = self.rt(group, plural);
        let (ns, name) = name_of(obj);
        let version = rt.versions[0].clone();
        // The object may have been deleted since it was listed; the next pass sees that.
        let _ = ops::update(
            self.state(),
            &rt,
            &version,
            ns,
            name,
            Some("status"),
            None,
            |cur| {
                let mut new = cur.clone();
                new["status"] = status;
                Ok(new)
            },
        );
    }

    fn set_spec_replicas(&self, rs: &Value, replicas: i64) {
        if rs["spec"]["replicas"].as_i64() == Some(replicas) {
            return;
        }
        let rt = self.rt("apps", "replicasets");
        let (ns, name) = name_of(rs);
        let _ = ops::update(self.state(), &rt, "v1", ns, name, None, None, |cur| {
            let mut new = cur.clone();
            new["spec"]["replicas"] = json!(replicas);
            Ok(new)
        });
    }

    /// Makes `owner` the controller of `obj` unless it has one; returns the object as stored
    /// afterwards (`None`: it is gone).
    fn set_owner(&self, res_group: &str, plural: &str, obj: &Value, owner: Value) -> Option<Value> {
        let rt = self.rt(res_group, plural);
        let (ns, name) = name_of(obj);
        let version = rt.versions[0].clone();
        ops::update(self.state(), &rt, &version, ns, name, None, None, |cur| {
            let mut new = cur.clone();
            if controller_of(&new).is_some() {
                return Ok(new);
            }
            match new["metadata"]["ownerReferences"].as_array_mut() {
                Some(refs) => refs.push(owner),
                None => new["metadata"]["ownerReferences"] = json!([owner]),
            }
            Ok(new)
        })
        .ok()
    }

    fn deployments(&mut self) {
        let (deployments, _) = self.state().store.list_shared(DEPLOYMENTS, None);
        if deployments.is_empty() {
            return;
        }
        // Listed once per pass (not per Deployment): a pass costs the objects, not their square.
        let (mut sets, _) = self.state().store.list_shared(REPLICASETS, None);
        for d in deployments {
            let (ns, _) = name_of(&d);
            let uid = d["metadata"]["uid"].as_str().unwrap_or_default();
            let selector = LabelSelector::from_object(&d["spec"]["selector"]);
            for rs in &mut sets {
                if name_of(rs).0 == ns && controller_of(rs).is_none() && selector.matches(rs) {
                    match self.set_owner("apps", "replicasets", rs, owner_ref(&d, "Deployment")) {
                        Some(adopted) => *rs = Arc::new(adopted),
                        None => continue,
                    }
                }
            }
            let owned: Vec<Arc<Value>> = sets
                .iter()
                .filter(|rs| name_of(rs).0 == ns && controller_of(rs) == Some(uid))
                .cloned()
                .collect();
            let template = &d["spec"]["template"];
            let desired = d["spec"]["replicas"].as_i64().unwrap_or(1);
            let wanted = without_hash(template);
            let current = owned
                .iter()
                .find(|rs| without_hash(&rs["spec"]["template"]) == wanted);
            let new_rs = match current {
                Some(rs) => {
                    self.set_spec_replicas(rs, desired);
                    rs.clone()
                }
                None => match self.create_rs(&d, owned.len()) {
                    Some(rs) => {
                        let rs = Arc::new(rs);
                        sets.push(rs.clone());
                        rs
                    }
                    None => continue,
                },
            };
            let new_available = new_rs["status"]["availableReplicas"].as_i64().unwrap_or(0);
            let recreate = d["spec"]["strategy"]["type"] == "Recreate";
            for old in owned
                .iter()
                .filter(|rs| rs["metadata"]["uid"] != new_rs["metadata"]["uid"])
            {
                if recreate || new_available >= desired {
                    self.set_spec_replicas(old, 0);
                }
            }
            let sum = |field: &str| -> i64 {
                owned
                    .iter()
                    .map(|rs| rs["status"][field].as_i64().unwrap_or(0))
                    .sum()
            };
            let available = sum("availableReplicas");
            let updated = new_rs["status"]["replicas"].as_i64().unwrap_or(0);
            let complete = updated == desired && available >= desired && sum("replicas") == desired;
            let cond = |kind: &str, ok: bool, reason: &str| {
                json!({"type": kind, "status": if ok { "True" } else { "False" }, "reason": reason,
                       "lastUpdateTime": now_ts(), "lastTransitionTime": now_ts()})
            };
            let mut status = json!({
                "observedGeneration": d["metadata"]["generation"],
                "replicas": sum("replicas"),
                "updatedReplicas": updated,
                "readyReplicas": sum("readyReplicas"),
                "availableReplicas": available,
                "unavailableReplicas": (desired - available).max(0),
                "conditions": [
                    cond("Available", available >= desired,
                         if available >= desired { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }),
                    cond("Progressing", true, if complete { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" }),
                ],
            });
            // Keep old timestamps when the conditions did not change, so status is stable.
            if let Some(old) = d["status"]["conditions"].as_array() {
                for (i, c) in status["conditions"]
                    .clone()
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    if let Some(prev) = old.iter().find(|p| p["type"] == c["type"])
                        && prev["status"] == c["status"]
                        && prev["reason"] == c["reason"]
                    {
                        status["conditions"][i] = prev.clone();
                    }
                }
            }
            self.write_status("apps", "deployments", &d, status);
        }
    }

    fn create_rs(&self, d: &Value, revision: usize) -> Option<Value> {
        let (ns, name) = name_of(d);
        let hash = template_hash(&without_hash(&d["spec"]["template"]));
        let mut template = without_hash(&d["spec"]["template"]);
        template["metadata"]["labels"][HASH_LABEL] = json!(hash);
        let mut selector = d["spec"]["selector"].clone();
        selector["matchLabels"][HASH_LABEL] = json!(hash);
        let rs = json!({
            "metadata": {
                "name": format!("{name}-{hash}"),
                "labels": template["metadata"]["labels"],
                "annotations": {"deployment.kubernetes.io/revision": (revision + 1).to_string()},
                "ownerReferences": [owner_ref(d, "Deployment")],
            },
            "spec": {"replicas": d["spec"]["replicas"].as_i64().unwrap_or(1), "selector": selector, "template": template},
        });
        let rt = self.rt("apps", "replicasets");
        ops::create(self.state(), &rt, "v1", ns, rs, None).ok()
    }

    fn replicasets(&mut self) {
        let (sets, _) = self.state().store.list_shared(REPLICASETS, None);
        if sets.is_empty() {
            return;
        }
        // Listed once per pass, kept up to date with what this pass adopts, creates and deletes.
        let (mut pods, _) = self.state().store.list_shared(PODS, None);
        for rs in sets {
            let (ns, name) = name_of(&rs);
            let uid = rs["metadata"]["uid"].as_str().unwrap_or_default();
            let selector = LabelSelector::from_object(&rs["spec"]["selector"]);
            if selector.is_empty() {
                continue;
            }
            pods.retain_mut(|pod| {
                if name_of(pod).0 != ns || controller_of(pod).is_some() || !selector.matches(pod) {
                    return true;
                }
                match self.set_owner("", "pods", pod, owner_ref(&rs, "ReplicaSet")) {
                    Some(adopted) => {
                        *pod = Arc::new(adopted);
                        true
                    }
                    None => false,
                }
            });
            let mut owned: Vec<Arc<Value>> = pods
                .iter()
                .filter(|p| name_of(p).0 == ns && controller_of(p) == Some(uid))
                .cloned()
                .collect();
            let desired = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
            let pod_rt = self.rt("", "pods");
            while owned.len() < desired {
                let template = &rs["spec"]["template"];
                let mut pod = json!({
                    "metadata": {
                        "generateName": format!("{name}-"),
                        "labels": template["metadata"]["labels"],
                        "ownerReferences": [owner_ref(&rs, "ReplicaSet")],
                    },
                    "spec": template["spec"],
                });
                if let Some(annotations) = template["metadata"].get("annotations") {
                    pod["metadata"]["annotations"] = annotations.clone();
                }
                match ops::create(self.state(), &pod_rt, "v1", ns, pod, None) {
                    Ok(p) => {
                        let p = Arc::new(p);
                        pods.push(p.clone());
                        owned.push(p);
                    }
                    Err(_) => break,
                }
            }
            if owned.len() > desired {
                // Delete not-ready Pods first, then the newest, as the real controller does.
                owned.sort_by_key(|p| {
                    (
                        is_ready(p),
                        std::cmp::Reverse(
                            p["metadata"]["creationTimestamp"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                        ),
                    )
                });
                for pod in owned.drain(..owned.len() - desired) {
                    let (pns, pname) = name_of(&pod);
                    self.state().store.delete(PODS, pns, pname);
                    let uid = &pod["metadata"]["uid"];
                    pods.retain(|p| p["metadata"]["uid"] != *uid);
                }
            }
            let ready = owned.iter().filter(|p| is_ready(p)).count();
            let labeled = owned
                .iter()
                .filter(|p| {
                    LabelSelector::from_object(
                        &json!({"matchLabels": rs["spec"]["template"]["metadata"]["labels"]}),
                    )
                    .matches(p)
                })
                .count();
            let status = json!({
                "replicas": owned.len(),
                "fullyLabeledReplicas": labeled,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "observedGeneration": rs["metadata"]["generation"],
            });
            self.write_status("apps", "replicasets", &rs, status);
        }
    }

    fn statefulsets(&mut self) {
        let (sets, _) = self.state().store.list_shared(STATEFULSETS, None);
        let pod_rt = self.rt("", "pods");
        for sts in sets {
            let (ns, name) = name_of(&sts);
            let uid = sts["metadata"]["uid"].as_str().unwrap_or_default();
            let desired = sts["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
            let (pods, _) = self.state().store.list_shared(PODS, Some(ns));
            let mut owned: Vec<Arc<Value>> = pods
                .into_iter()
                .filter(|p| controller_of(p) == Some(uid))
                .collect();
            let ordinal = |p: &Value| {
                let pod_name = p["metadata"]["name"].as_str().unwrap_or_default();
                pod_name
                    .strip_prefix(&format!("{name}-"))
                    .and_then(|o| o.parse::<usize>().ok())
            };
            for i in 0..desired {
                if owned.iter().any(|p| ordinal(p) == Some(i)) {
                    continue;
                }
                let template = &sts["spec"]["template"];
                let pod_name = format!("{name}-{i}");
                let mut pod = json!({
                    "metadata": {
                        "name": pod_name,
                        "labels": template["metadata"]["labels"],
                        "ownerReferences": [owner_ref(&sts, "StatefulSet")],
                    },
                    "spec": template["spec"],
                });
                pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
                pod["spec"]["hostname"] = json!(pod_name);
                if let Ok(p) = ops::create(self.state(), &pod_rt, "v1", ns, pod, None) {
                    owned.push(Arc::new(p));
                }
            }
            owned.retain(|p| {
                let keep = ordinal(p).is_some_and(|o| o < desired);
                if !keep {
                    let (pns, pname) = name_of(p);
                    self.state().store.delete(PODS, pns, pname);
                }
                keep
            });
            let ready = owned.iter().filter(|p| is_ready(p)).count();
            let status = json!({
                "observedGeneration": sts["metadata"]["generation"],
                "replicas": owned.len(),
                "readyReplicas": ready,
                "currentReplicas": owned.len(),
                "updatedReplicas": owned.len(),
                "availableReplicas": ready,
            });
            self.write_status("apps", "statefulsets", &sts, status);
        }
    }

    fn pods(&mut self) -> Option<Instant> {
        let (pods, _) = self.state().store.list_shared(PODS, None);
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut seen = HashMap::new();
        for pod in pods {
            let containers: Vec<&Value> = pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .collect();
            let images: Vec<&str> = containers
                .iter()
                .map(|c| c["image"].as_str().unwrap_or_default())
                .collect();
            let key = (
                pod["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                images.join(","),
            );
            let since = *self.first_seen.get(&key).unwrap_or(&now);
            let due = since + self.state().readiness.of(&key.0);
            seen.insert(key, since);
            let bad = images.iter().any(|i| image_tag(i) == Some("bad"));
            let ready = !bad && now >= due;
            if !bad && !ready {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
            // Most Pods are as they were last pass: skip building their status.
            let reported: Vec<&str> = pod["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c["image"].as_str().unwrap_or_default())
                .collect();
            if reported == images && is_ready(&pod) == ready && !images.is_empty() {
                continue;
            }
            let status = pod_status(&pod, &containers, ready);
            if status_signature(&pod["status"]) != status_signature(&status) {
                let turned_ready = ready && !is_ready(&pod);
                self.write_status("", "pods", &pod, status);
                if turned_ready {
                    let (namespace, name) = name_of(&pod);
                    self.state().journal.record(Event::PodReady {
                        namespace: namespace.to_string(),
                        name: name.to_string(),
                    });
                }
            }
        }
        self.first_seen = seen;
        next
    }
}

/// What decides whether a Pod's status must be rewritten (timestamps aside).
fn status_signature(status: &Value) -> Value {
    let states: Vec<Value> = status["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            json!([
                c["name"],
                c["image"],
                c["ready"],
                c["state"]["waiting"]["reason"]
            ])
        })
        .collect();
    json!([status["phase"], states])
}

fn pod_status(pod: &Value, containers: &[&Value], ready: bool) -> Value {
    let ts = now_ts();
    let uid = pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    let pod_ip = format!(
        "10.244.{}.{}",
        uid.first().copied().unwrap_or(0),
        uid.get(1).copied().unwrap_or(1).max(1)
    );
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            let image = c["image"].as_str().unwrap_or_default();
            let state = if ready {
                json!({"running": {"startedAt": ts}})
            } else if image_tag(image) == Some("bad") {
                json!({"waiting": {"reason": "ImagePullBackOff",
                                   "message": format!("Back-off pulling image \"{image}\"")}})
            } else {
                json!({"waiting": {"reason": "ContainerCreating"}})
            };
            json!({"name": c["name"], "image": image, "imageID": "", "ready": ready, "started": ready,
                   "restartCount": 0, "state": state})
        })
        .collect();
    let flag = |b: bool| if b { "True" } else { "False" };
    let mut ready_cond = json!({"type": "Ready", "status": flag(ready), "lastTransitionTime": ts});
    if !ready {
        ready_cond["reason"] = json!("ContainersNotReady");
    }
    json!({
        "phase": if ready { "Running" } else { "Pending" },
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts},
            {"type": "Initialized", "status": "True", "lastTransitionTime": ts},
            {"type": "ContainersReady", "status": flag(ready), "lastTransitionTime": ts},
            ready_cond,
        ],
        "hostIP": "10.0.0.1",
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": pod["metadata"]["creationTimestamp"],
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("nginx:bad"), Some("bad"));
        assert_eq!(image_tag("registry:5000/app:bad"), Some("bad"));
        assert_eq!(image_tag("registry:5000/app"), None);
        assert_eq!(image_tag("app:1.2@sha256:abc"), Some("1.2"));
    }

    #[test]
    fn template_hash_is_stable_and_ignores_the_hash_label() {
        let t = json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}});
        let mut labelled = t.clone();
        labelled["metadata"]["labels"][HASH_LABEL] = json!("x");
        assert_eq!(template_hash(&without_hash(&labelled)), template_hash(&t));
        assert_eq!(template_hash(&t).len(), 10);
    }
}
