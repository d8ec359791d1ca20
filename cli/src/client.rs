//! The HTTP client of the Ferry API: JSON requests with a bearer token (and `X-Ferry-Tenant`
//! when a tenant is set), the token fetched with client credentials at `/oauth/token` when
//! needed and cached for the process until shortly before it expires, or a person's token
//! refreshed with its refresh token shortly before it expires and written back to the
//! credentials file (either fetched or refreshed again once if the API answers 401), and every
//! failure turned into an [`ApiError`].

use std::time::{Duration, Instant};

use ferry_api::oauth::TokenResponse;
use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::config::{self, Auth, PersonAuth, Settings};
use crate::device;
use crate::error::ApiError;

/// The audience of API tokens.
const AUDIENCE: &str = "ferry-api";

/// How long one ordinary request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an event stream may stay silent (the API sends keep-alives far more often).
const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A fetched token is replaced this long before it expires.
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// A connection to one Ferry API.
pub(crate) struct Client {
    http: reqwest::Client,
    stream: reqwest::Client,
    api: String,
    auth: Auth,
    /// The token in use, with the instant to replace it (for fetched tokens).
    token: Mutex<Option<(String, Option<Instant>)>>,
    /// A person's session as last refreshed.
    person: Mutex<Option<PersonAuth>>,
    /// The tenant sent as `X-Ferry-Tenant`.
    tenant: Option<String>,
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
    pub(crate) fn new(settings: Settings) -> anyhow::Result<Client> {
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
            person: Mutex::new(match &settings.auth {
                Auth::Person(person) => Some((**person).clone()),
                _ => None,
            }),
            auth: settings.auth,
            token: Mutex::new(None),
            tenant: settings.tenant,
        })
    }

    /// The API's base URL.
    pub(crate) fn api(&self) -> &str {
        &self.api
    }

    /// A token for the API: the given one, one fetched with client credentials (cached), or a
    /// person's (refreshed when it expires within the margin).
    pub(crate) async fn token(&self) -> Result<String, ApiError> {
        if matches!(self.auth, Auth::Person(_)) {
            return self.person_token(false).await;
        }
        let mut cached = self.token.lock().await;
        if let Some((token, renew)) = cached.as_ref()
            && renew.is_none_or(|at| Instant::now() < at)
        {
            return Ok(token.clone());
        }
        let (token, renew) = match &self.auth {
            Auth::Token(token) => (token.clone(), None),
            Auth::Client { id, secret } => {
                let (token, lifetime) = self.fetch_token(id, secret).await?;
                let renew =
                    lifetime.map(|l| Instant::now() + l.saturating_sub(TOKEN_REFRESH_MARGIN));
                (token, renew)
            }
            Auth::Person(_) | Auth::None => return Err(ApiError::NotLoggedIn),
        };
        *cached = Some((token.clone(), renew));
        Ok(token)
    }

    /// A person's token, refreshed first when `force`d (the API refused it) or when it
    /// expires within [`TOKEN_REFRESH_MARGIN`]; a refreshed session is saved where it was read.
    async fn person_token(&self, force: bool) -> Result<String, ApiError> {
        let mut guard = self.person.lock().await;
        let person = guard.as_mut().ok_or(ApiError::NotLoggedIn)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let fresh = person
            .session
            .expires_at
            .is_none_or(|at| now + TOKEN_REFRESH_MARGIN.as_secs() < at);
        if fresh && !force {
            return Ok(person.session.token.clone());
        }
        // Another process may be refreshing the same sign-in: wait for it, then take its
        // tokens instead of spending the refresh token it already spent.
        let _lock = match &person.saved_at {
            Some(saved_at) => {
                let path = saved_at.path.clone();
                let lock = tokio::task::spawn_blocking(move || config::lock(&path))
                    .await
                    .map_err(|e| self.unexpected(format!("locking the credentials file: {e}")))?
                    .map_err(|e| self.unexpected(format!("{e:#}")))?;
                let theirs = config::load(&saved_at.path, Some(&saved_at.context))
                    .ok()
                    .flatten()
                    .and_then(|(_, context)| context.person)
                    .filter(|theirs| {
                        theirs.issuer == person.session.issuer
                            && theirs.refresh_token != person.session.refresh_token
                    });
                if let Some(theirs) = theirs {
                    person.session = theirs;
                    let fresh = person
                        .session
                        .expires_at
                        .is_none_or(|at| now + TOKEN_REFRESH_MARGIN.as_secs() < at);
                    if fresh {
                        return Ok(person.session.token.clone());
                    }
                }
                Some(lock)
            }
            None => None,
        };
        let answer =
            device::refresh(&self.http, &person.session)
                .await
                .map_err(|error| match error {
                    device::RefreshError::Refused(_) => ApiError::NotAuthorised(error.to_string()),
                    device::RefreshError::Unreachable { .. } => ApiError::Unreachable {
                        api: person.session.token_endpoint.clone(),
                        reason: error.to_string(),
                    },
                })?;
        let previous = person.session.refresh_token.clone();
        let session = &mut person.session;
        session.token = match (session.bearer.as_str(), answer.id_token) {
            ("id_token", Some(id_token)) => id_token,
            // The access token is not for the API: the sign-in cannot go on.
            ("id_token", None) => {
                return Err(ApiError::NotAuthorised(format!(
                    "the issuer {} refreshed the sign-in without an ID token; run ferry login again",
                    session.issuer
                )));
            }
            _ => answer.access_token,
        };
        session.refresh_token = answer.refresh_token.or(previous.clone());
        session.expires_at = answer.expires_in.map(|secs| now + secs);
        if let Some(saved_at) = &person.saved_at {
            // The new refresh token replaces the spent one; losing it would end the sign-in.
            config::save_session(saved_at, previous.as_deref(), session).map_err(|e| {
                self.unexpected(format!("cannot save the refreshed sign-in: {e:#}"))
            })?;
        }
        Ok(person.session.token.clone())
    }

    fn unexpected(&self, detail: String) -> ApiError {
        ApiError::Unexpected {
            api: self.api.clone(),
            detail,
        }
    }

    /// Forgets the token in use after the API refused it: the next request fetches or
    /// refreshes one. Whether a retry can help (the token was fetched or refreshable).
    async fn renewable(&self) -> bool {
        match &self.auth {
            Auth::Client { .. } => {
                *self.token.lock().await = None;
                true
            }
            Auth::Person(_) => self.person_token(true).await.is_ok(),
            Auth::Token(_) | Auth::None => false,
        }
    }

    /// Exchanges client credentials for a token (OAuth2 client-credentials grant): the token
    /// and its lifetime, when the answer gives one.
    async fn fetch_token(
        &self,
        id: &str,
        secret: &str,
    ) -> Result<(String, Option<Duration>), ApiError> {
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
        let answer: TokenResponse =
            serde_json::from_str(&body).map_err(|e| ApiError::Unexpected {
                api: self.api.clone(),
                detail: format!("the token endpoint {url} answered no token ({e})"),
            })?;
        Ok((
            answer.access_token,
            Some(Duration::from_secs(answer.expires_in)),
        ))
    }

    /// `GET path` (with `query`): the JSON body as a `T` (an API type of `ferry_api`).
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        self.call(Method::GET, path, query, None::<&()>).await
    }

    /// `POST path` with a JSON body: the JSON body as a `T`.
    pub(crate) async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.call(Method::POST, path, &[], Some(body)).await
    }

    /// `POST path` without a body: the JSON body as a `T`.
    pub(crate) async fn post_empty<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.call(Method::POST, path, &[], None::<&()>).await
    }

    /// `PUT path` with a JSON body.
    pub(crate) async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.call(Method::PUT, path, &[], Some(body)).await
    }

    /// `DELETE path`: the JSON body as a `T` (`()` to ignore it).
    pub(crate) async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.call(Method::DELETE, path, &[], None::<&()>).await
    }

    /// `DELETE path` with a JSON body (e.g. which member leaves a role).
    pub(crate) async fn delete_with<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.call(Method::DELETE, path, &[], Some(body)).await
    }

    /// One JSON request; a 401 with a fetched token fetches a new one and tries once more.
    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T, ApiError> {
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
            if status == 401 && !retried && self.renewable().await {
                retried = true;
                continue;
            }
            return self.read(path, response).await;
        }
    }

    /// Opens `GET path` as an event stream, resuming after `last_event_id`; a 401 with a
    /// fetched token (it expired or was replaced) fetches a new one and tries once more.
    pub(crate) async fn event_stream(
        &self,
        path: &str,
        last_event_id: Option<i64>,
    ) -> Result<Response, ApiError> {
        let mut retried = false;
        loop {
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
            let status = response.status().as_u16();
            if status == 401 && !retried && self.renewable().await {
                retried = true;
                continue;
            }
            let body = response.text().await.unwrap_or_default();
            return Err(ApiError::from_answer(status, &body));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    async fn authorised(&self, request: RequestBuilder) -> Result<RequestBuilder, ApiError> {
        let request = request.bearer_auth(self.token().await?);
        Ok(match &self.tenant {
            Some(tenant) => request.header("x-ferry-tenant", tenant),
            None => request,
        })
    }

    /// The HTTP client (for the issuer's endpoints during sign-in and sign-out).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A successful answer's JSON body as a `T` (an empty body reads as `null`), or the API's
    /// error.
    async fn read<T: DeserializeOwned>(
        &self,
        path: &str,
        response: Response,
    ) -> Result<T, ApiError> {
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| ApiError::unreachable(&self.api, &e))?;
        if !(200..300).contains(&status) {
            return Err(ApiError::from_answer(status, &body));
        }
        let body = if body.trim().is_empty() {
            "null"
        } else {
            &body
        };
        serde_json::from_str(body).map_err(|e| ApiError::Unexpected {
            api: self.api.clone(),
            detail: format!("the answer to {path} is not what this ferry expects ({e})"),
        })
    }
}
