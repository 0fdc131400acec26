//! The HTTP(S) front server: one hyper server per listening port, routing to iroh's relay
//! service, health and metrics endpoints, plugged-in routes and static files.

mod conn;
mod metrics;
mod route;
mod statics;

use std::{
    convert::Infallible, fmt, future::Future, net::SocketAddr, num::NonZeroU32, path::PathBuf,
    pin::Pin, sync::Arc, time::Duration,
};

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response, body::Incoming, service::Service};
use hyper_util::rt::{TokioIo, TokioTimer};
use iroh_relay::{
    KeyCache,
    http::{RELAY_PATH, RELAY_PROBE_PATH},
    server::{
        ClientRateLimit, Handlers, Metrics as RelayMetrics, RelayService,
        http_server::{BytesBody, RelayServiceWithNotify},
        streams::MaybeTlsStream,
    },
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::Notify,
};
use tokio_rustls::TlsAcceptor;
use tokio_util::{
    sync::CancellationToken,
    task::{AbortOnDropHandle, TaskTracker},
};
use tracing::{Instrument as _, debug, info, info_span, warn};

pub(crate) use self::conn::{ConnTracker, Slot};
pub(crate) use self::metrics::FrontMetrics;
pub use self::route::{
    BoxError, FrontBody, RequestContext, RouteFuture, RouteHandler, empty_body, full_body,
};
use self::statics::CSP;
use self::{
    conn::Refusal,
    metrics::{Gauges, RouteKind},
    statics::StaticFiles,
};
use crate::{
    RelayError,
    access::{AccessPolicy, RelayAccess},
};

/// Header the front server sets on `/relay` requests so the access control can find the
/// request's connection. Any value a client sends is replaced.
pub(crate) const SLOT_HEADER: HeaderName = HeaderName::from_static("x-peer-relay-slot");

/// Paths the front server answers itself; routes cannot take them.
const RESERVED: [&str; 5] = [
    RELAY_PATH,
    RELAY_PROBE_PATH,
    "/generate_204",
    "/healthz",
    "/metrics",
];

/// A rate: `per_second` on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained rate, per second.
    pub per_second: f64,
    /// How many may come at once (the bucket size).
    pub burst: u32,
}

/// Limits on TCP connections and slow clients.
///
/// Refused connections are closed right after `accept`, without a response, and counted in
/// `peer_relay_connections_refused_total`. IPv6 clients are counted per /64 prefix.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Limits {
    /// New TCP connections per client IP (token bucket). `None`: unlimited.
    pub new_connections_per_ip: Option<RateLimit>,
    /// Open TCP connections in total (relay clients included). `None`: unlimited.
    pub max_connections: Option<usize>,
    /// Open TCP connections per client IP. `None`: unlimited.
    ///
    /// Many phones can share one address behind carrier-grade NAT: keep this generous.
    pub max_connections_per_ip: Option<usize>,
    /// Bytes per second each relay client may send through the relay. `None`: unlimited.
    pub relay_client_rx_bytes_per_second: Option<NonZeroU32>,
    /// Time a client has to send a request's headers; also the idle keep-alive timeout.
    pub header_read_timeout: Duration,
    /// Time a client has to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Time a relay client has, after the WebSocket upgrade, to be admitted.
    pub relay_handshake_timeout: Duration,
    /// How long stopping waits for connections to finish before closing them.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    /// 20 new connections per second per IP (bursts of 100), 10 000 open connections, 256 per IP.
    fn default() -> Self {
        Self {
            new_connections_per_ip: Some(RateLimit {
                per_second: 20.0,
                burst: 100,
            }),
            max_connections: Some(10_000),
            max_connections_per_ip: Some(256),
            relay_client_rx_bytes_per_second: None,
            header_read_timeout: Duration::from_secs(15),
            tls_handshake_timeout: Duration::from_secs(10),
            relay_handshake_timeout: Duration::from_secs(20),
            shutdown_grace: Duration::from_secs(3),
        }
    }
}

impl Limits {
    /// No connection limits (timeouts as in [`Limits::default`]).
    pub fn unlimited() -> Self {
        Self {
            new_connections_per_ip: None,
            max_connections: None,
            max_connections_per_ip: None,
            ..Self::default()
        }
    }
}

/// Who may read `GET /metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MetricsExposure {
    /// Anyone.
    Public,
    /// Clients connecting from a loopback address (a local Prometheus, `curl` on the box).
    #[default]
    Loopback,
    /// Nobody: `/metrics` answers 404.
    Off,
}

