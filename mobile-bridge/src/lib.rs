//! The mobile bridge: a browser cannot speak QUIC, so it opens a WebSocket to the bridge, which
//! dials the host over iroh on ALPN `peer/bridge/1` and pumps opaque bytes both ways. The Noise
//! channel runs between browser and host; the bridge never decrypts and never holds a key.
//!
//! The embedding HTTP server (the relay's front server) does the HTTP side:
//! 1. [`parse_bridge_path`] on the request path (`/bridge/<host id hex>`), 404 on error;
//! 2. [`Bridge::admit`] with the client's IP, answering [`Refused::http_status`] on refusal;
//! 3. the WebSocket upgrade, then [`Bridge::serve`] with the [`Admission`], in a task it owns.
//!
//! Wire, close codes and limits: see `README.md` and [`close`].

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use std::time::Duration;

use iroh::{Endpoint, EndpointAddr, EndpointId, RelayUrl};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;
use tokio_websockets::WebSocketStream;

mod hosts;
mod path;
mod pump;

pub use path::{BRIDGE_PATH_PREFIX, PathError, parse_bridge_path};

use hosts::Hosts;

/// The ALPN the bridge dials hosts on.
pub const BRIDGE_ALPN: &[u8] = peer_proto::ALPN_BRIDGE;

/// How often the bridge's endpoint should send QUIC keep-alives (set it in its transport
/// config). A live host acknowledges each, so the bridge hears from it at least this often and
/// can tell a connection whose host is gone (see [`Bridge`]: a connection quiet for 2 s is
/// checked).
pub const KEEP_ALIVE: Duration = Duration::from_secs(1);

/// Largest WebSocket message (one Noise message) the bridge forwards, in bytes.
pub const MAX_MESSAGE_LEN: usize = 65535;

/// Largest WebSocket frame the bridge reads at all. Frames announcing more are refused by the
/// WebSocket layer before they are buffered, with the standard close code 1009 (message too
/// big); messages between [`MAX_MESSAGE_LEN`] and this size (or fragmented messages of any size
/// above [`MAX_MESSAGE_LEN`]) get [`close::BAD_MESSAGE`].
pub const WS_READ_LIMIT: usize = 128 * 1024;

/// WebSocket close codes (`peer_proto::close::ws`): the bridge's own (4001–4008 and the
/// standard ones), and the host's (4100–4199), which a host sends in a close record
/// (`peer_proto::codec`) and the bridge passes on unchanged.
pub use peer_proto::close::ws as close;

/// Limits and timeouts of a [`Bridge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeConfig {
    /// A socket with no message either way for this long is closed with
    /// [`close::IDLE_TIMEOUT`]. Also how long a host connection is kept without any socket.
    /// Default 120 s.
    pub idle_timeout: Duration,
    /// How long reaching the host (dial plus opening the stream) may take before the socket is
    /// closed with [`close::HOST_UNREACHABLE`]. Default 10 s.
    pub connect_timeout: Duration,
    /// Sockets admitted at once, over all clients. Default 1024.
    pub max_connections: usize,
    /// Sockets admitted at once from one client IP (an IPv6 client counts by its /64).
    /// Default 32.
    pub max_per_ip: usize,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            idle_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_per_ip: 32,
        }
    }
}

/// Maps a host id to the address the bridge dials.
pub type AddrResolver = Arc<dyn Fn(EndpointId) -> EndpointAddr + Send + Sync>;

/// The bridge: admission control, the host connection cache and the socket pumps.
///
/// Cheap to clone: clones share everything. Dropping the last clone aborts the background
/// tasks (one per cached host connection) and drops the cached connections.
///
/// A cached host connection that has heard nothing from its host for 2 s while it carries
/// sockets (or when a socket asks for it) is checked with a new dial: if the host answers the
/// new connection and the old one stays silent (the host was killed and restarted), the new
/// one replaces it and the old one is closed, so that its browsers come back at once
/// ([`close::HOST_ERROR`]). The endpoint should send keep-alives every [`KEEP_ALIVE`].
#[derive(Clone)]
pub struct Bridge {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    endpoint: Endpoint,
    resolve: AddrResolver,
    config: BridgeConfig,
    hosts: Hosts,
    admissions: Arc<AdmissionControl>,
    /// One watcher per cached host connection.
    watchers: Mutex<JoinSet<()>>,
    counters: Counters,
}

/// Admission caps on browser sockets: so many in all, so many per client IP (an IPv6 client
/// counts by its /64). Shared by the remote [`Bridge`] and by a host that serves browsers
/// in-process.
#[derive(Debug)]
pub struct AdmissionControl {
    max_connections: usize,
    max_per_ip: usize,
    held: Mutex<Admissions>,
    refused: AtomicU64,
}

