//! UDP: the wire format and sockets.
pub mod socket;
pub mod wire;

pub use socket::{UdpConfig, UdpSocketStats};
