//! RTT estimation and the retransmission timeout, RFC 6298.

use crate::time::Duration;

/// RFC 6298 §2: clock granularity G. We keep microseconds, so G is tiny;
/// 1 ms keeps the `max(G, K*RTTVAR)` term meaningful with a very stable RTT.
const GRANULARITY: Duration = Duration::from_millis(1);

#[derive(Debug, Clone)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    /// The RTO before backoff.
    base_rto: Duration,
    backoff: u32,
    min: Duration,
    max: Duration,
}

impl RttEstimator {
    pub fn new(initial: Duration, min: Duration, max: Duration) -> RttEstimator {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            base_rto: initial.min(max),
            backoff: 0,
            min,
            max,
        }
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    pub fn rttvar(&self) -> Option<Duration> {
        self.srtt.map(|_| self.rttvar)
    }

    /// The current RTO, backoff included, capped at the maximum (RFC 6298
    /// §2.5: "A maximum value MAY be placed on RTO provided it is at least
    /// 60 seconds").
    pub fn rto(&self) -> Duration {
        let mut rto = self.base_rto;
        for _ in 0..self.backoff.min(32) {
            rto = rto.saturating_mul(2);
            if rto >= self.max {
                return self.max;
            }
        }
        rto.min(self.max)
    }

    /// RFC 6298 §5.5: "The host MUST set RTO <- RTO * 2 ("back off the
    /// timer")".
    pub fn back_off(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// RFC 6298 §5.7's restart after the handshake timed out: "if the timer
    /// expires awaiting the ACK of a SYN segment and the TCP implementation
    /// is using an RTO less than 3 seconds, the RTO MUST be re-initialized to
    /// 3 seconds when data transmission begins".
    pub fn after_syn_timeout(&mut self) {
        self.backoff = 0;
        if self.srtt.is_none() {
            self.base_rto = self.base_rto.max(Duration::from_secs(3)).min(self.max);
        }
    }

    /// A new measurement R. Resets the backoff: RFC 6298 §5 note, the
    /// backed-off RTO is kept "until an acknowledgment is received for a
    /// segment that was not retransmitted", which is what a sample is.
    pub fn sample(&mut self, r: Duration) {
        match self.srtt {
            None => {
                // (2.2) SRTT <- R, RTTVAR <- R/2
                self.srtt = Some(r);
                self.rttvar = Duration::from_micros(r.total_micros() / 2);
            }
            Some(srtt) => {
                // (2.3) RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|
                //       SRTT <- (1 - alpha) * SRTT + alpha * R'
                // with alpha = 1/8, beta = 1/4; RTTVAR first, with the old SRTT.
                let delta = srtt.total_micros().abs_diff(r.total_micros());
                let var = (3 * self.rttvar.total_micros() + delta) / 4;
                self.rttvar = Duration::from_micros(var);
                let s = (7 * srtt.total_micros() + r.total_micros()) / 8;
                self.srtt = Some(Duration::from_micros(s));
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        // RTO <- SRTT + max (G, K*RTTVAR), K = 4; (2.4) floor, (2.5) cap.
        let rto = srtt + GRANULARITY.max(self.rttvar.saturating_mul(4));
        self.base_rto = rto.max(self.min).min(self.max);
        self.backoff = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn initial_rto_is_one_second() {
        // RFC 6298 §2.1: "Until a round-trip time (RTT) measurement has been
        // made ... the sender SHOULD set RTO <- 1 second".
        let r = RttEstimator::new(ms(1000), ms(200), ms(60_000));
        assert_eq!(r.rto(), ms(1000));
    }

    #[test]
    fn first_and_later_samples_follow_rfc6298() {
        // "(2.2) When the first RTT measurement R is made, the host MUST set
        // SRTT <- R, RTTVAR <- R/2, RTO <- SRTT + max (G, K*RTTVAR)".
        let mut r = RttEstimator::new(ms(1000), ms(1), ms(60_000));
        r.sample(ms(100));
        assert_eq!(r.srtt(), Some(ms(100)));
        assert_eq!(r.rttvar(), Some(ms(50)));
        assert_eq!(r.rto(), ms(300));
        // (2.3) with R' = 200: RTTVAR = 3/4*50 + 1/4*100 = 62.5,
        // SRTT = 7/8*100 + 1/8*200 = 112.5, RTO = 112.5 + 250 = 362.5.
        r.sample(ms(200));
        assert_eq!(r.rttvar(), Some(Duration::from_micros(62_500)));
        assert_eq!(r.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(r.rto(), Duration::from_micros(362_500));
    }

    #[test]
    fn rto_is_floored_and_capped() {
        let mut r = RttEstimator::new(ms(1000), ms(200), ms(60_000));
        r.sample(Duration::from_micros(10));
        assert_eq!(r.rto(), ms(200));
        for _ in 0..40 {
            r.back_off();
        }
        assert_eq!(r.rto(), ms(60_000));
    }

    #[test]
    fn rto_doubles_on_each_timeout() {
        // RFC 6298 §5.5: "The host MUST set RTO <- RTO * 2 ("back off the
        // timer")."
        let mut r = RttEstimator::new(ms(1000), ms(200), ms(60_000));
        let mut prev = r.rto();
        for _ in 0..5 {
            r.back_off();
            assert_eq!(r.rto(), prev.saturating_mul(2));
            prev = r.rto();
        }
    }
}
