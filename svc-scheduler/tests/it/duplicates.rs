//! Duplicate delivery: every scheduler message a flow sends is delivered twice (the outbox relay
//! may publish a row again, the broker may redeliver), and the flow has each effect once: one
//! approval, each step recorded once, one end event, the cluster as after a single delivery.
//! The scheduler keeps no inbox: its state decides, so a second delivery finds nothing to do.
//! Covered here: `deployment.started`, `approval.decided`, `skip_pause.requested`,
//! `analysis.completed`, `abort.requested` and `rollback.requested`.

use crate::support::{Bench, WAIT, plan, size_of};
use crate::worker::{Worker, analysis_request, complete_analysis, requests_written};
use ferry_bus::{CanaryMessage, Envelope, MessageHeaders, SchedulerMessage, WorkQueue};
use ferry_store::DeploymentId;
use ferry_store::deployments::DeploymentStatus;
use ferry_store::targets::TargetStatus;
use ferry_testkit::eventually;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Publishes every scheduler message the relay sent once more, with the same envelope id.
struct Duplicator {
    stop: CancellationToken,
    task: JoinHandle<usize>,
    published: Arc<AtomicUsize>,
}

impl Duplicator {
    fn start(bench: &Bench) -> Duplicator {
        let stop = CancellationToken::new();
        let (pool, bus, token) = (bench.db.pool.clone(), bench.bus.clone(), stop.clone());
        let published = Arc::new(AtomicUsize::new(0));
        let counter = published.clone();
        let task = tokio::spawn(async move {
            let mut done: HashSet<i64> = HashSet::new();
            let publisher = bus.publisher().await.unwrap();
            loop {
                let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                    "SELECT seq, payload FROM outbox
                     WHERE exchange = 'ferry.work' AND routing_key = 'scheduler'
                       AND sent_at IS NOT NULL ORDER BY seq",
                )
                .fetch_all(&pool)
                .await
                .unwrap();
                for (seq, payload) in rows {
                    if done.insert(seq) {
                        let envelope = Envelope::<SchedulerMessage>::from_json(&payload).unwrap();
                        publisher
                            .publish(&envelope, &MessageHeaders::default())
                            .await
                            .unwrap();
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                }
                tokio::select! {
                    () = token.cancelled() => return done.len(),
                    () = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
                }
            }
        });
        Duplicator {
            stop,
            task,
            published,
        }
    }

    /// Waits until every scheduler message sent so far was published twice and the scheduler's
    /// queue holds nothing ready (the duplicates were taken; stopping the engine then drains
    /// the ones in flight).
    async fn settle(&self, bench: &Bench) {
        eventually("every duplicate published and taken", WAIT, || async {
            let sent: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM outbox
                 WHERE exchange = 'ferry.work' AND routing_key = 'scheduler' AND sent_at IS NOT NULL",
            )
            .fetch_one(&bench.db.pool)
            .await
            .unwrap();
            let published = self.published.load(Ordering::SeqCst) as i64;
            (published == sent && ready_in_queue(bench).await == 0).then_some(())
        })
        .await;
    }

    /// Stops, returning how many messages were delivered twice.
    async fn stop(self) -> usize {
        self.stop.cancel();
        self.task.await.unwrap()
    }
}

/// Messages ready (not yet delivered) in the scheduler's work queue.
async fn ready_in_queue(bench: &Bench) -> u32 {
    let channel = bench.bus.channel().await.unwrap();
    let queue = channel
        .queue_declare(
            bench
                .bus
                .topology()
                .work_queue(WorkQueue::Scheduler)
                .as_str()
                .into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .unwrap();
    let _ = channel.close(200, "counted".into()).await;
    queue.message_count()
}

/// The version already running (a first deployment goes straight to 100%, no steps).
const BASE: &str = r#"
version: v1
application: hello-ferry
targets:
  prod:
    account: prod-cluster
    namespace: hello
manifests:
  - path: manifests/app.yaml
"#;

/// A target behind an approval gate, then a canary with an analysis and a long pause.
const FLOW: &str = r#"
version: v1
application: hello-ferry
targets:
  prod:
    account: prod-cluster
    namespace: hello
    strategy: stepped
    constraints:
      beforeDeployment:
        - pause:
            untilApproved: true
manifests:
  - path: manifests/app.yaml
strategies:
  stepped:
    canary:
      steps:
        - setWeight: 25
        - analysis:
            interval: 30
            units: seconds
            numberOfJudgmentRuns: 1
            queries: [error-rate]
        - pause:
            duration: 1
            unit: hours
        - setWeight: 100
analysis:
  defaultMetricProviderName: prometheus-prod
  queries:
    - name: error-rate
      upperLimit: 1
      queryTemplate: sum(rate(errors[1m]))
"#;

async fn count(bench: &Bench, sql: &'static str, id: DeploymentId) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id.as_uuid())
        .fetch_one(&bench.db.pool)
        .await
        .unwrap()
}

/// Step history entries recorded more than once.
async fn repeated_steps(bench: &Bench, id: DeploymentId) -> i64 {
    count(
        bench,
        "SELECT count(*) FROM (SELECT 1 FROM step_history WHERE deployment_id = $1
         GROUP BY target_name, step_index, status, reason HAVING count(*) > 1) x",
        id,
    )
    .await
}

