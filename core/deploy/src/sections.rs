//! Decoding of the definition sections: `analysis` (queries and their judge), `webhooks` and
//! `trafficManagement`, with their local rules (limits, unique names, template variables).

use crate::decode::{Decoder, pos};
use crate::grammar;
use crate::node::Node;
use crate::plan::{
    AnalysisQuery, DestinationRule, GatewayApi, Header, Istio, Judge, KubernetesServices, Smi,
    Webhook,
};
use crate::raw::{RawTraffic, Spanned};
use crate::templates;

/// Where the `name` of the mapping `item` (at `item_path`) is written; the item itself when it
/// has none.
fn name_pos(item: &Node, item_path: &str) -> crate::raw::Pos {
    if let crate::node::NodeKind::Map(pairs) = &item.kind
        && let Some((_, value)) = pairs.iter().find(|(k, _)| k.scalar() == Some("name"))
    {
        return pos(value, &format!("{item_path}.name"));
    }
    pos(item, item_path)
}

impl Decoder<'_> {
    /// Reports unknown `ferry.`/`armory.` variables of a template.
    pub(crate) fn check_template(&mut self, node: &Node, path: &str, text: &str, webhook: bool) {
        for var in templates::variables(text) {
            if let Some((message, suggestion)) = templates::check(&var, webhook) {
                self.at(&pos(node, path), message, suggestion);
            }
        }
    }

    /// Adds `item` (named `name`, declared by `node`) to `list`. A name defined twice is
    /// accepted, as Armory does, with a warning at the later `name` that names both places; the
    /// later definition replaces the earlier one.
    fn keep_later<T>(
        &mut self,
        list: &mut Vec<Spanned<T>>,
        item: Spanned<T>,
        name: &str,
        node: &Node,
        what: &str,
        name_of: impl Fn(&T) -> &str,
    ) {
        let at = name_pos(node, &item.pos.path);
        match list
            .iter()
            .position(|earlier| name_of(&earlier.value) == name)
        {
            Some(i) => {
                self.warn_at(
                    &at,
                    format!(
                        "{what} \"{name}\" is defined twice ({} at line {}, again here at line \
                         {}); the later definition is used",
                        list[i].pos.path, list[i].pos.line, at.line
                    ),
                );
                list[i] = item;
            }
            None => list.push(item),
        }
    }

    /// `analysis`: the default provider and the queries.
    pub(crate) fn analysis(
        &mut self,
        node: &Node,
        path: &str,
    ) -> (Option<String>, Vec<Spanned<AnalysisQuery>>) {
        let Some(fields) = self.object(node, path, &grammar::ANALYSIS) else {
            return (None, Vec::new());
        };
        let default = fields
            .get("defaultMetricProviderName")
            .and_then(|n| self.name(n, &fields.field("defaultMetricProviderName")))
            .map(|n| n.value);
        let mut queries = Vec::new();
        if let Some(list) = fields.get("queries")
            && !self.too_many(
                list,
                &fields.field("queries"),
                crate::limits::MAX_QUERIES,
                "queries",
            )
        {
            for (item, item_path) in self.seq(list, &fields.field("queries")) {
                self.declare("query", item);
                if let Some(q) = self.query(item, &item_path) {
                    let name = q.value.name.clone();
                    self.keep_later(&mut queries, q, &name, item, "query", |q| &q.name);
                }
            }
        }
        (default, queries)
    }

    fn query(&mut self, node: &Node, path: &str) -> Option<Spanned<AnalysisQuery>> {
        let fields = self.object(node, path, &grammar::QUERY)?;
        let name = fields.get("name");
        let template = fields.get("queryTemplate");
        let name = name.and_then(|n| self.name(n, &fields.field("name")));
        let template = template.and_then(|t| {
            let s = self.name(t, &fields.field("queryTemplate"))?;
            self.check_template(t, &s.pos.path, &s.value, false);
            Some(s)
        });
        let upper = fields
            .get("upperLimit")
            .map(|n| self.number(n, &fields.field("upperLimit")));
        let lower = fields
            .get("lowerLimit")
            .map(|n| self.number(n, &fields.field("lowerLimit")));
        let judge = fields
            .get("judge")
            .map(|j| self.judge(j, &fields.field("judge")));
        if upper.is_none() && lower.is_none() && judge.is_none() {
            self.error(
                node,
                path,
                "a query needs upperLimit, lowerLimit or both (or a judge block)",
            );
        }
        if let (Some(Some(u)), Some(Some(l))) = (upper, lower)
            && l > u
        {
            let at = fields.get("lowerLimit").unwrap_or(node);
            self.error(
                at,
                &fields.field("lowerLimit"),
                format!("lowerLimit {l} is above upperLimit {u}"),
            );
        }
        let provider = fields
            .get("metricProviderName")
            .and_then(|n| self.name(n, &fields.field("metricProviderName")))
            .map(|n| n.value);
        Some(Spanned {
            value: AnalysisQuery {
                name: name?.value,
                query_template: template?.value,
                upper_limit: upper.flatten(),
                lower_limit: lower.flatten(),
                metric_provider_name: provider,
                judge: judge.flatten(),
            },
            pos: pos(node, path),
        })
    }

    fn judge(&mut self, node: &Node, path: &str) -> Option<Judge> {
        let fields = self.object(node, path, &grammar::JUDGE)?;
        let mut ok = true;
        let direction = self
            .optional_choice(&fields, "direction", &grammar::DIRECTION, &mut ok)
            .unwrap_or_default();
        let mut num =
            |d: &mut Self, key: &str, default: f64, valid: fn(f64) -> bool, rule: &str| {
                let Some(n) = fields.get(key) else {
                    return default;
                };
                let p = fields.field(key);
                match d.number(n, &p) {
                    Some(v) if valid(v) => v,
                    Some(v) => {
                        d.error(n, &p, format!("{v} is out of range: {rule}"));
                        ok = false;
                        default
                    }
                    None => {
                        ok = false;
                        default
                    }
                }
            };
        let confidence = num(
            self,
            "confidence",
            0.98,
            |v| v > 0.0 && v < 1.0,
            "must be between 0 and 1",
        );
        let tolerance = num(self, "tolerance", 0.25, |v| v >= 0.0, "must be at least 0");
        let allowed_effect_size = num(
            self,
            "allowedEffectSize",
            1.0,
            |v| v > 0.0,
            "must be above 0",
        );
        let weight = num(self, "weight", 1.0, |v| v > 0.0, "must be above 0");
        let pass = num(
            self,
            "pass",
            95.0,
            |v| (0.0..=100.0).contains(&v),
            "must be between 0 and 100",
        );
        let marginal = num(
            self,
            "marginal",
            75.0,
            |v| (0.0..=100.0).contains(&v),
            "must be between 0 and 100",
        );
        if marginal > pass {
            let at = fields.get("marginal").unwrap_or(node);
            self.error(
                at,
                &fields.field("marginal"),
                format!("marginal {marginal} is above pass {pass}"),
            );
            ok = false;
        }
        let min_samples = match fields.get("minSamples") {
            Some(n) => self
                .int(n, &fields.field("minSamples"), 1, 1_000_000)
                .map(|v| u32::try_from(v).unwrap_or(30)),
            None => Some(30),
        };
        let flag = |d: &mut Self, key: &str| match fields.get(key) {
            Some(n) => d.boolean(n, &fields.field(key)),
            None => Some(false),
        };
        let critical = flag(self, "critical");
        let must_have_data = flag(self, "mustHaveData");
        let group = fields
            .get("group")
            .and_then(|g| self.name(g, &fields.field("group")))
            .map(|g| g.value);
        ok.then_some(Judge {
            direction,
            confidence,
            tolerance,
            allowed_effect_size,
            min_samples: min_samples?,
            critical: critical?,
            must_have_data: must_have_data?,
            group,
            weight,
            pass,
            marginal,
        })
    }

    /// `webhooks`.
    pub(crate) fn webhooks(&mut self, node: &Node, path: &str) -> Vec<Spanned<Webhook>> {
        let mut out = Vec::new();
        for (item, item_path) in self.seq(node, path) {
            self.declare("webhook", item);
            if let Some(w) = self.webhook(item, &item_path) {
                let name = w.value.name.clone();
                self.keep_later(&mut out, w, &name, item, "webhook", |w| &w.name);
            }
        }
        out
    }

    fn webhook(&mut self, node: &Node, path: &str) -> Option<Spanned<Webhook>> {
        let fields = self.object(node, path, &grammar::WEBHOOK)?;
        let mut ok = true;
        let name = fields.get("name");
        let uri = fields.get("uriTemplate");
        let name = name.and_then(|n| self.name(n, &fields.field("name")));
        let uri = uri.and_then(|u| {
            let s = self.name(u, &fields.field("uriTemplate"))?;
            self.check_template(u, &s.pos.path, &s.value, true);
            Some(s)
        });
        let method = match fields.get("method") {
            Some(m) => {
                let v = self.enum_value(m, &fields.field("method"), &grammar::METHOD);
                ok &= v.is_some();
                v.unwrap_or("POST").to_string()
            }
            None => "POST".to_string(),
        };
        let network_mode = self
            .optional_choice(&fields, "networkMode", &grammar::NETWORK_MODE, &mut ok)
            .unwrap_or_default();
        let agent_identifier = fields
            .get("agentIdentifier")
            .and_then(|a| self.name(a, &fields.field("agentIdentifier")))
            .map(|a| a.value);
        let mut headers = Vec::new();
        if let Some(list) = fields.get("headers") {
            for (item, item_path) in self.seq(list, &fields.field("headers")) {
                let Some(h) = self.object(item, &item_path, &grammar::HEADER) else {
                    ok = false;
                    continue;
                };
                let key = h.get("key");
                let value = h.get("value");
                let key = key.and_then(|k| self.name(k, &h.field("key")));
                let value = value.and_then(|v| {
                    let s = self.string(v, &h.field("value"))?;
                    self.check_template(v, &s.pos.path, &s.value, true);
                    Some(s)
                });
                match (key, value) {
                    (Some(key), Some(value)) => headers.push(Header {
                        key: key.value,
                        value: value.value,
                    }),
                    _ => ok = false,
                }
            }
        }
        let body_template = match fields.get("bodyTemplate") {
            Some(b) => {
                let body = self.object(b, &fields.field("bodyTemplate"), &grammar::BODY_TEMPLATE);
                let inline = body
                    .as_ref()
                    .and_then(|f| f.get("inline").map(|n| (n, f.field("inline"))));
                match inline.and_then(|(n, p)| self.string(n, &p).map(|s| (n, s))) {
                    Some((n, s)) => {
                        self.check_template(n, &s.pos.path, &s.value, true);
                        Some(s.value)
                    }
                    None => {
                        ok = false;
                        None
                    }
                }
            }
            None => None,
        };
        let retry_count = match fields.get("retryCount") {
            Some(r) => self
                .int(r, &fields.field("retryCount"), 0, 100)
                .map(|v| u32::try_from(v).unwrap_or(0)),
            None => Some(0),
        };
        let disable_callback = match fields.get("disableCallback") {
            Some(d) => self.boolean(d, &fields.field("disableCallback")),
            None => Some(false),
        };
        if !ok {
            return None;
        }
        Some(Spanned {
            value: Webhook {
                name: name?.value,
                method,
                uri_template: uri?.value,
                network_mode,
                agent_identifier,
                headers,
                body_template,
                retry_count: retry_count?,
                disable_callback: disable_callback?,
            },
            pos: pos(node, path),
        })
    }

    /// `trafficManagement`.
    pub(crate) fn traffic(&mut self, node: &Node, path: &str) -> Vec<RawTraffic> {
        let mut out = Vec::new();
        // Some Armory files write one entry as a mapping instead of a list of one.
        let items = if matches!(node.kind, crate::node::NodeKind::Map(_)) {
            vec![(node, path.to_string())]
        } else {
            self.seq(node, path)
        };
        for (item, item_path) in items {
            let Some(fields) = self.object(item, &item_path, &grammar::TRAFFIC) else {
                continue;
            };
            let targets = fields
                .get("targets")
                .map(|t| self.string_list(t, &fields.field("targets")));
            let mut entry = RawTraffic {
                targets,
                istio: Vec::new(),
                smi: Vec::new(),
                gateway_api: Vec::new(),
                kubernetes: Vec::new(),
            };
            if let Some(list) = fields.get("istio") {
                for (n, p) in self.seq(list, &fields.field("istio")) {
                    entry.istio.extend(self.istio(n, &p));
                }
            }
            if let Some(list) = fields.get("smi") {
                for (n, p) in self.seq(list, &fields.field("smi")) {
                    entry.smi.extend(self.smi(n, &p));
                }
            }
            if let Some(list) = fields.get("gatewayApi") {
                for (n, p) in self.seq(list, &fields.field("gatewayApi")) {
                    entry.gateway_api.extend(self.gateway_api(n, &p));
                }
            }
            if let Some(list) = fields.get("kubernetes") {
                // Armory files write a pair as one item or as two (`- activeService: a`,
                // `- previewService: p`); a preview-only item joins the pair next to it.
                let mut pending_preview: Option<String> = None;
                for (n, p) in self.seq(list, &fields.field("kubernetes")) {
                    let Some(f) = self.object(n, &p, &grammar::KUBERNETES_SERVICES) else {
                        continue;
                    };
                    let active = f
                        .get("activeService")
                        .and_then(|a| self.name(a, &f.field("activeService")));
                    let preview = f
                        .get("previewService")
                        .and_then(|a| self.name(a, &f.field("previewService")))
                        .map(|p| p.value);
                    match (active, preview) {
                        (Some(a), preview) => entry.kubernetes.push(KubernetesServices {
                            active_service: a.value,
                            preview_service: preview.or_else(|| pending_preview.take()),
                        }),
                        (None, Some(preview)) => match entry.kubernetes.last_mut() {
                            Some(last) if last.preview_service.is_none() => {
                                last.preview_service = Some(preview);
                            }
                            _ => pending_preview = Some(preview),
                        },
                        (None, None) => {
                            if f.get("activeService").is_none() && f.get("previewService").is_none()
                            {
                                self.error(
                                    n,
                                    &p,
                                    "needs activeService (and may name a previewService)",
                                );
                            }
                        }
                    }
                }
                if pending_preview.is_some() {
                    self.error(
                        list,
                        &fields.field("kubernetes"),
                        "a previewService needs an activeService in the same list",
                    );
                }
            }
            if fields
                .get_any(&["istio", "smi", "gatewayApi", "kubernetes"])
                .is_none()
            {
                self.error(
                    item,
                    &item_path,
                    "holds none of istio, smi, gatewayApi or kubernetes",
                );
            }
            out.push(entry);
        }
        out
    }

    fn istio(&mut self, node: &Node, path: &str) -> Option<Istio> {
        let f = self.object(node, path, &grammar::ISTIO)?;
        let vs = f.get("virtualService")?;
        let vsf = self.object(vs, &f.field("virtualService"), &grammar::VIRTUAL_SERVICE)?;
        let vs_name = vsf.get("name");
        let vs_name = vs_name.and_then(|n| self.name(n, &vsf.field("name")))?;
        let route = vsf
            .get("httpRouteName")
            .and_then(|r| self.name(r, &vsf.field("httpRouteName")))
            .map(|r| r.value);
        let destination_rule = match f.get("destinationRule") {
            Some(dr) => {
                let drf =
                    self.object(dr, &f.field("destinationRule"), &grammar::DESTINATION_RULE)?;
                let name = drf.get("name");
                let name = name.and_then(|n| self.name(n, &drf.field("name")))?;
                let opt = |d: &mut Self, key: &str| {
                    drf.get(key)
                        .and_then(|n| d.name(n, &drf.field(key)))
                        .map(|s| s.value)
                };
                Some(DestinationRule {
                    name: name.value,
                    active_subset_name: opt(self, "activeSubsetName"),
                    canary_subset_name: opt(self, "canarySubsetName"),
                })
            }
            None => None,
        };
        Some(Istio {
            virtual_service: vs_name.value,
            http_route_name: route,
            destination_rule,
        })
    }

    fn gateway_api(&mut self, node: &Node, path: &str) -> Option<GatewayApi> {
        let f = self.object(node, path, &grammar::GATEWAY_API)?;
        let route = f.get("httpRouteName");
        let route = route.and_then(|r| self.name(r, &f.field("httpRouteName")));
        let root = f.get("rootServiceName");
        let root = root.and_then(|r| self.name(r, &f.field("rootServiceName")));
        let canary = f
            .get("canaryServiceName")
            .and_then(|n| self.name(n, &f.field("canaryServiceName")))
            .map(|s| s.value);
        let (route, root) = (route?, root?);
        Some(GatewayApi {
            http_route_name: route.value,
            canary_service_name: canary.unwrap_or_else(|| format!("{}-canary", root.value)),
            root_service_name: root.value,
        })
    }

    fn smi(&mut self, node: &Node, path: &str) -> Option<Smi> {
        let f = self.object(node, path, &grammar::SMI)?;
        let root = f.get("rootServiceName");
        let root = root.and_then(|r| self.name(r, &f.field("rootServiceName")))?;
        let opt = |d: &mut Self, key: &str| {
            f.get(key)
                .and_then(|n| d.name(n, &f.field(key)))
                .map(|s| s.value)
        };
        let canary = opt(self, "canaryServiceName");
        let split = opt(self, "trafficSplitName");
        Some(Smi {
            canary_service_name: canary.unwrap_or_else(|| format!("{}-canary", root.value)),
            traffic_split_name: split.unwrap_or_else(|| root.value.clone()),
            root_service_name: root.value,
        })
    }
}
