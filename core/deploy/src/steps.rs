//! Decoding of steps (`setWeight`, `pause`, `analysis`, `runWebhook`, `exposeServices`) and of
//! the rules local to one step: ranges, pause forms, durations.

use crate::decode::{Decoder, join};
use crate::grammar::{self, Object};
use crate::limits::{MAX_DURATION_SECS, MAX_STEPS};
use crate::node::{Node, NodeKind};
use crate::raw::{RawAnalysisStep, RawStep, RawStepKind, Spanned};

/// Where a step list sits, which decides the step kinds allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepPlace {
    /// `strategies.x.canary.steps`.
    Canary,
    /// `strategies.x.blueGreen.redirectTrafficAfter` / `shutDownOldVersionAfter`.
    BlueGreen,
    /// `targets.x.constraints.beforeDeployment` / `afterDeployment`.
    Constraint,
}

impl StepPlace {
    /// The step kinds allowed here.
    fn grammar(self) -> &'static Object {
        match self {
            StepPlace::Canary => &grammar::CANARY_STEP,
            StepPlace::BlueGreen => &grammar::BLUE_GREEN_STEP,
            StepPlace::Constraint => &grammar::CONSTRAINT_STEP,
        }
    }

    fn allows(self, kind: &str) -> bool {
        self.grammar().key(kind).is_some()
    }

    fn describe(self) -> &'static str {
        match self {
            StepPlace::Canary => "canary steps",
            StepPlace::BlueGreen => "blue/green conditions",
            StepPlace::Constraint => "constraints (pause, runWebhook, analysis only)",
        }
    }
}

/// Seconds bounds of `exposeServices.ttl`.
const TTL_MIN: u64 = 60;
const TTL_MAX: u64 = 24 * 3600;
const TTL_DEFAULT: u64 = 300;

