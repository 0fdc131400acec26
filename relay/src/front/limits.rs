//! Limits on TCP connections and slow clients: [`Limits`], [`RateLimit`].

use std::{num::NonZeroU32, time::Duration};

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
    /// File descriptors kept free below the process's limit (`RLIMIT_NOFILE`), so that health
    /// checks, metrics and the process itself keep working when the relay is full.
    ///
    /// A connection whose descriptor lands within this many of the limit is served, but its
    /// relay and route requests are refused with `503`; one landing in the last quarter of it
    /// is closed right after `accept`. See `docs/relay.md`, "Limits".
    pub fd_reserve: usize,
}

impl Default for Limits {
    /// 20 new connections per second per IP (bursts of 100), 10 000 open connections, 256 per IP,
    /// 64 file descriptors in reserve.
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
            fd_reserve: 64,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
