//! Rules of the definition sections: analysis steps and queries, webhooks, traffic management
//! and template variables.

use ferry_deploy::{LookbackMethod, Mode, Overrides, Step, Strategy};

use crate::support::{app_sources, assert_error, errors, valid};

/// A canary target using strategy `s` (lines 1-12); steps follow at line 13.
const HEAD: &str = "application: a
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

const QUERIES: &str = "analysis:
  defaultMetricProviderName: prom
  queries:
    - name: error-rate
      upperLimit: 1
      queryTemplate: sum(rate(x{rs='{{ferry.replicaSetName}}'}[1m]))
";

fn file(steps: &str, rest: &str) -> String {
    format!("{HEAD}{steps}{rest}")
}

#[test]
fn analysis_step_fields_are_decoded_and_defaulted() {
    let plan = valid(&file(
        "        - analysis:
            interval: 2
            units: Minutes
            numberOfJudgmentRuns: 4
            lookbackMethod: SLIDING
            rollBackMode: Manual
            abortOnFailedJudgment: true
            metricProviderName: datadog
            queries: [error-rate]
        - analysis: {interval: 30, units: seconds, queries: [error-rate]}
",
        QUERIES,
    ));
    let Strategy::Canary { steps } = &plan.targets[0].strategy else {
        panic!()
    };
    let Step::Analysis(a) = &steps[0] else {
        panic!()
    };
    assert_eq!(a.interval_secs, 120);
    assert_eq!(a.number_of_judgment_runs, 4);
    assert_eq!(a.lookback_method, LookbackMethod::Sliding);
    assert_eq!(a.roll_back_mode, Mode::Manual);
    assert_eq!(a.roll_forward_mode, Mode::Automatic);
    assert!(a.abort_on_failed_judgment);
    // The step's provider beats the default; the query has none of its own.
    assert_eq!(
        a.queries[0].metric_provider_name.as_deref(),
        Some("datadog")
    );
    let Step::Analysis(b) = &steps[1] else {
        panic!()
    };
    assert_eq!(b.number_of_judgment_runs, 1);
    assert_eq!(b.lookback_method, LookbackMethod::Growing);
    assert_eq!(b.queries[0].metric_provider_name.as_deref(), Some("prom"));
}

#[test]
fn analysis_step_field_errors() {
    let d = errors(&file(
        "        - analysis:
            units: seconds
            numberOfJudgmentRuns: 0
            lookbackMethod: growin
            rollForwardMode: sometimes
            abortOnFailedJudgment: maybe
            queries: []
",
        QUERIES,
    ));
    let p = "strategies.s.canary.steps[0].analysis";
    assert_error(
        &d,
        &format!("{p}.interval"),
        14,
        "missing required key \"interval\"",
    );
    assert_error(
        &d,
        &format!("{p}.numberOfJudgmentRuns"),
        15,
        "0 is out of range",
    );
    assert_error(
        &d,
        &format!("{p}.lookbackMethod"),
        16,
        "unknown value \"growin\"",
    );
    assert_error(
        &d,
        &format!("{p}.rollForwardMode"),
        17,
        "expected one of automatic, manual",
    );
    assert_error(
        &d,
        &format!("{p}.abortOnFailedJudgment"),
        18,
        "expected true or false",
    );
    assert_error(&d, &format!("{p}.queries"), 19, "name at least one query");
    assert!(
        d.items()
            .iter()
            .any(|x| x.suggestion.as_deref() == Some("growing")),
        "{d}"
    );
}

#[test]
fn analysis_needs_a_section_and_a_provider() {
    let step = "        - analysis: {interval: 1, units: minutes, queries: [error-rate]}\n";
    let d = errors(&file(step, ""));
    assert_error(
        &d,
        "strategies.s.canary.steps[0].analysis",
        13,
        "needs an analysis section",
    );
    let d = errors(&file(
        step,
        &QUERIES.replace("  defaultMetricProviderName: prom\n", ""),
    ));
    assert_error(
        &d,
        "strategies.s.canary.steps[0].analysis.queries[0]",
        13,
        "no metric provider for query \"error-rate\"",
    );
    // A provider on the query itself is enough.
    valid(&file(
        step,
        &QUERIES
            .replace("  defaultMetricProviderName: prom\n", "")
            .replace(
                "      upperLimit: 1\n",
                "      upperLimit: 1\n      metricProviderName: nr\n",
            ),
    ));
}

