//! A session's output buffer in shared memory, so that it outlives the process that fills it.
//!
//! A session kept by a keeper ([`super::keeper`]) has its output buffer in a memfd that both the
//! keeper and the host map. The host reads the PTY straight into the ring and publishes each
//! chunk; the keeper, which holds the mapping too, finds every byte there when the host is gone
//! (killed, crashed, upgraded) and goes on reading the PTY into it while no host does. The
//! next host maps the same memory and serves the same offsets, so a client resumes at its
//! exact byte. Only one process writes at a time: the host while it is attached, the keeper
//! after its link to the host has closed (which the kernel does only once the host's threads
//! are gone).
//!
//! **Exact even under SIGKILL.** A read from the PTY consumes its bytes; a writer killed after
//! the read and before publishing the new end would lose them. So a writer reads straight into
//! the ring past the end, and the ring keeps the [`reserve`](SharedRing::reserve) bytes past
//! the end filled with `0xFF` (a byte that UTF-8 text never contains). Whoever writes next
//! first [`recovers`](SharedRing::recover): bytes past the end that are not `0xFF` were read
//! and not published, and are published then. (Output that ends in `0xFF` bytes of its own —
//! binary, never text — can lose those last bytes this way.) The reserve is not kept as
//! history: the ring holds `capacity - reserve` bytes of output.
//!
//! Layout (little-endian, fields 8-byte aligned): a 4 KiB header — magic, version, capacity,
//! reserve, the end offset (one past the newest published byte), and a table of the input
//! sequence numbers applied per client token — then `capacity` bytes of ring, byte `n` of the
//! stream at `n % capacity`.
//!
//! The one module of the crate with `unsafe`: shared memory has no safe interface. Soundness
//! rests on one rule, kept by the callers: one writer at a time (see above), and readers in
//! this process read only published bytes, under the same lock the writer publishes under.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::MmapRaw;

const MAGIC: u64 = u64::from_le_bytes(*b"peerring");
const VERSION: u64 = 1;
const HEADER: usize = 4096;
const OFF_MAGIC: usize = 0;
const OFF_VERSION: usize = 8;
const OFF_CAPACITY: usize = 16;
const OFF_RESERVE: usize = 24;
const OFF_END: usize = 32;
const OFF_SEQS: usize = 64;
/// Client tokens whose applied input sequence numbers the header keeps (the newest win).
pub const SEQ_SLOTS: usize = 64;
/// Largest ring a mapping may claim (a corrupt header must not make us map terabytes).
const MAX_CAPACITY: u64 = 1 << 32;
/// What the bytes past the end hold until a read fills them.
const BLANK: u8 = 0xFF;
/// Most bytes one read takes.
const MAX_RESERVE: usize = 64 * 1024;

/// The output ring in shared memory.
pub struct SharedRing {
    map: MmapRaw,
    file: File,
    capacity: usize,
    reserve: usize,
}

impl std::fmt::Debug for SharedRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRing")
            .field("capacity", &self.capacity)
            .field("end", &self.end())
            .finish_non_exhaustive()
    }
}

/// The reserve of a ring of `capacity` bytes.
fn reserve_for(capacity: usize) -> usize {
    (capacity / 4).clamp(1, MAX_RESERVE)
}

impl SharedRing {
    /// A new, empty ring of `capacity` bytes (at least 2) in a fresh memfd. Pages cost memory
    /// only once written.
    pub fn create(capacity: usize) -> io::Result<SharedRing> {
        let capacity = capacity.max(2);
        let fd = rustix::fs::memfd_create("peer-output", rustix::fs::MemfdFlags::CLOEXEC)?;
        let file = File::from(fd);
        file.set_len((HEADER + capacity) as u64)?;
        let ring = SharedRing::map(file, capacity, reserve_for(capacity))?;
        ring.word(OFF_MAGIC).store(MAGIC, Ordering::Relaxed);
        ring.word(OFF_VERSION).store(VERSION, Ordering::Relaxed);
        ring.word(OFF_CAPACITY)
            .store(capacity as u64, Ordering::Relaxed);
        ring.word(OFF_RESERVE)
            .store(ring.reserve as u64, Ordering::Relaxed);
        ring.fill(0, ring.reserve);
        ring.word(OFF_END).store(0, Ordering::Release);
        Ok(ring)
    }

