//! The sender's SACK scoreboard (RFC 2018 §5, RFC 6675 §3-4).
//!
//! Kept as sorted, merged ranges of SACKed sequence space rather than one
//! entry per segment. The ranges sit in a [`Tree`] (an AVL tree in a pool
//! reserved once, see its module for why) so that every update and query
//! costs O(log n) (amortised, for merges and the hole counter)
//! whatever the pattern of holes a receiver reports: a window of tens of
//! thousands of segments can have thousands of holes after one loss burst,
//! and a hostile receiver chooses where its blocks land.

use std::cell::Cell;

use super::seq::SeqNumber;
use super::tree::{Id, Tree};

/// Distinct SACKed ranges remembered at the least; the bound grows with
/// the peer's window (see [`Scoreboard::set_window`]). Past the bound new
/// isolated ranges are ignored, which only makes recovery more
/// conservative (SACK is advisory, RFC 2018 §8).
pub const MAX_RANGES: usize = 1024;

/// RFC 6675 §2: "DupThresh ... the number of duplicate acknowledgments ...
/// Currently, DupThresh is set to 3".
pub const DUP_THRESH: usize = 3;

/// Sequence numbers are modular (`SeqNumber` has no total order), so the
/// maps are keyed by the offset from an anchor that stays at or below
/// every live range. A window is below 2^30 (RFC 7323 §2.3), so an anchor
/// put 2^30 below the first range is at or below SND.UNA / RCV.NXT, hence
/// below everything that can be added until the anchor moves.
pub(crate) const ANCHOR_LAG: u32 = 1 << 30;
/// The anchor moves up once the cumulative point is this far past it, so
/// that live offsets (cumulative point + window) stay below [`BEHIND`].
/// Moving rekeys every range, O(n), but only once per 2^30 bytes of
/// progress.
pub(crate) const REBASE_AT: u32 = 1 << 31;
/// Offsets at or above this are sequence numbers behind the anchor (they
/// wrapped), not far ahead of it.
pub(crate) const BEHIND: u32 = REBASE_AT + ANCHOR_LAG;

/// The ranges sit in a [`Tree`] whose pool is reserved to the range bound
/// on the first SACK: a connection that never sees one holds nothing, and
/// no ACK allocates after it.
#[derive(Debug, Default)]
pub struct Scoreboard {
    /// Left edge offset to right edge offset. Ranges never touch: adding
    /// merges touching ones, and only the first is ever trimmed.
    ranges: Tree<u32>,
    anchor: SeqNumber,
    sacked: usize,
    /// Bound on ranges, 0 until [`Scoreboard::set_window`]: [`MAX_RANGES`].
    max_ranges: usize,
    /// (offset, SACKed bytes below it): where the last [`hole_bytes`] query
    /// that needed a partial sum stopped. Its callers' points (HighRxt,
    /// SND.NXT going back) move mostly upward, so moving the probe from
    /// there visits each range about once per recovery instead of every
    /// range on every ACK. Kept exact by every update, O(1) each.
    ///
    /// [`hole_bytes`]: Scoreboard::hole_bytes
    probe: Cell<(u32, usize)>,
}

/// The part of `[l, r)` below `p`.
fn below(l: u32, r: u32, p: u32) -> usize {
    r.min(p).saturating_sub(l) as usize
}

