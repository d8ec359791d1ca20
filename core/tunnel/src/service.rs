//! The tower service over a tunnel: collects the request body, sends the request to one agent
//! and answers with a streaming body, so `kube::Client::new(service, namespace)` works.

use crate::call::{ReplyStream, RequestKind};
use crate::error::{BoxError, TunnelError};
use crate::{AgentTunnel, call};
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Body, Frame};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use std::task::{Context, Poll};
use std::time::Duration;

/// A request extension setting how long the tunnel waits for the complete answer (the
/// tunnel's default timeout otherwise).
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub Duration);

/// The body of a tunnelled response: chunks as they arrive from the agent.
pub type TunnelBody = UnsyncBoxBody<Bytes, TunnelError>;

/// Sends each request to one agent's Kubernetes API through the hub.
#[derive(Clone, Debug)]
pub struct TunnelService {
    tunnel: AgentTunnel,
    tenant: String,
    agent: String,
}

impl TunnelService {
    pub(crate) fn new(tunnel: AgentTunnel, tenant: String, agent: String) -> TunnelService {
        TunnelService {
            tunnel,
            tenant,
            agent,
        }
    }
}

impl<B> tower::Service<http::Request<B>> for TunnelService
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<TunnelBody>;
    type Error = TunnelError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Requests are independent messages on a shared channel: always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let tunnel = self.tunnel.clone();
        let tenant = self.tenant.clone();
        let agent = self.agent.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| TunnelError::Body(e.into()))?
                .to_bytes();
            let mut parts = parts;
            if parts.extensions.get::<crate::Deadline>().is_none()
                && let Some(deadline) = watch_deadline(&parts)
            {
                parts.extensions.insert(deadline);
            }
            let request = http::Request::from_parts(parts, body);
            let response =
                call::send(&tunnel, &tenant, &agent, RequestKind::Kubernetes, request).await?;
            Ok(http::Response::from_parts(
                response.head,
                into_body(response.body),
            ))
        })
    }
}

/// The longest a watch through the tunnel runs before its watcher starts a new one.
pub(crate) const MAX_WATCH: Duration = Duration::from_secs(600);

/// A Kubernetes watch (`?watch=true`) streams until its own `timeoutSeconds`, far longer than an
/// ordinary request may take: its deadline is that timeout (at most [`MAX_WATCH`]) and a margin
/// for the server to end it first. `None` for every other request.
fn watch_deadline(parts: &http::request::Parts) -> Option<crate::Deadline> {
    let query = parts.uri.query()?;
    let mut watch = false;
    let mut timeout = MAX_WATCH;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("watch", "true" | "1")) => watch = true,
            Some(("timeoutSeconds", secs)) => {
                if let Ok(secs) = secs.parse::<u64>() {
                    timeout = Duration::from_secs(secs).min(MAX_WATCH);
                }
            }
            _ => {}
        }
    }
    watch.then(|| crate::Deadline(timeout + Duration::from_secs(15)))
}

/// A streaming body reading the remaining replies.
pub(crate) fn into_body(replies: ReplyStream) -> TunnelBody {
    let frames = futures::stream::unfold(Some(replies), |state| async move {
        let mut replies = state?;
        match replies.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(Frame::data(chunk)), Some(replies))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    });
    StreamBody::new(frames).boxed_unsync()
}

impl crate::TunnelResponse {
    /// The response as an `http::Response` with a streaming body.
    pub fn into_http(self) -> http::Response<TunnelBody> {
        http::Response::from_parts(self.head, into_body(self.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str) -> http::request::Parts {
        http::Request::get(uri).body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_watch_gets_its_own_timeout_and_a_margin_others_the_default() {
        let secs = |d: Option<crate::Deadline>| d.map(|d| d.0.as_secs());
        let list = "/apis/apps/v1/namespaces/shop/replicasets?labelSelector=a";
        assert_eq!(secs(watch_deadline(&parts(list))), None);
        let watch = "/apis/apps/v1/namespaces/shop/replicasets?watch=true&timeoutSeconds=290";
        assert_eq!(secs(watch_deadline(&parts(watch))), Some(305));
        let long = "/api/v1/pods?timeoutSeconds=86400&watch=1";
        assert_eq!(secs(watch_deadline(&parts(long))), Some(615));
        assert_eq!(
            secs(watch_deadline(&parts("/api/v1/pods?watch=true"))),
            Some(615)
        );
        assert_eq!(
            secs(watch_deadline(&parts("/api/v1/pods?watch=false"))),
            None
        );
    }
}
