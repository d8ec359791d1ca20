//! Decoding helpers: typed reads of positioned nodes that report shape errors (wrong type, unknown
//! or duplicate keys, missing required keys, bad enum values) with field paths, and keep going so
//! every error of a file is collected.

use crate::diagnostics::{Diagnostic, suggest};
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
}

/// The fields of a mapping node, after unknown and duplicate keys were reported.
pub(crate) struct Fields<'n> {
    pub node: &'n Node,
    pub path: String,
    pairs: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    /// The value of a key, if present.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.pairs
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
    }

    /// The first present key among spellings, with the spelling found.
    pub fn get_any(&self, keys: &[&'static str]) -> Option<(&'static str, &'n Node)> {
        keys.iter().find_map(|k| self.get(k).map(|v| (*k, v)))
    }

    /// Path of a field of this mapping.
    pub fn field(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Keys present, in order.
    pub fn keys(&self) -> impl Iterator<Item = &'n str> + '_ {
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
    pub fn new(file: &'f str) -> Self {
        Self {
            file,
            diags: Vec::new(),
            declared: Default::default(),
        }
    }

    /// Reports an error at a position.
    pub fn at(&mut self, pos: &Pos, message: impl Into<String>, suggestion: Option<String>) {
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
    pub fn error(&mut self, node: &Node, path: &str, message: impl Into<String>) {
        self.at(&pos(node, path), message, None);
    }

    /// Reads a mapping, reporting unknown keys (with the nearest known key), duplicate keys and
    /// non-scalar keys. `known` lists every accepted spelling.
    pub fn map<'n>(&mut self, node: &'n Node, path: &str, known: &[&str]) -> Option<Fields<'n>> {
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
        for (k, v) in pairs {
            let Some(key) = k.scalar() else {
                self.error(k, path, "keys must be plain strings");
                continue;
            };
            let key_path = join(path, key);
            if fields.get(key).is_some() {
                self.error(k, &key_path, format!("duplicate key \"{key}\""));
                continue;
            }
            if !known.is_empty() && !known.contains(&key) {
                let suggestion = suggest(key, known.iter().copied());
                self.at(
                    &pos(k, &key_path),
                    format!("unknown key \"{key}\""),
                    suggestion,
                );
                continue;
            }
            fields.pairs.push((key, k, v));
        }
        Some(fields)
    }

    /// Reads a mapping whose keys are user names (targets, strategies); returns key node and value.
    pub fn named_map<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
    ) -> Vec<(Spanned<String>, &'n Node)> {
        let Some(fields) = self.map(node, path, &[]) else {
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
    pub fn declare(&mut self, section: &'static str, item: &Node) {
        if let Some(name) = item.get("name").and_then(Node::scalar) {
            self.declared.insert((section, name.to_string()));
        }
    }

    /// Reports a missing required key at its parent mapping.
    pub fn require<'n>(&mut self, fields: &Fields<'n>, key: &str) -> Option<&'n Node> {
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
    pub fn string(&mut self, node: &Node, path: &str) -> Option<Spanned<String>> {
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
    pub fn name(&mut self, node: &Node, path: &str) -> Option<Spanned<String>> {
        let s = self.string(node, path)?;
        if s.value.trim().is_empty() {
            self.error(node, path, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// An integer within `min..=max`.
    pub fn int(&mut self, node: &Node, path: &str, min: i64, max: i64) -> Option<i64> {
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
    pub fn number(&mut self, node: &Node, path: &str) -> Option<f64> {
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
    pub fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
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

    /// One of a set of names, matched case-insensitively.
    pub fn choice<T: Copy>(&mut self, node: &Node, path: &str, choices: &[(&str, T)]) -> Option<T> {
        let s = self.string(node, path)?;
        let lower = s.value.to_ascii_lowercase();
        if let Some((_, v)) = choices
            .iter()
            .find(|(name, _)| name.to_ascii_lowercase() == lower)
        {
            return Some(*v);
        }
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        self.at(
            &s.pos,
            format!(
                "unknown value \"{}\": expected one of {}",
                s.value,
                names.join(", ")
            ),
            suggest(&s.value, names.iter().copied()),
        );
        None
    }

    /// The items of a sequence with their paths.
    pub fn seq<'n>(&mut self, node: &'n Node, path: &str) -> Vec<(&'n Node, String)> {
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
    pub fn string_list(&mut self, node: &Node, path: &str) -> Vec<Spanned<String>> {
        self.seq(node, path)
            .into_iter()
            .filter_map(|(n, p)| self.name(n, &p))
            .collect()
    }

    /// A string-to-string map (`context`).
    pub fn context(&mut self, node: &Node, path: &str) -> ContextMap {
        let mut out = ContextMap::new();
        for (name, value) in self.named_map(node, path) {
            if let Some(v) = self.string(value, &name.pos.path) {
                out.insert(name.value, v);
            }
        }
        out
    }

    /// `{duration: N, unit: U}` (keys configurable) in seconds. `none` as unit is accepted only
    /// when the amount is zero, where the value is unused.
    pub fn duration(
        &mut self,
        node: &Node,
        path: &str,
        amount_key: &str,
        unit_key: &str,
    ) -> Option<u64> {
        let fields = self.map(node, path, &[amount_key, unit_key])?;
        let amount = self.require(&fields, amount_key);
        let unit = self.require(&fields, unit_key);
        let amount = self.int(amount?, &fields.field(amount_key), 0, i64::from(u32::MAX))?;
        let unit_path = fields.field(unit_key);
        let factor = self.unit(unit?, &unit_path, amount)?;
        u64::try_from(amount).ok().map(|a| a * factor)
    }

    /// A time unit's factor in seconds.
    pub fn unit(&mut self, node: &Node, path: &str, amount: i64) -> Option<u64> {
        let factor = self.choice(
            node,
            path,
            &[
                ("seconds", Some(1u64)),
                ("minutes", Some(60)),
                ("hours", Some(3600)),
                ("none", None),
            ],
        )?;
        match factor {
            Some(f) => Some(f),
            None if amount == 0 => Some(1),
            None => {
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
