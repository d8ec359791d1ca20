//! The picture of a deployment's progress, as a pure function of what the API answers
//! (`GET /v1/deployments/{id}` and, for step names, the plan from `/config`): one row for the
//! deployment, one per target (status, current step of how many, weight, ready pods, what it
//! waits for), under a rolling target what runs where (new ReplicaSet, image, size, and the
//! ReplicaSets it replaces), and under a target that waits on someone the exact command that
//! acts on it.
//!
//! Rows carry a stable key so a watcher without a terminal can print only the rows that
//! changed; [`tree`] draws them for a terminal.

use ferry_api::deployments::{DeploymentDetail, Target};
use ferry_api::status::{TargetPhase, TargetStatus};
use ferry_deploy::summary::short_step;
use ferry_deploy::{Manifest, Plan, Strategy, TargetPlan};
use serde::Deserialize;

/// One line of the picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// Stable identity across refreshes: `deployment`, `target:<name>`, `hint:<name>`.
    pub key: String,
    /// 0 for the deployment, 1 for targets, 2 for what to do about a target.
    pub depth: usize,
    /// The text.
    pub text: String,
}

/// The rows for a deployment `detail` (as `GET /v1/deployments/{id}` answers), with step
/// names from `plan` when known.
pub(crate) fn rows(detail: &DeploymentDetail, plan: Option<&Plan>) -> Vec<Row> {
    let deployment = &detail.deployment;
    let id = deployment.id;
    let by = (detail.created_by_name.as_deref())
        .map(|by| format!(", started by {by}"))
        .unwrap_or_default();
    let mut head = format!(
        "{} {id}{by}: {}",
        deployment.application,
        deployment.status.as_str().replace('_', " ")
    );
    if let Some(reason) = deployment.reason.as_deref().filter(|r| !r.is_empty()) {
        head.push_str(&format!(" ({reason})"));
    }
    let mut out = vec![Row {
        key: "deployment".into(),
        depth: 0,
        text: head,
    }];
    // Deployment order (the plan's), else as the API lists them.
    let mut targets: Vec<&Target> = detail.targets.iter().collect();
    if let Some(plan) = plan {
        targets.sort_by_key(|t| {
            (plan.targets.iter())
                .position(|p| t.name == p.name)
                .unwrap_or(usize::MAX)
        });
    }
    for target in targets {
        let name = target.name.as_str();
        let target_plan = plan.and_then(|p| p.targets.iter().find(|t| t.name == name));
        out.push(Row {
            key: format!("target:{name}"),
            depth: 1,
            text: target_line(target, target_plan) + &since(detail, target),
        });
        if deployment.status.is_terminal() {
            continue;
        }
        if !target.status.is_terminal() {
            out.extend(where_rows(target, target_plan));
        }
        let hint = (detail.pending_approvals.iter())
            .find(|a| a.target_name == name)
            .map(|a| {
                let who = if a.requires_roles.is_empty() {
                    String::new()
                } else {
                    format!(" (needs one of the roles {})", a.requires_roles.join(", "))
                };
                format!(
                    "waiting for approval{who}: ferry deploy approve {id} --target {name}   (or: ferry deploy reject {id} --target {name})"
                )
            })
            .or_else(|| {
                let timed_pause = target.status == TargetStatus::Paused
                    && (target.reason.as_deref()).is_some_and(|r| r.starts_with("paused for"));
                timed_pause.then(|| {
                    format!("to end the pause now: ferry deploy skip-pause {id} --target {name}")
                })
            });
        if let Some(text) = hint {
            out.push(Row {
                key: format!("hint:{name}"),
                depth: 2,
                text,
            });
        }
    }
    out
}

/// The part of the engine's record of a target (`observed`) that tells what runs where. The
/// record is the engine's own and may grow; what is not here is ignored, and a record this
/// CLI cannot read shows no such rows rather than wrong ones.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recorded {
    #[serde(default)]
    workloads: Vec<RecordedWorkload>,
    #[serde(default)]
    first: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordedWorkload {
    name: String,
    new_rs: String,
    /// The desired count at full size.
    replicas: i64,
    #[serde(default)]
    stable: Vec<RecordedStable>,
    /// The new ReplicaSet's size and ready pods as last observed.
    now: Option<RecordedCount>,
}