impl std::str::FromStr for MetricsExposure {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "public" => Ok(Self::Public),
            "loopback" => Ok(Self::Loopback),
            "off" => Ok(Self::Off),
            other => Err(format!(
                "unknown metrics exposure {other:?} (expected public, loopback or off)"
            )),
        }
    }
}

/// What a front server serves, and where.
///
/// Built with [`FrontConfig::http`] or [`FrontConfig::new`] and the methods below; started
/// with [`crate::EmbeddedRelay::spawn_with`]. The HTTP and HTTPS listeners share one relay:
/// clients on either can reach each other.
#[derive(Clone, Default)]
pub struct FrontConfig {
    pub(crate) http_bind: Option<SocketAddr>,
    pub(crate) https: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
    pub(crate) web_root: Option<PathBuf>,
    pub(crate) static_max_age: Option<Duration>,
    pub(crate) routes: Vec<(&'static str, Arc<dyn RouteHandler>)>,
    pub(crate) access: AccessPolicy,
    pub(crate) limits: Limits,
    pub(crate) metrics: MetricsExposure,
}

impl fmt::Debug for FrontConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrontConfig")
            .field("http_bind", &self.http_bind)
            .field("https_bind", &self.https.as_ref().map(|(addr, _)| addr))
            .field("web_root", &self.web_root)
            .field("static_max_age", &self.static_max_age)
            .field(
                "routes",
                &self.routes.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            )
            .field("access", &self.access)
            .field("limits", &self.limits)
            .field("metrics", &self.metrics)
            .finish()
    }
}

impl FrontConfig {
    /// Nothing to serve yet: add a listener with [`Self::with_http`] or [`Self::with_https`].
    ///
    /// Defaults: open access, [`Limits::default`], metrics for loopback clients only, no web
    /// root (everything but the built-in paths and routes is a 404).
    pub fn new() -> Self {
        Self::default()
    }

    /// A plain-HTTP listener on `bind` (port 0 picks a free port), otherwise as [`Self::new`].
    pub fn http(bind: SocketAddr) -> Self {
        Self::new().with_http(bind)
    }

    /// Serves plain HTTP on `bind`.
    pub fn with_http(mut self, bind: SocketAddr) -> Self {
        self.http_bind = Some(bind);
        self
    }

    /// Serves HTTPS on `bind` with `tls` (see [`crate::tls`] to build one from PEM files or a
    /// self-signed certificate). If `tls` announces no ALPN protocols, `http/1.1` is set.
    pub fn with_https(mut self, bind: SocketAddr, tls: Arc<rustls::ServerConfig>) -> Self {
        self.https = Some((bind, tls));
        self
    }

    /// Serves static files from `dir` (see the crate docs for the rules).
    pub fn web_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.web_root = Some(dir.into());
        self
    }

    /// `Cache-Control: max-age` of static files other than HTML, web manifests and service
    /// workers (those are always `no-cache`). Default: 5 minutes.
    pub fn static_max_age(mut self, max_age: Duration) -> Self {
        self.static_max_age = Some(max_age);
        self
    }

    /// Hands every request for `prefix` or a path below it (`{prefix}/…`) to `handler`.
    ///
    /// `prefix` must start with `/`, must not end with `/`, must not be `/` or one of the
    /// server's own paths (`/relay`, `/ping`, `/generate_204`, `/healthz`, `/metrics`) or lie
    /// below them. Checked when the server starts. The longest matching prefix wins.
    pub fn route(mut self, prefix: &'static str, handler: Arc<dyn RouteHandler>) -> Self {
        self.routes.push((prefix, handler));
        self
    }

    /// Who may use the relay. Default: [`AccessPolicy::open`].
    pub fn access(mut self, policy: AccessPolicy) -> Self {
        self.access = policy;
        self
    }

    /// Connection limits and timeouts. Default: [`Limits::default`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Who may read `/metrics`. Default: [`MetricsExposure::Loopback`].
    pub fn metrics(mut self, exposure: MetricsExposure) -> Self {
        self.metrics = exposure;
        self
    }
}

fn validate_prefix(prefix: &str) -> Result<(), String> {
    let valid_chars = prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~'));
    if !prefix.starts_with('/') || prefix.len() < 2 || prefix.ends_with('/') || !valid_chars {
        return Err(format!(
            "route prefix {prefix:?} must look like \"/name\" (no trailing slash)"
        ));
    }
    if prefix.split('/').any(|s| s == "." || s == "..") || prefix.contains("//") {
        return Err(format!("route prefix {prefix:?} has empty or dot segments"));
    }
    for reserved in RESERVED {
        if prefix == reserved || prefix.starts_with(&format!("{reserved}/")) {
            return Err(format!(
                "route prefix {prefix:?} collides with the server's own {reserved}"
            ));
        }
    }
    Ok(())
}

