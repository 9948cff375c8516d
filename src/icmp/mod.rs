//! ICMPv4.
pub mod wire;
