//! One PTY attachment, the same for native streams and browser channels: `Attached`, then a
//! picture of the screen or the output bytes from the client's offset, input with dedup,
//! resizes, acks, echo acks, and `Exited` after the last byte.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::streams::{AttachEnd, FrameSink, FrameSource, StreamCtx, forbidden};
use crate::proto::{
    Attach, Attached, EchoAck, ErrorCode, Exited, Frame, Gap, InputAck, MAX_CHUNK,
    MAX_REPAINT_CHUNK, OUTPUT_WINDOW, Output, ReadError, Repaint, Role, WireError,
};
use crate::pty::screen::Snapshot;
use crate::pty::{AttachGuard, PtySession, Slice};

/// How long after an input reaches the program its echo is waited for at most, before an
/// `EchoAck` says "whatever it echoed has arrived" (a shell echoes within a millisecond; a busy
/// program may not echo at all).
const ECHO_WAIT: Duration = Duration::from_millis(50);

/// Once output follows an input, how long more output is waited for before the `EchoAck`
/// (an echo that comes in two writes).
const ECHO_SETTLE: Duration = Duration::from_millis(5);

/// How long an `InputAck` waits at most for output to travel with. An input's echo usually
/// follows within a fraction of a millisecond: sent with it, the ack costs no packet of its own
/// (nor the client's QUIC acknowledgement of that packet) on the way of the echo. The client
/// takes round-trip samples from acks, so this is also the most a sample can be late by.
const INPUT_ACK_DELAY: Duration = Duration::from_millis(2);

/// How long input is still read once the client stopped reading output.
pub(crate) const INPUT_DRAIN: Duration = Duration::from_secs(2);

