//! Gateway API traffic management (`trafficManagement[].gatewayApi`): an HTTPRoute whose rules
//! send to the root Service. While a canary runs, each such rule sends to two weighted backends
//! instead, `<root>-stable` and the canary Service, copies of the root Service that each select
//! one version; on promotion or rollback the rules send everything to the stable copy (then
//! selecting the version that stays), and once the other version is gone the root Service alone
//! again, before the copies are removed. So no rule ever sends to a Service selecting nothing,
//! and what the route held before the rollout is what it holds after.
//!
//! The route edit ([`weigh_backends`]) is a pure function; the writes are server-side applies,
//! so repeating one gives the same result.

use crate::cluster::KubeOpError;
use crate::mesh::{self, Split, Versions};
use crate::objects::ObjectRef;
use crate::routing::{self, FoundService};
use ferry_deploy::GatewayApi;
use serde_json::{Map, Value, json};

/// The kind Ferry edits.
pub const KIND: &str = "HTTPRoute";

/// Where a route's rules send their root Service's traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backends {
    /// `weight` percent to the canary Service, the rest to the stable copy.
    Canary(u8),
    /// Everything to the stable copy.
    Stable,
    /// Everything to the root Service, as before the rollout.
    Root,
}

/// The stable copy of the root Service.
pub fn stable_service(g: &GatewayApi) -> String {
    format!("{}-stable", g.root_service_name)
}

/// Whether a `backendRefs` entry names one of `names` as a Service of the route's namespace.
fn names_service(backend: &Value, names: &[&str]) -> bool {
    let service = backend["kind"].as_str().is_none_or(|k| k == "Service")
        && backend["group"].as_str().is_none_or(str::is_empty)
        && backend.get("namespace").is_none_or(Value::is_null);
    service && backend["name"].as_str().is_some_and(|n| names.contains(&n))
}

