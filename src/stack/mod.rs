//! The stack: its interfaces, the FIB, the sockets, and the poll loop.
//!
//! `Stack::poll(now, dev)` does a bounded amount of work and returns: it
//! drains at most one RX batch, carries each frame to completion (answers
//! included, written straight into TX frames), runs due timers, sends what
//! sockets queued, and flushes the device once. `poll_at` says when the next
//! timer is due so the caller can sleep, spin or block on the device.
//!
//! A stack has one interface ([`Stack::new`]) or several
//! ([`Stack::add_interface`]); with several, [`Stack::poll_devices`] polls
//! one device per interface in turn, and with forwarding on
//! ([`Stack::set_forwarding`]) a frame that arrives on one interface for a
//! destination routed out of another is forwarded (RFC 1812,
//! `route::forward`).

mod dhcp;
mod iface;
mod input;
pub(crate) mod output;
mod slab;
mod sockets;
pub mod stats;

use crate::arp::ArpConfig;
use crate::dev::Device;
use crate::eth::MacAddr;
use crate::icmp::ping::{PingEvent, PingRequest, PingSocket};
use crate::icmp::ratelimit::TokenBucket;
use crate::ip::cidr::Ipv4Cidr;
use crate::ip::frag::{Reassembler, ReassemblyConfig};
use crate::route::fib::{Fib, NextHop, Route, RouteKind};
use crate::tcp::{ConnHandle, ListenHandle, Tcp, TcpConfig, TcpError};
use crate::time::{Duration, Instant};
use crate::udp::socket::{UdpConfig, UdpSocket, UdpSocketStats};
use core::net::{Ipv4Addr, SocketAddrV4};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::io;

pub use dhcp::DhcpEvent;
pub(crate) use iface::{DeviceTx, Interface, One};
pub use iface::{IfaceId, IfaceStats, InterfaceConfig, RpFilter, Transmitters};
use sockets::{PingTable, UdpTable};
pub use stats::Stats;

/// Interfaces one stack can hold.
pub const MAX_INTERFACES: usize = 256;

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
    /// The route leaves by an interface that has no device in this poll.
    NoDevice(IfaceId),
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
            Error::NoDevice(i) => write!(f, "interface {i} has no device to send on"),
        }
    }
}
impl std::error::Error for Error {}

/// The egress of a packet we originate: its interface's MTU and the
/// source address to use.
struct OutRoute {
    mtu: usize,
    src: Option<Ipv4Addr>,
}

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

/// Output-side state shared by every interface: IP identification, the
/// ICMP error rate limit, the route the TCP output last used.
#[derive(Debug)]
pub(crate) struct Egress {
    pub next_ident: u16,
    pub icmp_errors: TokenBucket,
    /// Reused buffer for payloads that must be fragmented.
    pub scratch: Vec<u8>,
    pub arp_actions: Vec<crate::arp::cache::TimerAction>,
    /// TTL of packets we originate.
    pub ttl: u8,
    /// Whether packets for others are forwarded (RFC 1812) or dropped (a
    /// host, RFC 1122 §3.3.4.2's default).
    pub forwarding: bool,
    /// The last unicast destination [`Out::unicast_next_hop`] answered, with
    /// its interface and next hop; cleared whenever a route or an address
    /// changes.
    pub tx_route: Option<TxRoute>,
}

/// A route [`Out::unicast_next_hop`](output::Out::unicast_next_hop)
/// remembers: `dst` leaves by interface `iface` to next hop `hop`. The
/// addresses are kept as `u32`s so the memo is compared and read in whole
/// aligned words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TxRoute {
    pub dst: u32,
    pub hop: u32,
    pub iface: IfaceId,
}

pub struct Stack {
    pub(crate) ifs: Vec<Interface>,
    pub(crate) fib: Fib,
    pub(crate) eg: Egress,
    pub(crate) stats: Stats,
    frag: Reassembler,
    /// Reused buffer that holds a reassembled datagram while it is delivered.
    reasm_buf: Vec<u8>,
    udp: UdpTable,
    pings: PingTable,
    tcp: Tcp,
    rng: ChaCha20Rng,
    config: Config,
    started: bool,
    /// The interface and Ethernet source of the frame being processed.
    rx_iface: IfaceId,
    rx_src_mac: MacAddr,
    dhcp_events: std::collections::VecDeque<DhcpEvent>,
}

