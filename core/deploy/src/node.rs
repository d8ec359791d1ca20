//! A positioned YAML node tree built from `saphyr-parser` events.
//!
//! The deploy-file decoder needs the line and column of every key and value, keeps duplicate
//! keys visible (a map is a list of pairs, not a hash map) and needs to know whether a scalar was
//! quoted. Anchors and aliases are expanded with a size bound so a hostile document cannot blow
//! up memory ("billion laughs").

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::Value;

/// Upper bound on nodes produced by expanding aliases; far beyond any real deploy file.
const MAX_NODES: usize = 200_000;
/// Upper bound on nesting; the tree is walked recursively (conversion, drop), so a hostile
/// document must not be able to exhaust the stack.
const MAX_DEPTH: usize = 200;

/// One YAML node with the 1-based line and column where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub kind: NodeKind,
    /// 1-based line of the node's first character.
    pub line: usize,
    /// 1-based column of the node's first character.
    pub column: usize,
}

/// The content of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar with its text as written; `plain` is false when quoted or a block scalar.
    Scalar {
        /// The scalar's text after YAML unescaping.
        text: String,
        /// True for unquoted flow scalars, whose text is typed by the core schema.
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping as ordered key/value pairs (duplicates kept so they can be reported).
    Map(Vec<(Node, Node)>),
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The parser's description.
    pub message: String,
}

impl Node {
    /// Whether this is a null scalar (`~`, `null`, or nothing) in the core schema.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, plain: true } if is_null_text(text))
    }

    /// The scalar text, if this is a non-null scalar.
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    /// Looks a key up in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| k.scalar() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short name of the node's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "nothing",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// Converts the node to JSON with the YAML 1.2 core schema (used for Kubernetes manifests).
    pub fn to_json(&self) -> Value {
        match &self.kind {
            NodeKind::Scalar { text, plain } => {
                if *plain {
                    plain_scalar_json(text)
                } else {
                    Value::String(text.clone())
                }
            }
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(pairs) => {
                let mut map = serde_json::Map::new();
                for (k, v) in pairs {
                    let key = match &k.kind {
                        NodeKind::Scalar { text, .. } => text.clone(),
                        _ => k.to_json().to_string(),
                    };
                    map.insert(key, v.to_json());
                }
                Value::Object(map)
            }
        }
    }
}

fn is_null_text(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// Types a plain scalar: null, booleans, integers (decimal, octal `0o`, hex `0x`) and floats.
fn plain_scalar_json(text: &str) -> Value {
    if is_null_text(text) {
        return Value::Null;
    }
    match text {
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Value::from(i);
    }
    if let Some(oct) = text.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Value::from(i);
    }
    let looks_numeric = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && text.chars().any(|c| c.is_ascii_digit());
    if looks_numeric
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

enum Frame {
    Seq {
        items: Vec<Node>,
        span: Span,
        anchor: usize,
    },
    Map {
        pairs: Vec<(Node, Node)>,
        key: Option<Node>,
        span: Span,
        anchor: usize,
    },
}

fn position(span: &Span) -> (usize, usize) {
    (span.start.line(), span.start.col() + 1)
}

fn count(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Scalar { .. } => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        NodeKind::Map(pairs) => {
            1 + pairs
                .iter()
                .map(|(k, v)| count(k) + count(v))
                .sum::<usize>()
        }
    }
}

