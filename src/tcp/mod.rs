//! TCP (RFC 9293).
pub mod isn;
pub mod seq;
pub mod wire;
