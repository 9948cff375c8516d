//! BBR congestion control, version 3, as specified by
//! draft-ietf-ccwg-bbr-06 (July 2026; "BBRv3"). Section numbers below are
//! that draft's; names follow its pseudocode (BBR.x becomes `self.x`).
//!
//! Where ringstack differs from the draft, and why:
//!
//! - Rounds (§5.5.1). TCP reports `round_start`, but the draft re-anchors
//!   rounds with StartRound() when ProbeBW phases and ProbeRTT begin. So
//!   BBR runs UpdateRound() itself on the rate sample's `prior_delivered`
//!   (P.delivered) against its own `next_round_delivered`, and falls back
//!   to TCP's `round_start` only for ACKs without a rate sample.
//! - Losses (§5.2.4, §5.5.10.2). The engine reports lost bytes per ACK, not
//!   per packet, so HandleLostPacket(P) becomes: NoteLoss() on every ACK
//!   with `lost > 0`, and the IsInflightTooHigh() test on each ACK's rate
//!   sample (RS.lost against RS.tx_in_flight), which is where Linux makes
//!   it too. InflightAtLoss() needs the lost packet's own state and is not
//!   done: `tx_in_flight` of the delivered packet is used as is.
//!   C.has_selective_acks is assumed true (the engine does SACK recovery).
//! - Startup's loss exit (§5.3.1.3) counts "discontiguous lost ranges" as
//!   ACKs that newly marked loss, and "in fast recovery for at least one
//!   full round" as "in recovery now, and recovery began before this round
//!   boundary" (back-to-back recovery episodes would otherwise never
//!   qualify).
//! - MarkConnectionAppLimited() in ProbeRTT (§5.3.4.3) cannot reach TCP's
//!   sampler: BBR keeps the mark itself and treats samples of segments
//!   sent before it was passed as app-limited.
//! - C.is_cwnd_limited is estimated from `on_sent` (in flight within one
//!   SMSS of cwnd at some send in this or the last round).
//! - Restart from idle (§5.4): `on_sent` with nothing else in flight, or an
//!   `Idle` event; C.app_limited is assumed (the window was not full).
//! - Loss recovery (§5.6.4.4): this draft has no packet conservation
//!   (earlier drafts' BBRModulateCwndForRecovery): fast recovery saves cwnd
//!   and leaves it to the model; RTO sets cwnd = in flight + 1 SMSS;
//!   `RecoveryEnd` and `Undo` restore the saved cwnd.
//! - The max_bw filter (§5.5.3) is two cycle slots; an empty cycle does not
//!   push out the previous one.
//! - No ECN response (the draft specifies none, §3.7).
//! - Without a rate sample (`rate: None`) BBR updates nothing that needs
//!   RS: no bandwidth, loss-rate or full-pipe update; the RTT, cwnd growth
//!   by `delivered`, and the state machine's timers still run.
//! - `ssthresh()`: BBR has none; it reports cwnd so that callers that add
//!   to it (NewReno-style recovery without SACK) stay finite.
//! - The short-term lower bounds (§5.5.10.3, bw_lo and inflight_lo) are
//!   cut only after a round whose loss rate passes LossThresh (2 %), not
//!   after any round with a loss: see `adapt_lower_bounds_from_congestion`.

mod filters;
#[cfg(test)]
mod tests;

use super::{AckSample, CcInfo, CongestionControl, CongestionEvent, RateSample};
use crate::time::{Duration, Instant};
use filters::{MaxBwFilter, WindowedMax};

/// §2.5: "4 * ln(2) ~= 2.77".
pub const STARTUP_PACING_GAIN: f64 = 2.77;
/// §2.5 / §5.3.2: "BBR uses the value 0.5".
pub const DRAIN_PACING_GAIN: f64 = 0.5;
/// §2.6: BBR.DefaultCwndGain = 2.
pub const DEFAULT_CWND_GAIN: f64 = 2.0;
/// §5.3.3.1: ProbeBW_DOWN paces at 0.90.
pub const PROBE_BW_DOWN_PACING_GAIN: f64 = 0.9;
/// §5.3.3.5: ProbeBW_UP paces at 1.25 ...
pub const PROBE_BW_UP_PACING_GAIN: f64 = 1.25;
/// ... "It also raises BBR.cwnd_gain to 2.25".
pub const PROBE_BW_UP_CWND_GAIN: f64 = 2.25;
/// §2.16.2: BBR.ProbeRTTCwndGain = 0.5.
pub const PROBE_RTT_CWND_GAIN: f64 = 0.5;
/// §2.5: BBR.PacingMarginPercent = 1.
pub const PACING_MARGIN_PERCENT: f64 = 1.0;
/// §2.8: BBR.LossThresh = 2 %.
pub const LOSS_THRESH: f64 = 0.02;
/// §2.8: BBR.Beta = 0.7.
pub const BETA: f64 = 0.7;
/// §2.8: BBR.Headroom = 0.15.
pub const HEADROOM: f64 = 0.15;
/// §2.8: BBR.MinPipeCwnd = 4 * C.SMSS.
pub const MIN_PIPE_CWND_SEGMENTS: u64 = 4;
/// §5.3.1.2: "less than 25 percent" growth ...
pub const FULL_BW_GROWTH: f64 = 1.25;
/// ... over "three non-application-limited rounds".
pub const FULL_BW_COUNT: u32 = 3;
/// §5.3.1.3: BBRStartupFullLossCnt = 6.
pub const STARTUP_FULL_LOSS_COUNT: u32 = 6;
/// §2.16.1: BBR.MinRTTFilterLen = 10 s.
pub const MIN_RTT_FILTER_LEN: Duration = Duration::from_secs(10);
/// §2.16.2: BBR.ProbeRTTInterval = 5 s ("each BBR flow MUST use the
/// standard BBR.ProbeRTTInterval of 5 secs", §5.3.4.2). BBRv1 entered
/// ProbeRTT when the 10 s min_rtt expired; v3 does so every 5 s.
pub const PROBE_RTT_INTERVAL: Duration = Duration::from_secs(5);
/// §2.16.2: BBR.ProbeRTTDuration = 200 ms.
pub const PROBE_RTT_DURATION: Duration = Duration::from_millis(200);
/// §2.12: BBR.ExtraAckedFilterLen = 10 rounds.
pub const EXTRA_ACKED_FILTER_LEN: u64 = 10;
/// §5.3.3.8: the Reno-coexistence bound, 63 rounds.
pub const RENO_PROBE_ROUNDS_MAX: u64 = 63;
/// §5.3.3.8: T_bbr is uniformly random in [2 s, 3 s].
pub const PROBE_WAIT_BASE: Duration = Duration::from_secs(2);
pub const PROBE_WAIT_RAND: Duration = Duration::from_secs(1);
/// The largest cwnd BBR will ask for.
pub const MAX_CWND: u64 = 1 << 30;
/// SMSS values beyond this are clamped (keeps 4 * SMSS far below MAX_CWND).
const MAX_MSS: usize = 1 << 20;
/// §5.6.3: C.send_quantum is at most 64 KB.
const MAX_SEND_QUANTUM: u64 = 64 * 1024;
/// "Infinity" for volumes and rates.
const INF: u64 = u64::MAX;

