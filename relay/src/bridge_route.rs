//! The mobile bridge as a route of the front server: `GET /bridge/<host endpoint id>` upgrades to
//! a WebSocket that a [`SocketHandler`] serves: [`peer_mobile_bridge::Bridge`] pumps it to a
//! remote host over QUIC; inside `peer host` the host serves it itself, in-process.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use hyper::header::{
    CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION,
    UPGRADE,
};
use hyper::{Request, Response, StatusCode, body::Incoming};
use iroh_base::EndpointId;
use peer_mobile_bridge::{Bridge, SocketHandler, SocketIo, parse_bridge_path};

use crate::front::{FrontBody, RequestContext, RouteFuture, RouteHandler, full_body};

/// Where the bridge is mounted.
pub const BRIDGE_PREFIX: &str = "/bridge";

/// Serves the mobile bridge under [`BRIDGE_PREFIX`].
///
/// The bridge needs an iroh endpoint that can reach the hosts, which usually exists only once
/// the relay it sits on is listening (and a host's own handler exists only once the host is up);
/// so the route is made first and the handler given to it with [`BridgeRoute::set_bridge`] or
/// [`BridgeRoute::set_handler`]. Until then requests get 503.
#[derive(Default)]
pub struct BridgeRoute {
    bridge: OnceLock<Arc<dyn SocketHandler>>,
    only: Option<EndpointId>,
}

impl std::fmt::Debug for BridgeRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeRoute")
            .field("ready", &self.bridge.get().is_some())
            .field("only", &self.only)
            .finish()
    }
}

impl BridgeRoute {
    /// A route for any host.
    pub fn new() -> Arc<BridgeRoute> {
        Arc::new(BridgeRoute::default())
    }

    /// A route that serves only `host` (a host's own embedded bridge).
    pub fn only_host(host: EndpointId) -> Arc<BridgeRoute> {
        Arc::new(BridgeRoute {
            bridge: OnceLock::new(),
            only: Some(host),
        })
    }

    /// Hands the route its bridge. A second call (of this or [`Self::set_handler`]) is ignored.
    pub fn set_bridge(&self, bridge: Bridge) {
        self.set_handler(Arc::new(bridge));
    }

    /// Hands the route what serves its sockets. A second call is ignored.
    pub fn set_handler(&self, handler: Arc<dyn SocketHandler>) {
        let _ = self.bridge.set(handler);
    }
}

fn reply(status: StatusCode, text: &str) -> Response<FrontBody> {
    let mut r = Response::new(full_body(format!("{text}\n")));
    *r.status_mut() = status;
    r
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
fn accept_key(key: &[u8]) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    let mut sha = sha1::Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

impl RouteHandler for BridgeRoute {
    fn handle(&self, mut request: Request<Incoming>, peer: SocketAddr) -> RouteFuture {
        let response = (|| {
            let Some(bridge) = self.bridge.get().cloned() else {
                return reply(StatusCode::SERVICE_UNAVAILABLE, "the bridge is starting");
            };
            let host = match parse_bridge_path(request.uri().path()) {
                Ok(h) => h,
                Err(e) => return reply(StatusCode::NOT_FOUND, &e.to_string()),
            };
            if self.only.is_some_and(|only| only != host) {
                return reply(StatusCode::NOT_FOUND, "this bridge serves one host only");
            }
            let upgrade_ok = request
                .headers()
                .get(UPGRADE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
            let version_ok = request.headers().get(SEC_WEBSOCKET_VERSION)
                == Some(&HeaderValue::from_static("13"));
            let Some(key) = request.headers().get(SEC_WEBSOCKET_KEY).cloned() else {
                return reply(StatusCode::BAD_REQUEST, "expected a WebSocket upgrade");
            };
            if !upgrade_ok || !version_ok {
                return reply(
                    StatusCode::BAD_REQUEST,
                    "expected a WebSocket (version 13) upgrade",
                );
            }
            let admission = match bridge.admit(peer.ip()) {
                Ok(a) => a,
                Err(refused) => {
                    let status = StatusCode::from_u16(refused.http_status())
                        .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                    return reply(status, &refused.to_string());
                }
            };
            let Some(ctx) = request.extensions().get::<RequestContext>().cloned() else {
                return reply(StatusCode::INTERNAL_SERVER_ERROR, "no connection context");
            };
            let upgrade = hyper::upgrade::on(&mut request);
            ctx.spawn(async move {
                if let Ok(upgraded) = upgrade.await {
                    let io: Box<dyn SocketIo> = Box::new(hyper_util::rt::TokioIo::new(upgraded));
                    let ws = tokio_websockets::ServerBuilder::new().serve(io);
                    bridge.serve(ws, host, admission).await;
                }
            });
            let mut r = reply(StatusCode::SWITCHING_PROTOCOLS, "");
            *r.body_mut() = crate::front::empty_body();
            let h = r.headers_mut();
            h.insert(UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
            if let Ok(v) = HeaderValue::from_str(&accept_key(key.as_bytes())) {
                h.insert(SEC_WEBSOCKET_ACCEPT, v);
            }
            r
        })();
        Box::pin(std::future::ready(response))
    }

    fn write_metrics(&self, out: &mut String) {
        let Some(bridge) = self.bridge.get() else {
            return;
        };
        let s = bridge.stats();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        metric(
            "peer_bridge_sockets_active",
            "gauge",
            "Browser sockets open now.",
            s.active as u64,
        );
        metric(
            "peer_bridge_sockets_served_total",
            "counter",
            "Browser sockets served.",
            s.served,
        );
        metric(
            "peer_bridge_sockets_refused_total",
            "counter",
            "Browser sockets refused.",
            s.refused,
        );
        metric(
            "peer_bridge_bytes_to_host_total",
            "counter",
            "Bytes pumped to hosts.",
            s.bytes_to_host,
        );
        metric(
            "peer_bridge_bytes_to_browser_total",
            "counter",
            "Bytes pumped to browsers.",
            s.bytes_to_browser,
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn accept_key_matches_rfc6455() {
        // The example of RFC 6455 section 1.3.
        assert_eq!(
            super::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
