//! Typed ids for the keys that cross service boundaries, defined with the API's types (they
//! appear on the wire) and stored through their `sqlx` mapping.

pub use ferry_api::ids::{DeploymentId, TenantId};
