//! People and roles: the tenant's users, their roles, and roles with their grants and members.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ids::TenantId;

/// Who holds a role: a person (`user`) or a machine credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A person.
    User,
    /// A machine credential.
    Credential,
}

impl PrincipalKind {
    /// The text on the wire and in `role_bindings.principal_kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Credential => "credential",
        }
    }
}

/// A person of the tenant, named by the email its sign-in issuer vouches for.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct User {
    /// The tenant it belongs to.
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    /// Its id.
    pub id: Uuid,
    /// The email address (lower case).
    pub email: String,
    /// The name shown for it.
    pub display_name: String,
    /// When it was invited.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A user with the names of the roles bound to it in its tenant.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct UserWithRoles {
    /// The user.
    #[serde(flatten)]
    #[cfg_attr(feature = "sqlx", sqlx(flatten))]
    pub user: User,
    /// Role names, sorted.
    pub roles: Vec<String>,
}

/// Body of `PUT /v1/users/{email}/roles`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetRoles {
    /// The complete set of roles the user holds afterwards (may be empty when provider groups
    /// give the roles).
    pub roles: Vec<String>,
    /// A display name, set when the user is invited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// A role with its grants.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Role {
    /// The tenant it belongs to.
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    /// Its id.
    pub id: Uuid,
    /// Its name, unique in the tenant.
    pub name: String,
    /// One of Ferry's own roles (its grants cannot change).
    pub built_in: bool,
    /// Permissions, sorted.
    pub grants: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// `POST /v1/roles`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    /// The role's name, unique in the tenant.
    pub name: String,
    /// Permissions the role grants.
    #[serde(default)]
    pub grants: Vec<String>,
}

/// `PUT /v1/roles/{name}/grants`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// The complete new list of permissions.
    pub grants: Vec<String>,
}

/// Body of `POST` and `DELETE /v1/roles/{name}/members`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// `user` or `credential`.
    pub kind: PrincipalKind,
    /// The user's or credential's id.
    pub id: Uuid,
}
