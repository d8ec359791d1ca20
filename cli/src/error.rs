//! What can go wrong talking to the Ferry API, each with the one-line message the user sees:
//! the API cannot be reached, not logged in or not authorised, not found, the application is
//! busy (exit code 3; see [`crate::exit`] for every code), the deploy file is invalid (every error with its position), or the API
//! refused the request for another reason. Answers are read from `application/problem+json`
//! (svc-api's `detail`, `code`, `errors`, `running`) or OAuth2's `error_description`.

use ferry_api::problem::Problem;
use ferry_deploy::Diagnostic;
use serde_json::Value;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// No connection (refused, unknown host, timed out, TLS).
    #[error("cannot reach the Ferry API at {api}: {reason}")]
    Unreachable {
        /// The API's base URL.
        api: String,
        /// What the network layer said, in a few words.
        reason: String,
    },
    /// No token and no client credentials anywhere.
    #[error(
        "not logged in: run `ferry login --api URL` to sign in as a person (in a browser), or `ferry login --api URL --client-id ID --client-secret SECRET` for a machine; or set FERRY_TOKEN, or FERRY_CLIENT_ID and FERRY_CLIENT_SECRET"
    )]
    NotLoggedIn,
    /// 401 or 403.
    #[error("not authorised: {0}")]
    NotAuthorised(String),
    /// 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// 409 `deployment_in_progress`: another deployment of the application holds its slot.
    #[error(
        "application busy: deployment {running} is in progress (follow it with `ferry deploy status {running} --watch`)"
    )]
    Busy {
        /// The running deployment's id.
        running: String,
    },
    /// 422 `invalid_deploy_file`: every problem, positioned.
    #[error("the deploy file has {} error(s)", .0.len())]
    InvalidDeployFile(Vec<Diagnostic>),
    /// Any other refusal (400, 409, 413, 422, 429, 5xx).
    #[error("the Ferry API refused the request (HTTP {status}): {detail}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The API's explanation.
        detail: String,
    },
    /// A success whose body is not what this CLI expects (a different API version?).
    #[error("unexpected answer from the Ferry API at {api}: {detail}")]
    Unexpected {
        /// The API's base URL.
        api: String,
        /// What was wrong.
        detail: String,
    },
}

impl ApiError {
    /// The process exit code this error ends the CLI with.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            ApiError::Busy { .. } => crate::exit::BUSY,
            ApiError::NotLoggedIn | ApiError::NotAuthorised(_) => crate::exit::AUTH,
            ApiError::Unreachable { .. } => crate::exit::UNREACHABLE,
            _ => crate::exit::USAGE,
        }
    }

    /// Classifies an unsuccessful answer: `status` and the body's text.
    pub(crate) fn from_answer(status: u16, body: &str) -> ApiError {
        // A problem document (every /v1 error), else OAuth2's error (the token endpoint) or
        // text from something in between (a proxy).
        let problem = serde_json::from_str::<Problem>(body).ok();
        let detail = match &problem {
            Some(p) if !p.detail.is_empty() => p.detail.clone(),
            _ => detail(status, body),
        };
        let Some(problem) = problem else {
            return match status {
                401 | 403 => ApiError::NotAuthorised(detail),
                404 => ApiError::NotFound(detail),
                _ => ApiError::Refused { status, detail },
            };
        };
        match (status, problem.code.as_str()) {
            (401 | 403, _) => ApiError::NotAuthorised(detail),
            (404, _) => ApiError::NotFound(detail),
            (409, "deployment_in_progress") => ApiError::Busy {
                running: problem
                    .running
                    .map_or_else(|| "(unknown)".into(), |id| id.to_string()),
            },
            (422, "invalid_deploy_file") => match problem.errors {
                Some(errors) if !errors.is_empty() => ApiError::InvalidDeployFile(errors),
                _ => ApiError::Refused { status, detail },
            },
            _ => ApiError::Refused { status, detail },
        }
    }

    /// Classifies a failure to get any answer.
    pub(crate) fn unreachable(api: &str, error: &reqwest::Error) -> ApiError {
        ApiError::Unreachable {
            api: api.to_string(),
            reason: network_reason(error),
        }
    }
}

