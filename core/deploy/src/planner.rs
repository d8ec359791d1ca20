//! The planner: a parsed deploy file, the caller's manifest sources and overrides become a
//! [`Plan`] (targets in dependency order, steps resolved, context merged, manifests parsed).
//! Rules that need the sources or the caller's context are checked here. Manifests named by URL
//! are parsed from the contents the caller fetched (sources whose path is the URL); the planner
//! itself fetches nothing.

use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;

use crate::decode::Decoder;
use crate::diagnostics::Diagnostics;
use crate::limits;
use crate::manifests::{self, Object, Source, entry_matches};
use crate::plan::{
    AnalysisQuery, AnalysisStep, DeploymentConfig, Manifest, Pause, Plan, Step, Strategy,
    TargetPlan, TrafficManagement,
};
use crate::raw::{
    ContextMap, DeployFile, ManifestSource, Pos, RawStep, RawStepKind, RawStrategyKind, RawTarget,
    Spanned,
};
use crate::templates;

/// What the caller (CLI flags, API request) overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Replaces `application`.
    pub application: Option<String>,
    /// Added to (and overriding) every context: file < step < these.
    pub context: Vec<(String, String)>,
    /// Replaces `targetFilters` when not empty.
    pub targets: Vec<String>,
}

/// The objects and URLs each manifest entry yields.
struct Resolved {
    objects: Vec<Object>,
    urls: Vec<String>,
}

/// Builds the plan; every problem found is reported together.
pub(crate) fn build(
    file: &DeployFile,
    sources: &[Source],
    overrides: &Overrides,
) -> Result<Plan, Diagnostics> {
    let mut d = Decoder::new(&file.file);
    let application = match &overrides.application {
        Some(app) => {
            if let Some(problem) = crate::names::application_name_problem(app) {
                d.at(
                    &file.application.pos,
                    format!("{problem} (the name given by the caller)"),
                    None,
                );
            }
            app.clone()
        }
        None => file.application.value.clone(),
    };
    let caller: IndexMap<String, String> = overrides.context.iter().cloned().collect();
    let caller_pos = Pos {
        line: 1,
        column: 1,
        path: "context".to_string(),
    };
    d.check_context_size(
        &caller_pos,
        "the caller's context (--add-context)",
        caller.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let mut context: IndexMap<String, String> = file
        .context
        .iter()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect();
    context.extend(caller.clone());
    d.check_context_size(
        &caller_pos,
        "the file's context with the caller's",
        context.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );

    let kept = kept_targets(&mut d, file, overrides);
    if sources.len() > limits::MAX_SOURCES {
        d.at(
            &Pos {
                line: 1,
                column: 1,
                path: "manifests".to_string(),
            },
            format!(
                "{} manifest files were sent: at most {}",
                sources.len(),
                limits::MAX_SOURCES
            ),
            None,
        );
        return Err(Diagnostics(d.diags).sorted());
    }
    let resolved = resolve_manifests(&mut d, file, sources);

    let mut targets = Vec::new();
    for target in order(file, &kept) {
        let objects = target_objects(&mut d, file, target, &resolved);
        check_rendered_size(&mut d, target, &objects, &context);
        let planner = StepPlanner {
            file,
            caller: &caller,
        };
        let has_deployment = objects.iter().any(|m| m.kind == "Deployment");
        let remote_manifests: Vec<String> = file
            .manifests
            .iter()
            .zip(&resolved)
            .filter(|(m, _)| applies(&m.targets, &target.name.value))
            .flat_map(|(_, r)| r.urls.clone())
            .collect();
        let traffic = traffic_for(file, &target.name.value);
        let strategy = match &target.strategy {
            // Remote manifests may hold a Deployment the server will see; keep the strategy.
            Some(_) if !has_deployment && remote_manifests.is_empty() => Strategy::Direct,
            Some(name) => match file.strategies.iter().find(|s| s.name.value == name.value) {
                Some(s) => planner.strategy(&mut d, &s.kind, &traffic),
                None => Strategy::Direct,
            },
            None => Strategy::Direct,
        };
        targets.push(TargetPlan {
            name: target.name.value.clone(),
            account: target.account.value.clone(),
            namespace: target.namespace.as_ref().map(|n| n.value.clone()),
            depends_on: target
                .depends_on
                .iter()
                .filter(|dep| kept.contains(dep.value.as_str()))
                .map(|dep| dep.value.clone())
                .collect(),
            before_deployment: planner.steps(&mut d, &target.before_deployment),
            after_deployment: planner.steps(&mut d, &target.after_deployment),
            strategy_name: target.strategy.as_ref().map(|s| s.value.clone()),
            strategy,
            traffic_management: traffic,
            manifests: objects,
            remote_manifests,
        });
    }
    if !d.diags.is_empty() {
        return Err(Diagnostics(d.diags).sorted());
    }
    Ok(Plan {
        application,
        description: file.description.clone(),
        context,
        deployment_config: DeploymentConfig {
            timeout_secs: file.deployment_config.timeout_secs.unwrap_or(30 * 60),
            keep_deployment_object: file.deployment_config.keep_deployment_object,
            if_deployment_in_progress: file.deployment_config.if_deployment_in_progress,
        },
        targets,
        webhooks: file.webhooks.iter().map(|w| w.value.clone()).collect(),
        queries: file.queries.iter().map(|q| q.value.clone()).collect(),
        default_metric_provider_name: file.default_metric_provider_name.clone(),
        warnings: file.warnings.clone(),
    })
}

fn applies(targets: &Option<Vec<Spanned<String>>>, target: &str) -> bool {
    targets
        .as_ref()
        .is_none_or(|ts| ts.iter().any(|t| t.value == target))
}

/// The names of the targets to deploy: the caller's `--target`s, else `targetFilters`, else all.
fn kept_targets<'f>(
    d: &mut Decoder<'_>,
    file: &'f DeployFile,
    overrides: &Overrides,
) -> HashSet<&'f str> {
    let names: Vec<&str> = file.targets.iter().map(|t| t.name.value.as_str()).collect();
    let filters: Vec<String> = if overrides.targets.is_empty() {
        file.target_filters
            .iter()
            .map(|f| f.value.clone())
            .collect()
    } else {
        for t in &overrides.targets {
            if !names.contains(&t.as_str()) {
                let pos = Pos {
                    line: 1,
                    column: 1,
                    path: "targetFilters".to_string(),
                };
                d.unknown(
                    &Spanned {
                        value: t.clone(),
                        pos,
                    },
                    "target (from the caller)",
                    &names,
                );
            }
        }
        overrides.targets.clone()
    };
    names
        .into_iter()
        .filter(|n| filters.is_empty() || filters.iter().any(|f| f == n))
        .collect()
}

