//! The hub's side of the Redis routing registry: claiming an agent's route with a fresh fencing
//! session, refreshing it on heartbeats only while this replica's session still holds it,
//! releasing it on disconnect, and marking the replica alive.

use ferry_tunnel::routing;
use redis::Script;
use redis::aio::ConnectionManager;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a replica's liveness mark lives without a refresh. Short, so a killed replica is
/// known dead within seconds (its agents' records are then swept, see [`crate::sweep`]); the
/// replica refreshes it every third of this.
pub const LIVENESS_TTL: Duration = Duration::from_secs(3);

/// Session counters outlive any lease by far, so a session number is never handed out twice
/// while a route using it can still exist.
const SESSION_COUNTER_TTL_MS: u64 = 30 * 24 * 3600 * 1000;

/// Takes a new session and writes the route in one step: KEYS = route, counter;
/// ARGV = replica, connected_at, ttl ms, counter ttl ms.
const CLAIM: &str = r#"
local session = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'replica', ARGV[1], 'session', session, 'connected_at', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return session
"#;

/// Extends the lease only if the stored session is ours: KEYS = route; ARGV = session, ttl ms.
const REFRESH: &str = r#"
if redis.call('HGET', KEYS[1], 'session') == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// Deletes the route only if the stored session is ours: KEYS = route; ARGV = session.
const RELEASE: &str = r#"
if redis.call('HGET', KEYS[1], 'session') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#;

/// Reads and writes agent routes for one replica.
#[derive(Clone)]
pub struct Routes {
    redis: ConnectionManager,
    prefix: Arc<str>,
    replica: Arc<str>,
    ttl: Duration,
    claim: Arc<Script>,
    refresh: Arc<Script>,
    release: Arc<Script>,
}

impl Routes {
    /// Routes written under `prefix` for `replica`, leased for `ttl`.
    pub fn new(redis: ConnectionManager, prefix: &str, replica: &str, ttl: Duration) -> Routes {
        Routes {
            redis,
            prefix: prefix.into(),
            replica: replica.into(),
            ttl,
            claim: Arc::new(Script::new(CLAIM)),
            refresh: Arc::new(Script::new(REFRESH)),
            release: Arc::new(Script::new(RELEASE)),
        }
    }

    /// Points the agent's route at this replica under a new session number, which fences
    /// every earlier holder out.
    pub async fn claim(&self, tenant: &str, agent: &str) -> redis::RedisResult<u64> {
        let mut conn = self.redis.clone();
        self.claim
            .key(routing::route_key(&self.prefix, tenant, agent))
            .key(routing::session_key(&self.prefix, tenant, agent))
            .arg(&*self.replica)
            .arg(unix_ms())
            .arg(self.ttl.as_millis() as u64)
            .arg(SESSION_COUNTER_TTL_MS)
            .invoke_async(&mut conn)
            .await
    }

    /// Extends the lease; `false` when the route moved on (another session holds it, or it
    /// expired), in which case the caller must drop the stream.
    pub async fn refresh(
        &self,
        tenant: &str,
        agent: &str,
        session: u64,
    ) -> redis::RedisResult<bool> {
        let mut conn = self.redis.clone();
        let held: i64 = self
            .refresh
            .key(routing::route_key(&self.prefix, tenant, agent))
            .arg(session.to_string())
            .arg(self.ttl.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        Ok(held == 1)
    }

    /// Deletes the route if this session still holds it.
    pub async fn release(
        &self,
        tenant: &str,
        agent: &str,
        session: u64,
    ) -> redis::RedisResult<bool> {
        let mut conn = self.redis.clone();
        let released: i64 = self
            .release
            .key(routing::route_key(&self.prefix, tenant, agent))
            .arg(session.to_string())
            .invoke_async(&mut conn)
            .await?;
        Ok(released == 1)
    }

    /// Marks this replica alive for [`LIVENESS_TTL`].
    pub async fn mark_alive(&self) -> redis::RedisResult<()> {
        let mut conn = self.redis.clone();
        redis::cmd("SET")
            .arg(routing::replica_key(&self.prefix, &self.replica))
            .arg(unix_ms())
            .arg("PX")
            .arg(LIVENESS_TTL.as_millis() as u64)
            .query_async(&mut conn)
            .await
    }

    /// Whether `replica`'s liveness mark exists.
    pub async fn is_alive(&self, replica: &str) -> redis::RedisResult<bool> {
        let mut conn = self.redis.clone();
        redis::cmd("EXISTS")
            .arg(routing::replica_key(&self.prefix, replica))
            .query_async(&mut conn)
            .await
    }

    /// This replica's id.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Removes this replica's liveness mark (on shutdown).
    pub async fn mark_gone(&self) -> redis::RedisResult<()> {
        let mut conn = self.redis.clone();
        redis::cmd("DEL")
            .arg(routing::replica_key(&self.prefix, &self.replica))
            .query_async(&mut conn)
            .await
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
