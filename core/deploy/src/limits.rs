//! Limits on what one deployment may hold, so no input can make parsing, planning, storing or
//! rendering slow or large: each is far beyond any real deploy file, and each is reported as an
//! ordinary diagnostic at the place that passes it (the API answers 422), never as a panic or
//! an overflow later. The YAML loader's own bounds (nodes, nesting, alias expansion) are in
//! [`crate::node`]; the README's "Limits" section lists them all.

use indexmap::IndexMap;
use serde_json::Value;

use crate::decode::Decoder;
use crate::node::{Node, NodeKind};
use crate::raw::{ContextMap, Pos};
use crate::templates;

/// Targets in one file.
pub const MAX_TARGETS: usize = 500;
/// Strategies in one file.
pub const MAX_STRATEGIES: usize = 500;
/// Entries of `manifests`.
pub const MAX_MANIFEST_ENTRIES: usize = 1_000;
/// Webhooks in one file.
pub const MAX_WEBHOOKS: usize = 500;
/// Analysis queries in one file.
pub const MAX_QUERIES: usize = 500;
/// Entries of `trafficManagement`, and of `targetFilters`.
pub const MAX_TRAFFIC_ENTRIES: usize = 500;
/// Steps in one list (canary steps, blue/green conditions, constraints).
pub const MAX_STEPS: usize = 1_000;

/// Variables in one context (the file's, a step's, the caller's, and any merge of them).
pub const MAX_CONTEXT_ENTRIES: usize = 500;
/// Bytes of one context variable's name.
pub const MAX_CONTEXT_KEY_BYTES: usize = 253;
/// Bytes of one context variable's value.
pub const MAX_CONTEXT_VALUE_BYTES: usize = 16 * 1024;
/// Bytes of a whole (merged) context, names and values.
pub const MAX_CONTEXT_BYTES: usize = 256 * 1024;

/// Manifest files (and fetched URLs) the caller sends with one deploy file.
pub const MAX_SOURCES: usize = 10_000;
/// Kubernetes objects one target deploys.
pub const MAX_OBJECTS_PER_TARGET: usize = 5_000;
/// Bytes of one object rendered as JSON, context variables substituted: the Kubernetes API
/// server refuses larger requests (3 MiB) anyway.
pub const MAX_OBJECT_BYTES: usize = 3 * 1024 * 1024;
/// Bytes of all objects of one target, rendered as JSON.
pub const MAX_TARGET_MANIFEST_BYTES: usize = 32 * 1024 * 1024;
/// What one `{{ferry.X}}`/`{{armory.X}}` variable may add when the planner bounds a rendered
/// object: names are at most 253 bytes, times and addresses shorter.
pub const FERRY_VARIABLE_BYTES: usize = 1024;

/// The longest duration anywhere (pause, approval expiration, timeout, analysis interval),
/// and the longest an analysis may run (interval × judgment runs): one year. Timers and
/// deadlines are `now + duration`, which must stay far inside every date range on the way
/// (chrono's, Postgres's).
pub const MAX_DURATION_SECS: u64 = 365 * 24 * 3600;

/// `n` bytes for people: `16 KiB`, `3 MiB`, `700 bytes`.
pub fn bytes(n: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= KIB && n.is_multiple_of(KIB) {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} bytes")
    }
}

/// A duration in seconds for people, in the largest unit that divides it.
pub fn seconds(secs: u64) -> String {
    match secs {
        s if s >= 86_400 && s.is_multiple_of(86_400) => format!("{} days", s / 86_400),
        s if s >= 3600 && s.is_multiple_of(3600) => format!("{} hours", s / 3600),
        s => format!("{s} seconds"),
    }
}

/// Why a context is too large, if it is: too many variables, a name or value too long, or too
/// many bytes in all. `what` names the context in the message.
pub fn context_problem<'a>(
    what: &str,
    entries: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
) -> Option<String> {
    if entries.len() > MAX_CONTEXT_ENTRIES {
        return Some(format!(
            "{what} has {} variables: at most {MAX_CONTEXT_ENTRIES}",
            entries.len()
        ));
    }
    let mut total = 0usize;
    for (key, value) in entries {
        if let Some(problem) = variable_problem(key, value) {
            return Some(format!("{what}: {problem}"));
        }
        total += key.len() + value.len();
    }
    total_problem(what, total)
}

/// Why one context variable is too large, if it is.
pub fn variable_problem(key: &str, value: &str) -> Option<String> {
    if key.len() > MAX_CONTEXT_KEY_BYTES {
        let shown: String = key.chars().take(40).collect();
        return Some(format!(
            "the variable name \"{shown}…\" is {} bytes long: at most {MAX_CONTEXT_KEY_BYTES}",
            key.len()
        ));
    }
    (value.len() > MAX_CONTEXT_VALUE_BYTES).then(|| {
        format!(
            "the value of \"{key}\" is {} bytes long: at most {}",
            value.len(),
            bytes(MAX_CONTEXT_VALUE_BYTES)
        )
    })
}

fn total_problem(what: &str, total: usize) -> Option<String> {
    (total > MAX_CONTEXT_BYTES).then(|| {
        format!(
            "{what} holds {total} bytes: at most {} in all",
            bytes(MAX_CONTEXT_BYTES)
        )
    })
}

