//! The host side of a session connection (ALPN `peer/session/1`).
//!
//! The client's first stream is the control stream: `ClientHello` (device key + proof bound
//! to this connection) → `HostHello`, then requests. Every further stream the client opens is a
//! session stream that starts with `Attach`. Streams are independent: a flood on one never
//! waits for another.

use std::sync::Arc;
use std::time::Duration;

use iroh::endpoint::{Connection, RecvStream, SendStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::HostShared;
use crate::net::{self, close};
use crate::proto::{
    Attach, Attached, ErrorCode, Exited, Frame, FrameReader, Gap, HostHello, InputAck, MAX_CHUNK,
    Output, PROTOCOL_VERSION, ReadError, Reply, Request, ResponseFrame, Role, WireError,
    write_frame,
};
use crate::pty::{AttachGuard, PtySession, SessionError, Slice};

/// How long a new connection has to present its device proof.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Streams a connection may have open at once.
const MAX_STREAMS: usize = 64;

/// Serves one session connection until it closes, the device is revoked or the host stops.
pub async fn serve(host: Arc<HostShared>, conn: Connection) {
    let remote = conn.remote_id();
    let Ok(Ok((mut send, recv))) = tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi()).await
    else {
        conn.close(close::PROTOCOL.into(), b"no control stream");
        return;
    };
    let mut reader = FrameReader::new(recv);
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, reader.read()).await {
        Ok(Ok(Frame::ClientHello(h))) => h,
        _ => {
            conn.close(close::PROTOCOL.into(), b"expected ClientHello");
            return;
        }
    };
    if hello.protocol != PROTOCOL_VERSION {
        let why = format!(
            "this host speaks session protocol {PROTOCOL_VERSION}, the client {}; update peer",
            hello.protocol
        );
        conn.close(close::PROTOCOL.into(), why.as_bytes());
        return;
    }
    if !proof_ok(&conn, &remote, &hello.device, &hello.proof) {
        conn.close(close::NOT_PAIRED.into(), b"device proof does not verify");
        return;
    }
    let device = hello.device;
    let Some((name, role)) = host.devices.authorize(&device) else {
        let (code, why): (u32, &[u8]) = if host.devices.is_revoked(&device) {
            (close::REVOKED, b"this device was revoked on the host")
        } else {
            (
                close::NOT_PAIRED,
                b"this device is not paired with the host",
            )
        };
        debug!(device = %hex::encode(&device[..4]), "refused session connection");
        conn.close(code.into(), why);
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
    info!(device = %hex::encode(&device[..4]), %name, "client connected");
    host.devices
        .audit(
            Some(device),
            "connect",
            format!("{name} from {}", remote.fmt_short()),
        )
        .await;

    let mut streams = JoinSet::new();
    let ctx = StreamCtx {
        host: host.clone(),
        role,
        device,
    };
    {
        let ctx = ctx.clone();
        streams.spawn(async move { control_loop(ctx, reader, send).await });
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
        &net::proof_message(&material),
        &iroh::Signature::from_bytes(&sig),
    )
    .is_ok()
}

#[derive(Clone)]
struct StreamCtx {
    host: Arc<HostShared>,
    role: Role,
    device: [u8; 32],
}

async fn control_loop(ctx: StreamCtx, mut reader: FrameReader<RecvStream>, mut send: SendStream) {
    loop {
        let frame = match reader.read().await {
            Ok(f) => f,
            Err(ReadError::Closed) => break,
            Err(e) => {
                let _ = write_frame(&mut send, &protocol_error(&e)).await;
                break;
            }
        };
        let Frame::Request(req) = frame else {
            let err = WireError::new(
                ErrorCode::Protocol,
                "expected a Request on the control stream",
            );
            let _ = write_frame(&mut send, &Frame::Error(err)).await;
            break;
        };
        let result = handle_request(&ctx, req.request).await;
        let resp = Frame::Response(ResponseFrame { id: req.id, result });
        if write_frame(&mut send, &resp).await.is_err() {
            break;
        }
    }
    let _ = send.finish();
}

fn protocol_error(e: &ReadError) -> Frame {
    Frame::Error(WireError::new(ErrorCode::Protocol, e.to_string()))
}

fn forbidden() -> WireError {
    WireError::new(ErrorCode::Forbidden, "this device is a viewer on this host")
}

