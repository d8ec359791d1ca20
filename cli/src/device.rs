//! The OAuth side of a person's sign-in: which issuers the API accepts people from
//! (`/.well-known/ferry-sign-in`), the issuer's discovery document, the device authorization
//! grant (RFC 8628: request a code, show it, poll the token endpoint honouring `interval`,
//! `slow_down`, `authorization_pending`, `access_denied` and `expired_token`, within a
//! deadline), the refresh-token grant, and revocation (RFC 7009).

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::config::PersonSession;

/// The device-code grant type.
pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// What `slow_down` adds to the interval (RFC 8628 §3.5).
const SLOW_DOWN: Duration = Duration::from_secs(5);
/// The interval when the issuer names none (RFC 8628 §3.2).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The longest a sign-in may wait for the person, whatever the issuer says.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Largest answer read from an issuer.
const MAX_ANSWER: usize = 64 * 1024;

/// `/.well-known/ferry-sign-in` of the API.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignInDocument {
    /// The format's version (1).
    pub version: u32,
    /// The issuers people may sign in with, the preferred first.
    pub issuers: Vec<SignInIssuer>,
}

/// One issuer the API accepts people's tokens of.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignInIssuer {
    /// The issuer URL.
    pub issuer: String,
    /// `external` or `local`.
    pub kind: String,
    /// The CLI's client id there.
    pub client_id: String,
    /// `access_token` or `id_token`: which token the API takes.
    pub bearer: String,
}

/// The parts of an issuer's discovery document the CLI uses.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct IssuerMetadata {
    /// The issuer URL it names.
    pub issuer: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The device authorization endpoint, when the issuer offers the device flow.
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    /// The revocation endpoint, when the issuer offers one.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
}

/// The device authorization answer (RFC 8628 §3.2).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct DeviceStart {
    /// The code the CLI polls with.
    pub device_code: String,
    /// The code the person types.
    pub user_code: String,
    /// Where the person goes.
    pub verification_uri: String,
    /// The same with the code filled in.
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    /// Seconds the codes live.
    pub expires_in: u64,
    /// Seconds between polls.
    #[serde(default)]
    pub interval: Option<u64>,
}

/// A successful token answer.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct TokenAnswer {
    /// The access token.
    pub access_token: String,
    /// An ID token (OIDC issuers).
    #[serde(default)]
    pub id_token: Option<String>,
    /// A refresh token, when the issuer gives one.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Seconds the access token lives.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// An OAuth error answer (RFC 6749 §5.2).
#[derive(Debug, Deserialize)]
struct ErrorAnswer {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Reads `response` as JSON of `T`, or says what the issuer refused.
async fn read<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    what: &str,
) -> anyhow::Result<Result<T, (String, String)>> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .with_context(|| format!("reading the answer of {what}"))?;
    if bytes.len() > MAX_ANSWER {
        bail!("{what} answered more than {MAX_ANSWER} bytes");
    }
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map(Ok)
            .with_context(|| format!("{what} answered {status} with an unexpected body"));
    }
    match serde_json::from_slice::<ErrorAnswer>(&bytes) {
        Ok(error) => Ok(Err((
            error.error,
            error.error_description.unwrap_or_default(),
        ))),
        Err(_) => bail!(
            "{what} answered {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        ),
    }
}

/// The issuers the API at `api` accepts people from.
pub(crate) async fn sign_in_document(
    http: &reqwest::Client,
    api: &str,
) -> anyhow::Result<SignInDocument> {
    let url = format!("{api}/.well-known/ferry-sign-in");
    let response = http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("cannot reach the Ferry API at {api}"))?;
    let document: SignInDocument = read(response, &url)
        .await?
        .map_err(|(code, text)| anyhow::anyhow!("{url} refused: {code} {text}"))?;
    if document.version != 1 {
        bail!(
            "{url} is of version {}, which this ferry does not know: update ferry",
            document.version
        );
    }
    Ok(document)
}

/// The discovery document of `issuer`, which must name itself.
pub(crate) async fn discover(
    http: &reqwest::Client,
    issuer: &str,
) -> anyhow::Result<IssuerMetadata> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let response = http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("cannot reach the sign-in issuer at {url}"))?;
    let metadata: IssuerMetadata = read(response, &url)
        .await?
        .map_err(|(code, text)| anyhow::anyhow!("{url} refused: {code} {text}"))?;
    if metadata.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        bail!(
            "{url} names another issuer ({}) than {issuer}",
            metadata.issuer
        );
    }
    Ok(metadata)
}

/// Asks for a device code.
pub(crate) async fn start(
    http: &reqwest::Client,
    metadata: &IssuerMetadata,
    client_id: &str,
    scope: &str,
) -> anyhow::Result<DeviceStart> {
    let Some(endpoint) = &metadata.device_authorization_endpoint else {
        bail!(
            "the sign-in issuer {} does not offer the device flow (no device_authorization_endpoint)",
            metadata.issuer
        );
    };
    let response = http
        .post(endpoint)
        .form(&[("client_id", client_id), ("scope", scope)])
        .send()
        .await
        .with_context(|| format!("cannot reach {endpoint}"))?;
    read(response, endpoint)
        .await?
        .map_err(|(code, text)| anyhow::anyhow!("{endpoint} refused the sign-in: {code}: {text}"))
}

