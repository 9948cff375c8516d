//! [`Tcp`]: the listeners and connections of one stack, the API the
//! application uses, and the datapath the IPv4 layer calls.
//!
//! Lookups are O(1) (`HashMap` by 4-tuple and by listening address, keyed
//! SipHash so remote peers cannot aim at one bucket; the last 4-tuple hit
//! is remembered, so a flow's back-to-back segments skip the hash); timers
//! live in one heap with lazy invalidation; connections with something to
//! send sit in a ready queue. `poll` touches only due timers and ready
//! connections, so idle connections cost nothing.

use core::hash::Hasher;
use core::net::{Ipv4Addr, SocketAddrV4};
use std::collections::{HashMap, VecDeque};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use siphasher::sip::SipHasher24;

use super::config::TcpConfig;
use super::isn::IsnGenerator;
use super::seq::SeqNumber;
use super::stats::TcpStats;
use super::tcb::{wscale_for, CookieParams, Emit, SegmentOut, Tcb};
use super::timer::TimerHeap;
use super::types::{
    ConnHandle, ConnStats, IcmpErrorKind, ListenHandle, Readiness, State, TcpError,
};
use super::wire::{PayloadCheck, Repr};
use crate::time::Instant;

/// RFC 4987 §3.6: "a coarse time counter" — one tick per 64 s, and a cookie
/// is good for the tick it was made in and the one after.
const COOKIE_TICK_SECS: i64 = 64;

/// MSS values a cookie can encode in its 3 bits (Linux's table, plus the
/// common jumbo size). The peer's MSS is rounded down to one of these.
const COOKIE_MSS: [u16; 8] = [536, 1200, 1360, 1400, 1440, 1452, 1460, 8960];

/// Marks a TSval that carries cookie options (low 6 bits: WS 4 bits, SACK 1,
/// this marker 1), Linux's `TSBITS` idea.
const TS_COOKIE_MARK: u32 = 0x20;

#[derive(Debug)]
struct Slot {
    gen: u32,
    tcb: Option<Box<Tcb>>,
}

/// One `by_tuple` entry remembered by [`Tcp::lookup`].
#[derive(Debug, Clone, Copy)]
struct LastHit {
    local: SocketAddrV4,
    remote: SocketAddrV4,
    slot: u32,
    gen: u32,
}

#[derive(Debug)]
struct Listener {
    local: SocketAddrV4,
    backlog: usize,
    queue: VecDeque<ConnHandle>,
    half_open: usize,
    last_cookie: Option<Instant>,
    /// TOS byte (DSCP << 2) of SYN-ACKs and of the connections accepted here.
    tos: u8,
}

#[derive(Debug)]
struct LSlot {
    gen: u32,
    l: Option<Listener>,
}

/// The TCP table of one stack.
#[derive(Debug)]
pub struct Tcp {
    config: TcpConfig,
    isn: IsnGenerator,
    cookie_key: [u8; 16],
    ts_key: [u8; 16],
    port_key: [u8; 16],
    conns: Vec<Slot>,
    free: Vec<u32>,
    nconns: usize,
    by_tuple: HashMap<(SocketAddrV4, SocketAddrV4), u32>,
    /// The connection the last lookup by 4-tuple found, so a flow's
    /// segments in a row skip hashing (SipHash costs about 150
    /// instructions a lookup). Holds a copy of one `by_tuple` entry and the
    /// slot's generation: cleared whenever `by_tuple` changes, and checked
    /// against the slot's generation on use.
    last_hit: Option<LastHit>,
    listeners: Vec<LSlot>,
    by_local: HashMap<SocketAddrV4, u32>,
    timers: TimerHeap,
    ready: VecDeque<(u32, u32)>,
    due: Vec<(Instant, u32, u32)>,
    tw_fifo: VecDeque<(u32, u32)>,
    tw_count: usize,
    next_ephemeral: u32,
    last_now: Instant,
    stats: TcpStats,
    /// Peers awaiting MUST-20 negative advice to IP.
    advice: Vec<Ipv4Addr>,
    /// The ESTABLISHED connection whose `after_event` waits for the next
    /// `poll` or for a segment of another connection (slot, generation).
    deferred: Option<(u32, u32)>,
}

/// Peers remembered for negative advice between two stack polls.
const MAX_ADVICE: usize = 64;

fn slot_mut(conns: &mut [Slot], slot: u32, gen: u32) -> Option<&mut Tcb> {
    match conns.get_mut(slot as usize) {
        Some(Slot {
            gen: g,
            tcb: Some(t),
        }) if *g == gen => Some(t),
        _ => None,
    }
}

/// Whether the app may queue data: no error, not shut down for writing,
/// and a state in which SEND is allowed (queued before the handshake ends).
fn can_send(t: &Tcb) -> Result<(), TcpError> {
    if let Some(e) = t.error {
        return Err(e);
    }
    let open = matches!(
        t.state,
        State::SynSent | State::SynReceived | State::Established | State::CloseWait
    );
    if !open || t.fin_queued() {
        return Err(TcpError::InvalidState);
    }
    Ok(())
}

fn bad_addr(a: Ipv4Addr) -> bool {
    a.is_unspecified() || a.is_broadcast() || a.is_multicast()
}

fn key16(rng: &mut ChaCha20Rng) -> [u8; 16] {
    let mut k = [0u8; 16];
    rng.fill_bytes(&mut k);
    k
}

fn hash_tuple(key: &[u8; 16], local: SocketAddrV4, remote: SocketAddrV4, extra: &[u8]) -> u64 {
    let mut h = SipHasher24::new_with_key(key);
    h.write(&local.ip().octets());
    h.write(&local.port().to_be_bytes());
    h.write(&remote.ip().octets());
    h.write(&remote.port().to_be_bytes());
    h.write(extra);
    h.finish()
}

impl Tcp {
    /// A table whose secrets (ISN key, cookie key, timestamp offsets,
    /// ephemeral-port offsets) all derive from `seed`.
    pub fn new(config: TcpConfig, seed: [u8; 32]) -> Tcp {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let isn = IsnGenerator::new(key16(&mut rng));
        let cookie_key = key16(&mut rng);
        let ts_key = key16(&mut rng);
        let port_key = key16(&mut rng);
        let next_ephemeral = rng.next_u32();
        Tcp {
            config,
            isn,
            cookie_key,
            ts_key,
            port_key,
            conns: Vec::new(),
            free: Vec::new(),
            nconns: 0,
            by_tuple: HashMap::new(),
            last_hit: None,
            listeners: Vec::new(),
            by_local: HashMap::new(),
            timers: TimerHeap::default(),
            ready: VecDeque::new(),
            due: Vec::new(),
            tw_fifo: VecDeque::new(),
            tw_count: 0,
            next_ephemeral,
            last_now: Instant::ZERO,
            stats: TcpStats::default(),
            advice: Vec::new(),
            deferred: None,
        }
    }

    pub fn config(&self) -> &TcpConfig {
        &self.config
    }

    /// The MSS new connections advertise (the stack sets MTU − 40).
    pub fn set_mss(&mut self, mss: u16) {
        self.config.mss = mss;
    }

    pub fn stats(&self) -> &TcpStats {
        &self.stats
    }

    /// Entries in the timer heap (live and stale); for tests and metrics.
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// Connections in the table, of every state.
    pub fn connection_count(&self) -> usize {
        self.nconns
    }

    // ----- slots ------------------------------------------------------------

