//! Delivery-rate sampling (draft-cheng-iccrg-delivery-rate-estimation-02),
//! packet-timed rounds and loss accounting: the per-segment send state the
//! congestion controllers read through [`AckSample`](super::cc::AckSample).
//!
//! Every transmission of a stretch of sequence space is a [`SendRecord`]
//! holding what the connection had delivered when it left. When an ACK (or
//! a SACK block) delivers it, the bytes delivered since, over the time
//! since, is a delivery rate that no queue between the ends can inflate:
//! the interval is the longer of the send and the ACK spans (§3.3). The
//! records live in one ring ordered by sequence number and covering
//! exactly [SND.UNA, SND.MAX): a retransmission updates the records it
//! covers instead of adding any, so their number is bounded by what is in
//! flight, and a connection with nothing in flight holds none.
//!
//! A burst of equal segments sent at one instant shares one record, as a
//! TSO super-packet shares one skb in Linux: every field but the in-flight
//! count is the same for all of them, and that one grows by a segment per
//! segment. The record remembers the segment size, and every operation that
//! must see single segments (a SACK block, a loss edge, a resend) first
//! splits it on the segment grid, which is anchored at the record's end (a
//! partial ACK trims only the front). So the answers are exactly those of
//! one record per segment -- a test holds the two side by side -- while a
//! bulk flow's ACK walks one record instead of dozens.

use std::collections::VecDeque;

use super::cc::RateSample;
use super::seq::SeqNumber;
use crate::time::{Duration, Instant};

/// The send state of one transmitted stretch (the draft's per-packet
/// P.delivered, P.delivered_time, P.first_sent_time, P.is_app_limited).
#[derive(Copy, Clone, Debug)]
struct SendRecord {
    start: SeqNumber,
    end: SeqNumber,
    sent: Instant,
    delivered: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
    app_limited: bool,
    tx_in_flight: usize,
    lost_at_send: u64,
    retransmitted: bool,
    sacked: bool,
    lost: bool,
    /// The size of each segment the record covers; its segment boundaries
    /// are `end - k * seg`.
    seg: u32,
}

impl SendRecord {
    /// The record cut to end at `end` (a boundary inside it), with the
    /// in-flight count its last segment left with.
    fn head(&self, end: SeqNumber) -> SendRecord {
        SendRecord {
            end,
            tx_in_flight: self.tx_in_flight.saturating_sub(self.end - end),
            ..*self
        }
    }

    /// The segment boundary nearest `x` inside (start, end), rounding up
    /// or down; None if there is none, or if `x` is already at an edge.
    fn boundary(&self, x: SeqNumber, up: bool) -> Option<SeqNumber> {
        if x <= self.start || x >= self.end {
            return None;
        }
        let seg = self.seg as usize;
        let back = self.end - x;
        // Boundaries are end - k*seg: rounding x up means fewer segments
        // back from the end, rounding down more.
        let k = if up { back / seg } else { back.div_ceil(seg) };
        let b = self.end - k * seg;
        (b > self.start && b < self.end).then_some(b)
    }
}

/// The state the draft keeps per connection (C.delivered, C.lost, ...).
#[derive(Debug, Default)]
pub struct RateSampler {
    recs: VecDeque<SendRecord>,
    delivered: u64,
    delivered_time: Option<Instant>,
    first_sent_time: Option<Instant>,
    /// C.app_limited: the delivered count at which the current app-limited
    /// phase ends (0 when not app limited).
    app_limited_until: u64,
    lost: u64,
    next_round_delivered: u64,
    round_count: u64,
    min_rtt: Option<Duration>,
    /// Records below this were already examined by `mark_lost_below`.
    lost_scan: Option<SeqNumber>,
    /// RFC 8985's RACK.xmit_ts and RACK.rtt: the send time of the most
    /// recently sent segment known delivered, and its RTT.
    rack_xmit: Option<Instant>,
    rack_rtt: Duration,
    /// One record per segment, as before records were shared: the model
    /// the shared records are tested against.
    #[cfg(test)]
    unshared: bool,
}

