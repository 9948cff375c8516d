//! ringstack: a poll-mode, run-to-completion userspace TCP/IP stack.
//!
//! One thread polls a device (AF_PACKET, TAP, or an in-memory pipe) and
//! carries each frame through Ethernet, ARP, IPv4 (with fragmentation), ICMP
//! and UDP to completion before taking the next. The core is sans-IO: every
//! entry point takes `now`, randomness comes from a seeded RNG, and only
//! `dev` touches the operating system.
#![deny(unsafe_code)]

pub mod arp;
pub mod dev;
pub mod eth;
pub mod icmp;
pub mod ip;
pub mod stack;
pub mod tcp;
pub mod time;
pub mod udp;

pub use time::{Duration, Instant};