/// BBR.state (§5.1), with ProbeBW's four phases spelled out.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum BbrState {
    Startup,
    Drain,
    ProbeBwDown,
    ProbeBwCruise,
    ProbeBwRefill,
    ProbeBwUp,
    ProbeRtt,
}

impl BbrState {
    pub fn as_str(self) -> &'static str {
        match self {
            BbrState::Startup => "startup",
            BbrState::Drain => "drain",
            BbrState::ProbeBwDown => "probe-bw-down",
            BbrState::ProbeBwCruise => "probe-bw-cruise",
            BbrState::ProbeBwRefill => "probe-bw-refill",
            BbrState::ProbeBwUp => "probe-bw-up",
            BbrState::ProbeRtt => "probe-rtt",
        }
    }

    pub fn is_probe_bw(self) -> bool {
        matches!(
            self,
            BbrState::ProbeBwDown
                | BbrState::ProbeBwCruise
                | BbrState::ProbeBwRefill
                | BbrState::ProbeBwUp
        )
    }

    /// The single-step transitions the draft's state machine can make
    /// (§5.1.1, plus the Undo returns of §5.5.11.2).
    pub fn can_become(self, to: BbrState) -> bool {
        use BbrState::*;
        if self == to || to == ProbeRtt {
            return true;
        }
        match self {
            Startup => to == Drain,
            // Drain → Startup is an Undo of a loss-based Startup exit.
            Drain => matches!(to, ProbeBwDown | Startup),
            ProbeBwDown => matches!(to, ProbeBwCruise | ProbeBwRefill | Startup),
            ProbeBwCruise => matches!(to, ProbeBwRefill | Startup),
            ProbeBwRefill => matches!(to, ProbeBwUp | Startup),
            ProbeBwUp => matches!(to, ProbeBwDown | Startup),
            ProbeRtt => matches!(to, ProbeBwDown | Startup),
        }
    }
}

/// BBR.ack_phase (§2.14).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum AckPhase {
    Init,
    Refilling,
    ProbeStarting,
    ProbeFeedback,
    ProbeStopping,
}

/// The parts of a rate sample BBR reads, with the ProbeRTT app-limited
/// mark applied.
#[derive(Copy, Clone, Debug)]
struct Rs {
    delivery_rate: u64,
    delivered: u64,
    is_app_limited: bool,
    tx_in_flight: u64,
    lost: u64,
    prior_delivered: u64,
}

#[derive(Clone, Debug)]
pub struct Bbr {
    mss: u64,
    initial_cwnd: u64,
    cwnd: u64,
    pacing_rate: u64,
    send_quantum: u64,
    offload_budget: u64,

    state: BbrState,
    pacing_gain: f64,
    cwnd_gain: f64,

    // Rounds (§5.5.1).
    round_count: u64,
    round_start: bool,
    next_round_delivered: u64,
    /// C.delivered as TCP last reported it.
    delivered: u64,
    rounds_since_probe_up: u64,
    cwnd_limited_this_round: bool,
    cwnd_limited_last_round: bool,

    // Bandwidth model (§2.9.1, §2.10).
    max_bw_filter: MaxBwFilter,
    max_bw: u64,
    bw_shortterm: u64,
    bw: u64,
    bw_latest: u64,
    inflight_latest: u64,
    // Volume model (§2.9.2).
    inflight_longterm: u64,
    inflight_shortterm: u64,
    max_inflight: u64,
    extra_acked_filter: WindowedMax,
    extra_acked_interval_start: Instant,
    extra_acked_delivered: u64,

    // min_rtt and ProbeRTT (§2.16).
    min_rtt: Option<Duration>,
    min_rtt_stamp: Instant,
    probe_rtt_min_delay: Option<Duration>,
    probe_rtt_min_stamp: Instant,
    probe_rtt_expired: bool,
    probe_rtt_done_stamp: Option<Instant>,
    probe_rtt_round_done: bool,
    probe_rtt_count: u64,
    /// MarkConnectionAppLimited(): samples of segments sent while
    /// C.delivered was below this are app-limited.
    app_limited_until: u64,
    prior_cwnd: u64,
    idle_restart: bool,

    // Startup (§2.13).
    full_bw_reached: bool,
    full_bw_now: bool,
    full_bw: u64,
    full_bw_count: u32,
    drain_start_round: u64,

    // Congestion signals (§5.5.10).
    loss_round_delivered: u64,
    loss_round_start: bool,
    is_loss_in_round: bool,
    loss_events_in_round: u32,
    round_lost: u64,
    round_delivered: u64,
    in_recovery: bool,
    ack_in_recovery: bool,
    recovery_round: u64,

    // ProbeBW (§2.14).
    ack_phase: AckPhase,
    is_bw_probe_sample: bool,
    bw_probe_up_acked: u64,
    probe_up_acked_per_inc: u64,
    bw_probe_up_rounds: u32,
    bw_probe_wait: Duration,
    cycle_stamp: Instant,
    prev_probe_too_high: bool,
    prev_probe_precautionary: bool,

    // Undo (§2.15).
    undo_state: Option<BbrState>,
    undo_bw_shortterm: u64,
    undo_inflight_shortterm: u64,
    undo_inflight_longterm: u64,

    /// xorshift64 state for PickProbeWait(); `now` of the first event is
    /// mixed in so that flows started at different times do not probe in
    /// lock step.
    rng: u64,
    seeded: bool,
    has_seen_rtt: bool,
    sent_any: bool,
    #[cfg(test)]
    illegal_transitions: u64,
}

