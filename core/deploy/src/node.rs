//! A positioned YAML node tree built from `saphyr-parser` events.
//!
//! The deploy-file decoder needs the line and column of every key and value, keeps duplicate
//! keys visible (a map is a list of pairs, not a hash map) and needs to know whether a scalar was
//! quoted. Anchors and aliases are expanded with bounds so a hostile document cannot blow up
//! memory or time ("billion laughs"): at most [`MAX_NODES`] nodes, [`MAX_DEPTH`] levels, and
//! copies made for anchors and aliases of at most [`MAX_ALIAS_BYTES`] plus twice the
//! document's own size. A copy is measured before it is made, so a refused document never
//! allocates past the bound.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::Value;

/// Upper bound on nodes produced by expanding aliases; far beyond any real deploy file.
pub const MAX_NODES: usize = 200_000;
/// Upper bound on nesting; the tree is walked recursively (conversion, drop), so a hostile
/// document must not be able to exhaust the stack.
pub const MAX_DEPTH: usize = 200;
/// Upper bound on what anchors and aliases may copy, in bytes (scalar text plus a node's own
/// size per node): an alias to a large string repeated many times is refused when its copies
/// would pass this plus twice the document's own length, so a large document may alias its
/// big parts once but never multiply them.
pub const MAX_ALIAS_BYTES: usize = 4 * 1024 * 1024;

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

/// What a subtree costs to copy: its nodes, and its bytes (scalar text plus each node's own
/// size).
#[derive(Debug, Clone, Copy)]
struct Size {
    nodes: usize,
    bytes: usize,
}

fn size(node: &Node) -> Size {
    let mut total = Size {
        nodes: 1,
        bytes: std::mem::size_of::<Node>(),
    };
    let mut add = |child: &Node| {
        let s = size(child);
        total.nodes += s.nodes;
        total.bytes += s.bytes;
    };
    match &node.kind {
        NodeKind::Scalar { text, .. } => total.bytes += text.len(),
        NodeKind::Seq(items) => items.iter().for_each(&mut add),
        NodeKind::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            add(k);
            add(v);
        }),
    }
    total
}

/// The bytes anchors and aliases may still copy; each copy is charged before it is made.
struct Budget {
    copied: usize,
    limit: usize,
}

impl Budget {
    fn new(text: &str) -> Budget {
        Budget {
            copied: 0,
            limit: MAX_ALIAS_BYTES.saturating_add(text.len().saturating_mul(2)),
        }
    }

    fn charge(&mut self, size: Size, line: usize, column: usize) -> Result<(), SyntaxError> {
        self.copied = self.copied.saturating_add(size.bytes);
        if self.copied > self.limit {
            return Err(SyntaxError {
                line,
                column,
                message: format!(
                    "anchors and aliases expand the document too much: their copies pass \
                     {} bytes (the limit is {} MiB plus twice the document's size)",
                    self.limit,
                    MAX_ALIAS_BYTES / (1024 * 1024)
                ),
            });
        }
        Ok(())
    }
}

/// An anchored node, kept for its aliases, with what a copy of it costs.
struct Anchored {
    node: Node,
    size: Size,
}

/// Parses every document of a YAML stream into positioned nodes.
pub fn load(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Anchored> = HashMap::new();
    let mut budget = Budget::new(text);
    let mut produced = 0usize;
    let too_many = |line, column| SyntaxError {
        line,
        column,
        message: format!("document too large: more than {MAX_NODES} nodes (aliases expanded)"),
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| SyntaxError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        let (line, column) = position(&span);
        let (node, anchor) = match event {
            Event::Scalar(value, style, anchor, _tag) => {
                let node = Node {
                    kind: NodeKind::Scalar {
                        text: value.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                    line,
                    column,
                };
                (node, anchor)
            }
            Event::Alias(id) => {
                let Some(target) = anchors.get(&id) else {
                    return Err(SyntaxError {
                        line,
                        column,
                        message: "alias to an unknown anchor".to_string(),
                    });
                };
                // Charged before copying: a refused alias allocates nothing.
                budget.charge(target.size, line, column)?;
                produced = produced.saturating_add(target.size.nodes);
                if produced > MAX_NODES {
                    return Err(too_many(line, column));
                }
                let mut node = target.node.clone();
                node.line = line;
                node.column = column;
                (node, 0)
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
                continue;
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map {
                    pairs: Vec::new(),
                    key: None,
                    span,
                    anchor,
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq {
                    items,
                    span,
                    anchor,
                }) => {
                    let (line, column) = position(&span);
                    let node = Node {
                        kind: NodeKind::Seq(items),
                        line,
                        column,
                    };
                    (node, anchor)
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
                    let node = Node {
                        kind: NodeKind::Map(pairs),
                        line,
                        column,
                    };
                    (node, anchor)
                }
                None => continue,
            },
            Event::DocumentStart(_) => {
                anchors.clear();
                continue;
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {
                continue;
            }
        };
        if anchor > 0 {
            // The anchor keeps a copy for its aliases: that copy is charged too, so nested
            // anchors cannot multiply a large subtree either.
            let size = size(&node);
            budget.charge(size, node.line, node.column)?;
            anchors.insert(
                anchor,
                Anchored {
                    node: node.clone(),
                    size,
                },
            );
        }
        produced += 1;
        if produced > MAX_NODES {
            return Err(too_many(line, column));
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

    /// An alias to a large string repeated many times (a million-fold expansion) is refused at
    /// the alias where the copies pass the bound: nothing past it is copied, so memory stays at
    /// about the document's size however many aliases follow.
    #[test]
    fn aliases_to_a_large_string_are_refused_at_the_bound() {
        let big = "x".repeat(64 * 1024);
        // Under 100 kB of text, so the bound is 4 MiB and a little.
        let mut bomb = format!("a: &big '{big}'\nb:\n");
        for _ in 0..5_000 {
            bomb.push_str("- *big\n");
        }
        assert!(bomb.len() < 100 * 1024);
        let err = load(&bomb).unwrap_err();
        assert!(
            err.message.contains("anchors and aliases expand"),
            "{err:?}"
        );
        assert!(err.message.contains("4 MiB"), "{err:?}");
        // About 66 copies of 64 KiB fit in the bound (each copy also costs a node's own size),
        // so the refusal comes at an alias near the start, not after 5,000 copies (320 MiB).
        assert!((3..3 + 70).contains(&err.line), "{err:?}");
        assert_eq!(err.column, 3);

        // The bound grows with a large document, so a big manifest may use an alias or two.
        let fine = format!("a: &big '{}'\nb: [*big]\n", "y".repeat(5 * 1024 * 1024));
        assert!(load(&fine).is_ok());
    }

    /// Anchors nested in anchors each keep a copy of the same large subtree: charged too.
    #[test]
    fn nested_anchors_cannot_multiply_a_large_subtree() {
        let big = "x".repeat(1024 * 1024);
        let depth = 150;
        let mut text = String::new();
        for i in 0..depth {
            text.push_str(&format!("- &a{i}\n{}", "  ".repeat(i + 1)));
        }
        text.push_str(&format!("'{big}'\n"));
        let err = load(&text).unwrap_err();
        assert!(
            err.message.contains("anchors and aliases expand"),
            "{err:?}"
        );
        assert!(load(&format!("- &a0\n  - &a1\n    - '{big}'\n")).is_ok());
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
