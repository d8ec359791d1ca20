//! Prometheus: `GET /api/v1/query` at the window's end for one value, `GET
//! /api/v1/query_range` over the window for a series; basic auth (`username` and `password`
//! secrets) or a bearer token (`token`). The query must yield exactly one series.

use super::{Answer, Provider, QueryError, Shape, Window, single};
use crate::providers::transport::HttpRequest;
use base64::Engine;
use serde::Deserialize;

/// The request for `query` over `window`.
pub fn request(
    provider: &Provider,
    query: &str,
    window: Window,
    shape: Shape,
) -> Result<HttpRequest, QueryError> {
    let base = provider.base_url.trim_end_matches('/');
    let mut url = reqwest::Url::parse(&format!(
        "{base}/api/v1/{}",
        match shape {
            Shape::Value => "query",
            Shape::Series => "query_range",
        }
    ))
    .map_err(|e| QueryError::Settings(format!("base URL {base:?}: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("query", query);
        match shape {
            Shape::Value => {
                q.append_pair("time", &window.end.timestamp().to_string());
            }
            Shape::Series => {
                q.append_pair("start", &window.start.timestamp().to_string());
                q.append_pair("end", &window.end.timestamp().to_string());
                q.append_pair("step", &format!("{}s", window.step_secs()));
            }
        }
    }
    let c = &provider.credentials;
    let mut headers = vec![("Accept".to_string(), "application/json".to_string())];
    if let Some(token) = c.get("token").or_else(|| c.get("bearerToken")) {
        headers.push(("Authorization".into(), format!("Bearer {token}")));
    } else if let Some(user) = c.get("username") {
        let password = c.get("password").unwrap_or_default();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        headers.push(("Authorization".into(), format!("Basic {basic}")));
    }
    Ok(HttpRequest {
        method: http::Method::GET,
        url: url.to_string(),
        headers,
        body: None,
    })
}

#[derive(Deserialize)]
struct Response {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct Sample {
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Option<Vec<(f64, String)>>,
}

fn number(text: &str) -> Result<f64, QueryError> {
    // Prometheus writes NaN, +Inf and -Inf as such; Rust parses them all.
    text.parse::<f64>()
        .map_err(|_| QueryError::Decode(format!("{text:?} is not a number")))
}

/// Reads an answer of `/api/v1/query` or `/api/v1/query_range`.
pub fn read(body: &[u8], shape: Shape) -> Result<Answer<Vec<f64>>, QueryError> {
    let response: Response =
        serde_json::from_slice(body).map_err(|e| QueryError::Decode(format!("Prometheus: {e}")))?;
    if response.status != "success" {
        return Err(QueryError::Provider(format!(
            "Prometheus {}: {}",
            response.error_type.as_deref().unwrap_or("error"),
            response.error.as_deref().unwrap_or("no reason given")
        )));
    }
    let data = response
        .data
        .ok_or_else(|| QueryError::Decode("Prometheus: no data".into()))?;
    let points: Vec<f64> = match data.result_type.as_str() {
        "scalar" => {
            let (_, v): (f64, String) = serde_json::from_value(data.result)
                .map_err(|e| QueryError::Decode(format!("Prometheus scalar: {e}")))?;
            vec![number(&v)?]
        }
        "vector" | "matrix" => {
            let series: Vec<Sample> = serde_json::from_value(data.result)
                .map_err(|e| QueryError::Decode(format!("Prometheus {}: {e}", data.result_type)))?;
            match series.len() {
                0 => return Ok(Answer::Missing("the query returned no series".into())),
                1 => {}
                n => {
                    return Ok(Answer::Missing(format!(
                        "the query returned {n} series; it must return one (aggregate with sum, avg or max)"
                    )));
                }
            }
            let s = &series[0];
            match (&s.value, &s.values) {
                (Some((_, v)), _) => vec![number(v)?],
                (None, Some(values)) => values
                    .iter()
                    .map(|(_, v)| number(v))
                    .collect::<Result<_, _>>()?,
                (None, None) => {
                    return Err(QueryError::Decode(
                        "Prometheus: a series without values".into(),
                    ));
                }
            }
        }
        other => {
            return Err(QueryError::Decode(format!(
                "Prometheus result type {other:?} is not a number"
            )));
        }
    };
    Ok(match shape {
        Shape::Value => single(points, "the query's result"),
        Shape::Series if points.is_empty() => Answer::Missing("the series has no points".into()),
        Shape::Series => Answer::Data(points),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_scalars_and_matrices_are_read_and_wrong_shapes_explained() {
        let one = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.5,"0.25"]}]}}"#;
        assert_eq!(read(one, Shape::Value).unwrap(), Answer::Data(vec![0.25]));
        let scalar =
            br#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}"#;
        assert_eq!(read(scalar, Shape::Value).unwrap(), Answer::Data(vec![3.0]));
        let none = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(
            read(none, Shape::Value).unwrap(),
            Answer::Missing("the query returned no series".into())
        );
        let two = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}}"#;
        let Answer::Missing(why) = read(two, Shape::Value).unwrap() else {
            panic!("two series are not a value")
        };
        assert!(why.contains("returned 2 series"), "{why}");
        let nan = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#;
        assert_eq!(
            read(nan, Shape::Value).unwrap(),
            Answer::Missing("the query's result is NaN".into())
        );
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"2.5"],[3,"+Inf"]]}]}}"#;
        let Answer::Data(points) = read(matrix, Shape::Series).unwrap() else {
            panic!("a matrix is a series")
        };
        assert_eq!(&points[..2], &[1.0, 2.5]);
        assert!(points[2].is_infinite());
    }

    #[test]
    fn errors_and_garbage_are_errors_not_values() {
        let bad = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        let e = read(bad, Shape::Value).unwrap_err();
        assert_eq!(e.to_string(), "Prometheus bad_data: parse error at char 5");
        assert!(!e.is_transient());
        assert!(matches!(
            read(b"<html>502</html>", Shape::Value),
            Err(QueryError::Decode(_))
        ));
        let word = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"many"]}]}}"#;
        assert!(matches!(
            read(word, Shape::Value),
            Err(QueryError::Decode(_))
        ));
    }
}