/// State shared by the accept loop and every connection.
struct Shared {
    relay: RelayService,
    relay_metrics: Arc<RelayMetrics>,
    access: Arc<RelayAccess>,
    tracker: Arc<ConnTracker>,
    metrics: Arc<FrontMetrics>,
    statics: Option<StaticFiles>,
    /// Longest prefix first.
    routes: Vec<(&'static str, Arc<dyn RouteHandler>)>,
    metrics_exposure: MetricsExposure,
    limits: Limits,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("access", &self.access)
            .field("statics", &self.statics)
            .field(
                "routes",
                &self.routes.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn render_metrics(&self) -> String {
        let mut out = String::new();
        self.metrics.render(
            &mut out,
            &Gauges {
                open_connections: self.tracker.open_count(),
                relay_clients: self.access.client_count(),
                relay: &self.relay_metrics,
            },
        );
        for (_, route) in &self.routes {
            route.write_metrics(&mut out);
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }
}

/// A running front server (the engine of [`crate::EmbeddedRelay`]).
#[derive(Debug)]
pub(crate) struct Front {
    pub(crate) http_addr: Option<SocketAddr>,
    pub(crate) https_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    accept_task: Option<AbortOnDropHandle<()>>,
}

/// How long stopping keeps disconnecting relay clients that register late.
const STRAGGLER_TIMEOUT: Duration = Duration::from_secs(2);

impl Front {
    pub(crate) async fn spawn(config: FrontConfig) -> Result<Self, RelayError> {
        if config.http_bind.is_none() && config.https.is_none() {
            return Err(RelayError::NoListener);
        }
        for (prefix, _) in &config.routes {
            validate_prefix(prefix).map_err(|reason| RelayError::InvalidConfig { reason })?;
        }
        let mut routes = config.routes;
        let mut seen = std::collections::HashSet::new();
        if let Some((prefix, _)) = routes.iter().find(|(prefix, _)| !seen.insert(*prefix)) {
            return Err(RelayError::InvalidConfig {
                reason: format!("route prefix {prefix:?} is given twice"),
            });
        }
        routes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        let statics = match config.web_root {
            None => None,
            Some(dir) => {
                let root =
                    tokio::fs::canonicalize(&dir)
                        .await
                        .map_err(|source| RelayError::WebRoot {
                            path: dir.clone(),
                            source,
                        })?;
                let meta =
                    tokio::fs::metadata(&root)
                        .await
                        .map_err(|source| RelayError::WebRoot {
                            path: dir.clone(),
                            source,
                        })?;
                if !meta.is_dir() {
                    return Err(RelayError::WebRoot {
                        path: dir,
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotADirectory,
                            "not a directory",
                        ),
                    });
                }
                Some(StaticFiles::new(
                    root,
                    config.static_max_age.unwrap_or(Duration::from_secs(5 * 60)),
                ))
            }
        };

        let http_listener = match config.http_bind {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let https_listener = match &config.https {
            Some((addr, tls)) => {
                let mut tls = Arc::clone(tls);
                if tls.alpn_protocols.is_empty() {
                    let mut with_alpn = (*tls).clone();
                    with_alpn.alpn_protocols = vec![b"http/1.1".to_vec()];
                    tls = Arc::new(with_alpn);
                }
                Some((bind(*addr).await?, TlsAcceptor::from(tls)))
            }
            None => None,
        };
        let http_addr = local_addr(http_listener.as_ref())?;
        let https_addr = local_addr(https_listener.as_ref().map(|(l, _)| l))?;

        let metrics = Arc::new(FrontMetrics::default());
        let tracker = ConnTracker::new(config.limits.clone());
        let access = Arc::new(RelayAccess::new(
            config.access,
            tracker.clone(),
            metrics.clone(),
        ));
        let relay_metrics = Arc::new(RelayMetrics::default());
        let relay = RelayService::new(
            relay_handlers(),
            HeaderMap::new(),
            config
                .limits
                .relay_client_rx_bytes_per_second
                .map(ClientRateLimit::new),
            KeyCache::new(KEY_CACHE_CAPACITY),
            access.clone(),
            relay_metrics.clone(),
        );
        let shared = Arc::new(Shared {
            relay,
            relay_metrics,
            access,
            tracker,
            metrics,
            statics,
            routes,
            metrics_exposure: config.metrics,
            limits: config.limits,
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        if let Some(addr) = http_addr {
            info!(%addr, "front server listening (HTTP)");
        }
        if let Some(addr) = https_addr {
            info!(%addr, "front server listening (HTTPS)");
        }
        let accept_task = tokio::spawn(
            accept_loop(shared.clone(), http_listener, https_listener)
                .instrument(info_span!("peer-relay-accept")),
        );
        Ok(Self {
            http_addr,
            https_addr,
            shared,
            accept_task: Some(AbortOnDropHandle::new(accept_task)),
        })
    }

    /// Connected relay clients.
    pub(crate) fn relay_client_count(&self) -> usize {
        self.shared.access.client_count()
    }

    pub(crate) fn metrics_text(&self) -> String {
        self.shared.render_metrics()
    }

    pub(crate) fn access_mode(&self) -> crate::AccessMode {
        self.shared.access.mode()
    }

    /// Admits `endpoint` (one of the relay's own services) whatever the access policy.
    pub(crate) fn admit_service(&self, endpoint: iroh_base::EndpointId) {
        self.shared.access.admit_service(endpoint);
    }

    /// Replaces the access policy and disconnects relay clients it no longer admits.
    pub(crate) fn set_access_policy(&self, policy: AccessPolicy) -> usize {
        let revoked = self.shared.access.set_policy(policy);
        for (endpoint, connection) in &revoked {
            info!(endpoint = %endpoint.fmt_short(), "access revoked; disconnecting relay client");
            self.shared
                .relay
                .clients()
                .disconnect(*endpoint, Some(*connection));
        }
        revoked.len()
    }

    /// Waits until the accept loop ends, which only happens on shutdown or if it panicked.
    pub(crate) async fn join(&mut self) -> Result<(), RelayError> {
        let Some(task) = self.accept_task.as_mut() else {
            return Ok(());
        };
        let result = task.await;
        self.accept_task = None;
        result.map_err(|source| RelayError::Task { source })
    }

    /// Stops accepting, lets connections finish for a moment, then closes everything: relay
    /// clients, upgraded routes, stalled handshakes. Returns once all tasks have ended.
    pub(crate) async fn shutdown(&mut self) {
        let shared = &self.shared;
        shared.access.close();
        shared.tracker.close();
        shared.cancel.cancel();
        if let Some(task) = self.accept_task.take() {
            // The listeners are dropped with the loop.
            let _ = task.await;
        }
        let grace = shared.limits.shutdown_grace;
        // Disconnects every registered relay client (bounded: a stuck client is force-closed
        // below).
        if tokio::time::timeout(grace, shared.relay.shutdown())
            .await
            .is_err()
        {
            warn!("relay clients did not disconnect in time; closing their sockets");
        }
        for (prefix, route) in &shared.routes {
            debug!(prefix, "stopping route");
            if tokio::time::timeout(grace, route.shutdown()).await.is_err() {
                warn!(prefix, "route did not stop in time");
            }
        }
        shared.tasks.close();
        let _ = tokio::time::timeout(grace, shared.tasks.wait()).await;
        // Whatever is left (late relay clients, stalled handshakes, connections ignoring the
        // graceful close) is closed at the socket.
        let deadline = tokio::time::Instant::now() + STRAGGLER_TIMEOUT;
        loop {
            shared.tracker.kill_all();
            for endpoint in shared.access.connected() {
                shared.relay.clients().disconnect(endpoint, None);
            }
            let done = shared.access.client_count() == 0 && shared.tracker.open_count() == 0;
            if done || tokio::time::Instant::now() >= deadline {
                if !done {
                    warn!(
                        relay_clients = shared.access.client_count(),
                        connections = shared.tracker.open_count(),
                        "connections still open after shutdown"
                    );
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = tokio::time::timeout(grace, shared.tasks.wait()).await;
        info!("front server stopped");
    }

    /// The synchronous part of stopping, for `Drop`: stop accepting and close every socket.
    pub(crate) fn abort(&mut self) {
        let shared = &self.shared;
        shared.access.close();
        shared.tracker.close();
        shared.cancel.cancel();
        // Aborting the accept loop drops the listeners.
        self.accept_task = None;
        for endpoint in shared.access.connected() {
            shared.relay.clients().disconnect(endpoint, None);
        }
        shared.tracker.kill_all();
        // A client admitted a moment ago may register only after this; a short-lived task
        // catches it (and covers platforms without socket duplication).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = shared.clone();
            runtime.spawn(async move {
                let deadline = tokio::time::Instant::now() + STRAGGLER_TIMEOUT;
                while tokio::time::Instant::now() < deadline
                    && (shared.access.client_count() > 0 || shared.tracker.open_count() > 0)
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    shared.tracker.kill_all();
                    for endpoint in shared.access.connected() {
                        shared.relay.clients().disconnect(endpoint, None);
                    }
                }
            });
        }
    }
}

/// Public keys remembered by the relay service (it keeps parsed keys of active clients).
const KEY_CACHE_CAPACITY: usize = 64 * 1024;

async fn bind(addr: SocketAddr) -> Result<TcpListener, RelayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RelayError::Bind { addr, source })
}

fn local_addr(listener: Option<&TcpListener>) -> Result<Option<SocketAddr>, RelayError> {
    listener
        .map(|l| {
            l.local_addr().map_err(|source| RelayError::Bind {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })
        })
        .transpose()
}

/// The relay service's own handlers: latency probes and the captive-portal check.
fn relay_handlers() -> Handlers {
    fn body(bytes: &'static [u8]) -> BytesBody {
        Box::new(Full::new(bytes::Bytes::from_static(bytes)))
    }
    let mut handlers = Handlers::default();
    handlers.insert(
        (Method::GET, RELAY_PROBE_PATH),
        Box::new(|_request, response| {
            Ok(response
                .status(StatusCode::OK)
                .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
                .header(header::CACHE_CONTROL, "no-store")
                .body(body(b""))?)
        }),
    );
    handlers.insert(
        (Method::GET, "/generate_204"),
        Box::new(|_request, response| {
            Ok(response
                .status(StatusCode::NO_CONTENT)
                .header(header::CACHE_CONTROL, "no-store")
                .body(body(b""))?)
        }),
    );
    handlers
}

async fn accept_next(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    http: Option<TcpListener>,
    https: Option<(TcpListener, TlsAcceptor)>,
) {
    let (https_listener, acceptor) = match https {
        Some((listener, acceptor)) => (Some(listener), Some(acceptor)),
        None => (None, None),
    };
    loop {
        let (accepted, tls) = tokio::select! {
            biased;
            () = shared.cancel.cancelled() => break,
            accepted = accept_next(http.as_ref()) => (accepted, None),
            accepted = accept_next(https_listener.as_ref()) => (accepted, acceptor.clone()),
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Typically out of file descriptors: back off instead of spinning.
                warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match shared.tracker.admit(&stream, peer) {
            Ok(slot) => slot,
            Err(refusal) => {
                shared.metrics.refused(refusal);
                if refusal != Refusal::ShuttingDown {
                    debug!(%peer, ?refusal, "connection refused");
                }
                // Closed at once; no linger on a refused client.
                let _ = stream.set_zero_linger();
                drop(stream);
                continue;
            }
        };
        shared.metrics.accepted();
        let conn_shared = shared.clone();
        shared.tasks.spawn(
            serve_connection(conn_shared, stream, peer, slot, tls)
                .instrument(info_span!("conn", %peer)),
        );
    }
    debug!("accept loop stopped");
}

async fn serve_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    tls: Option<TlsAcceptor>,
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
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.limits.header_read_timeout)
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
                if let Some(route) = shared
                    .routes
                    .iter()
                    .find(|(prefix, _)| under_prefix(path, prefix))
                    .map(|(_, route)| route.clone())
                {
                    shared.metrics.request(RouteKind::Route);
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

fn under_prefix(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_prefixes_are_validated() {
        for good in ["/bridge", "/a/b", "/x-y_z.1"] {
            assert_eq!(validate_prefix(good), Ok(()), "{good}");
        }
        for bad in [
            "", "/", "bridge", "/bridge/", "/relay", "/relay/x", "/metrics", "/healthz", "/ping",
            "/a//b", "/a/../b", "/a b", "/a?b",
        ] {
            assert!(validate_prefix(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(under_prefix("/bridge", "/bridge"));
        assert!(under_prefix("/bridge/ws", "/bridge"));
        assert!(!under_prefix("/bridges", "/bridge"));
        assert!(!under_prefix("/", "/bridge"));
    }

    #[test]
    fn limits_default_and_unlimited() {
        let limits = Limits::default();
        assert!(limits.new_connections_per_ip.is_some());
        assert!(limits.max_connections.is_some());
        let unlimited = Limits::unlimited();
        assert_eq!(unlimited.max_connections, None);
        assert_eq!(unlimited.max_connections_per_ip, None);
        assert_eq!(unlimited.new_connections_per_ip, None);
        assert_eq!(unlimited.header_read_timeout, limits.header_read_timeout);
    }

    #[test]
    fn metrics_exposure_parses() {
        assert_eq!("public".parse(), Ok(MetricsExposure::Public));
        assert_eq!("Loopback".parse(), Ok(MetricsExposure::Loopback));
        assert_eq!("off".parse(), Ok(MetricsExposure::Off));
        assert!("everyone".parse::<MetricsExposure>().is_err());
    }
}
