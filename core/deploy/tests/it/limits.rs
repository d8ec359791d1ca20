//! The resource limits: each is refused with a diagnostic at its place (never a panic, an
//! overflow later, or a slow or large parse), and the largest value allowed still works.

use ferry_deploy::limits::{
    MAX_CONTEXT_ENTRIES, MAX_CONTEXT_VALUE_BYTES, MAX_DURATION_SECS, MAX_OBJECTS_PER_TARGET,
    MAX_SOURCES, MAX_STEPS, MAX_TARGETS,
};
use ferry_deploy::{Overrides, Pause, Source, Step, Strategy};

use crate::support::{app_sources, assert_error, errors, valid};

/// A valid file to which the tests append sections (lines 1-7).
const BASE: &str = "application: hello-ferry
targets:
  dev:
    account: dev-cluster
    namespace: hello-dev
manifests:
  - path: manifests/app.yaml
";

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

/// An alias to a 64 KiB string repeated 50,000 times (3 GiB once expanded) is refused at
/// an alias near the top, with its position, as a syntax error of the file.
#[test]
fn an_alias_bomb_is_refused_at_its_position() {
    let mut text = with(&format!(
        "description: &d '{}'\ncontext:\n",
        "x".repeat(65_536)
    ));
    for i in 0..50_000 {
        text.push_str(&format!("  k{i}: *d\n"));
    }
    let d = ferry_deploy::parse("deploy.yml", &text).unwrap_err();
    assert_eq!(d.len(), 1, "{d}");
    let e = &d.items()[0];
    assert_eq!(e.path, "syntax");
    assert!(
        e.message
            .contains("anchors and aliases expand the document too much"),
        "{e}"
    );
    // Line 9 holds the first alias; the refusal comes within the first hundred.
    assert!((9..109).contains(&e.line), "{e}");
}

#[test]
fn huge_mappings_and_lists_are_refused_at_their_key() {
    // 60,000 context variables: refused by count (and fast: duplicate keys are found with a
    // set, not by comparing every pair).
    let mut text = with("context:\n");
    for i in 0..60_000 {
        text.push_str(&format!("  k{i}: v\n"));
    }
    let d = errors(&text);
    assert_error(
        &d,
        "context",
        9,
        &format!("60000 context variables: at most {MAX_CONTEXT_ENTRIES}"),
    );

    let mut text =
        String::from("application: a\nmanifests: [{path: manifests/app.yaml}]\ntargets:\n");
    for i in 0..=MAX_TARGETS {
        text.push_str(&format!("  t{i}: {{account: a, namespace: n}}\n"));
    }
    assert_error(&errors(&text), "targets", 4, "501 targets: at most 500");

    let mut text = String::from(
        "application: a
targets:
  dev: {account: c, namespace: n, strategy: c}
manifests: [{path: manifests/app.yaml}]
strategies:
  c:
    canary:
      steps:
",
    );
    for _ in 0..=MAX_STEPS {
        text.push_str("        - setWeight: 10\n");
    }
    assert_error(
        &errors(&text),
        "strategies.c.canary.steps",
        9,
        "1001 steps: at most 1000",
    );
}

#[test]
fn context_values_are_capped_at_their_value() {
    let long = "v".repeat(MAX_CONTEXT_VALUE_BYTES + 1);
    let d = errors(&with(&format!("context:\n  small: s\n  big: {long}\n")));
    assert_error(
        &d,
        "context.big",
        10,
        "the value of \"big\" is 16385 bytes long: at most 16 KiB",
    );
    let fine = "v".repeat(MAX_CONTEXT_VALUE_BYTES);
    valid(&with(&format!("context:\n  big: {fine}\n")));

    // The caller's context (--add-context, the API's overrides) follows the same limits.
    let text = with("");
    let overrides = Overrides {
        context: vec![("big".into(), long.clone())],
        ..Default::default()
    };
    let d = ferry_deploy::check("deploy.yml", &text, &app_sources(), &overrides).unwrap_err();
    assert_error(
        &d,
        "context",
        1,
        "the caller's context (--add-context): the value of \"big\" is 16385 bytes long",
    );
    let overrides = Overrides {
        context: (0..=MAX_CONTEXT_ENTRIES)
            .map(|i| (format!("k{i}"), "v".into()))
            .collect(),
        ..Default::default()
    };
    let d = ferry_deploy::check("deploy.yml", &text, &app_sources(), &overrides).unwrap_err();
    assert_error(&d, "context", 1, "has 501 variables: at most 500");
}

