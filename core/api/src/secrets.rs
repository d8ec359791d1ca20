//! Write-only secrets.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `PUT /v1/secrets/{name}`.
#[derive(Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSecret {
    /// The secret's value; write-only.
    pub value: String,
}

/// Never prints the value.
impl std::fmt::Debug for SetSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetSecret(***)")
    }
}

/// A secret's name and age, what listing shows (never its value).
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct SecretInfo {
    /// The name deploy files reference (`{{secrets.NAME}}`).
    pub name: String,
    /// When it was first set.
    pub created_at: DateTime<Utc>,
    /// When it was last set.
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_value_is_never_debug_printed() {
        let set = SetSecret {
            value: "hunter2".into(),
        };
        assert_eq!(format!("{set:?}"), "SetSecret(***)");
    }
}
