//! [`EmbeddedRelay`]: the relay's front server running inside this process.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
};

use iroh_base::RelayUrl;
use tracing::info;

use crate::{
    AccessMode, AccessPolicy,
    front::{Front, FrontConfig},
};

/// Errors from starting or running an [`EmbeddedRelay`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// A listener could not be bound, typically because the address is in use.
    #[error("failed to listen on {addr}")]
    Bind {
        /// The address we tried to listen on.
        addr: SocketAddr,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The configuration has neither an HTTP nor an HTTPS listener.
    #[error("nothing to listen on: configure an HTTP or an HTTPS listener")]
    NoListener,
    /// The configuration is inconsistent (e.g. a route prefix collides with a built-in path).
    #[error("invalid relay configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The web root is not a readable directory.
    #[error("web root {} is unusable", path.display())]
    WebRoot {
        /// The configured directory.
        path: PathBuf,
        /// Why it is unusable.
        #[source]
        source: std::io::Error,
    },
    /// No valid relay URL can be formed from the bound address.
    #[error("cannot form a relay URL for {addr}")]
    Url {
        /// The bound address.
        addr: SocketAddr,
        /// Why the URL is invalid.
        #[source]
        source: iroh_base::RelayUrlParseError,
    },
    /// The server's accept task panicked or was cancelled.
    #[error("the relay server task ended abnormally")]
    Task {
        /// The join failure.
        #[source]
        source: tokio::task::JoinError,
    },
}

/// The relay and its HTTP(S) front server, running in this process.
///
/// [`EmbeddedRelay::spawn`] serves plain HTTP on one port and admits every endpoint;
/// [`EmbeddedRelay::spawn_with`] takes a [`FrontConfig`] (HTTPS, a web root, routes such as
/// the mobile bridge, an [`AccessPolicy`], [`crate::Limits`]).
///
/// The server's tasks belong to this handle: dropping it stops accepting and closes every
/// connection, relay clients included (inside a Tokio runtime, a task living at most 2 s also
/// catches clients that were just connecting); [`EmbeddedRelay::shutdown`] does the same
/// gracefully and waits for it.
///
/// Clients reach the relay at [`EmbeddedRelay::url_for`]; a client can dial a peer through
/// any relay URL, but only relays in its relay map (`iroh::RelayMode::Custom`) become its home.
#[derive(Debug)]
pub struct EmbeddedRelay {
    /// `None` only once shut down.
    front: Option<Front>,
    /// The HTTP listener's address, or the HTTPS one's if there is no HTTP listener.
    primary: SocketAddr,
    https_addr: Option<SocketAddr>,
    /// `http(s)://<bound ip>:<bound port>/` of `primary`, the template for [`Self::url_for`].
    base_url: RelayUrl,
}

impl EmbeddedRelay {
    /// Starts a relay serving plain HTTP on `http_bind` (port 0 picks a free port), admitting
    /// every endpoint, with the default [`crate::Limits`] and no web root.
    ///
    /// Must be called within a Tokio runtime. Returns once the listener is bound.
    pub async fn spawn(http_bind: SocketAddr) -> Result<Self, RelayError> {
        Self::spawn_with(FrontConfig::http(http_bind)).await
    }

    /// Starts a relay as configured. Must be called within a Tokio runtime; returns once all
    /// listeners are bound.
    pub async fn spawn_with(config: FrontConfig) -> Result<Self, RelayError> {
        let front = Front::spawn(config).await?;
        let (primary, scheme) = match (front.http_addr, front.https_addr) {
            (Some(http), _) => (http, "http"),
            (None, Some(https)) => (https, "https"),
            (None, None) => return Err(RelayError::NoListener),
        };
        let base_url = format!("{scheme}://{primary}/")
            .parse::<RelayUrl>()
            .map_err(|source| RelayError::Url {
                addr: primary,
                source,
            })?;
        info!(relay = %base_url, access = %front.access_mode(), "relay running");
        Ok(Self {
            https_addr: front.https_addr,
            front: Some(front),
            primary,
            base_url,
        })
    }

