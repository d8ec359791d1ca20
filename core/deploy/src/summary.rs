//! The one-screen, human summary of a plan printed by `ferry deploy validate`.

use std::fmt::Write as _;

use crate::plan::{Pause, Plan, Step, Strategy, TargetPlan};

/// `90s` → `1m30s`, `7200` → `2h`.
pub fn short_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if s > 0 || out.is_empty() {
        let _ = write!(out, "{s}s");
    }
    out
}

/// A step in short form: `25%`, `pause 30s`, `approval`, `analysis error-rate 3×30s`, ….
pub fn short_step(step: &Step) -> String {
    match step {
        Step::SetWeight { weight } => format!("{weight}%"),
        Step::Pause {
            pause: Pause::Duration(secs),
        } => format!("pause {}", short_duration(*secs)),
        Step::Pause {
            pause: Pause::UntilApproved { requires_roles, .. },
        } if requires_roles.is_empty() => "approval".to_string(),
        Step::Pause {
            pause: Pause::UntilApproved { requires_roles, .. },
        } => format!("approval ({})", requires_roles.join(", ")),
        Step::Analysis(a) => format!(
            "analysis {} {}×{}",
            a.queries
                .iter()
                .map(|q| q.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
            a.number_of_judgment_runs,
            short_duration(a.interval_secs)
        ),
        Step::RunWebhook { webhook, .. } => format!("webhook {}", webhook.name),
        Step::ExposeServices { services, ttl_secs } => {
            format!(
                "expose {} for {}",
                services.join(","),
                short_duration(*ttl_secs)
            )
        }
    }
}

/// Steps joined with arrows.
pub fn short_steps(steps: &[Step]) -> String {
    steps.iter().map(short_step).collect::<Vec<_>>().join(" → ")
}

fn strategy_line(t: &TargetPlan) -> String {
    let name = t
        .strategy_name
        .as_deref()
        .map(|n| format!(" \"{n}\""))
        .unwrap_or_default();
    match &t.strategy {
        Strategy::Direct => match &t.strategy_name {
            Some(_) => format!("direct{name} (no Deployment among the manifests)"),
            None => "direct".to_string(),
        },
        Strategy::Canary { steps } => {
            let mut line = short_steps(steps);
            // The canary reaches 100% by itself after the last step; show it.
            if !matches!(steps.last(), Some(Step::SetWeight { weight: 100 })) {
                if !line.is_empty() {
                    line.push_str(" → ");
                }
                line.push_str("100%");
            }
            format!("canary{name}: {line}")
        }
        Strategy::BlueGreen {
            active_service,
            preview_service,
            redirect_traffic_after,
            shut_down_old_version_after,
        } => {
            let preview = preview_service
                .as_ref()
                .map_or_else(|| "no preview".to_string(), |p| format!("preview {p}"));
            format!(
                "blueGreen{name}: {preview} → [{}] → switch {active_service} → [{}] → old version deleted",
                short_steps(redirect_traffic_after),
                short_steps(shut_down_old_version_after)
            )
        }
    }
}

impl Plan {
    /// A one-screen summary: application, then each target in order with its account,
    /// namespace, strategy and steps, dependencies, constraints and manifest count.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = write!(out, "application: {}", self.application);
        if let Some(d) = &self.description {
            let _ = write!(out, " ({d})");
        }
        out.push('\n');
        if !self.context.is_empty() {
            let ctx: Vec<String> = self
                .context
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(out, "context: {}", ctx.join(", "));
        }
        let _ = writeln!(
            out,
            "timeout: {}, if a deployment is in progress: {}",
            short_duration(self.deployment_config.timeout_secs),
            match self.deployment_config.if_deployment_in_progress {
                crate::plan::InProgressPolicy::Reject => "reject",
                crate::plan::InProgressPolicy::EnqueueOne => "enqueueOne",
            }
        );
        let _ = writeln!(
            out,
            "targets ({}, in deployment order):",
            self.targets.len()
        );
        for (i, t) in self.targets.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {}. {}  account {}, namespace {}",
                i + 1,
                t.name,
                t.account,
                t.namespace.as_deref().unwrap_or("(from manifests)")
            );
            if !t.depends_on.is_empty() {
                let _ = writeln!(out, "     dependsOn: {}", t.depends_on.join(", "));
            }
            if !t.before_deployment.is_empty() {
                let _ = writeln!(out, "     before: {}", short_list(&t.before_deployment));
            }
            let _ = writeln!(out, "     strategy: {}", strategy_line(t));
            if !t.traffic_management.is_empty() {
                let tm = &t.traffic_management;
                let mut parts = Vec::new();
                parts.extend(
                    tm.istio
                        .iter()
                        .map(|i| format!("istio {}", i.virtual_service)),
                );
                parts.extend(
                    tm.smi
                        .iter()
                        .map(|s| format!("smi {}", s.traffic_split_name)),
                );
                parts.extend(
                    tm.gateway_api
                        .iter()
                        .map(|g| format!("httproute {}", g.http_route_name)),
                );
                parts.extend(tm.kubernetes.iter().map(|k| match &k.preview_service {
                    Some(preview) => format!("services {}/{preview}", k.active_service),
                    None => format!("services {}", k.active_service),
                }));
                let _ = writeln!(out, "     traffic: {}", parts.join(", "));
            }
            if !t.after_deployment.is_empty() {
                let _ = writeln!(out, "     after: {}", short_list(&t.after_deployment));
            }
            let _ = write!(out, "     manifests: {}", t.manifests.len());
            if !t.remote_manifests.is_empty() {
                let _ = write!(
                    out,
                    " (+{} fetched by the server)",
                    t.remote_manifests.len()
                );
            }
            out.push('\n');
        }
        out
    }
}

/// Constraint steps run in parallel, so they are listed, not chained.
fn short_list(steps: &[Step]) -> String {
    steps.iter().map(short_step).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_short() {
        assert_eq!(short_duration(30), "30s");
        assert_eq!(short_duration(90), "1m30s");
        assert_eq!(short_duration(7200), "2h");
        assert_eq!(short_duration(0), "0s");
    }

    #[test]
    fn canary_steps_read_like_the_brief() {
        let steps = vec![
            Step::SetWeight { weight: 25 },
            Step::Pause {
                pause: Pause::Duration(30),
            },
            Step::SetWeight { weight: 50 },
            Step::Pause {
                pause: Pause::UntilApproved {
                    requires_roles: vec![],
                    expiration_secs: None,
                },
            },
            Step::SetWeight { weight: 100 },
        ];
        assert_eq!(
            short_steps(&steps),
            "25% → pause 30s → 50% → approval → 100%"
        );
    }
}
