//! The metric catalog: what a set of collectors exports (name, type, labels, help), registering
//! them all at once, and checking them against their section of `docs/metrics.md`.
//!
//! A section of the document is the table between `<!-- metrics: NAME -->` and
//! `<!-- end metrics -->`, one row per metric:
//!
//! ```text
//! | `ferry_bus_messages_handled_total` | counter | `queue`, `kind` | Messages whose handler ... |
//! ```
//!
//! The meaning column is the metric's help text, word for word, so the document and `/metrics`
//! never disagree.

use std::collections::BTreeMap;

use prometheus::core::Collector;
use prometheus::proto::MetricType;
use prometheus::{Registry, proto};

/// The type of an exported metric, as the catalog and the document name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MetricKind {
    /// A monotonic counter (`_total`).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A histogram: exported as `_bucket`, `_sum` and `_count` series.
    Histogram,
    /// A summary (only the process collector's, if any).
    Summary,
    /// Untyped.
    Untyped,
}

impl MetricKind {
    /// The lower-case name used in `docs/metrics.md`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::Summary => "summary",
            MetricKind::Untyped => "untyped",
        }
    }

    fn from_proto(kind: MetricType) -> MetricKind {
        match kind {
            MetricType::COUNTER => MetricKind::Counter,
            MetricType::GAUGE => MetricKind::Gauge,
            MetricType::HISTOGRAM => MetricKind::Histogram,
            MetricType::SUMMARY => MetricKind::Summary,
            MetricType::UNTYPED => MetricKind::Untyped,
        }
    }

    /// The series names a metric of this kind called `name` exports.
    pub fn series(self, name: &str) -> Vec<String> {
        match self {
            MetricKind::Histogram => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|suffix| format!("{name}{suffix}"))
                .collect(),
            MetricKind::Summary => vec![
                name.to_string(),
                format!("{name}_sum"),
                format!("{name}_count"),
            ],
            _ => vec![name.to_string()],
        }
    }
}

/// One metric as exported and as documented.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Documented {
    /// The metric family name, e.g. `ferry_bus_messages_handled_total`.
    pub name: String,
    /// Its type.
    pub kind: MetricKind,
    /// Its variable label names, in declaration order.
    pub labels: Vec<String>,
    /// Its help text.
    pub help: String,
}

/// Registers every collector in `registry`; fails on the first duplicate.
pub fn register_all(
    registry: &Registry,
    collectors: Vec<Box<dyn Collector>>,
) -> prometheus::Result<()> {
    for collector in collectors {
        registry.register(collector)?;
    }
    Ok(())
}

/// What `collectors` export, by name. Unlike [`Registry::gather`], a labelled metric with no
/// series yet is listed too.
pub fn describe(collectors: &[Box<dyn Collector>]) -> Vec<Documented> {
    let mut out = BTreeMap::new();
    for collector in collectors {
        let kinds: BTreeMap<String, MetricKind> = collector
            .collect()
            .iter()
            .map(|family: &proto::MetricFamily| {
                (
                    family.name().to_string(),
                    MetricKind::from_proto(family.get_field_type()),
                )
            })
            .collect();
        for desc in collector.desc() {
            let kind = kinds
                .get(&desc.fq_name)
                .copied()
                .unwrap_or(MetricKind::Untyped);
            out.insert(
                desc.fq_name.clone(),
                Documented {
                    name: desc.fq_name.clone(),
                    kind,
                    labels: desc.variable_labels.clone(),
                    help: desc.help.clone(),
                },
            );
        }
    }
    out.into_values().collect()
}

/// Parses the section `section` of a metrics document. Errors name the line.
pub fn parse_section(document: &str, section: &str) -> Result<Vec<Documented>, String> {
    let start = format!("<!-- metrics: {section} -->");
    let mut lines = document.lines().enumerate();
    if !lines.any(|(_, line)| line.trim() == start) {
        return Err(format!("no section {start:?} in the metrics document"));
    }
    let mut rows = Vec::new();
    for (index, line) in lines {
        let line = line.trim();
        if line == "<!-- end metrics -->" {
            return Ok(rows);
        }
        if !line.starts_with('|') || line.starts_with("| name") || line.starts_with("| ---") {
            continue;
        }
        rows.push(parse_row(line).map_err(|e| format!("line {}: {e}", index + 1))?);
    }
    Err(format!("section {start:?} has no <!-- end metrics -->"))
}

