//! Congestion control as a small trait (DESIGN.md): TCP owns duplicate-ACK
//! counting, the SACK scoreboard, loss detection, recovery, what is in
//! flight, delivery-rate sampling (draft-cheng-iccrg-delivery-rate-estimation)
//! and packet-timed rounds; an algorithm only turns those events into a
//! window and, if it paces, a rate.
//!
//! - [`NewReno`]: RFC 5681 / RFC 6582, the reference.
//! - [`Cubic`]: RFC 9438 with HyStart++ (RFC 9406).
//! - [`Bbr`]: the model-based algorithm of draft-ietf-ccwg-bbr (BBRv3).

pub mod bbr;
pub mod cubic;
pub mod newreno;

use super::config::CcAlgorithm;
use crate::time::{Duration, Instant};

pub use bbr::Bbr;
pub use cubic::Cubic;
pub use newreno::NewReno;

/// A delivery-rate sample (draft-cheng-iccrg-delivery-rate-estimation §3.3),
/// taken from the most recently sent segment this ACK delivered.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RateSample {
    /// `delivered / interval`, bytes per second.
    pub delivery_rate: u64,
    /// Bytes delivered over the interval (C.delivered − P.delivered).
    pub delivered: u64,
    /// max(send_elapsed, ack_elapsed); never shorter than the connection's
    /// minimum RTT (shorter samples are not produced at all).
    pub interval: Duration,
    /// The sampled segment was sent while the sender was application
    /// limited: the rate is a lower bound of what the path carries.
    pub is_app_limited: bool,
    /// RTT of the sampled segment, if it was never retransmitted.
    pub rtt: Option<Duration>,
    /// Bytes in flight when the sampled segment was sent (BBR's
    /// `tx_in_flight`), that segment included.
    pub tx_in_flight: usize,
    /// Bytes marked lost between the sampled segment's send and this ACK
    /// (C.lost − P.lost).
    pub lost: u64,
    /// C.delivered when the sampled segment was sent.
    pub prior_delivered: u64,
}

/// What one ACK told the sender.
#[derive(Copy, Clone, Debug, Default)]
pub struct AckSample {
    /// An RTT measurement this ACK gave (Karn- or RTTM-valid), if any.
    pub rtt: Option<Duration>,
    /// The smoothed RTT after this ACK (RFC 6298 SRTT).
    pub srtt: Option<Duration>,
    /// The lowest RTT seen on the connection.
    pub min_rtt: Option<Duration>,
    /// Bytes newly acknowledged cumulatively.
    pub bytes_acked: usize,
    /// Bytes newly acknowledged by cumulative ACK or SACK.
    pub delivered: usize,
    /// Bytes newly deemed lost by this ACK (RFC 6675 IsLost, or the segment
    /// a fast retransmit resends).
    pub lost: usize,
    /// Bytes in flight before this ACK.
    pub prior_in_flight: usize,
    /// Bytes in flight after this ACK (RFC 6675's pipe while in recovery).
    pub in_flight: usize,
    /// The sender is in fast recovery.
    pub in_recovery: bool,
    /// The sender had less to send than the window allowed.
    pub app_limited: bool,
    /// The delivery-rate sample, when the ACK delivered a segment with
    /// valid send state.
    pub rate: Option<RateSample>,
    /// This ACK began a new packet-timed round trip (BBR's round counting:
    /// the ACK delivered a segment sent after the previous round began).
    pub round_start: bool,
    /// Rounds so far.
    pub round_count: u64,
    /// Bytes delivered over the connection's life (C.delivered).
    pub total_delivered: u64,
}

/// Congestion signals.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CongestionEvent {
    /// Fast retransmit: entering loss recovery (3 dup ACKs or SACK loss).
    Loss { in_flight: usize },
    /// The retransmission timer fired. `first` is false for a timeout of a
    /// segment already retransmitted by timeout (RFC 5681 §3.1: ssthresh is
    /// set only on the first).
    Timeout { in_flight: usize, first: bool },
    /// Recovery ended with a full ACK (RFC 6582 §3.2 step 3).
    RecoveryEnd { in_flight: usize },
    /// The connection was idle longer than an RTO (RFC 5681 §4.1).
    Idle,
    /// The last `Loss` or `Timeout` was spurious: the ACK of the
    /// retransmission echoed a timestamp older than it (the Eifel detection
    /// of RFC 3522). The controller may restore what it had before it.
    Undo,
}

/// The controller's state for per-connection stats (`ss -i` style).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct CcInfo {
    /// "slow-start", "avoidance", "recovery", or BBR's "startup", "drain",
    /// "probe-bw-down/cruise/refill/up", "probe-rtt".
    pub state: &'static str,
    /// Estimated bottleneck bandwidth, bytes per second.
    pub bw_estimate: Option<u64>,
    /// The controller's minimum-RTT estimate.
    pub min_rtt: Option<Duration>,
}

pub trait CongestionControl: core::fmt::Debug {
    fn name(&self) -> &'static str;
    /// A segment of `bytes` (payload, retransmissions included) left;
    /// `in_flight` counts it.
    fn on_sent(&mut self, now: Instant, bytes: usize, in_flight: usize);
    fn on_ack(&mut self, now: Instant, sample: &AckSample);
    fn on_congestion(&mut self, now: Instant, event: CongestionEvent);
    /// cwnd in bytes.
    fn window(&self) -> usize;
    fn ssthresh(&self) -> usize;
    /// Bytes per second, for algorithms that pace.
    fn pacing_rate(&self) -> Option<u64>;
    /// The sender's MSS changed (negotiation, PMTUD).
    fn set_mss(&mut self, mss: usize);
    fn info(&self) -> CcInfo {
        CcInfo {
            state: if self.window() < self.ssthresh() {
                "slow-start"
            } else {
                "avoidance"
            },
            ..CcInfo::default()
        }
    }
}

/// The controller for `alg`, with SMSS `mss` and initial window `iw` bytes.
pub fn new(alg: CcAlgorithm, mss: usize, iw: usize) -> Box<dyn CongestionControl + Send> {
    match alg {
        CcAlgorithm::NewReno => Box::new(NewReno::new(mss, iw)),
        CcAlgorithm::Cubic => Box::new(Cubic::new(mss, iw)),
        CcAlgorithm::Bbr => Box::new(Bbr::new(mss, iw)),
    }
}
