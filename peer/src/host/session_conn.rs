//! The host side of a session connection (ALPN `peer/session/1`).
//!
//! The client's first stream is the control stream: `ClientHello` (device key + proof bound
//! to this connection) → `HostHello`, then requests. Every further stream the client opens is a
//! session stream that starts with `Attach`. Streams are independent: a flood on one never
//! waits for another.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use iroh::endpoint::{Connection, RecvStream, SendStream};
use tokio::task::JoinSet;
use tracing::{debug, info};

use super::HostShared;
use super::door::Source;
use super::streams::{
    FrameSink, FrameSource, StreamCtx, handle_request, protocol_error, serve_attachment,
};
use crate::net;
use crate::proto::close::quic as close;
use crate::proto::{
    ErrorCode, Frame, FrameReader, HostHello, PROTOCOL_VERSION, ReadError, ResponseFrame,
    WireError, proof_message, write_frame,
};
use crate::util::now_secs;

/// How long a new connection has to present its device proof.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Streams a connection may have open at once.
const MAX_STREAMS: usize = 64;
/// The close reason when relay failover moves the host to a new endpoint.
pub(crate) const MOVING: &[u8] = b"the host is moving to another relay; reconnect";

/// The reason sent with [`close::RATE_LIMITED`].
pub(crate) const RATE_LIMITED: &str =
    "too many failed connection attempts; the host refuses them for a moment, try again shortly";

/// Serves one session connection until it closes, the device is revoked or the host stops.
/// `ip`: the peer's address when it came directly.
pub async fn serve(host: Arc<HostShared>, conn: Connection, ip: Option<IpAddr>) {
    let remote = conn.remote_id();
    let src = Source {
        ip,
        key: Some(*remote.as_bytes()),
    };
    let refused = Refused {
        host: &host,
        conn: &conn,
        src,
    };
    // A key that failed too often is refused before any more work (a real client uses a
    // fresh key for every connection).
    if host.door.key_blocked(*remote.as_bytes()) {
        refused
            .close(None, close::RATE_LIMITED, RATE_LIMITED, false)
            .await;
        return;
    }
    let Ok(Ok((mut send, recv))) = tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi()).await
    else {
        refused
            .close(None, close::PROTOCOL, "no control stream", true)
            .await;
        return;
    };
    let mut reader = FrameReader::new(recv);
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, reader.read()).await {
        Ok(Ok(Frame::ClientHello(h))) => h,
        _ => {
            refused
                .close(None, close::PROTOCOL, "expected ClientHello", true)
                .await;
            return;
        }
    };
    if hello.protocol != PROTOCOL_VERSION {
        let why = format!(
            "this host speaks session protocol {PROTOCOL_VERSION}, the client {}; update peer",
            hello.protocol
        );
        refused.close(None, close::PROTOCOL, &why, false).await;
        return;
    }
    if !proof_ok(&conn, &remote, &hello.device, &hello.proof) {
        refused
            .close(
                None,
                close::NOT_PAIRED,
                "device proof does not verify",
                true,
            )
            .await;
        return;
    }
    let device = hello.device;
    let Some((name, role)) = host.devices.authorize(&device) else {
        let (code, why) = if host.devices.is_revoked(&device) {
            (close::REVOKED, "this device was revoked on the host")
        } else {
            (close::NOT_PAIRED, "this device is not paired with the host")
        };
        debug!(device = %hex::encode(&device[..4]), "refused session connection");
        refused.close(Some(device), code, why, true).await;
        return;
    };
    let token = host.shutdown.child_token();
    let _live = host.devices.connect(device, token.clone()).await;
    // A revocation between the check above and the registration must still close us.
    if host.devices.authorize(&device).is_none() {
        conn.close(
            close::REVOKED.into(),
            b"this device was revoked on the host",
        );
        return;
    }
    let hello = Frame::HostHello(HostHello {
        protocol: PROTOCOL_VERSION,
        host_name: host.name.clone(),
        role,
        instance: host.instance,
    });
    if write_frame(&mut send, &hello).await.is_err() {
        return;
    }
    // Where the host is now, so the device finds it again after addresses or relays change.
    let routes = Frame::HostRoutes(host.routes(true));
    if write_frame(&mut send, &routes).await.is_err() {
        return;
    }
    info!(device = %hex::encode(&device[..4]), %name, "client connected");
    host.devices
        .audit(
            Some(device),
            "connect",
            format!("{name} from {}", remote.fmt_short()),
        )
        .await;

    let mut relocations = host.relocations.subscribe();
    let mut streams = JoinSet::new();
    let ctx = StreamCtx {
        host: host.clone(),
        role,
        device,
    };
    {
        let ctx = ctx.clone();
        streams.spawn(async move {
            let (mut reader, mut send) = (reader, send);
            control_loop(ctx, &mut reader, &mut send, |_| None).await;
            let _ = send.finish();
        });
    }
    loop {
        tokio::select! {
            _ = token.cancelled() => {
                if host.shutdown.is_cancelled() {
                    conn.close(close::SHUTTING_DOWN.into(), b"the host is shutting down");
                } else {
                    conn.close(close::REVOKED.into(), b"this device was revoked on the host");
                }
                break;
            }
            _ = relocations.changed() => {
                conn.close(close::SHUTTING_DOWN.into(), MOVING);
                break;
            }
            stream = conn.accept_bi() => {
                let Ok((send, recv)) = stream else { break };
                if streams.len() >= MAX_STREAMS {
                    let mut send = send;
                    let _ = write_frame(&mut send, &Frame::Error(WireError::new(
                        ErrorCode::Limit, "too many open streams on this connection"))).await;
                    let _ = send.finish();
                    continue;
                }
                let ctx = ctx.clone();
                streams.spawn(async move { attach_stream(ctx, send, recv).await });
            }
            Some(_) = streams.join_next() => {}
        }
    }
    streams.shutdown().await;
    debug!(device = %hex::encode(&device[..4]), "client gone");
}

