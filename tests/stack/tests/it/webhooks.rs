//! Webhooks through the whole system: a `beforeDeployment` webhook sent through the cluster's
//! agent to a receiver in its "private network" (the tenant allows no private address, so
//! svc-webhook could not reach it directly), which calls back with the callback URI it was
//! given; the deployment goes on, and the API shows the call and the callback's Markdown
//! message.

use crate::app;
use ferry_stack_tests::{Cluster, Stack, StackOptions};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLUSTERS: [Cluster; 1] = [Cluster {
    account: "prod-cluster",
    namespaces: &["hello-prod"],
}];

const DEPLOY_FILE: &str = r#"version: v1
kind: kubernetes
application: hello-stack
targets:
  prod:
    account: prod-cluster
    namespace: hello-prod
    constraints:
      beforeDeployment:
        - runWebhook:
            name: security-scan
manifests:
  - path: manifests/app.yaml
webhooks:
  - name: security-scan
    method: POST
    uriTemplate: RECEIVER/scan?app={{armory.applicationName}}
    networkMode: remoteNetworkAgent
    agentIdentifier: prod-cluster
    retryCount: 2
    headers:
      - key: Content-Type
        value: application/json
    bodyTemplate:
      inline: '{"callbackUri": "{{armory.callbackUri}}", "env": "{{armory.environmentName}}"}'
"#;

/// A scanner in the private network: reads one request, answers 202, then calls back with the
/// URI it was given (as the scanner's own job would), using a token of the tenant.
async fn scanner(
    api: String,
    client_id: String,
    secret: String,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut raw = Vec::new();
            let mut buf = [0u8; 8192];
            let body = loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => raw.extend_from_slice(&buf[..n]),
                }
                let text = String::from_utf8_lossy(&raw).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break Some((head.to_string(), body.to_string()));
                    }
                }
            };
            let Some((head, body)) = body else { continue };
            let _ = socket
                .write_all(
                    b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            record.lock().unwrap().push(format!("{head}\n\n{body}"));
            let callback: serde_json::Value = serde_json::from_str(&body).unwrap();
            let callback = callback["callbackUri"].as_str().unwrap().to_string();
            let (api, id, secret) = (api.clone(), client_id.clone(), secret.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let token = token(&http, &api, &id, &secret).await;
                let answer = http
                    .post(format!("{callback}/callback"))
                    .bearer_auth(token)
                    .json(&serde_json::json!({"success": true, "mdMessage": "**0** critical findings"}))
                    .send().await.unwrap();
                assert_eq!(answer.status().as_u16(), 202);
            });
        }
    });
    (url, seen)
}

#[tokio::test]
async fn a_webhook_through_the_agent_reaches_a_private_receiver_that_calls_back() {
    let mut stack = Stack::start(StackOptions {
        clusters: CLUSTERS.to_vec(),
        hubs: 1,
        schedulers: 1,
        pod_ready_delay: Duration::from_millis(200),
        scheduler_tick_secs: 1,
    })
    .await;
    stack.start_webhook(&[]).await;
    let (url, seen) = scanner(
        stack.api_url.clone(),
        stack.admin.client_id.clone(),
        stack.admin.client_secret.clone(),
    )
    .await;
    let file = app::write_with(&stack, "1.0.0", &DEPLOY_FILE.replace("RECEIVER", &url));
    let out = stack
        .ferry(&[
            "deploy",
            "start",
            "-f",
            &file.to_string_lossy(),
            "--watch",
            "-o",
            "json",
        ])
        .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        stack.logs()
    );
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].starts_with("POST /scan?app=hello-stack HTTP/1.1"),
        "{}",
        requests[0]
    );
    assert!(
        requests[0]
            .to_ascii_lowercase()
            .contains("ferry-delivery-id: "),
        "{}",
        requests[0]
    );
    assert!(requests[0].contains(r#""env": "prod""#), "{}", requests[0]);

    // The API shows the call and the callback's message.
    let id: String = sqlx_free_id(&stack).await;
    let out = stack.ferry(&["deploy", "status", &id, "-o", "json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let http = reqwest::Client::new();
    let bearer = token(
        &http,
        &stack.api_url,
        &stack.admin.client_id,
        &stack.admin.client_secret,
    )
    .await;
    let runs: serde_json::Value = http
        .get(format!("{}/v1/deployments/{id}/webhooks", stack.api_url))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run = &runs["items"][0];
    assert_eq!(run["name"], "security-scan");
    assert_eq!(run["status"], "delivered", "{runs}");
    assert_eq!(run["callback"]["md_message"], "**0** critical findings");
    let text = stack.ferry(&["deploy", "status", &id]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("**0** critical findings"), "{text}");
}

/// An API token of a client credential.
async fn token(http: &reqwest::Client, api: &str, id: &str, secret: &str) -> String {
    let answer: serde_json::Value = http
        .post(format!("{api}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={id}&client_secret={secret}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_string()
}

/// The id of the stack's only deployment.
async fn sqlx_free_id(stack: &Stack) -> String {
    let out = stack.ferry(&["deploy", "list", "-o", "json"]).await;
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    page["items"][0]["id"].as_str().unwrap().to_string()
}
