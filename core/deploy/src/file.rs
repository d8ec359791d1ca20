//! Decoding of the deploy file's top level, `deploymentConfig`, `targets`, `manifests`,
//! `strategies` and `targetFilters` into the raw model.

use crate::decode::{Decoder, pos};
use crate::grammar;
use crate::limits;
use crate::node::{Node, NodeKind};
use crate::raw::{
    DeployFile, ManifestSource, Pos, RawDeploymentConfig, RawManifest, RawStrategy,
    RawStrategyKind, RawTarget, Spanned,
};
use crate::steps::StepPlace;

/// Longest DNS label.
const MAX_LABEL_LEN: usize = 63;
const DEFAULT_TIMEOUT_SECS: u64 = 30 * 60;
const MIN_TIMEOUT_SECS: u64 = 60;

/// Whether a name is a DNS label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LABEL_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// Normalises a relative path: `/` separators, no `.` segments, `a/../` collapsed, no trailing
/// slash. Leading `..` segments are kept (a manifest may sit beside the deploy file's folder).
pub fn normalize_path(path: &str) -> String {
    let path = path.replace('\\', "/");
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

impl Decoder<'_> {
    /// Decodes the root mapping into a [`DeployFile`]; fields with errors are left at defaults
    /// (the caller discards the result when any diagnostic was reported).
    pub(crate) fn deploy_file(&mut self, root: &Node) -> DeployFile {
        let mut file = DeployFile {
            file: self.file.to_string(),
            application: Spanned {
                value: String::new(),
                pos: pos(root, "application"),
            },
            description: None,
            context: Default::default(),
            deployment_config: RawDeploymentConfig {
                timeout_secs: Some(DEFAULT_TIMEOUT_SECS),
                ..Default::default()
            },
            targets: Vec::new(),
            manifests: Vec::new(),
            strategies: Vec::new(),
            default_metric_provider_name: None,
            queries: Vec::new(),
            webhooks: Vec::new(),
            traffic_management: Vec::new(),
            target_filters: Vec::new(),
            warnings: Vec::new(),
        };
        // A file of another kind follows another schema: say that, and only that.
        if let NodeKind::Map(pairs) = &root.kind
            && let Some((_, kind)) = pairs.iter().find(|(k, _)| k.scalar() == Some("kind"))
            && let Some(value) = kind.scalar()
            && !value.eq_ignore_ascii_case("kubernetes")
        {
            let what = if value.eq_ignore_ascii_case("lambda") {
                "AWS Lambda deploy files are not supported".to_string()
            } else {
                format!("kind \"{value}\" is not supported")
            };
            self.error(
                kind,
                "kind",
                format!(
                    "unsupported kind \"{value}\": Ferry deploys Kubernetes applications \
                     (kind: kubernetes); {what}"
                ),
            );
            self.unsupported_kind = true;
            return file;
        }
        let Some(fields) = self.object(root, "", &grammar::DEPLOY_FILE) else {
            return file;
        };
        if let Some(v) = fields.get("version")
            && let Some(s) = self.string(v, "version")
            && s.value != "v1"
        {
            self.at(
                &s.pos,
                format!(
                    "unsupported version \"{}\": the only version is v1",
                    s.value
                ),
                None,
            );
        }
        if let Some(k) = fields.get("kind") {
            // Anything but kubernetes was refused above; this checks it is a string.
            self.string(k, "kind");
        }
        if let Some(a) = fields.get("application")
            && let Some(s) = self.string(a, "application")
        {
            if let Some(problem) = crate::names::application_name_problem(&s.value) {
                self.at(&s.pos, problem, None);
            }
            file.application = s;
        }
        file.description = fields
            .get("description")
            .and_then(|d| self.string(d, "description"))
            .map(|d| d.value);
        if let Some(c) = fields.get("context") {
            file.context = self.context(c, "context");
        }
        if let Some(dc) = fields.get("deploymentConfig") {
            file.deployment_config = self.deployment_config(dc);
        }
        if let Some(t) = fields.get("targets") {
            if t.is_null() || matches!(&t.kind, NodeKind::Map(pairs) if pairs.is_empty()) {
                self.error(t, "targets", "define at least one target");
            } else if !self.too_many(t, "targets", limits::MAX_TARGETS, "targets") {
                file.targets = self.targets(t);
            }
        }
        if let Some(m) = fields.get("manifests") {
            if m.is_null() || matches!(&m.kind, NodeKind::Seq(items) if items.is_empty()) {
                self.error(m, "manifests", "list at least one manifest");
            } else if !self.too_many(m, "manifests", limits::MAX_MANIFEST_ENTRIES, "entries") {
                file.manifests = self.manifests(m);
            }
        }
        if let Some(s) = fields.get("strategies")
            && !self.too_many(s, "strategies", limits::MAX_STRATEGIES, "strategies")
        {
            file.strategies = self.strategies(s);
        }
        if let Some(a) = fields.get("analysis") {
            let (default, queries) = self.analysis(a, "analysis");
            file.default_metric_provider_name = default;
            file.queries = queries;
        }
        if let Some(w) = fields.get("webhooks")
            && !self.too_many(w, "webhooks", limits::MAX_WEBHOOKS, "webhooks")
        {
            file.webhooks = self.webhooks(w, "webhooks");
        }
        if let Some(t) = fields.get("trafficManagement")
            && !self.too_many(
                t,
                "trafficManagement",
                limits::MAX_TRAFFIC_ENTRIES,
                "entries",
            )
        {
            file.traffic_management = self.traffic(t, "trafficManagement");
        }
        if let Some(tf) = fields.get("targetFilters")
            && !self.too_many(tf, "targetFilters", limits::MAX_TRAFFIC_ENTRIES, "entries")
        {
            for (item, item_path) in self.seq(tf, "targetFilters") {
                if let Some(f) = self.object(item, &item_path, &grammar::TARGET_FILTER)
                    && let Some(n) = f.get("includeTarget")
                    && let Some(name) = self.name(n, &f.field("includeTarget"))
                {
                    file.target_filters.push(name);
                }
            }
        }
        file
    }

    fn deployment_config(&mut self, node: &Node) -> RawDeploymentConfig {
        let mut config = RawDeploymentConfig {
            timeout_secs: Some(DEFAULT_TIMEOUT_SECS),
            ..Default::default()
        };
        let path = "deploymentConfig";
        let Some(fields) = self.object(node, path, &grammar::DEPLOYMENT_CONFIG) else {
            return config;
        };
        if let Some(t) = fields.get("timeout") {
            let p = fields.field("timeout");
            config.timeout_secs = self.duration(t, &p);
            if let Some(secs) = config.timeout_secs
                && secs < MIN_TIMEOUT_SECS
            {
                self.error(
                    t,
                    &p,
                    format!("timeout of {secs}s is too short: at least 60 seconds"),
                );
            }
        }
        if let Some(k) = fields.get("keepDeploymentObject") {
            config.keep_deployment_object = self
                .boolean(k, &fields.field("keepDeploymentObject"))
                .unwrap_or_default();
        }
        if let Some(i) = fields.get("ifDeploymentInProgress")
            && let Some(f) = self.object(
                i,
                &fields.field("ifDeploymentInProgress"),
                &grammar::IN_PROGRESS_POLICY,
            )
            && let Some(s) = f.get("strategy")
        {
            config.if_deployment_in_progress = self
                .choice(s, &f.field("strategy"), &grammar::IN_PROGRESS)
                .unwrap_or_default();
        }
        config
    }

    fn targets(&mut self, node: &Node) -> Vec<RawTarget> {
        let mut out = Vec::new();
        for (name, value) in self.named_map(node, "targets") {
            let path = name.pos.path.clone();
            let Some(fields) = self.object(value, &path, &grammar::TARGET) else {
                continue;
            };
            let account = fields
                .get("account")
                .and_then(|a| self.name(a, &fields.field("account")));
            let namespace = fields
                .get("namespace")
                .and_then(|n| self.name(n, &fields.field("namespace")));
            let strategy = fields
                .get("strategy")
                .and_then(|s| self.name(s, &fields.field("strategy")));
            let mut target = RawTarget {
                name,
                account: account.unwrap_or(Spanned {
                    value: String::new(),
                    pos: Pos::default(),
                }),
                namespace,
                strategy,
                depends_on: Vec::new(),
                before_deployment: Vec::new(),
                after_deployment: Vec::new(),
            };
            if let Some(c) = fields.get("constraints")
                && let Some(cf) =
                    self.object(c, &fields.field("constraints"), &grammar::CONSTRAINTS)
            {
                if let Some(d) = cf.get("dependsOn") {
                    target.depends_on = self.string_list(d, &cf.field("dependsOn"));
                }
                if let Some(b) = cf.get("beforeDeployment") {
                    target.before_deployment =
                        self.steps(b, &cf.field("beforeDeployment"), StepPlace::Constraint);
                }
                if let Some(a) = cf.get("afterDeployment") {
                    target.after_deployment =
                        self.steps(a, &cf.field("afterDeployment"), StepPlace::Constraint);
                }
            }
            out.push(target);
        }
        out
    }

    fn manifests(&mut self, node: &Node) -> Vec<RawManifest> {
        let mut out = Vec::new();
        for (item, path) in self.seq(node, "manifests") {
            let Some(fields) = self.object(item, &path, &grammar::MANIFEST) else {
                continue;
            };
            let source = match (fields.get("path"), fields.get("inline")) {
                (Some(_), Some(_)) => {
                    self.error(item, &path, "give either path or inline, not both");
                    None
                }
                (None, None) => {
                    self.error(item, &path, "give a path or an inline manifest");
                    None
                }
                (Some(p), None) => self.name(p, &fields.field("path")).map(|s| {
                    let lower = s.value.to_ascii_lowercase();
                    let source = if lower.starts_with("http://") || lower.starts_with("https://") {
                        ManifestSource::Url(s.value)
                    } else {
                        ManifestSource::Path(normalize_path(&s.value))
                    };
                    Spanned {
                        value: source,
                        pos: s.pos,
                    }
                }),
                (None, Some(i)) => self.name(i, &fields.field("inline")).map(|s| Spanned {
                    value: ManifestSource::Inline(s.value),
                    pos: s.pos,
                }),
            };
            let targets = fields
                .get("targets")
                .map(|t| self.string_list(t, &fields.field("targets")));
            if let Some(source) = source {
                out.push(RawManifest { source, targets });
            }
        }
        out
    }

    fn strategies(&mut self, node: &Node) -> Vec<RawStrategy> {
        let mut out = Vec::new();
        for (name, value) in self.named_map(node, "strategies") {
            self.declared.insert(("strategy", name.value.clone()));
            let path = name.pos.path.clone();
            let Some(fields) = self.object(value, &path, &grammar::STRATEGY) else {
                continue;
            };
            let kind = match (fields.get("canary"), fields.get("blueGreen")) {
                (Some(_), Some(_)) => {
                    self.error(
                        value,
                        &path,
                        "a strategy is exactly one of canary or blueGreen, not both",
                    );
                    None
                }
                (None, None) => {
                    self.error(value, &path, "a strategy needs canary or blueGreen");
                    None
                }
                (Some(c), None) => {
                    let cpath = fields.field("canary");
                    self.object(c, &cpath, &grammar::CANARY).map(|cf| {
                        let steps = cf
                            .get("steps")
                            .map(|s| self.steps(s, &cf.field("steps"), StepPlace::Canary))
                            .unwrap_or_default();
                        RawStrategyKind::Canary { steps }
                    })
                }
                (None, Some(b)) => self.blue_green(b, &fields.field("blueGreen")),
            };
            if let Some(kind) = kind {
                out.push(RawStrategy { name, kind });
            }
        }
        out
    }

    fn blue_green(&mut self, node: &Node, path: &str) -> Option<RawStrategyKind> {
        let f = self.object(node, path, &grammar::BLUE_GREEN)?;
        let service = |d: &mut Self, key: &str| {
            f.get(key)
                .and_then(|n| d.name(n, &f.field(key)))
                .map(|s| s.value)
        };
        let active_service = service(self, "activeService");
        let preview_service = service(self, "previewService");
        let redirect_traffic_after = f
            .get("redirectTrafficAfter")
            .map(|s| self.steps(s, &f.field("redirectTrafficAfter"), StepPlace::BlueGreen))
            .unwrap_or_default();
        let shut_down_old_version_after = f
            .get("shutDownOldVersionAfter")
            .map(|s| self.steps(s, &f.field("shutDownOldVersionAfter"), StepPlace::BlueGreen))
            .unwrap_or_default();
        Some(RawStrategyKind::BlueGreen {
            active_service,
            preview_service,
            redirect_traffic_after,
            shut_down_old_version_after,
            pos: pos(node, path),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("hello-ferry"));
        assert!(is_dns_label("a1"));
        assert!(!is_dns_label("Hello"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("a-"));
        assert!(!is_dns_label(""));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_label(&"a".repeat(63)));
    }

    #[test]
    fn paths_are_normalised() {
        assert_eq!(normalize_path("./manifests/"), "manifests");
        assert_eq!(normalize_path("a/./b/../c.yaml"), "a/c.yaml");
        assert_eq!(normalize_path("../x/y.yaml"), "../x/y.yaml");
        assert_eq!(normalize_path("a\\b.yml"), "a/b.yml");
        assert_eq!(normalize_path("."), "");
    }
}
