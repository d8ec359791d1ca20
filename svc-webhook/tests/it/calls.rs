//! Webhook calls against local receivers: what is sent (secrets opened, the delivery id), which
//! answers are retried and which are final, timeouts, redirects through the network guard, the
//! callback side, and idempotency when requests are redelivered or a replica dies mid-send.

use crate::receiver::{Receiver, Reply};
use crate::support::{Bench, Options, WAIT, post};
use ferry_bus::messages::NetworkMode;
use ferry_store::callbacks::{self, NewCallback};
use ferry_store::webhooks::{self, DeliveryStatus};
use ferry_testkit::eventually;
use std::time::Duration;

#[tokio::test]
async fn a_2xx_succeeds_with_secrets_opened_at_send_time_and_a_delivery_id() {
    let bench = Bench::new().await;
    bench.allow(&["127.0.0.1/32"]).await;
    bench.secret("ci_token", "s3cr3t-value").await;
    let receiver = Receiver::start(vec![]).await;
    let worker = bench.start_worker();
    let mut call = post(
        &receiver.url("/hooks/smoke?token={{secrets.ci_token}}"),
        r#"{"app":"hello","token":"{{ secrets.ci_token }}"}"#,
        0,
    );
    call.headers = vec![("Authorization".into(), "Bearer {{secrets.ci_token}}".into())];
    let request = bench.request(call).await;
    let done = bench.wait_done(request.webhook_id).await;
    assert_eq!(done.status, DeliveryStatus::Succeeded);
    assert_eq!(done.attempts, 1);
    assert_eq!(done.last_status, Some(200));
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hooks/smoke?token=s3cr3t-value");
    assert_eq!(r.header("authorization"), Some("Bearer s3cr3t-value"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("ferry-delivery-id"),
        Some(request.webhook_id.to_string().as_str())
    );
    assert_eq!(r.header("ferry-attempt"), Some("1"));
    assert_eq!(&r.body[..], br#"{"app":"hello","token":"s3cr3t-value"}"#);
    let completed = bench.completions(request.webhook_id).await;
    assert_eq!(completed.len(), 1);
    assert!(completed[0].success);
    assert_eq!(completed[0].step_index, Some(2));
    assert_eq!(completed[0].target.as_deref(), Some("prod"));
    // The secret is nowhere in the database: not in the delivery, the outbox or a reason.
    let dump: Vec<(String,)> = sqlx::query_as(
        "SELECT row_to_json(d)::text FROM webhook_deliveries d
         UNION ALL SELECT convert_from(payload, 'UTF8') FROM outbox",
    )
    .fetch_all(&bench.db.pool)
    .await
    .unwrap();
    assert!(
        dump.iter().all(|(t,)| !t.contains("s3cr3t-value")),
        "{dump:?}"
    );
    // What the worker's /metrics shows: one 2xx attempt sent directly, one succeeded delivery
    // with its end-to-end time, the request taken off the bus.
    let webhook = r#"kind="webhook""#;
    assert_eq!(
        worker.metric(&format!(
            r#"ferry_webhook_attempts_total{{answer="2xx",{webhook}}}"#
        )),
        Some(1.0)
    );
    assert_eq!(
        worker.metric(&format!(
            r#"ferry_webhook_send_seconds_count{{{webhook},mode="direct"}}"#
        )),
        Some(1.0)
    );
    let succeeded = format!(r#"{{{webhook},status="succeeded"}}"#);
    assert_eq!(
        worker.metric(&format!("ferry_webhook_deliveries_total{succeeded}")),
        Some(1.0)
    );
    let took = worker
        .metric(&format!(
            "ferry_webhook_delivery_duration_seconds_sum{succeeded}"
        ))
        .unwrap();
    assert!((0.0..30.0).contains(&took), "{took}");
    assert_eq!(
        worker.metric(
            r#"ferry_bus_handle_duration_seconds_count{kind="webhook.requested.v1",queue="webhook"}"#
        ),
        Some(1.0)
    );
    worker.stop().await;
}

#[tokio::test]
async fn a_4xx_fails_at_once_and_5xx_or_429_are_retried_honouring_retry_after() {
    let bench = Bench::new().await;
    bench.allow(&["127.0.0.1/32"]).await;
    let worker = bench.start_worker();

    let refusing = Receiver::start(vec![Reply::status(404, "no such hook")]).await;
    let request = bench.request(post(&refusing.url("/x"), "{}", 3)).await;
    let done = bench.wait_done(request.webhook_id).await;
    assert_eq!(done.status, DeliveryStatus::Failed);
    assert_eq!(done.attempts, 1, "a 4xx is not retried");
    let reason = "HTTP 404 from 127.0.0.1: no such hook";
    assert_eq!(done.reason.as_deref(), Some(reason));
    let completed = bench.completions(request.webhook_id).await;
    assert_eq!(completed.len(), 1);
    assert!(!completed[0].success);
    assert_eq!(completed[0].reason.as_deref(), Some(reason));

    let flaky = Receiver::start(vec![
        Reply::status(503, "busy"),
        Reply::status(429, "slow down").header("retry-after", "1"),
    ])
    .await;
    let request = bench.request(post(&flaky.url("/y"), "{}", 2)).await;
    let done = bench.wait_done(request.webhook_id).await;
    assert_eq!(done.status, DeliveryStatus::Succeeded, "{:?}", done.reason);
    assert_eq!(done.attempts, 3);
    let got = flaky.received();
    assert_eq!(got.len(), 3);
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.header("ferry-delivery-id").unwrap().to_string())
        .collect();
    assert!(
        ids.iter().all(|i| *i == request.webhook_id.to_string()),
        "one id for every attempt"
    );
    let attempts: Vec<_> = got
        .iter()
        .map(|r| r.header("ferry-attempt").unwrap().to_string())
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    // The third attempt came no sooner than the Retry-After of the second answer.
    let history = sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>(
        "SELECT completed_at FROM webhook_deliveries WHERE id = $1",
    )
    .bind(request.webhook_id)
    .fetch_one(&bench.db.pool)
    .await
    .unwrap();
    assert!(history > done.created_at + chrono::Duration::milliseconds(1000));

    let down = Receiver::start(vec![Reply::status(500, "a"), Reply::status(502, "b")]).await;
    let request = bench.request(post(&down.url("/z"), "{}", 1)).await;
    let done = bench.wait_done(request.webhook_id).await;
    assert_eq!(done.status, DeliveryStatus::Failed);
    assert_eq!(
        done.reason.as_deref(),
        Some("failed after 2 attempts: HTTP 502 from 127.0.0.1: b")
    );
    worker.stop().await;
}

#[tokio::test]
async fn a_slow_receiver_times_out_and_a_closed_port_is_a_connection_error() {
    let bench = Bench::new().await;
    bench.allow(&["127.0.0.1/32"]).await;
    let worker = bench.start_worker_with(Options {
        attempt_timeout: Duration::from_secs(1),
        ..Options::default()
    });
    let slow = Receiver::start(vec![
        Reply::status(200, "late").after(Duration::from_secs(30)),
    ])
    .await;
    let request = bench.request(post(&slow.url("/slow"), "{}", 0)).await;
    let done = bench.wait_done(request.webhook_id).await;
    assert_eq!(done.status, DeliveryStatus::Failed);
    assert_eq!(
        done.reason.as_deref(),
        Some("no answer from 127.0.0.1 within 1 s")
    );

    let closed = ferry_testkit::process::CLOSED_PORT;
    let request = bench
        .request(post(&format!("http://127.0.0.1:{closed}/gone"), "{}", 1))
        .await;
    let done = bench.wait_done(request.webhook_id).await;
    assert_eq!(done.status, DeliveryStatus::Failed);
    assert_eq!(done.attempts, 2, "connection errors are retried");
    let reason = done.reason.unwrap();
    assert!(
        reason.starts_with("failed after 2 attempts: cannot reach 127.0.0.1: "),
        "{reason}"
    );
    worker.stop().await;
}

#[tokio::test]
async fn the_network_guard_refuses_private_addresses_and_redirects_to_them() {
    let bench = Bench::new().await;
    let worker = bench.start_worker();
    let receiver = Receiver::start(vec![]).await;

    // Loopback is refused until the tenant allows it.
    let request = bench.request(post(&receiver.url("/a"), "{}", 3)).await;
    let done = bench.wait_done(request.webhook_id).await;
    assert_eq!(done.status, DeliveryStatus::Failed);
    assert_eq!(done.attempts, 1, "a refusal is not retried");
    assert_eq!(
        done.reason.as_deref(),
        Some("refused: 127.0.0.1 resolves to 127.0.0.1, a loopback address")
    );
    let request = bench.request(post("http://localhost:1/a", "{}", 0)).await;
    let done = bench.wait_done(request.webhook_id).await;
    assert!(
        done.reason
            .as_deref()
            .unwrap()
            .starts_with("refused: localhost resolves to "),
        "{:?}",
        done.reason
    );

    // Allowed, the receiver is reached, but a redirect to an address outside what is allowed is
    // refused at that hop: the metadata service, and another loopback address.
    bench.allow(&["127.0.0.1/32"]).await;
    for (location, refused) in [
        (
            "http://169.254.169.254/latest/meta-data/",
            "refused: 169.254.169.254 resolves to 169.254.169.254, a cloud metadata address",
        ),
        (
            "http://127.0.0.2:9/x",
            "refused: 127.0.0.2 resolves to 127.0.0.2, a loopback address",
        ),
        (
            "http://[::ffff:10.0.0.1]/x",
            "refused: [::ffff:a00:1] resolves to ::ffff:10.0.0.1, a private address",
        ),
    ] {
        let redirecting =
            Receiver::start(vec![Reply::status(307, "").header("location", location)]).await;
        // The tenant's policy is cached briefly; wait until the allowed receiver is reached.
        let done = eventually("the allow-list applies", WAIT, || async {
            let request = bench.request(post(&redirecting.url("/r"), "{}", 0)).await;
            let done = bench.wait_done(request.webhook_id).await;
            (!redirecting.received().is_empty()).then_some(done)
        })
        .await;
        assert_eq!(done.status, DeliveryStatus::Failed);
        assert_eq!(done.reason.as_deref(), Some(refused));
    }
    // An allowed redirect is followed, the method and body kept on 307.
    let target = Receiver::start(vec![]).await;
    let hop = Receiver::start(vec![
        Reply::status(307, "").header("location", target.url("/final")),
    ])
    .await;
    let request = bench
        .request(post(&hop.url("/start"), "{\"k\":1}", 0))
        .await;
    let done = bench.wait_done(request.webhook_id).await;
    assert_eq!(done.status, DeliveryStatus::Succeeded, "{:?}", done.reason);
    let got = target.received();
    assert_eq!(
        (got[0].method.as_str(), got[0].path.as_str()),
        ("POST", "/final")
    );
    assert_eq!(&got[0].body[..], b"{\"k\":1}");
    worker.stop().await;
}

#[tokio::test]
async fn a_call_waiting_for_a_callback_is_delivered_and_a_failed_one_closes_its_callback() {
    let bench = Bench::new().await;
    bench.allow(&["127.0.0.1/32"]).await;
    let worker = bench.start_worker();
    let receiver = Receiver::start(vec![
        Reply::status(202, "accepted"),
        Reply::status(400, "bad"),
    ])
    .await;
    let new_callback = |token: &str| NewCallback {
        target: Some("prod".into()),
        webhook_name: "smoke".into(),
        token_hash: callbacks::token_hash(token),
        expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
    };
    let mut results = Vec::new();
    for token in ["t1", "t2"] {
        let mut tx = bench.store.begin().await.unwrap();
        let row = callbacks::create(
            &mut tx,
            bench.tenant,
            bench.deployment,
            &new_callback(token),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let mut call = post(&receiver.url("/cb"), "{}", 0);
        call.callback_uri = Some(format!("http://api/v1/deployments/x/webhooks/{token}"));
        bench.request_with_id(call, row.id).await;
        results.push((row.id, bench.wait_done(row.id).await));
    }
    let (delivered, d) = &results[0];
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(d.reason.as_deref(), Some("HTTP 202 from 127.0.0.1"));
    assert!(
        bench.completions(*delivered).await.is_empty(),
        "the callback reports it"
    );
    assert!(
        callbacks::get(&bench.store, bench.tenant, *delivered)
            .await
            .unwrap()
            .used_at
            .is_none()
    );

    let (failed, d) = &results[1];
    assert_eq!(d.status, DeliveryStatus::Failed);
    let completed = bench.completions(*failed).await;
    assert_eq!(completed.len(), 1);
    assert!(!completed[0].success);
    let closed = callbacks::get(&bench.store, bench.tenant, *failed)
        .await
        .unwrap();
    assert!(
        closed.used_at.is_some(),
        "a late callback cannot report a failed call"
    );
    let mut tx = bench.store.begin().await.unwrap();
    let late = callbacks::complete(
        &mut tx,
        bench.tenant,
        &callbacks::token_hash("t2"),
        true,
        &serde_json::json!({}),
    )
    .await
    .unwrap_err();
    assert!(late.is_conflict(), "{late}");
    worker.stop().await;
}

#[tokio::test]
async fn redelivered_requests_send_once_and_a_replica_killed_mid_send_is_taken_over() {
    let bench = Bench::new().await;
    bench.allow(&["127.0.0.1/32"]).await;
    let receiver = Receiver::start(vec![
        Reply::status(200, "hung").after(Duration::from_secs(3600)),
    ])
    .await;
    let first = bench.start_worker_with(Options {
        owner: "doomed".into(),
        lease: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(600),
        ..Options::default()
    });
    let request = bench.request(post(&receiver.url("/once"), "{}", 0)).await;
    eventually("the first replica sends", WAIT, || async {
        (receiver.received().len() == 1).then_some(())
    })
    .await;
    // The first replica dies while the receiver holds the request.
    first.kill();
    let second = bench.start_worker_with(Options {
        owner: "survivor".into(),
        ..Options::default()
    });
    let done = bench.wait_done(request.webhook_id).await;
    assert_eq!(done.status, DeliveryStatus::Succeeded);
    let got = receiver.received();
    assert_eq!(got.len(), 2, "resent once by the replica that took over");
    assert_eq!(
        got[0].header("ferry-delivery-id"),
        got[1].header("ferry-delivery-id")
    );
    assert_eq!(got[1].header("ferry-attempt"), Some("2"));

    // The same request again (a redelivery): a finished webhook is never run again.
    bench.send(&request).await;
    eventually("the redelivered request is consumed", WAIT, || async {
        (second.metrics.handled("webhook", "webhook.requested.v1") >= 1).then_some(())
    })
    .await;
    let again = webhooks::get(&bench.store, bench.tenant, request.webhook_id)
        .await
        .unwrap();
    assert_eq!(
        (again.status, again.attempts),
        (DeliveryStatus::Succeeded, 2)
    );
    assert_eq!(receiver.received().len(), 2);
    assert_eq!(bench.completions(request.webhook_id).await.len(), 1);
    second.stop().await;
}

#[tokio::test]
async fn past_its_deadline_nothing_is_sent_and_an_agent_that_is_not_there_is_named() {
    let bench = Bench::new().await;
    bench.allow(&["127.0.0.1/32"]).await;
    let receiver = Receiver::start(vec![]).await;
    let worker = bench.start_worker();
    let mut request = bench.request_unsent(post(&receiver.url("/late"), "{}", 0));
    request.deadline = Some(chrono::Utc::now() - chrono::Duration::seconds(1));
    bench.send(&request).await;
    let done = bench.wait_done(request.webhook_id).await;
    assert_eq!(done.status, DeliveryStatus::Failed);
    assert!(
        done.reason
            .as_deref()
            .unwrap()
            .starts_with("not sent: its deadline")
    );
    assert!(receiver.received().is_empty());

    let mut call = post(&receiver.url("/private"), "{}", 0);
    call.network_mode = NetworkMode::RemoteNetworkAgent;
    call.agent_identifier = Some("edge-agent".into());
    let request = bench.request(call).await;
    let done = bench.wait_done(request.webhook_id).await;
    assert_eq!(done.status, DeliveryStatus::Failed);
    assert_eq!(
        done.reason.as_deref(),
        Some("through agent \"edge-agent\": svc-webhook has no agent tunnel (FERRY_REDIS_URL)")
    );
    worker.stop().await;
}