impl Scoreboard {
    /// Forgets everything; the pool is kept for the next recovery.
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.sacked = 0;
        self.probe.set((0, 0));
    }

    /// Forgets everything and gives the memory back.
    pub fn release(&mut self) {
        self.clear();
        self.ranges.release();
    }

    /// Scales the range bound to what can be in flight: a receiver SACKs
    /// whole segments with a missing one between two ranges, so `wnd`
    /// bytes describe at most `wnd / (2 * smss)` ranges; `wnd / smss`
    /// leaves room for odd-sized segments (a re-packetised retransmission,
    /// the tail). The pool is reserved to the bound on the first SACK (24
    /// bytes a node, so under 2 % of `wnd` at a 1448-byte SMSS); a bound
    /// that grows later takes effect when the scoreboard is next empty, so
    /// give the largest `wnd` that can be in flight (the send buffer) to
    /// reserve once.
    pub fn set_window(&mut self, wnd: usize, smss: usize) {
        self.max_ranges = self.max_ranges.max(wnd / smss.max(1));
    }

    fn limit(&self) -> usize {
        self.max_ranges.max(MAX_RANGES)
    }

    fn off(&self, s: SeqNumber) -> u32 {
        s.0.wrapping_sub(self.anchor.0)
    }

    fn seq(&self, off: u32) -> SeqNumber {
        self.anchor.wrapping_add(off)
    }

    /// The offset of a query point; a point behind the anchor is below
    /// every range, like offset 0.
    fn query(&self, s: SeqNumber) -> Option<u32> {
        let o = self.off(s);
        (o < BEHIND).then_some(o)
    }

    /// Moves the anchor up to `to` (at or below every range): shifting
    /// every key alike keeps their order, so only the keys change. The
    /// callers do it once per 2^30 bytes.
    fn rebase(&mut self, to: SeqNumber) {
        let d = self.off(to);
        self.ranges.shift_down(d, |right| *right -= d);
        let (p, s) = self.probe.get();
        self.probe.set(if p < d { (0, 0) } else { (p - d, s) });
        self.anchor = to;
    }

    /// The range with id `id`, as offsets.
    fn at(&self, id: Id) -> (u32, u32) {
        (self.ranges.key(id), self.ranges.val(id))
    }

    /// Just past the highest octet SACKed.
    pub fn highest_sacked(&self) -> Option<SeqNumber> {
        self.ranges.last().map(|id| self.seq(self.ranges.val(id)))
    }

    /// Nothing above SND.UNA is SACKed.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    #[cfg(test)]
    pub fn sacked_bytes(&self) -> usize {
        self.sacked
    }

    #[cfg(test)]
    pub fn anchor(&self) -> SeqNumber {
        self.anchor
    }

    #[cfg(test)]
    pub fn ranges(&self) -> usize {
        self.ranges.len()
    }

    /// Forgets what the cumulative ACK `una` now covers.
    #[inline]
    pub fn on_cumulative_ack(&mut self, una: SeqNumber) {
        // Every ACK asks; keep the common empty case inlined.
        if !self.ranges.is_empty() {
            self.trim(una);
        }
    }

    fn trim(&mut self, una: SeqNumber) {
        let Some(u) = self.query(una) else { return };
        let (p, mut ps) = self.probe.get();
        while let Some(id) = self.ranges.first() {
            let (l, r) = self.at(id);
            if r <= u {
                self.sacked -= (r - l) as usize;
                ps -= below(l, r, p);
                self.ranges.remove(id);
            } else {
                if l < u {
                    self.sacked -= (u - l) as usize;
                    ps -= below(l, u, p);
                    // Still below the next range's left edge.
                    self.ranges.set_key(id, u);
                }
                break;
            }
        }
        self.probe.set((p, ps));
        if u >= REBASE_AT && !self.ranges.is_empty() {
            self.rebase(una);
        }
    }

    /// Records a block already checked to lie in (una, snd_max]. Returns
    /// the bytes newly SACKed.
    pub fn add(&mut self, left: SeqNumber, right: SeqNumber) -> usize {
        if right <= left {
            return 0;
        }
        if self.ranges.is_empty() {
            self.anchor = left - ANCHOR_LAG as usize;
            self.probe.set((0, 0));
            self.ranges.reserve(self.limit());
        }
        let (lo, ro) = (self.off(left), self.off(right));
        if lo >= BEHIND || ro >= BEHIND || ro <= lo {
            // Outside what the anchor can describe: the caller's checks
            // make this unreachable; ignoring a block is always safe.
            return 0;
        }
        // The first range the block touches: the one at or before `left`
        // if it reaches `left`, else the next one if it starts by `right`.
        let mut l = lo;
        let mut r = ro;
        let start = match self.ranges.floor(lo) {
            Some(p) if self.ranges.val(p) >= lo => {
                l = self.ranges.key(p);
                r = r.max(self.ranges.val(p));
                Some(p)
            }
            Some(p) => self.ranges.next(p),
            None => self.ranges.first(),
        }
        .filter(|&id| self.ranges.key(id) <= r);
        let (p, mut ps) = self.probe.get();
        let Some(keep) = start else {
            // An isolated range; past the bound (or a pool reserved before
            // the bound grew) it is ignored.
            if self.ranges.len() >= self.limit() || self.ranges.insert(lo, ro).is_none() {
                return 0;
            }
            let len = (ro - lo) as usize;
            self.sacked += len;
            self.probe.set((p, ps + below(lo, ro, p)));
            return len;
        };
        // The first range touched becomes the merged one in place (its new
        // left edge is still past its predecessor's right edge), and those
        // it reaches are merged away. Each range is merged away once after
        // it is made: amortised O(1) removals per add.
        let (a, b) = self.at(keep);
        let mut covered = (b - a) as usize;
        ps -= below(a, b, p);
        r = r.max(b);
        while let Some(id) = self.ranges.next(keep) {
            let (a, b) = self.at(id);
            if a > r {
                break;
            }
            self.ranges.remove(id);
            covered += (b - a) as usize;
            ps -= below(a, b, p);
            r = r.max(b);
        }
        self.ranges.set_key(keep, l);
        *self.ranges.val_mut(keep) = r;
        let len = (r - l) as usize;
        self.sacked = self.sacked - covered + len;
        self.probe.set((p, ps + below(l, r, p)));
        len - covered
    }

    pub fn is_sacked(&self, seq: SeqNumber) -> bool {
        let Some(o) = self.query(seq) else {
            return false;
        };
        self.ranges
            .floor(o)
            .is_some_and(|id| o < self.ranges.val(id))
    }

    /// RFC 6675 §4 IsLost, for every sequence number below the returned
    /// edge: "DupThresh discontiguous SACKed sequences" above it, or "more
    /// than (DupThresh - 1) * SMSS bytes with sequence numbers greater than
    /// SeqNum have been SACKed". Ranges stand in for segments. Visits at
    /// most DupThresh ranges from the top.
    pub fn lost_edge(&self, smss: usize) -> Option<SeqNumber> {
        let mut bytes = 0;
        let mut cur = self.ranges.last();
        let mut count = 0;
        while let Some(id) = cur {
            let (l, r) = self.at(id);
            bytes += (r - l) as usize;
            count += 1;
            if count >= DUP_THRESH || bytes > (DUP_THRESH - 1) * smss {
                return Some(self.seq(l));
            }
            cur = self.ranges.prev(id);
        }
        None
    }

    /// The first un-SACKed stretch at or after `from` and below `limit`.
    pub fn next_hole(&self, from: SeqNumber, limit: SeqNumber) -> Option<(SeqNumber, SeqNumber)> {
        let mut cursor = from;
        let next = match self.query(from) {
            // Behind the anchor: below every range.
            None => self.ranges.first(),
            Some(f) => match self.ranges.floor(f) {
                Some(id) if self.ranges.val(id) > f => {
                    cursor = self.seq(self.ranges.val(id));
                    // Ranges never touch, so the next one starts past it.
                    self.ranges.next(id)
                }
                Some(id) => self.ranges.next(id),
                None => self.ranges.first(),
            },
        };
        match next {
            Some(id) => {
                let end = self.seq(self.ranges.key(id)).min(limit);
                (cursor < end).then_some((cursor, end))
            }
            None => (cursor < limit).then_some((cursor, limit)),
        }
    }

    /// SACKed bytes below offset `x`. Walks from the probe and from the
    /// top in lockstep and stops at whichever reaches `x` first: the cost
    /// is twice the ranges between `x` and the nearer of the two. SetPipe's
    /// points are near one or the other: IsLost's edge is within DupThresh
    /// ranges of the top, and HighRxt / SND.NXT move up from where the
    /// probe last stopped.
    fn sacked_below(&self, x: u32) -> usize {
        match (self.ranges.first(), self.ranges.last()) {
            (Some(f), Some(t)) => {
                if x <= self.ranges.key(f) {
                    return 0;
                }
                if x >= self.ranges.val(t) {
                    return self.sacked;
                }
            }
            _ => return 0,
        }
        let (p, mut s) = self.probe.get();
        let up = x > p;
        let (lo, hi) = if up { (p, x) } else { (x, p) };
        let mut mid = self.ranges.lower(hi);
        let mut top = self.ranges.last();
        let mut above = 0;
        loop {
            match mid.map(|id| (id, self.at(id))) {
                Some((id, (l, r))) if r > lo => {
                    let d = (r.min(hi) - l.max(lo)) as usize;
                    if up {
                        s += d;
                    } else {
                        s -= d;
                    }
                    mid = self.ranges.prev(id);
                }
                _ => {
                    self.probe.set((x, s));
                    return s;
                }
            }
            match top.map(|id| (id, self.at(id))) {
                Some((id, (l, r))) if r > x => {
                    above += (r - l.max(x)) as usize;
                    top = self.ranges.prev(id);
                }
                _ => return self.sacked - above,
            }
        }
    }

    /// Un-SACKed bytes in `[from, to)`. O(log n) when `[from, to)` reaches
    /// past both ends of the scoreboard (SetPipe's `[SND.UNA, SND.MAX)`);
    /// otherwise amortised through the probe.
    pub fn hole_bytes(&self, from: SeqNumber, to: SeqNumber) -> usize {
        if to <= from {
            return 0;
        }
        let span = to - from;
        if self.ranges.is_empty() {
            return span;
        }
        let Some(t) = self.query(to) else {
            // Both behind every range.
            return span;
        };
        let f = self.query(from).unwrap_or(0);
        span - (self.sacked_below(t) - self.sacked_below(f))
    }
}

