//! Why a tunnelled request failed.

use std::time::Duration;

/// A boxed error from a request body or a service.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request through the hub failed.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// No hub replica holds a stream for the agent.
    #[error("agent {agent} of tenant {tenant} is not connected")]
    AgentNotConnected {
        /// The tenant.
        tenant: String,
        /// The agent.
        agent: String,
    },
    /// The deadline passed before the answer was complete.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// The agent (or its replica) went away after it may have started the request, and the
    /// request is not safe to repeat.
    #[error("the agent disconnected while handling the request: {0}")]
    AgentDisconnected(String),
    /// The agent answered with an error (it could not reach the target, …).
    #[error("the agent failed the request ({code:?}): {message}")]
    Remote {
        /// The agent's error code.
        code: ferry_proto::agent::ErrorCode,
        /// The agent's message.
        message: String,
    },
    /// The hub refused the request as malformed.
    #[error("the hub refused the request: {0}")]
    Refused(String),
    /// The request cannot be sent (bad URI, unreadable body).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Reading the request body failed.
    #[error("reading the request body")]
    Body(#[source] BoxError),
    /// A reply broke the protocol (out of order, undecodable).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The tunnel's connection to the bus is gone.
    #[error("the tunnel's bus connection is closed")]
    Closed,
    /// RabbitMQ failed.
    #[error("RabbitMQ")]
    Amqp(#[from] lapin::Error),
    /// Redis failed.
    #[error("Redis")]
    Redis(#[from] redis::RedisError),
}

impl TunnelError {
    /// Whether the agent could not reach what the request was for (connection refused or reset,
    /// no answer in time): the target's trouble, not the tunnel's, which a caller that would
    /// retry a direct connection error retries too.
    pub fn target_unreachable(&self) -> bool {
        use ferry_proto::agent::ErrorCode;
        matches!(
            self,
            TunnelError::Remote {
                code: ErrorCode::Unreachable | ErrorCode::DeadlineExceeded,
                ..
            }
        )
    }

    /// Whether the same request may succeed if tried again later (the agent may reconnect,
    /// the bus may come back); `false` for answers that would repeat.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TunnelError::AgentNotConnected { .. }
                | TunnelError::Timeout(_)
                | TunnelError::AgentDisconnected(_)
                | TunnelError::Closed
                | TunnelError::Amqp(_)
                | TunnelError::Redis(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::agent::ErrorCode;

    fn remote(code: ErrorCode) -> TunnelError {
        TunnelError::Remote {
            code,
            message: "tcp connect error: Connection refused".into(),
        }
    }

    #[test]
    fn an_unreachable_target_is_told_apart_from_a_bad_request() {
        assert!(remote(ErrorCode::Unreachable).target_unreachable());
        assert!(remote(ErrorCode::DeadlineExceeded).target_unreachable());
        for code in [
            ErrorCode::InvalidRequest,
            ErrorCode::Cancelled,
            ErrorCode::Internal,
        ] {
            assert!(!remote(code).target_unreachable(), "{code:?}");
        }
        // The tunnel itself does not repeat a request the agent may have sent on.
        assert!(!remote(ErrorCode::Unreachable).is_transient());
        assert!(!TunnelError::Timeout(Duration::from_secs(1)).target_unreachable());
    }
}
