//! Several relays: the host keeps its home relay among the ones that work.
//!
//! iroh keeps one home relay per endpoint, chosen by its network report, and is reachable
//! only through relays it is connected to. When the home relay dies, iroh keeps retrying it
//! and picks another only at its next periodic report (20–26 s later), so devices dialing
//! through the other relays find nobody there. This watcher notices the home relay is gone
//! (not connected for [`FAILOVER_AFTER`]), takes it out of the endpoint's relay map, which makes
//! iroh report at once and move home to a relay that answers, and puts it back after
//! [`PARK`], so a relay that returns is used again. A relay is only taken out while another
//! remains in the map. Devices notice their connection stalled (4 s), reconnect, and their
//! first packets go to every relay of the host they know: the one the host is on answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iroh::{Endpoint, RelayConfig, RelayUrl, Watcher as _};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How long the home relay may be disconnected before the host moves home.
pub const FAILOVER_AFTER: Duration = Duration::from_secs(1);
/// How long a relay taken out of the map stays out.
pub const PARK: Duration = Duration::from_secs(20);
/// How often the relay status is looked at.
const TICK: Duration = Duration::from_millis(200);

/// Watches `endpoint`'s home relay until `shutdown`; `relays` is how many relays its map
/// holds. Does nothing with fewer than two.
pub async fn keep_home_relay(endpoint: Endpoint, relays: usize, shutdown: CancellationToken) {
    if relays < 2 {
        return;
    }
    let mut parked: HashMap<RelayUrl, (Arc<RelayConfig>, Instant)> = HashMap::new();
    let mut down_since: Option<(RelayUrl, Instant)> = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = endpoint.closed() => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        // Relays out for long enough come back into the map (dead ones are skipped by iroh's
        // next report; a live one may become home again).
        let back: Vec<RelayUrl> = parked
            .iter()
            .filter(|(_, (_, at))| now.duration_since(*at) >= PARK)
            .map(|(url, _)| url.clone())
            .collect();
        for url in back {
            if let Some((config, _)) = parked.remove(&url) {
                info!(relay = %url, "trying relay again");
                endpoint.insert_relay(url, config).await;
            }
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
        if now.duration_since(since) < FAILOVER_AFTER || relays - parked.len() < 2 {
            continue;
        }
        let url = home.url().clone();
        if let Some(config) = endpoint.remove_relay(&url).await {
            warn!(
                relay = %url,
                error = ?home.last_error().map(|e| e.to_string()),
                "home relay unreachable; moving to another of this host's relays"
            );
            parked.insert(url, (config, now));
        }
        down_since = None;
    }
}
