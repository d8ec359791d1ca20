//! The deploy file's grammar, declared once: every object with its keys, each key's value type,
//! whether it is required, its enum values, its description and the other spellings accepted
//! for it. The decoder takes its known keys, required keys and enum values from here, and
//! [`crate::schema`] turns the same declarations into the JSON Schema editors use, so the two
//! cannot drift apart.
//!
//! What the grammar holds is shape: which keys, which types, which values. Rules that need the
//! whole file (a strategy that exists, weights that never decrease, a timeout of at least a
//! minute) stay in the decoder and validator; the schema is therefore looser than the parser,
//! never stricter.

/// One mapping of the deploy file.
#[derive(Debug)]
pub struct Object {
    /// Its name among the schema's definitions (`target`, `pause`…).
    pub name: &'static str,
    /// What it is, for people (shown by editors).
    pub description: &'static str,
    /// Its keys, in the order the documentation lists them.
    pub keys: &'static [Key],
    /// What the keys must satisfy together.
    pub rules: &'static [Rule],
}

/// One key of an [`Object`].
#[derive(Debug)]
pub struct Key {
    /// The spelling Ferry uses (and reports in field paths).
    pub name: &'static str,
    /// Other spellings real files use, matched without regard to ASCII case.
    pub aliases: &'static [&'static str],
    /// Whether `name` itself is matched without regard to ASCII case.
    pub any_case: bool,
    /// What the value holds.
    pub value: Value,
    /// Whether the key must be present.
    pub required: bool,
    /// What it means, for people.
    pub description: &'static str,
}

/// A set of names matched without regard to ASCII case (units, modes, methods).
#[derive(Debug)]
pub struct Enum {
    /// The canonical spellings; the typed enums of [`crate::plan`] deserialize from them.
    pub values: &'static [&'static str],
}

/// A bound of a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// No bound.
    None,
    /// The value may equal it.
    Inclusive(f64),
    /// The value must differ from it.
    Exclusive(f64),
}

/// What a key's value holds.
#[derive(Debug)]
pub enum Value {
    /// Any non-null scalar, kept as text (numbers and booleans keep their spelling).
    Text,
    /// A non-blank scalar (a name, a path, a template).
    Name,
    /// An application name as people write it: at most 253 bytes, no control characters.
    ApplicationName,
    /// Exactly one of these spellings, case-sensitive (`version: v1`).
    Exact(&'static [&'static str]),
    /// An integer within `min..=max` (also written as a quoted number).
    Int {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// A finite number (also written as a quoted number).
    Number {
        /// Lower bound.
        min: Bound,
        /// Upper bound.
        max: Bound,
    },
    /// `true` or `false`, in any case.
    Bool,
    /// One of an [`Enum`]'s values, in any case.
    Enum(&'static Enum),
    /// A list.
    List {
        /// Each item.
        item: &'static Value,
        /// Fewest items.
        min: usize,
    },
    /// A mapping whose keys are names the user chooses (targets, strategies).
    Named {
        /// Each value.
        value: &'static Value,
        /// Fewest entries.
        min: usize,
    },
    /// A mapping of the grammar.
    Object(&'static Object),
    /// Either of two shapes (`setWeight: 25` or `setWeight: {weight: 25}`).
    Either(&'static Value, &'static Value),
    /// One mapping, or a list of them (`trafficManagement`).
    OneOrList(&'static Object),
    /// Context variables: a mapping of name to text, or a list of `{key, value}`.
    Context,
}

/// What the keys of an object must satisfy together.
#[derive(Debug)]
pub enum Rule {
    /// Exactly one of these keys is present.
    ExactlyOne(&'static [&'static str]),
    /// At least one of these keys is present.
    AtLeastOne(&'static [&'static str]),
    /// The object has one of these forms.
    OneForm(&'static [Form]),
}

/// One form of an object with several ([`Rule::OneForm`]).
#[derive(Debug)]
pub struct Form {
    /// Keys this form needs.
    pub requires: &'static [&'static str],
    /// Keys this form forbids.
    pub forbids: &'static [&'static str],
    /// A boolean key that, when present, must have this value.
    pub flag: Option<(&'static str, bool)>,
}

impl Object {
    /// The key spelled `name` (exactly), if this object has one.
    pub fn key(&self, name: &str) -> Option<&'static Key> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// The key a written spelling stands for: the key of that name, else the key it is an
    /// alias (or any-case spelling) of.
    pub fn resolve(&self, written: &str) -> Option<&'static Key> {
        self.key(written).or_else(|| {
            self.keys.iter().find(|k| {
                (k.any_case && k.name.eq_ignore_ascii_case(written))
                    || k.aliases.iter().any(|a| a.eq_ignore_ascii_case(written))
            })
        })
    }

    /// The keys' names.
    pub fn names(&self) -> Vec<&'static str> {
        self.keys.iter().map(|k| k.name).collect()
    }
}