/// The human part of an error body that is not a problem document: OAuth2's
/// `error_description`, or the start of the text.
fn detail(status: u16, body: &str) -> String {
    let oauth = serde_json::from_str::<Value>(body).ok();
    if let Some(d) = oauth
        .as_ref()
        .and_then(|o| o["error_description"].as_str())
        .filter(|d| !d.is_empty())
    {
        return d.to_string();
    }
    let text = body.trim();
    if text.is_empty() {
        return reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no explanation given")
            .to_lowercase();
    }
    let mut short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short.replace('\n', " ")
}

/// A few words on why no answer came: "connection refused", "timed out", the innermost cause.
fn network_reason(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out waiting for an answer".into();
    }
    let mut innermost: &dyn std::error::Error = error;
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
                std::io::ErrorKind::ConnectionReset => return "connection reset".into(),
                std::io::ErrorKind::TimedOut => return "timed out".into(),
                _ => {}
            }
        }
        innermost = s;
        source = s.source();
    }
    let text = innermost.to_string();
    if text.contains("dns error") || text.contains("failed to lookup address") {
        return format!("cannot resolve the host ({text})");
    }
    text
}

#[cfg(test)]
mod tests {
    use ferry_api::DeploymentId;

    use super::*;

    /// A problem document as svc-api writes it.
    fn problem(status: u16, code: &str, detail: &str) -> Problem {
        Problem {
            kind: format!("urn:ferry:problem:{code}"),
            title: "A title".into(),
            status,
            detail: detail.into(),
            code: code.into(),
            request_id: Some("req-1".into()),
            errors: None,
            running: None,
        }
    }

    fn answer(problem: &Problem) -> ApiError {
        ApiError::from_answer(problem.status, &serde_json::to_string(problem).unwrap())
    }

    #[test]
    fn problems_become_one_line_messages() {
        let e = answer(&problem(401, "unauthorized", "token expired"));
        assert_eq!(e.to_string(), "not authorised: token expired");
        assert_eq!(e.exit_code(), 7);
        // The token endpoint answers OAuth2's errors, not problem documents.
        let e = ApiError::from_answer(
            401,
            r#"{"error":"invalid_client","error_description":"client authentication failed"}"#,
        );
        assert_eq!(
            e.to_string(),
            "not authorised: client authentication failed"
        );
        let e = ApiError::from_answer(404, "");
        assert_eq!(e.to_string(), "not found: not found");
        let e = ApiError::from_answer(502, "<html>\nbad gateway</html>");
        assert_eq!(
            e.to_string(),
            "the Ferry API refused the request (HTTP 502): <html> bad gateway</html>"
        );
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn busy_names_the_running_deployment_and_exits_3() {
        let running = DeploymentId::new();
        let e = answer(&Problem {
            running: Some(running),
            ..problem(409, "deployment_in_progress", "application busy")
        });
        assert_eq!(e.exit_code(), 3);
        assert!(
            e.to_string()
                .contains(&format!("deployment {running} is in progress")),
            "{e}"
        );
        let e = answer(&problem(409, "conflict", "already ended"));
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().ends_with("(HTTP 409): already ended"), "{e}");
    }

    #[test]
    fn invalid_deploy_files_keep_every_positioned_error() {
        let errors: Vec<Diagnostic> = serde_json::from_str(
            r#"[{"file":"deploy.yml","line":9,"column":15,"path":"targets.prod.strategy","message":"unknown strategy \"canery\"","suggestion":"canary"},
            {"file":"manifests/app.yaml","line":2,"column":1,"path":"syntax","message":"bad","suggestion":null}]"#,
        )
        .unwrap();
        let body = Problem {
            errors: Some(errors),
            ..problem(422, "invalid_deploy_file", "the deploy file has 2 error(s)")
        };
        let ApiError::InvalidDeployFile(errors) = answer(&body) else {
            panic!("not classified as an invalid deploy file");
        };
        assert_eq!(errors.len(), 2);
        assert_eq!(
            errors[0].to_string(),
            "deploy.yml:9:15: targets.prod.strategy: unknown strategy \"canery\"; did you mean \"canary\"?"
        );
    }
}
