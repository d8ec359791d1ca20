//! The `FERRY_*` environment variables each binary reads: every `env = "FERRY_…"` of a clap
//! argument in the crate's `src/` (its `src/bin/` helpers aside), plus those of the shared
//! argument groups of `core/runtime` (`CommonArgs`) and `core/backends` (`PostgresArgs`, …) that
//! the crate flattens into its settings.

use crate::workspace;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The Ferry binaries a chart runs, by the chart's name for them, with their crate's folder.
pub const SERVICES: &[(&str, &str)] = &[
    ("api", "svc-api"),
    ("scheduler", "svc-scheduler"),
    ("canary", "svc-canary"),
    ("webhook", "svc-webhook"),
    ("hub", "svc-agent-hub"),
    ("agent", "agent"),
];

/// The `FERRY_*` names in `env = "…"` attributes of `text`.
fn env_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("env = \"FERRY_") {
        let name = &rest[at + 7..];
        let end = name.find('"').unwrap_or(name.len());
        out.insert(name[..end].to_string());
        rest = &name[end..];
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // src/bin holds benchmarks and tools, not the service's binary.
            if path.file_name().is_some_and(|n| n != "bin") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The shared argument groups of `core/runtime/src/settings.rs` and
/// `core/backends/src/settings.rs`, each with its variables.
pub fn runtime_groups() -> BTreeMap<String, BTreeSet<String>> {
    let text = workspace::read("core/runtime/src/settings.rs")
        + &workspace::read("core/backends/src/settings.rs");
    let mut groups = BTreeMap::new();
    for part in text.split("pub struct ").skip(1) {
        let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
        let body = part.split("\n}").next().unwrap_or_default();
        let vars = env_names(body);
        if !vars.is_empty() {
            groups.insert(name, vars);
        }
    }
    groups
}

/// Every `FERRY_*` variable the binary of `crate_dir` reads.
pub fn read_by(crate_dir: &str) -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&workspace::root().join(crate_dir).join("src"), &mut files);
    let text: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let mut vars = env_names(&text);
    for (group, group_vars) in runtime_groups() {
        let flattened = text.contains(&format!(": {group},"))
            || text.contains(&format!(": {group}\n"))
            || text.contains(&format!(": ferry_runtime::{group},"))
            || text.contains(&format!(": ferry_backends::{group},"));
        if flattened {
            vars.extend(group_vars);
        }
    }
    vars
}
