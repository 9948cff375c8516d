//! AF_PACKET driver: a raw socket bound to one interface, a TPACKET_V3 RX
//! ring shared with the kernel, and a pool of TX buffers sent with one
//! `sendmmsg(2)` per flush.
//!
//! RX: the kernel fills blocks of the ring with frames and hands a block over
//! (status `TP_STATUS_USER`) when it is full or when the retire timeout
//! (default 1 ms, rounded up to a jiffy by the kernel) expires. `receive`
//! walks handed-over blocks in order, lends each frame to the stack, and
//! gives a block back once every frame in it was seen. A block is never held
//! across calls longer than needed: a budget that ends mid-block resumes at
//! the next frame on the next call.
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

/// Tunables of a [`PacketDevice`]. The defaults give a 4 MiB RX ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketConfig {
    /// Bytes per RX ring block: a multiple of the page size. Frames longer
    /// than a block (minus its 48-byte header) arrive truncated.
    pub block_size: usize,
    /// Blocks in the RX ring. When all are waiting for the stack the kernel
    /// drops frames (`rx_dropped`, `tp_freeze_q_cnt`).
    pub block_count: usize,
    /// Nominal frame slot: a multiple of 16 that divides `block_size`. With
    /// TPACKET_V3 frames are packed by their real length; this only has to
    /// satisfy the kernel's bookkeeping.
    pub frame_size: usize,
    /// Milliseconds before the kernel hands over a block that is not full:
    /// the worst-case added RX latency at low rates (at least one jiffy).
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
        PacketConfig {
            block_size: 256 * 1024,
            block_count: 16,
            frame_size: 2048,
            retire_timeout_ms: 1,
            tx_frames: 256,
            promiscuous: false,
            qdisc_bypass: true,
            rx_batch: 64,
        }
    }
}

impl PacketConfig {
    fn validate(&self, ifname: &str) -> io::Result<()> {
        let bad = |what: String| {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("AF_PACKET config for {ifname}: {what}"),
            ))
        };
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
        let min_frame = libc::TPACKET3_HDRLEN + 14;
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
}

