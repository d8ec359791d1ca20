//! `ferry deploy validate`: reads a deploy file and the manifests it names, checks them with
//! `ferry_deploy::check` and prints `OK` and the plan's summary (with `-o json|yaml`, the plan
//! itself), or every diagnostic (exit 1).

use std::process::ExitCode;

use crate::args::{Format, ValidateArgs};
use crate::files::{self, DeployInput};
use crate::output;

/// Runs `ferry deploy validate`.
pub(super) fn run(args: &ValidateArgs, format: Format) -> anyhow::Result<ExitCode> {
    let overrides = files::overrides(args)?;
    // The manifests are loaded even when the file has errors, so one run reports everything.
    let input = DeployInput::read(&args.file, args.allow_outside_repo)?;
    let Some(file) = &input.file else {
        return Ok(input.report(&input.parse_errors, &input.label));
    };
    match ferry_deploy::check(&input.label, &input.text, &input.sources, &overrides) {
        Ok(plan) if format != Format::Text => {
            let plan = serde_json::to_value(&plan)?;
            output::emit(format, &plan, |_| String::new());
            Ok(ExitCode::SUCCESS)
        }
        Ok(plan) => {
            println!("OK");
            for warning in &plan.warnings {
                println!("warning: {warning}");
            }
            for url in file.manifest_urls() {
                println!("note: manifest {url} is fetched by the server");
            }
            print!("{}", plan.summary());
            Ok(ExitCode::SUCCESS)
        }
        Err(diags) => Ok(input.report(diags.items(), &input.label)),
    }
}