/// Sets every rule of `route` that sends to the root Service (or to the copies an earlier edit
/// put there) to `backends`. The rule's other backends stay; the new references keep the port
/// (and filters) of the one they replace. An error names what is wrong when no rule sends to
/// the root Service.
pub fn weigh_backends(route: &mut Value, g: &GatewayApi, backends: Backends) -> Result<(), String> {
    let name = route["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let stable = stable_service(g);
    let ours = [
        g.root_service_name.as_str(),
        stable.as_str(),
        g.canary_service_name.as_str(),
    ];
    let rules = route["spec"]["rules"]
        .as_array_mut()
        .ok_or_else(|| format!("HTTPRoute {name} has no rules"))?;
    let mut edited = 0;
    for rule in rules {
        let Some(refs) = rule["backendRefs"].as_array_mut() else {
            continue;
        };
        let Some(at) = refs.iter().position(|b| names_service(b, &ours)) else {
            continue;
        };
        let template = refs[at].clone();
        // Only references at `at` or after go, so `at` is still where the first one stood.
        refs.retain(|b| !names_service(b, &ours));
        let backend = |service: &str, weight: Option<i64>| {
            let mut b: Map<String, Value> = template.as_object().cloned().unwrap_or_default();
            b.insert("name".into(), json!(service));
            b.remove("weight");
            if let Some(w) = weight {
                b.insert("weight".into(), json!(w));
            }
            Value::Object(b)
        };
        let new: Vec<Value> = match backends {
            Backends::Canary(w) => vec![
                backend(&stable, Some(100 - i64::from(w))),
                backend(&g.canary_service_name, Some(i64::from(w))),
            ],
            Backends::Stable => vec![backend(&stable, None)],
            Backends::Root => vec![backend(&g.root_service_name, None)],
        };
        refs.splice(at..at, new);
        edited += 1;
    }
    if edited == 0 {
        return Err(format!(
            "HTTPRoute {name} has no rule sending to Service {:?}",
            g.root_service_name
        ));
    }
    Ok(())
}

/// The route of `g`: the target's manifest on the deployment's first write, else the cluster's.
async fn load(
    at: &Versions<'_>,
    g: &GatewayApi,
    from_manifest: bool,
) -> Result<Option<Value>, KubeOpError> {
    mesh::load(
        at.client,
        at.plan,
        at.namespace,
        KIND,
        &g.http_route_name,
        from_manifest,
    )
    .await
}

/// Why `g` cannot be routed before anything is deployed, if it cannot: its route or root
/// Service missing, or no rule of the route sending to the root Service.
pub async fn check(
    client: &kube::Client,
    plan: &ferry_deploy::TargetPlan,
    namespace: &str,
    g: &GatewayApi,
) -> Result<Option<String>, KubeOpError> {
    let where_ = format!(
        "neither among the target's manifests nor in namespace {namespace:?} of the cluster"
    );
    let Some(mut route) =
        mesh::load(client, plan, namespace, KIND, &g.http_route_name, true).await?
    else {
        return Ok(Some(format!(
            "HTTPRoute {:?} is {where_}",
            g.http_route_name
        )));
    };
    let root = &g.root_service_name;
    if routing::find_service(client, plan, namespace, root)
        .await?
        .is_none()
    {
        return Ok(Some(format!("rootServiceName {root:?} is {where_}")));
    }
    Ok(weigh_backends(&mut route, g, Backends::Root).err())
}

/// Sets `g` to `split` (on a first deployment, the route as the manifest has it): the copies
/// first, each selecting its version, then the route. Returns the Services created (`Service/
/// name`) and the route when this deployment created it, or why it cannot be routed.
pub async fn set_route(
    at: &Versions<'_>,
    root: &FoundService,
    g: &GatewayApi,
    split: Split,
    first: bool,
    from_manifest: bool,
) -> Result<Result<(Vec<String>, Option<ObjectRef>), String>, KubeOpError> {
    let old = at.old.unwrap_or(at.new);
    let (backends, stable_version) = match split {
        _ if first => (Backends::Root, None),
        Split::Canary(w) => (Backends::Canary(w), Some(old)),
        Split::Promoted => (Backends::Stable, Some(at.new)),
        Split::RolledBack => (Backends::Stable, Some(old)),
    };
    let mut created = Vec::new();
    if let Some(version) = stable_version {
        let stable = stable_service(g);
        if routing::ensure_copy(at.client, root, &stable, version, at.labels).await? {
            created.push(format!("Service/{stable}"));
        }
    }
    if let Backends::Canary(_) = backends {
        let canary = &g.canary_service_name;
        if routing::ensure_copy(at.client, root, canary, at.new, at.labels).await? {
            created.push(format!("Service/{canary}"));
        }
    }
    let Some(mut route) = load(at, g, from_manifest).await? else {
        return Ok(Err(format!("HTTPRoute {:?} not found", g.http_route_name)));
    };
    if let Err(reason) = weigh_backends(&mut route, g, backends) {
        return Ok(Err(reason));
    }
    let route = mesh::write(at.client, &route, at.deployment).await?;
    Ok(Ok((created, route)))
}

/// Points the route back at the root Service alone, once only one version runs, so the copies
/// can go. A route that is gone (rolled back with the deployment that created it) is fine.
pub async fn restore_root(
    client: &kube::Client,
    plan: &ferry_deploy::TargetPlan,
    namespace: &str,
    g: &GatewayApi,
    deployment: &str,
) -> Result<(), KubeOpError> {
    let found = mesh::load(client, plan, namespace, KIND, &g.http_route_name, false).await?;
    let Some(mut route) = found else {
        return Ok(());
    };
    if weigh_backends(&mut route, g, Backends::Root).is_ok() {
        mesh::write(client, &route, deployment).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> GatewayApi {
        GatewayApi {
            http_route_name: "web".into(),
            root_service_name: "web".into(),
            canary_service_name: "web-canary".into(),
        }
    }

    fn route() -> Value {
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "web"},
            "spec": {"rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                 "backendRefs": [{"name": "web", "port": 80}]},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/docs"}}],
                 "backendRefs": [{"name": "docs", "port": 8080}]},
                {"backendRefs": [{"name": "legacy", "port": 80, "weight": 10},
                                 {"name": "web", "port": 80, "weight": 90}]},
            ]},
        })
    }

    fn backends(route: &Value, rule: usize) -> Value {
        route["spec"]["rules"][rule]["backendRefs"].clone()
    }

    #[test]
    fn canary_weights_replace_the_root_backend_and_the_root_comes_back_as_it_was() {
        let g = entry();
        let mut r = route();
        weigh_backends(&mut r, &g, Backends::Canary(25)).unwrap();
        assert_eq!(
            backends(&r, 0),
            json!([{"name": "web-stable", "port": 80, "weight": 75},
                   {"name": "web-canary", "port": 80, "weight": 25}])
        );
        // Rules that do not send to the root Service are untouched; others keep their place.
        assert_eq!(backends(&r, 1), backends(&route(), 1));
        assert_eq!(
            backends(&r, 2),
            json!([{"name": "legacy", "port": 80, "weight": 10},
                   {"name": "web-stable", "port": 80, "weight": 75},
                   {"name": "web-canary", "port": 80, "weight": 25}])
        );
        // The next step re-weighs the copies; repeating an edit changes nothing.
        weigh_backends(&mut r, &g, Backends::Canary(50)).unwrap();
        let once = r.clone();
        weigh_backends(&mut r, &g, Backends::Canary(50)).unwrap();
        assert_eq!(r, once);
        assert_eq!(
            backends(&r, 0),
            json!([{"name": "web-stable", "port": 80, "weight": 50},
                   {"name": "web-canary", "port": 80, "weight": 50}])
        );
        weigh_backends(&mut r, &g, Backends::Stable).unwrap();
        assert_eq!(backends(&r, 0), json!([{"name": "web-stable", "port": 80}]));
        weigh_backends(&mut r, &g, Backends::Root).unwrap();
        assert_eq!(backends(&r, 0), backends(&route(), 0));
        assert_eq!(
            backends(&r, 2),
            json!([{"name": "legacy", "port": 80, "weight": 10}, {"name": "web", "port": 80}])
        );
    }

    #[test]
    fn a_route_that_does_not_send_to_the_root_service_is_an_error() {
        let g = GatewayApi {
            root_service_name: "shop".into(),
            ..entry()
        };
        let mut r = route();
        let err = weigh_backends(&mut r, &g, Backends::Canary(10)).unwrap_err();
        assert_eq!(err, "HTTPRoute web has no rule sending to Service \"shop\"");
        assert_eq!(r, route(), "nothing changed");
        // A backend of another kind or namespace with the same name is not the Service.
        let mut other = json!({"metadata": {"name": "web"}, "spec": {"rules": [
            {"backendRefs": [{"name": "web", "kind": "Bucket", "group": "storage.example"},
                             {"name": "web", "namespace": "elsewhere"}]}]}});
        assert!(weigh_backends(&mut other, &entry(), Backends::Canary(10)).is_err());
        let mut none = json!({"metadata": {"name": "web"}, "spec": {}});
        assert_eq!(
            weigh_backends(&mut none, &entry(), Backends::Root).unwrap_err(),
            "HTTPRoute web has no rules"
        );
    }
}
