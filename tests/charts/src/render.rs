//! Rendering a chart with Helm's engine and validating every object, by `render.py` (Python:
//! the PyPI packages helm-python-sdk, Helm v4's Go SDK, and kubernetes-validate, which
//! `scripts/deps.sh` installs).

use crate::workspace;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};

/// The Kubernetes versions every object is validated against: the oldest the charts support
/// (their `kubeVersion`) and the newest the validator knows.
pub const KUBE_VERSIONS: &[&str] = &["1.29", "1.37"];

/// A chart rendered with some values.
#[derive(Debug)]
pub struct Rendered {
    /// Every object, with `_template` naming the template it came from.
    pub objects: Vec<Value>,
    /// The rendered NOTES.txt.
    pub notes: String,
    /// Objects that fail the Kubernetes schemas (or are not YAML), one line each.
    pub invalid: Vec<String>,
    /// `helm lint --strict` warnings and errors.
    pub lint: Vec<String>,
}

impl Rendered {
    /// The objects of `kind`.
    pub fn kind(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    /// The object of `kind` named `name`.
    pub fn get(&self, kind: &str, name: &str) -> &Value {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind}/{name} among {:?}", self.names()))
    }

    /// `Kind/name` of every object.
    pub fn names(&self) -> Vec<String> {
        self.objects
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or("?"),
                    o["metadata"]["name"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }
}

/// Why a chart did not render.
#[derive(Debug)]
pub enum Refused {
    /// The values failed values.schema.json.
    Schema(String),
    /// A template failed (`fail`, `required`, a bad expression).
    Render(String),
}

impl Refused {
    /// The message, whichever stage refused.
    pub fn message(&self) -> &str {
        match self {
            Refused::Schema(m) | Refused::Render(m) => m,
        }
    }
}

/// Renders `chart` (a folder under helm/) as release `release` in `namespace` with `values`.
/// Panics when the tools are missing (run scripts/deps.sh).
pub fn render(
    chart: &str,
    release: &str,
    namespace: &str,
    values: &Value,
) -> Result<Rendered, Refused> {
    let request = json!({
        "chart": workspace::root().join("helm").join(chart),
        "release": release,
        "namespace": namespace,
        "values": values,
        "kube_versions": KUBE_VERSIONS,
    });
    let answer = run_helper(&[], Some(&request.to_string()));
    match answer["ok"].as_bool() {
        Some(true) => Ok(Rendered {
            objects: answer["objects"].as_array().cloned().unwrap_or_default(),
            notes: answer["notes"].as_str().unwrap_or_default().to_string(),
            invalid: strings(&answer["invalid"]),
            lint: strings(&answer["lint"]),
        }),
        _ => {
            let error = answer["error"].as_str().unwrap_or_default().to_string();
            match answer["stage"].as_str() {
                Some("schema") => Err(Refused::Schema(error)),
                Some("render") => Err(Refused::Render(error)),
                _ => panic!("render.py could not run: {error}"),
            }
        }
    }
}

/// A YAML file of the repository as JSON (through PyYAML, which `render.py` uses anyway).
pub fn yaml_file(relative: &str) -> Value {
    let path = workspace::root().join(relative);
    run_helper(&["yaml", path.to_str().unwrap()], None)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn run_helper(args: &[&str], stdin: Option<&str>) -> Value {
    let python = std::env::var("FERRY_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = workspace::root().join("tests/charts/render.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("starting {python} (set FERRY_PYTHON, or run scripts/deps.sh): {e}")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} {} failed: {}",
        python,
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "render.py printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
