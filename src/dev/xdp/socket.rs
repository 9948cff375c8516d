//! One AF_XDP socket bound to one queue, with its own UMEM and four rings.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::ring::{ConsIdx, ConsRing, MappedRing, ProdIdx, ProdRing};
use super::sys::{self, context};
use super::umem::{FramePool, FrameState, UmemArea, UmemView};
use crate::dev::{Transmit, TxError};

/// Headroom the kernel keeps in front of every received frame
/// (`XDP_PACKET_HEADROOM`); our own UMEM headroom is 0.
pub(crate) const XDP_PACKET_HEADROOM: u32 = 256;

/// How to ask for zero-copy at bind time.
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
pub(crate) enum BindMode {
    Copy,
    ZeroCopy,
    /// Zero-copy, falling back to copy on EOPNOTSUPP.
    TryZeroCopy,
}

/// What one queue needs to know.
#[derive(Debug, Clone)]
pub(crate) struct QueueParams {
    pub ifindex: u32,
    pub ifname: String,
    pub queue_id: u32,
    pub frame_size: u32,
    pub frame_count: u32,
    /// Entries in each of the four rings (a power of two).
    pub ring_size: u32,
    /// Frames kept in the fill ring.
    pub fill_target: u32,
    /// Longest frame `transmit` accepts.
    pub max_tx_len: usize,
    pub bind: BindMode,
    pub busy_poll: bool,
    pub rx_batch: u32,
}

/// The TX half: everything a [`Transmit`] needs, borrowed apart from the RX
/// ring so a reply can be written while the request is still lent out.
pub(crate) struct TxSide {
    tx: ProdRing<libc::xdp_desc>,
    comp: ConsRing<u64>,
    pub(crate) pool: FramePool,
    umem: UmemView,
    max_len: usize,
    pub(crate) tx_frames: u64,
    pub(crate) tx_bytes: u64,
    pub(crate) tx_exhausted: u64,
}

impl TxSide {
    /// Take every completion the kernel has posted; frames go back to the
    /// free stack.
    pub(crate) fn reap(&mut self) -> u32 {
        let (start, n) = self.comp.peek(u32::MAX);
        for i in 0..n {
            let addr = self.comp.map.read(start.wrapping_add(i));
            let ok = self.pool.tx_completed(addr);
            debug_assert!(ok, "completion for frame {addr:#x} that was not in flight");
        }
        self.comp.release();
        n
    }
}

impl Transmit for TxSide {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError> {
        if len > self.max_len {
            return Err(TxError::TooLong);
        }
        let tx_map = &self.tx.map;
        if self.tx.idx.free(1, || tx_map.load_consumer()) == 0 {
            self.tx_exhausted += 1;
            return Err(TxError::Exhausted);
        }
        if self.pool.free_count() == 0 {
            self.reap();
        }
        let Some(frame) = self.pool.alloc(FrameState::Tx) else {
            self.tx_exhausted += 1;
            return Err(TxError::Exhausted);
        };
        let addr = self.pool.addr_of(frame);
        // SAFETY: `frame` just moved Free -> Tx in the pool, so it is in no
        // ring and lent to nobody; we hold it alone until its descriptor is
        // published (and then until its completion comes back).
        let buf = unsafe { self.umem.tx_slice_mut(addr, len) };
        let buf = buf.expect("len <= max_len <= frame size");
        fill(buf);
        let tx_map = &self.tx.map;
        let (idx, n) = self.tx.idx.reserve(1, || tx_map.load_consumer());
        debug_assert_eq!(n, 1, "slot checked free above");
        self.tx.map.write(
            idx,
            libc::xdp_desc {
                addr,
                len: len as u32,
                options: 0,
            },
        );
        self.tx_frames += 1;
        self.tx_bytes += len as u64;
        Ok(())
    }
}