/// The Vec scoreboard this one replaced, kept as the model the tests
/// compare against: below [`MAX_RANGES`] ranges both must agree on
/// everything.
#[cfg(test)]
pub(crate) mod reference {
    use super::{SeqNumber, DUP_THRESH, MAX_RANGES};

    #[derive(Debug, Default)]
    pub struct VecScoreboard {
        ranges: Vec<(SeqNumber, SeqNumber)>,
        sacked: usize,
    }

    impl VecScoreboard {
        pub fn clear(&mut self) {
            self.ranges.clear();
            self.sacked = 0;
        }

        /// Just past the highest octet SACKed.
        pub fn highest_sacked(&self) -> Option<SeqNumber> {
            self.ranges.last().map(|r| r.1)
        }

        /// Nothing above SND.UNA is SACKed.
        pub fn is_empty(&self) -> bool {
            self.ranges.is_empty()
        }

        pub fn sacked_bytes(&self) -> usize {
            self.sacked
        }

        /// Forgets what the cumulative ACK `una` now covers.
        pub fn on_cumulative_ack(&mut self, una: SeqNumber) {
            while let Some(&(l, r)) = self.ranges.first() {
                if r <= una {
                    self.sacked -= r - l;
                    self.ranges.remove(0);
                } else {
                    if l < una {
                        self.sacked -= una - l;
                        self.ranges[0].0 = una;
                    }
                    break;
                }
            }
        }

