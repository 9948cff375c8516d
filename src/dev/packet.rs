//! AF_PACKET driver: a raw socket bound to one interface, a memory-mapped RX
//! ring shared with the kernel (TPACKET_V2 or TPACKET_V3, see
//! [`RingVersion`]), and a pool of TX buffers sent with one `sendmmsg(2)` per
//! flush.
//!
//! RX, TPACKET_V2 (per-frame handoff): the ring is an array of fixed-size
//! frame slots, each with its own `tp_status`. The kernel fills the next
//! free slot and sets it to `TP_STATUS_USER` as soon as the frame is written;
//! `receive` walks the slots in order, lends each frame to the stack, and
//! gives the slot back (`TP_STATUS_KERNEL`) right after the callback. A frame
//! is visible to a busy-polling reader within microseconds of its arrival.
//!
//! RX, TPACKET_V3 (per-block handoff): the kernel packs frames by their real
//! length into blocks and hands a block over (status `TP_STATUS_USER`) when it
//! is full or when the retire timeout (default 1 ms, rounded up to a jiffy by
//! the kernel) expires. `receive` walks handed-over blocks in order, lends
//! each frame to the stack, and gives a block back once every frame in it was
//! seen. A block is never held across calls longer than needed: a budget that
//! ends mid-block resumes at the next frame on the next call. At low rates a
//! frame waits for the retire timeout: a ~1 ms floor on latency.
//!
//! Both walks load the status with Acquire before reading a frame (pairing
//! with the kernel's write barrier) and hand memory back with a Release store
//! (so our reads are done before the kernel may overwrite it).
//!
//! Filtering: the socket sets `PACKET_IGNORE_OUTGOING`, so frames sent on the
//! interface (ours or the kernel's) never come back. Unless
//! [`PacketConfig::promiscuous`] is set, frames the kernel marked
//! `PACKET_OTHERHOST` (unicast to another MAC, which a veth delivers without
//! filtering) are skipped and counted as `rx_otherhost`: the stack sees
//! frames to the interface's MAC, broadcast and multicast, as on a real NIC.
//! A stack that uses a MAC other than the interface's must ask for
//! `promiscuous`.
//!
//! TX: `transmit` writes into the next free buffer of a preallocated pool;
//! `flush` sends every queued buffer with one `sendmmsg`. `ENOBUFS` (a drop in
//! our own egress path) is wire loss: the frame is dropped and counted as
//! `tx_enobufs`. `EAGAIN` keeps the frames queued for the next flush.
//!
//! Frame length: up to MTU + 18 bytes (14-byte Ethernet header plus one
//! 802.1Q tag). The kernel refuses an *untagged* frame longer than MTU + 14
//! (`EMSGSIZE`); such a frame is dropped at flush and counted in `tx_errors`.

use super::sys::{self, Mmap};
use super::{Device, DeviceCaps, DeviceStats, Transmit, TxError};
use crate::time::{Duration, Instant};
use std::cell::Cell;
use std::io;
use std::mem::{offset_of, size_of, MaybeUninit};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

/// Bytes an Ethernet frame may have beyond the L3 MTU: header and one VLAN tag.
const L2_OVERHEAD: usize = 14 + 4;

/// The layout of the RX ring, and so when the kernel hands frames over.
#[derive(Debug, Copy, Clone, PartialEq, Eq, Default)]
pub enum RingVersion {
    /// TPACKET_V2 (the default): one fixed-size slot per frame, each handed
    /// over as soon as the kernel has written it. No latency floor; every
    /// frame takes a whole `frame_size` slot.
    #[default]
    V2,
    /// TPACKET_V3: frames packed by length into blocks, a block handed over
    /// when full or after `retire_timeout_ms`. Fewer handoffs under load, but
    /// at low rates a frame waits up to the retire timeout (≥ 1 ms).
    V3,
}

impl RingVersion {
    /// "v2" or "v3".
    pub fn as_str(self) -> &'static str {
        match self {
            RingVersion::V2 => "v2",
            RingVersion::V3 => "v3",
        }
    }
}

/// Tunables of a [`PacketDevice`]. [`PacketConfig::new`] gives each ring
/// layout its own default geometry; `Default` is that of the default layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketConfig {
    /// RX ring layout: per-frame (V2) or per-block (V3) handoff.
    pub ring: RingVersion,
    /// Bytes per RX ring block: a multiple of the page size. V3: frames longer
    /// than a block (minus its 48-byte header) arrive truncated. V2: a
    /// multiple of `frame_size` too (frames never straddle blocks).
    pub block_size: usize,
    /// Blocks in the RX ring. When all are waiting for the stack the kernel
    /// drops frames (`rx_dropped`, and for V3 `tp_freeze_q_cnt`).
    pub block_count: usize,
    /// Frame slot size, a multiple of 16. V2: each frame takes one slot, so
    /// the slot must hold the ring header (66 bytes before the Ethernet
    /// header) plus MTU + 18; `open` checks this against the interface MTU
    /// (see [`PacketConfig::fit_mtu`]). V3: frames are packed by their real
    /// length; this only has to satisfy the kernel's bookkeeping.
    pub frame_size: usize,
    /// V3 only: milliseconds before the kernel hands over a block that is not
    /// full: the worst-case added RX latency at low rates (at least one jiffy).
    pub retire_timeout_ms: u32,
    /// Preallocated TX buffers; also the most frames one flush sends.
    pub tx_frames: usize,
    /// Receive frames to any MAC (`PACKET_MR_PROMISC`); needed when the stack
    /// uses a MAC other than the interface's.
    pub promiscuous: bool,
    /// Send straight to the driver, skipping the qdisc (`PACKET_QDISC_BYPASS`).
    pub qdisc_bypass: bool,
    /// Frames per `receive` the device suggests (`caps().rx_batch`).
    pub rx_batch: usize,
}

impl Default for PacketConfig {
    fn default() -> Self {
        PacketConfig::new(RingVersion::default())
    }
}

impl PacketConfig {
    /// The default tunables for a `ring` layout. Both use blocks of 256 KiB.
    ///
    /// - V2: 64 blocks (16 MiB, the size of AF_XDP's default UMEM) of
    ///   2048-byte slots: 8192 frames of any length up to MTU 1964.
    /// - V3: 16 blocks (4 MiB), packed by length: about 29,000 frames of 60
    ///   bytes or 2,600 of 1514 bytes.
    ///
    /// V2 gets the larger ring because a slot holds one frame whatever its
    /// length: with 4 MiB (2048 slots) a burst of small frames overruns it
    /// within 2 ms at 1 Mpps, which a receiver sharing its core with other
    /// work does not always survive.
    pub fn new(ring: RingVersion) -> PacketConfig {
        PacketConfig {
            ring,
            block_size: 256 * 1024,
            block_count: match ring {
                RingVersion::V2 => 64,
                RingVersion::V3 => 16,
            },
            frame_size: 2048,
            retire_timeout_ms: 1,
            tx_frames: 256,
            promiscuous: false,
            qdisc_bypass: true,
            rx_batch: 64,
        }
    }

    /// A V2 config whose frame slots hold a frame of an interface with this
    /// MTU: `frame_size` is raised to the next power of two that fits, and
    /// `block_size` to a multiple of it. Other rings are returned unchanged.
    pub fn fit_mtu(mut self, mtu: usize) -> PacketConfig {
        if self.ring == RingVersion::V2 {
            let need = V2_MACOFF.saturating_add(mtu).saturating_add(L2_OVERHEAD);
            if self.frame_size < need {
                self.frame_size = need.checked_next_power_of_two().unwrap_or(need);
                self.block_size = self.block_size.next_multiple_of(self.frame_size);
            }
        }
        self
    }

