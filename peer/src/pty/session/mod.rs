//! One PTY session: a process on a pseudo-terminal, its output buffer, and what moves bytes
//! between them.
//!
//! The PTY's bytes move on the async runtime ([`io`]): a reader task (PTY → buffer) and input
//! written by the attachment's own task, so a keystroke and its echo cross no OS thread. Two
//! plain threads do the blocking work: a waiter (collects the exit status once the reader has
//! drained the PTY, so `Exited` always follows the last byte of output) and the screen follower
//! (buffer → the screen model, [`follow`]), which never holds the reader back.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use parking_lot::Mutex;
use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};
use tokio::sync::{Notify, broadcast, watch};
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, warn};

mod follow;
mod guard;
mod io;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use guard::AttachGuard;
use guard::Reader;

use super::buffer::{OutputBuffer, Slice};
use super::events::PtyEvent;
use super::keeper;
use super::screen::Screen;
use crate::proto::{CreateSession, ExitInfo, MAX_CHUNK, SessionInfo, SessionState, WinSize};

/// How sessions keep their output, and where they tell what happens in them.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Output kept for replay, in bytes.
    pub buffer_bytes: usize,
    /// Scrollback lines the screen model keeps.
    pub scrollback: usize,
    /// Where bells and exits are published.
    pub events: broadcast::Sender<PtyEvent>,
}

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
    name: Mutex<Option<String>>,
    command: Vec<String>,
    cwd: String,
    created_at_ms: u64,
    pid: Option<u32>,
    shared: Arc<Shared>,
    io: Arc<io::PtyIo>,
    master: Master,
    /// The reader and writer tasks; they end with the session.
    _tasks: [AbortOnDropHandle<()>; 2],
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
    room: Notify,
    /// Counts the reader task's pushes, so the waiter can tell a busy reader from an idle one.
    activity: AtomicU64,
    /// Whether the reader task is waiting for a slow attached client.
    held: AtomicBool,
    /// Signalled when output arrives, the size changes or the session goes (for the follower).
    output: parking_lot::Condvar,
    /// The session is gone: the follower stops.
    closed: AtomicBool,
    /// The screen model, fed by the follower.
    screen: follow::ScreenCell,
    /// Tells the reader task to stop between chunks (the session is handed to its keeper).
    stop: tokio_util::sync::CancellationToken,
    /// The reader task has ended.
    reader_done: AtomicBool,
}

#[derive(Debug)]
struct State {
    buffer: OutputBuffer,
    exit: Option<ExitInfo>,
    /// When `exit` was recorded, unix milliseconds.
    ended_at_ms: Option<u64>,
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
    /// Size changes not yet applied to the screen model, at their output offsets.
    resizes: std::collections::VecDeque<(u64, WinSize)>,
    /// When output last arrived, unix milliseconds (0: never).
    last_output_ms: u64,
    /// When output last arrived or input was last applied, unix milliseconds.
    last_activity_ms: u64,
}

/// A program just started on a new PTY.
pub(crate) struct Started {
    pub(crate) master: Box<dyn MasterPty + Send>,
    pub(crate) child: Box<dyn portable_pty::Child + Send + Sync>,
    /// What it is called (the login shell's name when `req.command` is empty).
    pub(crate) program: String,
}

/// Fails unless a Tokio runtime will serve the PTY. Checked before any child exists: a child
/// spawned for nothing would never be reaped.
fn need_runtime() -> Result<(), SpawnError> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Ok(()),
        Err(_) => Err(SpawnError::Pty("no async runtime to serve the PTY".into())),
    }
}

/// How a program ended, from its wait status (`None`: waiting failed, reported as code 255).
pub(crate) fn exit_info(status: Option<portable_pty::ExitStatus>) -> ExitInfo {
    let status = status.unwrap_or_else(|| portable_pty::ExitStatus::with_exit_code(255));
    ExitInfo {
        code: status.exit_code(),
        signal: status.signal().map(str::to_owned),
    }
}

/// The working directory `req` asks for (the home directory if none), checked.
pub(crate) fn resolve_cwd(req: &CreateSession) -> Result<String, SpawnError> {
    let cwd = match &req.cwd {
        Some(dir) => dir.clone(),
        None => std::env::var("HOME").unwrap_or_else(|_| "/".into()),
    };
    if !std::path::Path::new(&cwd).is_dir() {
        return Err(SpawnError::NoSuchDir(cwd));
    }
    Ok(cwd)
}

