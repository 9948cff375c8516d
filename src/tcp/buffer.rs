//! Send and receive rings, and the out-of-order assembler.
//!
//! Each connection owns two [`RingBuf`]s, allocated once to their configured
//! capacity the first time they hold data (so a half-open connection from a
//! SYN flood costs no buffer memory) and never resized while in use: no
//! allocation per segment. Out-of-order data is written straight into the
//! receive ring at its offset; the [`Assembler`] only remembers which ranges
//! are there.

use super::seq::SeqNumber;
use super::wire::{SackBlock, MAX_SACK_BLOCKS};

/// A byte ring of fixed capacity.
#[derive(Debug, Default)]
pub struct RingBuf {
    buf: Vec<u8>,
    cap: usize,
    head: usize,
    len: usize,
}

impl RingBuf {
    /// A ring that will hold `cap` bytes. Nothing is allocated yet.
    pub fn new(cap: usize) -> RingBuf {
        RingBuf {
            buf: Vec::new(),
            cap,
            head: 0,
            len: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn free(&self) -> usize {
        self.cap - self.len
    }

    /// Changes the capacity; only while empty, when no offset can dangle.
    pub fn set_capacity(&mut self, cap: usize) -> bool {
        if self.len != 0 {
            return false;
        }
        self.cap = cap;
        self.buf = Vec::new();
        self.head = 0;
        true
    }

    /// Gives the memory back (TIME-WAIT keeps no buffers).
    pub fn release(&mut self) {
        self.buf = Vec::new();
        self.cap = 0;
        self.head = 0;
        self.len = 0;
    }

    fn alloc(&mut self) {
        if self.buf.len() != self.cap {
            self.buf = vec![0; self.cap];
        }
    }

    fn index(&self, off: usize) -> usize {
        // head < cap and off < cap, so the sum cannot overflow.
        let i = self.head + off;
        if i >= self.cap {
            i - self.cap
        } else {
            i
        }
    }

    /// Appends what fits of `data`; returns how much.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        let at = self.len;
        self.write_at(at, &data[..n]);
        self.len += n;
        n
    }

    /// Zero-copy append: `f` fills the first contiguous free stretch and
    /// returns how much it wrote (clamped to the stretch).
    pub fn write_with(&mut self, f: impl FnOnce(&mut [u8]) -> usize) -> usize {
        if self.free() == 0 {
            return 0;
        }
        self.alloc();
        let start = self.index(self.len);
        let end = (start + self.free()).min(self.cap);
        let n = f(&mut self.buf[start..end]).min(end - start);
        self.len += n;
        n
    }

    /// Copies `data` to `off` bytes past the head without changing what is
    /// readable: out-of-order data lands here. What would pass the capacity
    /// is cut; returns how much was written.
    pub fn write_at(&mut self, off: usize, data: &[u8]) -> usize {
        if off >= self.cap {
            return 0;
        }
        let n = data.len().min(self.cap - off);
        if n == 0 {
            return 0;
        }
        self.alloc();
        let start = self.index(off);
        let first = n.min(self.cap - start);
        self.buf[start..start + first].copy_from_slice(&data[..first]);
        self.buf[..n - first].copy_from_slice(&data[first..n]);
        n
    }

    /// Makes `n` more bytes past the readable end readable (they were put
    /// there by [`RingBuf::write_at`]).
    pub fn advance_len(&mut self, n: usize) {
        self.len = (self.len + n).min(self.cap);
    }

    /// The contiguous readable bytes from `off`, at most `max` of them: a
    /// segment's payload straight from the ring. Shorter at the wrap.
    pub fn slice_at(&self, off: usize, max: usize) -> &[u8] {
        if off >= self.len || self.buf.is_empty() {
            return &[];
        }
        let start = self.index(off);
        let n = max.min(self.len - off).min(self.cap - start);
        &self.buf[start..start + n]
    }

    /// Drops `n` bytes from the front.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        // Never rewind the head when the ring empties: out-of-order bytes
        // of the receive ring sit at fixed offsets past it.
        if n > 0 {
            self.head = self.index(n);
        }
    }

    /// Copies out and consumes up to `out.len()` bytes.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let mut done = 0;
        while done < out.len() {
            let s = self.slice_at(0, out.len() - done);
            if s.is_empty() {
                break;
            }
            let n = s.len();
            out[done..done + n].copy_from_slice(s);
            done += n;
            self.consume(n);
        }
        done
    }
}