/// Kept targets in dependency order, file order among independent ones.
fn order<'f>(file: &'f DeployFile, kept: &HashSet<&str>) -> Vec<&'f RawTarget> {
    let mut remaining: Vec<&RawTarget> = file
        .targets
        .iter()
        .filter(|t| kept.contains(t.name.value.as_str()))
        .collect();
    let mut placed: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    while !remaining.is_empty() {
        let ready = remaining.iter().position(|t| {
            t.depends_on
                .iter()
                .all(|d| !kept.contains(d.value.as_str()) || placed.contains(d.value.as_str()))
        });
        // Validation rejects cycles; should one slip through, keep file order rather than loop.
        let next = remaining.remove(ready.unwrap_or(0));
        placed.insert(next.name.value.as_str());
        out.push(next);
    }
    out
}

/// Parses what every manifest entry names, reporting entries that match no source. A URL
/// entry whose content the caller supplied (a source whose path is the URL) is parsed like a
/// file; one without stays in the target's `remote_manifests`.
fn resolve_manifests(d: &mut Decoder<'_>, file: &DeployFile, sources: &[Source]) -> Vec<Resolved> {
    let fetched: Vec<&Source> = sources
        .iter()
        .filter(|s| manifests::is_url(&s.path))
        .collect();
    let sources = manifests::normalize_sources(sources);
    let mut parsed: HashMap<String, Vec<Object>> = HashMap::new();
    let mut out = Vec::new();
    for (i, entry) in file.manifests.iter().enumerate() {
        let mut resolved = Resolved {
            objects: Vec::new(),
            urls: Vec::new(),
        };
        match &entry.source.value {
            ManifestSource::Url(url) => match fetched.iter().find(|s| &s.path == url) {
                // Fetched by the caller: parsed exactly like a local file, named by its URL.
                Some(source) => {
                    let objects = parsed.entry(url.clone()).or_insert_with(|| {
                        manifests::parse_objects(url, url, &source.content, 0, &mut d.diags)
                    });
                    resolved.objects.extend(objects.iter().cloned());
                }
                None => resolved.urls.push(url.clone()),
            },
            ManifestSource::Inline(text) => {
                let label = format!("manifests[{i}].inline");
                let mut diags = Vec::new();
                resolved.objects = manifests::parse_objects(
                    &file.file,
                    &label,
                    text,
                    entry.source.pos.line,
                    &mut diags,
                );
                for mut diag in diags {
                    diag.path = format!("{label}.{}", diag.path);
                    d.diags.push(diag);
                }
            }
            ManifestSource::Path(path) => {
                let matching: Vec<&Source> = sources
                    .iter()
                    .filter(|s| entry_matches(path, &s.path))
                    .collect();
                if matching.is_empty() {
                    let what = if manifests::is_yaml(path) {
                        format!("manifest file \"{path}\" does not exist")
                    } else {
                        format!("manifest path \"{path}\" holds no .yaml or .yml file")
                    };
                    d.at(&entry.source.pos, what, None);
                }
                for source in matching {
                    let objects = parsed.entry(source.path.clone()).or_insert_with(|| {
                        manifests::parse_objects(
                            &source.path,
                            &source.path,
                            &source.content,
                            0,
                            &mut d.diags,
                        )
                    });
                    resolved.objects.extend(objects.iter().cloned());
                }
            }
        }
        out.push(resolved);
    }
    out
}

