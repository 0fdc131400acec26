//! Dialing a paired host: a fresh endpoint per connection, the device proof, the host's hello
//! and its current routes (addresses, relays, relay token and pin), which replace what the
//! device knew and are saved to `hosts.json`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use iroh::{Endpoint, EndpointId, RelayUrl, SecretKey};

use super::conn::{CONNECT_TIMEOUT, ClientError, HostConn, RelayWatch};
use super::hosts::{KnownHost, Routes};
use crate::net::{self, ALPN_SESSION, close};
use crate::proto::{
    ClientHello, Frame, FrameReader, HostRoutes, PROTOCOL_VERSION, proof_message, write_frame,
};

/// How long closing the previous connection's endpoint may delay a reconnect.
const CLOSE_OLD: Duration = Duration::from_millis(200);

/// Dials one host, again and again: a paired host over iroh ([`Dialer::new`]), or the host
/// on this machine through its control socket ([`Dialer::local`]).
#[derive(Debug)]
pub struct Dialer(Way);

#[derive(Debug)]
enum Way {
    Remote(Box<Remote>),
    /// The control socket of the host on this machine (docs/protocol.md section 13).
    Local(PathBuf),
}

impl Dialer {
    /// Binds a fresh endpoint (its own random key) for talking to `host`.
    pub async fn new(
        host: &KnownHost,
        device: SecretKey,
        relay_only: bool,
    ) -> Result<Dialer, ClientError> {
        let remote = Remote::new(host, device, relay_only).await?;
        Ok(Dialer(Way::Remote(Box::new(remote))))
    }

    /// Talks to the host on this machine through its control socket at `socket`: no pairing,
    /// the local user is the owner.
    pub fn local(socket: PathBuf) -> Dialer {
        Dialer(Way::Local(socket))
    }

    /// Whether this dials the host on this machine.
    pub fn is_local(&self) -> bool {
        matches!(self.0, Way::Local(_))
    }

    /// Saves the routes the host tells on each connection into the hosts file at `path`
    /// (when they differ from what it holds).
    pub fn save_routes_to(self, path: PathBuf) -> Dialer {
        match self.0 {
            Way::Remote(r) => Dialer(Way::Remote(Box::new(r.save_routes_to(path)))),
            local => Dialer(local),
        }
    }

    /// What the device knows of the host now: its relays, addresses, relay token and pin
    /// (nothing for the host on this machine).
    pub async fn routes(&self) -> Routes {
        match &self.0 {
            Way::Remote(r) => r.routes().await,
            Way::Local(_) => Routes::default(),
        }
    }

    /// Connects: over iroh, proves the device key and reads the host's hello and routes;
    /// locally, opens a session on the control socket.
    pub async fn connect(&self) -> Result<HostConn, ClientError> {
        match &self.0 {
            Way::Remote(r) => r.connect().await,
            Way::Local(socket) => HostConn::local(socket.clone()).await,
        }
    }

    /// Closes the endpoint.
    pub async fn close(self) {
        if let Way::Remote(r) = self.0 {
            r.close().await;
        }
    }
}

/// Dials one host over iroh, again and again. Each connection gets a fresh endpoint (its own random key),
/// bound to what the device knows of the host at that moment: a host that moved to other
/// relays or ports, or whose relay token changed, is dialed the new way on the next
/// connection, and a host that went back to its old state of a dead path carries none of it.
#[derive(Debug)]
struct Remote {
    device: SecretKey,
    host_id: EndpointId,
    relay_only: bool,
    /// The endpoint of the current (or last) connection and what the device knows.
    state: tokio::sync::Mutex<DialState>,
    /// Where to save routes the host tells (`None`: keep them in memory only).
    hosts_file: Option<PathBuf>,
    /// The record's routes were set by hand: the host's are not taken.
    keep_routes: bool,
    /// Whether the relay problem of a connection that got through anyway was reported.
    warned: AtomicBool,
}

#[derive(Debug)]
struct DialState {
    endpoint: Endpoint,
    /// Whether `endpoint` carried a connection already (then the next one gets a new endpoint).
    used: bool,
    routes: Routes,
    auth: net::RelayAuth,
}

impl Remote {
    /// Binds a fresh endpoint (its own random key) for talking to `host`.
    async fn new(
        host: &KnownHost,
        device: SecretKey,
        relay_only: bool,
    ) -> Result<Remote, ClientError> {
        let host_id: EndpointId = host
            .endpoint_id
            .parse()
            .map_err(|_| ClientError::BadRecord(format!("endpoint id {:?}", host.endpoint_id)))?;
        let routes = host.routes();
        let auth = routes.relay_auth().map_err(ClientError::BadRecord)?;
        let endpoint = bind(&routes, &auth, relay_only).await?;
        Ok(Remote {
            device,
            host_id,
            relay_only,
            state: tokio::sync::Mutex::new(DialState {
                endpoint,
                used: false,
                routes,
                auth,
            }),
            hosts_file: None,
            keep_routes: host.keep_routes,
            warned: AtomicBool::new(false),
        })
    }

    /// Saves the routes the host tells on each connection into the hosts file at `path`
    /// (when they differ from what it holds).
    fn save_routes_to(mut self, path: PathBuf) -> Remote {
        self.hosts_file = Some(path);
        self
    }

    /// What the device knows of the host now: its relays, addresses, relay token and pin.
    async fn routes(&self) -> Routes {
        self.state.lock().await.routes.clone()
    }

