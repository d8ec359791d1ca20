//! Executing one relayed request: a Kubernetes API call with the agent's own credentials (the
//! base URL, CA and auth kube-rs resolved), or an HTTP request into the agent's network; the
//! answer streams back as a head, body chunks of at most [`ferry_proto::MAX_CHUNK_BYTES`] and an
//! end, without ever holding a whole body.

use bytes::Bytes;
use ferry_proto::agent::{
    AgentMessage, BodyChunk, ErrorCode, Header, Request, RequestKind, Response, ResponseEnd,
    ResponseError, ResponseHead, agent_message, response,
};
use ferry_runtime::errors::error_chain;
use http::header::{self, HeaderName, HeaderValue};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1), plus those the client
/// library sets itself.
const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
    header::HOST,
    header::CONTENT_LENGTH,
];

/// The stream to the hub is gone: nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamClosed;

/// Sends the numbered response parts of one request to the hub.
#[derive(Debug)]
pub struct ResponseSink {
    request_id: String,
    seq: u64,
    outbound: mpsc::Sender<AgentMessage>,
    body_bytes: u64,
}

impl ResponseSink {
    /// A sink for `request_id` over the stream's outbound queue.
    pub fn new(request_id: String, outbound: mpsc::Sender<AgentMessage>) -> ResponseSink {
        ResponseSink {
            request_id,
            seq: 0,
            outbound,
            body_bytes: 0,
        }
    }

    /// Whether any part has been sent.
    pub fn started(&self) -> bool {
        self.seq > 0
    }

    /// Body bytes sent so far.
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// Queues the next part; waits while the outbound queue is full (the back-pressure that
    /// bounds the agent's memory).
    pub async fn send(&mut self, part: response::Part) -> Result<(), StreamClosed> {
        if let response::Part::Chunk(chunk) = &part {
            self.body_bytes += chunk.data.len() as u64;
        }
        let message = AgentMessage {
            kind: Some(agent_message::Kind::Response(Response {
                request_id: self.request_id.clone(),
                seq: self.seq,
                part: Some(part),
            })),
        };
        self.seq += 1;
        self.outbound.send(message).await.map_err(|_| StreamClosed)
    }

    /// Sends an error part.
    pub async fn error(
        &mut self,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> Result<(), StreamClosed> {
        self.send(response::Part::Error(ResponseError {
            code: code as i32,
            message: message.into(),
        }))
        .await
    }
}

/// How a request ended, as far as the executor is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Head, body and end were sent.
    Complete,
    /// An error part was sent with this code.
    Failed(ErrorCode),
    /// The stream closed while sending.
    StreamClosed,
}

/// Runs relayed requests.
#[derive(Clone)]
pub struct Executor {
    kube: kube::Client,
    http: Option<reqwest::Client>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("http_relay", &self.http.is_some())
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// An executor using `kube` for Kubernetes calls and `http` (when relaying HTTP is
    /// allowed) for requests into the network.
    pub fn new(kube: kube::Client, http: Option<reqwest::Client>) -> Executor {
        Executor { kube, http }
    }

    /// The HTTP client for requests into the network: no redirects followed (the caller sees
    /// them), bounded connect time; overall time is bounded by each request's deadline.
    pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
    }

    /// The kinds this executor relays, for the hello.
    pub fn capabilities(&self) -> Vec<String> {
        let mut kinds = vec!["kubernetes".to_string()];
        if self.http.is_some() {
            kinds.push("http".to_string());
        }
        kinds
    }

    /// Executes `request` (its body complete) and streams the answer into `sink`.
    pub async fn execute(&self, request: Request, sink: &mut ResponseSink) -> Outcome {
        let kind = RequestKind::try_from(request.kind).unwrap_or(RequestKind::Unspecified);
        let result = match kind {
            RequestKind::Kubernetes => self.kubernetes(request, sink).await,
            RequestKind::Http => self.http(request, sink).await,
            RequestKind::Unspecified => Err(Failure::invalid("unknown request kind")),
        };
        match result {
            Ok(()) => Outcome::Complete,
            Err(Failure::Closed) => Outcome::StreamClosed,
            Err(Failure::Error(code, message)) => {
                tracing::debug!(code = code.as_str_name(), %message, "request failed");
                match sink.error(code, message).await {
                    Ok(()) => Outcome::Failed(code),
                    Err(StreamClosed) => Outcome::StreamClosed,
                }
            }
        }
    }

    async fn kubernetes(&self, request: Request, sink: &mut ResponseSink) -> Result<(), Failure> {
        // Only a path on the API server: a full URL could point the agent's credentials at
        // another host.
        if !request.target.starts_with('/') {
            return Err(Failure::invalid(format!(
                "a Kubernetes target must be a path, not {:?}",
                request.target
            )));
        }
        let mut http_request = build(&request)?.map(kube::client::Body::from);
        // The agent's credentials are kube-rs's, never the caller's.
        http_request.headers_mut().remove(header::AUTHORIZATION);
        let response = self
            .kube
            .send(http_request)
            .await
            .map_err(|e| Failure::Error(ErrorCode::Unreachable, error_chain(&e)))?;
        stream(response, sink).await
    }

    async fn http(&self, request: Request, sink: &mut ResponseSink) -> Result<(), Failure> {
        let Some(client) = &self.http else {
            return Err(Failure::invalid("this agent does not relay HTTP requests"));
        };
        let url: reqwest::Url = request
            .target
            .parse()
            .map_err(|_| Failure::invalid(format!("{:?} is not a URL", request.target)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Failure::invalid(format!(
                "only http and https URLs are relayed, not {}",
                url.scheme()
            )));
        }
        let http_request = build(&request)?;
        let http_request = reqwest::Request::try_from(http_request.map(reqwest::Body::from))
            .map_err(|e| Failure::invalid(error_chain(&e)))?;
        let response = client
            .execute(http_request)
            .await
            .map_err(|e| Failure::Error(ErrorCode::Unreachable, error_chain(&e)))?;
        stream(http::Response::from(response), sink).await
    }
}