/// `x * g`, saturating, 0 for NaN or negative.
fn mul_gain(x: u64, g: f64) -> u64 {
    let v = x as f64 * g;
    if v.is_nan() || v <= 0.0 {
        0
    } else if v >= u64::MAX as f64 {
        u64::MAX
    } else {
        v as u64
    }
}

/// bw (bytes/s) × t, saturating.
fn volume(bw: u64, t: Duration) -> u64 {
    let v = bw as u128 * t.total_micros() as u128 / 1_000_000;
    u64::try_from(v).unwrap_or(u64::MAX)
}

impl Bbr {
    pub fn new(mss: usize, iw: usize) -> Bbr {
        Bbr::with_seed(mss, iw, 0x9e37_79b9_7f4a_7c15)
    }

    /// As `new`, with the seed of the probe-timing randomness given.
    pub fn with_seed(mss: usize, iw: usize, seed: u64) -> Bbr {
        let mss = mss.clamp(1, MAX_MSS) as u64;
        let iw = (iw as u64).clamp(mss, MAX_CWND);
        let mut b = Bbr {
            mss,
            initial_cwnd: iw,
            cwnd: iw,
            pacing_rate: 1,
            send_quantum: 2 * mss,
            offload_budget: 6 * mss,
            state: BbrState::Startup,
            pacing_gain: STARTUP_PACING_GAIN,
            cwnd_gain: DEFAULT_CWND_GAIN,
            round_count: 0,
            round_start: false,
            next_round_delivered: 0,
            delivered: 0,
            rounds_since_probe_up: 0,
            cwnd_limited_this_round: false,
            cwnd_limited_last_round: false,
            max_bw_filter: MaxBwFilter::default(),
            max_bw: 0,
            bw_shortterm: INF,
            bw: 0,
            bw_latest: 0,
            inflight_latest: 0,
            inflight_longterm: INF,
            inflight_shortterm: INF,
            max_inflight: iw,
            extra_acked_filter: WindowedMax::default(),
            extra_acked_interval_start: Instant::ZERO,
            extra_acked_delivered: 0,
            min_rtt: None,
            min_rtt_stamp: Instant::ZERO,
            probe_rtt_min_delay: None,
            probe_rtt_min_stamp: Instant::ZERO,
            probe_rtt_expired: false,
            probe_rtt_done_stamp: None,
            probe_rtt_round_done: false,
            probe_rtt_count: 0,
            app_limited_until: 0,
            prior_cwnd: 0,
            idle_restart: false,
            full_bw_reached: false,
            full_bw_now: false,
            full_bw: 0,
            full_bw_count: 0,
            drain_start_round: 0,
            loss_round_delivered: 0,
            loss_round_start: false,
            is_loss_in_round: false,
            loss_events_in_round: 0,
            round_lost: 0,
            round_delivered: 0,
            in_recovery: false,
            ack_in_recovery: false,
            recovery_round: 0,
            ack_phase: AckPhase::Init,
            is_bw_probe_sample: false,
            bw_probe_up_acked: 0,
            probe_up_acked_per_inc: INF,
            bw_probe_up_rounds: 0,
            bw_probe_wait: Duration::ZERO,
            cycle_stamp: Instant::ZERO,
            prev_probe_too_high: false,
            prev_probe_precautionary: false,
            undo_state: None,
            undo_bw_shortterm: 0,
            undo_inflight_shortterm: 0,
            undo_inflight_longterm: 0,
            rng: seed | 1,
            seeded: false,
            has_seen_rtt: false,
            sent_any: false,
            #[cfg(test)]
            illegal_transitions: 0,
        };
        b.init_pacing_rate(None);
        b.set_send_quantum();
        b
    }

    // ---- accessors -------------------------------------------------------

