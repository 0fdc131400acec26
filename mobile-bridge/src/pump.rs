//! One socket: reach the host, pump messages both ways, close both sides.
//!
//! Each direction reads the next message only once the previous one has been written (to QUIC,
//! or flushed to the WebSocket), so at most one message per direction is in the bridge's hands;
//! flow control on either side pushes back on the other. Both directions and the idle timer are
//! futures polled by the socket's own task: nothing is spawned per socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use iroh::EndpointId;
use iroh::endpoint::{ReadError, ReadExactError, RecvStream, SendStream, VarInt, WriteError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_websockets::{CloseCode, Message, WebSocketStream};
use tracing::debug;

use crate::hosts::{self, Failure, truncate_utf8};
use crate::{Inner, MAX_MESSAGE_LEN, WS_READ_LIMIT, close};

/// How long closing a WebSocket (our close frame out, the browser's back) may take, and how
/// long the host may take to finish its side after it stopped reading.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Longest close reason taken from the host.
const MAX_REASON: usize = 120;

/// How a socket ended.
#[derive(Debug)]
enum End {
    /// The browser closed the WebSocket (or its TCP connection ended).
    BrowserClosed,
    /// The WebSocket failed (protocol violation or I/O error).
    BrowserFailed(String),
    /// The browser sent a message the bridge does not forward.
    BadMessage(&'static str),
    /// Nothing moved for the idle timeout.
    Idle,
    /// The host finished its side of the stream.
    HostFinished,
    /// The host asked for the socket to be closed with this code and reason (a close record).
    HostClosed(u16, String),
    /// The host stopped reading; wait for it to finish.
    HostStopped,
    /// The host side failed.
    Host(Failure),
}

/// Shared by both directions of one socket.
struct Activity {
    start: Instant,
    /// Milliseconds after `start` of the last forwarded message.
    last_ms: AtomicU64,
    /// Whether the host has sent anything on this stream.
    heard: AtomicBool,
    /// Whether a message is being written to the host (cut short if the socket ends now).
    writing: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            heard: AtomicBool::new(false),
            writing: AtomicBool::new(false),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing was forwarded for `limit`.
    async fn idle(&self, limit: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = self.start + last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

pub(crate) async fn serve<S>(inner: &Arc<Inner>, mut ws: WebSocketStream<S>, host: EndpointId)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    ws.limits_mut().set_max_payload_len(Some(WS_READ_LIMIT));
    let slot = hosts::use_slot(inner, host);
    let opened =
        tokio::time::timeout(inner.config.connect_timeout, hosts::open_stream(&slot)).await;
    let (mut send, mut recv) = match opened {
        Ok(Ok(streams)) => streams,
        Ok(Err(f)) => {
            debug!(host = %host.fmt_short(), code = f.code, "cannot reach host: {}", f.reason);
            close_ws(&mut ws, f.code, &f.reason).await;
            return;
        }
        Err(_) => {
            debug!(host = %host.fmt_short(), "host did not answer in time");
            close_ws(
                &mut ws,
                close::HOST_UNREACHABLE,
                "host did not answer in time",
            )
            .await;
            return;
        }
    };

    let activity = Activity::new();
    let (mut ws_tx, mut ws_rx) = ws.split();
    let end = {
        let up = browser_to_host(inner, &mut ws_rx, &mut send, &activity);
        let down = host_to_browser(inner, &mut recv, &mut ws_tx, &activity);
        let idle = activity.idle(inner.config.idle_timeout);
        tokio::pin!(up, down, idle);
        tokio::select! {
            end = &mut up => match end {
                // The host's last messages and its finish may still be on the way.
                End::HostStopped => match tokio::time::timeout(CLOSE_WAIT, &mut down).await {
                    Ok(end) => end,
                    Err(_) => End::Host(Failure::new(close::HOST_ERROR, "host stopped reading")),
                },
                end => end,
            },
            end = &mut down => end,
            () = &mut idle => End::Idle,
        }
    };
    debug!(host = %host.fmt_short(), "socket ended: {end:?}");

    // The host side: our half finished (the host sees the stream end) or, if a message was cut
    // short, reset; its half no longer read.
    if activity.writing.load(Ordering::Relaxed) {
        let _ = send.reset(VarInt::from_u32(0));
    } else {
        let _ = send.finish();
    }
    let _ = recv.stop(VarInt::from_u32(0));

    let Ok(mut ws) = ws_rx.reunite(ws_tx) else {
        return;
    };
    match end {
        // The WebSocket layer answered the browser's close already (or the socket is gone):
        // flush that and shut the connection down.
        End::BrowserClosed => {
            let _ = tokio::time::timeout(CLOSE_WAIT, ws.close()).await;
        }
        End::BrowserFailed(e) => {
            debug!(host = %host.fmt_short(), "WebSocket failed: {e}");
            let _ = tokio::time::timeout(CLOSE_WAIT, ws.close()).await;
        }
        End::BadMessage(why) => close_ws(&mut ws, close::BAD_MESSAGE, why).await,
        End::Idle => close_ws(&mut ws, close::IDLE_TIMEOUT, "idle timeout").await,
        End::HostFinished => close_ws(&mut ws, close::NORMAL, "").await,
        End::HostClosed(code, reason) => close_ws(&mut ws, code, &reason).await,
        End::HostStopped => close_ws(&mut ws, close::HOST_ERROR, "host stopped reading").await,
        End::Host(f) => close_ws(&mut ws, f.code, &f.reason).await,
    }
}

/// Browser → host: each binary message becomes `u16 BE length | bytes` on the stream.
async fn browser_to_host<S>(
    inner: &Inner,
    rx: &mut SplitStream<WebSocketStream<S>>,
    send: &mut SendStream,
    activity: &Activity,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let msg = match rx.next().await {
            None => return End::BrowserClosed,
            Some(Err(tokio_websockets::Error::PayloadTooLong { .. })) => {
                return End::BadMessage("message too large");
            }
            Some(Err(e)) => return End::BrowserFailed(e.to_string()),
            Some(Ok(msg)) => msg,
        };
        if msg.is_text() {
            return End::BadMessage("text messages are not accepted");
        }
        if !msg.is_binary() {
            // Ping, pong and close are handled by the WebSocket layer; after a close the next
            // read ends the stream.
            continue;
        }
        let payload = msg.into_payload();
        if payload.is_empty() {
            // A Noise message is never empty, and on the stream a zero length is a close record.
            return End::BadMessage("empty message");
        }
        let Ok(len) = u16::try_from(payload.len()) else {
            return End::BadMessage("message too large");
        };
        debug_assert!(payload.len() <= MAX_MESSAGE_LEN);
        activity.writing.store(true, Ordering::Relaxed);
        let written = async {
            send.write_all(&len.to_be_bytes()).await?;
            send.write_all(&payload).await
        };
        let written = written.await;
        activity.writing.store(false, Ordering::Relaxed);
        if let Err(e) = written {
            return match e {
                WriteError::Stopped(_) => End::HostStopped,
                WriteError::ConnectionLost(e) => End::Host(hosts::connection_failure(
                    &e,
                    activity.heard.load(Ordering::Relaxed),
                    inner.endpoint.is_closed(),
                )),
                other => End::Host(Failure::new(
                    close::HOST_ERROR,
                    format!("host stream failed: {other}"),
                )),
            };
        }
        activity.touch();
        inner
            .counters
            .bytes_to_host
            .fetch_add(u64::from(len), Ordering::Relaxed);
    }
}

/// Host → browser: each `u16 BE length | bytes` on the stream becomes one binary message; a
/// close record (length 0, `peer_proto::codec`) ends the socket with the host's code.
async fn host_to_browser<S>(
    inner: &Inner,
    recv: &mut RecvStream,
    tx: &mut SplitSink<WebSocketStream<S>, Message>,
    activity: &Activity,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let mut header = [0u8; 2];
        match recv.read_exact(&mut header).await {
            Ok(()) => {}
            Err(ReadExactError::FinishedEarly(0)) => return End::HostFinished,
            Err(e) => return read_failure(e, activity, inner.endpoint.is_closed()),
        }
        activity.heard.store(true, Ordering::Relaxed);
        let len = u16::from_be_bytes(header);
        if len == 0 {
            return read_close_record(recv).await;
        }
        let mut payload = vec![0u8; usize::from(len)];
        if let Err(e) = recv.read_exact(&mut payload).await {
            return read_failure(e, activity, inner.endpoint.is_closed());
        }
        if let Err(e) = tx.send(Message::binary(payload)).await {
            return End::BrowserFailed(e.to_string());
        }
        activity.touch();
        inner
            .counters
            .bytes_to_browser
            .fetch_add(u64::from(len), Ordering::Relaxed);
    }
}

/// The rest of a close record: `code: u16 BE | reason_len: u8 | reason`. Only the host's own
/// range of codes (4100–4199) is passed on; anything else becomes a host error.
async fn read_close_record(recv: &mut RecvStream) -> End {
    let mut head = [0u8; 3];
    if recv.read_exact(&mut head).await.is_err() {
        return End::Host(Failure::new(
            close::HOST_ERROR,
            "host sent a truncated close",
        ));
    }
    let mut reason = vec![0u8; usize::from(head[2])];
    if recv.read_exact(&mut reason).await.is_err() {
        return End::Host(Failure::new(
            close::HOST_ERROR,
            "host sent a truncated close",
        ));
    }
    let code = u16::from_be_bytes([head[0], head[1]]);
    let reason = String::from_utf8_lossy(&reason).into_owned();
    if (4100..4200).contains(&code) {
        End::HostClosed(code, reason)
    } else {
        End::Host(Failure::new(close::HOST_ERROR, reason))
    }
}

fn read_failure(e: ReadExactError, activity: &Activity, closing: bool) -> End {
    let failure = match e {
        ReadExactError::FinishedEarly(_) => {
            Failure::new(close::HOST_ERROR, "host sent a truncated message")
        }
        ReadExactError::ReadError(ReadError::Reset(code)) => {
            Failure::new(close::HOST_ERROR, format!("host reset the stream ({code})"))
        }
        ReadExactError::ReadError(ReadError::ConnectionLost(e)) => {
            hosts::connection_failure(&e, activity.heard.load(Ordering::Relaxed), closing)
        }
        ReadExactError::ReadError(other) => {
            Failure::new(close::HOST_ERROR, format!("host stream failed: {other}"))
        }
    };
    End::Host(failure)
}

/// Sends a close frame (unless the socket is closed already), waits for the browser's close
/// and shuts the connection down, all within [`CLOSE_WAIT`].
pub(crate) async fn close_ws<S>(ws: &mut WebSocketStream<S>, code: u16, reason: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseCode::try_from(code)
        .ok()
        .filter(|c| !c.is_reserved())
        .map(|c| Message::close(Some(c), truncate_utf8(reason, MAX_REASON)));
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        if let Some(frame) = frame {
            // Fails harmlessly when the WebSocket layer has closed the socket already.
            let _ = ws.send(frame).await;
        }
        let _ = ws.close().await;
    })
    .await;
}
