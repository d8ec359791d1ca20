//! Reading what a deploy is made of from disk: the deploy file, every manifest it names
//! (relative to the file; folders read recursively, YAML files only), the caller's overrides
//! (`--application`, `--add-context`, `--target`), and printing diagnostics with the manifest
//! paths shown relative to the current directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use ferry_deploy::{Diagnostic, Overrides, Source};

use crate::args::ValidateArgs;

/// A deploy file and its local manifests, as read from disk.
#[derive(Debug)]
pub struct DeployInput {
    /// The deploy file as the user named it (used in diagnostics).
    pub label: String,
    /// Its folder, which manifest paths are relative to.
    pub base: PathBuf,
    /// Its text.
    pub text: String,
    /// The parsed file, when it parses far enough to name its manifests.
    pub file: Option<ferry_deploy::DeployFile>,
    /// Parse errors when it does not.
    pub parse_errors: Vec<Diagnostic>,
    /// The manifests it names that exist on disk.
    pub sources: Vec<Source>,
}

impl DeployInput {
    /// Reads the deploy file `path` and the manifests it names. Missing manifests are left to
    /// the validator, which reports them at their entry in the deploy file.
    pub fn read(path: &Path) -> anyhow::Result<DeployInput> {
        let label = path.display().to_string();
        let text =
            fs::read_to_string(path).with_context(|| format!("cannot read deploy file {label}"))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let (file, parse_errors, sources) = match ferry_deploy::parse_with_errors(&label, &text) {
            Ok((file, _)) => {
                let sources = load_sources(&base, &file.manifest_paths())?;
                (Some(file), Vec::new(), sources)
            }
            Err(diags) => (None, diags.items().to_vec(), Vec::new()),
        };
        Ok(DeployInput {
            label,
            base,
            text,
            file,
            parse_errors,
            sources,
        })
    }

    /// The file's name without its folder, as sent to the API.
    pub fn file_name(&self) -> String {
        Path::new(&self.label)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| self.label.clone())
    }

    /// Prints every diagnostic to stderr: the deploy file (`sent_name` is how the API names
    /// it) as the user named it, manifests beside it. Returns exit code 1.
    pub fn report(&self, diags: &[Diagnostic], sent_name: &str) -> ExitCode {
        for d in diags {
            let mut d = d.clone();
            if d.file == sent_name || d.file == self.label {
                d.file = self.label.clone();
            } else {
                d.file = self.base.join(&d.file).display().to_string();
            }
            eprintln!("{d}");
        }
        ExitCode::FAILURE
    }
}

/// The caller's overrides from the command line.
pub fn overrides(args: &ValidateArgs) -> anyhow::Result<Overrides> {
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
