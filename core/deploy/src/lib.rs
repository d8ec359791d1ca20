//! `ferry-deploy`: the deploy-file language. Parsing (with positions), validation and planning,
//! all pure: no file or network I/O, so the API, the scheduler and the CLI share it and tests
//! need nothing around it.
//!
//! Two phases: [`parse`] turns the YAML text into the raw model ([`DeployFile`], every value with
//! its line, column and field path) and checks every rule the file alone decides; [`plan`] adds
//! the caller's manifest sources and overrides and produces the [`Plan`] the scheduler runs.
//! Manifest sources are the local files the caller read and the contents of manifest URLs the
//! caller fetched (a [`Source`] whose path is the URL); a URL left unfetched stays in the
//! target's `remote_manifests`.
//! Every error of a file is reported together as [`Diagnostics`]. The file's shape is declared
//! once in [`grammar`], which the decoder reads and [`json_schema`] turns into a JSON Schema.

mod decode;
pub mod diagnostics;
mod file;
pub mod grammar;
pub mod limits;
pub mod manifests;
pub mod names;
pub mod node;
pub mod plan;
mod planner;
pub mod raw;
pub mod rendering;
pub mod schema;
mod sections;
mod steps;
pub mod stored;
pub mod summary;
pub mod templates;
mod validate;

pub use diagnostics::{Diagnostic, Diagnostics};
pub use file::{is_dns_label, normalize_path};
pub use manifests::Source;
pub use names::{application_name_problem, application_slug};
pub use plan::*;
pub use planner::Overrides;
pub use raw::DeployFile;
pub use schema::json_schema;
pub use stored::{PLAN_VERSION, StoredPlanError};

use raw::ManifestSource;

/// Parses and validates a deploy file. `file` names it in diagnostics (e.g. `deploy.yml`).
pub fn parse(file: &str, text: &str) -> Result<DeployFile, Diagnostics> {
    let (parsed, diags) = parse_partial(file, text)?;
    if diags.is_empty() {
        Ok(parsed)
    } else {
        Err(Diagnostics(diags).sorted())
    }
}

/// Like [`parse`], but returns the model even when it has errors, with those errors, for a
/// caller that goes on (loads the manifests, then calls [`check`]) to report everything at
/// once. `Err` when there is no model at all (a syntax error, an empty file).
pub fn parse_with_errors(file: &str, text: &str) -> Result<(DeployFile, Diagnostics), Diagnostics> {
    let (parsed, diags) = parse_partial(file, text)?;
    Ok((parsed, Diagnostics(diags).sorted()))
}

fn parse_partial(file: &str, text: &str) -> Result<(DeployFile, Vec<Diagnostic>), Diagnostics> {
    let mut d = decode::Decoder::new(file);
    let docs = match node::load(text) {
        Ok(docs) => docs,
        Err(e) => {
            return Err(Diagnostics(vec![Diagnostic {
                file: file.to_string(),
                line: e.line,
                column: e.column,
                path: "syntax".to_string(),
                message: e.message,
                suggestion: None,
            }]));
        }
    };
    let Some(root) = docs.first().filter(|r| !r.is_null()) else {
        return Err(Diagnostics(vec![Diagnostic {
            file: file.to_string(),
            line: 1,
            column: 1,
            path: "file".to_string(),
            message: "the deploy file is empty".to_string(),
            suggestion: None,
        }]));
    };
    if let Some(extra) = docs.get(1) {
        d.error(extra, "file", "a deploy file holds one YAML document");
    }
    let mut parsed = d.deploy_file(root);
    if !d.unsupported_kind {
        d.validate(&parsed);
    }
    parsed.warnings = Diagnostics(std::mem::take(&mut d.warnings)).sorted().0;
    Ok((parsed, d.diags))
}

impl DeployFile {
    /// The local manifest paths the caller must load (files or directories, normalised,
    /// relative to the deploy file's folder). URLs and inline manifests are not listed.
    pub fn manifest_paths(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in &self.manifests {
            if let ManifestSource::Path(p) = &m.source.value
                && !out.contains(p)
            {
                out.push(p.clone());
            }
        }
        out
    }

    /// The `http(s)` manifest URLs (each once, in file order), fetched by the server: their
    /// contents are passed to [`plan`] as [`Source`]s whose path is the URL as written.
    pub fn manifest_urls(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in &self.manifests {
            if let ManifestSource::Url(u) = &m.source.value
                && !out.contains(u)
            {
                out.push(u.clone());
            }
        }
        out
    }
}

/// Builds the plan from a parsed file, the manifest sources the caller loaded and overrides.
pub fn plan(
    file: &DeployFile,
    sources: &[Source],
    overrides: &Overrides,
) -> Result<Plan, Diagnostics> {
    planner::build(file, sources, overrides)
}

/// [`parse`] then [`plan`], reporting the problems of both together: the planner also runs on
/// a file with errors (over the parts that decoded), so one run shows every problem.
pub fn check(
    file: &str,
    text: &str,
    sources: &[Source],
    overrides: &Overrides,
) -> Result<Plan, Diagnostics> {
    let (parsed, mut diags) = parse_partial(file, text)?;
    match plan(&parsed, sources, overrides) {
        Ok(plan) if diags.is_empty() => Ok(plan),
        Ok(_) => Err(Diagnostics(diags).sorted()),
        Err(more) => {
            diags.extend(more);
            Err(Diagnostics(diags).sorted())
        }
    }
}