impl Enum {
    /// The canonical spelling of `written` (matched without regard to ASCII case).
    pub fn resolve(&self, written: &str) -> Option<&'static str> {
        self.values
            .iter()
            .copied()
            .find(|v| v.eq_ignore_ascii_case(written))
    }
}

const fn key(name: &'static str, value: Value, description: &'static str) -> Key {
    Key {
        name,
        aliases: &[],
        any_case: false,
        value,
        required: false,
        description,
    }
}

const fn required(name: &'static str, value: Value, description: &'static str) -> Key {
    Key {
        required: true,
        ..key(name, value, description)
    }
}

const NAMES: Value = Value::List {
    item: &Value::Name,
    min: 0,
};
/// The largest amount of any duration: a year in seconds (the decoder also bounds the amount
/// times its unit, [`crate::limits::MAX_DURATION_SECS`]).
pub(crate) const SECONDS_MAX: i64 = crate::limits::MAX_DURATION_SECS as i64;

// Enums.

/// Time units (`none` only where the amount is zero).
pub const UNITS: Enum = Enum {
    values: &["seconds", "minutes", "hours", "none"],
};
/// `deploymentConfig.ifDeploymentInProgress.strategy`.
pub const IN_PROGRESS: Enum = Enum {
    values: &["reject", "enqueueOne"],
};
/// `lookbackMethod`.
pub const LOOKBACK_METHOD: Enum = Enum {
    values: &["growing", "sliding"],
};
/// `rollBackMode` / `rollForwardMode`.
pub const MODE: Enum = Enum {
    values: &["automatic", "manual"],
};
/// `judge.direction`.
pub const DIRECTION: Enum = Enum {
    values: &["increase", "decrease", "either"],
};
/// `webhooks[].networkMode`.
pub const NETWORK_MODE: Enum = Enum {
    values: &["direct", "remoteNetworkAgent"],
};
/// `webhooks[].method`.
pub const METHOD: Enum = Enum {
    values: &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
};
/// `kind`: the only kind Ferry deploys.
pub const KIND: Enum = Enum {
    values: &["kubernetes"],
};

// Shared pieces.

const UNIT: Key = Key {
    aliases: &["units"],
    any_case: true,
    ..required(
        "unit",
        Value::Enum(&UNITS),
        "seconds, minutes or hours (any case; also spelled `units`)",
    )
};

/// `{duration, unit}`.
pub const DURATION: Object = Object {
    name: "duration",
    description: "A length of time: `duration` in `unit`s.",
    keys: &[
        required(
            "duration",
            Value::Int {
                min: 0,
                max: SECONDS_MAX,
            },
            "how many units",
        ),
        UNIT,
    ],
    rules: &[],
};

/// `context` list items.
pub const CONTEXT_ITEM: Object = Object {
    name: "contextItem",
    description: "One context variable.",
    keys: &[
        required("key", Value::Name, "the variable's name"),
        required("value", Value::Text, "its value"),
    ],
    rules: &[],
};

// Top level.