/// Frame accounting of one or more queues; see
/// [`XdpDevice::umem_accounting`](super::XdpDevice::umem_accounting).
#[derive(Debug, Copy, Clone, Default, PartialEq, Eq)]
pub struct UmemAccounting {
    /// On our free stack.
    pub free: u32,
    /// Given to the kernel through the fill ring, not yet received.
    pub in_fill: u32,
    /// Received into the RX ring but not consumed, or lent to the stack.
    pub in_rx: u32,
    /// On the TX ring, not yet taken by the kernel.
    pub in_tx: u32,
    /// Taken by the kernel for sending, completion not yet reaped.
    pub in_completion_or_flight: u32,
    pub total: u32,
}

impl UmemAccounting {
    pub fn sum(&self) -> u32 {
        self.free + self.in_fill + self.in_rx + self.in_tx + self.in_completion_or_flight
    }

    fn add(&mut self, o: &UmemAccounting) {
        self.free += o.free;
        self.in_fill += o.in_fill;
        self.in_rx += o.in_rx;
        self.in_tx += o.in_tx;
        self.in_completion_or_flight += o.in_completion_or_flight;
        self.total += o.total;
    }
}

pub(crate) struct XskQueue {
    // Field order is drop order: rings are unmapped, then the socket is
    // closed, then the UMEM is unmapped.
    rx: ConsRing<libc::xdp_desc>,
    fill: ProdRing<u64>,
    pub(crate) txs: TxSide,
    fd: OwnedFd,
    umem: UmemArea,
    pub(crate) queue_id: u32,
    pub(crate) zero_copy: bool,
    fill_target: u32,
    refill_batch: u32,
    busy_poll: bool,
    tx_kick_limit: u32,
    pub(crate) rx_frames: u64,
    pub(crate) rx_bytes: u64,
    pub(crate) bad_rx_descs: u64,
    pub(crate) tx_kicks: u64,
    pub(crate) rx_kicks: u64,
    pub(crate) kick_errors: u64,
}

fn umem_reg_error(e: io::Error, p: &QueueParams) -> io::Error {
    match e.raw_os_error() {
        Some(libc::ENOBUFS) | Some(libc::ENOMEM) | Some(libc::EPERM) => io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!(
                "XDP_UMEM_REG of {} frames x {} bytes: {e}; the UMEM counts against \
                 RLIMIT_MEMLOCK: raise it (`ulimit -l unlimited`, setrlimit, or run as root / \
                 with CAP_IPC_LOCK)",
                p.frame_count, p.frame_size
            ),
        ),
        _ => context(
            e,
            &format!(
                "XDP_UMEM_REG ({} frames x {} bytes)",
                p.frame_count, p.frame_size
            ),
        ),
    }
}

/// How long `bind` keeps retrying EBUSY: the kernel releases a closed
/// socket's hold on its queue from a workqueue, a moment after `close`, so a
/// device reopened right after the previous one was dropped (or a restarted
/// process) can see the queue still taken.
/// Under load (parallel namespace tests on two cores) that took over a
/// second here, so the patience is generous.
const BIND_BUSY_RETRY: std::time::Duration = std::time::Duration::from_millis(5000);

fn bind(fd: &OwnedFd, p: &QueueParams, flags: u16) -> io::Result<()> {
    let start = std::time::Instant::now();
    loop {
        match bind_once(fd, p, flags) {
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < BIND_BUSY_RETRY =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

fn bind_once(fd: &OwnedFd, p: &QueueParams, flags: u16) -> io::Result<()> {
    let sa = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: flags | libc::XDP_USE_NEED_WAKEUP,
        sxdp_ifindex: p.ifindex,
        sxdp_queue_id: p.queue_id,
        sxdp_shared_umem_fd: 0,
    };
    // SAFETY: `sa` is a valid sockaddr_xdp and we pass its exact size.
    sys::cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sa as *const libc::sockaddr_xdp as *const libc::sockaddr,
            size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
        )
    })
    .map(drop)
}

