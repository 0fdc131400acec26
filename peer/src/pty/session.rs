//! One PTY session: a process on a pseudo-terminal, its output buffer, and the threads that
//! move bytes between them.
//!
//! Three plain threads do the blocking work so the async runtime never blocks: a reader
//! (PTY → buffer), a writer (input channel → PTY) and a waiter (collects the exit status once the
//! reader has drained the PTY, so `Exited` always follows the last byte of output).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use parking_lot::Mutex;
use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{debug, warn};

use super::buffer::{OutputBuffer, Slice};
use super::events::PtyEvent;
use crate::proto::{CreateSession, ExitInfo, MAX_CHUNK, SessionInfo, SessionState, WinSize};

/// How long the PTY reader waits, per chunk, for an attached client that makes no progress at
/// all before dropping output it has not read yet (that client is then told of the gap).
/// Clients that keep reading, however slowly, thus throttle the process, as with ssh; one that
/// is connected but stuck stalls a session for at most this per chunk. (A client whose
/// connection died is parked instead: [`ATTACH_HOLD`].) Long enough for a loaded machine's
/// scheduling hiccups and a phone's slow link, short against a person waiting.
pub const LAG_GRACE: Duration = Duration::from_secs(10);

/// How long a session created with [`CreateSession::hold_output`] keeps its output for the
/// first attachment at most; one that never comes stops holding anything back after this.
pub const CREATOR_WAIT: Duration = Duration::from_secs(10);

/// How long an attachment whose client vanished without detaching (a dead connection, a
/// browser tab gone offline) keeps its place: until then its position holds the process back
/// as if the client were there, so a client that comes back within this loses nothing; after
/// it the process runs freely and a client that comes back later is told of the gap. A client
/// that re-attaches with the same client token takes the place over.
pub const ATTACH_HOLD: Duration = Duration::from_secs(35);

/// What may be in flight to a client at any moment (the host's send queue, the transport's
/// buffers on both ends): an attachment holds the buffer this far behind the last offset it
/// handed to its transport (never before where it started; at most half the buffer), so that
/// what a client that vanishes never received is still there when it comes back.
pub const IN_FLIGHT: u64 = 4 << 20;

/// How long a killed session gets between SIGHUP and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// Why a session could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The working directory does not exist or is not a directory.
    #[error("working directory {0:?} does not exist")]
    NoSuchDir(String),
    /// The program could not be found or executed.
    #[error("cannot start {program:?}: {reason}")]
    Exec {
        /// The program.
        program: String,
        /// What the OS said.
        reason: String,
    },
    /// A PTY could not be opened.
    #[error("cannot open a pseudo-terminal: {0}")]
    Pty(String),
}

/// A running or ended PTY session.
pub struct PtySession {
    id: u64,
    name: Option<String>,
    command: Vec<String>,
    cwd: String,
    created_at_ms: u64,
    pid: Option<u32>,
    shared: Arc<Shared>,
    input: mpsc::Sender<Vec<u8>>,
    master: Mutex<Box<dyn MasterPty + Send>>,
}

impl std::fmt::Debug for PtySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtySession")
            .field("id", &self.id)
            .field("command", &self.command)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Bumped whenever output arrives or the process ends.
    changed: watch::Sender<u64>,
    /// Signalled when an attached reader moves on or goes away.
    room: parking_lot::Condvar,
    /// Counts the reader thread's pushes, so the waiter can tell a busy reader from an idle one.
    activity: AtomicU64,
    /// Whether the reader thread is waiting for a slow attached client.
    held: AtomicBool,
}

#[derive(Debug)]
struct State {
    buffer: OutputBuffer,
    exit: Option<ExitInfo>,
    size: WinSize,
    attached: u32,
    /// Highest input sequence number applied, per client token.
    input_seqs: HashMap<u64, u64>,
    /// Next offset each attached stream will send, by attach id.
    readers: HashMap<u64, Reader>,
    next_reader: u64,
    /// Until when the output from offset 0 is held for the creator's first attachment
    /// ([`CreateSession::hold_output`]); cleared by the first attachment.
    creator_hold: Option<std::time::Instant>,
}