/// What [`RateSampler::rack_lost_retransmissions`] found.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RackLoss {
    pub bytes: usize,
    /// How many retransmitted stretches that is.
    pub segments: usize,
}

/// What one ACK delivered, for the controller.
#[derive(Copy, Clone, Debug, Default)]
pub struct Delivery {
    pub rate: Option<RateSample>,
    pub round_start: bool,
    pub round_count: u64,
    pub total_delivered: u64,
}

/// The newest delivered record seen while processing one ACK.
#[derive(Copy, Clone, Debug)]
struct Newest {
    rec: SendRecord,
}

impl RateSampler {
    /// Lowest RTT of a segment delivered without retransmission.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// Folds in an RTT measured elsewhere (RFC 6298 or RTTM samples).
    pub fn rtt_sample(&mut self, r: Duration) {
        if r > Duration::ZERO && self.min_rtt.is_none_or(|m| r < m) {
            self.min_rtt = Some(r);
        }
    }

    pub fn total_lost(&self) -> u64 {
        self.lost
    }

    pub fn clear(&mut self) {
        self.recs = VecDeque::new();
        self.lost_scan = None;
        self.rack_xmit = None;
    }

    /// The sender ran out of data with room left in its windows (the
    /// draft's §3.4 check, made where `transmit` stops for want of data):
    /// samples until `in_flight` more bytes are delivered are app limited.
    pub fn on_app_limited(&mut self, in_flight: usize) {
        self.app_limited_until = (self.delivered + in_flight as u64).max(1);
    }

    #[cfg(test)]
    fn is_app_limited(&self) -> bool {
        self.app_limited_until != 0
    }

    /// `n` segments of `seg` bytes of new data from `seq`, sent back to
    /// back at `now` with `in_flight` before the first: the same records
    /// as `n` calls of [`on_send`](Self::on_send), each with the flight the
    /// ones before it left, in one step. The first call decides; every later
    /// one would find the record it left and extend it, since nothing it
    /// compares changes between them.
    pub fn on_send_run(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        seg: usize,
        n: usize,
        in_flight: usize,
    ) {
        if n == 0 || seg == 0 {
            return;
        }
        self.on_send(now, seq, seq + seg, false, in_flight);
        let rest = (n - 1) * seg;
        if rest == 0 {
            return;
        }
        if !self.unshared() {
            if let Some(last) = self.recs.back_mut() {
                if last.end == seq + seg && last.seg as usize == seg && last.sent == now {
                    last.end += rest;
                    last.tx_in_flight += rest;
                    return;
                }
            }
        }
        for i in 1..n {
            let at = seq + i * seg;
            self.on_send(now, at, at + seg, false, in_flight + i * seg);
        }
    }

