//! [`EmbeddedRelay`]: iroh's relay server running inside this process.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use iroh_base::{EndpointId, RelayUrl};
use iroh_relay::server::{
    Access, AccessControl, ClientRequest, ConnectionId, RelayConfig, RelayService, Server,
    ServerConfig, SpawnError, SupervisorError,
};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// Errors from starting or running an [`EmbeddedRelay`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The server could not start, typically because the address could not be bound.
    #[error("failed to start the relay server on {addr}")]
    Spawn {
        /// The address we tried to serve on.
        addr: SocketAddr,
        /// Why it failed.
        #[source]
        source: SpawnError,
    },
    /// The server started but did not report the address its HTTP listener is bound to.
    #[error("the relay server started without an HTTP listener")]
    NoHttpAddr,
    /// No valid relay URL can be formed from the bound address.
    #[error("cannot form a relay URL for {addr}")]
    Url {
        /// The bound address.
        addr: SocketAddr,
        /// Why the URL is invalid.
        #[source]
        source: iroh_base::RelayUrlParseError,
    },
    /// The server stopped on its own because one of its tasks failed.
    #[error("the relay server stopped")]
    Stopped {
        /// The task failure.
        #[source]
        source: SupervisorError,
    },
    /// The server's supervisor task panicked or was cancelled.
    #[error("the relay server task ended abnormally")]
    Task {
        /// The join failure.
        #[source]
        source: tokio::task::JoinError,
    },
}

/// iroh's relay server, running in this process over plain HTTP (no TLS).
///
/// Every endpoint is admitted (no access control yet). The server's tasks belong to this
/// handle: dropping it stops the server and disconnects its clients (inside a Tokio runtime, a
/// task living at most 2 s also catches clients that were just connecting);
/// [`EmbeddedRelay::shutdown`] does the same gracefully and waits for it.
///
/// Clients reach the relay at [`EmbeddedRelay::url_for`]; a client can dial a peer through
/// any relay URL, but only relays in its relay map (`iroh::RelayMode::Custom`) become its home.
#[derive(Debug)]
pub struct EmbeddedRelay {
    /// `None` only while being shut down or dropped.
    server: Option<Server>,
    access: Arc<Admitted>,
    http_addr: SocketAddr,
    /// `http://<bound ip>:<bound port>/`, the template for [`Self::url_for`].
    base_url: RelayUrl,
    /// Set once [`Self::join`] has seen the server stop; its task must not be awaited again.
    finished: bool,
}

impl EmbeddedRelay {
    /// Starts the relay server, serving HTTP on `http_bind` (port 0 picks a free port).
    ///
    /// Must be called within a Tokio runtime. Returns once the listener is bound.
    pub async fn spawn(http_bind: SocketAddr) -> Result<Self, RelayError> {
        let access = Arc::new(Admitted::default());
        let mut relay = RelayConfig::new(http_bind);
        relay.access = access.clone();
        let mut config = ServerConfig::default();
        config.relay = Some(relay);
        // No `config.quic`: QUIC address discovery needs TLS, which this relay does not have.

        let server = Server::spawn(config)
            .await
            .map_err(|source| RelayError::Spawn {
                addr: http_bind,
                source,
            })?;
        let http_addr = server.http_addr().ok_or(RelayError::NoHttpAddr)?;
        let base_url = format!("http://{http_addr}/")
            .parse::<RelayUrl>()
            .map_err(|source| RelayError::Url {
                addr: http_addr,
                source,
            })?;
        info!(%http_addr, "relay server listening (plain HTTP)");
        Ok(Self {
            server: Some(server),
            access,
            http_addr,
            base_url,
            finished: false,
        })
    }

    /// The socket address the relay's HTTP listener is bound to (with the real port).
    ///
    /// If the relay was bound to an unspecified address (`0.0.0.0`, `::`), so is this; use
    /// [`Self::url_for`] to build a URL with a reachable IP.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The relay URL clients should use, `http://{host}:{port}/`.
    ///
    /// `host` is the IP address under which clients can reach this machine; the caller picks
    /// it (e.g. `127.0.0.1` for tests, a LAN or public address otherwise).
    pub fn url_for(&self, host: IpAddr) -> RelayUrl {
        let mut url = (*self.base_url).clone();
        // Cannot fail: `base_url` is an `http://` URL, which always has a host.
        let _ = url.set_ip_host(host);
        RelayUrl::from(url)
    }

