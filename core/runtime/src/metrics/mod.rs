//! Metrics every service shares: the HTTP ([`http`]) and gRPC ([`grpc`]) request metrics, and the
//! metric catalog ([`catalog`]) that ties each crate's metrics to their documentation in
//! `docs/metrics.md`, which the Grafana dashboards are checked against.
//!
//! Each crate keeps its metrics in a struct whose `collectors()` lists every collector it
//! registers; registering and documenting go through that one list, so a metric cannot be
//! registered without being documented (the crate's catalog test fails) nor documented without
//! being registered.

pub mod catalog;
pub mod grpc;
pub mod http;

pub use catalog::{
    Documented, MetricKind, check_documented, describe, parse_document, register_all,
};
pub use grpc::{GrpcMetrics, GrpcMetricsLayer};
pub use http::HttpMetrics;

/// The metrics document, `docs/metrics.md`, from a crate's manifest directory (`CARGO_MANIFEST_DIR`)
/// and its depth below the workspace root.
pub fn document_path(manifest_dir: &str, depth: usize) -> std::path::PathBuf {
    let mut path = std::path::PathBuf::from(manifest_dir);
    for _ in 0..depth {
        path.push("..");
    }
    path.join("docs").join("metrics.md")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared HTTP and gRPC metrics and the process collector are documented as exported.
    #[test]
    fn runtime_metrics_are_documented() {
        let mut collectors = HttpMetrics::default().collectors();
        collectors.extend(GrpcMetrics::default().collectors());
        collectors.push(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
        let path = document_path(env!("CARGO_MANIFEST_DIR"), 2);
        if let Err(e) = check_documented(&path, "ferry-runtime", &collectors) {
            panic!("{e}");
        }
    }
}
