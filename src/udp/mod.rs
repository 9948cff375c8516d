//! UDP.
pub mod wire;
