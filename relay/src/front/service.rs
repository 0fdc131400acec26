//! One accepted connection: the TLS handshake, the HTTP/1.1 connection, and [`FrontService`],
//! which dispatches each request to the relay, health, metrics, a route or the static files.

use std::{
    convert::Infallible, future::Future, net::SocketAddr, pin::Pin, sync::Arc, time::Duration,
};

use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper::{Request, Response, body::Incoming, service::Service};
use hyper_util::rt::{TokioIo, TokioTimer};
use iroh_relay::{
    http::{RELAY_PATH, RELAY_PROBE_PATH},
    server::{http_server::RelayServiceWithNotify, streams::MaybeTlsStream},
};
use tokio::{net::TcpStream, sync::Notify};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::{
    config::MetricsExposure,
    conn::Slot,
    metrics::RouteKind,
    relay_access::SLOT_HEADER,
    route::{FrontBody, RequestContext, full_body, plain},
    shared::Shared,
    statics::CSP,
};

/// Header timeout of a connection in the descriptor reserve: it may only ask for health,
/// metrics or a file, so it gets less time than others.
const RESERVE_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// `Retry-After` of a relay or route request refused for want of descriptors, in seconds.
const RESERVE_RETRY_AFTER: &str = "30";

/// Serves one accepted connection until it ends or the server stops.
///
/// `in_reserve`: the connection's descriptor is in the reserve (see `super::fds`): it is served
/// one request only, with a shorter header timeout, and not as a relay client or a route.
pub(crate) async fn serve_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    tls: Option<TlsAcceptor>,
    in_reserve: bool,
) {
    let _ = stream.set_nodelay(true);
    let is_tls = tls.is_some();
    let io = match tls {
        None => MaybeTlsStream::Plain(stream),
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(shared.limits.tls_handshake_timeout, acceptor.accept(stream));
            tokio::select! {
                () = shared.cancel.cancelled() => return,
                result = handshake => match result {
                    Ok(Ok(tls)) => MaybeTlsStream::Tls(tls),
                    Ok(Err(err)) => {
                        shared.metrics.tls_failed();
                        debug!(%err, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        shared.metrics.tls_failed();
                        debug!("TLS handshake timed out");
                        return;
                    }
                },
            }
        }
    };
    let service = FrontService {
        relay: RelayServiceWithNotify::new(shared.relay.clone(), Arc::new(Notify::new())),
        shared: shared.clone(),
        peer,
        slot,
        tls: is_tls,
        in_reserve,
    };
    let header_timeout = if in_reserve {
        shared
            .limits
            .header_read_timeout
            .min(RESERVE_HEADER_TIMEOUT)
    } else {
        shared.limits.header_read_timeout
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(!in_reserve)
        .max_buf_size(64 * 1024);
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shared.cancel.cancelled() => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(shared.limits.shutdown_grace, connection).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
    };
    if let Err(err) = result {
        debug!(%err, "HTTP connection ended with an error");
    }
}

/// The per-connection hyper service.
#[derive(Clone)]
struct FrontService {
    relay: RelayServiceWithNotify,
    shared: Arc<Shared>,
    peer: SocketAddr,
    slot: Slot,
    tls: bool,
    /// The connection's descriptor is in the reserve: no relay, no routes.
    in_reserve: bool,
}

type ServiceFuture = Pin<Box<dyn Future<Output = Result<Response<FrontBody>, Infallible>> + Send>>;

impl Service<Request<Incoming>> for FrontService {
    type Response = Response<FrontBody>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.route(request).await) })
    }
}