impl core::fmt::Debug for Stack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Stack")
            .field("interfaces", &self.ifs)
            .field("udp_sockets", &self.udp.socks.len())
            .finish_non_exhaustive()
    }
}

fn check_link(mtu: usize, mac: MacAddr, vlan: Option<u16>) -> Result<(), Error> {
    if mtu < 68 {
        return Err(Error::InvalidConfig(
            "mtu below 68, the IPv4 minimum (RFC 791)",
        ));
    }
    if mtu > 65535 {
        return Err(Error::InvalidConfig("mtu above 65535"));
    }
    if !mac.is_unicast() || mac == MacAddr::ZERO {
        return Err(Error::InvalidConfig("mac must be a unicast address"));
    }
    if vlan.is_some_and(|v| v == 0 || v >= 4095) {
        return Err(Error::InvalidConfig("vlan id must be 1..=4094"));
    }
    Ok(())
}

impl Stack {
    pub fn new(config: Config) -> Result<Stack, Error> {
        check_link(config.mtu, config.mac, config.vlan)?;
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
            next_ident: rng.next_u32() as u16,
            icmp_errors: TokenBucket::new(config.icmp_error_rate, config.icmp_error_burst),
            scratch: Vec::new(),
            arp_actions: Vec::new(),
            ttl: config.ttl,
            forwarding: false,
            tx_route: None,
        };
        let first = InterfaceConfig {
            mtu: config.mtu,
            vlan: config.vlan,
            ..InterfaceConfig::new("if0", config.mac, Vec::new())
        };
        let mut stack = Stack {
            ifs: vec![Interface::new(&first, &config.arp)],
            fib: Fib::new(),
            eg,
            stats: Stats::default(),
            frag: Reassembler::new(config.reassembly.clone()),
            reasm_buf: Vec::new(),
            udp: UdpTable::default(),
            pings: PingTable::default(),
            tcp: Tcp::new(tcp_config, tcp_seed),
            rng,
            config,
            started: false,
            rx_iface: IfaceId(0),
            rx_src_mac: MacAddr::ZERO,
            dhcp_events: std::collections::VecDeque::new(),
        };
        for a in stack.config.addrs.clone() {
            stack.add_address(a);
        }
        if let Some(gw) = stack.config.gateway {
            stack.set_gateway(Some(gw))?;
        }
        Ok(stack)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
    /// Interface 0's MAC.
    pub fn mac(&self) -> MacAddr {
        self.ifs[0].mac
    }
    /// Interface 0's addresses.
    pub fn addresses(&self) -> &[Ipv4Cidr] {
        &self.ifs[0].addrs
    }
    /// Interface 0's MTU.
    pub fn mtu(&self) -> usize {
        self.ifs[0].mtu
    }

    // ---- Interfaces and routes ---------------------------------------------

    /// Add an interface; its addresses get connected and local routes. The
    /// interface 0 of [`Stack::new`] can be renamed and reconfigured with
    /// [`Stack::configure_interface`].
    pub fn add_interface(&mut self, c: InterfaceConfig) -> Result<IfaceId, Error> {
        check_link(c.mtu, c.mac, c.vlan)?;
        if self.ifs.len() >= MAX_INTERFACES {
            return Err(Error::InvalidConfig("too many interfaces"));
        }
        if self.ifs.iter().any(|i| i.name == c.name) {
            return Err(Error::InvalidArgument("an interface of that name exists"));
        }
        let id = IfaceId(self.ifs.len() as u16);
        self.ifs.push(Interface::new(&c, &self.config.arp));
        for a in c.addrs {
            self.add_address_on(id, a)?;
        }
        Ok(id)
    }

