//! The engine's durable record of a target's rollout, kept in the target row's `observed` JSON
//! next to its status, phase and step index: which ReplicaSets are new and stable and at what
//! size, what each gate and step waits for, and the readiness deadline.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The phases of a target, stored in the target row's `phase` as a typed column (a CHECK
/// constraint keeps it to these spellings, migration `0010_target_phase.sql`); the type is shared
/// with the API, which shows it.
pub use ferry_store::targets::TargetPhase as Phase;

/// Why a target's stored state does not decode. Never turned into a default: the engine parks
/// the target with this as its reason.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// `observed` is not a JSON object.
    #[error("the stored progress is not a JSON object but {0}")]
    NotAnObject(&'static str),
    /// `observed` names a schema version this code does not know.
    #[error("the stored progress has schema version {0}, this scheduler reads 1 to {CURRENT}")]
    UnknownVersion(String),
    /// The fields do not match the version's schema.
    #[error("the stored progress (schema version {version}) does not decode: {source}")]
    Malformed {
        /// The schema version it claimed (1: no version field).
        version: u64,
        /// What serde found.
        #[source]
        source: serde_json::Error,
    },
}

/// The schema version [`Progress::to_json`] writes.
pub const CURRENT: u64 = 2;

/// The key of the schema version in the stored progress, next to its fields (so readers of
/// single fields, like the API's views, see the same paths in every version).
pub const VERSION_KEY: &str = "v";

/// One user `Deployment` of the target and its managed ReplicaSets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    /// The user's Deployment name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The new version's ReplicaSet.
    pub new_rs: String,
    /// Replicas the new ReplicaSet had before this deployment (0: this deployment created it).
    pub new_initial: i32,
    /// The desired replica count.
    pub replicas: i32,
    /// The running versions being replaced, with their sizes before the rollout.
    pub stable: Vec<Stable>,
    /// The new ReplicaSet's size and ready pods when the engine last sized it (for people
    /// watching; decisions read the cluster, never this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<PodCount>,
}

/// A ReplicaSet's wanted size and its ready pods, as last observed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodCount {
    /// The size the engine asked for.
    pub size: i32,
    /// Its ready pods (at most `size`).
    pub ready: i32,
}

/// A running version being replaced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stable {
    /// ReplicaSet name.
    pub name: String,
    /// Its size before the rollout, restored on rollback.
    pub replicas: i32,
    /// The container images its pods run (what the rollout replaces), as found at deploy time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

/// What one waiting step (pause, approval, analysis, webhook) has started and observed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitState {
    /// The step has been started (timer written, approval or request sent).
    pub started: bool,
    /// The step finished successfully.
    pub done: bool,
    /// A timed pause ends here.
    pub wait_until: Option<DateTime<Utc>>,
    /// The approval row, once created.
    pub approval_id: Option<Uuid>,
    /// When the approval expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// The analysis or webhook request id.
    pub request_id: Option<Uuid>,
    /// The analysis or webhook result, once its completion arrived.
    pub outcome: Option<bool>,
    /// The completion's reason.
    pub outcome_reason: Option<String>,
    /// A person's roll-forward (`true`) or roll-back decision, for manual rollout modes.
    pub decision: Option<bool>,
    /// Who made `decision`.
    pub decided_by: Option<String>,
    /// The analysis could not decide: a person does, whatever the rollout modes say.
    #[serde(default)]
    pub inconclusive: bool,
}

/// The engine's record of a target. Stored with its schema version (`{"v": 2, ...}`); the
/// record written before versions existed (no `v`) is version 1, whose fields are the same.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Progress {
    /// Managed workloads, filled when the target deploys.
    #[serde(default)]
    pub workloads: Vec<Workload>,
    /// No earlier version ran on the target: straight to 100%.
    #[serde(default)]
    pub first: bool,
    /// The current gates (before or after deployment), one per gate.
    #[serde(default)]
    pub gates: Vec<WaitState>,
    /// The current strategy step's wait.
    #[serde(default)]
    pub wait: WaitState,
    /// Pods must be ready by then, else the target rolls back.
    pub deadline: Option<DateTime<Utc>>,
    /// A reconcile tick is scheduled for then (ticks are not written twice).
    pub next_tick: Option<DateTime<Utc>>,
    /// The canary weight reached.
    pub weight: Option<u8>,
    /// Objects this deployment created on the target (they did not exist before), removed
    /// again when the target rolls back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<crate::objects::ObjectRef>,
    /// Objects that existed before this deployment changed them, with their contents then,
    /// restored when the target rolls back (only the first change of each is kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<crate::previous::Previous>,
    /// Where traffic goes while the rollout runs (blue/green Services, Istio or SMI objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<crate::routing::Routing>,
    /// Temporary preview addresses by Service name (`exposeServices`), shown by the API.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub preview: std::collections::BTreeMap<String, crate::expose::Preview>,
}

