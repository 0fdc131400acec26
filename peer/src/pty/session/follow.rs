//! The screen follower: a thread per session that feeds the screen model from the output
//! buffer by offset, like an attached reader that holds nothing back. When the output outruns
//! it (a flood with nobody attached), it skips to the oldest byte still held and goes on: the
//! model is then approximate until the program redraws (line floods come right once a
//! screenful has passed). Snapshots are taken here too, registered with the attachment they
//! start so that the buffer holds the output that follows them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::broadcast;
use tracing::debug;

use super::super::events::PtyEvent;
use super::{AttachGuard, PtySession, Shared, guard};
use crate::proto::ScreenFacts;
use crate::pty::screen::{Screen, Snapshot};

/// Output the follower feeds the model at once. Small enough that a snapshot never waits long
/// for the lock, large enough to cost little per byte.
const CHUNK: usize = 256 * 1024;

/// How long a snapshot waits for the model to catch up with the output (so that it is fresh
/// and little output follows it); after that it is taken where the model is.
const CATCH_UP: Duration = Duration::from_millis(250);

/// How long a snapshot waits at most for the model to reach the buffer at all (it is behind
/// the buffer only while skipping forward in a flood); past it there is no snapshot.
const GIVE_UP: Duration = Duration::from_secs(5);

/// The largest picture sent: past it, fewer scrollback lines are drawn.
const MAX_PICTURE: usize = 4 << 20;

/// The model and what waits on it.
pub(super) struct ScreenCell {
    screen: Mutex<Screen>,
    /// Signalled after every feed.
    fed: Condvar,
    last_bell_ms: AtomicU64,
}

impl std::fmt::Debug for ScreenCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScreenCell").finish_non_exhaustive()
    }
}

impl ScreenCell {
    pub(super) fn new(screen: Screen) -> ScreenCell {
        ScreenCell {
            screen: Mutex::new(screen),
            fed: Condvar::new(),
            last_bell_ms: AtomicU64::new(0),
        }
    }

    /// Title, cwd, last line and bells (`last_output_ms` is the session's to fill in).
    pub(super) fn facts(&self) -> ScreenFacts {
        let f = self.screen.lock().facts();
        ScreenFacts {
            title: f.title,
            cwd: f.cwd,
            last_line: f.last_line,
            last_output_ms: 0,
            bells: f.bells,
            last_bell_ms: self.last_bell_ms.load(Ordering::Relaxed),
        }
    }
}

/// Benchmarks only (docs/benchmarks.md): `PEER_BENCH_NO_SCREEN_MODEL` runs sessions without
/// the model, to measure the PTY's throughput and memory without it (no pictures, no facts).
fn model_off() -> bool {
    std::env::var_os("PEER_BENCH_NO_SCREEN_MODEL").is_some()
}

/// Waits (blocking) until the model has taken in all the output there is, or `timeout`
/// passed: a session's facts (its last line) are then those of its last output.
pub(super) fn wait_caught_up(shared: &Shared, timeout: Duration) {
    if model_off() {
        return;
    }
    let deadline = Instant::now() + timeout;
    let mut scr = shared.screen.screen.lock();
    loop {
        let end = shared.state.lock().buffer.end();
        if scr.fed() >= end || Instant::now() >= deadline {
            return;
        }
        // Woken after every feed; the deadline bounds a follower that fell behind.
        shared.screen.fed.wait_until(&mut scr, deadline);
    }
}

/// The model is never in a hurry: as a batch thread (Linux's `SCHED_BATCH`) the follower does
/// not preempt whatever runs when output wakes it (a runtime worker sending that output to a
/// client, the program writing more), and still gets its fair share of the CPU.
#[allow(unsafe_code)]
fn in_the_background() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: a system call on the calling thread (pid 0) with a valid parameter block.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "the screen model thread keeps its scheduling policy"
            );
        }
    }
}

