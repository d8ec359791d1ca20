//! One test per file-level rule: the diagnostic's path, line and message, suggestions, and
//! several errors reported together.

use crate::support::{assert_error, errors, valid};

/// A valid file to which the tests append sections (lines 1-9).
const BASE: &str = "version: v1
kind: kubernetes
application: hello-ferry
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

#[test]
fn base_file_is_valid() {
    let plan = valid(BASE);
    assert_eq!(plan.targets.len(), 1);
    assert_eq!(plan.targets[0].strategy, ferry_deploy::Strategy::Direct);
}

#[test]
fn top_level_kind_version_and_application() {
    let d = errors(
        "version: v2
kind: kubernetes
application: \"Hello\\tFerry\"
targets:
  dev:
    account: dev-cluster
    namespace: hello-dev
manifests:
  - path: manifests/app.yaml
",
    );
    assert_error(&d, "version", 1, "unsupported version \"v2\"");
    assert_error(&d, "application", 3, "control character");
    assert_eq!(d.len(), 2, "both errors together:\n{d}");

    let long = "a".repeat(254);
    let d = errors(&BASE.replace("hello-ferry", &long));
    assert_error(&d, "application", 3, "at most 253");

    let d = errors(&BASE.replace("application: hello-ferry\n", ""));
    assert_error(&d, "application", 1, "missing required key \"application\"");
}

#[test]
fn application_names_are_written_as_people_write_them() {
    for name in [
        "Potato Facts",
        "potatolessFacts",
        "my.app_v2",
        "\"Facts: the sequel\"",
    ] {
        let plan = valid(&BASE.replace("hello-ferry\n", &format!("{name}\n")));
        assert_eq!(plan.application, name.trim_matches('"'));
    }
}

#[test]
fn another_kind_is_one_clear_error_at_the_kind_key() {
    // Shaped like Armory's Lambda deploy files: other keys, another schema.
    let d = errors(
        "version: v1
kind: lambda
application: potatolessFacts
targets:
  staging:
    account: aws-account
    deployAsIamRole: arn:aws:iam::1:role/deployer
    region: us-west-2
artifacts:
  - functionName: facts
providerOptions:
  lambda: []
",
    );
    assert_error(&d, "kind", 2, "unsupported kind \"lambda\"");
    assert_error(&d, "kind", 2, "AWS Lambda deploy files are not supported");
    assert_eq!(d.len(), 1, "only the kind is reported:\n{d}");
    let d = errors(&BASE.replace("kind: kubernetes", "kind: ecs"));
    assert_error(&d, "kind", 2, "kind \"ecs\" is not supported");
    assert_eq!(d.len(), 1, "{d}");
}

#[test]
fn targets_and_manifests_are_required_and_non_empty() {
    let d = errors("application: a\ntargets: {}\nmanifests: []\n");
    assert_error(&d, "targets", 2, "define at least one target");
    assert_error(&d, "manifests", 3, "list at least one manifest");
    let d = errors("application: a\n");
    assert_error(&d, "targets", 1, "missing required key \"targets\"");
    assert_error(&d, "manifests", 1, "missing required key \"manifests\"");
}

#[test]
fn target_account_is_required() {
    let d = errors(&BASE.replace("    account: dev-cluster\n", ""));
    assert_error(
        &d,
        "targets.dev.account",
        6,
        "missing required key \"account\"",
    );
}

#[test]
fn unknown_keys_suggest_the_nearest_known_key() {
    let d = errors(&with(
        "stratgies: {}\ndeploymentConfig:\n  timout: {duration: 2, unit: minutes}\n",
    ));
    assert_error(&d, "stratgies", 10, "unknown key \"stratgies\"");
    assert_error(&d, "deploymentConfig.timout", 12, "unknown key \"timout\"");
    let s: Vec<_> = d
        .items()
        .iter()
        .filter_map(|d| d.suggestion.clone())
        .collect();
    assert_eq!(s, ["strategies", "timeout"]);
}

