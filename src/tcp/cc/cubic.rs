//! CUBIC (RFC 9438) with HyStart++ (RFC 9406) for the initial slow start.
//!
//! Windows are kept in bytes; the RFC's formulas are in segments and
//! seconds, so they are evaluated with `W / SMSS` and converted back. The
//! cubic function itself is evaluated in `f64` (clamped, never NaN or
//! infinite); every increment is accumulated in integers so that the
//! controller is deterministic and nothing overflows.
//!
//! Choices where the RFCs leave room:
//!
//! - ssthresh on a congestion event is `β_cubic × min(FlightSize, cwnd)`
//!   (RFC 9438 §4.6 uses flight_size; the `min` keeps a loss from ever
//!   raising the window when more is in flight than cwnd allows).
//! - Slow start adds `min(N, L × SMSS)` per ACK with L = 8 (RFC 9406
//!   §4.2's value for a sender that does not pace; this controller does
//!   not), divided by CSS_GROWTH_DIVISOR in Conservative Slow Start.
//! - HyStart++ runs only in the initial slow start, while ssthresh is still
//!   its initial "arbitrarily high" value (RFC 9406 §4.3 "SHOULD use
//!   HyStart++ only for the initial slow start").
//! - Rounds: TCP's `round_start` is used once it has been seen set; until
//!   then a round is detected here from delivered bytes: a round that began
//!   when `delivered` was D, with F bytes in flight after that ACK (RFC
//!   9406's windowEnd = SND.NXT, before anything new is sent), ends when
//!   `delivered` reaches D + F. `delivered` is counted here from
//!   `AckSample::delivered`, so `total_delivered` need not be filled in.
//! - Idle: RFC 5681 §4.1's restart window, and the time spent with nothing
//!   in flight (an `Idle` event, or a send that finds the flight empty) is
//!   added to the epoch start, so that W_cubic(t) does not count it (Linux
//!   does the same).
//! - At the start of a congestion-avoidance epoch with W_max undefined (no
//!   loss yet, HyStart++ exit), after a timeout (§4.8), or with W_max below
//!   the current window, W_max is set to cwnd_epoch and K to 0.

use super::{AckSample, CcInfo, CongestionControl, CongestionEvent};
use crate::time::{Duration, Instant};

/// RFC 9438 §5: "C SHOULD be set to 0.4".
const C: f64 = 0.4;
/// RFC 9438 §4.6: "The parameter β_cubic SHOULD be set to 0.7".
const BETA_NUM: usize = 7;
const BETA_DEN: usize = 10;
/// RFC 9438 §4.7: W_max = cwnd × (1 + β_cubic) / 2 = cwnd × 17/20.
const FAST_CONV_NUM: usize = 17;
const FAST_CONV_DEN: usize = 20;
/// RFC 9438 §4.3: α_cubic = 3(1 − β_cubic)/(1 + β_cubic) = 9/17; α = 1 is
/// 17/17.
const ALPHA_DEN: u128 = 17;
const ALPHA_CUBIC_NUM: u128 = 9;
const ALPHA_RENO_NUM: u128 = 17;
/// Nothing grows past this, so no window arithmetic can overflow.
pub const CWND_CAP: usize = 1 << 30;
/// The largest SMSS honoured (IPv6 jumbograms aside, TCP's is 16 bits).
const MAX_MSS: usize = 1 << 20;
/// RFC 9406 §4.2's L for a sender that does not pace.
const L_SEGMENTS: usize = 8;

// RFC 9406 §4.3's recommended constants.
const N_RTT_SAMPLE: u32 = 8;
const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
const MIN_RTT_DIVISOR: u64 = 8;
const CSS_GROWTH_DIVISOR: usize = 4;
const CSS_ROUNDS: u32 = 5;

/// What RFC 9438 §4.9 saves at a congestion event to restore it if the
/// event turns out to be spurious (and the HyStart++ state, so a spurious
/// loss in the initial slow start is undone completely).
#[derive(Clone, Debug, PartialEq)]
struct Saved {
    cwnd: usize,
    ssthresh: usize,
    w_max: usize,
    k: f64,
    epoch_start: Option<Instant>,
    cwnd_epoch: usize,
    w_est: usize,
    cwnd_prior: usize,
    reset_w_max: bool,
    css_baseline: Option<Duration>,
    css_rounds: u32,
}

#[derive(Debug, Clone)]
pub struct Cubic {
    cwnd: usize,
    ssthresh: usize,
    mss: usize,
    iw: usize,

    // RFC 9438 §4.1.2's variables.
    /// W_max in bytes; 0 while undefined.
    w_max: usize,
    /// K in seconds; finite and non-negative.
    k: f64,
    /// epoch_start: the first ACK of the current congestion-avoidance
    /// stage; `None` outside congestion avoidance.
    epoch_start: Option<Instant>,
    /// cwnd_epoch, bytes.
    cwnd_epoch: usize,
    /// W_est, bytes.
    w_est: usize,
    /// The fractional part of W_est's growth, in 1/(17·cwnd) bytes.
    w_est_acc: u128,
    /// cwnd_prior: cwnd when ssthresh was last set; 0 before that.
    cwnd_prior: usize,
    /// The fractional part of cwnd's growth in avoidance, in 1/cwnd bytes.
    ca_acc: u128,
    /// The next epoch takes W_max = cwnd_epoch and K = 0 (after a timeout,
    /// RFC 9438 §4.8).
    reset_w_max: bool,

    // RFC 9406 §4.2's variables.
    last_round_min_rtt: Option<Duration>,
    current_round_min_rtt: Option<Duration>,
    rtt_sample_count: u32,
    /// cssBaselineMinRtt; `Some` exactly while in CSS.
    css_baseline: Option<Duration>,
    /// Rounds spent in CSS, the one it began in counted as the first.
    css_rounds: u32,
    /// The remainder of CSS growth (bytes × CSS_GROWTH_DIVISOR).
    css_acc: usize,

    // Rounds, when TCP does not mark them.
    engine_rounds: bool,
    delivered: u64,
    round_end: u64,

    // RTT, when TCP does not give it.
    srtt: Option<Duration>,
    min_rtt: Option<Duration>,

    /// When the sender last sent or got an ACK.
    last_active: Option<Instant>,
    in_recovery: bool,
    undo: Option<Saved>,
}