#[test]
fn query_rules() {
    let d = errors(&file(
        "        - setWeight: 10\n",
        "analysis:
  defaultMetricProviderName: prom
  queries:
    - name: q
      queryTemplate: x
    - name: r
      queryTemplate: x
      lowerLimit: 5
      upperLimit: 1
    - name: r
      queryTemplate: y
      upperLimit: 1
    - name: s
      upperLimit: 1
",
    ));
    assert_error(
        &d,
        "analysis.queries[0]",
        17,
        "needs upperLimit, lowerLimit or both",
    );
    assert_error(
        &d,
        "analysis.queries[1].lowerLimit",
        21,
        "lowerLimit 5 is above upperLimit 1",
    );
    assert!(
        !d.to_string().contains("analysis.queries[2]"),
        "a query defined twice is no error:\n{d}"
    );
    assert_error(
        &d,
        "analysis.queries[3].queryTemplate",
        26,
        "missing required key \"queryTemplate\"",
    );
}

#[test]
fn judge_block_replaces_limits_and_is_checked() {
    let plan = valid(&file(
        "        - analysis: {interval: 1, units: minutes, queries: [latency]}\n",
        "analysis:
  defaultMetricProviderName: prom
  queries:
    - name: latency
      queryTemplate: x{rs='{{ferry.baselineReplicaSetName}}'}
      judge:
        direction: Either
        critical: true
        minSamples: 50
",
    ));
    let judge = plan.queries[0].judge.as_ref().unwrap();
    assert_eq!(judge.direction, ferry_deploy::Direction::Either);
    assert!(judge.critical);
    assert_eq!(judge.min_samples, 50);
    assert_eq!(judge.confidence, 0.98);
    assert_eq!(judge.pass, 95.0);

    let d = errors(&file(
        "        - setWeight: 10\n",
        "analysis:
  queries:
    - name: latency
      queryTemplate: x
      judge:
        confidence: 1.5
        marginal: 99
        directon: increase
",
    ));
    assert_error(
        &d,
        "analysis.queries[0].judge.confidence",
        19,
        "must be between 0 and 1",
    );
    assert_error(
        &d,
        "analysis.queries[0].judge.marginal",
        20,
        "marginal 99 is above pass 95",
    );
    assert_error(&d, "analysis.queries[0].judge.directon", 21, "unknown key");
}

const HOOK_TARGET: &str = "application: a
targets:
  dev:
    account: c
    namespace: n
    constraints:
      beforeDeployment:
        - runWebhook:
            name: hook
            context:
              suite: smoke
manifests:
  - path: manifests/app.yaml
webhooks:
";

#[test]
fn webhook_fields_and_defaults() {
    let plan = valid(&format!(
        "{HOOK_TARGET}  - name: hook
    uriTemplate: https://ci/{{{{context.suite}}}}
    agentIdentifier: private-agent
    headers:
      - key: Authorization
        value: Bearer {{{{secrets.token}}}}
"
    ));
    let Step::RunWebhook { webhook, context } = &plan.targets[0].before_deployment[0] else {
        panic!()
    };
    assert_eq!(webhook.method, "POST");
    assert_eq!(webhook.network_mode, ferry_deploy::NetworkMode::Direct);
    assert_eq!(webhook.retry_count, 0);
    assert!(!webhook.disable_callback);
    assert_eq!(webhook.agent_identifier.as_deref(), Some("private-agent"));
    assert_eq!(webhook.headers[0].value, "Bearer {{secrets.token}}");
    assert_eq!(context["suite"], "smoke");

    let d = errors(&format!(
        "{HOOK_TARGET}  - name: hook
    method: fetch
    networkMode: remote
    headers:
      - key: X
    bodyTemplate:
      text: hi
    retryCount: -1
    disableCallback: yes
  - name: hook
    uriTemplate: https://x
"
    ));
    assert_error(
        &d,
        "webhooks[0].uriTemplate",
        15,
        "missing required key \"uriTemplate\"",
    );
    assert_error(&d, "webhooks[0].method", 16, "unknown value \"fetch\"");
    assert_error(
        &d,
        "webhooks[0].networkMode",
        17,
        "expected one of direct, remoteNetworkAgent",
    );
    assert_error(
        &d,
        "webhooks[0].headers[0].value",
        19,
        "missing required key \"value\"",
    );
    assert_error(
        &d,
        "webhooks[0].bodyTemplate.text",
        21,
        "unknown key \"text\"",
    );
    assert_error(&d, "webhooks[0].retryCount", 22, "-1 is out of range");
    assert_error(
        &d,
        "webhooks[0].disableCallback",
        23,
        "expected true or false",
    );
}