    /// A transmission of [seq, end) at `now`; `in_flight` is the flight
    /// before it. `rtx` marks a resend of sequence space already sent.
    pub fn on_send(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        end: SeqNumber,
        rtx: bool,
        in_flight: usize,
    ) {
        if end <= seq {
            return;
        }
        if in_flight == 0 {
            // §3.2: "If there are no packets in flight yet, then we can
            // start the delivery rate interval at the current time".
            self.first_sent_time = Some(now);
            self.delivered_time = Some(now);
        }
        let len = end - seq;
        let shareable = !self.unshared();
        // The next segment of a burst: checked before anything is built,
        // as it is most of a bulk sender's calls.
        if let Some(last) = self.recs.back_mut() {
            if seq == last.end
                && !rtx
                && last.seg as usize == len
                && last.sent == now
                && last.tx_in_flight == in_flight
                && last.delivered == self.delivered
                && last.lost_at_send == self.lost
                && last.app_limited == (self.app_limited_until != 0)
                && Some(last.delivered_time) == self.delivered_time
                && Some(last.first_sent_time) == self.first_sent_time
                && !(last.retransmitted || last.sacked || last.lost)
                && shareable
            {
                last.end = end;
                last.tx_in_flight += len;
                return;
            }
        }
        let fresh = SendRecord {
            start: seq,
            end,
            sent: now,
            delivered: self.delivered,
            delivered_time: self.delivered_time.unwrap_or(now),
            first_sent_time: self.first_sent_time.unwrap_or(now),
            app_limited: self.app_limited_until != 0,
            tx_in_flight: in_flight + (end - seq),
            lost_at_send: self.lost,
            retransmitted: rtx,
            sacked: false,
            lost: false,
            seg: (end - seq) as u32,
        };
        if self.recs.back().is_none_or(|last| seq >= last.end) {
            self.recs.push_back(fresh);
            return;
        }
        // A resend: refresh the send state of every segment it overlaps,
        // each its own record from now on.
        self.split(seq, false);
        self.split(end, true);
        let mut i = self.recs.partition_point(|r| r.end <= seq);
        while i < self.recs.len() && self.recs[i].start < end {
            self.split_first(i);
            let r = &mut self.recs[i];
            if !r.sacked {
                *r = SendRecord {
                    start: r.start,
                    end: r.end,
                    seg: r.seg,
                    retransmitted: true,
                    ..fresh
                };
            }
            i += 1;
        }
        if end > self.recs.back().map_or(end, |r| r.end) {
            // The resend reached past SND.MAX (a larger segment after the
            // MSS grew): the new part is new data.
            let start = self.recs.back().map_or(seq, |r| r.end);
            self.recs.push_back(SendRecord {
                start,
                retransmitted: false,
                seg: (end - start) as u32,
                ..fresh
            });
        }
    }

    #[cfg(test)]
    fn unshared(&self) -> bool {
        self.unshared
    }

    #[cfg(not(test))]
    fn unshared(&self) -> bool {
        false
    }

    /// Puts a record boundary at the segment boundary nearest `x` (rounded
    /// up or down) if `x` falls inside a shared record.
    fn split(&mut self, x: SeqNumber, up: bool) {
        let i = self.recs.partition_point(|r| r.end <= x);
        let Some(r) = self.recs.get(i) else {
            return;
        };
        if let Some(b) = r.boundary(x, up) {
            let head = r.head(b);
            self.recs[i].start = b;
            self.recs.insert(i, head);
        }
    }

    /// Splits record `i` after its first segment, if it has more than one.
    fn split_first(&mut self, i: usize) {
        let r = &self.recs[i];
        if let Some(b) = r.boundary(r.start + 1, true) {
            let head = r.head(b);
            self.recs[i].start = b;
            self.recs.insert(i, head);
        }
    }

    /// The draft's UpdateRateSample for one newly delivered record.
    fn deliver(
        &mut self,
        now: Instant,
        rec: &SendRecord,
        bytes: usize,
        newest: &mut Option<Newest>,
    ) {
        self.delivered += bytes as u64;
        self.delivered_time = Some(now);
        // RFC 8985 §6.2 step 2: a retransmission ACKed sooner than the
        // minimum RTT after it left must have been the original's ACK; it
        // says nothing about when the retransmission was delivered.
        let rtt = now.saturating_since(rec.sent);
        let ambiguous = rec.retransmitted && self.min_rtt.is_some_and(|m| rtt < m);
        if !ambiguous && self.rack_xmit.is_none_or(|t| rec.sent >= t) {
            self.rack_xmit = Some(rec.sent);
            self.rack_rtt = rtt;
        }
        let newer = newest.is_none_or(|n| {
            rec.sent > n.rec.sent || (rec.sent == n.rec.sent && rec.end > n.rec.end)
        });
        if newer {
            *newest = Some(Newest { rec: *rec });
            // "C.first_sent_time = P.sent_time": the next interval starts
            // at this segment's send.
            self.first_sent_time = Some(rec.sent);
        }
    }