impl Cubic {
    pub fn new(mss: usize, iw: usize) -> Cubic {
        let mss = mss.clamp(1, MAX_MSS);
        let iw = iw.clamp(mss, CWND_CAP);
        Cubic {
            cwnd: iw,
            // RFC 5681 §3.1: "The initial value of ssthresh SHOULD be set
            // arbitrarily high".
            ssthresh: usize::MAX,
            mss,
            iw,
            w_max: 0,
            k: 0.0,
            epoch_start: None,
            cwnd_epoch: 0,
            w_est: 0,
            w_est_acc: 0,
            cwnd_prior: 0,
            ca_acc: 0,
            reset_w_max: false,
            last_round_min_rtt: None,
            current_round_min_rtt: None,
            rtt_sample_count: 0,
            css_baseline: None,
            css_rounds: 0,
            css_acc: 0,
            engine_rounds: false,
            delivered: 0,
            round_end: 0,
            srtt: None,
            min_rtt: None,
            last_active: None,
            in_recovery: false,
            undo: None,
        }
    }

    /// W_max in bytes (0 until the first congestion event or epoch).
    pub fn w_max(&self) -> usize {
        self.w_max
    }

    /// K of the current (or next) epoch.
    pub fn k(&self) -> Duration {
        secs_to_duration(self.k)
    }

    /// In HyStart++'s Conservative Slow Start.
    pub fn in_css(&self) -> bool {
        self.css_baseline.is_some()
    }

    /// The start of the current congestion-avoidance epoch.
    pub fn epoch_start(&self) -> Option<Instant> {
        self.epoch_start
    }

    /// W_est in bytes (the Reno-friendly estimate of the current epoch).
    pub fn w_est(&self) -> usize {
        self.w_est
    }

    /// W_cubic(t) of RFC 9438 eq. (1), in bytes, for `t` since the epoch
    /// start (clamped to [0, CWND_CAP]).
    pub fn w_cubic(&self, t: Duration) -> usize {
        let d = t.as_secs_f64() - self.k;
        let bytes = self.w_max as f64 + C * d * d * d * self.mss as f64;
        f64_to_window(bytes)
    }

    fn saved(&self) -> Saved {
        Saved {
            cwnd: self.cwnd,
            ssthresh: self.ssthresh,
            w_max: self.w_max,
            k: self.k,
            epoch_start: self.epoch_start,
            cwnd_epoch: self.cwnd_epoch,
            w_est: self.w_est,
            cwnd_prior: self.cwnd_prior,
            reset_w_max: self.reset_w_max,
            css_baseline: self.css_baseline,
            css_rounds: self.css_rounds,
        }
    }

    fn restore(&mut self, s: Saved) {
        // The SMSS may have changed since: keep the floors.
        self.cwnd = s.cwnd.clamp(self.mss, CWND_CAP);
        self.ssthresh = if s.ssthresh == usize::MAX {
            s.ssthresh
        } else {
            s.ssthresh.max(2 * self.mss)
        };
        self.w_max = s.w_max;
        self.k = s.k;
        self.epoch_start = s.epoch_start;
        self.cwnd_epoch = s.cwnd_epoch;
        self.w_est = s.w_est;
        self.cwnd_prior = s.cwnd_prior;
        self.reset_w_max = s.reset_w_max;
        self.css_baseline = s.css_baseline;
        self.css_rounds = s.css_rounds;
        self.w_est_acc = 0;
        self.ca_acc = 0;
    }

    /// RFC 9438 §4.6/§4.7 at a congestion event: W_max (with fast
    /// convergence), cwnd_prior and ssthresh.
    fn reduce(&mut self, in_flight: usize) {
        self.undo = Some(self.saved());
        // §4.7: "if cwnd < W_max and fast convergence enabled, further
        // reduce W_max ... W_max = cwnd * (1 + β_cubic) / 2; otherwise,
        // remember cwnd before reduction: W_max = cwnd".
        self.w_max = if self.cwnd < self.w_max {
            mul_div(self.cwnd, FAST_CONV_NUM, FAST_CONV_DEN)
        } else {
            self.cwnd
        };
        // §4.6: "ssthresh = flight_size * β_cubic ... cwnd_prior = cwnd ...
        // ssthresh = max(ssthresh, 2)".
        self.cwnd_prior = self.cwnd;
        let flight = in_flight.min(self.cwnd);
        self.ssthresh = mul_div(flight, BETA_NUM, BETA_DEN).max(2 * self.mss);
        self.epoch_start = None;
        self.css_baseline = None;
        self.css_rounds = 0;
        self.w_est_acc = 0;
        self.ca_acc = 0;
    }

    fn rtt(&self) -> Duration {
        self.srtt.or(self.min_rtt).unwrap_or(Duration::ZERO)
    }

    /// RFC 9406 §4.2, at the start of each round: "lastRoundMinRTT =
    /// currentRoundMinRTT; currentRoundMinRTT = infinity; rttSampleCount =
    /// 0".
    fn new_round(&mut self) {
        self.last_round_min_rtt = self.current_round_min_rtt;
        self.current_round_min_rtt = None;
        self.rtt_sample_count = 0;
    }

    fn hystart_active(&self) -> bool {
        self.ssthresh == usize::MAX
    }

    /// RFC 9406 §4.2 at a round boundary in the initial slow start; after
    /// CSS_ROUNDS rounds of CSS, congestion avoidance.
    fn hystart_round(&mut self) {
        if !self.hystart_active() {
            return;
        }
        self.new_round();
        if self.css_baseline.is_some() && self.cwnd < self.ssthresh {
            // "If CSS_ROUNDS rounds are complete, enter congestion
            // avoidance by setting the ssthresh to the current cwnd."
            if self.css_rounds >= CSS_ROUNDS {
                self.css_baseline = None;
                self.css_rounds = 0;
                self.ssthresh = self.cwnd;
                self.cwnd_prior = self.cwnd;
                return;
            }
            self.css_rounds += 1;
        }
    }