impl FrontService {
    async fn route(self, mut request: Request<Incoming>) -> Response<FrontBody> {
        let path = request.uri().path();
        let shared = &self.shared;
        if path == RELAY_PATH || path == RELAY_PROBE_PATH || path == "/generate_204" {
            let relay = path == RELAY_PATH;
            shared.metrics.request(if relay {
                RouteKind::Relay
            } else {
                RouteKind::Probe
            });
            if relay {
                if self.in_reserve {
                    return self.refuse_in_reserve("relay");
                }
                self.prepare_relay_request(&mut request);
            }
            let response = match self.relay.call(request).await {
                Ok(response) => {
                    response.map(|body| body.map_err(|never| match never {}).boxed_unsync())
                }
                Err(err) => {
                    debug!(%err, "relay service failed");
                    plain(StatusCode::INTERNAL_SERVER_ERROR, "relay error\n")
                }
            };
            if relay && response.status() != StatusCode::SWITCHING_PROTOCOLS {
                self.slot.clear_relay_upgrading();
            }
            return with_default_headers(response);
        }
        let response = match path {
            "/healthz" => {
                shared.metrics.request(RouteKind::Healthz);
                if matches!(*request.method(), Method::GET | Method::HEAD) {
                    let mut response = plain(StatusCode::OK, "ok\n");
                    response
                        .headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    response
                } else {
                    method_not_allowed()
                }
            }
            "/metrics" => {
                shared.metrics.request(RouteKind::Metrics);
                self.metrics_response(&request)
            }
            _ => {
                if let Some(route) = shared.route_for(path).cloned() {
                    shared.metrics.request(RouteKind::Route);
                    if self.in_reserve {
                        return self.refuse_in_reserve("route");
                    }
                    request.extensions_mut().insert(RequestContext {
                        peer: self.peer,
                        tls: self.tls,
                        slot: self.slot.clone(),
                        shutdown: shared.cancel.clone(),
                        tasks: shared.tasks.clone(),
                    });
                    return with_default_headers(route.handle(request, self.peer).await);
                }
                shared.metrics.request(RouteKind::Static);
                if !matches!(*request.method(), Method::GET | Method::HEAD) {
                    method_not_allowed()
                } else if let Some(statics) = &shared.statics {
                    statics.serve(&request).await
                } else {
                    plain(StatusCode::NOT_FOUND, "not found\n")
                }
            }
        };
        with_default_headers(response)
    }

    /// Tags a `/relay` request with its connection, hides its token from any `Debug` output,
    /// and arms the handshake timeout.
    fn prepare_relay_request(&self, request: &mut Request<Incoming>) {
        let headers = request.headers_mut();
        headers.remove(SLOT_HEADER);
        headers.insert(SLOT_HEADER, HeaderValue::from(self.slot.id()));
        if let header::Entry::Occupied(mut entry) = headers.entry(header::AUTHORIZATION) {
            for value in entry.iter_mut() {
                value.set_sensitive(true);
            }
        }
        // The relay handler keeps the request's parts (and so this slot) until the handshake
        // ends; the access control keeps the slot for as long as the client stays connected.
        request.extensions_mut().insert(self.slot.clone());
        self.slot.set_relay_upgrading();

        let weak = self.slot.downgrade();
        let shared = self.shared.clone();
        let timeout = shared.limits.relay_handshake_timeout;
        self.shared.tasks.spawn(async move {
            tokio::select! {
                () = shared.cancel.cancelled() => {}
                () = tokio::time::sleep(timeout) => {
                    if weak.kill_if_relay_upgrading() {
                        shared.metrics.relay_handshake_timeout();
                    }
                }
            }
        });
    }

    /// Answers a relay or route request on a connection in the descriptor reserve: `503`, and
    /// the connection is closed after it.
    fn refuse_in_reserve(&self, what: &'static str) -> Response<FrontBody> {
        self.shared.metrics.fd_reserve_refused();
        if let Some(count) = self.shared.fd_log.hit() {
            warn!(
                refused = count,
                fd_limit = self.shared.fds.limit(),
                reserve = self.shared.fds.reserve(),
                what,
                "near the file descriptor limit: refusing new relay clients and routes \
                 (health and metrics still answer); raise the limit or spread the load"
            );
        }
        let mut response = plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "this relay is at its connection capacity; try again later\n",
        );
        let headers = response.headers_mut();
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RESERVE_RETRY_AFTER),
        );
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        with_default_headers(response)
    }

    fn metrics_response(&self, request: &Request<Incoming>) -> Response<FrontBody> {
        let allowed = match self.shared.metrics_exposure {
            MetricsExposure::Public => true,
            MetricsExposure::Loopback => self.peer.ip().to_canonical().is_loopback(),
            MetricsExposure::Off => false,
        };
        if !allowed {
            return plain(StatusCode::NOT_FOUND, "not found\n");
        }
        if *request.method() != Method::GET {
            return method_not_allowed();
        }
        let mut response = Response::new(full_body(self.shared.render_metrics()));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

fn method_not_allowed() -> Response<FrontBody> {
    let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// `nosniff` and `no-referrer` on everything but protocol switches, and the strict CSP on HTML
/// (each unless already set, e.g. by a route).
fn with_default_headers(mut response: Response<FrontBody>) -> Response<FrontBody> {
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        return response;
    }
    let headers = response.headers_mut();
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    if html {
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(CSP));
    }
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    response
}