/// An attachment's place in the output.
#[derive(Debug, Clone, Copy)]
struct Reader {
    /// The next offset it will send.
    offset: u64,
    /// The client's token.
    token: u64,
    /// Set once its client vanished: until when the place is kept.
    parked: Option<std::time::Instant>,
    /// The same client attached again on another stream: this one holds nothing back any more
    /// and leaves no place behind.
    superseded: bool,
    /// When it was registered.
    since: std::time::Instant,
    /// Where the attachment started.
    from: u64,
}

impl Reader {
    /// The first offset this reader's client may not have received.
    fn keep_from(&self, in_flight: u64) -> u64 {
        self.offset.saturating_sub(in_flight).max(self.from)
    }

    /// Until when this reader may hold back a chunk read at `chunk_at`: a live one for
    /// [`LAG_GRACE`] per chunk (counted from its attaching, if that came later), a parked one
    /// until its place expires, a superseded one not at all.
    fn holds_until(&self, chunk_at: std::time::Instant) -> Option<std::time::Instant> {
        match (self.superseded, self.parked) {
            (true, _) => None,
            (false, Some(until)) => Some(until),
            (false, None) => Some(chunk_at.max(self.since) + LAG_GRACE),
        }
    }
}

impl PtySession {
    /// Starts `req` on a new PTY; its exit is reported on `events`.
    pub fn spawn(
        id: u64,
        req: &CreateSession,
        buffer_bytes: usize,
        events: broadcast::Sender<PtyEvent>,
    ) -> Result<Arc<PtySession>, SpawnError> {
        let cwd = match &req.cwd {
            Some(dir) => dir.clone(),
            None => std::env::var("HOME").unwrap_or_else(|_| "/".into()),
        };
        if !std::path::Path::new(&cwd).is_dir() {
            return Err(SpawnError::NoSuchDir(cwd));
        }
        let size = clamp(req.size);
        let pair = native_pty_system()
            .openpty(pty_size(size))
            .map_err(|e| SpawnError::Pty(e.to_string()))?;
        let mut cmd = match req.command.split_first() {
            None => CommandBuilder::new_default_prog(),
            Some((prog, args)) => {
                let mut c = CommandBuilder::new(prog);
                c.args(args);
                c
            }
        };
        cmd.cwd(&cwd);
        if std::env::var_os("TERM").is_none() {
            cmd.env("TERM", "xterm-256color");
        }
        cmd.env("PEER_SESSION", id.to_string());
        for (k, v) in &req.env {
            cmd.env(k, v);
        }
        let program = req
            .command
            .first()
            .cloned()
            .unwrap_or_else(|| "login shell".into());
        let mut child = pair
            .slave
            .spawn_command(cmd)
            .map_err(|e| SpawnError::Exec {
                program: program.clone(),
                reason: e.to_string(),
            })?;
        // Only the child holds the slave from here on, so the reader sees EOF when it exits.
        drop(pair.slave);
        let pid = child.process_id();
        let reader = pair
            .master
            .try_clone_reader()
            .map_err(|e| SpawnError::Pty(e.to_string()))?;
        let writer = pair
            .master
            .take_writer()
            .map_err(|e| SpawnError::Pty(e.to_string()))?;

        let (changed, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buffer: OutputBuffer::new(buffer_bytes),
                exit: None,
                size,
                attached: 0,
                input_seqs: HashMap::new(),
                readers: HashMap::new(),
                next_reader: 0,
                creator_hold: req
                    .hold_output
                    .then(|| std::time::Instant::now() + CREATOR_WAIT),
            }),
            changed,
            room: parking_lot::Condvar::new(),
            activity: AtomicU64::new(0),
            held: AtomicBool::new(false),
        });
        let (input, input_rx) = mpsc::channel::<Vec<u8>>(64);

        let (eof_tx, eof_rx) = std::sync::mpsc::channel::<()>();
        let rshared = shared.clone();
        spawn_thread(format!("pty-{id}-read"), move || {
            read_loop(reader, &rshared);
            let _ = eof_tx.send(());
        })?;
        spawn_thread(format!("pty-{id}-write"), move || {
            write_loop(writer, input_rx)
        })?;
        let wshared = shared.clone();
        // Said when it ends (the session may end before the manager lists it).
        let what = req.name.clone().unwrap_or_else(|| {
            if req.command.is_empty() {
                program.clone()
            } else {
                req.command.join(" ")
            }
        });
        spawn_thread(format!("pty-{id}-wait"), move || {
            let status = child.wait();
            // Wait for the reader to drain the PTY so `Exited` follows the last byte. Descendants
            // may hold the PTY open after the child exits: stop waiting once the reader has
            // been idle for 500 ms and is not merely held back by a slow client.
            let mut seen = wshared.activity.load(Ordering::Relaxed);
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                eof_rx.recv_timeout(Duration::from_millis(500))
            {
                let now = wshared.activity.load(Ordering::Relaxed);
                if now == seen && !wshared.held.load(Ordering::Relaxed) {
                    break;
                }
                seen = now;
            }
            let exit = match status {
                Ok(s) => ExitInfo {
                    code: s.exit_code(),
                    signal: s.signal().map(str::to_owned),
                },
                Err(e) => {
                    warn!(session = id, "wait failed: {e}");
                    ExitInfo {
                        code: 255,
                        signal: None,
                    }
                }
            };
            debug!(session = id, code = exit.code, "session ended");
            wshared.state.lock().exit = Some(exit.clone());
            wshared.changed.send_modify(|v| *v += 1);
            let _ = events.send(PtyEvent::Exited {
                session: id,
                what,
                status: exit,
            });
        })?;

        Ok(Arc::new(PtySession {
            id,
            name: req.name.clone(),
            command: if req.command.is_empty() {
                vec![program]
            } else {
                req.command.clone()
            },
            cwd,
            created_at_ms: crate::util::now_ms(),
            pid,
            shared,
            input,
            master: Mutex::new(pair.master),
        }))
    }

    /// The session id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The display name.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// What a session list shows.
    pub fn info(&self) -> SessionInfo {
        let st = self.shared.state.lock();
        SessionInfo {
            id: self.id,
            name: self.name.clone(),
            command: self.command.clone(),
            cwd: self.cwd.clone(),
            created_at_ms: self.created_at_ms,
            state: match &st.exit {
                None => SessionState::Running,
                Some(e) => SessionState::Exited(e.clone()),
            },
            size: st.size,
            attached: st.attached,
            output_end: st.buffer.end(),
        }
    }

    /// The exit status, once the process has ended and its output is drained.
    pub fn exit(&self) -> Option<ExitInfo> {
        self.shared.state.lock().exit.clone()
    }

    /// Reads output at `offset`.
    pub fn read(&self, offset: u64) -> Slice {
        self.shared.state.lock().buffer.read(offset, MAX_CHUNK)
    }

    /// The oldest and one-past-newest offsets held.
    pub fn bounds(&self) -> (u64, u64) {
        let st = self.shared.state.lock();
        (st.buffer.start(), st.buffer.end())
    }

    /// The last `n` bytes of output.
    pub fn tail(&self, n: usize) -> Vec<u8> {
        self.shared.state.lock().buffer.tail(n)
    }

    /// A receiver that wakes on new output and on exit.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    /// Counts an attached stream that will send output from `from`; the guard reports its
    /// progress (see [`AttachGuard::advance`]) and uncounts it on drop. The same client's
    /// earlier places are taken over: a parked one is gone, a stream still open (its client
    /// moved to a new one before the old one ended) holds nothing back and parks nothing.
    pub fn attach_guard(self: &Arc<Self>, from: u64, token: u64) -> AttachGuard {
        let mut st = self.shared.state.lock();
        st.attached += 1;
        st.creator_hold = None;
        let now = std::time::Instant::now();
        st.readers.retain(|_, r| match r.parked {
            Some(until) => r.token != token && until > now,
            None => true,
        });
        for r in st.readers.values_mut() {
            if r.token == token {
                r.superseded = true;
            }
        }
        let id = st.next_reader;
        st.next_reader += 1;
        st.readers.insert(
            id,
            Reader {
                offset: from,
                token,
                parked: None,
                superseded: false,
                since: now,
                from,
            },
        );
        drop(st);
        // A reader waiting for the creator may go on if this attachment starts later.
        self.shared.room.notify_all();
        AttachGuard {
            session: self.clone(),
            id,
            parked: false,
        }
    }

    /// Places kept for clients that vanished, and how long each still holds (for listings).
    pub fn parked(&self) -> usize {
        let now = std::time::Instant::now();
        self.shared
            .state
            .lock()
            .readers
            .values()
            .filter(|r| r.parked.is_some_and(|until| until > now))
            .count()
    }

    /// Highest input sequence applied for `token`.
    pub fn input_acked(&self, token: u64) -> u64 {
        self.shared
            .state
            .lock()
            .input_seqs
            .get(&token)
            .copied()
            .unwrap_or(0)
    }

    /// Applies input `seq` from `token` exactly once: returns `false` if it was applied before.
    /// Waits (backpressure) while the process is not reading its input.
    pub async fn write_input(&self, token: u64, seq: u64, data: Vec<u8>) -> bool {
        if seq <= self.input_acked(token) {
            return false;
        }
        // Wait for room first: a seq counts as applied only once its bytes are queued for the
        // PTY, so input cut off by a broken stream while waiting is re-sent, never lost.
        let Ok(permit) = self.input.reserve().await else {
            // The writer is gone only once the PTY is; the input has nowhere to go.
            return false;
        };
        let mut st = self.shared.state.lock();
        let last = st.input_seqs.entry(token).or_insert(0);
        if seq <= *last {
            return false;
        }
        *last = seq;
        permit.send(data);
        true
    }

    /// Forgets the input sequence of a client token that detached cleanly.
    pub fn forget_token(&self, token: u64) {
        self.shared.state.lock().input_seqs.remove(&token);
    }

    /// Resizes the PTY (the "latest" policy: the most recent request from any client wins).
    pub fn resize(&self, size: WinSize) {
        let size = clamp(size);
        {
            let mut st = self.shared.state.lock();
            if st.size == size {
                return;
            }
            st.size = size;
        }
        if let Err(e) = self.master.lock().resize(pty_size(size)) {
            debug!(session = self.id, "resize failed: {e}");
        }
    }

    /// Ends the process group: SIGHUP, then SIGKILL after [`KILL_GRACE`]. Returns once the
    /// session has ended.
    pub async fn kill(&self) {
        if self.exit().is_some() {
            return;
        }
        let mut rx = self.subscribe();
        let exited = async {
            while self.exit().is_none() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        };
        // The child is a session leader (setsid), so its process group id is its pid.
        crate::util::terminate_group(self.pid.unwrap_or(0), Signal::SIGHUP, KILL_GRACE, exited)
            .await;
    }

    fn signal(&self, sig: Signal) {
        // The child is a session leader (setsid), so its process group id is its pid.
        crate::util::signal_group(self.pid.unwrap_or(0), sig);
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        if self.exit().is_none() {
            self.signal(Signal::SIGHUP);
        }
    }
}

