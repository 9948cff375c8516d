//! Per-interface state: what one link of the stack is (MAC, addresses,
//! MTU, VLAN, the router features switched on for it), the neighbour cache
//! that belongs to it, and its counters. Everything stack-wide (the FIB, IP
//! identification, ICMP rate limit, reassembly, sockets) lives in `Stack`.

use crate::arp::{ArpConfig, NeighborCache};
use crate::dev::{Device, Transmit};
use crate::eth::MacAddr;
use crate::ip::cidr::Ipv4Cidr;
use crate::time::Instant;
use core::net::Ipv4Addr;

/// An interface of a [`Stack`](super::Stack): its index in the order the
/// interfaces were added, which is also the index of its device in
/// [`Stack::poll_devices`](super::Stack::poll_devices). The interface of
/// [`Stack::new`](super::Stack::new) is `IfaceId(0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IfaceId(pub u16);

impl IfaceId {
    #[inline]
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl core::fmt::Display for IfaceId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "if{}", self.0)
    }
}

/// Reverse-path filtering of forwarded packets (RFC 3704 §2): `Strict`
/// forwards a packet only if the route back to its source leaves by the
/// interface it came in on, `Loose` only if there is a route back at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RpFilter {
    Strict,
    #[default]
    Loose,
    Off,
}

impl RpFilter {
    pub fn as_str(self) -> &'static str {
        match self {
            RpFilter::Strict => "strict",
            RpFilter::Loose => "loose",
            RpFilter::Off => "off",
        }
    }
}

/// One interface as [`Stack::add_interface`](super::Stack::add_interface)
/// takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// The name routes and counters use ("lan", "wan").
    pub name: String,
    pub mac: MacAddr,
    pub addrs: Vec<Ipv4Cidr>,
    /// IP MTU of the link.
    pub mtu: usize,
    /// Accept and send only frames tagged with this 802.1Q VLAN ID.
    pub vlan: Option<u16>,
    /// Answer ARP requests for addresses routed out of another interface
    /// (RFC 1027).
    pub proxy_arp: bool,
    pub rp_filter: RpFilter,
    /// Whether packets arriving here may be forwarded (when the stack
    /// forwards at all).
    pub forward: bool,
}

impl InterfaceConfig {
    pub fn new(name: &str, mac: MacAddr, addrs: Vec<Ipv4Cidr>) -> InterfaceConfig {
        InterfaceConfig {
            name: name.to_string(),
            mac,
            addrs,
            mtu: 1500,
            vlan: None,
            proxy_arp: false,
            rp_filter: RpFilter::Loose,
            forward: true,
        }
    }
}

/// Counters of one interface; the stack-wide ones are in
/// [`Stats`](super::Stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IfaceStats {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    /// Packets that came in here and were forwarded.
    pub forwarded_in: u64,
    /// Packets forwarded out of here.
    pub forwarded_out: u64,
    /// Packets that came in here and could not be forwarded.
    pub forward_dropped: u64,
}

/// An interface as the input and output paths consult it.
#[derive(Debug)]
pub(crate) struct Interface {
    pub name: String,
    pub mac: MacAddr,
    pub addrs: Vec<Ipv4Cidr>,
    pub mtu: usize,
    pub vlan: Option<u16>,
    pub proxy_arp: bool,
    pub rp_filter: RpFilter,
    pub forward: bool,
    /// The last (source, destination) pair the input path accepted as a
    /// unicast datagram to us from a plausible source, so a flow's next
    /// packets skip the address checks; cleared when addresses or routes
    /// change.
    pub rx_accepted: Option<(Ipv4Addr, Ipv4Addr)>,
    /// The addresses, and the directed broadcasts of their subnets, as
    /// words: the per-packet checks compare words instead of deriving each
    /// subnet's broadcast from its prefix length every time. Kept by
    /// [`Interface::addrs_changed`].
    words: Vec<u32>,
    bcasts: Vec<u32>,
    pub arp: NeighborCache,
    /// Addresses still to announce (RFC 5227 §2.3): (address, when, left).
    pub announce: Vec<(Ipv4Addr, Instant, u8)>,
    pub stats: IfaceStats,
    /// The interface's DHCP client, when it takes its address from one.
    pub dhcp: Option<Box<crate::dhcp::DhcpClient>>,
    /// The DHCP server answering on this interface, if any.
    pub dhcp_server: Option<Box<super::dhcp::ServerSlot>>,
}

