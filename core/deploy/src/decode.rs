//! Decoding helpers: typed reads of positioned nodes that report shape errors (wrong type, unknown
//! or duplicate keys, missing required keys, bad enum values) with field paths, and keep going so
//! every error of a file is collected.

use crate::diagnostics::{Diagnostic, suggest};
use crate::grammar::{self, Enum, Object};
use crate::node::{Node, NodeKind};
use crate::raw::{ContextMap, Pos, Spanned};

/// `a.b` path join; an empty parent yields the key alone.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `a[i]` path.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Collects diagnostics for one file.
pub(crate) struct Decoder<'f> {
    pub file: &'f str,
    pub diags: Vec<Diagnostic>,
    /// `(section, name)` of every strategy, query and webhook written, decodable or not, so a
    /// reference to a broken definition does not add a misleading "unknown" error.
    pub declared: std::collections::HashSet<(&'static str, String)>,
    /// Things accepted but worth telling (a name defined twice, …); they never fail the file.
    pub warnings: Vec<Diagnostic>,
    /// The file is of a kind Ferry does not deploy: only that is reported.
    pub unsupported_kind: bool,
}

/// The fields of a mapping node, after unknown and duplicate keys were reported.
pub(crate) struct Fields<'n> {
    pub node: &'n Node,
    pub path: String,
    pairs: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    /// The value of a key, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&'n Node> {
        self.pairs
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
    }

    /// The first present key among spellings, with the spelling found.
    pub(crate) fn get_any(&self, keys: &[&'static str]) -> Option<(&'static str, &'n Node)> {
        keys.iter().find_map(|k| self.get(k).map(|v| (*k, v)))
    }

    /// Path of a field of this mapping.
    pub(crate) fn field(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Keys present, in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &'n str> + '_ {
        self.pairs.iter().map(|(k, _, _)| *k)
    }
}

pub(crate) fn pos(node: &Node, path: &str) -> Pos {
    Pos {
        line: node.line,
        column: node.column,
        path: path.to_string(),
    }
}

impl<'f> Decoder<'f> {
    pub(crate) fn new(file: &'f str) -> Self {
        Self {
            file,
            diags: Vec::new(),
            declared: Default::default(),
            warnings: Vec::new(),
            unsupported_kind: false,
        }
    }

    /// Reports a warning at a position.
    pub(crate) fn warn_at(&mut self, pos: &Pos, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            file: self.file.to_string(),
            line: pos.line,
            column: pos.column,
            path: pos.path.clone(),
            message: message.into(),
            suggestion: None,
        });
    }

    /// Reports an error at a position.
    pub(crate) fn at(&mut self, pos: &Pos, message: impl Into<String>, suggestion: Option<String>) {
        self.diags.push(Diagnostic {
            file: self.file.to_string(),
            line: pos.line,
            column: pos.column,
            // The root has no field path; name the file itself so a path is never empty.
            path: if pos.path.is_empty() {
                "file".to_string()
            } else {
                pos.path.clone()
            },
            message: message.into(),
            suggestion,
        });
    }

    /// Reports an error at a node.
    pub(crate) fn error(&mut self, node: &Node, path: &str, message: impl Into<String>) {
        self.at(&pos(node, path), message, None);
    }

    /// Reads a mapping of the grammar: reports unknown keys (with the nearest known key),
    /// duplicate keys (two spellings of one key included), non-scalar keys and missing
    /// required keys. Keys are returned under their grammar name, whatever the spelling.
    pub(crate) fn object<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        grammar: &Object,
    ) -> Option<Fields<'n>> {
        let fields = self.pairs(node, path, Some(grammar))?;
        for key in grammar.keys.iter().filter(|k| k.required) {
            if fields.get(key.name).is_none() {
                self.error(
                    node,
                    &fields.field(key.name),
                    format!("missing required key \"{}\"", key.name),
                );
            }
        }
        Some(fields)
    }

    /// Reads a mapping (any keys, or the keys of `grammar`), reporting duplicate and non-scalar
    /// keys, and unknown ones when there is a grammar.
    fn pairs<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        grammar: Option<&Object>,
    ) -> Option<Fields<'n>> {
        let NodeKind::Map(pairs) = &node.kind else {
            self.error(
                node,
                path,
                format!("expected a mapping, found {}", node.type_name()),
            );
            return None;
        };
        let mut fields = Fields {
            node,
            path: path.to_string(),
            pairs: Vec::new(),
        };
        // A set, not a scan of the pairs so far: a mapping of many thousand keys must not cost
        // a quadratic number of comparisons.
        let mut seen = std::collections::HashSet::new();
        for (k, v) in pairs {
            let Some(written) = k.scalar() else {
                self.error(k, path, "keys must be plain strings");
                continue;
            };
            let key = match grammar {
                None => written,
                Some(g) => match g.resolve(written) {
                    Some(known) => known.name,
                    None => {
                        let suggestion = suggest(written, g.keys.iter().map(|k| k.name));
                        self.at(
                            &pos(k, &join(path, written)),
                            format!("unknown key \"{written}\""),
                            suggestion,
                        );
                        continue;
                    }
                },
            };
            if !seen.insert(key) {
                self.error(k, &join(path, key), format!("duplicate key \"{key}\""));
                continue;
            }
            fields.pairs.push((key, k, v));
        }
        Some(fields)
    }

    /// Reads a mapping whose keys are user names (targets, strategies); returns key node and value.
    pub(crate) fn named_map<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
    ) -> Vec<(Spanned<String>, &'n Node)> {
        let Some(fields) = self.pairs(node, path, None) else {
            return Vec::new();
        };
        fields
            .pairs
            .iter()
            .map(|(name, key, value)| {
                let spanned = Spanned {
                    value: (*name).to_string(),
                    pos: pos(key, &join(path, name)),
                };
                (spanned, *value)
            })
            .collect()
    }

    /// Records a definition's name from its `name` key, before decoding it.
    pub(crate) fn declare(&mut self, section: &'static str, item: &Node) {
        if let Some(name) = item.get("name").and_then(Node::scalar) {
            self.declared.insert((section, name.to_string()));
        }
    }

    /// Reports a missing required key at its parent mapping.
    pub(crate) fn require<'n>(&mut self, fields: &Fields<'n>, key: &str) -> Option<&'n Node> {
        let found = fields.get(key);
        if found.is_none() {
            self.error(
                fields.node,
                &fields.field(key),
                format!("missing required key \"{key}\""),
            );
        }
        found
    }

    /// Any non-null scalar as a string (numbers and booleans keep their text).
    pub(crate) fn string(&mut self, node: &Node, path: &str) -> Option<Spanned<String>> {
        match node.scalar() {
            Some(s) => Some(Spanned {
                value: s.to_string(),
                pos: pos(node, path),
            }),
            None => {
                self.error(
                    node,
                    path,
                    format!("expected a string, found {}", node.type_name()),
                );
                None
            }
        }
    }

    /// A non-empty string.
    pub(crate) fn name(&mut self, node: &Node, path: &str) -> Option<Spanned<String>> {
        let s = self.string(node, path)?;
        if s.value.trim().is_empty() {
            self.error(node, path, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// An integer within `min..=max`.
    pub(crate) fn int(&mut self, node: &Node, path: &str, min: i64, max: i64) -> Option<i64> {
        let parsed = match &node.kind {
            NodeKind::Scalar { text, .. } => text.trim().parse::<i64>().ok(),
            _ => None,
        };
        match parsed {
            Some(v) if (min..=max).contains(&v) => Some(v),
            Some(v) => {
                let range = if max == i64::MAX {
                    format!("at least {min}")
                } else {
                    format!("between {min} and {max}")
                };
                self.error(node, path, format!("{v} is out of range: must be {range}"));
                None
            }
            None => {
                self.error(
                    node,
                    path,
                    format!("expected an integer, found {}", describe(node)),
                );
                None
            }
        }
    }

    /// A finite number.
    pub(crate) fn number(&mut self, node: &Node, path: &str) -> Option<f64> {
        let parsed = match &node.kind {
            NodeKind::Scalar { text, .. } => text.trim().parse::<f64>().ok(),
            _ => None,
        };
        match parsed {
            Some(v) if v.is_finite() => Some(v),
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected a number, found {}", describe(node)),
                );
                None
            }
        }
    }

    /// `true` or `false` (any case).
    pub(crate) fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node.scalar().map(str::to_ascii_lowercase).as_deref() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected true or false, found {}", describe(node)),
                );
                None
            }
        }
    }

    /// One of an enum's values, matched without regard to ASCII case; its canonical spelling.
    pub(crate) fn enum_value(
        &mut self,
        node: &Node,
        path: &str,
        choices: &Enum,
    ) -> Option<&'static str> {
        let s = self.string(node, path)?;
        if let Some(v) = choices.resolve(&s.value) {
            return Some(v);
        }
        self.at(
            &s.pos,
            format!(
                "unknown value \"{}\": expected one of {}",
                s.value,
                choices.values.join(", ")
            ),
            suggest(&s.value, choices.values.iter().copied()),
        );
        None
    }

    /// One of an enum's values as the plan type spelled by them (the grammar's values are the
    /// type's serde names; a grammar unit test checks each).
    pub(crate) fn choice<T: serde::de::DeserializeOwned>(
        &mut self,
        node: &Node,
        path: &str,
        choices: &Enum,
    ) -> Option<T> {
        let v = self.enum_value(node, path, choices)?;
        serde_json::from_value(serde_json::Value::from(v)).ok()
    }

    /// The items of a sequence with their paths.
    pub(crate) fn seq<'n>(&mut self, node: &'n Node, path: &str) -> Vec<(&'n Node, String)> {
        match &node.kind {
            NodeKind::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, n)| (n, index(path, i)))
                .collect(),
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected a list, found {}", node.type_name()),
                );
                Vec::new()
            }
        }
    }

    /// A list of non-empty strings.
    pub(crate) fn string_list(&mut self, node: &Node, path: &str) -> Vec<Spanned<String>> {
        self.seq(node, path)
            .into_iter()
            .filter_map(|(n, p)| self.name(n, &p))
            .collect()
    }

    /// A string-to-string map (`context`), written as a mapping or, as some Armory files do,
    /// as a list of `{key, value}` pairs.
    pub(crate) fn context(&mut self, node: &Node, path: &str) -> ContextMap {
        let out = ContextMap::new();
        if self.too_many(
            node,
            path,
            crate::limits::MAX_CONTEXT_ENTRIES,
            "context variables",
        ) {
            return out;
        }
        let out = self.context_entries(node, path, out);
        self.check_decoded_context(node, path, &out);
        out
    }

    fn context_entries(&mut self, node: &Node, path: &str, mut out: ContextMap) -> ContextMap {
        if matches!(node.kind, NodeKind::Seq(_)) {
            for (item, item_path) in self.seq(node, path) {
                let Some(f) = self.object(item, &item_path, &grammar::CONTEXT_ITEM) else {
                    continue;
                };
                let key = f.get("key").and_then(|k| self.name(k, &f.field("key")));
                let value = f
                    .get("value")
                    .and_then(|v| self.string(v, &f.field("value")));
                if let (Some(key), Some(value)) = (key, value) {
                    if out.contains_key(&key.value) {
                        self.at(
                            &key.pos,
                            format!("duplicate context key \"{}\"", key.value),
                            None,
                        );
                    } else {
                        out.insert(key.value, value);
                    }
                }
            }
            return out;
        }
        for (name, value) in self.named_map(node, path) {
            if let Some(v) = self.string(value, &name.pos.path) {
                out.insert(name.value, v);
            }
        }
        out
    }

    /// `{duration: N, unit: U}` in seconds. `none` as unit is accepted only when the amount is
    /// zero, where the value is unused.
    pub(crate) fn duration(&mut self, node: &Node, path: &str) -> Option<u64> {
        let fields = self.object(node, path, &grammar::DURATION)?;
        self.duration_in(&fields)
    }

    /// The `duration` and `unit` held by `fields` (read with a grammar that requires both, so
    /// their absence is already reported), in seconds.
    pub(crate) fn duration_in(&mut self, fields: &Fields<'_>) -> Option<u64> {
        let amount_node = fields.get("duration")?;
        let unit = fields.get("unit");
        let amount_path = fields.field("duration");
        let amount = self.int(amount_node, &amount_path, 0, grammar::SECONDS_MAX)?;
        let unit_path = fields.field("unit");
        let factor = self.unit(unit?, &unit_path, amount)?;
        let secs = u64::try_from(amount).ok()?.saturating_mul(factor);
        self.duration_within(amount_node, &amount_path, secs)
    }

    /// A time unit's factor in seconds.
    pub(crate) fn unit(&mut self, node: &Node, path: &str, amount: i64) -> Option<u64> {
        match self.enum_value(node, path, &grammar::UNITS)? {
            "seconds" => Some(1),
            "minutes" => Some(60),
            "hours" => Some(3600),
            _ if amount == 0 => Some(1),
            _ => {
                self.error(
                    node,
                    path,
                    "unit \"none\" is only allowed where the value is unused: use seconds, minutes or hours",
                );
                None
            }
        }
    }
}

fn describe(node: &Node) -> String {
    match node.scalar() {
        Some(s) => format!("\"{s}\""),
        None => node.type_name().to_string(),
    }
}