/// The whole file.
pub const DEPLOY_FILE: Object = Object {
    name: "deployFile",
    description: "A Ferry deploy file (the format of Armory CD-as-a-Service, version v1): what to \
                  deploy, where, and how.",
    keys: &[
        key("version", Value::Exact(&["v1"]), "the format's version: v1"),
        key(
            "kind",
            Value::Enum(&KIND),
            "kubernetes (the default and the only kind Ferry deploys)",
        ),
        required(
            "application",
            Value::ApplicationName,
            "the application's name as people write it (at most 253 bytes, no control \
             characters); one deployment in flight per application",
        ),
        key("description", Value::Text, "shown in the CLI and UI"),
        key(
            "context",
            Value::Context,
            "context variables for the whole deployment ({{context.NAME}})",
        ),
        key(
            "deploymentConfig",
            Value::Object(&DEPLOYMENT_CONFIG),
            "timeout, keeping the Deployment object, and what a second start does",
        ),
        required(
            "targets",
            Value::Named {
                value: &Value::Object(&TARGET),
                min: 1,
            },
            "where to deploy: target name to target",
        ),
        required(
            "manifests",
            Value::List {
                item: &Value::Object(&MANIFEST),
                min: 1,
            },
            "the Kubernetes manifests to deploy",
        ),
        key(
            "strategies",
            Value::Named {
                value: &Value::Object(&STRATEGY),
                min: 0,
            },
            "strategy name to strategy (canary or blueGreen); targets refer to them",
        ),
        key(
            "analysis",
            Value::Object(&ANALYSIS),
            "the queries analysis steps refer to",
        ),
        key(
            "webhooks",
            Value::List {
                item: &Value::Object(&WEBHOOK),
                min: 0,
            },
            "the webhooks runWebhook steps refer to",
        ),
        key(
            "trafficManagement",
            Value::OneOrList(&TRAFFIC),
            "Istio, SMI or Kubernetes Services shaping traffic (a list, or one mapping)",
        ),
        key(
            "targetFilters",
            Value::List {
                item: &Value::Object(&TARGET_FILTER),
                min: 0,
            },
            "deploy only these targets",
        ),
    ],
    rules: &[],
};

/// `deploymentConfig`.
pub const DEPLOYMENT_CONFIG: Object = Object {
    name: "deploymentConfig",
    description: "How the deployment as a whole behaves.",
    keys: &[
        key(
            "timeout",
            Value::Object(&DURATION),
            "how long a target may wait for its pods to become ready (default 30 minutes, at \
             least 60 seconds)",
        ),
        key(
            "keepDeploymentObject",
            Value::Bool,
            "keep the user's Deployment object scaled to zero instead of deleting it",
        ),
        key(
            "ifDeploymentInProgress",
            Value::Object(&IN_PROGRESS_POLICY),
            "what a second start of the application does while one runs",
        ),
    ],
    rules: &[],
};

/// `deploymentConfig.ifDeploymentInProgress`.
pub const IN_PROGRESS_POLICY: Object = Object {
    name: "ifDeploymentInProgress",
    description: "What a second start of the same application does while one runs.",
    keys: &[required(
        "strategy",
        Value::Enum(&IN_PROGRESS),
        "reject (409 with the running deployment's id) or enqueueOne (the newest waiting \
         request starts when the running one ends)",
    )],
    rules: &[],
};

/// `targets.<name>`.
pub const TARGET: Object = Object {
    name: "target",
    description: "One place to deploy to.",
    keys: &[
        required(
            "account",
            Value::Name,
            "the agent identifier of the cluster's agent",
        ),
        key(
            "namespace",
            Value::Name,
            "namespace forced onto every namespaced manifest",
        ),
        key(
            "strategy",
            Value::Name,
            "a key of strategies; absent: everything is applied directly",
        ),
        key(
            "constraints",
            Value::Object(&CONSTRAINTS),
            "ordering and gates around this target",
        ),
    ],
    rules: &[],
};

/// `targets.<name>.constraints`.
pub const CONSTRAINTS: Object = Object {
    name: "constraints",
    description: "What must happen before and after this target deploys.",
    keys: &[
        key(
            "dependsOn",
            NAMES,
            "targets that must succeed before this one starts",
        ),
        key(
            "beforeDeployment",
            Value::List {
                item: &Value::Object(&CONSTRAINT_STEP),
                min: 0,
            },
            "gates run in parallel before the target starts",
        ),
        key(
            "afterDeployment",
            Value::List {
                item: &Value::Object(&CONSTRAINT_STEP),
                min: 0,
            },
            "gates run in parallel after the target deployed, before its dependents start",
        ),
    ],
    rules: &[],
};

/// `manifests[]`.
pub const MANIFEST: Object = Object {
    name: "manifest",
    description: "Where manifests come from: a path (file, folder or http(s) URL) or inline \
                  YAML.",
    keys: &[
        key(
            "path",
            Value::Name,
            "a file or folder relative to the deploy file, or an http(s) URL",
        ),
        key(
            "inline",
            Value::Name,
            "manifests as a YAML string (may hold several documents)",
        ),
        key(
            "targets",
            NAMES,
            "the targets these manifests go to (absent: all)",
        ),
    ],
    rules: &[Rule::ExactlyOne(&["path", "inline"])],
};