impl Decoder<'_> {
    /// Decodes a list of steps.
    pub(crate) fn steps(&mut self, node: &Node, path: &str, place: StepPlace) -> Vec<RawStep> {
        let mut out = Vec::new();
        if self.too_many(node, path, MAX_STEPS, "steps") {
            return out;
        }
        for (item, item_path) in self.seq(node, path) {
            // Every kind is read, so a kind out of place is named as such, not as unknown.
            let Some(fields) = self.object(item, &item_path, &grammar::CANARY_STEP) else {
                continue;
            };
            let kinds: Vec<&str> = fields.keys().collect();
            match kinds.as_slice() {
                [] => self.error(
                    item,
                    &item_path,
                    format!("a step needs one of {}", place.grammar().names().join(", ")),
                ),
                [kind] => {
                    let kind_path = join(&item_path, kind);
                    let Some(value) = fields.get(kind) else {
                        continue;
                    };
                    if !place.allows(kind) {
                        self.error(
                            value,
                            &kind_path,
                            format!("{kind} is not allowed in {}", place.describe()),
                        );
                        continue;
                    }
                    if let Some(step) = self.step(kind, value, &kind_path) {
                        out.push(step);
                    }
                }
                many => self.error(
                    item,
                    &item_path,
                    format!("a step has exactly one kind, found {}", many.join(" and ")),
                ),
            }
        }
        out
    }

    fn step(&mut self, kind: &str, node: &Node, path: &str) -> Option<RawStep> {
        let kind = match kind {
            "setWeight" => self.set_weight(node, path)?,
            "pause" => self.pause(node, path)?,
            "analysis" => RawStepKind::Analysis(self.analysis_step(node, path)?),
            "runWebhook" => {
                let fields = self.object(node, path, &grammar::RUN_WEBHOOK)?;
                let name = fields.get("name");
                let context = fields
                    .get("context")
                    .map(|c| self.context(c, &fields.field("context")))
                    .unwrap_or_default();
                let name = self.name(name?, &fields.field("name"))?;
                RawStepKind::RunWebhook { name, context }
            }
            "exposeServices" => {
                let fields = self.object(node, path, &grammar::EXPOSE_SERVICES)?;
                let services = fields.get("services");
                let ttl_secs = match fields.get("ttl") {
                    Some(ttl) => {
                        let ttl_path = fields.field("ttl");
                        let secs = self.duration(ttl, &ttl_path)?;
                        if !(TTL_MIN..=TTL_MAX).contains(&secs) {
                            self.error(ttl, &ttl_path, "ttl must be between 1 minute and 24 hours");
                            return None;
                        }
                        secs
                    }
                    None => TTL_DEFAULT,
                };
                let services_path = fields.field("services");
                let services = self.string_list(services?, &services_path);
                if services.is_empty() {
                    self.error(node, &services_path, "name at least one Service");
                    return None;
                }
                RawStepKind::ExposeServices {
                    services: services.into_iter().map(|s| s.value).collect(),
                    ttl_secs,
                }
            }
            _ => return None,
        };
        Some(RawStep {
            pos: crate::decode::pos(node, path),
            kind,
        })
    }

    /// `setWeight: {weight: N}` or the shorthand `setWeight: N`.
    fn set_weight(&mut self, node: &Node, path: &str) -> Option<RawStepKind> {
        let (value, value_path) = match &node.kind {
            NodeKind::Map(_) => {
                let fields = self.object(node, path, &grammar::SET_WEIGHT)?;
                (fields.get("weight")?, fields.field("weight"))
            }
            _ => (node, path.to_string()),
        };
        let weight = self.int(value, &value_path, 0, 100)?;
        Some(RawStepKind::SetWeight(Spanned {
            value: u8::try_from(weight).ok()?,
            pos: crate::decode::pos(value, &value_path),
        }))
    }

    fn pause(&mut self, node: &Node, path: &str) -> Option<RawStepKind> {
        let fields = self.object(node, path, &grammar::PAUSE)?;
        let approved = match fields.get("untilApproved") {
            Some(v) => self.boolean(v, &fields.field("untilApproved"))?,
            None => false,
        };
        let has_duration = fields.get("duration").is_some() || fields.get("unit").is_some();
        if approved && has_duration {
            self.error(
                node,
                path,
                "give either duration+unit or untilApproved, not both",
            );
            return None;
        }
        if !approved && !has_duration {
            self.error(
                node,
                path,
                "give either duration+unit or untilApproved: true",
            );
            return None;
        }
        if approved {
            let mut requires_roles: Vec<String> = fields
                .get("requiresRoles")
                .map(|r| self.string_list(r, &fields.field("requiresRoles")))
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.value)
                .collect();
            let expiration_secs = match fields.get("approvalExpiration") {
                Some(e) => {
                    let p = fields.field("approvalExpiration");
                    // Armory's documents also nest requiresRoles here.
                    let f = self.object(e, &p, &grammar::APPROVAL_EXPIRATION)?;
                    if let Some(r) = f.get("requiresRoles") {
                        for role in self.string_list(r, &f.field("requiresRoles")) {
                            if !requires_roles.contains(&role.value) {
                                requires_roles.push(role.value);
                            }
                        }
                    }
                    let secs = self.duration_in(&f)?;
                    if secs == 0 {
                        self.error(e, &p, "approvalExpiration must be longer than zero");
                        return None;
                    }
                    Some(secs)
                }
                None => None,
            };
            return Some(RawStepKind::PauseUntilApproved {
                requires_roles,
                expiration_secs,
            });
        }
        for key in ["requiresRoles", "approvalExpiration"] {
            if let Some(v) = fields.get(key) {
                self.error(
                    v,
                    &fields.field(key),
                    format!("{key} only applies with untilApproved: true"),
                );
            }
        }
        let amount_node = self.require(&fields, "duration");
        let unit = self.require(&fields, "unit");
        let amount_path = fields.field("duration");
        let amount = self.int(amount_node?, &amount_path, 0, grammar::SECONDS_MAX)?;
        let factor = self.unit(unit?, &fields.field("unit"), amount)?;
        let secs = u64::try_from(amount).ok()?.saturating_mul(factor);
        let secs = self.duration_within(amount_node?, &amount_path, secs)?;
        Some(RawStepKind::PauseDuration(secs))
    }

    fn analysis_step(&mut self, node: &Node, path: &str) -> Option<RawAnalysisStep> {
        let fields = self.object(node, path, &grammar::ANALYSIS_STEP)?;
        let mut ok = true;
        let interval = fields.get("interval");
        let units = fields.get("units");
        let queries = fields.get("queries");
        let interval_secs = match (interval, units) {
            (Some(i), Some(u)) => {
                let interval_path = fields.field("interval");
                let amount = self.int(i, &interval_path, 1, grammar::SECONDS_MAX);
                let factor = self.unit(u, &fields.field("units"), amount.unwrap_or(1));
                let secs = match (amount, factor) {
                    (Some(a), Some(f)) => u64::try_from(a).unwrap_or(0).saturating_mul(f),
                    _ => 0,
                };
                match self.duration_within(i, &interval_path, secs) {
                    Some(secs) if secs > 0 => secs,
                    _ => {
                        ok = false;
                        0
                    }
                }
            }
            _ => {
                ok = false;
                0
            }
        };
        let number_of_judgment_runs = match fields.get("numberOfJudgmentRuns") {
            Some(n) => match self.int(n, &fields.field("numberOfJudgmentRuns"), 1, 10_000) {
                Some(v) => u32::try_from(v).unwrap_or(1),
                None => {
                    ok = false;
                    1
                }
            },
            None => 1,
        };
        // The runs' total time becomes a deadline (`now + interval × runs`): bound it too.
        if ok
            && interval_secs.saturating_mul(u64::from(number_of_judgment_runs)) > MAX_DURATION_SECS
        {
            self.error(
                node,
                path,
                format!(
                    "{number_of_judgment_runs} judgment runs of {} take longer than {}",
                    crate::limits::seconds(interval_secs),
                    crate::limits::seconds(MAX_DURATION_SECS)
                ),
            );
            ok = false;
        }
        let lookback_method = self
            .optional_choice(
                &fields,
                "lookbackMethod",
                &grammar::LOOKBACK_METHOD,
                &mut ok,
            )
            .unwrap_or_default();
        let roll_back_mode = self
            .optional_choice(&fields, "rollBackMode", &grammar::MODE, &mut ok)
            .unwrap_or_default();
        let roll_forward_mode = self
            .optional_choice(&fields, "rollForwardMode", &grammar::MODE, &mut ok)
            .unwrap_or_default();
        let abort_on_failed_judgment = match fields.get("abortOnFailedJudgment") {
            Some(v) => self
                .boolean(v, &fields.field("abortOnFailedJudgment"))
                .unwrap_or_else(|| {
                    ok = false;
                    false
                }),
            None => false,
        };
        let metric_provider_name = match fields.get("metricProviderName") {
            Some(v) => {
                let name = self.name(v, &fields.field("metricProviderName"));
                ok &= name.is_some();
                name.map(|n| n.value)
            }
            None => None,
        };
        let context = fields
            .get("context")
            .map(|c| self.context(c, &fields.field("context")))
            .unwrap_or_default();
        let queries = match queries {
            Some(q) => {
                let list = self.string_list(q, &fields.field("queries"));
                if list.is_empty() {
                    self.error(q, &fields.field("queries"), "name at least one query");
                    ok = false;
                }
                list
            }
            None => Vec::new(),
        };
        ok.then_some(RawAnalysisStep {
            interval_secs,
            number_of_judgment_runs,
            lookback_method,
            roll_back_mode,
            roll_forward_mode,
            abort_on_failed_judgment,
            metric_provider_name,
            context,
            queries,
        })
    }

    /// An optional enum field; clears `ok` when present but invalid.
    pub(crate) fn optional_choice<T: serde::de::DeserializeOwned>(
        &mut self,
        fields: &crate::decode::Fields<'_>,
        key: &str,
        choices: &grammar::Enum,
        ok: &mut bool,
    ) -> Option<T> {
        let node = fields.get(key)?;
        let v = self.choice(node, &fields.field(key), choices);
        *ok &= v.is_some();
        v
    }
}
