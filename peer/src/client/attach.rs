//! Attaching to a session: output to the terminal, keystrokes to the host, and resume across
//! broken connections with nothing lost and nothing twice.
//!
//! The client remembers the offset of the next output byte it expects and every keystroke the
//! host has not acknowledged. After a reconnect it attaches again from that offset with the
//! same client token; the host replays exactly the missing output and reports which input
//! sequence numbers it already applied, so the rest is re-sent once.
//!
//! Keystrokes typed while it reconnects are queued, and with predicted echo on also guessed and
//! drawn at once ([`Display::link_down`]); the echo that follows their re-sending confirms or
//! repairs the guesses, and an attachment that ends instead takes them back
//! ([`Display::finish`]).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::conn::{ClientError, HostConn};
use super::dialer::Dialer;
use super::display::Display;
use super::escape::{EscapeAction, EscapeFilter};
use super::predict::PredictMode;
use crate::proto::{
    Attach, ErrorCode, ExitInfo, Frame, Input, MAX_CHUNK, ScreenRequest, WinSize, write_frame,
};

/// Keystrokes kept for re-sending while disconnected; past this, new input is dropped.
const MAX_UNACKED: usize = 1024 * 1024;

/// After this long without output the client asks the host where the session's output ends,
/// and asks again as often while the silence lasts.
const PROBE_AFTER: Duration = Duration::from_secs(2);

/// The connection is given up as stalled, and a new one resumes from the client's offset, when
/// no output arrived for this long and the host either said it had output the client has not
/// seen or left a question unanswered for [`PROBE_AFTER`].
///
/// A connection can be alive and still carry no output: after an address change whose
/// validation was lost, the host's QUIC stack may keep an unvalidated path on which it may send
/// only three times what it receives, which is enough for acknowledgements but not for output
/// (docs/architecture.md, section 13). Shorter than [`crate::net::IDLE_TIMEOUT`], so a stall
/// that also silences the keep-alives is caught here, and named, before the idle timeout.
const STALL_AFTER: Duration = Duration::from_secs(4);
/// How long a question may stay open, at the least, while the host's packets keep arriving
/// (see [`answer_due`]).
const PATIENT_ANSWER: Duration = Duration::from_secs(10);

/// How long a question about the output's end may stay unanswered before it counts for a stall.
///
/// While the host has been silent for [`PROBE_AFTER`] (no datagram at all, not even its
/// keep-alives and acknowledgements), [`PROBE_AFTER`]. While the host's packets keep arriving
/// its QUIC stack is alive, and a late answer is most likely a lost request or answer waiting
/// for QUIC to resend it: a loss detection timeout is several round trips and doubles with
/// each loss in a row, so at 150 ms round trip two losses already take over a second. Then the
/// question gets [`PATIENT_ANSWER`] or 30 round trips, whichever is longer; a connection that
/// is alive but carries no output is caught sooner by the answer itself (`behind`).
fn answer_due(host_heard: bool, rtt: Option<Duration>) -> Duration {
    if host_heard {
        PATIENT_ANSWER.max(rtt.unwrap_or_default().saturating_mul(30))
    } else {
        PROBE_AFTER
    }
}

/// When a relay connection of the client ended while this connection runs through a relay
/// ([`HostConn::relay_gone`]), this much silence is enough to reconnect.
const RELAY_GONE_AFTER: Duration = Duration::from_millis(500);

/// Output at this rate or more (bytes within the last [`FLOOD_SPAN`] to [`FLOOD_SPAN`] × 2)
/// makes a ^C skip the rest of the flood ([`Flood`]).
const FLOOD_BYTES: u64 = 128 * 1024;
/// The span over which output is counted for [`FLOOD_BYTES`].
const FLOOD_SPAN: Duration = Duration::from_millis(300);
/// A ^C's skip-ahead attaches this far before the output's end: the host has often applied the
/// ^C by then, and what it appends after it is at most the PTY chunk its reader holds (64 KiB)
/// plus the echo and the prompt, which must not be skipped.
const SKIP_TAIL: u64 = 80 * 1024;
/// A read from the keyboard at most this long is typed keys; a longer one is a paste (the
/// longest key, a function key with modifiers, is 7 bytes). Only a typed ^C skips a flood:
/// a paste that holds a 0x03 goes to the program like the rest of it.
const MAX_KEYS_READ: usize = 16;

