//! Notice streams (`peer watch`): `Watch` → `Watching`, then every notice as it happens, until
//! the client detaches or goes.

use tokio::sync::broadcast::error::RecvError;

use crate::host::streams::{AttachEnd, FrameSink, FrameSource, StreamCtx};
use crate::proto::{ErrorCode, Frame, ReadError, Watch, WireError};

/// Serves one notice stream.
pub(crate) async fn run<S: FrameSink, R: FrameSource>(
    ctx: &StreamCtx,
    watch: &Watch,
    send: &mut S,
    reader: &mut R,
) -> Result<(), AttachEnd> {
    let mut notices = ctx.host.push.watch();
    send.send(Frame::Watching)
        .await
        .map_err(|()| AttachEnd::Gone)?;
    let input = async {
        match reader.next().await {
            Ok(Frame::Detach) | Err(ReadError::Closed) => Ok(()),
            Err(ReadError::Io(_)) => Err(AttachEnd::Gone),
            Ok(other) => Err(AttachEnd::Error(WireError::new(
                ErrorCode::Protocol,
                format!(
                    "unexpected {:?} frame on a notice stream",
                    other.frame_type()
                ),
            ))),
            Err(e) => Err(AttachEnd::Error(WireError::new(
                ErrorCode::Protocol,
                e.to_string(),
            ))),
        }
    };
    let output = async {
        loop {
            match notices.recv().await {
                Ok(n) => {
                    if watch.kinds.is_empty() || watch.kinds.contains(&n.kind) {
                        send.send(Frame::Notice((*n).clone()))
                            .await
                            .map_err(|()| AttachEnd::Gone)?;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "a notice stream fell behind");
                }
                Err(RecvError::Closed) => return Ok(()),
            }
        }
    };
    tokio::select! {
        r = input => r,
        r = output => r,
    }
}
