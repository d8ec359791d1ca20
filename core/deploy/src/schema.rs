//! The deploy file's JSON Schema (draft-07, the draft the YAML language server supports), generated
//! from [`crate::grammar`], the declarations the decoder reads too.
//!
//! The schema is as lenient as the parser: every spelling the parser accepts (aliases, any-case
//! keys and enum values, `setWeight: 25`, `context` as a list, `trafficManagement` as one
//! mapping, numbers written as quoted strings) validates, so a file the parser accepts never
//! fails the schema. It is looser where a rule needs more than one value (a strategy that
//! exists, weights that never decrease, a timeout of at least a minute).

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};

use crate::grammar::{Bound, DEPLOY_FILE, Enum, Key, Object, Rule, Value};

/// The meta-schema the generated schema declares.
pub const DRAFT: &str = "http://json-schema.org/draft-07/schema#";

/// The deploy file's JSON Schema.
pub fn json_schema() -> Json {
    let mut definitions = BTreeMap::new();
    let root = object(&DEPLOY_FILE, &mut definitions);
    let Json::Object(mut schema) = root else {
        unreachable!("an object's schema is a JSON object")
    };
    let mut head = Map::new();
    head.insert("$schema".into(), json!(DRAFT));
    head.insert("title".into(), json!("Ferry deploy file"));
    head.extend(schema.iter_mut().map(|(k, v)| (k.clone(), v.take())));
    head.insert(
        "definitions".into(),
        Json::Object(definitions.into_iter().collect()),
    );
    Json::Object(head)
}

/// `^(?:…)$` matching every spelling of `key` the decoder accepts, when there are several.
fn spellings(key: &Key) -> Option<String> {
    if key.aliases.is_empty() && !key.any_case {
        return None;
    }
    let name = if key.any_case {
        any_case(key.name)
    } else {
        escape(key.name)
    };
    let mut alternatives = vec![name];
    alternatives.extend(key.aliases.iter().map(|a| any_case(a)));
    Some(format!("^(?:{})$", alternatives.join("|")))
}

/// A regex matching `text` in any ASCII case.
fn any_case(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
            } else {
                escape(&c.to_string())
            }
        })
        .collect()
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// The key named `name` of `o` (rules only name real keys: a grammar unit test checks it).
fn key_of(o: &Object, name: &str) -> &'static Key {
    o.key(name)
        .unwrap_or_else(|| panic!("{}: a rule names {name}, not a key", o.name))
}

/// The object has the key, in any of its spellings.
fn present(key: &Key) -> Json {
    match spellings(key) {
        None => json!({ "required": [key.name] }),
        // "Not every property name fails to match" = some property name matches.
        Some(pattern) => json!({ "anyOf": [
            { "required": [key.name] },
            { "not": { "propertyNames": { "not": { "pattern": pattern } } } }
        ] }),
    }
}

/// The object lacks the key, in every spelling.
fn absent(key: &Key) -> Json {
    match spellings(key) {
        None => json!({ "not": { "required": [key.name] } }),
        Some(pattern) => json!({ "propertyNames": { "not": { "pattern": pattern } } }),
    }
}

fn boolean(value: bool) -> Json {
    let pattern = format!("^{}$", any_case(if value { "true" } else { "false" }));
    json!({ "anyOf": [{ "const": value }, { "type": "string", "pattern": pattern }] })
}

fn object(o: &'static Object, definitions: &mut BTreeMap<String, Json>) -> Json {
    let mut properties = Map::new();
    let mut pattern_properties = Map::new();
    let mut required = Vec::new();
    let mut all_of = Vec::new();
    for k in o.keys {
        let mut schema = value(&k.value, definitions);
        if let Json::Object(m) = &mut schema {
            m.insert("description".into(), json!(k.description));
        }
        if let Some(pattern) = spellings(k) {
            pattern_properties.insert(pattern, schema.clone());
            if k.required {
                all_of.push(present(k));
            }
        } else if k.required {
            required.push(json!(k.name));
        }
        properties.insert(k.name.into(), schema);
    }
    for rule in o.rules {
        all_of.push(match rule {
            Rule::ExactlyOne(names) => json!({
                "oneOf": names.iter().map(|n| present(key_of(o, n))).collect::<Vec<_>>()
            }),
            Rule::AtLeastOne(names) => json!({
                "anyOf": names.iter().map(|n| present(key_of(o, n))).collect::<Vec<_>>()
            }),
            Rule::OneForm(forms) => {
                let forms: Vec<Json> = forms
                    .iter()
                    .map(|f| {
                        let mut parts: Vec<Json> = f
                            .requires
                            .iter()
                            .map(|n| present(key_of(o, n)))
                            .chain(f.forbids.iter().map(|n| absent(key_of(o, n))))
                            .collect();
                        if let Some((flag, v)) = f.flag {
                            parts.push(json!({ "properties": { flag: boolean(v) } }));
                        }
                        json!({ "allOf": parts })
                    })
                    .collect();
                json!({ "anyOf": forms })
            }
        });
    }
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("description".into(), json!(o.description));
    schema.insert("properties".into(), Json::Object(properties));
    if !pattern_properties.is_empty() {
        schema.insert("patternProperties".into(), Json::Object(pattern_properties));
    }
    schema.insert("additionalProperties".into(), json!(false));
    if !required.is_empty() {
        schema.insert("required".into(), Json::Array(required));
    }
    if !all_of.is_empty() {
        schema.insert("allOf".into(), Json::Array(all_of));
    }
    Json::Object(schema)
}