/// Opens a PTY and starts `req` on it in `cwd` (fork and exec: blocks briefly).
pub(crate) fn start_process(
    id: u64,
    req: &CreateSession,
    cwd: &str,
) -> Result<Started, SpawnError> {
    let pair = native_pty_system()
        .openpty(pty_size(clamp(req.size)))
        .map_err(|e| SpawnError::Pty(e.to_string()))?;
    let mut cmd = match req.command.split_first() {
        None => CommandBuilder::new_default_prog(),
        Some((prog, args)) => {
            let mut c = CommandBuilder::new(prog);
            c.args(args);
            c
        }
    };
    cmd.cwd(cwd);
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
    let child = pair
        .slave
        .spawn_command(cmd)
        .map_err(|e| SpawnError::Exec {
            program: program.clone(),
            reason: e.to_string(),
        })?;
    // Only the child holds the slave from here on, so the reader sees EOF when it exits.
    drop(pair.slave);
    Ok(Started {
        master: pair.master,
        child,
        program,
    })
}

/// The PTY master a session does its I/O on.
enum Master {
    /// Its own (the program is this process's child).
    Own(Mutex<Box<dyn MasterPty + Send>>),
    /// A keeper's: the program is the keeper's child, and the keeper outlives this host.
    Kept {
        fd: std::os::fd::OwnedFd,
        link: Arc<keeper::Link>,
    },
}

/// What a session is made of, however it was started.
struct Parts {
    id: u64,
    name: Option<String>,
    command: Vec<String>,
    cwd: String,
    created_at_ms: u64,
    pid: Option<u32>,
    master: Master,
    buffer: OutputBuffer,
    size: WinSize,
    hold_output: bool,
    input_seqs: HashMap<u64, u64>,
    /// Waits for the program's exit (in the waiter thread).
    wait: Box<dyn FnOnce() -> keeper::Waited + Send>,
}

impl PtySession {
    /// Starts `req` on a new PTY of this process; its exit is reported on `events`.
    pub fn spawn(
        id: u64,
        req: &CreateSession,
        config: &SessionConfig,
    ) -> Result<Arc<PtySession>, SpawnError> {
        need_runtime()?;
        let cwd = resolve_cwd(req)?;
        let Started {
            master,
            mut child,
            program,
        } = start_process(id, req, &cwd)?;
        let pid = child.process_id();
        let wait = Box::new(move || {
            let status = child
                .wait()
                .inspect_err(|e| warn!(session = id, "wait failed: {e}"));
            keeper::Waited::Exited(exit_info(status.ok()), crate::util::now_ms())
        });
        PtySession::assemble(
            Parts {
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
                master: Master::Own(Mutex::new(master)),
                buffer: OutputBuffer::new(config.buffer_bytes),
                size: clamp(req.size),
                hold_output: req.hold_output,
                input_seqs: HashMap::new(),
                wait,
            },
            config,
        )
    }

    /// Starts `req` under a keeper of `keepers` (the program outlives this host). Blocks.
    pub fn spawn_kept(
        id: u64,
        req: &CreateSession,
        config: &SessionConfig,
        keepers: &keeper::Keepers,
    ) -> Result<Arc<PtySession>, SpawnError> {
        need_runtime()?;
        let cwd = resolve_cwd(req)?;
        let spec = keeper::Spec {
            id,
            req: CreateSession {
                size: clamp(req.size),
                ..req.clone()
            },
            cwd,
            ring_bytes: config.buffer_bytes as u64,
            created_at_ms: crate::util::now_ms(),
        };
        let kept = keepers.spawn(&spec)?;
        PtySession::adopt(kept, config, req.hold_output)
    }

    /// Takes over a session a keeper handed over (just started, or from an earlier host).
    pub(crate) fn adopt(
        kept: keeper::Kept,
        config: &SessionConfig,
        hold_output: bool,
    ) -> Result<Arc<PtySession>, SpawnError> {
        let keeper::Kept {
            hello,
            master,
            ring,
            link,
        } = kept;
        let link = Arc::new(link);
        let size = keeper::get_size(&master).map(clamp).unwrap_or_default();
        let input_seqs = ring.seqs().into_iter().collect();
        let ended = hello.exit.clone();
        let wlink = link.clone();
        let wait = Box::new(move || match ended {
            Some((exit, at)) => keeper::Waited::Exited(exit, at),
            None => wlink.wait(),
        });
        PtySession::assemble(
            Parts {
                id: hello.id,
                name: hello.name,
                command: hello.command,
                cwd: hello.cwd,
                created_at_ms: hello.created_at_ms,
                pid: Some(hello.pid).filter(|&p| p > 0),
                master: Master::Kept { fd: master, link },
                buffer: OutputBuffer::shared(Arc::new(ring)),
                size,
                hold_output,
                input_seqs,
                wait,
            },
            config,
        )
    }