    /// Maps a ring another process made (checking its header against the file).
    pub fn open(fd: OwnedFd) -> io::Result<SharedRing> {
        let file = File::from(fd);
        let len = file.metadata()?.len();
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        if len < HEADER as u64 + 2 || len > HEADER as u64 + MAX_CAPACITY {
            return Err(bad("the output ring has an impossible size"));
        }
        let capacity = (len - HEADER as u64) as usize;
        let ring = SharedRing::map(file, capacity, reserve_for(capacity))?;
        if ring.word(OFF_MAGIC).load(Ordering::Relaxed) != MAGIC
            || ring.word(OFF_VERSION).load(Ordering::Relaxed) != VERSION
            || ring.word(OFF_CAPACITY).load(Ordering::Relaxed) != capacity as u64
            || ring.word(OFF_RESERVE).load(Ordering::Relaxed) != ring.reserve as u64
        {
            return Err(bad(
                "the output ring's header is not one this version reads",
            ));
        }
        Ok(ring)
    }

    fn map(file: File, capacity: usize, reserve: usize) -> io::Result<SharedRing> {
        let map = MmapRaw::map_raw(&file)?;
        if map.len() < HEADER + capacity {
            return Err(io::Error::other("the output ring mapped short"));
        }
        Ok(SharedRing {
            map,
            file,
            capacity,
            reserve,
        })
    }

