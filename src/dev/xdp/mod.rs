//! AF_XDP: the fast path (issue #3).
//!
//! One AF_XDP socket per RX queue, each with its own UMEM and fill /
//! completion / RX / TX rings, and a six-instruction XDP program that
//! redirects every frame of a bound queue to its socket (`bpf_redirect_map`
//! on an XSKMAP, falling back to `XDP_PASS`). Everything is set up with raw
//! syscalls: no libbpf, no ELF.
//!
//! Received frames are lent to the stack straight out of the UMEM; replies
//! are written straight into a free UMEM frame. `flush` publishes the TX
//! ring, kicks the kernel only when it asks (`XDP_USE_NEED_WAKEUP`; copy
//! mode always asks) and reaps the completion ring.
//!
//! ```no_run
//! use ringstack::dev::xdp::{XdpConfig, XdpDevice};
//! let dev = XdpDevice::open("eth0", XdpConfig::default())?;
//! println!("{}", ringstack::dev::Device::caps(&dev).kind); // e.g. "xdp/drv/copy"
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Copy mode (all veth, and any driver without zero-copy) transmits only
//! inside `sendto`, at most 32 frames per call, answering EAGAIN while more
//! is queued; `flush` therefore kicks until the TX ring is drained (bounded
//! at ring size / 32 + 4 calls), reaping completions in between. With
//! zero-copy and a driver that doesn't ask for a wake-up, it makes none.
//!
//! The kernel frees a closed socket's queue from a workqueue, a moment after
//! `close`: `open` retries a bind that fails with EBUSY for up to 5 s.
//!
//! Drop order tears things down safely: the BPF link first (the program
//! leaves the interface), then the program and map, then each socket's
//! rings, socket and UMEM. A failed `open` cleans up the same way.

mod bpf;
mod ring;
mod socket;
pub(crate) mod sys;
mod umem;

use std::io;
use std::os::fd::OwnedFd;

pub use self::socket::UmemAccounting;
use self::socket::{BindMode, QueueParams, XskQueue};
use super::{Device, DeviceCaps, DeviceStats, Transmit};
use crate::time::{Duration, Instant};

/// How the XDP program is attached.
#[derive(Debug, Copy, Clone, PartialEq, Eq, Default)]
pub enum XdpAttach {
    /// Generic XDP (`XDP_FLAGS_SKB_MODE`): works on any interface, after the
    /// kernel has built an skb.
    Skb,
    /// Native XDP in the driver (`XDP_FLAGS_DRV_MODE`).
    Driver,
    /// Driver mode if the driver supports it, else SKB mode.
    #[default]
    Auto,
}

/// Whether the UMEM is shared with the NIC (zero-copy) or copied into.
#[derive(Debug, Copy, Clone, PartialEq, Eq, Default)]
pub enum XdpCopyMode {
    /// Zero-copy if the driver supports it, else copy (veth: copy).
    #[default]
    Auto,
    Copy,
    /// Zero-copy or fail.
    ZeroCopy,
}

/// Configuration for [`XdpDevice::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpConfig {
    /// Sockets to bind, on queues `0..queues`.
    pub queues: usize,
    /// UMEM frame size: 2048 or 4096. A received frame gets
    /// `frame_size - 256` bytes (the kernel's XDP headroom).
    pub frame_size: u32,
    /// UMEM frames per queue; half stock the fill ring, the rest serve TX.
    pub frame_count: u32,
    pub attach: XdpAttach,
    pub zero_copy: XdpCopyMode,
    /// Ask for busy polling (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL`) and kick
    /// RX with `recvfrom` whenever the RX ring is empty.
    pub busy_poll: bool,
    /// Start even if the interface has more RX queues than `queues`
    /// (traffic hashed to the unbound ones then goes to the kernel).
    pub allow_unbound_queues: bool,
}

impl Default for XdpConfig {
    fn default() -> XdpConfig {
        XdpConfig {
            queues: 1,
            frame_size: 4096,
            frame_count: 4096,
            attach: XdpAttach::Auto,
            zero_copy: XdpCopyMode::Auto,
            busy_poll: false,
            allow_unbound_queues: false,
        }
    }
}

