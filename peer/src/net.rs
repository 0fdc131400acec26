//! The iroh side: endpoint construction, dialing and the device proof's key material. The
//! names and numbers on the wire (ALPNs, close codes) are in [`peer_proto`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use iroh::endpoint::{BindOpts, Connection, QuicTransportConfig, presets};
use iroh::{Endpoint, EndpointAddr, RelayMode, RelayUrl, SecretKey, Watcher as _};
use peer_pairing::RelayToken;
use peer_relay::pin::{Fingerprint, PinMismatches};

mod congestion;

pub use peer_proto::close::quic as close;
pub use peer_proto::{ALPN_BRIDGE, ALPN_PAIR, ALPN_SESSION, PROOF_LABEL};

/// Concurrent streams a peer may open on one connection (browser sockets through one bridge,
/// or attached sessions of one native client).
pub const MAX_STREAMS: u32 = 1024;

/// How often an idle connection sends a keep-alive.
pub const KEEP_ALIVE: Duration = Duration::from_secs(1);
/// How long a silent path is tolerated before the connection is declared dead and the client
/// reconnects. Short, because a person is waiting.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(6);
/// The round-trip time QUIC assumes before it has measured one. QUIC's default (333 ms) makes
/// the first retransmission of a lost handshake packet wait about 1 s, then 2 s: a client that
/// reconnects while the host is still moving to another relay (its first packets are dropped by
/// a relay the host has not joined yet) waited 1 or 3 s more. At 100 ms the first
/// retransmission comes after about 0.33 s; on a slower path the cost is a duplicate handshake
/// packet.
pub const INITIAL_RTT: Duration = Duration::from_millis(100);

/// Why binding an endpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A bind address was rejected.
    #[error("cannot bind {0}")]
    BadBind(SocketAddr),
    /// iroh could not bind.
    #[error("cannot start the network endpoint: {0}")]
    Bind(String),
}

/// How to build an endpoint.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    /// The endpoint's key.
    pub secret: SecretKey,
    /// Relays to use (the first is home).
    pub relays: Vec<RelayUrl>,
    /// UDP bind address; `None` lets iroh choose (all interfaces, random port). `[::]:port`
    /// means both families: an IPv4 socket on `0.0.0.0:port` and, where the machine has IPv6,
    /// an IPv6 one on `[::]:port`.
    pub bind: Option<SocketAddr>,
    /// No direct paths: everything through the relay.
    pub relay_only: bool,
    /// ALPNs accepted (empty for a pure dialer).
    pub alpns: Vec<Vec<u8>>,
}

/// How an endpoint gets into its relays: a token for relays in token mode and a certificate
/// pin for self-signed relays. Both apply to every relay of the endpoint.
///
/// `Debug` never shows the token.
#[derive(Debug, Clone, Default)]
pub struct RelayAuth {
    /// Presented to every relay (`Authorization: Bearer`, iroh's `RelayConfig::with_auth_token`).
    pub token: Option<RelayToken>,
    /// The relays' TLS certificate must have this SHA-256; nothing else is trusted (no CA
    /// fallback). `None`: the usual web PKI roots.
    pub pin: Option<Fingerprint>,
    /// Certificates refused because of the pin, for error messages.
    pub mismatches: PinMismatches,
}

/// A relay problem that retrying will not fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayProblem {
    /// The relay's certificate is not the pinned one.
    #[error(
        "relay {url} presented a TLS certificate with SHA-256 {presented}, but this host's \
         relay certificate is pinned to {pinned}; refusing to use it (the relay's certificate \
         changed, or someone is in between: check `peer-relay`'s printed fingerprint)"
    )]
    PinMismatch {
        /// The relay.
        url: String,
        /// What it presented.
        presented: Fingerprint,
        /// What was expected.
        pinned: Fingerprint,
    },
    /// The relay's access control refused this endpoint.
    #[error("relay {url} refused this endpoint: {reason} ({hint})")]
    Denied {
        /// The relay.
        url: String,
        /// The relay's reason.
        reason: String,
        /// What to do about it.
        hint: &'static str,
    },
}

impl RelayAuth {
    /// A fatal problem with one of `endpoint`'s relays, if one has shown up.
    pub fn problem(&self, endpoint: &Endpoint) -> Option<RelayProblem> {
        let statuses = endpoint.home_relay_status().get();
        if statuses.iter().any(|s| s.is_connected()) {
            // Whatever failed before, the relay works now.
            return None;
        }
        let url = || {
            statuses
                .first()
                .map_or_else(|| "(none)".to_owned(), |s| s.url().to_string())
        };
        if let (Some(pinned), Some(presented)) = (self.pin, self.mismatches.last()) {
            return Some(RelayProblem::PinMismatch {
                url: url(),
                presented,
                pinned,
            });
        }
        statuses.iter().find_map(|s| {
            s.auth_denied_reason().map(|reason| RelayProblem::Denied {
                url: s.url().to_string(),
                reason: reason.to_owned(),
                hint: if self.token.is_some() {
                    "the relay token was not accepted: it is wrong, or the relay's tokens changed"
                } else {
                    "the relay needs a relay token, and none was given"
                },
            })
        })
    }

    /// Waits until [`Self::problem`] reports something (never returns if all is well).
    pub async fn fatal(&self, endpoint: &Endpoint) -> RelayProblem {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            if let Some(p) = self.problem(endpoint) {
                return p;
            }
        }
    }
}