/// Runs one attachment until the peer detaches or goes, or the session ends.
pub(crate) async fn run_attach<S: FrameSink, R: FrameSource>(
    ctx: &StreamCtx,
    session: &Arc<PtySession>,
    attach: &Attach,
    send: &mut S,
    reader: &mut R,
) -> Result<(), AttachEnd> {
    let operator = ctx.role == Role::Operator;
    if let (Some(size), true) = (attach.size, operator) {
        session.resize(size);
    }
    let token = attach.client_token;
    let lines = attach.screen.map(|r| r.scrollback as usize);
    let (start, end) = session.bounds();
    let asked = attach.from_offset;

    // A picture where bytes cannot be sent: the client has nothing ("from now on") or asks
    // for output older than the buffer.
    let mut picture = None;
    if let Some(lines) = lines
        && (asked == u64::MAX || asked < start)
    {
        let s = session.clone();
        picture = tokio::task::spawn_blocking(move || s.attach_screen(token, lines))
            .await
            .ok()
            .flatten();
    }
    let (guard, from, picture) = match picture {
        Some((guard, snap)) => {
            let skipped = if asked == u64::MAX {
                0
            } else {
                snap.offset.saturating_sub(asked)
            };
            (guard, snap.offset, Some((snap, skipped)))
        }
        None => {
            let from = if asked == u64::MAX { end } else { asked };
            if from > end {
                return Err(AttachEnd::Error(WireError::new(
                    ErrorCode::BadRequest,
                    format!("offset {from} is past the end of the output ({end})"),
                )));
            }
            (session.attach_guard(from, token), from, None)
        }
    };
    let looking = ctx
        .host
        .push
        .attach(ctx.device, crate::proto::NoticeSession::Pty(session.id()));
    let input_acked = session.input_acked(token);
    let attached = Frame::Attached(Attached {
        info: session.info(),
        start_offset: from.max(start),
        input_acked,
    });
    send.send(attached).await.map_err(|_| AttachEnd::Gone)?;
    if let Some((snap, skipped)) = &picture {
        send_picture(send, snap, *skipped)
            .await
            .map_err(|_| AttachEnd::Gone)?;
    }
    debug!(
        session = session.id(),
        from,
        picture = picture.is_some(),
        "attached"
    );

    let (ack_tx, ack_rx) = watch::channel(input_acked);
    let (received_tx, received_rx) = watch::channel(None::<u64>);
    let input = async {
        loop {
            match reader.next().await {
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
                    raise(&ack_tx, i.seq);
                }
                Ok(Frame::Resize(size)) => {
                    if operator {
                        session.resize(size);
                    }
                }
                Ok(Frame::Received(offset)) => {
                    guard.received(offset);
                    // `None` (never said) is below every offset.
                    raise(&received_tx, Some(offset));
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
    let pump = Pump {
        session,
        guard: &guard,
        lines,
        echo: attach.echo_acks.then(|| Echo::new(input_acked)),
        resumed: from,
        input: InputAcks {
            sent: input_acked,
            applied: input_acked,
            due: None,
        },
    };
    let output = pump.run(from, send, ack_rx, received_rx);
    let end = {
        tokio::pin!(input);
        tokio::select! {
            r = &mut input => r,
            r = output => match r {
                // The client stopped reading, or the connection is gone. What it sent before
                // still applies: a client skipping the rest of a flood stops this stream right
                // after the ^C that ends it (docs/protocol.md 8.3) and finishes its own side,
                // so the input ends at once; a dead connection's input fails as soon.
                Err(AttachEnd::Gone) => tokio::time::timeout(INPUT_DRAIN, &mut input)
                    .await
                    .unwrap_or(Err(AttachEnd::Gone)),
                r => r,
            },
        }
    };
    match &end {
        Err(AttachEnd::Gone) => {
            // The client vanished without detaching: keep its place for a while, so that it
            // loses nothing if it comes back (a reconnect, a phone back online).
            guard.park(ctx.host.attach_hold);
        }
        Ok(()) => looking.left(),
        Err(AttachEnd::Error(_)) => {}
    }
    end
}

/// Sets `tx` to `value` if that is higher (waking its receivers only then).
fn raise<T: Ord>(tx: &watch::Sender<T>, value: T) {
    tx.send_if_modified(|v| {
        let grow = value > *v;
        if grow {
            *v = value;
        }
        grow
    });
}

/// Sends a picture in frames of at most [`MAX_REPAINT_CHUNK`] bytes.
async fn send_picture<S: FrameSink>(send: &mut S, snap: &Snapshot, skipped: u64) -> Result<(), ()> {
    let parts: Vec<&[u8]> = if snap.data.is_empty() {
        vec![&[]]
    } else {
        snap.data.chunks(MAX_REPAINT_CHUNK).collect()
    };
    let n = parts.len();
    for (i, part) in parts.into_iter().enumerate() {
        send.send(Frame::Repaint(Repaint {
            offset: snap.offset,
            skipped,
            size: snap.size,
            scrollback: u32::try_from(snap.scrollback).unwrap_or(u32::MAX),
            data: part.to_vec(),
            more: i + 1 < n,
        }))
        .await?;
    }
    Ok(())
}

/// What the pump knows about echo acks it owes.
struct Echo {
    /// Highest input covered by an `EchoAck` sent.
    acked: u64,
    /// An input not yet covered, and when to send its `EchoAck` at the latest.
    pending: Option<(u64, Instant)>,
    /// Output arrived since that input.
    answered: bool,
    /// The line discipline last reported.
    flags: Option<(bool, bool)>,
}

impl Echo {
    fn new(acked: u64) -> Echo {
        Echo {
            acked,
            pending: None,
            answered: false,
            flags: None,
        }
    }
}

/// The output side of an attachment.
struct Pump<'a> {
    session: &'a Arc<PtySession>,
    guard: &'a AttachGuard,
    /// Scrollback lines of a repaint, if the client wants repaints instead of gaps.
    lines: Option<usize>,
    echo: Option<Echo>,
    /// Where output last resumed after a gap or a picture: the client has nothing before it to
    /// say it received, so the window starts there at the least.
    resumed: u64,
    input: InputAcks,
}

/// The input acks an attachment owes: sent with the next frame, or when `due`.
struct InputAcks {
    /// Highest input an `InputAck` was sent for.
    sent: u64,
    /// Highest input applied.
    applied: u64,
    /// When an ack for `applied` must go at the latest (`None`: nothing owed).
    due: Option<Instant>,
}

impl Pump<'_> {
    /// Sends output from `pos` on (at most [`OUTPUT_WINDOW`] past what the client said it
    /// `received`, once it says), input acks and echo acks as they change, a repaint (or a
    /// gap) where the client fell behind the buffer, and `Exited` after the last byte.
    async fn run<S: FrameSink>(
        mut self,
        mut pos: u64,
        send: &mut S,
        mut acks: watch::Receiver<u64>,
        mut received: watch::Receiver<Option<u64>>,
    ) -> Result<(), AttachEnd> {
        let session = self.session;
        let mut changed = session.subscribe();
        let gone = |()| AttachEnd::Gone;
        self.echo_ack(send, true).await.map_err(gone)?;
        loop {
            let seq = *acks.borrow_and_update();
            if seq != self.input.applied {
                self.input.applied = seq;
                self.input
                    .due
                    .get_or_insert_with(|| Instant::now() + INPUT_ACK_DELAY);
                if let Some(e) = &mut self.echo
                    && seq > e.acked
                {
                    e.pending = Some((seq, Instant::now() + ECHO_WAIT));
                    e.answered = false;
                }
            }
            if self.input.due.is_some_and(|d| d <= Instant::now()) {
                self.input_ack(send).await.map_err(gone)?;
            }
            self.echo_ack(send, false).await.map_err(gone)?;
            changed.borrow_and_update();
            let window_end = received
                .borrow_and_update()
                .map(|r| r.max(self.resumed).saturating_add(OUTPUT_WINDOW));
            let slice = match window_end {
                // The window is full: only acks go out until the client says it received more.
                Some(end) if pos >= end => Slice::Empty,
                _ => session.read(pos),
            };
            match slice {
                Slice::Data(mut data) => {
                    if let Some(end) = window_end {
                        data.truncate(usize::try_from(end - pos).unwrap_or(usize::MAX));
                    }
                    let len = data.len() as u64;
                    self.input_ack(send).await.map_err(gone)?;
                    send.send(Frame::Output(Output { offset: pos, data }))
                        .await
                        .map_err(gone)?;
                    pos += len;
                    self.guard.advance(pos);
                    if let Some(Echo {
                        pending: Some((_, due)),
                        answered,
                        ..
                    }) = &mut self.echo
                        && !*answered
                    {
                        *answered = true;
                        *due = (*due).min(Instant::now() + ECHO_SETTLE);
                    }
                }
                Slice::Gap { start } => {
                    pos = self.behind(pos, start, send).await?;
                    self.resumed = pos;
                }
                Slice::Empty => {
                    if let Some(status) = session.exit() {
                        if session.bounds().1 == pos {
                            let exited = Frame::Exited(Exited {
                                status,
                                end_offset: pos,
                            });
                            self.input_ack(send).await.map_err(gone)?;
                            send.send(exited).await.map_err(gone)?;
                            return Ok(());
                        }
                        // Read on to the end, unless the window is full.
                        if window_end.is_none_or(|end| pos < end) {
                            continue;
                        }
                    }
                    let echo_due = self
                        .echo
                        .as_ref()
                        .and_then(|e| e.pending.map(|(_, due)| due));
                    let due = echo_due.into_iter().chain(self.input.due).min();
                    tokio::select! {
                        r = changed.changed() => if r.is_err() { return Err(AttachEnd::Gone) },
                        r = acks.changed() => if r.is_err() {
                            // The input side ended; the select in run_attach finishes us.
                            std::future::pending::<()>().await;
                        },
                        r = received.changed() => if r.is_err() {
                            std::future::pending::<()>().await;
                        },
                        _ = async {
                            match due {
                                Some(d) => tokio::time::sleep_until(d).await,
                                None => std::future::pending().await,
                            }
                        } => {}
                    }
                }
            }
        }
    }

    /// The client's position `pos` fell out of the buffer (which now starts at `start`): a
    /// repaint if it wants one, else a gap. Returns the new position.
    async fn behind<S: FrameSink>(
        &mut self,
        pos: u64,
        start: u64,
        send: &mut S,
    ) -> Result<u64, AttachEnd> {
        let session = self.session;
        warn!(
            session = session.id(),
            lost = start - pos,
            "client fell behind the buffer"
        );
        // Hold the buffer for this client from where it resumes before waiting on the send:
        // left at the old position it counts as a lost cause meanwhile, and every push makes
        // another gap.
        self.guard.resume_at(start);
        self.input_ack(send).await.map_err(|()| AttachEnd::Gone)?;
        if let Some(lines) = self.lines {
            let s = session.clone();
            let id = self.guard.reader_id();
            let snap = tokio::task::spawn_blocking(move || s.repaint(id, lines))
                .await
                .ok()
                .flatten();
            if let Some(snap) = snap {
                send_picture(send, &snap, snap.offset - pos)
                    .await
                    .map_err(|()| AttachEnd::Gone)?;
                self.guard.resume_at(snap.offset);
                return Ok(snap.offset);
            }
        }
        send.send(Frame::Gap(Gap {
            from: pos,
            to: start,
        }))
        .await
        .map_err(|()| AttachEnd::Gone)?;
        self.guard.resume_at(start);
        Ok(start)
    }

    /// Sends the `InputAck` owed, if any: before any other frame (in the same packet, as a
    /// rule), or alone when it is due.
    async fn input_ack<S: FrameSink>(&mut self, send: &mut S) -> Result<(), ()> {
        let a = &mut self.input;
        a.due = None;
        if a.applied == a.sent {
            return Ok(());
        }
        a.sent = a.applied;
        send.send(Frame::InputAck(InputAck { seq: a.sent })).await
    }

    /// Sends an `EchoAck` if one is due, or (with `first`, or when the line discipline
    /// changed) to report the line discipline.
    async fn echo_ack<S: FrameSink>(&mut self, send: &mut S, first: bool) -> Result<(), ()> {
        let Some(e) = &mut self.echo else {
            return Ok(());
        };
        let due = e.pending.filter(|(_, due)| *due <= Instant::now());
        let flags = self.session.line_discipline();
        if due.is_none() && !first && flags == e.flags {
            return Ok(());
        }
        if let Some((seq, _)) = due {
            e.acked = seq;
            e.pending = None;
        }
        e.flags = flags;
        let seq = e.acked;
        // An echo ack never overtakes the input ack of what it covers.
        self.input_ack(send).await?;
        let (echo, canonical) = flags.unwrap_or((false, false));
        send.send(Frame::EchoAck(EchoAck {
            seq,
            offset: self.session.bounds().1,
            echo,
            canonical,
        }))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pty::testing::{read_until, shell};
    use tokio::sync::mpsc;

    /// Frames as the pump sends them, each with the end of the session's output at that moment.
    struct Recorder {
        session: Arc<PtySession>,
        frames: mpsc::UnboundedSender<(Frame, u64, Instant)>,
    }

    impl FrameSink for Recorder {
        async fn send(&mut self, frame: Frame) -> Result<(), ()> {
            let end = self.session.bounds().1;
            self.frames
                .send((frame, end, Instant::now()))
                .map_err(|_| ())
        }
    }

    /// Runs a pump for `session` while `typing` applies inputs (as the attach stream's input
    /// side does: write, then raise the ack) and reads what was sent.
    async fn pumped<F: Future<Output = ()>>(
        session: &Arc<PtySession>,
        typing: impl FnOnce(watch::Sender<u64>, mpsc::UnboundedReceiver<(Frame, u64, Instant)>) -> F,
    ) {
        let guard = session.attach_guard(0, 1);
        let (tx, rx) = mpsc::unbounded_channel();
        let mut sink = Recorder {
            session: session.clone(),
            frames: tx,
        };
        let (ack_tx, ack_rx) = watch::channel(0);
        let (_received_tx, received_rx) = watch::channel(None);
        let pump = Pump {
            session,
            guard: &guard,
            lines: None,
            echo: None,
            resumed: 0,
            input: InputAcks {
                sent: 0,
                applied: 0,
                due: None,
            },
        };
        tokio::select! {
            _ = pump.run(0, &mut sink, ack_rx, received_rx) => panic!("the pump ended"),
            () = typing(ack_tx, rx) => {}
        }
    }

    /// Reads frames until the output up to `end` was sent.
    async fn sent_up_to(rx: &mut mpsc::UnboundedReceiver<(Frame, u64, Instant)>, end: u64) {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
            if let (Frame::Output(o), ..) = next.expect("output in time").expect("the pump")
                && o.offset + o.data.len() as u64 >= end
            {
                return;
            }
        }
    }

    /// Reads frames until an `InputAck` for `seq`; returns the output end when it was sent.
    async fn ack_of(
        rx: &mut mpsc::UnboundedReceiver<(Frame, u64, Instant)>,
        seq: u64,
    ) -> (u64, Instant) {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
            match next.expect("an input ack in time").expect("the pump") {
                (Frame::InputAck(a), end, at) if a.seq == seq => return (end, at),
                (Frame::InputAck(a), ..) => panic!("ack {} before {seq}", a.seq),
                _ => {}
            }
        }
    }

    /// A keystroke's ack travels with its echo, not in a frame (and packet) of its own ahead of
    /// it: when the ack is sent, the echo is already in the buffer, unless the echo took longer
    /// than the ack waits for.
    #[tokio::test]
    async fn an_input_ack_travels_with_the_echo() {
        let s = shell("stty raw -echo; printf READY; exec cat");
        let mut offset = 0;
        read_until(&s, &mut offset, b"READY").await;
        let session = s.clone();
        pumped(&s, |acks, mut frames| async move {
            sent_up_to(&mut frames, offset).await;
            let mut alone = 0;
            for seq in 1..=30u64 {
                assert!(session.write_input(1, seq, b"x".to_vec()).await);
                let applied = Instant::now();
                raise(&acks, seq);
                let (end, at) = ack_of(&mut frames, seq).await;
                if end < offset + seq {
                    alone += 1;
                    assert!(
                        at >= applied + INPUT_ACK_DELAY,
                        "the ack of input {seq} went ahead of its echo after {:?}",
                        at - applied
                    );
                }
            }
            assert!(alone < 30, "no ack went with an echo");
        })
        .await;
    }

    /// An input that gets no answer is acked all the same, once the wait is over.
    #[tokio::test]
    async fn an_input_without_answer_is_acked_after_the_wait() {
        let s = shell("stty raw -echo; printf READY; exec cat >/dev/null");
        let session = s.clone();
        pumped(&s, |acks, mut frames| async move {
            sent_up_to(&mut frames, 5).await;
            for seq in 1..=3u64 {
                assert!(session.write_input(1, seq, b"quiet".to_vec()).await);
                let applied = Instant::now();
                raise(&acks, seq);
                let (_, at) = ack_of(&mut frames, seq).await;
                assert!(at >= applied + INPUT_ACK_DELAY);
            }
        })
        .await;
    }
}