    /// Set interface `id`'s name, MTU, VLAN and router features (its
    /// addresses are managed with [`Stack::add_address_on`]).
    pub fn configure_interface(&mut self, id: IfaceId, c: &InterfaceConfig) -> Result<(), Error> {
        check_link(c.mtu, c.mac, c.vlan)?;
        if self
            .ifs
            .iter()
            .enumerate()
            .any(|(i, f)| i != id.index() && f.name == c.name)
        {
            return Err(Error::InvalidArgument("an interface of that name exists"));
        }
        let f = self.iface_mut(id)?;
        f.name = c.name.clone();
        f.mac = c.mac;
        f.mtu = c.mtu;
        f.vlan = c.vlan;
        f.proxy_arp = c.proxy_arp;
        f.rp_filter = c.rp_filter;
        f.forward = c.forward;
        self.routes_changed();
        Ok(())
    }

    fn iface_mut(&mut self, id: IfaceId) -> Result<&mut Interface, Error> {
        self.ifs
            .get_mut(id.index())
            .ok_or(Error::InvalidArgument("no such interface"))
    }

    pub fn interface_count(&self) -> usize {
        self.ifs.len()
    }

    /// The interface called `name`.
    pub fn interface_by_name(&self, name: &str) -> Option<IfaceId> {
        self.ifs
            .iter()
            .position(|i| i.name == name)
            .map(|i| IfaceId(i as u16))
    }

    pub fn interface_name(&self, id: IfaceId) -> Option<&str> {
        self.ifs.get(id.index()).map(|i| i.name.as_str())
    }

    pub fn interface_addresses(&self, id: IfaceId) -> &[Ipv4Cidr] {
        self.ifs.get(id.index()).map_or(&[], |i| &i.addrs)
    }

    pub fn interface_mac(&self, id: IfaceId) -> Option<MacAddr> {
        self.ifs.get(id.index()).map(|i| i.mac)
    }

    pub fn interface_mtu(&self, id: IfaceId) -> Option<usize> {
        self.ifs.get(id.index()).map(|i| i.mtu)
    }

    pub fn interface_stats(&self, id: IfaceId) -> Option<IfaceStats> {
        self.ifs.get(id.index()).map(|i| i.stats.clone())
    }

    /// Forward packets addressed to others between interfaces (RFC 1812),
    /// instead of dropping them as a host does (the default).
    pub fn set_forwarding(&mut self, on: bool) {
        self.eg.forwarding = on;
    }

    pub fn forwarding(&self) -> bool {
        self.eg.forwarding
    }

    /// Add a static route. With `via`, the gateway must be on the subnet of
    /// an interface (of `iface`, when given); without it the prefix is on
    /// the link of `iface`, which must then be given.
    pub fn add_route(
        &mut self,
        to: Ipv4Cidr,
        via: Option<Ipv4Addr>,
        iface: Option<IfaceId>,
        metric: u32,
    ) -> Result<(), Error> {
        if let Some(i) = iface {
            self.iface_mut(i)?;
        }
        let iface = match (via, iface) {
            (Some(gw), Some(i)) if self.ifs[i.index()].on_link(gw) => i,
            (Some(_), Some(_)) => {
                return Err(Error::InvalidArgument(
                    "gateway is not on a subnet of the route's interface",
                ))
            }
            (Some(gw), None) => self
                .ifs
                .iter()
                .position(|f| f.on_link(gw))
                .map(|i| IfaceId(i as u16))
                .ok_or(Error::InvalidArgument("gateway is not on a local subnet"))?,
            (None, Some(i)) => i,
            (None, None) => {
                return Err(Error::InvalidArgument(
                    "a route needs a gateway or an interface",
                ))
            }
        };
        if via.is_some_and(|gw| self.is_local(gw)) {
            return Err(Error::InvalidArgument(
                "gateway is one of our own addresses",
            ));
        }
        self.fib
            .add(Route {
                to,
                via,
                iface,
                metric,
                kind: RouteKind::Static,
            })
            .map_err(|_| Error::InvalidArgument("that route exists already"))?;
        self.routes_changed();
        Ok(())
    }