#[test]
fn duplicate_keys_are_reported() {
    let d = errors(&BASE.replace(
        "    namespace: hello-dev\n",
        "    namespace: hello-dev\n    namespace: other\n",
    ));
    assert_error(
        &d,
        "targets.dev.namespace",
        8,
        "duplicate key \"namespace\"",
    );
}

#[test]
fn a_deploy_file_is_one_document() {
    let d = errors(&with("---\napplication: b\n"));
    assert_error(&d, "file", 11, "one YAML document");
}

#[test]
fn syntax_errors_have_a_position() {
    let d = errors("application: a\ntargets:\n  dev:\n    account: x\n     namespace: y\n");
    assert_eq!(d.len(), 1);
    assert_eq!(d.items()[0].path, "syntax");
    assert_eq!(d.items()[0].line, 5);
}

#[test]
fn depends_on_rules() {
    let text = "application: a
targets:
  a:
    account: x
    namespace: n
    constraints:
      dependsOn: [a, stagin]
  staging:
    account: x
    namespace: n
manifests:
  - path: manifests/app.yaml
";
    let d = errors(text);
    assert_error(
        &d,
        "targets.a.constraints.dependsOn[0]",
        7,
        "target \"a\" depends on itself",
    );
    assert_error(
        &d,
        "targets.a.constraints.dependsOn[1]",
        7,
        "unknown target \"stagin\"",
    );
    assert_eq!(d.items()[1].suggestion.as_deref(), Some("staging"), "{d}");
}

#[test]
fn a_three_target_cycle_is_named_on_each_entry() {
    let text = "application: a
targets:
  x:
    account: c
    namespace: n
    constraints:
      dependsOn: [z]
  y:
    account: c
    namespace: n
    constraints:
      dependsOn: [x]
  z:
    account: c
    namespace: n
    constraints:
      dependsOn:
        - y
manifests:
  - path: manifests/app.yaml
";
    let d = errors(text);
    assert_eq!(d.len(), 3, "{d}");
    assert_error(
        &d,
        "targets.x.constraints.dependsOn",
        7,
        "dependsOn cycle: x → z → y → x",
    );
    assert_error(&d, "targets.y.constraints.dependsOn", 12, "dependsOn cycle");
    assert_error(&d, "targets.z.constraints.dependsOn", 18, "dependsOn cycle");
}

const CANARY_TARGET: &str = "application: a
targets:
  dev:
    account: c
    namespace: n
    strategy: s
manifests:
  - path: manifests/app.yaml
strategies:
  s:
    canary:
      steps:
";

fn canary(steps: &str) -> String {
    format!("{CANARY_TARGET}{steps}")
}

#[test]
fn weights_must_be_in_range_and_not_decrease() {
    let d = errors(&canary(
        "        - setWeight: 50
        - setWeight:
            weight: 20
        - setWeight: 101
        - setWeight: -1
",
    ));
    assert_error(
        &d,
        "strategies.s.canary.steps[1].setWeight.weight",
        15,
        "weight 20 is below the previous weight 50",
    );
    assert_error(
        &d,
        "strategies.s.canary.steps[2].setWeight",
        16,
        "101 is out of range",
    );
    assert_error(
        &d,
        "strategies.s.canary.steps[3].setWeight",
        17,
        "-1 is out of range",
    );
}

#[test]
fn set_weight_shorthand_and_map_form_are_equal() {
    let a = valid(&canary("        - setWeight: 30\n"));
    let b = valid(&canary("        - setWeight:\n            weight: 30\n"));
    assert_eq!(a, b);
}

