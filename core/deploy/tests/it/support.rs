//! Shared helpers: locating the examples and loading the manifests a deploy file names (the
//! library is pure, so the tests do the file I/O a caller would).

use std::fs;
use std::path::{Path, PathBuf};

use ferry_deploy::{Diagnostics, Overrides, Plan, Source};

/// `examples/` at the repository root.
pub(crate) fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Every `.yml` deploy file in an examples folder, sorted.
pub(crate) fn deploy_files(folder: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(examples_dir().join(folder))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

fn collect(dir: &Path, rel: &str, out: &mut Vec<Source>) {
    let Ok(meta) = fs::metadata(dir) else { return };
    if meta.is_file() {
        out.push(Source {
            path: rel.to_string(),
            content: fs::read_to_string(dir).unwrap(),
        });
        return;
    }
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().to_string();
        let child = format!("{rel}/{name}");
        let path = entry.path();
        if path.is_dir() || name.ends_with(".yaml") || name.ends_with(".yml") {
            collect(&path, &child, out);
        }
    }
}

/// Loads the sources a deploy file's manifest entries name, as the CLI does.
pub(crate) fn sources_for(deploy: &Path, text: &str) -> Vec<Source> {
    let Ok(file) = ferry_deploy::parse("deploy.yml", text) else {
        return Vec::new();
    };
    let base = deploy.parent().unwrap();
    let mut out = Vec::new();
    for p in file.manifest_paths() {
        collect(&base.join(&p), &p, &mut out);
    }
    out
}

/// Checks an example file by path with its manifests loaded.
pub(crate) fn check_path(path: &Path) -> Result<Plan, Diagnostics> {
    let text = fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let sources = sources_for(path, &text);
    ferry_deploy::check(&name, &text, &sources, &Overrides::default())
}

/// The app manifests used by inline rule tests (Deployment + ConfigMap, and a Service).
pub(crate) fn app_sources() -> Vec<Source> {
    let dir = examples_dir().join("hello-ferry/manifests");
    vec![
        Source {
            path: "manifests/app.yaml".into(),
            content: fs::read_to_string(dir.join("app.yaml")).unwrap(),
        },
        Source {
            path: "manifests/service.yaml".into(),
            content: fs::read_to_string(dir.join("service.yaml")).unwrap(),
        },
    ]
}

/// Checks inline text against the app manifests; returns the diagnostics (panics if valid).
pub(crate) fn errors(text: &str) -> Diagnostics {
    match ferry_deploy::check("deploy.yml", text, &app_sources(), &Overrides::default()) {
        Ok(plan) => panic!("expected errors, got a plan:\n{}", plan.summary()),
        Err(d) => d,
    }
}

/// Checks inline text that must be valid, and that the JSON Schema accepts it too (so every
/// file a test finds valid also checks the schema is never stricter than the parser).
pub(crate) fn valid(text: &str) -> Plan {
    match ferry_deploy::check("deploy.yml", text, &app_sources(), &Overrides::default()) {
        Ok(plan) => {
            crate::schema::assert_schema_accepts(text);
            plan
        }
        Err(d) => panic!("expected a plan, got:\n{d}"),
    }
}

/// Asserts one diagnostic at `path` and `line` whose message contains `message`.
pub(crate) fn assert_error(diags: &Diagnostics, path: &str, line: usize, message: &str) {
    assert!(
        diags
            .items()
            .iter()
            .any(|d| d.path == path && d.line == line && d.message.contains(message)),
        "no diagnostic {path} at line {line} containing {message:?}; got:\n{diags}"
    );
}