        /// Records a block already checked to lie in (una, snd_max]. Returns
        /// the bytes newly SACKed.
        pub fn add(&mut self, left: SeqNumber, right: SeqNumber) -> usize {
            if right <= left {
                return 0;
            }
            let start = self
                .ranges
                .iter()
                .position(|r| r.1 >= left)
                .unwrap_or(self.ranges.len());
            let mut end = start;
            let (mut l, mut r) = (left, right);
            let mut covered = 0;
            while end < self.ranges.len() && self.ranges[end].0 <= r {
                l = l.min(self.ranges[end].0);
                r = r.max(self.ranges[end].1);
                covered += self.ranges[end].1 - self.ranges[end].0;
                end += 1;
            }
            if end == start && self.ranges.len() >= MAX_RANGES {
                return 0;
            }
            let new = (r - l) - covered;
            self.sacked = self.sacked - covered + (r - l);
            self.ranges.drain(start..end);
            self.ranges.insert(start, (l, r));
            new
        }

        pub fn is_sacked(&self, seq: SeqNumber) -> bool {
            self.ranges.iter().any(|&(l, r)| l <= seq && seq < r)
        }

        /// RFC 6675 §4 IsLost, for every sequence number below the returned
        /// edge: "DupThresh discontiguous SACKed sequences" above it, or "more
        /// than (DupThresh - 1) * SMSS bytes with sequence numbers greater than
        /// SeqNum have been SACKed". Ranges stand in for segments.
        pub fn lost_edge(&self, smss: usize) -> Option<SeqNumber> {
            let mut bytes = 0;
            for (count, &(l, r)) in self.ranges.iter().rev().enumerate() {
                bytes += r - l;
                if count + 1 >= DUP_THRESH || bytes > (DUP_THRESH - 1) * smss {
                    return Some(l);
                }
            }
            None
        }

