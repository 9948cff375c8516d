//! Configuration of a [`Tcp`](super::Tcp) table and of its connections.

use crate::time::Duration;

/// Keep-alive parameters (RFC 9293 §3.8.4). Off unless a connection or the
/// table asks for it: "Keep-alive packets MUST only be sent when no sent data
/// is outstanding, and no data or acknowledgment packets have been received
/// for the connection within an interval" (MUST-26), and the feature "MUST
/// default to off" (MUST-25).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe. RFC 9293 MUST-28: the default
    /// "MUST be no less than two hours"; [`Keepalive::default`] uses that.
    pub idle: Duration,
    /// Time between unanswered probes.
    pub interval: Duration,
    /// Unanswered probes before the connection is aborted with `TimedOut`.
    /// At least 1 is enforced: MUST-29, a single lost probe must not kill the
    /// connection, so the abort comes only after `probes` unanswered ones.
    pub probes: u32,
}

impl Default for Keepalive {
    fn default() -> Keepalive {
        Keepalive {
            idle: Duration::from_secs(7200),
            interval: Duration::from_secs(75),
            probes: 9,
        }
    }
}

/// The congestion controller a connection starts with.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum CcAlgorithm {
    /// RFC 5681 with RFC 6582's recovery.
    #[default]
    NewReno,
    /// RFC 9438 with HyStart++ (RFC 9406).
    Cubic,
    /// BBR as in draft-ietf-ccwg-bbr (v3), paced.
    Bbr,
}

impl CcAlgorithm {
    pub const ALL: [CcAlgorithm; 3] = [CcAlgorithm::NewReno, CcAlgorithm::Cubic, CcAlgorithm::Bbr];

    pub fn as_str(self) -> &'static str {
        match self {
            CcAlgorithm::NewReno => "reno",
            CcAlgorithm::Cubic => "cubic",
            CcAlgorithm::Bbr => "bbr",
        }
    }
}

impl core::fmt::Display for CcAlgorithm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for CcAlgorithm {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<CcAlgorithm, &'static str> {
        match s {
            "reno" | "newreno" => Ok(CcAlgorithm::NewReno),
            "cubic" => Ok(CcAlgorithm::Cubic),
            "bbr" => Ok(CcAlgorithm::Bbr),
            _ => Err("unknown congestion control (expected reno, cubic or bbr)"),
        }
    }
}

/// Everything the engine can be told. [`TcpConfig::default`] is a sane
/// server/client setup; the stack sets `mss` from its MTU.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// MSS we advertise (RFC 9293 §3.7.1); the stack sets MTU − 40.
    pub mss: u16,
    pub rx_buffer: usize,
    pub tx_buffer: usize,
    pub rto_initial: Duration,
    /// RFC 6298 §2.4 says 1 s; like Linux we default to 200 ms, a documented
    /// deviation that the RFC allows as a local policy on fast networks.
    pub rto_min: Duration,
    pub rto_max: Duration,
    /// R2 for a SYN (RFC 9293 §3.8.3). MUST-23: "large enough to provide
    /// retransmission of the segment for at least 3 minutes"; 7 retries with
    /// doubling from 1 s span 255 s (Linux's 6 span only 127 s).
    pub syn_retries: u32,
    /// R2 for data (RFC 9293 §3.8.3): after this many retransmissions of the
    /// same segment the connection is aborted with `TimedOut`.
    pub data_retries: u32,
    /// R1 (RFC 9293 §3.8.3): after this many retransmissions of the same
    /// segment (or SYN) the peer's next hop is re-verified and the app gets
    /// a soft `ExcessiveRetransmissions` error. SHLD-10: at least 3.
    pub r1_retries: u32,
    pub connect_timeout: Option<Duration>,
    /// Longest an ACK is held back; `Duration::ZERO` acknowledges at once.
    pub delayed_ack: Duration,
    /// 2·MSL.
    pub time_wait: Duration,
    /// How long an orphaned (closed by the app) connection may sit in
    /// FIN-WAIT-2 waiting for the peer's FIN.
    pub fin_wait2_timeout: Duration,
    pub keepalive: Option<Keepalive>,
    pub nagle: bool,
    pub window_scale: bool,
    pub timestamps: bool,
    pub sack: bool,
    /// RFC 6928.
    pub initial_window_segments: u32,
    /// Half-open connections per listener before SYN cookies (or drops).
    pub max_syn_backlog: usize,
    pub syn_cookies: bool,
    pub max_time_wait: usize,
    /// Connections of every state, half-open and TIME-WAIT included.
    pub max_connections: usize,
    /// Challenge ACKs per second per connection (RFC 5961 §7). Per
    /// connection rather than global: a global counter is the side channel
    /// of CVE-2016-5696.
    pub challenge_ack_limit: u32,
    /// Bytes of out-of-order data a connection holds at most.
    pub ooo_max_bytes: usize,
    pub cc: CcAlgorithm,
    /// Pace controllers that set no rate of their own (NewReno, CUBIC) at
    /// cwnd/SRTT times 2 in slow start and 1.2 after, as Linux does; BBR
    /// always paces.
    pub pace_all: bool,
    /// Ephemeral port range for `connect` with port 0 (inclusive).
    pub ephemeral_ports: (u16, u16),
    /// Header prediction (the in-order data and pure-ACK shortcuts of
    /// `Tcb::on_segment`). Off only so tests can check that the shortcut
    /// and the general path emit the same frames.
    #[doc(hidden)]
    pub header_prediction: bool,
    /// Send runs (`Tcb::next_full`: the next full segment of a burst
    /// without `choose`'s general walk). Off only so tests can check that
    /// both ways emit the same frames.
    #[doc(hidden)]
    pub send_runs: bool,
}

impl Default for TcpConfig {
    fn default() -> TcpConfig {
        TcpConfig {
            mss: 1460,
            rx_buffer: 256 * 1024,
            tx_buffer: 256 * 1024,
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_millis(200),
            rto_max: Duration::from_secs(60),
            syn_retries: 7,
            data_retries: 15,
            r1_retries: 3,
            connect_timeout: None,
            delayed_ack: Duration::from_millis(40),
            time_wait: Duration::from_secs(60),
            fin_wait2_timeout: Duration::from_secs(60),
            keepalive: None,
            nagle: true,
            window_scale: true,
            timestamps: true,
            sack: true,
            initial_window_segments: 10,
            max_syn_backlog: 1024,
            syn_cookies: true,
            max_time_wait: 16384,
            max_connections: 262_144,
            challenge_ack_limit: 10,
            ooo_max_bytes: 256 * 1024,
            cc: CcAlgorithm::NewReno,
            pace_all: false,
            ephemeral_ports: (49152, 65535),
            header_prediction: true,
            send_runs: true,
        }
    }
}

/// The biggest buffer accepted: a window beyond 2^30 cannot be advertised
/// (RFC 7323 §2.3), and the bound keeps every size computation in range.
pub const MAX_BUFFER: usize = 1 << 30;

/// The smallest MSS we use whatever a peer says (an MSS option of 0 or 1
/// would otherwise turn every byte into a segment). Linux floors at 48
/// (TCP_MIN_MSS is 88 minus options); 64 keeps room for timestamps.
pub const MIN_MSS: u16 = 64;
