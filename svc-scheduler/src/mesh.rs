//! Service-mesh objects a canary's weights are set on: an Istio VirtualService route weighted
//! between the stable and canary subsets of a DestinationRule pinned to each version's
//! pod-template hash, or an SMI TrafficSplit weighted between a stable and a canary Service that
//! each select one version (the Gateway API's HTTPRoute is [`crate::gateway`]'s). The object edits are pure functions; the writes are server-side
//! applies, so repeating one gives the same result.

use crate::cluster::{self, KubeOpError};
use crate::objects::ObjectRef;
use crate::routing::{self, FoundService, VersionLabel};
use ferry_deploy::{Istio, Smi, TargetPlan};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject};
use kube::core::GroupVersionKind;
use serde_json::{Map, Value, json};

/// The subset names Istio entries use when the deploy file names none.
pub(crate) const DEFAULT_STABLE_SUBSET: &str = "stable";
/// See [`DEFAULT_STABLE_SUBSET`].
pub(crate) const DEFAULT_CANARY_SUBSET: &str = "canary";

/// What traffic should look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// `weight` percent to the new version, the rest to the old one.
    Canary(u8),
    /// Everything to the new version as the stable one; canary parts removed.
    Promoted,
    /// Everything back to the old version; canary parts removed.
    RolledBack,
}

fn resource(kind: &str) -> ApiResource {
    let (group, version, plural) = match kind {
        "VirtualService" => ("networking.istio.io", "v1beta1", "virtualservices"),
        "DestinationRule" => ("networking.istio.io", "v1beta1", "destinationrules"),
        "HTTPRoute" => ("gateway.networking.k8s.io", "v1", "httproutes"),
        _ => ("split.smi-spec.io", "v1alpha2", "trafficsplits"),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn api(client: &kube::Client, namespace: &str, kind: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &resource(kind))
}

/// The object `kind/name`: the target's manifest when `from_manifest` and it has one (the first
/// write of a deployment), else what the cluster holds.
pub(crate) async fn load(
    client: &kube::Client,
    plan: &TargetPlan,
    namespace: &str,
    kind: &str,
    name: &str,
    from_manifest: bool,
) -> Result<Option<Value>, KubeOpError> {
    if from_manifest && let Some(m) = routing::manifest(plan, kind, name) {
        let ns = m["metadata"]["namespace"].as_str().unwrap_or(namespace);
        return Ok(Some(crate::render::with_namespace(m, Some(ns))));
    }
    let found = api(client, namespace, kind).get_opt(name).await?;
    Ok(found.map(|o| serde_json::to_value(o).unwrap_or_default()))
}

/// Applies an object read back from the cluster or a manifest (server-owned fields dropped) for
/// `deployment`; returns it when this deployment created it.
pub(crate) async fn write(
    client: &kube::Client,
    object: &Value,
    deployment: &str,
) -> Result<Option<ObjectRef>, KubeOpError> {
    let mut object = crate::render::with_namespace(object, None);
    if let Some(o) = object.as_object_mut() {
        o.remove("status");
    }
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("generation");
    }
    crate::objects::apply(client, &object, deployment).await
}