        /// The first un-SACKed stretch at or after `from` and below `limit`.
        pub fn next_hole(
            &self,
            from: SeqNumber,
            limit: SeqNumber,
        ) -> Option<(SeqNumber, SeqNumber)> {
            let mut cursor = from;
            for &(l, r) in &self.ranges {
                if r <= cursor {
                    continue;
                }
                if l > cursor {
                    let end = l.min(limit);
                    return (cursor < end).then_some((cursor, end));
                }
                cursor = r;
            }
            (cursor < limit).then_some((cursor, limit))
        }

        /// Un-SACKed bytes in `[from, to)`.
        pub fn hole_bytes(&self, from: SeqNumber, to: SeqNumber) -> usize {
            if to <= from {
                return 0;
            }
            let mut sacked = 0;
            for &(l, r) in &self.ranges {
                let a = l.max(from);
                let b = r.min(to);
                if a < b {
                    sacked += b - a;
                }
            }
            (to - from) - sacked
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: u32) -> SeqNumber {
        SeqNumber(v)
    }

    #[test]
    fn blocks_merge_and_cumulative_ack_trims() {
        let mut sb = Scoreboard::default();
        assert_eq!(sb.add(s(200), s(300)), 100);
        assert_eq!(sb.add(s(250), s(400)), 100);
        assert_eq!(sb.add(s(500), s(600)), 100);
        assert_eq!(sb.sacked_bytes(), 300);
        assert_eq!(sb.next_hole(s(100), s(700)), Some((s(100), s(200))));
        assert_eq!(sb.next_hole(s(200), s(700)), Some((s(400), s(500))));
        assert_eq!(sb.next_hole(s(500), s(600)), None);
        assert_eq!(sb.hole_bytes(s(100), s(700)), 300);
        sb.on_cumulative_ack(s(350));
        assert_eq!(sb.sacked_bytes(), 150);
        assert!(!sb.is_sacked(s(349)) && sb.is_sacked(s(350)));
    }

    #[test]
    fn is_lost_needs_dupthresh_segments_sacked_above() {
        // RFC 6675 §4: IsLost (SeqNum) "returns true if either DupThresh
        // discontiguous SACKed sequences have arrived above 'SeqNum' or more
        // than (DupThresh - 1) * SMSS bytes with sequence numbers greater
        // than 'SeqNum' have been SACKed."
        let mut sb = Scoreboard::default();
        sb.add(s(1100), s(2100));
        assert_eq!(sb.lost_edge(1000), None);
        // Exactly 2 * SMSS is not "more than".
        sb.add(s(2100), s(3100));
        assert_eq!(sb.lost_edge(1000), None);
        sb.add(s(3100), s(3101));
        assert_eq!(sb.lost_edge(1000), Some(s(1100)));
        let mut sb = Scoreboard::default();
        for i in 0..3 {
            sb.add(s(1000 + i * 200), s(1100 + i * 200));
        }
        assert_eq!(sb.lost_edge(1000), Some(s(1000)));
    }

