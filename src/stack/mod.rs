//! The stack: one interface, its sockets, and the poll loop.
//!
//! `Stack::poll(now, dev)` does a bounded amount of work and returns: it
//! drains at most one RX batch, carries each frame to completion (answers
//! included, written straight into TX frames), runs due timers, sends what
//! sockets queued, and flushes the device once. `poll_at` says when the next
//! timer is due so the caller can sleep, spin or block on the device.

mod input;
mod output;
mod slab;
pub mod stats;

use crate::arp::{ArpConfig, NeighborCache};
use crate::dev::Device;
use crate::eth::MacAddr;
use crate::icmp::ping::{PingEvent, PingRequest, PingSocket};
use crate::icmp::ratelimit::TokenBucket;
use crate::ip::cidr::Ipv4Cidr;
use crate::ip::frag::{Reassembler, ReassemblyConfig};
use crate::tcp::{ConnHandle, ListenHandle, Tcp, TcpConfig, TcpError};
use crate::time::{Duration, Instant};
use crate::udp::socket::{UdpConfig, UdpSocket, UdpSocketStats};
use core::cell::Cell;
use core::net::{Ipv4Addr, SocketAddrV4};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use slab::Slab;
use std::collections::HashMap;
use std::io;

pub use stats::Stats;

/// Everything a stack needs to start. [`Config::new`] fills in defaults.
#[derive(Debug, Clone)]
pub struct Config {
    pub mac: MacAddr,
    pub addrs: Vec<Ipv4Cidr>,
    pub gateway: Option<Ipv4Addr>,
    /// IP MTU of the link (1500 on Ethernet).
    pub mtu: usize,
    /// Accept and send only frames tagged with this 802.1Q VLAN ID.
    pub vlan: Option<u16>,
    /// TTL of packets we originate.
    pub ttl: u8,
    pub arp: ArpConfig,
    pub reassembly: ReassemblyConfig,
    /// ICMP errors sent per second at most, and the burst allowed.
    pub icmp_error_rate: u32,
    pub icmp_error_burst: u32,
    pub udp: UdpConfig,
    /// TCP's configuration; its `mss` is set from `mtu`.
    pub tcp: TcpConfig,
    /// Frames taken from the device per poll.
    pub rx_batch: usize,
    /// Sockets of each kind at most.
    pub max_sockets: usize,
    /// Ephemeral port range (inclusive), RFC 6335's dynamic range by default.
    pub ephemeral_ports: (u16, u16),
    /// Seed of the stack's RNG (ports, ping identifiers, IP IDs). Tests fix
    /// it; the binary draws it from the OS.
    pub seed: [u8; 32],
    /// Send RFC 5227 ARP announcements when an address is added.
    pub announce: bool,
}

impl Config {
    pub fn new(mac: MacAddr, addr: Ipv4Cidr) -> Config {
        Config {
            mac,
            addrs: vec![addr],
            gateway: None,
            mtu: 1500,
            vlan: None,
            ttl: 64,
            arp: ArpConfig::default(),
            reassembly: ReassemblyConfig::default(),
            icmp_error_rate: 100,
            icmp_error_burst: 50,
            udp: UdpConfig::default(),
            tcp: TcpConfig::default(),
            rx_batch: 64,
            max_sockets: 65536,
            ephemeral_ports: (49152, 65535),
            seed: [0; 32],
            announce: true,
        }
    }
}

