//! Server-sent events: a parser for the `text/event-stream` format (fields `id`, `event`,
//! `data`, comments, CRLF or LF lines, chunks split anywhere), and a follower that keeps one
//! deployment's event stream open, reconnecting with `Last-Event-ID` when it drops, and
//! signals every event to the watcher.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::client::Client;
use crate::error::ApiError;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// `id:`, the API's event sequence number.
    pub id: Option<String>,
    /// `event:`, the event's kind.
    pub event: Option<String>,
    /// `data:` lines joined with newlines.
    pub data: String,
}

/// Incremental parser: feed it chunks, get complete events.
#[derive(Debug, Default)]
pub struct Parser {
    buffer: Vec<u8>,
    current: Event,
    has_data: bool,
}

impl Parser {
    /// Parses `chunk`, returning the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.buffer.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line);
            if line.is_empty() {
                if self.has_data || self.current.event.is_some() {
                    out.push(std::mem::take(&mut self.current));
                } else {
                    self.current = Event::default();
                }
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (name, value) = match line.split_once(':') {
                Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_ref(), ""),
            };
            match name {
                "id" => self.current.id = Some(value.to_string()),
                "event" => self.current.event = Some(value.to_string()),
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        out
    }
}

/// What the follower tells the watcher.
#[derive(Debug)]
pub enum Signal {
    /// An event arrived: something changed.
    Changed,
    /// The API closed the stream (it does once the deployment ended).
    Closed,
    /// The stream cannot be followed (not found, not authorised): rely on polling.
    GaveUp(ApiError),
}

/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Follows `/v1/deployments/{id}/events` until the receiver goes away, reconnecting after a
/// drop with the last event id seen, so nothing is missed or repeated.
pub async fn follow(client: Arc<Client>, path: String, signals: mpsc::UnboundedSender<Signal>) {
    let mut last: Option<i64> = None;
    let mut backoff = Duration::from_millis(250);
    loop {
        match client.event_stream(&path, last).await {
            Ok(mut response) => {
                backoff = Duration::from_millis(250);
                let mut parser = Parser::default();
                loop {
                    match response.chunk().await {
                        Ok(Some(bytes)) => {
                            for event in parser.push(&bytes) {
                                if let Some(seq) = event.id.as_deref().and_then(|i| i.parse().ok())
                                {
                                    last = Some(seq);
                                }
                                if signals.send(Signal::Changed).is_err() {
                                    return;
                                }
                            }
                        }
                        Ok(None) => {
                            if signals.send(Signal::Closed).is_err() {
                                return;
                            }
                            break;
                        }
                        // Dropped mid-stream: reconnect and resume.
                        Err(_) => break,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_assembled_across_chunks_and_line_endings() {
        let mut p = Parser::default();
        assert!(p.push(b": keep-alive\n\nid: 1\nevent: step.sta").is_empty());
        let events = p.push(b"rted\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\nid: 2\ndata:x\n\n");
        assert_eq!(
            events,
            [
                Event {
                    id: Some("1".into()),
                    event: Some("step.started".into()),
                    data: "{\"a\":\n1}".into(),
                },
                Event {
                    id: Some("2".into()),
                    event: None,
                    data: "x".into(),
                },
            ]
        );
        assert!(p.push(b"data: partial").is_empty());
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

    #[tokio::test]
    async fn a_dropped_stream_is_resumed_after_the_last_event_seen() {
        use tokio::io::AsyncWriteExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            // First connection: two events, then the connection drops mid-stream.
            let (mut socket, _) = listener.accept().await.unwrap();
            let first = request_head(&mut socket).await;
            let body = "id: 6\nevent: step.started\ndata: {}\n\nid: 7\ndata: {}\n\n";
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
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
        let client = Client::new(crate::config::Settings {
            api,
            auth: crate::config::Auth::Token("tok".into()),
            tenant: None,
        })
        .unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        follow(Arc::new(client), "/v1/deployments/d/events".into(), tx).await;
        let mut signals = Vec::new();
        while let Ok(s) = rx.try_recv() {
            signals.push(s);
        }
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
        assert!(!first.contains("last-event-id"), "{first}");
        assert!(second.contains("last-event-id: 7\r\n"), "{second}");
    }

    #[test]
    fn multibyte_text_split_between_chunks_survives() {
        let mut p = Parser::default();
        let text = "data: 25% → 50%\n\n".as_bytes();
        let (a, b) = text.split_at(11);
        assert!(p.push(a).is_empty());
        assert_eq!(p.push(b)[0].data, "25% → 50%");
    }
}