    /// Remove the static routes to `to` (with that gateway, when given);
    /// returns how many went.
    pub fn remove_route(&mut self, to: Ipv4Cidr, via: Option<Ipv4Addr>) -> usize {
        let (net, len) = (to.network(), to.prefix_len());
        let n = self.fib.remove_where(|r| {
            r.kind == RouteKind::Static
                && r.to.network() == net
                && r.to.prefix_len() == len
                && via.is_none_or(|v| r.via == Some(v))
        });
        self.routes_changed();
        n
    }

    /// Remove every static route.
    pub fn clear_static_routes(&mut self) {
        self.fib.remove_where(|r| r.kind == RouteKind::Static);
        self.routes_changed();
    }

    /// Every route: local, connected and static, by prefix.
    pub fn routes(&self) -> Vec<Route> {
        self.fib.routes()
    }

    /// What the FIB answers for `dst`.
    pub fn route_lookup(&self, dst: Ipv4Addr) -> Option<NextHop> {
        self.fib.lookup(dst)
    }

    /// The routing table as `ip route` would list it, one route a line.
    pub fn format_routes(&self) -> String {
        let mut s = String::new();
        let selected = self.fib.selected();
        for r in self.fib.routes() {
            let name = self.interface_name(r.iface).unwrap_or("?");
            let mark = if selected.contains(&r) { "*" } else { " " };
            let via = r.via.map(|v| format!(" via {v}")).unwrap_or_default();
            let net = Ipv4Cidr::new(r.to.network(), r.to.prefix_len())
                .expect("len ≤ 32")
                .to_string();
            s += &format!(
                "{mark} {net:<18}{via:<20} dev {name:<10} {:<9} metric {}\n",
                r.kind.as_str(),
                r.metric
            );
        }
        s
    }

    /// Whether `ip` is one of the stack's addresses, on any interface.
    #[inline]
    pub fn is_local(&self, ip: Ipv4Addr) -> bool {
        let w = u32::from(ip);
        self.ifs.iter().any(|i| i.has_addr_word(w))
    }

    /// Forget every verdict that depends on the addresses or routes.
    fn routes_changed(&mut self) {
        for i in &mut self.ifs {
            i.rx_accepted = None;
        }
        self.eg.tx_route = None;
    }