    fn validate(&self, ifname: &str) -> io::Result<()> {
        let bad = |what: String| Err(config_error(ifname, what));
        let page = sys::page_size();
        if self.block_size == 0 || !self.block_size.is_multiple_of(page) {
            return bad(format!(
                "block_size {} must be a positive multiple of the page size {page}",
                self.block_size
            ));
        }
        if self.block_size > u32::MAX as usize {
            return bad(format!("block_size {} is too large", self.block_size));
        }
        if self.block_count == 0 || self.block_count > u32::MAX as usize {
            return bad(format!("block_count {} is out of range", self.block_count));
        }
        if self
            .block_size
            .checked_mul(self.block_count)
            .is_none_or(|total| total > isize::MAX as usize)
        {
            return bad("block_size * block_count overflows".to_string());
        }
        let min_frame = match self.ring {
            RingVersion::V2 => libc::TPACKET2_HDRLEN + 14,
            RingVersion::V3 => libc::TPACKET3_HDRLEN + 14,
        };
        if self.frame_size < min_frame
            || !self.frame_size.is_multiple_of(libc::TPACKET_ALIGNMENT)
            || self.frame_size > self.block_size
        {
            return bad(format!(
                "frame_size {} must be a multiple of {} between {min_frame} and block_size {}",
                self.frame_size,
                libc::TPACKET_ALIGNMENT,
                self.block_size
            ));
        }
        if self.ring == RingVersion::V2 && !self.block_size.is_multiple_of(self.frame_size) {
            return bad(format!(
                "block_size {} must be a multiple of frame_size {} for a TPACKET_V2 ring",
                self.block_size, self.frame_size
            ));
        }
        if (self.block_size / self.frame_size)
            .checked_mul(self.block_count)
            .is_none_or(|n| n > u32::MAX as usize)
        {
            return bad(format!(
                "block_count {} gives more than 2^32 frame slots",
                self.block_count
            ));
        }
        if self.tx_frames == 0 || self.tx_frames > 1 << 20 {
            return bad(format!(
                "tx_frames {} must be between 1 and 2^20",
                self.tx_frames
            ));
        }
        if self.rx_batch == 0 {
            return bad("rx_batch must be at least 1".to_string());
        }
        Ok(())
    }

