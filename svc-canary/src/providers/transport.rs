//! How a provider request travels: directly through the network guard (self-hosted networks
//! allowed, metadata and link-local never), or through the named agent's HTTP relay. Shared with
//! svc-webhook in `ferry-outbound` ([`ferry_outbound::transport`]).

pub use ferry_outbound::transport::*;
