//! Devices: where frames enter and leave the stack.
//!
//! The trait is batch-oriented and copy-free by construction. `receive` lends
//! each RX frame to the stack for the duration of a callback (for AF_XDP, a
//! slice of UMEM) together with a [`Transmit`] handle, so an answer (an ARP
//! reply, an echo reply) is written straight into a TX frame while the request
//! is still borrowed. `flush` kicks the kernel once per poll.
//!
//! This module and its children are the only places in the crate allowed to
//! use `unsafe`; every block says why it is sound in a `// SAFETY:` comment.
#![allow(unsafe_code)]

use crate::time::{Duration, Instant};
use std::io;

pub mod host;
pub mod pcap;
pub mod pipe;
pub mod sim;

#[cfg(target_os = "linux")]
pub mod notify;
#[cfg(target_os = "linux")]
pub mod open;
#[cfg(target_os = "linux")]
pub mod packet;
#[cfg(target_os = "linux")]
pub mod sys;
#[cfg(target_os = "linux")]
pub mod tap;
#[cfg(target_os = "linux")]
pub mod xdp;

/// Why a frame could not be queued for transmission.
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
pub enum TxError {
    /// No free TX slot right now; try again after `flush`.
    Exhausted,
    /// The frame is longer than the device can send.
    TooLong,
}

impl core::fmt::Display for TxError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TxError::Exhausted => f.write_str("no free transmit slot"),
            TxError::TooLong => f.write_str("frame longer than the device MTU"),
        }
    }
}

/// Something frames can be written into.
pub trait Transmit {
    /// Reserve a TX frame of exactly `len` bytes, let `fill` write all of it,
    /// and queue it for sending at the next `flush` (or sooner).
    ///
    /// `fill` is called at most once and only when this returns `Ok`.
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError>;
}

/// What a device can do, read once when the stack starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCaps {
    /// Largest IP packet (L3 MTU, not counting the Ethernet header).
    pub mtu: usize,
    /// The interface's own MAC, where the device has one (TAP, AF_PACKET).
    pub mac: Option<[u8; 6]>,
    /// Frames per `receive` call the device prefers.
    pub rx_batch: usize,
    /// A short human name: "packet", "tap", "xdp/skb/copy", "pipe".
    pub kind: String,
}

/// Counters kept by the driver or the kernel beneath it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceStats {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Frames the kernel or driver dropped before the stack saw them.
    pub rx_dropped: u64,
    /// TX attempts refused for lack of a slot.
    pub tx_exhausted: u64,
    /// Driver-specific extras (`xdp_rx_ring_full`, `tp_drops`, ...).
    pub extra: Vec<(&'static str, u64)>,
}

/// A network device driven by the stack.
///
/// Object-safe, so the binary can pick a driver at run time.
pub trait Device {
    fn caps(&self) -> DeviceCaps;

    /// Hand up to `budget` received frames to `on_frame`, one at a time, each
    /// with the device's transmitter. Returns how many frames were handed out.
    /// Never blocks.
    fn receive(
        &mut self,
        now: Instant,
        budget: usize,
        on_frame: &mut dyn FnMut(&[u8], &mut dyn Transmit),
    ) -> io::Result<usize>;

    /// The transmitter, for frames the stack sends outside `receive`.
    fn transmitter(&mut self) -> &mut dyn Transmit;

    /// Push queued TX frames to the wire (one syscall at most) and reclaim
    /// completed ones.
    fn flush(&mut self, now: Instant) -> io::Result<()>;

    /// Block until a frame may be waiting or `timeout` passes. Drivers without
    /// a descriptor to wait on return at once.
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// The descriptors `wait` sleeps on, pushed onto `fds`, so that one
    /// thread can sleep on several devices at once ([`wait_any`]).
    /// `false`: a frame is ready now, or the device has no descriptor, and
    /// the caller must not sleep.
    fn wait_fds(&self, _fds: &mut Vec<i32>) -> bool {
        false
    }

    fn stats(&self) -> DeviceStats;
}

/// Sleep until a frame may be waiting on any of `devs` or `timeout`
/// passes; returns at once when a device cannot say (see
/// [`Device::wait_fds`]). `fds` is scratch, kept by the caller so idling
/// allocates nothing.
#[cfg(target_os = "linux")]
pub fn wait_any<D: Device>(
    devs: &[D],
    timeout: Option<Duration>,
    fds: &mut Vec<i32>,
) -> io::Result<()> {
    fds.clear();
    for d in devs {
        if !d.wait_fds(fds) {
            return Ok(());
        }
    }
    let ms = match timeout {
        None => -1,
        Some(d) => d.total_micros().div_ceil(1000).min(i32::MAX as u64) as i32,
    };
    xdp::sys::poll_in(fds, ms)
}

impl<D: Device + ?Sized> Device for Box<D> {
    fn caps(&self) -> DeviceCaps {
        (**self).caps()
    }
    fn receive(
        &mut self,
        now: Instant,
        budget: usize,
        on_frame: &mut dyn FnMut(&[u8], &mut dyn Transmit),
    ) -> io::Result<usize> {
        (**self).receive(now, budget, on_frame)
    }
    fn transmitter(&mut self) -> &mut dyn Transmit {
        (**self).transmitter()
    }
    fn flush(&mut self, now: Instant) -> io::Result<()> {
        (**self).flush(now)
    }
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).wait(timeout)
    }
    fn wait_fds(&self, fds: &mut Vec<i32>) -> bool {
        (**self).wait_fds(fds)
    }
    fn stats(&self) -> DeviceStats {
        (**self).stats()
    }
}

/// The system clock as an [`Instant`]: CLOCK_MONOTONIC in microseconds. Only
/// drivers and the binary call it; the core is handed `now`.
pub fn monotonic_now() -> Instant {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    let start = *START.get_or_init(std::time::Instant::now);
    Instant::from_micros(start.elapsed().as_micros() as i64)
}
