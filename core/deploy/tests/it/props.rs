//! Property tests: `parse` and `check` never panic, on arbitrary text and on mutated versions
//! of the example files (byte edits, line deletions, line duplications), and every diagnostic
//! they return points inside the text.

use std::fs;

use ferry_deploy::{Diagnostics, Overrides};
use proptest::prelude::*;

use crate::support::{app_sources, deploy_files};

fn examples() -> Vec<String> {
    ["hello-ferry", "invalid"]
        .iter()
        .flat_map(|f| deploy_files(f))
        .map(|p| fs::read_to_string(p).unwrap())
        .collect()
}

/// Diagnostics of the deploy file itself point at a real line.
fn positions_are_sane(text: &str, diags: &Diagnostics) {
    let lines = text.lines().count().max(1);
    for d in diags.items() {
        assert!(!d.path.is_empty(), "{d}");
        assert!(d.column >= 1, "{d}");
        if d.file == "deploy.yml" && d.path != "syntax" && !d.path.contains(".inline") {
            assert!(
                d.line >= 1 && d.line <= lines + 1,
                "{d} (file has {lines} lines)"
            );
        }
    }
}

fn run(text: &str) {
    if let Err(d) = ferry_deploy::parse("deploy.yml", text) {
        assert!(!d.is_empty());
        positions_are_sane(text, &d);
    }
    if let Err(d) = ferry_deploy::check("deploy.yml", text, &app_sources(), &Overrides::default()) {
        assert!(!d.is_empty());
        positions_are_sane(text, &d);
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    SetByte(usize, u8),
    DeleteLine(usize),
    DuplicateLine(usize),
    Insert(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (
            any::<usize>(),
            prop::sample::select(b" :-[]{}\"'#&*!|>\n\tax0.".to_vec())
        )
            .prop_map(|(i, b)| Mutation::SetByte(i, b)),
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), "[a-zA-Z:{}\\[\\] -]{0,12}").prop_map(|(i, s)| Mutation::Insert(i, s)),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    match m {
        Mutation::SetByte(i, b) => {
            let mut bytes = text.as_bytes().to_vec();
            if !bytes.is_empty() {
                let at = i % bytes.len();
                bytes[at] = *b;
            }
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        Mutation::DeleteLine(i) if !lines.is_empty() => {
            let at = i % lines.len();
            lines.remove(at);
        }
        Mutation::DuplicateLine(i) if !lines.is_empty() => {
            let at = i % lines.len();
            let line = lines[at].clone();
            lines.insert(at, line);
        }
        Mutation::Insert(i, s) => {
            let at = i % (lines.len() + 1);
            lines.insert(at, s.clone());
        }
        _ => {}
    }
    lines.join("\n")
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_text(text in "\\PC{0,300}") {
        run(&text);
    }

    #[test]
    fn never_panics_on_yaml_like_text(text in "([a-zA-Z]{1,8}:( [a-z0-9{}\\[\\],\\-]{0,10})?\n( {2,6}(- )?)?){0,20}") {
        run(&text);
    }

    #[test]
    fn never_panics_on_mutated_examples(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let all = examples();
        let mut text = which.get(&all).clone();
        for m in &mutations {
            text = apply(&text, m);
        }
        run(&text);
    }
}
