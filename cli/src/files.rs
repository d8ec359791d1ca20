//! Reading what a deploy is made of from disk: the deploy file, every manifest it names
//! (relative to the file; folders read recursively, YAML files only), the caller's overrides
//! (`--application`, `--add-context`, `--target`), and printing diagnostics with the manifest
//! paths shown relative to the current directory.
//!
//! Manifest paths stay inside the deploy file's repository (the git work tree holding it, else
//! its folder): a deploy file from a pull request must not make CI read and send the runner's
//! other files. `..` and absolute paths are resolved, symbolic links followed, and the real
//! path checked; a symbolic-link loop is named instead of followed forever.
//! `--allow-outside-repo` lifts the boundary (never the loop check).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use ferry_deploy::{Diagnostic, Overrides, Source};

use crate::args::ValidateArgs;

/// A deploy file and its local manifests, as read from disk.
#[derive(Debug)]
pub(crate) struct DeployInput {
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
    /// Reads the deploy file `path` and the manifests it names, which must stay inside its
    /// repository unless `allow_outside_repo`. Missing manifests are left to the validator,
    /// which reports them at their entry in the deploy file.
    pub(crate) fn read(path: &Path, allow_outside_repo: bool) -> anyhow::Result<DeployInput> {
        let label = path.display().to_string();
        let text =
            fs::read_to_string(path).with_context(|| format!("cannot read deploy file {label}"))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let (file, parse_errors, sources) = match ferry_deploy::parse_with_errors(&label, &text) {
            Ok((file, _)) => {
                let boundary = Boundary::of(&base, allow_outside_repo)?;
                let sources = load_sources(&base, &file.manifest_paths(), &boundary)?;
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
    pub(crate) fn file_name(&self) -> String {
        Path::new(&self.label)
            .file_name()
            .map_or_else(|| self.label.clone(), |n| n.to_string_lossy().to_string())
    }

    /// Prints every diagnostic to stderr: the deploy file (`sent_name` is how the API names
    /// it) as the user named it, manifests beside it. Returns exit code 1.
    pub(crate) fn report(&self, diags: &[Diagnostic], sent_name: &str) -> ExitCode {
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
pub(crate) fn overrides(args: &ValidateArgs) -> anyhow::Result<Overrides> {
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

/// Where manifest paths may lead.
#[derive(Debug)]
struct Boundary {
    /// The repository's real path (symbolic links resolved).
    root: PathBuf,
    /// False with `--allow-outside-repo`.
    enforced: bool,
}

impl Boundary {
    /// The repository of a deploy file in `base`: the nearest folder up from it holding `.git`
    /// (a folder, or a file in worktrees and submodules), else `base` itself.
    fn of(base: &Path, allow_outside_repo: bool) -> anyhow::Result<Boundary> {
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        let dir = fs::canonicalize(base).with_context(|| {
            format!("cannot resolve the deploy file's folder {}", base.display())
        })?;
        let root = dir
            .ancestors()
            .find(|a| a.join(".git").exists())
            .unwrap_or(&dir)
            .to_path_buf();
        Ok(Boundary {
            root,
            enforced: !allow_outside_repo,
        })
    }

    /// Refuses `real`, reached from the entry `rel` (through the path `through` inside a
    /// directory it names), outside the repository.
    fn check(&self, rel: &str, through: Option<&Path>, real: &Path) -> anyhow::Result<()> {
        if !self.enforced || real.starts_with(&self.root) {
            return Ok(());
        }
        let via = through
            .map(|p| format!(" (through {})", p.display()))
            .unwrap_or_default();
        bail!(
            "manifest path \"{rel}\"{via} leads to {}, outside the deploy file's repository {}; \
             pass --allow-outside-repo to read it anyway",
            real.display(),
            self.root.display()
        )
    }
}

/// Whether an error is ELOOP, too many symbolic links (Linux's number, else the BSDs' and
/// macOS's).
fn is_symlink_loop(e: &io::Error) -> bool {
    let eloop = if cfg!(any(target_os = "linux", target_os = "android")) {
        40
    } else {
        62
    };
    e.raw_os_error() == Some(eloop)
}

/// The real path of `path` (every symbolic link resolved); `None` when it does not exist.
fn resolve(rel: &str, path: &Path) -> anyhow::Result<Option<PathBuf>> {
    match fs::canonicalize(path) {
        Ok(real) => Ok(Some(real)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if is_symlink_loop(&e) => bail!(
            "manifest path \"{rel}\": {} is a symbolic link loop (its links lead back to \
             themselves)",
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot resolve manifest {}", path.display())),
    }
}

/// Reads the manifests the deploy file names. Paths that do not exist are skipped: the planner
/// reports them with their position in the deploy file.
fn load_sources(base: &Path, paths: &[String], boundary: &Boundary) -> anyhow::Result<Vec<Source>> {
    let mut out = Vec::new();
    for rel in paths {
        let full = base.join(rel);
        let Some(real) = resolve(rel, &full)? else {
            continue;
        };
        boundary.check(rel, None, &real)?;
        if real.is_dir() {
            let mut walk = Walk {
                entry: rel,
                boundary,
                open: vec![real],
                out: &mut out,
            };
            walk.dir(&full, rel)?;
        } else if real.is_file() {
            out.push(read(&full, rel)?);
        }
    }
    Ok(out)
}

/// A recursive read of one directory entry of `manifests`.
struct Walk<'a> {
    /// The entry as the deploy file writes it, for messages.
    entry: &'a str,
    boundary: &'a Boundary,
    /// Real paths of the directories being read, outermost first: a directory reached again
    /// inside itself is a symbolic-link loop.
    open: Vec<PathBuf>,
    out: &'a mut Vec<Source>,
}

impl Walk<'_> {
    fn dir(&mut self, dir: &Path, rel: &str) -> anyhow::Result<()> {
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
            let Some(real) = resolve(self.entry, &path)? else {
                if ferry_deploy::manifests::is_yaml(&name) {
                    bail!(
                        "cannot read manifest {}: a symbolic link to nothing",
                        path.display()
                    );
                }
                continue;
            };
            if real.is_dir() {
                self.boundary.check(self.entry, Some(&path), &real)?;
                if let Some(outer) = self.open.iter().find(|o| **o == real) {
                    bail!(
                        "manifest path \"{}\": {} is a symbolic link loop (it leads back to \
                         {}, which contains it)",
                        self.entry,
                        path.display(),
                        outer.display()
                    );
                }
                self.open.push(real);
                self.dir(&path, &child)?;
                self.open.pop();
            } else if ferry_deploy::manifests::is_yaml(&name) {
                self.boundary.check(self.entry, Some(&path), &real)?;
                self.out.push(read(&path, &child)?);
            }
        }
        Ok(())
    }
}

fn read(path: &Path, rel: &str) -> anyhow::Result<Source> {
    // A device or a pipe (`/dev/zero`, a FIFO) would never end.
    if !path.is_file() {
        bail!("manifest {} is not a regular file", path.display());
    }
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
            add_context: context.iter().map(ToString::to_string).collect(),
            targets: vec!["prod".into()],
            allow_outside_repo: false,
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

    /// A scratch folder for one test, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("ferry-cli-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(fs::canonicalize(&dir).unwrap())
        }

        fn file(&self, rel: &str, content: &str) -> PathBuf {
            let path = self.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, content).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const CONFIG_MAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";

    fn deploy_file(scratch: &Scratch, rel: &str, paths: &[&str]) -> PathBuf {
        let entries: String = paths.iter().map(|p| format!("  - path: {p}\n")).collect();
        scratch.file(
            rel,
            &format!(
                "application: a\ntargets:\n  dev: {{account: c, namespace: n}}\nmanifests:\n{entries}"
            ),
        )
    }

    fn read_err(path: &Path) -> String {
        format!("{:#}", DeployInput::read(path, false).unwrap_err())
    }

    #[test]
    fn manifests_inside_the_repository_are_read_wherever_they_sit_in_it() {
        let s = Scratch::new("inside");
        fs::create_dir_all(s.0.join("repo/.git")).unwrap();
        s.file("repo/shared/base.yaml", CONFIG_MAP);
        s.file("repo/app/manifests/app.yaml", CONFIG_MAP);
        let abs = s.0.join("repo/shared/base.yaml").display().to_string();
        let deploy = deploy_file(
            &s,
            "repo/app/deploy.yml",
            &["manifests", "../shared/base.yaml", &abs],
        );
        let input = DeployInput::read(&deploy, false).unwrap();
        let paths: Vec<&str> = input.sources.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            ["manifests/app.yaml", "../shared/base.yaml", abs.as_str()]
        );
    }

    #[test]
    fn dot_dot_and_absolute_paths_leaving_the_repository_are_refused_unless_allowed() {
        let s = Scratch::new("escape");
        fs::create_dir_all(s.0.join("repo/.git")).unwrap();
        s.file("secret.yaml", CONFIG_MAP);
        let deploy = deploy_file(&s, "repo/deploy.yml", &["../secret.yaml"]);
        let err = read_err(&deploy);
        assert!(
            err.contains("manifest path \"../secret.yaml\" leads to"),
            "{err}"
        );
        assert!(
            err.contains("outside the deploy file's repository"),
            "{err}"
        );
        assert!(err.contains("--allow-outside-repo"), "{err}");
        let input = DeployInput::read(&deploy, true).unwrap();
        assert_eq!(input.sources.len(), 1);

        let abs = s.0.join("secret.yaml").display().to_string();
        let deploy = deploy_file(&s, "repo/deploy.yml", &[&abs]);
        assert!(read_err(&deploy).contains("outside the deploy file's repository"));
        let deploy = deploy_file(&s, "repo/deploy.yml", &["/"]);
        assert!(read_err(&deploy).contains("outside the deploy file's repository"));

        // Outside git, the deploy file's folder is the boundary.
        let s = Scratch::new("no-git");
        s.file("secret.yaml", CONFIG_MAP);
        s.file("app/manifests/app.yaml", CONFIG_MAP);
        let deploy = deploy_file(&s, "app/deploy.yml", &["manifests", "../secret.yaml"]);
        assert!(read_err(&deploy).contains("\"../secret.yaml\" leads to"));
        // Missing paths are still left to the validator.
        let deploy = deploy_file(&s, "app/deploy.yml", &["manifests", "nowhere.yaml"]);
        assert_eq!(DeployInput::read(&deploy, false).unwrap().sources.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_are_resolved_and_checked_and_loops_named() {
        use std::os::unix::fs::symlink;
        let s = Scratch::new("links");
        fs::create_dir_all(s.0.join("repo/.git")).unwrap();
        s.file("outside/secret.yaml", CONFIG_MAP);
        s.file("repo/manifests/app.yaml", CONFIG_MAP);
        s.file("repo/other/extra.yaml", CONFIG_MAP);
        // Inside the repository, a link is fine.
        symlink(s.0.join("repo/other"), s.0.join("repo/manifests/other")).unwrap();
        let deploy = deploy_file(&s, "repo/deploy.yml", &["manifests"]);
        let input = DeployInput::read(&deploy, false).unwrap();
        let paths: Vec<&str> = input.sources.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["manifests/app.yaml", "manifests/other/extra.yaml"]);

        // A link in a manifest folder to a file or a folder outside it is refused.
        symlink(
            s.0.join("outside/secret.yaml"),
            s.0.join("repo/manifests/leak.yaml"),
        )
        .unwrap();
        let err = read_err(&deploy);
        assert!(err.contains("through"), "{err}");
        assert!(err.contains("leak.yaml"), "{err}");
        assert!(
            err.contains("outside the deploy file's repository"),
            "{err}"
        );
        fs::remove_file(s.0.join("repo/manifests/leak.yaml")).unwrap();
        symlink(s.0.join("outside"), s.0.join("repo/manifests/leak")).unwrap();
        assert!(read_err(&deploy).contains("outside the deploy file's repository"));
        assert_eq!(DeployInput::read(&deploy, true).unwrap().sources.len(), 3);
        fs::remove_file(s.0.join("repo/manifests/leak")).unwrap();

        // A folder linking back to its parent: named, not followed forever, even when allowed.
        symlink(s.0.join("repo/manifests"), s.0.join("repo/manifests/again")).unwrap();
        for allowed in [false, true] {
            let err = format!("{:#}", DeployInput::read(&deploy, allowed).unwrap_err());
            assert!(err.contains("is a symbolic link loop"), "{err}");
            assert!(err.contains("manifests/again"), "{err}");
        }
        fs::remove_file(s.0.join("repo/manifests/again")).unwrap();

        // Links that point at each other.
        symlink(s.0.join("repo/b.yaml"), s.0.join("repo/a.yaml")).unwrap();
        symlink(s.0.join("repo/a.yaml"), s.0.join("repo/b.yaml")).unwrap();
        let deploy = deploy_file(&s, "repo/deploy.yml", &["a.yaml"]);
        let err = read_err(&deploy);
        assert!(err.contains("a.yaml is a symbolic link loop"), "{err}");
    }
}
