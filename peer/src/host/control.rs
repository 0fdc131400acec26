//! The control socket: a Unix socket (mode 0600) in the state directory through which the
//! `peer` CLI on the host machine talks to the running host (new pairing codes, devices).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;
use tracing::debug;

use super::HostShared;
use crate::proto::{
    ErrorCode, Frame, FrameReader, LocalReply, LocalRequest, ReadError, WireError, write_frame,
};

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
    loop {
        let frame = match tokio::time::timeout(Duration::from_secs(60), reader.read()).await {
            Ok(Ok(f)) => f,
            Ok(Err(ReadError::Closed)) | Err(_) => return,
            Ok(Err(e)) => {
                let err = WireError::new(ErrorCode::Protocol, e.to_string());
                let _ = write_frame(&mut write, &Frame::LocalReply(LocalReply::Error(err))).await;
                return;
            }
        };
        let reply = match frame {
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
    }
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
        LocalRequest::Audit { limit } => match host.devices.audit_rows(limit.min(10_000)).await {
            Ok(rows) => LocalReply::Audit(rows),
            Err(e) => LocalReply::Error(WireError::new(ErrorCode::Internal, e.to_string())),
        },
    }
}
