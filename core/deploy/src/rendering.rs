//! Rendering templates: substituting `{{ferry.X}}` (and `{{armory.X}}`), `{{context.X}}` and
//! `{{secrets.X}}` in a text, or in every string of a parsed manifest.
//!
//! Pure: the caller supplies the variables known where the template is used (a manifest knows
//! the deployment and the target, a webhook also its callback URI, an analysis query its time
//! window) and decides what happens to secret references. An unknown or unavailable variable is
//! an error naming it, never an empty string.

use indexmap::IndexMap;
use serde_json::Value;

use crate::templates::{FERRY_VARIABLES, variables};

/// What rendering does with `{{secrets.NAME}}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretRefs {
    /// Leave the reference as written, for the service that sends the text to resolve at the
    /// last moment (so a secret's plaintext never sits in a queue or the database).
    Keep,
    /// Refuse it: secrets are not available in this kind of template.
    Refuse,
}

/// The variables known where a template is rendered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Variables {
    /// Names under `ferry.`/`armory.` (`applicationName`, `preview.web`, …) and their values.
    pub ferry: IndexMap<String, String>,
    /// The merged context (file < step < caller).
    pub context: IndexMap<String, String>,
}

impl Variables {
    /// Sets `ferry.<name>`.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Variables {
        self.ferry.insert(name.to_string(), value.into());
        self
    }
}

/// Why a template could not be rendered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The variable does not exist under that name.
    #[error("unknown variable {{{{{0}}}}}")]
    Unknown(String),
    /// The variable exists but has no value where this template is used.
    #[error("{{{{{0}}}}} is not available here")]
    Unavailable(String),
    /// `{{context.X}}` that no context (file, step or caller) defines.
    #[error("{{{{{0}}}}} is not defined by any context (file, step or --add-context)")]
    UndefinedContext(String),
    /// A secret where secrets are not allowed.
    #[error("{{{{{0}}}}}: secrets are only resolved in webhooks and analysis queries")]
    SecretNotAllowed(String),
}

impl RenderError {
    /// The variable as written between the braces.
    pub fn variable(&self) -> &str {
        match self {
            RenderError::Unknown(v)
            | RenderError::Unavailable(v)
            | RenderError::UndefinedContext(v)
            | RenderError::SecretNotAllowed(v) => v,
        }
    }
}

/// Renders `template`, replacing every `{{ … }}` reference; the first bad reference fails it.
/// A `{{` without a closing `}}` is kept as written.
pub fn render(
    template: &str,
    vars: &Variables,
    secrets: SecretRefs,
) -> Result<String, RenderError> {
    if !template.contains("{{") {
        return Ok(template.to_string());
    }
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    let mut refs = variables(template).into_iter();
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let var = refs.next().expect("variables() finds the same references");
        out.push_str(&rest[..start]);
        match var.namespace.as_str() {
            "ferry" | "armory" => match vars.ferry.get(&var.name) {
                Some(value) => out.push_str(value),
                None if FERRY_VARIABLES.contains(&var.name.as_str())
                    || var.name.starts_with("preview.") =>
                {
                    return Err(RenderError::Unavailable(var.raw));
                }
                None => return Err(RenderError::Unknown(var.raw)),
            },
            "context" => match vars.context.get(&var.name) {
                Some(value) => out.push_str(value),
                None => return Err(RenderError::UndefinedContext(var.raw)),
            },
            "secrets" if var.name.is_empty() => return Err(RenderError::Unknown(var.raw)),
            "secrets" => match secrets {
                SecretRefs::Keep => out.push_str(&rest[start..start + 2 + end + 2]),
                SecretRefs::Refuse => return Err(RenderError::SecretNotAllowed(var.raw)),
            },
            _ => return Err(RenderError::Unknown(var.raw)),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Renders every string (not the keys) of a parsed object, e.g. a Kubernetes manifest.
pub fn render_value(
    value: &Value,
    vars: &Variables,
    secrets: SecretRefs,
) -> Result<Value, RenderError> {
    Ok(match value {
        Value::String(s) => Value::String(render(s, vars, secrets)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(v, vars, secrets))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(v, vars, secrets)?)))
                .collect::<Result<_, RenderError>>()?,
        ),
        other => other.clone(),
    })
}

