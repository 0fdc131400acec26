//! Incoming connections: the accept loop (which follows the endpoint when failover replaces
//! it) and the pairing ALPN.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;
use tracing::{debug, info};

use super::pairing::{self, PairContext};
use super::{HostEvent, HostShared, browser, session_conn};
use crate::proto::close::quic as close;
use crate::proto::{ALPN_BRIDGE, ALPN_PAIR, ALPN_SESSION};

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
        tasks.spawn(async move {
            let conn = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    debug!("incoming connection failed: {e}");
                    return;
                }
            };
            match conn.alpn() {
                a if a == ALPN_SESSION => session_conn::serve(host, conn).await,
                a if a == ALPN_PAIR => serve_pairing(host, conn).await,
                a if a == ALPN_BRIDGE => browser::serve_bridge(host, conn).await,
                _ => conn.close(close::PROTOCOL.into(), b"unknown ALPN"),
            }
        });
    }
}

async fn serve_pairing(host: Arc<HostShared>, conn: iroh::endpoint::Connection) {
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
    };
    let event = match pairing::serve(ctx, &mut recv, &mut send).await {
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
            info!("pairing failed: {e}");
            // The reason only: it never holds the code's secret.
            host.pairings
                .audit_failure(&host.devices, format!("native: {e}"))
                .await;
            HostEvent::PairingFailed(e.to_string())
        }
    };
    let _ = send.finish();
    let _ = host.events.try_send(event);
    // Give the client time to read the outcome before the connection goes.
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
}