/// `targetFilters[]`.
pub const TARGET_FILTER: Object = Object {
    name: "targetFilter",
    description: "A target to deploy (the others are left out).",
    keys: &[required("includeTarget", Value::Name, "a target's name")],
    rules: &[],
};

// Strategies.

/// `strategies.<name>`.
pub const STRATEGY: Object = Object {
    name: "strategy",
    description: "How a target rolls out: exactly one of canary or blueGreen.",
    keys: &[
        key(
            "canary",
            Value::Object(&CANARY),
            "shift traffic step by step",
        ),
        key(
            "blueGreen",
            Value::Object(&BLUE_GREEN),
            "bring the new version up beside the old, then switch",
        ),
    ],
    rules: &[Rule::ExactlyOne(&["canary", "blueGreen"])],
};

/// `strategies.<name>.canary`.
pub const CANARY: Object = Object {
    name: "canary",
    description: "A canary rollout.",
    keys: &[required(
        "steps",
        Value::List {
            item: &Value::Object(&CANARY_STEP),
            min: 0,
        },
        "setWeight, pause, analysis, runWebhook and exposeServices steps, in order",
    )],
    rules: &[],
};

/// `strategies.<name>.blueGreen`.
pub const BLUE_GREEN: Object = Object {
    name: "blueGreen",
    description: "A blue/green rollout.",
    keys: &[
        key(
            "activeService",
            Value::Name,
            "the Service switched to the new version (here or under trafficManagement)",
        ),
        key(
            "previewService",
            Value::Name,
            "a Service pointed at the new version before the switch (optional)",
        ),
        key(
            "redirectTrafficAfter",
            Value::List {
                item: &Value::Object(&BLUE_GREEN_STEP),
                min: 0,
            },
            "conditions run in parallel before the switch",
        ),
        Key {
            aliases: &["shutdownOldVersionAfter"],
            ..key(
                "shutDownOldVersionAfter",
                Value::List {
                    item: &Value::Object(&BLUE_GREEN_STEP),
                    min: 0,
                },
                "conditions run in parallel before the old version is deleted (also spelled \
                 shutdownOldVersionAfter)",
            )
        },
    ],
    rules: &[],
};

// Steps.

const SET_WEIGHT_KEY: Key = key(
    "setWeight",
    Value::Either(
        &Value::Int { min: 0, max: 100 },
        &Value::Object(&SET_WEIGHT),
    ),
    "send this percentage of traffic to the new version (`setWeight: 25` works too)",
);
const PAUSE_KEY: Key = key(
    "pause",
    Value::Object(&PAUSE),
    "wait for a duration, or for an approval",
);
const ANALYSIS_KEY: Key = key(
    "analysis",
    Value::Object(&ANALYSIS_STEP),
    "judge the new version by metric queries",
);
const RUN_WEBHOOK_KEY: Key = key(
    "runWebhook",
    Value::Object(&RUN_WEBHOOK),
    "call a webhook and wait for its callback",
);
const EXPOSE_SERVICES_KEY: Key = key(
    "exposeServices",
    Value::Object(&EXPOSE_SERVICES),
    "publish temporary preview addresses for Services",
);

/// A canary step: exactly one of every step kind.
pub const CANARY_STEP: Object = Object {
    name: "canaryStep",
    description: "One canary step: exactly one of setWeight, pause, analysis, runWebhook, \
                  exposeServices.",
    keys: &[
        SET_WEIGHT_KEY,
        PAUSE_KEY,
        ANALYSIS_KEY,
        RUN_WEBHOOK_KEY,
        EXPOSE_SERVICES_KEY,
    ],
    rules: &[Rule::ExactlyOne(&[
        "setWeight",
        "pause",
        "analysis",
        "runWebhook",
        "exposeServices",
    ])],
};

/// A blue/green condition: every step kind but setWeight.
pub const BLUE_GREEN_STEP: Object = Object {
    name: "blueGreenStep",
    description: "One blue/green condition: exactly one of pause, analysis, runWebhook, \
                  exposeServices.",
    keys: &[
        PAUSE_KEY,
        ANALYSIS_KEY,
        RUN_WEBHOOK_KEY,
        EXPOSE_SERVICES_KEY,
    ],
    rules: &[Rule::ExactlyOne(&[
        "pause",
        "analysis",
        "runWebhook",
        "exposeServices",
    ])],
};