#[test]
fn pause_forms() {
    let d = errors(&canary(
        "        - pause:
            requiresRoles: [x]
        - pause:
            duration: 1
        - pause:
            duration: 1
            unit: fortnights
        - pause:
            duration: 10
            unit: secnds
        - pause:
            duration: 10
            unit: seconds
            approvalExpiration: {duration: 1, unit: hours}
",
    ));
    assert_error(
        &d,
        "strategies.s.canary.steps[0].pause",
        14,
        "give either duration+unit or untilApproved: true",
    );
    assert_error(
        &d,
        "strategies.s.canary.steps[1].pause.unit",
        16,
        "missing required key \"unit\"",
    );
    assert_error(
        &d,
        "strategies.s.canary.steps[2].pause.unit",
        19,
        "unknown value \"fortnights\"",
    );
    assert_error(
        &d,
        "strategies.s.canary.steps[3].pause.unit",
        22,
        "unknown value \"secnds\"",
    );
    assert!(
        d.items()
            .iter()
            .any(|x| x.suggestion.as_deref() == Some("seconds")),
        "{d}"
    );
    assert_error(
        &d,
        "strategies.s.canary.steps[4].pause.approvalExpiration",
        26,
        "only applies with untilApproved",
    );
}

#[test]
fn units_are_case_insensitive_and_converted() {
    let plan = valid(&canary(
        "        - pause: {duration: 2, unit: MINUTES}
        - pause: {untilApproved: true, approvalExpiration: {duration: 1, unit: Hours}}
",
    ));
    let ferry_deploy::Strategy::Canary { steps } = &plan.targets[0].strategy else {
        panic!()
    };
    assert_eq!(
        steps[0],
        ferry_deploy::Step::Pause {
            pause: ferry_deploy::Pause::Duration(120)
        }
    );
    assert_eq!(
        steps[1],
        ferry_deploy::Step::Pause {
            pause: ferry_deploy::Pause::UntilApproved {
                requires_roles: vec![],
                expiration_secs: Some(3600)
            }
        }
    );
}

#[test]
fn steps_have_exactly_one_known_kind_allowed_in_their_place() {
    let d = errors(&canary(
        "        - pase: {duration: 1, unit: seconds}
        - setWeight: 10
          pause: {duration: 1, unit: seconds}
",
    ));
    assert_error(
        &d,
        "strategies.s.canary.steps[0].pase",
        13,
        "unknown key \"pase\"",
    );
    assert_eq!(d.items()[0].suggestion.as_deref(), Some("pause"));
    assert_error(
        &d,
        "strategies.s.canary.steps[1]",
        14,
        "exactly one kind, found setWeight and pause",
    );

    let d = errors(&with(
        "strategies:
  bg:
    blueGreen:
      activeService: a
      previewService: b
      redirectTrafficAfter:
        - setWeight: 10
",
    ));
    assert_error(
        &d,
        "strategies.bg.blueGreen.redirectTrafficAfter[0].setWeight",
        16,
        "setWeight is not allowed in blue/green conditions",
    );
    let d = errors(&BASE.replace(
        "    namespace: hello-dev\n",
        "    namespace: hello-dev\n    constraints:\n      beforeDeployment:\n        - exposeServices: {services: [a]}\n",
    ));
    assert_error(
        &d,
        "targets.dev.constraints.beforeDeployment[0].exposeServices",
        10,
        "not allowed in constraints",
    );
}

#[test]
fn timeout_and_ttl_bounds() {
    let d = errors(&with(
        "deploymentConfig:\n  timeout: {duration: 30, unit: seconds}\n",
    ));
    assert_error(&d, "deploymentConfig.timeout", 11, "at least 60 seconds");
    let plan = valid(&with(
        "deploymentConfig:\n  timeout: {duration: 1, unit: minutes}\n  keepDeploymentObject: true\n  ifDeploymentInProgress:\n    strategy: ENQUEUEONE\n",
    ));
    assert_eq!(plan.deployment_config.timeout_secs, 60);
    assert!(plan.deployment_config.keep_deployment_object);
    assert_eq!(
        plan.deployment_config.if_deployment_in_progress,
        ferry_deploy::InProgressPolicy::EnqueueOne
    );
    let d = errors(&with(
        "deploymentConfig:\n  ifDeploymentInProgress:\n    strategy: queue\n",
    ));
    assert_error(
        &d,
        "deploymentConfig.ifDeploymentInProgress.strategy",
        12,
        "expected one of reject, enqueueOne",
    );

    let d = errors(&canary(
        "        - exposeServices: {services: [web], ttl: {duration: 30, unit: seconds}}
        - exposeServices: {services: [web], ttl: {duration: 25, unit: hours}}
        - exposeServices: {services: []}
",
    ));
    assert_error(
        &d,
        "strategies.s.canary.steps[0].exposeServices.ttl",
        13,
        "between 1 minute and 24 hours",
    );
    assert_error(
        &d,
        "strategies.s.canary.steps[1].exposeServices.ttl",
        14,
        "between 1 minute and 24 hours",
    );
    assert_error(
        &d,
        "strategies.s.canary.steps[2].exposeServices.services",
        15,
        "at least one Service",
    );
    let plan = valid(&canary("        - exposeServices: {services: [web]}\n"));
    let ferry_deploy::Strategy::Canary { steps } = &plan.targets[0].strategy else {
        panic!()
    };
    assert_eq!(
        steps[0],
        ferry_deploy::Step::ExposeServices {
            services: vec!["web".into()],
            ttl_secs: 300
        }
    );
}