/// Why a call on the stack failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The configuration cannot work; the text says which part.
    InvalidConfig(&'static str),
    /// An argument is unusable; the text says which.
    InvalidArgument(&'static str),
    /// No route to the destination: not on a local subnet and no gateway.
    NoRoute(Ipv4Addr),
    /// The datagram cannot be sent as one piece (DF set) or at all.
    MessageTooLong { len: usize, max: usize },
    /// The port is taken.
    AddrInUse(u16),
    /// No free ephemeral port.
    NoFreePorts,
    /// The handle's socket is closed.
    InvalidHandle,
    /// Nothing to receive now, or the send queue is full.
    WouldBlock,
    /// The limit on sockets is reached.
    TooManySockets,
    /// ARP resolution of the next hop failed.
    HostUnreachable(Ipv4Addr),
    /// An ICMP error came back for a datagram this socket sent.
    Icmp {
        from: Ipv4Addr,
        msg_type: u8,
        code: u8,
    },
    /// The device has no free TX slot.
    Exhausted,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::InvalidConfig(s) => write!(f, "invalid configuration: {s}"),
            Error::InvalidArgument(s) => write!(f, "invalid argument: {s}"),
            Error::NoRoute(ip) => {
                write!(f, "no route to {ip} (not on a local subnet and no gateway)")
            }
            Error::MessageTooLong { len, max } => {
                write!(f, "message of {len} bytes is longer than {max}")
            }
            Error::AddrInUse(p) => write!(f, "port {p} is already bound"),
            Error::NoFreePorts => f.write_str("no free ephemeral port"),
            Error::InvalidHandle => f.write_str("socket handle is closed"),
            Error::WouldBlock => f.write_str("operation would block"),
            Error::TooManySockets => f.write_str("socket limit reached"),
            Error::HostUnreachable(ip) => {
                write!(f, "host {ip} unreachable (ARP resolution failed)")
            }
            Error::Icmp {
                from,
                msg_type,
                code,
            } => write!(f, "ICMP error type {msg_type} code {code} from {from}"),
            Error::Exhausted => f.write_str("device transmit queue full"),
        }
    }
}
impl std::error::Error for Error {}

/// A UDP socket of a [`Stack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpHandle {
    index: usize,
    gen: u32,
}

/// A ping (ICMP echo) socket of a [`Stack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PingHandle {
    index: usize,
    gen: u32,
}

/// The interface as configured: what the input and output paths consult.
#[derive(Debug)]
pub(crate) struct Iface {
    pub mac: MacAddr,
    pub addrs: Vec<Ipv4Cidr>,
    pub gateway: Option<Ipv4Addr>,
    pub mtu: usize,
    pub vlan: Option<u16>,
    pub ttl: u8,
    /// The last (source, destination) pair the input path accepted as a
    /// unicast datagram to us from a plausible source, so a flow's next
    /// packets skip the address checks; cleared when addresses change.
    pub rx_accepted: Option<(Ipv4Addr, Ipv4Addr)>,
    /// The last unicast destination [`Iface::unicast_next_hop`] answered,
    /// with its next hop; cleared when addresses or the gateway change.
    tx_route: Cell<Option<(Ipv4Addr, Ipv4Addr)>>,
}

impl Iface {
    /// The next hop for a unicast `dst` (`None` for a broadcast or an
    /// unroutable one), remembered for the same destination next time.
    #[inline]
    pub fn unicast_next_hop(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if let Some((d, hop)) = self.tx_route.get() {
            if d == dst {
                return Some(hop);
            }
        }
        if self.is_broadcast(dst) {
            return None;
        }
        let hop = self.route(dst).ok()?;
        self.tx_route.set(Some((dst, hop)));
        Some(hop)
    }

    /// Forget every verdict that depends on the addresses or the gateway.
    fn config_changed(&mut self) {
        self.rx_accepted = None;
        self.tx_route.set(None);
    }