/// An upper bound of an object's size as JSON once its strings are rendered with `context`:
/// its size as written, plus each `{{context.X}}` value and [`FERRY_VARIABLE_BYTES`] for each
/// other variable. Computed without rendering, so a hostile object costs nothing to refuse.
pub fn rendered_bytes_bound(object: &Value, context: &IndexMap<String, String>) -> usize {
    fn walk(v: &Value, context: &IndexMap<String, String>, total: &mut usize) {
        match v {
            Value::String(s) => {
                // Quotes, and room for escapes the written size does not show.
                *total = total.saturating_add(s.len() + 2);
                if s.contains("{{") {
                    for var in templates::variables(s) {
                        let add = match var.namespace.as_str() {
                            "context" => context.get(&var.name).map_or(0, String::len),
                            _ => FERRY_VARIABLE_BYTES,
                        };
                        *total = total.saturating_add(add);
                    }
                }
            }
            Value::Array(items) => {
                *total = total.saturating_add(2 + items.len());
                items.iter().for_each(|i| walk(i, context, total));
            }
            Value::Object(map) => {
                *total = total.saturating_add(2);
                for (k, v) in map {
                    *total = total.saturating_add(k.len() + 4);
                    walk(v, context, total);
                }
            }
            other => *total = total.saturating_add(other.to_string().len()),
        }
    }
    let mut total = 0;
    walk(object, context, &mut total);
    total
}

impl Decoder<'_> {
    /// Reports a list or mapping with more than `max` items at `node` and returns true, so the
    /// caller skips decoding it.
    pub(crate) fn too_many(&mut self, node: &Node, path: &str, max: usize, what: &str) -> bool {
        let len = match &node.kind {
            NodeKind::Seq(items) => items.len(),
            NodeKind::Map(pairs) => pairs.len(),
            NodeKind::Scalar { .. } => return false,
        };
        if len <= max {
            return false;
        }
        self.error(node, path, format!("{len} {what}: at most {max}"));
        true
    }

    /// `secs` when within [`MAX_DURATION_SECS`]; else reports it at `node` (a pause of years
    /// would overflow deadlines later, so it is refused here).
    pub(crate) fn duration_within(&mut self, node: &Node, path: &str, secs: u64) -> Option<u64> {
        if secs <= MAX_DURATION_SECS {
            return Some(secs);
        }
        self.error(
            node,
            path,
            format!(
                "{} is too long: at most {}",
                seconds(secs),
                seconds(MAX_DURATION_SECS)
            ),
        );
        None
    }

    /// Reports a context over the limits at `pos`.
    pub(crate) fn check_context_size<'a>(
        &mut self,
        pos: &Pos,
        what: &str,
        entries: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    ) {
        if let Some(problem) = context_problem(what, entries) {
            self.at(pos, problem, None);
        }
    }

    /// Reports each variable of a decoded context that is too large at its value, then the
    /// context's total at `node`.
    pub(crate) fn check_decoded_context(&mut self, node: &Node, path: &str, context: &ContextMap) {
        let mut total = 0usize;
        for (key, value) in context {
            if let Some(problem) = variable_problem(key, &value.value) {
                self.at(&value.pos, problem, None);
            }
            total += key.len() + value.value.len();
        }
        if let Some(problem) = total_problem("this context", total) {
            self.error(node, path, problem);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(bytes(16 * 1024), "16 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3 MiB");
        assert_eq!(bytes(700), "700 bytes");
        assert_eq!(seconds(MAX_DURATION_SECS), "365 days");
        assert_eq!(seconds(7200), "2 hours");
        assert_eq!(seconds(61), "61 seconds");
    }

    #[test]
    fn rendered_bound_counts_context_values_per_reference() {
        let mut context = IndexMap::new();
        context.insert("big".to_string(), "x".repeat(1000));
        let object = serde_json::json!({"a": "{{context.big}}{{context.big}}", "b": [1, true]});
        let bound = rendered_bytes_bound(&object, &context);
        let written = object.to_string().len();
        assert!(bound >= written + 2000, "{bound} vs {written}");
        assert!(bound < written + 2100, "{bound} vs {written}");
        let ferry = serde_json::json!({"n": "{{ferry.applicationName}}"});
        assert!(rendered_bytes_bound(&ferry, &context) >= FERRY_VARIABLE_BYTES);
    }

    #[test]
    fn context_problems_name_what_is_too_large() {
        let many: Vec<(String, String)> = (0..=MAX_CONTEXT_ENTRIES)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        let p = context_problem(
            "context",
            many.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        assert_eq!(p.unwrap(), "context has 501 variables: at most 500");
        let long = "v".repeat(MAX_CONTEXT_VALUE_BYTES + 1);
        let p = context_problem("context", [("k", long.as_str())].into_iter()).unwrap();
        assert!(
            p.contains("\"k\" is 16385 bytes long: at most 16 KiB"),
            "{p}"
        );
        let fine = "v".repeat(MAX_CONTEXT_VALUE_BYTES);
        assert!(context_problem("context", [("k", fine.as_str())].into_iter()).is_none());
    }
}
