//! Inputs for the deploy-file loader: YAML-ish text, the example files mutated, and deploy
//! files shaped by the grammar (its key names, nested at random, with awkward values).

use proptest::prelude::*;

/// Values that have broken parsers: numbers at and past every integer width, special floats,
/// YAML's own syntax (anchors, aliases, merge keys, tags, quotes, block scalars), template
/// syntax, control and multi-byte characters, and long runs.
pub const AWKWARD: &[&str] = &[
    "0",
    "-1",
    "1",
    "100",
    "101",
    "255",
    "256",
    "-0",
    "+1",
    "1.5",
    "1e400",
    "-1e400",
    "NaN",
    ".nan",
    ".inf",
    "-.inf",
    "0x7fffffff",
    "0o777",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "31536000",
    "31536001",
    "525601",
    "8761",
    "true",
    "false",
    "TRUE",
    "yes",
    "no",
    "~",
    "null",
    "\"\"",
    "''",
    "&a x",
    "*a",
    "&a",
    "<<: *a",
    "!!binary AAAA",
    "!custom x",
    "|",
    ">-",
    "\"\\u0000\"",
    "\"\\uD800\"",
    "'\t'",
    "\u{0}",
    "\u{7}",
    "é",
    "名前",
    "🦀",
    "{{context.x}}",
    "{{ferry.applicationName}}",
    "{{secrets.s}}",
    "{{armory.preview.}}",
    "{{",
    "}}",
    "{{context.}}",
    "{{{{x}}}}",
    "[",
    "]",
    "{",
    "}",
    "- ",
    ": ",
    "#",
    "%YAML 1.2",
    "---",
    "...",
    "seconds",
    "minutes",
    "hours",
    "none",
    "HOURS",
    "untilApproved",
    "growing",
    "sliding",
    "manual",
    "automatic",
    "reject",
    "enqueueOne",
    "kubernetes",
    "lambda",
    "v1",
    "Deployment",
    "Pod",
    "https://example.com/m.yaml",
    "http://",
    "../../etc",
    "/",
    "manifests/app.yaml",
    ".",
];

/// Every key name the grammar knows, with the names of targets, strategies, webhooks and
/// queries the examples use, so generated files reach deep into validation and planning.
pub fn key_names() -> Vec<&'static str> {
    use ferry_deploy::grammar::*;
    let objects = [
        &DURATION,
        &CONTEXT_ITEM,
        &DEPLOY_FILE,
        &DEPLOYMENT_CONFIG,
        &IN_PROGRESS_POLICY,
        &TARGET,
        &CONSTRAINTS,
        &MANIFEST,
        &TARGET_FILTER,
        &STRATEGY,
        &CANARY,
        &BLUE_GREEN,
        &CANARY_STEP,
        &BLUE_GREEN_STEP,
        &CONSTRAINT_STEP,
        &SET_WEIGHT,
        &PAUSE,
        &APPROVAL_EXPIRATION,
        &ANALYSIS_STEP,
        &RUN_WEBHOOK,
        &EXPOSE_SERVICES,
        &ANALYSIS,
        &QUERY,
        &JUDGE,
        &WEBHOOK,
        &HEADER,
        &BODY_TEMPLATE,
        &TRAFFIC,
        &ISTIO,
        &VIRTUAL_SERVICE,
        &DESTINATION_RULE,
        &SMI,
        &KUBERNETES_SERVICES,
    ];
    let mut names: Vec<&'static str> = objects
        .iter()
        .flat_map(|o| {
            o.keys
                .iter()
                .flat_map(|k| std::iter::once(k.name).chain(k.aliases.iter().copied()))
        })
        .collect();
    names.extend([
        "dev", "prod", "staging", "canary", "bg", "hook", "q", "x", "a",
    ]);
    names.sort_unstable();
    names.dedup();
    names
}

/// A generated YAML value.
#[derive(Debug, Clone)]
pub enum Yaml {
    /// A scalar written as is.
    Scalar(String),
    /// A list.
    Seq(Vec<Yaml>),
    /// A mapping.
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    /// Writes the value as block YAML (flow style for empty collections).
    pub fn write(&self, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match self {
            Yaml::Scalar(s) => {
                out.push(' ');
                out.push_str(s);
                out.push('\n');
            }
            Yaml::Seq(items) if items.is_empty() => out.push_str(" []\n"),
            Yaml::Map(pairs) if pairs.is_empty() => out.push_str(" {}\n"),
            Yaml::Seq(items) => {
                out.push('\n');
                for item in items {
                    out.push_str(&pad);
                    out.push('-');
                    item.write(indent + 2, out);
                }
            }
            Yaml::Map(pairs) => {
                out.push('\n');
                for (k, v) in pairs {
                    out.push_str(&pad);
                    out.push_str(k);
                    out.push(':');
                    v.write(indent + 2, out);
                }
            }
        }
    }

    /// The document for a top-level mapping.
    pub fn document(&self) -> String {
        let mut out = String::new();
        match self {
            Yaml::Map(pairs) => {
                for (k, v) in pairs {
                    out.push_str(k);
                    out.push(':');
                    v.write(2, &mut out);
                }
            }
            other => other.write(0, &mut out),
        }
        out
    }
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(AWKWARD).prop_map(str::to_string),
        2 => "[a-z][a-z0-9-]{0,12}",
        1 => (0i64..200_000).prop_map(|n| n.to_string()),
        1 => "\"[ -~]{0,20}\"",
    ]
}

