//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), which kubectl's typed
//! commands send for built-in kinds (`kubectl create namespace|deployment|configmap|secret|
//! serviceaccount|service`, `kubectl run`, `kubectl expose`): the `k8s\0` magic, a
//! `runtime.Unknown` envelope naming the kind, and the object encoded with the Kubernetes
//! protobuf types, decoded here with those types from the `k8s-pb` crate and turned into the
//! JSON the rest of the simulator stores.
//!
//! The conversion covers the fields those commands set (and the rest of the metadata); a field
//! outside it that carries a non-zero value makes the request fail with 415 naming the type,
//! so nothing is dropped silently. Zero values of fields outside it are what Go's encoder writes
//! for every non-pointer field and are ignored, as the real server's decoding does.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

const MAGIC: &[u8] = b"k8s\0";

fn unsupported(what: &str) -> ApiError {
    ApiError::unsupported_media_type(format!(
        "kube-sim (a Kubernetes API simulator) cannot decode {what} from protobuf; send it as \
         application/json"
    ))
}

fn bad(e: prost::DecodeError) -> ApiError {
    ApiError::bad_request(format!("invalid protobuf body: {e}"))
}

/// Whether an encoded message holds only zero values (recursively): what Go writes for fields
/// left at their zero value.
fn zero_encoding(mut buf: &[u8]) -> bool {
    use prost::encoding::{WireType, decode_key, decode_varint};
    while !buf.is_empty() {
        let Ok((_, wire)) = decode_key(&mut buf) else {
            return false;
        };
        let zero = match wire {
            WireType::Varint => decode_varint(&mut buf).is_ok_and(|v| v == 0),
            WireType::LengthDelimited => match decode_varint(&mut buf) {
                Ok(len) if (len as usize) <= buf.len() => {
                    let (inner, rest) = buf.split_at(len as usize);
                    buf = rest;
                    inner.is_empty() || zero_encoding(inner)
                }
                _ => false,
            },
            WireType::SixtyFourBit if buf.len() >= 8 => {
                let (v, rest) = buf.split_at(8);
                buf = rest;
                v.iter().all(|b| *b == 0)
            }
            WireType::ThirtyTwoBit if buf.len() >= 4 => {
                let (v, rest) = buf.split_at(4);
                buf = rest;
                v.iter().all(|b| *b == 0)
            }
            _ => false,
        };
        if !zero {
            return false;
        }
    }
    true
}

/// Fails when what is left of a message after conversion still carries a value.
fn rest<M: Message>(m: &M, what: &str) -> Result<(), ApiError> {
    if zero_encoding(&m.encode_to_vec()) {
        Ok(())
    } else {
        Err(unsupported(&format!("some fields of this {what}")))
    }
}

/// A JSON object under construction; empty and absent values are left out, as `omitempty` does.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn put(&mut self, k: &str, v: Value) -> &mut Self {
        let empty = match &v {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if !empty {
            self.0.insert(k.to_string(), v);
        }
        self
    }
    fn opt<T: Into<Value>>(&mut self, k: &str, v: Option<T>) -> &mut Self {
        self.put(k, v.map_or(Value::Null, Into::into))
    }
    fn done(&mut self) -> Value {
        Value::Object(std::mem::take(&mut self.0))
    }
}