/// A target constraint: pause, runWebhook or analysis.
pub const CONSTRAINT_STEP: Object = Object {
    name: "constraintStep",
    description: "One gate: exactly one of pause, runWebhook, analysis.",
    keys: &[PAUSE_KEY, RUN_WEBHOOK_KEY, ANALYSIS_KEY],
    rules: &[Rule::ExactlyOne(&["pause", "runWebhook", "analysis"])],
};

/// `setWeight: {weight}`.
pub const SET_WEIGHT: Object = Object {
    name: "setWeight",
    description: "The new version's share of traffic.",
    keys: &[required(
        "weight",
        Value::Int { min: 0, max: 100 },
        "percent, 0 to 100; weights should not decrease",
    )],
    rules: &[],
};

/// `pause`.
pub const PAUSE: Object = Object {
    name: "pause",
    description: "Wait: either duration + unit, or untilApproved: true (not both).",
    keys: &[
        key(
            "duration",
            Value::Int {
                min: 0,
                max: SECONDS_MAX,
            },
            "how many units to wait",
        ),
        Key {
            required: false,
            ..UNIT
        },
        key(
            "untilApproved",
            Value::Bool,
            "wait for an approval through the API, CLI or UI",
        ),
        key(
            "requiresRoles",
            NAMES,
            "only holders of one of these roles (or admins) may approve",
        ),
        Key {
            aliases: &["approvalDuration"],
            ..key(
                "approvalExpiration",
                Value::Object(&APPROVAL_EXPIRATION),
                "when the approval is not given in time, the target fails (also spelled \
                 approvalDuration)",
            )
        },
    ],
    rules: &[Rule::OneForm(&[
        Form {
            requires: &["duration", "unit"],
            forbids: &["requiresRoles", "approvalExpiration"],
            flag: Some(("untilApproved", false)),
        },
        Form {
            requires: &["untilApproved"],
            forbids: &["duration", "unit"],
            flag: Some(("untilApproved", true)),
        },
    ])],
};

/// `pause.approvalExpiration`.
pub const APPROVAL_EXPIRATION: Object = Object {
    name: "approvalExpiration",
    description: "How long an approval may take.",
    keys: &[
        required(
            "duration",
            Value::Int {
                min: 0,
                max: SECONDS_MAX,
            },
            "how many units (more than zero)",
        ),
        UNIT,
        key(
            "requiresRoles",
            NAMES,
            "roles that may approve (as under pause)",
        ),
    ],
    rules: &[],
};

/// The `analysis` step.
pub const ANALYSIS_STEP: Object = Object {
    name: "analysisStep",
    description: "Judge the new version by the named queries over one or more windows.",
    keys: &[
        required(
            "interval",
            Value::Int {
                min: 1,
                max: SECONDS_MAX,
            },
            "one judgment window, in units",
        ),
        Key {
            aliases: &["unit"],
            any_case: true,
            ..required(
                "units",
                Value::Enum(&UNITS),
                "seconds, minutes or hours (any case; also spelled `unit`)",
            )
        },
        key(
            "numberOfJudgmentRuns",
            Value::Int {
                min: 1,
                max: 10_000,
            },
            "how many windows are judged (default 1)",
        ),
        key(
            "lookbackMethod",
            Value::Enum(&LOOKBACK_METHOD),
            "growing (each window starts at the analysis start, default) or sliding (each \
             window is the last interval)",
        ),
        key(
            "rollBackMode",
            Value::Enum(&MODE),
            "automatic (default) or manual: a person decides on a failed analysis",
        ),
        key(
            "rollForwardMode",
            Value::Enum(&MODE),
            "automatic (default) or manual: a person decides on a passed analysis",
        ),
        key(
            "abortOnFailedJudgment",
            Value::Bool,
            "stop at the first failing run",
        ),
        key(
            "metricProviderName",
            Value::Name,
            "the metric provider (default: analysis.defaultMetricProviderName)",
        ),
        key(
            "context",
            Value::Context,
            "context variables for these queries",
        ),
        required(
            "queries",
            Value::List {
                item: &Value::Name,
                min: 1,
            },
            "names of analysis.queries; all must pass",
        ),
    ],
    rules: &[],
};

