//! AMQP headers: the trace context that rides with a message, and the bus's own bookkeeping
//! headers (attempt count, dead-letter reason).

use std::collections::BTreeMap;

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString};
use serde::{Deserialize, Serialize};

/// How many times the message has been handled and failed before this delivery (set on retry and
/// dead-letter republishes).
pub const ATTEMPTS: &str = "x-ferry-attempts";
/// The error text of the last failure (on retried and dead-lettered messages).
pub const ERROR: &str = "x-ferry-error";
/// Why a message was dead-lettered: `permanent`, `retries_exhausted` or `undecodable`.
pub const REASON: &str = "x-ferry-reason";
/// The work queue a dead-lettered message was taken from.
pub const QUEUE: &str = "x-ferry-queue";
/// The message's versioned kind, for tools that look at a queue without decoding bodies.
pub const KIND: &str = "x-ferry-kind";

/// W3C trace context header names.
const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// The headers a producer attaches to a message: the W3C trace context of the span that caused it,
/// so the consumer's span can continue the same trace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageHeaders {
    /// W3C `traceparent`, when the producer had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// W3C `tracestate`, when the producer had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

impl MessageHeaders {
    /// Headers carrying a `traceparent`.
    pub fn with_traceparent(traceparent: impl Into<String>) -> MessageHeaders {
        MessageHeaders {
            traceparent: Some(traceparent.into()),
            tracestate: None,
        }
    }

    /// The trace context of the current span (empty outside any traced span).
    pub fn current() -> MessageHeaders {
        MessageHeaders::from(ferry_runtime::trace::current())
    }

    /// The headers as the string map the outbox stores and AMQP carries.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        if let Some(v) = &self.traceparent {
            map.insert(TRACEPARENT.to_string(), v.clone());
        }
        if let Some(v) = &self.tracestate {
            map.insert(TRACESTATE.to_string(), v.clone());
        }
        map
    }

    /// Reads the trace context from a delivery's properties.
    pub fn from_properties(properties: &BasicProperties) -> MessageHeaders {
        let table = properties.headers().as_ref();
        MessageHeaders {
            traceparent: table.and_then(|t| string(t, TRACEPARENT)),
            tracestate: table.and_then(|t| string(t, TRACESTATE)),
        }
    }
}

impl From<ferry_runtime::trace::TraceContext> for MessageHeaders {
    fn from(trace: ferry_runtime::trace::TraceContext) -> MessageHeaders {
        MessageHeaders {
            traceparent: trace.traceparent,
            tracestate: trace.tracestate,
        }
    }
}

impl From<&MessageHeaders> for ferry_runtime::trace::TraceContext {
    fn from(headers: &MessageHeaders) -> ferry_runtime::trace::TraceContext {
        ferry_runtime::trace::TraceContext {
            traceparent: headers.traceparent.clone(),
            tracestate: headers.tracestate.clone(),
        }
    }
}

/// A string map as an AMQP header table.
pub(crate) fn table_from_map(map: &BTreeMap<String, String>) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in map {
        table.insert(key.as_str().into(), long_string(value));
    }
    table
}

/// A string header value.
pub(crate) fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// A header as text, whichever string type the sender used.
pub(crate) fn string(table: &FieldTable, key: &str) -> Option<String> {
    match table.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

/// A header as an integer, whichever integer type the sender (or a broker round trip) used.
pub(crate) fn integer(table: &FieldTable, key: &str) -> Option<i64> {
    match table.inner().get(key)? {
        AMQPValue::ShortShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongLongInt(v) => Some(*v),
        _ => None,
    }
}

/// The number of failed attempts recorded on a delivery (0 on a first delivery).
pub fn attempts(properties: &BasicProperties) -> u32 {
    properties
        .headers()
        .as_ref()
        .and_then(|t| integer(t, ATTEMPTS))
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_context_round_trips_through_amqp_headers() {
        let headers = MessageHeaders {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: Some("vendor=1".into()),
        };
        let props = BasicProperties::default().with_headers(table_from_map(&headers.to_map()));
        assert_eq!(MessageHeaders::from_properties(&props), headers);
        assert_eq!(
            MessageHeaders::from_properties(&BasicProperties::default()),
            MessageHeaders::default()
        );
    }

    #[test]
    fn attempts_reads_any_integer_type() {
        let mut table = FieldTable::default();
        table.insert(ATTEMPTS.into(), AMQPValue::LongInt(3));
        let props = BasicProperties::default().with_headers(table);
        assert_eq!(attempts(&props), 3);
        assert_eq!(attempts(&BasicProperties::default()), 0);
    }
}
