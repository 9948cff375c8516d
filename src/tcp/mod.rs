//! TCP (RFC 9293) for ringstack.
//!
//! What is here now is the foundation the connection engine stands on, all
//! of it sans-IO and panic-free on any input:
//!
//! - [`seq`]: [`SeqNumber`], 32-bit sequence numbers with the modular
//!   comparison of RFC 9293 §3.4, and [`segment_acceptable`], the
//!   receive-window test of §3.10.7.4.
//! - [`wire`]: the segment view ([`wire::Packet`]), the option walk
//!   ([`TcpOptions`], [`TcpOption`]) and [`wire::Repr`], which parses a
//!   segment (checksum, ports, options) and emits one with its options in
//!   the layout Linux uses. Its module docs say which option errors drop a
//!   segment and why.
//! - [`isn`]: [`IsnGenerator`], RFC 6528's clock-plus-keyed-hash initial
//!   sequence numbers, with the clock taken from the `now` every entry point
//!   is handed.
//!
//! What comes next, built on these types: the connection engine (the RFC
//! 9293 §3.10 event processing: the state machine, send and receive
//! buffers, retransmission with RFC 6298 timers, RFC 5681 congestion
//! control, window scaling, timestamps and SACK as negotiated), listening
//! sockets, and the stack's demultiplexing of segments to them. Like every
//! other layer it will take `now` from the caller, draw randomness from the
//! stack's seeded RNG, and never read a clock.
//!
//! The engine must still apply the policy this layer leaves to it: ignore
//! MSS, window scale and SACK-permitted on segments without SYN, floor a
//! tiny or zero MSS, judge odd flag combinations, and drop any segment
//! [`wire::Repr::parse`] rejects.

pub mod isn;
pub mod seq;
pub mod wire;

pub use isn::IsnGenerator;
pub use seq::{segment_acceptable, SeqNumber};
pub use wire::{TcpOption, TcpOptions};