    /// Connects, proves the device key, reads the host's hello and routes.
    async fn connect(&self) -> Result<HostConn, ClientError> {
        let mut state = self.state.lock().await;
        if state.used {
            // A new endpoint for a new connection: it carries nothing of the last one (a path
            // through a relay that died, state the host still keeps for the old endpoint id),
            // and it uses the routes as they are now.
            let endpoint = bind(&state.routes, &state.auth, self.relay_only).await?;
            let old = std::mem::replace(&mut state.endpoint, endpoint);
            let _ = tokio::time::timeout(CLOSE_OLD, old.close()).await;
        }
        state.used = true;
        let endpoint = state.endpoint.clone();
        let auth = state.auth.clone();
        let (relays, direct) = state.routes.dial_parts();
        drop(state);
        // Without a direct address the relay is the only way: a relay that refuses us or fails
        // the pin ends the attempt at once, with the reason.
        let relay_is_the_way = self.relay_only || direct.is_empty();
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, async {
            tokio::select! {
                r = self.connect_on(&endpoint, &relays, &direct) => r,
                p = auth.fatal(&endpoint), if relay_is_the_way => Err(ClientError::Relay(p)),
            }
        })
        .await
        .unwrap_or_else(|_| Err(ClientError::Unreachable("timed out".into())));
        match attempt {
            // A failure to reach the host is best explained by the relay's problem, if any.
            Err(ClientError::Unreachable(e)) => Err(auth
                .problem(&endpoint)
                .map_or(ClientError::Unreachable(e), ClientError::Relay)),
            Ok((conn, routes)) => {
                if let Some(p) = auth.problem(&endpoint)
                    && !self.warned.swap(true, Ordering::Relaxed)
                {
                    tracing::warn!("connected over a direct path, but {p}");
                }
                self.learn(routes).await;
                Ok(conn)
            }
            Err(e) => Err(e),
        }
    }

    async fn connect_on(
        &self,
        endpoint: &Endpoint,
        relays: &[RelayUrl],
        direct: &[SocketAddr],
    ) -> Result<(HostConn, HostRoutes), ClientError> {
        let addr = net::dial_addr(self.host_id, relays, direct, self.relay_only);
        let watch = RelayWatch::new(endpoint);
        let conn = endpoint
            .connect(addr, ALPN_SESSION)
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let (mut send, recv) = conn
            .open_bi()
            .await
            .map_err(|e| ClientError::from_conn(&e))?;
        let material = net::proof_material(&conn, &endpoint.id())
            .ok_or_else(|| ClientError::Protocol("cannot derive the connection proof".into()))?;
        let proof = self.device.sign(&proof_message(&material));
        let hello = Frame::ClientHello(ClientHello {
            protocol: PROTOCOL_VERSION,
            device: *self.device.public().as_bytes(),
            proof: proof.to_bytes().to_vec(),
        });
        write_frame(&mut send, &hello)
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let mut reader = FrameReader::new(super::stream::StreamRecv::Quic(recv));
        let hello = match reader.read().await {
            Ok(Frame::HostHello(h)) => h,
            Ok(Frame::Error(e)) => return Err(e.into()),
            Ok(other) => {
                return Err(ClientError::Protocol(format!(
                    "expected HostHello, got {:?}",
                    other.frame_type()
                )));
            }
            Err(e) => {
                // A refusal arrives as a connection close; wait briefly for its reason.
                let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
                return Err(ClientError::from_read(e, &conn));
            }
        };
        if hello.protocol != PROTOCOL_VERSION {
            conn.close(close::PROTOCOL.into(), b"protocol version mismatch");
            return Err(ClientError::Protocol(format!(
                "the host speaks session protocol {}, this client {PROTOCOL_VERSION}; update peer",
                hello.protocol
            )));
        }
        // The host's routes follow its hello on every connection.
        let routes = match reader.read().await {
            Ok(Frame::HostRoutes(r)) => r,
            Ok(other) => {
                return Err(ClientError::Protocol(format!(
                    "expected HostRoutes, got {:?}",
                    other.frame_type()
                )));
            }
            Err(e) => return Err(ClientError::from_read(e, &conn)),
        };
        Ok((HostConn::new(conn, send, reader, hello, watch), routes))
    }

    /// Takes the host's routes as the device's knowledge from now on, and saves them.
    async fn learn(&self, told: HostRoutes) {
        if self.keep_routes {
            return;
        }
        let mut state = self.state.lock().await;
        let Some(routes) = state.routes.updated(&told) else {
            return;
        };
        match routes.relay_auth() {
            Ok(auth) => state.auth = auth,
            Err(e) => {
                tracing::warn!("the host sent a relay certificate pin that does not parse: {e}");
                return;
            }
        }
        tracing::info!(
            relays = ?routes.relay_urls,
            direct = ?routes.direct_addrs,
            "the host's routes changed"
        );
        state.routes = routes.clone();
        drop(state);
        if let Some(path) = self.hosts_file.clone() {
            let id = self.host_id.to_string();
            let saved = tokio::task::spawn_blocking(move || {
                super::hosts::KnownHosts::update_routes(path, &id, &routes)
            })
            .await;
            match saved {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("cannot save the host's new routes: {e}"),
                Err(e) => tracing::warn!("cannot save the host's new routes: {e}"),
            }
        }
    }

    /// Closes the endpoint.
    async fn close(self) {
        self.state.into_inner().endpoint.close().await;
    }
}

/// A fresh endpoint (random key) for dialing a host with these routes.
async fn bind(
    routes: &Routes,
    auth: &net::RelayAuth,
    relay_only: bool,
) -> Result<Endpoint, ClientError> {
    let (relays, direct) = routes.dial_parts();
    net::bind_endpoint_with(
        net::EndpointOptions {
            secret: SecretKey::generate(),
            relays,
            bind: net::client_bind(&direct),
            relay_only,
            alpns: vec![],
        },
        auth,
    )
    .await
    .map_err(|e| ClientError::Unreachable(e.to_string()))
}
