//! Datadog: the metrics query API, `GET /api/v1/query?from&to&query`, with the `DD-API-KEY`
//! and `DD-APPLICATION-KEY` headers (secrets `apiKey` and `applicationKey`). The query must
//! yield one series; for one value, the mean of its points (a `.rollup(avg, N)` over the window
//! makes that a single point).

use super::{Answer, Provider, QueryError, Shape, Window, single};
use crate::providers::transport::HttpRequest;
use serde::Deserialize;

/// The request for `query` over `window`.
pub fn request(
    provider: &Provider,
    query: &str,
    window: Window,
) -> Result<HttpRequest, QueryError> {
    let base = provider.base_url.trim_end_matches('/');
    let mut url = reqwest::Url::parse(&format!("{base}/api/v1/query"))
        .map_err(|e| QueryError::Settings(format!("base URL {base:?}: {e}")))?;
    url.query_pairs_mut()
        .append_pair("from", &window.start.timestamp().to_string())
        .append_pair("to", &window.end.timestamp().to_string())
        .append_pair("query", query);
    let c = &provider.credentials;
    let api_key = c
        .get("apiKey")
        .ok_or_else(|| QueryError::Settings("Datadog needs an apiKey secret reference".into()))?;
    let app_key = c
        .get("applicationKey")
        .or_else(|| c.get("appKey"))
        .ok_or_else(|| {
            QueryError::Settings("Datadog needs an applicationKey secret reference".into())
        })?;
    Ok(HttpRequest {
        method: http::Method::GET,
        url: url.to_string(),
        headers: vec![
            ("Accept".into(), "application/json".into()),
            ("DD-API-KEY".into(), api_key.to_string()),
            ("DD-APPLICATION-KEY".into(), app_key.to_string()),
        ],
        body: None,
    })
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    errors: Option<Vec<String>>,
    #[serde(default)]
    series: Option<Vec<Series>>,
}

#[derive(Deserialize)]
struct Series {
    pointlist: Vec<(f64, Option<f64>)>,
}

/// Reads an answer of `/api/v1/query`.
pub fn read(body: &[u8], shape: Shape) -> Result<Answer<Vec<f64>>, QueryError> {
    let response: Response =
        serde_json::from_slice(body).map_err(|e| QueryError::Decode(format!("Datadog: {e}")))?;
    if let Some(errors) = response.errors.filter(|e| !e.is_empty()) {
        return Err(QueryError::Provider(format!(
            "Datadog: {}",
            errors.join("; ")
        )));
    }
    if response.status.as_deref() == Some("error") {
        return Err(QueryError::Provider(format!(
            "Datadog: {}",
            response.error.as_deref().unwrap_or("no reason given")
        )));
    }
    let series = response
        .series
        .ok_or_else(|| QueryError::Decode("Datadog: no series field".into()))?;
    let points: Vec<f64> = match series.as_slice() {
        [] => return Ok(Answer::Missing("the query returned no series".into())),
        [s] => s.pointlist.iter().filter_map(|(_, v)| *v).collect(),
        many => {
            return Ok(Answer::Missing(format!(
                "the query returned {} series; it must return one",
                many.len()
            )));
        }
    };
    Ok(match shape {
        Shape::Series if points.is_empty() => Answer::Missing("the series has no points".into()),
        Shape::Series => Answer::Data(points),
        Shape::Value if points.is_empty() => Answer::Missing("the series has no points".into()),
        Shape::Value => single(
            vec![points.iter().sum::<f64>() / points.len() as f64],
            "the series' mean",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_series_gives_its_mean_or_its_points() {
        let body = br#"{"status":"ok","res_type":"time_series","series":[{"metric":"trace.http.request.errors","pointlist":[[1700000000000,1.0],[1700000060000,null],[1700000120000,2.0]],"scope":"replicaset:web-abc","length":3}],"from_date":1700000000000,"to_date":1700000180000,"query":"sum:trace.http.request.errors{*}","message":"","group_by":[]}"#;
        assert_eq!(read(body, Shape::Value).unwrap(), Answer::Data(vec![1.5]));
        assert_eq!(
            read(body, Shape::Series).unwrap(),
            Answer::Data(vec![1.0, 2.0])
        );
        let none = br#"{"status":"ok","series":[],"query":"x"}"#;
        assert_eq!(
            read(none, Shape::Value).unwrap(),
            Answer::Missing("the query returned no series".into())
        );
    }

    #[test]
    fn errors_are_errors() {
        let e = read(br#"{"errors":["Forbidden"]}"#, Shape::Value).unwrap_err();
        assert_eq!(e.to_string(), "Datadog: Forbidden");
        let e = read(
            br#"{"status":"error","error":"Rule parse error"}"#,
            Shape::Value,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "Datadog: Rule parse error");
    }
}