    pub fn has_addr(&self, ip: Ipv4Addr) -> bool {
        self.addrs.iter().any(|c| c.addr() == ip)
    }
    pub fn on_link(&self, ip: Ipv4Addr) -> bool {
        self.addrs.iter().any(|c| c.contains(ip))
    }
    /// The limited broadcast or the directed broadcast of one of our subnets.
    pub fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        ip.is_broadcast() || self.addrs.iter().any(|c| c.broadcast() == Some(ip))
    }
    /// The source address for packets to `dst`: the address on its subnet,
    /// else the first one.
    pub fn source_for(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        self.addrs
            .iter()
            .find(|c| c.contains(dst))
            .or(self.addrs.first())
            .map(|c| c.addr())
    }
    /// Next hop for `dst`: itself when on-link or broadcast, else the gateway.
    pub fn route(&self, dst: Ipv4Addr) -> Result<Ipv4Addr, Error> {
        if self.on_link(dst) || self.is_broadcast(dst) {
            Ok(dst)
        } else {
            self.gateway.ok_or(Error::NoRoute(dst))
        }
    }
    pub fn eth_header_len(&self) -> usize {
        crate::eth::HEADER_LEN
            + if self.vlan.is_some() {
                crate::eth::VLAN_TAG_LEN
            } else {
                0
            }
    }
}

/// Output-side state: neighbour cache, IP identification, rate limits.
#[derive(Debug)]
pub(crate) struct Egress {
    pub arp: NeighborCache,
    pub next_ident: u16,
    pub icmp_errors: TokenBucket,
    /// Reused buffer for payloads that must be fragmented.
    pub scratch: Vec<u8>,
    /// Addresses still to announce (RFC 5227 §2.3): (address, when, left).
    pub announce: Vec<(Ipv4Addr, Instant, u8)>,
    pub arp_actions: Vec<crate::arp::cache::TimerAction>,
}

pub struct Stack {
    iface: Iface,
    eg: Egress,
    stats: Stats,
    frag: Reassembler,
    /// Reused buffer that holds a reassembled datagram while it is delivered.
    reasm_buf: Vec<u8>,
    udp: Slab<UdpSocket>,
    udp_ports: HashMap<u16, usize>,
    /// UDP sockets with datagrams waiting to be sent.
    udp_dirty: Vec<usize>,
    pings: Slab<PingSocket>,
    ping_idents: HashMap<u16, usize>,
    ping_dirty: Vec<usize>,
    tcp: Tcp,
    rng: ChaCha20Rng,
    config: Config,
    started: bool,
}

impl core::fmt::Debug for Stack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Stack")
            .field("iface", &self.iface)
            .field("udp_sockets", &self.udp.len())
            .finish_non_exhaustive()
    }
}

