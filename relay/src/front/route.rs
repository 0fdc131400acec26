//! Routes plugged into the front server, e.g. the mobile bridge under `/bridge`.

use std::{fmt, future::Future, net::SocketAddr, pin::Pin};

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body_util::{BodyExt as _, Empty, Full, combinators::UnsyncBoxBody};
use hyper::{Request, Response, body::Incoming};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::conn::Slot;

/// Error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response body type of the front server (and of [`RouteHandler`]s).
pub type FrontBody = UnsyncBoxBody<Bytes, BoxError>;

/// What [`RouteHandler::handle`] returns.
pub type RouteFuture = Pin<Box<dyn Future<Output = Response<FrontBody>> + Send>>;

/// A body holding `bytes`.
pub fn full_body(bytes: impl Into<Bytes>) -> FrontBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty_body() -> FrontBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A small `text/plain` response.
pub(crate) fn plain(status: StatusCode, text: &'static str) -> Response<FrontBody> {
    let mut response = Response::new(full_body(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Serves every request whose path is a route's prefix or lies below it
/// (see [`crate::FrontConfig::route`]).
///
/// The request carries a [`RequestContext`] in its extensions
/// (`request.extensions().get::<RequestContext>()`). To take over the connection (a WebSocket),
/// call `hyper::upgrade::on(&mut request)`, answer `101 Switching Protocols`, and drive the
/// upgraded stream in a task started with [`RequestContext::spawn`]: that task is owned by the
/// server (cancelled when it stops) and keeps the connection counted against the limits.
pub trait RouteHandler: Send + Sync + 'static {
    /// Answers one request. `peer` is the client's address as the server sees it.
    fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> RouteFuture;

    /// Appends this route's metrics to the `/metrics` output, in the Prometheus text format
    /// (`# HELP`, `# TYPE` and sample lines, each ending with `\n`). Names should start with
    /// `peer_`. The default appends nothing.
    fn write_metrics(&self, out: &mut String) {
        let _ = out;
    }

    /// Called once when the server stops, after it stopped accepting connections and before
    /// it cancels the tasks started with [`RequestContext::spawn`]. The default does nothing.
    fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::ready(()))
    }
}

/// Facts about the connection a request arrived on, and a way to run tasks on its behalf.
///
/// Found in the extensions of every request given to a [`RouteHandler`].
#[derive(Clone)]
pub struct RequestContext {
    pub(crate) peer: SocketAddr,
    pub(crate) tls: bool,
    pub(crate) slot: Slot,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tasks: TaskTracker,
}

impl fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContext")
            .field("peer", &self.peer)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl RequestContext {
    /// The client's address as the server sees it.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the request arrived over HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// A token cancelled when the server stops.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.child_token()
    }

    /// Runs `task` on behalf of this connection, e.g. to serve an upgraded WebSocket.
    ///
    /// The server owns the task: it keeps the connection counted against the connection limits
    /// while it runs, is dropped (cancelled) when the server stops, and the server waits for it.
    /// If the server is already stopping, the task does not run.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let slot = self.slot.clone();
        // Cancelling this task closes whatever socket it holds: the connection no longer needs
        // the duplicate descriptor kept to force-close it.
        slot.release_kill_switch();
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            let _slot = slot;
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {}
                () = task => {}
            }
        });
    }
}