    use super::reference::VecScoreboard;
    use crate::tcp::buffer::tests::Rng;

    fn check(sb: &Scoreboard, m: &VecScoreboard, g: &mut Rng, una: SeqNumber, max: SeqNumber) {
        assert_eq!(sb.is_empty(), m.is_empty());
        assert_eq!(sb.sacked_bytes(), m.sacked_bytes());
        assert_eq!(sb.highest_sacked(), m.highest_sacked());
        for smss in [1, 10, 100, 1000] {
            assert_eq!(sb.lost_edge(smss), m.lost_edge(smss));
        }
        let span = (max - una) as u64 + 10;
        let pick = |g: &mut Rng| una - 5usize + g.below(span) as usize;
        for _ in 0..4 {
            let x = pick(g);
            assert_eq!(sb.is_sacked(x), m.is_sacked(x), "is_sacked {x}");
            let (f, l) = (pick(g), pick(g));
            assert_eq!(sb.next_hole(f, l), m.next_hole(f, l), "next_hole {f} {l}");
            assert_eq!(
                sb.hole_bytes(f, l),
                m.hole_bytes(f, l),
                "hole_bytes {f} {l}"
            );
            assert_eq!(sb.hole_bytes(una, l), m.hole_bytes(una, l));
        }
        assert_eq!(sb.hole_bytes(una, max), m.hole_bytes(una, max));
    }

    #[test]
    fn scoreboard_matches_the_vec_model_below_its_bound() {
        for seed in 1..=3000u64 {
            let mut g = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let big = seed % 4 == 0;
            let maxlen: u64 = if big { 1 << 27 } else { 400 };
            let mut sb = Scoreboard::default();
            let mut m = VecScoreboard::default();
            let mut una = SeqNumber(g.next() as u32);
            let mut max = una + 1 + g.below(maxlen * 4) as usize;
            for _ in 0..300 {
                match g.below(20) {
                    0..=11 => {
                        let room = (max - una) as u64;
                        let l = una + g.below(room) as usize;
                        let r = l + g.below((max - l) as u64 + 1).min(maxlen) as usize;
                        assert_eq!(sb.add(l, r), m.add(l, r), "seed {seed}");
                    }
                    12..=15 => {
                        // A window stays below 2^30.
                        let room = (1u64 << 29) - (max - una) as u64;
                        max += g.below(room.min(maxlen * 2)) as usize;
                    }
                    16..=18 => {
                        una += g.below((max - una) as u64 + 1) as usize;
                        sb.on_cumulative_ack(una);
                        m.on_cumulative_ack(una);
                    }
                    _ => {
                        sb.clear();
                        m.clear();
                    }
                }
                check(&sb, &m, &mut g, una, max);
            }
        }
    }

    /// The scoreboard's answers from a plain byte set of offsets.
    struct Bytes {
        set: Vec<bool>,
    }
    impl Bytes {
        fn runs(&self) -> Vec<(usize, usize)> {
            let mut out = Vec::new();
            let mut i = 0;
            while i < self.set.len() {
                if self.set[i] {
                    let l = i;
                    while i < self.set.len() && self.set[i] {
                        i += 1;
                    }
                    out.push((l, i));
                } else {
                    i += 1;
                }
            }
            out
        }
        fn next_hole(&self, from: usize, limit: usize) -> Option<(usize, usize)> {
            let l = (from..limit).find(|&i| !self.set[i])?;
            let r = (l..limit).find(|&i| self.set[i]).unwrap_or(limit);
            Some((l, r))
        }
    }

