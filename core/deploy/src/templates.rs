//! Template variables: `{{ferry.X}}`, `{{armory.X}}`, `{{context.X}}`, `{{secrets.X}}`.
//!
//! Names under `ferry`/`armory` are fixed, so an unknown one is reported at validation time;
//! context names are checked by the planner, which knows the caller's context too.

/// The variable names known under `ferry.` and `armory.` (besides `preview.<service>`).
pub const FERRY_VARIABLES: &[&str] = &[
    "applicationName",
    "deploymentId",
    "environmentName",
    "accountName",
    "namespace",
    "replicaSetName",
    "baselineReplicaSetName",
    "startTimeIso8601",
    "startTimeEpochSeconds",
    "startTimeEpochMillis",
    "endTimeIso8601",
    "endTimeEpochSeconds",
    "endTimeEpochMillis",
    "intervalSeconds",
    "intervalMillis",
    "promQlStepInterval",
    "callbackUri",
];

/// One `{{ … }}` reference found in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// `ferry`, `armory`, `context`, `secrets` or whatever was written.
    pub namespace: String,
    /// The rest after the first dot (may be empty).
    pub name: String,
    /// The text between the braces, trimmed.
    pub raw: String,
}

/// Every `{{ … }}` reference of a template, in order.
pub fn variables(template: &str) -> Vec<Variable> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let raw = after[..end].trim().to_string();
        let (namespace, name) = match raw.split_once('.') {
            Some((ns, name)) => (ns.trim().to_string(), name.trim().to_string()),
            None => (raw.clone(), String::new()),
        };
        out.push(Variable {
            namespace,
            name,
            raw,
        });
        rest = &after[end + 2..];
    }
    out
}

/// Why a fixed-namespace variable is invalid, with a suggestion; None when it is valid or is a
/// context variable (checked later).
pub fn check(var: &Variable, allow_callback: bool) -> Option<(String, Option<String>)> {
    match var.namespace.as_str() {
        "ferry" | "armory" => {
            if let Some(service) = var.name.strip_prefix("preview.") {
                return (service.is_empty())
                    .then(|| (format!("{{{{{}}}}} names no service", var.raw), None));
            }
            if var.name == "callbackUri" && !allow_callback {
                return Some((
                    format!("{{{{{}}}}} is only available in webhooks", var.raw),
                    None,
                ));
            }
            if FERRY_VARIABLES.contains(&var.name.as_str()) {
                return None;
            }
            let suggestion =
                crate::diagnostics::suggest(&var.name, FERRY_VARIABLES.iter().copied())
                    .map(|s| format!("{{{{{}.{s}}}}}", var.namespace));
            Some((format!("unknown variable {{{{{}}}}}", var.raw), suggestion))
        }
        "context" | "secrets" if !var.name.is_empty() => None,
        "context" | "secrets" => Some((format!("{{{{{}}}}} names no variable", var.raw), None)),
        other => {
            let suggestion =
                crate::diagnostics::suggest(other, ["ferry", "armory", "context", "secrets"])
                    .map(|ns| format!("{{{{{ns}.{}}}}}", var.name));
            Some((
                format!(
                    "unknown variable {{{{{}}}}}: expected ferry., armory., context. or secrets.",
                    var.raw
                ),
                suggestion,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_variables_and_checks_names() {
        let vars = variables(
            "a {{ferry.replicaSetName}} b {{ context.suite }} {{secrets.x}} {{armory.nope}}",
        );
        assert_eq!(vars.len(), 4);
        assert_eq!(vars[1].namespace, "context");
        assert_eq!(vars[1].name, "suite");
        assert!(check(&vars[0], false).is_none());
        assert!(check(&vars[1], false).is_none());
        assert!(check(&vars[2], false).is_none());
        let (msg, _) = check(&vars[3], false).unwrap();
        assert_eq!(msg, "unknown variable {{armory.nope}}");
        let typo = &variables("{{ferry.replicaSetNam}}")[0];
        assert_eq!(
            check(typo, false).unwrap().1.as_deref(),
            Some("{{ferry.replicaSetName}}")
        );
        assert!(check(&variables("{{ferry.callbackUri}}")[0], false).is_some());
        assert!(check(&variables("{{ferry.callbackUri}}")[0], true).is_none());
        assert!(check(&variables("{{ferry.preview.web}}")[0], false).is_none());
        assert!(check(&variables("{{foo.bar}}")[0], false).is_some());
    }
}
