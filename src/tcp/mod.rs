//! TCP (RFC 9293) for ringstack.
//!
//! - [`seq`]: [`SeqNumber`], 32-bit sequence numbers with the modular
//!   comparison of RFC 9293 §3.4, and [`segment_acceptable`], the
//!   receive-window test of §3.10.7.4.
//! - [`wire`]: the segment view ([`wire::Packet`]), the option walk
//!   ([`TcpOptions`], [`TcpOption`]) and [`wire::Repr`].
//! - [`isn`]: [`IsnGenerator`], RFC 6528's clock-plus-keyed-hash ISNs.
//! - The engine: [`Tcp`] (the table of listeners and connections, the API
//!   and the datapath, in `socket`), the per-connection state machine
//!   (`tcb`), rings and the out-of-order assembler (`buffer`), RFC 6298
//!   timers (`rtt`), the SACK scoreboard (`sack`), the timer heap (`timer`)
//!   and congestion control ([`cc`]).
//!
//! The engine is sans-IO: every entry point takes `now`, randomness comes
//! from the seed given to [`Tcp::new`], and segments go out through an
//! `emit` callback as [`wire::Repr`]s whose payload borrows the send ring.
//! The IPv4 layer calls [`Tcp::process`] for each segment (after checking
//! the checksum), [`Tcp::poll`] once per stack poll, and [`Tcp::icmp_error`]
//! for ICMP errors quoting a TCP header; [`Tcp::poll_at`] says when to come
//! back.

mod buffer;
pub mod cc;
mod config;
pub mod isn;
#[cfg(test)]
mod no_alloc;
mod rate;
mod rtt;
mod sack;
pub mod seq;
mod socket;
mod stats;
mod tcb;
mod timer;
mod tree;
mod types;
pub mod wire;

pub use cc::{AckSample, CongestionControl, CongestionEvent};
pub use config::{CcAlgorithm, Keepalive, TcpConfig, MAX_BUFFER, MIN_MSS};
pub use isn::IsnGenerator;
pub use seq::{segment_acceptable, SeqNumber};
pub use socket::Tcp;
pub use stats::TcpStats;
pub use tcb::{Emit, SegmentOut, DEFAULT_MSS};
pub use types::{ConnHandle, ConnStats, IcmpErrorKind, ListenHandle, Readiness, State, TcpError};
pub use wire::{TcpOption, TcpOptions};
