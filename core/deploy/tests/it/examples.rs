//! The shipped examples: every `hello-ferry` file validates into the expected plan, every
//! `invalid` file is rejected at the path and line its header names.

use std::fs;

use ferry_deploy::{InProgressPolicy, LookbackMethod, NetworkMode, Pause, Plan, Step, Strategy};

use crate::support::{check_path, deploy_files, examples_dir};

fn example(name: &str) -> Plan {
    let path = examples_dir().join("hello-ferry").join(name);
    match check_path(&path) {
        Ok(plan) => plan,
        Err(d) => panic!("{name} must validate:\n{d}"),
    }
}

fn names(plan: &Plan) -> Vec<&str> {
    plan.targets.iter().map(|t| t.name.as_str()).collect()
}

#[test]
fn every_hello_ferry_example_validates() {
    let files = deploy_files("hello-ferry");
    assert_eq!(files.len(), 7, "{files:?}");
    for path in files {
        let plan = check_path(&path).unwrap_or_else(|d| panic!("{}:\n{d}", path.display()));
        assert_eq!(plan.application, "hello-ferry");
        assert!(!plan.targets.is_empty());
        for t in &plan.targets {
            assert!(!t.manifests.is_empty(), "{} has no manifests", t.name);
            // The target's namespace is forced onto every namespaced object.
            for m in &t.manifests {
                assert_eq!(m.namespace, t.namespace);
                assert_eq!(
                    m.object["metadata"]["namespace"].as_str(),
                    t.namespace.as_deref()
                );
            }
        }
        // The plan survives the JSON round trip the scheduler does through Postgres.
        let json = serde_json::to_string(&plan).unwrap();
        let back: Plan = serde_json::from_str(&json).unwrap();
        assert_eq!(back, plan);
    }
}

#[test]
fn canary_example_orders_four_targets_and_normalises_steps() {
    let plan = example("deploy-canary.yml");
    assert_eq!(names(&plan), ["dev", "staging", "prod-us", "prod-eu"]);
    assert_eq!(plan.deployment_config.timeout_secs, 600);
    assert_eq!(
        plan.deployment_config.if_deployment_in_progress,
        InProgressPolicy::Reject
    );
    assert_eq!(
        plan.description.as_deref(),
        Some("Greeting service, canary through four environments")
    );
    let prod_us = &plan.targets[2];
    assert_eq!(prod_us.account, "prod-us-cluster");
    assert_eq!(prod_us.depends_on, ["staging"]);
    assert_eq!(
        prod_us.before_deployment,
        [Step::Pause {
            pause: Pause::UntilApproved {
                requires_roles: vec!["Release Manager".into()],
                expiration_secs: None
            }
        }]
    );
    let Strategy::Canary { steps } = &prod_us.strategy else {
        panic!("prod-us is a canary")
    };
    assert_eq!(steps.len(), 5);
    assert_eq!(steps[0], Step::SetWeight { weight: 25 });
    assert_eq!(
        steps[1],
        Step::Pause {
            pause: Pause::Duration(30)
        }
    );
    // Deployment + ConfigMap + Service.
    assert_eq!(prod_us.manifests.len(), 3);
    let summary = plan.summary();
    assert!(
        summary.contains("25% → pause 30s → 50% → approval → 100%"),
        "{summary}"
    );
    assert!(summary.contains("dependsOn: staging"), "{summary}");
    assert!(
        summary.contains("before: approval (Release Manager)"),
        "{summary}"
    );
}

#[test]
fn analysis_example_resolves_queries_webhooks_and_context() {
    let plan = example("deploy-analysis.yml");
    assert_eq!(names(&plan), ["staging", "prod"]);
    let staging = &plan.targets[0];
    let Step::RunWebhook { webhook, context } = &staging.after_deployment[0] else {
        panic!("staging runs a webhook after deployment")
    };
    assert_eq!(webhook.name, "integration-tests");
    assert_eq!(webhook.network_mode, NetworkMode::RemoteNetworkAgent);
    assert_eq!(webhook.retry_count, 3);
    assert_eq!(webhook.headers.len(), 2);
    assert_eq!(context["suite"], "smoke");
    assert_eq!(context["owner"], "team-greetings");
    let prod = &plan.targets[1];
    let Strategy::Canary { steps } = &prod.strategy else {
        panic!("prod is a canary")
    };
    let Step::Analysis(a) = &steps[1] else {
        panic!("second step is an analysis")
    };
    assert_eq!(a.interval_secs, 30);
    assert_eq!(a.number_of_judgment_runs, 3);
    assert_eq!(a.lookback_method, LookbackMethod::Growing);
    assert_eq!(a.context["slo"], "99.5");
    assert_eq!(a.queries.len(), 2);
    assert_eq!(a.queries[0].name, "error-rate");
    assert_eq!(a.queries[0].upper_limit, Some(1.0));
    assert_eq!(a.queries[0].lower_limit, Some(0.0));
    assert_eq!(a.queries[1].lower_limit, None);
    assert_eq!(
        a.queries[1].metric_provider_name.as_deref(),
        Some("prometheus-prod")
    );
    assert_eq!(plan.webhooks.len(), 2);
    assert!(plan.webhooks[1].disable_callback);
    assert_eq!(plan.queries.len(), 2);
}