impl Stack {
    pub fn new(config: Config) -> Result<Stack, Error> {
        if config.mtu < 68 {
            return Err(Error::InvalidConfig(
                "mtu below 68, the IPv4 minimum (RFC 791)",
            ));
        }
        if config.mtu > 65535 {
            return Err(Error::InvalidConfig("mtu above 65535"));
        }
        if !config.mac.is_unicast() || config.mac == MacAddr::ZERO {
            return Err(Error::InvalidConfig("mac must be a unicast address"));
        }
        if config.vlan.is_some_and(|v| v == 0 || v >= 4095) {
            return Err(Error::InvalidConfig("vlan id must be 1..=4094"));
        }
        if let Some(gw) = config.gateway {
            if !config.addrs.iter().any(|c| c.contains(gw)) {
                return Err(Error::InvalidConfig("gateway is not on a local subnet"));
            }
        }
        if config.ephemeral_ports.0 == 0 || config.ephemeral_ports.0 > config.ephemeral_ports.1 {
            return Err(Error::InvalidConfig(
                "ephemeral port range is empty or starts at 0",
            ));
        }
        let mut rng = ChaCha20Rng::from_seed(config.seed);
        let mut tcp_seed = [0u8; 32];
        rng.fill_bytes(&mut tcp_seed);
        let mut tcp_config = config.tcp.clone();
        // RFC 9293 §3.7.1: the MSS we announce is the MTU less 40.
        tcp_config.mss = (config.mtu - 40) as u16;
        let eg = Egress {
            arp: NeighborCache::new(config.arp.clone()),
            next_ident: rng.next_u32() as u16,
            icmp_errors: TokenBucket::new(config.icmp_error_rate, config.icmp_error_burst),
            scratch: Vec::new(),
            announce: Vec::new(),
            arp_actions: Vec::new(),
        };
        let mut stack = Stack {
            iface: Iface {
                mac: config.mac,
                addrs: Vec::new(),
                gateway: config.gateway,
                mtu: config.mtu,
                vlan: config.vlan,
                ttl: config.ttl,
                rx_accepted: None,
                tx_route: Cell::new(None),
            },
            eg,
            stats: Stats::default(),
            frag: Reassembler::new(config.reassembly.clone()),
            reasm_buf: Vec::new(),
            udp: Slab::default(),
            udp_ports: HashMap::new(),
            udp_dirty: Vec::new(),
            pings: Slab::default(),
            ping_idents: HashMap::new(),
            ping_dirty: Vec::new(),
            tcp: Tcp::new(tcp_config, tcp_seed),
            rng,
            config,
            started: false,
        };
        for a in stack.config.addrs.clone() {
            stack.add_address(a);
        }
        Ok(stack)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn mac(&self) -> MacAddr {
        self.iface.mac
    }
    pub fn addresses(&self) -> &[Ipv4Cidr] {
        &self.iface.addrs
    }
    pub fn mtu(&self) -> usize {
        self.iface.mtu
    }

    /// Counters, including the reassembler's.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        let f = self.frag.stats();
        s.ip.rx_fragments = f.fragments;
        s.ip.reassembled = f.reassembled;
        s.ip.frag_duplicates = f.duplicates;
        s.ip.frag_timeouts = f.timeouts;
        s.ip.frag_drop_overlap = f.dropped_overlap;
        s.ip.frag_drop_too_big = f.dropped_too_big;
        s.ip.frag_drop_bad_length = f.dropped_bad_length;
        s.ip.frag_drop_too_many_fragments = f.dropped_too_many_fragments;
        s.ip.frag_drop_too_many_datagrams = f.dropped_too_many_datagrams;
        s.ip.frag_drop_too_many_bytes = f.dropped_too_many_bytes;
        let a = self.eg.arp.stats();
        s.arp.resolved = a.resolved;
        s.arp.resolution_failed = a.failed;
        s.arp.pending_dropped = a.pending_dropped;
        s.arp.evicted = a.evicted;
        s.arp.expired = a.expired;
        s.arp.mac_conflicts = a.conflicts;
        // Gauges: what is held right now.
        s.arp.neighbors = self.eg.arp.len() as u64;
        s.arp.pending_packets = self.eg.arp.pending_packets() as u64;
        s.ip.reasm_datagrams = self.frag.datagrams_in_progress() as u64;
        s.ip.reasm_bytes = self.frag.bytes_held() as u64;
        self.tcp.stats().for_each(&mut |n, v| s.tcp.push((n, v)));
        s
    }

    /// Memory the stack holds on behalf of peers, for tests and monitoring:
    /// (neighbour entries, packets waiting for ARP, reassembly bytes,
    /// datagrams being reassembled).
    pub fn held_resources(&self) -> (usize, usize, usize, usize) {
        (
            self.eg.arp.len(),
            self.eg.arp.pending_packets(),
            self.frag.bytes_held(),
            self.frag.datagrams_in_progress(),
        )
    }

    /// The MAC the neighbour cache holds for `ip`.
    pub fn neighbor(&self, ip: Ipv4Addr) -> Option<MacAddr> {
        self.eg.arp.peek(ip)
    }

    /// Add an address; it is announced by gratuitous ARP at the next poll.
    pub fn add_address(&mut self, cidr: Ipv4Cidr) {
        if self.iface.addrs.contains(&cidr) {
            return;
        }
        self.iface.addrs.push(cidr);
        self.iface.config_changed();
        if self.config.announce {
            // RFC 5227 §2.3: ANNOUNCE_NUM 2, ANNOUNCE_INTERVAL 2 s; the first
            // goes at the next poll (Instant::ZERO is always due).
            self.eg.announce.push((cidr.addr(), Instant::ZERO, 2));
        }
    }

