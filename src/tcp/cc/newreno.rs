//! NewReno: RFC 5681 slow start and congestion avoidance, with the window
//! responses of RFC 6582 (recovery itself is run by TCP).

use super::{AckSample, CongestionControl, CongestionEvent};
use crate::time::Instant;

#[derive(Debug, Clone)]
pub struct NewReno {
    cwnd: usize,
    ssthresh: usize,
    mss: usize,
    iw: usize,
    /// Bytes acknowledged since cwnd last grew in congestion avoidance
    /// (RFC 5681 §3.1's byte counting: "cwnd += SMSS*SMSS/cwnd" per ACK is
    /// approximated by one SMSS per cwnd of acknowledged bytes).
    acked_in_ca: usize,
    /// cwnd and ssthresh before the last reduction, for `Undo`.
    undo: Option<(usize, usize)>,
}

impl NewReno {
    pub fn new(mss: usize, iw: usize) -> NewReno {
        NewReno {
            cwnd: iw.max(mss),
            // RFC 5681 §3.1: "The initial value of ssthresh SHOULD be set
            // arbitrarily high".
            ssthresh: usize::MAX,
            mss: mss.max(1),
            iw: iw.max(mss),
            acked_in_ca: 0,
            undo: None,
        }
    }

    fn half_flight(&self, in_flight: usize) -> usize {
        // RFC 5681 (4): "ssthresh = max (FlightSize / 2, 2*SMSS)".
        (in_flight / 2).max(2 * self.mss)
    }
}

impl CongestionControl for NewReno {
    fn name(&self) -> &'static str {
        "newreno"
    }

    fn on_sent(&mut self, _now: Instant, _bytes: usize, _in_flight: usize) {}

    fn on_ack(&mut self, _now: Instant, s: &AckSample) {
        if s.in_recovery || s.bytes_acked == 0 {
            return;
        }
        // RFC 7661 spirit, and RFC 5681 §3.1's note that cwnd should not
        // grow while the sender does not use it.
        if s.app_limited && s.prior_in_flight < self.cwnd / 2 {
            return;
        }
        if self.cwnd < self.ssthresh {
            // RFC 5681 (2): "cwnd += min (N, SMSS)".
            self.cwnd = self.cwnd.saturating_add(s.bytes_acked.min(self.mss));
        } else {
            self.acked_in_ca += s.bytes_acked;
            if self.acked_in_ca >= self.cwnd {
                self.acked_in_ca -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.mss);
            }
        }
        self.cwnd = self.cwnd.min(1 << 30);
    }

    fn on_congestion(&mut self, _now: Instant, e: CongestionEvent) {
        match e {
            CongestionEvent::Loss { in_flight } => {
                self.undo = Some((self.cwnd, self.ssthresh));
                self.ssthresh = self.half_flight(in_flight);
                // TCP inflates the window itself during recovery (RFC 6582
                // §3.2 step 2's "ssthresh + 3*SMSS" lives in the engine).
                self.cwnd = self.ssthresh;
                self.acked_in_ca = 0;
            }
            CongestionEvent::Timeout { in_flight, first } => {
                if first {
                    self.undo = Some((self.cwnd, self.ssthresh));
                    self.ssthresh = self.half_flight(in_flight);
                }
                // RFC 5681 §3.1: "the value of cwnd MUST be set to no more
                // than the loss window, LW, which equals 1 full-sized segment".
                self.cwnd = self.mss;
                self.acked_in_ca = 0;
            }
            CongestionEvent::RecoveryEnd { in_flight } => {
                // RFC 6582 §3.2 step 3, option (1): "Set cwnd to min
                // (ssthresh, max(FlightSize, SMSS) + SMSS)".
                self.cwnd = self.ssthresh.min(in_flight.max(self.mss) + self.mss);
            }
            CongestionEvent::Undo => {
                // Like Linux's tcp_undo_cwnd_reduction: back to at least
                // what the spurious event took away.
                if let Some((cwnd, ssthresh)) = self.undo.take() {
                    self.cwnd = self.cwnd.max(cwnd);
                    self.ssthresh = self.ssthresh.max(ssthresh);
                }
            }
            CongestionEvent::Idle => {
                // RFC 5681 §4.1: "cwnd is reduced to RW = min(IW,cwnd)".
                self.cwnd = self.cwnd.min(self.iw);
            }
        }
    }

    fn window(&self) -> usize {
        self.cwnd
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn pacing_rate(&self) -> Option<u64> {
        None
    }

    fn set_mss(&mut self, mss: usize) {
        let mss = mss.max(1);
        if self.cwnd == self.iw {
            self.cwnd = self.cwnd / self.mss * mss;
        }
        self.iw = self.iw / self.mss * mss;
        self.mss = mss;
        self.cwnd = self.cwnd.max(mss);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(bytes: usize, in_flight: usize) -> AckSample {
        AckSample {
            bytes_acked: bytes,
            delivered: bytes,
            prior_in_flight: in_flight,
            ..AckSample::default()
        }
    }

    #[test]
    fn slow_start_adds_at_most_one_smss_per_ack() {
        // RFC 5681 §3.1: "cwnd += min (N, SMSS)".
        let mut c = NewReno::new(1000, 10_000);
        c.on_ack(Instant::ZERO, &ack(3000, 10_000));
        assert_eq!(c.window(), 11_000);
        c.on_ack(Instant::ZERO, &ack(500, 10_000));
        assert_eq!(c.window(), 11_500);
    }

    #[test]
    fn congestion_avoidance_adds_one_smss_per_window() {
        let mut c = NewReno::new(1000, 10_000);
        c.on_congestion(Instant::ZERO, CongestionEvent::Loss { in_flight: 20_000 });
        assert_eq!((c.window(), c.ssthresh()), (10_000, 10_000));
        for _ in 0..10 {
            c.on_ack(Instant::ZERO, &ack(1000, 10_000));
        }
        assert_eq!(c.window(), 11_000);
    }

    #[test]
    fn timeout_sets_loss_window_and_halves_only_on_first() {
        // RFC 5681 (4): "ssthresh = max (FlightSize / 2, 2*SMSS)".
        let mut c = NewReno::new(1000, 10_000);
        c.on_congestion(
            Instant::ZERO,
            CongestionEvent::Timeout {
                in_flight: 30_000,
                first: true,
            },
        );
        assert_eq!((c.window(), c.ssthresh()), (1000, 15_000));
        c.on_congestion(
            Instant::ZERO,
            CongestionEvent::Timeout {
                in_flight: 1000,
                first: false,
            },
        );
        assert_eq!((c.window(), c.ssthresh()), (1000, 15_000));
        c.on_congestion(Instant::ZERO, CongestionEvent::Loss { in_flight: 1000 });
        assert_eq!(c.ssthresh(), 2000);
    }
}
