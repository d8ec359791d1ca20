//! Request bodies: JSON, or YAML for `application/apply-patch+yaml` (kubectl and kube-rs send
//! JSON, which is also YAML; hand-written apply bodies may be real YAML).

use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{Map, Number, Value};

use crate::error::ApiError;

/// Parses a body as JSON, falling back to a single YAML document.
pub(crate) fn parse(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
    let docs = Yaml::load_from_str(text)
        .map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?;
    match docs.as_slice() {
        [doc] => to_json(doc),
        _ => Err(ApiError::bad_request(
            "the request body must hold exactly one document",
        )),
    }
}

fn to_json(y: &Yaml<'_>) -> Result<Value, ApiError> {
    Ok(match y {
        Yaml::Value(s) => scalar(s),
        Yaml::Representation(..) => {
            return Err(ApiError::bad_request(
                "unresolved YAML scalar in the request body",
            ));
        }
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Yaml::Value(Scalar::String(s)) => s.to_string(),
                    Yaml::Value(other) => match scalar(other) {
                        Value::String(s) => s,
                        v => v.to_string(),
                    },
                    _ => return Err(ApiError::bad_request("YAML mapping keys must be scalars")),
                };
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        Yaml::Tagged(_, inner) => to_json(inner)?,
        _ => {
            return Err(ApiError::bad_request(
                "unsupported YAML in the request body",
            ));
        }
    })
}

fn scalar(s: &Scalar<'_>) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Number((*i).into()),
        Scalar::FloatingPoint(f) => {
            Number::from_f64(f.into_inner()).map_or(Value::Null, Value::Number)
        }
        Scalar::String(s) => Value::String(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_and_json_bodies() {
        let y =
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: \"1\"\n  n: 2\n";
        assert_eq!(
            parse(y).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1", "n": 2}})
        );
        assert_eq!(parse(br#"{"a": [1]}"#).unwrap(), json!({"a": [1]}));
    }
}