impl Interface {
    pub fn new(c: &InterfaceConfig, arp: &ArpConfig) -> Interface {
        Interface {
            name: c.name.clone(),
            mac: c.mac,
            addrs: Vec::new(),
            mtu: c.mtu,
            vlan: c.vlan,
            proxy_arp: c.proxy_arp,
            rp_filter: c.rp_filter,
            forward: c.forward,
            rx_accepted: None,
            words: Vec::new(),
            bcasts: Vec::new(),
            arp: NeighborCache::new(arp.clone()),
            announce: Vec::new(),
            stats: IfaceStats::default(),
            dhcp: None,
            dhcp_server: None,
        }
    }

    /// Rebuild the address words after `addrs` changed.
    pub fn addrs_changed(&mut self) {
        self.words = self.addrs.iter().map(|c| u32::from(c.addr())).collect();
        self.bcasts = self
            .addrs
            .iter()
            .filter_map(|c| c.broadcast())
            .map(u32::from)
            .collect();
    }

    #[inline]
    pub fn has_addr(&self, ip: Ipv4Addr) -> bool {
        self.words.contains(&u32::from(ip))
    }
    pub fn on_link(&self, ip: Ipv4Addr) -> bool {
        self.addrs.iter().any(|c| c.contains(ip))
    }
    /// The limited broadcast or the directed broadcast of one of this
    /// interface's subnets.
    #[inline]
    pub fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        let w = u32::from(ip);
        w == u32::MAX || self.bcasts.contains(&w)
    }

    /// A directed broadcast of one of this interface's subnets.
    #[inline]
    pub fn is_directed_broadcast(&self, w: u32) -> bool {
        self.bcasts.contains(&w)
    }

    #[inline]
    pub fn has_addr_word(&self, w: u32) -> bool {
        self.words.contains(&w)
    }
    /// The source address for packets to `dst` leaving here: the address on
    /// its subnet, else the first one.
    pub fn source_for(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        self.addrs
            .iter()
            .find(|c| c.contains(dst))
            .or(self.addrs.first())
            .map(|c| c.addr())
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

/// The transmitters of a stack's interfaces, as the input and output paths
/// reach them: while device *i* lends a received frame, its own transmitter
/// comes with the frame and the others' are reachable here, so a forwarded
/// frame is written straight into the egress device's TX frame.
pub trait Transmitters {
    /// The transmitter of `iface`, `None` if it has none (yet).
    fn tx(&mut self, iface: IfaceId) -> Option<&mut dyn Transmit>;
}

/// A single transmitter is interface 0's: what one-NIC stacks, tests and
/// benches hand the stack.
impl<T: Transmit> Transmitters for T {
    #[inline]
    fn tx(&mut self, iface: IfaceId) -> Option<&mut dyn Transmit> {
        if iface.0 == 0 {
            Some(self)
        } else {
            None
        }
    }
}

/// A `&mut dyn Transmit` as interface 0's transmitter.
pub(crate) struct One<'a>(pub &'a mut dyn Transmit);

impl Transmitters for One<'_> {
    #[inline]
    fn tx(&mut self, iface: IfaceId) -> Option<&mut dyn Transmit> {
        if iface.0 == 0 {
            Some(&mut *self.0)
        } else {
            None
        }
    }
}

/// Every device's transmitter; device `at` is receiving, and its
/// transmitter is the one lent with the frame.
pub(crate) struct DeviceTx<'a, 'b, D: Device> {
    pub at: usize,
    pub current: Option<&'b mut dyn Transmit>,
    pub before: &'a mut [D],
    pub after: &'a mut [D],
}

impl<D: Device> Transmitters for DeviceTx<'_, '_, D> {
    #[inline]
    fn tx(&mut self, iface: IfaceId) -> Option<&mut dyn Transmit> {
        let i = iface.index();
        match i.cmp(&self.at) {
            core::cmp::Ordering::Less => self.before.get_mut(i).map(|d| d.transmitter()),
            core::cmp::Ordering::Equal => match &mut self.current {
                Some(t) => Some(&mut **t as &mut dyn Transmit),
                None => None,
            },
            core::cmp::Ordering::Greater => {
                self.after.get_mut(i - self.at - 1).map(|d| d.transmitter())
            }
        }
    }
}
