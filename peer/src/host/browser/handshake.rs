//! The browser socket's Noise handshake: a paired browser's hello, or a pairing code's; a
//! refusal is sent in message 2's place.

use std::net::IpAddr;

use peer_pairing::{DEVICE_HELLO, Responder, Transport, bridge_prologue};
use peer_proto::close::ws;
use peer_proto::{Refusal, Role, refusal};

use super::io::MsgRead;
use super::io::MsgWrite;
use crate::host::HostShared;
use crate::host::door::Source;
use crate::util::now_secs;

pub(super) struct Handshake {
    pub(super) transport: Transport,
    pub(super) device: [u8; 32],
    pub(super) role: Role,
    /// Set when this socket is pairing: its pairing id.
    pub(super) pairing: Option<[u8; 16]>,
}

/// Runs the responder side of the handshake; a refusal is sent (and the socket closed) here.
///
/// Pairing attempts spend the door's pairing tokens first; a key the host does not know (or
/// a message 1 that does not decrypt) counts as a failed authentication and is audited
/// (`connect.refused`); past the budget the refusal is `RateLimited`.
pub(super) async fn handshake<R: MsgRead, W: MsgWrite>(
    host: &HostShared,
    rx: &mut R,
    tx: &mut W,
    ip: Option<IpAddr>,
) -> Result<Handshake, String> {
    let msg1 = rx
        .recv()
        .await
        .map_err(|e| format!("{e:?}"))?
        .ok_or("closed before the handshake")?;
    let prologue = bridge_prologue(host.endpoint().id().as_bytes());
    let Ok((responder, payload)) = Responder::read_first(&host.identity.noise, &prologue, &msg1)
    else {
        let src = Source { ip, key: None };
        return Err(refuse(tx, failed_auth(host, src, None, Refusal::Handshake).await).await);
    };
    let device = responder.remote_static();
    let src = Source {
        ip,
        key: Some(device),
    };
    let (psk, role, pairing) = if payload == DEVICE_HELLO {
        match host.devices.browser(&device) {
            Some((_, role, psk)) => (psk, role, None),
            None => {
                let r = if host.devices.is_revoked(&device) {
                    Refusal::Revoked
                } else {
                    Refusal::NotPaired
                };
                return Err(refuse(tx, failed_auth(host, src, Some(device), r).await).await);
            }
        }
    } else if let Some(pid) = peer_pairing::parse_hello_payload(&payload) {
        let looked_up = if host.door.pairing_attempt(&src) {
            host.pairings.lookup(&pid).and_then(|x| {
                if host.door.pairing_on_code() {
                    Ok(x)
                } else {
                    Err(Refusal::RateLimited)
                }
            })
        } else {
            Err(Refusal::RateLimited)
        };
        match looked_up {
            Ok((secret, role)) => (zeroize::Zeroizing::new(*secret.as_bytes()), role, Some(pid)),
            Err(r) => {
                host.pairings
                    .audit_failure(
                        &host.devices,
                        format!("browser from {}: {r}", src.describe()),
                    )
                    .await;
                return Err(refuse(tx, r).await);
            }
        }
    } else {
        return Err(refuse(tx, failed_auth(host, src, None, Refusal::Handshake).await).await);
    };
    let (transport, msg2) = responder
        .respond(&psk, host.name.as_bytes())
        .map_err(|_| "handshake failed".to_string())?;
    tx.send(refusal::accept(&msg2))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Handshake {
        transport,
        device,
        role,
        pairing,
    })
}

/// A browser failed to authenticate: counted against its source and audited; the refusal to
/// send (`r`, or `RateLimited` past the budget).
async fn failed_auth(
    host: &HostShared,
    src: Source,
    device: Option<[u8; 32]>,
    r: Refusal,
) -> Refusal {
    let r = if host.door.auth_failed(&src) {
        r
    } else {
        Refusal::RateLimited
    };
    let detail = format!("browser from {}: {r}", src.describe());
    if let Some(row) = host.door.refusals.row(now_secs() / 60, detail) {
        host.devices.audit(device, "connect.refused", row).await;
    }
    r
}

/// Refuses the handshake: the code and reason in message 2's place, then the socket closes.
pub(super) async fn refuse<W: MsgWrite>(tx: &mut W, r: Refusal) -> String {
    let _ = tx.send(r.encode()).await;
    tx.close(ws::REFUSED, &r.to_string()).await;
    r.to_string()
}