/// The names of the secrets a template refers to, in order, without repeats.
pub fn secret_names(template: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for var in variables(template) {
        if var.namespace == "secrets" && !var.name.is_empty() && !names.contains(&var.name) {
            names.push(var.name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Variables {
        let mut v = Variables::default();
        v.set("applicationName", "hello")
            .set("environmentName", "prod-eu (blue)")
            .set("preview.web", "http://preview");
        v.context.insert("tag".into(), "1.2.0".into());
        v.context.insert("team".into(), "payments".into());
        v
    }

    #[test]
    fn substitutes_ferry_armory_and_context_with_any_spacing() {
        let out = render(
            "{{ferry.applicationName}}:{{ context.tag }} {{armory.environmentName}} \
             {{ferry.preview.web}} {{context.team}}{{context.team}}",
            &vars(),
            SecretRefs::Refuse,
        )
        .unwrap();
        assert_eq!(
            out,
            "hello:1.2.0 prod-eu (blue) http://preview paymentspayments"
        );
        assert_eq!(
            render("plain {{ no end", &vars(), SecretRefs::Refuse).unwrap(),
            "plain {{ no end"
        );
        assert_eq!(render("", &vars(), SecretRefs::Refuse).unwrap(), "");
    }

    #[test]
    fn unknown_unavailable_and_undefined_variables_fail_naming_them() {
        let v = vars();
        let err = render("a {{context.nope}} b", &v, SecretRefs::Keep).unwrap_err();
        assert_eq!(err, RenderError::UndefinedContext("context.nope".into()));
        assert_eq!(
            err.to_string(),
            "{{context.nope}} is not defined by any context (file, step or --add-context)"
        );
        let err = render("{{ferry.replicaSetName}}", &v, SecretRefs::Keep).unwrap_err();
        assert_eq!(err, RenderError::Unavailable("ferry.replicaSetName".into()));
        assert_eq!(
            err.to_string(),
            "{{ferry.replicaSetName}} is not available here"
        );
        assert_eq!(
            render("{{ferry.preview.api}}", &v, SecretRefs::Keep).unwrap_err(),
            RenderError::Unavailable("ferry.preview.api".into())
        );
        let err = render("{{ferry.bogus}}", &v, SecretRefs::Keep).unwrap_err();
        assert_eq!(err.to_string(), "unknown variable {{ferry.bogus}}");
        assert_eq!(
            render("{{ .Values.x }}", &v, SecretRefs::Keep)
                .unwrap_err()
                .variable(),
            ".Values.x"
        );
        assert!(render("{{secrets}}", &v, SecretRefs::Keep).is_err());
    }

    #[test]
    fn secrets_are_kept_for_the_sender_or_refused() {
        let v = vars();
        let t = "Bearer {{ secrets.api-token }} for {{ferry.applicationName}}";
        assert_eq!(
            render(t, &v, SecretRefs::Keep).unwrap(),
            "Bearer {{ secrets.api-token }} for hello"
        );
        let err = render(t, &v, SecretRefs::Refuse).unwrap_err();
        assert_eq!(
            err,
            RenderError::SecretNotAllowed("secrets.api-token".into())
        );
        assert_eq!(
            secret_names("{{secrets.a}} {{secrets.b}} {{ secrets.a }} {{context.tag}}"),
            vec!["a".to_string(), "b".to_string()]
        );
    }

    #[test]
    fn renders_every_string_of_a_manifest_but_not_its_keys() {
        let manifest = json!({
            "kind": "ConfigMap",
            "metadata": {"name": "{{ferry.applicationName}}-config", "labels": {"team": "{{context.team}}"}},
            "data": {"{{context.tag}}": "v{{context.tag}}", "n": 3, "list": ["{{context.team}}", true]}
        });
        let out = render_value(&manifest, &vars(), SecretRefs::Refuse).unwrap();
        assert_eq!(out["metadata"]["name"], "hello-config");
        assert_eq!(out["metadata"]["labels"]["team"], "payments");
        assert_eq!(out["data"]["{{context.tag}}"], "v1.2.0");
        assert_eq!(out["data"]["n"], 3);
        assert_eq!(out["data"]["list"], json!(["payments", true]));
        let bad = json!({"spec": {"image": "app:{{context.version}}"}});
        assert_eq!(
            render_value(&bad, &vars(), SecretRefs::Refuse).unwrap_err(),
            RenderError::UndefinedContext("context.version".into())
        );
    }
}
