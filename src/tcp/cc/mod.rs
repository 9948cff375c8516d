//! Congestion control as a small trait (DESIGN.md): TCP owns duplicate-ACK
//! counting, the SACK scoreboard, recovery and what is in flight; an
//! algorithm only turns those events into a window.

pub mod newreno;

use super::config::CcAlgorithm;
use crate::time::{Duration, Instant};

pub use newreno::NewReno;

/// What one ACK told the sender.
#[derive(Copy, Clone, Debug, Default)]
pub struct AckSample {
    /// An RTT measurement this ACK gave (Karn- or RTTM-valid), if any.
    pub rtt: Option<Duration>,
    /// Bytes newly acknowledged cumulatively.
    pub bytes_acked: usize,
    /// Bytes newly acknowledged by cumulative ACK or SACK.
    pub delivered: usize,
    /// Bytes in flight before this ACK.
    pub in_flight: usize,
    /// The sender is in fast recovery; window growth is off.
    pub in_recovery: bool,
    /// The sender had less to send than the window allowed.
    pub app_limited: bool,
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
}

pub trait CongestionControl: core::fmt::Debug {
    fn name(&self) -> &'static str;
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
}

/// The controller for `alg`, with SMSS `mss` and initial window `iw` bytes.
pub fn new(alg: CcAlgorithm, mss: usize, iw: usize) -> Box<dyn CongestionControl + Send> {
    match alg {
        CcAlgorithm::NewReno => Box::new(NewReno::new(mss, iw)),
    }
}
