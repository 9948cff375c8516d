//! ringstack: a poll-mode, run-to-completion userspace TCP/IP stack.
//!
//! One thread polls a device (AF_PACKET, TAP, or an in-memory pipe) and
//! carries each frame through Ethernet, ARP, IPv4 (with fragmentation), ICMP
//! and UDP to completion before taking the next. The core is sans-IO: every
//! entry point takes `now`, randomness comes from a seeded RNG, and only
//! `dev` touches the operating system.
#![deny(unsafe_code)]

/// `Display` and `std::error::Error` for an error enum whose `as_str()`
/// names each variant (the same name its drop counter carries).
macro_rules! error_via_as_str {
    ($t:ty) => {
        impl core::fmt::Display for $t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::error::Error for $t {}
    };
}

pub mod arp;
pub mod dev;
pub mod dhcp;
pub mod eth;
pub mod icmp;
pub mod ip;
pub mod net;
pub mod route;
pub mod router;
pub mod stack;
pub mod tcp;
pub mod time;
pub mod udp;

pub use time::{Duration, Instant};
