//! The deploy file's JSON Schema, checked with a real validator: it is a valid draft-07 schema,
//! every file the parser accepts validates (the examples, the Armory-lenient file, every file
//! another test finds valid through `support::valid`, and mutations of them), and files whose
//! error is structural (unknown key, wrong type, missing required key, bad enum value, value out
//! of range) fail it.

use std::fs;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::Value;

use crate::support::deploy_files;

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::draft7::new(&ferry_deploy::json_schema()).expect("the schema compiles")
    })
}

/// The file as the YAML language server sees it: YAML 1.2 core schema typing.
fn as_json(text: &str) -> Value {
    let docs = ferry_deploy::node::load(text).expect("YAML");
    docs.first()
        .map_or(Value::Null, ferry_deploy::node::Node::to_json)
}

/// The schema's complaints about `text`, one line each.
fn schema_errors(text: &str) -> Vec<String> {
    let json = as_json(text);
    validator()
        .iter_errors(&json)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Panics unless the schema accepts `text`.
pub(crate) fn assert_schema_accepts(text: &str) {
    let errors = schema_errors(text);
    assert!(
        errors.is_empty(),
        "the parser accepts this file but the schema does not:\n{}\n---\n{text}",
        errors.join("\n")
    );
}

/// Panics unless the schema refuses `text`.
fn assert_schema_refuses(text: &str, why: &str) {
    assert!(
        !schema_errors(text).is_empty(),
        "the schema accepts a file with {why}:\n{text}"
    );
}

#[test]
fn the_schema_is_a_valid_draft_7_schema() {
    let schema = ferry_deploy::json_schema();
    if let Err(e) = jsonschema::draft7::meta::validate(&schema) {
        panic!("not a valid draft-07 schema: {e}");
    }
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
}

#[test]
fn every_valid_example_and_the_armory_file_validate() {
    let files = deploy_files("hello-ferry");
    assert_eq!(files.len(), 7);
    for path in files {
        let text = fs::read_to_string(&path).unwrap();
        assert!(ferry_deploy::parse("deploy.yml", &text).is_ok());
        assert_schema_accepts(&text);
    }
    assert!(ferry_deploy::parse("deploy.yml", crate::armory::LENIENT).is_ok());
    assert_schema_accepts(crate::armory::LENIENT);
}

/// The invalid examples, by whether their error is one of shape (the schema must refuse them)
/// or needs the whole file (a name that must exist, a cycle: the schema cannot see it).
const STRUCTURAL: &[&str] = &[
    "pause-both.yml",
    "query-without-limits.yml",
    "unknown-key.yml",
    "weight-out-of-range.yml",
];
const SEMANTIC: &[&str] = &[
    "depends-cycle.yml",
    "manifest-unknown-target.yml",
    "unknown-query.yml",
    "unknown-strategy.yml",
    "unknown-webhook.yml",
];

#[test]
fn invalid_examples_with_a_structural_error_fail_the_schema() {
    for path in deploy_files("invalid") {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(&path).unwrap();
        if name == "bad-yaml.yml" {
            continue; // not YAML: nothing for a schema to see
        }
        if STRUCTURAL.contains(&name.as_str()) {
            assert_schema_refuses(&text, &name);
        } else {
            assert!(
                SEMANTIC.contains(&name.as_str()),
                "classify {name} as structural or semantic"
            );
            // Its shape is right: the schema (which sees one file's shape) accepts it.
            assert_schema_accepts(&text);
        }
    }
}

const BASE: &str = "version: v1
kind: kubernetes
application: hello-ferry
targets:
  dev:
    account: dev-cluster
    namespace: hello-dev
    strategy: s
manifests:
  - path: manifests/app.yaml
strategies:
  s:
    canary:
      steps:
        - setWeight:
            weight: 50
        - pause:
            duration: 1
            unit: minutes
        - analysis:
            interval: 30
            units: seconds
            numberOfJudgmentRuns: 2
            lookbackMethod: sliding
            queries: [q]
analysis:
  defaultMetricProviderName: prom
  queries:
    - name: q
      queryTemplate: x
      upperLimit: 1
webhooks:
  - name: w
    uriTemplate: https://ci.example/run
    method: POST
";

/// Each spelling the parser accepts, applied to [`BASE`]: parser and schema both accept it.
#[test]
fn the_leniencies_the_parser_accepts_validate() {
    assert!(ferry_deploy::parse("deploy.yml", BASE).is_ok());
    assert_schema_accepts(BASE);
    let cases: &[(&str, &str)] = &[
        ("application: hello-ferry", "application: Potato Facts"),
        ("application: hello-ferry", "application: my.app_v2"),
        ("kind: kubernetes", "kind: Kubernetes"),
        ("weight: 50", "weight: \"50\""),
        (
            "        - setWeight:\n            weight: 50",
            "        - setWeight: 25",
        ),
        ("unit: minutes", "units: MINUTES"),
        ("unit: minutes", "Unit: Minutes"),
        ("units: seconds", "unit: SECONDS"),
        ("units: seconds", "UNITS: seconds"),
        ("lookbackMethod: sliding", "lookbackMethod: GROWING"),
        ("method: POST", "method: get"),
        ("numberOfJudgmentRuns: 2", "numberOfJudgmentRuns: '2'"),
        ("upperLimit: 1", "upperLimit: \"1.5\""),
        ("upperLimit: 1", "upperLimit: 0.5e1"),
        (
            "  s:\n",
            "  bg:\n    blueGreen:\n      activeService: web\n      shutdownOldVersionAfter:\n        - pause: {duration: 1, unit: seconds}\n  s:\n",
        ),
        (
            "        - pause:\n            duration: 1\n            unit: minutes",
            "        - pause:\n            untilApproved: \"True\"\n            approvalDuration:\n              duration: 2\n              Units: hours\n              requiresRoles: [Release Manager]",
        ),
        (
            "        - pause:\n            duration: 1\n            unit: minutes",
            "        - pause:\n            untilApproved: false\n            duration: 1\n            unit: minutes",
        ),
        (
            "application: hello-ferry\n",
            "application: hello-ferry\ncontext:\n  - key: owner\n    value: team\n  - key: n\n    value: 3\n",
        ),
        (
            "application: hello-ferry\n",
            "application: hello-ferry\ncontext:\n  owner: team\n  slo: 99.5\n  on: true\n",
        ),
        (
            "webhooks:\n",
            "trafficManagement:\n  targets: [dev]\n  smi:\n    - rootServiceName: web\nwebhooks:\n",
        ),
        (
            "webhooks:\n",
            "trafficManagement:\n  - kubernetes:\n      - activeService: web\n      - previewService: web-preview\nwebhooks:\n",
        ),
        (
            "    strategy: s\n",
            "    strategy: s\n    constraints:\n      beforeDeployment:\n        - analysis: {interval: 1, Units: Minutes, queries: [q]}\n",
        ),
        (
            "      upperLimit: 1\n",
            "      judge:\n        direction: Either\n        confidence: 0.9\n        critical: TRUE\n",
        ),
        ("    namespace: hello-dev\n", "    namespace: 2024\n"),
    ];
    for (from, to) in cases {
        assert!(BASE.contains(from), "{from}");
        let text = BASE.replacen(from, to, 1);
        if let Err(d) = ferry_deploy::parse("deploy.yml", &text) {
            panic!("the parser refuses {to:?}:\n{d}");
        }
        assert_schema_accepts(&text);
    }
}

/// Each structural error applied to [`BASE`]: parser and schema both refuse it.
#[test]
fn structural_errors_fail_the_schema() {
    assert!(ferry_deploy::parse("deploy.yml", BASE).is_ok());
    let cases: &[(&str, &str, &str)] = &[
        // Unknown keys, at every depth.
        (
            "kind: kubernetes",
            "kind: kubernetes\nstratgies: {}",
            "an unknown top-level key",
        ),
        (
            "    namespace: hello-dev",
            "    namespace: hello-dev\n    acount: x",
            "an unknown target key",
        ),
        (
            "            weight: 50",
            "            weight: 50\n            wieght: 5",
            "an unknown setWeight key",
        ),
        (
            "      upperLimit: 1",
            "      upperLimit: 1\n      upperlimit: 2",
            "a wrongly cased key",
        ),
        (
            "        - setWeight:",
            "        - setweight: 1\n        - setWeight:",
            "an unknown step kind",
        ),
        (
            "    method: POST",
            "    method: POST\n    retries: 2",
            "an unknown webhook key",
        ),
        // Wrong types.
        ("weight: 50", "weight: fifty", "a word for a number"),
        ("weight: 50", "weight: 1.5", "a fraction for an integer"),
        ("upperLimit: 1", "upperLimit: lots", "a word for a limit"),
        (
            "    account: dev-cluster",
            "    account: [a, b]",
            "a list for a string",
        ),
        (
            "    account: dev-cluster",
            "    account:",
            "nothing for a string",
        ),
        ("queries: [q]", "queries: q", "a string for a list"),
        (
            "manifests:\n  - path: manifests/app.yaml",
            "manifests:\n  path: manifests/app.yaml",
            "a mapping for a list",
        ),
        (
            "application: hello-ferry",
            "application: hello-ferry\ndescription: {a: b}",
            "a mapping for text",
        ),
        (
            "application: hello-ferry\n",
            "application: hello-ferry\ncontext: [a, b]\n",
            "a list of strings for context",
        ),
        (
            "    method: POST",
            "    method: POST\n    disableCallback: yes",
            "yes for a boolean",
        ),
        // Missing required keys.
        ("application: hello-ferry\n", "", "no application"),
        ("    account: dev-cluster\n", "", "a target without account"),
        (
            "            units: seconds\n",
            "",
            "an analysis without units",
        ),
        (
            "    uriTemplate: https://ci.example/run\n",
            "",
            "a webhook without uriTemplate",
        ),
        (
            "      queryTemplate: x\n",
            "",
            "a query without queryTemplate",
        ),
        (
            "            unit: minutes\n",
            "",
            "a pause with a duration but no unit",
        ),
        // Bad enum values, bad constants, values out of range.
        ("units: seconds", "units: fortnights", "an unknown unit"),
        (
            "lookbackMethod: sliding",
            "lookbackMethod: slidin",
            "an unknown lookback method",
        ),
        ("method: POST", "method: YEET", "an unknown HTTP method"),
        ("kind: kubernetes", "kind: lambda", "another kind"),
        ("version: v1", "version: v2", "another version"),
        ("weight: 50", "weight: 150", "a weight over 100"),
        (
            "numberOfJudgmentRuns: 2",
            "numberOfJudgmentRuns: 0",
            "zero judgment runs",
        ),
        (
            "application: hello-ferry",
            "application: \"a\\tb\"",
            "a control character in the name",
        ),
        // Shapes: exactly one of, at least one of, the two forms of pause.
        (
            "            weight: 50",
            "            weight: 50\n          pause: {duration: 1, unit: seconds}",
            "a step of two kinds",
        ),
        (
            "  - path: manifests/app.yaml",
            "  - path: manifests/app.yaml\n    inline: x",
            "path and inline",
        ),
        ("      upperLimit: 1\n", "", "a query without limits"),
        (
            "            unit: minutes",
            "            unit: minutes\n            untilApproved: true",
            "a pause of both forms",
        ),
        (
            "            duration: 1\n            unit: minutes",
            "            requiresRoles: [x]",
            "a pause of neither form",
        ),
        (
            "    canary:\n",
            "    blueGreen: {activeService: web}\n    canary:\n",
            "a strategy of two kinds",
        ),
        (
            "targets:\n  dev:\n    account: dev-cluster\n    namespace: hello-dev\n    strategy: s\n",
            "targets: {}\n",
            "no targets",
        ),
    ];
    for (from, to, why) in cases {
        assert!(BASE.contains(from), "{from}");
        let text = BASE.replacen(from, to, 1);
        assert!(
            ferry_deploy::parse("deploy.yml", &text).is_err(),
            "the parser accepts a file with {why}"
        );
        assert_schema_refuses(&text, why);
    }
}

/// Edits of the valid files: every edited file the parser still accepts validates.
fn edit(text: &str, line: usize, how: u8) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let i = line % lines.len().max(1);
    let mut out: Vec<String> = lines.iter().map(std::string::ToString::to_string).collect();
    let Some(target) = out.get_mut(i) else {
        return text.to_string();
    };
    match how % 5 {
        0 => {
            out.remove(i);
        }
        1 => *target = target.to_uppercase(),
        2 => *target = target.to_lowercase(),
        // Quote the value: `key: value` → `key: "value"`.
        3 => {
            if let Some((k, v)) = target.split_once(": ")
                && !v.is_empty()
                && !v.contains('"')
            {
                *target = format!("{k}: \"{v}\"");
            }
        }
        _ => {
            let copy = target.clone();
            out.insert(i, copy);
        }
    }
    out.join("\n") + "\n"
}

fn valid_files() -> Vec<String> {
    let mut files: Vec<String> = deploy_files("hello-ferry")
        .into_iter()
        .map(|p| fs::read_to_string(p).unwrap())
        .collect();
    files.push(crate::armory::LENIENT.to_string());
    files.push(BASE.to_string());
    files
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn edited_files_the_parser_accepts_validate(
        file in 0usize..8,
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let files = valid_files();
        let mut text = files[file % files.len()].clone();
        for (line, how) in edits {
            text = edit(&text, line, how);
        }
        if ferry_deploy::parse("deploy.yml", &text).is_ok() {
            assert_schema_accepts(&text);
        }
    }
}