/// Deletes `kind/name` (no-op when it is gone).
pub(crate) async fn delete(
    client: &kube::Client,
    namespace: &str,
    kind: &str,
    name: &str,
) -> Result<(), KubeOpError> {
    match api(client, namespace, kind)
        .delete(name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn subset_names(istio: &Istio) -> (String, String) {
    let dr = istio.destination_rule.as_ref();
    (
        dr.and_then(|d| d.active_subset_name.clone())
            .unwrap_or_else(|| DEFAULT_STABLE_SUBSET.into()),
        dr.and_then(|d| d.canary_subset_name.clone())
            .unwrap_or_else(|| DEFAULT_CANARY_SUBSET.into()),
    )
}

/// The DestinationRule with the stable subset pinned to `stable` and the canary subset pinned
/// to `canary` (added if missing) or removed. The subsets keep the stable subset's own labels.
pub(crate) fn pin_subsets(
    rule: &mut Value,
    stable_name: &str,
    canary_name: &str,
    stable: &VersionLabel,
    canary: Option<&VersionLabel>,
) -> Result<(), String> {
    let name = rule["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let subsets = rule["spec"]["subsets"]
        .as_array_mut()
        .ok_or_else(|| format!("DestinationRule {name} has no subsets"))?;
    let stable_at = subsets
        .iter()
        .position(|s| s["name"] == stable_name)
        .ok_or_else(|| format!("DestinationRule {name} has no subset {stable_name:?}"))?;
    let base = routing::base_selector(
        &subsets[stable_at]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    let pinned = |label: &VersionLabel| {
        let mut labels = base.clone();
        labels.insert(label.key.clone(), json!(label.value));
        Value::Object(labels)
    };
    subsets[stable_at]["labels"] = pinned(stable);
    let canary_at = subsets.iter().position(|s| s["name"] == canary_name);
    match (canary, canary_at) {
        (Some(label), Some(i)) => subsets[i]["labels"] = pinned(label),
        (Some(label), None) => subsets.push(json!({"name": canary_name, "labels": pinned(label)})),
        (None, Some(i)) => {
            subsets.remove(i);
        }
        (None, None) => {}
    }
    Ok(())
}

/// The VirtualService's route (`route_name`, or its only HTTP route) weighted `canary` percent
/// to the canary subset, or entirely to the stable subset with the canary destination removed.
pub(crate) fn weigh_route(
    service: &mut Value,
    route_name: Option<&str>,
    stable_name: &str,
    canary_name: &str,
    canary: Option<u8>,
) -> Result<(), String> {
    let name = service["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let routes = service["spec"]["http"]
        .as_array_mut()
        .ok_or_else(|| format!("VirtualService {name} has no http routes"))?;
    let route = match route_name {
        Some(r) => routes
            .iter_mut()
            .find(|h| h["name"] == r)
            .ok_or_else(|| format!("VirtualService {name} has no http route named {r:?}"))?,
        None if routes.len() == 1 => &mut routes[0],
        None => {
            return Err(format!(
                "VirtualService {name} has {} http routes: name one with httpRouteName",
                routes.len()
            ));
        }
    };
    let destinations = route["route"]
        .as_array_mut()
        .ok_or_else(|| format!("VirtualService {name}: the route has no destinations"))?;
    let stable_at = destinations
        .iter()
        .position(|d| d["destination"]["subset"] == stable_name)
        .ok_or_else(|| {
            format!(
                "VirtualService {name}: no destination of the route uses subset {stable_name:?}"
            )
        })?;
    let mut canary_destination = destinations[stable_at]["destination"].clone();
    canary_destination["subset"] = json!(canary_name);
    destinations.retain(|d| d["destination"]["subset"] != canary_name);
    let stable_at = destinations
        .iter()
        .position(|d| d["destination"]["subset"] == stable_name)
        .unwrap_or_default();
    match canary {
        Some(weight) => {
            destinations[stable_at]["weight"] = json!(100 - i64::from(weight));
            destinations.push(json!({"destination": canary_destination, "weight": weight}));
        }
        None => destinations[stable_at]["weight"] = json!(100),
    }
    Ok(())
}

/// Where mesh objects are written and which versions they route between.
pub struct Versions<'a> {
    /// The target's cluster.
    pub client: &'a kube::Client,
    /// The target's plan (manifests of the routed objects).
    pub plan: &'a TargetPlan,
    /// The namespace of the routed objects.
    pub namespace: &'a str,
    /// The running version (`None` on a first deployment).
    pub old: Option<&'a VersionLabel>,
    /// The new version.
    pub new: &'a VersionLabel,
    /// Labels for objects Ferry creates.
    pub labels: &'a Map<String, Value>,
    /// The deployment writing.
    pub deployment: &'a str,
}

/// One write of an Istio entry.
enum Edit<'a> {
    /// The DestinationRule's stable subset pinned to one version, the canary subset to another
    /// (or removed).
    Rule(&'a VersionLabel, Option<&'a VersionLabel>),
    /// The VirtualService's route weighted (or all stable).
    Route(Option<u8>),
}

/// Sets an Istio entry to `split`, in an order that never routes to a subset selecting nothing;
/// returns the objects this deployment created, or why the objects cannot be routed.
pub(crate) async fn set_istio(
    at: &Versions<'_>,
    istio: &Istio,
    split: Split,
    from_manifest: bool,
) -> Result<Result<Vec<ObjectRef>, String>, KubeOpError> {
    let (client, plan, namespace, old, new) = (at.client, at.plan, at.namespace, at.old, at.new);
    let Some(rule) = &istio.destination_rule else {
        return Ok(Err(format!(
            "VirtualService {} needs a destinationRule so versions can be told apart",
            istio.virtual_service
        )));
    };
    let (stable_name, canary_name) = subset_names(istio);
    let route = istio.http_route_name.as_deref();
    let Some(mut rule_object) = load(
        client,
        plan,
        namespace,
        "DestinationRule",
        &rule.name,
        from_manifest,
    )
    .await?
    else {
        return Ok(Err(format!("DestinationRule {} not found", rule.name)));
    };
    let Some(mut service) = load(
        client,
        plan,
        namespace,
        "VirtualService",
        &istio.virtual_service,
        from_manifest,
    )
    .await?
    else {
        return Ok(Err(format!(
            "VirtualService {} not found",
            istio.virtual_service
        )));
    };
    let old = old.unwrap_or(new);
    let edits = match split {
        Split::Canary(w) => vec![Edit::Rule(old, Some(new)), Edit::Route(Some(w))],
        Split::Promoted => vec![
            Edit::Rule(new, Some(new)),
            Edit::Route(None),
            Edit::Rule(new, None),
        ],
        Split::RolledBack => vec![Edit::Route(None), Edit::Rule(old, None)],
    };
    let mut created = Vec::new();
    for edit in edits {
        let (edited, object) = match edit {
            Edit::Rule(stable, canary) => (
                pin_subsets(&mut rule_object, &stable_name, &canary_name, stable, canary),
                &rule_object,
            ),
            Edit::Route(weight) => (
                weigh_route(&mut service, route, &stable_name, &canary_name, weight),
                &service,
            ),
        };
        if let Err(e) = edited {
            return Ok(Err(e));
        }
        if let Some(c) = write(client, object, at.deployment).await?
            && !created.contains(&c)
        {
            created.push(c);
        }
    }
    Ok(Ok(created))
}

/// The TrafficSplit of an SMI entry with `canary` percent to the canary backend.
pub(crate) fn traffic_split(
    smi: &Smi,
    stable_service: &str,
    namespace: &str,
    labels: &Map<String, Value>,
    canary: u8,
) -> Value {
    json!({
        "apiVersion": "split.smi-spec.io/v1alpha2",
        "kind": "TrafficSplit",
        "metadata": {"name": smi.traffic_split_name, "namespace": namespace, "labels": labels},
        "spec": {
            "service": smi.root_service_name,
            "backends": [
                {"service": stable_service, "weight": 100 - i64::from(canary)},
                {"service": smi.canary_service_name, "weight": canary},
            ],
        },
    })
}

/// The stable backend Service of an SMI entry.
pub(crate) fn stable_service(smi: &Smi) -> String {
    format!("{}-stable", smi.root_service_name)
}

/// Sets an SMI entry to `split`: the stable and canary Services each select one version and
/// the TrafficSplit weights them. Returns the objects it created (`Kind/name`).
pub(crate) async fn set_smi(
    at: &Versions<'_>,
    root: &FoundService,
    smi: &Smi,
    split: Split,
) -> Result<Vec<String>, KubeOpError> {
    let (client, namespace, old, new, labels) =
        (at.client, at.namespace, at.old, at.new, at.labels);
    let old = old.unwrap_or(new);
    let (stable_label, canary) = match split {
        Split::Canary(w) => (old, w),
        Split::Promoted => (new, 0),
        Split::RolledBack => (old, 0),
    };
    let stable = stable_service(smi);
    let mut created = Vec::new();
    if routing::ensure_copy(client, root, &stable, stable_label, labels).await? {
        created.push(format!("Service/{stable}"));
    }
    if routing::ensure_copy(client, root, &smi.canary_service_name, new, labels).await? {
        created.push(format!("Service/{}", smi.canary_service_name));
    }
    let existed = api(client, namespace, "TrafficSplit")
        .get_opt(&smi.traffic_split_name)
        .await?
        .is_some();
    cluster::apply(
        client,
        &traffic_split(smi, &stable, namespace, labels, canary),
    )
    .await?;
    if !existed {
        created.push(format!("TrafficSplit/{}", smi.traffic_split_name));
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::LABEL_HASH;

    fn label(v: &str) -> VersionLabel {
        VersionLabel {
            key: LABEL_HASH.into(),
            value: v.into(),
        }
    }

    fn rule() -> Value {
        json!({"metadata": {"name": "hello"}, "spec": {"host": "hello", "subsets": [
            {"name": "stable", "labels": {"app": "hello"}}]}})
    }

    fn service() -> Value {
        json!({"metadata": {"name": "hello"}, "spec": {"http": [{"name": "primary", "route": [
            {"destination": {"host": "hello", "subset": "stable"}, "weight": 100}]}]}})
    }

    #[test]
    fn subsets_are_pinned_added_and_removed() {
        let mut r = rule();
        pin_subsets(
            &mut r,
            "stable",
            "canary",
            &label("old"),
            Some(&label("new")),
        )
        .unwrap();
        let subsets = &r["spec"]["subsets"];
        assert_eq!(
            subsets[0]["labels"],
            json!({"app": "hello", LABEL_HASH: "old"})
        );
        assert_eq!(subsets[1]["name"], "canary");
        assert_eq!(
            subsets[1]["labels"],
            json!({"app": "hello", LABEL_HASH: "new"})
        );
        pin_subsets(&mut r, "stable", "canary", &label("new"), None).unwrap();
        assert_eq!(r["spec"]["subsets"].as_array().unwrap().len(), 1);
        assert_eq!(r["spec"]["subsets"][0]["labels"][LABEL_HASH], "new");
        let err = pin_subsets(&mut rule(), "live", "canary", &label("x"), None).unwrap_err();
        assert_eq!(err, "DestinationRule hello has no subset \"live\"");
    }

    #[test]
    fn routes_are_weighted_then_restored() {
        let mut s = service();
        weigh_route(&mut s, Some("primary"), "stable", "canary", Some(25)).unwrap();
        let route = &s["spec"]["http"][0]["route"];
        assert_eq!(route[0]["weight"], 75);
        assert_eq!(route[1]["weight"], 25);
        assert_eq!(
            route[1]["destination"],
            json!({"host": "hello", "subset": "canary"})
        );
        weigh_route(&mut s, None, "stable", "canary", Some(50)).unwrap();
        assert_eq!(s["spec"]["http"][0]["route"].as_array().unwrap().len(), 2);
        assert_eq!(s["spec"]["http"][0]["route"][1]["weight"], 50);
        weigh_route(&mut s, None, "stable", "canary", None).unwrap();
        assert_eq!(s, service());
        let err = weigh_route(&mut service(), Some("other"), "stable", "canary", None);
        assert_eq!(
            err.unwrap_err(),
            "VirtualService hello has no http route named \"other\""
        );
    }

    #[test]
    fn traffic_splits_weigh_two_backends() {
        let smi = Smi {
            root_service_name: "hello".into(),
            canary_service_name: "hello-canary".into(),
            traffic_split_name: "hello".into(),
        };
        let split = traffic_split(&smi, &stable_service(&smi), "web", &Map::new(), 10);
        assert_eq!(split["spec"]["service"], "hello");
        assert_eq!(
            split["spec"]["backends"],
            json!([{"service": "hello-stable", "weight": 90},
                   {"service": "hello-canary", "weight": 10}])
        );
    }
}