/// Parses every document of a YAML stream into positioned nodes.
pub fn load(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut produced = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| SyntaxError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        let (line, column) = position(&span);
        let complete = match event {
            Event::Scalar(value, style, anchor, _tag) => {
                let node = Node {
                    kind: NodeKind::Scalar {
                        text: value.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                    line,
                    column,
                };
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                Some(node)
            }
            Event::Alias(id) => {
                let Some(target) = anchors.get(&id) else {
                    return Err(SyntaxError {
                        line,
                        column,
                        message: "alias to an unknown anchor".to_string(),
                    });
                };
                produced += count(target);
                if produced > MAX_NODES {
                    return Err(SyntaxError {
                        line,
                        column,
                        message: "document too large after expanding aliases".to_string(),
                    });
                }
                let mut node = target.clone();
                node.line = line;
                node.column = column;
                Some(node)
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if stack.len() >= MAX_DEPTH => {
                return Err(SyntaxError {
                    line,
                    column,
                    message: format!("nesting deeper than {MAX_DEPTH} levels"),
                });
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    span,
                    anchor,
                });
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map {
                    pairs: Vec::new(),
                    key: None,
                    span,
                    anchor,
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match stack.pop() {
                    Some(Frame::Seq {
                        items,
                        span,
                        anchor,
                    }) => {
                        let (line, column) = position(&span);
                        (
                            Node {
                                kind: NodeKind::Seq(items),
                                line,
                                column,
                            },
                            anchor,
                        )
                    }
                    Some(Frame::Map {
                        pairs,
                        span,
                        anchor,
                        ..
                    }) => {
                        let (line, column) = match pairs.first() {
                            // Block mappings start at their first key; the event's span may
                            // point elsewhere, so prefer the key's own position.
                            Some((k, _)) => (k.line, k.column),
                            None => position(&span),
                        };
                        (
                            Node {
                                kind: NodeKind::Map(pairs),
                                line,
                                column,
                            },
                            anchor,
                        )
                    }
                    None => continue,
                };
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                Some(node)
            }
            Event::DocumentStart(_) => {
                anchors.clear();
                None
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => None,
        };
        let Some(node) = complete else { continue };
        produced += 1;
        if produced > MAX_NODES {
            return Err(SyntaxError {
                line,
                column,
                message: "document too large".to_string(),
            });
        }
        match stack.last_mut() {
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { pairs, key, .. }) => match key.take() {
                Some(k) => pairs.push((k, node)),
                None => *key = Some(node),
            },
            None => docs.push(node),
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_values_and_items() {
        let docs = load("a: 1\nb:\n  - x\n  - y: 'q'\n").unwrap();
        assert_eq!(docs.len(), 1);
        let root = &docs[0];
        assert_eq!((root.line, root.column), (1, 1));
        let b = root.get("b").unwrap();
        let NodeKind::Seq(items) = &b.kind else {
            panic!("not a seq")
        };
        assert_eq!((items[0].line, items[0].column), (3, 5));
        assert_eq!((items[1].line, items[1].column), (4, 5));
        let y = items[1].get("y").unwrap();
        assert_eq!(
            y.kind,
            NodeKind::Scalar {
                text: "q".into(),
                plain: false
            }
        );
    }

    #[test]
    fn syntax_error_has_position() {
        let err = load("a:\n  b: 1\n   c: 2\n").unwrap_err();
        assert_eq!(err.line, 3);
    }

    #[test]
    fn json_typing_follows_core_schema() {
        let docs = load("a: 1\nb: '1'\nc: true\nd: 1.5\ne: ~\nf: 0x10\ng: 1.2.3\n").unwrap();
        let v = docs[0].to_json();
        assert_eq!(
            v,
            serde_json::json!({"a": 1, "b": "1", "c": true, "d": 1.5, "e": null, "f": 16, "g": "1.2.3"})
        );
    }

    #[test]
    fn aliases_expand_and_are_bounded() {
        let docs = load("a: &x {k: v}\nb: *x\n").unwrap();
        assert_eq!(
            docs[0].get("b").unwrap().get("k").unwrap().scalar(),
            Some("v")
        );
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let prev = format!("*a{}", i - 1);
            bomb.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                std::iter::repeat_n(prev.as_str(), 10)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        assert!(load(&bomb).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let huge = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(load(&huge).is_err());
        let deep = format!("{}{}", "[".repeat(210), "]".repeat(210));
        let err = load(&deep).unwrap_err();
        assert!(err.message.contains("nesting deeper"), "{err:?}");
        let ok = format!("{}{}", "[".repeat(50), "]".repeat(50));
        assert!(load(&ok).is_ok());
    }
}