    /// An ACK arrived: the cumulative point is `una` and `sacked` lists the
    /// blocks it newly SACKed (already clipped to (SND.UNA, SND.MAX]).
    pub fn on_ack(
        &mut self,
        now: Instant,
        una: SeqNumber,
        sacked: &[(SeqNumber, SeqNumber)],
    ) -> Delivery {
        let mut newest = None;
        for &(l, r) in sacked {
            // Only whole segments inside the block are SACKed.
            self.split(l, true);
            self.split(r, false);
            let first = self.recs.partition_point(|x| x.end <= l);
            let mut i = first;
            while i < self.recs.len() && self.recs[i].start < r {
                let rec = self.recs[i];
                if !rec.sacked && rec.start >= l && rec.end <= r {
                    self.recs[i].sacked = true;
                    self.deliver(now, &rec, rec.end - rec.start, &mut newest);
                }
                i += 1;
            }
        }
        while let Some(front) = self.recs.front().copied() {
            if front.start >= una {
                break;
            }
            let upto = una.min(front.end);
            if !front.sacked {
                // A shared record delivered in part: the sample is the
                // last segment the ACK reached.
                let part = match front.boundary(upto, true) {
                    Some(b) => front.head(b),
                    None => front,
                };
                self.deliver(now, &part, upto - front.start, &mut newest);
            }
            if front.end <= una {
                self.recs.pop_front();
            } else if let Some(f) = self.recs.front_mut() {
                f.start = una;
                break;
            }
        }
        if self.lost_scan.is_some_and(|s| s < una) {
            self.lost_scan = Some(una);
        }
        self.sample(now, newest)
    }

    /// The draft's GenerateRateSample, and BBR's round counting.
    fn sample(&mut self, now: Instant, newest: Option<Newest>) -> Delivery {
        // "Clear app-limited field if bubble is ACKed and gone."
        if self.app_limited_until != 0 && self.delivered > self.app_limited_until {
            self.app_limited_until = 0;
        }
        let mut d = Delivery {
            total_delivered: self.delivered,
            ..Delivery::default()
        };
        let Some(Newest { rec: p }) = newest else {
            d.round_count = self.round_count;
            return d;
        };
        if p.delivered >= self.next_round_delivered {
            self.next_round_delivered = self.delivered;
            self.round_count += 1;
            d.round_start = true;
        }
        d.round_count = self.round_count;
        let rtt = (!p.retransmitted).then(|| now.saturating_since(p.sent));
        if let Some(r) = rtt {
            self.rtt_sample(r);
        }
        let send_elapsed = p.sent.saturating_since(p.first_sent_time);
        let ack_elapsed = now.saturating_since(p.delivered_time);
        let interval = send_elapsed.max(ack_elapsed);
        let delivered = self.delivered - p.delivered;
        // §3.3: "Normally we expect interval >= MinRTT. Note that rate may
        // still be overestimated when a spuriously retransmitted skb was
        // first (s)acked because "interval" is under-estimated" -- such
        // samples are not produced.
        if interval == Duration::ZERO || self.min_rtt.is_some_and(|m| interval < m) {
            return d;
        }
        let rate = (u128::from(delivered) * 1_000_000 / u128::from(interval.total_micros()))
            .min(u128::from(u64::MAX)) as u64;
        d.rate = Some(RateSample {
            delivery_rate: rate,
            delivered,
            interval,
            is_app_limited: p.app_limited,
            rtt,
            tx_in_flight: p.tx_in_flight,
            lost: self.lost - p.lost_at_send,
            prior_delivered: p.delivered,
        });
        d
    }

    /// Marks every un-SACKed record below `edge` lost (RFC 6675 IsLost);
    /// returns the bytes newly marked. Amortised O(1): a cursor remembers
    /// how far earlier calls got.
    pub fn mark_lost_below(&mut self, edge: SeqNumber) -> usize {
        self.split(edge, false);
        let mut i = match self.lost_scan {
            Some(s) => self.recs.partition_point(|r| r.end <= s),
            None => 0,
        };
        let mut n = 0;
        while i < self.recs.len() && self.recs[i].end <= edge {
            let r = &mut self.recs[i];
            if !r.sacked && !r.lost {
                r.lost = true;
                n += r.end - r.start;
            }
            i += 1;
        }
        if self.lost_scan.is_none_or(|s| edge > s) {
            self.lost_scan = Some(edge);
        }
        self.lost += n as u64;
        n
    }

