//! Agents reach the hub over TLS (rustls) with a certificate the test makes at run time.

use crate::harness::{Env, Replica, get};
use ferry_agent_sim::{Script, SimAgent, SimOptions, SimReply};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_connect_over_tls_with_a_self_signed_certificate() {
    let env = Env::new().await;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = std::env::temp_dir().join(ferry_testkit::unique("hub-tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();

    let mut settings = env.settings("tls1");
    settings.insecure_plaintext = false;
    settings.tls_cert = Some(cert_path);
    settings.tls_key = Some(key_path);
    let hub = Replica::start(settings, "https").await;
    assert!(hub.url.starts_with("https://localhost:"));

    let tenant = Uuid::new_v4();
    let script = Script::new().on(
        "GET",
        "/version",
        SimReply::json(r#"{"gitVersion":"v1.33.0"}"#),
    );
    let token = env.token(tenant).await;
    let mut options = SimOptions::new(&hub.url, &token, "cluster-1", script);
    options.ca_pem = Some(cert.cert.pem().into_bytes());
    let agent = SimAgent::start(options).await.unwrap();
    assert_eq!(agent.welcome().unwrap().replica, "tls1");

    let body = env
        .tunnel()
        .await
        .kubernetes(&tenant.to_string(), "cluster-1", get("/version"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body, r#"{"gitVersion":"v1.33.0"}"#);

    // Without trusting the certificate, the agent cannot connect.
    let token = env.token(tenant).await;
    let untrusting = SimOptions::new(&hub.url, &token, "cluster-2", Script::new());
    assert!(SimAgent::start(untrusting).await.is_err());
    std::fs::remove_dir_all(&dir).ok();
}