/// The `runWebhook` step.
pub const RUN_WEBHOOK: Object = Object {
    name: "runWebhook",
    description: "Call a webhook of `webhooks` and, unless it disables callbacks, wait for its \
                  callback.",
    keys: &[
        required("name", Value::Name, "a webhook's name"),
        key(
            "context",
            Value::Context,
            "context variables for the webhook's templates",
        ),
    ],
    rules: &[],
};

/// The `exposeServices` step.
pub const EXPOSE_SERVICES: Object = Object {
    name: "exposeServices",
    description: "Temporary preview addresses, published as {{ferry.preview.<service>}}.",
    keys: &[
        required(
            "services",
            Value::List {
                item: &Value::Name,
                min: 1,
            },
            "the Services to expose",
        ),
        key(
            "ttl",
            Value::Object(&DURATION),
            "how long the addresses live (1 minute to 24 hours, default 5 minutes)",
        ),
    ],
    rules: &[],
};

// Definitions.

/// `analysis`.
pub const ANALYSIS: Object = Object {
    name: "analysis",
    description: "The metric queries analysis steps refer to.",
    keys: &[
        key(
            "defaultMetricProviderName",
            Value::Name,
            "the provider of queries that name none",
        ),
        required(
            "queries",
            Value::List {
                item: &Value::Object(&QUERY),
                min: 0,
            },
            "the queries",
        ),
    ],
    rules: &[],
};

/// `analysis.queries[]`.
pub const QUERY: Object = Object {
    name: "query",
    description: "A metric query and its limits: the mean of its run values must lie within \
                  [lowerLimit, upperLimit].",
    keys: &[
        required("name", Value::Name, "unique; analysis steps refer to it"),
        required(
            "queryTemplate",
            Value::Name,
            "the query, with {{ferry.*}} and {{context.*}} variables",
        ),
        key(
            "upperLimit",
            Value::Number {
                min: Bound::None,
                max: Bound::None,
            },
            "highest passing value (inclusive)",
        ),
        key(
            "lowerLimit",
            Value::Number {
                min: Bound::None,
                max: Bound::None,
            },
            "lowest passing value (inclusive)",
        ),
        key(
            "metricProviderName",
            Value::Name,
            "overrides analysis.defaultMetricProviderName",
        ),
        key(
            "judge",
            Value::Object(&JUDGE),
            "Ferry's comparison judge (ANALYSIS.md)",
        ),
    ],
    rules: &[Rule::AtLeastOne(&["upperLimit", "lowerLimit", "judge"])],
};

/// `analysis.queries[].judge`.
pub const JUDGE: Object = Object {
    name: "judge",
    description: "Compare the new version with a baseline statistically (ANALYSIS.md).",
    keys: &[
        key(
            "direction",
            Value::Enum(&DIRECTION),
            "which change is harmful: increase (default), decrease or either",
        ),
        key(
            "confidence",
            Value::Number {
                min: Bound::Exclusive(0.0),
                max: Bound::Exclusive(1.0),
            },
            "confidence level, between 0 and 1 (default 0.98)",
        ),
        key(
            "tolerance",
            Value::Number {
                min: Bound::Inclusive(0.0),
                max: Bound::None,
            },
            "relative change tolerated (default 0.25)",
        ),
        key(
            "allowedEffectSize",
            Value::Number {
                min: Bound::Exclusive(0.0),
                max: Bound::None,
            },
            "effect size tolerated (default 1)",
        ),
        key(
            "minSamples",
            Value::Int {
                min: 1,
                max: 1_000_000,
            },
            "fewest samples per side (default 30)",
        ),
        key(
            "critical",
            Value::Bool,
            "a failure fails the whole analysis",
        ),
        key(
            "mustHaveData",
            Value::Bool,
            "no data is a failure, not a pass",
        ),
        key("group", Value::Name, "a group for the score"),
        key(
            "weight",
            Value::Number {
                min: Bound::Exclusive(0.0),
                max: Bound::None,
            },
            "weight in the score (default 1)",
        ),
        key(
            "pass",
            Value::Number {
                min: Bound::Inclusive(0.0),
                max: Bound::Inclusive(100.0),
            },
            "score that passes, 0 to 100 (default 95)",
        ),
        key(
            "marginal",
            Value::Number {
                min: Bound::Inclusive(0.0),
                max: Bound::Inclusive(100.0),
            },
            "score below which the run fails, 0 to 100, at most pass (default 75)",
        ),
    ],
    rules: &[],
};

