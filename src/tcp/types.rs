//! Handles, states, errors and reports shared by the API.

use core::fmt;

use crate::time::Duration;

/// The eleven connection states of RFC 9293 §3.3.2.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl State {
    /// RFC 9293 §3.5: the states after the handshake, where sequence numbers
    /// of both sides are known.
    pub fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connection, as the application holds it. Generation-checked: a handle
/// kept after `close` or `abort` fails with `InvalidHandle`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnHandle {
    pub(crate) slot: u32,
    pub(crate) gen: u32,
}

/// A listening socket.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListenHandle {
    pub(crate) slot: u32,
    pub(crate) gen: u32,
}

/// Why a call failed, or why a connection ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TcpError {
    /// Not ready: no data to read, no room to write, nothing to accept.
    WouldBlock,
    /// Closed, aborted or never existed.
    InvalidHandle,
    /// The call makes no sense in the connection's state (send after
    /// shutdown_write, ...).
    InvalidState,
    AddrInUse,
    NoFreePorts,
    TooManyConnections,
    /// A RST answered our SYN (RFC 9293 §3.10.7.3), or an ICMP port or
    /// protocol unreachable did.
    ConnectionRefused,
    /// The peer reset an established connection (MUST-12).
    ConnectionReset,
    /// Retransmissions, keep-alive probes, or the connect timeout ran out.
    TimedOut,
    NetUnreachable,
    HostUnreachable,
    /// A soft error, never the reason a connection ended: retransmissions
    /// of one segment reached R1 (RFC 9293 §3.8.3, SHLD-9). Cleared when
    /// the peer acknowledges new data.
    ExcessiveRetransmissions,
    InvalidArgument(&'static str),
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpError::WouldBlock => f.write_str("operation would block"),
            TcpError::InvalidHandle => f.write_str("invalid handle"),
            TcpError::InvalidState => f.write_str("invalid state for this operation"),
            TcpError::AddrInUse => f.write_str("address in use"),
            TcpError::NoFreePorts => f.write_str("no free ephemeral port"),
            TcpError::TooManyConnections => f.write_str("too many connections"),
            TcpError::ConnectionRefused => f.write_str("connection refused"),
            TcpError::ConnectionReset => f.write_str("connection reset by peer"),
            TcpError::TimedOut => f.write_str("connection timed out"),
            TcpError::NetUnreachable => f.write_str("network unreachable"),
            TcpError::HostUnreachable => f.write_str("host unreachable"),
            TcpError::ExcessiveRetransmissions => {
                f.write_str("excessive retransmissions (R1 reached)")
            }
            TcpError::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
        }
    }
}

impl std::error::Error for TcpError {}

/// What an application may do on a connection now.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct Readiness {
    /// `recv` will not block: data, end of stream, or an error.
    pub readable: bool,
    /// `send` will accept at least one byte.
    pub writable: bool,
    /// The connection is over (CLOSED or TIME-WAIT) or the peer has closed
    /// its side and all its data has been read.
    pub closed: bool,
    /// The error that ended the connection, or the last soft error (ICMP,
    /// excessive retransmission) reported while it is still up (RFC 9293
    /// MUST-47, SHLD-25).
    pub error: Option<TcpError>,
    /// Urgent data is unread (RFC 9293 MUST-32); `Tcp::urgent_pending`
    /// says how many bytes up to the mark.
    pub urgent: bool,
}

/// ICMP errors the stack hands to [`Tcp::icmp_error`](super::Tcp::icmp_error).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum IcmpErrorKind {
    /// Destination unreachable code 0 (soft, MUST-56).
    NetUnreachable,
    /// Code 1 (soft, MUST-56).
    HostUnreachable,
    /// Code 2 (hard, SHLD-26).
    ProtocolUnreachable,
    /// Code 3 (hard, SHLD-26).
    PortUnreachable,
    /// Code 4 with the next-hop MTU (0 when the router did not say): PMTUD,
    /// not an abort.
    FragmentationNeeded { mtu: u16 },
    /// Code 5 (soft, MUST-56).
    SourceRouteFailed,
    /// Codes 9, 10, 13 (administratively prohibited): soft, like Linux.
    AdminProhibited,
    /// Type 11 (soft, MUST-56).
    TimeExceeded,
    /// Type 12 (soft, MUST-56).
    ParameterProblem,
    /// Type 4: "MUST silently discard" (MUST-55).
    SourceQuench,
}

/// Per-connection numbers, like `ss -i`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConnStats {
    pub srtt: Option<Duration>,
    pub rttvar: Option<Duration>,
    pub rto: Duration,
    pub cwnd: usize,
    pub ssthresh: usize,
    pub snd_wnd: usize,
    pub rcv_wnd: usize,
    pub snd_mss: usize,
    pub retransmits: u64,
    pub fast_retransmits: u64,
    pub rto_timeouts: u64,
    pub bytes_sent: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub segs_in: u64,
    pub segs_out: u64,
    pub cc_name: &'static str,
    /// The controller's state ("slow-start", "avoidance", BBR's phases).
    pub cc_state: &'static str,
    /// Bytes per second the connection is paced at, if it is.
    pub pacing_rate: Option<u64>,
    /// The controller's bandwidth estimate (BBR), bytes per second.
    pub bw_estimate: Option<u64>,
    /// The lowest RTT measured.
    pub min_rtt: Option<Duration>,
    /// The latest delivery-rate sample, bytes per second.
    pub delivery_rate: u64,
    /// Bytes deemed lost (RFC 6675 IsLost, fast retransmits, timeouts).
    pub bytes_lost: u64,
    /// Loss responses undone as spurious (RFC 3522).
    pub spurious_undos: u64,
    /// Times the peer's urgent pointer appeared or advanced (MUST-32).
    pub urgent_notifications: u64,
    /// RTT measurements taken: one per ACK of new data with timestamps
    /// (RFC 7323 §4.1 RTTM), else one per timed segment (RFC 6298, Karn).
    pub rtt_samples: u64,
}
