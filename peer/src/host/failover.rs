//! Several relays: the host keeps its home relay among the ones that work.
//!
//! iroh keeps one home relay per endpoint, chosen by its network report, and is reachable only
//! through relays it is connected to. When the home relay dies, iroh keeps retrying it and
//! picks another only at its next periodic report (20–26 s later), so devices dialing through
//! the other relays find nobody there. Worse, in iroh 1.4 a relay that refuses connections
//! (its process died on a live machine) keeps the datagrams already queued for it while it
//! backs off, and its full queue stops the endpoint's sends through *every* relay until the
//! dead one ages out (60–76 s).
//!
//! So when the home relay has been disconnected for [`FAILOVER_AFTER`] and another relay is
//! left, the host moves: it tells its connections to come back (close code `SHUTTING_DOWN`),
//! closes its endpoint and binds a new one on the same port without the dead relay, which
//! iroh makes home at once. Devices reconnect (and resume exactly where they were) through
//! any relay of the host they know. After [`PARK`] the relay is put back into the map, so one
//! that returns is used again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iroh::{RelayUrl, Watcher as _};
use tracing::{info, warn};

use super::HostShared;
use crate::net;

/// How long the home relay may be disconnected before the host moves.
pub const FAILOVER_AFTER: Duration = Duration::from_secs(1);
/// How long a relay the host moved away from stays out of its relay map.
pub const PARK: Duration = Duration::from_secs(20);
/// How often the relay status is looked at.
const TICK: Duration = Duration::from_millis(200);
/// How long connections get to send their close before the endpoint goes.
const CLOSE_GRACE: Duration = Duration::from_millis(100);

/// How to bind the host's endpoint again.
#[derive(Debug)]
pub(super) struct Rebind {
    /// What the endpoint was bound with (its port included).
    pub opts: net::EndpointOptions,
    /// The relays' token and certificate pin.
    pub auth: net::RelayAuth,
}

/// Watches the host's home relay until shutdown; does nothing with fewer than two relays.
pub(super) async fn keep_home_relay(host: Arc<HostShared>, rebind: Rebind) {
    let relays = rebind.opts.relays.clone();
    if relays.len() < 2 {
        return;
    }
    let mut parked: HashMap<RelayUrl, Instant> = HashMap::new();
    let mut down_since: Option<(RelayUrl, Instant)> = None;
    // Relays to bind with again, after a rebind that failed.
    let mut retry: Option<Vec<RelayUrl>> = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = host.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Some(keep) = retry.take()
            && let Err(e) = relocate(&host, &rebind, keep.clone()).await
        {
            warn!("cannot bind the endpoint again: {e}; retrying");
            retry = Some(keep);
            continue;
        }
        let endpoint = host.endpoint();
        let now = Instant::now();
        // Relays out for long enough come back into the map (dead ones are skipped by iroh's
        // next report; a live one may become home again).
        let back: Vec<RelayUrl> = parked
            .iter()
            .filter(|(_, at)| now.duration_since(**at) >= PARK)
            .map(|(url, _)| url.clone())
            .collect();
        for url in back {
            parked.remove(&url);
            info!(relay = %url, "trying relay again");
            let config = net::relay_config(&url, &rebind.auth);
            endpoint.insert_relay(url, Arc::new(config)).await;
        }
        let statuses = endpoint.home_relay_status().get();
        let Some(home) = statuses.first() else {
            down_since = None;
            continue;
        };
        if statuses.iter().any(|s| s.is_connected()) {
            down_since = None;
            continue;
        }
        let since = match &down_since {
            Some((url, at)) if url == home.url() => *at,
            _ => {
                down_since = Some((home.url().clone(), now));
                now
            }
        };
        let dead = home.url().clone();
        let keep: Vec<RelayUrl> = relays
            .iter()
            .filter(|u| **u != dead && !parked.contains_key(*u))
            .cloned()
            .collect();
        if now.duration_since(since) < FAILOVER_AFTER || keep.is_empty() {
            continue;
        }
        warn!(
            relay = %dead,
            error = ?home.last_error().map(|e| e.to_string()),
            to = ?keep,
            "home relay unreachable; moving to the host's other relays (clients reconnect)"
        );
        parked.insert(dead, now);
        down_since = None;
        if let Err(e) = relocate(&host, &rebind, keep.clone()).await {
            warn!("cannot bind the endpoint again: {e}; retrying");
            retry = Some(keep);
        }
    }
}

/// Closes the host's connections (asking their clients to come back) and its endpoint, and
/// binds a new endpoint that uses `relays`.
async fn relocate(
    host: &HostShared,
    rebind: &Rebind,
    relays: Vec<RelayUrl>,
) -> Result<(), net::NetError> {
    host.relocations.send_modify(|n| *n += 1);
    tokio::time::sleep(CLOSE_GRACE).await;
    let old = host.endpoint();
    let _ = tokio::time::timeout(Duration::from_secs(1), old.close()).await;
    let mut opts = rebind.opts.clone();
    opts.relays = relays;
    let endpoint = match net::bind_endpoint_with(opts.clone(), &rebind.auth).await {
        Ok(e) => e,
        Err(e) => {
            // The port was taken meanwhile: any port (devices learn it from the routes).
            warn!("cannot bind the same port again ({e}); using a new one");
            opts.bind = opts.bind.map(|b| SocketAddr::new(b.ip(), 0));
            net::bind_endpoint_with(opts, &rebind.auth).await?
        }
    };
    host.endpoint.send_replace(endpoint);
    Ok(())
}