/// `webhooks[]`.
pub const WEBHOOK: Object = Object {
    name: "webhook",
    description: "An HTTP call runWebhook steps make.",
    keys: &[
        required("name", Value::Name, "unique; runWebhook steps refer to it"),
        key(
            "method",
            Value::Enum(&METHOD),
            "the HTTP method (default POST)",
        ),
        required(
            "uriTemplate",
            Value::Name,
            "the URL, with {{ferry.*}}, {{context.*}} and {{secrets.*}} variables",
        ),
        key(
            "networkMode",
            Value::Enum(&NETWORK_MODE),
            "direct (default) or remoteNetworkAgent (sent through an agent)",
        ),
        key(
            "agentIdentifier",
            Value::Name,
            "the agent for remoteNetworkAgent (default: the target's account)",
        ),
        key(
            "headers",
            Value::List {
                item: &Value::Object(&HEADER),
                min: 0,
            },
            "request headers",
        ),
        key(
            "bodyTemplate",
            Value::Object(&BODY_TEMPLATE),
            "the request body",
        ),
        key(
            "retryCount",
            Value::Int { min: 0, max: 100 },
            "retries on connection failure or non-2xx (default 0)",
        ),
        key(
            "disableCallback",
            Value::Bool,
            "do not wait for a callback (default false)",
        ),
    ],
    rules: &[],
};

/// `webhooks[].headers[]`.
pub const HEADER: Object = Object {
    name: "header",
    description: "One request header.",
    keys: &[
        required("key", Value::Name, "the header's name"),
        required("value", Value::Text, "its value (templates allowed)"),
    ],
    rules: &[],
};

/// `webhooks[].bodyTemplate`.
pub const BODY_TEMPLATE: Object = Object {
    name: "bodyTemplate",
    description: "The request body.",
    keys: &[required(
        "inline",
        Value::Text,
        "the body, with template variables",
    )],
    rules: &[],
};

/// `trafficManagement[]`.
pub const TRAFFIC: Object = Object {
    name: "trafficManagement",
    description: "Traffic shaping for some targets: any of istio, smi, gatewayApi, kubernetes.",
    keys: &[
        key("targets", NAMES, "the targets it applies to (absent: all)"),
        key(
            "istio",
            Value::List {
                item: &Value::Object(&ISTIO),
                min: 0,
            },
            "Istio VirtualService and DestinationRule",
        ),
        key(
            "smi",
            Value::List {
                item: &Value::Object(&SMI),
                min: 0,
            },
            "SMI TrafficSplit (Linkerd)",
        ),
        key(
            "gatewayApi",
            Value::List {
                item: &Value::Object(&GATEWAY_API),
                min: 0,
            },
            "Gateway API HTTPRoute (Ferry's own key)",
        ),
        key(
            "kubernetes",
            Value::List {
                item: &Value::Object(&KUBERNETES_SERVICES),
                min: 0,
            },
            "blue/green Services (a pair in one item, or in two)",
        ),
    ],
    rules: &[Rule::AtLeastOne(&[
        "istio",
        "smi",
        "gatewayApi",
        "kubernetes",
    ])],
};

/// `trafficManagement[].istio[]`.
pub const ISTIO: Object = Object {
    name: "istio",
    description: "The Istio objects whose weights Ferry sets.",
    keys: &[
        required(
            "virtualService",
            Value::Object(&VIRTUAL_SERVICE),
            "the VirtualService",
        ),
        key(
            "destinationRule",
            Value::Object(&DESTINATION_RULE),
            "the DestinationRule",
        ),
    ],
    rules: &[],
};

/// `trafficManagement[].istio[].virtualService`.
pub const VIRTUAL_SERVICE: Object = Object {
    name: "virtualService",
    description: "An Istio VirtualService.",
    keys: &[
        required("name", Value::Name, "its name"),
        key(
            "httpRouteName",
            Value::Name,
            "the HTTP route whose weights are set",
        ),
    ],
    rules: &[],
};

/// `trafficManagement[].istio[].destinationRule`.
pub const DESTINATION_RULE: Object = Object {
    name: "destinationRule",
    description: "An Istio DestinationRule.",
    keys: &[
        required("name", Value::Name, "its name"),
        key("activeSubsetName", Value::Name, "the stable subset"),
        key("canarySubsetName", Value::Name, "the canary subset"),
    ],
    rules: &[],
};

