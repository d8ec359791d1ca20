//! Diagnostics: one error with its file, position, field path and suggestion, and the collection
//! of all errors of a file (the error type of every public entry point).

use std::fmt;

use serde::{Deserialize, Serialize};

/// One problem found in a deploy file or one of its manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// The file the problem is in (the deploy file's name or a manifest's path).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Field path such as `targets.prod.constraints.dependsOn[0]`, or `syntax`.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
    /// The nearest valid name, when the problem is an unknown name.
    pub suggestion: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.path, self.message
        )?;
        if let Some(s) = &self.suggestion {
            write!(f, "; did you mean \"{s}\"?")?;
        }
        Ok(())
    }
}

/// Every problem found, in file order; never empty when returned as an error. Displayed one
/// diagnostic per line.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, thiserror::Error)]
#[error("{}", lines(.0))]
pub struct Diagnostics(pub Vec<Diagnostic>);

fn lines(items: &[Diagnostic]) -> String {
    items
        .iter()
        .map(Diagnostic::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl Diagnostics {
    /// The diagnostics as a slice.
    pub fn items(&self) -> &[Diagnostic] {
        &self.0
    }

    /// Whether there is no diagnostic.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of diagnostics.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Orders by file, line, column, keeping insertion order among equals, and drops exact
    /// duplicates (the same problem reached through two routes).
    pub(crate) fn sorted(mut self) -> Self {
        self.0
            .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        self.0.dedup();
        self
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// The candidate nearest to `name`, when it is close enough to be a plausible typo.
pub fn suggest<'a, I>(name: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c == name {
            continue;
        }
        let d = if c.to_lowercase() == lower {
            0
        } else {
            strsim::damerau_levenshtein(&lower, &c.to_lowercase())
        };
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    let limit = (name.chars().count().max(c.chars().count()) / 3).max(2);
    (d <= limit && d < name.chars().count().max(1)).then(|| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_the_spec_format() {
        let d = Diagnostic {
            file: "deploy.yml".into(),
            line: 14,
            column: 19,
            path: "targets.prod.strategy".into(),
            message: "unknown strategy \"canery\"".into(),
            suggestion: Some("canary".into()),
        };
        assert_eq!(
            d.to_string(),
            "deploy.yml:14:19: targets.prod.strategy: unknown strategy \"canery\"; did you mean \"canary\"?"
        );
    }

    #[test]
    fn suggestions_are_near_names_only() {
        assert_eq!(
            suggest("canery", ["canary", "rolling"]),
            Some("canary".into())
        );
        assert_eq!(
            suggest("stratgy", ["strategy", "account"]),
            Some("strategy".into())
        );
        assert_eq!(
            suggest("GROWING", ["growing", "sliding"]),
            Some("growing".into())
        );
        assert_eq!(suggest("zzzzzz", ["canary", "rolling"]), None);
        assert_eq!(suggest("x", std::iter::empty()), None);
    }
}
