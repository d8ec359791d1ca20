//! New Relic: NRQL through NerdGraph (`POST` to the GraphQL endpoint, the base URL, with the
//! `API-Key` header from the `apiKey` secret). The account comes from the base URL's
//! `accountId` query parameter or an `accountId` secret. The window is added as
//! `SINCE <ms> UNTIL <ms>` unless the query has its own `SINCE`. One value: the single row's
//! single number; a series: that number of every row (`TIMESERIES`).

use super::{Answer, Provider, QueryError, Shape, Window, single};
use crate::providers::transport::HttpRequest;
use bytes::Bytes;
use serde_json::{Value, json};

const NERDGRAPH: &str = "query($accountId: Int!, $nrql: Nrql!) { actor { account(id: $accountId) { nrql(query: $nrql) { results } } } }";

/// The NRQL with the window added.
pub fn windowed(query: &str, window: Window) -> String {
    if query.to_ascii_uppercase().contains(" SINCE ") {
        query.to_string()
    } else {
        format!(
            "{} SINCE {} UNTIL {}",
            query.trim_end(),
            window.start.timestamp_millis(),
            window.end.timestamp_millis()
        )
    }
}

/// The request for `query` over `window`.
pub fn request(
    provider: &Provider,
    query: &str,
    window: Window,
) -> Result<HttpRequest, QueryError> {
    let mut url = reqwest::Url::parse(&provider.base_url)
        .map_err(|e| QueryError::Settings(format!("base URL {:?}: {e}", provider.base_url)))?;
    let from_url = url
        .query_pairs()
        .find(|(k, _)| k == "accountId")
        .map(|(_, v)| v.to_string());
    let others: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "accountId")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    url.set_query(None);
    if !others.is_empty() {
        url.query_pairs_mut().extend_pairs(others);
    }
    let c = &provider.credentials;
    let account = from_url
        .or_else(|| c.get("accountId").map(str::to_string))
        .ok_or_else(|| {
            QueryError::Settings(
                "New Relic needs an account: ?accountId=N on the base URL or an accountId secret"
                    .into(),
            )
        })?;
    let account: i64 = account
        .trim()
        .parse()
        .map_err(|_| QueryError::Settings("the New Relic accountId is not a number".into()))?;
    let key = c
        .get("apiKey")
        .ok_or_else(|| QueryError::Settings("New Relic needs an apiKey secret reference".into()))?;
    let body = json!({
        "query": NERDGRAPH,
        "variables": {"accountId": account, "nrql": windowed(query, window)},
    });
    Ok(HttpRequest {
        method: http::Method::POST,
        url: url.to_string(),
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("API-Key".into(), key.to_string()),
        ],
        body: Some(Bytes::from(body.to_string())),
    })
}

/// The number of a result row: its one numeric field other than the time bounds.
fn row_number(row: &Value) -> Result<Option<f64>, QueryError> {
    let Some(fields) = row.as_object() else {
        return Err(QueryError::Decode(
            "New Relic: a result row is not an object".into(),
        ));
    };
    let numbers: Vec<(&String, Option<f64>)> = fields
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "beginTimeSeconds" | "endTimeSeconds" | "facet"))
        .filter(|(_, v)| v.is_number() || v.is_null())
        .map(|(k, v)| (k, v.as_f64()))
        .collect();
    match numbers.as_slice() {
        [(_, v)] => Ok(*v),
        [] => Err(QueryError::Decode(
            "New Relic: a result row has no number".into(),
        )),
        many => Err(QueryError::Provider(format!(
            "New Relic: a result row has {} numbers ({}); select one",
            many.len(),
            many.iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Reads a NerdGraph answer.
pub fn read(body: &[u8], shape: Shape) -> Result<Answer<Vec<f64>>, QueryError> {
    let response: Value =
        serde_json::from_slice(body).map_err(|e| QueryError::Decode(format!("New Relic: {e}")))?;
    if let Some(errors) = response.get("errors").and_then(Value::as_array)
        && !errors.is_empty()
    {
        let messages: Vec<&str> = errors
            .iter()
            .filter_map(|e| e.get("message").and_then(Value::as_str))
            .collect();
        return Err(QueryError::Provider(format!(
            "New Relic: {}",
            messages.join("; ")
        )));
    }
    let results = response
        .pointer("/data/actor/account/nrql/results")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            QueryError::Decode("New Relic: no data.actor.account.nrql.results".into())
        })?;
    if results.is_empty() {
        return Ok(Answer::Missing("the query returned no rows".into()));
    }
    let mut points = Vec::with_capacity(results.len());
    for row in results {
        // A null (no events in a time bucket) is a gap, not a zero.
        points.push(row_number(row)?.unwrap_or(f64::NAN));
    }
    Ok(match shape {
        Shape::Value if points.len() > 1 => Answer::Missing(format!(
            "the query returned {} rows; it must return one (no TIMESERIES or FACET)",
            points.len()
        )),
        Shape::Value => single(points, "the query's result"),
        Shape::Series => Answer::Data(points),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn single_rows_and_timeseries_are_read() {
        let one =
            br#"{"data":{"actor":{"account":{"nrql":{"results":[{"average.duration":0.123}]}}}}}"#;
        assert_eq!(read(one, Shape::Value).unwrap(), Answer::Data(vec![0.123]));
        let series = br#"{"data":{"actor":{"account":{"nrql":{"results":[{"beginTimeSeconds":1,"endTimeSeconds":2,"percentile.duration":{"95":0.3}},{"beginTimeSeconds":2,"endTimeSeconds":3,"count":4}]}}}}}"#;
        // The first row holds an object, not a number: that is an unreadable answer.
        assert!(read(series, Shape::Series).is_err());
        let series = br#"{"data":{"actor":{"account":{"nrql":{"results":[{"beginTimeSeconds":1,"endTimeSeconds":2,"count":3},{"beginTimeSeconds":2,"endTimeSeconds":3,"count":4}]}}}}}"#;
        assert_eq!(
            read(series, Shape::Series).unwrap(),
            Answer::Data(vec![3.0, 4.0])
        );
        let Answer::Missing(why) = read(series, Shape::Value).unwrap() else {
            panic!("two rows are not a value")
        };
        assert!(why.contains("2 rows"), "{why}");
    }

    #[test]
    fn graphql_errors_are_errors() {
        let body = br#"{"data":{"actor":{"account":{"nrql":null}}},"errors":[{"message":"NRQL Syntax Error: Error at line 1 position 7","path":["actor","account","nrql"]}]}"#;
        let e = read(body, Shape::Value).unwrap_err();
        assert_eq!(
            e.to_string(),
            "New Relic: NRQL Syntax Error: Error at line 1 position 7"
        );
    }

    #[test]
    fn the_window_is_added_unless_the_query_has_one() {
        let w = Window {
            start: chrono::Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            end: chrono::Utc.timestamp_opt(1_700_000_060, 0).unwrap(),
        };
        assert_eq!(
            windowed("SELECT count(*) FROM Transaction", w),
            "SELECT count(*) FROM Transaction SINCE 1700000000000 UNTIL 1700000060000"
        );
        let own = "SELECT count(*) FROM Transaction SINCE 1 hour ago";
        assert_eq!(windowed(own, w), own);
    }
}