#[test]
fn strategies_are_exactly_one_kind() {
    let d = errors(&with(
        "strategies:
  both:
    canary: {steps: []}
    blueGreen: {activeService: a, previewService: b}
  neither: {}
",
    ));
    assert_error(
        &d,
        "strategies.both",
        12,
        "exactly one of canary or blueGreen",
    );
    assert_error(&d, "strategies.neither", 14, "needs canary or blueGreen");
}

#[test]
fn blue_green_needs_services_and_accepts_both_spellings() {
    let text = "application: a
targets:
  prod:
    account: c
    namespace: n
    strategy: bg
manifests:
  - path: manifests/app.yaml
strategies:
  bg:
    blueGreen:
      redirectTrafficAfter:
        - pause: {untilApproved: true}
      shutdownOldVersionAfter:
        - pause: {duration: 5, unit: minutes}
";
    let d = errors(text);
    assert_error(
        &d,
        "strategies.bg.blueGreen",
        12,
        "needs an activeService (previewService is optional)",
    );
    // Without a preview Service (as real Armory files do), there is just none to point.
    let plan = valid(&text.replace(
        "    blueGreen:\n",
        "    blueGreen:\n      activeService: web\n",
    ));
    let ferry_deploy::Strategy::BlueGreen {
        preview_service, ..
    } = &plan.targets[0].strategy
    else {
        panic!("{:?}", plan.targets[0].strategy)
    };
    assert_eq!(preview_service, &None);
    let plan = valid(&text.replace(
        "    blueGreen:\n",
        "    blueGreen:\n      activeService: web\n      previewService: web-preview\n",
    ));
    let ferry_deploy::Strategy::BlueGreen {
        active_service,
        shut_down_old_version_after,
        ..
    } = &plan.targets[0].strategy
    else {
        panic!("{:?}", plan.targets[0].strategy)
    };
    assert_eq!(active_service, "web");
    assert_eq!(
        shut_down_old_version_after.len(),
        1,
        "shutdownOldVersionAfter is accepted"
    );
}

#[test]
fn several_errors_come_out_together_in_file_order() {
    let text = "application: a
targets:
  dev:
    account: c
    namespace: n
    strategy: canery
    constraints:
      afterDeployment:
        - runWebhook: {name: smok}
manifests:
  - path: manifests/app.yaml
    targets: [prd]
strategies:
  canary:
    canary:
      steps:
        - setWeight: 150
webhooks:
  - name: smoke
    uriTemplate: https://ci/run
";
    let d = errors(text);
    let lines: Vec<usize> = d.items().iter().map(|x| x.line).collect();
    assert_eq!(lines, [6, 9, 12, 17], "{d}");
    let text_out = d.to_string();
    assert!(text_out.contains("deploy.yml:6:15: targets.dev.strategy: unknown strategy \"canery\"; did you mean \"canary\"?"), "{text_out}");
    assert!(
        text_out.contains("unknown webhook \"smok\"; did you mean \"smoke\"?"),
        "{text_out}"
    );
}
