//! Agent event streams: a client attaches to an agent session from a sequence number, gets
//! the stored events from there (catch-up), then live events as they happen, on one stream.

use tokio::sync::broadcast::error::RecvError;

use super::streams::{AttachEnd, FrameSink, FrameSource, StreamCtx, audit};
use crate::proto::{AgentAttach, AgentAttached, ErrorCode, Frame, ReadError, WireError};

/// Events read from the database per query during catch-up.
const PAGE: u64 = 1000;

/// Serves one agent attachment until the client detaches or goes.
pub(crate) async fn run<S: FrameSink, R: FrameSource>(
    ctx: &StreamCtx,
    attach: &AgentAttach,
    send: &mut S,
    reader: &mut R,
) -> Result<(), AttachEnd> {
    let agents = &ctx.host.agents;
    let h = agents.get(attach.session).map_err(AttachEnd::Error)?;
    let _guard = h.attached();
    let looking = ctx.host.push.attach(
        ctx.device,
        crate::proto::NoticeSession::Agent(attach.session),
    );
    let (mut live, mut upto) = h.subscribe();
    let mut pos = attach.from_seq.min(upto);
    send.send(Frame::AgentAttached(AgentAttached { info: h.info() }))
        .await
        .map_err(|()| AttachEnd::Gone)?;
    audit(
        ctx,
        "agent.attach",
        format!("{} from {}", attach.session, attach.from_seq),
    )
    .await;

    let input = async {
        match reader.next().await {
            Ok(Frame::Detach) | Err(ReadError::Closed) => Ok(()),
            Err(ReadError::Io(_)) => Err(AttachEnd::Gone),
            Ok(other) => Err(AttachEnd::Error(WireError::new(
                ErrorCode::Protocol,
                format!(
                    "unexpected {:?} frame on an agent stream",
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
            // Catch up from the database to where the live feed starts.
            while pos < upto {
                let page = agents
                    .read_events(attach.session, pos, upto.min(pos + PAGE))
                    .await
                    .map_err(AttachEnd::Error)?;
                let Some(last) = page.last().map(|e| e.seq) else {
                    // Events not stored (a database failure): skip what is missing.
                    pos = upto;
                    break;
                };
                for ev in page {
                    send.send(Frame::AgentEvent(ev))
                        .await
                        .map_err(|()| AttachEnd::Gone)?;
                }
                pos = last + 1;
            }
            // Live.
            loop {
                match live.recv().await {
                    Ok(ev) => {
                        if ev.seq >= pos {
                            pos = ev.seq + 1;
                            send.send(Frame::AgentEvent((*ev).clone()))
                                .await
                                .map_err(|()| AttachEnd::Gone)?;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Too slow for the live buffer: catch up from the database again.
                        (live, upto) = h.subscribe();
                        break;
                    }
                    Err(RecvError::Closed) => return Ok(()),
                }
            }
        }
    };
    let end = tokio::select! {
        r = input => r,
        r = output => r,
    };
    if end.is_ok() {
        looking.left();
    }
    end
}
