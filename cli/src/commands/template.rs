//! `ferry template canary|bluegreen [--features …]`: prints a commented starting deploy file,
//! valid as printed (every combination is parsed and checked against the schema in the tests
//! below). Its first line points the YAML language server at the deploy file's JSON Schema, so
//! editors complete and check it.

use std::process::ExitCode;

use super::Ctx;
use crate::args::template::{Feature, TemplateArgs, TemplateStrategy};
use crate::config;

/// Runs `ferry template`.
pub(super) fn run(ctx: &Ctx, args: &TemplateArgs) -> anyhow::Result<ExitCode> {
    let schema_url = match &args.schema_url {
        Some(url) => url.clone(),
        None => format!("{}/v1/schema/deploy.json", api_base(ctx)),
    };
    print!("{}", render(args.strategy, &args.features, &schema_url));
    Ok(ExitCode::SUCCESS)
}

/// The API's base URL: the flag or environment, else the credentials file's, else the default.
/// Nothing is required to print a template, so a missing or broken file is not an error.
fn api_base(ctx: &Ctx) -> String {
    let stored = config::credentials_path().ok().and_then(|p| {
        config::load(&p, ctx.global.context.as_deref())
            .ok()
            .flatten()
    });
    let api = ctx
        .global
        .api
        .clone()
        .or_else(|| stored.map(|(_, c)| c.api))
        .unwrap_or_else(|| config::DEFAULT_API.to_string());
    config::normalize_api(&api).unwrap_or_else(|_| config::DEFAULT_API.to_string())
}

/// Appends lines to a file being written.
struct Out(String);

impl Out {
    fn add(&mut self, text: &str) {
        self.0.push_str(text);
        if !text.ends_with('\n') {
            self.0.push('\n');
        }
    }
}