/// Deploy files shaped by the grammar: mappings keyed by grammar names, nested up to five
/// levels, with awkward scalars.
pub fn grammar_file() -> impl Strategy<Value = String> {
    let keys = key_names();
    let leaf = scalar().prop_map(Yaml::Scalar);
    let tree = leaf.prop_recursive(5, 96, 6, move |inner| {
        let keys = keys.clone();
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Yaml::Seq),
            prop::collection::vec((prop::sample::select(keys), inner), 0..6).prop_map(|pairs| {
                Yaml::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    });
    let top = prop::collection::vec((prop::sample::select(key_names()), tree), 1..8);
    // Most files start from the required keys, so the rest gets checked too.
    (top, any::<bool>()).prop_map(|(mut pairs, base)| {
        if base {
            pairs.insert(0, ("application", Yaml::Scalar("fuzz".into())));
            pairs.insert(
                1,
                (
                    "targets",
                    Yaml::Map(vec![(
                        "dev".into(),
                        Yaml::Map(vec![
                            ("account".into(), Yaml::Scalar("c".into())),
                            ("namespace".into(), Yaml::Scalar("n".into())),
                            ("strategy".into(), Yaml::Scalar("canary".into())),
                        ]),
                    )]),
                ),
            );
            pairs.insert(
                2,
                (
                    "manifests",
                    Yaml::Seq(vec![Yaml::Map(vec![(
                        "path".into(),
                        Yaml::Scalar("manifests".into()),
                    )])]),
                ),
            );
        }
        Yaml::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()).document()
    })
}

/// YAML-ish text: lines of keys, values, list markers, anchors and aliases at random depths.
pub fn yamlish() -> impl Strategy<Value = String> {
    let line = (
        0usize..4,
        any::<bool>(),
        prop::sample::select(key_names()),
        prop::option::of(scalar()),
    )
        .prop_map(|(depth, dash, key, value)| {
            let mut line = "  ".repeat(depth);
            if dash {
                line.push_str("- ");
            }
            line.push_str(key);
            line.push(':');
            if let Some(v) = value {
                line.push(' ');
                line.push_str(&v);
            }
            line
        });
    prop::collection::vec(line, 0..40).prop_map(|lines| lines.join("\n"))
}

/// One edit of a text.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Replaces one byte.
    SetByte(usize, u8),
    /// Cuts the text at a byte.
    Truncate(usize),
    /// Deletes a line.
    DeleteLine(usize),
    /// Repeats a line.
    DuplicateLine(usize),
    /// Repeats a run of lines (`from`, `len`, `times`).
    RepeatBlock(usize, usize, usize),
    /// Replaces the value after the first `:` of a line.
    SetValue(usize, String),
    /// Inserts a line.
    InsertLine(usize, String),
    /// Changes a line's indentation by -2..=+2 spaces.
    Indent(usize, i8),
    /// Swaps two lines.
    Swap(usize, usize),
}

/// Edits of example files.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<usize>(), prop::sample::select(b" :-[]{}\"'#&*!|>\n\tax0.%@`,?".to_vec()))
            .prop_map(|(i, b)| Mutation::SetByte(i, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => any::<usize>().prop_map(Mutation::DeleteLine),
        1 => any::<usize>().prop_map(Mutation::DuplicateLine),
        1 => (any::<usize>(), 1usize..6, 2usize..20).prop_map(|(a, l, t)| Mutation::RepeatBlock(a, l, t)),
        4 => (any::<usize>(), scalar()).prop_map(|(i, v)| Mutation::SetValue(i, v)),
        2 => (any::<usize>(), (0usize..4, prop::sample::select(key_names()), scalar()).prop_map(
            |(d, k, v)| format!("{}{k}: {v}", "  ".repeat(d))
        ))
            .prop_map(|(i, l)| Mutation::InsertLine(i, l)),
        1 => (any::<usize>(), -2i8..=2).prop_map(|(i, d)| Mutation::Indent(i, d)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
    ]
}

/// Applies one edit.
pub fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let n = lines.len().max(1);
    match m {
        Mutation::SetByte(i, b) => {
            let mut bytes = text.as_bytes().to_vec();
            if !bytes.is_empty() {
                let at = i % bytes.len();
                bytes[at] = *b;
            }
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        Mutation::Truncate(i) => {
            let at = i % (text.len() + 1);
            let mut end = at;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            return text[..end].to_string();
        }
        Mutation::DeleteLine(i) if !lines.is_empty() => {
            lines.remove(i % n);
        }
        Mutation::DuplicateLine(i) if !lines.is_empty() => {
            let line = lines[i % n].clone();
            lines.insert(i % n, line);
        }
        Mutation::RepeatBlock(from, len, times) if !lines.is_empty() => {
            let start = from % n;
            let end = (start + len).min(lines.len());
            let block: Vec<String> = lines[start..end].to_vec();
            for _ in 0..*times {
                for (k, l) in block.iter().enumerate() {
                    lines.insert(end + k, l.clone());
                }
            }
        }
        Mutation::SetValue(i, v) if !lines.is_empty() => {
            let line = &mut lines[i % n];
            if let Some(colon) = line.find(':') {
                line.truncate(colon + 1);
                line.push(' ');
                line.push_str(v);
            }
        }
        Mutation::InsertLine(i, l) => lines.insert(i % (lines.len() + 1), l.clone()),
        Mutation::Indent(i, d) if !lines.is_empty() => {
            let line = &mut lines[i % n];
            if *d > 0 {
                line.insert_str(0, &" ".repeat(*d as usize));
            } else {
                let strip = line
                    .chars()
                    .take_while(|c| *c == ' ')
                    .count()
                    .min(d.unsigned_abs() as usize);
                line.drain(..strip);
            }
        }
        Mutation::Swap(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
        _ => {}
    }
    lines.join("\n")
}