/// An attached stream: counted while alive, and holding back the PTY reader while it lags.
#[derive(Debug)]
pub struct AttachGuard {
    session: Arc<PtySession>,
    id: u64,
    parked: bool,
}

impl AttachGuard {
    /// Records that everything before `offset` was sent.
    pub fn advance(&self, offset: u64) {
        let shared = &self.session.shared;
        if let Some(r) = shared.state.lock().readers.get_mut(&self.id) {
            r.offset = offset;
        }
        shared.room.notify_all();
    }

    /// The client vanished without detaching: stop counting the attachment, but keep its
    /// place for `hold` ([`ATTACH_HOLD`]), or until the client attaches again, holding the
    /// process back as if the client were still reading. A place the client has already taken
    /// over with a newer attachment is simply gone.
    pub fn park(mut self, hold: Duration) {
        let shared = &self.session.shared;
        let mut st = shared.state.lock();
        st.attached = st.attached.saturating_sub(1);
        match st.readers.get_mut(&self.id) {
            Some(r) if !r.superseded => r.parked = Some(std::time::Instant::now() + hold),
            _ => {
                st.readers.remove(&self.id);
            }
        }
        drop(st);
        self.parked = true;
        shared.room.notify_all();
    }
}

impl Drop for AttachGuard {
    fn drop(&mut self) {
        if self.parked {
            return;
        }
        let shared = &self.session.shared;
        let mut st = shared.state.lock();
        st.attached = st.attached.saturating_sub(1);
        st.readers.remove(&self.id);
        drop(st);
        shared.room.notify_all();
    }
}