/// The target's objects: deduplicated, namespace forced or required, Namespaces and CRDs first.
fn target_objects(
    d: &mut Decoder<'_>,
    file: &DeployFile,
    target: &RawTarget,
    resolved: &[Resolved],
) -> Vec<Manifest> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (entry, r) in file.manifests.iter().zip(resolved) {
        if !applies(&entry.targets, &target.name.value) {
            continue;
        }
        for obj in &r.objects {
            if !seen.insert((obj.source.clone(), obj.document)) {
                continue;
            }
            let mut object = obj.object.clone();
            let namespace = if manifests::is_namespaced(&obj.kind) {
                match (&target.namespace, &obj.namespace) {
                    (Some(ns), _) => {
                        if let Some(meta) =
                            object.get_mut("metadata").and_then(|m| m.as_object_mut())
                        {
                            meta.insert("namespace".into(), ns.value.clone().into());
                        }
                        Some(ns.value.clone())
                    }
                    (None, Some(own)) => Some(own.clone()),
                    (None, None) => {
                        d.at(
                            &target.name.pos,
                            format!(
                                "target \"{}\" has no namespace and manifest {} ({} {}) sets none: set the target's namespace or the manifest's metadata.namespace",
                                target.name.value, obj.source, obj.kind, obj.name
                            ),
                            None,
                        );
                        None
                    }
                }
            } else {
                None
            };
            out.push(Manifest {
                source: obj.source.clone(),
                kind: obj.kind.clone(),
                name: obj.name.clone(),
                namespace,
                object,
            });
        }
    }
    out.sort_by_key(|m| manifests::apply_rank(&m.kind));
    out
}

/// Refuses a target whose objects are too many, or would render too large with the context:
/// the scheduler renders and applies them, the store keeps them, so a bound here keeps both
/// small whatever the context does.
fn check_rendered_size(
    d: &mut Decoder<'_>,
    target: &RawTarget,
    objects: &[Manifest],
    context: &IndexMap<String, String>,
) {
    let name = &target.name.value;
    if objects.len() > limits::MAX_OBJECTS_PER_TARGET {
        d.at(
            &target.name.pos,
            format!(
                "target \"{name}\" deploys {} Kubernetes objects: at most {}",
                objects.len(),
                limits::MAX_OBJECTS_PER_TARGET
            ),
            None,
        );
        return;
    }
    let mut total = 0usize;
    for m in objects {
        let size = limits::rendered_bytes_bound(&m.object, context);
        if size > limits::MAX_OBJECT_BYTES {
            d.at(
                &target.name.pos,
                format!(
                    "manifest {} ({} {}) may render to {size} bytes for target \"{name}\" \
                     (context values included): at most {} per object",
                    m.source,
                    m.kind,
                    m.name,
                    limits::bytes(limits::MAX_OBJECT_BYTES)
                ),
                None,
            );
        }
        total = total.saturating_add(size);
    }
    if total > limits::MAX_TARGET_MANIFEST_BYTES {
        d.at(
            &target.name.pos,
            format!(
                "the manifests of target \"{name}\" may render to {total} bytes (context \
                 values included): at most {} per target",
                limits::bytes(limits::MAX_TARGET_MANIFEST_BYTES)
            ),
            None,
        );
    }
}

