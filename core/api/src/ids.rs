//! Typed ids for the keys that cross service and API boundaries, so a tenant id is never passed
//! where a deployment id belongs. On the wire they are UUID strings.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered (v7) id.
            pub fn new() -> $name {
                $name(Uuid::now_v7())
            }

            /// The raw UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> $name {
                $name::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> $name {
                $name(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<$name, uuid::Error> {
                Uuid::parse_str(s).map($name)
            }
        }
    };
}

uuid_id!(
    /// A tenant: the unit of isolation. Take it from the verified token, never from the request.
    TenantId
);
uuid_id!(
    /// A deployment of one application.
    DeploymentId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_json() {
        let id = DeploymentId::new();
        assert_eq!(id.to_string().parse::<DeploymentId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert!("not-a-uuid".parse::<TenantId>().is_err());
    }
}
