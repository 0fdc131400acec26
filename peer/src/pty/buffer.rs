//! A bounded output buffer indexed by absolute byte offset.

use std::collections::VecDeque;

use std::sync::Arc;

use super::ring::SharedRing;

/// Keeps the last `capacity` bytes of a stream; byte `n` of the stream has offset `n` forever.
#[derive(Debug)]
pub struct OutputBuffer {
    store: Store,
    capacity: usize,
}

/// Where the bytes are: this process's heap, or shared memory a keeper holds too.
#[derive(Debug)]
enum Store {
    Heap { bytes: VecDeque<u8>, start: u64 },
    Shared(Arc<SharedRing>),
}

/// The result of reading at an offset.
#[derive(Debug, PartialEq, Eq)]
pub enum Slice {
    /// Bytes starting at the asked offset.
    Data(Vec<u8>),
    /// The asked offset is older than the buffer; reading can resume at `start`.
    Gap {
        /// The oldest offset still held.
        start: u64,
    },
    /// Nothing new yet at this offset.
    Empty,
}

impl OutputBuffer {
    /// An empty buffer holding at most `capacity` bytes (at least 1).
    pub fn new(capacity: usize) -> Self {
        OutputBuffer {
            store: Store::Heap {
                bytes: VecDeque::new(),
                start: 0,
            },
            capacity: capacity.max(1),
        }
    }

    /// A buffer over a shared ring (its bytes and offsets as they are).
    pub fn shared(ring: Arc<SharedRing>) -> Self {
        OutputBuffer {
            capacity: ring.capacity(),
            store: Store::Shared(ring),
        }
    }

    /// The shared ring, if the buffer is one.
    pub fn ring(&self) -> Option<&Arc<SharedRing>> {
        match &self.store {
            Store::Shared(r) => Some(r),
            Store::Heap { .. } => None,
        }
    }

    /// Oldest offset held.
    pub fn start(&self) -> u64 {
        match &self.store {
            Store::Heap { start, .. } => *start,
            Store::Shared(r) => r.start(),
        }
    }

    /// Most bytes held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Offset one past the newest byte.
    pub fn end(&self) -> u64 {
        match &self.store {
            Store::Heap { bytes, start } => start + bytes.len() as u64,
            Store::Shared(r) => r.end(),
        }
    }

    /// Appends output, dropping the oldest bytes past the capacity.
    pub fn push(&mut self, data: &[u8]) {
        let capacity = self.capacity;
        let (bytes, start) = match &mut self.store {
            Store::Shared(r) => {
                r.push(data);
                return;
            }
            Store::Heap { bytes, start } => (bytes, start),
        };
        if data.len() >= capacity {
            let skip = data.len() - capacity;
            *start += (bytes.len() + skip) as u64;
            bytes.clear();
            bytes.extend(&data[skip..]);
            return;
        }
        let over = (bytes.len() + data.len()).saturating_sub(capacity);
        if over > 0 {
            bytes.drain(..over);
            *start += over as u64;
        }
        bytes.extend(data);
    }

    /// Publishes `n` bytes read into a shared ring past its end ([`SharedRing::read_pty`]).
    pub fn commit(&mut self, n: usize) {
        if let Store::Shared(r) = &self.store {
            r.publish(n);
        }
    }

    /// Reads up to `max` bytes at `offset`. Offsets past the end read as [`Slice::Empty`].
    pub fn read(&self, offset: u64, max: usize) -> Slice {
        if offset < self.start() {
            return Slice::Gap {
                start: self.start(),
            };
        }
        if offset >= self.end() {
            return Slice::Empty;
        }
        let mut out = Vec::with_capacity(max.min((self.end() - offset) as usize));
        self.read_into(offset, max, &mut out);
        Slice::Data(out)
    }

    /// Appends up to `max` bytes at `offset` to `out` (nothing if the offset is not held);
    /// returns how many.
    pub fn read_into(&self, offset: u64, max: usize, out: &mut Vec<u8>) -> usize {
        let (bytes, start) = match &self.store {
            Store::Shared(r) => return r.read_into(offset, max, out),
            Store::Heap { bytes, start } => (bytes, *start),
        };
        if offset < start || offset >= self.end() {
            return 0;
        }
        let from = (offset - start) as usize;
        let to = (from + max).min(bytes.len());
        let (a, b) = bytes.as_slices();
        if from < a.len() {
            out.extend_from_slice(&a[from..to.min(a.len())]);
        }
        if to > a.len() {
            out.extend_from_slice(&b[from.saturating_sub(a.len())..to - a.len()]);
        }
        to - from
    }

    /// The last `n` bytes (or fewer), for showing what a session printed last.
    pub fn tail(&self, n: usize) -> Vec<u8> {
        let from = self.end().saturating_sub(n as u64).max(self.start());
        let mut out = Vec::with_capacity((self.end() - from) as usize);
        self.read_into(from, n, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn offsets_survive_wrapping() {
        let mut b = OutputBuffer::new(8);
        b.push(b"hello ");
        b.push(b"world");
        assert_eq!(b.start(), 3);
        assert_eq!(b.end(), 11);
        assert_eq!(b.read(0, 100), Slice::Gap { start: 3 });
        assert_eq!(b.read(6, 100), Slice::Data(b"world".to_vec()));
        assert_eq!(b.read(3, 4), Slice::Data(b"lo w".to_vec()));
        assert_eq!(b.read(11, 4), Slice::Empty);
        b.push(b"0123456789");
        assert_eq!(b.start(), 13);
        assert_eq!(b.read(13, 100), Slice::Data(b"23456789".to_vec()));
        assert_eq!(b.tail(3), b"789".to_vec());
    }

    proptest! {
        #[test]
        fn matches_a_plain_vec(cap in 1usize..64, pushes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..20), off in 0u64..400, max in 1usize..80) {
            let mut b = OutputBuffer::new(cap);
            let mut all = Vec::new();
            for p in &pushes { b.push(p); all.extend_from_slice(p); }
            prop_assert_eq!(b.end(), all.len() as u64);
            prop_assert_eq!(b.start(), all.len().saturating_sub(cap) as u64);
            match b.read(off, max) {
                Slice::Data(d) => {
                    let o = off as usize;
                    prop_assert_eq!(&d[..], &all[o..(o + max).min(all.len())]);
                }
                Slice::Gap { start } => prop_assert!(off < start),
                Slice::Empty => prop_assert!(off >= all.len() as u64),
            }
        }
    }
}
