//! The sender's SACK scoreboard (RFC 2018 §5, RFC 6675 §3-4).
//!
//! Kept as sorted, merged ranges of SACKed sequence space rather than one
//! entry per segment, so its size is bounded by [`MAX_RANGES`] whatever the
//! window, and updating it never allocates.

use super::seq::SeqNumber;

/// Distinct SACKed ranges remembered. A receiver reports at most 4 a
/// segment; past this bound new isolated ranges are ignored, which only
/// makes recovery more conservative (SACK is advisory, RFC 2018 §8). As
/// large as the receiver's out-of-order bound, so a large lossy window is
/// fully described.
pub const MAX_RANGES: usize = 1024;

/// RFC 6675 §2: "DupThresh ... the number of duplicate acknowledgments ...
/// Currently, DupThresh is set to 3".
pub const DUP_THRESH: usize = 3;

/// Ranges grow on the first SACK, up to [`MAX_RANGES`]: a connection
/// that never sees one holds nothing.
#[derive(Debug, Default)]
pub struct Scoreboard {
    ranges: Vec<(SeqNumber, SeqNumber)>,
    sacked: usize,
}

impl Scoreboard {
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.sacked = 0;
    }

    /// Forgets everything and gives the memory back.
    pub fn release(&mut self) {
        self.ranges = Vec::new();
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

    #[cfg(test)]
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
    pub fn next_hole(&self, from: SeqNumber, limit: SeqNumber) -> Option<(SeqNumber, SeqNumber)> {
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
}