fn read_loop(mut reader: Box<dyn Read + Send>, shared: &Shared) {
    // Never read more than the buffer holds: a chunk larger than the buffer would push out
    // bytes of its own that a caught-up stream has yet to send, however long the reader waited.
    let capacity = shared.state.lock().buffer.capacity();
    // Nor more than the half the in-flight margin leaves free: a reader keeps up to half the
    // buffer behind its position, so a larger chunk could wait on a reader that cannot move
    // until the chunk is in.
    let mut buf = vec![0u8; MAX_CHUNK.min(capacity / 2).max(1)];
    loop {
        match reader.read(&mut buf) {
            // Linux reports EIO on the master once every slave fd is closed: that is EOF.
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let mut st = shared.state.lock();
                let chunk_at = std::time::Instant::now();
                // Wait while pushing would drop bytes an attachment has yet to send (a live one
                // for LAG_GRACE per chunk, a parked one until its place expires), or the first
                // bytes while the creator's first attachment is on its way. Streams already
                // behind the buffer are lost causes and hold nothing back.
                loop {
                    let now = std::time::Instant::now();
                    let start = st.buffer.start();
                    let new_start =
                        (st.buffer.end() + n as u64).saturating_sub(st.buffer.capacity() as u64);
                    let holds = |o: u64| o >= start && o < new_start;
                    let in_flight = IN_FLIGHT.min(st.buffer.capacity() as u64 / 2);
                    // A reader whose own position is still in the buffer (an older one is a lost
                    // cause) keeps it from `keep_from` on — what its client may not have
                    // received yet — or from the buffer's start if that is later.
                    let mut deadline = st
                        .readers
                        .values()
                        .filter(|r| r.offset >= start && holds(r.keep_from(in_flight).max(start)))
                        .filter_map(|r| r.holds_until(chunk_at))
                        .max();
                    if let Some(until) = st.creator_hold
                        && holds(0)
                    {
                        // The usual lag rule: at most LAG_GRACE per chunk.
                        deadline = deadline.max(Some(until.min(chunk_at + LAG_GRACE)));
                    }
                    let left =
                        deadline.map_or(Duration::ZERO, |d| d.saturating_duration_since(now));
                    if left.is_zero() {
                        // Places kept past their time are gone for good.
                        st.readers
                            .retain(|_, r| r.parked.is_none_or(|until| until > now));
                        break;
                    }
                    shared.held.store(true, Ordering::Relaxed);
                    shared.room.wait_for(&mut st, left);
                }
                shared.held.store(false, Ordering::Relaxed);
                st.buffer.push(&buf[..n]);
                drop(st);
                shared.activity.fetch_add(1, Ordering::Relaxed);
                shared.changed.send_modify(|v| *v += 1);
            }
        }
    }
}