/// Frames handed to the stack per `receive` call, preferred.
const RX_BATCH: u32 = 64;
/// Ethernet header plus one VLAN tag on top of the L3 MTU.
const L2_OVERHEAD: usize = 14 + 4;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// An AF_XDP device: see the module docs.
pub struct XdpDevice {
    // Held only to be dropped, and field order is drop order: the link
    // first (the program leaves the interface), then program and map, then
    // the sockets.
    _link: OwnedFd,
    _prog: OwnedFd,
    _map: OwnedFd,
    queues: Vec<XskQueue>,
    /// The sockets' fds, kept for `wait` so idling allocates nothing.
    fds: Vec<std::os::fd::RawFd>,
    caps: DeviceCaps,
    ifname: String,
    attach: XdpAttach,
    zero_copy: bool,
    prog_id: u32,
    next_rx: usize,
}

impl std::fmt::Debug for XdpDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpDevice")
            .field("ifname", &self.ifname)
            .field("kind", &self.caps.kind)
            .field("queues", &self.queues.len())
            .field("prog_id", &self.prog_id)
            .finish()
    }
}

impl XdpDevice {
    /// Bind AF_XDP sockets to queues `0..cfg.queues` of `ifname` and attach
    /// the redirect program. Needs CAP_NET_ADMIN + CAP_BPF (or root).
    pub fn open(ifname: &str, cfg: XdpConfig) -> io::Result<XdpDevice> {
        if cfg.frame_size != 2048 && cfg.frame_size != 4096 {
            return Err(invalid(format!(
                "frame_size {} unsupported: use 2048 or 4096",
                cfg.frame_size
            )));
        }
        if !(64..=1 << 20).contains(&cfg.frame_count) {
            return Err(invalid(format!(
                "frame_count {} out of range 64..=1048576",
                cfg.frame_count
            )));
        }
        if cfg.queues == 0 {
            return Err(invalid("queues must be at least 1".into()));
        }
        let ifindex = sys::ifindex(ifname)?;
        let info = sys::ifinfo(ifname)?;

        let rx_room = (cfg.frame_size - socket::XDP_PACKET_HEADROOM) as usize;
        if info.mtu + L2_OVERHEAD > rx_room {
            return Err(invalid(format!(
                "{ifname} has MTU {}, but a {}-byte UMEM frame holds at most {} bytes of \
                 frame after the kernel's {}-byte XDP headroom (MTU {} at most): use \
                 frame_size 4096 or lower the MTU",
                info.mtu,
                cfg.frame_size,
                rx_room,
                socket::XDP_PACKET_HEADROOM,
                rx_room - L2_OVERHEAD
            )));
        }
        let rxq = info.rx_queues as usize;
        if cfg.queues > rxq {
            return Err(invalid(format!(
                "queue index {} out of range: {ifname} has {rxq} RX queue(s) (queues = {})",
                cfg.queues - 1,
                cfg.queues
            )));
        }
        if cfg.queues < rxq && !cfg.allow_unbound_queues {
            return Err(invalid(format!(
                "{ifname} has {rxq} RX queues but only {} would get an AF_XDP socket; \
                 traffic on the others would bypass ringstack. Bind all (queues = {rxq}), \
                 reduce them (`ethtool -L {ifname} rx 1 tx 1` or `combined 1`), or set \
                 allow_unbound_queues",
                cfg.queues
            )));
        }

        let bind = match (cfg.zero_copy, cfg.attach) {
            (XdpCopyMode::Copy, _) => BindMode::Copy,
            (XdpCopyMode::ZeroCopy, XdpAttach::Skb) => {
                return Err(invalid(
                    "zero-copy needs the XDP program in driver mode, not skb mode".into(),
                ))
            }
            (XdpCopyMode::ZeroCopy, _) => BindMode::ZeroCopy,
            (XdpCopyMode::Auto, XdpAttach::Skb) => BindMode::Copy,
            (XdpCopyMode::Auto, _) => BindMode::TryZeroCopy,
        };

        sys::raise_memlock();

        // Rings of a power-of-two size holding half the frames each.
        let half = cfg.frame_count / 2;
        let ring_size = 1u32 << (31 - half.leading_zeros());
        let mut queues = Vec::with_capacity(cfg.queues);
        for q in 0..cfg.queues {
            queues.push(XskQueue::open(&QueueParams {
                ifindex,
                ifname: ifname.to_string(),
                queue_id: q as u32,
                frame_size: cfg.frame_size,
                frame_count: cfg.frame_count,
                ring_size,
                fill_target: ring_size.min(half),
                max_tx_len: info.mtu + L2_OVERHEAD,
                bind,
                busy_poll: cfg.busy_poll,
                rx_batch: RX_BATCH,
            })?);
        }
        let zero_copy = queues.iter().all(|q| q.zero_copy);

        let map = bpf::create_xskmap(cfg.queues as u32)?;
        for q in &queues {
            bpf::xskmap_set(&map, q.queue_id, q.raw_fd())?;
        }
        let prog = bpf::load_program(&map)?;
        let (link, attach) = match cfg.attach {
            XdpAttach::Skb => (
                bpf::attach_link(&prog, ifindex, ifname, bpf::XDP_FLAGS_SKB_MODE)?,
                XdpAttach::Skb,
            ),
            XdpAttach::Driver => (
                bpf::attach_link(&prog, ifindex, ifname, bpf::XDP_FLAGS_DRV_MODE)?,
                XdpAttach::Driver,
            ),
            XdpAttach::Auto => {
                match bpf::attach_link(&prog, ifindex, ifname, bpf::XDP_FLAGS_DRV_MODE) {
                    Ok(l) => (l, XdpAttach::Driver),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
                        ) =>
                    {
                        return Err(e)
                    }
                    Err(e) if zero_copy => return Err(e),
                    Err(e) => {
                        tracing::debug!(%ifname, error = %e, "driver-mode XDP refused; trying skb mode");
                        (
                            bpf::attach_link(&prog, ifindex, ifname, bpf::XDP_FLAGS_SKB_MODE)?,
                            XdpAttach::Skb,
                        )
                    }
                }
            }
        };
        let prog_id = bpf::prog_id(&prog).unwrap_or(0);