    /// Counters, including the reassembler's and every neighbour cache's.
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
        for i in &self.ifs {
            let a = i.arp.stats();
            s.arp.resolved += a.resolved;
            s.arp.resolution_failed += a.failed;
            s.arp.pending_dropped += a.pending_dropped;
            s.arp.evicted += a.evicted;
            s.arp.expired += a.expired;
            s.arp.mac_conflicts += a.conflicts;
            // Gauges: what is held right now.
            s.arp.neighbors += i.arp.len() as u64;
            s.arp.pending_packets += i.arp.pending_packets() as u64;
        }
        s.ip.reasm_datagrams = self.frag.datagrams_in_progress() as u64;
        s.ip.reasm_bytes = self.frag.bytes_held() as u64;
        self.tcp.stats().for_each(&mut |n, v| s.tcp.push((n, v)));
        s
    }

    /// Memory the stack holds on behalf of peers, for tests and monitoring:
    /// (neighbour entries, packets waiting for ARP, reassembly bytes,
    /// datagrams being reassembled), over every interface.
    pub fn held_resources(&self) -> (usize, usize, usize, usize) {
        (
            self.ifs.iter().map(|i| i.arp.len()).sum(),
            self.ifs.iter().map(|i| i.arp.pending_packets()).sum(),
            self.frag.bytes_held(),
            self.frag.datagrams_in_progress(),
        )
    }

    /// The MAC a neighbour cache holds for `ip` (interface 0's first).
    pub fn neighbor(&self, ip: Ipv4Addr) -> Option<MacAddr> {
        self.ifs.iter().find_map(|i| i.arp.peek(ip))
    }

    /// Add an address to interface 0; it is announced by gratuitous ARP at
    /// the next poll.
    pub fn add_address(&mut self, cidr: Ipv4Cidr) {
        // Interface 0 always exists.
        let _ = self.add_address_on(IfaceId(0), cidr);
    }

    /// Add an address to an interface, with its local and connected routes;
    /// it is announced by gratuitous ARP at the next poll.
    pub fn add_address_on(&mut self, id: IfaceId, cidr: Ipv4Cidr) -> Result<(), Error> {
        self.add_address_with(id, cidr, self.config.announce)
    }

    fn add_address_with(
        &mut self,
        id: IfaceId,
        cidr: Ipv4Cidr,
        announce: bool,
    ) -> Result<(), Error> {
        let f = self.iface_mut(id)?;
        if f.addrs.contains(&cidr) {
            return Ok(());
        }
        f.addrs.push(cidr);
        f.addrs_changed();
        if announce {
            // RFC 5227 §2.3: ANNOUNCE_NUM 2, ANNOUNCE_INTERVAL 2 s; the first
            // goes at the next poll (Instant::ZERO is always due).
            f.announce.push((cidr.addr(), Instant::ZERO, 2));
        }
        let host = Ipv4Cidr::new(cidr.addr(), 32).expect("/32");
        for (to, kind) in [(host, RouteKind::Local), (cidr, RouteKind::Connected)] {
            // The same subnet twice on one interface is one route.
            let _ = self.fib.add(Route {
                to,
                via: None,
                iface: id,
                metric: 0,
                kind,
            });
        }
        self.routes_changed();
        Ok(())
    }

    /// Remove an address from interface 0.
    pub fn remove_address(&mut self, addr: Ipv4Addr) {
        let _ = self.remove_address_on(IfaceId(0), addr);
    }

    /// Remove an address from an interface, with the routes it brought.
    pub fn remove_address_on(&mut self, id: IfaceId, addr: Ipv4Addr) -> Result<(), Error> {
        let f = self.iface_mut(id)?;
        let gone: Vec<Ipv4Cidr> = f
            .addrs
            .iter()
            .copied()
            .filter(|c| c.addr() == addr)
            .collect();
        f.addrs.retain(|c| c.addr() != addr);
        f.addrs_changed();
        f.announce.retain(|a| a.0 != addr);
        let left = f.addrs.clone();
        for c in gone {
            let subnet_left = left
                .iter()
                .any(|l| l.network() == c.network() && l.prefix_len() == c.prefix_len());
            self.fib.remove_where(|r| {
                r.iface == id
                    && match r.kind {
                        RouteKind::Local => r.to.network() == addr,
                        RouteKind::Connected => {
                            !subnet_left
                                && r.to.network() == c.network()
                                && r.to.prefix_len() == c.prefix_len()
                        }
                        RouteKind::Static => false,
                    }
            });
        }
        self.routes_changed();
        Ok(())
    }

    /// Set or clear interface 0's default gateway: the static default
    /// route.
    pub fn set_gateway(&mut self, gateway: Option<Ipv4Addr>) -> Result<(), Error> {
        if let Some(gw) = gateway {
            if !self.ifs[0].on_link(gw) {
                return Err(Error::InvalidArgument("gateway is not on a local subnet"));
            }
        }
        let default = Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0).expect("/0");
        self.fib.remove_where(|r| {
            r.kind == RouteKind::Static && r.to.prefix_len() == 0 && r.iface == IfaceId(0)
        });
        if let Some(gw) = gateway {
            self.add_route(default, Some(gw), Some(IfaceId(0)), 0)?;
        }
        self.routes_changed();
        Ok(())
    }

    /// Run one bounded round of work on a one-device stack (interface 0).
    /// Returns the number of frames received.
    pub fn poll(&mut self, now: Instant, dev: &mut dyn Device) -> io::Result<usize> {
        let budget = self.config.rx_batch;
        let n = dev.receive(now, budget, &mut |frame, tx| {
            self.process_frame(now, frame, tx)
        })?;
        self.poll_output(now, &mut One(dev.transmitter()));
        dev.flush(now)?;
        Ok(n)
    }

    /// The part of a poll that needs no received frame: due timers (ARP,
    /// announcements, reassembly, TCP) and what sockets have queued, sent
    /// through `tx`. For callers that hand frames in with
    /// [`Stack::process_frame_on`] themselves.
    pub fn poll_output(&mut self, now: Instant, tx: &mut dyn Transmitters) {
        self.run_dhcp(now, tx);
        self.run_timers(now, tx);
        self.flush_sockets(now, tx);
        self.poll_tcp(now, tx);
    }

    /// Run one bounded round of work over one device per interface
    /// (`devs[i]` is interface `i`'s): each device in turn hands up to
    /// `rx_batch` frames, then timers run, sockets send, and every device
    /// is flushed once. Returns the number of frames received.
    pub fn poll_devices<D: Device>(&mut self, now: Instant, devs: &mut [D]) -> io::Result<usize> {
        let budget = self.config.rx_batch;
        let mut n = 0;
        for at in 0..devs.len().min(self.ifs.len()) {
            let (before, rest) = devs.split_at_mut(at);
            let (dev, after) = rest.split_first_mut().expect("at < len");
            let id = IfaceId(at as u16);
            n += dev.receive(now, budget, &mut |frame, tx| {
                let mut txs = DeviceTx {
                    at,
                    current: Some(tx),
                    before: &mut *before,
                    after: &mut *after,
                };
                self.process_frame_on(now, id, frame, &mut txs)
            })?;
        }
        let mut txs = DeviceTx {
            at: devs.len(),
            current: None,
            before: &mut *devs,
            after: &mut [],
        };
        self.poll_output(now, &mut txs);
        let mut first_error = None;
        for d in devs.iter_mut() {
            if let Err(e) = d.flush(now) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(n),
        }
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
        if !self.udp.dirty.is_empty() || !self.pings.dirty.is_empty() {
            consider(Some(Instant::ZERO));
        }
        for i in &self.ifs {
            consider(i.dhcp.as_ref().and_then(|c| c.poll_at()));
            consider(i.dhcp_server.as_ref().and_then(|s| s.server.poll_at()));
            consider(i.arp.next_deadline());
            consider(i.announce.iter().map(|a| a.1).min());
        }
        consider(self.frag.next_deadline());
        consider(self.tcp.poll_at());
        at
    }

    /// How long the caller may sleep before the next `poll`, at most `max`.
    pub fn poll_delay(&self, now: Instant, max: Duration) -> Duration {
        match self.poll_at() {
            Some(t) => t.saturating_since(now).min(max),
            None => max,
        }
    }

    /// Where a packet we originate to `dst` goes.
    fn out_route(&self, dst: Ipv4Addr) -> Result<OutRoute, Error> {
        let (iface, _) = output::route(&self.ifs, &self.fib, dst)?;
        let f = &self.ifs[iface.index()];
        Ok(OutRoute {
            mtu: f.mtu,
            src: f.source_for(dst).or_else(|| {
                self.ifs
                    .iter()
                    .find_map(|i| i.addrs.first())
                    .map(|c| c.addr())
            }),
        })
    }

    fn random_u16(&mut self) -> u16 {
        self.rng.next_u32() as u16
    }

    // ---- UDP sockets -------------------------------------------------------

    /// Bind a UDP socket. Port 0 picks a random free ephemeral port (RFC 6056);
    /// address 0.0.0.0 receives on every local address.
    pub fn udp_bind(&mut self, local: SocketAddrV4) -> Result<UdpHandle, Error> {
        if self.udp.socks.len() >= self.config.max_sockets {
            return Err(Error::TooManySockets);
        }
        let ip = *local.ip();
        if !ip.is_unspecified() && !self.is_local(ip) {
            return Err(Error::InvalidArgument(
                "bind address is not one of the stack's addresses",
            ));
        }
        let port = match local.port() {
            0 => self.pick_ephemeral_port()?,
            p if self.udp.ports.contains_key(&p) => return Err(Error::AddrInUse(p)),
            p => p,
        };
        let sock = UdpSocket::new(SocketAddrV4::new(ip, port), &self.config.udp, self.eg.ttl);
        let (index, gen) = self.udp.insert(sock);
        Ok(UdpHandle { index, gen })
    }

    /// RFC 6056 §3.3.1 (Algorithm 1): a random start, then a linear search.
    fn pick_ephemeral_port(&mut self) -> Result<u16, Error> {
        let (lo, hi) = self.config.ephemeral_ports;
        let n = (hi - lo) as u32 + 1;
        let start = self.rng.next_u32() % n;
        (0..n)
            .map(|i| lo + ((start + i) % n) as u16)
            .find(|p| !self.udp.ports.contains_key(p))
            .ok_or(Error::NoFreePorts)
    }

    pub fn udp_local_addr(&self, h: UdpHandle) -> Result<SocketAddrV4, Error> {
        self.udp
            .socks
            .get(h.index, h.gen)
            .map(|s| s.local)
            .ok_or(Error::InvalidHandle)
    }

    pub fn udp_stats(&self, h: UdpHandle) -> Result<UdpSocketStats, Error> {
        self.udp
            .socks
            .get(h.index, h.gen)
            .map(|s| s.stats.clone())
            .ok_or(Error::InvalidHandle)
    }

    /// Set DF on this socket's datagrams: larger ones then fail with
    /// `MessageTooLong` instead of being fragmented.
    pub fn udp_set_dont_fragment(&mut self, h: UdpHandle, df: bool) -> Result<(), Error> {
        self.udp
            .socks
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
            .socks
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
        let mtu = self.out_route(dip)?.mtu;
        let sock = self
            .udp
            .socks
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
            self.udp.dirty.push(h.index);
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
            .socks
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
            .socks
            .get(h.index, h.gen)
            .is_some_and(|s| !s.rx.is_empty())
    }

    /// Close the socket; datagrams not yet sent are discarded.
    pub fn udp_close(&mut self, h: UdpHandle) -> Result<(), Error> {
        self.udp
            .remove(h.index, h.gen)
            .ok_or(Error::InvalidHandle)?;
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
        let Ok(route) = self.out_route(*remote.ip()) else {
            return Err(TcpError::NetUnreachable);
        };
        let src = route
            .src
            .ok_or(TcpError::InvalidArgument("the stack has no address"))?;
        self.tcp.connect(now, SocketAddrV4::new(src, 0), remote)
    }

    // ---- Ping sockets ------------------------------------------------------

    /// Open a ping socket with a random, unused echo identifier.
    pub fn ping_open(&mut self) -> Result<PingHandle, Error> {
        if self.pings.socks.len() >= self.config.max_sockets.min(65536) {
            return Err(Error::TooManySockets);
        }
        let ident = loop {
            let id = self.random_u16();
            if !self.pings.idents.contains_key(&id) {
                break id;
            }
        };
        let (index, gen) = self.pings.insert(PingSocket::new(ident));
        Ok(PingHandle { index, gen })
    }

    pub fn ping_ident(&self, h: PingHandle) -> Result<u16, Error> {
        self.pings
            .socks
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
        let mtu = self.out_route(dst)?.mtu;
        let max = if dont_frag { mtu - 28 } else { 65535 - 28 };
        if size > max {
            return Err(Error::MessageTooLong { len: size, max });
        }
        let sock = self
            .pings
            .socks
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
            self.pings.dirty.push(h.index);
        }
        Ok(())
    }

    /// The next reply, duplicate or error, if any.
    pub fn ping_recv(&mut self, h: PingHandle) -> Result<Option<PingEvent>, Error> {
        self.pings
            .socks
            .get_mut(h.index, h.gen)
            .map(|s| s.next_event())
            .ok_or(Error::InvalidHandle)
    }

    pub fn ping_close(&mut self, h: PingHandle) -> Result<(), Error> {
        self.pings
            .remove(h.index, h.gen)
            .ok_or(Error::InvalidHandle)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
