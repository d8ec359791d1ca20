//! Fault switches (latency, error rate, set at start and at run time) and bearer-token
//! authentication.

use std::time::{Duration, Instant};

use ferry_kube_sim::{Faults, SimConfig};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};

use crate::util::{code, sim, sim_with};

#[tokio::test]
async fn latency_and_error_rate_switch_on_and_off_at_run_time() {
    let (sim, client) = sim("faults").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "faults");
    sim.set_faults(Faults {
        latency_ms: 300,
        ..Faults::default()
    });
    let t = Instant::now();
    api.list(&ListParams::default()).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "latency applied: {:?}",
        t.elapsed()
    );

    // Run-time switch through the HTTP endpoint, as a test in another process would.
    let put = |body: &str| {
        http::Request::put("/_sim/faults")
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    };
    client
        .request_text(put(r#"{"errorRate": 1.0}"#))
        .await
        .unwrap();
    assert_eq!(
        sim.faults(),
        Faults {
            error_rate: 1.0,
            ..Faults::default()
        }
    );
    for _ in 0..3 {
        assert_eq!(
            code(api.list(&ListParams::default()).await.unwrap_err()),
            500
        );
    }
    sim.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    match api.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => panic!("a dropped connection is not an API error: {s:?}"),
        Err(_) => {}
        Ok(_) => panic!("the connection should have been dropped"),
    }
    client.request_text(put(r#"{}"#)).await.unwrap();
    let t = Instant::now();
    api.list(&ListParams::default()).await.unwrap();
    assert!(t.elapsed() < Duration::from_millis(300), "faults off");
    assert!(
        client
            .request_text(put(r#"{"dropRate": 2}"#))
            .await
            .is_err(),
        "rates above 1 are rejected"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_set_at_start_apply_from_the_first_request() {
    let config = SimConfig {
        faults: Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
        ..SimConfig::default()
    };
    let sim = ferry_kube_sim::start(config).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(sim.client().await.unwrap(), "default");
    assert_eq!(
        code(api.list(&ListParams::default()).await.unwrap_err()),
        500
    );
    sim.set_faults(Faults::default());
    api.list(&ListParams::default()).await.unwrap();
    sim.shutdown().await;
}

/// A client from `sim`'s kubeconfig with the token replaced.
async fn client_with_wrong_token(sim: &ferry_kube_sim::RunningSim) -> kube::Client {
    let wrong = sim.kubeconfig().replace(sim.token(), "not-the-token");
    let kc = kube::config::Kubeconfig::from_yaml(&wrong).unwrap();
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn requests_without_the_token_get_401() {
    let (sim, _client) = sim("auth").await;
    let bad = client_with_wrong_token(&sim).await;
    let api: Api<ConfigMap> = Api::namespaced(bad.clone(), "auth");
    assert_eq!(
        code(api.list(&ListParams::default()).await.unwrap_err()),
        401
    );
    // /version is public, as on a real API server.
    assert_eq!(bad.apiserver_version().await.unwrap().minor, "33");
    sim.shutdown().await;

    // Plain HTTP does not check the token (kubectl never sends one over plain HTTP).
    let config = SimConfig {
        plain_http: true,
        ..SimConfig::default()
    };
    let (plain, _client) = sim_with(config, "auth").await;
    assert!(plain.base_url().starts_with("http://"));
    let api: Api<ConfigMap> = Api::namespaced(client_with_wrong_token(&plain).await, "auth");
    api.list(&ListParams::default()).await.unwrap();
    plain.shutdown().await;
}