        let kind = format!(
            "xdp/{}/{}",
            if attach == XdpAttach::Driver {
                "drv"
            } else {
                "skb"
            },
            if zero_copy { "zc" } else { "copy" }
        );
        tracing::info!(%ifname, %kind, queues = cfg.queues, prog_id, "AF_XDP device open");
        let fds = queues.iter().map(|q| q.raw_fd()).collect();
        Ok(XdpDevice {
            _link: link,
            _prog: prog,
            _map: map,
            queues,
            fds,
            caps: DeviceCaps {
                mtu: info.mtu,
                mac: Some(info.mac),
                rx_batch: RX_BATCH as usize,
                kind,
            },
            ifname: ifname.to_string(),
            attach,
            zero_copy,
            prog_id,
            next_rx: 0,
        })
    }

    /// Where every UMEM frame is, summed over all queues. After a quiescent
    /// `flush` (nothing left to send) `free + in_fill == total`; at every
    /// moment the fields sum to `total`.
    pub fn umem_accounting(&self) -> UmemAccounting {
        let mut acc = UmemAccounting::default();
        for q in &self.queues {
            q.add_accounting(&mut acc);
        }
        acc
    }

    /// The attach mode obtained (`Skb` or `Driver`, never `Auto`).
    pub fn attach_mode(&self) -> XdpAttach {
        self.attach
    }

    /// Whether every socket got zero-copy.
    pub fn is_zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// The kernel's id of our XDP program (`bpftool prog show id N`).
    pub fn prog_id(&self) -> u32 {
        self.prog_id
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }
}

