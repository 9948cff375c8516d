//! The sender's SACK scoreboard (RFC 2018 §5, RFC 6675 §3-4).
//!
//! Kept as sorted, merged ranges of SACKed sequence space rather than one
//! entry per segment. The ranges sit in a `BTreeMap` so that every update
//! and query costs O(log n) (amortised, for merges and the hole counter)
//! whatever the pattern of holes a receiver reports: a window of tens of
//! thousands of segments can have thousands of holes after one loss burst,
//! and a hostile receiver chooses where its blocks land.

use std::cell::Cell;
use std::collections::BTreeMap;

use super::seq::SeqNumber;

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

/// Ranges are allocated on the first SACK, up to the bound: a connection
/// that never sees one holds nothing (an empty `BTreeMap` allocates
/// nothing).
#[derive(Debug, Default)]
pub struct Scoreboard {
    /// Left edge offset to right edge offset. Ranges never touch: adding
    /// merges touching ones, and only the first is ever trimmed.
    ranges: BTreeMap<u32, u32>,
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
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.sacked = 0;
        self.probe.set((0, 0));
    }

    /// Forgets everything and gives the memory back.
    pub fn release(&mut self) {
        self.ranges = BTreeMap::new();
        self.sacked = 0;
        self.probe.set((0, 0));
    }

    /// Scales the range bound to the window the peer offers: a receiver
    /// SACKs whole segments with a missing one between two ranges, so a
    /// window of `wnd` bytes describes at most `wnd / (2 * smss)` ranges;
    /// `wnd / smss` leaves room for odd-sized segments (a re-packetised
    /// retransmission, the tail). Memory stays proportional to the send
    /// buffer: one entry (~40 bytes with the tree's overhead) per SMSS.
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

    /// Moves the anchor up to `to` (at or below every range): rekeys all,
    /// which the callers do once per 2^30 bytes.
    fn rebase(&mut self, to: SeqNumber) {
        let d = self.off(to);
        self.ranges = std::mem::take(&mut self.ranges)
            .into_iter()
            .map(|(l, r)| (l - d, r - d))
            .collect();
        let (p, s) = self.probe.get();
        self.probe.set(if p < d { (0, 0) } else { (p - d, s) });
        self.anchor = to;
    }

    /// Just past the highest octet SACKed.
    pub fn highest_sacked(&self) -> Option<SeqNumber> {
        self.ranges.last_key_value().map(|(_, &r)| self.seq(r))
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
        while let Some((&l, &r)) = self.ranges.first_key_value() {
            if r <= u {
                self.sacked -= (r - l) as usize;
                ps -= below(l, r, p);
                self.ranges.pop_first();
            } else {
                if l < u {
                    self.sacked -= (u - l) as usize;
                    ps -= below(l, u, p);
                    self.ranges.pop_first();
                    self.ranges.insert(u, r);
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
        }
        let (lo, ro) = (self.off(left), self.off(right));
        if lo >= BEHIND || ro >= BEHIND || ro <= lo {
            // Outside what the anchor can describe: the caller's checks
            // make this unreachable; ignoring a block is always safe.
            return 0;
        }
        // The first range whose right edge reaches `left`: the one at or
        // before it if that one reaches, else the next one.
        let mut l = lo;
        let mut r = ro;
        let pred = self.ranges.range(..=lo).next_back().map(|(&a, &b)| (a, b));
        let touches = pred.is_some_and(|(_, b)| b >= lo)
            || self
                .ranges
                .range(lo..)
                .next()
                .is_some_and(|(&a, _)| a <= ro);
        if !touches && self.ranges.len() >= self.limit() {
            return 0;
        }
        if let Some((a, b)) = pred.filter(|&(_, b)| b >= lo) {
            l = a;
            r = r.max(b);
        }
        let (p, mut ps) = self.probe.get();
        let mut covered = 0;
        // Each range is merged away once after it is made: amortised O(1)
        // removals per add.
        while let Some((&a, &b)) = self.ranges.range(l..).next() {
            if a > r {
                break;
            }
            self.ranges.remove(&a);
            covered += (b - a) as usize;
            ps -= below(a, b, p);
            r = r.max(b);
        }
        let len = (r - l) as usize;
        self.sacked = self.sacked - covered + len;
        self.probe.set((p, ps + below(l, r, p)));
        self.ranges.insert(l, r);
        len - covered
    }

    pub fn is_sacked(&self, seq: SeqNumber) -> bool {
        let Some(o) = self.query(seq) else {
            return false;
        };
        self.ranges
            .range(..=o)
            .next_back()
            .is_some_and(|(_, &r)| o < r)
    }

    /// RFC 6675 §4 IsLost, for every sequence number below the returned
    /// edge: "DupThresh discontiguous SACKed sequences" above it, or "more
    /// than (DupThresh - 1) * SMSS bytes with sequence numbers greater than
    /// SeqNum have been SACKed". Ranges stand in for segments. Visits at
    /// most DupThresh ranges from the top.
    pub fn lost_edge(&self, smss: usize) -> Option<SeqNumber> {
        let mut bytes = 0;
        for (count, (&l, &r)) in self.ranges.iter().rev().enumerate() {
            bytes += (r - l) as usize;
            if count + 1 >= DUP_THRESH || bytes > (DUP_THRESH - 1) * smss {
                return Some(self.seq(l));
            }
        }
        None
    }

    /// The first un-SACKed stretch at or after `from` and below `limit`.
    pub fn next_hole(&self, from: SeqNumber, limit: SeqNumber) -> Option<(SeqNumber, SeqNumber)> {
        let mut cursor = from;
        let next = match self.query(from) {
            // Behind the anchor: below every range.
            None => self.ranges.first_key_value(),
            Some(f) => {
                let pred = self.ranges.range(..=f).next_back();
                match pred {
                    Some((_, &r)) if r > f => {
                        cursor = self.seq(r);
                        // Ranges never touch, so the next one starts past r.
                        self.ranges.range(r..).next()
                    }
                    _ => self.ranges.range(f..).next(),
                }
            }
        };
        match next {
            Some((&l, _)) => {
                let end = self.seq(l).min(limit);
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
        match (self.ranges.first_key_value(), self.ranges.last_key_value()) {
            (Some((&first, _)), Some((_, &top))) => {
                if x <= first {
                    return 0;
                }
                if x >= top {
                    return self.sacked;
                }
            }
            _ => return 0,
        }
        let (p, mut s) = self.probe.get();
        let up = x > p;
        let (lo, hi) = if up { (p, x) } else { (x, p) };
        let mut mid = self.ranges.range(..hi).rev();
        let mut top = self.ranges.iter().rev();
        let mut above = 0;
        loop {
            match mid.next() {
                Some((&l, &r)) if r > lo => {
                    let d = (r.min(hi) - l.max(lo)) as usize;
                    if up {
                        s += d;
                    } else {
                        s -= d;
                    }
                }
                _ => {
                    self.probe.set((x, s));
                    return s;
                }
            }
            match top.next() {
                Some((&l, &r)) if r > x => above += (r - l.max(x)) as usize,
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
