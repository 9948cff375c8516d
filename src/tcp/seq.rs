//! TCP sequence numbers: 32-bit values compared modulo 2^32.
//!
//! RFC 9293 §3.4: "Since the space is finite, all arithmetic dealing with
//! sequence numbers must be performed modulo 2^32. ... The symbol "=<" means
//! "less than or equal" (modulo 2^32)." The comparison used here is the
//! serial-number arithmetic of RFC 1982 §3.2, the same one Linux's
//! `before()`/`after()` use, with one difference spelled out on
//! [`SeqNumber::partial_cmp`](#impl-PartialOrd-for-SeqNumber).
//!
//! Everything here is total: no operation panics or overflows, whatever the
//! operands, because many of them come straight off the wire.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};

/// A TCP sequence number (also used for acknowledgment numbers and SACK
/// block edges).
///
/// Arithmetic wraps modulo 2^32. Ordering is modular: `a < b` when `b` is
/// less than 2^31 ahead of `a`. That is not a total order (see
/// [`PartialOrd`](#impl-PartialOrd-for-SeqNumber)), which is why `Ord` is
/// not implemented and a `BTreeMap<SeqNumber, _>` would be a bug.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// `self + n` modulo 2^32.
    #[inline]
    pub const fn wrapping_add(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n))
    }

    /// The signed distance from `other` to `self`: positive when `self` is
    /// ahead. Never panics.
    ///
    /// The result is exact for true distances in `-2^31+1 ..= 2^31-1`.
    /// `i32::MIN` means the two are exactly 2^31 apart, where "ahead" and
    /// "behind" are the same thing and RFC 1982 leaves the order undefined.
    #[inline]
    pub const fn diff(self, other: SeqNumber) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// The later of the two. Of two numbers exactly 2^31 apart (unordered),
    /// returns `self`.
    #[inline]
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if other > self {
            other
        } else {
            self
        }
    }

    /// The earlier of the two. Of two numbers exactly 2^31 apart
    /// (unordered), returns `self`.
    #[inline]
    pub fn min(self, other: SeqNumber) -> SeqNumber {
        if other < self {
            other
        } else {
            self
        }
    }

    /// `start =< self < start + len`, modulo 2^32.
    ///
    /// Computed as "the offset of `self` from `start` is below `len`", which
    /// is exact for every `len` up to 2^31 (receive windows stay below 2^30:
    /// RFC 7323 §2.3) and needs no special case at the wrap. An empty window
    /// (`len == 0`) contains nothing; for the zero-window rules of segment
    /// acceptance use [`segment_acceptable`].
    #[inline]
    pub fn in_window(self, start: SeqNumber, len: usize) -> bool {
        let offset = self.0.wrapping_sub(start.0);
        // usize is at least 32 bits on every target ringstack builds for,
        // and a u64 comparison is lossless on all of them.
        u64::from(offset) < len as u64
    }
}

/// The acceptability test of RFC 9293 §3.10.7.4 (also Table 5 in §3.4):
///
/// ```text
/// Segment Length  Receive Window  Test
/// 0               0               SEG.SEQ = RCV.NXT
/// 0               >0              RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND
/// >0              0               not acceptable
/// >0              >0              RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND
///                                 or
///                                 RCV.NXT =< SEG.SEQ+SEG.LEN-1 < RCV.NXT+RCV.WND
/// ```
///
/// `seg_len` is SEG.LEN, which counts SYN and FIN (see
/// [`Packet::segment_len`](super::wire::Packet::segment_len)).
///
/// This is only the table. RFC 9293 goes on: "If the RCV.WND is zero, no
/// segments will be acceptable, but special allowance should be made to
/// accept valid ACKs, URGs, and RSTs" (MUST-66: "A TCP receiver MUST process
/// the RST and URG fields of all incoming segments, even when the receive
/// window is zero"). That allowance is the caller's.
///
/// The table is applied literally, so a segment that starts before RCV.NXT
/// and ends beyond the window (it covers the whole window, but neither end
/// lies inside it) is not acceptable. Linux's `tcp_sequence()` accepts such
/// a segment; a caller wanting that can test the overlap itself.
pub fn segment_acceptable(
    seg_seq: SeqNumber,
    seg_len: usize,
    rcv_nxt: SeqNumber,
    rcv_wnd: usize,
) -> bool {
    match (seg_len, rcv_wnd) {
        (0, 0) => seg_seq == rcv_nxt,
        (0, _) => seg_seq.in_window(rcv_nxt, rcv_wnd),
        (_, 0) => false,
        (_, _) => {
            // seg_len > 0 here, so seg_len - 1 cannot underflow.
            let last = seg_seq + (seg_len - 1);
            seg_seq.in_window(rcv_nxt, rcv_wnd) || last.in_window(rcv_nxt, rcv_wnd)
        }
    }
}