#[test]
fn a_name_defined_twice_is_a_warning_and_the_later_definition_wins() {
    // As real Armory files do: accepted, with a warning at the later `name` naming both places.
    let plan = valid(&format!(
        "{HOOK_TARGET}  - name: hook\n    uriTemplate: https://a\n  - name: hook\n    uriTemplate: https://b\n"
    ));
    assert_eq!(plan.webhooks.len(), 1);
    assert_eq!(plan.webhooks[0].uri_template, "https://b");
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    let warning = &plan.warnings[0];
    assert_eq!(
        (warning.path.as_str(), warning.line),
        ("webhooks[1].name", 17)
    );
    assert!(
        warning
            .message
            .contains("defined twice (webhooks[0] at line 15, again here at line 17)"),
        "{warning}"
    );
    assert!(warning.message.contains("the later definition is used"));
}

#[test]
fn template_variables_are_checked() {
    let d = errors(&format!(
        "{HOOK_TARGET}  - name: hook
    uriTemplate: https://ci/{{{{ferry.replicaSetNam}}}}
    bodyTemplate:
      inline: '{{{{armory.nope}}}} {{{{context.missing}}}} {{{{vars.x}}}}'
"
    ));
    assert_error(
        &d,
        "webhooks[0].uriTemplate",
        16,
        "unknown variable {{ferry.replicaSetNam}}",
    );
    assert!(
        d.items()
            .iter()
            .any(|x| x.suggestion.as_deref() == Some("{{ferry.replicaSetName}}")),
        "{d}"
    );
    assert_error(
        &d,
        "webhooks[0].bodyTemplate.inline",
        18,
        "unknown variable {{armory.nope}}",
    );
    assert_error(
        &d,
        "webhooks[0].bodyTemplate.inline",
        18,
        "unknown variable {{vars.x}}",
    );

    // Context variables are checked against file, step and caller context by the planner.
    let text = format!(
        "{HOOK_TARGET}  - name: hook\n    uriTemplate: https://ci/{{{{context.suite}}}}/{{{{context.build}}}}\n"
    );
    let d = errors(&text);
    assert_error(
        &d,
        "targets.dev.constraints.beforeDeployment[0].runWebhook",
        9,
        "webhook \"hook\" uses {{context.build}}, which no context defines",
    );
    assert_eq!(d.len(), 1, "suite comes from the step:\n{d}");
    let overrides = Overrides {
        context: vec![("build".into(), "42".into())],
        ..Default::default()
    };
    let plan = ferry_deploy::check("deploy.yml", &text, &app_sources(), &overrides).unwrap();
    let Step::RunWebhook { context, .. } = &plan.targets[0].before_deployment[0] else {
        panic!()
    };
    assert_eq!(context["build"], "42");
    assert_eq!(plan.context["build"], "42");
}

#[test]
fn traffic_management_rules() {
    let text = "application: a
targets:
  dev:
    account: c
    namespace: n
manifests:
  - path: manifests/app.yaml
trafficManagement:
  - targets: [prd]
    smi:
      - rootServiceName: web
        canaryServiceName: web-new
  - istio:
      - virtualService: {name: vs}
        destinationRule: {name: dr, canarySubsetName: c}
  - kubernetes:
      - activeService: web
  - {}
";
    let d = errors(text);
    assert_error(
        &d,
        "trafficManagement[0].targets[0]",
        9,
        "unknown target \"prd\"",
    );
    assert!(
        !d.to_string().contains("kubernetes[0].previewService"),
        "previewService is optional:\n{d}"
    );
    assert_error(
        &d,
        "trafficManagement[3]",
        18,
        "holds none of istio, smi, gatewayApi or kubernetes",
    );

    let plan = valid(&text.replace("[prd]", "[dev]").replace(
        "      - activeService: web\n  - {}\n",
        "      - activeService: web\n        previewService: web-preview\n",
    ));
    let tm = &plan.targets[0].traffic_management;
    assert_eq!(tm.smi[0].canary_service_name, "web-new");
    assert_eq!(tm.smi[0].traffic_split_name, "web");
    assert_eq!(
        tm.istio[0]
            .destination_rule
            .as_ref()
            .unwrap()
            .canary_subset_name
            .as_deref(),
        Some("c")
    );
    assert_eq!(
        tm.kubernetes[0].preview_service.as_deref(),
        Some("web-preview")
    );

    // The two Services as separate list items, as some Armory files write them.
    let plan = valid(&text.replace("[prd]", "[dev]").replace(
        "      - activeService: web\n  - {}\n",
        "      - activeService: web\n      - previewService: web-preview\n",
    ));
    let k = &plan.targets[0].traffic_management.kubernetes;
    assert_eq!(k.len(), 1, "{k:?}");
    assert_eq!(k[0].active_service, "web");
    assert_eq!(k[0].preview_service.as_deref(), Some("web-preview"));
    let d = errors(&text.replace("[prd]", "[dev]").replace(
        "      - activeService: web\n  - {}\n",
        "      - previewService: web-preview\n",
    ));
    assert_error(
        &d,
        "trafficManagement[2].kubernetes",
        17,
        "a previewService needs an activeService",
    );
}