/// Every metric documented in any section of a metrics document.
pub fn parse_document(document: &str) -> Result<Vec<Documented>, String> {
    let mut all = Vec::new();
    for line in document.lines() {
        if let Some(section) = line
            .trim()
            .strip_prefix("<!-- metrics: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        {
            all.extend(parse_section(document, section)?);
        }
    }
    Ok(all)
}

fn parse_row(line: &str) -> Result<Documented, String> {
    let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
    let [name, kind, labels, help] = cells.as_slice() else {
        return Err(format!(
            "expected 4 cells (name, type, labels, meaning): {line}"
        ));
    };
    let unquote = |cell: &str| -> Result<String, String> {
        cell.strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .map(str::to_string)
            .ok_or_else(|| format!("{cell:?} should be in backquotes"))
    };
    let kind = match *kind {
        "counter" => MetricKind::Counter,
        "gauge" => MetricKind::Gauge,
        "histogram" => MetricKind::Histogram,
        "summary" => MetricKind::Summary,
        "untyped" => MetricKind::Untyped,
        other => return Err(format!("unknown metric type {other:?}")),
    };
    let labels = if *labels == "none" {
        Vec::new()
    } else {
        labels
            .split(", ")
            .map(unquote)
            .collect::<Result<Vec<_>, _>>()?
    };
    Ok(Documented {
        name: unquote(name)?,
        kind,
        labels,
        help: help.replace("\\|", "|"),
    })
}

/// The document row of a metric (what [`parse_section`] reads back).
pub fn row(metric: &Documented) -> String {
    let labels = if metric.labels.is_empty() {
        "none".to_string()
    } else {
        metric
            .labels
            .iter()
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "| `{}` | {} | {} | {} |",
        metric.name,
        metric.kind.as_str(),
        labels,
        metric.help.replace('|', "\\|")
    )
}

/// Checks that section `section` of the document at `path` lists exactly what `collectors`
/// export (name, type, labels, help). The error shows the rows to write.
pub fn check_documented(
    path: &std::path::Path,
    section: &str,
    collectors: &[Box<dyn Collector>],
) -> Result<(), String> {
    let document =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut documented =
        parse_section(&document, section).map_err(|e| format!("{}: {e}", path.display()))?;
    documented.sort();
    let exported = describe(collectors);
    if documented == exported {
        return Ok(());
    }
    let rows: Vec<String> = exported.iter().map(row).collect();
    Err(format!(
        "section {section:?} of {} does not match the metrics the code exports; it should read:\n\n| name | type | labels | meaning |\n| --- | --- | --- | --- |\n{}\n",
        path.display(),
        rows.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{HistogramOpts, HistogramVec, IntCounter};

    #[test]
    fn describes_empty_vectors_and_round_trips_rows() {
        let histogram = HistogramVec::new(
            HistogramOpts::new("ferry_x_seconds", "Time x took | roughly"),
            &["route", "method"],
        )
        .unwrap();
        let counter = IntCounter::new("ferry_y_total", "Ys").unwrap();
        let collectors: Vec<Box<dyn Collector>> = vec![Box::new(histogram), Box::new(counter)];
        let described = describe(&collectors);
        assert_eq!(described.len(), 2);
        assert_eq!(described[0].kind, MetricKind::Histogram);
        assert_eq!(described[0].labels, ["route", "method"]);
        assert_eq!(
            MetricKind::Histogram.series("ferry_x_seconds")[0],
            "ferry_x_seconds_bucket"
        );
        let document = format!(
            "intro\n<!-- metrics: x -->\n| name | type | labels | meaning |\n| --- | --- | --- | --- |\n{}\n{}\n<!-- end metrics -->\n",
            row(&described[0]),
            row(&described[1])
        );
        assert_eq!(parse_section(&document, "x").unwrap(), described);
        assert_eq!(parse_document(&document).unwrap(), described);
        assert!(parse_section(&document, "y").is_err());
        let bad = document.replace("| counter |", "| countr |");
        assert!(parse_section(&bad, "x").unwrap_err().contains("line 6"));
    }
}