fn write_loop(mut writer: Box<dyn Write + Send>, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(data) = rx.blocking_recv() {
        if writer
            .write_all(&data)
            .and_then(|_| writer.flush())
            .is_err()
        {
            break;
        }
    }
}

fn spawn_thread(name: String, f: impl FnOnce() + Send + 'static) -> Result<(), SpawnError> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .map(|_| ())
        .map_err(|e| SpawnError::Pty(format!("cannot start thread: {e}")))
}

fn clamp(size: WinSize) -> WinSize {
    WinSize {
        cols: size.cols.clamp(1, 1000),
        rows: size.rows.clamp(1, 1000),
    }
}

fn pty_size(size: WinSize) -> PtySize {
    PtySize {
        rows: size.rows,
        cols: size.cols,
        pixel_width: 0,
        pixel_height: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flood(hold_output: bool) -> Arc<PtySession> {
        let req = CreateSession {
            name: None,
            command: ["head", "-c", "200000", "/dev/zero"]
                .map(String::from)
                .to_vec(),
            cwd: Some("/".into()),
            env: vec![],
            size: WinSize::default(),
            hold_output,
        };
        PtySession::spawn(1, &req, 16 * 1024, broadcast::channel(1).0).expect("spawn")
    }

    /// Reads everything from `offset` on as an attached stream would, until the process ends.
    async fn drain(s: &Arc<PtySession>, guard: &AttachGuard, mut offset: u64) -> Vec<u8> {
        let mut rx = s.subscribe();
        let mut got = Vec::new();
        loop {
            match s.read(offset) {
                Slice::Data(d) => {
                    offset += d.len() as u64;
                    got.extend(d);
                    guard.advance(offset);
                }
                Slice::Gap { start } => panic!("output lost before {start}"),
                Slice::Empty if s.exit().is_some() => return got,
                Slice::Empty => {
                    let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
                }
            }
        }
    }

    #[tokio::test]
    async fn held_output_waits_for_the_creators_first_attachment() {
        let s = flood(true);
        // Far longer than `head` needs to overflow a 16 KiB buffer, far shorter than LAG_GRACE.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(s.bounds().0, 0, "the first byte is still held");
        let guard = s.attach_guard(0, 1);
        assert_eq!(drain(&s, &guard, 0).await, vec![0u8; 200_000]);
    }

    #[tokio::test]
    async fn a_parked_place_holds_the_process_and_is_taken_over() {
        let s = flood(false);
        let guard = s.attach_guard(0, 7);
        // The client vanishes at once; its place is kept.
        guard.park(Duration::from_secs(60));
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            s.bounds().0,
            0,
            "nothing the parked client missed was dropped"
        );
        assert_eq!(s.info().attached, 0, "a parked place is not an attachment");
        assert_eq!(s.parked(), 1);
        // The same client comes back and reads everything.
        let guard = s.attach_guard(0, 7);
        assert_eq!(s.parked(), 0);
        assert_eq!(drain(&s, &guard, 0).await, vec![0u8; 200_000]);
    }

    #[tokio::test]
    async fn a_client_that_moved_to_a_new_stream_leaves_no_place_behind() {
        let s = flood(false);
        let old = s.attach_guard(0, 7);
        // The same client attaches again (a fresh socket) before the old stream ends...
        let new = s.attach_guard(0, 7);
        // ...and the old one then vanishes: nothing is kept for it.
        old.park(Duration::from_secs(60));
        assert_eq!(s.parked(), 0);
        assert_eq!(drain(&s, &new, 0).await, vec![0u8; 200_000]);
    }

    #[tokio::test]
    async fn a_parked_place_expires_and_the_process_runs_on() {
        let s = flood(false);
        let guard = s.attach_guard(0, 7);
        guard.park(Duration::from_millis(300));
        let mut rx = s.subscribe();
        let t0 = std::time::Instant::now();
        while s.exit().is_none() {
            let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
            assert!(t0.elapsed() < Duration::from_secs(20), "still held");
        }
        assert_eq!(s.bounds(), (200_000 - 16 * 1024, 200_000));
        assert_eq!(s.parked(), 0);
    }

    #[tokio::test]
    async fn without_hold_a_detached_session_runs_freely() {
        let s = flood(false);
        let mut rx = s.subscribe();
        while s.exit().is_none() {
            let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
        }
        assert_eq!(s.bounds(), (200_000 - 16 * 1024, 200_000));
    }
}