/// What one poll found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Poll {
    /// Keep polling, at this interval.
    Wait(Duration),
    /// The person decided no, or the code died.
    Failed(String),
}

/// The next step after a poll's error answer `code` at `interval` (RFC 8628 §3.5).
pub(crate) fn next_step(code: &str, description: &str, interval: Duration) -> Poll {
    match code {
        "authorization_pending" => Poll::Wait(interval),
        "slow_down" => Poll::Wait(interval + SLOW_DOWN),
        "access_denied" => Poll::Failed("the sign-in was denied".into()),
        "expired_token" => {
            Poll::Failed("the code expired before it was approved; run ferry login again".into())
        }
        other => Poll::Failed(format!(
            "the issuer refused the sign-in: {other}: {description}"
        )),
    }
}

/// Polls the token endpoint until the person decides, the codes expire, or `MAX_WAIT` passes.
pub(crate) async fn wait_for_tokens(
    http: &reqwest::Client,
    metadata: &IssuerMetadata,
    client_id: &str,
    device: &DeviceStart,
) -> anyhow::Result<TokenAnswer> {
    let lifetime = Duration::from_secs(device.expires_in).min(MAX_WAIT);
    let deadline = Instant::now() + lifetime;
    let mut interval = device
        .interval
        .map_or(DEFAULT_INTERVAL, Duration::from_secs)
        .max(Duration::from_secs(1));
    loop {
        if Instant::now() + interval > deadline {
            bail!(
                "nobody approved the sign-in within {} s; run ferry login again",
                lifetime.as_secs()
            );
        }
        // The protocol's pace: the issuer asks for at least `interval` between polls.
        tokio::time::sleep(interval).await;
        let response = http
            .post(&metadata.token_endpoint)
            .form(&[
                ("grant_type", DEVICE_CODE_GRANT),
                ("device_code", device.device_code.as_str()),
                ("client_id", client_id),
            ])
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            // A dropped connection is retried at the next interval, within the deadline.
            Err(error) if error.is_timeout() || error.is_connect() => continue,
            Err(error) => {
                return Err(error).context(format!("polling {}", metadata.token_endpoint));
            }
        };
        match read::<TokenAnswer>(response, &metadata.token_endpoint).await? {
            Ok(tokens) => return Ok(tokens),
            Err((code, description)) => match next_step(&code, &description, interval) {
                Poll::Wait(next) => interval = next,
                Poll::Failed(why) => bail!("{why}"),
            },
        }
    }
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RefreshError {
    /// The issuer refused the refresh token: the person must sign in again.
    #[error("the sign-in has ended ({0}); run ferry login again")]
    Refused(String),
    /// The issuer could not be asked.
    #[error("cannot refresh the sign-in at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
}

/// Trades the session's refresh token for new tokens (the refresh-token grant).
pub(crate) async fn refresh(
    http: &reqwest::Client,
    session: &PersonSession,
) -> Result<TokenAnswer, RefreshError> {
    let endpoint = &session.token_endpoint;
    let unreachable = |reason: String| RefreshError::Unreachable {
        endpoint: endpoint.clone(),
        reason,
    };
    let Some(refresh_token) = &session.refresh_token else {
        return Err(RefreshError::Refused(
            "the issuer gave no refresh token".into(),
        ));
    };
    let response = http
        .post(endpoint)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
            ("client_id", session.client_id.as_str()),
        ])
        .send()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    match read::<TokenAnswer>(response, endpoint).await {
        Ok(Ok(tokens)) => Ok(tokens),
        Ok(Err((code, description))) => {
            Err(RefreshError::Refused(format!("{code}: {description}")))
        }
        Err(error) => Err(unreachable(format!("{error:#}"))),
    }
}

/// Revokes the session's refresh token at the issuer, when it offers revocation.
pub(crate) async fn revoke(
    http: &reqwest::Client,
    session: &PersonSession,
) -> anyhow::Result<bool> {
    let (Some(endpoint), Some(token)) = (&session.revocation_endpoint, &session.refresh_token)
    else {
        return Ok(false);
    };
    let response = http
        .post(endpoint)
        .form(&[
            ("token", token.as_str()),
            ("token_type_hint", "refresh_token"),
            ("client_id", session.client_id.as_str()),
        ])
        .send()
        .await
        .with_context(|| format!("cannot reach {endpoint}"))?;
    if !response.status().is_success() {
        bail!(
            "{endpoint} answered {} to the revocation",
            response.status()
        );
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_follows_rfc_8628() {
        let five = Duration::from_secs(5);
        assert_eq!(
            next_step("authorization_pending", "", five),
            Poll::Wait(five)
        );
        assert_eq!(
            next_step("slow_down", "", five),
            Poll::Wait(Duration::from_secs(10))
        );
        assert!(
            matches!(next_step("access_denied", "", five), Poll::Failed(m) if m.contains("denied"))
        );
        assert!(
            matches!(next_step("expired_token", "", five), Poll::Failed(m) if m.contains("expired"))
        );
        assert!(
            matches!(next_step("invalid_grant", "gone", five), Poll::Failed(m) if m.contains("gone"))
        );
    }
}