    /// RACK (RFC 8985 §6.2) applied to retransmissions: a retransmitted
    /// stretch, not delivered although a stretch sent `reo_wnd` later has
    /// been, is lost once RACK.rtt + reo_wnd has passed since it left. This
    /// finds what RFC 6675 cannot -- a retransmission lost again -- so the
    /// sender resends it instead of waiting for the retransmission timer.
    /// Originals are left to RFC 6675's IsLost.
    pub fn rack_lost_retransmissions(&mut self, now: Instant) -> RackLoss {
        let Some(xmit) = self.rack_xmit else {
            return RackLoss::default();
        };
        // §6.2 step 4: reo_wnd = min_RTT / 4.
        let reo_wnd = Duration::from_micros(self.min_rtt.map_or(0, |m| m.total_micros() / 4));
        let mut out = RackLoss::default();
        for r in self.recs.iter_mut() {
            // Records are in sequence order, originals in send order: past
            // the first original sent after RACK.xmit_ts, nothing is older.
            if !r.retransmitted && r.sent > xmit {
                break;
            }
            if !r.retransmitted || r.sacked || r.lost {
                continue;
            }
            if r.sent + reo_wnd < xmit && r.sent + self.rack_rtt + reo_wnd <= now {
                r.lost = true;
                out.bytes += r.end - r.start;
                out.segments += 1;
            }
        }
        self.lost += out.bytes as u64;
        out
    }

    /// The first retransmission [`Self::rack_lost_retransmissions`] marked
    /// lost and not yet sent again.
    pub fn first_lost_retransmission(&self) -> Option<(SeqNumber, SeqNumber)> {
        self.recs
            .iter()
            .find(|r| r.retransmitted && r.lost && !r.sacked)
            .map(|r| (r.start, r.end))
    }

    /// If `seq` lies in a stretch that was retransmitted and is neither
    /// delivered nor deemed lost, where that stretch ends.
    pub fn resend_in_flight(&self, seq: SeqNumber) -> Option<SeqNumber> {
        let i = self.recs.partition_point(|r| r.end <= seq);
        let r = self.recs.get(i)?;
        (r.start <= seq && r.retransmitted && !r.lost && !r.sacked).then_some(r.end)
    }

    /// Marks the first record (the fast-retransmit or partial-ACK head)
    /// lost; returns the bytes newly marked.
    pub fn mark_head_lost(&mut self) -> usize {
        if !self.recs.is_empty() {
            self.split_first(0);
        }
        match self.recs.front_mut() {
            Some(r) if !r.lost && !r.sacked => {
                r.lost = true;
                let n = r.end - r.start;
                self.lost += n as u64;
                n
            }
            _ => 0,
        }
    }

    /// A retransmission timeout: everything not SACKed is deemed lost.
    pub fn mark_all_lost(&mut self) -> usize {
        let mut n = 0;
        for r in self.recs.iter_mut() {
            if !r.sacked && !r.lost {
                r.lost = true;
                n += r.end - r.start;
            }
        }
        self.lost += n as u64;
        self.lost_scan = None;
        n
    }