    /// Whether a frame of an interface with this MTU fits the ring whole.
    fn validate_mtu(&self, ifname: &str, mtu: usize) -> io::Result<()> {
        let frame = mtu.saturating_add(L2_OVERHEAD);
        match self.ring {
            RingVersion::V2 => {
                let need = V2_MACOFF.saturating_add(frame);
                if self.frame_size < need {
                    return Err(config_error(
                        ifname,
                        format!(
                            "frame_size {} is too small for MTU {mtu}: a TPACKET_V2 slot needs \
                             {V2_MACOFF} bytes of header plus {frame} of frame, at least {need} \
                             (PacketConfig::fit_mtu sizes it)",
                            self.frame_size
                        ),
                    ));
                }
            }
            RingVersion::V3 => {
                let need = V3_FIRST_PKT + V3_MACOFF.saturating_add(frame);
                if self.block_size < need {
                    return Err(config_error(
                        ifname,
                        format!(
                            "block_size {} is too small for MTU {mtu}: a TPACKET_V3 block needs \
                             at least {need} bytes to hold one whole frame",
                            self.block_size
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn config_error(ifname: &str, what: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("AF_PACKET config for {ifname}: {what}"),
    )
}

/// An AF_PACKET socket on one interface, with a TPACKET_V2 or V3 RX ring.
///
/// `Send` (it may be opened on one thread and driven on another), not `Sync`.
pub struct PacketDevice {
    // Field order matters: the ring is unmapped before the socket is closed
    // (the kernel complains about closing a socket whose ring is mapped).
    rx: RxRing,
    tx: PacketTx,
    fd: OwnedFd,
    ifname: String,
    ifindex: u32,
    mac: [u8; 6],
    mtu: usize,
    rx_batch: usize,
    /// PACKET_STATISTICS resets on read; these accumulate it.
    tp_packets: Cell<u64>,
    tp_drops: Cell<u64>,
    tp_freeze_q_cnt: Cell<u64>,
}

impl PacketDevice {
    /// Open an AF_PACKET socket on interface `ifname` (needs CAP_NET_RAW).
    pub fn open(ifname: &str, config: PacketConfig) -> io::Result<PacketDevice> {
        config.validate(ifname)?;
        let ifindex = sys::if_index(ifname)?;
        let mac = sys::if_mac(ifname)?;
        let mtu = sys::if_mtu(ifname)?;

        // Protocol 0: the socket receives nothing until `bind` names a
        // protocol, so no frame of another interface slips in before that.
        // SAFETY: socket(2) takes no pointers; `owned_fd` checks the result.
        let rc = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        let errno = io::Error::last_os_error().raw_os_error();
        let fd = sys::owned_fd(rc, || {
            if matches!(errno, Some(libc::EPERM) | Some(libc::EACCES)) {
                format!("AF_PACKET socket on {ifname} (need CAP_NET_RAW)")
            } else {
                format!("AF_PACKET socket on {ifname}")
            }
        })?;
        // After the socket, so that a missing privilege is what is reported
        // first (say, on `lo` with its 64 KiB MTU).
        config.validate_mtu(ifname, mtu)?;
        let raw = fd.as_raw_fd();
        let on: libc::c_int = 1;

        let (version, vname) = match config.ring {
            RingVersion::V2 => (libc::tpacket_versions::TPACKET_V2, "TPACKET_V2"),
            RingVersion::V3 => (libc::tpacket_versions::TPACKET_V3, "TPACKET_V3"),
        };
        sys::setsockopt(
            raw,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &(version as libc::c_int),
            &format!("PACKET_VERSION={vname} on {ifname}"),
        )?;
        sys::setsockopt(
            raw,
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &on,
            &format!("PACKET_IGNORE_OUTGOING on {ifname} (kernel 4.20 or later)"),
        )?;
        if config.qdisc_bypass {
            sys::setsockopt(
                raw,
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                &on,
                &format!("PACKET_QDISC_BYPASS on {ifname}"),
            )?;
        }

        let frames_per_block = config.block_size / config.frame_size;
        let frame_count = frames_per_block * config.block_count;
        let what = format!(
            "PACKET_RX_RING ({vname}, {} blocks of {} bytes, {frame_count} frames of {}) on {ifname}",
            config.block_count, config.block_size, config.frame_size
        );
        match config.ring {
            RingVersion::V2 => {
                let req = libc::tpacket_req {
                    tp_block_size: config.block_size as u32,
                    tp_block_nr: config.block_count as u32,
                    tp_frame_size: config.frame_size as u32,
                    tp_frame_nr: frame_count as u32,
                };
                sys::setsockopt(raw, libc::SOL_PACKET, libc::PACKET_RX_RING, &req, &what)?;
            }
            RingVersion::V3 => {
                let req = libc::tpacket_req3 {
                    tp_block_size: config.block_size as u32,
                    tp_block_nr: config.block_count as u32,
                    tp_frame_size: config.frame_size as u32,
                    tp_frame_nr: frame_count as u32,
                    tp_retire_blk_tov: config.retire_timeout_ms,
                    tp_sizeof_priv: 0,
                    tp_feature_req_word: 0,
                };
                sys::setsockopt(raw, libc::SOL_PACKET, libc::PACKET_RX_RING, &req, &what)?;
            }
        }
        let map = Mmap::shared(
            raw,
            config.block_size * config.block_count,
            &format!("AF_PACKET RX ring on {ifname}"),
        )?;

        // SAFETY: sockaddr_ll is plain integers; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { MaybeUninit::zeroed().assume_init() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a live sockaddr_ll and the length passed is its size.
        let rc = unsafe {
            libc::bind(
                raw,
                &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(sys::last_error(|| {
                format!("binding AF_PACKET socket to {ifname}")
            }));
        }

        if config.promiscuous {
            let mreq = libc::packet_mreq {
                mr_ifindex: ifindex as i32,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            sys::setsockopt(
                raw,
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                &mreq,
                &format!("PACKET_ADD_MEMBERSHIP promiscuous on {ifname}"),
            )?;
        }

        let mem = RingMem::Mapped(map);
        let rx = match config.ring {
            RingVersion::V2 => RxRing::V2(FrameRing::new(mem, &config)),
            RingVersion::V3 => RxRing::V3(BlockRing::new(mem, &config)),
        };
        Ok(PacketDevice {
            rx,
            tx: PacketTx::new(raw, config.tx_frames, mtu.saturating_add(L2_OVERHEAD)),
            fd,
            ifname: ifname.to_string(),
            ifindex,
            mac,
            mtu,
            rx_batch: config.rx_batch,
            tp_packets: Cell::new(0),
            tp_drops: Cell::new(0),
            tp_freeze_q_cnt: Cell::new(0),
        })
    }

    /// The interface this device is bound to.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The RX ring's layout.
    pub fn ring(&self) -> RingVersion {
        match self.rx {
            RxRing::V2(_) => RingVersion::V2,
            RxRing::V3(_) => RingVersion::V3,
        }
    }

    /// Add the kernel's PACKET_STATISTICS since the last read (it resets on
    /// read) to our running totals. The kernel fills `tpacket_stats` for V2
    /// and `tpacket_stats_v3` (with `tp_freeze_q_cnt`) for V3.
    fn collect_kernel_stats(&self) {
        let fd = self.fd.as_raw_fd();
        let (packets, drops, freeze) = match self.rx {
            RxRing::V2(_) => match sys::getsockopt::<libc::tpacket_stats>(
                fd,
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                "PACKET_STATISTICS",
            ) {
                Ok(s) => (s.tp_packets, s.tp_drops, 0),
                Err(_) => return,
            },
            RxRing::V3(_) => match sys::getsockopt::<libc::tpacket_stats_v3>(
                fd,
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                "PACKET_STATISTICS",
            ) {
                Ok(s) => (s.tp_packets, s.tp_drops, s.tp_freeze_q_cnt),
                Err(_) => return,
            },
        };
        let add = |cell: &Cell<u64>, v: libc::c_uint| cell.set(cell.get() + u64::from(v));
        add(&self.tp_packets, packets);
        add(&self.tp_drops, drops);
        add(&self.tp_freeze_q_cnt, freeze);
    }
}

impl AsRawFd for PacketDevice {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

const fn tpacket_align(n: usize) -> usize {
    (n + libc::TPACKET_ALIGNMENT - 1) & !(libc::TPACKET_ALIGNMENT - 1)
}

/// Where the kernel writes an Ethernet frame's first byte, counted from the
/// start of its ring header (af_packet.c `tpacket_rcv`: `netoff =
/// TPACKET_ALIGN(tp_hdrlen + max(maclen, 16))`, `macoff = netoff - maclen`,
/// with maclen 14).
const fn mac_offset(tp_hdrlen: usize) -> usize {
    tpacket_align(tp_hdrlen + 16) - 14
}

// Offsets into a TPACKET_V3 ring, from the kernel's UAPI structs.
const BLOCK_STATUS: usize =
    offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, block_status);
const BLOCK_NUM_PKTS: usize =
    offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, num_pkts);
const BLOCK_FIRST_PKT: usize = offset_of!(libc::tpacket_block_desc, hdr)
    + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt);
/// Alignment of packets inside a TPACKET_V3 block (af_packet.c V3_ALIGNMENT).
const V3_ALIGNMENT: usize = 8;
/// Where the first packet of a V3 block starts (`BLK_PLUS_PRIV(0)`).
const V3_FIRST_PKT: usize = (size_of::<libc::tpacket_block_desc>() + 7) & !7;
const PKT_HDR_LEN: usize = size_of::<libc::tpacket3_hdr>();
/// The kernel puts a sockaddr_ll right after the aligned tpacket3_hdr.
const PKT_SLL: usize = tpacket_align(PKT_HDR_LEN);
const SLL_PKTTYPE: usize = PKT_SLL + offset_of!(libc::sockaddr_ll, sll_pkttype);
const V3_MACOFF: usize = mac_offset(libc::TPACKET3_HDRLEN);

// Offsets into a TPACKET_V2 frame slot.
const V2_STATUS: usize = offset_of!(libc::tpacket2_hdr, tp_status);
const V2_LEN: usize = offset_of!(libc::tpacket2_hdr, tp_len);
const V2_SNAPLEN: usize = offset_of!(libc::tpacket2_hdr, tp_snaplen);
const V2_MAC: usize = offset_of!(libc::tpacket2_hdr, tp_mac);
/// The sockaddr_ll right after the aligned tpacket2_hdr.
const V2_SLL: usize = tpacket_align(size_of::<libc::tpacket2_hdr>());
const V2_PKTTYPE: usize = V2_SLL + offset_of!(libc::sockaddr_ll, sll_pkttype);
const V2_MACOFF: usize = mac_offset(libc::TPACKET2_HDRLEN);

/// The memory a ring lives in: the kernel's mapping, or (in unit tests) a
/// heap buffer standing in for it.
enum RingMem {
    Mapped(Mmap),
    #[cfg(test)]
    Heap(Vec<std::cell::UnsafeCell<u64>>),
}

impl RingMem {
    fn as_ptr(&self) -> *mut u8 {
        match self {
            RingMem::Mapped(m) => m.as_ptr(),
            // UnsafeCell: writing through a pointer derived from `&self` is allowed.
            #[cfg(test)]
            RingMem::Heap(v) => v.as_ptr() as *mut u8,
        }
    }
}

/// Counters and the OTHERHOST filter, shared by both ring walks.
struct RxCommon {
    promiscuous: bool,
    frames: u64,
    bytes: u64,
    truncated: u64,
    otherhost: u64,
    bad_ring: u64,
}

impl RxCommon {
    fn new(promiscuous: bool) -> RxCommon {
        RxCommon {
            promiscuous,
            frames: 0,
            bytes: 0,
            truncated: 0,
            otherhost: 0,
            bad_ring: 0,
        }
    }

    /// Lend `frame` (of wire length `len`) to `on_frame` unless its packet
    /// type filters it out; whether it was handed out.
    fn deliver(
        &mut self,
        pkttype: u8,
        len: usize,
        frame: &[u8],
        tx: &mut PacketTx,
        on_frame: &mut dyn FnMut(&[u8], &mut dyn Transmit),
    ) -> bool {
        if pkttype == libc::PACKET_OUTGOING
            || (pkttype == libc::PACKET_OTHERHOST && !self.promiscuous)
        {
            self.otherhost += u64::from(pkttype == libc::PACKET_OTHERHOST);
            return false;
        }
        if frame.len() < len {
            self.truncated += 1;
        }
        self.frames += 1;
        self.bytes += frame.len() as u64;
        on_frame(frame, tx);
        true
    }
}

/// The RX ring, in either layout.
enum RxRing {
    V2(FrameRing),
    V3(BlockRing),
}

impl RxRing {
    fn common(&self) -> &RxCommon {
        match self {
            RxRing::V2(r) => &r.rx,
            RxRing::V3(r) => &r.rx,
        }
    }

    /// Whether a frame may be waiting.
    fn ready(&self) -> bool {
        match self {
            RxRing::V2(r) => r.ready(),
            RxRing::V3(r) => r.ready(),
        }
    }

    fn receive(
        &mut self,
        budget: usize,
        tx: &mut PacketTx,
        on_frame: &mut dyn FnMut(&[u8], &mut dyn Transmit),
    ) -> usize {
        match self {
            RxRing::V2(r) => r.receive(budget, tx, on_frame),
            RxRing::V3(r) => r.receive(budget, tx, on_frame),
        }
    }
}

/// A TPACKET_V2 ring: `frame_count` slots of `frame_size` bytes. The kernel
/// places slot `i` at `(i / frames_per_block) * block_size + (i %
/// frames_per_block) * frame_size`; since `block_size` is a multiple of
/// `frame_size` (checked by `validate`) that is simply `i * frame_size`.
struct FrameRing {
    mem: RingMem,
    frame_size: usize,
    frame_count: usize,
    /// The slot the kernel fills after the one we last gave back.
    next: usize,
    rx: RxCommon,
}

impl FrameRing {
    fn new(mem: RingMem, config: &PacketConfig) -> FrameRing {
        assert!(config.block_size.is_multiple_of(config.frame_size));
        FrameRing {
            mem,
            frame_size: config.frame_size,
            frame_count: config.block_size / config.frame_size * config.block_count,
            next: 0,
            rx: RxCommon::new(config.promiscuous),
        }
    }

    fn slot_ptr(&self) -> *mut u8 {
        // SAFETY: `next < frame_count`, and `frame_count * frame_size` is
        // the `block_size * block_count` bytes mapped, so the slot lies
        // inside the mapping.
        unsafe { self.mem.as_ptr().add(self.next * self.frame_size) }
    }

    fn status(&self) -> &AtomicU32 {
        // SAFETY: tp_status is the first u32 of the slot, which starts at a
        // multiple of 16 in memory mapped for as long as `self` lives; the
        // kernel and we only access it atomically (the kernel with
        // WRITE_ONCE/READ_ONCE plus barriers), so an AtomicU32 view is sound.
        unsafe { &*(self.slot_ptr().add(V2_STATUS) as *const AtomicU32) }
    }

    /// Whether the next slot has been handed to us.
    fn ready(&self) -> bool {
        self.status().load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    fn read_u32(&self, offset: usize) -> u32 {
        debug_assert!(offset + 4 <= self.frame_size && offset.is_multiple_of(4));
        // SAFETY: a header field inside the slot (offset + 4 <= frame_size),
        // 4-aligned because slots start at multiples of 16; the slot is ours
        // (its status was seen as TP_STATUS_USER with Acquire), so the
        // kernel does not write it concurrently.
        unsafe { (self.slot_ptr().add(offset) as *const u32).read() }
    }

    fn read_u16(&self, offset: usize) -> u16 {
        debug_assert!(offset + 2 <= self.frame_size && offset.is_multiple_of(2));
        // SAFETY: as in `read_u32`, for 2 bytes.
        unsafe { (self.slot_ptr().add(offset) as *const u16).read() }
    }

    fn read_u8(&self, offset: usize) -> u8 {
        debug_assert!(offset < self.frame_size);
        // SAFETY: as in `read_u32`, for 1 byte.
        unsafe { self.slot_ptr().add(offset).read() }
    }

    /// Give the current slot back to the kernel and move to the next.
    fn release(&mut self) {
        // Release: every read of the slot happens before the kernel may
        // see it free and overwrite it.
        self.status()
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.next += 1;
        if self.next == self.frame_count {
            self.next = 0;
        }
    }

    /// Hand up to `budget` frames to `on_frame`, each slot given back right
    /// after its callback.
    fn receive(
        &mut self,
        budget: usize,
        tx: &mut PacketTx,
        on_frame: &mut dyn FnMut(&[u8], &mut dyn Transmit),
    ) -> usize {
        let mut handed = 0;
        // Acquire pairs with the kernel's write barrier before it sets
        // TP_STATUS_USER: the slot's header and frame are visible.
        while handed < budget && self.ready() {
            let len = self.read_u32(V2_LEN) as usize;
            let snaplen = self.read_u32(V2_SNAPLEN) as usize;
            let mac = self.read_u16(V2_MAC) as usize;
            // Defend against a corrupt slot rather than read out of bounds.
            if mac < libc::TPACKET2_HDRLEN
                || mac
                    .checked_add(snaplen)
                    .is_none_or(|end| end > self.frame_size)
            {
                self.rx.bad_ring += 1;
            } else {
                let pkttype = self.read_u8(V2_PKTTYPE);
                // SAFETY: `mac + snaplen <= frame_size` was checked above, so
                // the bytes lie inside the slot; the slot is ours until
                // `release`, which runs only after this borrow (limited to
                // the callback) has ended.
                let frame =
                    unsafe { std::slice::from_raw_parts(self.slot_ptr().add(mac), snaplen) };
                handed += usize::from(self.rx.deliver(pkttype, len, frame, tx, on_frame));
            }
            self.release();
        }
        handed
    }
}

/// A TPACKET_V3 ring, and where its walk is between calls.
struct BlockRing {
    mem: RingMem,
    block_size: usize,
    block_count: usize,
    /// The block we are reading or will read next.
    block: usize,
    /// Whether `block` is ours and `pkts_left`/`offset` describe it.
    in_block: bool,
    pkts_left: u32,
    /// Offset in the block of the next frame's tpacket3_hdr.
    offset: usize,
    rx: RxCommon,
}

impl BlockRing {
    fn new(mem: RingMem, config: &PacketConfig) -> BlockRing {
        BlockRing {
            mem,
            block_size: config.block_size,
            block_count: config.block_count,
            block: 0,
            in_block: false,
            pkts_left: 0,
            offset: 0,
            rx: RxCommon::new(config.promiscuous),
        }
    }

    fn block_ptr(&self) -> *mut u8 {
        // SAFETY: `block < block_count`, so the offset stays inside the
        // mapping of `block_size * block_count` bytes.
        unsafe { self.mem.as_ptr().add(self.block * self.block_size) }
    }

    fn status(&self) -> &AtomicU32 {
        // SAFETY: block_status is a naturally aligned u32 inside the block
        // header, in memory mapped for as long as `self` lives; the kernel
        // and we only access it atomically (the kernel with WRITE_ONCE /
        // READ_ONCE plus barriers), so viewing it as an AtomicU32 is sound.
        unsafe { &*(self.block_ptr().add(BLOCK_STATUS) as *const AtomicU32) }
    }

    /// Whether the current block has been handed to us.
    fn ready(&self) -> bool {
        self.in_block || self.status().load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    fn read_u32(&self, offset: usize) -> u32 {
        debug_assert!(offset + 4 <= self.block_size && offset.is_multiple_of(4));
        // SAFETY: callers check `offset + 4 <= block_size` and 4-alignment
        // (block starts are page aligned); the block belongs to us (its
        // status was seen as TP_STATUS_USER with Acquire), so the kernel does
        // not write it concurrently.
        unsafe { (self.block_ptr().add(offset) as *const u32).read() }
    }

    fn read_u16(&self, offset: usize) -> u16 {
        debug_assert!(offset + 2 <= self.block_size && offset.is_multiple_of(2));
        // SAFETY: as in `read_u32`, for 2 bytes.
        unsafe { (self.block_ptr().add(offset) as *const u16).read() }
    }

    fn read_u8(&self, offset: usize) -> u8 {
        debug_assert!(offset < self.block_size);
        // SAFETY: as in `read_u32`, for 1 byte.
        unsafe { self.block_ptr().add(offset).read() }
    }

    /// Give the current block back to the kernel and move to the next.
    fn release_block(&mut self) {
        self.status()
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.in_block = false;
        self.block = (self.block + 1) % self.block_count;
    }

    /// Hand up to `budget` frames to `on_frame`.
    fn receive(
        &mut self,
        budget: usize,
        tx: &mut PacketTx,
        on_frame: &mut dyn FnMut(&[u8], &mut dyn Transmit),
    ) -> usize {
        let mut handed = 0;
        while handed < budget {
            if !self.in_block {
                // Acquire pairs with the kernel's write barrier before it
                // sets TP_STATUS_USER: the block's contents are visible.
                if self.status().load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                    break;
                }
                self.in_block = true;
                self.pkts_left = self.read_u32(BLOCK_NUM_PKTS);
                self.offset = self.read_u32(BLOCK_FIRST_PKT) as usize;
            }
            if self.pkts_left == 0 {
                self.release_block();
                continue;
            }
            let off = self.offset;
            // Defend against a corrupt ring rather than read out of bounds.
            // TPACKET_V3 packs packets at 8-byte alignment (the kernel's
            // V3_ALIGNMENT), not TPACKET_ALIGNMENT's 16 that V1/V2 frames use:
            // demanding 16 discarded every block holding odd-sized frames.
            if !off.is_multiple_of(V3_ALIGNMENT)
                || off < size_of::<libc::tpacket_block_desc>()
                || off + PKT_SLL + 20 > self.block_size
            {
                self.rx.bad_ring += 1;
                self.release_block();
                continue;
            }
            let next = self.read_u32(off + offset_of!(libc::tpacket3_hdr, tp_next_offset)) as usize;
            let snaplen = self.read_u32(off + offset_of!(libc::tpacket3_hdr, tp_snaplen)) as usize;
            let len = self.read_u32(off + offset_of!(libc::tpacket3_hdr, tp_len)) as usize;
            let mac = self.read_u16(off + offset_of!(libc::tpacket3_hdr, tp_mac)) as usize;
            let pkttype = self.read_u8(off + SLL_PKTTYPE);
            let start = off + mac;
            if mac < PKT_SLL
                || start
                    .checked_add(snaplen)
                    .is_none_or(|end| end > self.block_size)
            {
                self.rx.bad_ring += 1;
                self.release_block();
                continue;
            }
            self.pkts_left -= 1;
            self.offset = off.wrapping_add(next);
            if self.pkts_left > 0 && next == 0 {
                self.rx.bad_ring += 1;
                self.release_block();
                continue;
            }
            // SAFETY: `start + snaplen <= block_size` was checked above; the
            // block is ours until `release_block`, which is not called while
            // this borrow (limited to the callback) lives.
            let frame = unsafe { std::slice::from_raw_parts(self.block_ptr().add(start), snaplen) };
            handed += usize::from(self.rx.deliver(pkttype, len, frame, tx, on_frame));
            if self.pkts_left == 0 {
                self.release_block();
            }
        }
        handed
    }
}

/// The TX half: a pool of frame buffers queued in order, sent by `sendmmsg`.
struct PacketTx {
    fd: RawFd,
    frame_cap: usize,
    slots: usize,
    /// `slots * frame_cap` bytes; slot `i` starts at `i * frame_cap`.
    buf: Vec<u8>,
    lens: Vec<usize>,
    /// First queued slot and how many are queued.
    head: usize,
    queued: usize,
    iov: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    /// errno of a fatal send error met inside `transmit`, reported by the
    /// next `flush`.
    deferred_errno: Option<i32>,
    frames: u64,
    bytes: u64,
    exhausted: u64,
    enobufs: u64,
    errors: u64,
    eagain: u64,
}

// SAFETY: the raw pointers inside `iov` and `msgs` only ever point into
// `buf` and `iov`, which this struct owns; they are rewritten before every
// sendmmsg and never dereferenced otherwise, so moving the struct (and its
// heap buffers, which do not move) to another thread is sound.
unsafe impl Send for PacketTx {}

/// A send failure that concerns one frame, not the socket.
fn per_frame_errno(errno: i32) -> bool {
    matches!(errno, libc::EMSGSIZE | libc::EINVAL | libc::EFAULT)
}

impl PacketTx {
    fn new(fd: RawFd, slots: usize, frame_cap: usize) -> PacketTx {
        // SAFETY: iovec and mmsghdr are plain C structs of integers and
        // pointers; all-zero (null pointers, zero lengths) is a valid value.
        let (iov, msg) = unsafe {
            (
                MaybeUninit::<libc::iovec>::zeroed().assume_init(),
                MaybeUninit::<libc::mmsghdr>::zeroed().assume_init(),
            )
        };
        PacketTx {
            fd,
            frame_cap,
            slots,
            buf: vec![0; slots * frame_cap],
            lens: vec![0; slots],
            head: 0,
            queued: 0,
            iov: vec![iov; slots],
            msgs: vec![msg; slots],
            deferred_errno: None,
            frames: 0,
            bytes: 0,
            exhausted: 0,
            enobufs: 0,
            errors: 0,
            eagain: 0,
        }
    }

    fn drop_head(&mut self, n: usize) {
        self.head = (self.head + n) % self.slots;
        self.queued -= n;
    }

    /// Send every queued frame: one `sendmmsg` unless the kernel stops
    /// partway. Returns the errno of a socket-level failure (interface down
    /// or gone); the queue is dropped then. On EAGAIN the rest stays queued.
    fn push(&mut self) -> Option<i32> {
        while self.queued > 0 {
            let n = self.queued;
            let base = self.buf.as_mut_ptr();
            let iov_base = self.iov.as_mut_ptr();
            for i in 0..n {
                let slot = (self.head + i) % self.slots;
                self.iov[i] = libc::iovec {
                    // SAFETY: `slot < slots`, so the slot lies inside `buf`.
                    iov_base: unsafe { base.add(slot * self.frame_cap) } as *mut libc::c_void,
                    iov_len: self.lens[slot],
                };
                let hdr = &mut self.msgs[i].msg_hdr;
                hdr.msg_name = std::ptr::null_mut();
                hdr.msg_namelen = 0;
                // SAFETY: `i < slots == iov.len()`.
                hdr.msg_iov = unsafe { iov_base.add(i) };
                hdr.msg_iovlen = 1;
                hdr.msg_control = std::ptr::null_mut();
                hdr.msg_controllen = 0;
                hdr.msg_flags = 0;
                self.msgs[i].msg_len = 0;
            }
            // SAFETY: `msgs[..n]` are initialised headers whose iovecs point
            // at `lens[slot]` bytes inside `buf` (lens never exceed
            // frame_cap); all of it lives across the call and the kernel
            // only reads the buffers and writes `msg_len`.
            let rc = unsafe {
                libc::sendmmsg(
                    self.fd,
                    self.msgs.as_mut_ptr(),
                    n as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if rc > 0 {
                let sent = rc as usize;
                for i in 0..sent {
                    self.bytes += self.lens[(self.head + i) % self.slots] as u64;
                }
                self.frames += sent as u64;
                self.drop_head(sent);
                continue;
            }
            let errno = if rc == 0 {
                libc::EAGAIN
            } else {
                io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO)
            };
            match errno {
                libc::EINTR => continue,
                libc::EAGAIN => {
                    self.eagain += 1;
                    break;
                }
                libc::ENOBUFS => {
                    // Dropped in our own egress: wire loss, not an error.
                    self.enobufs += 1;
                    self.drop_head(1);
                }
                e if per_frame_errno(e) => {
                    self.errors += 1;
                    self.drop_head(1);
                }
                e => {
                    self.errors += self.queued as u64;
                    self.drop_head(self.queued);
                    return Some(e);
                }
            }
        }
        None
    }
}

impl Transmit for PacketTx {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError> {
        if len > self.frame_cap {
            return Err(TxError::TooLong);
        }
        if self.queued == self.slots {
            if let Some(errno) = self.push() {
                self.deferred_errno.get_or_insert(errno);
            }
            if self.queued == self.slots {
                self.exhausted += 1;
                return Err(TxError::Exhausted);
            }
        }
        let slot = (self.head + self.queued) % self.slots;
        let start = slot * self.frame_cap;
        fill(&mut self.buf[start..start + len]);
        self.lens[slot] = len;
        self.queued += 1;
        Ok(())
    }
}

impl Device for PacketDevice {
    fn caps(&self) -> DeviceCaps {
        DeviceCaps {
            mtu: self.mtu,
            mac: Some(self.mac),
            rx_batch: self.rx_batch,
            kind: format!("packet/{}", self.ring().as_str()),
        }
    }

    fn receive(
        &mut self,
        _now: Instant,
        budget: usize,
        on_frame: &mut dyn FnMut(&[u8], &mut dyn Transmit),
    ) -> io::Result<usize> {
        Ok(self.rx.receive(budget, &mut self.tx, on_frame))
    }

    fn transmitter(&mut self) -> &mut dyn Transmit {
        &mut self.tx
    }

    fn flush(&mut self, _now: Instant) -> io::Result<()> {
        let errno = self.tx.push().or(self.tx.deferred_errno.take());
        match errno {
            None => Ok(()),
            Some(e) => Err(sys::with_context(
                io::Error::from_raw_os_error(e),
                format!("sendmmsg on AF_PACKET socket on {}", self.ifname),
            )),
        }
    }

    fn wait_fds(&self, fds: &mut Vec<i32>) -> bool {
        if self.rx.ready() {
            return false;
        }
        fds.push(self.fd.as_raw_fd());
        true
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if self.rx.ready() {
            return Ok(());
        }
        let fd = self.fd.as_raw_fd();
        let readable = sys::poll_readable(fd, timeout).map_err(|e| {
            sys::with_context(e, format!("poll on AF_PACKET socket on {}", self.ifname))
        })?;
        if readable && !self.rx.ready() {
            // Woken with an empty ring: a pending socket error (say, the
            // interface went away) would wake every poll; report it once.
            if let Ok(err) =
                sys::getsockopt::<libc::c_int>(fd, libc::SOL_SOCKET, libc::SO_ERROR, "SO_ERROR")
            {
                if err != 0 {
                    return Err(sys::with_context(
                        io::Error::from_raw_os_error(err),
                        format!("AF_PACKET socket on {}", self.ifname),
                    ));
                }
            }
        }
        Ok(())
    }

    fn stats(&self) -> DeviceStats {
        self.collect_kernel_stats();
        let rx = self.rx.common();
        let mut extra = vec![
            ("tp_packets", self.tp_packets.get()),
            ("tp_drops", self.tp_drops.get()),
        ];
        if self.ring() == RingVersion::V3 {
            extra.push(("tp_freeze_q_cnt", self.tp_freeze_q_cnt.get()));
        }
        extra.extend([
            ("rx_truncated", rx.truncated),
            ("rx_otherhost", rx.otherhost),
            ("rx_bad_ring", rx.bad_ring),
            ("tx_enobufs", self.tx.enobufs),
            ("tx_errors", self.tx.errors),
            ("tx_eagain", self.tx.eagain),
        ]);
        DeviceStats {
            rx_frames: rx.frames,
            rx_bytes: rx.bytes,
            tx_frames: self.tx.frames,
            tx_bytes: self.tx.bytes,
            rx_dropped: self.tp_drops.get(),
            tx_exhausted: self.tx.exhausted,
            extra,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_configs_are_valid_16_and_4_mib_rings() {
        let v2 = PacketConfig::new(RingVersion::V2);
        v2.validate("x").unwrap();
        v2.validate_mtu("x", 1500).unwrap();
        assert_eq!(v2.block_size * v2.block_count, 16 << 20);
        assert_eq!(v2.block_size / v2.frame_size * v2.block_count, 8192);
        let v3 = PacketConfig::new(RingVersion::V3);
        v3.validate("x").unwrap();
        v3.validate_mtu("x", 1500).unwrap();
        assert_eq!(v3.block_size * v3.block_count, 4 << 20);
        assert_eq!(PacketConfig::default(), PacketConfig::new(RingVersion::V2));
    }

    #[test]
    fn bad_configs_are_refused_with_the_field_named() {
        type Breaker = fn(&mut PacketConfig);
        let cases: [(Breaker, &str); 12] = [
            (|c| c.block_size = 1000, "block_size"),
            (|c| c.block_count = 0, "block_count"),
            (|c| c.frame_size = 2047, "frame_size"),
            (|c| c.frame_size = 16, "frame_size"),
            (|c| c.frame_size = 512 * 1024, "frame_size"),
            (|c| c.tx_frames = 0, "tx_frames"),
            (|c| c.rx_batch = 0, "rx_batch"),
            // TPACKET_V2: a slot must hold its 52-byte header and a header.
            (
                |c| (c.ring, c.frame_size) = (RingVersion::V2, 64),
                "frame_size",
            ),
            // TPACKET_V2: slots may not straddle blocks or leave a gap.
            (
                |c| (c.ring, c.frame_size) = (RingVersion::V2, 1536),
                "multiple of frame_size 1536",
            ),
            (
                |c| (c.ring, c.block_size) = (RingVersion::V2, 4096 + 2048),
                "block_size",
            ),
            (
                |c| (c.ring, c.block_count) = (RingVersion::V2, 1 << 31),
                "block_count",
            ),
            (|c| c.block_count = usize::MAX, "block_count"),
        ];
        for (break_it, field) in cases {
            let mut c = PacketConfig::default();
            break_it(&mut c);
            let err = PacketDevice::open("lo", c).err().unwrap();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            let msg = err.to_string();
            assert!(
                msg.contains("AF_PACKET config for lo") && msg.contains(field),
                "{msg}"
            );
        }
    }

    #[test]
    fn a_missing_interface_is_named() {
        let err = PacketDevice::open("rsnosuch0", PacketConfig::default())
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("no such interface: rsnosuch0"),
            "{err}"
        );
    }

    #[test]
    fn without_privilege_the_error_says_what_is_needed() {
        if sys::is_root() {
            println!("skipped: running as root");
            return;
        }
        let err = PacketDevice::open("lo", PacketConfig::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("need CAP_NET_RAW"), "{err}");
    }

    #[test]
    fn the_device_can_move_to_another_thread() {
        fn is_send<T: Send>() {}
        is_send::<PacketDevice>();
    }

    #[test]
    fn ring_layout_matches_the_kernel_uapi() {
        assert_eq!(BLOCK_STATUS, 8);
        assert_eq!(BLOCK_NUM_PKTS, 12);
        assert_eq!(BLOCK_FIRST_PKT, 16);
        assert_eq!(PKT_HDR_LEN, 48);
        assert_eq!(PKT_SLL, 48);
        assert_eq!(SLL_PKTTYPE, 58);
        assert_eq!(V3_FIRST_PKT, 48);
        assert_eq!(V3_MACOFF, 82);
        assert_eq!(libc::TPACKET2_HDRLEN, 52);
        assert_eq!(
            (V2_STATUS, V2_LEN, V2_SNAPLEN, V2_MAC, V2_SLL, V2_PKTTYPE),
            (0, 4, 8, 12, 32, 42)
        );
        assert_eq!(V2_MACOFF, 66);
    }

    #[test]
    fn the_ring_must_hold_a_whole_frame_of_the_mtu() {
        let v2 = PacketConfig {
            ring: RingVersion::V2,
            frame_size: 1024,
            block_size: 4096,
            ..PacketConfig::default()
        };
        v2.validate("x").unwrap();
        // 66 bytes of slot header + 1500 + 18 do not fit 1024.
        let err = v2.validate_mtu("x", 1500).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("frame_size 1024"), "{err}");
        assert!(err.to_string().contains("MTU 1500"), "{err}");
        v2.validate_mtu("x", 1024 - 66 - 18).unwrap();
        // fit_mtu picks the next power of two and keeps the block a multiple.
        let fitted = v2.clone().fit_mtu(1500);
        assert_eq!((fitted.frame_size, fitted.block_size), (2048, 4096));
        fitted.validate("x").unwrap();
        fitted.validate_mtu("x", 1500).unwrap();
        let jumbo = v2.clone().fit_mtu(9000);
        assert_eq!((jumbo.frame_size, jumbo.block_size), (16384, 16384));
        jumbo.validate("x").unwrap();
        jumbo.validate_mtu("x", 9000).unwrap();
        let odd = PacketConfig {
            block_size: 3 * 4096,
            ..v2
        }
        .fit_mtu(5000);
        assert_eq!((odd.frame_size, odd.block_size), (8192, 16384));
        odd.validate("x").unwrap();
        // The default V2 slot holds a 1500-byte MTU as it is.
        let d = PacketConfig {
            ring: RingVersion::V2,
            ..PacketConfig::default()
        };
        assert_eq!(d.clone().fit_mtu(1500), d);
        d.validate_mtu("x", 1500).unwrap();
        // V3 packs frames in blocks: the block must hold one.
        let v3 = PacketConfig {
            ring: RingVersion::V3,
            block_size: 4096,
            ..PacketConfig::default()
        };
        v3.validate_mtu("x", 1500).unwrap();
        let err = v3.validate_mtu("x", 9000).unwrap_err();
        assert!(err.to_string().contains("block_size 4096"), "{err}");
        assert_eq!(v3.clone().fit_mtu(9000), v3);
    }

    /// A ring in heap memory, and the kernel's side of it.
    struct FakeKernel {
        base: *mut u8,
    }

    fn heap(bytes: usize) -> RingMem {
        RingMem::Heap(
            (0..bytes / 8)
                .map(|_| std::cell::UnsafeCell::new(0))
                .collect(),
        )
    }

    impl FakeKernel {
        fn status(&self, offset: usize) -> &AtomicU32 {
            // SAFETY: the tests pass in-bounds, 4-aligned status offsets of
            // the heap ring, which outlives every FakeKernel use; the ring
            // reads the word atomically too.
            unsafe { &*(self.base.add(offset) as *const AtomicU32) }
        }

        fn write(&self, offset: usize, bytes: &[u8]) {
            // SAFETY: in-bounds offsets of the heap ring (UnsafeCell
            // memory); the ring does not read this area until the status
            // word is set with Release below.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(offset), bytes.len())
            }
        }

        fn read_status(&self, offset: usize) -> u32 {
            self.status(offset).load(Ordering::Acquire)
        }

        /// Fill TPACKET_V2 slot at `slot` with `frame` as the kernel would
        /// (snaplen `snap`, wire length `len`), then hand it over.
        fn put_v2(&self, slot: usize, frame: &[u8], pkttype: u8, len: usize, mac: usize) {
            assert_eq!(
                self.read_status(slot),
                libc::TP_STATUS_KERNEL,
                "slot {slot} busy"
            );
            self.write(slot + V2_LEN, &(len as u32).to_ne_bytes());
            self.write(slot + V2_SNAPLEN, &(frame.len() as u32).to_ne_bytes());
            self.write(slot + V2_MAC, &(mac as u16).to_ne_bytes());
            self.write(slot + V2_PKTTYPE, &[pkttype]);
            self.write(slot + mac, frame);
            self.status(slot).store(
                libc::TP_STATUS_USER | libc::TP_STATUS_LOSING,
                Ordering::Release,
            );
        }
    }

    fn v2_ring(
        block_size: usize,
        block_count: usize,
        frame_size: usize,
    ) -> (FrameRing, FakeKernel) {
        let config = PacketConfig {
            ring: RingVersion::V2,
            block_size,
            block_count,
            frame_size,
            ..PacketConfig::default()
        };
        let ring = FrameRing::new(heap(block_size * block_count), &config);
        let kernel = FakeKernel {
            base: ring.mem.as_ptr(),
        };
        (ring, kernel)
    }

    fn frame(tag: u32, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[..4].copy_from_slice(&tag.to_be_bytes());
        f
    }

    fn tag(f: &[u8]) -> u32 {
        u32::from_be_bytes(f[..4].try_into().unwrap())
    }

    #[test]
    fn v2_walk_hands_each_frame_back_right_after_its_callback() {
        // Two blocks of 4096, four 1024-byte slots each: slot i sits at
        // (i / 4) * 4096 + (i % 4) * 1024.
        let (mut ring, kernel) = v2_ring(4096, 2, 1024);
        assert_eq!(ring.frame_count, 8);
        let slot_at = |i: usize| (i / 4) * 4096 + (i % 4) * 1024;
        let mut tx = PacketTx::new(-1, 1, 64);
        assert!(!ring.ready());
        assert_eq!(
            ring.receive(64, &mut tx, &mut |_, _| panic!("empty ring")),
            0
        );

        // Rounds of five frames wrap the eight slots many times; the kernel
        // only ever writes slots we gave back (put_v2 asserts it).
        let mut next_tag = 0u32;
        let mut seen = Vec::new();
        let mut kernel_slot = 0usize;
        for round in 0..20 {
            for _ in 0..5 {
                let len = 60 + (next_tag as usize * 37) % 900;
                kernel.put_v2(
                    slot_at(kernel_slot),
                    &frame(next_tag, len),
                    libc::PACKET_HOST,
                    len,
                    V2_MACOFF,
                );
                kernel_slot = (kernel_slot + 1) % 8;
                next_tag += 1;
            }
            assert!(ring.ready());
            // A budget of 3 stops mid-ring; the next call resumes.
            let mut got = 0;
            while got < 5 {
                let n = ring.receive(3, &mut tx, &mut |f, _| seen.push((tag(f), f.len())));
                assert!(n <= 3);
                got += n;
            }
            assert!(!ring.ready(), "round {round}");
            // Every slot is the kernel's again.
            for i in 0..8 {
                assert_eq!(kernel.read_status(slot_at(i)), libc::TP_STATUS_KERNEL);
            }
        }
        assert_eq!(seen.len(), 100);
        for (i, (t, len)) in seen.iter().enumerate() {
            assert_eq!(*t, i as u32);
            assert_eq!(*len, 60 + (i * 37) % 900);
        }
        assert_eq!(ring.rx.frames, 100);
        assert_eq!(
            ring.rx.bytes,
            seen.iter().map(|(_, l)| *l as u64).sum::<u64>()
        );
        assert_eq!(
            (ring.rx.bad_ring, ring.rx.truncated, ring.rx.otherhost),
            (0, 0, 0)
        );
    }

    #[test]
    fn v2_slot_stays_ours_during_the_callback() {
        let (mut ring, kernel) = v2_ring(4096, 1, 2048);
        let mut tx = PacketTx::new(-1, 1, 64);
        kernel.put_v2(0, &frame(1, 60), libc::PACKET_HOST, 60, V2_MACOFF);
        kernel.put_v2(2048, &frame(2, 60), libc::PACKET_BROADCAST, 60, V2_MACOFF);
        let mut order = Vec::new();
        ring.receive(64, &mut tx, &mut |f, _| {
            let i = tag(f) as usize - 1;
            // Our slot is still USER; the one before it was handed back.
            assert_ne!(kernel.read_status(i * 2048) & libc::TP_STATUS_USER, 0);
            if i == 1 {
                assert_eq!(kernel.read_status(0), libc::TP_STATUS_KERNEL);
            }
            order.push(i);
        });
        assert_eq!(order, [0, 1]);
        assert_eq!(kernel.read_status(2048), libc::TP_STATUS_KERNEL);
    }

    #[test]
    fn v2_filters_other_hosts_and_survives_corrupt_slots() {
        let (mut ring, kernel) = v2_ring(4096, 2, 2048);
        let mut tx = PacketTx::new(-1, 1, 64);
        let slot = |i: usize| i * 2048;
        kernel.put_v2(
            slot(0),
            &frame(0, 60),
            libc::PACKET_OTHERHOST,
            60,
            V2_MACOFF,
        );
        kernel.put_v2(slot(1), &frame(1, 60), libc::PACKET_OUTGOING, 60, V2_MACOFF);
        // tp_mac + snaplen past the slot end, then tp_mac inside the header.
        kernel.put_v2(slot(2), &[], libc::PACKET_HOST, 60, V2_MACOFF);
        kernel.write(slot(2) + V2_SNAPLEN, &(2048u32).to_ne_bytes());
        kernel.put_v2(slot(3), &frame(3, 60), libc::PACKET_HOST, 60, 40);
        let mut seen = Vec::new();
        assert_eq!(ring.receive(64, &mut tx, &mut |f, _| seen.push(tag(f))), 0);
        assert!(seen.is_empty());
        assert_eq!((ring.rx.otherhost, ring.rx.bad_ring), (1, 2));
        for i in 0..4 {
            assert_eq!(kernel.read_status(slot(i)), libc::TP_STATUS_KERNEL);
        }
        // The walk goes on after them; a truncated frame (snaplen < len)
        // is delivered and counted; multicast comes up.
        kernel.put_v2(slot(0), &frame(4, 100), libc::PACKET_HOST, 3000, V2_MACOFF);
        kernel.put_v2(
            slot(1),
            &frame(5, 60),
            libc::PACKET_MULTICAST,
            60,
            V2_MACOFF,
        );
        assert_eq!(ring.receive(64, &mut tx, &mut |f, _| seen.push(tag(f))), 2);
        assert_eq!(seen, [4, 5]);
        assert_eq!(ring.rx.truncated, 1);

        // Promiscuous: OTHERHOST frames come up, OUTGOING still do not.
        let (mut ring, kernel) = v2_ring(4096, 1, 2048);
        ring.rx.promiscuous = true;
        kernel.put_v2(0, &frame(6, 60), libc::PACKET_OTHERHOST, 60, V2_MACOFF);
        kernel.put_v2(2048, &frame(7, 60), libc::PACKET_OUTGOING, 60, V2_MACOFF);
        seen.clear();
        assert_eq!(ring.receive(64, &mut tx, &mut |f, _| seen.push(tag(f))), 1);
        assert_eq!((seen.as_slice(), ring.rx.otherhost), ([6].as_slice(), 0));
    }

    #[test]
    fn v3_walk_reads_packed_frames_and_hands_the_block_back() {
        let config = PacketConfig {
            ring: RingVersion::V3,
            block_size: 4096,
            block_count: 2,
            ..PacketConfig::default()
        };
        let mut ring = BlockRing::new(heap(8192), &config);
        let kernel = FakeKernel {
            base: ring.mem.as_ptr(),
        };
        let mut tx = PacketTx::new(-1, 1, 64);
        // Fill block `b` with frames of these lengths, packed at 8 bytes.
        let fill = |b: usize, lens: &[usize], first: u32| {
            let base = b * 4096;
            let mut off = V3_FIRST_PKT;
            for (i, &len) in lens.iter().enumerate() {
                let next = (V3_MACOFF + len).next_multiple_of(V3_ALIGNMENT);
                let next = if i + 1 == lens.len() { 0 } else { next };
                let h = |f: usize| base + off + f;
                kernel.write(
                    h(offset_of!(libc::tpacket3_hdr, tp_next_offset)),
                    &(next as u32).to_ne_bytes(),
                );
                kernel.write(
                    h(offset_of!(libc::tpacket3_hdr, tp_snaplen)),
                    &(len as u32).to_ne_bytes(),
                );
                kernel.write(
                    h(offset_of!(libc::tpacket3_hdr, tp_len)),
                    &(len as u32).to_ne_bytes(),
                );
                kernel.write(
                    h(offset_of!(libc::tpacket3_hdr, tp_mac)),
                    &(V3_MACOFF as u16).to_ne_bytes(),
                );
                kernel.write(h(SLL_PKTTYPE), &[libc::PACKET_HOST]);
                kernel.write(h(V3_MACOFF), &frame(first + i as u32, len));
                off += next;
            }
            kernel.write(base + BLOCK_NUM_PKTS, &(lens.len() as u32).to_ne_bytes());
            kernel.write(base + BLOCK_FIRST_PKT, &(V3_FIRST_PKT as u32).to_ne_bytes());
            kernel
                .status(base + BLOCK_STATUS)
                .store(libc::TP_STATUS_USER, Ordering::Release);
        };
        fill(0, &[60, 61, 1514], 0);
        fill(1, &[99], 3);
        let mut seen = Vec::new();
        // Budget 2 stops mid-block: the block stays ours.
        assert_eq!(
            ring.receive(2, &mut tx, &mut |f, _| seen.push((tag(f), f.len()))),
            2
        );
        assert_ne!(kernel.read_status(BLOCK_STATUS), libc::TP_STATUS_KERNEL);
        assert!(ring.ready());
        assert_eq!(
            ring.receive(64, &mut tx, &mut |f, _| seen.push((tag(f), f.len()))),
            2
        );
        assert_eq!(seen, [(0, 60), (1, 61), (2, 1514), (3, 99)]);
        assert_eq!(kernel.read_status(BLOCK_STATUS), libc::TP_STATUS_KERNEL);
        assert_eq!(
            kernel.read_status(4096 + BLOCK_STATUS),
            libc::TP_STATUS_KERNEL
        );
        assert!(!ring.ready());
        assert_eq!((ring.rx.frames, ring.rx.bad_ring), (4, 0));
        // The walk wraps to block 0.
        fill(0, &[70], 4);
        assert_eq!(
            ring.receive(64, &mut tx, &mut |f, _| seen.push((tag(f), f.len()))),
            1
        );
        assert_eq!(seen.last(), Some(&(4, 70)));
    }
}