    pub fn remove_address(&mut self, addr: Ipv4Addr) {
        self.iface.addrs.retain(|c| c.addr() != addr);
        self.iface.config_changed();
        self.eg.announce.retain(|a| a.0 != addr);
    }

    pub fn set_gateway(&mut self, gateway: Option<Ipv4Addr>) -> Result<(), Error> {
        if let Some(gw) = gateway {
            if !self.iface.on_link(gw) {
                return Err(Error::InvalidArgument("gateway is not on a local subnet"));
            }
        }
        self.iface.gateway = gateway;
        self.iface.config_changed();
        Ok(())
    }

    /// Run one bounded round of work. Returns the number of frames received.
    pub fn poll(&mut self, now: Instant, dev: &mut dyn Device) -> io::Result<usize> {
        let budget = self.config.rx_batch;
        let n = dev.receive(now, budget, &mut |frame, tx| {
            self.process_frame(now, frame, tx)
        })?;
        let tx = dev.transmitter();
        self.run_timers(now, tx);
        self.flush_sockets(now, tx);
        self.poll_tcp(now, tx);
        dev.flush(now)?;
        Ok(n)
    }

    /// When `poll` next has timer work to do; `Some(now)` or earlier means
    /// "poll again right away". `None`: only an arriving frame can create work.
    pub fn poll_at(&self) -> Option<Instant> {
        let mut at: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                at = Some(at.map_or(t, |a| a.min(t)));
            }
        };
        if !self.udp_dirty.is_empty() || !self.ping_dirty.is_empty() {
            consider(Some(Instant::ZERO));
        }
        consider(self.eg.arp.next_deadline());
        consider(self.frag.next_deadline());
        consider(self.tcp.poll_at());
        consider(self.eg.announce.iter().map(|a| a.1).min());
        at
    }

    /// How long the caller may sleep before the next `poll`, at most `max`.
    pub fn poll_delay(&self, now: Instant, max: Duration) -> Duration {
        match self.poll_at() {
            Some(t) => t.saturating_since(now).min(max),
            None => max,
        }
    }

    fn random_u16(&mut self) -> u16 {
        self.rng.next_u32() as u16
    }

    // ---- UDP sockets -------------------------------------------------------

    /// Bind a UDP socket. Port 0 picks a random free ephemeral port (RFC 6056);
    /// address 0.0.0.0 receives on every local address.
    pub fn udp_bind(&mut self, local: SocketAddrV4) -> Result<UdpHandle, Error> {
        if self.udp.len() >= self.config.max_sockets {
            return Err(Error::TooManySockets);
        }
        let ip = *local.ip();
        if !ip.is_unspecified() && !self.iface.has_addr(ip) {
            return Err(Error::InvalidArgument(
                "bind address is not one of the stack's addresses",
            ));
        }
        let port = match local.port() {
            0 => self.pick_ephemeral_port()?,
            p if self.udp_ports.contains_key(&p) => return Err(Error::AddrInUse(p)),
            p => p,
        };
        let sock = UdpSocket::new(
            SocketAddrV4::new(ip, port),
            &self.config.udp,
            self.iface.ttl,
        );
        let (index, gen) = self.udp.insert(sock);
        self.udp_ports.insert(port, index);
        Ok(UdpHandle { index, gen })
    }

    /// RFC 6056 §3.3.1 (Algorithm 1): a random start, then a linear search.
    fn pick_ephemeral_port(&mut self) -> Result<u16, Error> {
        let (lo, hi) = self.config.ephemeral_ports;
        let n = (hi - lo) as u32 + 1;
        let start = self.rng.next_u32() % n;
        (0..n)
            .map(|i| lo + ((start + i) % n) as u16)
            .find(|p| !self.udp_ports.contains_key(p))
            .ok_or(Error::NoFreePorts)
    }

    pub fn udp_local_addr(&self, h: UdpHandle) -> Result<SocketAddrV4, Error> {
        self.udp
            .get(h.index, h.gen)
            .map(|s| s.local)
            .ok_or(Error::InvalidHandle)
    }

    pub fn udp_stats(&self, h: UdpHandle) -> Result<UdpSocketStats, Error> {
        self.udp
            .get(h.index, h.gen)
            .map(|s| s.stats.clone())
            .ok_or(Error::InvalidHandle)
    }

    /// Set DF on this socket's datagrams: larger ones then fail with
    /// `MessageTooLong` instead of being fragmented.
    pub fn udp_set_dont_fragment(&mut self, h: UdpHandle, df: bool) -> Result<(), Error> {
        self.udp
            .get_mut(h.index, h.gen)
            .map(|s| s.dont_frag = df)
            .ok_or(Error::InvalidHandle)
    }

    pub fn udp_set_ttl(&mut self, h: UdpHandle, ttl: u8) -> Result<(), Error> {
        if ttl == 0 {
            // RFC 1122 §3.2.1.7: a host MUST NOT send a datagram with TTL 0.
            return Err(Error::InvalidArgument("ttl 0"));
        }
        self.udp
            .get_mut(h.index, h.gen)
            .map(|s| s.ttl = ttl)
            .ok_or(Error::InvalidHandle)
    }

    /// Queue a datagram; it leaves at the next `poll`.
    pub fn udp_send_to(
        &mut self,
        h: UdpHandle,
        data: &[u8],
        dst: SocketAddrV4,
    ) -> Result<(), Error> {
        if dst.port() == 0 {
            return Err(Error::InvalidArgument("destination port 0"));
        }
        let dip = *dst.ip();
        if dip.is_unspecified() || dip.is_multicast() || dip.is_loopback() {
            return Err(Error::InvalidArgument(
                "destination address is unspecified, multicast or loopback",
            ));
        }
        self.iface.route(dip)?;
        let mtu = self.iface.mtu;
        let sock = self
            .udp
            .get_mut(h.index, h.gen)
            .ok_or(Error::InvalidHandle)?;
        if let Some(e) = sock.error.take() {
            return Err(e);
        }
        let max = if sock.dont_frag { mtu - 28 } else { 65535 - 28 };
        if data.len() > max {
            return Err(Error::MessageTooLong {
                len: data.len(),
                max,
            });
        }
        let was_empty = sock.tx.is_empty();
        if !sock.tx.push(dst, data) {
            return Err(Error::WouldBlock);
        }
        if was_empty {
            self.udp_dirty.push(h.index);
        }
        Ok(())
    }

    /// Take the next datagram. A datagram longer than `buf` is truncated, as
    /// `recvfrom(2)` does; the returned length is the bytes copied.
    pub fn udp_recv_from(
        &mut self,
        h: UdpHandle,
        buf: &mut [u8],
    ) -> Result<(usize, SocketAddrV4), Error> {
        self.udp_recv_with(h, |data, from| {
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            (n, from)
        })
    }

    /// Look at the next datagram in place, without a copy; it is consumed.
    pub fn udp_recv_with<R>(
        &mut self,
        h: UdpHandle,
        f: impl FnOnce(&[u8], SocketAddrV4) -> R,
    ) -> Result<R, Error> {
        let sock = self
            .udp
            .get_mut(h.index, h.gen)
            .ok_or(Error::InvalidHandle)?;
        let Some((from, data)) = sock.rx.front() else {
            return Err(sock.error.take().unwrap_or(Error::WouldBlock));
        };
        let r = f(data, from);
        sock.rx.pop_front();
        Ok(r)
    }

    /// Whether a datagram is waiting.
    pub fn udp_can_recv(&self, h: UdpHandle) -> bool {
        self.udp
            .get(h.index, h.gen)
            .is_some_and(|s| !s.rx.is_empty())
    }

    /// Close the socket; datagrams not yet sent are discarded.
    pub fn udp_close(&mut self, h: UdpHandle) -> Result<(), Error> {
        let sock = self
            .udp
            .remove(h.index, h.gen)
            .ok_or(Error::InvalidHandle)?;
        self.udp_ports.remove(&sock.local.port());
        self.udp_dirty.retain(|&i| i != h.index);
        Ok(())
    }

    // ---- TCP -----------------------------------------------------------------

    /// The TCP engine: listeners, connections and their calls (`accept`,
    /// `send`, `recv`, `close`, `readiness`, `conn_stats`, ...).
    pub fn tcp(&mut self) -> &mut Tcp {
        &mut self.tcp
    }

    pub fn tcp_ref(&self) -> &Tcp {
        &self.tcp
    }

    /// Listen on `port` of every local address.
    pub fn tcp_listen(&mut self, port: u16, backlog: usize) -> Result<ListenHandle, TcpError> {
        self.tcp
            .listen(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port), backlog)
    }

    /// Open a connection to `remote` from the local address on its subnet
    /// and an ephemeral port (RFC 6056).
    pub fn tcp_connect(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
    ) -> Result<ConnHandle, TcpError> {
        if self.iface.route(*remote.ip()).is_err() {
            return Err(TcpError::NetUnreachable);
        }
        let src = self
            .iface
            .source_for(*remote.ip())
            .ok_or(TcpError::InvalidArgument("the stack has no address"))?;
        self.tcp.connect(now, SocketAddrV4::new(src, 0), remote)
    }

    // ---- Ping sockets ------------------------------------------------------

    /// Open a ping socket with a random, unused echo identifier.
    pub fn ping_open(&mut self) -> Result<PingHandle, Error> {
        if self.pings.len() >= self.config.max_sockets.min(65536) {
            return Err(Error::TooManySockets);
        }
        let ident = loop {
            let id = self.random_u16();
            if !self.ping_idents.contains_key(&id) {
                break id;
            }
        };
        let (index, gen) = self.pings.insert(PingSocket::new(ident));
        self.ping_idents.insert(ident, index);
        Ok(PingHandle { index, gen })
    }

    pub fn ping_ident(&self, h: PingHandle) -> Result<u16, Error> {
        self.pings
            .get(h.index, h.gen)
            .map(|s| s.ident())
            .ok_or(Error::InvalidHandle)
    }

    /// Queue an echo request with `size` payload bytes; RTT is measured from
    /// the poll that sends it. Sizes above the MTU are fragmented unless
    /// `dont_frag`.
    pub fn ping_send(
        &mut self,
        h: PingHandle,
        dst: Ipv4Addr,
        seq: u16,
        size: usize,
        dont_frag: bool,
    ) -> Result<(), Error> {
        if dst.is_unspecified() || dst.is_loopback() {
            return Err(Error::InvalidArgument(
                "ping destination is unspecified or loopback",
            ));
        }
        self.iface.route(dst)?;
        let max = if dont_frag {
            self.iface.mtu - 28
        } else {
            65535 - 28
        };
        if size > max {
            return Err(Error::MessageTooLong { len: size, max });
        }
        let sock = self
            .pings
            .get_mut(h.index, h.gen)
            .ok_or(Error::InvalidHandle)?;
        let was_empty = sock.to_send.is_empty();
        if !sock.queue(PingRequest {
            dst,
            seq,
            size,
            dont_frag,
        }) {
            return Err(Error::WouldBlock);
        }
        if was_empty {
            self.ping_dirty.push(h.index);
        }
        Ok(())
    }

    /// The next reply, duplicate or error, if any.
    pub fn ping_recv(&mut self, h: PingHandle) -> Result<Option<PingEvent>, Error> {
        self.pings
            .get_mut(h.index, h.gen)
            .map(|s| s.next_event())
            .ok_or(Error::InvalidHandle)
    }

    pub fn ping_close(&mut self, h: PingHandle) -> Result<(), Error> {
        let s = self
            .pings
            .remove(h.index, h.gen)
            .ok_or(Error::InvalidHandle)?;
        self.ping_idents.remove(&s.ident());
        self.ping_dirty.retain(|&i| i != h.index);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
