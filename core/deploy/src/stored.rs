//! The plan as it is stored with a deployment and read back by every service: JSON with its
//! schema version next to its fields (`{"v": 2, ...}`), so a reader knows which format it holds.
//!
//! Version 1 is what was stored before plans carried a version (no `v`): the fields of version 2
//! without `trafficManagement[].gatewayApi`. Any other version, an unknown field or a field that
//! does not decode is an error naming what is wrong, never a default: a service that cannot read
//! a plan says so (the scheduler fails the deployment with the reason).

use crate::Plan;
use serde_json::Value;

/// The schema version [`Plan::to_stored`] writes.
pub const PLAN_VERSION: u64 = 2;

/// The key of the schema version, next to the plan's fields.
pub const VERSION_KEY: &str = "v";

/// Why a stored plan does not decode.
#[derive(Debug, thiserror::Error)]
pub enum StoredPlanError {
    /// Not a JSON object.
    #[error("the stored plan is not a JSON object")]
    NotAnObject,
    /// A schema version this code does not know.
    #[error("the stored plan has schema version {0}; this code reads versions 1 to {PLAN_VERSION}")]
    UnknownVersion(String),
    /// The fields do not match the version's schema.
    #[error("the stored plan (schema version {version}) does not decode: {error}")]
    Malformed {
        /// The version it claimed (1: no version field).
        version: u64,
        /// What serde found.
        error: serde_json::Error,
    },
}

impl Plan {
    /// The JSON stored with a deployment, with the current schema version.
    pub fn to_stored(&self) -> Value {
        let mut value = serde_json::to_value(self).expect("a plan serializes to JSON");
        if let Value::Object(fields) = &mut value {
            fields.insert(VERSION_KEY.into(), PLAN_VERSION.into());
        }
        value
    }

    /// Reads a stored plan of any version this code knows.
    pub fn from_stored(value: &Value) -> Result<Plan, StoredPlanError> {
        let Value::Object(fields) = value else {
            return Err(StoredPlanError::NotAnObject);
        };
        let mut fields = fields.clone();
        let version = match fields.remove(VERSION_KEY) {
            None => 1,
            Some(Value::Number(n)) if n.as_u64() == Some(PLAN_VERSION) => PLAN_VERSION,
            Some(other) => {
                return Err(StoredPlanError::UnknownVersion(
                    other.to_string().chars().take(64).collect(),
                ));
            }
        };
        serde_json::from_value(Value::Object(fields))
            .map_err(|error| StoredPlanError::Malformed { version, error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan exactly as svc-api stored it before plans carried a version, captured from that
    /// code (`ferry deploy validate -o json` of `examples/hello-ferry/deploy-analysis.yml`).
    const V1: &str = include_str!("../tests/fixtures/plan-v1-analysis.json");

    #[test]
    fn a_plan_stored_before_versions_reads_as_version_1() {
        let stored: Value = serde_json::from_str(V1).unwrap();
        let plan = Plan::from_stored(&stored).unwrap();
        assert_eq!(plan.application, "hello-ferry");
        assert!(
            !plan.queries.is_empty(),
            "the analysis queries came through"
        );
        // Written again, it carries the current version and reads back the same.
        let again = plan.to_stored();
        assert_eq!(again[VERSION_KEY], PLAN_VERSION);
        assert_eq!(Plan::from_stored(&again).unwrap(), plan);
        // Version 2 differs from 1 only by the version field (and keys 1 did not have).
        let mut without = again.clone();
        without.as_object_mut().unwrap().remove(VERSION_KEY);
        assert_eq!(without, stored);
    }

    #[test]
    fn unknown_versions_fields_and_shapes_are_errors() {
        let mut plan: Value = serde_json::from_str(V1).unwrap();
        plan["v"] = 3.into();
        assert_eq!(
            Plan::from_stored(&plan).unwrap_err().to_string(),
            "the stored plan has schema version 3; this code reads versions 1 to 2"
        );
        plan["v"] = "2".into();
        assert!(matches!(
            Plan::from_stored(&plan),
            Err(StoredPlanError::UnknownVersion(_))
        ));
        plan["v"] = 2.into();
        plan["rolloutEngine"] = "argo".into();
        let err = Plan::from_stored(&plan).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "the stored plan (schema version 2) does not decode: unknown field `rolloutEngine`"
            ),
            "{err}"
        );
        let mut plan: Value = serde_json::from_str(V1).unwrap();
        plan["targets"] = "prod".into();
        let err = Plan::from_stored(&plan).unwrap_err().to_string();
        assert!(
            err.starts_with("the stored plan (schema version 1) does not decode: invalid type"),
            "{err}"
        );
        assert!(matches!(
            Plan::from_stored(&Value::Null),
            Err(StoredPlanError::NotAnObject)
        ));
    }
}