/// Whether output is flooding in: bytes counted per [`FLOOD_SPAN`], this span's and the last.
///
/// A ^C typed into a flood reaches the host at once, but everything the host sent before it
/// (as much as the stream's flow-control window, over a megabyte) and what it still holds
/// behind that would have to arrive and be written before the prompt shows: up to a fifth of a
/// second on loopback, seconds on a slow link. So the client skips ahead instead: it attaches
/// anew on the same connection [`SKIP_TAIL`] bytes before the output's end with the same client
/// token, and drops the old stream.
#[derive(Debug)]
struct Flood {
    since: Instant,
    bytes: u64,
    last: u64,
}

impl Flood {
    fn new() -> Flood {
        Flood {
            since: Instant::now(),
            bytes: 0,
            last: 0,
        }
    }

    fn roll(&mut self, now: Instant) {
        let age = now.saturating_duration_since(self.since);
        if age >= FLOOD_SPAN {
            self.last = if age < FLOOD_SPAN * 2 { self.bytes } else { 0 };
            self.bytes = 0;
            self.since = now;
        }
    }

    fn output(&mut self, now: Instant, len: usize) {
        self.roll(now);
        self.bytes += len as u64;
    }

    fn flooding(&mut self, now: Instant) -> bool {
        self.roll(now);
        self.bytes + self.last >= FLOOD_BYTES
    }
}

/// Output written between two yields to the runtime: a flood keeps the attachment's task
/// ready, and on the client's one thread the keyboard, resize and timer tasks (and the I/O
/// driver that wakes them) get their turn only when it yields. A ^C typed into a flood waited
/// for the whole backlog before.
const YIELD_EVERY: usize = 64 * 1024;

/// A question to the host about where the output ends, and when it was asked.
type Probe<'a> = (
    Instant,
    Pin<Box<dyn Future<Output = Result<Option<u64>, ClientError>> + Send + 'a>>,
);

/// The terminal side of an attachment.
pub struct AttachIo {
    /// Keystrokes (raw bytes); closed at end of input.
    pub input: mpsc::Receiver<Vec<u8>>,
    /// Window size changes.
    pub resize: mpsc::Receiver<WinSize>,
    /// Where output goes.
    pub output: Box<dyn AsyncWrite + Unpin + Send>,
    /// Status lines for the person (connection lost, resumed, output lost).
    pub notice: Box<dyn FnMut(&str) + Send>,
    /// The terminal size, if there is a terminal.
    pub size: Option<WinSize>,
    /// Whether `Enter ~ .` detaches.
    pub escape: bool,
    /// Pictures of the screen where output cannot be sent as bytes, with this many lines of
    /// scrollback (`None`: bytes only, and a notice where they were lost).
    pub screen: Option<u32>,
    /// Predictive local echo.
    pub predict: PredictMode,
}

impl std::fmt::Debug for AttachIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachIo")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// How an attachment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachEnd {
    /// The person detached; the session runs on.
    Detached,
    /// The session's process ended.
    Exited(ExitInfo),
}

/// Runs attachments over a dialer, reconnecting as needed.
#[derive(Debug)]
pub struct Attacher {
    dialer: Dialer,
    conn: Option<HostConn>,
    instance: u64,
}

fn backoff(attempt: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << attempt.min(6)).min(5000);
    let jitter = rand::random::<u64>() % (base / 4 + 1);
    Duration::from_millis(base + jitter)
}

impl Attacher {
    /// Wraps a connected dialer.
    pub fn new(dialer: Dialer, conn: HostConn) -> Attacher {
        let instance = conn.hello().instance;
        Attacher {
            dialer,
            conn: Some(conn),
            instance,
        }
    }

    /// Keeps `conn` for the next attachment, unless a question on its control stream was still
    /// open (dropping it may have cut a request in half); then closes it.
    fn keep(&mut self, conn: HostConn, asking: bool) {
        if asking {
            conn.close();
        } else {
            self.conn = Some(conn);
        }
    }

    /// Gives the dialer back (to close its endpoint).
    pub fn into_dialer(self) -> Dialer {
        if let Some(c) = &self.conn {
            c.close();
        }
        self.dialer
    }