    /// Waits until the server stops on its own, which only happens if one of its tasks fails.
    ///
    /// This does not request shutdown (see [`Self::shutdown`]). Cancel-safe.
    pub async fn join(&mut self) -> Result<(), RelayError> {
        let Some(server) = self.server.as_mut().filter(|_| !self.finished) else {
            return Ok(());
        };
        let result = server.join().await;
        self.finished = true;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(RelayError::Stopped { source }),
            Err(source) => Err(RelayError::Task { source }),
        }
    }

    /// Stops the server gracefully and waits until all of its tasks have ended.
    ///
    /// Connected clients are disconnected; they try to reconnect and otherwise carry on
    /// without this relay (their connections through it time out).
    pub async fn shutdown(mut self) {
        self.access.close();
        let Some(server) = self.server.take() else {
            return;
        };
        let service = server.relay_service().cloned();
        if self.finished {
            // Its tasks are gone, and awaiting them again would panic: just drop it.
            drop(server);
        } else if let Err(err) = server.shutdown().await {
            warn!(%err, "relay server stopped with an error");
        }
        if let Some(service) = service {
            disconnect_stragglers(&self.access, &service).await;
        }
    }
}

/// How long stopping the relay keeps disconnecting late clients.
const STRAGGLER_TIMEOUT: Duration = Duration::from_secs(2);

/// Disconnects the clients of a stopped relay until none is left (or time runs out).
///
/// iroh-relay 1.4.1 finishes registering a client in a task that shutdown neither waits for
/// nor aborts, so a client admitted just before shutdown can register (and be served) after
/// the server disconnected everyone. [`Admitted`] refuses new clients once closed, and drops
/// its record of a client only when that client's connection has ended.
async fn disconnect_stragglers(access: &Admitted, service: &RelayService) {
    let deadline = Instant::now() + STRAGGLER_TIMEOUT;
    loop {
        let connected = access.connected();
        if connected.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            warn!(
                clients = connected.len(),
                "relay clients still connected after shutdown"
            );
            return;
        }
        for endpoint in connected {
            service.clients().disconnect(endpoint, None);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Drop for EmbeddedRelay {
    fn drop(&mut self) {
        self.access.close();
        let Some(server) = self.server.take() else {
            return;
        };
        // Dropping an iroh-relay 1.4.1 `Server` stops accepting, but clients that are already
        // connected keep being served (their tasks keep each other alive). Disconnect them.
        let connected = self.access.connected();
        if let Some(service) = server.relay_service().filter(|_| !connected.is_empty()) {
            for endpoint in connected {
                service.clients().disconnect(endpoint, None);
            }
            // Clients admitted a moment ago may register only after this; a short-lived task
            // (at most STRAGGLER_TIMEOUT) disconnects them too.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let (access, service) = (self.access.clone(), service.clone());
                runtime.spawn(async move { disconnect_stragglers(&access, &service).await });
            }
        }
        drop(server);
    }
}

/// Access control of an [`EmbeddedRelay`]: admits every endpoint until closed, and
/// remembers which ones are connected so that stopping the relay can disconnect them.
#[derive(Debug, Default)]
struct Admitted {
    state: Mutex<AdmittedState>,
}

#[derive(Debug, Default)]
struct AdmittedState {
    /// Set when the relay stops; from then on every client is refused.
    closed: bool,
    /// Admitted connections whose client has not disconnected yet.
    connected: HashMap<ConnectionId, EndpointId>,
}

impl Admitted {
    fn state(&self) -> MutexGuard<'_, AdmittedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refuses all further clients.
    fn close(&self) {
        self.state().closed = true;
    }

    /// The endpoints that have at least one admitted, not yet ended connection.
    fn connected(&self) -> Vec<EndpointId> {
        let mut endpoints: Vec<_> = self.state().connected.values().copied().collect();
        endpoints.sort_unstable();
        endpoints.dedup();
        endpoints
    }
}

impl AccessControl for Admitted {
    async fn on_connect(&self, request: &ClientRequest) -> Access {
        let endpoint = request.endpoint_id();
        let mut state = self.state();
        if state.closed {
            return Access::Deny {
                reason: Some("relay is shutting down".to_owned()),
            };
        }
        state.connected.insert(request.connection_id(), endpoint);
        debug!(endpoint = %endpoint.fmt_short(), "relay client connected");
        Access::Allow
    }

    fn on_disconnect(&self, endpoint: EndpointId, connection_id: ConnectionId) {
        self.state().connected.remove(&connection_id);
        debug!(endpoint = %endpoint.fmt_short(), "relay client disconnected");
    }
}