/// Refuses a session connection: audited (within the door's budget), and a failed
/// authentication is counted against its source.
struct Refused<'a> {
    host: &'a HostShared,
    conn: &'a Connection,
    src: Source,
}

impl Refused<'_> {
    /// Closes with `code` and `why`, or with [`close::RATE_LIMITED`] when `failed_auth` and the
    /// source is past its budget. `device`: the key whose proof verified, if one did.
    async fn close(&self, device: Option<[u8; 32]>, code: u32, why: &str, failed_auth: bool) {
        let (code, why) = if failed_auth && !self.host.door.auth_failed(&self.src) {
            (close::RATE_LIMITED, RATE_LIMITED)
        } else {
            (code, why)
        };
        let detail = format!("native from {}: {why}", self.src.describe());
        if let Some(row) = self.host.door.refusals.row(now_secs() / 60, detail) {
            self.host
                .devices
                .audit(device, "connect.refused", row)
                .await;
        }
        self.conn.close(code.into(), why.as_bytes());
    }
}

fn proof_ok(conn: &Connection, remote: &iroh::EndpointId, device: &[u8; 32], proof: &[u8]) -> bool {
    let Ok(key) = iroh::PublicKey::from_bytes(device) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(proof) else {
        return false;
    };
    let Some(material) = net::proof_material(conn, remote) else {
        return false;
    };
    key.verify(
        &proof_message(&material),
        &iroh::Signature::from_bytes(&sig),
    )
    .is_ok()
}

/// Answers the requests of a control stream until it ends; `refuse` may turn a request down
/// before it is served.
pub(crate) async fn control_loop<S: FrameSink, R: FrameSource>(
    ctx: StreamCtx,
    reader: &mut R,
    send: &mut S,
    refuse: fn(&crate::proto::Request) -> Option<WireError>,
) {
    loop {
        let frame = match reader.next().await {
            Ok(f) => f,
            Err(ReadError::Closed) => break,
            Err(e) => {
                let _ = send.send(protocol_error(&e)).await;
                break;
            }
        };
        let answer = match frame {
            Frame::Request(req) => {
                let result = match refuse(&req.request) {
                    Some(e) => Err(e),
                    None => handle_request(&ctx, req.request).await,
                };
                Frame::Response(ResponseFrame { id: req.id, result })
            }
            Frame::Ping(n) => Frame::Pong(n),
            Frame::Pong(_) => continue,
            other => {
                let err = WireError::new(
                    ErrorCode::Protocol,
                    format!(
                        "expected a Request on the control stream, not {:?}",
                        other.frame_type()
                    ),
                );
                let _ = send.send(Frame::Error(err)).await;
                break;
            }
        };
        if send.send(answer).await.is_err() {
            break;
        }
    }
}

async fn attach_stream(ctx: StreamCtx, mut send: SendStream, recv: RecvStream) {
    let mut reader = FrameReader::new(recv);
    let first = match tokio::time::timeout(HELLO_TIMEOUT, reader.read()).await {
        Ok(Ok(first)) => first,
        Ok(Err(ReadError::Closed)) => return,
        Ok(Err(e)) => {
            let _ = write_frame(&mut send, &protocol_error(&e)).await;
            let _ = send.finish();
            return;
        }
        Err(_) => {
            let err = WireError::new(ErrorCode::Protocol, "no first frame within 10 s");
            let _ = write_frame(&mut send, &Frame::Error(err)).await;
            let _ = send.finish();
            return;
        }
    };
    if serve_attachment(&ctx, first, &mut send, &mut reader).await {
        let _ = send.finish();
    }
}