    /// The socket address of the plain-HTTP listener (with the real port); if the relay has
    /// only an HTTPS listener, that one's.
    ///
    /// If the relay was bound to an unspecified address (`0.0.0.0`, `::`), so is this; use
    /// [`Self::url_for`] to build a URL with a reachable IP.
    pub fn http_addr(&self) -> SocketAddr {
        self.primary
    }

    /// The socket address of the HTTPS listener, if there is one.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// The relay URL clients should use, `http://{host}:{port}/` (`https://` if the relay has
    /// only an HTTPS listener).
    ///
    /// `host` is the IP address under which clients can reach this machine; the caller picks
    /// it (e.g. `127.0.0.1` for tests, a LAN or public address otherwise). An HTTPS URL with an
    /// IP only works if the certificate names that IP; use [`Self::https_url`] for a domain.
    pub fn url_for(&self, host: IpAddr) -> RelayUrl {
        let mut url = (*self.base_url).clone();
        // Cannot fail: `base_url` is an `http(s)://` URL, which always has a host.
        let _ = url.set_ip_host(host);
        RelayUrl::from(url)
    }

    /// The HTTPS relay URL under `host` (a domain name or an IP address), `https://{host}/` or
    /// `https://{host}:{port}/`; `None` without an HTTPS listener or if `host` is not valid in
    /// a URL.
    pub fn https_url(&self, host: &str) -> Option<RelayUrl> {
        let port = self.https_addr?.port();
        let host = match host.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => host.to_owned(),
        };
        let url = if port == 443 {
            format!("https://{host}/")
        } else {
            format!("https://{host}:{port}/")
        };
        url.parse().ok()
    }

    /// Number of relay clients connected right now.
    pub fn relay_client_count(&self) -> usize {
        self.front.as_ref().map_or(0, Front::relay_client_count)
    }

    /// The `/metrics` text (Prometheus format), regardless of who may read it over HTTP.
    pub fn metrics_text(&self) -> String {
        self.front
            .as_ref()
            .map(Front::metrics_text)
            .unwrap_or_default()
    }

    /// The access mode in force.
    pub fn access_mode(&self) -> AccessMode {
        self.front
            .as_ref()
            .map_or(AccessMode::Open, Front::access_mode)
    }

    /// Admits `endpoint` whatever the access policy, also after [`Self::set_access_policy`].
    ///
    /// For the relay's own services only: the mobile bridge dials hosts through this relay
    /// with an iroh endpoint of its own, which must get in when the relay runs in allowlist or
    /// token mode. The endpoint id is proven by the relay handshake, so listing it admits only
    /// the holder of its secret key.
    pub fn admit_service_endpoint(&self, endpoint: iroh_base::EndpointId) {
        if let Some(front) = &self.front {
            front.admit_service(endpoint);
        }
    }

    /// Replaces the access policy. Connected relay clients the new policy does not admit are
    /// disconnected; returns how many.
    pub fn set_access_policy(&self, policy: AccessPolicy) -> usize {
        self.front
            .as_ref()
            .map_or(0, |front| front.set_access_policy(policy))
    }

    /// Waits until the server stops on its own, which only happens if its accept task fails.
    ///
    /// This does not request shutdown (see [`Self::shutdown`]). Cancel-safe.
    pub async fn join(&mut self) -> Result<(), RelayError> {
        match self.front.as_mut() {
            Some(front) => front.join().await,
            None => Ok(()),
        }
    }

    /// Stops the server gracefully and waits until all of its tasks have ended.
    ///
    /// Stops accepting, lets HTTP connections finish (a few seconds at most), then closes
    /// every remaining connection: relay clients are disconnected (they try to reconnect and
    /// otherwise carry on without this relay), routes are stopped.
    pub async fn shutdown(mut self) {
        if let Some(mut front) = self.front.take() {
            front.shutdown().await;
        }
    }
}

impl Drop for EmbeddedRelay {
    fn drop(&mut self) {
        if let Some(mut front) = self.front.take() {
            front.abort();
        }
    }
}
