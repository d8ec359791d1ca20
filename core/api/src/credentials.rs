//! Machine credentials (client id and secret for the token endpoint).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ids::TenantId;

/// `POST /v1/credentials`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredential {
    /// A name, unique in the tenant.
    pub name: String,
    /// Roles bound to the credential.
    pub roles: Vec<String>,
}

/// A new credential, with its secret: the only time it is shown.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedCredential {
    /// The credential's id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// The OAuth2 client id.
    pub client_id: String,
    /// The OAuth2 client secret. Not retrievable later.
    pub client_secret: String,
    /// Roles bound to it.
    pub roles: Vec<String>,
}

/// A credential as listed and revoked: never its secret.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct Credential {
    /// The tenant it belongs to.
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    /// Its id.
    pub id: Uuid,
    /// Its name, unique in the tenant.
    pub name: String,
    /// The OAuth2 client id.
    pub client_id: String,
    /// When it was revoked (`null` while it works).
    pub revoked_at: Option<DateTime<Utc>>,
    /// Role names, sorted.
    pub roles: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}
