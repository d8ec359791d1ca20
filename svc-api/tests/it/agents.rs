//! `GET /v1/agents`: each agent of the tenant with its versions, the hub replica holding it,
//! when it connected and last sent a heartbeat; another tenant's agents never appear.

use crate::support::{Options, TestApp};
use ferry_store::agents::{self, Connect};
use serde_json::Value;

#[tokio::test]
async fn agents_show_their_connection_and_heartbeat() {
    let db = ferry_testkit::TestDb::new().await;
    let app = TestApp::start(&db, Options::default()).await;
    let (owner, viewer) = app.tenant_token(&["Viewer"]).await;
    let (_, stranger) = app.tenant_token(&["Viewer"]).await;

    let mut conn = db.pool.acquire().await.unwrap();
    let connected = agents::connect(
        &mut conn,
        owner.tenant_id,
        &Connect {
            identifier: "prod-eu".into(),
            agent_version: "1.2.3".into(),
            kubernetes_version: "v1.33.1".into(),
            hub_replica: "hub-7".into(),
        },
    )
    .await
    .unwrap();
    agents::heartbeat(&mut conn, owner.tenant_id, "prod-eu", connected.session)
        .await
        .unwrap();
    let gone = agents::connect(
        &mut conn,
        owner.tenant_id,
        &Connect {
            identifier: "staging".into(),
            agent_version: "1.2.0".into(),
            kubernetes_version: "v1.32.0".into(),
            hub_replica: "hub-1".into(),
        },
    )
    .await
    .unwrap();
    agents::disconnect(&mut conn, owner.tenant_id, "staging", gone.session)
        .await
        .unwrap();
    // A hub killed outright records no disconnect: its agent just stops beating.
    agents::connect(
        &mut conn,
        owner.tenant_id,
        &Connect {
            identifier: "dev".into(),
            agent_version: "1.2.0".into(),
            kubernetes_version: "v1.32.0".into(),
            hub_replica: "hub-2".into(),
        },
    )
    .await
    .unwrap();
    sqlx::query(
        "UPDATE agents SET last_heartbeat_at = now() - interval '5 minutes' \
         WHERE identifier = 'dev'",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    drop(conn);

    let (status, listed) = app.get("/v1/agents", Some(&viewer)).await;
    assert_eq!(status, 200, "{listed}");
    let find = |identifier: &str| -> Value {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["identifier"] == identifier)
            .cloned()
            .unwrap_or_else(|| panic!("{identifier} listed: {listed}"))
    };
    let prod = find("prod-eu");
    assert_eq!(prod["agent_version"], "1.2.3");
    assert_eq!(prod["kubernetes_version"], "v1.33.1");
    assert_eq!(prod["hub_replica"], "hub-7");
    let connected_at = prod["connected_at"].as_str().expect("connected_at");
    let heartbeat = prod["last_heartbeat_at"]
        .as_str()
        .expect("last_heartbeat_at");
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
    assert!(parse(heartbeat) >= parse(connected_at));
    assert!(prod["disconnected_at"].is_null());
    assert_eq!(prod["connected"], true);

    let staging = find("staging");
    assert!(staging["hub_replica"].is_null(), "disconnected: {staging}");
    assert!(staging["disconnected_at"].is_string());
    assert_eq!(staging["connected"], false);
    let dev = find("dev");
    assert_eq!(dev["hub_replica"], "hub-2");
    assert_eq!(dev["connected"], false, "stopped beating: {dev}");

    let (status, foreign) = app.get("/v1/agents", Some(&stranger)).await;
    assert_eq!(status, 200);
    assert_eq!(foreign, serde_json::json!([]));
    app.stop().await.unwrap();
}