fn session_error(e: SessionError) -> WireError {
    match e {
        SessionError::NotFound(_) => WireError::new(ErrorCode::NotFound, e.to_string()),
        SessionError::TooMany(_) => WireError::new(ErrorCode::Limit, e.to_string()),
        SessionError::Spawn(_) => WireError::new(ErrorCode::SpawnFailed, e.to_string()),
    }
}

async fn handle_request(ctx: &StreamCtx, req: Request) -> Result<Reply, WireError> {
    let sessions = &ctx.host.sessions;
    match req {
        Request::ListSessions => Ok(Reply::Sessions(sessions.list())),
        Request::CreateSession(c) => {
            if ctx.role != Role::Operator {
                return Err(forbidden());
            }
            validate_create(&c)?;
            let detail = format!("{:?}", c.command);
            let s = sessions.create(c).await.map_err(session_error)?;
            ctx.host
                .devices
                .audit(
                    Some(ctx.device),
                    "session.create",
                    format!("{} {detail}", s.id()),
                )
                .await;
            Ok(Reply::Created(s.info()))
        }
        Request::KillSession { session } => {
            if ctx.role != Role::Operator {
                return Err(forbidden());
            }
            sessions.kill(session).await.map_err(session_error)?;
            ctx.host
                .devices
                .audit(Some(ctx.device), "session.kill", session.to_string())
                .await;
            Ok(Reply::Killed)
        }
    }
}

fn validate_create(c: &crate::proto::CreateSession) -> Result<(), WireError> {
    let bad = |m: &str| Err(WireError::new(ErrorCode::BadRequest, m));
    if c.command.len() > 256 || c.command.iter().any(|a| a.len() > 4096 || a.contains('\0')) {
        return bad("command too long or contains NUL");
    }
    if c.command.first().is_some_and(|p| p.is_empty()) {
        return bad("empty program name");
    }
    if c.name
        .as_ref()
        .is_some_and(|n| n.len() > 64 || n.chars().any(char::is_control))
    {
        return bad("session name must be at most 64 printable characters");
    }
    if c.env.len() > 256
        || c.env.iter().any(|(k, v)| {
            k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') || v.len() > 4096
        })
    {
        return bad("bad environment variable");
    }
    if c.cwd
        .as_ref()
        .is_some_and(|d| d.contains('\0') || d.len() > 4096)
    {
        return bad("bad working directory");
    }
    Ok(())
}

async fn attach_stream(ctx: StreamCtx, mut send: SendStream, recv: RecvStream) {
    let mut reader = FrameReader::new(recv);
    let attach = match tokio::time::timeout(HELLO_TIMEOUT, reader.read()).await {
        Ok(Ok(Frame::Attach(a))) => a,
        Ok(Err(ReadError::Closed)) => return,
        Ok(Err(e)) => {
            let _ = write_frame(&mut send, &protocol_error(&e)).await;
            let _ = send.finish();
            return;
        }
        _ => {
            let err = WireError::new(ErrorCode::Protocol, "expected Attach as the first frame");
            let _ = write_frame(&mut send, &Frame::Error(err)).await;
            let _ = send.finish();
            return;
        }
    };
    let session = match ctx.host.sessions.get(attach.session) {
        Ok(s) => s,
        Err(e) => {
            let _ = write_frame(&mut send, &Frame::Error(session_error(e))).await;
            let _ = send.finish();
            return;
        }
    };
    let end = match run_attach(&ctx, &session, &attach, &mut send, &mut reader).await {
        Ok(()) => None,
        Err(AttachEnd::Error(e)) => Some(e),
        Err(AttachEnd::Gone) => return,
    };
    if let Some(e) = end {
        let _ = write_frame(&mut send, &Frame::Error(e)).await;
    }
    let _ = send.finish();
}

enum AttachEnd {
    /// Tell the client, then end the stream.
    Error(WireError),
    /// The client or the connection went away.
    Gone,
}

