//! Shared fixtures: a declared topology under a unique prefix (deleted on drop, even when the test
//! panics), a fresh database with an `effects` table, and a recording handler that applies each
//! message through the inbox.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_bus::inbox::first_delivery;
use ferry_bus::messages::DeploymentStarted;
use ferry_bus::{
    Backoff, Bus, ConsumerConfig, ConsumerMetrics, Envelope, Handler, HandlerError, Incoming,
    SchedulerMessage, Topology, WorkQueue, run_consumer,
};
use ferry_testkit::{TestDb, amqp};
use lapin::message::BasicGetMessage;
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long any eventual condition may take before the test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// The inbox consumer name the test handlers use.
pub(crate) const CONSUMER: &str = "test-scheduler";

/// A test's broker names and database.
pub(crate) struct Fixture {
    pub db: TestDb,
    pub bus: Bus,
    pub topology: Topology,
    _cleanup: amqp::Cleanup,
}

/// Deletes a topology's queues and exchanges when dropped, even when the test panicked.
pub(crate) fn cleanup(topology: &Topology) -> amqp::Cleanup {
    amqp::Cleanup::new(topology.queue_names(), topology.exchange_names())
}

/// A bus under a fresh prefix, with fast reconnect backoff for tests.
pub(crate) async fn connect(topology: &Topology) -> Bus {
    Bus::connect_with_backoff(
        &amqp::amqp_url(),
        "ferry-bus-test",
        topology.clone(),
        Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(200),
        },
    )
    .await
    .expect("connect to RabbitMQ (is it running? see scripts/deps.sh)")
}

/// A declared topology under a unique prefix and a migrated database with an `effects` table.
pub(crate) async fn fixture() -> Fixture {
    let topology = Topology::new(amqp::prefix());
    let guard = cleanup(&topology);
    let bus = connect(&topology).await;
    bus.declare().await.expect("declare topology");
    let db = TestDb::new().await;
    sqlx::query("CREATE TABLE effects (message_id UUID NOT NULL, tenant_id UUID NOT NULL)")
        .execute(&db.pool)
        .await
        .expect("create effects table");
    Fixture {
        db,
        bus,
        topology,
        _cleanup: guard,
    }
}

impl Fixture {
    /// Ready messages in a queue (unacked ones are not counted).
    pub(crate) async fn depth(&self, queue: &str) -> u32 {
        let channel = self.bus.channel().await.expect("channel");
        let q = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("passive declare");
        let _ = channel.close(200, "done".into()).await;
        q.message_count()
    }

    /// Takes one message off a queue (auto-acked), if there is one.
    pub(crate) async fn get(&self, queue: &str) -> Option<BasicGetMessage> {
        let channel = self.bus.channel().await.expect("channel");
        let message = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get");
        let _ = channel.close(200, "done".into()).await;
        message
    }

    /// Rows in the `effects` table for a message id.
    pub(crate) async fn effects(&self, message_id: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM effects WHERE message_id = $1")
            .bind(message_id)
            .fetch_one(&self.db.pool)
            .await
            .expect("count effects")
    }

    /// Starts a consumer of the scheduler queue in the background.
    pub(crate) fn start_consumer<H: Handler>(
        &self,
        config: ConsumerConfig,
        handler: Arc<H>,
        metrics: ConsumerMetrics,
    ) -> (CancellationToken, JoinHandle<()>) {
        let shutdown = CancellationToken::new();
        let bus = self.bus.clone();
        let token = shutdown.clone();
        let task =
            tokio::spawn(async move { run_consumer(&bus, config, handler, metrics, token).await });
        (shutdown, task)
    }
}

/// A new scheduler message for a random tenant and deployment.
pub(crate) fn started() -> Envelope<SchedulerMessage> {
    Envelope::new(
        Uuid::new_v4(),
        SchedulerMessage::DeploymentStarted(DeploymentStarted {
            deployment_id: Uuid::new_v4(),
        }),
    )
}

/// Test consumer settings: a short retry delay so retries happen within the test.
pub(crate) fn config(max_attempts: u32) -> ConsumerConfig {
    ConsumerConfig {
        queue: WorkQueue::Scheduler,
        prefetch: 4,
        max_attempts,
        retry_delay: Duration::from_millis(50),
    }
}

type Decide = dyn Fn(&Incoming<SchedulerMessage>) -> Result<(), HandlerError> + Send + Sync;

/// A handler that records every call, fails as `decide` says, and otherwise applies the message
/// once: inbox marker and `effects` row in one transaction.
pub(crate) struct Recorder {
    pool: sqlx::PgPool,
    decide: Box<Decide>,
    pub calls: Mutex<Vec<Incoming<SchedulerMessage>>>,
}

impl Recorder {
    pub(crate) fn new(
        pool: sqlx::PgPool,
        decide: impl Fn(&Incoming<SchedulerMessage>) -> Result<(), HandlerError> + Send + Sync + 'static,
    ) -> Arc<Recorder> {
        Arc::new(Recorder {
            pool,
            decide: Box::new(decide),
            calls: Mutex::new(Vec::new()),
        })
    }

    /// The attempts seen, in call order.
    pub(crate) fn attempts(&self) -> Vec<u32> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.attempt)
            .collect()
    }

    pub(crate) fn call_count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

impl Handler for Recorder {
    type Message = SchedulerMessage;

    async fn handle(&self, message: Incoming<SchedulerMessage>) -> Result<(), HandlerError> {
        self.calls.lock().unwrap().push(message.clone());
        (self.decide)(&message)?;
        let mut tx = self.pool.begin().await?;
        if first_delivery(&mut tx, CONSUMER, &message.envelope).await? {
            sqlx::query("INSERT INTO effects (message_id, tenant_id) VALUES ($1, $2)")
                .bind(message.envelope.id)
                .bind(message.envelope.tenant_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A string header of a fetched message.
pub(crate) fn header(message: &BasicGetMessage, key: &str) -> Option<String> {
    use lapin::types::AMQPValue;
    match message
        .delivery
        .properties
        .headers()
        .as_ref()?
        .inner()
        .get(key)?
    {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        AMQPValue::LongLongInt(n) => Some(n.to_string()),
        AMQPValue::LongInt(n) => Some(n.to_string()),
        other => Some(format!("{other:?}")),
    }
}