    /// The RTT sample of an ACK in the initial slow start, after the
    /// window grew, as in RFC 9406 §4.2's order.
    fn hystart_sample(&mut self, rtt: Option<Duration>) {
        if !self.hystart_active() || self.cwnd >= self.ssthresh {
            return;
        }
        if let Some(rtt) = rtt {
            // "currentRoundMinRTT = min(currentRoundMinRTT, currentRTT);
            // rttSampleCount += 1".
            self.current_round_min_rtt =
                Some(self.current_round_min_rtt.map_or(rtt, |m| m.min(rtt)));
            self.rtt_sample_count = self.rtt_sample_count.saturating_add(1);
        }
        if self.rtt_sample_count < N_RTT_SAMPLE {
            return;
        }
        let (Some(cur), Some(last)) = (self.current_round_min_rtt, self.last_round_min_rtt) else {
            return;
        };
        match self.css_baseline {
            None => {
                // "RttThresh = max(MIN_RTT_THRESH, min(lastRoundMinRTT /
                // MIN_RTT_DIVISOR, MAX_RTT_THRESH)); if (currentRoundMinRTT
                // >= (lastRoundMinRTT + RttThresh)) cssBaselineMinRtt =
                // currentRoundMinRTT; exit slow start and enter CSS".
                let thresh = Duration::from_micros(last.total_micros() / MIN_RTT_DIVISOR)
                    .clamp(MIN_RTT_THRESH, MAX_RTT_THRESH);
                if cur >= last + thresh {
                    self.css_baseline = Some(cur);
                    self.css_rounds = 1;
                    self.css_acc = 0;
                }
            }
            Some(baseline) => {
                // "If currentRoundMinRTT < cssBaselineMinRtt ... resume slow
                // start".
                if cur < baseline {
                    self.css_baseline = None;
                    self.css_rounds = 0;
                }
            }
        }
    }

    fn slow_start(&mut self, s: &AckSample) {
        self.epoch_start = None;
        // RFC 9406 §4.2: "cwnd = cwnd + min(N, L * SMSS)", and in CSS
        // "cwnd = cwnd + (min(N, L * SMSS) / CSS_GROWTH_DIVISOR)".
        let n = s.bytes_acked.min(L_SEGMENTS * self.mss);
        let inc = if self.css_baseline.is_some() {
            self.css_acc += n;
            let inc = self.css_acc / CSS_GROWTH_DIVISOR;
            self.css_acc %= CSS_GROWTH_DIVISOR;
            inc
        } else {
            n
        };
        self.cwnd = self
            .cwnd
            .saturating_add(inc)
            .min(self.ssthresh)
            .min(CWND_CAP);
    }

    fn avoidance(&mut self, now: Instant, s: &AckSample) {
        let mss = self.mss;
        let epoch = match self.epoch_start {
            Some(e) => e,
            None => {
                // A new congestion-avoidance stage (RFC 9438 §4.2): K from
                // eq. (2) with cwnd_epoch = cwnd, W_est = cwnd_epoch (§4.3).
                self.cwnd_epoch = self.cwnd;
                if self.reset_w_max || self.w_max <= self.cwnd {
                    // §4.8: "K is set to 0, and W_max is set to the
                    // congestion window size at the beginning of the current
                    // congestion avoidance stage" (also when W_max is
                    // undefined, §4.10, or already passed).
                    self.w_max = self.cwnd;
                    self.k = 0.0;
                } else {
                    // eq. (2): "K = cubic_root((W_max - cwnd_epoch)/C)".
                    let d = (self.w_max - self.cwnd) as f64 / mss as f64;
                    self.k = finite_or_zero((d / C).cbrt());
                }
                self.reset_w_max = false;
                self.w_est = self.cwnd;
                self.w_est_acc = 0;
                self.ca_acc = 0;
                self.epoch_start = Some(now);
                now
            }
        };
        let cwnd = self.cwnd.max(1);
        let acked = s.bytes_acked as u128;

        // §4.3 eq. (4): "W_est = W_est + α_cubic * segments_acked / cwnd",
        // with α_cubic = 1 once "W_est >= cwnd_prior".
        let alpha = if self.w_est >= self.cwnd_prior {
            ALPHA_RENO_NUM
        } else {
            ALPHA_CUBIC_NUM
        };
        let den = ALPHA_DEN * cwnd as u128;
        self.w_est_acc = self
            .w_est_acc
            .saturating_add(acked.saturating_mul(mss as u128).saturating_mul(alpha));
        let inc = self.w_est_acc / den;
        self.w_est_acc %= den;
        self.w_est = add_capped(self.w_est, inc);

        let t = now.saturating_since(epoch);
        if self.w_cubic(t) < self.w_est {
            // §4.3: "If so, CUBIC is in the Reno-friendly region and cwnd
            // SHOULD be set to W_est at each reception of a new ACK."
            self.cwnd = self.cwnd.max(self.w_est);
            self.ca_acc = 0;
        } else {
            // §4.2's target, clamped to [cwnd, 1.5 cwnd]; §4.4/§4.5: "cwnd
            // MUST be incremented by (target - cwnd)/cwnd for each received
            // ACK" (per SMSS acknowledged).
            let upper = self.cwnd.saturating_add(self.cwnd / 2);
            let target = self.w_cubic(t + self.rtt()).clamp(self.cwnd, upper);
            let diff = (target - self.cwnd) as u128;
            self.ca_acc = self.ca_acc.saturating_add(diff.saturating_mul(acked));
            let inc = self.ca_acc / cwnd as u128;
            self.ca_acc %= cwnd as u128;
            self.cwnd = add_capped(self.cwnd, inc);
        }
        self.cwnd = self.cwnd.min(CWND_CAP);
    }

    /// Nothing was in flight since `last_active`: move the epoch by that
    /// time so that W_cubic(t) does not grow over it.
    fn shift_epoch(&mut self, now: Instant) {
        if let (Some(e), Some(last)) = (self.epoch_start, self.last_active) {
            self.epoch_start = Some(e + now.saturating_since(last));
        }
    }

    fn touch(&mut self, now: Instant) {
        self.last_active = Some(self.last_active.map_or(now, |l| l.max(now)));
    }
}

