//! A bounded output buffer indexed by absolute byte offset.

use std::collections::VecDeque;

/// Keeps the last `capacity` bytes of a stream; byte `n` of the stream has offset `n` forever.
#[derive(Debug)]
pub struct OutputBuffer {
    bytes: VecDeque<u8>,
    start: u64,
    capacity: usize,
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
            bytes: VecDeque::new(),
            start: 0,
            capacity: capacity.max(1),
        }
    }

    /// Oldest offset held.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Most bytes held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Offset one past the newest byte.
    pub fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    /// Appends output, dropping the oldest bytes past the capacity.
    pub fn push(&mut self, data: &[u8]) {
        if data.len() >= self.capacity {
            let skip = data.len() - self.capacity;
            self.start = self.end() + skip as u64;
            self.bytes.clear();
            self.bytes.extend(&data[skip..]);
            return;
        }
        let over = (self.bytes.len() + data.len()).saturating_sub(self.capacity);
        if over > 0 {
            self.bytes.drain(..over);
            self.start += over as u64;
        }
        self.bytes.extend(data);
    }

    /// Reads up to `max` bytes at `offset`. Offsets past the end read as [`Slice::Empty`].
    pub fn read(&self, offset: u64, max: usize) -> Slice {
        if offset < self.start {
            return Slice::Gap { start: self.start };
        }
        if offset >= self.end() {
            return Slice::Empty;
        }
        let mut out = Vec::with_capacity(max.min(self.bytes.len()));
        self.read_into(offset, max, &mut out);
        Slice::Data(out)
    }

    /// Appends up to `max` bytes at `offset` to `out` (nothing if the offset is not held);
    /// returns how many.
    pub fn read_into(&self, offset: u64, max: usize, out: &mut Vec<u8>) -> usize {
        if offset < self.start || offset >= self.end() {
            return 0;
        }
        let from = (offset - self.start) as usize;
        let to = (from + max).min(self.bytes.len());
        let (a, b) = self.bytes.as_slices();
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
        let skip = self.bytes.len().saturating_sub(n);
        self.bytes.iter().skip(skip).copied().collect()
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