    #[test]
    fn scoreboard_matches_a_byte_set_past_the_old_bound() {
        for seed in 1..=10u64 {
            let mut g = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            const W: usize = 40_000;
            let base = SeqNumber(g.next() as u32);
            let mut sb = Scoreboard::default();
            sb.set_window(W, 1);
            let mut b = Bytes {
                set: vec![false; W],
            };
            let mut una = 0;
            let mut most = 0;
            for step in 0..6000 {
                if g.below(200) == 0 {
                    una += g.below(300) as usize;
                    sb.on_cumulative_ack(base + una);
                    b.set[..una].fill(false);
                } else {
                    let l = una + g.below((W - una) as u64 - 8) as usize;
                    let len = 1 + g.below(6) as usize;
                    let new = (l..l + len).filter(|&i| !b.set[i]).count();
                    assert_eq!(sb.add(base + l, base + l + len), new);
                    b.set[l..l + len].fill(true);
                }
                if step % 53 == 0 {
                    let rs = b.runs();
                    most = most.max(rs.len());
                    assert_eq!(sb.ranges(), rs.len());
                    let top = rs.last().map(|r| base + r.1);
                    assert_eq!(sb.highest_sacked(), top);
                    // RFC 6675 IsLost over ranges: the DupThresh-th range
                    // from the top, or the one where more than 2 SMSS are
                    // SACKed above.
                    let smss = 5;
                    let mut bytes = 0;
                    let mut edge = None;
                    for (c, &(l, r)) in rs.iter().rev().enumerate() {
                        bytes += r - l;
                        if c + 1 >= DUP_THRESH || bytes > (DUP_THRESH - 1) * smss {
                            edge = Some(base + l);
                            break;
                        }
                    }
                    assert_eq!(sb.lost_edge(smss), edge);
                    for _ in 0..20 {
                        let f = una + g.below((W - una) as u64) as usize;
                        let t = f + g.below((W - f) as u64) as usize;
                        let holes = (f..t).filter(|&i| !b.set[i]).count();
                        assert_eq!(sb.hole_bytes(base + f, base + t), holes);
                        assert_eq!(sb.is_sacked(base + f), b.set[f]);
                        let want = b.next_hole(f, t).map(|(l, r)| (base + l, base + r));
                        assert_eq!(sb.next_hole(base + f, base + t), want);
                    }
                }
            }
            assert!(most > 2 * MAX_RANGES, "only {most} ranges");
        }
    }

    #[test]
    fn twenty_thousand_sacked_ranges() {
        const N: usize = 20_000;
        let una = SeqNumber(u32::MAX - 1_000_000);
        let mut sb = Scoreboard::default();
        sb.set_window(2 * N * 1448, 1448);
        for k in (0..N).rev() {
            let l = una + (2 * k + 1) * 1448;
            assert_eq!(sb.add(l, l + 1448), 1448);
        }
        assert_eq!(sb.ranges(), N);
        let max = una + 2 * N * 1448;
        assert_eq!(sb.hole_bytes(una, max), N * 1448);
        assert_eq!(sb.lost_edge(1448), Some(una + (2 * N - 5) * 1448));
        // Walking the holes the way recovery does: each in O(log n).
        let mut cursor = una;
        for k in 0..N {
            let (l, r) = sb.next_hole(cursor, max).unwrap();
            assert_eq!((l, r), (una + 2 * k * 1448, una + (2 * k + 1) * 1448));
            assert_eq!(sb.hole_bytes(l, max), (N - k) * 1448);
            cursor = r;
        }
        assert_eq!(sb.next_hole(cursor, max), None);
        sb.on_cumulative_ack(una + N * 1448);
        assert_eq!(sb.ranges(), N / 2);
        sb.release();
        assert!(sb.is_empty());
    }

    #[test]
    fn hostile_one_byte_blocks_stay_within_the_bound() {
        let mut sb = Scoreboard::default();
        sb.set_window(1 << 20, 1448);
        let una = SeqNumber(12345);
        for k in (0..3 * MAX_RANGES).rev() {
            sb.add(una + 2 * k + 1, una + 2 * k + 2);
            assert!(sb.ranges() <= MAX_RANGES);
        }
        assert_eq!(sb.ranges(), MAX_RANGES);
    }
}