async fn run_attach(
    ctx: &StreamCtx,
    session: &Arc<PtySession>,
    attach: &Attach,
    send: &mut SendStream,
    reader: &mut FrameReader<RecvStream>,
) -> Result<(), AttachEnd> {
    let operator = ctx.role == Role::Operator;
    if let (Some(size), true) = (attach.size, operator) {
        session.resize(size);
    }
    let (start, end) = session.bounds();
    let from = if attach.from_offset == u64::MAX {
        end
    } else {
        attach.from_offset
    };
    if from > end {
        return Err(AttachEnd::Error(WireError::new(
            ErrorCode::BadRequest,
            format!("offset {from} is past the end of the output ({end})"),
        )));
    }
    let guard = session.attach_guard(from);
    let token = attach.client_token;
    let attached = Frame::Attached(Attached {
        info: session.info(),
        start_offset: from.max(start),
        input_acked: session.input_acked(token),
    });
    write_frame(send, &attached)
        .await
        .map_err(|_| AttachEnd::Gone)?;
    debug!(session = session.id(), from, "attached");

    let (ack_tx, ack_rx) = watch::channel(0u64);
    let input = async {
        loop {
            match reader.read().await {
                Ok(Frame::Input(i)) => {
                    if !operator {
                        return Err(AttachEnd::Error(forbidden()));
                    }
                    if i.data.len() > MAX_CHUNK {
                        return Err(AttachEnd::Error(WireError::new(
                            ErrorCode::Protocol,
                            "input chunk too large",
                        )));
                    }
                    session.write_input(token, i.seq, i.data).await;
                    // Acks only grow (a re-sent, already applied input acks nothing new).
                    ack_tx.send_if_modified(|acked| {
                        let grow = i.seq > *acked;
                        if grow {
                            *acked = i.seq;
                        }
                        grow
                    });
                }
                Ok(Frame::Resize(size)) => {
                    if operator {
                        session.resize(size);
                    }
                }
                Ok(Frame::Detach) => {
                    session.forget_token(token);
                    return Ok(());
                }
                Err(ReadError::Closed) => return Ok(()),
                Ok(other) => {
                    return Err(AttachEnd::Error(WireError::new(
                        ErrorCode::Protocol,
                        format!(
                            "unexpected {:?} frame on a session stream",
                            other.frame_type()
                        ),
                    )));
                }
                Err(ReadError::Io(_)) => return Err(AttachEnd::Gone),
                Err(e) => {
                    return Err(AttachEnd::Error(WireError::new(
                        ErrorCode::Protocol,
                        e.to_string(),
                    )));
                }
            }
        }
    };
    let output = pump_output(session, &guard, from, send, ack_rx);
    tokio::select! {
        r = input => r,
        r = output => r,
    }
}

/// Sends output from `pos` on, input acks as they change, and `Exited` after the last byte.
async fn pump_output(
    session: &PtySession,
    guard: &AttachGuard,
    mut pos: u64,
    send: &mut SendStream,
    mut acks: watch::Receiver<u64>,
) -> Result<(), AttachEnd> {
    let mut changed = session.subscribe();
    let gone = |_| AttachEnd::Gone;
    let mut acked = 0u64;
    loop {
        let seq = *acks.borrow_and_update();
        if seq != acked {
            write_frame(send, &Frame::InputAck(InputAck { seq }))
                .await
                .map_err(gone)?;
            acked = seq;
        }
        changed.borrow_and_update();
        match session.read(pos) {
            Slice::Data(data) => {
                let len = data.len() as u64;
                write_frame(send, &Frame::Output(Output { offset: pos, data }))
                    .await
                    .map_err(gone)?;
                pos += len;
                guard.advance(pos);
            }
            Slice::Gap { start } => {
                warn!(
                    session = session.id(),
                    lost = start - pos,
                    "client fell behind the buffer"
                );
                write_frame(
                    send,
                    &Frame::Gap(Gap {
                        from: pos,
                        to: start,
                    }),
                )
                .await
                .map_err(gone)?;
                pos = start;
                guard.advance(pos);
            }
            Slice::Empty => {
                if let Some(status) = session.exit() {
                    if session.bounds().1 == pos {
                        let exited = Frame::Exited(Exited {
                            status,
                            end_offset: pos,
                        });
                        write_frame(send, &exited).await.map_err(gone)?;
                        return Ok(());
                    }
                    continue;
                }
                tokio::select! {
                    r = changed.changed() => if r.is_err() { return Err(AttachEnd::Gone) },
                    r = acks.changed() => if r.is_err() {
                        // The input side ended; the select in run_attach finishes us.
                        std::future::pending::<()>().await;
                    },
                }
            }
        }
    }
}