/// `trafficManagement[].smi[]`.
pub const SMI: Object = Object {
    name: "smi",
    description: "An SMI TrafficSplit.",
    keys: &[
        required("rootServiceName", Value::Name, "the Service clients call"),
        key(
            "canaryServiceName",
            Value::Name,
            "the canary Service (default <root>-canary)",
        ),
        key(
            "trafficSplitName",
            Value::Name,
            "the TrafficSplit (default <root>)",
        ),
    ],
    rules: &[],
};

/// `trafficManagement[].gatewayApi[]`.
pub const GATEWAY_API: Object = Object {
    name: "gatewayApi",
    description: "A Gateway API HTTPRoute whose backends Ferry weights between the versions.",
    keys: &[
        required("httpRouteName", Value::Name, "the HTTPRoute"),
        required(
            "rootServiceName",
            Value::Name,
            "the Service the route's rules send to",
        ),
        key(
            "canaryServiceName",
            Value::Name,
            "the canary Service (default <root>-canary)",
        ),
    ],
    rules: &[],
};

/// `trafficManagement[].kubernetes[]`.
pub const KUBERNETES_SERVICES: Object = Object {
    name: "kubernetesServices",
    description: "Blue/green Services: activeService, and optionally previewService (also as a \
                  separate item).",
    keys: &[
        key(
            "activeService",
            Value::Name,
            "the Service switched at cut-over",
        ),
        key(
            "previewService",
            Value::Name,
            "the Service pointed at the new version before",
        ),
    ],
    rules: &[Rule::AtLeastOne(&["activeService", "previewService"])],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Direction, InProgressPolicy, LookbackMethod, Mode, NetworkMode};
    use serde::de::DeserializeOwned;

    fn decodes_all<T: DeserializeOwned>(e: &Enum) {
        for v in e.values {
            let parsed: Result<T, _> = serde_json::from_value(serde_json::json!(v));
            assert!(
                parsed.is_ok(),
                "{v} is not a {}",
                std::any::type_name::<T>()
            );
        }
    }

    #[test]
    fn enum_values_are_the_plan_types_spellings() {
        decodes_all::<InProgressPolicy>(&IN_PROGRESS);
        decodes_all::<LookbackMethod>(&LOOKBACK_METHOD);
        decodes_all::<Mode>(&MODE);
        decodes_all::<Direction>(&DIRECTION);
        decodes_all::<NetworkMode>(&NETWORK_MODE);
    }

    #[test]
    fn spellings_resolve_to_their_key() {
        assert_eq!(
            ANALYSIS_STEP.resolve("Units").map(|k| k.name),
            Some("units")
        );
        assert_eq!(ANALYSIS_STEP.resolve("UNIT").map(|k| k.name), Some("units"));
        assert_eq!(PAUSE.resolve("units").map(|k| k.name), Some("unit"));
        assert_eq!(
            PAUSE.resolve("approvalDuration").map(|k| k.name),
            Some("approvalExpiration")
        );
        assert_eq!(
            BLUE_GREEN
                .resolve("shutdownOldVersionAfter")
                .map(|k| k.name),
            Some("shutDownOldVersionAfter")
        );
        // Only keys that say so are matched in any case.
        assert!(TARGET.resolve("Account").is_none());
        assert_eq!(MODE.resolve("MANUAL"), Some("manual"));
    }

    /// Every name a rule mentions is a key of its object.
    #[test]
    fn rules_name_real_keys() {
        let objects = [
            &DEPLOY_FILE,
            &MANIFEST,
            &STRATEGY,
            &CANARY_STEP,
            &BLUE_GREEN_STEP,
            &CONSTRAINT_STEP,
            &PAUSE,
            &QUERY,
            &TRAFFIC,
            &KUBERNETES_SERVICES,
        ];
        for o in objects {
            for rule in o.rules {
                let names: Vec<&str> = match rule {
                    Rule::ExactlyOne(n) | Rule::AtLeastOne(n) => n.to_vec(),
                    Rule::OneForm(forms) => forms
                        .iter()
                        .flat_map(|f| f.requires.iter().chain(f.forbids).copied())
                        .chain(forms.iter().filter_map(|f| f.flag.map(|(k, _)| k)))
                        .collect(),
                };
                for n in names {
                    assert!(o.key(n).is_some(), "{}: {n}", o.name);
                }
            }
        }
    }
}