    pub fn state(&self) -> BbrState {
        self.state
    }
    /// BBR.max_bw, bytes per second.
    pub fn max_bw(&self) -> u64 {
        self.max_bw
    }
    /// BBR.bw = min(max_bw, bw_shortterm), bytes per second.
    pub fn bw(&self) -> u64 {
        self.bw
    }
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }
    /// Times PROBE_RTT was entered.
    pub fn probe_rtt_count(&self) -> u64 {
        self.probe_rtt_count
    }
    pub fn pacing_gain(&self) -> f64 {
        self.pacing_gain
    }
    pub fn cwnd_gain(&self) -> f64 {
        self.cwnd_gain
    }
    /// BBR.inflight_longterm, if loss has set it.
    pub fn inflight_longterm(&self) -> Option<u64> {
        (self.inflight_longterm != INF).then_some(self.inflight_longterm)
    }
    /// BBR.full_bw_reached.
    pub fn full_bw_reached(&self) -> bool {
        self.full_bw_reached
    }

    // ---- helpers ---------------------------------------------------------

    fn min_pipe_cwnd(&self) -> u64 {
        MIN_PIPE_CWND_SEGMENTS * self.mss
    }

    fn set_state(&mut self, to: BbrState) {
        #[cfg(test)]
        if !self.state.can_become(to) {
            self.illegal_transitions += 1;
        }
        self.state = to;
    }

    fn random(&mut self) -> u64 {
        // xorshift64.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn seed_from(&mut self, now: Instant) {
        if !self.seeded {
            self.seeded = true;
            self.rng ^= (now.total_micros() as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
            if self.rng == 0 {
                self.rng = 1;
            }
        }
    }

    fn in_loss_recovery(&self) -> bool {
        self.in_recovery || self.ack_in_recovery
    }

    fn is_cwnd_limited(&self) -> bool {
        self.cwnd_limited_this_round || self.cwnd_limited_last_round
    }

    fn is_probing_bw(&self) -> bool {
        matches!(
            self.state,
            BbrState::Startup | BbrState::ProbeBwRefill | BbrState::ProbeBwUp
        )
    }

    /// StartRound(): the next round begins with data sent from now on.
    fn start_round(&mut self) {
        self.next_round_delivered = self.delivered;
    }

    // ---- §5.6.2 pacing -----------------------------------------------------

    /// InitPacingRate(): nominal_bandwidth = C.InitialCwnd / (C.srtt or
    /// 1 ms); C.pacing_rate = StartupPacingGain * nominal_bandwidth.
    fn init_pacing_rate(&mut self, srtt: Option<Duration>) {
        let rtt_us = srtt
            .map(|d| d.total_micros())
            .filter(|&us| us > 0)
            .unwrap_or(1000);
        let nominal = (self.initial_cwnd as u128 * 1_000_000 / rtt_us as u128) as f64;
        let rate = nominal * STARTUP_PACING_GAIN;
        self.pacing_rate = if rate.is_finite() && rate >= 1.0 {
            if rate >= u64::MAX as f64 {
                u64::MAX
            } else {
                rate as u64
            }
        } else {
            1
        };
    }

    /// SetPacingRateWithGain(): rate = gain * bw * (100 - margin) / 100,
    /// taken once the pipe was filled, or when it raises the rate. A zero
    /// rate (no bandwidth estimate) is never taken.
    fn set_pacing_rate_with_gain(&mut self, gain: f64) {
        let rate = mul_gain(self.bw, gain * (100.0 - PACING_MARGIN_PERCENT) / 100.0);
        if rate > 0 && (self.full_bw_reached || rate > self.pacing_rate) {
            self.pacing_rate = rate;
        }
    }

    /// SetSendQuantum() and, for TCP, UpdateOffloadBudget() (§5.5.8.1).
    fn set_send_quantum(&mut self) {
        let q = (self.pacing_rate / 1000).min(MAX_SEND_QUANTUM);
        self.send_quantum = q.max(2 * self.mss);
        self.offload_budget = self.send_quantum.saturating_mul(3);
    }

    // ---- §5.6.4 volumes ----------------------------------------------------

    /// BDPMultiple(bw, gain); C.InitialCwnd before any RTT sample.
    fn bdp_multiple(&self, bw: u64, gain: f64) -> u64 {
        match self.min_rtt {
            None => self.initial_cwnd,
            Some(rtt) => mul_gain(volume(bw, rtt), gain),
        }
    }

    fn bdp(&self) -> u64 {
        self.bdp_multiple(self.bw, 1.0)
    }

    fn quantization_budget(&self, cap: u64) -> u64 {
        let mut cap = cap.max(self.offload_budget).max(self.min_pipe_cwnd());
        if self.state == BbrState::ProbeBwUp {
            cap = cap.saturating_add(2 * self.mss);
        }
        cap
    }

    /// Inflight(bw, gain).
    fn inflight(&self, bw: u64, gain: f64) -> u64 {
        self.quantization_budget(self.bdp_multiple(bw, gain))
    }

    fn update_max_inflight(&mut self) {
        let cap = self
            .bdp_multiple(self.bw, self.cwnd_gain)
            .saturating_add(self.extra_acked_filter.get());
        self.max_inflight = self.quantization_budget(cap);
    }

    /// TargetInflight(): "Our estimated BDP, unless congestion cut C.cwnd."
    fn target_inflight(&self) -> u64 {
        self.bdp().min(self.cwnd)
    }

    /// InflightWithHeadroom().
    fn inflight_with_headroom(&self) -> u64 {
        if self.inflight_longterm == INF {
            return INF;
        }
        let headroom = mul_gain(self.inflight_longterm, HEADROOM).max(self.mss);
        self.inflight_longterm
            .saturating_sub(headroom)
            .max(self.min_pipe_cwnd())
    }

    fn probe_rtt_cwnd(&self) -> u64 {
        self.bdp_multiple(self.bw, PROBE_RTT_CWND_GAIN)
            .max(self.min_pipe_cwnd())
    }

    fn save_cwnd(&mut self) {
        if !self.in_loss_recovery() && self.state != BbrState::ProbeRtt {
            self.prior_cwnd = self.cwnd;
        } else {
            self.prior_cwnd = self.prior_cwnd.max(self.cwnd);
        }
    }

    fn restore_cwnd(&mut self) {
        self.cwnd = self.cwnd.max(self.prior_cwnd).min(MAX_CWND);
    }

    fn bound_cwnd_for_probe_rtt(&mut self) {
        if self.state == BbrState::ProbeRtt {
            self.cwnd = self.cwnd.min(self.probe_rtt_cwnd());
        }
    }

    /// BoundCwndForModel() (§5.6.4.7).
    fn bound_cwnd_for_model(&mut self) {
        let mut cap = INF;
        if self.state.is_probe_bw() && self.state != BbrState::ProbeBwCruise {
            cap = self.inflight_longterm;
        } else if matches!(self.state, BbrState::ProbeRtt | BbrState::ProbeBwCruise) {
            cap = self.inflight_with_headroom();
        }
        cap = cap.min(self.inflight_shortterm).max(self.min_pipe_cwnd());
        self.cwnd = self.cwnd.min(cap);
    }

    /// SetCwnd() (§5.6.4.6).
    fn set_cwnd(&mut self, newly_acked: u64) {
        self.update_max_inflight();
        if self.full_bw_reached {
            self.cwnd = self.cwnd.saturating_add(newly_acked).min(self.max_inflight);
        } else if self.cwnd < self.max_inflight || self.delivered < self.initial_cwnd {
            self.cwnd = self.cwnd.saturating_add(newly_acked);
        }
        self.cwnd = self.cwnd.max(self.min_pipe_cwnd());
        self.bound_cwnd_for_probe_rtt();
        self.bound_cwnd_for_model();
        self.cwnd = self.cwnd.min(MAX_CWND);
    }

    // ---- §5.3.1 Startup and §5.3.2 Drain -----------------------------------

    fn enter_startup(&mut self) {
        self.set_state(BbrState::Startup);
        self.pacing_gain = STARTUP_PACING_GAIN;
        self.cwnd_gain = DEFAULT_CWND_GAIN;
    }

    fn reset_full_bw(&mut self) {
        self.full_bw = 0;
        self.full_bw_count = 0;
        self.full_bw_now = false;
    }

    /// CheckFullBWReached(): three non-app-limited rounds without 25 %
    /// growth of RS.delivery_rate.
    fn check_full_bw_reached(&mut self, rs: Option<Rs>) {
        let Some(rs) = rs else { return };
        if self.full_bw_now || !self.round_start || rs.is_app_limited {
            return;
        }
        if rs.delivery_rate as f64 >= self.full_bw as f64 * FULL_BW_GROWTH {
            self.reset_full_bw();
            self.full_bw = rs.delivery_rate;
            return;
        }
        self.full_bw_count = self.full_bw_count.saturating_add(1);
        self.full_bw_now = self.full_bw_count >= FULL_BW_COUNT;
        if self.full_bw_now {
            self.full_bw_reached = true;
        }
    }

    fn is_inflight_too_high(rs: &Rs) -> bool {
        rs.lost as f64 > rs.tx_in_flight as f64 * LOSS_THRESH
    }

    /// CheckStartupHighLoss() (§5.3.1.3), checked at the end of each loss
    /// round.
    fn check_startup_high_loss(&mut self, rs: Option<Rs>) {
        if self.full_bw_reached || self.state != BbrState::Startup || !self.loss_round_start {
            return;
        }
        if !(self.in_loss_recovery() && self.round_count > self.recovery_round) {
            return;
        }
        let too_high = match rs {
            Some(rs) => Self::is_inflight_too_high(&rs),
            // No sample: the loss rate of the round's ACKs.
            None => {
                self.round_lost as f64
                    > self.round_lost.saturating_add(self.round_delivered) as f64 * LOSS_THRESH
            }
        };
        if too_high && self.loss_events_in_round >= STARTUP_FULL_LOSS_COUNT {
            self.undo_state = Some(BbrState::Startup);
            self.full_bw_reached = true;
            self.inflight_longterm = self.bdp().max(self.inflight_latest);
        }
    }

    fn check_startup_done(&mut self, rs: Option<Rs>) {
        self.check_startup_high_loss(rs);
        if self.state == BbrState::Startup && self.full_bw_reached {
            self.enter_drain();
        }
    }

    fn enter_drain(&mut self) {
        self.set_state(BbrState::Drain);
        self.pacing_gain = DRAIN_PACING_GAIN;
        self.cwnd_gain = DEFAULT_CWND_GAIN;
        self.drain_start_round = self.round_count;
    }

    fn check_drain_done(&mut self, now: Instant, in_flight: u64) {
        if self.state == BbrState::Drain
            && (in_flight <= self.inflight(self.bw, 1.0)
                || self.round_count > self.drain_start_round.saturating_add(3))
        {
            self.enter_probe_bw(now);
        }
    }

    // ---- §5.3.3 ProbeBW ----------------------------------------------------

    fn enter_probe_bw(&mut self, now: Instant) {
        self.cwnd_gain = DEFAULT_CWND_GAIN;
        self.start_probe_bw_down(now);
    }

    /// PickProbeWait(): 0 or 1 rounds already "since probe up", and a wall
    /// clock wait of 2 s plus up to 1 s.
    fn pick_probe_wait(&mut self) {
        self.rounds_since_probe_up = self.random() & 1;
        let extra = self.random() % (PROBE_WAIT_RAND.total_micros() + 1);
        self.bw_probe_wait = PROBE_WAIT_BASE + Duration::from_micros(extra);
    }

    fn start_probe_bw_down(&mut self, now: Instant) {
        self.reset_congestion_signals();
        self.probe_up_acked_per_inc = INF;
        self.pick_probe_wait();
        self.cycle_stamp = now;
        self.ack_phase = AckPhase::ProbeStopping;
        self.start_round();
        self.set_state(BbrState::ProbeBwDown);
        self.pacing_gain = PROBE_BW_DOWN_PACING_GAIN;
        self.cwnd_gain = DEFAULT_CWND_GAIN;
    }

    fn start_probe_bw_cruise(&mut self) {
        self.set_state(BbrState::ProbeBwCruise);
        self.pacing_gain = 1.0;
        self.cwnd_gain = DEFAULT_CWND_GAIN;
    }

    fn start_probe_bw_refill(&mut self) {
        self.reset_short_term_model();
        self.bw_probe_up_rounds = 0;
        self.bw_probe_up_acked = 0;
        self.prev_probe_precautionary = false;
        self.ack_phase = AckPhase::Refilling;
        self.start_round();
        self.set_state(BbrState::ProbeBwRefill);
        self.pacing_gain = 1.0;
        self.cwnd_gain = DEFAULT_CWND_GAIN;
    }

    fn start_probe_bw_up(&mut self, rs: Option<Rs>) {
        self.ack_phase = AckPhase::ProbeStarting;
        self.start_round();
        self.reset_full_bw();
        self.full_bw = rs.map_or(0, |r| r.delivery_rate);
        self.set_state(BbrState::ProbeBwUp);
        self.pacing_gain = PROBE_BW_UP_PACING_GAIN;
        self.cwnd_gain = PROBE_BW_UP_CWND_GAIN;
        self.raise_inflight_longterm_slope();
    }

    fn has_elapsed_in_phase(&self, now: Instant, interval: Duration) -> bool {
        now > self.cycle_stamp + interval
    }

    fn is_reno_coexistence_probe_time(&self) -> bool {
        let reno_rounds = self.target_inflight() / self.mss;
        self.rounds_since_probe_up >= reno_rounds.min(RENO_PROBE_ROUNDS_MAX)
    }

    /// IsTimeToProbeBW(): from DOWN or CRUISE to REFILL.
    fn is_time_to_probe_bw(&mut self, now: Instant) -> bool {
        if self.has_elapsed_in_phase(now, self.bw_probe_wait)
            || self.is_reno_coexistence_probe_time()
        {
            self.start_probe_bw_refill();
            return true;
        }
        false
    }

    fn is_time_to_cruise(&self, in_flight: u64) -> bool {
        in_flight <= self.inflight_with_headroom() && in_flight <= self.inflight(self.max_bw, 1.0)
    }

    fn is_time_to_go_down(&mut self, in_flight: u64, rs: Option<Rs>) -> bool {
        if self.prev_probe_too_high && in_flight >= self.inflight_longterm {
            self.prev_probe_precautionary = true;
            return true;
        }
        if self.is_cwnd_limited() && self.cwnd >= self.inflight_longterm {
            // bw is limited by inflight_longterm: keep looking.
            self.reset_full_bw();
            self.full_bw = rs.map_or(0, |r| r.delivery_rate);
        } else if self.full_bw_now {
            return true;
        }
        false
    }

    fn raise_inflight_longterm_slope(&mut self) {
        let growth_this_round = 1u64 << self.bw_probe_up_rounds.min(30);
        self.bw_probe_up_rounds = (self.bw_probe_up_rounds + 1).min(30);
        self.probe_up_acked_per_inc = (self.cwnd / growth_this_round).max(self.mss);
    }

    fn probe_inflight_longterm_upward(&mut self, newly_acked: u64) {
        if !self.is_cwnd_limited() || self.cwnd < self.inflight_longterm {
            return;
        }
        self.bw_probe_up_acked = self.bw_probe_up_acked.saturating_add(newly_acked);
        let per_inc = self.probe_up_acked_per_inc.max(1);
        if self.bw_probe_up_acked >= per_inc {
            let delta = self.bw_probe_up_acked / per_inc;
            self.bw_probe_up_acked -= delta.saturating_mul(per_inc);
            self.inflight_longterm = self
                .inflight_longterm
                .saturating_add(delta.saturating_mul(self.mss))
                .min(MAX_CWND.max(self.min_pipe_cwnd()));
        }
        if self.round_start {
            self.raise_inflight_longterm_slope();
        }
    }

    /// HandleInflightTooHigh() (§5.5.10.2).
    fn handle_inflight_too_high(&mut self, now: Instant, rs: &Rs) {
        self.prev_probe_too_high = true;
        self.is_bw_probe_sample = false;
        if !rs.is_app_limited {
            self.inflight_longterm = rs
                .tx_in_flight
                .max(mul_gain(self.target_inflight(), BETA))
                .min(MAX_CWND);
        }
        if self.state == BbrState::ProbeBwUp {
            self.undo_state = Some(BbrState::ProbeBwUp);
            self.start_probe_bw_down(now);
        }
    }

    /// AdaptLongTermModel(); returns true if it decided a transition.
    fn adapt_long_term_model(&mut self, now: Instant, rs: Option<Rs>, newly_acked: u64) -> bool {
        if self.ack_phase == AckPhase::ProbeStarting && self.round_start {
            self.ack_phase = AckPhase::ProbeFeedback;
        }
        if self.ack_phase == AckPhase::ProbeStopping && self.round_start {
            self.is_bw_probe_sample = false;
            self.ack_phase = AckPhase::Init;
            // No sample: no evidence the cycle measured the path.
            let app_limited = rs.is_none_or(|r| r.is_app_limited);
            if self.state.is_probe_bw() && !app_limited {
                self.max_bw_filter.advance();
                self.max_bw = self.max_bw_filter.get();
            }
            if self.state.is_probe_bw()
                && self.prev_probe_precautionary
                && !self.prev_probe_too_high
            {
                self.start_probe_bw_refill();
                return true;
            }
        }
        if let Some(r) = rs {
            if Self::is_inflight_too_high(&r) {
                // HandleLostPacket()'s test, per ACK (see the top).
                if self.is_bw_probe_sample {
                    let was_up = self.state == BbrState::ProbeBwUp;
                    self.handle_inflight_too_high(now, &r);
                    return was_up;
                }
                return false;
            }
        }
        // Loss rate is safe: adjust upper bounds upward.
        if self.inflight_longterm == INF {
            return false;
        }
        if let Some(r) = rs {
            if r.tx_in_flight > self.inflight_longterm {
                self.inflight_longterm = r.tx_in_flight.min(MAX_CWND);
            }
        }
        if self.state == BbrState::ProbeBwUp {
            self.probe_inflight_longterm_upward(newly_acked);
        }
        false
    }

    /// UpdateProbeBWCyclePhase().
    fn update_probe_bw_cycle_phase(
        &mut self,
        now: Instant,
        in_flight: u64,
        rs: Option<Rs>,
        newly_acked: u64,
    ) {
        if !self.full_bw_reached {
            return;
        }
        if self.adapt_long_term_model(now, rs, newly_acked) {
            return;
        }
        let state = self.state;
        match state {
            BbrState::ProbeBwDown => {
                if self.is_time_to_probe_bw(now) {
                    return;
                }
                if self.is_time_to_cruise(in_flight) {
                    self.start_probe_bw_cruise();
                }
            }
            BbrState::ProbeBwCruise => {
                self.is_time_to_probe_bw(now);
            }
            // After one round of REFILL, start UP.
            BbrState::ProbeBwRefill if self.round_start => {
                self.is_bw_probe_sample = true;
                self.start_probe_bw_up(rs);
            }
            BbrState::ProbeBwUp if self.is_time_to_go_down(in_flight, rs) => {
                self.prev_probe_too_high = false;
                self.start_probe_bw_down(now);
            }
            _ => {}
        }
    }

    // ---- §5.3.4 ProbeRTT and §5.5.7 min_rtt --------------------------------

    fn update_min_rtt(&mut self, now: Instant, rtt: Option<Duration>) {
        // The draft initialises probe_rtt_min_stamp to Now(); ours is set
        // by the first sample, so until then nothing can have expired
        // (a stamp of zero sent every flow into PROBE_RTT on its first ACK).
        self.probe_rtt_expired = self.probe_rtt_min_delay.is_some()
            && now > self.probe_rtt_min_stamp + PROBE_RTT_INTERVAL;
        if let Some(rtt) = rtt {
            if self.probe_rtt_min_delay.is_none_or(|d| rtt < d) || self.probe_rtt_expired {
                self.probe_rtt_min_delay = Some(rtt);
                self.probe_rtt_min_stamp = now;
            }
        }
        let min_rtt_expired = now > self.min_rtt_stamp + MIN_RTT_FILTER_LEN;
        if let Some(d) = self.probe_rtt_min_delay {
            if self.min_rtt.is_none_or(|m| d < m) || min_rtt_expired {
                self.min_rtt = Some(d);
                self.min_rtt_stamp = self.probe_rtt_min_stamp;
            }
        }
    }

    fn check_probe_rtt(&mut self, now: Instant, in_flight: u64, delivered: u64) {
        if self.state != BbrState::ProbeRtt && self.probe_rtt_expired && !self.idle_restart {
            self.enter_probe_rtt();
            self.save_cwnd();
            self.probe_rtt_done_stamp = None;
            self.ack_phase = AckPhase::ProbeStopping;
            self.start_round();
        }
        if self.state == BbrState::ProbeRtt {
            self.handle_probe_rtt(now, in_flight);
        }
        if delivered > 0 {
            self.idle_restart = false;
        }
    }

    fn enter_probe_rtt(&mut self) {
        self.set_state(BbrState::ProbeRtt);
        self.pacing_gain = 1.0;
        self.cwnd_gain = PROBE_RTT_CWND_GAIN;
        self.probe_rtt_count = self.probe_rtt_count.saturating_add(1);
    }

    fn handle_probe_rtt(&mut self, now: Instant, in_flight: u64) {
        // MarkConnectionAppLimited(): C.app_limited = C.delivered + C.inflight.
        self.app_limited_until = self
            .app_limited_until
            .max(self.delivered.saturating_add(in_flight));
        match self.probe_rtt_done_stamp {
            None if in_flight <= self.probe_rtt_cwnd() => {
                self.probe_rtt_done_stamp = Some(now + PROBE_RTT_DURATION);
                self.probe_rtt_round_done = false;
                self.start_round();
            }
            Some(_) => {
                if self.round_start {
                    self.probe_rtt_round_done = true;
                }
                if self.probe_rtt_round_done {
                    self.check_probe_rtt_done(now);
                }
            }
            None => {}
        }
    }

    fn check_probe_rtt_done(&mut self, now: Instant) {
        if self.probe_rtt_done_stamp.is_some_and(|d| now > d) {
            // Schedule the next ProbeRTT.
            self.probe_rtt_min_stamp = now;
            self.restore_cwnd();
            self.exit_probe_rtt(now);
        }
    }

    fn exit_probe_rtt(&mut self, now: Instant) {
        self.reset_short_term_model();
        if self.full_bw_reached {
            self.start_probe_bw_down(now);
            self.start_probe_bw_cruise();
        } else {
            self.enter_startup();
        }
    }

    // ---- §5.4 restart from idle ---------------------------------------------

    fn handle_restart_from_idle(&mut self, now: Instant) {
        self.idle_restart = true;
        self.extra_acked_interval_start = now;
        if self.state.is_probe_bw() {
            self.set_pacing_rate_with_gain(1.0);
        } else if self.state == BbrState::ProbeRtt {
            self.check_probe_rtt_done(now);
        }
    }

    // ---- §5.5.9 ACK aggregation ----------------------------------------------

    fn update_ack_aggregation(&mut self, now: Instant, newly_acked: u64) {
        let interval = now.saturating_since(self.extra_acked_interval_start);
        let mut expected = volume(self.bw, interval);
        if self.extra_acked_delivered <= expected {
            self.extra_acked_delivered = 0;
            self.extra_acked_interval_start = now;
            expected = 0;
        }
        self.extra_acked_delivered = self.extra_acked_delivered.saturating_add(newly_acked);
        let extra = (self.extra_acked_delivered - expected).min(self.cwnd);
        let len = if self.full_bw_reached {
            EXTRA_ACKED_FILTER_LEN
        } else {
            1
        };
        self.extra_acked_filter.update(extra, self.round_count, len);
    }

    // ---- §5.5.10 loss ---------------------------------------------------------

    fn reset_congestion_signals(&mut self) {
        self.is_loss_in_round = false;
        self.bw_latest = 0;
        self.inflight_latest = 0;
    }

    fn reset_short_term_model(&mut self) {
        self.bw_shortterm = INF;
        self.inflight_shortterm = INF;
    }

    fn save_state_upon_loss(&mut self) {
        self.save_cwnd();
        self.undo_state = None;
        self.undo_bw_shortterm = self.bw_shortterm;
        self.undo_inflight_shortterm = self.inflight_shortterm;
        self.undo_inflight_longterm = self.inflight_longterm;
    }

    fn note_loss(&mut self) {
        if !self.is_loss_in_round {
            self.loss_round_delivered = self.delivered;
            self.save_state_upon_loss();
        }
        self.is_loss_in_round = true;
    }

    fn update_latest_delivery_signals(&mut self, rs: Option<Rs>, tcp_round_start: bool) {
        self.loss_round_start = false;
        match rs {
            Some(rs) => {
                self.bw_latest = self.bw_latest.max(rs.delivery_rate);
                self.inflight_latest = self.inflight_latest.max(rs.delivered);
                if rs.prior_delivered >= self.loss_round_delivered {
                    self.loss_round_delivered = self.delivered;
                    self.loss_round_start = true;
                }
            }
            None if tcp_round_start => {
                self.loss_round_delivered = self.delivered;
                self.loss_round_start = true;
            }
            None => {}
        }
    }

    fn advance_latest_delivery_signals(&mut self, rs: Option<Rs>) {
        if self.loss_round_start {
            self.bw_latest = rs.map_or(0, |r| r.delivery_rate);
            self.inflight_latest = rs.map_or(0, |r| r.delivered);
            self.loss_events_in_round = 0;
            self.round_lost = 0;
            self.round_delivered = 0;
        }
    }

    /// UpdateMaxBw() (without UpdateRound, done before).
    fn update_max_bw(&mut self, rs: Option<Rs>) {
        if let Some(rs) = rs {
            if rs.delivery_rate > 0 && (rs.delivery_rate >= self.max_bw || !rs.is_app_limited) {
                self.max_bw = self.max_bw_filter.update(rs.delivery_rate);
            }
        }
    }

    fn update_congestion_signals(&mut self, rs: Option<Rs>) {
        self.update_max_bw(rs);
        if !self.loss_round_start {
            return;
        }
        self.adapt_lower_bounds_from_congestion();
        self.is_loss_in_round = false;
    }

    fn adapt_lower_bounds_from_congestion(&mut self) {
        if self.is_probing_bw() {
            return;
        }
        // Deviation: the draft cuts bw_lo/inflight_lo after any round with
        // a loss. With paced sending the round's best delivery rate is the
        // pacing rate itself, 1 % under the estimate, so under steady random
        // loss every round shaved another 1 % until the next probe (-18 %/s
        // at 50 ms; 81 % utilisation at 1 % loss in docs/CC-GRID.md's lab).
        // The cut waits for a round whose loss rate passes LossThresh, the
        // rate the draft itself treats as congestion (IsInflightTooHigh).
        let lossy = self.round_lost as f64
            > self.round_lost.saturating_add(self.round_delivered) as f64 * LOSS_THRESH;
        if self.is_loss_in_round && lossy {
            // InitLowerBounds()
            if self.bw_shortterm == INF {
                self.bw_shortterm = self.max_bw;
            }
            if self.inflight_shortterm == INF {
                self.inflight_shortterm = self.cwnd;
            }
            // LossLowerBounds()
            self.bw_shortterm = self.bw_latest.max(mul_gain(self.bw_shortterm, BETA));
            self.inflight_shortterm = self
                .inflight_latest
                .max(mul_gain(self.inflight_shortterm, BETA));
        }
    }

    fn bound_bw_for_model(&mut self) {
        self.bw = self.max_bw.min(self.bw_shortterm);
    }

    // ---- §5.5.11 undo ---------------------------------------------------------

    fn handle_spurious_loss_detection(&mut self) {
        self.restore_cwnd();
        self.is_loss_in_round = false;
        self.reset_full_bw();
        self.bw_shortterm = self.bw_shortterm.max(self.undo_bw_shortterm);
        self.inflight_shortterm = self.inflight_shortterm.max(self.undo_inflight_shortterm);
        self.inflight_longterm = self.inflight_longterm.max(self.undo_inflight_longterm);
        match self.undo_state {
            Some(BbrState::Startup) if self.state != BbrState::Startup => {
                self.full_bw_reached = false;
                if self.state != BbrState::ProbeRtt {
                    self.enter_startup();
                }
            }
            // The draft restarts the probe from any state but ProbeRTT;
            // only ProbeBW states can have come from ProbeBW_UP here.
            Some(BbrState::ProbeBwUp)
                if self.state != BbrState::ProbeBwUp && self.state.is_probe_bw() =>
            {
                self.start_probe_bw_refill();
            }
            _ => {}
        }
        self.undo_state = None;
    }

    fn rate_sample(&self, r: &RateSample) -> Rs {
        Rs {
            delivery_rate: r.delivery_rate,
            delivered: r.delivered,
            is_app_limited: r.is_app_limited || r.prior_delivered < self.app_limited_until,
            tx_in_flight: r.tx_in_flight as u64,
            lost: r.lost,
            prior_delivered: r.prior_delivered,
        }
    }
}

