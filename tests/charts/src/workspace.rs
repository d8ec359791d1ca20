//! The repository: where it is, and the binaries its crates build.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The repository's root (two levels above this crate).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// A file of the repository, read whole.
pub fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The value of `key = "…"` on a line of a TOML section's text.
fn toml_string<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let rest = line
            .trim()
            .strip_prefix(key)?
            .trim_start()
            .strip_prefix('=')?;
        rest.trim().strip_prefix('"')?.strip_suffix('"')
    })
}

/// The workspace members listed in the root Cargo.toml.
pub fn members() -> Vec<String> {
    let manifest = read("Cargo.toml");
    let start = manifest.find("members = [").expect("workspace members");
    let list = &manifest[start..manifest[start..].find(']').map(|e| start + e).unwrap()];
    list.lines()
        .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
        .map(str::to_string)
        .collect()
}

/// Every binary the workspace builds: `[[bin]]` names, and the package name of a package whose
/// `src/main.rs` is its implicit binary.
pub fn binaries() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for member in members() {
        let manifest = read(&format!("{member}/Cargo.toml"));
        let mut explicit_main = false;
        for section in manifest.split("\n[").skip(1) {
            if section.starts_with("[bin]]") {
                if let Some(name) = toml_string(section, "name") {
                    out.insert(name.to_string());
                }
                explicit_main |= toml_string(section, "path") == Some("src/main.rs");
            }
        }
        if !explicit_main && root().join(&member).join("src/main.rs").exists() {
            let package = manifest.split("\n[").next().unwrap_or_default();
            if let Some(name) = toml_string(package, "name") {
                out.insert(name.to_string());
            }
        }
    }
    out
}