/// Modular comparison: `a < b` iff `(b - a) mod 2^32` is in `1 ..= 2^31-1`.
///
/// This is **not a total order**. It is not transitive across distances of
/// 2^31 or more (0 < 2^30 < 2^31 < 3·2^30 < 0), and two numbers exactly 2^31
/// apart are unordered: `partial_cmp` returns `None`, so `a < b`, `a > b`,
/// `a <= b` and `a >= b` are all false for them. That follows RFC 1982 §3.2
/// ("there are some pairs of values s1 and s2 for which s1 is not equal to
/// s2, but for which s1 is neither greater than, nor less than, s2") rather
/// than Linux's `before()`, which says each is before the other; answering
/// `None` keeps `a < b` equivalent to `b > a`, as `PartialOrd` requires.
/// Only numbers within 2^31 of each other compare meaningfully, which TCP
/// guarantees for every comparison it makes on a live connection.
impl PartialOrd for SeqNumber {
    #[inline]
    fn partial_cmp(&self, other: &SeqNumber) -> Option<Ordering> {
        match self.diff(*other) {
            0 => Some(Ordering::Equal),
            i32::MIN => None,
            d if d < 0 => Some(Ordering::Less),
            _ => Some(Ordering::Greater),
        }
    }
}

/// `seq + n`, modulo 2^32. `n` is reduced modulo 2^32 too, so this never
/// panics; offsets of 2^31 or more make no sense in sequence space.
impl Add<usize> for SeqNumber {
    type Output = SeqNumber;
    #[inline]
    fn add(self, n: usize) -> SeqNumber {
        // Truncating n is reduction modulo 2^32, the arithmetic RFC 9293
        // §3.4 asks for.
        SeqNumber(self.0.wrapping_add(n as u32))
    }
}

impl AddAssign<usize> for SeqNumber {
    #[inline]
    fn add_assign(&mut self, n: usize) {
        *self = *self + n;
    }
}

/// `seq - n`, modulo 2^32.
impl Sub<usize> for SeqNumber {
    type Output = SeqNumber;
    #[inline]
    fn sub(self, n: usize) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(n as u32))
    }
}

impl SubAssign<usize> for SeqNumber {
    #[inline]
    fn sub_assign(&mut self, n: usize) {
        *self = *self - n;
    }
}

