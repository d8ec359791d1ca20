//! Migration tests of the stored progress: records exactly as the scheduler wrote them before the
//! progress carried a schema version (captured from that code's `Progress::to_json`, kept in
//! `fixtures/`) decode to the typed values they meant, and what no version ever wrote is a loud
//! error, never a default.

use crate::objects::ObjectRef;
use crate::progress::{CURRENT, Progress, Stable, StateError, VERSION_KEY, WaitState, Workload};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("fixture time")
}

#[test]
fn version_1_records_decode_to_what_they_meant() {
    let canary = Progress::decode(&fixture(include_str!("fixtures/progress_v1_canary.json")))
        .expect("the canary record decodes");
    assert_eq!(
        canary,
        Progress {
            workloads: vec![Workload {
                name: "web".into(),
                namespace: "shop".into(),
                new_rs: "web-ferry-3f9c2a1b".into(),
                new_initial: 0,
                replicas: 4,
                stable: vec![Stable {
                    name: "web-ferry-11aa22bb".into(),
                    replicas: 4,
                    images: vec![],
                }],
                now: None,
            }],
            wait: WaitState {
                started: true,
                approval_id: Some("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".parse().unwrap()),
                expires_at: Some(at("2026-12-03T12:00:00Z")),
                ..WaitState::default()
            },
            deadline: Some(at("2026-12-03T10:15:00Z")),
            next_tick: Some(at("2026-12-03T10:05:30Z")),
            weight: Some(25),
            created: vec![ObjectRef {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: "web-settings".into(),
                namespace: Some("shop".into()),
            }],
            ..Progress::default()
        }
    );

    let gates = Progress::decode(&fixture(include_str!("fixtures/progress_v1_gates.json")))
        .expect("the gates record decodes");
    assert!(gates.first);
    assert_eq!(gates.gates.len(), 2);
    assert!(gates.gates[0].done && gates.gates[0].started);
    let judged = &gates.gates[1];
    assert_eq!(
        (judged.outcome, judged.decision, judged.inconclusive),
        (Some(false), Some(true), true)
    );
    assert_eq!(judged.decided_by.as_deref(), Some("ana@example.com"));
    assert_eq!(
        judged.outcome_reason.as_deref(),
        Some("error rate 4% above 1%")
    );

    for fresh in [
        include_str!("fixtures/progress_v1_empty.json"),
        include_str!("fixtures/progress_v1_new_row.json"),
    ] {
        assert_eq!(
            Progress::decode(&fixture(fresh)).unwrap(),
            Progress::default()
        );
    }
}

#[test]
fn version_1_records_are_rewritten_as_the_current_version_with_the_same_content() {
    let v1 = fixture(include_str!("fixtures/progress_v1_canary.json"));
    let progress = Progress::decode(&v1).unwrap();
    let v2 = progress.to_json();
    assert_eq!(v2[VERSION_KEY], CURRENT);
    // The API reads single fields by path: they stay where they were.
    assert_eq!(v2["workloads"], v1["workloads"]);
    assert_eq!(v2["wait"], v1["wait"]);
    assert_eq!(Progress::decode(&v2).unwrap(), progress);
}

#[test]
fn what_no_version_wrote_is_a_loud_error() {
    let cases = [
        (json!(null), "not a JSON object but null"),
        (json!([1, 2]), "not a JSON object but an array"),
        (json!({"v": 3, "workloads": []}), "schema version 3"),
        (json!({"v": "2"}), "schema version \"2\""),
        (
            json!({"v": 2, "weight": "half"}),
            "(schema version 2) does not decode",
        ),
        (
            json!({"workloads": "web"}),
            "(schema version 1) does not decode",
        ),
        (
            json!({"v": 2, "surprise": true}),
            "unknown field `surprise`",
        ),
        (json!({"wieght": 25}), "unknown field `wieght`"),
    ];
    for (value, expected) in cases {
        let err = Progress::decode(&value).expect_err(&value.to_string());
        let text = format!("{err}: {}", err_source(&err));
        assert!(text.contains(expected), "{value}: {text}");
    }
}

fn err_source(err: &StateError) -> String {
    std::error::Error::source(err).map_or_else(String::new, std::string::ToString::to_string)
}
