//! The browser socket's Noise handshake: a paired browser's hello, or a pairing code's; a
//! refusal is sent in message 2's place.

use peer_pairing::{DEVICE_HELLO, Responder, Transport, bridge_prologue};
use peer_proto::close::ws;
use peer_proto::{Refusal, Role, refusal};

use super::io::MsgRead;
use super::io::MsgWrite;
use crate::host::HostShared;

pub(super) struct Handshake {
    pub(super) transport: Transport,
    pub(super) device: [u8; 32],
    pub(super) role: Role,
    /// Set when this socket is pairing: its pairing id.
    pub(super) pairing: Option<[u8; 16]>,
}

/// Runs the responder side of the handshake; a refusal is sent (and the socket closed) here.
pub(super) async fn handshake<R: MsgRead, W: MsgWrite>(
    host: &HostShared,
    rx: &mut R,
    tx: &mut W,
) -> Result<Handshake, String> {
    let msg1 = rx
        .recv()
        .await
        .map_err(|e| format!("{e:?}"))?
        .ok_or("closed before the handshake")?;
    let prologue = bridge_prologue(host.endpoint().id().as_bytes());
    let Ok((responder, payload)) = Responder::read_first(&host.identity.noise, &prologue, &msg1)
    else {
        return Err(refuse(tx, Refusal::Handshake).await);
    };
    let device = responder.remote_static();
    let (psk, role, pairing) = if payload == DEVICE_HELLO {
        match host.devices.browser(&device) {
            Some((_, role, psk)) => (psk, role, None),
            None => {
                let r = if host.devices.is_revoked(&device) {
                    Refusal::Revoked
                } else {
                    Refusal::NotPaired
                };
                return Err(refuse(tx, r).await);
            }
        }
    } else if let Some(pid) = peer_pairing::parse_hello_payload(&payload) {
        match host.pairings.lookup(&pid) {
            Ok((secret, role)) => (zeroize::Zeroizing::new(*secret.as_bytes()), role, Some(pid)),
            Err(r) => {
                host.pairings
                    .audit_failure(&host.devices, format!("browser: {r}"))
                    .await;
                return Err(refuse(tx, r).await);
            }
        }
    } else {
        return Err(refuse(tx, Refusal::Handshake).await);
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

/// Refuses the handshake: the code and reason in message 2's place, then the socket closes.
pub(super) async fn refuse<W: MsgWrite>(tx: &mut W, r: Refusal) -> String {
    let _ = tx.send(r.encode()).await;
    tx.close(ws::REFUSED, &r.to_string()).await;
    r.to_string()
}
