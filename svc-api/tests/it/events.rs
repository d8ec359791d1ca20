//! Server-sent events: events appended to the store arrive in order with their sequence
//! numbers as ids, a reconnect with `Last-Event-ID` resumes right after it, and the stream ends
//! once the deployment has ended and every event is sent.

use crate::support::{Options, TestApp, canary_request};
use ferry_store::deployments::{self, DeploymentStatus};
use ferry_store::events::{self, NewEvent};
use ferry_store::{DeploymentId, TenantId};
use openidconnect::reqwest;
use std::time::Duration;

/// One parsed server-sent event.
#[derive(Debug, PartialEq)]
struct Sse {
    id: String,
    kind: String,
    data: serde_json::Value,
}

/// Reads events from a `text/event-stream` response, skipping keep-alive comments.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    /// The next event, or `None` when the server ended the stream.
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (None, None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        kind = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if let (Some(id), Some(kind)) = (id, kind) {
                    let data = serde_json::from_str(&data).expect("JSON data");
                    return Some(Sse { id, kind, data });
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                .await
                .expect("an event or the end within 20 s")
                .expect("read the stream")?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

async fn open(app: &TestApp, id: &str, token: &str, last: Option<&str>) -> SseReader {
    let mut request = app
        .http
        .get(format!("{}/v1/deployments/{id}/events", app.base))
        .bearer_auth(token)
        .timeout(Duration::from_secs(60));
    if let Some(last) = last {
        request = request.header("last-event-id", last);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    SseReader {
        response,
        buffer: String::new(),
    }
}

async fn append(db: &ferry_testkit::TestDb, tenant: TenantId, id: DeploymentId, kind: &str) {
    let mut conn = db.pool.acquire().await.unwrap();
    events::append(
        &mut conn,
        tenant,
        id,
        &NewEvent {
            kind: kind.into(),
            target: Some("dev".into()),
            payload: serde_json::json!({ "what": kind }),
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn events_stream_in_order_resume_after_last_event_id_and_end_with_the_deployment() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (credential, token) = app.tenant_token(&["Deployer"]).await;
    let tenant = credential.tenant_id;
    let (status, body) = app
        .post("/v1/deployments", &token, &canary_request("sse", "reject"))
        .await;
    assert_eq!(status, 201, "{body}");
    let id_text = body["id"].as_str().unwrap().to_string();
    let id: DeploymentId = id_text.parse().unwrap();

    // Events written before and after the stream opens arrive in order.
    append(&db, tenant, id, "deployment.started").await;
    let mut stream = open(&app, &id_text, &token, None).await;
    append(&db, tenant, id, "step.started").await;
    append(&db, tenant, id, "step.succeeded").await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(stream.next().await.expect("an event"));
    }
    assert_eq!(
        got.iter()
            .map(|e| (e.id.as_str(), e.kind.as_str()))
            .collect::<Vec<_>>(),
        [
            ("1", "deployment.started"),
            ("2", "step.started"),
            ("3", "step.succeeded")
        ]
    );
    assert_eq!(got[1].data["payload"]["what"], "step.started");
    assert_eq!(got[1].data["target"], "dev");
    drop(stream);

    // A reconnect resumes after the last id it saw, including events written meanwhile.
    append(&db, tenant, id, "target.succeeded").await;
    let mut resumed = open(&app, &id_text, &token, Some("2")).await;
    let third = resumed.next().await.unwrap();
    let fourth = resumed.next().await.unwrap();
    assert_eq!((third.id.as_str(), fourth.id.as_str()), ("3", "4"));

    // The deployment ends: the last event is delivered, then the stream closes.
    let mut tx = db.pool.begin().await.unwrap();
    let current = deployments::load(&mut tx, tenant, id).await.unwrap();
    events::append(
        &mut tx,
        tenant,
        id,
        &NewEvent {
            kind: "deployment.succeeded".into(),
            target: None,
            payload: serde_json::json!({}),
        },
    )
    .await
    .unwrap();
    deployments::transition(
        &mut tx,
        tenant,
        id,
        current.version,
        DeploymentStatus::Succeeded,
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let last = resumed.next().await.expect("the final event");
    assert_eq!(
        (last.id.as_str(), last.kind.as_str()),
        ("5", "deployment.succeeded")
    );
    assert_eq!(resumed.next().await, None, "the stream ends");

    // A finished deployment's stream replays and ends at once.
    let mut replay = open(&app, &id_text, &token, Some("3")).await;
    assert_eq!(replay.next().await.unwrap().id, "4");
    assert_eq!(replay.next().await.unwrap().id, "5");
    assert_eq!(replay.next().await, None);

    let (status, body, _) = app
        .send(
            reqwest::Method::GET,
            &format!("/v1/deployments/{id_text}/events"),
            Some(&token),
            None,
        )
        .await;
    // Full replay of an ended deployment is a complete (ended) body.
    assert_eq!(status, 200, "{body}");
    let bad = app
        .http
        .get(format!("{}/v1/deployments/{id_text}/events", app.base))
        .bearer_auth(&token)
        .header("last-event-id", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    app.stop().await.unwrap();
}