/// An AF_PACKET socket on one interface, with a TPACKET_V3 RX ring.
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
        let raw = fd.as_raw_fd();
        let on: libc::c_int = 1;

        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        sys::setsockopt(
            raw,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &version,
            &format!("PACKET_VERSION=TPACKET_V3 on {ifname}"),
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

        let req = libc::tpacket_req3 {
            tp_block_size: config.block_size as u32,
            tp_block_nr: config.block_count as u32,
            tp_frame_size: config.frame_size as u32,
            tp_frame_nr: ((config.block_size / config.frame_size) * config.block_count) as u32,
            tp_retire_blk_tov: config.retire_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        sys::setsockopt(
            raw,
            libc::SOL_PACKET,
            libc::PACKET_RX_RING,
            &req,
            &format!(
                "PACKET_RX_RING ({} blocks of {} bytes) on {ifname}",
                config.block_count, config.block_size
            ),
        )?;
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

        Ok(PacketDevice {
            rx: RxRing {
                map,
                block_size: config.block_size,
                block_count: config.block_count,
                block: 0,
                in_block: false,
                pkts_left: 0,
                offset: 0,
                promiscuous: config.promiscuous,
                frames: 0,
                bytes: 0,
                truncated: 0,
                otherhost: 0,
                bad_ring: 0,
            },
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

    /// Add the kernel's PACKET_STATISTICS since the last read (it resets on
    /// read) to our running totals.
    fn collect_kernel_stats(&self) {
        if let Ok(s) = sys::getsockopt::<libc::tpacket_stats_v3>(
            self.fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            "PACKET_STATISTICS",
        ) {
            let add = |cell: &Cell<u64>, v: libc::c_uint| cell.set(cell.get() + u64::from(v));
            add(&self.tp_packets, s.tp_packets);
            add(&self.tp_drops, s.tp_drops);
            add(&self.tp_freeze_q_cnt, s.tp_freeze_q_cnt);
        }
    }
}

impl AsRawFd for PacketDevice {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

// Offsets into the ring, from the kernel's UAPI structs.
const BLOCK_STATUS: usize =
    offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, block_status);
const BLOCK_NUM_PKTS: usize =
    offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, num_pkts);
const BLOCK_FIRST_PKT: usize = offset_of!(libc::tpacket_block_desc, hdr)
    + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt);
/// Alignment of packets inside a TPACKET_V3 block (af_packet.c V3_ALIGNMENT).
const V3_ALIGNMENT: usize = 8;
const PKT_HDR_LEN: usize = size_of::<libc::tpacket3_hdr>();
/// The kernel puts a sockaddr_ll right after the aligned tpacket3_hdr.
const PKT_SLL: usize = (PKT_HDR_LEN + libc::TPACKET_ALIGNMENT - 1) & !(libc::TPACKET_ALIGNMENT - 1);
const SLL_PKTTYPE: usize = PKT_SLL + offset_of!(libc::sockaddr_ll, sll_pkttype);

/// What the RX ring walk is doing, between calls.
struct RxRing {
    map: Mmap,
    block_size: usize,
    block_count: usize,
    /// The block we are reading or will read next.
    block: usize,
    /// Whether `block` is ours and `pkts_left`/`offset` describe it.
    in_block: bool,
    pkts_left: u32,
    /// Offset in the block of the next frame's tpacket3_hdr.
    offset: usize,
    promiscuous: bool,
    frames: u64,
    bytes: u64,
    truncated: u64,
    otherhost: u64,
    bad_ring: u64,
}

impl RxRing {
    fn block_ptr(&self) -> *mut u8 {
        // SAFETY: `block < block_count`, so the offset stays inside the
        // mapping of `block_size * block_count` bytes.
        unsafe { self.map.as_ptr().add(self.block * self.block_size) }
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
                self.bad_ring += 1;
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
                self.bad_ring += 1;
                self.release_block();
                continue;
            }
            self.pkts_left -= 1;
            self.offset = off.wrapping_add(next);
            if self.pkts_left > 0 && next == 0 {
                self.bad_ring += 1;
                self.release_block();
                continue;
            }
            if pkttype == libc::PACKET_OUTGOING
                || (pkttype == libc::PACKET_OTHERHOST && !self.promiscuous)
            {
                self.otherhost += u64::from(pkttype == libc::PACKET_OTHERHOST);
            } else {
                if snaplen < len {
                    self.truncated += 1;
                }
                // SAFETY: `start + snaplen <= block_size` was checked above;
                // the block is ours until `release_block`, which is not
                // called while this borrow (limited to the callback) lives.
                let frame =
                    unsafe { std::slice::from_raw_parts(self.block_ptr().add(start), snaplen) };
                self.frames += 1;
                self.bytes += snaplen as u64;
                on_frame(frame, tx);
                handed += 1;
            }
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
            kind: "packet".to_string(),
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
        DeviceStats {
            rx_frames: self.rx.frames,
            rx_bytes: self.rx.bytes,
            tx_frames: self.tx.frames,
            tx_bytes: self.tx.bytes,
            rx_dropped: self.tp_drops.get(),
            tx_exhausted: self.tx.exhausted,
            extra: vec![
                ("tp_packets", self.tp_packets.get()),
                ("tp_drops", self.tp_drops.get()),
                ("tp_freeze_q_cnt", self.tp_freeze_q_cnt.get()),
                ("rx_truncated", self.rx.truncated),
                ("rx_otherhost", self.rx.otherhost),
                ("rx_bad_ring", self.rx.bad_ring),
                ("tx_enobufs", self.tx.enobufs),
                ("tx_errors", self.tx.errors),
                ("tx_eagain", self.tx.eagain),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_a_valid_4_mib_ring() {
        let c = PacketConfig::default();
        c.validate("x").unwrap();
        assert_eq!(c.block_size * c.block_count, 4 << 20);
    }

    #[test]
    fn bad_configs_are_refused_with_the_field_named() {
        type Breaker = fn(&mut PacketConfig);
        let cases: [(Breaker, &str); 6] = [
            (|c| c.block_size = 1000, "block_size"),
            (|c| c.block_count = 0, "block_count"),
            (|c| c.frame_size = 2047, "frame_size"),
            (|c| c.frame_size = 16, "frame_size"),
            (|c| c.tx_frames = 0, "tx_frames"),
            (|c| c.rx_batch = 0, "rx_batch"),
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
    }
}