#[derive(Debug, Default)]
struct Admissions {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl AdmissionControl {
    /// Caps of `config` (`max_connections`, `max_per_ip`).
    pub fn new(config: &BridgeConfig) -> Arc<AdmissionControl> {
        Arc::new(AdmissionControl {
            max_connections: config.max_connections,
            max_per_ip: config.max_per_ip,
            held: Mutex::new(Admissions::default()),
            refused: AtomicU64::new(0),
        })
    }

    /// Admission check before upgrading: the global cap ([`Refused::Full`], answer 503) and the
    /// per-IP cap ([`Refused::TooManyFromIp`], answer 429). On success returns the guard to
    /// hold for the socket's life.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, Refused> {
        let key = admission_key(ip);
        let mut a = self.held.lock();
        let refused = if a.total >= self.max_connections {
            Some(Refused::Full)
        } else if a.per_ip.get(&key).copied().unwrap_or(0) >= self.max_per_ip {
            Some(Refused::TooManyFromIp)
        } else {
            None
        };
        if let Some(r) = refused {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(r);
        }
        a.total += 1;
        *a.per_ip.entry(key).or_insert(0) += 1;
        Ok(Admission {
            control: self.clone(),
            key,
        })
    }

    /// Admissions held now.
    pub fn held(&self) -> usize {
        self.held.lock().total
    }

    /// Sockets refused since the start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
struct Counters {
    active: AtomicUsize,
    served: AtomicU64,
    bytes_to_host: AtomicU64,
    bytes_to_browser: AtomicU64,
}

impl fmt::Debug for Bridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridge")
            .field(
                "endpoint",
                &self.inner.endpoint.id().fmt_short().to_string(),
            )
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Why [`Bridge::admit`] refused a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The bridge carries [`BridgeConfig::max_connections`] sockets already (HTTP 503).
    #[error("the bridge is full")]
    Full,
    /// This client IP holds [`BridgeConfig::max_per_ip`] sockets already (HTTP 429).
    #[error("too many connections from this address")]
    TooManyFromIp,
}

impl Refused {
    /// The HTTP status to answer the upgrade request with: 503 or 429.
    pub fn http_status(&self) -> u16 {
        match self {
            Refused::Full => 503,
            Refused::TooManyFromIp => 429,
        }
    }
}

/// A socket's place under the admission caps; frees it on drop. Hold it for the socket's life
/// (pass it to [`SocketHandler::serve`]).
pub struct Admission {
    control: Arc<AdmissionControl>,
    key: IpAddr,
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admission").field("ip", &self.key).finish()
    }
}

impl Admission {
    /// The client address this socket was admitted for.
    pub fn ip(&self) -> IpAddr {
        self.key
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut a = self.control.held.lock();
        a.total = a.total.saturating_sub(1);
        if let Some(n) = a.per_ip.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                a.per_ip.remove(&self.key);
            }
        }
    }
}

/// A snapshot of the bridge's counters (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeStats {
    /// Sockets being served now.
    pub active: usize,
    /// Admissions held now (sockets being served plus upgrades in progress).
    pub admitted: usize,
    /// Sockets served since the bridge started.
    pub served: u64,
    /// Sockets refused by the caps since the bridge started.
    pub refused: u64,
    /// Message bytes forwarded browser → host (payload only, without framing).
    pub bytes_to_host: u64,
    /// Message bytes forwarded host → browser (payload only, without framing).
    pub bytes_to_browser: u64,
    /// Host connections cached now.
    pub host_connections: usize,
}

