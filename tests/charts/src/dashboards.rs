//! The Grafana dashboards of helm/ferry against the metrics the code exports: every PromQL
//! expression of a dashboard, the metric names in it, and the exported series listed in
//! `docs/metrics.md` (whose sections each crate's own test keeps equal to what it registers).

use serde_json::Value;
use std::collections::BTreeSet;

/// Words of PromQL that are neither metrics nor functions (functions are followed by `(`).
const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
    "atan2",
];

/// Clauses whose parenthesised list names labels, not metrics.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression reads: identifiers outside strings, label matchers,
/// ranges and label lists that are not functions, aggregations or keywords.
pub fn metric_names(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    let skip_ws = |mut j: usize| {
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        j
    };
    // Skips a bracketed span starting at `open` (which holds `open_char`), strings inside
    // included; returns the index after its close.
    let skip_group = |open: usize, open_char: char, close_char: char| {
        let mut depth = 0;
        let mut j = open;
        while j < chars.len() {
            match chars[j] {
                '"' | '\'' | '`' => j = skip_string(&chars, j),
                c if c == open_char => {
                    depth += 1;
                    j += 1;
                }
                c if c == close_char => {
                    depth -= 1;
                    j += 1;
                    if depth == 0 {
                        return j;
                    }
                }
                _ => j += 1,
            }
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '{' {
            i = skip_group(i, '{', '}');
        } else if c == '[' {
            i = skip_group(i, '[', ']');
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // A number, with its exponent (1e-9) or duration unit (5m).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                if matches!(chars[i], 'e' | 'E') && matches!(chars.get(i + 1), Some('+' | '-')) {
                    i += 1;
                }
                i += 1;
            }
        } else if c == '$' {
            // A dashboard variable outside a range or string.
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = skip_ws(i);
            if LABEL_LISTS.contains(&word.as_str()) {
                if chars.get(next) == Some(&'(') {
                    i = skip_group(next, '(', ')');
                }
                continue;
            }
            if KEYWORDS.contains(&word.as_str()) || chars.get(next) == Some(&'(') {
                continue;
            }
            // An aggregation with its clause first: `sum by (le) (…)`.
            let following: String = chars[next..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .collect();
            if following == "by" || following == "without" {
                continue;
            }
            names.push(word);
        } else {
            i += 1;
        }
    }
    names
}

fn skip_string(chars: &[char], open: usize) -> usize {
    let quote = chars[open];
    let mut j = open + 1;
    while j < chars.len() {
        if chars[j] == '\\' && quote != '`' {
            j += 2;
            continue;
        }
        if chars[j] == quote {
            return j + 1;
        }
        j += 1;
    }
    j
}

/// Every series name the metrics document lists: each metric, and a histogram's `_bucket`,
/// `_sum` and `_count`.
pub fn exported_series(document: &str) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    let mut in_section = false;
    for (index, line) in document.lines().enumerate() {
        let line = line.trim();
        if line.starts_with("<!-- metrics: ") {
            in_section = true;
            continue;
        }
        if line == "<!-- end metrics -->" {
            in_section = false;
            continue;
        }
        if !in_section || !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let (Some(name), Some(kind)) = (cells.first(), cells.get(1)) else {
            return Err(format!("line {}: not a metric row", index + 1));
        };
        let name = name.trim_matches('`').to_string();
        match *kind {
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    out.insert(format!("{name}{suffix}"));
                }
            }
            "summary" => {
                out.insert(format!("{name}_sum"));
                out.insert(format!("{name}_count"));
                out.insert(name);
            }
            "counter" | "gauge" | "untyped" => {
                out.insert(name);
            }
            other => return Err(format!("line {}: unknown type {other:?}", index + 1)),
        }
    }
    Ok(out)
}

/// Every PromQL expression of a dashboard, with where it is (`panel title / refId`), panels in
/// rows included.
pub fn expressions(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?");
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    let at = format!("{title} / {}", target["refId"].as_str().unwrap_or("?"));
                    out.push((at, expr.to_string()));
                }
            }
            walk(&panel["panels"], out);
        }
    }
    walk(&dashboard["panels"], &mut out);
    out
}

/// The metrics a dashboard's template variables query (`label_values(metric, label)`).
pub fn variable_metrics(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let query = match &variable["query"] {
            Value::String(q) => q.clone(),
            Value::Object(o) => o
                .get("query")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            _ => continue,
        };
        if let Some(args) = query.strip_prefix("label_values(") {
            let metric = args.split([',', '{', ')']).next().unwrap_or("").trim();
            let name = variable["name"].as_str().unwrap_or("?").to_string();
            out.push((name, metric.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_metrics_not_functions_labels_or_numbers() {
        let expr = r#"histogram_quantile(0.99, sum by (le, route) (rate(ferry_http_request_duration_seconds_bucket{namespace=~"$namespace",route!="by"}[$__rate_interval]))) / clamp_min(sum without (instance) (ferry_x_total offset 5m), 1e-9) > bool 0 and on (job) up"#;
        assert_eq!(
            metric_names(expr),
            [
                "ferry_http_request_duration_seconds_bucket",
                "ferry_x_total",
                "up"
            ]
        );
        assert_eq!(
            metric_names(r#"max(ferry_a) - 60 * ferry_b:rate5m"#),
            ["ferry_a", "ferry_b:rate5m"]
        );
    }

    #[test]
    fn histograms_export_three_series() {
        let doc = "<!-- metrics: x -->\n| name | type | labels | meaning |\n| --- | --- | --- | --- |\n| `a_seconds` | histogram | none | A |\n| `b_total` | counter | `k` | B |\n<!-- end metrics -->\n| `not_in_a_section` | gauge | none | C |\n";
        let series = exported_series(doc).unwrap();
        assert!(series.contains("a_seconds_bucket") && series.contains("b_total"));
        assert!(!series.contains("a_seconds") && !series.contains("not_in_a_section"));
    }
}
