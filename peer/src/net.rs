//! The iroh side: ALPNs, close codes, endpoint construction and the device proof.

use std::net::SocketAddr;
use std::time::Duration;

use iroh::endpoint::{Connection, QuicTransportConfig, presets};
use iroh::{Endpoint, EndpointAddr, RelayMode, RelayUrl, SecretKey};

/// Pairing: a Noise handshake with the one-time secret as psk.
pub const ALPN_PAIR: &[u8] = b"peer/pair/1";
/// Sessions: the control stream plus one stream per attached session.
pub const ALPN_SESSION: &[u8] = b"peer/session/1";
/// The browser bridge (Noise channel tunnelled by the mobile bridge).
pub const ALPN_BRIDGE: &[u8] = b"peer/bridge/1";

/// TLS exporter label of the device proof in [`crate::proto::ClientHello`].
pub const PROOF_LABEL: &[u8] = b"peer/session/1 device proof";
/// Domain-separation prefix of the signed proof message.
pub const PROOF_PREFIX: &[u8] = b"peer device proof v1:";

/// Concurrent streams a peer may open on one connection (browser sockets through one bridge,
/// or attached sessions of one native client).
pub const MAX_STREAMS: u32 = 1024;

/// How often an idle connection sends a keep-alive.
pub const KEEP_ALIVE: Duration = Duration::from_secs(1);
/// How long a silent path is tolerated before the connection is declared dead and the client
/// reconnects. Short, because a person is waiting.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(6);

/// Application close codes on peer connections.
pub mod close {
    /// Normal close (the client is done).
    pub const DONE: u32 = 0;
    /// The host is shutting down; reconnect later.
    pub const SHUTTING_DOWN: u32 = 1;
    /// The device was revoked; do not reconnect.
    pub const REVOKED: u32 = 2;
    /// The device is not paired with this host.
    pub const NOT_PAIRED: u32 = 3;
    /// The peer broke the protocol.
    pub const PROTOCOL: u32 = 4;
    /// This ALPN is recognised but not served by this host.
    pub const UNSUPPORTED: u32 = 5;
}

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
#[derive(Debug)]
pub struct EndpointOptions {
    /// The endpoint's key.
    pub secret: SecretKey,
    /// Relays to use (the first is home).
    pub relays: Vec<RelayUrl>,
    /// UDP bind address; `None` lets iroh choose (all interfaces, random port).
    pub bind: Option<SocketAddr>,
    /// No direct paths: everything through the relay.
    pub relay_only: bool,
    /// ALPNs accepted (empty for a pure dialer).
    pub alpns: Vec<Vec<u8>>,
}

/// Binds an iroh endpoint that uses only the given relays and no discovery services.
pub async fn bind_endpoint(opts: EndpointOptions) -> Result<Endpoint, NetError> {
    let transport = QuicTransportConfig::builder()
        .keep_alive_interval(KEEP_ALIVE)
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
        // No QUIC address-discovery probe: our relays speak plain HTTP(S) only, and the probe
        // delays `online()` by seconds.
        RelayMode::Custom(
            opts.relays
                .iter()
                .map(|u| iroh::RelayConfig::new(u.clone(), None))
                .collect(),
        )
    };
    let mut builder = Endpoint::builder(presets::Minimal)
        .secret_key(opts.secret)
        .relay_mode(relay_mode)
        .transport_config(transport)
        .alpns(opts.alpns);
    if opts.relay_only {
        // No UDP socket at all: every packet goes through the relay.
        builder = builder.clear_ip_transports();
    } else if let Some(bind) = opts.bind {
        // Only this address: a plain bind_addr would keep iroh's default [::]:0 socket too.
        builder = builder
            .clear_ip_transports()
            .bind_addr(bind)
            .map_err(|_| NetError::BadBind(bind))?;
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

/// The 32 bytes a device signs to prove its key on this connection.
pub fn proof_material(conn: &Connection, client_id: &iroh::EndpointId) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    conn.export_keying_material(&mut out, PROOF_LABEL, client_id.as_bytes())
        .ok()?;
    Some(out)
}

/// The message a device signs: [`PROOF_PREFIX`] followed by [`proof_material`].
pub fn proof_message(material: &[u8; 32]) -> Vec<u8> {
    let mut m = PROOF_PREFIX.to_vec();
    m.extend_from_slice(material);
    m
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
