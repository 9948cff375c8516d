//! ICMPv4: the wire format, echo (ping) sockets and error rate limiting.
pub mod ping;
pub mod ratelimit;
pub mod wire;