/// Most distinct out-of-order ranges held. Every insert and SACK report
/// walks them, so the bound keeps a hostile sender's cost per segment
/// small; it must still cover one hole per lost segment of a large window:
/// at 1 % loss, a 100 Mbit/s × 50 ms flow (a window of ~2 000 segments)
/// keeps 20–60 holes open, and a slow-start overshoot into a deep queue
/// loses every other segment of a window: 32, then 256, made the receiver
/// drop good segments. The ranges are allocated only as holes appear.
pub const MAX_OOO_RANGES: usize = 1024;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Range {
    left: SeqNumber,
    right: SeqNumber,
    /// When this range last grew, for RFC 2018's "most recent first".
    stamp: u64,
}

/// Which out-of-order sequence ranges sit in the receive ring.
#[derive(Debug)]
pub struct Assembler {
    ranges: Vec<Range>,
    bytes: usize,
    max_bytes: usize,
    clock: u64,
}

/// The assembler has no room for a segment.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Full;

impl Assembler {
    pub fn new(max_bytes: usize) -> Assembler {
        Assembler {
            // Grown on the first out-of-order segment, up to the bound: a
            // connection that never sees one (and 100 000 idle ones)
            // holds nothing here.
            ranges: Vec::new(),
            bytes: 0,
            max_bytes,
            clock: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn clear(&mut self) {
        self.ranges.clear();
        self.bytes = 0;
    }

    /// Forgets everything and gives the memory back.
    pub fn release(&mut self) {
        self.ranges = Vec::new();
        self.bytes = 0;
    }

    /// Records `[left, right)` (already inside the window, above RCV.NXT).
    /// Merges with neighbours. Refuses when the byte or range bound would
    /// be passed; nothing changes then.
    pub fn insert(&mut self, left: SeqNumber, right: SeqNumber) -> Result<(), Full> {
        if right <= left {
            return Ok(());
        }
        self.clock += 1;
        // Find the first range whose right edge reaches `left` and the
        // ranges the new one touches.
        let first = self.ranges.iter().position(|r| r.right >= left);
        let mut new = Range {
            left,
            right,
            stamp: self.clock,
        };
        let (start, mut end) = match first {
            Some(i) => (i, i),
            None => (self.ranges.len(), self.ranges.len()),
        };
        let mut covered = 0;
        while end < self.ranges.len() && self.ranges[end].left <= new.right {
            let r = self.ranges[end];
            new.left = new.left.min(r.left);
            new.right = new.right.max(r.right);
            covered += r.right - r.left;
            end += 1;
        }
        let grown = self.bytes - covered + (new.right - new.left);
        let count = self.ranges.len() - (end - start) + 1;
        if grown > self.max_bytes || count > MAX_OOO_RANGES {
            return Err(Full);
        }
        self.bytes = grown;
        // splice without allocating: remove the merged ranges, insert one.
        self.ranges.drain(start..end);
        self.ranges.insert(start, new);
        Ok(())
    }

    /// Once RCV.NXT has reached `rcv_nxt`, takes the range that now joins
    /// it and returns how many bytes past `rcv_nxt` became contiguous.
    pub fn pop_contiguous(&mut self, rcv_nxt: SeqNumber) -> usize {
        // Ranges entirely behind rcv_nxt can exist after a FIN or a window
        // change; drop them.
        while let Some(r) = self.ranges.first().copied() {
            if r.right <= rcv_nxt {
                self.bytes -= r.right - r.left;
                self.ranges.remove(0);
                continue;
            }
            if r.left <= rcv_nxt {
                self.bytes -= r.right - r.left;
                self.ranges.remove(0);
                return r.right - rcv_nxt;
            }
            break;
        }
        0
    }

    /// SACK blocks to report, RFC 2018 §4: "The first SACK block ... MUST
    /// specify the contiguous block of data containing the segment which
    /// triggered this ACK ... The SACK option SHOULD be filled out by
    /// repeating the most recently reported SACK blocks". Most recent first.
    pub fn sack_blocks(&self) -> [Option<SackBlock>; MAX_SACK_BLOCKS] {
        let mut out = [None; MAX_SACK_BLOCKS];
        let mut taken = [usize::MAX; MAX_SACK_BLOCKS];
        for k in 0..MAX_SACK_BLOCKS {
            let mut best: Option<usize> = None;
            for (i, r) in self.ranges.iter().enumerate() {
                if taken.contains(&i) {
                    continue;
                }
                if best.is_none_or(|b| r.stamp > self.ranges[b].stamp) {
                    best = Some(i);
                }
            }
            let Some(b) = best else { break };
            taken[k] = b;
            out[k] = Some((self.ranges[b].left, self.ranges[b].right));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: u32) -> SeqNumber {
        SeqNumber(v)
    }

    #[test]
    fn ring_wraps_and_reads_back_in_order() {
        let mut r = RingBuf::new(8);
        assert_eq!(r.write(b"abcdef"), 6);
        let mut out = [0; 4];
        assert_eq!(r.read(&mut out), 4);
        assert_eq!(&out, b"abcd");
        assert_eq!(r.write(b"ghijklmn"), 6);
        assert_eq!(r.len(), 8);
        // The contiguous slice stops at the wrap.
        assert_eq!(r.slice_at(0, 8), b"efgh");
        assert_eq!(r.slice_at(4, 8), b"ijkl");
        let mut out = [0; 8];
        assert_eq!(r.read(&mut out), 8);
        assert_eq!(&out, b"efghijkl");
    }

    #[test]
    fn out_of_order_writes_become_readable_when_advanced() {
        let mut r = RingBuf::new(8);
        r.write(b"ab");
        assert_eq!(r.write_at(4, b"efghij"), 4);
        assert_eq!(r.len(), 2);
        r.write_at(2, b"cd");
        r.advance_len(6);
        let mut out = [0; 8];
        assert_eq!(r.read(&mut out), 8);
        assert_eq!(&out, b"abcdefgh");
    }

    #[test]
    fn out_of_order_bytes_survive_the_ring_emptying() {
        let mut r = RingBuf::new(8);
        r.write(b"abc");
        r.write_at(5, b"fg");
        let mut out = [0; 3];
        r.read(&mut out);
        r.write_at(0, b"de");
        r.advance_len(4);
        let mut out = [0; 4];
        assert_eq!(r.read(&mut out), 4);
        assert_eq!(&out, b"defg");
    }

    #[test]
    fn write_with_is_clamped_to_the_contiguous_free_part() {
        let mut r = RingBuf::new(4);
        r.write(b"abc");
        r.consume(3);
        r.write(b"d");
        // free: 3 bytes, but only 2 contiguous before the wrap? head=3.
        let n = r.write_with(|b| {
            b.fill(b'x');
            100
        });
        assert!((1..=3).contains(&n));
        assert_eq!(r.len(), 1 + n);
    }

    #[test]
    fn assembler_merges_and_bounds_bytes() {
        let mut a = Assembler::new(100);
        a.insert(s(10), s(20)).unwrap();
        a.insert(s(30), s(40)).unwrap();
        a.insert(s(20), s(30)).unwrap();
        assert_eq!(a.bytes(), 30);
        assert_eq!(a.sack_blocks()[0], Some((s(10), s(40))));
        assert_eq!(a.insert(s(50), s(200)), Err(Full));
        assert_eq!(a.bytes(), 30);
        assert_eq!(a.pop_contiguous(s(5)), 0);
        assert_eq!(a.pop_contiguous(s(10)), 30);
        assert!(a.is_empty());
    }

    #[test]
    fn sack_blocks_report_the_most_recent_first() {
        // RFC 2018 §4: "the first SACK block ... MUST specify the contiguous
        // block of data containing the segment which triggered this ACK".
        let mut a = Assembler::new(1000);
        for i in 0..5u32 {
            a.insert(s(100 * i + 10), s(100 * i + 20)).unwrap();
        }
        a.insert(s(220), s(230)).unwrap();
        let b = a.sack_blocks();
        assert_eq!(b[0], Some((s(210), s(230))));
        assert_eq!(b[1], Some((s(410), s(420))));
        assert_eq!(b[2], Some((s(310), s(320))));
        assert_eq!(b[3], Some((s(110), s(120))));
    }

    #[test]
    fn assembler_limits_ranges() {
        let mut a = Assembler::new(usize::MAX);
        for i in 0..MAX_OOO_RANGES as u32 {
            a.insert(s(i * 10), s(i * 10 + 5)).unwrap();
        }
        assert_eq!(a.insert(s(100_000), s(100_005)), Err(Full));
        // Merging into an existing range is still fine.
        a.insert(s(5), s(10)).unwrap();
    }
}
