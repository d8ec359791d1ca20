//! The fuzz targets: the deploy-file loader (arbitrary bytes, YAML-ish text, mutated example
//! files, grammar-shaped files) and the agent protocol (arbitrary and mutated protobuf
//! messages of every kind the hub, the agent and the callers decode, and gRPC frames as tonic
//! reads them off the agent stream). A few dozen cases each in the suite; `scripts/fuzz.sh`
//! runs them for as long as it is told (see the crate documentation).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ferry_deploy::{Diagnostics, Overrides, Plan, Source};
use ferry_fuzz::inputs::{self, Mutation};
use ferry_fuzz::proto::{self, ByteEdit};
use ferry_fuzz::run;
use ferry_proto::agent::{AgentMessage, HubMessage};
use ferry_proto::tunnel::{TunnelReplyBatch, TunnelRequest};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use prost::Message;

/// The example deploy files (the project's, and the shared ones beside the checkout when they
/// are there) and the manifests they name.
struct Examples {
    files: Vec<String>,
    sources: Vec<Source>,
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(p);
        }
    }
}

fn examples() -> &'static Examples {
    static EXAMPLES: OnceLock<Examples> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        let mut sources = Vec::new();
        for dir in [root.join("examples"), root.join("../shared/examples")] {
            let mut paths = Vec::new();
            yaml_files(&dir, &mut paths);
            for p in paths {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                if p.extension().is_some_and(|e| e == "yml") {
                    files.push(text);
                } else if let Ok(rel) = p.strip_prefix(dir.join("hello-ferry")) {
                    sources.push(Source {
                        path: rel.to_string_lossy().to_string(),
                        content: text,
                    });
                }
            }
        }
        assert!(!files.is_empty(), "no example deploy files found");
        Examples { files, sources }
    })
}

/// Every diagnostic names a place: a path, and a line and column from 1.
fn sane(diags: &Diagnostics) -> Result<(), TestCaseError> {
    for d in diags.items() {
        prop_assert!(!d.path.is_empty(), "{d}");
        prop_assert!(d.line >= 1 && d.column >= 1, "{d}");
        prop_assert!(!d.message.is_empty(), "{d}");
    }
    Ok(())
}

/// A plan survives the JSON round trip the store and the scheduler put it through, and its
/// summary renders.
fn plan_invariants(plan: &Plan) -> Result<(), TestCaseError> {
    let json = serde_json::to_string(plan).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: Plan = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, plan);
    let _ = plan.summary();
    Ok(())
}

/// The loader end to end: node tree, parse, and check with the examples' manifests.
fn load(text: &str) -> Result<(), TestCaseError> {
    if let Ok(docs) = ferry_deploy::node::load(text) {
        for doc in &docs {
            let _ = doc.to_json();
        }
    }
    match ferry_deploy::parse("deploy.yml", text) {
        Ok(file) => {
            let _ = file.manifest_paths();
        }
        Err(d) => sane(&d)?,
    }
    let overrides = Overrides {
        context: vec![("x".into(), "1".into())],
        ..Overrides::default()
    };
    match ferry_deploy::check("deploy.yml", text, &examples().sources, &overrides) {
        Ok(plan) => plan_invariants(&plan)?,
        Err(d) => sane(&d)?,
    }
    Ok(())
}

#[test]
fn deploy_loader_arbitrary_bytes() {
    run(
        "deploy_loader_arbitrary_bytes",
        prop::collection::vec(any::<u8>(), 0..512),
        |bytes| load(&String::from_utf8_lossy(&bytes)),
    );
}

#[test]
fn deploy_loader_yamlish_text() {
    run("deploy_loader_yamlish_text", inputs::yamlish(), |text| {
        load(&text)
    });
}

#[test]
fn deploy_loader_mutated_examples() {
    let strategy = (
        any::<prop::sample::Index>(),
        prop::collection::vec(inputs::mutation(), 1..8),
    );
    run(
        "deploy_loader_mutated_examples",
        strategy,
        |(which, mutations): (prop::sample::Index, Vec<Mutation>)| {
            let mut text = which.get(&examples().files).clone();
            for m in &mutations {
                text = inputs::apply(&text, m);
            }
            load(&text)
        },
    );
}

#[test]
fn deploy_loader_grammar_shaped_files() {
    run(
        "deploy_loader_grammar_shaped_files",
        inputs::grammar_file(),
        |text| load(&text),
    );
}

