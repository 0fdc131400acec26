//! The control socket: a Unix socket (mode 0600) in the state directory through which the
//! `peer` CLI on the host machine talks to the running host (new pairing codes, devices), and
//! through which it opens, lists and attaches to sessions without pairing: whoever can open
//! the socket is the local user, the owner (docs/protocol.md section 13.1).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;
use tracing::debug;

use super::HostShared;
use super::streams::{FrameSink, FrameSource, StreamCtx, serve_attachment};
use crate::proto::{
    AuditQuery, ErrorCode, Frame, FrameReader, HostHello, LocalReply, LocalRequest,
    PROTOCOL_VERSION, ReadError, Request, Role, WireError, write_frame,
};

/// The device id the local user acts as (in the audit log, as "this machine").
pub(crate) const LOCAL_DEVICE: [u8; 32] = [0; 32];

/// How long a connection may wait before its first frame, and between requests.
const IDLE: Duration = Duration::from_secs(60);

impl FrameSink for OwnedWriteHalf {
    async fn send(&mut self, frame: Frame) -> Result<(), ()> {
        write_frame(self, &frame).await.map_err(|_| ())
    }
}

impl FrameSource for FrameReader<OwnedReadHalf> {
    async fn next(&mut self) -> Result<Frame, ReadError> {
        self.read().await
    }
}

/// Binds the socket, replacing a stale one, with mode 0600.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves the socket until the host shuts down, then removes it.
pub async fn serve(host: Arc<HostShared>, listener: UnixListener, path: PathBuf) {
    let mut clients = JoinSet::new();
    loop {
        tokio::select! {
            _ = host.shutdown.cancelled() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let host = host.clone();
                clients.spawn(async move { serve_client(host, stream).await });
            }
            Some(_) = clients.join_next(), if !clients.is_empty() => {}
        }
    }
    clients.shutdown().await;
    let _ = std::fs::remove_file(&path);
}

async fn serve_client(host: Arc<HostShared>, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut reader = FrameReader::new(read);
    let mut first = true;
    loop {
        let frame = match tokio::time::timeout(IDLE, reader.read()).await {
            Ok(Ok(f)) => f,
            Ok(Err(ReadError::Closed)) | Err(_) => return,
            Ok(Err(e)) => {
                let err = WireError::new(ErrorCode::Protocol, e.to_string());
                let _ = write_frame(&mut write, &Frame::LocalReply(LocalReply::Error(err))).await;
                return;
            }
        };
        let local = || StreamCtx {
            host: host.clone(),
            role: Role::Operator,
            device: LOCAL_DEVICE,
        };
        let reply = match frame {
            // The connection becomes a session's control stream.
            Frame::LocalRequest(LocalRequest::OpenSession) if first => {
                let hello = HostHello {
                    protocol: PROTOCOL_VERSION,
                    host_name: host.name.clone(),
                    role: Role::Operator,
                    instance: host.instance,
                };
                let reply = Frame::LocalReply(LocalReply::Session(hello));
                if write_frame(&mut write, &reply).await.is_ok() {
                    debug!("local session opened on the control socket");
                    super::session_conn::control_loop(local(), &mut reader, &mut write, local_only)
                        .await;
                }
                return;
            }
            // The connection is one session stream, as a session connection's further streams.
            f @ (Frame::Attach(_) | Frame::AgentAttach(_) | Frame::Watch(_)) if first => {
                serve_attachment(&local(), f, &mut write, &mut reader).await;
                return;
            }
            Frame::LocalRequest(req) => handle(&host, req).await,
            other => LocalReply::Error(WireError::new(
                ErrorCode::Protocol,
                format!(
                    "unexpected {:?} frame on the control socket",
                    other.frame_type()
                ),
            )),
        };
        if write_frame(&mut write, &Frame::LocalReply(reply))
            .await
            .is_err()
        {
            return;
        }
        first = false;
    }
}

/// Requests that make no sense for the local user, who is no paired device: push
/// subscriptions and unpairing.
fn local_only(req: &Request) -> Option<WireError> {
    matches!(
        req,
        Request::PushRegister(_)
            | Request::PushUnregister
            | Request::PushKinds { .. }
            | Request::PushStatus
            | Request::PushFocus { .. }
            | Request::PushBell { .. }
            | Request::Unpair
    )
    .then(|| {
        WireError::new(
            ErrorCode::BadRequest,
            "the local user is not a paired device: no notifications, nothing to unpair",
        )
    })
}

async fn handle(host: &HostShared, req: LocalRequest) -> LocalReply {
    match req {
        LocalRequest::NewPairing { role, ttl_secs } => {
            let ttl = Duration::from_secs(ttl_secs);
            match host.pairing_url(role, ttl) {
                Ok((url, expires_at)) => {
                    debug!("pairing code issued over the control socket");
                    LocalReply::Pairing { url, expires_at }
                }
                Err(e) => LocalReply::Error(WireError::new(ErrorCode::Internal, e.to_string())),
            }
        }
        LocalRequest::ListDevices => LocalReply::Devices(host.devices.list()),
        LocalRequest::RevokeDevice { id } => match host.devices.revoke(&id).await {
            Ok((device, closed)) => LocalReply::Revoked { device, closed },
            Err(e) => LocalReply::Error(WireError::new(ErrorCode::NotFound, e.to_string())),
        },
        LocalRequest::Status => {
            let mut status = host.status();
            status.gpus = crate::machine::gpu::gpus().await;
            LocalReply::Status(status)
        }
        LocalRequest::AwaitPairing {
            pairing_id,
            timeout_secs,
        } => {
            let timeout = Duration::from_secs(u64::from(timeout_secs));
            match host.pairings.wait(&pairing_id, timeout).await {
                Ok(d) => LocalReply::Paired {
                    name: d.name,
                    device: d.device,
                    role: d.role,
                    code: d.code,
                },
                Err(e) => LocalReply::Error(WireError::new(ErrorCode::NotFound, e.to_string())),
            }
        }
        LocalRequest::Audit { limit } => {
            let q = AuditQuery {
                limit,
                ..AuditQuery::default()
            };
            match host.devices.audit_query(q).await {
                Ok(rows) => LocalReply::Audit(rows),
                Err(e) => LocalReply::Error(WireError::new(ErrorCode::Internal, e.to_string())),
            }
        }
        LocalRequest::AuditQuery(q) => match host.devices.audit_query(q).await {
            Ok(rows) => LocalReply::Audit(rows),
            Err(e) => LocalReply::Error(WireError::new(ErrorCode::BadRequest, e.to_string())),
        },
        LocalRequest::OpenSession => LocalReply::Error(WireError::new(
            ErrorCode::Protocol,
            "OpenSession must be the first frame on a control socket connection",
        )),
    }
}