impl Progress {
    /// Decodes the record stored in `observed`. A new target's row holds `{}` (version 1, no
    /// fields yet: a fresh record). Unknown versions, fields or values are errors.
    pub fn decode(value: &serde_json::Value) -> Result<Progress, StateError> {
        let serde_json::Value::Object(fields) = value else {
            return Err(StateError::NotAnObject(json_kind(value)));
        };
        let mut fields = fields.clone();
        match fields.remove(VERSION_KEY) {
            None => Progress::from_v1(fields),
            Some(serde_json::Value::Number(n)) if n.as_u64() == Some(CURRENT) => {
                serde_json::from_value(serde_json::Value::Object(fields)).map_err(|source| {
                    StateError::Malformed {
                        version: CURRENT,
                        source,
                    }
                })
            }
            Some(other) => Err(StateError::UnknownVersion(
                other.to_string().chars().take(64).collect(),
            )),
        }
    }

    /// Version 1, written before the record carried a version: the same fields as version 2,
    /// every one optional (a fresh target's `{}`).
    fn from_v1(fields: serde_json::Map<String, serde_json::Value>) -> Result<Progress, StateError> {
        serde_json::from_value(serde_json::Value::Object(fields))
            .map_err(|source| StateError::Malformed { version: 1, source })
    }

    /// The JSON stored in `observed`, with the current schema version.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("progress serializes to JSON");
        if let serde_json::Value::Object(fields) = &mut value {
            fields.insert(VERSION_KEY.into(), CURRENT.into());
        }
        value
    }

    /// The wait with this request id, to record a completion in.
    pub fn wait_for_request(&mut self, id: Uuid) -> Option<&mut WaitState> {
        if self.wait.request_id == Some(id) {
            return Some(&mut self.wait);
        }
        self.gates.iter_mut().find(|g| g.request_id == Some(id))
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_survives_json_with_its_version() {
        let mut p = Progress::decode(&serde_json::json!({})).unwrap();
        assert_eq!(p, Progress::default());
        let id = Uuid::now_v7();
        p.gates.push(WaitState {
            request_id: Some(id),
            ..WaitState::default()
        });
        p.wait_for_request(id).unwrap().outcome = Some(true);
        let stored = p.to_json();
        assert_eq!(stored[VERSION_KEY], CURRENT);
        let back = Progress::decode(&stored).unwrap();
        assert_eq!(back, p);
        assert!(back.clone().wait_for_request(Uuid::now_v7()).is_none());
    }

    #[test]
    fn what_people_are_shown_of_a_workload_survives_json_and_may_be_absent() {
        let workload = Workload {
            name: "web".into(),
            namespace: "shop".into(),
            new_rs: "web-new".into(),
            new_initial: 0,
            replicas: 4,
            stable: vec![Stable {
                name: "web-old".into(),
                replicas: 4,
                images: vec!["web:1".into(), "proxy:3".into()],
            }],
            now: Some(PodCount { size: 2, ready: 1 }),
        };
        let p = Progress {
            workloads: vec![workload.clone()],
            ..Progress::default()
        };
        let stored = p.to_json();
        assert_eq!(
            stored["workloads"][0]["now"],
            serde_json::json!({"size": 2, "ready": 1})
        );
        assert_eq!(stored["workloads"][0]["stable"][0]["images"][0], "web:1");
        assert_eq!(Progress::decode(&stored).unwrap(), p);
        // Written before these fields existed: absent, and nothing is invented for them.
        let mut older = stored.clone();
        older["workloads"][0].as_object_mut().unwrap().remove("now");
        older["workloads"][0]["stable"][0]
            .as_object_mut()
            .unwrap()
            .remove("images");
        let decoded = Progress::decode(&older).unwrap();
        assert_eq!(decoded.workloads[0].now, None);
        assert!(decoded.workloads[0].stable[0].images.is_empty());
    }
}
