//! The few REST calls the whole-system tests make directly (the `ferry` CLI makes the rest):
//! a client-credentials token, starting a deployment, deciding an approval, creating a
//! credential.

use crate::Credential;
use serde_json::{Value, json};
use std::path::Path;

/// A signed-in client of svc-api.
#[derive(Clone, Debug)]
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    /// Signs in with `credential` through `/oauth/token`.
    pub async fn sign_in(base: &str, credential: &Credential) -> Api {
        let http = reqwest::Client::new();
        let response: Value = http
            .post(format!("{base}/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&client_id={}&client_secret={}",
                form_encode(&credential.client_id),
                form_encode(&credential.client_secret)
            ))
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token response");
        let token = response["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {response}"))
            .to_string();
        Api {
            base: base.to_string(),
            token,
            http,
        }
    }

    /// The bearer token it signed in with.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// `POST /v1/deployments` with the deploy file at `file` and the manifests it names; returns
    /// the response's status and JSON.
    pub async fn start(&self, file: &Path, manifests: &[&str]) -> (u16, Value) {
        self.start_traced(file, manifests, None).await
    }

    /// [`Api::start`], sending `traceparent` (W3C trace context) when given.
    pub async fn start_traced(
        &self,
        file: &Path,
        manifests: &[&str],
        traceparent: Option<&str>,
    ) -> (u16, Value) {
        let dir = file.parent().expect("the deploy file's directory");
        let read = |p: &Path| std::fs::read_to_string(p).expect("read a file");
        let manifests: Vec<(String, String)> = manifests
            .iter()
            .map(|m| (m.to_string(), read(&dir.join(m))))
            .collect();
        let name = file.file_name().unwrap().to_string_lossy();
        self.start_content(&name, &read(file), &manifests, traceparent)
            .await
    }

    /// `POST /v1/deployments` with a deploy file named `name` holding `content`, and `manifests`
    /// (path, content); returns the response's status and JSON.
    pub async fn start_content(
        &self,
        name: &str,
        content: &str,
        manifests: &[(String, String)],
        traceparent: Option<&str>,
    ) -> (u16, Value) {
        let body = json!({
            "deployFile": {"name": name, "content": content},
            "manifests": manifests.iter().map(|(path, content)| json!({"path": path, "content": content})).collect::<Vec<_>>(),
        });
        let mut request = self
            .http
            .post(format!("{}/v1/deployments", self.base))
            .bearer_auth(&self.token)
            .json(&body);
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        let response = request.send().await.expect("request to svc-api");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Creates a machine credential named `name` with `roles` through `POST /v1/credentials`.
    pub async fn create_credential(&self, name: &str, roles: &[&str]) -> Credential {
        let (code, body) = self
            .post("/v1/credentials", json!({"name": name, "roles": roles}))
            .await;
        assert_eq!(code, 201, "create credential {name}: {body}");
        let field = |k: &str| body[k].as_str().unwrap_or_default().to_string();
        Credential {
            client_id: field("clientId"),
            client_secret: field("clientSecret"),
        }
    }

    /// Approves `target`'s pending approval of deployment `id`.
    pub async fn approve(&self, id: &str, target: &str) -> (u16, Value) {
        self.post(
            &format!("/v1/deployments/{id}/approve"),
            json!({"target": target}),
        )
        .await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("request to svc-api");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
