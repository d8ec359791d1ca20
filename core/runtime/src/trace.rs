//! W3C trace context (`traceparent`, `tracestate`) in and out of spans: how an HTTP request's
//! trace continues through the outbox, the bus, the agent tunnel and the agent.
//!
//! Producers read the current span's context with [`current`]; consumers make their span a child
//! of what arrived with [`follow`]. Both go through the OpenTelemetry layer [`crate::telemetry`]
//! installs; without it (a test with a plain subscriber) there is no context and nothing is
//! carried, which is never an error.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::collections::HashMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C header names.
pub const TRACEPARENT: &str = "traceparent";
/// See [`TRACEPARENT`].
pub const TRACESTATE: &str = "tracestate";

/// The longest `tracestate` carried (the W3C limit is 32 members of at most 256 bytes; Ferry
/// keeps what fits in 512 bytes and drops the rest rather than forwarding unbounded input).
pub const MAX_TRACESTATE_BYTES: usize = 512;

/// A span's W3C trace context, as carried in headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceContext {
    /// `00-<trace id>-<span id>-<flags>`.
    pub traceparent: Option<String>,
    /// Vendor state, passed along untouched (bounded).
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// From wire fields where empty means absent (the agent protocol's `traceparent` and
    /// `tracestate`, HTTP header values).
    pub fn from_fields(traceparent: &str, tracestate: &str) -> TraceContext {
        let present = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
        TraceContext {
            traceparent: present(traceparent),
            tracestate: present(tracestate),
        }
    }

    /// The trace id (32 hex digits), when there is a valid `traceparent`.
    pub fn trace_id(&self) -> Option<&str> {
        let parent = self.traceparent.as_deref()?;
        let id = parent.split('-').nth(1)?;
        (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
    }
}

/// The trace context of `span` (the caller's current span with [`current`]); empty when
/// tracing has no OpenTelemetry layer or the span is disabled.
pub fn of(span: &tracing::Span) -> TraceContext {
    let mut carrier = Carrier::default();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    TraceContext {
        traceparent: carrier.0.remove(TRACEPARENT),
        tracestate: carrier.0.remove(TRACESTATE).filter(|s| !s.is_empty()),
    }
}

/// The trace context of the current span.
pub fn current() -> TraceContext {
    of(&tracing::Span::current())
}

/// Makes `span` a child of the remote context `parent` (an incoming `traceparent`), so it joins
/// that trace; a missing or malformed `traceparent` leaves `span` the root of a new trace. Then
/// records the span's trace id in its `trace_id` field, when it declares one (for log lines).
pub fn follow(span: &tracing::Span, parent: &TraceContext) {
    if let Some(p) = &parent.traceparent {
        let mut carrier = Carrier::default();
        carrier.0.insert(TRACEPARENT.into(), p.clone());
        if let Some(s) = &parent.tracestate {
            let bounded = truncate_members(s, MAX_TRACESTATE_BYTES);
            carrier.0.insert(TRACESTATE.into(), bounded.to_string());
        }
        let cx = TraceContextPropagator::new().extract(&carrier);
        if cx.span().span_context().is_valid() {
            // Only fails when the span has already started children or is disabled.
            let _ = span.set_parent(cx);
        }
    }
    record_trace_id(span);
}

/// Records `span`'s trace id in its `trace_id` field (declare it `trace_id = Empty`).
pub fn record_trace_id(span: &tracing::Span) {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", span_context.trace_id().to_string());
    }
}

/// The longest prefix of a `tracestate` that ends at a member boundary and fits `max` bytes.
fn truncate_members(state: &str, max: usize) -> &str {
    if state.len() <= max {
        return state;
    }
    match state[..max].rfind(',') {
        Some(end) => &state[..end],
        None => "",
    }
}

#[derive(Default)]
struct Carrier(HashMap<String, String>);

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
}

impl Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn subscriber() -> impl tracing::Subscriber + Send + Sync {
        let provider = crate::telemetry::tracer_provider("ferry-test", false).unwrap();
        use opentelemetry::trace::TracerProvider as _;
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("ferry-test")))
    }

    #[test]
    fn a_followed_span_continues_the_trace_and_its_children_carry_it_on() {
        tracing::subscriber::with_default(subscriber(), || {
            let parent = TraceContext {
                traceparent: Some(PARENT.into()),
                tracestate: Some("vendor=1".into()),
            };
            let span = tracing::info_span!("request", trace_id = tracing::field::Empty);
            follow(&span, &parent);
            let _entered = span.enter();
            let child = tracing::info_span!("child");
            let carried = of(&child);
            assert_eq!(carried.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
            let sent = carried.traceparent.unwrap();
            assert_ne!(sent, PARENT, "the child's own span id is sent on");
            assert!(sent.ends_with("-01"), "sampled: {sent}");
            assert_eq!(carried.tracestate.as_deref(), Some("vendor=1"));
        });
    }

    #[test]
    fn malformed_or_missing_parents_start_a_new_trace() {
        tracing::subscriber::with_default(subscriber(), || {
            for bad in [None, Some("garbage"), Some("00-zz-00f067aa0ba902b7-01")] {
                let span = tracing::info_span!("request");
                let parent = TraceContext {
                    traceparent: bad.map(str::to_string),
                    tracestate: None,
                };
                follow(&span, &parent);
                let own = of(&span);
                let id = own.trace_id().expect("a new trace id");
                assert_ne!(id, "4bf92f3577b34da6a3ce929d0e0e4736");
            }
        });
    }

    #[test]
    fn without_the_opentelemetry_layer_nothing_is_carried() {
        tracing::subscriber::with_default(tracing_subscriber::registry(), || {
            let span = tracing::info_span!("request");
            assert_eq!(of(&span), TraceContext::default());
        });
    }

    #[test]
    fn tracestate_is_cut_at_a_member_boundary() {
        let long = (0..100)
            .map(|i| format!("v{i}=x"))
            .collect::<Vec<_>>()
            .join(",");
        let cut = truncate_members(&long, MAX_TRACESTATE_BYTES);
        assert!(cut.len() <= MAX_TRACESTATE_BYTES);
        assert!(
            cut.split(',')
                .all(|m| m.starts_with('v') && m.ends_with("=x"))
        );
        assert_eq!(truncate_members("a=1", 512), "a=1");
    }
}