/// A reference to `o`'s definition, adding the definition the first time.
fn reference(o: &'static Object, definitions: &mut BTreeMap<String, Json>) -> Json {
    if !definitions.contains_key(o.name) {
        // Reserve the name first, so a definition reached again while building is not rebuilt.
        definitions.insert(o.name.into(), Json::Null);
        let schema = object(o, definitions);
        definitions.insert(o.name.into(), schema);
    }
    json!({ "$ref": format!("#/definitions/{}", o.name) })
}

/// Scalars the decoder reads as text: numbers and booleans keep their spelling.
const SCALAR: [&str; 3] = ["string", "number", "boolean"];

fn value(v: &'static Value, definitions: &mut BTreeMap<String, Json>) -> Json {
    match v {
        Value::Text => json!({ "type": SCALAR }),
        Value::Name => json!({ "type": SCALAR, "minLength": 1, "pattern": "\\S" }),
        Value::ApplicationName => json!({
            "type": SCALAR,
            "maxLength": crate::names::MAX_APPLICATION_NAME_LEN,
            "pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
        }),
        Value::Exact(values) => json!({ "enum": values }),
        Value::Int { min, max } => json!({
            "type": ["integer", "string"],
            "minimum": min,
            "maximum": max,
            "pattern": "^\\s*[+-]?[0-9]+\\s*$"
        }),
        Value::Number { min, max } => {
            let mut m = Map::new();
            m.insert("type".into(), json!(["number", "string"]));
            match min {
                Bound::None => {}
                Bound::Inclusive(b) => {
                    m.insert("minimum".into(), json!(b));
                }
                Bound::Exclusive(b) => {
                    m.insert("exclusiveMinimum".into(), json!(b));
                }
            }
            match max {
                Bound::None => {}
                Bound::Inclusive(b) => {
                    m.insert("maximum".into(), json!(b));
                }
                Bound::Exclusive(b) => {
                    m.insert("exclusiveMaximum".into(), json!(b));
                }
            }
            m.insert(
                "pattern".into(),
                json!("^\\s*[+-]?(?:[0-9]+\\.?[0-9]*|\\.[0-9]+)(?:[eE][+-]?[0-9]+)?\\s*$"),
            );
            Json::Object(m)
        }
        Value::Bool => json!({
            "type": ["boolean", "string"],
            "pattern": format!("^(?:{}|{})$", any_case("true"), any_case("false"))
        }),
        Value::Enum(e) => enumeration(e),
        Value::List { item, min } => {
            let mut m = json!({ "type": "array", "items": value(item, definitions) });
            if *min > 0 {
                m["minItems"] = json!(min);
            }
            m
        }
        Value::Named { value: v, min } => {
            let mut m = json!({ "type": "object", "additionalProperties": value(v, definitions) });
            if *min > 0 {
                m["minProperties"] = json!(min);
            }
            m
        }
        Value::Object(o) => reference(o, definitions),
        Value::Either(a, b) => json!({ "anyOf": [value(a, definitions), value(b, definitions)] }),
        Value::OneOrList(o) => {
            let item = reference(o, definitions);
            json!({ "anyOf": [{ "type": "array", "items": item.clone() }, item] })
        }
        Value::Context => {
            let item = reference(&crate::grammar::CONTEXT_ITEM, definitions);
            json!({ "anyOf": [
                { "type": "object", "additionalProperties": { "type": SCALAR } },
                { "type": "array", "items": item }
            ] })
        }
    }
}

/// One of `e`'s values in any case: the canonical spellings (which editors offer), or any
/// other case of them.
fn enumeration(e: &Enum) -> Json {
    let alternatives: Vec<String> = e.values.iter().map(|v| any_case(v)).collect();
    json!({ "anyOf": [
        { "enum": e.values },
        { "type": "string", "pattern": format!("^(?:{})$", alternatives.join("|")) }
    ] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_cover_aliases_in_any_case() {
        let units = crate::grammar::ANALYSIS_STEP.key("units").unwrap();
        assert_eq!(
            spellings(units).unwrap(),
            "^(?:[Uu][Nn][Ii][Tt][Ss]|[Uu][Nn][Ii][Tt])$"
        );
        assert_eq!(
            spellings(crate::grammar::TARGET.key("account").unwrap()),
            None
        );
    }

    #[test]
    fn every_object_is_defined_once_and_every_reference_resolves() {
        let schema = json_schema();
        let definitions = schema["definitions"].as_object().unwrap();
        let text = schema.to_string();
        for (name, definition) in definitions {
            assert!(definition.is_object(), "{name}");
        }
        for part in text.split("\"#/definitions/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(definitions.contains_key(name), "dangling $ref to {name}");
        }
        assert_eq!(schema["$schema"], DRAFT);
        assert!(
            schema["required"]
                .as_array()
                .unwrap()
                .contains(&json!("application"))
        );
    }
}