#[test]
fn blue_green_example_takes_services_from_traffic_management() {
    let plan = example("deploy-bluegreen.yml");
    let prod = &plan.targets[0];
    let Strategy::BlueGreen {
        active_service,
        preview_service,
        redirect_traffic_after,
        shut_down_old_version_after,
    } = &prod.strategy
    else {
        panic!("prod is blue/green: {:?}", prod.strategy)
    };
    assert_eq!(active_service, "hello-ferry");
    assert_eq!(preview_service.as_deref(), Some("hello-ferry-preview"));
    assert_eq!(
        redirect_traffic_after[0],
        Step::ExposeServices {
            services: vec!["hello-ferry-preview".into()],
            ttl_secs: 1800
        }
    );
    assert_eq!(
        redirect_traffic_after[1],
        Step::Pause {
            pause: Pause::UntilApproved {
                requires_roles: vec![],
                expiration_secs: Some(7200)
            }
        }
    );
    assert_eq!(
        shut_down_old_version_after[0],
        Step::Pause {
            pause: Pause::Duration(60)
        }
    );
    // The whole manifests/ folder: app (2 objects), 2 services, istio routing (2 objects).
    assert_eq!(prod.manifests.len(), 6);
}

#[test]
fn mesh_examples_carry_their_traffic_management() {
    let istio = example("deploy-istio.yml");
    let t = &istio.targets[0];
    assert_eq!(t.traffic_management.istio.len(), 1);
    assert_eq!(t.traffic_management.istio[0].virtual_service, "hello-ferry");
    assert_eq!(t.manifests.len(), 5);

    let smi = example("deploy-smi.yml");
    let t = &smi.targets[0];
    assert_eq!(t.traffic_management.smi.len(), 1);
    assert_eq!(
        t.traffic_management.smi[0].canary_service_name,
        "hello-ferry-canary"
    );
    assert_eq!(
        t.traffic_management.smi[0].traffic_split_name,
        "hello-ferry"
    );
    let Strategy::Canary { steps } = &t.strategy else {
        panic!("canary")
    };
    // The `setWeight: 10` shorthand.
    assert_eq!(steps[0], Step::SetWeight { weight: 10 });
    assert!(smi.summary().contains("10% → pause 20s → 60% → 100%"));

    let gateway = example("deploy-gateway.yml");
    let t = &gateway.targets[0];
    assert_eq!(t.traffic_management.gateway_api.len(), 1);
    let route = &t.traffic_management.gateway_api[0];
    assert_eq!(
        (
            route.http_route_name.as_str(),
            route.canary_service_name.as_str()
        ),
        ("hello-ferry", "hello-ferry-canary")
    );
    assert!(t.manifests.iter().any(|m| m.kind == "HTTPRoute"));
    assert!(
        gateway.summary().contains("traffic: httproute hello-ferry"),
        "{}",
        gateway.summary()
    );
}

#[test]
fn rolling_example_is_a_single_step_canary() {
    let plan = example("deploy-rolling.yml");
    assert_eq!(names(&plan), ["dev"]);
    assert_eq!(
        plan.targets[0].strategy,
        Strategy::Canary {
            steps: vec![Step::SetWeight { weight: 100 }]
        }
    );
}

/// The header: `# error: a | b` and `# line: 11 12`.
fn header(text: &str) -> (Vec<String>, Vec<usize>) {
    let mut lines = text.lines();
    let paths = lines
        .next()
        .and_then(|l| l.strip_prefix("# error:"))
        .expect("first line names the path")
        .split('|')
        .map(|p| p.trim().to_string())
        .collect();
    let numbers = lines
        .next()
        .and_then(|l| l.strip_prefix("# line:"))
        .expect("second line names the lines")
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    (paths, numbers)
}

#[test]
fn every_invalid_example_is_rejected_where_its_header_says() {
    let files = deploy_files("invalid");
    assert_eq!(files.len(), 10, "{files:?}");
    for path in files {
        let text = fs::read_to_string(&path).unwrap();
        let (paths, lines) = header(&text);
        let Err(diags) = check_path(&path) else {
            panic!("{} must be rejected", path.display())
        };
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            diags
                .items()
                .iter()
                .any(|d| d.file == name && paths.contains(&d.path) && lines.contains(&d.line)),
            "{name}: expected one of {paths:?} at one of lines {lines:?}, got:\n{diags}"
        );
    }
}

#[test]
fn invalid_examples_say_what_is_wrong() {
    let check = |name: &str| {
        let path = examples_dir().join("invalid").join(name);
        check_path(&path).unwrap_err().to_string()
    };
    let out = check("unknown-strategy.yml");
    assert!(
        out.contains(
            "unknown-strategy.yml:9:15: targets.prod.strategy: unknown strategy \"canery\"; did you mean \"canary\"?"
        ),
        "{out}"
    );
    let out = check("unknown-key.yml");
    assert!(
        out.contains("unknown-key.yml:9:5: targets.dev.stratgy: unknown key \"stratgy\"; did you mean \"strategy\"?"),
        "{out}"
    );
    let out = check("unknown-webhook.yml");
    assert!(out.contains("did you mean \"smoke-test\"?"), "{out}");
    let out = check("unknown-query.yml");
    assert!(out.contains("did you mean \"error-rate\"?"), "{out}");
    let out = check("depends-cycle.yml");
    assert!(out.contains("dependsOn cycle: a → b → a"), "{out}");
    let out = check("bad-yaml.yml");
    assert!(out.starts_with("bad-yaml.yml:9:"), "{out}");
}