/// The per-IP admission key: IPv4 (also IPv4-mapped IPv6) as is, other IPv6 by /64, since one
/// client commonly holds a whole /64.
fn admission_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Bridge {
    /// A bridge dialing hosts from `endpoint` (its own key) through `relay`, the relay URL hosts
    /// are reachable through (the relay this bridge sits on). A host is dialed at
    /// `EndpointAddr::new(host).with_relay_url(relay)`; with `relay = None` the address has no
    /// route unless the endpoint has address lookup configured. Use [`Bridge::with_resolver`]
    /// to dial other addresses (tests dial hosts directly on loopback).
    pub fn new(endpoint: Endpoint, relay: Option<RelayUrl>, config: BridgeConfig) -> Bridge {
        let resolve: AddrResolver = Arc::new(move |id| {
            let addr = EndpointAddr::new(id);
            match &relay {
                Some(url) => addr.with_relay_url(url.clone()),
                None => addr,
            }
        });
        Bridge::with_resolver(endpoint, resolve, config)
    }

    /// A bridge that dials each host at the address `resolve` gives for its id.
    pub fn with_resolver(
        endpoint: Endpoint,
        resolve: AddrResolver,
        config: BridgeConfig,
    ) -> Bridge {
        Bridge {
            inner: Arc::new(Inner {
                endpoint,
                resolve,
                config,
                hosts: Hosts::default(),
                admissions: AdmissionControl::new(&config),
                watchers: Mutex::new(JoinSet::new()),
                counters: Counters::default(),
            }),
        }
    }

    /// The bridge's configuration.
    pub fn config(&self) -> &BridgeConfig {
        &self.inner.config
    }

    /// Admission check before upgrading (see [`AdmissionControl::admit`]).
    pub fn admit(&self, ip: IpAddr) -> Result<Admission, Refused> {
        self.inner.admissions.admit(ip)
    }

    /// Serves one upgraded WebSocket for `host` until either side closes; returns once the
    /// socket is closed and the host stream ended.
    ///
    /// Caps the WebSocket's read limit at [`WS_READ_LIMIT`]. `admission` should come from this
    /// bridge's [`Bridge::admit`]; it is released when this returns.
    pub async fn serve<S>(&self, ws: WebSocketStream<S>, host: EndpointId, admission: Admission)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let _admission = admission;
        let counters = &self.inner.counters;
        counters.active.fetch_add(1, Ordering::Relaxed);
        counters.served.fetch_add(1, Ordering::Relaxed);
        let _active = ActiveGuard(&counters.active);
        pump::serve(&self.inner, ws, host).await;
    }

    /// Closes an already upgraded WebSocket that was refused admission, with close code
    /// [`close::TOO_MANY`] (4008) and the refusal as reason. For servers that upgrade before
    /// calling [`Bridge::admit`]; answering the upgrade request with
    /// [`Refused::http_status`] is preferred.
    pub async fn refuse<S>(&self, mut ws: WebSocketStream<S>, refused: Refused)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        pump::close_ws(&mut ws, close::TOO_MANY, &refused.to_string()).await;
    }

    /// Active sockets, totals and bytes each way.
    pub fn stats(&self) -> BridgeStats {
        let c = &self.inner.counters;
        BridgeStats {
            active: c.active.load(Ordering::Relaxed),
            admitted: self.inner.admissions.held(),
            served: c.served.load(Ordering::Relaxed),
            refused: self.inner.admissions.refused(),
            bytes_to_host: c.bytes_to_host.load(Ordering::Relaxed),
            bytes_to_browser: c.bytes_to_browser.load(Ordering::Relaxed),
            host_connections: self.inner.hosts.live_connections(),
        }
    }
}

/// What a browser's WebSocket runs over once upgraded (the HTTP server's connection, boxed).
pub trait SocketIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> SocketIo for T {}

/// An upgraded browser WebSocket.
pub type BrowserSocket = WebSocketStream<Box<dyn SocketIo>>;

/// Where the front server hands a browser's WebSocket for host `host`: a [`Bridge`] that
/// dials a remote host over QUIC, or (inside `peer host`) the host's own browser-channel code,
/// in-process.
pub trait SocketHandler: Send + Sync + 'static {
    /// Admission check before the upgrade.
    fn admit(&self, ip: IpAddr) -> Result<Admission, Refused>;
    /// Serves the socket until it closes; `admission` is released when the future ends.
    fn serve(
        &self,
        ws: BrowserSocket,
        host: EndpointId,
        admission: Admission,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;
    /// Counters for `/metrics`.
    fn stats(&self) -> BridgeStats;
}

impl SocketHandler for Bridge {
    fn admit(&self, ip: IpAddr) -> Result<Admission, Refused> {
        Bridge::admit(self, ip)
    }

    fn serve(
        &self,
        ws: BrowserSocket,
        host: EndpointId,
        admission: Admission,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
        let bridge = self.clone();
        Box::pin(async move { bridge.serve(ws, host, admission).await })
    }

    fn stats(&self) -> BridgeStats {
        Bridge::stats(self)
    }
}

/// Decrements the active-socket count on drop (also when `serve` is cancelled).
struct ActiveGuard<'a>(&'a AtomicUsize);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn admission_keys() {
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(admission_key(v4), v4);
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(admission_key(mapped), v4);
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(admission_key(a), admission_key(b));
        assert_ne!(admission_key(a), admission_key(c));
    }

    #[test]
    fn refusal_statuses() {
        assert_eq!(Refused::Full.http_status(), 503);
        assert_eq!(Refused::TooManyFromIp.http_status(), 429);
    }
}
