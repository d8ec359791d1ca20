//! ferry-outbound: what every service that calls out on a tenant's behalf shares.
//!
//! - [`transport`]: one HTTP request, sent directly from the control plane through the network
//!   guard (`ferry-netguard`: checked addresses only, redirects re-checked) or through the named
//!   agent's HTTP relay into its private network (the hub tunnel), its answer read with a cap.
//!   svc-canary sends metric queries with it, svc-webhook webhooks and notifications.
//! - [`secrets`]: tenant secrets (sealed by svc-api with the master key) opened only when a
//!   request is about to be sent, never logged.

pub mod secrets;
pub mod transport;
