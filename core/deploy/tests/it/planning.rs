//! Planner rules: manifest sources (existence, directories, URLs, inline, namespaces, refused
//! kinds, apply order, parse errors), direct rollout, target order, filters and overrides.

use ferry_deploy::{Overrides, Source, Strategy};

use crate::support::{app_sources, assert_error, errors, valid};

fn source(path: &str, content: &str) -> Source {
    Source {
        path: path.into(),
        content: content.into(),
    }
}

const CRD_AND_NS: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
---
apiVersion: v1
kind: Namespace
metadata:
  name: hello-dev
";

#[test]
fn manifest_paths_lists_local_paths_normalised() {
    let file = ferry_deploy::parse(
        "deploy.yml",
        "application: a
targets:
  dev: {account: c, namespace: n}
manifests:
  - path: ./manifests/
  - path: manifests
  - path: https://example.com/app.yaml
  - inline: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: c}
",
    )
    .unwrap();
    assert_eq!(file.manifest_paths(), ["manifests"]);
    assert_eq!(file.manifest_urls(), ["https://example.com/app.yaml"]);
}

#[test]
fn directories_urls_inline_and_apply_order() {
    let text = "application: a
targets:
  dev:
    account: c
    namespace: hello-dev
    strategy: s
manifests:
  - path: manifests
  - path: https://example.com/extra.yaml
  - inline: |
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: inline-config
        namespace: elsewhere
strategies:
  s:
    canary:
      steps:
        - setWeight: 50
";
    let mut sources = app_sources();
    sources.push(source("manifests/crds/widgets.yml", CRD_AND_NS));
    sources.push(source("manifests/notes.txt", "not yaml"));
    sources.push(source("other/ignored.yaml", "kind: Pod"));
    let plan = ferry_deploy::check("deploy.yml", text, &sources, &Overrides::default()).unwrap();
    let t = &plan.targets[0];
    let kinds: Vec<&str> = t.manifests.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "CustomResourceDefinition",
            "Deployment",
            "ConfigMap",
            "Service",
            "ConfigMap"
        ]
    );
    // Cluster-scoped kinds get no namespace; namespaced ones get the target's, forced.
    assert_eq!(t.manifests[0].namespace, None);
    assert!(t.manifests[1].object["metadata"].get("namespace").is_none());
    let inline = t
        .manifests
        .iter()
        .find(|m| m.name == "inline-config")
        .unwrap();
    assert_eq!(inline.source, "manifests[2].inline");
    assert_eq!(inline.object["metadata"]["namespace"], "hello-dev");
    assert_eq!(t.remote_manifests, ["https://example.com/extra.yaml"]);
    assert!(matches!(t.strategy, Strategy::Canary { .. }));
    assert!(
        plan.summary()
            .contains("manifests: 6 (+1 fetched by the server)")
    );
}

#[test]
fn missing_manifests_are_reported_at_their_entry() {
    let d = errors(
        "application: a
targets:
  dev: {account: c, namespace: n}
manifests:
  - path: manifests/app.yaml
  - path: manifests/missing.yaml
  - path: charts
",
    );
    assert_error(
        &d,
        "manifests[1].path",
        6,
        "manifest file \"manifests/missing.yaml\" does not exist",
    );
    assert_error(
        &d,
        "manifests[2].path",
        7,
        "manifest path \"charts\" holds no .yaml or .yml file",
    );
}

#[test]
fn manifests_need_a_namespace_when_the_target_has_none() {
    let text = "application: a
targets:
  dev:
    account: c
manifests:
  - path: manifests/app.yaml
  - path: manifests/ns.yaml
";
    let mut sources = app_sources();
    sources.push(source(
        "manifests/ns.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: own\n",
    ));
    let d = ferry_deploy::check("deploy.yml", text, &sources, &Overrides::default()).unwrap_err();
    assert_error(
        &d,
        "targets.dev",
        3,
        "manifest manifests/app.yaml (Deployment hello-ferry) sets none",
    );
    assert_error(
        &d,
        "targets.dev",
        3,
        "manifest manifests/app.yaml (ConfigMap hello-ferry-config)",
    );
    assert_eq!(d.len(), 2, "the Secret has its own namespace:\n{d}");
}

#[test]
fn bare_pods_and_replica_sets_are_refused_in_the_manifest_file() {
    let text = "application: a
targets:
  dev: {account: c, namespace: n}
manifests:
  - path: bad.yaml
";
    let sources = [source(
        "bad.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\napiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\n",
    )];
    let d = ferry_deploy::check("deploy.yml", text, &sources, &Overrides::default()).unwrap_err();
    assert_eq!(d.items()[0].file, "bad.yaml");
    assert_error(&d, "documents[0].kind", 2, "bare Pod manifests are refused");
    assert_error(
        &d,
        "documents[1].kind",
        6,
        "bare ReplicaSet manifests are refused",
    );
}

#[test]
fn manifest_syntax_errors_name_the_manifest_file_line_and_column() {
    let text = "application: a
targets:
  dev: {account: c, namespace: n}
manifests:
  - path: broken.yaml
  - inline: \"kind: [\"
";
    let sources = [source(
        "./broken.yaml",
        "apiVersion: v1\nkind: Service\n  metadata: x\n",
    )];
    let d = ferry_deploy::check("deploy.yml", text, &sources, &Overrides::default()).unwrap_err();
    let broken = d
        .items()
        .iter()
        .find(|x| x.file == "broken.yaml")
        .expect("names the manifest");
    assert_eq!(broken.path, "syntax");
    assert_eq!(broken.line, 3);
    assert!(broken.column > 0);
    assert!(
        d.items()
            .iter()
            .any(|x| x.file == "deploy.yml" && x.path == "manifests[1].inline.syntax"),
        "{d}"
    );
}