/// The follower thread's loop, until the session is gone.
pub(super) fn follow(id: u64, shared: &Shared, events: &broadcast::Sender<PtyEvent>) {
    if model_off() {
        return;
    }
    in_the_background();
    let cell = &shared.screen;
    let mut pos = 0u64;
    let mut buf = Vec::with_capacity(CHUNK);
    let mut resizes = Vec::new();
    loop {
        let skip;
        {
            let mut st = shared.state.lock();
            loop {
                if shared.closed.load(Ordering::Relaxed) {
                    return;
                }
                let resize_due = st.resizes.front().is_some_and(|r| r.0 <= pos);
                if resize_due || st.buffer.end() > pos || st.buffer.start() > pos {
                    break;
                }
                shared.output.wait(&mut st);
            }
            let start = st.buffer.start();
            skip = (pos < start).then_some(start);
            pos = pos.max(start);
            // Left in the queue until the model has them: a picture waits for an empty one.
            resizes.extend(
                st.resizes
                    .iter()
                    .take_while(|(at, _)| *at <= pos)
                    .map(|&(_, size)| size),
            );
            // Feed up to the next resize, so that it applies at its place in the stream.
            let until = st.resizes.get(resizes.len()).map_or(u64::MAX, |r| r.0);
            let max = CHUNK.min(usize::try_from(until - pos).unwrap_or(CHUNK));
            buf.clear();
            st.buffer.read_into(pos, max, &mut buf);
        }
        let bells = {
            let mut scr = cell.screen.lock();
            if let Some(start) = skip {
                debug!(
                    session = id,
                    skipped = start - scr.fed(),
                    "the screen model fell behind the buffer"
                );
                scr.skip_to(start);
            }
            if !resizes.is_empty() {
                for &size in &resizes {
                    scr.resize(size);
                }
                // Under the model's lock (the order pictures take the two locks in), so that a
                // picture sees the resize either pending or applied.
                let mut st = shared.state.lock();
                st.resizes.drain(..resizes.len());
                resizes.clear();
            }
            let bells = scr.bells();
            scr.feed(&buf);
            pos = scr.fed();
            scr.bells() - bells
        };
        cell.fed.notify_all();
        let at_ms = crate::util::now_ms();
        if bells > 0 {
            cell.last_bell_ms.store(at_ms, Ordering::Relaxed);
            let _ = events.send(PtyEvent::Bell { session: id });
        }
    }
}

impl PtySession {
    /// Attaches with a picture of the screen: waits (blocking; call it off the async runtime)
    /// for the model to catch up, takes the snapshot, and registers the attachment at its
    /// offset in the same breath, so that the buffer holds what follows it. `None` if the
    /// model did not reach the buffer in time (the caller attaches with bytes instead).
    pub fn attach_screen(
        self: &Arc<Self>,
        token: u64,
        scrollback: usize,
    ) -> Option<(AttachGuard, Snapshot)> {
        let mut id = None;
        let snap = self.snapshot_held(scrollback, |st, pos| {
            id = Some(guard::register(st, pos, token));
            true
        })?;
        self.shared.room.notify_waiters();
        Some((AttachGuard::new(self.clone(), id?), snap))
    }

    /// A picture for the attachment `reader` ([`AttachGuard::reader_id`]) that fell behind
    /// the buffer: its place moves to the picture's offset (blocking, as
    /// [`PtySession::attach_screen`]).
    pub fn repaint(&self, reader: u64, scrollback: usize) -> Option<Snapshot> {
        let id = reader;
        self.snapshot_held(scrollback, |st, pos| match st.readers.get_mut(&id) {
            Some(r) => {
                r.offset = pos;
                r.from = pos;
                true
            }
            None => false,
        })
    }

    /// Takes a snapshot once the model has caught up (or [`CATCH_UP`] passed) and its offset
    /// is still in the buffer, calling `hold` with the state and that offset under the state
    /// lock first (so that the reader cannot drop what follows the snapshot meanwhile).
    fn snapshot_held(
        &self,
        scrollback: usize,
        mut hold: impl FnMut(&mut super::State, u64) -> bool,
    ) -> Option<Snapshot> {
        let cell = &self.shared.screen;
        let t0 = Instant::now();
        let mut scr = cell.screen.lock();
        loop {
            let now = Instant::now();
            let pos = scr.offset();
            {
                let mut st = self.shared.state.lock();
                // Caught up with the output and with every resize: a resize waiting for the
                // follower would leave the picture drawn for the old size (its cursor rows off
                // in a terminal of the new one). Past CATCH_UP the picture is taken where the
                // model is only if output is what it is behind on; a resize alone is a
                // moment's work for it, waited for until GIVE_UP.
                let output_done = scr.fed() >= st.buffer.end();
                let caught_up = output_done && st.resizes.is_empty();
                let late = now >= t0 + CATCH_UP && !output_done;
                if (caught_up || late) && pos >= st.buffer.start() {
                    if !hold(&mut st, pos) {
                        return None;
                    }
                    break;
                }
            }
            if now >= t0 + GIVE_UP {
                debug!(session = self.id, "no screen snapshot: the model is behind");
                return None;
            }
            let wake = (now + Duration::from_millis(50)).min(t0 + GIVE_UP);
            cell.fed.wait_until(&mut scr, wake);
        }
        let mut lines = scrollback;
        loop {
            let snap = scr.snapshot(lines);
            if snap.data.len() <= MAX_PICTURE || lines == 0 {
                return Some(snap);
            }
            lines = snap.scrollback / 2;
        }
    }
}