    fn get(&self, slot: u32, gen: u32) -> Option<&Tcb> {
        match self.conns.get(slot as usize) {
            Some(Slot {
                gen: g,
                tcb: Some(t),
            }) if *g == gen => Some(t),
            _ => None,
        }
    }

    fn get_mut(&mut self, slot: u32, gen: u32) -> Option<&mut Tcb> {
        match self.conns.get_mut(slot as usize) {
            Some(Slot {
                gen: g,
                tcb: Some(t),
            }) if *g == gen => Some(t),
            _ => None,
        }
    }

    /// The live slot `by_tuple` holds for (local, remote), if any, and its
    /// generation. A flow's segments in a row are answered from
    /// `last_hit` without hashing.
    #[inline]
    fn lookup(&mut self, local: SocketAddrV4, remote: SocketAddrV4) -> Option<(u32, u32)> {
        if let Some(h) = self.last_hit {
            if h.local == local && h.remote == remote {
                if let Some(Slot { gen, tcb: Some(_) }) = self.conns.get(h.slot as usize) {
                    if *gen == h.gen {
                        return Some((h.slot, h.gen));
                    }
                }
            }
        }
        self.lookup_map(local, remote)
    }

    /// [`lookup`](Self::lookup) through `by_tuple`; remembers the hit.
    #[inline(never)]
    fn lookup_map(&mut self, local: SocketAddrV4, remote: SocketAddrV4) -> Option<(u32, u32)> {
        let slot = *self.by_tuple.get(&(local, remote))?;
        let s = self.conns.get(slot as usize)?;
        s.tcb.as_ref()?;
        let gen = s.gen;
        self.last_hit = Some(LastHit {
            local,
            remote,
            slot,
            gen,
        });
        Some((slot, gen))
    }

    fn app(&self, h: ConnHandle) -> Result<&Tcb, TcpError> {
        match self.get(h.slot, h.gen) {
            Some(t) if !t.orphaned => Ok(t),
            _ => Err(TcpError::InvalidHandle),
        }
    }

    fn app_mut(&mut self, h: ConnHandle) -> Result<&mut Tcb, TcpError> {
        match self.get_mut(h.slot, h.gen) {
            Some(t) if !t.orphaned => Ok(t),
            _ => Err(TcpError::InvalidHandle),
        }
    }

    fn insert(&mut self, tcb: Tcb) -> ConnHandle {
        let key = (tcb.local, tcb.remote);
        let tcb = Box::new(tcb);
        let slot = if let Some(i) = self.free.pop() {
            let s = &mut self.conns[i as usize];
            s.gen = s.gen.wrapping_add(1);
            s.tcb = Some(tcb);
            i
        } else {
            self.conns.push(Slot {
                gen: 0,
                tcb: Some(tcb),
            });
            (self.conns.len() - 1) as u32
        };
        self.nconns += 1;
        self.last_hit = None;
        self.by_tuple.insert(key, slot);
        ConnHandle {
            slot,
            gen: self.conns[slot as usize].gen,
        }
    }

    fn free_slot(&mut self, slot: u32) {
        let Some(s) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let Some(t) = s.tcb.take() else {
            return;
        };
        s.gen = s.gen.wrapping_add(1);
        self.free.push(slot);
        self.nconns -= 1;
        if self.last_hit.is_some_and(|h| h.slot == slot) {
            self.last_hit = None;
        }
        if self.by_tuple.get(&(t.local, t.remote)) == Some(&slot) {
            self.by_tuple.remove(&(t.local, t.remote));
        }
        if t.counted_tw {
            self.tw_count -= 1;
        }
        if t.counted_estab {
            self.stats.curr_estab -= 1;
        }
        if t.counted_half_open {
            if let Some(l) = t.listener.and_then(|lh| self.listener_mut(lh)) {
                l.half_open = l.half_open.saturating_sub(1);
            }
        }
    }

    fn listener_mut(&mut self, h: ListenHandle) -> Option<&mut Listener> {
        match self.listeners.get_mut(h.slot as usize) {
            Some(LSlot { gen, l: Some(l) }) if *gen == h.gen => Some(l),
            _ => None,
        }
    }

    /// Runs the `after_event` that `process` put off, if the connection is
    /// still the one it was put off for.
    fn settle(&mut self, slot: u32, gen: u32) {
        if self.conns.get(slot as usize).is_some_and(|s| s.gen == gen) {
            self.after_event(slot);
        }
    }

    fn settle_deferred(&mut self) {
        if let Some((slot, gen)) = self.deferred.take() {
            self.settle(slot, gen);
        }
    }

    /// Book-keeping after anything happened to a connection: accounting,
    /// the accept queue, TIME-WAIT bounds, freeing, timers, readiness.
    fn after_event(&mut self, slot: u32) {
        let Some(s) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let gen = s.gen;
        let Some(t) = s.tcb.as_mut() else {
            return;
        };
        let state = t.state;
        let mut half_open_done = None;
        if t.counted_half_open && state != State::SynReceived {
            t.counted_half_open = false;
            half_open_done = t.listener;
        }
        let estab = matches!(state, State::Established | State::CloseWait);
        if estab != t.counted_estab {
            t.counted_estab = estab;
            if estab {
                self.stats.curr_estab += 1;
            } else {
                self.stats.curr_estab -= 1;
            }
        }
        let mut to_queue = None;
        if t.passive && !t.in_accept_queue && !t.orphaned && state.is_synchronized() {
            t.in_accept_queue = true;
            to_queue = t.listener;
        }
        let mut new_tw = false;
        if state == State::TimeWait && !t.counted_tw {
            t.counted_tw = true;
            new_tw = true;
        }
        let free = state == State::Closed
            && !t.rst_pending
            && (t.orphaned || (t.passive && !t.in_accept_queue));
        if !free {
            if let Some(d) = t.next_deadline() {
                if t.heap_at.is_none_or(|h| d < h) {
                    t.heap_at = Some(d);
                    self.timers.push(d, slot, gen);
                }
            }
            if t.wants_tx() && !t.in_ready {
                t.in_ready = true;
                self.ready.push_back((slot, gen));
            }
        }

        if let Some(lh) = half_open_done {
            if let Some(l) = self.listener_mut(lh) {
                l.half_open = l.half_open.saturating_sub(1);
            }
        }
        if free {
            self.free_slot(slot);
            return;
        }
        if let Some(lh) = to_queue {
            let h = ConnHandle { slot, gen };
            let queued = match self.listener_mut(lh) {
                Some(l) if l.queue.len() < l.backlog => {
                    l.queue.push_back(h);
                    true
                }
                _ => false,
            };
            if !queued {
                // The listener is gone or its accept queue is full: the
                // connection cannot be handed to anyone, so reset it.
                self.stats.listen_overflows += 1;
                if let Some(t) = self.get_mut(slot, gen) {
                    t.orphaned = true;
                    t.rst_pending = true;
                    if !t.in_ready {
                        t.in_ready = true;
                        self.ready.push_back((slot, gen));
                    }
                }
            }
        }
        if new_tw {
            self.tw_count += 1;
            self.tw_fifo.push_back((slot, gen));
            self.enforce_time_wait_bound();
        }
    }