#[derive(Debug, Deserialize)]
struct RecordedStable {
    name: String,
    replicas: i64,
    #[serde(default)]
    images: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RecordedCount {
    size: i64,
    ready: i64,
}

/// `4 pods`, `1 pod`.
fn pods(n: i64) -> String {
    format!("{n} pod{}", if n == 1 { "" } else { "s" })
}

/// What runs where on a target that is rolling out: per workload, the new version's ReplicaSet
/// with its image(s), its size now against its full size and its ready pods, and the
/// ReplicaSets it replaces with their images and sizes before the rollout (from the engine's
/// record, `observed.workloads`, and the plan's manifests): `hello: new hello-7f9c6 (image
/// hello:2, 1 of 4 pods, 1 ready) replacing hello-5d4b8 (image hello:1, 4 pods before)`.
fn where_rows(target: &Target, plan: Option<&TargetPlan>) -> Vec<Row> {
    let name = &target.name;
    let Ok(recorded) = Recorded::deserialize(&target.observed) else {
        return Vec::new();
    };
    (recorded.workloads.iter())
        .map(|w| {
            let images = plan.map(|p| images_of(p, &w.name)).unwrap_or_default();
            let mut new = vec![];
            if !images.is_empty() {
                new.push(format!("image {}", images.join(", ")));
            }
            match &w.now {
                Some(now) if now.size != w.replicas => {
                    new.push(format!("{} of {}", now.size, pods(w.replicas)));
                }
                _ => new.push(pods(w.replicas)),
            }
            if let Some(now) = &w.now {
                new.push(format!("{} ready", now.ready));
            }
            let mut text = format!("{}: new {} ({})", w.name, w.new_rs, new.join(", "));
            let stable: Vec<String> = (w.stable.iter())
                .map(|s| {
                    let mut about = vec![];
                    if !s.images.is_empty() {
                        about.push(format!("image {}", s.images.join(", ")));
                    }
                    about.push(format!("{} before", pods(s.replicas)));
                    format!("{} ({})", s.name, about.join(", "))
                })
                .collect();
            if stable.is_empty() {
                text.push_str(if recorded.first {
                    ", the first version on this target"
                } else {
                    ", nothing to replace"
                });
            } else {
                text.push_str(&format!(" replacing {}", stable.join(", ")));
            }
            Row {
                key: format!("where:{name}:{}", w.name),
                depth: 2,
                text,
            }
        })
        .collect()
}

/// The container images of the plan's Deployment named `workload`.
fn images_of(plan: &TargetPlan, workload: &str) -> Vec<String> {
    (plan.manifests.iter())
        .filter(|m| m.name == workload)
        .flat_map(images)
        .collect()
}

/// The container images of a manifest that is a Deployment (none for any other kind).
pub(crate) fn images(m: &Manifest) -> Vec<String> {
    if m.kind != "Deployment" {
        return Vec::new();
    }
    m.object["spec"]["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["image"].as_str().map(str::to_string))
        .collect()
}

/// `prod-us (prod-us-cluster/hello-prod): running, step 3/5 (50%), weight 25%: canary at 50%:
/// waiting for pods (1/2 ready)`.
fn target_line(target: &Target, plan: Option<&TargetPlan>) -> String {
    let phase = target.phase.unwrap_or(TargetPhase::Pending);
    let reason = target.reason.as_deref().filter(|r| !r.is_empty());
    let mut line = format!(
        "{} ({}/{}): {}",
        target.name,
        target.account,
        target.namespace,
        target.status.as_str().replace('_', " ")
    );
    if !target.status.is_terminal() {
        match phase {
            TargetPhase::Pending => {
                let deps = plan.map(|p| p.depends_on.join(", ")).unwrap_or_default();
                if deps.is_empty() {
                    line.push_str(", not started");
                } else {
                    line.push_str(&format!(", waits for {deps}"));
                }
            }
            // The scheduler's reasons for gates already begin with the phase.
            TargetPhase::BeforeDeployment if !said(reason, "before deployment") => {
                line.push_str(", before deployment");
            }
            TargetPhase::Deploying => line.push_str(", deploying"),
            TargetPhase::Steps => line.push_str(&step_text(target, plan)),
            TargetPhase::Promoting if !said(reason, "promoting") => {
                line.push_str(", promoting to 100%");
            }
            TargetPhase::AfterDeployment if !said(reason, "after deployment") => {
                line.push_str(", after deployment");
            }
            _ => {}
        }
        if let Some(w) = target.observed["weight"].as_u64() {
            line.push_str(&format!(", weight {w}%"));
        }
    }
    if let Some(reason) = reason.filter(|r| *r != "started") {
        line.push_str(&format!(": {reason}"));
    }
    line
}

/// ` (since 10:16:40)`: when a target still on its way entered what it is doing, from its last
/// step record (UTC, to the second; a time, not a running duration, so the line stays the same
/// between refreshes and a watcher without a terminal prints it once).
fn since(detail: &DeploymentDetail, target: &Target) -> String {
    if target.status == TargetStatus::Pending || target.status.is_terminal() {
        return String::new();
    }
    (detail.steps.iter())
        .filter(|s| s.target_name == target.name)
        .map(|s| s.created_at)
        .max()
        .map_or_else(String::new, |at| {
            format!(" (since {})", at.format("%H:%M:%S"))
        })
}

/// Whether `reason` already starts with `phase`.
fn said(reason: Option<&str>, phase: &str) -> bool {
    reason.is_some_and(|r| r.starts_with(phase))
}

/// `, step 3/5 (50%)` for a canary target in its steps.
fn step_text(target: &Target, plan: Option<&TargetPlan>) -> String {
    let index = usize::try_from(target.step_index).unwrap_or(0);
    let steps = plan.and_then(|p| match &p.strategy {
        Strategy::Canary { steps } => Some(steps),
        _ => None,
    });
    match steps {
        Some(steps) if index < steps.len() => format!(
            ", step {}/{} ({})",
            index + 1,
            steps.len(),
            short_step(&steps[index])
        ),
        _ => format!(", step {}", index + 1),
    }
}

/// The rows as an indented tree for a terminal.
pub(crate) fn tree(rows: &[Row]) -> String {
    let mut out = String::new();
    let targets: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.depth == 1)
        .map(|(i, _)| i)
        .collect();
    let last_target = targets.last().copied();
    for (i, row) in rows.iter().enumerate() {
        let after_last = last_target.is_some_and(|last| i > last);
        let prefix = match row.depth {
            0 => "",
            1 if Some(i) == last_target => "└─ ",
            1 => "├─ ",
            _ if after_last => "     → ",
            _ => "│    → ",
        };
        out.push_str(prefix);
        out.push_str(&row.text);
        out.push('\n');
    }
    out
}

/// Rows of `now` whose text differs from the same key in `before` (new keys included), for
/// printing one line per change.
pub(crate) fn changed<'a>(before: &[Row], now: &'a [Row]) -> Vec<&'a Row> {
    now.iter()
        .filter(|r| !before.iter().any(|b| b.key == r.key && b.text == r.text))
        .collect()
}

