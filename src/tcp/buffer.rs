//! Send and receive rings, and the out-of-order assembler.
//!
//! Each connection owns two [`RingBuf`]s, allocated once to their configured
//! capacity the first time they hold data (so a half-open connection from a
//! SYN flood costs no buffer memory) and never resized while in use: no
//! allocation per segment. Out-of-order data is written straight into the
//! receive ring at its offset; the [`Assembler`] only remembers which ranges
//! are there (in a node pool reserved when the first hole appears).

use super::config::MAX_BUFFER;
use super::sack::{ANCHOR_LAG, BEHIND, REBASE_AT};
use super::seq::SeqNumber;
use super::tree::{Id, Tree};
use super::wire::{SackBlock, MAX_SACK_BLOCKS};
use crate::ip::checksum;

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

    /// Copies `data` just past the readable end without making it readable,
    /// and returns its [`checksum::sum`] taken in the same pass: a segment
    /// is staged here and committed with [`RingBuf::advance_len`] only once
    /// its checksum passes. `None` (nothing written) if it does not fit.
    /// Whatever lay in those free bytes is overwritten, so the caller makes
    /// sure nothing out of order is held there.
    pub fn stage_summed(&mut self, data: &[u8]) -> Option<u16> {
        if data.len() > self.free() {
            return None;
        }
        self.alloc();
        let start = self.index(self.len);
        let first = data.len().min(self.cap - start);
        let (a, b) = data.split_at(first);
        let sa = checksum::copy_and_sum(&mut self.buf[start..], a);
        if b.is_empty() {
            return Some(sa);
        }
        let sb = checksum::copy_and_sum(&mut self.buf[..], b);
        // After an odd-length first piece, the second one's bytes fall in
        // the other halves of their 16-bit words: its sum byte-swapped is
        // its share (RFC 1071 §2(B)).
        let sb = if first % 2 == 1 { sb.swap_bytes() } else { sb };
        Some(checksum::add(sa, sb))
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

/// Fewest distinct out-of-order ranges held; the bound grows with the
/// byte bound (see [`Assembler::new`]). It must cover one hole per lost
/// segment of a large window: at 1 % loss, a 100 Mbit/s × 50 ms flow (a
/// window of ~2 000 segments) keeps 20–60 holes open, and a slow-start
/// overshoot into a deep queue loses every other segment of a window: 32,
/// then 256, made the receiver drop good segments.
pub const MAX_OOO_RANGES: usize = 1024;

/// Bytes of the byte bound per range of the range bound. A range and the
/// hole before it take at least two segments, and senders' segments are
/// at least 536 bytes (RFC 9293 §3.7.1's default MSS) except a tail, so an
/// honest sender filling `max_bytes` out of order makes fewer than
/// `max_bytes / 512` ranges and is never refused for the count. The pool
/// of ranges (36 bytes a node) is then reserved at about a fourteenth of
/// the byte bound, and only the part ever in use is touched. Only a sender
/// of tiny segments meets the bound, and then each costs O(log bound).
const BYTES_PER_RANGE: usize = 512;

/// A range's right edge offset, and its neighbours in the order ranges
/// last grew (most recent first, for RFC 2018's SACK block order).
#[derive(Copy, Clone, Debug)]
struct Held {
    right: u32,
    newer: Id,
    older: Id,
}

const NONE: Id = Id::MAX;

/// Which out-of-order sequence ranges sit in the receive ring.
///
/// Keyed by offset from an anchor (see [`super::sack::ANCHOR_LAG`]): the
/// anchor starts 2^30 below the first range, so at or below RCV.NXT, and
/// [`Assembler::pop_contiguous`] moves it up once RCV.NXT is 2^31 past.
/// The ranges sit in a [`Tree`] whose pool is reserved to the range bound
/// on the first out-of-order segment: no allocation per segment after it.
#[derive(Debug)]
pub struct Assembler {
    /// Left edge offset to the range. Ranges never touch.
    ranges: Tree<Held>,
    /// The range that grew last; `older` links lead on from it.
    newest: Id,
    anchor: SeqNumber,
    bytes: usize,
    max_bytes: usize,
    max_ranges: usize,
    /// Ranges visited by inserts, for the tests' cost bounds.
    #[cfg(test)]
    visits: usize,
}

/// The assembler has no room for a segment.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Full;

impl Assembler {
    pub fn new(max_bytes: usize) -> Assembler {
        Assembler {
            // An empty tree allocates nothing: a connection that never
            // sees an out-of-order segment (and 100 000 idle ones) holds
            // nothing here.
            ranges: Tree::default(),
            newest: NONE,
            anchor: SeqNumber(0),
            bytes: 0,
            max_bytes,
            // No ring is larger than MAX_BUFFER, whatever byte bound is
            // asked for; the pool is reserved to this.
            max_ranges: MAX_OOO_RANGES.max(max_bytes.min(MAX_BUFFER) / BYTES_PER_RANGE),
            #[cfg(test)]
            visits: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    pub fn ranges(&self) -> usize {
        self.ranges.len()
    }

    #[cfg(test)]
    pub fn anchor(&self) -> SeqNumber {
        self.anchor
    }

    #[cfg(test)]
    pub fn max_ranges(&self) -> usize {
        self.max_ranges
    }

    /// Forgets everything; the pool is kept for the next hole.
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.newest = NONE;
        self.bytes = 0;
    }

    /// Forgets everything and gives the memory back.
    pub fn release(&mut self) {
        self.clear();
        self.ranges.release();
    }

    fn off(&self, s: SeqNumber) -> u32 {
        s.0.wrapping_sub(self.anchor.0)
    }

    fn seq(&self, off: u32) -> SeqNumber {
        self.anchor.wrapping_add(off)
    }

    /// Moves the anchor up to `to` (at or below every range): shifting
    /// every key by the same amount keeps their order, so the tree stays
    /// as it is. O(n), once per 2^30 bytes received.
    fn rebase(&mut self, to: SeqNumber) {
        let d = self.off(to);
        self.ranges.shift_down(d, |r| r.right -= d);
        self.anchor = to;
    }

    fn unlink_recent(&mut self, id: Id) {
        let h = self.ranges.val(id);
        if h.newer == NONE {
            self.newest = h.older;
        } else {
            self.ranges.val_mut(h.newer).older = h.older;
        }
        if h.older != NONE {
            self.ranges.val_mut(h.older).newer = h.newer;
        }
    }

    fn push_recent(&mut self, id: Id) {
        let old = self.newest;
        let h = self.ranges.val_mut(id);
        h.newer = NONE;
        h.older = old;
        if old != NONE {
            self.ranges.val_mut(old).newer = id;
        }
        self.newest = id;
    }

    /// Records `[left, right)` (already inside the window, above RCV.NXT).
    /// Merges with neighbours. Refuses when the byte or range bound would
    /// be passed; nothing changes then. O(log n) plus O(log n) per range
    /// merged away, and each range is merged away once: amortised O(log n).
    pub fn insert(&mut self, left: SeqNumber, right: SeqNumber) -> Result<(), Full> {
        if right <= left {
            return Ok(());
        }
        if self.ranges.is_empty() {
            self.anchor = left - ANCHOR_LAG as usize;
            self.ranges.reserve(self.max_ranges);
        }
        let (lo, ro) = (self.off(left), self.off(right));
        if lo >= BEHIND || ro >= BEHIND || ro <= lo {
            // Outside what the anchor can describe; the caller's window
            // check makes this unreachable.
            return Err(Full);
        }
        // The first range the new one touches: the one at or before `left`
        // if it reaches `left`, else the next one if it starts by `right`.
        let (mut l, mut r) = (lo, ro);
        let start = match self.ranges.floor(lo) {
            Some(p) if self.ranges.val(p).right >= lo => {
                l = self.ranges.key(p);
                r = r.max(self.ranges.val(p).right);
                Some(p)
            }
            Some(p) => self.ranges.next(p),
            None => self.ranges.first(),
        }
        .filter(|&id| self.ranges.key(id) <= r);
        // First pass, to refuse before changing anything.
        let mut covered = 0;
        let mut merged = 0;
        let mut cur = start;
        while let Some(id) = cur {
            let a = self.ranges.key(id);
            if a > r {
                break;
            }
            let b = self.ranges.val(id).right;
            covered += (b - a) as usize;
            merged += 1;
            r = r.max(b);
            cur = self.ranges.next(id);
        }
        #[cfg(test)]
        {
            self.visits += merged + 1;
        }
        let grown = self.bytes - covered + (r - l) as usize;
        let count = self.ranges.len() - merged + 1;
        if grown > self.max_bytes || count > self.max_ranges {
            return Err(Full);
        }
        let Some(keep) = start else {
            let held = Held {
                right: r,
                newer: NONE,
                older: NONE,
            };
            // The pool holds max_ranges, checked above.
            let id = self.ranges.insert(l, held).ok_or(Full)?;
            self.push_recent(id);
            self.bytes = grown;
            return Ok(());
        };
        // The first range touched becomes the merged one in place: its new
        // left edge is past its predecessor's right edge, so the order
        // holds and the tree need not change shape. The common extension
        // of a range by the next segment is then one search.
        while let Some(id) = self.ranges.next(keep) {
            if self.ranges.key(id) > r {
                break;
            }
            self.unlink_recent(id);
            self.ranges.remove(id);
        }
        self.ranges.set_key(keep, l);
        self.ranges.val_mut(keep).right = r;
        if self.newest != keep {
            self.unlink_recent(keep);
            self.push_recent(keep);
        }
        self.bytes = grown;
        Ok(())
    }

    /// Once RCV.NXT has reached `rcv_nxt`, takes the range that now joins
    /// it and returns how many bytes past `rcv_nxt` became contiguous.
    #[inline]
    pub fn pop_contiguous(&mut self, rcv_nxt: SeqNumber) -> usize {
        // Every in-order segment asks; keep the common empty case inlined.
        if self.ranges.is_empty() {
            return 0;
        }
        self.pop_held(rcv_nxt)
    }

    fn pop_held(&mut self, rcv_nxt: SeqNumber) -> usize {
        let n = self.off(rcv_nxt);
        if n >= BEHIND {
            return 0;
        }
        let mut joined = 0;
        // Ranges entirely behind rcv_nxt can exist after a FIN or a window
        // change; drop them.
        while let Some(id) = self.ranges.first() {
            let l = self.ranges.key(id);
            if l > n {
                break;
            }
            let r = self.ranges.val(id).right;
            self.bytes -= (r - l) as usize;
            self.unlink_recent(id);
            self.ranges.remove(id);
            if r > n {
                joined = (r - n) as usize;
                break;
            }
        }
        if n >= REBASE_AT && !self.ranges.is_empty() {
            self.rebase(rcv_nxt);
        }
        joined
    }

    /// SACK blocks to report, RFC 2018 §4: "The first SACK block ... MUST
    /// specify the contiguous block of data containing the segment which
    /// triggered this ACK ... The SACK option SHOULD be filled out by
    /// repeating the most recently reported SACK blocks". Most recent first.
    pub fn sack_blocks(&self) -> [Option<SackBlock>; MAX_SACK_BLOCKS] {
        let mut out = [None; MAX_SACK_BLOCKS];
        let mut cur = self.newest;
        for o in &mut out {
            if cur == NONE {
                break;
            }
            let h = self.ranges.val(cur);
            *o = Some((self.seq(self.ranges.key(cur)), self.seq(h.right)));
            cur = h.older;
        }
        out
    }
}

/// The Vec assembler this one replaced, kept as the model the tests
/// compare against: within its bound both must agree on everything.
#[cfg(test)]
pub(crate) mod reference {
    use super::{Full, SackBlock, SeqNumber, MAX_OOO_RANGES, MAX_SACK_BLOCKS};

    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    struct Range {
        left: SeqNumber,
        right: SeqNumber,
        /// When this range last grew, for RFC 2018's "most recent first".
        stamp: u64,
    }

    /// Which out-of-order sequence ranges sit in the receive ring.
    #[derive(Debug)]
    pub struct VecAssembler {
        ranges: Vec<Range>,
        bytes: usize,
        max_bytes: usize,
        clock: u64,
    }

    impl VecAssembler {
        pub fn new(max_bytes: usize) -> VecAssembler {
            VecAssembler {
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

        pub fn bytes(&self) -> usize {
            self.bytes
        }

        pub fn clear(&mut self) {
            self.ranges.clear();
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
}

#[cfg(test)]
pub(crate) mod tests {
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

    /// A staged segment is invisible until committed, its sum is the
    /// payload's whatever the ring's wrap does to it (odd first pieces
    /// included), and one that does not fit leaves the ring as it was.
    #[test]
    fn staged_bytes_are_summed_across_the_wrap_and_hidden_until_committed() {
        let cap = 700;
        let data: Vec<u8> = (0..cap).map(|i| (i * 131 + 7) as u8).collect();
        for head in (0..cap).step_by(7).chain([cap - 1]) {
            for len in [1, 2, 3, 127, 128, 129, 300, 555, cap] {
                let mut r = RingBuf::new(cap);
                r.write(&data[..head]);
                r.consume(head);
                let d = &data[..len];
                assert_eq!(
                    r.stage_summed(d),
                    Some(checksum::sum(d)),
                    "head {head} len {len}"
                );
                assert_eq!(r.len(), 0, "staged bytes are not readable");
                r.advance_len(len);
                let mut out = vec![0; len];
                assert_eq!(r.read(&mut out), len);
                assert_eq!(out, d, "head {head} len {len}");
            }
        }
        let mut r = RingBuf::new(8);
        r.write(b"abcde");
        assert_eq!(r.stage_summed(b"fghi"), None);
        r.advance_len(3);
        let mut out = [0; 8];
        assert_eq!(r.read(&mut out), 8);
        assert_eq!(&out, b"abcde\0\0\0", "nothing was staged");
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
        // The default byte bound, 256 KiB, gives the floor of ranges.
        let mut a = Assembler::new(256 * 1024);
        assert_eq!(a.max_ranges(), MAX_OOO_RANGES);
        for i in 0..MAX_OOO_RANGES as u32 {
            a.insert(s(i * 10), s(i * 10 + 5)).unwrap();
        }
        assert_eq!(a.insert(s(100_000), s(100_005)), Err(Full));
        // Merging into an existing range is still fine.
        a.insert(s(5), s(10)).unwrap();
    }

    use super::reference::VecAssembler;

    /// xorshift64*: seeded, so a failing case can be replayed.
    pub(crate) struct Rng(pub u64);
    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        pub fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    #[test]
    fn assembler_matches_the_vec_model_below_its_bound() {
        for seed in 1..=3000u64 {
            let mut g = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            // Every fourth case has a huge window and large jumps, so that
            // RCV.NXT passes 2^31 beyond the anchor with ranges held.
            let big = seed % 4 == 0;
            let window: u32 = if big {
                1 << 29
            } else {
                2 + g.below(4000) as u32
            };
            let max_bytes = if g.below(2) == 0 {
                usize::MAX
            } else {
                g.below(u64::from(window) * 2) as usize + 1
            };
            let mut a = Assembler::new(max_bytes);
            let mut m = VecAssembler::new(max_bytes);
            let mut nxt = SeqNumber(g.next() as u32);
            let maxlen = if big { 1 << 27 } else { 300 };
            for _ in 0..300 {
                match g.below(20) {
                    0..=12 => {
                        let off = 1 + g.below(u64::from(window - 1)) as u32;
                        let len = 1 + g.below(maxlen.min(u64::from(window - off))) as u32;
                        let l = nxt + off as usize;
                        let r = l + len as usize;
                        assert_eq!(a.insert(l, r), m.insert(l, r), "seed {seed}");
                    }
                    13..=18 => {
                        nxt += 1 + g.below(maxlen) as usize;
                        let more = a.pop_contiguous(nxt);
                        assert_eq!(more, m.pop_contiguous(nxt), "seed {seed}");
                        nxt += more;
                    }
                    _ => {
                        a.clear();
                        m.clear();
                    }
                }
                assert_eq!(a.is_empty(), m.is_empty(), "seed {seed}");
                assert_eq!(a.bytes(), m.bytes(), "seed {seed}");
                assert_eq!(a.sack_blocks(), m.sack_blocks(), "seed {seed}");
            }
        }
    }

    /// Maximal runs of a byte set, as (left, right) offsets.
    fn runs(set: &[bool]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < set.len() {
            if set[i] {
                let l = i;
                while i < set.len() && set[i] {
                    i += 1;
                }
                out.push((l, i));
            } else {
                i += 1;
            }
        }
        out
    }

    #[test]
    fn assembler_matches_a_byte_set_past_the_old_bound() {
        for seed in 1..=20u64 {
            let mut g = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            const W: usize = 60_000;
            let base = SeqNumber(g.next() as u32);
            let mut a = Assembler::new(usize::MAX);
            // Byte offsets from `base`, over the whole run.
            let mut set = vec![false; 4 * W];
            let mut nxt = 0usize;
            let mut most = 0;
            for step in 0..8000 {
                if g.below(100) == 0 && nxt + 2 * W < set.len() {
                    nxt += 1 + g.below(200) as usize;
                    let more = a.pop_contiguous(base + nxt);
                    set[..nxt].fill(false);
                    let run = set[nxt..].iter().take_while(|&&b| b).count();
                    assert_eq!(more, run, "seed {seed}");
                    set[nxt..nxt + run].fill(false);
                    nxt += run;
                } else {
                    let off = 1 + g.below(W as u64 - 10) as usize;
                    let len = 1 + g.below(8) as usize;
                    let l = nxt + off;
                    assert_eq!(a.insert(base + l, base + l + len), Ok(()));
                    set[l..l + len].fill(true);
                    let b = a.sack_blocks();
                    let (bl, br) = b[0].unwrap();
                    assert!(bl - base <= l && l + len <= br - base, "seed {seed}");
                }
                if step % 97 == 0 {
                    let rs = runs(&set);
                    most = most.max(rs.len());
                    assert_eq!(a.ranges(), rs.len(), "seed {seed}");
                    assert_eq!(a.bytes(), set.iter().filter(|&&b| b).count());
                    for blk in a.sack_blocks().iter().flatten() {
                        let r = (blk.0 - base, blk.1 - base);
                        assert!(rs.binary_search(&r).is_ok(), "seed {seed}");
                    }
                }
            }
            assert!(most > 2 * MAX_OOO_RANGES, "only {most} ranges");
        }
    }

    #[test]
    fn twenty_thousand_holes_are_held_and_pop_in_order() {
        const N: u32 = 20_000;
        let base = SeqNumber(u32::MAX - 5_000_000);
        let mut a = Assembler::new(40_000_000);
        assert!(a.max_ranges() >= N as usize);
        // Every other segment of 1000 bytes, in a scrambled order.
        let mut order: Vec<u32> = (0..N).collect();
        let mut g = Rng(7);
        for i in (1..order.len()).rev() {
            order.swap(i, g.below(i as u64 + 1) as usize);
        }
        for &k in &order {
            let l = base + (2 * k as usize + 1) * 1000;
            assert_eq!(a.insert(l, l + 1000), Ok(()));
            assert_eq!(a.sack_blocks()[0], Some((l, l + 1000)));
        }
        assert_eq!(a.ranges(), N as usize);
        let b = a.sack_blocks();
        for (j, blk) in b.iter().enumerate() {
            let k = order[order.len() - 1 - j] as usize;
            assert_eq!(
                *blk,
                Some((base + (2 * k + 1) * 1000, base + (2 * k + 2) * 1000))
            );
        }
        let mut nxt = base;
        for k in 0..N {
            nxt += 1000;
            assert_eq!(a.pop_contiguous(nxt), 1000, "hole {k}");
            nxt += 1000;
        }
        assert!(a.is_empty());
        assert_eq!(a.bytes(), 0);
    }

    #[test]
    fn hostile_one_byte_pattern_stays_within_bounds() {
        let mut a = Assembler::new(256 * 1024);
        assert_eq!(a.max_ranges(), MAX_OOO_RANGES);
        let base = SeqNumber(1 << 31);
        let n = 3 * MAX_OOO_RANGES;
        let mut accepted = 0;
        // 1-byte segments with 1-byte gaps, from the top down.
        for k in (0..n).rev() {
            let l = base + 2 * k + 1;
            if a.insert(l, l + 1).is_ok() {
                accepted += 1;
            }
            assert!(a.ranges() <= MAX_OOO_RANGES);
        }
        assert_eq!(accepted, MAX_OOO_RANGES);
        // Then from the bottom up, each filling a gap: merges, and
        // isolated ones refused at the bound.
        for k in 0..n {
            let l = base + 2 * k + 2;
            let _ = a.insert(l, l + 1);
            assert!(a.ranges() <= MAX_OOO_RANGES);
        }
        // Each insert visits the ranges it merges (at most two here) and
        // one more: no walk over everything held.
        assert!(a.visits <= 3 * 2 * n, "{} visits", a.visits);
        assert!(a.bytes() <= 256 * 1024);
        let held = a.bytes();
        a.release();
        assert!(a.is_empty() && held > 0);
    }
}
