//! RabbitMQ for tests: the broker address and a unique name prefix per test.

/// The broker tests use: `FERRY_TEST_AMQP_URL`, default the local guest account.
pub fn amqp_url() -> String {
    std::env::var("FERRY_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string())
}

/// A prefix for exchange and queue names that no other test shares.
pub fn prefix() -> String {
    format!("{}.", crate::unique("t"))
}

/// Deletes the named queues and exchanges when dropped, even when the test panicked, so unique
/// per-test names do not pile up in the broker. Build it right after choosing the names (before
/// declaring), e.g. `Cleanup::new(topology.queue_names(), topology.exchange_names())`.
pub struct Cleanup {
    queues: Vec<String>,
    exchanges: Vec<String>,
}

impl Cleanup {
    /// A guard for these queues and exchanges.
    pub fn new(
        queues: impl IntoIterator<Item = String>,
        exchanges: impl IntoIterator<Item = String>,
    ) -> Cleanup {
        Cleanup {
            queues: queues.into_iter().collect(),
            exchanges: exchanges.into_iter().collect(),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let queues = std::mem::take(&mut self.queues);
        let exchanges = std::mem::take(&mut self.exchanges);
        // Its own thread and runtime: Drop cannot await, and the test's runtime may be gone.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let props = lapin::ConnectionProperties::default();
                let Ok(conn) = lapin::Connection::connect(&amqp_url(), props).await else {
                    return;
                };
                if let Ok(channel) = conn.create_channel().await {
                    // Best effort: deleting a missing queue or exchange is not an error in
                    // RabbitMQ, and a failure here must not hide the test's own result.
                    for queue in &queues {
                        let _ = channel
                            .queue_delete(queue.as_str().into(), Default::default())
                            .await;
                    }
                    for exchange in &exchanges {
                        let _ = channel
                            .exchange_delete(exchange.as_str().into(), Default::default())
                            .await;
                    }
                }
                let _ = conn.close(200, "test cleanup".into()).await;
            });
        })
        .join();
    }
}

/// Closes from the broker's side, as a broker restart or a network cut would, every connection
/// whose client-provided name (lapin's `ConnectionProperties::with_connection_name`) contains
/// `name_part`, and returns how many it closed. Uses `rabbitmqctl`, so it needs the local broker
/// and the rights to administer it; give connections a name unique to the test (its prefix) so
/// that tests running in parallel keep theirs.
pub async fn drop_connections(name_part: &str) -> usize {
    let listed = tokio::process::Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
            "client_properties",
        ])
        .output()
        .await
        .expect("run rabbitmqctl list_connections (is rabbitmqctl on PATH?)");
    assert!(
        listed.status.success(),
        "rabbitmqctl list_connections failed: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    // `close_connection` takes the connection's Erlang process id.
    let pids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|line| {
            line.split_once('\t')
                .is_some_and(|(_, props)| props.contains(name_part))
        })
        .filter_map(|line| line.split('\t').next().map(str::to_string))
        .collect();
    let mut closed = 0;
    for pid in pids {
        let status = tokio::process::Command::new("rabbitmqctl")
            .args(["close_connection", &pid, "test: connection dropped"])
            .output()
            .await
            .expect("run rabbitmqctl close_connection");
        if status.status.success() {
            closed += 1;
        }
    }
    closed
}