    /// `max_time_wait`: recycle the oldest orphaned TIME-WAIT blocks.
    fn enforce_time_wait_bound(&mut self) {
        while self.tw_count > self.config.max_time_wait {
            let Some((slot, gen)) = self.tw_fifo.pop_front() else {
                break;
            };
            let recyclable = self
                .get(slot, gen)
                .is_some_and(|t| t.state == State::TimeWait && t.orphaned);
            if recyclable {
                self.stats.time_wait_recycled += 1;
                self.free_slot(slot);
            }
        }
        // Drop entries of blocks that are already gone, so the FIFO stays
        // as short as the TIME-WAIT population.
        while let Some(&(slot, gen)) = self.tw_fifo.front() {
            if self
                .get(slot, gen)
                .is_some_and(|t| t.state == State::TimeWait)
            {
                break;
            }
            self.tw_fifo.pop_front();
        }
    }

    fn ts_offset(&self, local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
        hash_tuple(&self.ts_key, local, remote, &[]) as u32
    }

    // ----- API: listeners ---------------------------------------------------

    /// Opens a listener on `local`; 0.0.0.0 accepts on any of our addresses
    /// (an exact address match is preferred when both exist).
    pub fn listen(
        &mut self,
        local: SocketAddrV4,
        backlog: usize,
    ) -> Result<ListenHandle, TcpError> {
        if local.port() == 0 {
            return Err(TcpError::InvalidArgument("listen port 0"));
        }
        if local.ip().is_broadcast() || local.ip().is_multicast() {
            return Err(TcpError::InvalidArgument("listen address"));
        }
        if self.by_local.contains_key(&local) {
            return Err(TcpError::AddrInUse);
        }
        let l = Listener {
            local,
            backlog: backlog.clamp(1, 1 << 20),
            queue: VecDeque::new(),
            half_open: 0,
            last_cookie: None,
            tos: 0,
        };
        let slot = match self.listeners.iter().position(|s| s.l.is_none()) {
            Some(i) => {
                self.listeners[i].gen = self.listeners[i].gen.wrapping_add(1);
                self.listeners[i].l = Some(l);
                i
            }
            None => {
                self.listeners.push(LSlot { gen: 0, l: Some(l) });
                self.listeners.len() - 1
            }
        };
        self.by_local.insert(local, slot as u32);
        Ok(ListenHandle {
            slot: slot as u32,
            gen: self.listeners[slot].gen,
        })
    }

    /// Takes the oldest completed connection.
    pub fn accept(&mut self, l: ListenHandle) -> Result<ConnHandle, TcpError> {
        loop {
            let lst = self.listener_mut(l).ok_or(TcpError::InvalidHandle)?;
            let Some(h) = lst.queue.pop_front() else {
                return Err(TcpError::WouldBlock);
            };
            if self.app(h).is_ok() {
                return Ok(h);
            }
        }
    }

    /// Closes a listener; connections it has not handed out are reset.
    pub fn close_listener(&mut self, l: ListenHandle) -> Result<(), TcpError> {
        let lst = self.listener_mut(l).ok_or(TcpError::InvalidHandle)?;
        let queue = core::mem::take(&mut lst.queue);
        let local = lst.local;
        self.listeners[l.slot as usize].l = None;
        self.by_local.remove(&local);
        for h in queue {
            if let Some(t) = self.get_mut(h.slot, h.gen) {
                t.orphaned = true;
                t.rst_pending = true;
                self.after_event(h.slot);
            }
        }
        Ok(())
    }

    // ----- API: connections -------------------------------------------------

    /// Active open. `local`'s address must be one of ours (the stack picks
    /// the source address from its routes, MUST-44); port 0 draws an RFC
    /// 6056 ephemeral port.
    pub fn connect(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
    ) -> Result<ConnHandle, TcpError> {
        self.last_now = now;
        // MUST-46: "A TCP implementation MUST reject as an error a local
        // OPEN call for an invalid remote IP address (e.g., a broadcast or
        // multicast address)".
        if bad_addr(*remote.ip()) || remote.port() == 0 {
            return Err(TcpError::InvalidArgument("remote address"));
        }
        if bad_addr(*local.ip()) {
            return Err(TcpError::InvalidArgument(
                "local address (the stack must choose the source)",
            ));
        }
        if self.nconns >= self.config.max_connections {
            return Err(TcpError::TooManyConnections);
        }
        let local = if local.port() == 0 {
            SocketAddrV4::new(*local.ip(), self.ephemeral_port(local, remote)?)
        } else {
            if self.by_tuple.contains_key(&(local, remote)) {
                return Err(TcpError::AddrInUse);
            }
            local
        };
        let iss = self.isn.isn(now, local, remote);
        let tcb = Tcb::new(
            now,
            &self.config,
            State::SynSent,
            local,
            remote,
            iss,
            self.ts_offset(local, remote),
        );
        let h = self.insert(tcb);
        self.stats.active_opens += 1;
        self.after_event(h.slot);
        Ok(h)
    }

