//! Where the host is now: its relays and direct addresses, for pairing codes and for the
//! [`HostRoutes`] every connection gets right after the hello.

use std::net::SocketAddr;

use iroh::Watcher as _;

use super::HostShared;
use crate::proto::HostRoutes;

/// Most direct addresses a pairing code or [`HostRoutes`] carries.
const MAX_DIRECT: usize = 8;
/// Most relays a pairing code or [`HostRoutes`] carries.
pub(crate) const MAX_RELAYS: usize = 4;

impl HostShared {
    /// The endpoint's direct addresses (else its bound sockets), unspecified ones removed, at
    /// most eight; none for a relay-only host.
    pub(crate) fn direct_addrs(&self) -> Vec<SocketAddr> {
        if self.relay_only {
            return vec![];
        }
        let mut v: Vec<SocketAddr> = self.endpoint().addr().ip_addrs().copied().collect();
        if v.is_empty() {
            v = self.endpoint().bound_sockets();
        }
        v.retain(|a| !a.ip().is_unspecified());
        v.truncate(MAX_DIRECT);
        v
    }

    /// The relay URLs to give out, the home relay first (when it is one of them).
    pub(crate) fn relay_urls_home_first(&self) -> Vec<String> {
        let home = self
            .endpoint()
            .home_relay_status()
            .get()
            .into_iter()
            .find(|s| s.is_connected())
            .map(|s| s.url().clone());
        let mut urls = self.relay_urls.clone();
        if let Some(i) = home.and_then(|h| urls.iter().position(|u| *u == h)) {
            let h = urls.remove(i);
            urls.insert(0, h);
        }
        urls.into_iter()
            .take(MAX_RELAYS)
            .map(|u| u.to_string())
            .collect()
    }

    /// What a device is told on each connection; browsers (`with_token` false) never get the
    /// relay token, as they never speak the relay protocol.
    pub(crate) fn routes(&self, with_token: bool) -> HostRoutes {
        HostRoutes {
            relay_urls: self.relay_urls_home_first(),
            direct_addrs: self.direct_addrs().iter().map(|a| a.to_string()).collect(),
            relay_cert_sha256: self.relay_cert_sha256.map(|f| f.0),
            relay_token: self
                .relay_token
                .as_ref()
                .filter(|_| with_token)
                .map(|t| t.as_str().to_owned()),
        }
    }
}