    fn assemble(p: Parts, config: &SessionConfig) -> Result<Arc<PtySession>, SpawnError> {
        let id = p.id;
        let raw = match &p.master {
            Master::Own(m) => m.lock().as_raw_fd(),
            Master::Kept { fd, .. } => Some(std::os::fd::AsRawFd::as_raw_fd(fd)),
        }
        .ok_or_else(|| SpawnError::Pty("the PTY master has no fd".into()))?;
        let io = Arc::new(io::PtyIo::new(raw)?);
        let link = match &p.master {
            Master::Kept { link, .. } => Some(link.clone()),
            Master::Own(_) => None,
        };
        let (changed, _) = watch::channel(0u64);
        let now = crate::util::now_ms();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buffer: p.buffer,
                exit: None,
                ended_at_ms: None,
                size: p.size,
                attached: 0,
                input_seqs: p.input_seqs,
                readers: HashMap::new(),
                next_reader: 0,
                creator_hold: p
                    .hold_output
                    .then(|| std::time::Instant::now() + CREATOR_WAIT),
                resizes: std::collections::VecDeque::new(),
                last_output_ms: 0,
                last_activity_ms: now,
            }),
            changed,
            room: Notify::new(),
            activity: AtomicU64::new(0),
            held: AtomicBool::new(false),
            output: parking_lot::Condvar::new(),
            closed: AtomicBool::new(false),
            screen: follow::ScreenCell::new(Screen::new(p.size, config.scrollback)),
            stop: tokio_util::sync::CancellationToken::new(),
            reader_done: AtomicBool::new(false),
        });
        let (eof_tx, eof_rx) = std::sync::mpsc::channel::<()>();
        let (rio, rshared) = (io.clone(), shared.clone());
        let reader = AbortOnDropHandle::new(tokio::spawn(async move {
            io::read_loop(rio, rshared.clone()).await;
            rshared.reader_done.store(true, Ordering::SeqCst);
            rshared.changed.send_modify(|v| *v += 1);
            let _ = eof_tx.send(());
        }));
        let wio = io.clone();
        let writer = AbortOnDropHandle::new(tokio::spawn(async move { wio.drain_input().await }));
        let fshared = shared.clone();
        let fevents = config.events.clone();
        spawn_thread(format!("pty-{id}-screen"), move || {
            follow::follow(id, &fshared, &fevents)
        })?;
        let wshared = shared.clone();
        let events = config.events.clone();
        // Said when it ends (the session may end before the manager lists it).
        let what = p.name.clone().unwrap_or_else(|| p.command.join(" "));
        let wait = p.wait;
        spawn_thread(format!("pty-{id}-wait"), move || {
            let (exit, at) = match wait() {
                keeper::Waited::Exited(exit, at) => {
                    // Wait for the reader to drain the PTY so `Exited` follows the last byte.
                    // Descendants may hold the PTY open after the child exits: stop waiting
                    // once the reader has been idle for 500 ms and is not merely held back by a
                    // slow client.
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
                    (exit, at)
                }
                // The host let the session go to its keeper: nothing ended.
                keeper::Waited::Released => return,
                keeper::Waited::Vanished => {
                    if let Some(link) = &link {
                        link.reap();
                    }
                    // The program lives on without its keeper; its end shows as the PTY's.
                    let _ = eof_rx.recv();
                    let exit = ExitInfo {
                        code: 255,
                        signal: None,
                    };
                    (exit, crate::util::now_ms())
                }
            };
            debug!(session = id, code = exit.code, "session ended");
            // The screen facts of an ended session (its last line) are those of its output.
            follow::wait_caught_up(&wshared, Duration::from_millis(250));
            if let Some(link) = &link {
                // Before the exit is recorded, so that once a kill returns its keeper is told.
                link.done();
            }
            {
                let mut st = wshared.state.lock();
                st.exit = Some(exit.clone());
                st.ended_at_ms = Some(at);
            }
            wshared.changed.send_modify(|v| *v += 1);
            let _ = events.send(PtyEvent::Exited {
                session: id,
                what,
                status: exit,
            });
        })?;

        Ok(Arc::new(PtySession {
            id,
            name: Mutex::new(p.name),
            command: p.command,
            cwd: p.cwd,
            created_at_ms: p.created_at_ms,
            pid: p.pid,
            shared,
            io,
            master: p.master,
            _tasks: [reader, writer],
        }))
    }

    /// The session id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The display name.
    pub fn name(&self) -> Option<String> {
        self.name.lock().clone()
    }

    /// Sets or clears the display name.
    pub fn rename(&self, name: Option<String>) {
        *self.name.lock() = name.clone();
        if let Master::Kept { link, .. } = &self.master {
            link.rename(name);
        }
    }

    /// Whether a keeper keeps the program (it outlives this host).
    pub fn is_kept(&self) -> bool {
        matches!(self.master, Master::Kept { .. })
    }

    /// Hands a kept session back to its keeper alone (this host stops): the reader stops
    /// between chunks, then the link closes and the keeper reads the PTY from there on. A
    /// session of this process's own is left as it is.
    pub async fn release(&self) {
        let Master::Kept { link, .. } = &self.master else {
            return;
        };
        let mut rx = self.subscribe();
        self.shared.stop.cancel();
        while !self.shared.reader_done.load(Ordering::SeqCst) {
            if rx.changed().await.is_err() {
                break;
            }
        }
        link.release();
    }

    /// What a session list shows.
    pub fn info(&self) -> SessionInfo {
        let screen = self.shared.screen.facts();
        let st = self.shared.state.lock();
        SessionInfo {
            id: self.id,
            name: self.name(),
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
            screen: crate::proto::ScreenFacts {
                last_output_ms: st.last_output_ms,
                ..screen
            },
            last_activity_ms: st.last_activity_ms,
            ended_at_ms: st.ended_at_ms,
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

    /// [`PtySession::tail`] and the offset just past it, read together.
    pub fn tail_with_end(&self, n: usize) -> (Vec<u8>, u64) {
        let st = self.shared.state.lock();
        (st.buffer.tail(n), st.buffer.end())
    }

    /// A receiver that wakes on new output and on exit.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
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
        // Wait for room first: a seq counts as applied only once its bytes are written to the
        // PTY or queued for it, so input cut off by a broken stream while waiting is re-sent,
        // never lost.
        if !self.io.room().await {
            // The PTY is gone; the input has nowhere to go.
            return false;
        }
        let mut st = self.shared.state.lock();
        let last = st.input_seqs.entry(token).or_insert(0);
        if seq <= *last {
            return false;
        }
        *last = seq;
        if let Some(ring) = st.buffer.ring() {
            ring.set_seq(token, seq);
        }
        st.last_activity_ms = crate::util::now_ms();
        // Under the lock, so inputs go to the PTY in the order their seqs were applied.
        self.io.send(&data);
        true
    }

    /// Forgets the input sequence of a client token that detached cleanly.
    pub fn forget_token(&self, token: u64) {
        let mut st = self.shared.state.lock();
        st.input_seqs.remove(&token);
        if let Some(ring) = st.buffer.ring() {
            ring.clear_seq(token);
        }
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
            // The screen model resizes where the output is now: what the program prints
            // after this is for the new size.
            let at = st.buffer.end();
            st.resizes.push_back((at, size));
        }
        self.shared.output.notify_all();
        if let Err(e) = keeper::set_size(self.io.master(), size) {
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

    /// Whether the terminal echoes typed characters itself (termios `ECHO`) and edits lines
    /// itself (`ICANON`); `None` if it cannot be read.
    pub fn line_discipline(&self) -> Option<(bool, bool)> {
        use nix::sys::termios::LocalFlags;
        let t = nix::sys::termios::tcgetattr(self.io.master()).ok()?;
        Some((
            t.local_flags.contains(LocalFlags::ECHO),
            t.local_flags.contains(LocalFlags::ICANON),
        ))
    }

    fn signal(&self, sig: Signal) {
        // The child is a session leader (setsid), so its process group id is its pid.
        crate::util::signal_group(self.pid.unwrap_or(0), sig);
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        // A kept program is its keeper's to end (`kill`, or the keeper's own rules).
        if self.exit().is_none() && !self.is_kept() {
            self.signal(Signal::SIGHUP);
        }
        self.shared.closed.store(true, Ordering::Relaxed);
        // Under the lock, so the follower cannot miss it between its check and its wait.
        let _st = self.shared.state.lock();
        self.shared.output.notify_all();
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
