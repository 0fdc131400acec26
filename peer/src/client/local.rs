//! Talking to the host running on this machine through its control socket.

use tokio::net::UnixStream;

use crate::paths::Paths;
use crate::proto::{Frame, FrameReader, LocalReply, LocalRequest, write_frame};

/// Sends one request to the local host and returns its reply.
pub async fn local_request(paths: &Paths, req: LocalRequest) -> Result<LocalReply, String> {
    let sock = paths.control_socket();
    let stream = UnixStream::connect(&sock).await.map_err(|e| {
        format!(
            "no host is running for {} ({}: {e}); start one with `peer host`",
            paths.root().display(),
            sock.display()
        )
    })?;
    let (read, mut write) = stream.into_split();
    write_frame(&mut write, &Frame::LocalRequest(req))
        .await
        .map_err(|e| format!("control socket: {e}"))?;
    match FrameReader::new(read).read().await {
        Ok(Frame::LocalReply(r)) => Ok(r),
        Ok(other) => Err(format!("unexpected {:?} from the host", other.frame_type())),
        Err(e) => Err(format!("control socket: {e}")),
    }
}