    /// RFC 6056 §3.3.3 (Algorithm 3): a keyed hash of the connection-id
    /// picks where in the range to start, a global counter moves it on.
    fn ephemeral_port(
        &mut self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
    ) -> Result<u16, TcpError> {
        let (lo, hi) = self.config.ephemeral_ports;
        if lo == 0 || hi < lo {
            return Err(TcpError::InvalidArgument("ephemeral port range"));
        }
        let num = u32::from(hi - lo) + 1;
        let offset = hash_tuple(
            &self.port_key,
            SocketAddrV4::new(*local.ip(), 0),
            remote,
            &[],
        ) as u32;
        for i in 0..num {
            let port = lo + (offset.wrapping_add(self.next_ephemeral).wrapping_add(i) % num) as u16;
            let cand = SocketAddrV4::new(*local.ip(), port);
            let listened = self.by_local.contains_key(&cand)
                || self
                    .by_local
                    .contains_key(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
            if !listened && !self.by_tuple.contains_key(&(cand, remote)) {
                self.next_ephemeral = self.next_ephemeral.wrapping_add(i + 1);
                return Ok(port);
            }
        }
        Err(TcpError::NoFreePorts)
    }

    /// Copies what fits of `data` into the send buffer.
    pub fn send(&mut self, h: ConnHandle, data: &[u8]) -> Result<usize, TcpError> {
        let n = self.send_with(h, |buf| {
            let n = buf.len().min(data.len());
            buf[..n].copy_from_slice(&data[..n]);
            n
        })?;
        // send_with fills one contiguous stretch; top up across the wrap.
        if n < data.len() && n > 0 {
            let more = self.send_with(h, |buf| {
                let m = buf.len().min(data.len() - n);
                buf[..m].copy_from_slice(&data[n..n + m]);
                m
            });
            return Ok(n + more.unwrap_or(0));
        }
        Ok(n)
    }

    /// Zero-copy send: `f` writes into the free part of the send ring (one
    /// contiguous stretch) and returns how many bytes it wrote.
    pub fn send_with(
        &mut self,
        h: ConnHandle,
        f: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, TcpError> {
        let t = self.app_mut(h)?;
        can_send(t)?;
        if t.tx_free() == 0 {
            return Err(TcpError::WouldBlock);
        }
        let n = t.app_send_with(f);
        if n == 0 {
            return Ok(0);
        }
        t.kick = true;
        self.after_event(h.slot);
        Ok(n)
    }

    /// Reads into `buf`. `Ok(0)` means the peer closed (EOF) and every byte
    /// has been read; a reset shows as `Err(ConnectionReset)` (MUST-12).
    pub fn recv(&mut self, h: ConnHandle, buf: &mut [u8]) -> Result<usize, TcpError> {
        let t = self.app_mut(h)?;
        if t.readable() > 0 && !buf.is_empty() {
            let n = t.app_recv(buf);
            self.after_event(h.slot);
            return Ok(n);
        }
        Self::recv_end(t)
    }

    fn recv_end(t: &Tcb) -> Result<usize, TcpError> {
        if t.readable() > 0 {
            return Ok(0);
        }
        if let Some(e) = t.error {
            return Err(e);
        }
        if t.fin_received() || t.state == State::Closed {
            return Ok(0);
        }
        Err(TcpError::WouldBlock)
    }

    /// Zero-copy receive: `f` sees the contiguous readable bytes and returns
    /// how many it consumed.
    pub fn recv_with(
        &mut self,
        h: ConnHandle,
        f: impl FnOnce(&[u8]) -> usize,
    ) -> Result<usize, TcpError> {
        let t = self.app_mut(h)?;
        if t.readable() > 0 {
            let n = t.app_recv_with(f);
            self.after_event(h.slot);
            return Ok(n);
        }
        Self::recv_end(t)
    }

    /// Half-close: a FIN follows the queued data; receiving goes on.
    pub fn shutdown_write(&mut self, h: ConnHandle) -> Result<(), TcpError> {
        let now = self.last_now;
        let cfg = self.config.clone_light();
        let t = self.app_mut(h)?;
        if let Some(e) = t.error {
            return Err(e);
        }
        if t.fin_queued() {
            return Ok(());
        }
        match t.state {
            State::SynSent => t.queue_fin(),
            State::SynReceived | State::Established | State::CloseWait => {
                t.app_close_write(now, &cfg);
            }
            _ => return Err(TcpError::InvalidState),
        }
        t.kick = true;
        self.after_event(h.slot);
        Ok(())
    }

    /// Graceful close. The handle is invalid afterwards; the connection
    /// finishes in the background (FIN, TIME-WAIT) as in the kernel. Unread
    /// data makes it a reset instead (SHLD-3).
    pub fn close(&mut self, h: ConnHandle) -> Result<(), TcpError> {
        let now = self.last_now;
        let cfg = self.config.clone_light();
        let t = self.app_mut(h)?;
        t.orphaned = true;
        match t.state {
            State::Closed | State::SynSent | State::Listen => {
                self.free_slot(h.slot);
                return Ok(());
            }
            State::TimeWait | State::Closing | State::LastAck => {}
            _ if t.has_unread() => t.rst_pending = true,
            State::FinWait1 | State::FinWait2 => {
                t.app_close_write(now, &cfg);
            }
            _ => {
                t.app_close_write(now, &cfg);
            }
        }
        t.kick = true;
        self.after_event(h.slot);
        Ok(())
    }

    /// Reset now: RST to the peer (from a synchronized state) and free.
    pub fn abort(&mut self, h: ConnHandle) -> Result<(), TcpError> {
        let t = self.app_mut(h)?;
        t.orphaned = true;
        if t.state.is_synchronized() && t.state != State::TimeWait || t.state == State::SynReceived
        {
            t.rst_pending = true;
            self.after_event(h.slot);
        } else {
            self.free_slot(h.slot);
        }
        Ok(())
    }

    /// MUST-17: Nagle can be turned off per connection.
    pub fn set_nodelay(&mut self, h: ConnHandle, on: bool) -> Result<(), TcpError> {
        let t = self.app_mut(h)?;
        t.nodelay = on;
        t.kick = true;
        self.after_event(h.slot);
        Ok(())
    }

    /// SHLD-20: with `false`, soft errors (ICMP reports, MUST-47, and R1's
    /// `ExcessiveRetransmissions`, SHLD-9) no longer show in
    /// `readiness().error`. They are still recorded: one that explains a
    /// later timeout is still the error that abort reports, and turning
    /// reports back on shows the latest. On by default.
    pub fn set_soft_error_reports(&mut self, h: ConnHandle, on: bool) -> Result<(), TcpError> {
        self.app_mut(h)?.soft_reports = on;
        Ok(())
    }

    /// MUST-48, SHLD-21, SHLD-22: the Differentiated Services codepoint
    /// (RFC 2474, 0..=63) of every segment the connection sends from now on,
    /// data, retransmissions and pure ACKs alike, and settable at any time
    /// (like `IP_TOS`). The ECN bits stay zero: ringstack does not negotiate
    /// ECN. A value above 63 is `InvalidArgument` and changes nothing.
    pub fn set_dscp(&mut self, h: ConnHandle, dscp: u8) -> Result<(), TcpError> {
        let tos = dscp_to_tos(dscp)?;
        self.app_mut(h)?.tos = tos;
        Ok(())
    }

    /// The connection's DSCP (what [`Tcp::set_dscp`] set, or what it
    /// inherited from its listener).
    pub fn dscp(&self, h: ConnHandle) -> Result<u8, TcpError> {
        Ok(self.app(h)?.tos >> 2)
    }

    /// The DSCP of a listener's SYN-ACKs (cookie ones included) and the
    /// starting DSCP of every connection it accepts from now on.
    pub fn set_listener_dscp(&mut self, l: ListenHandle, dscp: u8) -> Result<(), TcpError> {
        let tos = dscp_to_tos(dscp)?;
        self.listener_mut(l).ok_or(TcpError::InvalidHandle)?.tos = tos;
        Ok(())
    }

    /// Picks the connection's congestion controller (Linux's
    /// TCP_CONGESTION). Before the handshake completes it only chooses the
    /// algorithm; on a live connection the new controller starts from the
    /// current window.
    pub fn set_congestion_control(
        &mut self,
        h: ConnHandle,
        alg: super::config::CcAlgorithm,
    ) -> Result<(), TcpError> {
        let t = self.app_mut(h)?;
        t.set_congestion_control(alg);
        t.kick = true;
        self.after_event(h.slot);
        Ok(())
    }

    /// MUST-21: the connection's R2, the retransmissions of one segment
    /// after which it is aborted with `TimedOut`; `None` never gives up
    /// (zero-window probes included).
    pub fn set_retransmit_limit(&mut self, h: ConnHandle, r2: Option<u32>) -> Result<(), TcpError> {
        self.app_mut(h)?.set_retransmit_limit(r2);
        Ok(())
    }

    /// Peers whose connections reached R1 since the last call: MUST-20's
    /// "negative advice" for IP, which re-verifies the next hop.
    pub fn take_negative_advice(&mut self, f: &mut dyn FnMut(Ipv4Addr)) {
        for ip in self.advice.drain(..) {
            f(ip);
        }
    }

    /// MUST-24/27: keep-alive on or off, with its interval, per connection.
    pub fn set_keepalive(
        &mut self,
        h: ConnHandle,
        ka: Option<super::config::Keepalive>,
    ) -> Result<(), TcpError> {
        let now = self.last_now;
        let t = self.app_mut(h)?;
        t.set_keepalive(now, ka);
        self.after_event(h.slot);
        Ok(())
    }

    /// Buffer sizes: the receive size only before the SYN is sent (the
    /// window scale is fixed then), the send size while its ring is empty.
    pub fn set_buffer_sizes(
        &mut self,
        h: ConnHandle,
        rx: Option<usize>,
        tx: Option<usize>,
    ) -> Result<(), TcpError> {
        let t = self.app_mut(h)?;
        if t.set_buffers(rx, tx) {
            Ok(())
        } else {
            Err(TcpError::InvalidState)
        }
    }

    pub fn state(&self, h: ConnHandle) -> Result<State, TcpError> {
        Ok(self.app(h)?.state)
    }

    pub fn readiness(&self, h: ConnHandle) -> Result<Readiness, TcpError> {
        let t = self.app(h)?;
        let eof = t.fin_received() && t.readable() == 0;
        Ok(Readiness {
            readable: t.readable() > 0
                || t.fin_received()
                || t.error.is_some()
                || t.state == State::Closed,
            writable: matches!(t.state, State::Established | State::CloseWait)
                && !t.fin_queued()
                && t.tx_free() > 0
                && t.error.is_none(),
            closed: matches!(t.state, State::Closed | State::TimeWait) || eof,
            error: t.error.or(t.soft_error.filter(|_| t.soft_reports)),
            urgent: t.urgent_pending().is_some(),
        })
    }

    /// MUST-33: unread bytes up to and including the last urgent octet, or
    /// `None` when there is no unread urgent data. Urgent data is read in
    /// line with `recv`; this says how far the urgent part reaches.
    pub fn urgent_pending(&self, h: ConnHandle) -> Result<Option<usize>, TcpError> {
        Ok(self.app(h)?.urgent_pending())
    }

    /// SEND with URGENT (MUST-30): queues `data` in line and marks its last
    /// byte as the end of urgent data. A legacy mechanism (SHLD-13: "new
    /// applications SHOULD NOT employ the TCP urgent mechanism"); kept for
    /// protocols like Telnet and FTP's ABOR. Returns the bytes queued.
    pub fn send_urgent(&mut self, h: ConnHandle, data: &[u8]) -> Result<usize, TcpError> {
        let t = self.app_mut(h)?;
        can_send(t)?;
        let n = t.app_send_urgent(data);
        if n == 0 && !data.is_empty() {
            return Err(TcpError::WouldBlock);
        }
        t.kick = true;
        self.after_event(h.slot);
        Ok(n)
    }

    pub fn local_addr(&self, h: ConnHandle) -> Result<SocketAddrV4, TcpError> {
        Ok(self.app(h)?.local)
    }

    pub fn peer_addr(&self, h: ConnHandle) -> Result<SocketAddrV4, TcpError> {
        Ok(self.app(h)?.remote)
    }

    pub fn conn_stats(&self, h: ConnHandle) -> Result<ConnStats, TcpError> {
        Ok(self.app(h)?.conn_stats())
    }

    // ----- datapath -----------------------------------------------------------

    /// One TCP segment addressed to one of our addresses (`dst`), checksum
    /// already verified. Answers the RFC requires at once (RST, SYN-ACK,
    /// challenge ACK, ACK of an unacceptable segment without data) go out
    /// through `emit` now; ACKs of data (also of data that was not
    /// acceptable) and data itself wait for `poll`.
    pub fn process(
        &mut self,
        now: Instant,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &Repr<'_>,
        mut emit: &mut Emit<'_>,
    ) {
        self.process_segment(now, src, dst, seg, None, &mut emit);
    }

    /// [`Tcp::process`] for a segment whose payload is not yet verified
    /// (from [`Repr::parse_deferring_payload`]). In-order data for an
    /// ESTABLISHED connection is copied into its receive ring, uncommitted,
    /// and summed in the same pass; any other payload is summed first.
    /// Returns false, having acted on nothing and counted nothing, if the
    /// checksum fails: the caller counts the drop.
    pub fn process_unverified(
        &mut self,
        now: Instant,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &Repr<'_>,
        check: PayloadCheck,
        mut emit: &mut Emit<'_>,
    ) -> bool {
        let staged = match self.stage(src, dst, seg) {
            Some((sum, at)) => {
                if !check.verify_sum(sum) {
                    return false;
                }
                Some(at)
            }
            None => {
                if !check.verify(seg.payload) {
                    return false;
                }
                None
            }
        };
        self.process_segment(now, src, dst, seg, staged, &mut emit);
        true
    }

    /// The sum of `seg`'s payload, staged in its connection's receive ring
    /// if header prediction could take it (see [`Tcb::stage_in_order`]),
    /// and that connection's slot, which `process_segment` then need not
    /// look up again.
    fn stage(&mut self, src: Ipv4Addr, dst: Ipv4Addr, seg: &Repr<'_>) -> Option<(u16, (u32, u32))> {
        if seg.payload.is_empty()
            || !self.config.header_prediction
            || bad_addr(src)
            || bad_addr(dst)
        {
            return None;
        }
        let local = SocketAddrV4::new(dst, seg.dst_port);
        let remote = SocketAddrV4::new(src, seg.src_port);
        let (slot, gen) = self.lookup(local, remote)?;
        let sum = slot_mut(&mut self.conns, slot, gen)?.stage_in_order(seg)?;
        Some((sum, (slot, gen)))
    }

    fn process_segment(
        &mut self,
        now: Instant,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &Repr<'_>,
        staged: Option<(u32, u32)>,
        emit: &mut dyn SegmentOut,
    ) {
        self.last_now = now;
        self.stats.in_segs += 1;
        // MUST-57, MUST-63: nothing to or from broadcast, multicast or an
        // unspecified address, and no reply.
        if bad_addr(src) || bad_addr(dst) {
            self.stats.drop(|s| &mut s.drop_bad_addr);
            return;
        }
        let local = SocketAddrV4::new(dst, seg.dst_port);
        let remote = SocketAddrV4::new(src, seg.src_port);
        let mut iss_floor = None;
        // Staged data was staged in the connection this 4-tuple finds: the
        // table has not changed since `stage` looked it up.
        let found = match staged {
            Some(at) => Some(at),
            None => self.lookup(local, remote),
        };
        if let Some((slot, gen)) = found {
            if let Some(t) = slot_mut(&mut self.conns, slot, gen) {
                if t.state == State::TimeWait
                    && seg.syn
                    && seg.ack_number.is_none()
                    && !seg.rst
                    && tw_reuse_ok(t, seg)
                {
                    // RFC 6191 / MAY-2: a new incarnation from TIME-WAIT.
                    iss_floor = Some(t.highest_sent());
                    self.stats.time_wait_reused += 1;
                    self.free_slot(slot);
                } else {
                    let before = t.state;
                    t.on_segment(
                        now,
                        &self.config,
                        seg,
                        staged.is_some(),
                        emit,
                        &mut self.stats,
                    );
                    if before == State::Established && t.state == State::Established {
                        // Nothing `after_event` counts or queues can change
                        // within ESTABLISHED but its timer and send queue
                        // entries, which only the next `poll` reads: a
                        // flow's segments in a row settle them once.
                        match self.deferred {
                            Some((s, _)) if s == slot => {}
                            other => {
                                self.deferred = Some((slot, gen));
                                if let Some((s, g)) = other {
                                    self.settle(s, g);
                                }
                            }
                        }
                    } else {
                        self.after_event(slot);
                    }
                    return;
                }
            }
        }
        let lslot = self
            .by_local
            .get(&local)
            .or_else(|| {
                self.by_local
                    .get(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, local.port()))
            })
            .copied();
        match lslot {
            Some(ls) => self.listen_input(now, ls, local, remote, seg, iss_floor, emit),
            None => self.reset_closed(local, remote, seg, emit),
        }
    }

    /// §3.10.7.1, CLOSED: "If the ACK bit is off, sequence number zero is
    /// used, <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>. If the ACK bit is
    /// on, <SEQ=SEG.ACK><CTL=RST>". An incoming RST is never answered.
    fn reset_closed(
        &mut self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &Repr<'_>,
        emit: &mut dyn SegmentOut,
    ) {
        self.stats.drop(|s| &mut s.drop_no_socket);
        if seg.rst {
            return;
        }
        let repr = reset_for(seg);
        if emit.segment(*local.ip(), *remote.ip(), 0, &repr) {
            self.stats.out_segs += 1;
            self.stats.out_rsts += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn listen_input(
        &mut self,
        now: Instant,
        lslot: u32,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &Repr<'_>,
        iss_floor: Option<SeqNumber>,
        emit: &mut dyn SegmentOut,
    ) {
        let lh = ListenHandle {
            slot: lslot,
            gen: self.listeners[lslot as usize].gen,
        };
        // §3.10.7.2 LISTEN. "First, check for a RST: An incoming RST
        // segment could not be valid since it could not have been sent in
        // response to anything sent by this incarnation of the connection.
        // An incoming RST should be ignored."
        if seg.rst {
            self.stats.drop(|s| &mut s.drop_listen);
            return;
        }
        // "Second, check for an ACK: ... Any acknowledgment is bad if it
        // arrives on a connection still in the LISTEN state. An acceptable
        // reset segment should be formed for any arriving ACK-bearing
        // segment. The RST should be formatted as follows: <SEQ=SEG.ACK>
        // <CTL=RST>" — unless it returns one of our SYN cookies.
        if seg.ack_number.is_some() {
            if !seg.syn && self.config.syn_cookies {
                let recent = self
                    .listener_mut(lh)
                    .and_then(|l| l.last_cookie)
                    .is_some_and(|t| {
                        now.saturating_since(t).total_micros()
                            <= 2 * COOKIE_TICK_SECS as u64 * 1_000_000
                    });
                if recent {
                    if let Some(p) = self.check_cookie(now, local, remote, seg) {
                        self.stats.syn_cookies_ok += 1;
                        self.cookie_connection(now, lh, local, remote, seg, p, emit);
                        return;
                    }
                    self.stats.syn_cookies_failed += 1;
                }
            }
            self.stats.drop(|s| &mut s.drop_listen);
            let repr = reset_for(seg);
            if emit.segment(*local.ip(), *remote.ip(), 0, &repr) {
                self.stats.out_segs += 1;
                self.stats.out_rsts += 1;
            }
            return;
        }
        // "Third, check for a SYN". Anything else is dropped; so is SYN+FIN,
        // a combination no honest opener sends.
        if !seg.syn || seg.fin {
            self.stats.drop(|s| &mut s.drop_listen);
            return;
        }
        let max_syn_backlog = self.config.max_syn_backlog;
        let Some(l) = self.listener_mut(lh) else {
            return;
        };
        let syn_queue_full = l.half_open >= max_syn_backlog;
        if l.queue.len() >= l.backlog {
            self.stats.listen_overflows += 1;
            self.stats.drop(|s| &mut s.drop_listen);
            return;
        }
        if syn_queue_full {
            if self.config.syn_cookies {
                if let Some(l) = self.listener_mut(lh) {
                    l.last_cookie = Some(now);
                }
                let tos = self.listener_mut(lh).map_or(0, |l| l.tos);
                self.send_cookie(now, local, remote, seg, tos, emit);
            } else {
                self.stats.syn_queue_full_drops += 1;
                self.stats.drop(|s| &mut s.drop_listen);
            }
            return;
        }
        if self.nconns >= self.config.max_connections {
            self.stats.drop(|s| &mut s.drop_too_many_connections);
            return;
        }
        let mut iss = self.isn.isn(now, local, remote);
        if let Some(floor) = iss_floor {
            // MAY-2: the new ISN must be above the old incarnation's.
            if iss <= floor {
                iss = floor + 65536;
            }
        }
        let mut tcb = Tcb::new(
            now,
            &self.config,
            State::SynReceived,
            local,
            remote,
            iss,
            self.ts_offset(local, remote),
        );
        tcb.listener = Some(lh);
        tcb.tos = self.listener_mut(lh).map_or(0, |l| l.tos);
        tcb.accept_syn(now, &self.config, seg);
        tcb.counted_half_open = true;
        if let Some(l) = self.listener_mut(lh) {
            l.half_open += 1;
        }
        let h = self.insert(tcb);
        self.stats.passive_opens += 1;
        // The SYN-ACK goes out now.
        if let Some(t) = slot_mut(&mut self.conns, h.slot, h.gen) {
            t.transmit(now, &self.config, emit, &mut self.stats);
        }
        self.after_event(h.slot);
    }

    // ----- SYN cookies (RFC 4987 §3.6) ----------------------------------------

    fn cookie_hash(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        peer_isn: SeqNumber,
        tick: i64,
    ) -> u32 {
        let mut extra = [0u8; 12];
        extra[..4].copy_from_slice(&peer_isn.0.to_be_bytes());
        extra[4..].copy_from_slice(&tick.to_be_bytes());
        (hash_tuple(&self.cookie_key, local, remote, &extra) as u32) & 0x00ff_ffff
    }

    fn tick(now: Instant) -> i64 {
        now.total_micros().div_euclid(COOKIE_TICK_SECS * 1_000_000)
    }

    /// A stateless SYN-ACK whose ISN is the cookie: 5 bits of the time tick,
    /// 3 bits of MSS index, 24 bits of keyed hash over the 4-tuple, the
    /// peer's ISN and the tick. Window scale and SACK ride in the low bits of
    /// our TSval when the peer offered timestamps (as Linux does).
    #[allow(clippy::too_many_arguments)]
    fn send_cookie(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &Repr<'_>,
        tos: u8,
        emit: &mut dyn SegmentOut,
    ) {
        let peer_mss = seg.max_seg_size.unwrap_or(536);
        let idx = COOKIE_MSS.iter().rposition(|&m| m <= peer_mss).unwrap_or(0) as u32;
        let tick = Self::tick(now);
        let cookie = ((tick as u32 & 0x1f) << 27)
            | (idx << 24)
            | self.cookie_hash(local, remote, seg.seq_number, tick);
        let cfg = &self.config;
        let ts = cfg.timestamps && seg.timestamp.is_some();
        let scaling = ts && cfg.window_scale && seg.window_scale.is_some();
        // Our own shift goes in the SYN-ACK; the cookie must remember the
        // peer's, which scales every window it will send us.
        let ws = scaling.then(|| wscale_for(cfg.rx_buffer.clamp(1, super::config::MAX_BUFFER)));
        let peer_ws = seg.window_scale.filter(|_| scaling).map(|w| w.min(14));
        let sack = ts && cfg.sack && seg.sack_permitted;
        let timestamp = seg.timestamp.filter(|_| ts).map(|(tsval, _)| {
            let ours = (now.total_millis() as u32).wrapping_add(self.ts_offset(local, remote));
            let enc =
                u32::from(peer_ws.unwrap_or(0xf)) | if sack { 0x10 } else { 0 } | TS_COOKIE_MARK;
            let mut v = (ours & !0x3f) | enc;
            if (v.wrapping_sub(ours) as i32) > 0 {
                // Never ahead of our clock: the next segment's TSval would
                // look older than this one and the peer's PAWS would drop it
                // (Linux steps back 64 ticks the same way).
                v = v.wrapping_sub(0x40);
            }
            (v, tsval)
        });
        let repr = Repr {
            src_port: local.port(),
            dst_port: remote.port(),
            seq_number: SeqNumber(cookie),
            ack_number: Some(seg.seq_number + 1),
            syn: true,
            window_len: cfg.rx_buffer.min(65535) as u16,
            max_seg_size: Some(cfg.mss),
            window_scale: ws,
            sack_permitted: sack,
            timestamp,
            ..Repr::default()
        };
        if emit.segment(*local.ip(), *remote.ip(), tos, &repr) {
            self.stats.out_segs += 1;
            self.stats.syn_cookies_sent += 1;
        }
    }

    fn check_cookie(
        &self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &Repr<'_>,
    ) -> Option<CookieParams> {
        let ack = seg.ack_number?;
        let c = (ack - 1).0;
        let peer_isn = seg.seq_number - 1;
        let tick = Self::tick(now);
        let valid = (0..2).any(|age| {
            let t = tick - age;
            (t as u32 & 0x1f) == c >> 27
                && self.cookie_hash(local, remote, peer_isn, t) == c & 0x00ff_ffff
        });
        if !valid {
            return None;
        }
        let mss = COOKIE_MSS[((c >> 24) & 7) as usize];
        let (wscale, sack, ts) = match seg.timestamp {
            Some((_, tsecr)) if tsecr & TS_COOKIE_MARK != 0 => {
                let ws = (tsecr & 0xf) as u8;
                ((ws != 0xf).then_some(ws.min(14)), tsecr & 0x10 != 0, true)
            }
            _ => (None, false, false),
        };
        Some(CookieParams {
            mss,
            wscale,
            sack,
            ts,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn cookie_connection(
        &mut self,
        now: Instant,
        lh: ListenHandle,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &Repr<'_>,
        p: CookieParams,
        emit: &mut dyn SegmentOut,
    ) {
        let full = self
            .listener_mut(lh)
            .is_none_or(|l| l.queue.len() >= l.backlog);
        if full || self.nconns >= self.config.max_connections {
            self.stats.listen_overflows += 1;
            return;
        }
        let iss = seg.ack_number.unwrap_or_default() - 1;
        let mut tcb = Tcb::new(
            now,
            &self.config,
            State::SynReceived,
            local,
            remote,
            iss,
            self.ts_offset(local, remote),
        );
        tcb.listener = Some(lh);
        tcb.tos = self.listener_mut(lh).map_or(0, |l| l.tos);
        tcb.init_from_cookie(now, &self.config, seg, p);
        let h = self.insert(tcb);
        self.stats.passive_opens += 1;
        // Data (or FIN) on the completing ACK "must still be accepted".
        if let Some(t) = slot_mut(&mut self.conns, h.slot, h.gen) {
            t.on_segment(now, &self.config, seg, false, emit, &mut self.stats);
        }
        self.after_event(h.slot);
    }

    // ----- timers and output ----------------------------------------------------

    /// Runs due timers, then lets ready connections send (data,
    /// retransmissions, ACKs, window updates, probes, FINs, RSTs).
    pub fn poll(&mut self, now: Instant, mut emit: &mut Emit<'_>) {
        self.poll_out(now, &mut emit);
    }

    /// [`Tcp::poll`] into any [`SegmentOut`], one that takes runs too.
    pub fn poll_out(&mut self, now: Instant, emit: &mut dyn SegmentOut) {
        self.last_now = now;
        self.settle_deferred();
        // Take the due entries first, so a timer re-armed for `now` waits
        // for the next poll instead of spinning here.
        let mut due = core::mem::take(&mut self.due);
        due.clear();
        while let Some(e) = self.timers.pop_due(now) {
            due.push(e);
        }
        for &(at, slot, gen) in &due {
            let Some(t) = slot_mut(&mut self.conns, slot, gen) else {
                continue;
            };
            if t.heap_at != Some(at) {
                continue;
            }
            t.heap_at = None;
            t.on_timer(now, &self.config, &mut self.stats);
            t.kick = true;
            if t.negative_advice {
                t.negative_advice = false;
                let peer = *t.remote.ip();
                // Bounded: one entry per distinct peer, a few in practice.
                if !self.advice.contains(&peer) && self.advice.len() < MAX_ADVICE {
                    self.advice.push(peer);
                }
            }
            self.after_event(slot);
        }
        self.due = due;

        let n = self.ready.len();
        for _ in 0..n {
            let Some((slot, gen)) = self.ready.pop_front() else {
                break;
            };
            let Some(t) = slot_mut(&mut self.conns, slot, gen) else {
                continue;
            };
            t.in_ready = false;
            let ok = t.transmit(now, &self.config, emit, &mut self.stats);
            if !ok {
                // No TX room: keep our place and stop for this poll.
                t.in_ready = true;
                self.ready.push_front((slot, gen));
                self.after_event(slot);
                break;
            }
            self.after_event(slot);
        }
    }

    /// When `poll` next has work: the earliest timer, or the last `now` seen
    /// if a connection is ready to send.
    pub fn poll_at(&self) -> Option<Instant> {
        // Settling what input put off needs a poll (input is always
        // followed by one in `Stack::poll`).
        if !self.ready.is_empty() || self.deferred.is_some() {
            return Some(self.last_now);
        }
        self.timers.peek()
    }

    /// An ICMP error quoting one of our segments (RFC 9293 §3.9.2.2, RFC
    /// 1122 §4.2.3.9, RFC 5927). `quoted_seq` is the sequence number of the
    /// quoted TCP header; it must be in flight or the message is ignored.
    pub fn icmp_error(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        quoted_seq: SeqNumber,
        kind: IcmpErrorKind,
    ) {
        self.last_now = now;
        // MUST-55: "TCP MUST silently discard any received ICMP Source
        // Quench messages".
        if kind == IcmpErrorKind::SourceQuench {
            self.stats.icmp_ignored += 1;
            return;
        }
        let Some((slot, gen)) = self.lookup(local, remote) else {
            self.stats.icmp_ignored += 1;
            return;
        };
        let Some(t) = slot_mut(&mut self.conns, slot, gen) else {
            return;
        };
        if !t.icmp_seq_ok(quoted_seq) {
            self.stats.icmp_ignored += 1;
            return;
        }
        let opening =
            matches!(t.state, State::SynSent) || (t.state == State::SynReceived && !t.passive);
        match kind {
            IcmpErrorKind::FragmentationNeeded { mtu } => {
                if t.pmtu_drop(mtu) {
                    t.kick = true;
                    self.stats.pmtu_updates += 1;
                } else {
                    self.stats.icmp_ignored += 1;
                }
            }
            IcmpErrorKind::PortUnreachable | IcmpErrorKind::ProtocolUnreachable if opening => {
                // SHLD-26: hard errors abort, here where nothing is lost.
                self.stats.icmp_hard_errors += 1;
                t.abort_with(TcpError::ConnectionRefused, &mut self.stats);
            }
            _ => {
                // MUST-56: soft errors never abort; they are reported
                // (SHLD-25, MUST-47) and become the error of a later timeout.
                self.stats.icmp_soft_errors += 1;
                t.soft_error = Some(match kind {
                    IcmpErrorKind::NetUnreachable => TcpError::NetUnreachable,
                    IcmpErrorKind::PortUnreachable | IcmpErrorKind::ProtocolUnreachable => {
                        TcpError::ConnectionRefused
                    }
                    _ => TcpError::HostUnreachable,
                });
            }
        }
        self.after_event(slot);
    }
}

/// RFC 6191 §2: a SYN may reopen a TIME-WAIT connection-id if its TSval is
/// newer than the last seen (or equal, with a higher sequence number), or,
/// without timestamps, if its sequence number is above the last seen.
fn tw_reuse_ok(t: &Tcb, seg: &Repr<'_>) -> bool {
    match (t.ts_recent(), seg.timestamp) {
        (Some(recent), Some((tsval, _))) => {
            let d = tsval.wrapping_sub(recent) as i32;
            d > 0 || (d == 0 && seg.seq_number > t.rcv_nxt())
        }
        (Some(_), None) => false,
        (None, _) => seg.seq_number > t.rcv_nxt(),
    }
}

/// The RST answering `seg` from a place with no connection.
fn reset_for(seg: &Repr<'_>) -> Repr<'static> {
    let base = Repr {
        src_port: seg.dst_port,
        dst_port: seg.src_port,
        rst: true,
        ..Repr::default()
    };
    match seg.ack_number {
        Some(ack) => Repr {
            seq_number: ack,
            ..base
        },
        None => Repr {
            seq_number: SeqNumber(0),
            ack_number: Some(seg.seq_number + seg.segment_len()),
            ..base
        },
    }
}

impl TcpConfig {
    /// The config is cloned where a `&mut Tcb` is held; it is small.
    fn clone_light(&self) -> TcpConfig {
        self.clone()
    }
}

/// A DSCP (six bits) as the TOS byte it occupies, ECN bits zero.
fn dscp_to_tos(dscp: u8) -> Result<u8, TcpError> {
    if dscp > 63 {
        return Err(TcpError::InvalidArgument("a DSCP is six bits: 0 to 63"));
    }
    Ok(dscp << 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::config::CcAlgorithm;
    use crate::tcp::wire::Packet;
    use crate::time::Duration;

    const A: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 40_000);
    const B: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80);

    /// Segments as bytes, with runs written through their header template
    /// (`runs`) or refused, so the engine sends them one by one.
    struct Wire {
        segs: Vec<(Ipv4Addr, Ipv4Addr, Vec<u8>)>,
        runs: bool,
        run_segments: usize,
    }

    impl SegmentOut for Wire {
        fn segment(&mut self, src: Ipv4Addr, dst: Ipv4Addr, _tos: u8, seg: &Repr<'_>) -> bool {
            let mut b = vec![0; seg.buffer_len()];
            seg.emit(&mut Packet::new_unchecked(&mut b[..]), src, dst);
            self.segs.push((src, dst, b));
            true
        }

        fn run(
            &mut self,
            src: Ipv4Addr,
            dst: Ipv4Addr,
            _tos: u8,
            first: &Repr<'_>,
            mss: usize,
        ) -> Option<usize> {
            if !self.runs {
                return None;
            }
            let h = first.run_header(src, dst, mss)?;
            for i in 0..h.segments() {
                let mut b = vec![0; h.header_len() + mss];
                h.write(&mut b, i);
                self.segs.push((src, dst, b));
            }
            self.run_segments += h.segments();
            Some(h.segments())
        }
    }

    fn deliver(
        to: &mut Tcp,
        now: Instant,
        segs: Vec<(Ipv4Addr, Ipv4Addr, Vec<u8>)>,
        out: &mut Wire,
    ) {
        for (src, dst, b) in segs {
            let p = Packet::new_checked(&b[..]).expect("our own segment");
            let r = Repr::parse(&p, src, dst).expect("our own segment");
            to.process_segment(now, src, dst, &r, None, out);
        }
    }

    /// A bulk transfer, A to B, in rounds of A sending what it may and B
    /// acknowledging it, driven twice: once with A's bursts sent as runs
    /// and noted in one step (`note_sent_new`), once refused and sent and
    /// noted segment by segment. After every round A's connection must be
    /// the same, field for field (its `Debug` form): the counters, the
    /// send variables, the send records, the timers, the controller, the
    /// RTT samples (B acknowledges each burst in two halves, apart). B
    /// sends data now and then, so A's runs also carry ACKs it owed.
    #[test]
    fn a_run_noted_at_once_leaves_the_connection_as_its_segments_one_by_one() {
        for cc in [CcAlgorithm::NewReno, CcAlgorithm::Cubic] {
            for timestamps in [false, true] {
                let cfg = TcpConfig {
                    cc,
                    timestamps,
                    rx_buffer: 64 << 10,
                    tx_buffer: 64 << 10,
                    ..TcpConfig::default()
                };
                // (A's state after each round, run segments), runs on, off.
                let mut traces: Vec<(Vec<String>, usize)> = Vec::new();
                for runs in [true, false] {
                    let mut a = Tcp::new(cfg.clone(), [7; 32]);
                    let mut b = Tcp::new(cfg.clone(), [9; 32]);
                    let l = b.listen(B, 4).unwrap();
                    let mut now = Instant::from_micros(1_000_000);
                    let h = a.connect(now, A, B).unwrap();
                    let mut w = Wire {
                        segs: Vec::new(),
                        runs,
                        run_segments: 0,
                    };
                    for _ in 0..4 {
                        a.poll_out(now, &mut w);
                        let to_b = core::mem::take(&mut w.segs);
                        deliver(&mut b, now, to_b, &mut w);
                        b.poll_out(now, &mut w);
                        let to_a = core::mem::take(&mut w.segs);
                        deliver(&mut a, now, to_a, &mut w);
                        now += Duration::from_millis(1);
                    }
                    let hb = b.accept(l).expect("handshake done");
                    let data = vec![0x5a; 600_000];
                    let mut sink = vec![0; 1 << 20];
                    let mut sent = 0;
                    let mut states = Vec::new();
                    for round in 0..12 {
                        // B's data first, so A owes an ACK its run carries.
                        if round % 2 == 0 {
                            b.send(hb, &[0xa5; 3000]).unwrap();
                            b.poll_out(now, &mut w);
                            let to_a = core::mem::take(&mut w.segs);
                            deliver(&mut a, now, to_a, &mut w);
                        }
                        sent += a.send(h, &data[sent..]).unwrap_or(0);
                        a.poll_out(now, &mut w);
                        states.push(format!("{:?}", a.get(h.slot, h.gen).unwrap()));
                        // B takes A's burst in two halves 20 ms apart and
                        // answers each (past its delayed-ACK timer), so an
                        // RTT sample tells which segment was timed.
                        let mut to_b = core::mem::take(&mut w.segs);
                        let second = to_b.split_off(to_b.len() / 2);
                        let mut acks = Vec::new();
                        for half in [to_b, second] {
                            now += Duration::from_millis(5);
                            deliver(&mut b, now, half, &mut w);
                            while b.recv(hb, &mut sink).is_ok_and(|n| n > 0) {}
                            now += Duration::from_millis(45);
                            b.poll_out(now, &mut w);
                            acks.push(core::mem::take(&mut w.segs));
                        }
                        for half in acks {
                            now += Duration::from_millis(3);
                            deliver(&mut a, now, half, &mut w);
                            let mut junk = [0; 8192];
                            while a.recv(h, &mut junk).is_ok_and(|n| n > 0) {}
                        }
                        states.push(format!("{:?}", a.get(h.slot, h.gen).unwrap()));
                    }
                    traces.push((states, w.run_segments));
                }
                let case = format!("{cc:?}, timestamps {timestamps}");
                assert!(traces[0].1 > 100, "{case}: {} run segments", traces[0].1);
                assert_eq!(traces[1].1, 0, "{case}");
                for (round, (x, y)) in traces[0].0.iter().zip(&traces[1].0).enumerate() {
                    assert_eq!(x, y, "{case}: round {round}");
                }
            }
        }
    }
}