/// Decoding never panics; whatever decodes encodes again and decodes to the same message.
fn decode_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    fn roundtrip<M: Message + Default + PartialEq + std::fmt::Debug>(
        bytes: &[u8],
    ) -> Result<(), TestCaseError> {
        if let Ok(m) = M::decode(bytes) {
            let again = M::decode(m.encode_to_vec().as_slice())
                .map_err(|e| TestCaseError::fail(format!("re-decoding {m:?}: {e}")))?;
            prop_assert_eq!(again, m);
        }
        Ok(())
    }
    roundtrip::<AgentMessage>(bytes)?;
    roundtrip::<HubMessage>(bytes)?;
    roundtrip::<TunnelRequest>(bytes)?;
    roundtrip::<TunnelReplyBatch>(bytes)?;
    Ok(())
}

#[test]
fn protocol_arbitrary_bytes() {
    run(
        "protocol_arbitrary_bytes",
        prop::collection::vec(any::<u8>(), 0..256),
        |bytes| decode_all(&bytes),
    );
}

#[test]
fn protocol_mutated_messages() {
    let message = prop_oneof![
        proto::agent_message().prop_map(|m| m.encode_to_vec()),
        proto::hub_message().prop_map(|m| m.encode_to_vec()),
        proto::tunnel_request().prop_map(|m| m.encode_to_vec()),
        proto::reply_batch().prop_map(|m| m.encode_to_vec()),
    ];
    run(
        "protocol_mutated_messages",
        (message, prop::collection::vec(proto::byte_edit(), 0..4)),
        |(mut bytes, edits): (Vec<u8>, Vec<ByteEdit>)| {
            for e in &edits {
                proto::edit(&mut bytes, e);
            }
            decode_all(&bytes)
        },
    );
}

/// The largest message the stream decoders accept (tonic's default, which the hub and the
/// agent keep).
const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// Reads every message tonic decodes from `body` as the hub reads an agent's stream and the
/// agent the hub's; returns how many decoded before the end or the first error.
fn read_stream(body: Vec<u8>) -> Result<(), TestCaseError> {
    use tonic::codec::{Codec, Streaming};
    let agent_side = Streaming::<AgentMessage>::new_request(
        tonic_prost::ProstCodec::<AgentMessage, AgentMessage>::default().decoder(),
        http_body_util::Full::new(bytes::Bytes::from(body.clone())),
        None,
        Some(MAX_MESSAGE),
    );
    let hub_side = Streaming::<HubMessage>::new_response(
        tonic_prost::ProstCodec::<HubMessage, HubMessage>::default().decoder(),
        http_body_util::Full::new(bytes::Bytes::from(body)),
        http::StatusCode::OK,
        None,
        Some(MAX_MESSAGE),
    );
    futures::executor::block_on(async {
        let mut agent_side = agent_side;
        let mut hub_side = hub_side;
        for _ in 0..64 {
            match agent_side.message().await {
                Ok(Some(m)) => {
                    prop_assert!(m.encoded_len() <= MAX_MESSAGE);
                }
                _ => break,
            }
        }
        for _ in 0..64 {
            match hub_side.message().await {
                Ok(Some(m)) => prop_assert!(m.encoded_len() <= MAX_MESSAGE),
                _ => break,
            }
        }
        Ok(())
    })
}

/// A frame header's lie: which frame, the length it claims, its compression flag.
type Lie = (usize, u32, u8);

#[test]
fn protocol_grpc_frames() {
    let messages = prop::collection::vec(
        prop_oneof![
            proto::agent_message().prop_map(|m| m.encode_to_vec()),
            proto::hub_message().prop_map(|m| m.encode_to_vec()),
            prop::collection::vec(any::<u8>(), 0..32),
        ],
        0..5,
    );
    let lie = prop::option::of((
        any::<usize>(),
        prop_oneof![any::<u32>(), Just(u32::MAX), Just((MAX_MESSAGE + 1) as u32)],
        prop_oneof![Just(0u8), Just(1u8), any::<u8>()],
    ));
    run(
        "protocol_grpc_frames",
        (
            messages,
            lie,
            prop::collection::vec(proto::byte_edit(), 0..2),
        ),
        |(messages, lie, edits): (Vec<Vec<u8>>, Option<Lie>, Vec<ByteEdit>)| {
            let mut body = proto::frames(&messages, lie);
            for e in &edits {
                proto::edit(&mut body, e);
            }
            read_stream(body)
        },
    );
}
