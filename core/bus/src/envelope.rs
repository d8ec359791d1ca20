//! The envelope every Ferry message travels in.
//!
//! On the wire it is one JSON object:
//!
//! ```json
//! {"id": "…", "occurred_at": "2026-…Z", "tenant_id": "…", "correlation_id": null,
//!  "kind": "deployment.started.v1", "payload": {"deployment_id": "…"}}
//! ```
//!
//! `kind` and `payload` come from the message enum (serde adjacently tagged, flattened into the
//! envelope), so the versioned kind is both the JSON tag and what [`Envelope::kind`] returns.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::BusError;
use crate::messages::Message;

/// A message with the facts every consumer needs whatever its kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// The message id: the broker's `message_id` property, the outbox key and the consumers'
    /// deduplication key. A redelivered or republished message keeps it.
    pub id: Uuid,
    /// When the state change that caused the message happened.
    pub occurred_at: DateTime<Utc>,
    /// The tenant the message belongs to.
    pub tenant_id: Uuid,
    /// The id of the request or message that caused this one, to follow a chain across services.
    #[serde(default)]
    pub correlation_id: Option<Uuid>,
    /// The message; serialises as the envelope's `kind` and `payload` fields.
    #[serde(flatten)]
    pub payload: T,
}

impl<T: Message> Envelope<T> {
    /// A new message for `tenant_id` with a fresh time-ordered id, occurring now.
    pub fn new(tenant_id: Uuid, payload: T) -> Envelope<T> {
        Envelope {
            id: Uuid::now_v7(),
            occurred_at: Utc::now(),
            tenant_id,
            correlation_id: None,
            payload,
        }
    }

    /// The same message, marked as caused by `correlation_id`.
    pub fn with_correlation_id(mut self, correlation_id: Uuid) -> Envelope<T> {
        self.correlation_id = Some(correlation_id);
        self
    }

    /// The message's versioned kind, e.g. `deployment.started.v1`.
    pub fn kind(&self) -> &'static str {
        self.payload.kind()
    }

    /// The JSON body.
    pub fn to_json(&self) -> Result<Vec<u8>, BusError> {
        Ok(serde_json::to_vec(self)?)
    }

    /// Decodes a JSON body; an unknown kind or a malformed payload is an error.
    pub fn from_json(body: &[u8]) -> Result<Envelope<T>, BusError> {
        Ok(serde_json::from_slice(body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{DeploymentStarted, SchedulerMessage};

    #[test]
    fn envelope_json_has_kind_and_payload_at_top_level() {
        let deployment_id = Uuid::new_v4();
        let tenant_id = Uuid::new_v4();
        let cause = Uuid::new_v4();
        let envelope = Envelope::new(
            tenant_id,
            SchedulerMessage::DeploymentStarted(DeploymentStarted { deployment_id }),
        )
        .with_correlation_id(cause);
        let value: serde_json::Value =
            serde_json::from_slice(&envelope.to_json().unwrap()).unwrap();
        assert_eq!(value["kind"], "deployment.started.v1");
        assert_eq!(value["payload"]["deployment_id"], deployment_id.to_string());
        assert_eq!(value["tenant_id"], tenant_id.to_string());
        assert_eq!(value["correlation_id"], cause.to_string());
        assert_eq!(value["id"], envelope.id.to_string());

        let back = Envelope::<SchedulerMessage>::from_json(&envelope.to_json().unwrap()).unwrap();
        assert_eq!(back, envelope);
        assert_eq!(back.kind(), "deployment.started.v1");
    }

    #[test]
    fn unknown_kind_and_bad_json_do_not_decode() {
        let unknown = serde_json::json!({
            "id": Uuid::new_v4(), "occurred_at": Utc::now(), "tenant_id": Uuid::new_v4(),
            "kind": "deployment.started.v99", "payload": {"deployment_id": Uuid::new_v4()}
        });
        let body = serde_json::to_vec(&unknown).unwrap();
        assert!(Envelope::<SchedulerMessage>::from_json(&body).is_err());
        assert!(Envelope::<SchedulerMessage>::from_json(b"{not json").is_err());
    }
}
