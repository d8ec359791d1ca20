//! Printing data: `--output json` (pretty JSON as the API answered), `yaml` (the same data as
//! YAML, written by saphyr's emitter) or `text` (tidy tables and short sentences), and the
//! small formatting helpers the text form shares.

use ferry_api::deployments::ListedDeployment;
use saphyr::{Mapping, Scalar, ScalarStyle, Yaml, YamlEmitter};
use serde::Serialize;
use serde_json::Value;

use crate::args::Format;

/// Prints `value` (an API answer) as JSON or YAML, or as `text(value)` in text mode.
pub(crate) fn emit<T: Serialize>(format: Format, value: &T, text: impl FnOnce(&T) -> String) {
    let out = match format {
        Format::Json => serde_json::to_string_pretty(value).unwrap_or_default() + "\n",
        Format::Yaml => to_yaml(&serde_json::to_value(value).unwrap_or_default()),
        Format::Text => text(value),
    };
    print!("{out}");
}

/// `value` as a YAML document.
pub(crate) fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    emitter.multiline(true);
    // Writing into a String cannot fail.
    let _ = emitter.dump(&yaml_of(value));
    let out = out.strip_prefix("---\n").unwrap_or(&out).to_string();
    if out.ends_with('\n') { out } else { out + "\n" }
}

fn yaml_of(value: &Value) -> Yaml<'static> {
    match value {
        Value::Null => Yaml::Value(Scalar::Null),
        Value::Bool(b) => Yaml::Value(Scalar::Boolean(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Value(Scalar::Integer(i)),
            None => Yaml::Representation(n.to_string().into(), ScalarStyle::Plain, None),
        },
        Value::String(s) => Yaml::Value(Scalar::String(s.clone().into())),
        Value::Array(items) => Yaml::Sequence(items.iter().map(yaml_of).collect()),
        Value::Object(map) => {
            let mut out = Mapping::new();
            for (k, v) in map {
                out.insert(Yaml::Value(Scalar::String(k.clone().into())), yaml_of(v));
            }
            Yaml::Mapping(out)
        }
    }
}

/// A text table: a header row and aligned columns, two spaces apart, drawn by comfy-table
/// without borders, styling or wrapping (the same text on a terminal and in a pipe).
#[derive(Debug, Default)]
pub(crate) struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub(crate) fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(ToString::to_string).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are blank, cells past the headers are left out).
    pub(crate) fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// The table's text, or `empty` when it has no rows.
    pub(crate) fn render(&self, empty: &str) -> String {
        if self.rows.is_empty() {
            return format!("{empty}\n");
        }
        let mut table = comfy_table::Table::new();
        table
            .load_style(comfy_table::presets::NOTHING)
            .set_header(&self.headers)
            .add_rows(&self.rows);
        let last = self.headers.len().saturating_sub(1);
        for (i, column) in table.column_iter_mut().enumerate() {
            column.set_padding((0, if i < last { 2 } else { 0 }));
        }
        table.trim_fmt() + "\n"
    }
}

/// Who started a deployment as people read it: the API's `created_by_name` (an email or
/// `credential NAME`), else the `created_by` id.
pub(crate) fn creator(listed: &ListedDeployment) -> String {
    match listed.created_by_name.as_deref() {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => or_dash(Some(&listed.deployment.created_by)),
    }
}

/// A text, or `-` when absent or empty.
pub(crate) fn or_dash(text: Option<&str>) -> String {
    match text {
        Some(text) if !text.is_empty() => text.to_string(),
        _ => "-".into(),
    }
}

/// A time as `YYYY-MM-DD HH:MM:SS` (UTC), or `-`.
pub(crate) fn when(time: Option<chrono::DateTime<chrono::Utc>>) -> String {
    time.map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// A JSON string field, or `-` when absent or null.
pub(crate) fn field(value: &Value, key: &str) -> String {
    match &value[key] {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Texts joined with `, `, or `-` when there are none.
pub(crate) fn joined(items: &[String]) -> String {
    or_dash(Some(&items.join(", ")))
}

/// A JSON array of strings joined with `, `, or `-`.
pub(crate) fn list(value: &Value, key: &str) -> String {
    let items: Vec<&str> = value[key]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables_align_columns_and_say_when_empty() {
        let mut t = Table::new(&["NAME", "STATUS"]);
        t.row(vec!["a-long-name".into(), "ok".into()]);
        t.row(vec!["b".into(), "failed".into()]);
        assert_eq!(
            t.render("none"),
            "NAME         STATUS\na-long-name  ok\nb            failed\n"
        );
        assert_eq!(Table::new(&["X"]).render("no rows"), "no rows\n");
    }

    #[test]
    fn tables_keep_blank_headers_and_cells_and_never_wrap_or_style() {
        // The shape of `ferry analysis`'s comparison: a blank first header.
        let mut t = Table::new(&["", "CANARY", "BASELINE"]);
        t.row(vec!["points".into(), "12".into(), "3".into()]);
        t.row(vec!["mean".into(), "→ 1.5".into(), "é".into()]);
        assert_eq!(
            t.render(""),
            "        CANARY  BASELINE\npoints  12      3\nmean    → 1.5   é\n"
        );
        // Missing cells are blank, cells past the headers left out.
        let mut t = Table::new(&["A", "B", "C"]);
        t.row(vec!["1".into()]);
        t.row(vec!["1".into(), "".into(), "3".into(), "extra".into()]);
        assert_eq!(t.render(""), "A  B  C\n1\n1     3\n");
        // A long cell stays on its line, whatever the terminal; nothing but the text is written.
        let long = "x".repeat(500);
        let mut t = Table::new(&["NAME", "REASON"]);
        t.row(vec!["a".into(), long.clone()]);
        let text = t.render("");
        assert_eq!(text, format!("NAME  REASON\na     {long}\n"));
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn yaml_keeps_types_and_quotes_what_needs_it() {
        let v = json!({"id": "0193", "n": 3, "x": 1.5, "ok": true, "none": null,
            "tricky": "true", "list": ["a", "b: c"], "empty": []});
        let y = to_yaml(&v);
        assert!(y.contains("id: \"0193\"\n"), "{y}");
        for expected in [
            "n: 3\n",
            "x: 1.5\n",
            "ok: true\n",
            "none: ~\n",
            "  - a\n",
            "empty: []\n",
        ] {
            assert!(y.contains(expected), "{expected:?} missing in:\n{y}");
        }
        assert!(!y.contains("tricky: true\n"), "{y}");
        assert!(!y.contains("- b: c\n"), "{y}");
    }

    #[test]
    fn fields_and_times_read_tidily() {
        let v = json!({"a": "x", "b": null, "r": ["A", "B"]});
        assert_eq!(field(&v, "a"), "x");
        assert_eq!(field(&v, "b"), "-");
        assert_eq!(field(&v, "missing"), "-");
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-22T22:12:56.123Z").unwrap();
        assert_eq!(when(Some(t.to_utc())), "2026-11-22 22:12:56");
        assert_eq!(when(None), "-");
        assert_eq!(list(&v, "r"), "A, B");
        assert_eq!(list(&v, "missing"), "-");
        assert_eq!(joined(&["A".into(), "B".into()]), "A, B");
        assert_eq!(joined(&[]), "-");
    }
}