impl CongestionControl for Bbr {
    fn name(&self) -> &'static str {
        "bbr"
    }

    fn on_sent(&mut self, now: Instant, bytes: usize, in_flight: usize) {
        self.seed_from(now);
        let in_flight = in_flight as u64;
        if in_flight.saturating_add(self.mss) > self.cwnd {
            self.cwnd_limited_this_round = true;
        }
        // OnTransmit(): HandleRestartFromIdle() when nothing else was in
        // flight (the engine calls after the send, so `in_flight` holds it).
        if self.sent_any && in_flight <= bytes as u64 {
            self.handle_restart_from_idle(now);
        }
        self.sent_any = true;
    }

    fn on_ack(&mut self, now: Instant, s: &AckSample) {
        self.seed_from(now);
        self.delivered = self.delivered.max(s.total_delivered);
        self.ack_in_recovery = s.in_recovery;
        let newly_acked = s.delivered as u64;
        let in_flight = s.in_flight as u64;
        let rs = s.rate.as_ref().map(|r| self.rate_sample(r));
        let rtt = s.rate.and_then(|r| r.rtt).or(s.rtt);

        // InitPacingRate() once the first RTT is known, while there is no
        // bandwidth sample yet (§5.6.2: "the initial C.srtt after the first
        // non-zero RTT sample").
        if !self.has_seen_rtt {
            if let Some(srtt) = s.srtt.or(rtt).filter(|d| *d > Duration::ZERO) {
                self.has_seen_rtt = true;
                if self.max_bw == 0 {
                    self.init_pacing_rate(Some(srtt));
                }
            }
        }

        // Per-loss steps (§5.2.4), before the model update.
        if s.lost > 0 {
            self.note_loss();
            self.loss_events_in_round = self.loss_events_in_round.saturating_add(1);
        }
        self.round_lost = self.round_lost.saturating_add(s.lost as u64);
        self.round_delivered = self.round_delivered.saturating_add(newly_acked);

        // UpdateRound() (§5.5.1).
        self.round_start = match rs {
            Some(r) => r.prior_delivered >= self.next_round_delivered,
            None => s.round_start,
        };
        if self.round_start {
            self.next_round_delivered = self.delivered;
            self.round_count = self.round_count.saturating_add(1);
            self.rounds_since_probe_up = self.rounds_since_probe_up.saturating_add(1);
            self.cwnd_limited_last_round = self.cwnd_limited_this_round;
            self.cwnd_limited_this_round = false;
        }

        // UpdateModelAndState() (§5.2.3).
        self.update_latest_delivery_signals(rs, s.round_start);
        self.update_congestion_signals(rs);
        self.update_ack_aggregation(now, newly_acked);
        self.check_full_bw_reached(rs);
        self.check_startup_done(rs);
        self.check_drain_done(now, in_flight);
        self.update_probe_bw_cycle_phase(now, in_flight, rs, newly_acked);
        self.update_min_rtt(now, rtt);
        self.check_probe_rtt(now, in_flight, rs.map_or(newly_acked, |r| r.delivered));
        self.advance_latest_delivery_signals(rs);
        self.bound_bw_for_model();

        // UpdateControlParameters().
        self.set_pacing_rate_with_gain(self.pacing_gain);
        self.set_send_quantum();
        self.set_cwnd(newly_acked);
    }

    fn on_congestion(&mut self, now: Instant, e: CongestionEvent) {
        self.seed_from(now);
        match e {
            CongestionEvent::Loss { .. } => {
                // OnEnterFastRecovery().
                self.save_cwnd();
                self.save_state_upon_loss();
                self.in_recovery = true;
                self.recovery_round = self.round_count;
            }
            CongestionEvent::Timeout { in_flight, first } => {
                // OnEnterRTO(): C.cwnd = C.inflight + 1 (segment).
                if first {
                    self.save_cwnd();
                    self.save_state_upon_loss();
                }
                self.in_recovery = true;
                self.recovery_round = self.round_count;
                self.cwnd = (in_flight as u64).saturating_add(self.mss).min(MAX_CWND);
            }
            CongestionEvent::RecoveryEnd { .. } => {
                self.in_recovery = false;
                self.ack_in_recovery = false;
                self.restore_cwnd();
                self.bound_cwnd_for_probe_rtt();
                self.bound_cwnd_for_model();
            }
            CongestionEvent::Undo => {
                self.in_recovery = false;
                self.ack_in_recovery = false;
                self.handle_spurious_loss_detection();
            }
            CongestionEvent::Idle => self.handle_restart_from_idle(now),
        }
    }

    fn window(&self) -> usize {
        let w = self.cwnd.clamp(self.mss, MAX_CWND);
        usize::try_from(w).unwrap_or(usize::MAX)
    }

    fn ssthresh(&self) -> usize {
        self.window()
    }

    fn pacing_rate(&self) -> Option<u64> {
        Some(self.pacing_rate.max(1))
    }

    fn set_mss(&mut self, mss: usize) {
        self.mss = mss.clamp(1, MAX_MSS) as u64;
        self.cwnd = self.cwnd.max(self.mss);
        self.set_send_quantum();
    }

    fn info(&self) -> CcInfo {
        CcInfo {
            state: self.state.as_str(),
            bw_estimate: (self.max_bw > 0).then_some(self.max_bw),
            min_rtt: self.min_rtt,
        }
    }
}
