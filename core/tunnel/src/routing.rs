//! Where agents are found: the names the hub replicas and the callers agree on, in RabbitMQ
//! (taken from the bus topology, which names every exchange and queue) and in Redis (named only
//! here). Every name starts with a configurable prefix (empty in production) so tests and
//! several installations can share one broker and one Redis.
//!
//! - exchange `{prefix}ferry.hub` (direct, durable); routing key = replica id;
//! - queue `{prefix}ferry.hub.{replica}` (exclusive, auto-delete) per replica;
//! - hash `{prefix}ferry:agent:{tenant}:{agent}` with fields `replica`, `session`,
//!   `connected_at` (Unix ms), expiring unless heartbeats refresh it;
//! - counter `{prefix}ferry:agent-session:{tenant}:{agent}`: the fencing session numbers;
//! - key `{prefix}ferry:hub:{replica}`: the replica is alive (expires unless refreshed).

use ferry_bus::topology::{Exchange, Topology};
use std::collections::HashMap;

/// The direct exchange requests to hub replicas are published to.
pub fn hub_exchange(prefix: &str) -> String {
    Topology::new(prefix).exchange(Exchange::Hub)
}

/// The queue one replica consumes its requests from.
pub fn replica_queue(prefix: &str, replica: &str) -> String {
    Topology::new(prefix).hub_queue(replica)
}

/// The Redis hash holding an agent's route.
pub fn route_key(prefix: &str, tenant: &str, agent: &str) -> String {
    format!("{prefix}ferry:agent:{tenant}:{agent}")
}

/// The Redis counter handing out an agent's session numbers.
pub fn session_key(prefix: &str, tenant: &str, agent: &str) -> String {
    format!("{prefix}ferry:agent-session:{tenant}:{agent}")
}

/// The Redis key marking a replica alive.
pub fn replica_key(prefix: &str, replica: &str) -> String {
    format!("{prefix}ferry:hub:{replica}")
}

/// Field names of the route hash.
pub mod fields {
    /// The replica holding the agent's stream.
    pub const REPLICA: &str = "replica";
    /// The fencing session of that stream.
    pub const SESSION: &str = "session";
    /// When the stream was registered, Unix milliseconds.
    pub const CONNECTED_AT: &str = "connected_at";
}

/// An agent's current route, as stored in Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The replica holding the stream.
    pub replica: String,
    /// The fencing session of the stream.
    pub session: u64,
    /// When the stream was registered, Unix milliseconds.
    pub connected_at_ms: u64,
}

impl Route {
    /// Reads a route from the fields of its hash (`HGETALL`); `None` when absent or malformed.
    pub fn from_fields(fields: &HashMap<String, String>) -> Option<Route> {
        Some(Route {
            replica: fields.get(fields::REPLICA)?.clone(),
            session: fields.get(fields::SESSION)?.parse().ok()?,
            connected_at_ms: fields
                .get(fields::CONNECTED_AT)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_from_hash_fields() {
        let mut map = HashMap::new();
        assert_eq!(Route::from_fields(&map), None);
        map.insert("replica".to_string(), "r1".to_string());
        map.insert("session".to_string(), "7".to_string());
        map.insert("connected_at".to_string(), "1700".to_string());
        assert_eq!(
            Route::from_fields(&map),
            Some(Route {
                replica: "r1".into(),
                session: 7,
                connected_at_ms: 1700
            })
        );
        map.insert("session".to_string(), "x".to_string());
        assert_eq!(Route::from_fields(&map), None);
        assert_eq!(route_key("p.", "t", "a"), "p.ferry:agent:t:a");
        assert_eq!(replica_queue("p.", "r"), "p.ferry.hub.r");
    }
}