/// Every traffic-management entry that applies to the target, merged.
fn traffic_for(file: &DeployFile, target: &str) -> TrafficManagement {
    let mut out = TrafficManagement::default();
    for tm in file
        .traffic_management
        .iter()
        .filter(|t| t.applies_to(target))
    {
        out.istio.extend(tm.istio.iter().cloned());
        out.smi.extend(tm.smi.iter().cloned());
        out.gateway_api.extend(tm.gateway_api.iter().cloned());
        out.kubernetes.extend(tm.kubernetes.iter().cloned());
    }
    out
}

/// Turns raw steps into plan steps with merged context, checking context variables.
struct StepPlanner<'a> {
    file: &'a DeployFile,
    caller: &'a IndexMap<String, String>,
}

impl StepPlanner<'_> {
    fn strategy(
        &self,
        d: &mut Decoder<'_>,
        kind: &RawStrategyKind,
        traffic: &TrafficManagement,
    ) -> Strategy {
        match kind {
            RawStrategyKind::Canary { steps } => Strategy::Canary {
                steps: self.steps(d, steps),
            },
            RawStrategyKind::BlueGreen {
                active_service,
                preview_service,
                redirect_traffic_after,
                shut_down_old_version_after,
                ..
            } => {
                let services = traffic.kubernetes.first();
                Strategy::BlueGreen {
                    active_service: active_service
                        .clone()
                        .or_else(|| services.map(|s| s.active_service.clone()))
                        .unwrap_or_default(),
                    preview_service: preview_service
                        .clone()
                        .or_else(|| services.and_then(|s| s.preview_service.clone())),
                    redirect_traffic_after: self.steps(d, redirect_traffic_after),
                    shut_down_old_version_after: self.steps(d, shut_down_old_version_after),
                }
            }
        }
    }

    fn steps(&self, d: &mut Decoder<'_>, steps: &[RawStep]) -> Vec<Step> {
        steps.iter().filter_map(|s| self.step(d, s)).collect()
    }

    /// file < step < caller.
    fn merged(&self, step: &ContextMap) -> IndexMap<String, String> {
        let mut out: IndexMap<String, String> = self
            .file
            .context
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect();
        out.extend(step.iter().map(|(k, v)| (k.clone(), v.value.clone())));
        out.extend(self.caller.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }

    /// Reports `{{context.X}}` references that no visible context defines.
    fn check_context(
        &self,
        d: &mut Decoder<'_>,
        pos: &Pos,
        what: &str,
        templates: &[&str],
        context: &IndexMap<String, String>,
    ) {
        for template in templates {
            for var in templates::variables(template) {
                if var.namespace == "context"
                    && !var.name.is_empty()
                    && !context.contains_key(&var.name)
                {
                    let suggestion =
                        crate::diagnostics::suggest(&var.name, context.keys().map(String::as_str))
                            .map(|s| format!("{{{{context.{s}}}}}"));
                    d.at(
                        pos,
                        format!(
                            "{what} uses {{{{context.{}}}}}, which no context defines (file, step or caller)",
                            var.name
                        ),
                        suggestion,
                    );
                }
            }
        }
    }

    fn step(&self, d: &mut Decoder<'_>, step: &RawStep) -> Option<Step> {
        Some(match &step.kind {
            RawStepKind::SetWeight(w) => Step::SetWeight { weight: w.value },
            RawStepKind::PauseDuration(secs) => Step::Pause {
                pause: Pause::Duration(*secs),
            },
            RawStepKind::PauseUntilApproved {
                requires_roles,
                expiration_secs,
            } => Step::Pause {
                pause: Pause::UntilApproved {
                    requires_roles: requires_roles.clone(),
                    expiration_secs: *expiration_secs,
                },
            },
            RawStepKind::ExposeServices { services, ttl_secs } => Step::ExposeServices {
                services: services.clone(),
                ttl_secs: *ttl_secs,
            },
            RawStepKind::RunWebhook { name, context } => {
                let webhook = self
                    .file
                    .webhooks
                    .iter()
                    .find(|w| w.value.name == name.value)?;
                let context = self.merged(context);
                d.check_context_size(
                    &step.pos,
                    "the step's context with the file's and the caller's",
                    context.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                );
                let w = &webhook.value;
                let mut texts: Vec<&str> = vec![&w.uri_template];
                texts.extend(w.headers.iter().map(|h| h.value.as_str()));
                texts.extend(w.body_template.as_deref());
                self.check_context(
                    d,
                    &step.pos,
                    &format!("webhook \"{}\"", w.name),
                    &texts,
                    &context,
                );
                Step::RunWebhook {
                    webhook: w.clone(),
                    context,
                }
            }
            RawStepKind::Analysis(a) => {
                let context = self.merged(&a.context);
                d.check_context_size(
                    &step.pos,
                    "the step's context with the file's and the caller's",
                    context.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                );
                let mut queries = Vec::new();
                for name in &a.queries {
                    let q = self
                        .file
                        .queries
                        .iter()
                        .find(|q| q.value.name == name.value)?;
                    self.check_context(
                        d,
                        &name.pos,
                        &format!("query \"{}\"", q.value.name),
                        &[&q.value.query_template],
                        &context,
                    );
                    queries.push(AnalysisQuery {
                        metric_provider_name: q
                            .value
                            .metric_provider_name
                            .clone()
                            .or_else(|| a.metric_provider_name.clone())
                            .or_else(|| self.file.default_metric_provider_name.clone()),
                        ..q.value.clone()
                    });
                }
                Step::Analysis(AnalysisStep {
                    interval_secs: a.interval_secs,
                    number_of_judgment_runs: a.number_of_judgment_runs,
                    lookback_method: a.lookback_method,
                    roll_back_mode: a.roll_back_mode,
                    roll_forward_mode: a.roll_forward_mode,
                    abort_on_failed_judgment: a.abort_on_failed_judgment,
                    context,
                    queries,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Overrides, Source, check};

    const URL: &str = "https://example.com/app.yaml";

    const FILE: &str = "application: a
targets:
  dev: {account: c, namespace: dev}
  prod: {account: c}
manifests:
  - path: .
  - path: https://example.com/app.yaml
    targets: [dev]
";

    fn source(path: &str, content: &str) -> Source {
        Source {
            path: path.into(),
            content: content.into(),
        }
    }

    fn local() -> Source {
        source(
            "svc.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: web}\n",
        )
    }

    #[test]
    fn fetched_urls_are_parsed_like_files() {
        let fetched = source(
            URL,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: other}\n\
             ---\napiVersion: v1\nkind: Namespace\nmetadata: {name: dev}\n",
        );
        let plan = check(
            "deploy.yml",
            FILE,
            &[local(), fetched],
            &Overrides::default(),
        )
        .unwrap();
        let dev = &plan.targets[0];
        assert!(dev.remote_manifests.is_empty());
        let got: Vec<(&str, &str, Option<&str>)> = dev
            .manifests
            .iter()
            .map(|m| (m.kind.as_str(), m.source.as_str(), m.namespace.as_deref()))
            .collect();
        // Namespaces first; the target's namespace forced; the URL names the source verbatim
        // (and a `path: .` directory entry does not pick the URL up as a file).
        assert_eq!(
            got,
            [
                ("Namespace", URL, None),
                ("Service", "svc.yaml", Some("dev")),
                ("Deployment", URL, Some("dev")),
            ]
        );
        assert_eq!(dev.manifests[2].object["metadata"]["namespace"], "dev");
        // `targets: [dev]` keeps the URL's objects out of prod.
        let prod = &plan.targets[1];
        assert_eq!(prod.manifests.len(), 1);
        assert!(prod.remote_manifests.is_empty());
    }

    #[test]
    fn fetched_urls_follow_the_file_rules_with_errors_naming_the_url() {
        let fetched = source(
            URL,
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n\
             apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
        );
        let d = check(
            "deploy.yml",
            FILE,
            &[local(), fetched],
            &Overrides::default(),
        )
        .unwrap_err();
        assert_eq!(d.0.len(), 1, "{d:?}");
        assert_eq!(d.0[0].file, URL);
        assert_eq!((d.0[0].line, d.0[0].column), (6, 7));
        assert_eq!(d.0[0].path, "documents[1].kind");
        assert!(d.0[0].message.contains("bare Pod"), "{}", d.0[0].message);

        let broken = source(URL, "a:\n  b: 1\n   c: 2\n");
        let d = check(
            "deploy.yml",
            FILE,
            &[local(), broken],
            &Overrides::default(),
        )
        .unwrap_err();
        assert_eq!(
            (d.0[0].file.as_str(), d.0[0].path.as_str()),
            (URL, "syntax")
        );
    }

    #[test]
    fn unfetched_urls_stay_remote() {
        let plan = check("deploy.yml", FILE, &[local()], &Overrides::default()).unwrap();
        assert_eq!(plan.targets[0].remote_manifests, [URL]);
        assert!(plan.targets[1].remote_manifests.is_empty());
    }
}
