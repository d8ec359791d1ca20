//! A JSON document with its objects' key order kept ([`Node`]), and its rendering as block
//! YAML ([`to_yaml`]), so a deploy file an Armory client sent as JSON goes through Ferry's one
//! deploy-file parser unchanged. Order matters: targets are planned in file order among
//! independent ones, and `serde_json::Value` (without `preserve_order`) would sort them.
//! Strings are written double-quoted with JSON's escapes, which YAML reads the same way, so no
//! scalar changes type ("on", "1.0" and "null" stay strings).

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::fmt::Write as _;

/// An object's members in order.
pub(super) type Fields = Vec<(String, Node)>;

/// A JSON value whose objects keep their keys' order.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Node {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    List(Vec<Node>),
    Map(Fields),
}

impl Node {
    /// The same value as `serde_json::Value` (key order may be lost).
    pub(super) fn to_json(&self) -> serde_json::Value {
        match self {
            Node::Null => serde_json::Value::Null,
            Node::Bool(b) => (*b).into(),
            Node::Number(n) => serde_json::Value::Number(n.clone()),
            Node::String(s) => s.clone().into(),
            Node::List(items) => items.iter().map(Node::to_json).collect(),
            Node::Map(map) => serde_json::Value::Object(
                map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            ),
        }
    }

    /// `null`, an empty list or an empty object.
    pub(super) fn is_empty(&self) -> bool {
        match self {
            Node::Null => true,
            Node::List(items) => items.is_empty(),
            Node::Map(map) => map.is_empty(),
            _ => false,
        }
    }

    /// The JSON type's name, for error messages.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Number(_) => "a number",
            Node::String(_) => "a string",
            Node::List(_) => "a list",
            Node::Map(_) => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
        Ok(Node::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Node, E> {
        Ok(Node::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Node, E> {
        Ok(Node::Number(n.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Node, E> {
        serde_json::Number::from_f64(n)
            .map(Node::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Node, E> {
        Ok(Node::String(s.to_string()))
    }

    fn visit_string<E>(self, s: String) -> Result<Node, E> {
        Ok(Node::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Node, A::Error> {
        let mut map: Fields = Vec::new();
        while let Some((key, value)) = access.next_entry::<String, Node>()? {
            // A repeated key keeps its first place and its last value, as JSON decoders do.
            match map.iter_mut().find(|(k, _)| *k == key) {
                Some((_, old)) => *old = value,
                None => map.push((key, value)),
            }
        }
        Ok(Node::Map(map))
    }
}

/// `map` as a block-YAML document.
pub(super) fn to_yaml(map: &[(String, Node)]) -> String {
    let mut out = String::new();
    write_map(map, 0, &mut out);
    out
}

/// A scalar or an empty collection on one line.
fn inline(node: &Node) -> Option<String> {
    Some(match node {
        Node::Null => "null".into(),
        Node::Bool(b) => b.to_string(),
        Node::Number(n) => n.to_string(),
        Node::String(s) => quote(s),
        Node::List(items) if items.is_empty() => "[]".into(),
        Node::Map(map) if map.is_empty() => "{}".into(),
        Node::List(_) | Node::Map(_) => return None,
    })
}

/// A double-quoted scalar: JSON's escapes are YAML's.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn write_map(map: &[(String, Node)], indent: usize, out: &mut String) {
    for (key, value) in map {
        let _ = write!(out, "{:indent$}{}:", "", quote(key));
        write_value(value, indent, out);
    }
}

/// The rest of a line after `key:` or `-`: the inline value, or a nested block below it.
fn write_value(value: &Node, indent: usize, out: &mut String) {
    match (inline(value), value) {
        (Some(text), _) => {
            let _ = writeln!(out, " {text}");
        }
        (None, Node::Map(map)) => {
            out.push('\n');
            write_map(map, indent + 2, out);
        }
        (None, Node::List(items)) => {
            out.push('\n');
            write_list(items, indent + 2, out);
        }
        (None, _) => unreachable!("scalars are inline"),
    }
}

fn write_list(items: &[Node], indent: usize, out: &mut String) {
    for item in items {
        let _ = write!(out, "{:indent$}-", "");
        write_value(item, indent, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Fields {
        match serde_json::from_str(text).unwrap() {
            Node::Map(map) => map,
            other => panic!("not an object: {other:?}"),
        }
    }

    #[test]
    fn order_and_types_survive() {
        let map = parse(
            r#"{"zeta": 1, "alpha": {"b": "on", "a": [1, 2.5, true, null, "x\ny", [], {}]},
                "list": [{"k": "v", "n": {"m": "1.0"}}, ["nested"]]}"#,
        );
        let yaml = to_yaml(&map);
        assert_eq!(
            yaml,
            "\"zeta\": 1\n\"alpha\":\n  \"b\": \"on\"\n  \"a\":\n    - 1\n    - 2.5\n    - true\n    \
             - null\n    - \"x\\ny\"\n    - []\n    - {}\n\"list\":\n  -\n    \"k\": \"v\"\n    \
             \"n\":\n      \"m\": \"1.0\"\n  -\n    - \"nested\"\n"
        );
        assert_eq!(
            map[1].1.to_json(),
            serde_json::json!({"b": "on", "a": [1, 2.5, true, null, "x\ny", [], {}]})
        );
    }

    #[test]
    fn the_yaml_reads_back_as_the_same_deploy_file() {
        let map = parse(
            r#"{"version": "v1", "kind": "kubernetes", "application": "Potato Facts",
                "targets": {"staging": {"account": "a1", "namespace": "ns"},
                            "prod (eu)": {"account": "a2", "namespace": "ns",
                                          "constraints": {"dependsOn": ["staging"]}}},
                "manifests": [{"inline": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"}]}"#,
        );
        let yaml = to_yaml(&map);
        let file = ferry_deploy::parse("request.yml", &yaml).expect("parses");
        let plan = ferry_deploy::check("request.yml", &yaml, &[], &Default::default())
            .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert_eq!(plan.application, "Potato Facts");
        let names: Vec<&str> = plan.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["staging", "prod (eu)"]);
        drop(file);
    }
}