/// `a - b`: how far `a` is ahead of `b`, or 0 when `a` is not ahead (behind,
/// or exactly 2^31 away). Saturating rather than panicking, because `b` is
/// often a peer's number; use [`SeqNumber::diff`] when the sign matters.
impl Sub<SeqNumber> for SeqNumber {
    type Output = usize;
    #[inline]
    fn sub(self, other: SeqNumber) -> usize {
        match self.diff(other) {
            // d >= 0, so the cast is exact.
            d if d >= 0 => d as usize,
            _ => 0,
        }
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u32 = u32::MAX;
    const HALF: u32 = 1 << 31;

    fn s(v: u32) -> SeqNumber {
        SeqNumber(v)
    }

    #[test]
    fn comparison_is_modular_across_the_wrap() {
        // RFC 9293 §3.4: "This unsigned arithmetic preserves the
        // relationship of sequence numbers as they cycle from 2^32 - 1 to 0
        // again."
        assert!(s(MAX) < s(0));
        assert!(s(0) > s(MAX));
        assert!(s(MAX - 10) < s(5));
        assert!(s(5) > s(MAX - 10));
        assert!(s(5) <= s(5) && s(5) >= s(5));
        assert!(s(1) < s(2) && s(2) > s(1));
        // The farthest "ahead" that still orders.
        assert!(s(0) < s(HALF - 1));
        assert!(s(HALF - 1) > s(0));
        assert!(s(0) > s(HALF + 1));
        assert!(s(10) < s(10u32.wrapping_add(HALF - 1)));
    }

    #[test]
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // the point of the test
    fn numbers_exactly_half_the_space_apart_are_unordered() {
        // RFC 1982 §3.2: "there are some pairs of values s1 and s2 for which
        // s1 is not equal to s2, but for which s1 is neither greater than,
        // nor less than, s2."
        for a in [0, 1, HALF - 1, HALF, MAX] {
            let b = s(a.wrapping_add(HALF));
            let a = s(a);
            assert_eq!(a.partial_cmp(&b), None);
            assert_eq!(b.partial_cmp(&a), None);
            assert!(!(a < b) && !(a > b) && !(a <= b) && !(a >= b));
            assert_eq!(a.diff(b), i32::MIN);
            assert_eq!((a - b, b - a), (0, 0));
            assert_eq!((a.max(b), a.min(b)), (a, a));
        }
    }

    #[test]
    fn ordering_is_antisymmetric_everywhere() {
        // PartialOrd's contract: a < b iff b > a. Sweep distances around
        // the interesting points at several bases.
        let bases = [0, 1, 1000, HALF - 1, HALF, HALF + 1, MAX - 1, MAX];
        let dists = [0, 1, 2, HALF - 2, HALF - 1, HALF, HALF + 1, MAX - 1, MAX];
        for &a in &bases {
            for &d in &dists {
                let (x, y) = (s(a), s(a.wrapping_add(d)));
                assert_eq!(x < y, y > x, "{a} {d}");
                assert_eq!(x <= y, y >= x, "{a} {d}");
                assert_eq!(x == y, d == 0);
                assert!(!(x < y && y < x));
            }
        }
    }

    #[test]
    fn ordering_is_not_transitive_over_half_the_space() {
        // Documented limitation: walk around the circle in steps of 2^30.
        let q = 1u32 << 30;
        let (a, b, c, d) = (s(0), s(q), s(2 * q), s(3 * q));
        assert!(a < b && b < c && c < d && d < a);
    }

    #[test]
    fn arithmetic_wraps_modulo_2_32() {
        // RFC 9293 §3.4: "all arithmetic dealing with sequence numbers must
        // be performed modulo 2^32."
        assert_eq!(s(MAX) + 1, s(0));
        assert_eq!(s(MAX - 1) + 5, s(3));
        assert_eq!(s(3) - 5, s(MAX - 1));
        assert_eq!(s(0) - 1, s(MAX));
        assert_eq!(s(MAX).wrapping_add(2), s(1));
        let mut x = s(MAX);
        x += 2;
        assert_eq!(x, s(1));
        x -= 3;
        assert_eq!(x, s(MAX - 1));
        // A usize beyond 2^32 is reduced, not a panic.
        assert_eq!(s(7) + (1usize << 32), s(7));
        assert_eq!(s(7) - usize::MAX, s(8));
    }

    #[test]
    fn distance_saturates_at_zero_and_diff_keeps_the_sign() {
        assert_eq!(s(5) - s(MAX - 4), 10);
        assert_eq!(s(MAX - 4) - s(5), 0);
        assert_eq!(s(100) - s(100), 0);
        assert_eq!(s(HALF - 1) - s(0), (HALF - 1) as usize);
        assert_eq!(s(5).diff(s(MAX - 4)), 10);
        assert_eq!(s(MAX - 4).diff(s(5)), -10);
        assert_eq!(s(0).diff(s(HALF - 1)), -(i32::MAX));
    }

    #[test]
    fn max_and_min_follow_the_modular_order() {
        assert_eq!(s(MAX).max(s(3)), s(3));
        assert_eq!(s(3).max(s(MAX)), s(3));
        assert_eq!(s(MAX).min(s(3)), s(MAX));
        assert_eq!(s(3).min(s(MAX)), s(MAX));
        assert_eq!(s(9).max(s(9)), s(9));
    }

    #[test]
    fn in_window_is_half_open_across_the_wrap() {
        let start = s(MAX - 2);
        // start, MAX-1, MAX, 0, 1 are in a window of 5; 2 is not.
        for v in [MAX - 2, MAX - 1, MAX, 0, 1] {
            assert!(s(v).in_window(start, 5), "{v}");
        }
        for v in [2, 3, MAX - 3, HALF] {
            assert!(!s(v).in_window(start, 5), "{v}");
        }
        // An empty window holds nothing, not even its start.
        assert!(!start.in_window(start, 0));
        assert!(s(0).in_window(s(0), 1));
        assert!(!s(1).in_window(s(0), 1));
        // The largest window RFC 7323 allows, 2^30, ending past the wrap.
        let big = 1usize << 30;
        assert!(s(HALF + (1 << 30) - 1).in_window(s(HALF), big));
        assert!(!s(HALF + (1 << 30)).in_window(s(HALF), big));
        // No usize is too big.
        assert!(s(123).in_window(s(5), usize::MAX));
    }

    /// Each row of RFC 9293 §3.10.7.4: "There are four cases for the
    /// acceptability test for an incoming segment".
    #[test]
    fn zero_length_segment_in_zero_window_must_be_exactly_rcv_nxt() {
        // "0  0  SEG.SEQ = RCV.NXT"
        let nxt = s(MAX);
        assert!(segment_acceptable(nxt, 0, nxt, 0));
        assert!(!segment_acceptable(nxt + 1, 0, nxt, 0));
        assert!(!segment_acceptable(nxt - 1, 0, nxt, 0));
    }

    #[test]
    fn zero_length_segment_in_open_window_must_start_inside_it() {
        // "0  >0  RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND"
        let nxt = s(MAX - 1);
        assert!(segment_acceptable(nxt, 0, nxt, 10));
        assert!(segment_acceptable(nxt + 9, 0, nxt, 10));
        assert!(!segment_acceptable(nxt + 10, 0, nxt, 10));
        assert!(!segment_acceptable(nxt - 1, 0, nxt, 10));
    }

    #[test]
    fn data_in_zero_window_is_never_acceptable() {
        // ">0  0  not acceptable"
        let nxt = s(1000);
        assert!(!segment_acceptable(nxt, 1, nxt, 0));
        assert!(!segment_acceptable(nxt, 1460, nxt, 0));
        assert!(!segment_acceptable(nxt - 1, 2, nxt, 0));
    }

    #[test]
    fn data_in_open_window_is_acceptable_if_either_end_is_inside() {
        // ">0  >0  RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND or
        //          RCV.NXT =< SEG.SEQ+SEG.LEN-1 < RCV.NXT+RCV.WND"
        let nxt = s(MAX - 99); // window [MAX-99, MAX-99+200) straddles 0
        let wnd = 200;
        // Starts inside.
        assert!(segment_acceptable(nxt, 1, nxt, wnd));
        assert!(segment_acceptable(nxt + 199, 1000, nxt, wnd));
        // Starts before, ends inside (a retransmission overlapping new data).
        assert!(segment_acceptable(nxt - 50, 51, nxt, wnd));
        // Starts before, ends just before: a pure old duplicate.
        assert!(!segment_acceptable(nxt - 50, 50, nxt, wnd));
        // Starts just past the right edge.
        assert!(!segment_acceptable(nxt + 200, 1, nxt, wnd));
        // Starts before and ends past the window: neither end inside, so the
        // table says no, even though it covers the window.
        assert!(!segment_acceptable(nxt - 1, 202, nxt, wnd));
    }
}
