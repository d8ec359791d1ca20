//! A real Prometheus server for tests (Debian's `prometheus` package, found on `PATH` or at
//! `FERRY_PROMETHEUS_BIN`), started on a free port with its own data directory and basic
//! auth, scraping a small exporter of this file every second. The exporter serves gauges per
//! ReplicaSet whose values follow known normal distributions (a fixed pseudo-random sequence
//! of normal quantiles), so what a canary "is" is decided by the test.

use axum::Router;
use axum::routing::get;
use ferry_judge::special::norm_ppf;
use ferry_testkit::{eventually, process::free_port};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::process::{Child, Command};

/// The user and password of the test server.
pub(crate) const USER: &str = "ferry";
pub(crate) const PASSWORD: &str = "canary-secret";
/// bcrypt of [`PASSWORD`] (cost 10), as Prometheus's web config wants it.
const PASSWORD_BCRYPT: &str = "$2b$10$YcTAXpsbGXqbIxpSQXwjhurgEmhVLmk0KE5DYoOublV0/EI7rRcsS";

/// One exported series: `metric{replicaset="…"}` drawn from N(mean, sd).
#[derive(Clone, Debug)]
pub(crate) struct Gauge {
    pub metric: &'static str,
    pub replicaset: &'static str,
    pub mean: f64,
    pub sd: f64,
}

/// The exporter: every scrape draws the next value of every gauge.
async fn serve_exporter(gauges: Vec<Gauge>) -> (u16, tokio::task::JoinHandle<()>) {
    let draws = Arc::new(AtomicU64::new(1));
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let draws = draws.clone();
            let gauges = gauges.clone();
            async move {
                let mut out = String::new();
                for (i, g) in gauges.iter().enumerate() {
                    // A Weyl sequence mod 1 is spread evenly and deterministic per draw.
                    let n = draws.fetch_add(1, Ordering::Relaxed);
                    let u = ((n as f64 * 0.618_033_988_749_894_9 + i as f64 * 0.377) % 1.0)
                        .clamp(1e-6, 1.0 - 1e-6);
                    let v = g.mean + g.sd * norm_ppf(u);
                    out.push_str(&format!(
                        "{}{{replicaset=\"{}\"}} {v}\n",
                        g.metric, g.replicaset
                    ));
                }
                out
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, task)
}

/// The prometheus binary.
pub(crate) fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("FERRY_PROMETHEUS_BIN") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("prometheus"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "prometheus not found on PATH: run scripts/deps.sh (it installs Debian's prometheus \
             package) or set FERRY_PROMETHEUS_BIN"
        )
    })
}

/// A running Prometheus and its exporter; both stop when dropped.
pub(crate) struct Prometheus {
    pub url: String,
    child: Child,
    dir: PathBuf,
    exporter: tokio::task::JoinHandle<()>,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        self.exporter.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

impl Prometheus {
    /// Starts Prometheus scraping an exporter of `gauges`, and waits until every gauge has
    /// at least one sample.
    pub(crate) async fn start(gauges: Vec<Gauge>) -> Prometheus {
        let (exporter_port, exporter) = serve_exporter(gauges.clone()).await;
        let dir = std::env::temp_dir().join(ferry_testkit::unique("ferry-prometheus"));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        write(
            &dir.join("prometheus.yml"),
            &format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: exporter\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n"
            ),
        );
        write(
            &dir.join("web.yml"),
            &format!("basic_auth_users:\n  {USER}: {PASSWORD_BCRYPT}\n"),
        );
        let port = free_port();
        let child = Command::new(binary())
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--web.config.file={}",
                dir.join("web.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting prometheus");
        let url = format!("http://127.0.0.1:{port}");
        let server = Prometheus {
            url: url.clone(),
            child,
            dir,
            exporter,
        };
        ferry_runtime::telemetry::install_crypto();
        let client = reqwest::Client::new();
        for g in &gauges {
            let query = format!("{}{{replicaset=\"{}\"}}", g.metric, g.replicaset);
            eventually(
                "prometheus scraped the exporter",
                Duration::from_secs(60),
                || {
                    let (client, url, query) = (client.clone(), url.clone(), query.clone());
                    async move {
                        let mut target =
                            reqwest::Url::parse(&format!("{url}/api/v1/query")).ok()?;
                        target.query_pairs_mut().append_pair("query", &query);
                        let answer = client
                            .get(target)
                            .basic_auth(USER, Some(PASSWORD))
                            .send()
                            .await
                            .ok()?;
                        let body: serde_json::Value = answer.json().await.ok()?;
                        let result = body.pointer("/data/result")?.as_array()?;
                        (!result.is_empty()).then_some(())
                    }
                },
            )
            .await;
        }
        server
    }
}
