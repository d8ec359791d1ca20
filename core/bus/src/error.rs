//! The bus's error type: one enum for broker, database, encoding and confirm failures.

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker connection or channel failed, or the broker refused an operation.
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),

    /// A query against the outbox or inbox tables failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),

    /// A message could not be encoded or decoded as JSON.
    #[error("message JSON: {0}")]
    Json(#[from] serde_json::Error),

    /// A metric could not be registered (usually: registered twice in one registry).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),

    /// The broker answered a publish with a negative acknowledgement: it did not take the message.
    #[error("broker refused message {message_id} (nack) on exchange {exchange:?}")]
    Nacked {
        /// The message id property of the refused message.
        message_id: String,
        /// The exchange it was published to.
        exchange: String,
    },

    /// A mandatory message matched no queue and the broker returned it.
    #[error(
        "message {message_id} is unroutable: exchange {exchange:?}, routing key {routing_key:?}: {reply_code} {reply_text}"
    )]
    Unroutable {
        /// The message id property of the returned message.
        message_id: String,
        /// The exchange it was published to.
        exchange: String,
        /// The routing key that matched nothing.
        routing_key: String,
        /// The broker's reply code (312 NO_ROUTE).
        reply_code: u16,
        /// The broker's reply text.
        reply_text: String,
    },

    /// The channel was not in confirm mode, so a publish could not be confirmed.
    #[error("publisher confirms are not enabled on this channel")]
    ConfirmsNotEnabled,

    /// The broker cancelled the consumer (for example: its queue was deleted).
    #[error("the broker cancelled the consumer on queue {queue:?}")]
    ConsumerCancelled {
        /// The queue that was being consumed.
        queue: String,
    },

    /// An outbox row names an exchange this version of Ferry does not know.
    #[error("outbox row {seq} names unknown exchange {exchange:?}")]
    UnknownExchange {
        /// The row's sequence number.
        seq: i64,
        /// The exchange text stored in the row.
        exchange: String,
    },

    /// A message-processing task ended without a result (it panicked or was aborted).
    #[error("message task failed: {0}")]
    Task(#[from] tokio::task::JoinError),

    /// The operation was abandoned because shutdown was requested.
    #[error("shutting down")]
    ShuttingDown,
}

/// Renders an error with its chain of sources for logs and the dead-letter reason header, where
/// only text survives: the one formatter every Ferry process uses.
pub(crate) use ferry_runtime::error_chain;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_chain_appends_sources_once() {
        let error = Outer(std::io::Error::other("disk gone"));
        assert_eq!(error_chain(&error), "outer: disk gone");
        let json = serde_json::from_str::<u32>("x").unwrap_err();
        let bus = BusError::from(json);
        let text = error_chain(&bus);
        assert_eq!(text.matches("expected value").count(), 1, "{text}");
    }
}