fn strings(v: BTreeMap<String, String>) -> Value {
    Value::Object(v.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

fn int_or_string(v: Option<IntOrString>) -> Value {
    match v {
        Some(IntOrString {
            r#type: Some(1),
            str_val,
            ..
        }) => str_val.map_or(Value::Null, Value::String),
        Some(IntOrString {
            int_val: Some(i), ..
        }) if i != 0 => json!(i),
        _ => Value::Null,
    }
}

fn quantities(v: BTreeMap<String, k8s_pb::apimachinery::pkg::api::resource::Quantity>) -> Value {
    Value::Object(
        v.into_iter()
            .filter_map(|(k, q)| q.string.map(|s| (k, Value::String(s))))
            .collect(),
    )
}

fn object_meta(m: Option<meta::ObjectMeta>) -> Result<Value, ApiError> {
    let mut m = m.unwrap_or_default();
    let mut o = Obj::default();
    o.opt("name", m.name.take())
        .opt("generateName", m.generate_name.take())
        .opt("namespace", m.namespace.take())
        .opt("uid", m.uid.take())
        .opt("resourceVersion", m.resource_version.take())
        .put("labels", strings(std::mem::take(&mut m.labels)))
        .put("annotations", strings(std::mem::take(&mut m.annotations)))
        .put("finalizers", json!(std::mem::take(&mut m.finalizers)));
    let owners: Vec<Value> = std::mem::take(&mut m.owner_references)
        .into_iter()
        .map(|r| {
            Obj::default()
                .opt("apiVersion", r.api_version)
                .opt("kind", r.kind)
                .opt("name", r.name)
                .opt("uid", r.uid)
                .opt("controller", r.controller)
                .opt("blockOwnerDeletion", r.block_owner_deletion)
                .done()
        })
        .collect();
    o.put("ownerReferences", Value::Array(owners));
    // Set by the server, which ignores what a client sends.
    m.self_link = None;
    m.generation = None;
    m.creation_timestamp = None;
    m.managed_fields.clear();
    rest(&m, "ObjectMeta")?;
    Ok(o.done())
}

fn label_selector(s: Option<meta::LabelSelector>) -> Value {
    let Some(s) = s else { return Value::Null };
    let exprs: Vec<Value> = s
        .match_expressions
        .into_iter()
        .map(|e| {
            Obj::default()
                .opt("key", e.key)
                .opt("operator", e.operator)
                .put("values", json!(e.values))
                .done()
        })
        .collect();
    Obj::default()
        .put("matchLabels", strings(s.match_labels))
        .put("matchExpressions", Value::Array(exprs))
        .done()
}

fn container(mut c: core::Container) -> Result<Value, ApiError> {
    let mut o = Obj::default();
    o.opt("name", c.name.take())
        .opt("image", c.image.take())
        .put("command", json!(std::mem::take(&mut c.command)))
        .put("args", json!(std::mem::take(&mut c.args)))
        .opt("workingDir", c.working_dir.take())
        .opt("imagePullPolicy", c.image_pull_policy.take())
        .opt("terminationMessagePath", c.termination_message_path.take())
        .opt(
            "terminationMessagePolicy",
            c.termination_message_policy.take(),
        )
        .opt("stdin", c.stdin.take().filter(|b| *b))
        .opt("stdinOnce", c.stdin_once.take().filter(|b| *b))
        .opt("tty", c.tty.take().filter(|b| *b));
    let ports: Vec<Value> = std::mem::take(&mut c.ports)
        .into_iter()
        .map(|p| {
            Obj::default()
                .opt("name", p.name)
                .opt("containerPort", p.container_port)
                .opt("hostPort", p.host_port.filter(|p| *p != 0))
                .opt("protocol", p.protocol)
                .opt("hostIP", p.host_ip)
                .done()
        })
        .collect();
    o.put("ports", Value::Array(ports));
    let mut env = Vec::new();
    for e in std::mem::take(&mut c.env) {
        if e.value_from.is_some() {
            return Err(unsupported("env valueFrom"));
        }
        env.push(
            Obj::default()
                .opt("name", e.name)
                .opt("value", e.value)
                .done(),
        );
    }
    o.put("env", Value::Array(env));
    if let Some(mut r) = c.resources.take() {
        o.put(
            "resources",
            Obj::default()
                .put("limits", quantities(std::mem::take(&mut r.limits)))
                .put("requests", quantities(std::mem::take(&mut r.requests)))
                .done(),
        );
        rest(&r, "ResourceRequirements")?;
    }
    rest(&c, "Container")?;
    Ok(o.done())
}

fn pod_spec(s: Option<core::PodSpec>) -> Result<Value, ApiError> {
    let Some(mut s) = s else {
        return Ok(Value::Null);
    };
    let mut o = Obj::default();
    let containers = std::mem::take(&mut s.containers)
        .into_iter()
        .map(container)
        .collect::<Result<Vec<_>, _>>()?;
    let init = std::mem::take(&mut s.init_containers)
        .into_iter()
        .map(container)
        .collect::<Result<Vec<_>, _>>()?;
    let pull: Vec<Value> = std::mem::take(&mut s.image_pull_secrets)
        .into_iter()
        .map(|r| Obj::default().opt("name", r.name).done())
        .collect();
    o.put("containers", Value::Array(containers))
        .put("initContainers", Value::Array(init))
        .opt("restartPolicy", s.restart_policy.take())
        .opt(
            "terminationGracePeriodSeconds",
            s.termination_grace_period_seconds.take(),
        )
        .opt("activeDeadlineSeconds", s.active_deadline_seconds.take())
        .opt("dnsPolicy", s.dns_policy.take())
        .put(
            "nodeSelector",
            strings(std::mem::take(&mut s.node_selector)),
        )
        .opt("serviceAccountName", s.service_account_name.take())
        .opt("serviceAccount", s.service_account.take())
        .opt(
            "automountServiceAccountToken",
            s.automount_service_account_token.take(),
        )
        .opt("nodeName", s.node_name.take())
        .opt("hostname", s.hostname.take())
        .opt("subdomain", s.subdomain.take())
        .opt("schedulerName", s.scheduler_name.take())
        .opt("priorityClassName", s.priority_class_name.take())
        .opt("enableServiceLinks", s.enable_service_links.take())
        .put("imagePullSecrets", Value::Array(pull));
    rest(&s, "PodSpec")?;
    Ok(o.done())
}

fn pod_template(t: Option<core::PodTemplateSpec>) -> Result<Value, ApiError> {
    let Some(t) = t else { return Ok(Value::Null) };
    Ok(json!({"metadata": object_meta(t.metadata)?, "spec": pod_spec(t.spec)?}))
}

fn deployment(d: apps::Deployment) -> Result<Value, ApiError> {
    let mut o = Obj::default();
    o.put("metadata", object_meta(d.metadata)?);
    if let Some(mut s) = d.spec {
        let mut spec = Obj::default();
        spec.opt("replicas", s.replicas.take())
            .put("selector", label_selector(s.selector.take()))
            .put("template", pod_template(s.template.take())?)
            .opt(
                "minReadySeconds",
                s.min_ready_seconds.take().filter(|v| *v != 0),
            )
            .opt("revisionHistoryLimit", s.revision_history_limit.take())
            .opt(
                "progressDeadlineSeconds",
                s.progress_deadline_seconds.take(),
            )
            .opt("paused", s.paused.take().filter(|p| *p));
        if let Some(mut st) = s.strategy.take() {
            let ru = st.rolling_update.take().map(|r| {
                Obj::default()
                    .put("maxUnavailable", int_or_string(r.max_unavailable))
                    .put("maxSurge", int_or_string(r.max_surge))
                    .done()
            });
            spec.put(
                "strategy",
                Obj::default()
                    .opt("type", st.r#type.take())
                    .opt("rollingUpdate", ru)
                    .done(),
            );
        }
        rest(&s, "DeploymentSpec")?;
        o.put("spec", spec.done());
    }
    Ok(o.done())
}

fn service(s: core::Service) -> Result<Value, ApiError> {
    let mut o = Obj::default();
    o.put("metadata", object_meta(s.metadata)?);
    if let Some(mut sp) = s.spec {
        let ports: Vec<Value> = std::mem::take(&mut sp.ports)
            .into_iter()
            .map(|p| {
                Obj::default()
                    .opt("name", p.name)
                    .opt("protocol", p.protocol)
                    .opt("appProtocol", p.app_protocol)
                    .opt("port", p.port)
                    .put("targetPort", int_or_string(p.target_port))
                    .opt("nodePort", p.node_port.filter(|p| *p != 0))
                    .done()
            })
            .collect();
        let mut spec = Obj::default();
        spec.put("ports", Value::Array(ports))
            .put("selector", strings(std::mem::take(&mut sp.selector)))
            .opt("clusterIP", sp.cluster_ip.take())
            .put("clusterIPs", json!(std::mem::take(&mut sp.cluster_ips)))
            .opt("type", sp.r#type.take())
            .put("externalIPs", json!(std::mem::take(&mut sp.external_ips)))
            .opt("externalName", sp.external_name.take())
            .opt("sessionAffinity", sp.session_affinity.take());
        rest(&sp, "ServiceSpec")?;
        o.put("spec", spec.done());
    }
    Ok(o.done())
}

fn bytes_map(v: BTreeMap<String, Vec<u8>>) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    Value::Object(
        v.into_iter()
            .map(|(k, v)| (k, Value::String(b64.encode(v))))
            .collect(),
    )
}

/// Decodes a protobuf body for `kind` into the JSON object the simulator stores.
pub(crate) fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let raw = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| ApiError::bad_request("a protobuf body must start with the k8s\\0 magic"))?;
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(raw).map_err(bad)?;
    if unknown
        .content_encoding
        .as_deref()
        .is_some_and(|e| !e.is_empty())
    {
        return Err(unsupported("a body with a content encoding"));
    }
    let tm = unknown.type_meta.unwrap_or_default();
    let api_version = tm.api_version.unwrap_or_default();
    let kind = tm.kind.unwrap_or_default();
    let inner = unknown.raw.unwrap_or_default();
    let inner = inner.as_slice();
    let mut obj = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => {
            let n = core::Namespace::decode(inner).map_err(bad)?;
            let finalizers = n.spec.map(|s| s.finalizers).unwrap_or_default();
            Obj::default()
                .put("metadata", object_meta(n.metadata)?)
                .put(
                    "spec",
                    Obj::default().put("finalizers", json!(finalizers)).done(),
                )
                .done()
        }
        ("v1", "ConfigMap") => {
            let c = core::ConfigMap::decode(inner).map_err(bad)?;
            Obj::default()
                .put("metadata", object_meta(c.metadata)?)
                .put("data", strings(c.data))
                .put("binaryData", bytes_map(c.binary_data))
                .opt("immutable", c.immutable)
                .done()
        }
        ("v1", "Secret") => {
            let s = core::Secret::decode(inner).map_err(bad)?;
            Obj::default()
                .put("metadata", object_meta(s.metadata)?)
                .put("data", bytes_map(s.data))
                .put("stringData", strings(s.string_data))
                .opt("type", s.r#type)
                .opt("immutable", s.immutable)
                .done()
        }
        ("v1", "ServiceAccount") => {
            let mut s = core::ServiceAccount::decode(inner).map_err(bad)?;
            let pull: Vec<Value> = std::mem::take(&mut s.image_pull_secrets)
                .into_iter()
                .map(|r| Obj::default().opt("name", r.name).done())
                .collect();
            let v = Obj::default()
                .put("metadata", object_meta(s.metadata.take())?)
                .put("imagePullSecrets", Value::Array(pull))
                .opt(
                    "automountServiceAccountToken",
                    s.automount_service_account_token.take(),
                )
                .done();
            rest(&s, "ServiceAccount")?;
            v
        }
        ("v1", "Pod") => {
            let p = core::Pod::decode(inner).map_err(bad)?;
            Obj::default()
                .put("metadata", object_meta(p.metadata)?)
                .put("spec", pod_spec(p.spec)?)
                .done()
        }
        ("v1", "Service") => service(core::Service::decode(inner).map_err(bad)?)?,
        ("apps/v1", "Deployment") => deployment(apps::Deployment::decode(inner).map_err(bad)?)?,
        _ => return Err(unsupported(&format!("a {kind} ({api_version})"))),
    };
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let u = k8s_pb::apimachinery::pkg::runtime::Unknown {
            type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        [MAGIC, &u.encode_to_vec()].concat()
    }

    #[test]
    fn kubectls_create_namespace_body_decodes() {
        // The body `kubectl create namespace foo` (v1.33) sends, byte for byte.
        let body = b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x1b\x0a\x13\x0a\x03foo\x12\x00\
\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x00\x1a\x02\x0a\x00\x1a\x00\x22\x00";
        assert_eq!(
            decode(body).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "foo"}})
        );
    }

    #[test]
    fn deployments_decode_and_unconverted_fields_are_refused() {
        let d = apps::Deployment {
            metadata: Some(meta::ObjectMeta {
                name: Some("web".into()),
                generation: Some(0),
                ..Default::default()
            }),
            spec: Some(apps::DeploymentSpec {
                replicas: Some(0),
                selector: Some(meta::LabelSelector {
                    match_labels: [("app".to_string(), "web".to_string())].into(),
                    ..Default::default()
                }),
                template: Some(core::PodTemplateSpec {
                    metadata: Some(meta::ObjectMeta {
                        labels: [("app".to_string(), "web".to_string())].into(),
                        ..Default::default()
                    }),
                    spec: Some(core::PodSpec {
                        containers: vec![core::Container {
                            name: Some("nginx".into()),
                            image: Some("nginx".into()),
                            ports: vec![core::ContainerPort {
                                container_port: Some(80),
                                ..Default::default()
                            }],
                            resources: Some(core::ResourceRequirements::default()),
                            stdin: Some(false),
                            ..Default::default()
                        }],
                        host_network: Some(false),
                        ..Default::default()
                    }),
                }),
                strategy: Some(apps::DeploymentStrategy::default()),
                ..Default::default()
            }),
            status: None,
        };
        let got = decode(&envelope("apps/v1", "Deployment", d.encode_to_vec())).unwrap();
        assert_eq!(
            got["spec"]["replicas"], 0,
            "an explicit zero of a pointer field is kept"
        );
        assert_eq!(
            got["spec"]["template"]["spec"]["containers"][0],
            json!({"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]})
        );
        assert!(got["spec"]["template"]["spec"].get("hostNetwork").is_none());
        let mut with_probe = d;
        with_probe
            .spec
            .as_mut()
            .unwrap()
            .template
            .as_mut()
            .unwrap()
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .liveness_probe = Some(core::Probe {
            period_seconds: Some(5),
            ..Default::default()
        });
        let err = decode(&envelope(
            "apps/v1",
            "Deployment",
            with_probe.encode_to_vec(),
        ))
        .unwrap_err();
        assert_eq!(err.code, 415, "{}", err.message);
        assert_eq!(
            decode(&envelope("batch/v1", "Job", vec![]))
                .unwrap_err()
                .code,
            415
        );
    }
}
