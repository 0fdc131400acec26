//! [`EmbeddedRelay`]: iroh's relay server running inside this process.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use iroh_base::RelayUrl;
use iroh_relay::server::{
    AllowAll, RelayConfig, Server, ServerConfig, SpawnError, SupervisorError,
};
use tracing::{info, warn};

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
/// handle: dropping it stops the server; [`EmbeddedRelay::shutdown`] stops it gracefully.
///
/// Clients reach the relay at [`EmbeddedRelay::url_for`] and must have it in their relay map
/// (`iroh::RelayMode::Custom`).
#[derive(Debug)]
pub struct EmbeddedRelay {
    server: Server,
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
        let mut relay = RelayConfig::new(http_bind);
        relay.access = Arc::new(AllowAll);
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
            server,
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
        if self.finished {
            return Ok(());
        }
        let result = self.server.join().await;
        self.finished = true;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(RelayError::Stopped { source }),
            Err(source) => Err(RelayError::Task { source }),
        }
    }

    /// Stops the server gracefully and waits until all of its tasks have ended.
    ///
    /// Open relay connections are dropped; clients reconnect elsewhere or time out.
    pub async fn shutdown(self) {
        if self.finished {
            return;
        }
        if let Err(err) = self.server.shutdown().await {
            warn!(%err, "relay server stopped with an error");
        }
    }
}
