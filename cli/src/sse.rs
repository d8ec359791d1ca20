//! Server-sent events: a follower that keeps one deployment's event stream open, decoding it
//! with `sse-stream`, reconnecting with `Last-Event-ID` when it drops, and signalling every
//! event to the watcher. It owns the bound on how much one event may buffer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use sse_stream::{Sse, SseByteStream};
use tokio::sync::mpsc;

use crate::client::Client;
use crate::error::ApiError;

/// What the follower tells the watcher.
#[derive(Debug)]
pub(crate) enum Signal {
    /// An event arrived: something changed.
    Changed,
    /// The API closed the stream (it does once the deployment ended).
    Closed,
    /// The stream cannot be followed (not found, not authorised): rely on polling.
    GaveUp(ApiError),
}

/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The most bytes that may arrive without completing an event (the API's events are a few
/// hundred bytes of JSON). `sse-stream` buffers a line or an event's data without limit, so the
/// bound is kept around its input, see [`events`].
const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Follows `/v1/deployments/{id}/events` until the receiver goes away, reconnecting after a
/// drop with the last event id seen, so nothing is missed or repeated.
pub(crate) async fn follow(
    client: Arc<Client>,
    path: String,
    signals: mpsc::UnboundedSender<Signal>,
) {
    let mut last: Option<i64> = None;
    let mut backoff = Duration::from_millis(250);
    loop {
        match client.event_stream(&path, last).await {
            Ok(response) => {
                backoff = Duration::from_millis(250);
                let body = reqwest::Body::from(response);
                let mut events = std::pin::pin!(events(
                    http_body_util::BodyDataStream::new(body),
                    MAX_EVENT_BYTES
                ));
                loop {
                    match events.next().await {
                        Some(Ok(event)) => {
                            if let Some(seq) = event.id.as_deref().and_then(|i| i.parse().ok()) {
                                last = Some(seq);
                            }
                            // Blocks with only an id or a retry time tell nothing new.
                            if (event.data.is_some() || event.event.is_some())
                                && signals.send(Signal::Changed).is_err()
                            {
                                return;
                            }
                        }
                        None => {
                            if signals.send(Signal::Closed).is_err() {
                                return;
                            }
                            break;
                        }
                        // Dropped mid-stream: reconnect and resume.
                        Some(Err(sse_stream::Error::Body(e)))
                            if matches!(e.downcast_ref(), Some(ChunkError::Read(_))) =>
                        {
                            break;
                        }
                        // Too large an event or text that is not UTF-8: resuming after the last
                        // event would meet the same again.
                        Some(Err(e)) => {
                            let _ = signals.send(Signal::GaveUp(ApiError::Unexpected {
                                api: client.api().to_string(),
                                detail: format!("in the event stream: {e}"),
                            }));
                            return;
                        }
                    }
                }
            }
            Err(
                e @ (ApiError::NotFound(_) | ApiError::NotAuthorised(_) | ApiError::NotLoggedIn),
            ) => {
                let _ = signals.send(Signal::GaveUp(e));
                return;
            }
            // Unreachable for now, or refused (e.g. rate limited): try again later.
            Err(_) => {}
        }
        if signals.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The events of `body`, which fails with [`ChunkError::TooLarge`] once more than `limit` bytes
/// arrive without completing an event. The count restarts at each event the decoder hands out,
/// and the decoder holds only bytes that arrived after that event or with it, so it never holds
/// more than `limit` plus one chunk. Comments and keep-alives count too: stricter than needed,
/// but at the API's keep-alive of a few bytes every few seconds the bound is days away.
fn events<S>(body: S, limit: usize) -> impl Stream<Item = Result<Sse, sse_stream::Error>>
where
    S: Stream<Item = Result<Bytes, reqwest::Error>>,
{
    let pending = Arc::new(AtomicUsize::new(0));
    let counted = {
        let pending = pending.clone();
        body.map(move |chunk| {
            let chunk = chunk.map_err(ChunkError::Read)?;
            let total = pending.fetch_add(chunk.len(), Ordering::Relaxed) + chunk.len();
            if total > limit {
                return Err(ChunkError::TooLarge(limit));
            }
            Ok(chunk)
        })
    };
    SseByteStream::new(counted).inspect(move |event| {
        if event.is_ok() {
            pending.store(0, Ordering::Relaxed);
        }
    })
}

/// Why the body gave no more bytes.
#[derive(Debug, thiserror::Error)]
enum ChunkError {
    /// The connection failed (dropped, timed out).
    #[error(transparent)]
    Read(reqwest::Error),
    /// More than this many bytes arrived without completing an event.
    #[error("more than {0} bytes without completing an event")]
    TooLarge(usize),
}

#[cfg(test)]
mod tests {
    use futures::FutureExt as _;

    use super::*;

    /// A body fed chunk by chunk through the returned sender, decoded by [`events`].
    fn fed(
        limit: usize,
    ) -> (
        futures::channel::mpsc::UnboundedSender<&'static [u8]>,
        impl Stream<Item = Result<Sse, sse_stream::Error>>,
    ) {
        let (tx, rx) = futures::channel::mpsc::unbounded::<&'static [u8]>();
        let body = rx.map(|chunk| Ok::<_, reqwest::Error>(Bytes::from_static(chunk)));
        (tx, events(body, limit))
    }

    fn event(id: Option<&str>, kind: Option<&str>, data: &str) -> Sse {
        Sse {
            id: id.map(Into::into),
            event: kind.map(Into::into),
            data: Some(data.into()),
            retry: None,
        }
    }

    #[tokio::test]
    async fn events_are_assembled_across_chunks_and_line_endings() {
        let (tx, events) = fed(MAX_EVENT_BYTES);
        let mut events = std::pin::pin!(events);
        tx.unbounded_send(b": keep-alive\n\nid: 1\nevent: step.sta")
            .unwrap();
        assert!(
            events.next().now_or_never().is_none(),
            "nothing complete yet"
        );
        tx.unbounded_send(b"rted\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\nid: 2\ndata:x\n\n")
            .unwrap();
        tx.unbounded_send(b"data: partial").unwrap();
        drop(tx);
        let events: Vec<Sse> = events.map(Result::unwrap).collect().await;
        assert_eq!(
            events,
            [
                event(Some("1"), Some("step.started"), "{\"a\":\n1}"),
                event(Some("2"), None, "x"),
            ],
            "an event cut off by the end of the stream is not dispatched"
        );
    }

    #[tokio::test]
    async fn multibyte_text_split_between_chunks_survives() {
        let (tx, events) = fed(MAX_EVENT_BYTES);
        let text = "data: 25% → 50%\n\n".as_bytes();
        let (a, b) = text.split_at(11);
        // The split falls inside the arrow's three bytes.
        assert!(std::str::from_utf8(a).is_err());
        tx.unbounded_send(a).unwrap();
        tx.unbounded_send(b).unwrap();
        drop(tx);
        let events: Vec<Sse> = events.map(Result::unwrap).collect().await;
        assert_eq!(events, [event(None, None, "25% → 50%")]);
    }

    #[tokio::test]
    async fn one_event_may_not_buffer_more_than_the_bound() {
        // Many small events together pass the bound; the count restarts at each event.
        let (tx, events) = fed(64);
        let mut events = std::pin::pin!(events);
        for _ in 0..10 {
            tx.unbounded_send(b"id: 1\ndata: twenty bytes long..\n\n")
                .unwrap();
            assert!(events.next().await.unwrap().is_ok());
        }
        // One event arriving in pieces fails once the pieces pass the bound.
        tx.unbounded_send(b"data: 0123456789012345678901234567890123456789")
            .unwrap();
        assert!(events.next().now_or_never().is_none());
        tx.unbounded_send(b"0123456789012345678901234567890123456789")
            .unwrap();
        let error = events.next().await.unwrap().unwrap_err();
        let sse_stream::Error::Body(cause) = &error else {
            panic!("{error:?}")
        };
        assert!(
            matches!(cause.downcast_ref(), Some(ChunkError::TooLarge(64))),
            "{error:?}"
        );
        assert!(events.next().await.is_none(), "the stream ends after it");
    }

    /// Reads one HTTP request's head from `socket`.
    async fn request_head(socket: &mut tokio::net::TcpStream) -> String {
        use tokio::io::AsyncReadExt as _;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            socket.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        String::from_utf8(head).unwrap().to_lowercase()
    }

    /// A client of the API at `api` with a fixed token.
    fn client(api: String) -> Arc<Client> {
        Arc::new(
            Client::new(crate::config::Settings {
                api,
                auth: crate::config::Auth::Token("tok".into()),
                tenant: None,
            })
            .unwrap(),
        )
    }

    /// Every signal sent so far.
    fn drained(rx: &mut mpsc::UnboundedReceiver<Signal>) -> Vec<Signal> {
        let mut signals = Vec::new();
        while let Ok(s) = rx.try_recv() {
            signals.push(s);
        }
        signals
    }

    /// An HTTP/1.1 event-stream answer whose body is one chunk, `body`.
    fn stream_answer(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n",
            body.len()
        )
    }

    #[tokio::test]
    async fn a_dropped_stream_is_resumed_after_the_last_event_seen() {
        use tokio::io::AsyncWriteExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            // First connection: two events, then the connection drops mid-stream.
            let (mut socket, _) = listener.accept().await.unwrap();
            let first = request_head(&mut socket).await;
            let body =
                "id: 6\nevent: step.started\ndata: {}\n\n: keep-alive\n\nid: 7\ndata: {}\n\n";
            socket
                .write_all(stream_answer(body).as_bytes())
                .await
                .unwrap();
            socket.flush().await.unwrap();
            drop(socket);
            // Second connection: the follower resumes; the deployment is gone.
            let (mut socket, _) = listener.accept().await.unwrap();
            let second = request_head(&mut socket).await;
            let problem = r#"{"code":"not_found","detail":"deployment not found"}"#;
            let response = format!(
                "HTTP/1.1 404 Not Found\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{problem}",
                problem.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
            (first, second)
        });
        let (tx, mut rx) = mpsc::unbounded_channel();
        follow(client(api), "/v1/deployments/d/events".into(), tx).await;
        let signals = drained(&mut rx);
        assert!(
            matches!(
                signals[..],
                [
                    Signal::Changed,
                    Signal::Changed,
                    Signal::GaveUp(ApiError::NotFound(_))
                ]
            ),
            "{signals:?}"
        );
        let (first, second) = server.await.unwrap();
        assert!(
            first.starts_with("get /v1/deployments/d/events "),
            "{first}"
        );
        assert!(first.contains("authorization: bearer tok"), "{first}");
        assert!(first.contains("accept: text/event-stream"), "{first}");
        assert!(!first.contains("last-event-id"), "{first}");
        assert!(second.contains("last-event-id: 7\r\n"), "{second}");
    }

    #[tokio::test]
    async fn an_event_past_the_bound_ends_following_without_reconnecting() {
        use tokio::io::AsyncWriteExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            request_head(&mut socket).await;
            // The bytes that arrived with the first event's end are not counted against the
            // second, so twice the bound is sure to pass it.
            let body = format!(
                "id: 6\ndata: {{}}\n\nid: 7\ndata: {}",
                "x".repeat(2 * MAX_EVENT_BYTES)
            );
            // The follower hangs up part-way through; that write error is expected.
            let _ = socket.write_all(stream_answer(&body).as_bytes()).await;
            listener
        });
        let (tx, mut rx) = mpsc::unbounded_channel();
        // follow returns only by giving up: a reconnection would wait for an accept that never
        // comes. The timeout only turns a regression into a failure instead of a hang.
        let following = follow(client(api), "/v1/deployments/d/events".into(), tx);
        tokio::time::timeout(Duration::from_secs(60), following)
            .await
            .expect("the follower gives up on an event past the bound");
        let signals = drained(&mut rx);
        match &signals[..] {
            [
                Signal::Changed,
                Signal::GaveUp(ApiError::Unexpected { detail, .. }),
            ] => {
                assert!(detail.contains("without completing an event"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        server.await.unwrap();
    }
}
