//! The HTTP client of the Ferry API: JSON requests with a bearer token, the token fetched with
//! client credentials at `/oauth/token` when needed and cached for the process (fetched again
//! once if the API answers 401, e.g. after it expired during a long watch), and every failure
//! turned into an [`ApiError`].

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::{Auth, Settings};
use crate::error::ApiError;

/// The audience of API tokens.
const AUDIENCE: &str = "ferry-api";

/// How long one ordinary request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an event stream may stay silent (the API sends keep-alives far more often).
const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to one Ferry API.
pub struct Client {
    http: reqwest::Client,
    stream: reqwest::Client,
    api: String,
    auth: Auth,
    token: Mutex<Option<String>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("api", &self.api)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `settings`.
    pub fn new(settings: Settings) -> anyhow::Result<Client> {
        // reqwest is built without a default TLS provider; ring is the one the workspace uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let agent = concat!("ferry-cli/", env!("CARGO_PKG_VERSION"));
        let http = reqwest::Client::builder()
            .user_agent(agent)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        let stream = reqwest::Client::builder()
            .user_agent(agent)
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(STREAM_READ_TIMEOUT)
            .build()?;
        Ok(Client {
            http,
            stream,
            api: settings.api,
            auth: settings.auth,
            token: Mutex::new(None),
        })
    }

    /// The API's base URL.
    pub fn api(&self) -> &str {
        &self.api
    }

    /// A token for the API: the given one, or one fetched with client credentials (cached).
    pub async fn token(&self) -> Result<String, ApiError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref() {
            return Ok(token.clone());
        }
        let token = match &self.auth {
            Auth::Token(token) => token.clone(),
            Auth::Client { id, secret } => self.fetch_token(id, secret).await?,
            Auth::None => return Err(ApiError::NotLoggedIn),
        };
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Exchanges client credentials for a token (OAuth2 client-credentials grant).
    async fn fetch_token(&self, id: &str, secret: &str) -> Result<String, ApiError> {
        let url = format!("{}/oauth/token", self.api);
        let request = self
            .http
            .post(&url)
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("audience", AUDIENCE)]);
        let response = request
            .send()
            .await
            .map_err(|e| ApiError::unreachable(&self.api, &e))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| ApiError::unreachable(&self.api, &e))?;
        if status != 200 {
            return Err(match ApiError::from_answer(status, &body) {
                ApiError::NotAuthorised(d) => {
                    ApiError::NotAuthorised(format!("{d} (client id {id}, token endpoint {url})"))
                }
                other => other,
            });
        }
        let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        json["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ApiError::Unexpected {
                api: self.api.clone(),
                detail: format!("the token endpoint {url} answered without an access_token"),
            })
    }

    /// `GET path` (with `query`): the JSON body.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ApiError> {
        self.call(Method::GET, path, query, None).await
    }

    /// `POST path` with an optional JSON body: the JSON body (`null` when empty).
    pub async fn post(&self, path: &str, body: Option<&Value>) -> Result<Value, ApiError> {
        self.call(Method::POST, path, &[], body).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.call(Method::PUT, path, &[], Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Value, ApiError> {
        self.call(Method::DELETE, path, &[], None).await
    }

    /// One JSON request; a 401 with a fetched token fetches a new one and tries once more.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let mut retried = false;
        loop {
            let mut request = self
                .authorised(self.http.request(method.clone(), self.url(path)))
                .await?;
            if !query.is_empty() {
                request = request.query(query);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| ApiError::unreachable(&self.api, &e))?;
            let status = response.status().as_u16();
            if status == 401 && !retried && matches!(self.auth, Auth::Client { .. }) {
                retried = true;
                *self.token.lock().await = None;
                continue;
            }
            return self.read(response).await;
        }
    }

    /// Opens `GET path` as an event stream, resuming after `last_event_id`.
    pub async fn event_stream(
        &self,
        path: &str,
        last_event_id: Option<i64>,
    ) -> Result<Response, ApiError> {
        let mut request = self
            .authorised(self.stream.get(self.url(path)))
            .await?
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| ApiError::unreachable(&self.api, &e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        if response.status().as_u16() == 401 && matches!(self.auth, Auth::Client { .. }) {
            *self.token.lock().await = None;
        }
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Err(ApiError::from_answer(status, &body))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    async fn authorised(&self, request: RequestBuilder) -> Result<RequestBuilder, ApiError> {
        Ok(request.bearer_auth(self.token().await?))
    }

    async fn read(&self, response: Response) -> Result<Value, ApiError> {
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| ApiError::unreachable(&self.api, &e))?;
        if !(200..300).contains(&status) {
            return Err(ApiError::from_answer(status, &body));
        }
        if body.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&body).map_err(|e| ApiError::Unexpected {
            api: self.api.clone(),
            detail: format!("the answer is not JSON ({e})"),
        })
    }
}
