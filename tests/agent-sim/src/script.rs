//! What a simulated agent answers: a script mapping (method, path) to a scripted reply.

use bytes::Bytes;
use std::collections::HashMap;
use std::time::Duration;

/// A scripted response body.
#[derive(Debug, Clone)]
pub enum SimBody {
    /// These bytes, sent in chunks of at most [`ferry_proto::MAX_CHUNK_BYTES`].
    Bytes(Bytes),
    /// `len` bytes generated chunk by chunk (byte `i` is `pattern_byte(i)`), so a huge body
    /// never sits in the agent's memory at once.
    Generated {
        /// Total length.
        len: usize,
    },
}

/// Byte `i` of a generated body: a pattern a receiver can check without a copy.
pub fn pattern_byte(i: usize) -> u8 {
    (i % 251) as u8
}

/// One scripted reply.
#[derive(Debug, Clone)]
pub struct SimReply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: SimBody,
    /// Wait this long before answering (simulates a slow API server).
    pub delay: Option<Duration>,
}

impl SimReply {
    /// A JSON reply with status 200.
    pub fn json(body: impl Into<Bytes>) -> SimReply {
        SimReply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: SimBody::Bytes(body.into()),
            delay: None,
        }
    }

    /// A reply with this status and text body.
    pub fn text(status: u16, body: impl Into<Bytes>) -> SimReply {
        SimReply {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: SimBody::Bytes(body.into()),
            delay: None,
        }
    }

    /// A 200 with a generated body of `len` bytes.
    pub fn generated(len: usize) -> SimReply {
        SimReply {
            status: 200,
            headers: vec![("content-type".into(), "application/octet-stream".into())],
            body: SimBody::Generated { len },
            delay: None,
        }
    }

    /// The same reply after `delay`.
    pub fn delayed(mut self, delay: Duration) -> SimReply {
        self.delay = Some(delay);
        self
    }
}

/// Maps (method, target) to replies; the target is the path (and query) for Kubernetes
/// requests and the full URL for plain HTTP ones. Unscripted requests get a 404.
#[derive(Debug, Clone, Default)]
pub struct Script {
    replies: HashMap<(String, String), SimReply>,
}

impl Script {
    /// An empty script (everything 404).
    pub fn new() -> Script {
        Script::default()
    }

    /// Adds a reply for `method` `target`.
    pub fn on(mut self, method: &str, target: &str, reply: SimReply) -> Script {
        self.replies
            .insert((method.to_ascii_uppercase(), target.to_string()), reply);
        self
    }

    /// The reply to a request.
    pub fn reply(&self, method: &str, target: &str) -> SimReply {
        self.replies
            .get(&(method.to_ascii_uppercase(), target.to_string()))
            .cloned()
            .unwrap_or_else(|| SimReply::text(404, format!("no script for {method} {target}")))
    }
}
