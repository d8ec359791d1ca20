//! A Ferry binary run as a child process, the way an operator runs it: wait until its admin port
//! says it is ready, send it SIGTERM, and collect its exit status and output.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::{SocketAddr, TcpListener};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A free port on 127.0.0.1 (bound and released; good enough for a child to bind right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A port on 127.0.0.1 where nothing listens, for "unreachable" cases: port 1, which no service
/// here uses and which binding port 0 never hands out (it is outside the ephemeral range). A port
/// just freed is not: a test running alongside can be given it a moment later.
pub const CLOSED_PORT: u16 = 1;

/// `GET path` over plain HTTP/1.0; the status code and body, or `None` when nothing answers.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// A service binary running as a child process with its admin port on `admin`.
pub struct ServiceProcess {
    child: Child,
    // Drained continuously so a chatty child never blocks on a full pipe.
    stderr: Arc<Mutex<String>>,
    stderr_reader: tokio::task::JoinHandle<()>,
    /// The admin address (`/healthz`, `/readyz`, `/metrics`).
    pub admin: SocketAddr,
}

/// How the child ended.
#[derive(Debug)]
pub struct Exited {
    pub status: ExitStatus,
    pub stderr: String,
}

impl ServiceProcess {
    /// Starts `binary` with `env` (plus `FERRY_ADMIN_ADDR` on a free port), without waiting.
    pub fn spawn(binary: &str, env: &[(&str, &str)]) -> ServiceProcess {
        let admin: SocketAddr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut child = Command::new(binary)
            .envs(env.iter().copied())
            .env("FERRY_ADMIN_ADDR", admin.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let sink = stderr.clone();
        let stderr_reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                sink.lock().expect("stderr buffer").push_str(&text);
            }
        });
        ServiceProcess {
            child,
            admin,
            stderr,
            stderr_reader,
        }
    }

    /// The child's process id (`None` once it was reaped).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits until `/readyz` answers 200 and returns its body; panics with the child's output if
    /// it exits first or the deadline passes.
    pub async fn wait_ready(&mut self, deadline: Duration) -> String {
        let start = std::time::Instant::now();
        loop {
            if let Some((200, body)) = http_get(self.admin, "/readyz").await {
                return body;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let stderr = self.output().await;
                panic!("service exited with {status} before it was ready:\n{stderr}");
            }
            if start.elapsed() > deadline {
                panic!("service not ready within {deadline:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub async fn terminate(self, deadline: Duration) -> Exited {
        self.signal(Signal::SIGTERM);
        self.wait(deadline).await
    }

    /// Kills the child with SIGKILL, as a crash or an OOM kill would: no draining, no goodbye.
    pub async fn kill_9(mut self) -> Exited {
        self.signal(Signal::SIGKILL);
        let status = self.child.wait().await.expect("wait for child");
        let stderr = self.output().await;
        Exited { status, stderr }
    }

    /// What the child has written to stderr so far (for a failing test's message).
    pub fn stderr_so_far(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// Sends `signal` to the still-running child.
    fn signal(&self, signal: Signal) {
        let pid = self.child.id().expect("child still running") as i32;
        kill(Pid::from_raw(pid), signal).unwrap_or_else(|e| panic!("send {signal}: {e}"));
    }

    /// Waits for the child to exit by itself.
    pub async fn wait(mut self, deadline: Duration) -> Exited {
        let status = tokio::time::timeout(deadline, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("service did not exit within {deadline:?}"))
            .expect("wait for child");
        let stderr = self.output().await;
        Exited { status, stderr }
    }

    /// Everything the child wrote to stderr, once it has exited.
    async fn output(&mut self) -> String {
        let _ = (&mut self.stderr_reader).await;
        self.stderr_so_far()
    }
}

/// The life every service binary must have, asserted: it starts with `env`, reports ready with
/// Postgres and RabbitMQ checked, serves metrics, and on SIGTERM drains and exits 0.
pub async fn assert_starts_and_drains(binary: &str, env: &[(&str, &str)]) {
    let mut svc = ServiceProcess::spawn(binary, env);
    let ready = svc.wait_ready(Duration::from_secs(30)).await;
    assert!(ready.contains(r#""postgres":"ok""#), "{ready}");
    assert!(ready.contains(r#""rabbitmq":"ok""#), "{ready}");
    let (status, metrics) = http_get(svc.admin, "/metrics")
        .await
        .expect("metrics answer");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("process_resident_memory_bytes"),
        "{metrics}"
    );

    let exited = svc.terminate(Duration::from_secs(30)).await;
    let Exited { status, stderr } = exited;
    assert!(status.success(), "exit {status}: {stderr}");
    assert!(stderr.contains("draining"), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}

/// A service pointed at a database that does not answer exits non-zero, naming the setting and
/// never printing the password.
pub async fn assert_unreachable_database_fails(binary: &str) {
    let svc = ServiceProcess::spawn(
        binary,
        &[
            (
                "FERRY_DATABASE_URL",
                "postgres://ferry:hunter2@127.0.0.1:1/ferry",
            ),
            ("FERRY_AMQP_URL", &crate::amqp::amqp_url()),
        ],
    );
    let Exited { status, stderr } = svc.wait(Duration::from_secs(30)).await;
    assert!(!status.success());
    assert!(stderr.contains("FERRY_DATABASE_URL"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