fn bind_error(e: io::Error, p: &QueueParams, zc: bool) -> io::Error {
    let what = format!(
        "binding the AF_XDP socket to {} queue {} ({})",
        p.ifname,
        p.queue_id,
        if zc { "zero-copy" } else { "copy mode" }
    );
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) if zc => io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{what}: {e}: the driver has no AF_XDP zero-copy support (veth never has)"),
        ),
        Some(libc::EBUSY) => io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "{what}: {e}: another AF_XDP socket is bound to this queue (still, after \
                 retrying for {BIND_BUSY_RETRY:?})"
            ),
        ),
        Some(libc::EINVAL) => io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what}: {e} (queue index out of range, or the interface is down?)"),
        ),
        Some(libc::EPERM) => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{what}: {e} (AF_XDP needs CAP_NET_RAW + CAP_NET_ADMIN, or root)"),
        ),
        _ => context(e, &what),
    }
}

impl XskQueue {
    pub(crate) fn open(p: &QueueParams) -> io::Result<XskQueue> {
        let fd = sys::socket(libc::AF_XDP, libc::SOCK_RAW).map_err(|e| match e.raw_os_error() {
            Some(libc::EAFNOSUPPORT) => io::Error::new(
                io::ErrorKind::Unsupported,
                format!("socket(AF_XDP): {e}: this kernel has no AF_XDP (CONFIG_XDP_SOCKETS)"),
            ),
            Some(libc::EPERM) | Some(libc::EACCES) => io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "socket(AF_XDP): {e}: needs CAP_NET_RAW for the socket and \
                     CAP_NET_ADMIN + CAP_BPF for the XDP program, or root"
                ),
            ),
            _ => context(e, "socket(AF_XDP)"),
        })?;

        let umem = UmemArea::new(p.frame_size, p.frame_count)?;
        // SAFETY: xdp_umem_reg is plain-old-data; all-zero is valid (headroom
        // 0, no flags, no TX metadata).
        let mut reg: libc::xdp_umem_reg = unsafe { std::mem::zeroed() };
        reg.addr = umem.addr();
        reg.len = umem.len() as u64;
        reg.chunk_size = p.frame_size;
        reg.headroom = 0;
        sys::setsockopt(&fd, libc::SOL_XDP, libc::XDP_UMEM_REG, &reg)
            .map_err(|e| umem_reg_error(e, p))?;

        for (opt, name) in [
            (libc::XDP_UMEM_FILL_RING, "fill"),
            (libc::XDP_UMEM_COMPLETION_RING, "completion"),
            (libc::XDP_RX_RING, "RX"),
            (libc::XDP_TX_RING, "TX"),
        ] {
            let n: u32 = p.ring_size;
            sys::setsockopt(&fd, libc::SOL_XDP, opt, &n)
                .map_err(|e| context(e, &format!("sizing the AF_XDP {name} ring to {n}")))?;
        }

        let (off, len) =
            sys::getsockopt::<libc::xdp_mmap_offsets>(&fd, libc::SOL_XDP, libc::XDP_MMAP_OFFSETS)
                .map_err(|e| context(e, "XDP_MMAP_OFFSETS"))?;
        if len != size_of::<libc::xdp_mmap_offsets>() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "kernel too old: XDP_MMAP_OFFSETS without ring flags (need_wakeup needs 5.4+)",
            ));
        }

        let raw = fd.as_raw_fd();
        let n = p.ring_size;
        let rx = ConsRing {
            idx: ConsIdx::new(n),
            map: MappedRing::map(raw, libc::XDP_PGOFF_RX_RING as u64, &off.rx, n, "RX")?,
        };
        let tx = ProdRing {
            idx: ProdIdx::new(n),
            map: MappedRing::map(raw, libc::XDP_PGOFF_TX_RING as u64, &off.tx, n, "TX")?,
        };
        let fill = ProdRing {
            idx: ProdIdx::new(n),
            map: MappedRing::map(raw, libc::XDP_UMEM_PGOFF_FILL_RING, &off.fr, n, "fill")?,
        };
        let comp = ConsRing {
            idx: ConsIdx::new(n),
            map: MappedRing::map(
                raw,
                libc::XDP_UMEM_PGOFF_COMPLETION_RING,
                &off.cr,
                n,
                "completion",
            )?,
        };

        if p.busy_poll {
            Self::set_busy_poll(&fd, p.rx_batch)?;
        }

        let mut q = XskQueue {
            rx,
            fill,
            txs: TxSide {
                tx,
                comp,
                pool: FramePool::new(p.frame_count, p.frame_size),
                umem: umem.view(),
                max_len: p.max_tx_len.min(p.frame_size as usize),
                tx_frames: 0,
                tx_bytes: 0,
                tx_exhausted: 0,
            },
            fd,
            umem,
            queue_id: p.queue_id,
            zero_copy: false,
            fill_target: p.fill_target,
            refill_batch: (p.fill_target / 8).clamp(1, 64),
            busy_poll: p.busy_poll,
            tx_kick_limit: p.ring_size / 32 + 4,
            rx_frames: 0,
            rx_bytes: 0,
            bad_rx_descs: 0,
            tx_kicks: 0,
            rx_kicks: 0,
            kick_errors: 0,
        };
        // Stock the fill ring before traffic can arrive.
        q.refill(true);

        match p.bind {
            BindMode::Copy => {
                bind(&q.fd, p, libc::XDP_COPY).map_err(|e| bind_error(e, p, false))?
            }
            BindMode::ZeroCopy => {
                bind(&q.fd, p, libc::XDP_ZEROCOPY).map_err(|e| bind_error(e, p, true))?
            }
            BindMode::TryZeroCopy => match bind(&q.fd, p, libc::XDP_ZEROCOPY) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                    tracing::debug!(
                        ifname = %p.ifname,
                        queue = p.queue_id,
                        "no AF_XDP zero-copy here; using copy mode"
                    );
                    bind(&q.fd, p, libc::XDP_COPY).map_err(|e| bind_error(e, p, false))?
                }
                Err(e) => return Err(bind_error(e, p, true)),
            },
        }
        let (opts, _) =
            sys::getsockopt::<libc::xdp_options>(&q.fd, libc::SOL_XDP, libc::XDP_OPTIONS)
                .map_err(|e| context(e, "XDP_OPTIONS"))?;
        q.zero_copy = opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0;
        Ok(q)
    }

    fn set_busy_poll(fd: &OwnedFd, batch: u32) -> io::Result<()> {
        #[cfg(any(
            target_arch = "x86_64",
            target_arch = "aarch64",
            target_arch = "riscv64"
        ))]
        {
            use sys::busy::*;
            let one: libc::c_int = 1;
            let usecs: libc::c_int = 20;
            let budget: libc::c_int = batch as libc::c_int;
            for (opt, v, name) in [
                (SO_PREFER_BUSY_POLL, &one, "SO_PREFER_BUSY_POLL"),
                (SO_BUSY_POLL, &usecs, "SO_BUSY_POLL"),
                (SO_BUSY_POLL_BUDGET, &budget, "SO_BUSY_POLL_BUDGET"),
            ] {
                sys::setsockopt(fd, libc::SOL_SOCKET, opt, v)
                    .map_err(|e| context(e, &format!("{name} (busy_poll)")))?;
            }
            Ok(())
        }
        #[cfg(not(any(
            target_arch = "x86_64",
            target_arch = "aarch64",
            target_arch = "riscv64"
        )))]
        {
            let _ = (fd, batch);
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "busy_poll: socket option numbers unknown on this architecture",
            ))
        }
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Top the fill ring up to `fill_target` from the free stack, in batches
    /// (or whatever is missing when `force`).
    fn refill(&mut self, force: bool) {
        let pool = &mut self.txs.pool;
        let deficit = self.fill_target.saturating_sub(pool.in_fill());
        if deficit == 0 || (!force && deficit < self.refill_batch) {
            return;
        }
        let want = deficit.min(pool.free_count());
        let fill_map = &self.fill.map;
        let (start, n) = self.fill.idx.reserve(want, || fill_map.load_consumer());
        for i in 0..n {
            let frame = pool.alloc(FrameState::Fill).expect("want <= free_count");
            fill_map.write(start.wrapping_add(i), pool.addr_of(frame));
        }
        self.fill.submit();
    }

    /// Hand up to `budget` received frames to `on_frame`.
    pub(crate) fn receive(
        &mut self,
        budget: usize,
        on_frame: &mut dyn FnMut(&[u8], &mut dyn Transmit),
    ) -> io::Result<usize> {
        let want = budget.min(u32::MAX as usize) as u32;
        let (start, n) = self.rx.peek(want);
        let view = self.umem.view();
        for i in 0..n {
            let d = self.rx.map.read(start.wrapping_add(i));
            let Some(frame) = self.txs.pool.rx_arrived(d.addr) else {
                self.bad_rx_descs += 1;
                debug_assert!(
                    false,
                    "RX descriptor {:#x} for a frame not in the fill ring",
                    d.addr
                );
                continue;
            };
            // SAFETY: `frame` just moved Fill -> Rx: the kernel filled it and
            // published it before the producer index we Acquire-loaded in
            // `peek`, and can't reuse it until it is in the fill ring again.
            // TX never takes a frame that isn't Free, so no `&mut` to it can
            // exist while this slice lives (only for the callback).
            match unsafe { view.rx_slice(d.addr, d.len as usize) } {
                Some(bytes) => {
                    on_frame(bytes, &mut self.txs);
                    self.rx_frames += 1;
                    self.rx_bytes += d.len as u64;
                }
                None => self.bad_rx_descs += 1,
            }
            let ok = self.txs.pool.rx_done(frame);
            debug_assert!(ok);
        }
        self.rx.release();
        self.refill(false);
        if n == 0 && (self.busy_poll || self.fill.map.needs_wakeup()) {
            self.rx_kicks += 1;
            if let Err(e) = sys::kick_rx(&self.fd) {
                match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENETDOWN) => {
                        self.kick_errors += 1
                    }
                    _ => return Err(context(e, "AF_XDP RX kick (recvfrom)")),
                }
            }
        }
        Ok(n as usize)
    }

    /// Publish queued TX descriptors, kick the kernel if it asks for it,
    /// and reap completions.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.txs.tx.submit();
        let mut kicks = 0;
        while self.txs.tx.outstanding() > 0 && self.txs.tx.map.needs_wakeup() {
            kicks += 1;
            self.tx_kicks += 1;
            let r = sys::kick_tx(&self.fd);
            // Copy mode sends at most a small batch per call and says EAGAIN
            // when more is left, or when the completion ring is full: reap and
            // go again, boundedly.
            self.txs.reap();
            match r {
                Ok(()) => {}
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EBUSY) => {}
                    Some(libc::ENOBUFS) | Some(libc::ENETDOWN) => {
                        self.kick_errors += 1;
                        break;
                    }
                    _ => return Err(context(e, "AF_XDP TX kick (sendto)")),
                },
            }
            if kicks >= self.tx_kick_limit {
                break;
            }
        }
        self.txs.reap();
        // Completions may have freed frames the fill ring is short of.
        self.refill(false);
        Ok(())
    }

    pub(crate) fn xdp_statistics(&self) -> io::Result<libc::xdp_statistics> {
        let (s, _) =
            sys::getsockopt::<libc::xdp_statistics>(&self.fd, libc::SOL_XDP, libc::XDP_STATISTICS)?;
        Ok(s)
    }

    pub(crate) fn accounting(&self) -> UmemAccounting {
        let pool = &self.txs.pool;
        let rx_ring = self.rx.pending().min(pool.in_fill());
        let tx_ring = self
            .txs
            .tx
            .idx
            .next()
            .wrapping_sub(self.txs.tx.map.load_consumer())
            .min(pool.in_tx());
        UmemAccounting {
            free: pool.free_count(),
            in_fill: pool.in_fill() - rx_ring,
            in_rx: rx_ring + pool.in_rx(),
            in_tx: tx_ring,
            in_completion_or_flight: pool.in_tx() - tx_ring,
            total: pool.total(),
        }
    }

    pub(crate) fn add_accounting(&self, acc: &mut UmemAccounting) {
        acc.add(&self.accounting());
    }
}