/// A relay as an endpoint's relay map holds it: without a QUIC address-discovery probe (our
/// relays speak plain HTTP(S) only, and the probe delays `online()` by seconds), with `auth`'s
/// token.
pub fn relay_config(url: &RelayUrl, auth: &RelayAuth) -> iroh::RelayConfig {
    let config = iroh::RelayConfig::new(url.clone(), None);
    match &auth.token {
        Some(token) => config.with_auth_token(token.as_str()),
        None => config,
    }
}

/// Binds an iroh endpoint that uses only the given relays and no discovery services.
pub async fn bind_endpoint(opts: EndpointOptions) -> Result<Endpoint, NetError> {
    bind_endpoint_with(opts, &RelayAuth::default()).await
}

/// [`bind_endpoint`], presenting `auth`'s token to the relays and checking their certificate
/// against its pin.
pub async fn bind_endpoint_with(
    opts: EndpointOptions,
    auth: &RelayAuth,
) -> Result<Endpoint, NetError> {
    let mut transport = QuicTransportConfig::builder();
    if let Some(cc) = congestion::controller() {
        transport = transport.congestion_controller_factory(cc);
    }
    let transport = transport
        .keep_alive_interval(KEEP_ALIVE)
        .initial_rtt(INITIAL_RTT)
        // A bridge carries one stream per browser socket; QUIC's default allows only 100.
        .max_concurrent_bidi_streams(MAX_STREAMS.into())
        .max_idle_timeout(Some(
            IDLE_TIMEOUT
                .try_into()
                .map_err(|_| NetError::Bind("idle timeout".into()))?,
        ))
        .build();
    let relay_mode = if opts.relays.is_empty() {
        RelayMode::Disabled
    } else {
        RelayMode::Custom(opts.relays.iter().map(|u| relay_config(u, auth)).collect())
    };
    let mut builder = Endpoint::builder(presets::Minimal)
        .secret_key(opts.secret)
        .relay_mode(relay_mode)
        .transport_config(transport)
        .alpns(opts.alpns);
    if let Some(pin) = auth.pin {
        // Replaces certificate verification for every TLS connection iroh makes (here: only to
        // our relays): exactly the pinned certificate, whatever its name or expiry.
        let mismatches = auth.mismatches.clone();
        builder = builder.ca_tls_config(iroh::tls::CaTlsConfig::custom_server_cert_verifier(
            std::sync::Arc::new(move |provider| {
                Ok(peer_relay::pin::reporting_verifier(
                    pin,
                    provider,
                    mismatches.clone(),
                ))
            }),
        ));
    }
    if opts.relay_only {
        // No UDP socket at all: every packet goes through the relay.
        builder = builder.clear_ip_transports();
    } else if let Some(bind) = opts.bind {
        // Only these addresses: a plain bind_addr would keep iroh's default sockets too.
        builder = builder.clear_ip_transports();
        if bind.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED) {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), bind.port());
            builder = builder
                .bind_addr(v4)
                .map_err(|_| NetError::BadBind(v4))?
                .bind_addr_with_opts(bind, BindOpts::default().set_is_required(false))
                .map_err(|_| NetError::BadBind(bind))?;
        } else {
            builder = builder
                .bind_addr(bind)
                .map_err(|_| NetError::BadBind(bind))?;
        }
    }
    builder
        .bind()
        .await
        .map_err(|e| NetError::Bind(e.to_string()))
}

/// The address a client dials: the host id plus what it knows of its relays and sockets.
pub fn dial_addr(
    id: iroh::EndpointId,
    relays: &[RelayUrl],
    direct: &[SocketAddr],
    relay_only: bool,
) -> EndpointAddr {
    let mut addr = EndpointAddr::new(id);
    for r in relays {
        addr = addr.with_relay_url(r.clone());
    }
    if !relay_only {
        for d in direct {
            addr = addr.with_ip_addr(*d);
        }
    }
    addr
}

/// Where a client binds its UDP socket for a host whose direct addresses are `direct`: on
/// loopback of their family when the host is only reachable on this machine (tests,
/// same-machine use), else wherever iroh chooses (both families).
pub fn client_bind(direct: &[SocketAddr]) -> Option<SocketAddr> {
    if direct.is_empty() || !direct.iter().all(|a| a.ip().is_loopback()) {
        return None;
    }
    if direct.iter().all(|a| a.is_ipv4()) {
        Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    } else if direct.iter().all(|a| a.is_ipv6()) {
        Some(SocketAddr::from((Ipv6Addr::LOCALHOST, 0)))
    } else {
        None
    }
}

/// The 32 bytes a device signs to prove its key on this connection.
pub fn proof_material(conn: &Connection, client_id: &iroh::EndpointId) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    conn.export_keying_material(&mut out, PROOF_LABEL, client_id.as_bytes())
        .ok()?;
    Some(out)
}

/// The application close code and reason of a connection error, if the peer closed it.
pub fn app_close(err: &iroh::endpoint::ConnectionError) -> Option<(u32, String)> {
    match err {
        iroh::endpoint::ConnectionError::ApplicationClosed(c) => Some((
            u32::try_from(c.error_code.into_inner()).unwrap_or(u32::MAX),
            String::from_utf8_lossy(&c.reason).into_owned(),
        )),
        _ => None,
    }
}
