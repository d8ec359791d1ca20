//! Tracing set-up: one subscriber per process, text for terminals or JSON for production, filtered
//! by `FERRY_LOG`, with OpenTelemetry spans underneath.
//!
//! Every span gets an OpenTelemetry context, so W3C trace context flows from an HTTP request
//! through the outbox and the bus into every service that acts on it ([`crate::trace`]). Spans
//! are exported over OTLP/HTTP only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; otherwise nothing leaves the process. The
//! standard `OTEL_*` variables (service name, batch delays, headers) are honoured by the SDK.
//! JSON log lines carry the `trace_id` of the span they were written in.

use crate::settings::{CommonArgs, LogFormat};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The environment variables that turn OTLP export on.
const OTLP_ENDPOINTS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
];

/// Keeps the tracer provider; dropping it flushes the spans not yet exported.
#[must_use = "dropping the guard at once stops trace export"]
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("flushing traces at exit: {e}");
        }
    }
}

/// Installs the global tracing subscriber and the W3C trace-context propagator for the process
/// named `service` (the OpenTelemetry `service.name` unless `OTEL_SERVICE_NAME` says otherwise).
/// Call once, first thing in `main`, and keep the guard until the process ends.
pub fn init(common: &CommonArgs, service: &'static str) -> anyhow::Result<Telemetry> {
    // The process's one TLS crypto provider (ring), before any client is built: the OTLP
    // exporter's, lapin's, kube-rs's and reqwest's all use it.
    install_crypto();
    let filter = EnvFilter::try_new(&common.log)
        .map_err(|e| anyhow::anyhow!("FERRY_LOG / --log: invalid filter {:?}: {e}", common.log))?;
    let provider = tracer_provider(service, otlp_configured())?;
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer(service));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let result = match common.log_format {
        LogFormat::Text => registry.with(fmt).try_init(),
        // Every enclosing span's fields go with each line (`spans`), the request's or the
        // message's `trace_id` among them.
        LogFormat::Json => registry
            .with(
                fmt.json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(true),
            )
            .try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("installing the tracing subscriber: {e}"))?;
    Ok(Telemetry { provider })
}

/// Installs the process-wide rustls crypto provider (ring): several providers are compiled in,
/// so none is picked by default. Idempotent.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Whether an OTLP endpoint is configured.
fn otlp_configured() -> bool {
    OTLP_ENDPOINTS
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()))
}

/// A tracer provider for `service`: exporting over OTLP/HTTP in batches when `export`, else only
/// assigning trace and span ids (so trace context still propagates and logs carry trace ids).
pub fn tracer_provider(service: &'static str, export: bool) -> anyhow::Result<SdkTracerProvider> {
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service);
    }
    let resource = resource.build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if export {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| anyhow::anyhow!("building the OTLP span exporter: {e}"))?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}
