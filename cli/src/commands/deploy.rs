//! `ferry deploy …`: `validate` reads a deploy file and the manifests it names, checks them with
//! `ferry_deploy::check` and prints `OK` and the plan's summary, or every diagnostic.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use ferry_deploy::{Diagnostics, Overrides, Source};

use crate::args::{DeployArgs, DeployCommand, ValidateArgs};

/// Dispatches `ferry deploy` subcommands.
pub fn run(args: DeployArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DeployCommand::Validate(v) => validate(v),
    }
}

fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let overrides = overrides(&args)?;
    let label = args.file.display().to_string();
    let text = fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read deploy file {label}"))?;
    let base = args
        .file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();

    // Load the manifests even when the file has errors, so one run reports everything.
    let file = match ferry_deploy::parse_with_errors(&label, &text) {
        Ok((file, _)) => file,
        Err(diags) => return Ok(report(&diags, &label, &base)),
    };
    let sources = load_sources(&base, &file.manifest_paths())?;
    match ferry_deploy::check(&label, &text, &sources, &overrides) {
        Ok(plan) => {
            println!("OK");
            for url in file.manifest_urls() {
                println!("note: manifest {url} is fetched by the server");
            }
            print!("{}", plan.summary());
            Ok(ExitCode::SUCCESS)
        }
        Err(diags) => Ok(report(&diags, &label, &base)),
    }
}

/// Prints every diagnostic to stderr, manifest files shown relative to the current directory.
fn report(diags: &Diagnostics, label: &str, base: &Path) -> ExitCode {
    for d in diags.items() {
        let mut d = d.clone();
        if d.file != label {
            d.file = base.join(&d.file).display().to_string();
        }
        eprintln!("{d}");
    }
    ExitCode::FAILURE
}

fn overrides(args: &ValidateArgs) -> anyhow::Result<Overrides> {
    let mut context = Vec::new();
    for entry in args.add_context.iter().flat_map(|c| c.split(',')) {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let Some((k, v)) = entry.split_once('=') else {
            bail!("invalid --add-context entry \"{entry}\": expected key=value");
        };
        if k.trim().is_empty() {
            bail!("invalid --add-context entry \"{entry}\": the key is empty");
        }
        context.push((k.trim().to_string(), v.to_string()));
    }
    Ok(Overrides {
        application: args.application.clone(),
        context,
        targets: args.targets.clone(),
    })
}

/// Reads the manifests the deploy file names. Paths that do not exist are skipped: the planner
/// reports them with their position in the deploy file.
fn load_sources(base: &Path, paths: &[String]) -> anyhow::Result<Vec<Source>> {
    let mut out = Vec::new();
    for rel in paths {
        let full = base.join(rel);
        if full.is_dir() {
            walk(&full, rel, &mut out)?;
        } else if full.is_file() {
            out.push(read(&full, rel)?);
        }
    }
    Ok(out)
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<Source>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot read manifest directory {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read manifest directory {}", dir.display()))?;
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let child = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if path.is_dir() {
            walk(&path, &child, out)?;
        } else if ferry_deploy::manifests::is_yaml(&name) {
            out.push(read(&path, &child)?);
        }
    }
    Ok(())
}

fn read(path: &Path, rel: &str) -> anyhow::Result<Source> {
    let content = fs::read_to_string(path)
        .with_context(|| format!("cannot read manifest {}", path.display()))?;
    Ok(Source {
        path: rel.to_string(),
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(context: &[&str]) -> ValidateArgs {
        ValidateArgs {
            file: PathBuf::from("deploy.yml"),
            application: None,
            add_context: context.iter().map(|s| s.to_string()).collect(),
            targets: vec!["prod".into()],
        }
    }

    #[test]
    fn add_context_splits_pairs_and_keeps_equals_in_values() {
        let o = overrides(&args(&["a=1,b=x=y", " c = 2 ", ""])).unwrap();
        assert_eq!(
            o.context,
            [
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "x=y".to_string()),
                ("c".to_string(), " 2".to_string())
            ]
        );
        assert_eq!(o.targets, ["prod"]);
        assert!(overrides(&args(&["=1"])).is_err());
        assert!(overrides(&args(&["k"])).is_err());
    }
}
