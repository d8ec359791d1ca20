//! helm/ferry's Grafana dashboards: each one parses, every expression names only metrics the
//! code exports (docs/metrics.md, which each crate's test keeps equal to what it registers) and
//! parses as PromQL (promtool), and the chart ships them as ConfigMaps for the Grafana sidecar.

use crate::support::{ferry_values, rendered};
use ferry_chart_tests::dashboards::{exported_series, expressions, metric_names, variable_metrics};
use ferry_chart_tests::workspace;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// The dashboards the chart ships, by file name.
const DASHBOARDS: &[&str] = &["agents-hub", "bus-outbox", "deployments", "overview"];

fn dashboards() -> BTreeMap<String, Value> {
    let dir = workspace::root().join("helm/ferry/dashboards");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        assert_eq!(
            path.extension().and_then(|e| e.to_str()),
            Some("json"),
            "{} is not a dashboard (.json)",
            path.display()
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        out.insert(name, value);
    }
    out
}

#[test]
fn every_dashboard_expression_names_a_metric_the_code_exports() {
    let exported = exported_series(&workspace::read("docs/metrics.md")).unwrap();
    assert!(
        exported.len() > 50,
        "docs/metrics.md lists {} series",
        exported.len()
    );
    let boards = dashboards();
    assert_eq!(
        boards.keys().map(String::as_str).collect::<Vec<_>>(),
        DASHBOARDS
    );
    let mut uids = BTreeSet::new();
    let mut used = BTreeSet::new();
    let mut unknown = Vec::new();
    for (file, board) in &boards {
        let uid = board["uid"]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: no uid"));
        assert!(uids.insert(uid.to_string()), "{file}: uid {uid} used twice");
        assert!(
            board["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("Ferry / ")),
            "{file}: title"
        );
        let exprs = expressions(board);
        assert!(exprs.len() >= 8, "{file}: only {} expressions", exprs.len());
        for (at, expr) in &exprs {
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{file}: {at}: no metric in {expr:?}");
            for name in names {
                if !exported.contains(&name) {
                    unknown.push(format!("{file}: {at}: {name} (in {expr})"));
                }
                used.insert(name);
            }
            // A quantile is of a histogram's buckets, summed by `le`.
            if expr.contains("histogram_quantile(") {
                assert!(
                    expr.contains("_bucket{") && expr.contains("(le"),
                    "{file}: {at}: {expr}"
                );
            }
        }
        for (variable, metric) in variable_metrics(board) {
            if !exported.contains(&metric) {
                unknown.push(format!("{file}: variable {variable}: {metric}"));
            }
        }
        // Every panel queries the dashboard's data source variable.
        for panel in board["panels"].as_array().unwrap() {
            if panel["type"] != "row" {
                assert_eq!(
                    panel["datasource"]["uid"], "${datasource}",
                    "{file}: {}",
                    panel["title"]
                );
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "metrics the code does not export:\n{}",
        unknown.join("\n")
    );
    // The dashboards cover every area the metrics do.
    for prefix in [
        "ferry_http_",
        "ferry_grpc_",
        "ferry_hub_",
        "ferry_tunnel_",
        "ferry_bus_",
        "ferry_outbox_",
        "ferry_canary_",
        "ferry_webhook_",
        "ferry_deployment",
        "ferry_approvals_",
        "ferry_approval_wait_",
        "ferry_step_",
        "ferry_scheduler_",
        "process_",
    ] {
        assert!(
            used.iter().any(|n| n.starts_with(prefix)),
            "no dashboard uses {prefix}*"
        );
    }
}

/// Each expression, with the dashboard variables given values, parses as PromQL: promtool
/// checks them as recording rules.
#[test]
fn every_dashboard_expression_parses_as_promql() {
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    let mut count = 0;
    for (file, board) in dashboards() {
        for (at, expr) in expressions(&board) {
            let concrete = expr
                .replace("$__rate_interval", "1m")
                .replace("$namespace", ".*");
            count += 1;
            rules.push_str(&format!(
                "      - record: dashboard:expr{count}\n        # {file}: {}\n        expr: {}\n",
                at.replace('\n', " "),
                serde_json::to_string(&concrete).unwrap()
            ));
        }
    }
    let path =
        std::env::temp_dir().join(format!("ferry-dashboards-{}.rules.yml", std::process::id()));
    std::fs::write(&path, &rules).unwrap();
    let output = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("promtool (Debian's prometheus package; scripts/deps.sh installs it)");
    let _ = std::fs::remove_file(&path);
    assert!(
        output.status.success(),
        "promtool refused a dashboard expression:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains(&format!("{count} rules found")));
}

#[test]
fn dashboards_ship_as_configmaps_for_the_grafana_sidecar() {
    let r = rendered("ferry", "ferry", &ferry_values(json!({})));
    let maps = r.kind("ConfigMap");
    let boards = dashboards();
    assert_eq!(maps.len(), boards.len(), "{:?}", r.names());
    for (file, board) in &boards {
        let name = format!("ferry-dashboard-{file}");
        let map = r.get("ConfigMap", &name);
        assert_eq!(
            map["metadata"]["labels"]["grafana_dashboard"], "1",
            "{name}"
        );
        assert_eq!(
            map["metadata"]["labels"]["app.kubernetes.io/part-of"],
            "ferry"
        );
        let data = map["data"][format!("ferry-{file}.json")]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no ferry-{file}.json"));
        let shipped: Value = serde_json::from_str(data).unwrap();
        assert_eq!(&shipped, board, "{name} differs from the dashboard file");
    }

    let r = rendered(
        "ferry",
        "ferry",
        &ferry_values(json!({"metrics": {"dashboards": {
            "labels": {"grafana_dashboard": "ferry", "team": "platform"},
            "annotations": {"grafana_folder": "Ferry"}}}})),
    );
    let map = r.get("ConfigMap", "ferry-dashboard-overview");
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "ferry");
    assert_eq!(map["metadata"]["labels"]["team"], "platform");
    assert_eq!(map["metadata"]["annotations"]["grafana_folder"], "Ferry");

    let r = rendered(
        "ferry",
        "ferry",
        &ferry_values(json!({"metrics": {"dashboards": {"enabled": false}}})),
    );
    assert!(r.kind("ConfigMap").is_empty(), "{:?}", r.names());
}
