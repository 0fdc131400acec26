//! The PTY master's bytes, moved on the async runtime: the master fd is non-blocking under
//! [`AsyncFd`], a reader task appends what the program prints to the output buffer and wakes the
//! attachments, and input is written by the task that received it, straight to the PTY. A
//! keystroke and its echo thus cross no OS thread on the host (the wake-ups stay between tasks
//! of the same runtime). Input the PTY has no room for (a program that does not read its input)
//! waits in a bounded queue that a writer task drains as the PTY becomes writable; while the
//! queue is full, writers wait (backpressure), and while it holds anything new input queues
//! behind it, so input keeps its order.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use filedescriptor::FileDescriptor;
use parking_lot::Mutex;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

use super::{IN_FLIGHT, LAG_GRACE, Shared, SpawnError, State};

/// Input queued for the PTY beyond which writers wait (the program is not reading).
const INPUT_ROOM: usize = 64 * 1024;

/// The PTY master, non-blocking, and the input that waits for room in it.
#[derive(Debug)]
pub(super) struct PtyIo {
    fd: AsyncFd<FileDescriptor>,
    input: Mutex<Pending>,
    /// Signalled when input is queued (for the writer task).
    queued: Notify,
    /// Signalled when queued input went out or the PTY broke (for waiting writers).
    drained: Notify,
    #[cfg(test)]
    pub(super) probe: Mutex<Probe>,
}

#[derive(Debug, Default)]
struct Pending {
    bytes: VecDeque<u8>,
    /// Writing failed (the PTY is gone): input goes nowhere.
    broken: bool,
}

/// Where the echo path ran (tests check that it crossed no thread).
#[cfg(test)]
#[derive(Debug, Default)]
pub(super) struct Probe {
    /// Threads that appended output to the buffer.
    pub(super) read_threads: std::collections::HashSet<std::thread::ThreadId>,
    /// Threads that wrote input to the PTY directly.
    pub(super) write_threads: std::collections::HashSet<std::thread::ThreadId>,
    /// Inputs written whole by the task that received them.
    pub(super) direct: u64,
    /// Inputs (or their rests) left to the writer task.
    pub(super) queued: u64,
}

impl PtyIo {
    /// Wraps a duplicate of the master fd `raw`, made non-blocking (which the master's own fd
    /// shares; it is only used for ioctls). Needs a Tokio runtime.
    pub(super) fn new(raw: RawFd) -> Result<PtyIo, SpawnError> {
        let pty = |e: &dyn std::fmt::Display| SpawnError::Pty(e.to_string());
        let mut fd = FileDescriptor::dup(&raw).map_err(|e| pty(&e))?;
        fd.set_non_blocking(true).map_err(|e| pty(&e))?;
        // Tokio deprecates its safe constructors for types that could hand out another fd later
        // (tokio#8587); a `FileDescriptor` owns its one fd for its whole life, which is what
        // the (unsafe) replacement asks of the caller.
        #[allow(deprecated)]
        let fd = AsyncFd::new(fd).map_err(|e| pty(&e))?;
        Ok(PtyIo {
            fd,
            input: Mutex::new(Pending::default()),
            queued: Notify::new(),
            drained: Notify::new(),
            #[cfg(test)]
            probe: Mutex::new(Probe::default()),
        })
    }

    /// The master (a duplicate of the session's), for ioctls.
    pub(super) fn master(&self) -> &FileDescriptor {
        self.fd.get_ref()
    }

    /// Reads what the PTY has, waiting until it has something; `Ok(0)` or an error (Linux says
    /// EIO once the last slave fd is closed) is the end.
    async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(|fd| nix::unistd::read(fd.as_raw_fd(), buf).map_err(io::Error::from))
            .await
    }

    /// [`PtyIo::read`] with `read` doing the reading once the PTY is readable (`WouldBlock`:
    /// it was not after all).
    async fn read_with(
        &self,
        mut read: impl FnMut(&FileDescriptor) -> io::Result<usize>,
    ) -> io::Result<usize> {
        loop {
            let mut ready = self.fd.readable().await?;
            if let Ok(r) = ready.try_io(|fd| read(fd.get_ref())) {
                return r;
            }
        }
    }

    /// Waits while the queue is full; `false` if the PTY is gone.
    pub(super) async fn room(&self) -> bool {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            {
                let p = self.input.lock();
                if p.broken {
                    return false;
                }
                if p.bytes.len() < INPUT_ROOM {
                    return true;
                }
            }
            drained.await;
        }
    }

    /// Writes `data` now as far as the PTY takes it and queues the rest for the writer task
    /// (all of it if input is queued already, so that it keeps its order). Never blocks.
    pub(super) fn send(&self, data: &[u8]) {
        let mut p = self.input.lock();
        if p.broken {
            return;
        }
        let mut written = 0;
        if p.bytes.is_empty() {
            while written < data.len() {
                match nix::unistd::write(self.fd.get_ref(), &data[written..]) {
                    // A PTY never takes nothing when writable; if one did, wait as for EAGAIN.
                    Ok(0) => break,
                    Ok(n) => written += n,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(nix::errno::Errno::EAGAIN) => break,
                    Err(_) => {
                        p.broken = true;
                        drop(p);
                        self.drained.notify_waiters();
                        return;
                    }
                }
            }
            #[cfg(test)]
            {
                let mut probe = self.probe.lock();
                probe.write_threads.insert(std::thread::current().id());
                probe.direct += u64::from(written == data.len());
            }
        }
        if written < data.len() {
            p.bytes.extend(&data[written..]);
            drop(p);
            #[cfg(test)]
            {
                self.probe.lock().queued += 1;
            }
            self.queued.notify_one();
        }
    }

    /// The writer task: drains queued input as the PTY takes it, until the PTY is gone.
    pub(super) async fn drain_input(&self) {
        loop {
            let queued = self.queued.notified();
            tokio::pin!(queued);
            queued.as_mut().enable();
            if self.input.lock().bytes.is_empty() {
                queued.await;
                continue;
            }
            let Ok(mut ready) = self.fd.writable().await else {
                return self.broke();
            };
            let r = ready.try_io(|fd| {
                let mut p = self.input.lock();
                let (head, _) = p.bytes.as_slices();
                let n = nix::unistd::write(fd.get_ref(), head).map_err(io::Error::from)?;
                if n == 0 {
                    // Taken as "not writable", so the readiness is cleared and nothing spins.
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                p.bytes.drain(..n);
                Ok(())
            });
            match r {
                Ok(Ok(())) => self.drained.notify_waiters(),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(_)) => return self.broke(),
                // Not writable after all: wait again.
                Err(_) => {}
            }
        }
    }

    fn broke(&self) {
        let mut p = self.input.lock();
        p.broken = true;
        p.bytes.clear();
        drop(p);
        self.drained.notify_waiters();
    }
}