/// Why an execution stopped early.
enum Failure {
    /// Send this error to the caller.
    Error(ErrorCode, String),
    /// The stream to the hub closed.
    Closed,
}

impl Failure {
    fn invalid(message: impl Into<String>) -> Failure {
        Failure::Error(ErrorCode::InvalidRequest, message.into())
    }
}

impl From<StreamClosed> for Failure {
    fn from(_: StreamClosed) -> Failure {
        Failure::Closed
    }
}

/// An `http::Request` from the relayed request, hop-by-hop headers dropped.
fn build(request: &Request) -> Result<http::Request<Bytes>, Failure> {
    let method = http::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| Failure::invalid(format!("invalid method {:?}", request.method)))?;
    let mut builder = http::Request::builder()
        .method(method)
        .uri(request.target.as_str());
    for Header { name, value } in &request.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Failure::invalid(format!("invalid header name {name:?}")))?;
        if HOP_BY_HOP.contains(&name) {
            continue;
        }
        let value = HeaderValue::from_bytes(value)
            .map_err(|_| Failure::invalid(format!("invalid value of header {name}")))?;
        builder = builder.header(name, value);
    }
    builder
        .body(request.body.clone())
        .map_err(|e| Failure::invalid(e.to_string()))
}

/// Streams a response: the head, then each body frame in bounded chunks, then the end.
async fn stream<B>(response: http::Response<B>, sink: &mut ResponseSink) -> Result<(), Failure>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error,
{
    let (parts, mut body) = response.into_parts();
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| !HOP_BY_HOP.contains(name) || *name == header::CONTENT_LENGTH)
        .map(|(name, value)| Header {
            name: name.as_str().to_string(),
            value: Bytes::copy_from_slice(value.as_bytes()),
        })
        .collect();
    sink.send(response::Part::Head(ResponseHead {
        status: u32::from(parts.status.as_u16()),
        headers,
    }))
    .await?;
    let max = ferry_proto::MAX_CHUNK_BYTES;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Failure::Error(
                ErrorCode::Unreachable,
                format!("reading the response body: {}", error_chain(&e)),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            // Trailers are not relayed.
            continue;
        };
        // Each frame goes out as soon as it arrives, so watch events are not held back.
        for start in (0..data.len()).step_by(max) {
            let chunk = data.slice(start..(start + max).min(data.len()));
            sink.send(response::Part::Chunk(BodyChunk { data: chunk }))
                .await?;
        }
    }
    sink.send(response::Part::End(ResponseEnd {})).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            request_id: "r1".into(),
            kind: RequestKind::Http as i32,
            method: method.into(),
            target: target.into(),
            headers: headers
                .iter()
                .map(|(n, v)| Header {
                    name: n.to_string(),
                    value: Bytes::copy_from_slice(v.as_bytes()),
                })
                .collect(),
            body: Bytes::from_static(b"{}"),
            body_complete: true,
            deadline_unix_ms: 0,
            ..Request::default()
        }
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_and_bad_input_refused() {
        let built = build(&request(
            "PATCH",
            "/api/v1/namespaces/default/pods/p",
            &[
                ("content-type", "application/merge-patch+json"),
                ("connection", "keep-alive"),
                ("host", "evil.test"),
                ("content-length", "9999"),
            ],
        ))
        .ok()
        .unwrap();
        assert_eq!(built.method(), http::Method::PATCH);
        assert_eq!(built.headers().len(), 1);
        assert_eq!(
            built.headers()[header::CONTENT_TYPE],
            "application/merge-patch+json"
        );
        assert!(build(&request("GE T", "/", &[])).is_err());
        assert!(build(&request("GET", "/", &[("bad name", "v")])).is_err());
    }

    #[tokio::test]
    async fn bodies_stream_in_bounded_chunks_with_increasing_seq() {
        let (tx, mut rx) = mpsc::channel(64);
        let mut sink = ResponseSink::new("r1".into(), tx);
        let max = ferry_proto::MAX_CHUNK_BYTES;
        let body = http_body_util::Full::new(Bytes::from(vec![1u8; max * 2 + 3]));
        let response = http::Response::builder()
            .status(201)
            .header("content-type", "application/json")
            .header("connection", "close")
            .body(body)
            .unwrap();
        assert!(stream(response, &mut sink).await.is_ok());
        drop(sink);
        let mut parts = Vec::new();
        while let Some(message) = rx.recv().await {
            let Some(agent_message::Kind::Response(r)) = message.kind else {
                panic!("not a response");
            };
            assert_eq!(r.seq, parts.len() as u64);
            parts.push(r.part.unwrap());
        }
        let response::Part::Head(head) = &parts[0] else {
            panic!("first part is not a head");
        };
        assert_eq!(head.status, 201);
        assert_eq!(head.headers.len(), 1);
        let sizes: Vec<usize> = parts[1..parts.len() - 1]
            .iter()
            .map(|p| match p {
                response::Part::Chunk(c) => c.data.len(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(sizes, vec![max, max, 3]);
        assert!(matches!(parts.last(), Some(response::Part::End(_))));
    }
}