    /// A recovery episode begins: loss marking starts again from SND.UNA.
    pub fn restart_loss_scan(&mut self) {
        self.lost_scan = None;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.recs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Instant {
        Instant::from_millis(1000 + ms)
    }
    fn s(n: u32) -> SeqNumber {
        SeqNumber(n)
    }

    #[test]
    fn steady_flow_samples_the_bottleneck_rate() {
        // Ten 1000-byte segments sent back to back; the bottleneck spaces
        // their ACKs 1 ms apart after a 10 ms RTT: 1000 bytes per ms.
        let mut r = RateSampler::default();
        for i in 0..10u32 {
            r.on_send(
                t(0),
                s(i * 1000),
                s((i + 1) * 1000),
                false,
                (i * 1000) as usize,
            );
        }
        let mut last = None;
        for i in 0..10u32 {
            let d = r.on_ack(t(10 + i64::from(i)), s((i + 1) * 1000), &[]);
            if let Some(rs) = d.rate {
                last = Some(rs);
            }
        }
        let rs = last.unwrap();
        // The last ACK: 10 000 bytes delivered since the first segment's
        // send state (0 delivered at t=0), over max(send 0 ms, ack 19 ms).
        assert_eq!(rs.delivered, 10_000);
        assert_eq!(rs.interval, Duration::from_millis(19));
        assert_eq!(rs.rtt, Some(Duration::from_millis(19)));
        assert_eq!(r.delivered, 10_000);
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn ack_compression_does_not_inflate_the_rate() {
        // §2.2: the interval is the longer of the send and ACK phases, so a
        // burst of ACKs arriving at once cannot report more than the send
        // rate.
        let mut r = RateSampler::default();
        r.on_send(t(0), s(0), s(1000), false, 0);
        let _ = r.on_ack(t(10), s(1000), &[]);
        // Next flight: sent over 10 ms, all ACKed in the same instant.
        for i in 0..10u32 {
            let a = 1000 + i * 1000;
            r.on_send(
                t(10 + i64::from(i)),
                s(a),
                s(a + 1000),
                false,
                (i * 1000) as usize,
            );
        }
        let d = r.on_ack(t(30), s(11_000), &[]);
        let rs = d.rate.unwrap();
        // send_elapsed = 19 - 10 = 9 ms; ack_elapsed = 30 - 10 = 20 ms.
        assert_eq!(rs.interval, Duration::from_millis(20));
        assert_eq!(rs.delivered, 10_000);
        assert_eq!(rs.delivery_rate, 500_000);
    }

    #[test]
    fn sacked_bytes_count_once() {
        let mut r = RateSampler::default();
        for i in 0..4u32 {
            r.on_send(
                t(0),
                s(i * 100),
                s((i + 1) * 100),
                false,
                (i * 100) as usize,
            );
        }
        // SACK of the 3rd and 4th, then a cumulative ACK over all.
        let d = r.on_ack(t(5), s(0), &[(s(200), s(400))]);
        assert_eq!(d.total_delivered, 200);
        let d = r.on_ack(t(6), s(400), &[]);
        assert_eq!(d.total_delivered, 400);
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn retransmission_refreshes_send_state_and_gives_no_rtt() {
        let mut r = RateSampler::default();
        r.on_send(t(0), s(0), s(100), false, 0);
        r.on_send(t(0), s(100), s(200), false, 100);
        assert_eq!(r.mark_head_lost(), 100);
        r.on_send(t(300), s(0), s(100), true, 200);
        assert_eq!(r.len(), 2);
        let d = r.on_ack(t(310), s(200), &[]);
        // The newest is the retransmission: Karn, no RTT from it.
        let rs = d.rate.unwrap();
        assert_eq!(rs.rtt, None);
        assert_eq!(rs.lost, 0);
        assert_eq!(r.total_lost(), 100);
    }

    #[test]
    fn partial_ack_trims_a_record() {
        let mut r = RateSampler::default();
        r.on_send(t(0), s(0), s(1000), false, 0);
        let d = r.on_ack(t(5), s(400), &[]);
        assert_eq!(d.total_delivered, 400);
        assert_eq!(r.len(), 1);
        let d = r.on_ack(t(6), s(1000), &[]);
        assert_eq!(d.total_delivered, 1000);
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn rounds_advance_once_per_flight() {
        let mut r = RateSampler::default();
        let mut rounds = Vec::new();
        let mut seq = 0u32;
        for flight in 0..3 {
            let base = seq;
            for _ in 0..4 {
                r.on_send(
                    t(flight * 10),
                    s(seq),
                    s(seq + 100),
                    false,
                    (seq - base) as usize,
                );
                seq += 100;
            }
            for k in 1..=4u32 {
                let d = r.on_ack(t(flight * 10 + 5), s(base + k * 100), &[]);
                rounds.push(d.round_start);
            }
        }
        // One round start per flight: the first ACK of each.
        assert_eq!(rounds.iter().filter(|&&x| x).count(), 3);
        assert!(rounds[0] && rounds[4] && rounds[8]);
    }

    #[test]
    fn app_limited_marks_samples_until_the_bubble_is_delivered() {
        let mut r = RateSampler::default();
        r.on_app_limited(0);
        r.on_send(t(0), s(0), s(100), false, 0);
        let d = r.on_ack(t(10), s(100), &[]);
        assert!(d.rate.unwrap().is_app_limited);
        assert!(!r.is_app_limited());
        r.on_send(t(10), s(100), s(200), false, 0);
        let d = r.on_ack(t(20), s(200), &[]);
        assert!(!d.rate.unwrap().is_app_limited);
    }

    #[test]
    fn a_retransmission_lost_again_is_found_by_rack() {
        // RFC 8985 §2: "if a packet has been delivered out of order, then
        // the packets sent chronologically before that were either lost or
        // reordered" -- here the lost one is a retransmission, which RFC
        // 6675 alone never marks lost again.
        let mut r = RateSampler::default();
        r.rtt_sample(Duration::from_millis(10));
        for i in 0..4u32 {
            r.on_send(
                t(0),
                s(i * 100),
                s((i + 1) * 100),
                false,
                (i * 100) as usize,
            );
        }
        // [0,100) lost; resent at 10 ms and lost again. [100,400) were
        // SACKed at 10 ms; new data sent at 14 ms is SACKed at 24 ms.
        r.on_ack(t(10), s(0), &[(s(100), s(400))]);
        r.on_send(t(10), s(0), s(100), true, 300);
        assert_eq!(r.resend_in_flight(s(50)), Some(s(100)));
        r.on_send(t(14), s(400), s(500), false, 300);
        // Nothing sent after the resend is known delivered yet.
        assert_eq!(r.rack_lost_retransmissions(t(21)), RackLoss::default());
        r.on_ack(t(24), s(0), &[(s(400), s(500))]);
        // Sent 4 ms later (more than reo_wnd = 2.5 ms) and delivered;
        // RACK.rtt = 10 ms: the resend is lost 22.5 ms after it left.
        let l = r.rack_lost_retransmissions(t(24));
        assert_eq!((l.bytes, l.segments), (100, 1));
        assert_eq!(r.first_lost_retransmission(), Some((s(0), s(100))));
        assert_eq!(r.resend_in_flight(s(0)), None, "lost, not in flight");
        // Counted once.
        assert_eq!(r.rack_lost_retransmissions(t(30)).bytes, 0);
        // Resent again, it is a candidate anew.
        r.on_send(t(30), s(0), s(100), true, 300);
        assert_eq!(r.first_lost_retransmission(), None);
        assert_eq!(r.rack_lost_retransmissions(t(31)).bytes, 0);
    }

    #[test]
    fn loss_marking_is_counted_once() {
        let mut r = RateSampler::default();
        for i in 0..5u32 {
            r.on_send(
                t(0),
                s(i * 100),
                s((i + 1) * 100),
                false,
                (i * 100) as usize,
            );
        }
        assert_eq!(r.mark_lost_below(s(200)), 200);
        assert_eq!(r.mark_lost_below(s(200)), 0);
        assert_eq!(r.mark_lost_below(s(300)), 100);
        assert_eq!(r.mark_all_lost(), 200);
        assert_eq!(r.total_lost(), 500);
    }

    /// Shared records against one record per segment: seeded sequences of
    /// bursts, resends, partial and SACK ACKs, loss marking and RACK must
    /// get the same answer from both, call by call, while the shared side
    /// keeps fewer records.
    #[test]
    fn shared_records_answer_as_one_record_per_segment() {
        use crate::tcp::buffer::tests::Rng;
        let mut fewer = 0usize;
        for seed in 1..=2000u64 {
            let mut g = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let seg = [100usize, 1460, 1][(seed % 3) as usize];
            let mut a = RateSampler::default();
            let mut m = RateSampler {
                unshared: true,
                ..RateSampler::default()
            };
            let base = s((seed as u32)
                .wrapping_mul(7919)
                .wrapping_add(u32::MAX - 50_000));
            let (mut una, mut max) = (base, base);
            let mut now = 0i64;
            for step in 0..300 {
                let ctx = format!("seed {seed} step {step}");
                let span = (max - una) as u64;
                let pick = |g: &mut Rng| una + g.below(span + 1) as usize;
                match g.below(12) {
                    0..=1 => {
                        // A run of full segments in one call, as a send
                        // run notes them, against one call per segment.
                        let n = g.below(40) as usize;
                        let flight = max - una;
                        a.on_send_run(t(now), max, seg, n, flight);
                        for i in 0..n {
                            let at = max + i * seg;
                            m.on_send(t(now), at, at + seg, false, flight + i * seg);
                        }
                        max += n * seg;
                    }
                    2 => {
                        // A burst of full segments, now and then a short
                        // one at its end.
                        for _ in 0..1 + g.below(40) {
                            let len = if g.below(8) == 0 {
                                1 + g.below(seg as u64) as usize
                            } else {
                                seg
                            };
                            let flight = max - una;
                            a.on_send(t(now), max, max + len, false, flight);
                            m.on_send(t(now), max, max + len, false, flight);
                            max += len;
                        }
                    }
                    3 if span > 0 => {
                        let seq = pick(&mut g).min(max - 1);
                        let end = (seq + (1 + g.below(seg as u64 * 2) as usize)).min(max);
                        let flight = g.below(span + 1) as usize;
                        a.on_send(t(now), seq, end, true, flight);
                        m.on_send(t(now), seq, end, true, flight);
                    }
                    4..=5 => {
                        let new_una = if g.below(3) == 0 { una } else { pick(&mut g) };
                        let mut blocks = Vec::new();
                        for _ in 0..g.below(4) {
                            let l = pick(&mut g).max(new_una);
                            let r = (l + g.below(seg as u64 * 6) as usize).min(max);
                            if r > l {
                                blocks.push((l, r));
                            }
                        }
                        let da = a.on_ack(t(now), new_una, &blocks);
                        let dm = m.on_ack(t(now), new_una, &blocks);
                        assert_eq!(format!("{da:?}"), format!("{dm:?}"), "{ctx}");
                        una = new_una;
                    }
                    6 => {
                        let e = pick(&mut g);
                        assert_eq!(a.mark_lost_below(e), m.mark_lost_below(e), "{ctx}");
                    }
                    7 => assert_eq!(a.mark_head_lost(), m.mark_head_lost(), "{ctx}"),
                    8 => {
                        assert_eq!(
                            a.rack_lost_retransmissions(t(now)),
                            m.rack_lost_retransmissions(t(now)),
                            "{ctx}"
                        );
                        assert_eq!(
                            a.first_lost_retransmission(),
                            m.first_lost_retransmission(),
                            "{ctx}"
                        );
                    }
                    9 => {
                        let x = pick(&mut g);
                        assert_eq!(a.resend_in_flight(x), m.resend_in_flight(x), "{ctx}");
                    }
                    10 => match g.below(4) {
                        0 => assert_eq!(a.mark_all_lost(), m.mark_all_lost(), "{ctx}"),
                        1 => {
                            a.restart_loss_scan();
                            m.restart_loss_scan();
                        }
                        2 => {
                            let f = g.below(span + 1) as usize;
                            a.on_app_limited(f);
                            m.on_app_limited(f);
                        }
                        _ => {
                            let r = Duration::from_micros(1 + g.below(20_000));
                            a.rtt_sample(r);
                            m.rtt_sample(r);
                        }
                    },
                    _ => now += g.below(6) as i64,
                }
                assert_eq!(a.total_lost(), m.total_lost(), "{ctx}");
                assert_eq!(a.min_rtt(), m.min_rtt(), "{ctx}");
                assert!(a.len() <= m.len(), "{ctx}");
            }
            fewer += m.len() - a.len();
        }
        assert!(fewer > 0, "no record was ever shared");
    }
}