/// End events written for the deployment.
async fn end_events(bench: &Bench, id: DeploymentId) -> i64 {
    count(
        bench,
        "SELECT count(*) FROM outbox WHERE exchange = 'ferry.events'
           AND routing_key LIKE '%.' || $1::text || '.%'
           AND convert_from(payload, 'UTF8')::jsonb #>> '{kind}' = 'event.deployment_status.v1'
           AND convert_from(payload, 'UTF8')::jsonb #>> '{payload,status}'
               IN ('succeeded', 'failed', 'aborted', 'rolled_back')",
        id,
    )
    .await
}

#[tokio::test]
async fn every_message_of_a_flow_delivered_twice_has_each_effect_once() {
    let mut bench = Bench::new(&["prod-cluster"], &["hello"]).await;
    let mut svc_canary: Worker<CanaryMessage> = Worker::start(&bench, WorkQueue::Canary);
    bench.start_engine();
    bench
        .deploy_succeeded(&plan(BASE, "hello-ferry:1.0.0"))
        .await;
    let duplicator = Duplicator::start(&bench);
    let id = bench
        .start_deployment(&plan(FLOW, "hello-ferry:1.1.0"))
        .await;

    bench.decide(id, "prod", true).await;
    let request = analysis_request(&mut svc_canary).await;
    complete_analysis(&bench, &request, true, "error-rate 0.1").await;
    bench
        .wait_target(id, "prod", "the target in its long pause", |t| {
            t.step_index == 2 && t.status == TargetStatus::Paused
        })
        .await;
    bench
        .send(SchedulerMessage::SkipPauseRequested(
            ferry_bus::messages::SkipPauseRequested {
                deployment_id: id.as_uuid(),
                target: "prod".into(),
                step_index: 2,
            },
        ))
        .await;
    let end = bench.wait_end(id).await;
    assert_eq!(end.status, DeploymentStatus::Succeeded, "{:?}", end.reason);
    // Let the duplicates of the last messages arrive and be handled.
    duplicator.settle(&bench).await;
    let duplicated = duplicator.stop().await;
    assert!(
        duplicated >= 4,
        "started, approved, analysed, skipped: {duplicated}"
    );
    bench.stop_engine().await;
    // A second analysis request would mean the approval or the start was applied twice.
    assert_eq!(requests_written(&bench, "canary").await, 1);

    assert_eq!(
        repeated_steps(&bench, id).await,
        0,
        "{:?}",
        bench.reasons(id, "prod").await
    );
    assert_eq!(end_events(&bench, id).await, 1);
    assert_eq!(
        count(
            &bench,
            "SELECT count(*) FROM approvals WHERE deployment_id = $1",
            id
        )
        .await,
        1
    );
    let sets = bench.replica_sets("prod-cluster", "hello").await;
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(size_of(&sets, ":1.1.0"), 4, "{sets:?}");
    svc_canary.stop().await;
}

#[tokio::test]
async fn an_abort_and_a_rollback_delivered_twice_end_once() {
    let mut bench = Bench::new(&["prod-cluster"], &["hello"]).await;
    bench.start_engine();
    bench
        .deploy_succeeded(&plan(BASE, "hello-ferry:1.0.0"))
        .await;
    let duplicator = Duplicator::start(&bench);
    // Aborted while it waits for its approval.
    let aborted = bench
        .start_deployment(&plan(FLOW, "hello-ferry:1.1.0"))
        .await;
    bench
        .wait_target(aborted, "prod", "waiting for approval", |t| {
            t.status == TargetStatus::Paused
        })
        .await;
    bench.abort(aborted, "changed our mind").await;
    let end = bench.wait_end(aborted).await;
    assert_eq!(end.status, DeploymentStatus::Aborted, "{:?}", end.reason);

    // Rolled back by a person while its canary waits for an analysis nobody runs here.
    let rolled = bench
        .start_deployment(&plan(FLOW, "hello-ferry:1.2.0"))
        .await;
    bench.decide(rolled, "prod", true).await;
    bench
        .wait_target(rolled, "prod", "the canary running", |t| t.step_index >= 1)
        .await;
    bench.roll_back(rolled, "prod", "a person said so").await;
    let end = bench.wait_end(rolled).await;
    assert_eq!(end.status, DeploymentStatus::RolledBack, "{:?}", end.reason);
    assert_eq!(
        bench.target(rolled, "prod").await.status,
        TargetStatus::RolledBack
    );

    duplicator.settle(&bench).await;
    let duplicated = duplicator.stop().await;
    assert!(duplicated >= 4, "{duplicated}");
    bench.stop_engine().await;
    for id in [aborted, rolled] {
        assert_eq!(
            repeated_steps(&bench, id).await,
            0,
            "{:?}",
            bench.reasons(id, "prod").await
        );
        assert_eq!(end_events(&bench, id).await, 1);
    }
    // Only the running version is left, at full size: nothing was created twice.
    let sets = bench.replica_sets("prod-cluster", "hello").await;
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(size_of(&sets, ":1.0.0"), 4, "{sets:?}");
}
