//! `ferry schema`: prints the deploy file's JSON Schema, generated from the grammar the parser
//! reads (`ferry_deploy::json_schema`), for editors and other tools.

use std::process::ExitCode;

use crate::args::Format;
use crate::output;

/// Runs `ferry schema`: the schema as JSON (or as YAML with `-o yaml`).
pub(super) fn run(format: Format) -> anyhow::Result<ExitCode> {
    let schema = ferry_deploy::json_schema();
    output::emit(format, &schema, |s| {
        serde_json::to_string_pretty(s).unwrap_or_default() + "\n"
    });
    Ok(ExitCode::SUCCESS)
}
