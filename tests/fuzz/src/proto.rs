//! Inputs for the agent protocol: well-formed messages of every kind (then encoded and
//! mutated by the targets), and gRPC frames as the hub and the agent read them.

use bytes::Bytes;
use ferry_proto::agent::{
    AgentMessage, BodyChunk, Cancel, GoAway, Header, Heartbeat, Hello, HubMessage, Ping, Request,
    RequestBody, Response, ResponseEnd, ResponseError, ResponseHead, Welcome, agent_message,
    hub_message, response,
};
use ferry_proto::tunnel::{self, TunnelReply, TunnelReplyBatch, TunnelRequest, tunnel_reply};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{0,12}",
        "\\PC{0,16}",
        Just("GET".to_string()),
        Just("/api/v1/namespaces/x/pods?watch=true".to_string()),
    ]
}

fn data() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn header() -> impl Strategy<Value = Header> {
    (text(), data()).prop_map(|(name, value)| Header { name, value })
}

/// A request as the hub sends it.
pub fn request() -> impl Strategy<Value = Request> {
    (
        text(),
        -2i32..4,
        text(),
        text(),
        prop::collection::vec(header(), 0..4),
        data(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(request_id, kind, method, target, headers, body, body_complete, deadline)| Request {
                request_id,
                kind,
                method,
                target,
                headers,
                body,
                body_complete,
                deadline_unix_ms: deadline,
                ..Request::default()
            },
        )
}

fn head() -> impl Strategy<Value = ResponseHead> {
    (any::<u32>(), prop::collection::vec(header(), 0..4))
        .prop_map(|(status, headers)| ResponseHead { status, headers })
}

fn response_part() -> impl Strategy<Value = response::Part> {
    prop_oneof![
        head().prop_map(response::Part::Head),
        data().prop_map(|data| response::Part::Chunk(BodyChunk { data })),
        Just(response::Part::End(ResponseEnd {})),
        (-1i32..7, text())
            .prop_map(|(code, message)| response::Part::Error(ResponseError { code, message })),
    ]
}

/// Any message an agent sends.
pub fn agent_message() -> impl Strategy<Value = AgentMessage> {
    let kind = prop_oneof![
        (
            text(),
            text(),
            text(),
            prop::collection::vec(text(), 0..3),
            any::<u32>()
        )
            .prop_map(
                |(agent_id, agent_version, kubernetes_version, capabilities, protocol_version)| {
                    agent_message::Kind::Hello(Hello {
                        agent_id,
                        agent_version,
                        kubernetes_version,
                        capabilities,
                        protocol_version,
                    })
                }
            ),
        (any::<u64>(), any::<u64>()).prop_map(|(sent_at_unix_ms, ping_nonce)| {
            agent_message::Kind::Heartbeat(Heartbeat {
                sent_at_unix_ms,
                ping_nonce,
            })
        }),
        (text(), any::<u64>(), prop::option::of(response_part())).prop_map(
            |(request_id, seq, part)| {
                agent_message::Kind::Response(Response {
                    request_id,
                    seq,
                    part,
                })
            }
        ),
    ];
    prop::option::of(kind).prop_map(|kind| AgentMessage { kind })
}

/// Any message the hub sends.
pub fn hub_message() -> impl Strategy<Value = HubMessage> {
    let kind = prop_oneof![
        (any::<u32>(), any::<u64>(), any::<u32>(), text()).prop_map(|(p, s, h, r)| {
            hub_message::Kind::Welcome(Welcome {
                protocol_version: p,
                session: s,
                heartbeat_interval_ms: h,
                replica: r,
            })
        }),
        request().prop_map(hub_message::Kind::Request),
        text().prop_map(|request_id| hub_message::Kind::Cancel(Cancel { request_id })),
        any::<u64>().prop_map(|nonce| hub_message::Kind::Ping(Ping { nonce })),
        (text(), data(), any::<bool>()).prop_map(|(request_id, data, end)| {
            hub_message::Kind::RequestBody(RequestBody {
                request_id,
                data,
                end,
            })
        }),
        text().prop_map(|reason| hub_message::Kind::GoAway(GoAway { reason })),
    ];
    prop::option::of(kind).prop_map(|kind| HubMessage { kind })
}

/// A request a caller publishes to a hub replica.
pub fn tunnel_request() -> impl Strategy<Value = TunnelRequest> {
    (text(), text(), any::<u64>(), prop::option::of(request())).prop_map(
        |(tenant, agent_id, session, request)| TunnelRequest {
            tenant,
            agent_id,
            session,
            request,
        },
    )
}

/// A batch of replies a hub replica sends a caller.
pub fn reply_batch() -> impl Strategy<Value = TunnelReplyBatch> {
    let part = prop_oneof![
        Just(tunnel_reply::Part::Accepted(tunnel::Accepted {})),
        head().prop_map(tunnel_reply::Part::Head),
        data().prop_map(|data| tunnel_reply::Part::Chunk(BodyChunk { data })),
        Just(tunnel_reply::Part::End(ResponseEnd {})),
        (-1i32..7, -1i32..7, text()).prop_map(|(code, agent_code, message)| {
            tunnel_reply::Part::Error(tunnel::TunnelError {
                code,
                agent_code,
                message,
            })
        }),
    ];
    let reply =
        (text(), any::<u64>(), prop::option::of(part)).prop_map(|(request_id, seq, part)| {
            TunnelReply {
                request_id,
                seq,
                part,
            }
        });
    prop::collection::vec(reply, 0..4).prop_map(|replies| TunnelReplyBatch { replies })
}

/// One edit of an encoded message.
#[derive(Debug, Clone)]
pub enum ByteEdit {
    /// Replaces a byte.
    Set(usize, u8),
    /// Cuts the bytes at a position.
    Truncate(usize),
    /// Inserts bytes at a position.
    Insert(usize, Vec<u8>),
    /// Repeats the bytes `n` times (concatenated messages merge in protobuf).
    Repeat(u8),
}

/// Edits of encoded messages, with varint-ish and length-ish bytes favoured.
pub fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (
            any::<usize>(),
            prop_oneof![any::<u8>(), Just(0xff), Just(0x80), Just(0x7f)]
        )
            .prop_map(|(i, b)| ByteEdit::Set(i, b)),
        any::<usize>().prop_map(ByteEdit::Truncate),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..12))
            .prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        (2u8..5).prop_map(ByteEdit::Repeat),
    ]
}

/// Applies one edit.
pub fn edit(bytes: &mut Vec<u8>, e: &ByteEdit) {
    match e {
        ByteEdit::Set(i, b) if !bytes.is_empty() => {
            let at = i % bytes.len();
            bytes[at] = *b;
        }
        ByteEdit::Truncate(i) => bytes.truncate(i % (bytes.len() + 1)),
        ByteEdit::Insert(i, b) => {
            let at = i % (bytes.len() + 1);
            bytes.splice(at..at, b.iter().copied());
        }
        ByteEdit::Repeat(n) => {
            let one = bytes.clone();
            for _ in 1..*n {
                bytes.extend_from_slice(&one);
            }
        }
        _ => {}
    }
}

/// gRPC frames (a compression flag, a big-endian length, the message) around `messages`,
/// with one frame header possibly lying about its length or its compression.
pub fn frames(messages: &[Vec<u8>], lie: Option<(usize, u32, u8)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let (len, flag) = match lie {
            Some((at, len, flag)) if at % messages.len().max(1) == i => (len, flag),
            _ => (m.len() as u32, 0),
        };
        out.push(flag);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}
