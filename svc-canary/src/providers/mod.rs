//! Metric providers: Prometheus, Datadog and New Relic. Each turns a rendered query and a time
//! window into one HTTP request and reads the answer into one value (limits judge) or one series
//! (comparison judge). Building requests and reading answers are pure functions per provider,
//! tested against recorded answers; [`Fetcher`] adds the transport, credentials and retries.
//!
//! Errors are kept apart from data: an unreachable provider, an error status or an answer that
//! does not parse is a [`QueryError`] (retried within the run when it may pass, then reported as
//! an error); an answer without a usable number (no series, many series, NaN) is
//! [`Answer::Missing`] with the reason. Neither is ever turned into a value.

pub mod datadog;
pub mod newrelic;
pub mod prometheus;
pub mod transport;

use crate::secrets::Credentials;
use chrono::{DateTime, Utc};
use ferry_store::TenantId;
use ferry_store::metric_providers::ProviderKind;
use std::sync::Arc;
use std::time::Duration;
use transport::{HttpAnswer, HttpRequest, Transport, TransportError};

/// A query's time window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Start (inclusive).
    pub start: DateTime<Utc>,
    /// End.
    pub end: DateTime<Utc>,
}

impl Window {
    /// Its length in whole seconds (at least 1).
    pub fn secs(&self) -> i64 {
        (self.end - self.start).num_seconds().max(1)
    }

    /// The step of a series over the window: about 60 points, at least one second apart
    /// (finer steps than the provider's resolution would repeat points and overstate the
    /// sample size).
    pub fn step_secs(&self) -> i64 {
        (self.secs() / 60).max(1)
    }
}

/// What a provider answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer<T> {
    /// Data.
    Data(T),
    /// No usable data, and why.
    Missing(String),
}

/// Why a query got no answer to read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueryError {
    /// The request did not get an answer.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The provider answered with an error status.
    #[error("HTTP {status}: {excerpt}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the body, for the reason.
        excerpt: String,
    },
    /// The provider reported an error in its answer (a bad query, an unknown metric).
    #[error("{0}")]
    Provider(String),
    /// The answer is not what the provider's API documents.
    #[error("unreadable answer: {0}")]
    Decode(String),
    /// The provider's settings cannot make a request (a missing credential, a bad URL).
    #[error("{0}")]
    Settings(String),
}

impl QueryError {
    /// Whether another attempt within the run may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            QueryError::Transport(e) => e.is_transient(),
            QueryError::Status { status, .. } => *status >= 500 || *status == 429,
            QueryError::Provider(_) | QueryError::Decode(_) | QueryError::Settings(_) => false,
        }
    }
}

/// The start of a body, for error reasons: at most 200 characters, on one line.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 200 {
        format!("{}…", line.chars().take(200).collect::<String>())
    } else {
        line
    }
}

/// Checks the status of an answer: 2xx passes, anything else is an error with an excerpt.
pub(crate) fn ok_status(answer: &HttpAnswer) -> Result<(), QueryError> {
    if (200..300).contains(&answer.status) {
        Ok(())
    } else {
        Err(QueryError::Status {
            status: answer.status,
            excerpt: excerpt(&answer.body),
        })
    }
}

/// A provider as one query sees it: its settings and its unsealed credentials.
#[derive(Clone, Debug)]
pub struct Provider {
    /// The provider's name.
    pub name: String,
    /// Its query language.
    pub kind: ProviderKind,
    /// Its base URL.
    pub base_url: String,
    /// The agent to relay through, if any.
    pub agent: Option<String>,
    /// Credentials, unsealed for this run only.
    pub credentials: Credentials,
}

/// Whether a query wants one value or a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One number for the window.
    Value,
    /// Points over the window.
    Series,
}

fn build(
    provider: &Provider,
    query: &str,
    window: Window,
    shape: Shape,
) -> Result<HttpRequest, QueryError> {
    match provider.kind {
        ProviderKind::Prometheus => prometheus::request(provider, query, window, shape),
        ProviderKind::Datadog => datadog::request(provider, query, window),
        ProviderKind::Newrelic => newrelic::request(provider, query, window),
    }
}

fn read(kind: ProviderKind, body: &[u8], shape: Shape) -> Result<Answer<Vec<f64>>, QueryError> {
    match kind {
        ProviderKind::Prometheus => prometheus::read(body, shape),
        ProviderKind::Datadog => datadog::read(body, shape),
        ProviderKind::Newrelic => newrelic::read(body, shape),
    }
}

/// Runs queries with retries.
#[derive(Clone)]
pub struct Fetcher {
    transport: Arc<dyn Transport>,
    attempts: u32,
    backoff: Duration,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A fetcher making up to `attempts` tries per query, waiting `backoff`, then twice that,
    /// between them.
    pub fn new(transport: Arc<dyn Transport>, attempts: u32, backoff: Duration) -> Fetcher {
        Fetcher {
            transport,
            attempts: attempts.max(1),
            backoff,
        }
    }

    /// Runs `query` over `window`: one value (`Shape::Value`, the vector holds one number) or a
    /// series. Transient failures are retried; the last error is returned with the number of
    /// attempts in its reason.
    pub async fn fetch(
        &self,
        tenant: TenantId,
        provider: &Provider,
        query: &str,
        window: Window,
        shape: Shape,
    ) -> Result<Answer<Vec<f64>>, QueryError> {
        let request = build(provider, query, window, shape)?;
        let mut delay = self.backoff;
        let mut attempt = 1;
        loop {
            let result = match self
                .transport
                .send(tenant, provider.agent.as_deref(), request.clone())
                .await
            {
                Ok(answer) => {
                    ok_status(&answer).and_then(|()| read(provider.kind, &answer.body, shape))
                }
                Err(e) => Err(QueryError::from(e)),
            };
            match result {
                Err(e) if e.is_transient() && attempt < self.attempts => {
                    tracing::debug!(provider = %provider.name, attempt, error = %e, "provider query failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                Err(e) if attempt > 1 => {
                    return Err(QueryError::Provider(format!(
                        "{e} (after {attempt} attempts)"
                    )));
                }
                other => return other,
            }
        }
    }
}

/// One value out of a series answer for `Shape::Value` (exactly one number), else the reason.
pub(crate) fn single(values: Vec<f64>, what: &str) -> Answer<Vec<f64>> {
    match values.as_slice() {
        [] => Answer::Missing(format!("{what} has no value")),
        [v] if v.is_nan() => Answer::Missing(format!("{what} is NaN")),
        [v] if v.is_infinite() => Answer::Missing(format!("{what} is {v}")),
        [_] => Answer::Data(values),
        _ => Answer::Missing(format!(
            "{what} has {} values; the query must yield one",
            values.len()
        )),
    }
}