impl CongestionControl for Cubic {
    fn name(&self) -> &'static str {
        "cubic"
    }

    fn on_sent(&mut self, now: Instant, bytes: usize, in_flight: usize) {
        if in_flight <= bytes {
            // The flight was empty until this segment.
            self.shift_epoch(now);
        }
        self.touch(now);
    }

    fn on_ack(&mut self, now: Instant, s: &AckSample) {
        self.touch(now);
        if let Some(r) = s.rtt {
            self.min_rtt = Some(self.min_rtt.map_or(r, |m| m.min(r)));
            if s.srtt.is_none() {
                // RFC 6298 (2.3): "SRTT <- (1 - alpha) * SRTT + alpha * R'".
                self.srtt = Some(match self.srtt {
                    None => r,
                    Some(old) => {
                        let v = (7 * old.total_micros() as u128 + r.total_micros() as u128) / 8;
                        Duration::from_micros(u64::try_from(v).unwrap_or(u64::MAX))
                    }
                });
            }
        }
        if let Some(r) = s.srtt {
            self.srtt = Some(r);
        }
        if let Some(m) = s.min_rtt {
            self.min_rtt = Some(self.min_rtt.map_or(m, |o| o.min(m)));
        }

        self.delivered = self.delivered.saturating_add(s.delivered as u64);
        if s.round_start {
            self.engine_rounds = true;
        }
        let round_start = if self.engine_rounds {
            s.round_start
        } else if s.delivered > 0 && self.delivered >= self.round_end {
            self.round_end = self.delivered.saturating_add(s.in_flight as u64);
            true
        } else {
            false
        };
        if round_start {
            self.hystart_round();
        }

        self.in_recovery = s.in_recovery;
        // RFC 9438 / RFC 6582: the window does not grow in recovery. RFC
        // 9438 §4.6 on flight size vs cwnd: implementations "MUST use other
        // measures to prevent cwnd from growing when the volume of bytes in
        // flight is smaller than cwnd" (and RFC 7661's spirit).
        let grow = !s.in_recovery
            && s.bytes_acked > 0
            && !(s.app_limited && s.prior_in_flight < self.cwnd / 2);
        if grow {
            if self.cwnd < self.ssthresh {
                self.slow_start(s);
            } else {
                self.avoidance(now, s);
            }
        }
        self.hystart_sample(s.rtt);
    }

    fn on_congestion(&mut self, now: Instant, e: CongestionEvent) {
        match e {
            CongestionEvent::Loss { in_flight } => {
                self.reduce(in_flight);
                // §4.6: "cwnd = max(ssthresh, 2)" (ssthresh already is).
                self.cwnd = self.ssthresh;
                self.in_recovery = true;
            }
            CongestionEvent::Timeout { in_flight, first } => {
                if first {
                    // §4.8: "CUBIC follows Reno to reduce cwnd [RFC5681] but
                    // sets ssthresh using β_cubic".
                    self.reduce(in_flight);
                }
                // RFC 5681 §3.1: "the value of cwnd MUST be set to no more
                // than the loss window, LW, which equals 1 full-sized
                // segment".
                self.cwnd = self.mss;
                self.epoch_start = None;
                self.reset_w_max = true;
                self.css_baseline = None;
                self.css_rounds = 0;
                self.in_recovery = false;
            }
            CongestionEvent::RecoveryEnd { in_flight } => {
                // RFC 6582 §3.2 step 3, option (1): "Set cwnd to min
                // (ssthresh, max(FlightSize, SMSS) + SMSS)", kept >= 2 SMSS.
                let w = in_flight.max(self.mss).saturating_add(self.mss);
                self.cwnd = self.ssthresh.min(w).max(2 * self.mss).min(CWND_CAP);
                self.in_recovery = false;
            }
            CongestionEvent::Undo => {
                // §4.9: "restore the original values of above-mentioned
                // variables as follows if the current cwnd is lower than
                // cwnd_prior"; otherwise "continue to use the current and
                // the most recent values of these variables".
                if let Some(saved) = self.undo.take() {
                    if self.cwnd < saved.cwnd {
                        self.restore(saved);
                    }
                }
            }
            CongestionEvent::Idle => {
                self.shift_epoch(now);
                self.touch(now);
                // RFC 5681 §4.1: "cwnd is reduced to RW = min(IW,cwnd)".
                self.cwnd = self.cwnd.min(self.iw).max(self.mss);
                if self.cwnd < self.ssthresh {
                    // Slow start again; the next avoidance stage is a new
                    // epoch.
                    self.epoch_start = None;
                }
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
        let mss = mss.clamp(1, MAX_MSS);
        if self.cwnd == self.iw {
            self.cwnd = mul_div(self.cwnd / self.mss, mss, 1);
        }
        self.iw = mul_div(self.iw / self.mss, mss, 1).clamp(mss, CWND_CAP);
        self.mss = mss;
        self.cwnd = self.cwnd.clamp(mss, CWND_CAP);
        if self.ssthresh != usize::MAX {
            self.ssthresh = self.ssthresh.max(2 * mss);
        }
    }

    fn info(&self) -> CcInfo {
        let state = if self.in_recovery {
            "recovery"
        } else if self.cwnd < self.ssthresh {
            if self.in_css() {
                "hystart-css"
            } else {
                "slow-start"
            }
        } else {
            "avoidance"
        };
        CcInfo {
            state,
            bw_estimate: None,
            min_rtt: self.min_rtt,
        }
    }
}

/// `v * num / den` without overflow, capped at CWND_CAP.
fn mul_div(v: usize, num: usize, den: usize) -> usize {
    let r = (v as u128).saturating_mul(num as u128) / (den.max(1) as u128);
    usize::try_from(r).unwrap_or(usize::MAX).min(CWND_CAP)
}

fn add_capped(v: usize, inc: u128) -> usize {
    let inc = usize::try_from(inc).unwrap_or(usize::MAX);
    v.saturating_add(inc).min(CWND_CAP)
}

fn finite_or_zero(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 {
        x
    } else {
        0.0
    }
}

fn f64_to_window(x: f64) -> usize {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= CWND_CAP as f64 {
        CWND_CAP
    } else {
        x as usize
    }
}

fn secs_to_duration(s: f64) -> Duration {
    let us = s * 1e6;
    if us.is_nan() || us <= 0.0 {
        Duration::ZERO
    } else if us >= u64::MAX as f64 {
        Duration::MAX
    } else {
        Duration::from_micros(us as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    /// An ACK of `bytes` with the window full before it (`prior`) and the
    /// rest still in flight after it.
    fn ack(bytes: usize, prior: usize, rtt: Duration) -> AckSample {
        AckSample {
            rtt: Some(rtt),
            srtt: Some(rtt),
            bytes_acked: bytes,
            delivered: bytes,
            prior_in_flight: prior,
            in_flight: prior.saturating_sub(bytes),
            ..AckSample::default()
        }
    }

    /// One RTT of a sender that keeps its window full: cwnd/SMSS ACKs of
    /// one SMSS each, spread evenly over `rtt`; the first one marked as a
    /// round start if `mark`.
    fn run_rtt(c: &mut Cubic, now: &mut Instant, rtt: Duration, mark: bool) {
        let n = (c.window() / MSS).max(1);
        let step = Duration::from_micros(rtt.total_micros() / n as u64);
        for i in 0..n {
            let mut s = ack(MSS, c.window(), rtt);
            s.round_start = mark && i == 0;
            c.on_ack(*now, &s);
            *now += step;
        }
    }

    fn segs(bytes: usize) -> f64 {
        bytes as f64 / MSS as f64
    }

    /// A controller in congestion avoidance right after a loss at a window
    /// of `w` segments, recovery over.
    fn after_loss(w: usize, now: Instant) -> Cubic {
        let mut c = Cubic::new(MSS, w * MSS);
        c.on_congestion(now, CongestionEvent::Loss { in_flight: w * MSS });
        c.on_congestion(
            now,
            CongestionEvent::RecoveryEnd {
                in_flight: c.ssthresh(),
            },
        );
        c
    }

    #[test]
    fn window_follows_the_cubic_function_after_a_loss() {
        // RFC 9438 §4.2: "W_cubic(t) = C*(t-K)^3 + W_max" and eq. (2): "K =
        // cubic_root((W_max - cwnd_epoch)/C)".
        let rtt = Duration::from_millis(100);
        let mut now = Instant::from_secs(1);
        let mut c = after_loss(1000, now);
        assert_eq!(c.window(), 700 * MSS);
        let k = (300.0f64 / 0.4).cbrt();
        let w = |t: f64| 0.4 * (t - k).powi(3) + 1000.0;

        let mut samples = Vec::new();
        while samples.len() < 150 {
            let t0 = c.epoch_start().map(|e| now.saturating_since(e));
            samples.push((t0.map_or(0.0, |d| d.as_secs_f64()), segs(c.window())));
            run_rtt(&mut c, &mut now, rtt, false);
            if samples.len() == 1 {
                // The epoch began at the first ACK in avoidance.
                assert!((c.k().as_secs_f64() - k).abs() < 1e-5, "K {:?}", c.k());
                assert_eq!(c.w_max(), 1000 * MSS);
            }
        }
        for &(t, cwnd) in &samples[1..] {
            let expect = w(t);
            let tol = (expect * 0.05).max(2.0);
            assert!(
                (cwnd - expect).abs() <= tol,
                "t={t:.2}s cwnd={cwnd:.1} W_cubic={expect:.1}"
            );
        }
        // Concave, then a plateau near W_max at t ≈ K, then convex.
        let at = |t: f64| {
            samples
                .iter()
                .find(|s| s.0 >= t)
                .map(|s| s.1)
                .expect("sampled")
        };
        let early = at(1.0) - at(0.0);
        let plateau = at(k + 0.5) - at(k - 0.5);
        let late = at(k + 5.0) - at(k + 4.0);
        assert!(early > 4.0 * plateau, "early {early} plateau {plateau}");
        assert!(late > 4.0 * plateau, "late {late} plateau {plateau}");
        assert!((at(k) - 1000.0).abs() < 1000.0 * 0.02, "at K {}", at(k));
        assert!(at(k + 5.0) > 1000.0, "convex region probes above W_max");
    }

    #[test]
    fn loss_multiplies_cwnd_and_ssthresh_by_beta() {
        // RFC 9438 §4.6: "ssthresh = flight_size * β_cubic ... cwnd =
        // max(ssthresh, 2)", "β_cubic SHOULD be set to 0.7".
        let mut c = Cubic::new(MSS, 100 * MSS);
        c.on_congestion(
            Instant::ZERO,
            CongestionEvent::Loss {
                in_flight: 100 * MSS,
            },
        );
        assert_eq!((c.window(), c.ssthresh()), (70 * MSS, 70 * MSS));
        assert_eq!(c.w_max(), 100 * MSS);
        assert_eq!(c.info().state, "recovery");

        // With less in flight than cwnd, the flight size sets it, with a
        // floor of 2 SMSS ("ssthresh = max(ssthresh, 2)").
        let mut c = Cubic::new(MSS, 100 * MSS);
        c.on_congestion(
            Instant::ZERO,
            CongestionEvent::Loss {
                in_flight: 50 * MSS,
            },
        );
        assert_eq!(c.ssthresh(), 35 * MSS);
        c.on_congestion(Instant::ZERO, CongestionEvent::Loss { in_flight: 0 });
        assert_eq!((c.window(), c.ssthresh()), (2 * MSS, 2 * MSS));
    }

    #[test]
    fn fast_convergence_lowers_w_max_when_a_loss_comes_below_it() {
        // RFC 9438 §4.7: "W_max = cwnd * (1 + β_cubic) / 2 if cwnd < W_max
        // and fast convergence is enabled ... cwnd otherwise".
        let mut c = after_loss(100, Instant::ZERO);
        assert_eq!(c.w_max(), 100 * MSS);
        c.on_congestion(
            Instant::ZERO,
            CongestionEvent::Loss {
                in_flight: 70 * MSS,
            },
        );
        assert_eq!(c.w_max(), 70 * MSS * 17 / 20);
        assert_eq!(c.window(), 49 * MSS);
        // A loss above the previous W_max just remembers cwnd.
        let mut c = after_loss(100, Instant::ZERO);
        let mut now = Instant::ZERO;
        while c.window() < 110 * MSS {
            run_rtt(&mut c, &mut now, Duration::from_millis(20), false);
        }
        let w = c.window();
        c.on_congestion(now, CongestionEvent::Loss { in_flight: w });
        assert_eq!(c.w_max(), w);
    }

    #[test]
    fn reno_friendly_region_dominates_for_small_windows_and_short_rtts() {
        // RFC 9438 §4.3: "If so, CUBIC is in the Reno-friendly region and
        // cwnd SHOULD be set to W_est", eq. (4) "W_est = W_est + α_cubic *
        // segments_acked / cwnd", α_cubic = 1 once "W_est >= cwnd_prior".
        let rtt = Duration::from_millis(1);
        let mut now = Instant::ZERO;
        let mut c = after_loss(20, now);
        let alpha = 3.0 * (1.0 - 0.7) / (1.0 + 0.7);
        let mut aimd = 14.0f64;
        for _ in 0..200 {
            run_rtt(&mut c, &mut now, rtt, false);
            aimd += if aimd >= 20.0 { 1.0 } else { alpha };
            // (The driver's whole ACKs per RTT lag a little behind.)
            let tol = (aimd * 0.03).max(2.0);
            assert!(
                segs(c.window()) >= aimd - tol,
                "{} < {aimd}",
                segs(c.window())
            );
        }
        let t = now.saturating_since(c.epoch_start().expect("in avoidance"));
        assert!(c.window() > 4 * c.w_cubic(t), "far above W_cubic(t)");
        assert_eq!(c.window(), c.w_est());
    }

    #[test]
    fn target_is_clamped_to_one_and_a_half_cwnd_per_rtt() {
        // RFC 9438 §4.2: "target = 1.5*cwnd if W_cubic(t + RTT) > 1.5*cwnd".
        let mut now = Instant::ZERO;
        let mut c = after_loss(100, now);
        run_rtt(&mut c, &mut now, Duration::from_millis(10), false);
        // A minute later W_cubic is enormous; one RTT grows at most 1.5x.
        now += Duration::from_secs(60);
        let before = c.window();
        run_rtt(&mut c, &mut now, Duration::from_millis(10), false);
        assert!(
            c.window() <= before * 3 / 2 + MSS,
            "{before} -> {}",
            c.window()
        );
        assert!(c.window() > before * 5 / 4);
    }

    #[test]
    fn timeout_sets_one_smss_and_ssthresh_only_on_the_first() {
        // RFC 9438 §4.8: "CUBIC follows Reno to reduce cwnd [RFC5681] but
        // sets ssthresh using β_cubic"; RFC 5681 §3.1: "the value of cwnd
        // MUST be set to no more than the loss window, LW, which equals 1
        // full-sized segment".
        let mut c = Cubic::new(MSS, 100 * MSS);
        let first = CongestionEvent::Timeout {
            in_flight: 100 * MSS,
            first: true,
        };
        c.on_congestion(Instant::ZERO, first);
        assert_eq!((c.window(), c.ssthresh()), (MSS, 70 * MSS));
        let again = CongestionEvent::Timeout {
            in_flight: MSS,
            first: false,
        };
        c.on_congestion(Instant::ZERO, again);
        assert_eq!((c.window(), c.ssthresh()), (MSS, 70 * MSS));
        assert_eq!(c.info().state, "slow-start");

        // "During the first congestion avoidance stage after a timeout ...
        // K is set to 0, and W_max is set to the congestion window size at
        // the beginning of the current congestion avoidance stage."
        let mut now = Instant::ZERO;
        while c.epoch_start().is_none() {
            run_rtt(&mut c, &mut now, Duration::from_millis(10), false);
        }
        assert_eq!(c.k(), Duration::ZERO);
        assert_eq!(c.w_max(), 70 * MSS);
    }

    type State = (usize, usize, usize, Duration, Option<Instant>, usize);

    fn state(c: &Cubic) -> State {
        (
            c.window(),
            c.ssthresh(),
            c.w_max(),
            c.k(),
            c.epoch_start(),
            c.w_est(),
        )
    }

    #[test]
    fn undo_restores_the_state_from_before_a_spurious_event() {
        // RFC 9438 §4.9: "CUBIC SHOULD restore the original values of
        // above-mentioned variables ... if the current cwnd is lower than
        // cwnd_prior".
        let mut now = Instant::ZERO;
        let mut c = after_loss(100, now);
        for _ in 0..20 {
            run_rtt(&mut c, &mut now, Duration::from_millis(10), false);
        }
        let before = state(&c);
        let w = c.window();
        c.on_congestion(now, CongestionEvent::Loss { in_flight: w });
        assert_ne!(state(&c), before);
        c.on_congestion(now, CongestionEvent::Undo);
        assert_eq!(state(&c), before);

        let first = CongestionEvent::Timeout {
            in_flight: w,
            first: true,
        };
        c.on_congestion(now, first);
        assert_eq!(c.window(), MSS);
        c.on_congestion(now, CongestionEvent::Undo);
        assert_eq!(state(&c), before);

        // A spurious loss in the initial slow start restores HyStart++ too.
        let mut c = Cubic::new(MSS, 10 * MSS);
        c.on_congestion(
            now,
            CongestionEvent::Loss {
                in_flight: 10 * MSS,
            },
        );
        c.on_congestion(now, CongestionEvent::Undo);
        assert_eq!(state(&Cubic::new(MSS, 10 * MSS)), state(&c));
        assert_eq!(c.ssthresh(), usize::MAX);
    }

    #[test]
    fn undo_keeps_the_current_state_once_cwnd_is_past_the_prior() {
        // RFC 9438 §4.9: "when the detection happens long after a spurious
        // loss event and the current cwnd is already higher than
        // cwnd_prior, CUBIC SHOULD continue to use the current and the most
        // recent values of these variables."
        let mut now = Instant::ZERO;
        let mut c = after_loss(100, now);
        while c.window() <= 100 * MSS {
            run_rtt(&mut c, &mut now, Duration::from_millis(10), false);
        }
        let s = state(&c);
        c.on_congestion(now, CongestionEvent::Undo);
        assert_eq!(state(&c), s);
        // And an Undo with nothing to undo does nothing.
        c.on_congestion(now, CongestionEvent::Undo);
        assert_eq!(state(&c), s);
    }

    #[test]
    fn idle_restarts_at_the_initial_window_and_does_not_count_idle_time() {
        // RFC 5681 §4.1: "cwnd is reduced to RW = min(IW,cwnd)".
        let mut c = Cubic::new(MSS, 10 * MSS);
        c.on_congestion(Instant::ZERO, CongestionEvent::Loss { in_flight: 100 });
        let mut now = Instant::ZERO;
        while c.window() <= 10 * MSS {
            run_rtt(&mut c, &mut now, Duration::from_millis(10), false);
        }
        c.on_congestion(now, CongestionEvent::Idle);
        assert_eq!(c.window(), 10 * MSS);
        let mut big = Cubic::new(MSS, 40 * MSS);
        big.on_congestion(now, CongestionEvent::Idle);
        assert_eq!(big.window(), 40 * MSS);

        // The epoch moves by the idle time: after 100 s idle the window
        // grows exactly as if the idle time had not been.
        let rtt = Duration::from_millis(50);
        let mut t1 = Instant::ZERO;
        let mut a = Cubic::new(MSS, 1000 * MSS);
        a.on_congestion(
            t1,
            CongestionEvent::Loss {
                in_flight: 100 * MSS,
            },
        );
        for _ in 0..10 {
            run_rtt(&mut a, &mut t1, rtt, false);
        }
        // (The flight empties at the last ACK, one step before t1.)
        a.on_sent(t1, MSS, MSS);
        let mut b = a.clone();
        let mut t2 = t1 + Duration::from_secs(100);
        b.on_congestion(t2, CongestionEvent::Idle);
        b.on_sent(t2, MSS, MSS);
        assert_eq!(b.window(), a.window(), "cwnd <= IW: no restart");
        for _ in 0..10 {
            run_rtt(&mut a, &mut t1, rtt, false);
            run_rtt(&mut b, &mut t2, rtt, false);
            assert_eq!(a.window(), b.window());
        }
        // A send into an empty flight also moves it (request/response).
        a.on_sent(t1, MSS, MSS);
        let mut d = a.clone();
        let mut t3 = t1 + Duration::from_secs(30);
        d.on_sent(t3, MSS, MSS);
        run_rtt(&mut a, &mut t1, rtt, false);
        run_rtt(&mut d, &mut t3, rtt, false);
        assert_eq!(a.window(), d.window());
    }

    #[test]
    fn app_limited_acks_do_not_grow_the_window() {
        // RFC 9438 §4.6: implementations "MUST use other measures to
        // prevent cwnd from growing when the volume of bytes in flight is
        // smaller than cwnd".
        let mut c = Cubic::new(MSS, 10 * MSS);
        let mut s = ack(MSS, 2 * MSS, Duration::from_millis(10));
        s.app_limited = true;
        c.on_ack(Instant::ZERO, &s);
        assert_eq!(c.window(), 10 * MSS);
        s.app_limited = false;
        c.on_ack(Instant::ZERO, &s);
        assert_eq!(c.window(), 11 * MSS);
    }

    #[test]
    fn no_growth_in_recovery() {
        let mut c = after_loss(100, Instant::ZERO);
        c.on_congestion(
            Instant::ZERO,
            CongestionEvent::Loss {
                in_flight: 70 * MSS,
            },
        );
        let w = c.window();
        let mut s = ack(MSS, w, Duration::from_millis(10));
        s.in_recovery = true;
        for i in 0..100 {
            c.on_ack(Instant::from_millis(i), &s);
        }
        assert_eq!(c.window(), w);
    }

    #[test]
    fn slow_start_adds_at_most_l_smss_per_ack() {
        // RFC 9406 §4.2: "cwnd = cwnd + min(N, L * SMSS)", L = 8 here (not
        // paced).
        let mut c = Cubic::new(MSS, 10 * MSS);
        c.on_ack(
            Instant::ZERO,
            &ack(3 * MSS, 10 * MSS, Duration::from_millis(5)),
        );
        assert_eq!(c.window(), 13 * MSS);
        c.on_ack(
            Instant::ZERO,
            &ack(50 * MSS, 13 * MSS, Duration::from_millis(5)),
        );
        assert_eq!(c.window(), 21 * MSS);
    }

    #[test]
    fn hystart_rtt_rise_enters_css_then_avoidance_after_css_rounds() {
        // RFC 9406 §4.2: "if (currentRoundMinRTT >= (lastRoundMinRTT +
        // RttThresh)) ... exit slow start and enter CSS"; in CSS "cwnd =
        // cwnd + (min(N, L * SMSS) / CSS_GROWTH_DIVISOR)"; "If CSS_ROUNDS
        // rounds are complete, enter congestion avoidance by setting the
        // ssthresh to the current cwnd."
        let mut now = Instant::ZERO;
        let mut c = Cubic::new(MSS, 10 * MSS);
        for _ in 0..3 {
            run_rtt(&mut c, &mut now, Duration::from_millis(50), true);
        }
        assert_eq!(c.window(), 80 * MSS);
        assert!(!c.in_css());
        // RttThresh = clamp(50 ms / 8, 4 ms, 16 ms) = 6.25 ms; +10 ms.
        run_rtt(&mut c, &mut now, Duration::from_millis(60), true);
        assert!(c.in_css());
        assert_eq!(c.info().state, "hystart-css");
        // 8 ACKs at full slow-start speed (the eighth grows before its RTT
        // is checked), the other 72 at a quarter.
        assert_eq!(c.window(), 160 * MSS - 72 * 3 * MSS / 4);
        let w = c.window();
        c.on_ack(now, &ack(MSS, w, Duration::from_millis(60)));
        assert_eq!(c.window(), w + MSS / 4);

        // The round CSS began in is the first of CSS_ROUNDS.
        for _ in 1..CSS_ROUNDS {
            run_rtt(&mut c, &mut now, Duration::from_millis(60), true);
            assert!(c.in_css());
            assert_eq!(c.ssthresh(), usize::MAX);
        }
        let w = c.window();
        run_rtt(&mut c, &mut now, Duration::from_millis(60), true);
        assert!(!c.in_css());
        assert_eq!(c.ssthresh(), w);
        assert_eq!(c.info().state, "avoidance");
        assert!(c.epoch_start().is_some());
        assert_eq!((c.w_max(), c.k()), (w, Duration::ZERO));
    }

    #[test]
    fn hystart_rtt_drop_in_css_resumes_slow_start() {
        // RFC 9406 §4.2: "If currentRoundMinRTT < cssBaselineMinRtt ...
        // resume slow start".
        let mut now = Instant::ZERO;
        let mut c = Cubic::new(MSS, 10 * MSS);
        for _ in 0..3 {
            run_rtt(&mut c, &mut now, Duration::from_millis(50), true);
        }
        run_rtt(&mut c, &mut now, Duration::from_millis(60), true);
        assert!(c.in_css());
        run_rtt(&mut c, &mut now, Duration::from_millis(55), true);
        assert!(!c.in_css());
        assert_eq!(c.info().state, "slow-start");
        let w = c.window();
        c.on_ack(now, &ack(MSS, w, Duration::from_millis(55)));
        assert_eq!(c.window(), w + MSS);
    }

    #[test]
    fn hystart_without_rtt_rise_stays_in_slow_start() {
        // RFC 9406 §4.2: the exit needs "currentRoundMinRTT >=
        // (lastRoundMinRTT + RttThresh)"; 4 ms of jitter at 50 ms is below
        // the 6.25 ms threshold.
        let mut now = Instant::ZERO;
        let mut c = Cubic::new(MSS, 10 * MSS);
        for i in 0..12 {
            let rtt = Duration::from_millis(if i % 2 == 0 { 50 } else { 54 });
            run_rtt(&mut c, &mut now, rtt, true);
            assert!(!c.in_css(), "round {i}");
        }
        assert_eq!(c.window(), (10 * MSS) << 12);
        assert_eq!(c.ssthresh(), usize::MAX);
    }

    #[test]
    fn hystart_detects_rounds_from_delivered_bytes_when_tcp_does_not() {
        // The same rise with `round_start` never set: rounds end when the
        // bytes in flight at their start have been delivered.
        let mut now = Instant::ZERO;
        let mut c = Cubic::new(MSS, 10 * MSS);
        for _ in 0..3 {
            run_rtt(&mut c, &mut now, Duration::from_millis(50), false);
        }
        assert!(!c.in_css());
        for _ in 0..2 {
            run_rtt(&mut c, &mut now, Duration::from_millis(60), false);
        }
        assert!(c.in_css());
        for _ in 0..CSS_ROUNDS {
            run_rtt(&mut c, &mut now, Duration::from_millis(60), false);
        }
        assert!(!c.in_css());
        assert_ne!(c.ssthresh(), usize::MAX);
    }

    #[test]
    fn hystart_runs_only_in_the_initial_slow_start() {
        // RFC 9406 §4.3: "An implementation SHOULD use HyStart++ only for
        // the initial slow start".
        let mut now = Instant::ZERO;
        let mut c = Cubic::new(MSS, 10 * MSS);
        let to = CongestionEvent::Timeout {
            in_flight: 1000 * MSS,
            first: true,
        };
        c.on_congestion(now, to);
        for i in 0..8 {
            run_rtt(&mut c, &mut now, Duration::from_millis(50 + 20 * i), false);
            assert!(!c.in_css());
        }
    }

    #[test]
    fn set_mss_keeps_the_floors() {
        let mut c = Cubic::new(MSS, 10 * MSS);
        c.set_mss(1460);
        assert_eq!(c.window(), 14_600);
        c.on_congestion(Instant::ZERO, CongestionEvent::Loss { in_flight: 0 });
        c.set_mss(9000);
        assert!(c.ssthresh() >= 18_000 && c.window() >= 9000);
        c.set_mss(0);
        assert!(c.window() >= 1);
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
        fn size(&mut self) -> usize {
            match self.below(8) {
                0 => 0,
                1 => usize::MAX,
                2 => self.next() as usize,
                _ => self.below(200_000) as usize,
            }
        }
        fn dur(&mut self) -> Duration {
            match self.below(10) {
                0 => Duration::ZERO,
                1 => Duration::MAX,
                2 => Duration::from_micros(self.next()),
                _ => Duration::from_micros(self.below(500_000)),
            }
        }
        fn opt_dur(&mut self) -> Option<Duration> {
            if self.below(4) == 0 {
                None
            } else {
                Some(self.dur())
            }
        }
    }

    #[test]
    fn random_operations_keep_the_invariants() {
        for seed in 1..=50u64 {
            let mut r = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut c = Cubic::new(MSS, 10 * MSS);
            let mut now = Instant::from_secs(1000);
            for step in 0..10_000 {
                match r.below(12) {
                    0 => c.on_sent(now, r.size(), r.size()),
                    1..=4 => {
                        let s = AckSample {
                            rtt: r.opt_dur(),
                            srtt: r.opt_dur(),
                            min_rtt: r.opt_dur(),
                            bytes_acked: r.size(),
                            delivered: r.size(),
                            lost: r.size(),
                            prior_in_flight: r.size(),
                            in_flight: r.size(),
                            in_recovery: r.below(4) == 0,
                            app_limited: r.below(4) == 0,
                            rate: None,
                            round_start: r.below(3) == 0,
                            round_count: r.next(),
                            total_delivered: r.next(),
                        };
                        c.on_ack(now, &s);
                    }
                    5 => c.on_congestion(
                        now,
                        CongestionEvent::Loss {
                            in_flight: r.size(),
                        },
                    ),
                    6 => {
                        let e = CongestionEvent::Timeout {
                            in_flight: r.size(),
                            first: r.below(2) == 0,
                        };
                        c.on_congestion(now, e);
                    }
                    7 => {
                        let e = CongestionEvent::RecoveryEnd {
                            in_flight: r.size(),
                        };
                        c.on_congestion(now, e);
                    }
                    8 => c.on_congestion(now, CongestionEvent::Idle),
                    9 => c.on_congestion(now, CongestionEvent::Undo),
                    10 => {
                        now = match r.below(6) {
                            0 => now,
                            1 => now + Duration::MAX,
                            2 => now - r.dur(),
                            3 => Instant::from_micros(r.next() as i64),
                            _ => now + r.dur(),
                        }
                    }
                    _ => {
                        let mss = [0, 1, 7, 536, 1460, 1461, 9000, 65_535, usize::MAX];
                        c.set_mss(mss[r.below(mss.len() as u64) as usize]);
                    }
                }
                let ctx = format!("seed {seed} step {step}: {c:?}");
                assert!(c.window() >= c.mss, "{ctx}");
                assert!(c.window() >= 1 && c.window() <= CWND_CAP, "{ctx}");
                assert!(
                    c.ssthresh() == usize::MAX || c.ssthresh() >= 2 * c.mss,
                    "{ctx}"
                );
                assert!(c.k.is_finite() && c.k >= 0.0, "{ctx}");
                assert!(c.w_max <= CWND_CAP && c.w_est <= CWND_CAP, "{ctx}");
                let _ = c.w_cubic(Duration::MAX);
                let _ = c.info();
            }
        }
    }
}