    /// Attaches to `session` from `from_offset` (`u64::MAX` with [`AttachIo::screen`]: a
    /// picture of the screen as it is now) until detach, exit or a fatal error.
    pub async fn run(
        &mut self,
        session: u64,
        from_offset: u64,
        mut io: AttachIo,
    ) -> Result<AttachEnd, ClientError> {
        let output = std::mem::replace(&mut io.output, Box::new(tokio::io::sink()));
        // A first picture pushes what the terminal showed up into its scrollback.
        let push = (from_offset == u64::MAX && io.screen.is_some())
            .then(|| io.size.map(|s| s.rows))
            .flatten();
        let mut display = Display::new(output, io.predict, push);
        let end = self
            .attach(session, from_offset, &mut io, &mut display)
            .await;
        // However it ended (a resume that found another session or none, too): the terminal
        // is left with the host's screen, no guess on it.
        display.finish().await.ok();
        let stats = display.stats();
        if stats.shown > 0 {
            tracing::info!(
                shown = stats.shown,
                confirmed = stats.confirmed,
                wrong = stats.wrong,
                "predicted echo"
            );
        }
        display.flush().await.ok();
        end
    }

    async fn attach(
        &mut self,
        session: u64,
        from_offset: u64,
        io: &mut AttachIo,
        display: &mut Display,
    ) -> Result<AttachEnd, ClientError> {
        let token = rand::random::<u64>() | 1;
        let mut offset = from_offset;
        let mut next_seq = 1u64;
        let mut unacked: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
        let mut unacked_bytes = 0usize;
        let mut filter = io.escape.then(EscapeFilter::default);
        let mut input_open = true;
        let mut attempt = 0u32;
        // Whether the host restarted since the last attach, and when the session was created
        // (what tells it from another that took its id after a restart).
        let mut restarted = false;
        let mut created: Option<u64> = None;
        // Set by a ^C into a flood: the offset reached then (see [`Flood`]).
        let mut skip_from: Option<u64> = None;

        // Turns raw input into queued keystrokes; true means detach.
        let mut take_input = |data: Vec<u8>,
                              unacked: &mut VecDeque<(u64, Vec<u8>)>,
                              unacked_bytes: &mut usize,
                              notice: &mut Box<dyn FnMut(&str) + Send>|
         -> (bool, Vec<(u64, Vec<u8>)>) {
            let actions = match &mut filter {
                Some(f) => f.feed(&data),
                None => vec![EscapeAction::Send(data)],
            };
            let mut fresh = Vec::new();
            for a in actions {
                match a {
                    EscapeAction::Detach => return (true, fresh),
                    EscapeAction::Send(bytes) => {
                        for chunk in bytes.chunks(MAX_CHUNK) {
                            if *unacked_bytes + chunk.len() > MAX_UNACKED {
                                notice("input dropped: the host is not acknowledging keystrokes");
                                continue;
                            }
                            *unacked_bytes += chunk.len();
                            unacked.push_back((next_seq, chunk.to_vec()));
                            fresh.push((next_seq, chunk.to_vec()));
                            next_seq += 1;
                        }
                    }
                }
            }
            (false, fresh)
        };

        'connection: loop {
            if self.conn.is_none() {
                // Reconnecting: keys typed meanwhile are still guessed (and shown).
                display.link_down();
            }
            let conn = loop {
                if let Some(c) = self.conn.take() {
                    break c;
                }
                let delay = backoff(attempt);
                tokio::select! {
                    r = async { tokio::time::sleep(delay).await; self.dialer.connect().await } => match r {
                        Ok(c) => {
                            // A restarted host may have taken the session over from its
                            // keeper: the attach below tells (the same session, by its
                            // creation time, or none).
                            restarted |= c.hello().instance != self.instance;
                            attempt = 0;
                            break c;
                        }
                        Err(e) if e.is_retryable() => {
                            attempt += 1;
                            if attempt == 1 || attempt.is_multiple_of(10) {
                                display.notice(&format!("still reconnecting ({e})"), &mut io.notice).await.map_err(write_error)?;
                            }
                        }
                        Err(e) => return Err(e),
                    },
                    r = io.input.recv(), if input_open => match r {
                        None => input_open = false,
                        Some(data) => {
                            let (detach, fresh) = take_input(data, &mut unacked, &mut unacked_bytes, &mut io.notice);
                            // Queued, sent after the resume: shown now.
                            for (seq, data) in fresh {
                                display.typed(seq, &data).await.map_err(write_error)?;
                            }
                            if detach {
                                return Ok(AttachEnd::Detached);
                            }
                        }
                    },
                }
            };

            // (Only for this attach: one that fails is followed by a plain resume.)
            let skipping = match skip_from.take() {
                Some(had) => {
                    // Near the end, never below what was written already; where it was (a
                    // plain resume) if the question fails. Not a picture of the screen: the
                    // screen model can be megabytes behind a flood, and everything after the
                    // picture would follow.
                    offset = match conn.output_end(session).await {
                        Ok(Some(end)) => end.saturating_sub(SKIP_TAIL).max(had),
                        _ => had,
                    };
                    tracing::debug!(had, offset, "skip-ahead attach");
                    true
                }
                None => false,
            };
            let attach = Attach {
                session,
                from_offset: offset,
                client_token: token,
                size: io.size,
                screen: io.screen.map(|scrollback| ScreenRequest { scrollback }),
                echo_acks: io.predict != PredictMode::Never,
            };
            let gone = || {
                ClientError::Remote(crate::proto::WireError::new(
                    ErrorCode::NotFound,
                    format!("the host restarted; session {session} ended with it"),
                ))
            };
            let (mut send, mut reader, attached) = match conn.attach(attach).await {
                Ok(x) => x,
                Err(e) if e.is_retryable() => {
                    display
                        .lost(
                            &format!("connection lost ({e}); reconnecting"),
                            &mut io.notice,
                        )
                        .await
                        .map_err(write_error)?;
                    continue 'connection;
                }
                Err(_) if restarted => {
                    conn.close();
                    return Err(gone());
                }
                Err(e) => return Err(e),
            };
            match created {
                // Another session that took the id of one that ended with the old host.
                Some(at) if restarted && attached.info.created_at_ms != at => {
                    conn.close();
                    return Err(gone());
                }
                _ => created = Some(attached.info.created_at_ms),
            }
            if restarted {
                self.instance = conn.hello().instance;
                restarted = false;
            }
            if skipping {
                // A skip-ahead, not a resume: its notice was given.
            } else if offset != from_offset || attempt > 0 {
                display
                    .notice("reconnected; output resumed", &mut io.notice)
                    .await
                    .map_err(write_error)?;
            }
            if offset == u64::MAX {
                // "Only new output" (or a picture of the screen, which follows): start
                // wherever the host says now is.
                offset = attached.start_offset;
            }
            // (Output older than the buffer is skipped: a picture or a gap comes first.)
            display
                .attached(offset.max(attached.start_offset), attached.info.size)
                .await
                .map_err(write_error)?;
            while unacked
                .front()
                .is_some_and(|(s, _)| *s <= attached.input_acked)
            {
                if let Some((_, d)) = unacked.pop_front() {
                    unacked_bytes -= d.len();
                }
            }
            let mut lost = false;
            for (seq, data) in &unacked {
                let f = Frame::Input(Input {
                    seq: *seq,
                    data: data.clone(),
                });
                if write_frame(&mut send, &f).await.is_err() {
                    lost = true;
                    break;
                }
            }
            if lost {
                display
                    .lost("connection lost; reconnecting", &mut io.notice)
                    .await
                    .map_err(write_error)?;
                continue 'connection;
            }

            // The stall watchdog (see STALL_AFTER).
            let mut last_output = Instant::now();
            let mut last_probe = Instant::now();
            let mut probe: Option<Probe<'_>> = None;
            let mut behind = false;
            // When a datagram from the host was last seen (at the watchdog's ticks).
            let mut received = conn.datagrams_received();
            let mut heard = Instant::now();
            let mut watch = tokio::time::interval(Duration::from_secs(1));
            watch.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut flood = Flood::new();
            let mut unyielded = 0usize;

            loop {
                tokio::select! {
                    frame = reader.read() => match frame {
                        Ok(Frame::Output(o)) => {
                            behind = false;
                            // Exact resume means o.offset == offset; tolerate overlap, never
                            // write a byte twice.
                            if o.offset > offset {
                                return Err(ClientError::Protocol(format!(
                                    "output jumped from {offset} to {}", o.offset)));
                            }
                            let skip = (offset - o.offset) as usize;
                            if skip < o.data.len() {
                                display.output(&o.data[skip..]).await.map_err(|e| {
                                    ClientError::Protocol(format!("cannot write output: {e}"))
                                })?;
                                offset = o.offset + o.data.len() as u64;
                                flood.output(Instant::now(), o.data.len() - skip);
                                unyielded += o.data.len() - skip;
                            }
                            if unyielded >= YIELD_EVERY {
                                // While output keeps coming this task is always ready, and on
                                // the client's one thread the keyboard's task would not run.
                                unyielded = 0;
                                tokio::task::yield_now().await;
                            }
                            // After the write: time spent blocked on a terminal that does not
                            // take output is not silence on the connection.
                            last_output = Instant::now();
                        }
                        Ok(Frame::Repaint(r)) => {
                            last_output = Instant::now();
                            behind = false;
                            let done = display.repaint(r).await.map_err(|e| {
                                ClientError::Protocol(format!("cannot write output: {e}"))
                            })?;
                            if let Some(p) = done {
                                if p.skipped > 0 {
                                    (io.notice)(&format!(
                                        "{} bytes of output went by; the screen was redrawn",
                                        p.skipped
                                    ));
                                }
                                offset = p.offset;
                            }
                        }
                        Ok(Frame::EchoAck(a)) => {
                            display.echo_ack(a).await.map_err(|e| {
                                ClientError::Protocol(format!("cannot write output: {e}"))
                            })?;
                        }
                        Ok(Frame::Gap(g)) => {
                            last_output = Instant::now();
                            behind = false;
                            (io.notice)(&format!(
                                "{} bytes of output were lost: they are older than the host's buffer",
                                g.to.saturating_sub(g.from)));
                            offset = offset.max(g.to);
                        }
                        Ok(Frame::InputAck(a)) => {
                            display.input_ack(a.seq);
                            while unacked.front().is_some_and(|(s, _)| *s <= a.seq) {
                                if let Some((_, d)) = unacked.pop_front() {
                                    unacked_bytes -= d.len();
                                }
                            }
                        }
                        Ok(Frame::Exited(e)) => {
                            display.flush().await.ok();
                            let asking = probe.is_some();
                            drop(probe);
                            self.keep(conn, asking);
                            return Ok(AttachEnd::Exited(e.status));
                        }
                        Ok(Frame::Error(e)) => return Err(e.into()),
                        Ok(other) => {
                            return Err(ClientError::Protocol(format!(
                                "unexpected {:?} frame", other.frame_type())));
                        }
                        Err(e) => {
                            let e = conn.read_error(e);
                            if !e.is_retryable() {
                                return Err(e);
                            }
                            display.lost(&format!("connection lost ({e}); reconnecting"), &mut io.notice).await.map_err(write_error)?;
                            continue 'connection;
                        }
                    },
                    r = io.input.recv(), if input_open => match r {
                        None => input_open = false,
                        Some(data) => {
                            let typed = data.len() <= MAX_KEYS_READ;
                            let (detach, fresh) = take_input(data, &mut unacked, &mut unacked_bytes, &mut io.notice);
                            let interrupt = typed && fresh.iter().any(|(_, d)| d.contains(&0x03));
                            for (seq, data) in fresh {
                                let _ = display.typed(seq, &data).await;
                                if write_frame(&mut send, &Frame::Input(Input { seq, data })).await.is_err() {
                                    break;
                                }
                            }
                            if interrupt && !detach && flood.flooding(Instant::now()) {
                                // The ^C is on its way on this stream (dropping it finishes it;
                                // the new attachment re-sends it if the host did not apply it,
                                // and the token keeps it from being applied twice).
                                tracing::debug!(offset, "^C into a flood: skipping ahead");
                                // The output stops wherever it is, maybe inside an escape
                                // sequence that would swallow the notice or what follows.
                                display.cut().await.map_err(write_error)?;
                                display
                                    .notice("interrupted; skipping the rest of the flood", &mut io.notice)
                                    .await
                                    .map_err(write_error)?;
                                skip_from = Some(offset);
                                let asking = probe.is_some();
                                drop(probe);
                                self.keep(conn, asking);
                                continue 'connection;
                            }
                            if detach {
                                let _ = write_frame(&mut send, &Frame::Detach).await;
                                send.finish();
                                // Let the detach and any last keystrokes reach the host.
                                let _ = tokio::time::timeout(Duration::from_millis(500), send.stopped()).await;
                                let asking = probe.is_some();
                                drop(probe);
                                self.keep(conn, asking);
                                return Ok(AttachEnd::Detached);
                            }
                        }
                    },
                    Some(size) = io.resize.recv() => {
                        io.size = Some(size);
                        display.resized(size);
                        let _ = write_frame(&mut send, &Frame::Resize(size)).await;
                    }
                    (asked, answer) = async {
                        match probe.as_mut() {
                            Some((asked, question)) => (*asked, question.await),
                            None => std::future::pending().await,
                        }
                    }, if probe.is_some() => {
                        probe = None;
                        tracing::debug!(took = ?asked.elapsed(), rtt = ?conn.rtt(), "probe answered");
                        // No such session, or no answer because the connection is going: the
                        // attach stream will say so itself.
                        if let Ok(Some(end)) = answer {
                            behind = end > offset;
                        }
                    }
                    _ = watch.tick() => {
                        let _ = display.tick().await;
                        let silent = last_output.elapsed();
                        let now_received = conn.datagrams_received();
                        if now_received != received {
                            received = now_received;
                            heard = Instant::now();
                        }
                        let host_heard = received.is_some() && heard.elapsed() < PROBE_AFTER;
                        let due = answer_due(host_heard, conn.rtt());
                        let unanswered = probe
                            .as_ref()
                            .is_some_and(|(asked, _)| asked.elapsed() >= due);
                        if conn.relay_gone() && silent >= RELAY_GONE_AFTER {
                            // The relay under this connection went down: another relay of the
                            // host may carry a new one at once.
                            display.lost("the relay went away; reconnecting through another", &mut io.notice).await.map_err(write_error)?;
                            drop(probe);
                            conn.close();
                            continue 'connection;
                        }
                        if silent >= STALL_AFTER && (behind || unanswered) {
                            tracing::info!(
                                ?silent,
                                asked = ?probe.as_ref().map(|(asked, _)| asked.elapsed()),
                                rtt = ?conn.rtt(),
                                heard = ?heard.elapsed(),
                                behind,
                                "stalled"
                            );
                            display.lost(if behind {
                                "the connection stalled: the host has output that is not arriving; reconnecting"
                            } else {
                                "the connection stalled: the host does not answer; reconnecting"
                            }, &mut io.notice).await.map_err(write_error)?;
                            drop(probe);
                            conn.close();
                            continue 'connection;
                        }
                        if probe.is_none() && silent >= PROBE_AFTER && last_probe.elapsed() >= PROBE_AFTER {
                            last_probe = Instant::now();
                            probe = Some((last_probe, Box::pin(conn.output_end(session))));
                        }
                    }
                }
            }
        }
    }
}

