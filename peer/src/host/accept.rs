//! Incoming connections: the accept loop (which follows the endpoint when failover replaces
//! it) and the pairing ALPN.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;
use tracing::{debug, info};

use super::door::Source;
use super::pairing::{self, PairContext};
use super::{HostEvent, HostShared, browser, session_conn};
use crate::proto::close::quic as close;
use crate::proto::{ALPN_BRIDGE, ALPN_PAIR, ALPN_SESSION, Refusal};

/// Accepts connections on the host's endpoint until shutdown; when the endpoint is replaced
/// (relay failover), goes on with the new one.
pub(super) async fn accept_loop(host: Arc<HostShared>, tasks: TaskTracker) {
    let mut endpoints = host.endpoint.subscribe();
    loop {
        let endpoint = endpoints.borrow_and_update().clone();
        let incoming = tokio::select! {
            _ = host.shutdown.cancelled() => break,
            changed = endpoints.changed() => {
                if changed.is_err() { break }
                continue;
            }
            i = endpoint.accept() => match i {
                Some(i) => i,
                // Closed: by shutdown, or to be replaced.
                None => tokio::select! {
                    _ = host.shutdown.cancelled() => break,
                    changed = endpoints.changed() => {
                        if changed.is_err() { break }
                        continue;
                    }
                },
            },
        };
        let host = host.clone();
        // The peer's address when it comes directly; a relayed one shows only the relay.
        let ip = match incoming.remote_addr() {
            iroh::endpoint::IncomingAddr::Ip(addr) => Some(addr.ip()),
            _ => None,
        };
        tasks.spawn(async move {
            let conn = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    debug!("incoming connection failed: {e}");
                    return;
                }
            };
            match conn.alpn() {
                a if a == ALPN_SESSION => session_conn::serve(host, conn, ip).await,
                a if a == ALPN_PAIR => serve_pairing(host, conn, ip).await,
                a if a == ALPN_BRIDGE => browser::serve_bridge(host, conn).await,
                _ => conn.close(close::PROTOCOL.into(), b"unknown ALPN"),
            }
        });
    }
}

async fn serve_pairing(
    host: Arc<HostShared>,
    conn: iroh::endpoint::Connection,
    ip: Option<IpAddr>,
) {
    let src = Source {
        ip,
        key: Some(*conn.remote_id().as_bytes()),
    };
    // Spent before any work: a flood of attempts costs the host a refusal each.
    let allowed = host.door.pairing_attempt(&src);
    let stream = tokio::select! {
        _ = host.shutdown.cancelled() => return,
        s = tokio::time::timeout(Duration::from_secs(15), conn.accept_bi()) => s,
    };
    let Ok(Ok((mut send, mut recv))) = stream else {
        conn.close(close::PROTOCOL.into(), b"no pairing stream");
        return;
    };
    let ctx = PairContext {
        noise: &host.identity.noise,
        host_id: *host.endpoint().id().as_bytes(),
        host_name: &host.name,
        pairings: &host.pairings,
        devices: &host.devices,
        door: &host.door,
    };
    let outcome = if allowed {
        pairing::serve(ctx, &mut recv, &mut send).await
    } else {
        Err(pairing::refuse(&mut send, Refusal::RateLimited).await)
    };
    let event = match outcome {
        Ok(p) => {
            info!(device = %hex::encode(&p.device[..4]), name = %p.name, "paired");
            host.pairings.record(
                &p.pairing_id,
                pairing::PairedDevice {
                    name: p.name.clone(),
                    device: hex::encode(p.device),
                    role: p.role,
                    code: p.code.clone(),
                },
            );
            HostEvent::Paired {
                name: p.name,
                device: hex::encode(p.device),
                role: p.role,
                code: p.code,
            }
        }
        Err(e) => {
            if allowed {
                info!("pairing failed: {e}");
            } else {
                debug!("pairing refused: {e}");
            }
            // Where from and the reason only: it never holds the code's secret.
            host.pairings
                .audit_failure(
                    &host.devices,
                    format!("native from {}: {e}", src.describe()),
                )
                .await;
            HostEvent::PairingFailed(e.to_string())
        }
    };
    let _ = send.finish();
    let _ = host.events.try_send(event);
    // Give the client time to read the outcome before the connection goes.
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
}