    fn word(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off.is_multiple_of(8) && off + 8 <= HEADER);
        // SAFETY: the mapping is page-aligned and at least HEADER bytes long, `off` is 8-byte
        // aligned inside the header, and the header's words are only accessed atomically
        // (here and in the other process).
        unsafe { &*(self.map.as_ptr().add(off) as *const AtomicU64) }
    }

    /// Where stream offset `at` lives in the data region, and how many bytes from there on
    /// are contiguous (at most `len`).
    fn span(&self, at: u64, len: usize) -> (usize, usize) {
        let pos = (at % self.capacity as u64) as usize;
        (pos, len.min(self.capacity - pos))
    }

    /// Sets stream offsets `[at, at + len)` to [`BLANK`] (`len` ≤ capacity).
    fn fill(&self, mut at: u64, mut len: usize) {
        while len > 0 {
            let (pos, n) = self.span(at, len);
            // SAFETY: `pos + n` ≤ capacity, inside the mapping; these offsets are past the end
            // or older than the start (never read), and only the one writer writes them.
            unsafe { std::ptr::write_bytes(self.map.as_mut_ptr().add(HEADER + pos), BLANK, n) };
            at += n as u64;
            len -= n;
        }
    }

    /// The memfd, to hand to another process.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Bytes of output the ring holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity - self.reserve
    }

    /// Most bytes one [`read_pty`](SharedRing::read_pty) takes.
    pub fn reserve(&self) -> usize {
        self.reserve
    }

    /// One past the newest published byte (read from the shared header: whichever process
    /// wrote last, this is where the next byte goes).
    pub fn end(&self) -> u64 {
        self.word(OFF_END).load(Ordering::Acquire)
    }

    /// The oldest byte still held.
    pub fn start(&self) -> u64 {
        self.end().saturating_sub(self.capacity() as u64)
    }

    /// Reads what `fd` has (at most the reserve, and what fits before the ring wraps) into
    /// the ring past the end, unpublished; returns how much. Writer only.
    pub fn read_pty(&self, fd: impl AsFd) -> io::Result<usize> {
        let (pos, n) = self.span(self.end(), self.reserve);
        // SAFETY: `pos + n` ≤ capacity, inside the mapping. These bytes are past the end: no
        // reader reads them, and only the one writer (the caller) writes them, so this is the
        // only reference to them while it lives.
        let buf =
            unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().add(HEADER + pos), n) };
        Ok(rustix::io::read(fd, buf)?)
    }

    /// Publishes `n` bytes past the end (read by [`read_pty`](SharedRing::read_pty) or
    /// copied by [`push`](SharedRing::push)): the oldest `n` bytes go, blanked, so that the
    /// reserve past the new end is blank, then the end moves. Writer only; in this process
    /// under the lock readers read under.
    pub fn publish(&self, n: usize) {
        let n = n.min(self.reserve);
        let end = self.end();
        // Blanked before the end moves: a writer killed in between leaves a blank reserve
        // and the read bytes past the old end, which `recover` publishes.
        self.fill(end + self.reserve as u64, n);
        self.word(OFF_END).store(end + n as u64, Ordering::Release);
    }

    /// Publishes what an earlier writer read and did not publish (it was killed in between);
    /// returns how many bytes. Call before writing after another process wrote.
    pub fn recover(&self) -> usize {
        let end = self.end();
        let mut last = 0;
        let mut at = end;
        let mut left = self.reserve;
        let mut i = 0;
        while left > 0 {
            let (pos, n) = self.span(at, left);
            // SAFETY: `pos + n` ≤ capacity; past the end, where no one else reads or writes
            // while the caller is the writer.
            let bytes =
                unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(HEADER + pos), n) };
            if let Some(j) = bytes.iter().rposition(|&b| b != BLANK) {
                last = i + j + 1;
            }
            i += n;
            at += n as u64;
            left -= n;
        }
        if last > 0 {
            self.publish(last);
        }
        last
    }

    /// Appends `data`, a reserve at a time. Writer only.
    pub fn push(&self, data: &[u8]) {
        for piece in data.chunks(self.reserve) {
            let mut at = self.end();
            let mut rest = piece;
            while !rest.is_empty() {
                let (pos, n) = self.span(at, rest.len());
                // SAFETY: `pos + n` ≤ capacity; past the end, the writer's alone.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        rest.as_ptr(),
                        self.map.as_mut_ptr().add(HEADER + pos),
                        n,
                    );
                }
                rest = &rest[n..];
                at += n as u64;
            }
            self.publish(piece.len());
        }
    }

    /// Appends up to `max` published bytes at `offset` to `out` (nothing if not held);
    /// returns how many.
    pub fn read_into(&self, offset: u64, max: usize, out: &mut Vec<u8>) -> usize {
        let end = self.end();
        if offset < end.saturating_sub(self.capacity() as u64) || offset >= end {
            return 0;
        }
        let total = ((end - offset) as usize).min(max);
        let mut at = offset;
        let mut left = total;
        while left > 0 {
            let (pos, n) = self.span(at, left);
            // SAFETY: `pos + n` ≤ capacity; published bytes, which the writer changes only
            // after they leave the window, under the lock this reader holds.
            let bytes =
                unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(HEADER + pos), n) };
            out.extend_from_slice(bytes);
            left -= n;
            at += n as u64;
        }
        total
    }

    /// Records that input `seq` from client `token` was applied (the slot of `token`, else an
    /// empty one, else the lowest sequence's).
    pub fn set_seq(&self, token: u64, seq: u64) {
        let mut free = None;
        let mut lowest = (u64::MAX, 0);
        for i in 0..SEQ_SLOTS {
            let (t, s) = self.slot(i);
            let t = t.load(Ordering::Relaxed);
            if t == token {
                s.store(seq, Ordering::Release);
                return;
            }
            if t == 0 && free.is_none() {
                free = Some(i);
            }
            let v = s.load(Ordering::Relaxed);
            if v < lowest.0 {
                lowest = (v, i);
            }
        }
        let (t, s) = self.slot(free.unwrap_or(lowest.1));
        // Zero first, so a host killed in between leaves no wrong pair behind.
        s.store(0, Ordering::Release);
        t.store(token, Ordering::Release);
        s.store(seq, Ordering::Release);
    }

    /// Forgets `token`'s sequence (it detached cleanly).
    pub fn clear_seq(&self, token: u64) {
        for i in 0..SEQ_SLOTS {
            let (t, s) = self.slot(i);
            if t.load(Ordering::Relaxed) == token {
                t.store(0, Ordering::Release);
                s.store(0, Ordering::Release);
            }
        }
    }

    /// The applied input sequence numbers kept, by client token.
    pub fn seqs(&self) -> Vec<(u64, u64)> {
        (0..SEQ_SLOTS)
            .map(|i| {
                let (t, s) = self.slot(i);
                (t.load(Ordering::Acquire), s.load(Ordering::Acquire))
            })
            .filter(|&(t, s)| t != 0 && s != 0)
            .collect()
    }

    fn slot(&self, i: usize) -> (&AtomicU64, &AtomicU64) {
        let off = OFF_SEQS + i * 16;
        (self.word(off), self.word(off + 8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dup(r: &SharedRing) -> OwnedFd {
        r.fd().try_clone_to_owned().expect("dup")
    }

    #[test]
    fn a_second_mapping_sees_the_bytes_and_the_end() {
        let a = SharedRing::create(12).expect("ring");
        assert_eq!((a.capacity(), a.reserve()), (9, 3));
        a.push(b"hello ");
        a.push(b"world");
        a.set_seq(7, 3);
        let b = SharedRing::open(dup(&a)).expect("open");
        assert_eq!((b.start(), b.end()), (2, 11));
        let mut out = Vec::new();
        assert_eq!(b.read_into(2, 100, &mut out), 9);
        assert_eq!(out, b"llo world");
        assert_eq!(b.seqs(), vec![(7, 3)]);
        // The second one writes on; the first sees it through the shared header.
        b.push(b"!");
        assert_eq!(a.end(), 12);
        b.clear_seq(7);
        assert!(a.seqs().is_empty());
    }

    #[test]
    fn bytes_read_and_never_published_are_recovered() {
        let ring = SharedRing::create(64).expect("ring");
        ring.push(b"before ");
        let (r, mut w) = std::io::pipe().expect("pipe");
        std::io::Write::write_all(&mut w, b"after\xFFx").expect("write");
        // A writer that read and was killed before publishing.
        let n = ring.read_pty(&r).expect("read");
        assert_eq!(n, 7);
        assert_eq!(ring.end(), 7, "not published yet");
        let next = SharedRing::open(dup(&ring)).expect("open");
        assert_eq!(next.recover(), 7);
        let mut out = Vec::new();
        next.read_into(0, 100, &mut out);
        assert_eq!(out, b"before after\xFFx");
        assert_eq!(next.recover(), 0, "nothing twice");
        // What follows is exact too.
        next.push(b" and on");
        out.clear();
        next.read_into(0, 100, &mut out);
        assert_eq!(out, b"before after\xFFx and on");
    }

    #[test]
    fn a_bad_header_is_refused() {
        let ring = SharedRing::create(16).expect("ring");
        ring.word(OFF_MAGIC).store(1, Ordering::Relaxed);
        let err = SharedRing::open(dup(&ring)).expect_err("a bad header");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn the_seq_table_keeps_the_newest_tokens() {
        let ring = SharedRing::create(16).expect("ring");
        for t in 1..=(SEQ_SLOTS as u64 + 1) {
            ring.set_seq(t, t * 10);
        }
        let seqs = ring.seqs();
        assert_eq!(seqs.len(), SEQ_SLOTS);
        assert!(!seqs.contains(&(1, 10)), "the lowest went");
        assert!(seqs.contains(&(SEQ_SLOTS as u64 + 1, (SEQ_SLOTS as u64 + 1) * 10)));
    }

    proptest! {
        #[test]
        fn matches_a_plain_vec(cap in 2usize..64, pushes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..20), off in 0u64..600, max in 1usize..80) {
            let r = SharedRing::create(cap).expect("ring");
            let mut all = Vec::new();
            for p in &pushes { r.push(p); all.extend_from_slice(p); }
            prop_assert_eq!(r.end(), all.len() as u64);
            prop_assert_eq!(r.start(), all.len().saturating_sub(r.capacity()) as u64);
            prop_assert_eq!(r.recover(), 0);
            let mut out = Vec::new();
            let n = r.read_into(off, max, &mut out);
            if off >= r.start() && off < r.end() {
                let o = off as usize;
                prop_assert_eq!(&out[..], &all[o..(o + max).min(all.len())]);
            } else {
                prop_assert_eq!(n, 0);
            }
        }
    }
}