#[test]
fn target_filters_name_existing_targets() {
    let d = errors(&format!(
        "{HEAD}        - setWeight: 10\ntargetFilters:\n  - includeTarget: deev\n"
    ));
    assert_error(
        &d,
        "targetFilters[0].includeTarget",
        15,
        "unknown target \"deev\"",
    );
    assert_eq!(d.items()[0].suggestion.as_deref(), Some("dev"));
}

#[test]
fn query_templates_see_file_step_and_caller_context() {
    let queries = "analysis:
  defaultMetricProviderName: prom
  queries:
    - name: error-rate
      upperLimit: 1
      queryTemplate: x{slo='{{context.slo}}', team='{{context.team}}'}
    - name: bad
      upperLimit: 1
      queryTemplate: x{cb='{{ferry.callbackUri}}'}
";
    let text = format!(
        "{}{}{queries}",
        HEAD.replace("application: a\n", "application: a\ncontext:\n  team: t\n"),
        "        - analysis:
            interval: 1
            units: minutes
            context: {slo: '99'}
            queries: [error-rate]
        - analysis: {interval: 1, units: minutes, queries: [error-rate]}
"
    );
    let d = errors(&text);
    assert_error(
        &d,
        "strategies.s.canary.steps[1].analysis.queries[0]",
        20,
        "query \"error-rate\" uses {{context.slo}}, which no context defines",
    );
    assert_error(
        &d,
        "analysis.queries[1].queryTemplate",
        29,
        "{{ferry.callbackUri}} is only available in webhooks",
    );
    assert_eq!(
        d.len(),
        2,
        "the first step defines slo, the file defines team:\n{d}"
    );
}

#[test]
fn references_to_broken_definitions_add_no_unknown_error() {
    let d = errors(&format!(
        "{HOOK_TARGET}  - name: hook\n    retryCount: many\n"
    ));
    assert_eq!(d.len(), 2, "{d}");
    assert_error(&d, "webhooks[0].uriTemplate", 15, "missing required key");
    assert_error(&d, "webhooks[0].retryCount", 16, "expected an integer");
}

#[test]
fn gateway_api_routes_need_a_route_and_a_root_service() {
    let text = "application: a
targets:
  dev:
    account: c
    namespace: n
manifests:
  - path: manifests/app.yaml
trafficManagement:
  - gatewayApi:
      - httpRouteName: web
        rootServiceName: web
      - httpRouteName: api
        rootServiceName: api
        canaryServiceName: api-next
";
    let plan = valid(text);
    let routes = &plan.targets[0].traffic_management.gateway_api;
    assert_eq!(routes.len(), 2, "{routes:?}");
    assert_eq!(
        (
            routes[0].http_route_name.as_str(),
            routes[0].root_service_name.as_str(),
            routes[0].canary_service_name.as_str()
        ),
        ("web", "web", "web-canary")
    );
    assert_eq!(routes[1].canary_service_name, "api-next");

    let d = errors(&text.replace("        rootServiceName: web\n", ""));
    assert_error(
        &d,
        "trafficManagement[0].gatewayApi[0].rootServiceName",
        10,
        "missing required key \"rootServiceName\"",
    );
    let d = errors(&text.replace("httpRouteName: api", "httpRoute: api"));
    assert!(d.to_string().contains("httpRoute"), "{d}");
}