#[cfg(test)]
mod tests {
    use ferry_deploy::{Overrides, Source};
    use serde_json::{Value, json};

    use super::*;

    const FILE: &str = r#"
application: hello
targets:
  staging: {account: staging-cluster, namespace: hello, strategy: quick}
  prod-us:
    account: prod-us-cluster
    namespace: hello-prod
    strategy: canary
    constraints:
      dependsOn: [staging]
manifests:
  - path: app.yaml
strategies:
  quick:
    canary:
      steps:
        - setWeight: 100
  canary:
    canary:
      steps:
        - setWeight: 25
        - pause: {duration: 30, unit: seconds}
        - setWeight: 50
        - pause: {untilApproved: true}
        - setWeight: 100
"#;

    const APP: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: hello}\nspec:\n  replicas: 4\n  selector: {matchLabels: {app: hello}}\n  template:\n    metadata: {labels: {app: hello}}\n    spec: {containers: [{name: c, image: hello:1}]}\n";

    fn plan() -> Plan {
        let sources = [Source {
            path: "app.yaml".into(),
            content: APP.into(),
        }];
        ferry_deploy::check("deploy.yml", FILE, &sources, &Overrides::default())
            .unwrap_or_else(|d| panic!("{d}"))
    }

    fn target(
        name: &str,
        status: &str,
        phase: &str,
        step: i64,
        reason: &str,
        weight: Option<u8>,
    ) -> Value {
        let account = if name == "staging" {
            "staging-cluster"
        } else {
            "prod-us-cluster"
        };
        let namespace = if name == "staging" {
            "hello"
        } else {
            "hello-prod"
        };
        json!({"name": name, "account": account, "namespace": namespace, "status": status,
            "phase": phase, "step_index": step, "reason": reason,
            "observed": weight.map_or(json!({}), |w| json!({"weight": w}))})
    }

    fn detail(status: &str, targets: Vec<Value>, approvals: Vec<Value>) -> Value {
        json!({"deployment": {"application": "hello", "status": status, "reason": null},
            "targets": targets, "steps": [], "pending_approvals": approvals})
    }

    /// The deployment id of the tests' details, shown as `d-1` in the expected rows.
    const ID: &str = "0193a0b0-0000-7000-8000-000000000001";

    /// `value` with the fields of `defaults` it lacks.
    fn filled(value: &Value, defaults: &Value) -> Value {
        let mut out = defaults.clone();
        for (k, v) in value.as_object().into_iter().flatten() {
            out[k] = v.clone();
        }
        out
    }

    /// The API's detail from the parts of it a test names (ids, versions and times filled in).
    fn typed(detail: &Value) -> DeploymentDetail {
        let tenant = "0193a0b0-0000-7000-8000-00000000000a";
        let at = "2026-12-04T10:00:00Z";
        let each = |key: &str, defaults: Value| -> Value {
            let items = detail[key].as_array().into_iter().flatten();
            Value::Array(items.map(|item| filled(item, &defaults)).collect())
        };
        let full = json!({
            "created_by_name": detail["created_by_name"],
            "deployment": filled(&detail["deployment"], &json!({"tenant_id": tenant, "id": ID,
                "created_by": "someone", "version": 1, "last_event_seq": 0, "started_at": at,
                "ended_at": null, "created_at": at, "updated_at": at})),
            "targets": each("targets", json!({"tenant_id": tenant, "deployment_id": ID,
                "desired": {}, "observed": {}, "step_index": 0, "reason": null, "phase": null,
                "version": 1, "started_at": null, "ended_at": null, "created_at": at,
                "updated_at": at})),
            "steps": each("steps", json!({"id": 1, "step_index": null, "reason": ""})),
            "pending_approvals": each("pending_approvals", json!({"tenant_id": tenant,
                "id": "0193a0b0-0000-7000-8000-0000000000ff", "deployment_id": ID,
                "step_key": "step:0", "requires_roles": [], "expires_at": null,
                "decision": null, "decided_by": null, "decided_at": null, "created_at": at})),
        });
        serde_json::from_value(full).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`super::rows`] of the typed `detail`, with its id written `d-1`.
    fn rows(detail: &Value, plan: Option<&Plan>) -> Vec<Row> {
        let mut rows = super::rows(&typed(detail), plan);
        for row in &mut rows {
            row.text = row.text.replace(ID, "d-1");
        }
        rows
    }

    #[test]
    fn a_running_canary_shows_step_weight_pods_and_dependencies() {
        let d = detail(
            "running",
            // Listed by name by the API; shown in deployment order.
            vec![
                target("prod-us", "pending", "pending", 0, "", None),
                target(
                    "staging",
                    "running",
                    "steps",
                    0,
                    "canary at 100%: waiting for pods (2/4 ready)",
                    None,
                ),
            ],
            vec![],
        );
        let rows = rows(&d, Some(&plan()));
        let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "hello d-1: running",
                "staging (staging-cluster/hello): running, step 1/1 (100%): canary at 100%: waiting for pods (2/4 ready)",
                "prod-us (prod-us-cluster/hello-prod): pending, waits for staging",
            ]
        );
        assert_eq!(rows[1].key, "target:staging");
    }

    #[test]
    fn waiting_targets_show_the_command_that_acts_on_them() {
        let d = detail(
            "running",
            vec![
                target("staging", "paused", "steps", 1, "paused for 30s", Some(25)),
                target(
                    "prod-us",
                    "running",
                    "steps",
                    3,
                    "waiting for approval",
                    Some(50),
                ),
            ],
            vec![
                json!({"target_name": "prod-us", "step_key": "step:3", "requires_roles": ["Release Manager"]}),
            ],
        );
        let rows = rows(&d, Some(&plan()));
        let text = tree(&rows);
        assert_eq!(
            text,
            "hello d-1: running\n\
             ├─ staging (staging-cluster/hello): paused, step 2, weight 25%: paused for 30s\n\
             │    → to end the pause now: ferry deploy skip-pause d-1 --target staging\n\
             └─ prod-us (prod-us-cluster/hello-prod): running, step 4/5 (approval), weight 50%: waiting for approval\n     \
             → waiting for approval (needs one of the roles Release Manager): ferry deploy approve d-1 --target prod-us   (or: ferry deploy reject d-1 --target prod-us)\n"
        );
    }

    #[test]
    fn an_ended_deployment_shows_outcomes_without_hints() {
        let mut d = detail(
            "rolled_back",
            vec![
                target("staging", "succeeded", "done", 1, "deployed", Some(100)),
                target(
                    "prod-us",
                    "rolled_back",
                    "done",
                    0,
                    "rolled back: pods not ready after 10m",
                    Some(25),
                ),
            ],
            vec![json!({"target_name": "prod-us", "requires_roles": []})],
        );
        d["deployment"]["reason"] = json!("target prod-us rolled back");
        d["created_by_name"] = json!("alice@example.com");
        let rows = rows(&d, None);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0].text,
            "hello d-1, started by alice@example.com: rolled back (target prod-us rolled back)"
        );
        assert_eq!(
            rows[1].text,
            "staging (staging-cluster/hello): succeeded: deployed"
        );
        assert_eq!(
            rows[2].text,
            "prod-us (prod-us-cluster/hello-prod): rolled back: rolled back: pods not ready after 10m"
        );
        assert!(typed(&d).deployment.status.is_terminal());
    }

    #[test]
    fn gates_are_named_once() {
        let d = detail(
            "paused",
            vec![
                target("staging", "running", "before_deployment", 0, "", None),
                target(
                    "prod-us",
                    "paused",
                    "before_deployment",
                    0,
                    "before deployment: waiting for approval (roles: Release Manager)",
                    None,
                ),
            ],
            vec![],
        );
        let rows = rows(&d, Some(&plan()));
        assert_eq!(
            rows[1].text,
            "staging (staging-cluster/hello): running, before deployment"
        );
        assert_eq!(
            rows[2].text,
            "prod-us (prod-us-cluster/hello-prod): paused: before deployment: waiting for approval (roles: Release Manager)"
        );
    }

    #[test]
    fn a_rolling_target_shows_what_runs_where() {
        let mut prod = target(
            "prod-us",
            "running",
            "steps",
            2,
            "canary at 50%: waiting for pods (1/2 ready)",
            Some(25),
        );
        prod["observed"]["workloads"] = json!([{
            "name": "hello", "namespace": "hello-prod", "newRs": "hello-7f9c6",
            "newInitial": 0, "replicas": 4,
            "stable": [{"name": "hello-5d4b8", "replicas": 4, "images": ["hello:0"]},
                {"name": "hello-1a2b3", "replicas": 1}],
            "now": {"size": 2, "ready": 1}
        }]);
        let mut staging = target("staging", "running", "promoting", 0, "promoting", None);
        staging["observed"] = json!({"first": true, "workloads": [{
            "name": "hello", "namespace": "hello", "newRs": "hello-7f9c6",
            "newInitial": 0, "replicas": 1, "stable": []
        }]});
        let plan = plan();
        let picture = rows(
            &detail("running", vec![staging, prod.clone()], vec![]),
            Some(&plan),
        );
        let texts: Vec<(&str, &str)> = picture
            .iter()
            .filter(|r| r.key.starts_with("where:"))
            .map(|r| (r.key.as_str(), r.text.as_str()))
            .collect();
        assert_eq!(
            texts,
            [
                (
                    "where:staging:hello",
                    "hello: new hello-7f9c6 (image hello:1, 1 pod), the first version on this target"
                ),
                (
                    "where:prod-us:hello",
                    "hello: new hello-7f9c6 (image hello:1, 2 of 4 pods, 1 ready) replacing hello-5d4b8 (image hello:0, 4 pods before), hello-1a2b3 (1 pod before)"
                ),
            ]
        );
        // Drawn under its target, before any hint.
        let drawn = tree(&picture);
        let at = |needle: &str| {
            drawn
                .find(needle)
                .unwrap_or_else(|| panic!("{needle} in {drawn}"))
        };
        assert!(at("prod-us (") < at("replacing hello-5d4b8"));
        // A target that ended no longer says what runs where (the old version is gone or
        // back), nor does an ended deployment.
        let mut done = prod.clone();
        done["status"] = json!("succeeded");
        let picture = rows(&detail("running", vec![done], vec![]), Some(&plan));
        assert!(picture.iter().all(|r| !r.key.starts_with("where:")));
        let ended = rows(&detail("succeeded", vec![prod], vec![]), Some(&plan));
        assert!(ended.iter().all(|r| !r.key.starts_with("where:")));
    }

    #[test]
    fn a_target_on_its_way_says_since_when_it_does_what_it_does() {
        let prod = target(
            "prod-us",
            "paused",
            "steps",
            3,
            "waiting for approval",
            Some(50),
        );
        let done = target("staging", "succeeded", "done", 0, "deployed", None);
        let mut detail = detail("paused", vec![done, prod], vec![]);
        detail["steps"] = json!([
            {"target_name": "staging", "status": "succeeded", "created_at": "2026-12-04T10:01:00Z"},
            {"target_name": "prod-us", "status": "succeeded", "created_at": "2026-12-04T10:15:02Z"},
            {"target_name": "prod-us", "status": "waiting", "created_at": "2026-12-04T10:16:40.5+00:00"},
        ]);
        let picture = rows(&detail, Some(&plan()));
        let text = |key: &str| picture.iter().find(|r| r.key == key).unwrap().text.clone();
        assert!(
            text("target:prod-us").ends_with(": waiting for approval (since 10:16:40)"),
            "{}",
            text("target:prod-us")
        );
        assert!(
            !text("target:staging").contains("since"),
            "{}",
            text("target:staging")
        );
    }

    #[test]
    fn only_changed_rows_are_reprinted() {
        let before = rows(
            &detail(
                "running",
                vec![target("staging", "running", "deploying", 0, "", None)],
                vec![],
            ),
            None,
        );
        let now = rows(
            &detail(
                "running",
                vec![target(
                    "staging",
                    "running",
                    "steps",
                    0,
                    "canary at 100% (4/4 pods ready)",
                    Some(100),
                )],
                vec![],
            ),
            None,
        );
        let changed = changed(&before, &now);
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].key, "target:staging");
        assert!(super::changed(&now, &now).is_empty());
    }
}