/// The terminal did not take output.
fn write_error(e: std::io::Error) -> ClientError {
    ClientError::Protocol(format!("cannot write output: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_the_last_two_spans_output_and_ends_with_them() {
        let t0 = Instant::now();
        let mut f = Flood {
            since: t0,
            bytes: 0,
            last: 0,
        };
        let ms = |n| t0 + Duration::from_millis(n);
        // Typing and its echo: never a flood.
        for i in 0..100 {
            f.output(ms(i * 10), 100);
        }
        assert!(!f.flooding(ms(1000)));
        // Half the threshold in one span and half in the next is one.
        f.output(ms(1000), FLOOD_BYTES as usize / 2);
        f.output(ms(1310), FLOOD_BYTES as usize / 2);
        assert!(f.flooding(ms(1320)));
        // Two spans later the earlier half no longer counts.
        assert!(!f.flooding(ms(1700)));
        // Silence longer than two spans forgets all of it.
        f.output(ms(2000), FLOOD_BYTES as usize);
        assert!(f.flooding(ms(2100)));
        assert!(!f.flooding(ms(2700)));
    }

    #[test]
    fn a_silent_host_gets_the_short_deadline_a_heard_one_a_patient_one() {
        assert_eq!(
            answer_due(false, Some(Duration::from_millis(150))),
            PROBE_AFTER
        );
        assert_eq!(answer_due(false, None), PROBE_AFTER);
        assert_eq!(answer_due(true, None), PATIENT_ANSWER);
        assert_eq!(
            answer_due(true, Some(Duration::from_millis(150))),
            PATIENT_ANSWER
        );
        // A very slow link: 30 round trips.
        assert_eq!(
            answer_due(true, Some(Duration::from_secs(1))),
            Duration::from_secs(30)
        );
        // A silent host is still named a stall before the idle timeout ends the connection.
        const { assert!(STALL_AFTER.as_secs() + 1 < crate::net::IDLE_TIMEOUT.as_secs()) };
    }
}