#[test]
fn direct_when_no_strategy_or_no_deployment() {
    let text = "application: a
targets:
  plain:
    account: c
    namespace: n
  config-only:
    account: c
    namespace: n
    strategy: s
manifests:
  - path: manifests/service.yaml
strategies:
  s:
    canary:
      steps:
        - setWeight: 50
";
    let plan = valid(text);
    assert_eq!(plan.targets[0].strategy, Strategy::Direct);
    assert_eq!(plan.targets[1].strategy, Strategy::Direct);
    assert_eq!(plan.targets[1].strategy_name.as_deref(), Some("s"));
}

const FOUR: &str = "application: a
targets:
  prod:
    account: c
    namespace: n
    constraints:
      dependsOn: [staging, dev]
  staging:
    account: c
    namespace: n
    constraints:
      dependsOn: [dev]
  dev:
    account: c
    namespace: n
  other:
    account: c
    namespace: n
manifests:
  - path: manifests/app.yaml
    targets: [prod, staging, dev]
  - path: manifests/service.yaml
";

#[test]
fn targets_come_in_dependency_order_and_manifests_per_target() {
    let plan = valid(FOUR);
    let order: Vec<&str> = plan.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(order, ["dev", "staging", "prod", "other"]);
    assert_eq!(plan.targets[2].depends_on, ["staging", "dev"]);
    assert_eq!(plan.targets[0].manifests.len(), 3);
    assert_eq!(
        plan.targets[3].manifests.len(),
        1,
        "app.yaml is not for other"
    );
}

#[test]
fn target_filters_drop_dependencies_on_filtered_out_targets() {
    let overrides = Overrides {
        targets: vec!["prod".into(), "staging".into()],
        ..Default::default()
    };
    let plan = ferry_deploy::check("deploy.yml", FOUR, &app_sources(), &overrides).unwrap();
    let order: Vec<&str> = plan.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(order, ["staging", "prod"]);
    assert_eq!(plan.targets[0].depends_on, Vec::<String>::new());
    assert_eq!(plan.targets[1].depends_on, ["staging"]);

    let in_file = format!("{FOUR}targetFilters:\n  - includeTarget: other\n");
    let plan = valid(&in_file);
    assert_eq!(plan.targets.len(), 1);
    assert_eq!(plan.targets[0].name, "other");

    let overrides = Overrides {
        targets: vec!["prd".into()],
        ..Default::default()
    };
    let d = ferry_deploy::check("deploy.yml", FOUR, &app_sources(), &overrides).unwrap_err();
    assert_error(
        &d,
        "targetFilters",
        1,
        "unknown target (from the caller) \"prd\"",
    );
    assert_eq!(d.items()[0].suggestion.as_deref(), Some("prod"));
}

#[test]
fn application_and_context_overrides() {
    let text = "application: a
context:
  owner: team
  region: eu
targets:
  dev: {account: c, namespace: n}
manifests:
  - path: manifests/app.yaml
";
    let overrides = Overrides {
        application: Some("renamed".into()),
        context: vec![("region".into(), "us".into()), ("extra".into(), "1".into())],
        targets: vec![],
    };
    let plan = ferry_deploy::check("deploy.yml", text, &app_sources(), &overrides).unwrap();
    assert_eq!(plan.application, "renamed");
    let ctx: Vec<(&str, &str)> = plan
        .context
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(ctx, [("owner", "team"), ("region", "us"), ("extra", "1")]);

    let overrides = Overrides {
        application: Some("Not A Label".into()),
        ..Default::default()
    };
    let plan = ferry_deploy::check("deploy.yml", text, &app_sources(), &overrides).unwrap();
    assert_eq!(plan.application, "Not A Label", "kept as written");
    let overrides = Overrides {
        application: Some("line\nbreak".into()),
        ..Default::default()
    };
    let d = ferry_deploy::check("deploy.yml", text, &app_sources(), &overrides).unwrap_err();
    assert_error(&d, "application", 1, "control character");
    assert_error(&d, "application", 1, "(the name given by the caller)");
}

#[test]
fn target_names_may_hold_spaces_and_parentheses() {
    let plan = valid(
        "application: a
targets:
  prod-eu (blue-green):
    account: c
    namespace: n
  after:
    account: c
    namespace: n
    constraints:
      dependsOn: [\"prod-eu (blue-green)\"]
manifests:
  - path: manifests/app.yaml
",
    );
    assert_eq!(plan.targets[0].name, "prod-eu (blue-green)");
    assert!(plan.summary().contains("dependsOn: prod-eu (blue-green)"));
}

#[test]
fn check_reports_file_and_manifest_problems_together() {
    let d = errors(
        "application: a
targets:
  dev:
    account: c
    namespace: n
    strategy: canery
manifests:
  - path: manifests/gone.yaml
strategies:
  canary:
    canary:
      steps:
        - setWeight: 50
",
    );
    assert_error(&d, "targets.dev.strategy", 6, "unknown strategy \"canery\"");
    assert_error(&d, "manifests[0].path", 8, "does not exist");
    assert_eq!(d.len(), 2, "{d}");
    // `parse` alone sees only the first; `parse_with_errors` keeps the model for the caller.
    let text = "application: a\ntargets:\n  dev: {account: c, namespace: n, strategy: x}\nmanifests:\n  - path: m.yaml\n";
    assert_eq!(
        ferry_deploy::parse("deploy.yml", text).unwrap_err().len(),
        1
    );
    let (file, diags) = ferry_deploy::parse_with_errors("deploy.yml", text).unwrap();
    assert_eq!(diags.len(), 1);
    assert_eq!(file.manifest_paths(), ["m.yaml"]);
}