impl Device for XdpDevice {
    fn caps(&self) -> DeviceCaps {
        self.caps.clone()
    }

    fn receive(
        &mut self,
        _now: Instant,
        budget: usize,
        on_frame: &mut dyn FnMut(&[u8], &mut dyn Transmit),
    ) -> io::Result<usize> {
        let nq = self.queues.len();
        let mut done = 0;
        for i in 0..nq {
            if done >= budget {
                break;
            }
            let q = (self.next_rx + i) % nq;
            done += self.queues[q].receive(budget - done, on_frame)?;
        }
        self.next_rx = (self.next_rx + 1) % nq;
        Ok(done)
    }

    fn transmitter(&mut self) -> &mut dyn Transmit {
        &mut self.queues[0].txs
    }

    fn flush(&mut self, _now: Instant) -> io::Result<()> {
        for q in &mut self.queues {
            q.flush()?;
        }
        Ok(())
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let ms = match timeout {
            None => -1,
            Some(d) => d.total_micros().div_ceil(1000).min(i32::MAX as u64) as libc::c_int,
        };
        sys::poll_in(&self.fds, ms)
    }

    fn wait_fds(&self, fds: &mut Vec<i32>) -> bool {
        fds.extend_from_slice(&self.fds);
        true
    }

    fn stats(&self) -> DeviceStats {
        let mut s = DeviceStats::default();
        let mut x = [0u64; 6];
        let (mut kicks_tx, mut kicks_rx, mut kick_err, mut bad, mut viol) = (0, 0, 0, 0, 0);
        for q in &self.queues {
            s.rx_frames += q.rx_frames;
            s.rx_bytes += q.rx_bytes;
            s.tx_frames += q.txs.tx_frames;
            s.tx_bytes += q.txs.tx_bytes;
            s.tx_exhausted += q.txs.tx_exhausted;
            kicks_tx += q.tx_kicks;
            kicks_rx += q.rx_kicks;
            kick_err += q.kick_errors;
            bad += q.bad_rx_descs;
            viol += q.txs.pool.violations();
            if let Ok(k) = q.xdp_statistics() {
                x[0] += k.rx_dropped;
                x[1] += k.rx_invalid_descs;
                x[2] += k.tx_invalid_descs;
                x[3] += k.rx_ring_full;
                x[4] += k.rx_fill_ring_empty_descs;
                x[5] += k.tx_ring_empty_descs;
            }
        }
        // With the full struct the kernel reports ring-full drops apart.
        s.rx_dropped = x[0] + x[3];
        s.extra = vec![
            ("xdp_rx_dropped", x[0]),
            ("xdp_rx_invalid_descs", x[1]),
            ("xdp_tx_invalid_descs", x[2]),
            ("xdp_rx_ring_full", x[3]),
            ("xdp_rx_fill_ring_empty_descs", x[4]),
            ("xdp_tx_ring_empty_descs", x[5]),
            ("xdp_tx_kicks", kicks_tx),
            ("xdp_rx_kicks", kicks_rx),
            ("xdp_kick_errors", kick_err),
            ("xdp_bad_rx_descs", bad),
            ("umem_ownership_violations", viol),
        ];
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<XdpDevice>();
    }

    #[test]
    fn missing_interface_is_a_clear_error() {
        let e = XdpDevice::open("rsnope0", XdpConfig::default()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("no such interface"), "{e}");
    }

    #[test]
    fn bad_config_is_refused_before_touching_anything() {
        let cfg = XdpConfig {
            frame_size: 3000,
            ..Default::default()
        };
        let e = XdpDevice::open("lo", cfg).unwrap_err();
        assert!(e.to_string().contains("frame_size"), "{e}");
        let cfg = XdpConfig {
            zero_copy: XdpCopyMode::ZeroCopy,
            attach: XdpAttach::Skb,
            ..Default::default()
        };
        // `lo` has MTU 65536, which no frame holds: that check comes first.
        let e = XdpDevice::open("lo", cfg).unwrap_err();
        assert!(e.to_string().contains("MTU"), "{e}");
    }
}
