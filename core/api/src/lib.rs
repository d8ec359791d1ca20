//! ferry-api: the request and response types of Ferry's REST API (`/v1/...`), shared by the
//! server (`svc-api`, which serializes them and publishes their OpenAPI schemas) and its
//! clients (the `ferry` CLI, which deserializes them), so the compiler checks that both agree.
//!
//! It also owns the typed ids and the status enums that appear on the wire; `ferry-store`
//! re-exports them and, with the `sqlx` feature, stores them. Nothing here does I/O.

pub mod actions;
pub mod analysis;
pub mod audit;
pub mod credentials;
pub mod deployments;
mod enums;
pub mod ids;
pub mod notifications;
pub mod oauth;
pub mod people;
pub mod problem;
pub mod secrets;
pub mod status;
pub mod tenant;
pub mod webhooks;

pub use enums::UnknownValue;
pub use ids::{DeploymentId, TenantId};