/// A context value referenced many times would render a manifest far larger than it is
/// written: refused when planning, before anything is stored or rendered.
#[test]
fn rendered_manifests_are_capped() {
    let value = "x".repeat(MAX_CONTEXT_VALUE_BYTES);
    let refs = "{{context.big}}".repeat(200);
    let config_map = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: blown\ndata:\n  a: \"{refs}\"\n"
    );
    let mut sources = app_sources();
    sources.push(Source {
        path: "manifests/blown.yaml".into(),
        content: config_map,
    });
    let text = format!("{BASE}  - path: manifests/blown.yaml\ncontext:\n  big: {value}\n");
    let d = ferry_deploy::check("deploy.yml", &text, &sources, &Overrides::default()).unwrap_err();
    assert_error(
        &d,
        "targets.dev",
        3,
        "manifest manifests/blown.yaml (ConfigMap blown) may render to",
    );
    assert!(d.to_string().contains("at most 3 MiB per object"), "{d}");

    // Too many objects for one target.
    let mut inline = String::new();
    for i in 0..=MAX_OBJECTS_PER_TARGET {
        inline.push_str(&format!(
            "      ---\n      {{apiVersion: v1, kind: ConfigMap, metadata: {{name: c{i}}}}}\n"
        ));
    }
    let text = format!("{BASE}  - inline: |\n{inline}");
    assert_error(
        &errors(&text),
        "targets.dev",
        3,
        "target \"dev\" deploys 5003 Kubernetes objects: at most 5000",
    );

    // Too many files sent.
    let many: Vec<Source> = (0..=MAX_SOURCES)
        .map(|i| Source {
            path: format!("manifests/m{i}.yaml"),
            content: String::new(),
        })
        .collect();
    let d = ferry_deploy::check("deploy.yml", BASE, &many, &Overrides::default()).unwrap_err();
    assert_error(
        &d,
        "manifests",
        1,
        "10001 manifest files were sent: at most 10000",
    );
}

/// Durations that would overflow a deadline (`now + duration`) later are refused when the
/// file is read; a year is the most any may be.
#[test]
fn durations_are_capped_where_they_are_written() {
    let canary = |step: &str| {
        format!(
            "application: a
targets:
  dev: {{account: c, namespace: n, strategy: s}}
manifests:
  - path: manifests/app.yaml
strategies:
  s:
    canary:
      steps:
        - {step}
"
        )
    };
    let d = errors(&canary("pause: {duration: 4294967295, unit: hours}"));
    assert_error(
        &d,
        "strategies.s.canary.steps[0].pause.duration",
        10,
        "4294967295 is out of range: must be between 0 and 31536000",
    );
    let d = errors(&canary("pause: {duration: 8761, unit: hours}"));
    assert_error(
        &d,
        "strategies.s.canary.steps[0].pause.duration",
        10,
        "8761 hours is too long: at most 365 days",
    );
    let plan = valid(&canary("pause: {duration: 8760, unit: hours}"));
    let Strategy::Canary { steps } = &plan.targets[0].strategy else {
        panic!("not a canary")
    };
    assert_eq!(
        steps[0],
        Step::Pause {
            pause: Pause::Duration(MAX_DURATION_SECS)
        }
    );

    let d = errors(&canary(
        "pause: {untilApproved: true, approvalExpiration: {duration: 525601, unit: minutes}}",
    ));
    assert_error(
        &d,
        "strategies.s.canary.steps[0].pause.approvalExpiration.duration",
        10,
        "31536060 seconds is too long: at most 365 days",
    );

    let d = errors(&with(
        "deploymentConfig:\n  timeout: {duration: 9000, unit: hours}\n",
    ));
    assert_error(
        &d,
        "deploymentConfig.timeout.duration",
        9,
        "375 days is too long",
    );

    let analysis = |interval: &str, runs: u32| {
        format!(
            "application: a
targets:
  dev: {{account: c, namespace: n, strategy: s}}
manifests:
  - path: manifests/app.yaml
analysis:
  queries:
    - {{name: q, queryTemplate: x, upperLimit: 1, metricProviderName: p}}
strategies:
  s:
    canary:
      steps:
        - analysis: {{queries: [q], {interval}, numberOfJudgmentRuns: {runs}}}
"
        )
    };
    let d = errors(&analysis("interval: 9000, units: hours", 1));
    assert_error(
        &d,
        "strategies.s.canary.steps[0].analysis.interval",
        13,
        "375 days is too long",
    );
    let d = errors(&analysis("interval: 1, units: hours", 9000));
    assert_error(
        &d,
        "strategies.s.canary.steps[0].analysis",
        13,
        "9000 judgment runs of 1 hours take longer than 365 days",
    );
    valid(&analysis("interval: 1, units: hours", 8760));
}