/// The reader task: PTY → output buffer, until the PTY reports its end.
pub(super) async fn read_loop(io: Arc<PtyIo>, shared: Arc<Shared>) {
    // Never read more than the buffer holds: a chunk larger than the buffer would push out
    // bytes of its own that a caught-up stream has yet to send, however long the reader waited.
    let capacity = shared.state.lock().buffer.capacity();
    // Nor more than the half the in-flight margin leaves free: a reader keeps up to half the
    // buffer behind its position, so a larger chunk could wait on a reader that cannot move
    // until the chunk is in.
    // A kept session's buffer is shared memory the PTY is read straight into (so that a host
    // killed mid-read loses nothing: see `ring`); another's is read through `buf`.
    let ring = shared.state.lock().buffer.ring().cloned();
    let mut buf = if ring.is_some() {
        Vec::new()
    } else {
        vec![0u8; crate::proto::MAX_CHUNK.min(capacity / 2).max(1)]
    };
    loop {
        let read = async {
            match &ring {
                Some(r) => io.read_with(|fd| r.read_pty(fd)).await,
                None => io.read(&mut buf).await,
            }
        };
        let n = tokio::select! {
            // Checked first: a program that prints without pause keeps the PTY readable.
            biased;
            // Handed to the keeper: stop between chunks, so that nothing read is lost.
            _ = shared.stop.cancelled() => break,
            r = read => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
        };
        let chunk_at = Instant::now();
        loop {
            let room = shared.room.notified();
            tokio::pin!(room);
            let until = {
                let mut st = shared.state.lock();
                // A session handed to its keeper waits for nobody: the chunk goes in now.
                let hold = if shared.stop.is_cancelled() {
                    None
                } else {
                    hold_until(&mut st, n as u64, chunk_at)
                };
                match hold {
                    None => {
                        if ring.is_some() {
                            st.buffer.commit(n);
                        } else {
                            st.buffer.push(&buf[..n]);
                        }
                        let now = crate::util::now_ms();
                        st.last_output_ms = now;
                        st.last_activity_ms = now;
                        break;
                    }
                    Some(until) => {
                        // Registered under the lock, so no `advance` can slip by unseen.
                        room.as_mut().enable();
                        until
                    }
                }
            };
            shared.held.store(true, Ordering::Relaxed);
            tokio::select! {
                _ = &mut room => {}
                _ = tokio::time::sleep_until(until.into()) => {}
                _ = shared.stop.cancelled() => {}
            }
        }
        shared.held.store(false, Ordering::Relaxed);
        #[cfg(test)]
        io.probe
            .lock()
            .read_threads
            .insert(std::thread::current().id());
        shared.output.notify_all();
        shared.activity.fetch_add(1, Ordering::Relaxed);
        shared.changed.send_modify(|v| *v += 1);
    }
}

/// Until when pushing `n` bytes must wait: while it would drop bytes an attachment has yet to
/// send (a live one for [`LAG_GRACE`] per chunk read at `chunk_at`, a parked one until its
/// place expires), or the first bytes while the creator's first attachment is on its way.
/// Streams already behind the buffer are lost causes and hold nothing back. `None`: push now
/// (places kept past their time are then gone for good).
fn hold_until(st: &mut State, n: u64, chunk_at: Instant) -> Option<Instant> {
    let now = Instant::now();
    let start = st.buffer.start();
    let new_start = (st.buffer.end() + n).saturating_sub(st.buffer.capacity() as u64);
    let holds = |o: u64| o >= start && o < new_start;
    let in_flight = IN_FLIGHT.min(st.buffer.capacity() as u64 / 2);
    // A reader whose own position is still in the buffer (an older one is a lost cause) keeps
    // it from `keep_from` on — what its client may not have received yet — or from the
    // buffer's start if that is later.
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
    let left = deadline.map_or(Duration::ZERO, |d| d.saturating_duration_since(now));
    if left.is_zero() {
        st.readers
            .retain(|_, r| r.parked.is_none_or(|until| until > now));
        return None;
    }
    deadline
}