/// The starting file for `strategy` with `features`, naming `schema_url` in its first line.
pub(super) fn render(strategy: TemplateStrategy, features: &[Feature], schema_url: &str) -> String {
    let has = |f: Feature| features.contains(&f);
    let canary = strategy == TemplateStrategy::Canary;
    let strategy_name = if canary { "canary" } else { "blue-green" };
    let mut o = Out(String::new());

    o.add(&format!("# yaml-language-server: $schema={schema_url}"));
    o.add(
        "# A Ferry deploy file. Check it with `ferry deploy validate -f deploy.yml`, run it with
# `ferry deploy start -f deploy.yml`. Every key: DEPLOY-CONFIG.md, or `ferry schema`.
version: v1
kind: kubernetes

# The application's name as you write it. One deployment runs at a time per application.
application: my-app

# Where to deploy: each target is a cluster (the identifier of the agent running there) and a
# namespace forced onto every namespaced manifest.
targets:
  staging:
    account: staging-cluster
    namespace: my-app-staging",
    );
    o.add(&format!("    strategy: {strategy_name}"));
    o.add(
        "  prod:
    account: prod-cluster
    namespace: my-app-prod",
    );
    o.add(&format!("    strategy: {strategy_name}"));
    o.add(
        "    constraints:
      # prod starts only after staging succeeded.
      dependsOn: [staging]

# The Kubernetes manifests: files or folders (read recursively) relative to this file, or
# http(s) URLs. They must hold the Deployment to roll out.
manifests:
  - path: manifests/

# How targets roll out; targets name a strategy by its key.
strategies:",
    );
    if canary {
        o.add(
            "  canary:
    canary:
      # Steps run in order. Without traffic management, a weight is reached by pod ratio;
      # after the last step the new version goes to 100% by itself.
      steps:
        - setWeight:
            weight: 20",
        );
        conditions(&mut o, features, "        ");
        if !has(Feature::Automated) && !has(Feature::Manual) {
            o.add(
                "        # Watch the new version for a while before sending it more traffic.
        - pause:
            duration: 5
            unit: minutes",
            );
        }
        o.add(
            "        - setWeight:
            weight: 50
        - pause:
            duration: 5
            unit: minutes",
        );
    } else {
        o.add(
            "  blue-green:
    blueGreen:",
        );
        if !has(Feature::Traffic) {
            o.add(
                "      # The Service switched to the new version, and the one pointed at it before the
      # switch (optional). They may instead sit under trafficManagement[].kubernetes.
      activeService: my-app
      previewService: my-app-preview",
            );
        }
        o.add(
            "      # Conditions that run in parallel while the new version runs beside the old one,
      # before production traffic switches to it.
      redirectTrafficAfter:
        # A temporary address of the preview Service: {{ferry.preview.my-app-preview}}.
        - exposeServices:
            services: [my-app-preview]
            ttl:
              duration: 30
              unit: minutes",
        );
        conditions(&mut o, features, "        ");
        o.add(
            "      # Conditions that run after the switch, before the old version is deleted; until
      # then a rollback switches back.
      shutDownOldVersionAfter:
        - pause:
            duration: 10
            unit: minutes",
        );
    }

    if has(Feature::Automated) {
        o.add(
            "
# The queries analysis steps name. A query passes when the mean of its values over a run lies
# within [lowerLimit, upperLimit]. Metric providers are configured per tenant through the API.
analysis:
  defaultMetricProviderName: prometheus
  queries:
    - name: error-rate
      queryTemplate: >-
        sum(rate(http_requests_total{code=~\"5..\",replicaset=\"{{ferry.replicaSetName}}\"}[{{ferry.promQlStepInterval}}]))
        / sum(rate(http_requests_total{replicaset=\"{{ferry.replicaSetName}}\"}[{{ferry.promQlStepInterval}}]))
      upperLimit: 0.01
    - name: p95-latency-seconds
      queryTemplate: >-
        histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{replicaset=\"{{ferry.replicaSetName}}\"}[{{ferry.promQlStepInterval}}])))
      upperLimit: 0.5",
        );
    }
    if has(Feature::Webhook) {
        o.add(
            "
# The webhooks runWebhook steps name. Unless disableCallback is true, the step waits for a
# POST to {{ferry.callbackUri}}/callback with {\"success\": true|false, \"mdMessage\": \"...\"}.
webhooks:
  - name: smoke-test
    method: POST
    uriTemplate: https://ci.example.com/hooks/smoke-test?environment={{ferry.environmentName}}
    headers:
      # Tenant secrets are set with `ferry secrets set ci_token`.
      - key: Authorization
        value: Bearer {{secrets.ci_token}}
    bodyTemplate:
      inline: >-
        {\"callbackUri\": \"{{ferry.callbackUri}}/callback\", \"replicaSet\": \"{{ferry.replicaSetName}}\"}
    retryCount: 2",
        );
    }
    if has(Feature::Traffic) {
        if canary {
            o.add(
                "
# Traffic management: weights are set on the mesh, the new version runs at full size.
# SMI (Linkerd) here; Istio is `istio: [{virtualService: {name, httpRouteName},
# destinationRule: {name, activeSubsetName, canarySubsetName}}]`.
trafficManagement:
  - targets: [staging, prod]
    smi:
      # The canary Service defaults to <root>-canary and the TrafficSplit to <root>.
      - rootServiceName: my-app",
            );
        } else {
            o.add(
                "
# Traffic management: the blue/green Services of these targets.
trafficManagement:
  - targets: [staging, prod]
    kubernetes:
      - activeService: my-app
        previewService: my-app-preview",
            );
        }
    }
    o.0
}

/// The steps the features add to a strategy's step list (indented by `indent`).
fn conditions(o: &mut Out, features: &[Feature], indent: &str) {
    let mut add = |text: &str| {
        for line in text.lines() {
            o.add(&format!("{indent}{line}"));
        }
    };
    if features.contains(&Feature::Automated) {
        add(
            "# Judge the new version: every query must pass in each of 3 one-minute runs.
- analysis:
    interval: 1
    units: minutes
    numberOfJudgmentRuns: 3
    queries: [error-rate, p95-latency-seconds]",
        );
    }
    if features.contains(&Feature::Webhook) {
        add("# Call the smoke-test webhook and wait for its callback.
- runWebhook:
    name: smoke-test
    context:
      suite: smoke");
    }
    if features.contains(&Feature::Manual) {
        add(
            "# Wait until a Release Manager (or an admin) approves: `ferry deploy approve`.
- pause:
    untilApproved: true
    requiresRoles: [Release Manager]
    approvalExpiration:
      duration: 24
      unit: hours",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_deploy::raw::RawStepKind;
    use ferry_deploy::{Overrides, Source};

    const ALL: [Feature; 4] = [
        Feature::Manual,
        Feature::Automated,
        Feature::Traffic,
        Feature::Webhook,
    ];

    /// Every subset of the features.
    fn combinations() -> Vec<Vec<Feature>> {
        (0..16u8)
            .map(|bits| {
                ALL.iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, f)| *f)
                    .collect()
            })
            .collect()
    }

    /// A Deployment and the Services the templates name, as the CLI would read `manifests/`.
    fn sources() -> Vec<Source> {
        let deployment = "apiVersion: apps/v1
kind: Deployment
metadata: {name: my-app}
spec:
  replicas: 2
  selector: {matchLabels: {app: my-app}}
  template:
    metadata: {labels: {app: my-app}}
    spec: {containers: [{name: app, image: nginx}]}
";
        let services = "apiVersion: v1
kind: Service
metadata: {name: my-app}
spec: {selector: {app: my-app}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: my-app-preview}
spec: {selector: {app: my-app}, ports: [{port: 80}]}
";
        vec![
            Source {
                path: "manifests/app.yaml".into(),
                content: deployment.into(),
            },
            Source {
                path: "manifests/services.yaml".into(),
                content: services.into(),
            },
        ]
    }

    fn steps_of(file: &ferry_deploy::DeployFile) -> Vec<&RawStepKind> {
        file.strategies
            .iter()
            .flat_map(|s| match &s.kind {
                ferry_deploy::raw::RawStrategyKind::Canary { steps } => steps.iter().collect(),
                ferry_deploy::raw::RawStrategyKind::BlueGreen {
                    redirect_traffic_after,
                    shut_down_old_version_after,
                    ..
                } => redirect_traffic_after
                    .iter()
                    .chain(shut_down_old_version_after)
                    .collect::<Vec<_>>(),
            })
            .map(|s| &s.kind)
            .collect()
    }

    #[test]
    fn every_combination_is_a_valid_file_with_what_it_asked_for() {
        let schema = jsonschema::draft7::new(&ferry_deploy::json_schema()).unwrap();
        for strategy in [TemplateStrategy::Canary, TemplateStrategy::Bluegreen] {
            for features in combinations() {
                let url = "https://ferry.example/v1/schema/deploy.json";
                let text = render(strategy, &features, url);
                let what = format!("{strategy:?} {features:?}");
                assert_eq!(
                    text.lines().next(),
                    Some(format!("# yaml-language-server: $schema={url}").as_str()),
                    "{what}"
                );
                let file = ferry_deploy::parse("deploy.yml", &text)
                    .unwrap_or_else(|d| panic!("{what}:\n{d}\n{text}"));
                assert!(file.warnings.is_empty(), "{what}: {:?}", file.warnings);
                let plan =
                    ferry_deploy::check("deploy.yml", &text, &sources(), &Overrides::default())
                        .unwrap_or_else(|d| panic!("{what}:\n{d}\n{text}"));
                assert_eq!(plan.targets.len(), 2, "{what}");

                let json = ferry_deploy::node::load(&text).unwrap()[0].to_json();
                let errors: Vec<String> =
                    schema.iter_errors(&json).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{what}: {errors:?}\n{text}");

                let steps = steps_of(&file);
                let has = |f: Feature| features.contains(&f);
                assert_eq!(
                    steps.iter().any(|s| matches!(s, RawStepKind::Analysis(_))),
                    has(Feature::Automated),
                    "{what}"
                );
                assert_eq!(!file.queries.is_empty(), has(Feature::Automated), "{what}");
                assert_eq!(
                    steps
                        .iter()
                        .any(|s| matches!(s, RawStepKind::PauseUntilApproved { .. })),
                    has(Feature::Manual),
                    "{what}"
                );
                assert_eq!(
                    steps
                        .iter()
                        .any(|s| matches!(s, RawStepKind::RunWebhook { .. })),
                    has(Feature::Webhook),
                    "{what}"
                );
                assert_eq!(!file.webhooks.is_empty(), has(Feature::Webhook), "{what}");
                assert_eq!(
                    !file.traffic_management.is_empty(),
                    has(Feature::Traffic),
                    "{what}"
                );
                // Each section is explained: a comment line precedes every top-level key but
                // the first two.
                let lines: Vec<&str> = text.lines().collect();
                for (i, line) in lines.iter().enumerate().skip(1) {
                    let top_level = line.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
                    if top_level && !line.starts_with("version") && !line.starts_with("kind") {
                        assert!(
                            lines[i - 1].starts_with('#'),
                            "{what}: no comment on {line}"
                        );
                    }
                }
            }
        }
    }
}
