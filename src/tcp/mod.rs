//! TCP (RFC 9293).
pub mod seq;
pub mod wire;
