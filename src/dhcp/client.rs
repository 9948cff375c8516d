//! The DHCPv4 client: RFC 2131 §4.4's state machine, with RFC 5227 conflict
//! detection before an address is used.
//!
//! ```text
//!        (start) ──────────────────────────────┐ remembered address
//!           ▼                                  ▼
//!         INIT ──DISCOVER──► SELECTING      INIT-REBOOT ──REQUEST──► REBOOTING
//!           ▲  ◄─timeout─┐      │ OFFER (or ACK with rapid commit)       │ ACK
//!           │            │      ▼                                       │
//!           │         REQUESTING ───────────────ACK──────────────┐      │
//!           │  NAK, DECLINE after a conflict                     ▼      ▼
//!           ├─────────────────────────────────────────────── CHECKING (ARP probes)
//!           │                                                    │ no conflict
//!           │  lease expired                                     ▼
//!           ├──────────── REBINDING ◄──T2── RENEWING ◄──T1──── BOUND
//!           │                 └───────────ACK──────┴───ACK────────▲
//! ```
//!
//! Sans-IO: the stack hands in every DHCP message for us
//! ([`DhcpClient::on_message`]) and every ARP packet seen on the interface
//! ([`DhcpClient::on_arp`]), and carries out what [`DhcpClient::poll`]
//! returns until it returns `None`, then calls it again at
//! [`DhcpClient::poll_at`]. Transaction ids and every random delay come
//! from a ChaCha8 RNG seeded by the caller.

use core::net::Ipv4Addr;
use std::collections::VecDeque;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::wire::{opt, MessageType, Op, Repr};
use crate::eth::MacAddr;
use crate::ip::cidr::Ipv4Cidr;
use crate::time::{Duration, Instant};

/// RFC 5227 §1.1's timing constants; [`Default`] is the RFC's values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArpTimings {
    /// Random delay before the first probe: uniform in 0..=this.
    pub probe_wait: Duration,
    /// Probes to send; 0 skips conflict detection.
    pub probe_num: u32,
    /// Spacing between probes: uniform in `probe_min..=probe_max`.
    pub probe_min: Duration,
    pub probe_max: Duration,
    /// Quiet time after the last probe before the address is ours.
    pub announce_wait: Duration,
    /// Announcements once bound; 0 sends none.
    pub announce_num: u32,
    pub announce_interval: Duration,
    /// After this many conflicts in a row, restart no sooner than
    /// `rate_limit_interval` after each.
    pub max_conflicts: u32,
    pub rate_limit_interval: Duration,
}

impl Default for ArpTimings {
    fn default() -> Self {
        ArpTimings {
            probe_wait: Duration::from_secs(1),
            probe_num: 3,
            probe_min: Duration::from_secs(1),
            probe_max: Duration::from_secs(2),
            announce_wait: Duration::from_secs(2),
            announce_num: 2,
            announce_interval: Duration::from_secs(2),
            max_conflicts: 10,
            rate_limit_interval: Duration::from_secs(60),
        }
    }
}

/// What the client sends as option 61.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientId {
    /// RFC 4361 §6.1: type 255, a 4-byte IAID (the MAC's last four bytes)
    /// and a DUID-LL (RFC 8415 §11.4) built from the MAC. The default.
    Rfc4361,
    /// RFC 2132 §9.14's classic form: hardware type 1 and the MAC.
    Mac,
    /// These bytes, type byte first.
    Raw(Vec<u8>),
    /// No option 61: servers key the lease on `chaddr`.
    None,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Option 12 in DISCOVER and REQUEST.
    pub hostname: Option<String>,
    pub client_id: ClientId,
    /// An address remembered from a previous run: start in INIT-REBOOT and
    /// ask for it again (RFC 2131 §3.2) instead of discovering.
    pub requested: Option<Ipv4Addr>,
    /// Send DHCPRELEASE from [`DhcpClient::release`].
    pub send_release: bool,
    /// Offer RFC 4039 rapid commit in DISCOVER: a server that supports it
    /// answers with an ACK straight away.
    pub rapid_commit: bool,
    /// Ask servers to broadcast their replies (RFC 2131 §4.1). Only needed
    /// if the stack cannot deliver a unicast to an address it does not have
    /// yet; see [`DhcpClient`].
    pub broadcast_flag: bool,
    /// RFC 2131 §4.4.1: "The client SHOULD wait a random time between one
    /// and ten seconds to desynchronize the use of DHCP at startup." The
    /// wait before the first DISCOVER is uniform in this range; set both to
    /// zero to start at once (what dhclient and udhcpc do).
    pub init_delay: (Duration, Duration),
    /// Retransmissions of a REQUEST in REQUESTING or REBOOTING before
    /// falling back to INIT. 4 gives up about two minutes after the first.
    pub request_retries: u32,
    /// Option 57: the largest DHCP message we accept.
    pub max_message_size: u16,
    /// Option 55.
    pub parameter_request_list: Vec<u8>,
    pub arp: ArpTimings,
    /// RFC 2131 §3.1: after a DHCPDECLINE "The client SHOULD wait a minimum
    /// of ten seconds before restarting the configuration process".
    pub decline_wait: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            hostname: None,
            client_id: ClientId::Rfc4361,
            requested: None,
            send_release: true,
            rapid_commit: true,
            broadcast_flag: false,
            init_delay: (Duration::from_secs(1), Duration::from_secs(10)),
            request_retries: 4,
            // An Ethernet MTU less the IP and UDP headers.
            max_message_size: 1472,
            parameter_request_list: vec![
                opt::SUBNET_MASK,
                opt::ROUTER,
                opt::DNS,
                opt::DOMAIN_NAME,
                opt::BROADCAST_ADDR,
                opt::LEASE_TIME,
                opt::RENEWAL_TIME,
                opt::REBINDING_TIME,
            ],
            arp: ArpTimings::default(),
            decline_wait: Duration::from_secs(10),
        }
    }
}

/// A lease as the interface applies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Our address with the prefix from option 1 (classful if the server
    /// sent none).
    pub address: Ipv4Cidr,
    /// The first usable address of option 3: the default route.
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    pub broadcast: Option<Ipv4Addr>,
    /// Option 54: where renewals and the release go.
    pub server: Ipv4Addr,
    /// `Duration::MAX` for an infinite lease.
    pub lease_time: Duration,
    pub t1: Duration,
    pub t2: Duration,
    /// When the REQUEST this lease answers was first sent: RFC 2131 §4.4.1
    /// "records the lease expiration time as the sum of the time at which
    /// the original request was sent and the duration of the lease".
    pub acquired: Instant,
}

impl Lease {
    pub fn is_infinite(&self) -> bool {
        self.lease_time == Duration::MAX
    }

    pub fn renew_at(&self) -> Instant {
        self.acquired + self.t1
    }

    pub fn rebind_at(&self) -> Instant {
        self.acquired + self.t2
    }

    pub fn expires_at(&self) -> Instant {
        self.acquired + self.lease_time
    }

    /// The same interface configuration: address, prefix, router, DNS,
    /// domain and broadcast. A renewal that changes none of these needs
    /// nothing from the stack.
    pub fn same_config(&self, other: &Lease) -> bool {
        self.address == other.address
            && self.router == other.router
            && self.dns == other.dns
            && self.domain == other.domain
            && self.broadcast == other.broadcast
    }
}

/// A UDP datagram from port 68 to port 67.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// 0.0.0.0 until an address is configured, then ours.
    pub src: Ipv4Addr,
    /// 255.255.255.255 (send to ff:ff:ff:ff:ff:ff, no ARP) or the server's
    /// unicast address (route and resolve as usual).
    pub dst: Ipv4Addr,
    pub payload: Vec<u8>,
}

impl Transmit {
    /// Goes to the Ethernet broadcast address.
    pub fn is_broadcast(&self) -> bool {
        self.dst == Ipv4Addr::BROADCAST
    }
}

/// What the stack must do; see the module docs and ARCHITECTURE.md.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAction {
    Send(Transmit),
    /// An RFC 5227 probe: ARP request, sender MAC ours, sender IP 0.0.0.0,
    /// target MAC zero, target IP this, to ff:ff:ff:ff:ff:ff.
    ArpProbe(Ipv4Addr),
    /// An RFC 5227 announcement: as a probe but with sender IP this too.
    ArpAnnounce(Ipv4Addr),
    /// Use `lease`: add its address and on-link route, the default route
    /// via its router. `old` is the lease it replaces after a renewal that
    /// changed the configuration (same address, new mask, router or DNS):
    /// swap what differs without taking the interface down.
    Configure {
        lease: Lease,
        old: Option<Lease>,
    },
    /// Remove this lease's address and routes now.
    Deconfigure(Lease),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientState {
    Init,
    Selecting,
    Requesting,
    /// RFC 5227 probing of an ACKed address before using it.
    Checking,
    Bound,
    Renewing,
    Rebinding,
    InitReboot,
    Rebooting,
    /// After [`DhcpClient::release`].
    Stopped,
}

impl ClientState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientState::Init => "INIT",
            ClientState::Selecting => "SELECTING",
            ClientState::Requesting => "REQUESTING",
            ClientState::Checking => "CHECKING",
            ClientState::Bound => "BOUND",
            ClientState::Renewing => "RENEWING",
            ClientState::Rebinding => "REBINDING",
            ClientState::InitReboot => "INIT-REBOOT",
            ClientState::Rebooting => "REBOOTING",
            ClientState::Stopped => "STOPPED",
        }
    }
}

/// Counters; every ignored message is counted under its reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    pub tx_discover: u64,
    pub tx_request: u64,
    pub tx_decline: u64,
    pub tx_release: u64,
    /// Sends after the first of an exchange.
    pub retransmits: u64,
    pub rx_offer: u64,
    pub rx_ack: u64,
    pub rx_nak: u64,
    pub drop_malformed: u64,
    /// Not a reply, another client's `chaddr` or client id, or a stale xid.
    pub drop_not_ours: u64,
    /// A message type the current state does not expect.
    pub drop_unexpected: u64,
    /// An OFFER or ACK without a usable address, server id or lease time,
    /// or for an address declined a moment ago.
    pub drop_unusable: u64,
    pub conflicts: u64,
    pub expiries: u64,
}

/// Declined addresses are skipped in offers for this long, so the next
/// attempt takes a different one even from a server that does not
/// quarantine.
const DECLINED_MEMORY: Duration = Duration::from_secs(300);
const DECLINED_MAX: usize = 8;
/// RFC 2131 §4.4.5's floor under renewal retransmissions.
const RENEW_MIN: Duration = Duration::from_secs(60);
/// Shortest lease honoured: a server granting 0 s would have us renew in a
/// tight loop.
const MIN_LEASE: Duration = Duration::from_secs(10);

/// One request and its retransmissions (RFC 2131 §4.1).
#[derive(Clone, Debug)]
struct Exchange {
    xid: u32,
    /// Start of acquisition or renewal, for `secs`.
    began: Instant,
    /// The first send of this exchange: where a lease it yields starts.
    first_sent: Instant,
    /// Sends so far.
    sent: u32,
    next: Instant,
}

#[derive(Clone, Debug)]
enum St {
    /// `None`: at the first poll plus the init delay.
    Init {
        at: Option<Instant>,
    },
    Selecting {
        x: Exchange,
    },
    Requesting {
        x: Exchange,
        addr: Ipv4Addr,
        server: Ipv4Addr,
    },
    Checking {
        lease: Lease,
        probes: u32,
        next: Instant,
    },
    Bound,
    Renewing {
        x: Exchange,
    },
    Rebinding {
        x: Exchange,
    },
    InitReboot {
        addr: Ipv4Addr,
    },
    Rebooting {
        x: Exchange,
        addr: Ipv4Addr,
    },
    Stopped,
}

/// Announcements still to send for the bound address.
#[derive(Clone, Debug)]
struct Announce {
    addr: Ipv4Addr,
    left: u32,
    next: Instant,
}

/// A DHCPv4 client for one interface.
///
/// The stack must hand [`DhcpClient::on_message`] every UDP datagram to
/// port 68 that reaches the interface (Ethernet destination our MAC or
/// broadcast), whatever its IP destination: before an address is configured
/// a server may unicast the OFFER and ACK to the address it offers (RFC 2131
/// §4.1). If the stack cannot, set [`ClientConfig::broadcast_flag`].
#[derive(Debug)]
pub struct DhcpClient {
    mac: MacAddr,
    cfg: ClientConfig,
    client_id: Option<Vec<u8>>,
    rng: ChaCha8Rng,
    st: St,
    lease: Option<Lease>,
    announce: Option<Announce>,
    actions: VecDeque<ClientAction>,
    declined: Vec<(Ipv4Addr, Instant)>,
    /// Conflicts since the last successful bind (RFC 5227 MAX_CONFLICTS).
    conflicts: u32,
    /// NAKs since the last successful bind.
    naks: u32,
    /// Hinted as option 50 in DISCOVER after a lease expired.
    last_address: Option<Ipv4Addr>,
    stats: ClientStats,
}

impl DhcpClient {
    pub fn new(mac: MacAddr, cfg: ClientConfig, seed: u64) -> DhcpClient {
        let client_id = match &cfg.client_id {
            ClientId::Rfc4361 => {
                let m = mac.as_bytes();
                let mut id = vec![0xff, m[2], m[3], m[4], m[5], 0, 3, 0, 1];
                id.extend_from_slice(m);
                Some(id)
            }
            ClientId::Mac => {
                let mut id = vec![1];
                id.extend_from_slice(mac.as_bytes());
                Some(id)
            }
            ClientId::Raw(v) => Some(v.clone()),
            ClientId::None => None,
        };
        let st = match cfg.requested {
            Some(addr) => St::InitReboot { addr },
            None => St::Init { at: None },
        };
        DhcpClient {
            mac,
            cfg,
            client_id,
            rng: ChaCha8Rng::seed_from_u64(seed),
            st,
            lease: None,
            announce: None,
            actions: VecDeque::new(),
            declined: Vec::new(),
            conflicts: 0,
            naks: 0,
            last_address: None,
            stats: ClientStats::default(),
        }
    }

    pub fn state(&self) -> ClientState {
        match self.st {
            St::Init { .. } => ClientState::Init,
            St::Selecting { .. } => ClientState::Selecting,
            St::Requesting { .. } => ClientState::Requesting,
            St::Checking { .. } => ClientState::Checking,
            St::Bound => ClientState::Bound,
            St::Renewing { .. } => ClientState::Renewing,
            St::Rebinding { .. } => ClientState::Rebinding,
            St::InitReboot { .. } => ClientState::InitReboot,
            St::Rebooting { .. } => ClientState::Rebooting,
            St::Stopped => ClientState::Stopped,
        }
    }

    /// The lease the interface uses now (BOUND, RENEWING, REBINDING).
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// Option 61 as sent, if any.
    pub fn client_id(&self) -> Option<&[u8]> {
        self.client_id.as_deref()
    }

    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// The next action, running any timer that is due first. Call until
    /// `None`.
    pub fn poll(&mut self, now: Instant) -> Option<ClientAction> {
        if self.actions.is_empty() {
            // Each step moves a deadline past `now` or changes state; the
            // bound only guards against a bug turning into a hang.
            for _ in 0..32 {
                if !self.step(now) {
                    break;
                }
            }
        }
        self.actions.pop_front()
    }

    /// When [`DhcpClient::poll`] has something to do: `Instant::ZERO`
    /// (always due) while actions are queued or before the first poll,
    /// `None` when nothing will happen without input (an infinite lease,
    /// or stopped).
    pub fn poll_at(&self) -> Option<Instant> {
        if !self.actions.is_empty() {
            return Some(Instant::ZERO);
        }
        let announce = self.announce.as_ref().map(|a| a.next);
        let st = match &self.st {
            St::Init { at: None } | St::InitReboot { .. } => Some(Instant::ZERO),
            St::Init { at: Some(at) } => Some(*at),
            St::Selecting { x } | St::Requesting { x, .. } | St::Rebooting { x, .. } => {
                Some(x.next)
            }
            St::Checking { next, .. } => Some(*next),
            St::Bound => self
                .lease
                .as_ref()
                .filter(|l| !l.is_infinite())
                .map(|l| l.renew_at()),
            St::Renewing { x } => self.lease.as_ref().map(|l| x.next.min(l.rebind_at())),
            St::Rebinding { x } => self.lease.as_ref().map(|l| x.next.min(l.expires_at())),
            St::Stopped => None,
        };
        match (announce, st) {
            (Some(a), Some(s)) => Some(a.min(s)),
            (a, s) => a.or(s),
        }
    }

    /// Graceful exit: DHCPRELEASE to the server if configured, and the
    /// address goes. The client stops; make a new one to start again.
    pub fn release(&mut self, now: Instant) {
        let _ = now;
        if let Some(lease) = self.lease.take() {
            if self.cfg.send_release {
                let xid = self.rng.next_u32();
                let mut r = self.message(MessageType::Release, xid, 0);
                r.ciaddr = lease.address.addr();
                r.options.server_id = Some(lease.server);
                self.stats.tx_release += 1;
                self.send(lease.address.addr(), lease.server, &r);
            }
            self.actions.push_back(ClientAction::Deconfigure(lease));
        }
        self.announce = None;
        self.st = St::Stopped;
    }

    /// Every ARP packet seen on the interface (requests and replies, ours
    /// included): RFC 5227 conflict detection while an address is checked.
    pub fn on_arp(
        &mut self,
        now: Instant,
        sender_ip: Ipv4Addr,
        sender_mac: MacAddr,
        target_ip: Ipv4Addr,
    ) {
        let St::Checking { lease, .. } = &self.st else {
            return;
        };
        let addr = lease.address.addr();
        // RFC 5227 §2.1.1: a conflict is any ARP packet whose "'sender IP
        // address' is the address being probed for", or an ARP Probe whose
        // "'target IP address' is the address being probed for, and the
        // packet's 'sender hardware address' is not the hardware address of
        // any of the host's interfaces". Our own frames, looped back by a
        // hub or a packet socket, are neither.
        if sender_mac == self.mac {
            return;
        }
        let claims = sender_ip == addr;
        let probes = sender_ip.is_unspecified() && target_ip == addr;
        if claims || probes {
            self.conflict(now);
        }
    }

    /// A DHCP message that arrived for us (UDP from port 67 to port 68).
    pub fn on_message(&mut self, now: Instant, udp_payload: &[u8]) {
        let r = match Repr::parse_bytes(udp_payload) {
            Ok(r) => r,
            Err(_) => {
                self.stats.drop_malformed += 1;
                return;
            }
        };
        let ours = r.op == Op::Reply
            && r.client_mac() == Some(self.mac)
            && Some(r.xid) == self.current_xid()
            // RFC 6842: a server echoes option 61; another client's id
            // means another client's message.
            && (r.options.client_id.is_none() || r.options.client_id == self.client_id);
        if !ours {
            self.stats.drop_not_ours += 1;
            return;
        }
        match r.message_type {
            MessageType::Offer => self.stats.rx_offer += 1,
            MessageType::Ack => self.stats.rx_ack += 1,
            MessageType::Nak => self.stats.rx_nak += 1,
            _ => {}
        }
        match (&self.st, r.message_type) {
            (St::Selecting { .. }, MessageType::Offer) => self.on_offer(now, &r),
            (St::Selecting { .. }, MessageType::Ack) if r.options.rapid_commit => {
                self.on_ack(now, &r)
            }
            (
                St::Requesting { .. }
                | St::Rebooting { .. }
                | St::Renewing { .. }
                | St::Rebinding { .. },
                MessageType::Ack,
            ) => self.on_ack(now, &r),
            (
                St::Requesting { .. }
                | St::Rebooting { .. }
                | St::Renewing { .. }
                | St::Rebinding { .. },
                MessageType::Nak,
            ) => self.on_nak(now, &r),
            _ => self.stats.drop_unexpected += 1,
        }
    }

    fn current_xid(&self) -> Option<u32> {
        match &self.st {
            St::Selecting { x }
            | St::Requesting { x, .. }
            | St::Renewing { x }
            | St::Rebinding { x }
            | St::Rebooting { x, .. } => Some(x.xid),
            _ => None,
        }
    }

    fn usable(&self, now: Instant, a: Ipv4Addr) -> bool {
        !(a.is_unspecified()
            || a.is_broadcast()
            || a.is_multicast()
            || a.is_loopback()
            || self
                .declined
                .iter()
                .any(|&(d, until)| d == a && until > now))
    }

    fn on_offer(&mut self, now: Instant, r: &Repr) {
        let St::Selecting { x } = &self.st else {
            return;
        };
        let Some(server) = r.options.server_id else {
            self.stats.drop_unusable += 1;
            return;
        };
        if !self.usable(now, r.yiaddr) {
            self.stats.drop_unusable += 1;
            return;
        }
        // The first acceptable offer wins: RFC 2131 §4.4.1 lets the client
        // collect several, and waiting buys nothing on a LAN.
        let mut x = x.clone();
        x.sent = 0;
        x.first_sent = now;
        self.st = St::Requesting {
            x,
            addr: r.yiaddr,
            server,
        };
        self.send_request(now);
    }

    fn on_ack(&mut self, now: Instant, r: &Repr) {
        let (first_sent, expect_server) = match &self.st {
            St::Selecting { x } | St::Renewing { x } | St::Rebinding { x } => (x.first_sent, None),
            St::Requesting { x, server, .. } => (x.first_sent, Some(*server)),
            St::Rebooting { x, .. } => (x.first_sent, None),
            _ => return,
        };
        let Some(lease) = self.lease_from(now, r, first_sent) else {
            self.stats.drop_unusable += 1;
            return;
        };
        if expect_server.is_some_and(|s| s != lease.server) {
            self.stats.drop_not_ours += 1;
            return;
        }
        match self.lease.take() {
            Some(old) if old.address.addr() == lease.address.addr() => {
                // A renewal: same address, new times, maybe a new mask or
                // router. The interface stays up throughout.
                let changed = !old.same_config(&lease);
                self.lease = Some(lease.clone());
                self.st = St::Bound;
                if changed {
                    self.actions.push_back(ClientAction::Configure {
                        lease,
                        old: Some(old),
                    });
                }
            }
            old => {
                // A renewal that moved us elsewhere drops the old address
                // before the new one is checked like any fresh lease.
                if let Some(old) = old {
                    self.actions.push_back(ClientAction::Deconfigure(old));
                    self.announce = None;
                }
                self.check(now, lease);
            }
        }
    }

    fn on_nak(&mut self, now: Instant, r: &Repr) {
        if let St::Requesting { server, .. } = &self.st {
            if r.options.server_id.is_some_and(|s| s != *server) {
                self.stats.drop_not_ours += 1;
                return;
            }
        }
        // RFC 2131 §4.4.5: on DHCPNAK in RENEWING or REBINDING the client
        // "immediately stops using the IP address and returns to INIT".
        if let Some(old) = self.lease.take() {
            self.actions.push_back(ClientAction::Deconfigure(old));
            self.announce = None;
        }
        self.last_address = None;
        // The first NAK restarts at once (RFC 2131 §3.1: "the client
        // restarts the configuration process"); repeated ones back off
        // exponentially, so a server that NAKs what another offers cannot
        // drive a packet storm.
        self.naks += 1;
        let wait = match self.naks {
            1 => Duration::ZERO,
            n => Duration::from_secs(1 << (n - 2).min(6)),
        };
        self.st = St::Init {
            at: Some(now + wait),
        };
    }

    /// Builds the lease an ACK grants, or `None` if it is not usable.
    fn lease_from(&self, now: Instant, r: &Repr, start: Instant) -> Option<Lease> {
        let o = &r.options;
        let server = o.server_id?;
        let secs = o.lease_time?;
        if !self.usable(now, r.yiaddr) {
            return None;
        }
        let prefix = o
            .subnet_mask
            .and_then(|m| {
                let m = u32::from(m);
                let p = m.leading_ones();
                (p > 0 && m.checked_shl(p).unwrap_or(0) == 0).then_some(p as u8)
            })
            .unwrap_or_else(|| classful_prefix(r.yiaddr));
        let address = Ipv4Cidr::new(r.yiaddr, prefix).ok()?;
        let (lease_time, t1, t2) = if secs == u32::MAX {
            (Duration::MAX, Duration::MAX, Duration::MAX)
        } else {
            let lease = Duration::from_secs(u64::from(secs)).max(MIN_LEASE);
            // RFC 2131 §4.4.5: "T1 defaults to (0.5 * duration_of_lease).
            // T2 defaults to (0.875 * duration_of_lease)." Values from the
            // server are used when they keep T1 <= T2 <= lease.
            let secs = |v: Option<u32>| v.map(|s| Duration::from_secs(u64::from(s)));
            let t2 = secs(o.rebinding_time)
                .filter(|t| *t <= lease)
                .unwrap_or(Duration::from_micros(lease.total_micros() / 8 * 7));
            let t1 = secs(o.renewal_time)
                .filter(|t| *t <= t2)
                .unwrap_or(Duration::from_micros(lease.total_micros() / 2).min(t2));
            (lease, t1, t2)
        };
        let router = o
            .routers
            .iter()
            .copied()
            .find(|a| !a.is_unspecified() && !a.is_broadcast() && !a.is_multicast());
        Some(Lease {
            address,
            router,
            dns: o.dns_servers.clone(),
            domain: o.domain_name.clone(),
            broadcast: o.broadcast_addr,
            server,
            lease_time,
            t1,
            t2,
            acquired: start,
        })
    }

    /// Into CHECKING: probe the address before using it (RFC 2131 §4.4.1:
    /// "The client SHOULD perform a check on the suggested address").
    fn check(&mut self, now: Instant, lease: Lease) {
        if self.cfg.arp.probe_num == 0 {
            self.bind(now, lease);
            return;
        }
        // RFC 5227 §2.1.1: "wait for a random time interval selected
        // uniformly in the range zero to PROBE_WAIT seconds".
        let wait = self.uniform(Duration::ZERO, self.cfg.arp.probe_wait);
        self.st = St::Checking {
            lease,
            probes: 0,
            next: now + wait,
        };
    }

    fn bind(&mut self, now: Instant, lease: Lease) {
        let addr = lease.address.addr();
        self.conflicts = 0;
        self.naks = 0;
        self.lease = Some(lease.clone());
        self.st = St::Bound;
        self.actions
            .push_back(ClientAction::Configure { lease, old: None });
        if self.cfg.arp.announce_num > 0 {
            self.actions.push_back(ClientAction::ArpAnnounce(addr));
            self.announce = (self.cfg.arp.announce_num > 1).then(|| Announce {
                addr,
                left: self.cfg.arp.announce_num - 1,
                next: now + self.cfg.arp.announce_interval,
            });
        }
    }

    fn conflict(&mut self, now: Instant) {
        let St::Checking { lease, .. } = &self.st else {
            return;
        };
        let addr = lease.address.addr();
        let server = lease.server;
        self.stats.conflicts += 1;
        self.conflicts += 1;
        // RFC 2131 §3.1: "If the client detects that the address is already
        // in use (e.g., through the use of ARP), the client MUST send a
        // DHCPDECLINE message to the server".
        let xid = self.rng.next_u32();
        let mut r = self.message(MessageType::Decline, xid, 0);
        r.options.requested_ip = Some(addr);
        r.options.server_id = Some(server);
        self.stats.tx_decline += 1;
        self.send(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, &r);
        if self.declined.len() >= DECLINED_MAX {
            self.declined.remove(0);
        }
        self.declined.push((addr, now + DECLINED_MEMORY));
        self.last_address = None;
        // RFC 5227 §2.1.1: past MAX_CONFLICTS, "limit the rate at which it
        // probes for new addresses to no more than one new address per
        // RATE_LIMIT_INTERVAL".
        let wait = if self.conflicts >= self.cfg.arp.max_conflicts {
            self.cfg.decline_wait.max(self.cfg.arp.rate_limit_interval)
        } else {
            self.cfg.decline_wait
        };
        self.st = St::Init {
            at: Some(now + wait),
        };
    }

    fn expire(&mut self, now: Instant) {
        self.stats.expiries += 1;
        if let Some(old) = self.lease.take() {
            self.last_address = Some(old.address.addr());
            self.actions.push_back(ClientAction::Deconfigure(old));
        }
        self.announce = None;
        // RFC 2131 §4.4.5: "If the lease expires before the client receives
        // a DHCPACK, the client moves to INIT state, MUST immediately stop
        // any other network processing and requests network initialization
        // parameters as if the client were uninitialized."
        self.st = St::Init { at: Some(now) };
    }

    /// Runs whatever is due; false when nothing was.
    fn step(&mut self, now: Instant) -> bool {
        if let Some(a) = &mut self.announce {
            if a.next <= now {
                let addr = a.addr;
                a.left -= 1;
                a.next = now + self.cfg.arp.announce_interval;
                if a.left == 0 {
                    self.announce = None;
                }
                self.actions.push_back(ClientAction::ArpAnnounce(addr));
                return true;
            }
        }
        match &mut self.st {
            St::Init { at: None } => {
                let (lo, hi) = self.cfg.init_delay;
                let wait = self.uniform(lo, hi.max(lo));
                self.st = St::Init {
                    at: Some(now + wait),
                };
                true
            }
            St::Init { at: Some(at) } if *at <= now => {
                self.st = St::Selecting {
                    x: self.exchange(now, now),
                };
                self.send_discover(now);
                true
            }
            St::Selecting { x } if x.next <= now => {
                self.send_discover(now);
                true
            }
            St::Requesting { x, .. } | St::Rebooting { x, .. } if x.next <= now => {
                // RFC 2131 §3.1.5: "If the client receives neither a DHCPACK
                // or a DHCPNAK message after employing the retransmission
                // algorithm, the client reverts to INIT state and restarts
                // the initialization process."
                if x.sent > self.cfg.request_retries {
                    self.st = St::Init { at: Some(now) };
                } else {
                    self.send_request(now);
                }
                true
            }
            St::Checking {
                lease,
                probes,
                next,
            } if *next <= now => {
                let addr = lease.address.addr();
                let arp = &self.cfg.arp;
                if *probes < arp.probe_num {
                    *probes += 1;
                    // PROBE_NUM probes "spaced randomly and uniformly,
                    // PROBE_MIN to PROBE_MAX seconds apart", then
                    // ANNOUNCE_WAIT of quiet after the last.
                    let gap = if *probes < arp.probe_num {
                        let (lo, hi) = (arp.probe_min, arp.probe_max);
                        self.uniform(lo, hi)
                    } else {
                        self.cfg.arp.announce_wait
                    };
                    if let St::Checking { next, .. } = &mut self.st {
                        *next = now + gap;
                    }
                    self.actions.push_back(ClientAction::ArpProbe(addr));
                } else {
                    let lease = lease.clone();
                    self.bind(now, lease);
                }
                true
            }
            St::Bound => {
                let Some(l) = &self.lease else {
                    return false;
                };
                if l.is_infinite() {
                    return false;
                }
                if l.expires_at() <= now {
                    self.expire(now);
                } else if l.rebind_at() <= now {
                    self.start_rebinding(now, now);
                } else if l.renew_at() <= now {
                    self.st = St::Renewing {
                        x: self.exchange(now, now),
                    };
                    self.send_request(now);
                } else {
                    return false;
                }
                true
            }
            St::Renewing { x } => {
                let Some(l) = &self.lease else {
                    return false;
                };
                if l.rebind_at() <= now {
                    let began = x.began;
                    self.start_rebinding(now, began);
                } else if x.next <= now {
                    self.send_request(now);
                } else {
                    return false;
                }
                true
            }
            St::Rebinding { x } => {
                let Some(l) = &self.lease else {
                    return false;
                };
                if l.expires_at() <= now {
                    self.expire(now);
                } else if x.next <= now {
                    self.send_request(now);
                } else {
                    return false;
                }
                true
            }
            St::InitReboot { addr } => {
                let addr = *addr;
                self.st = St::Rebooting {
                    x: self.exchange(now, now),
                    addr,
                };
                self.send_request(now);
                true
            }
            _ => false,
        }
    }

    fn start_rebinding(&mut self, now: Instant, began: Instant) {
        self.st = St::Rebinding {
            x: self.exchange(now, began),
        };
        self.send_request(now);
    }

    fn exchange(&mut self, now: Instant, began: Instant) -> Exchange {
        Exchange {
            xid: self.rng.next_u32(),
            began,
            first_sent: now,
            sent: 0,
            next: now,
        }
    }

    /// Uniform in `lo..=hi`, to the microsecond.
    fn uniform(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.total_micros().saturating_sub(lo.total_micros());
        if span == 0 {
            return lo;
        }
        lo + Duration::from_micros(self.rng.next_u64() % span.saturating_add(1))
    }

    /// RFC 2131 §4.1: "the delay before the first retransmission SHOULD be
    /// 4 seconds randomized by the value of a uniform random number chosen
    /// from the range -1 to +1 ... The retransmission delay SHOULD be
    /// doubled with subsequent retransmissions up to a maximum of 64
    /// seconds." `sent` counts sends so far, the one just made included.
    fn backoff(&mut self, sent: u32) -> Duration {
        let base = Duration::from_secs(4u64 << sent.saturating_sub(1).min(4));
        let jitter = self.uniform(Duration::ZERO, Duration::from_secs(2));
        base + jitter - Duration::from_secs(1)
    }

    /// RFC 2131 §4.4.5: "the client SHOULD wait one-half of the remaining
    /// time until T2 (in RENEWING state) and one-half of the remaining lease
    /// time (in REBINDING state), down to a minimum of 60 seconds, before
    /// retransmitting the DHCPREQUEST message."
    fn renew_backoff(now: Instant, until: Instant) -> Duration {
        Duration::from_micros(until.saturating_since(now).total_micros() / 2).max(RENEW_MIN)
    }

    fn message(&self, t: MessageType, xid: u32, secs: u16) -> Repr {
        let mut r = Repr::new(Op::Request, t, xid, self.mac);
        r.secs = secs;
        r.options.client_id = self.client_id.clone();
        r
    }

    /// The options DISCOVER and REQUEST share.
    fn with_parameters(&self, r: &mut Repr) {
        r.options.parameter_request_list = self.cfg.parameter_request_list.clone();
        r.options.max_message_size = Some(self.cfg.max_message_size.max(576));
        r.options.hostname = self.cfg.hostname.clone();
    }

    fn send(&mut self, src: Ipv4Addr, dst: Ipv4Addr, r: &Repr) {
        self.actions.push_back(ClientAction::Send(Transmit {
            src,
            dst,
            payload: r.to_vec(),
        }));
    }

    fn secs_since(now: Instant, began: Instant) -> u16 {
        (now.saturating_since(began).total_micros() / 1_000_000).min(u64::from(u16::MAX)) as u16
    }

    /// Sends the current exchange's message and schedules the next, for
    /// every state that has one.
    fn bump(&mut self, now: Instant) -> Option<(u32, u16)> {
        let renewing = self.lease.as_ref().map(|l| (l.rebind_at(), l.expires_at()));
        let x = match &mut self.st {
            St::Selecting { x }
            | St::Requesting { x, .. }
            | St::Rebooting { x, .. }
            | St::Renewing { x }
            | St::Rebinding { x } => x,
            _ => return None,
        };
        x.sent += 1;
        let (xid, secs, sent) = (x.xid, Self::secs_since(now, x.began), x.sent);
        if sent > 1 {
            self.stats.retransmits += 1;
        }
        let wait = match (&self.st, renewing) {
            (St::Renewing { .. }, Some((t2, _))) => Self::renew_backoff(now, t2),
            (St::Rebinding { .. }, Some((_, exp))) => Self::renew_backoff(now, exp),
            _ => self.backoff(sent),
        };
        if let St::Selecting { x }
        | St::Requesting { x, .. }
        | St::Rebooting { x, .. }
        | St::Renewing { x }
        | St::Rebinding { x } = &mut self.st
        {
            x.next = now + wait;
        }
        Some((xid, secs))
    }

    fn send_discover(&mut self, now: Instant) {
        let Some((xid, secs)) = self.bump(now) else {
            return;
        };
        let mut r = self.message(MessageType::Discover, xid, secs);
        r.broadcast = self.cfg.broadcast_flag;
        self.with_parameters(&mut r);
        r.options.requested_ip = self.last_address;
        r.options.rapid_commit = self.cfg.rapid_commit;
        self.stats.tx_discover += 1;
        self.send(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, &r);
    }

    /// The REQUEST of the current state, per RFC 2131 §4.3.2's table:
    /// SELECTING names the server and the address, INIT-REBOOT only the
    /// address, RENEWING and REBINDING put the address in `ciaddr`.
    fn send_request(&mut self, now: Instant) {
        let Some((xid, secs)) = self.bump(now) else {
            return;
        };
        let mut r = self.message(MessageType::Request, xid, secs);
        self.with_parameters(&mut r);
        let ours = self.lease.as_ref().map(|l| (l.address.addr(), l.server));
        let (src, dst) = match (&self.st, ours) {
            (St::Requesting { addr, server, .. }, _) => {
                r.broadcast = self.cfg.broadcast_flag;
                r.options.requested_ip = Some(*addr);
                r.options.server_id = Some(*server);
                (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
            }
            (St::Rebooting { addr, .. }, _) => {
                r.broadcast = self.cfg.broadcast_flag;
                r.options.requested_ip = Some(*addr);
                (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
            }
            (St::Renewing { .. }, Some((addr, server))) => {
                r.ciaddr = addr;
                (addr, server)
            }
            (St::Rebinding { .. }, Some((addr, _))) => {
                r.ciaddr = addr;
                (addr, Ipv4Addr::BROADCAST)
            }
            _ => return,
        };
        self.stats.tx_request += 1;
        self.send(src, dst, &r);
    }
}

/// The prefix of `a`'s class (RFC 791), for a server that sends no mask.
fn classful_prefix(a: Ipv4Addr) -> u8 {
    match a.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::wire::{Options, Packet};

    const MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
    const OTHER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
    const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
    const ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 57);
    const ADDR2: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 58);
    const T0: Instant = Instant::from_secs(1000);

    fn cfg() -> ClientConfig {
        ClientConfig {
            init_delay: (Duration::ZERO, Duration::ZERO),
            ..ClientConfig::default()
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_micros((s * 1e6) as u64)
    }

    /// Drives the client as the stack would: every action at `now`, then
    /// jump to `poll_at`, until `until`. Returns each action with its time.
    fn run(c: &mut DhcpClient, now: &mut Instant, until: Instant) -> Vec<(Instant, ClientAction)> {
        let mut out = Vec::new();
        loop {
            while let Some(a) = c.poll(*now) {
                out.push((*now, a));
            }
            match c.poll_at() {
                Some(t) if t <= until => *now = t.max(*now),
                _ => break,
            }
        }
        *now = until.max(*now);
        out
    }

    fn drain(c: &mut DhcpClient, now: Instant) -> Vec<ClientAction> {
        std::iter::from_fn(|| c.poll(now)).collect()
    }

    fn parse(t: &Transmit) -> Repr {
        Repr::parse(&Packet::new_checked(&t.payload[..]).unwrap()).unwrap()
    }

    /// The messages among `actions`, parsed, with their transmits.
    fn sends(actions: &[(Instant, ClientAction)]) -> Vec<(Instant, Transmit, Repr)> {
        actions
            .iter()
            .filter_map(|(t, a)| match a {
                ClientAction::Send(tx) => Some((*t, tx.clone(), parse(tx))),
                _ => None,
            })
            .collect()
    }

    fn only_send(actions: &[ClientAction]) -> (Transmit, Repr) {
        let s: Vec<_> = actions
            .iter()
            .filter_map(|a| match a {
                ClientAction::Send(tx) => Some((tx.clone(), parse(tx))),
                _ => None,
            })
            .collect();
        assert_eq!(s.len(), 1, "{actions:?}");
        s.into_iter().next().unwrap()
    }

    /// A server's answer to `req`: our usual lease of ADDR for an hour with
    /// T1 30 min and T2 52.5 min, a /24, router and DNS .1, domain "lan".
    fn reply(req: &Repr, t: MessageType) -> Repr {
        let mut r = Repr::new(Op::Reply, t, req.xid, MAC);
        r.yiaddr = ADDR;
        r.options = Options {
            server_id: Some(SERVER),
            lease_time: Some(3600),
            renewal_time: Some(1800),
            rebinding_time: Some(3150),
            subnet_mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
            routers: vec![SERVER],
            dns_servers: vec![SERVER],
            domain_name: Some("lan".into()),
            client_id: req.options.client_id.clone(),
            ..Options::default()
        };
        r
    }

    fn nak(req: &Repr) -> Repr {
        let mut r = Repr::new(Op::Reply, MessageType::Nak, req.xid, MAC);
        r.options.server_id = Some(SERVER);
        r.options.message = Some("wrong network".into());
        r
    }

    fn deliver(c: &mut DhcpClient, now: Instant, r: &Repr) {
        c.on_message(now, &r.to_vec());
    }

    /// DISCOVER, OFFER, REQUEST, ACK, then the probes: the client is bound.
    /// Returns the ACK (for renewals to copy) and leaves `now` at the bind.
    fn bind(c: &mut DhcpClient, now: &mut Instant) -> Repr {
        let (_, discover) = only_send(&drain(c, *now));
        deliver(c, *now, &reply(&discover, MessageType::Offer));
        let (_, request) = only_send(&drain(c, *now));
        let ack = reply(&request, MessageType::Ack);
        deliver(c, *now, &ack);
        let until = *now + Duration::from_secs(10);
        let acts = run(c, now, until);
        assert_eq!(c.state(), ClientState::Bound, "{acts:?}");
        ack
    }

    fn configured(actions: &[(Instant, ClientAction)]) -> Vec<(Instant, Lease, Option<Lease>)> {
        actions
            .iter()
            .filter_map(|(t, a)| match a {
                ClientAction::Configure { lease, old } => Some((*t, lease.clone(), old.clone())),
                _ => None,
            })
            .collect()
    }

    fn deconfigured(actions: &[(Instant, ClientAction)]) -> Vec<Lease> {
        actions
            .iter()
            .filter_map(|(_, a)| match a {
                ClientAction::Deconfigure(l) => Some(l.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn discover_is_broadcast_from_no_address_with_an_rfc_4361_client_id() {
        let mut c = DhcpClient::new(MAC, cfg(), 1);
        assert_eq!(c.state(), ClientState::Init);
        let (tx, r) = only_send(&drain(&mut c, T0));
        assert_eq!(c.state(), ClientState::Selecting);
        assert_eq!(
            (tx.src, tx.dst),
            (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
        );
        assert!(tx.is_broadcast());
        assert_eq!((r.op, r.message_type), (Op::Request, MessageType::Discover));
        assert_eq!(r.client_mac(), Some(MAC));
        assert_eq!(r.ciaddr, Ipv4Addr::UNSPECIFIED);
        assert!(!r.broadcast);
        // RFC 4361 §6.1: "consisting of a type field whose value is
        // normally 255, followed by a four-byte IA_ID field, followed by
        // the DUID for the client".
        assert_eq!(
            r.options.client_id.as_deref(),
            Some(&[0xff, 0, 0, 0, 0x10, 0, 3, 0, 1, 2, 0, 0, 0, 0, 0x10][..])
        );
        assert_eq!(r.options.server_id, None);
        assert!(r.options.rapid_commit);
        assert_eq!(r.options.max_message_size, Some(1472));
        assert!(r.options.parameter_request_list.contains(&opt::ROUTER));
        // Another seed, another transaction id.
        let mut d = DhcpClient::new(MAC, cfg(), 2);
        let (_, r2) = only_send(&drain(&mut d, T0));
        assert_ne!(r.xid, r2.xid);
    }

    #[test]
    fn client_id_forms_and_hostname() {
        let mut cfg = cfg();
        cfg.client_id = ClientId::Mac;
        cfg.hostname = Some("box".into());
        cfg.broadcast_flag = true;
        cfg.rapid_commit = false;
        let mut c = DhcpClient::new(MAC, cfg.clone(), 1);
        let (_, r) = only_send(&drain(&mut c, T0));
        assert_eq!(
            r.options.client_id.as_deref(),
            Some(&[1, 2, 0, 0, 0, 0, 0x10][..])
        );
        assert_eq!(r.options.hostname.as_deref(), Some("box"));
        assert!(r.broadcast && !r.options.rapid_commit);
        cfg.client_id = ClientId::None;
        let mut c = DhcpClient::new(MAC, cfg, 1);
        let (_, r) = only_send(&drain(&mut c, T0));
        assert_eq!(r.options.client_id, None);
    }

    #[test]
    fn init_waits_one_to_ten_seconds_by_default() {
        // RFC 2131 §4.4.1: "The client SHOULD wait a random time between one
        // and ten seconds to desynchronize the use of DHCP at startup."
        let mut waits = Vec::new();
        for seed in 0..50 {
            let mut c = DhcpClient::new(MAC, ClientConfig::default(), seed);
            let mut now = T0;
            let acts = run(&mut c, &mut now, T0 + Duration::from_secs(11));
            let (t, _, r) = &sends(&acts)[0];
            assert_eq!(r.message_type, MessageType::Discover);
            let w = *t - T0;
            assert!(
                w >= Duration::from_secs(1) && w <= Duration::from_secs(10),
                "{w:?}"
            );
            waits.push(w);
        }
        waits.sort();
        assert!(waits[49] - waits[0] > Duration::from_secs(5), "spread out");
    }

    #[test]
    fn discover_retransmits_with_randomised_exponential_backoff() {
        // RFC 2131 §4.1: "the delay before the first retransmission SHOULD
        // be 4 seconds randomized by the value of a uniform random number
        // chosen from the range -1 to +1 ... The retransmission delay
        // SHOULD be doubled with subsequent retransmissions up to a maximum
        // of 64 seconds."
        let mut jitters = Vec::new();
        for seed in 0..20 {
            let mut c = DhcpClient::new(MAC, cfg(), seed);
            let mut now = T0;
            let acts = run(&mut c, &mut now, T0 + Duration::from_secs(400));
            let s = sends(&acts);
            assert!(s.len() >= 8);
            let xid = s[0].2.xid;
            for (i, w) in s.windows(2).enumerate() {
                assert_eq!(w[1].2.message_type, MessageType::Discover);
                assert_eq!(w[1].2.xid, xid, "one exchange, one xid");
                let base = Duration::from_secs(4 << i.min(4));
                let gap = w[1].0 - w[0].0;
                assert!(
                    gap >= base - secs(1.0) && gap <= base + secs(1.0),
                    "retransmission {i}: {gap:?}"
                );
                jitters.push(gap.total_micros() as i64 - base.total_micros() as i64);
                // secs: "seconds elapsed since client began address
                // acquisition".
                assert_eq!(
                    u64::from(w[1].2.secs),
                    (w[1].0 - s[0].0).total_micros() / 1_000_000
                );
            }
            assert_eq!(c.stats().retransmits as usize, s.len() - 1);
        }
        // Both signs of jitter occur.
        assert!(jitters.iter().any(|&j| j < -100_000) && jitters.iter().any(|&j| j > 100_000));
    }

    #[test]
    fn selects_the_first_acceptable_offer() {
        let mut c = DhcpClient::new(MAC, cfg(), 1);
        let (_, d) = only_send(&drain(&mut c, T0));
        // No server identifier: not acceptable.
        let mut bad = reply(&d, MessageType::Offer);
        bad.options.server_id = None;
        deliver(&mut c, T0, &bad);
        let mut bad = reply(&d, MessageType::Offer);
        bad.yiaddr = Ipv4Addr::UNSPECIFIED;
        deliver(&mut c, T0, &bad);
        assert_eq!(c.stats().drop_unusable, 2);
        assert_eq!(c.state(), ClientState::Selecting);
        let mut first = reply(&d, MessageType::Offer);
        first.yiaddr = ADDR2;
        deliver(&mut c, T0, &first);
        let (tx, req) = only_send(&drain(&mut c, T0));
        assert_eq!(c.state(), ClientState::Requesting);
        // RFC 2131 §4.3.2: in SELECTING, "'server identifier' MUST be set to
        // the value in the DHCPOFFER message ... 'requested IP address'
        // MUST be filled in with the yiaddr value ... 'ciaddr' MUST be zero".
        assert_eq!(
            (tx.src, tx.dst),
            (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
        );
        assert_eq!(req.message_type, MessageType::Request);
        assert_eq!(req.xid, d.xid);
        assert_eq!(req.options.server_id, Some(SERVER));
        assert_eq!(req.options.requested_ip, Some(ADDR2));
        assert_eq!(req.ciaddr, Ipv4Addr::UNSPECIFIED);
        // A later offer from another server changes nothing.
        let mut late = reply(&d, MessageType::Offer);
        late.options.server_id = Some(Ipv4Addr::new(192, 168, 1, 2));
        deliver(&mut c, T0, &late);
        assert!(drain(&mut c, T0).is_empty());
        assert_eq!(c.stats().drop_unexpected, 1);
    }

    #[test]
    fn ignores_replies_for_another_client_or_exchange() {
        let mut c = DhcpClient::new(MAC, cfg(), 1);
        let (_, d) = only_send(&drain(&mut c, T0));
        let mut r = reply(&d, MessageType::Offer);
        r.xid ^= 1;
        deliver(&mut c, T0, &r);
        let mut r = reply(&d, MessageType::Offer);
        r.chaddr[5] ^= 1;
        deliver(&mut c, T0, &r);
        let mut r = reply(&d, MessageType::Offer);
        r.options.client_id = Some(vec![1, 2, 3]);
        deliver(&mut c, T0, &r);
        let mut r = reply(&d, MessageType::Offer);
        r.op = Op::Request;
        deliver(&mut c, T0, &r);
        c.on_message(T0, &[0u8; 100]);
        assert_eq!(c.stats().drop_not_ours, 4);
        assert_eq!(c.stats().drop_malformed, 1);
        assert_eq!(c.state(), ClientState::Selecting);
        assert!(drain(&mut c, T0).is_empty());
    }

    #[test]
    fn unanswered_request_falls_back_to_init() {
        // RFC 2131 §3.1: "If the client receives neither a DHCPACK or a
        // DHCPNAK message after employing the retransmission algorithm, the
        // client reverts to INIT state and restarts the initialization
        // process."
        let mut c = DhcpClient::new(MAC, cfg(), 3);
        let mut now = T0;
        let (_, d) = only_send(&drain(&mut c, now));
        deliver(&mut c, now, &reply(&d, MessageType::Offer));
        let acts = run(&mut c, &mut now, T0 + Duration::from_secs(200));
        let s = sends(&acts);
        let requests: Vec<_> = s
            .iter()
            .take_while(|x| x.2.message_type == MessageType::Request)
            .collect();
        assert_eq!(requests.len(), 5, "the first and 4 retransmissions");
        for (i, w) in requests.windows(2).enumerate() {
            let base = Duration::from_secs(4 << i);
            let gap = w[1].0 - w[0].0;
            assert!(
                gap >= base - secs(1.0) && gap <= base + secs(1.0),
                "{gap:?}"
            );
            assert_eq!(w[1].2.xid, d.xid);
        }
        let next = &s[requests.len()];
        assert_eq!(next.2.message_type, MessageType::Discover);
        assert_ne!(next.2.xid, d.xid, "a new exchange");
        let last_gap = next.0 - requests[4].0;
        assert!(last_gap >= secs(63.0) && last_gap <= secs(65.0));
    }

    #[test]
    fn probes_the_acked_address_before_using_it() {
        let mut c = DhcpClient::new(MAC, cfg(), 4);
        let mut now = T0;
        let (_, d) = only_send(&drain(&mut c, now));
        deliver(&mut c, now, &reply(&d, MessageType::Offer));
        let (_, req) = only_send(&drain(&mut c, now));
        deliver(&mut c, now, &reply(&req, MessageType::Ack));
        assert_eq!(c.state(), ClientState::Checking);
        assert!(c.lease().is_none(), "not used before the check");
        let acts = run(&mut c, &mut now, T0 + Duration::from_secs(20));
        let probes: Vec<Instant> = acts
            .iter()
            .filter(|(_, a)| *a == ClientAction::ArpProbe(ADDR))
            .map(|(t, _)| *t)
            .collect();
        // RFC 5227 §2.1.1: "wait for a random time interval selected
        // uniformly in the range zero to PROBE_WAIT seconds, and should then
        // send PROBE_NUM probe packets, each of these probe packets spaced
        // randomly and uniformly, PROBE_MIN to PROBE_MAX seconds apart."
        assert_eq!(probes.len(), 3);
        assert!(probes[0] - T0 <= Duration::from_secs(1));
        for w in probes.windows(2) {
            let gap = w[1] - w[0];
            assert!(gap >= Duration::from_secs(1) && gap <= Duration::from_secs(2));
        }
        // "... until ANNOUNCE_WAIT seconds after the last probe packet is
        // sent", then the address is ours, configured and announced.
        let conf = configured(&acts);
        assert_eq!(conf.len(), 1);
        let (at, lease, old) = &conf[0];
        assert_eq!(*at - probes[2], Duration::from_secs(2));
        assert_eq!(*old, None);
        assert_eq!(lease.address, "192.168.1.57/24".parse().unwrap());
        assert_eq!(lease.router, Some(SERVER));
        assert_eq!(lease.dns, [SERVER]);
        assert_eq!(lease.domain.as_deref(), Some("lan"));
        assert_eq!(lease.server, SERVER);
        assert_eq!(
            (lease.lease_time, lease.t1, lease.t2),
            (
                Duration::from_secs(3600),
                Duration::from_secs(1800),
                Duration::from_secs(3150)
            )
        );
        assert_eq!(lease.acquired, T0, "from when the REQUEST went out");
        assert_eq!(c.lease(), Some(lease));
        assert_eq!(c.state(), ClientState::Bound);
        // RFC 5227 §2.3: ANNOUNCE_NUM announcements ANNOUNCE_INTERVAL apart.
        let ann: Vec<Instant> = acts
            .iter()
            .filter(|(_, a)| *a == ClientAction::ArpAnnounce(ADDR))
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(ann, [*at, *at + Duration::from_secs(2)]);
    }

    /// Runs a client to CHECKING with ADDR ACKed, returning the REQUEST.
    fn to_checking(c: &mut DhcpClient, now: Instant) -> Repr {
        let (_, d) = only_send(&drain(c, now));
        deliver(c, now, &reply(&d, MessageType::Offer));
        let (_, req) = only_send(&drain(c, now));
        deliver(c, now, &reply(&req, MessageType::Ack));
        assert_eq!(c.state(), ClientState::Checking);
        req
    }

    #[test]
    fn arp_from_another_host_for_the_address_declines_it() {
        // RFC 5227 §2.1.1: "if ... the host receives any ARP packet (Request
        // *or* Reply) on the interface where the probe is being performed,
        // where the packet's 'sender IP address' is the address being probed
        // for, then the host MUST treat this address as being in use".
        let mut c = DhcpClient::new(MAC, cfg(), 5);
        let mut now = T0;
        to_checking(&mut c, now);
        let _ = run(&mut c, &mut now, T0 + secs(1.5));
        c.on_arp(now, ADDR, OTHER_MAC, SERVER);
        assert_eq!(c.state(), ClientState::Init);
        assert_eq!(c.stats().conflicts, 1);
        let acts = drain(&mut c, now);
        let (tx, dec) = only_send(&acts);
        // RFC 2131 §4.4.1 table 5: DECLINE has 'ciaddr' 0, "Requested IP
        // address MUST" and "Server identifier MUST".
        assert_eq!(dec.message_type, MessageType::Decline);
        assert_eq!(
            (tx.src, tx.dst),
            (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
        );
        assert_eq!(dec.ciaddr, Ipv4Addr::UNSPECIFIED);
        assert_eq!(dec.options.requested_ip, Some(ADDR));
        assert_eq!(dec.options.server_id, Some(SERVER));
        assert!(!acts
            .iter()
            .any(|a| matches!(a, ClientAction::Configure { .. })));
        // RFC 2131 §3.1: "The client SHOULD wait a minimum of ten seconds
        // before restarting the configuration process".
        let declined_at = now;
        let acts = run(&mut c, &mut now, declined_at + Duration::from_secs(30));
        let s = sends(&acts);
        assert_eq!(s[0].2.message_type, MessageType::Discover);
        assert_eq!(s[0].0 - declined_at, Duration::from_secs(10));
        // The same address offered again is passed over; another is taken.
        let d = s[0].2.clone();
        now = s[0].0;
        let mut c2 = c;
        deliver(&mut c2, now, &reply(&d, MessageType::Offer));
        assert_eq!(c2.state(), ClientState::Selecting);
        let mut other = reply(&d, MessageType::Offer);
        other.yiaddr = ADDR2;
        deliver(&mut c2, now, &other);
        let (_, req) = only_send(&drain(&mut c2, now));
        assert_eq!(req.options.requested_ip, Some(ADDR2));
    }

    #[test]
    fn probe_from_another_host_for_the_address_is_a_conflict() {
        // RFC 5227 §2.1.1: "if during this period the host receives any ARP
        // Probe where the packet's 'target IP address' is the address being
        // probed for, and the packet's 'sender hardware address' is not the
        // hardware address of any of the host's interfaces, then the host
        // SHOULD similarly treat this as an address conflict".
        let mut c = DhcpClient::new(MAC, cfg(), 6);
        let mut now = T0;
        to_checking(&mut c, now);
        let _ = run(&mut c, &mut now, T0 + secs(4.0));
        c.on_arp(now, Ipv4Addr::UNSPECIFIED, OTHER_MAC, ADDR);
        assert_eq!(c.state(), ClientState::Init);
        let (_, dec) = only_send(&drain(&mut c, now));
        assert_eq!(dec.message_type, MessageType::Decline);
    }

    #[test]
    fn our_own_arp_and_unrelated_arp_are_not_conflicts() {
        let mut c = DhcpClient::new(MAC, cfg(), 7);
        let mut now = T0;
        to_checking(&mut c, now);
        let _ = run(&mut c, &mut now, T0 + secs(2.0));
        // Our own probes and announcements, looped back.
        c.on_arp(now, Ipv4Addr::UNSPECIFIED, MAC, ADDR);
        c.on_arp(now, ADDR, MAC, ADDR);
        // Other hosts talking about other addresses, or asking for ours
        // from an address they have (not a probe).
        c.on_arp(now, SERVER, OTHER_MAC, ADDR2);
        c.on_arp(now, SERVER, OTHER_MAC, ADDR);
        c.on_arp(now, Ipv4Addr::UNSPECIFIED, OTHER_MAC, ADDR2);
        assert_eq!(c.state(), ClientState::Checking);
        let _ = run(&mut c, &mut now, T0 + secs(20.0));
        assert_eq!(c.state(), ClientState::Bound);
        assert_eq!(c.stats().conflicts, 0);
        // Once bound, conflicts are the stack's to defend (RFC 5227 §2.4).
        c.on_arp(now, ADDR, OTHER_MAC, ADDR);
        assert_eq!(c.state(), ClientState::Bound);
    }

    #[test]
    fn conflicts_past_max_conflicts_are_rate_limited() {
        // RFC 5227 §2.1.1: "if the number of conflicts exceeds MAX_CONFLICTS
        // the host MUST limit the rate at which it probes for new addresses
        // to no more than one new address per RATE_LIMIT_INTERVAL."
        let mut c = DhcpClient::new(MAC, cfg(), 8);
        let mut now = T0;
        let mut waits = Vec::new();
        let mut declined_at = None;
        for i in 0..12u8 {
            let until = now + Duration::from_secs(120);
            let acts = run(&mut c, &mut now, until);
            let (t, _, d) = sends(&acts).into_iter().next().unwrap();
            assert_eq!(d.message_type, MessageType::Discover);
            if let Some(at) = declined_at {
                waits.push(t - at);
            }
            now = t;
            // A fresh address each time: declined ones would be skipped.
            let mut o = reply(&d, MessageType::Offer);
            o.yiaddr = Ipv4Addr::new(10, 0, 0, 10 + i);
            deliver(&mut c, now, &o);
            let (_, req) = only_send(&drain(&mut c, now));
            let mut a = reply(&req, MessageType::Ack);
            a.yiaddr = o.yiaddr;
            deliver(&mut c, now, &a);
            c.on_arp(now, o.yiaddr, OTHER_MAC, o.yiaddr);
            let (_, dec) = only_send(&drain(&mut c, now));
            assert_eq!(dec.message_type, MessageType::Decline);
            declined_at = Some(now);
        }
        // Conflicts 1..=9 wait the 10 s of RFC 2131; the 10th and later 60 s.
        assert_eq!(waits[..9], [Duration::from_secs(10); 9]);
        assert_eq!(waits[9..], [Duration::from_secs(60); 2]);
        assert_eq!(c.stats().conflicts, 12);
    }

    #[test]
    fn renews_at_t1_by_unicast_to_the_server() {
        let mut c = DhcpClient::new(MAC, cfg(), 9);
        let mut now = T0;
        bind(&mut c, &mut now);
        let bound = c.lease().unwrap().clone();
        let acts = run(&mut c, &mut now, T0 + Duration::from_secs(1800));
        let s = sends(&acts);
        assert_eq!(s.len(), 1);
        let (t, tx, req) = &s[0];
        // T1 is 1800 s after the REQUEST went out, not after the bind.
        assert_eq!(*t, T0 + Duration::from_secs(1800));
        assert_eq!(c.state(), ClientState::Renewing);
        // RFC 2131 §4.3.2, RENEWING: "unicast from the client to the server
        // ... 'server identifier' MUST NOT be filled in, 'requested IP
        // address' option MUST NOT be filled in, 'ciaddr' MUST be filled in
        // with client's IP address."
        assert_eq!((tx.src, tx.dst), (ADDR, SERVER));
        assert_eq!(req.ciaddr, ADDR);
        assert_eq!(
            (req.options.server_id, req.options.requested_ip),
            (None, None)
        );
        now = *t + Duration::from_secs(1);
        let ack = reply(req, MessageType::Ack);
        deliver(&mut c, now, &ack);
        let acts = drain(&mut c, now);
        assert_eq!(c.state(), ClientState::Bound);
        assert!(acts.is_empty(), "nothing changed for the stack: {acts:?}");
        let l = c.lease().unwrap();
        assert!(l.same_config(&bound));
        assert_eq!(l.acquired, *t);
        assert_eq!(l.renew_at(), *t + Duration::from_secs(1800));
    }

    /// The lease a client without probing takes from an ACK edited by `f`.
    fn lease_with(f: impl FnOnce(&mut Repr)) -> Lease {
        let mut cfg = cfg();
        cfg.arp.probe_num = 0;
        let mut c = DhcpClient::new(MAC, cfg, 10);
        let (_, d) = only_send(&drain(&mut c, T0));
        deliver(&mut c, T0, &reply(&d, MessageType::Offer));
        let (_, req) = only_send(&drain(&mut c, T0));
        let mut ack = reply(&req, MessageType::Ack);
        f(&mut ack);
        deliver(&mut c, T0, &ack);
        c.lease().expect("no probes: bound at once").clone()
    }

    #[test]
    fn t1_and_t2_default_to_half_and_seven_eighths_of_the_lease() {
        // RFC 2131 §4.4.5: "T1 defaults to (0.5 * duration_of_lease). T2
        // defaults to (0.875 * duration_of_lease)."
        let l = lease_with(|a| {
            a.options.renewal_time = None;
            a.options.rebinding_time = None;
            a.options.lease_time = Some(8000);
        });
        let s = Duration::from_secs;
        assert_eq!((l.t1, l.t2), (s(4000), s(7000)));
        // Values that break T1 <= T2 <= lease fall back, one at a time.
        let l = lease_with(|a| a.options.rebinding_time = Some(5000));
        assert_eq!((l.t1, l.t2), (s(1800), s(3150)));
        let l = lease_with(|a| {
            a.options.renewal_time = Some(3000);
            a.options.rebinding_time = Some(2000);
        });
        assert_eq!((l.t1, l.t2), (s(1800), s(2000)));
        let l = lease_with(|a| a.options.renewal_time = Some(3600));
        assert_eq!((l.t1, l.t2), (s(1800), s(3150)));
    }

    #[test]
    fn renewal_retransmits_at_half_the_remaining_time_then_rebinds_then_expires() {
        // RFC 2131 §4.4.5: "the client SHOULD wait one-half of the remaining
        // time until T2 (in RENEWING state) and one-half of the remaining
        // lease time (in REBINDING state), down to a minimum of 60 seconds,
        // before retransmitting the DHCPREQUEST message."
        let mut c = DhcpClient::new(MAC, cfg(), 12);
        let mut now = T0;
        bind(&mut c, &mut now);
        let lease = c.lease().unwrap().clone();
        let acts = run(&mut c, &mut now, T0 + Duration::from_secs(3601));
        let s = sends(&acts);
        let at = |x: &(Instant, Transmit, Repr)| (x.0 - T0).total_micros() as f64 / 1e6;
        let renew: Vec<_> = s.iter().filter(|x| x.1.dst == SERVER).collect();
        let rebind: Vec<_> = s
            .iter()
            .filter(|x| x.1.dst == Ipv4Addr::BROADCAST && x.2.message_type == MessageType::Request)
            .collect();
        // T1 1800, T2 3150: 1800, +675, +337.5, +168.75, +84.375, +60 (the
        // floor) = 3125.625; the next would be after T2.
        let want = [1800.0, 2475.0, 2812.5, 2981.25, 3065.625, 3125.625];
        let got: Vec<f64> = renew.iter().map(|x| at(x)).collect();
        assert_eq!(got, want);
        assert!(renew
            .iter()
            .all(|x| x.2.xid == renew[0].2.xid && x.1.src == ADDR));
        // REBINDING at T2: broadcast, 'ciaddr' ours, a new xid; then half
        // the time to expiry (3600), floored at 60 s: 3150, 3375, then 60 s
        // steps while less than 120 s remain.
        let got: Vec<f64> = rebind.iter().map(|x| at(x)).collect();
        assert_eq!(got, [3150.0, 3375.0, 3487.5, 3547.5]);
        assert!(rebind.iter().all(|x| x.2.ciaddr == ADDR && x.1.src == ADDR));
        assert!(rebind.iter().all(|x| x.2.xid == rebind[0].2.xid));
        assert_ne!(rebind[0].2.xid, renew[0].2.xid);
        // secs counts from the start of the renewal process, at T1.
        assert_eq!(rebind[0].2.secs, 1350);
        // RFC 2131 §4.4.5: "If the lease expires before the client receives
        // a DHCPACK, the client moves to INIT state, MUST immediately stop
        // any other network processing and requests network initialization
        // parameters".
        assert_eq!(deconfigured(&acts), [lease]);
        let discover = s
            .iter()
            .find(|x| x.2.message_type == MessageType::Discover)
            .unwrap();
        assert_eq!(discover.0, T0 + Duration::from_secs(3600));
        assert_eq!(
            discover.2.options.requested_ip,
            Some(ADDR),
            "asks for it back"
        );
        assert_eq!(c.state(), ClientState::Selecting);
        assert!(c.lease().is_none());
        assert_eq!(c.stats().expiries, 1);
    }

    #[test]
    fn rebinding_ack_from_another_server_keeps_the_address() {
        let mut c = DhcpClient::new(MAC, cfg(), 13);
        let mut now = T0;
        bind(&mut c, &mut now);
        let acts = run(&mut c, &mut now, T0 + Duration::from_secs(3150));
        let (_, tx, req) = sends(&acts).pop().unwrap();
        assert_eq!(
            (c.state(), tx.dst),
            (ClientState::Rebinding, Ipv4Addr::BROADCAST)
        );
        let mut ack = reply(&req, MessageType::Ack);
        let other = Ipv4Addr::new(192, 168, 1, 2);
        ack.options.server_id = Some(other);
        deliver(&mut c, now, &ack);
        let acts = drain(&mut c, now);
        assert_eq!(c.state(), ClientState::Bound);
        assert!(!acts
            .iter()
            .any(|a| matches!(a, ClientAction::Deconfigure(_))));
        assert_eq!(
            c.lease().unwrap().server,
            other,
            "renewals go to the new server"
        );
    }

    #[test]
    fn server_changing_router_and_mask_on_renew_reconfigures_in_place() {
        let mut c = DhcpClient::new(MAC, cfg(), 14);
        let mut now = T0;
        bind(&mut c, &mut now);
        let old = c.lease().unwrap().clone();
        let acts = run(&mut c, &mut now, T0 + Duration::from_secs(1800));
        let (_, _, req) = sends(&acts).pop().unwrap();
        let mut ack = reply(&req, MessageType::Ack);
        ack.options.routers = vec![Ipv4Addr::new(192, 168, 1, 254)];
        ack.options.subnet_mask = Some(Ipv4Addr::new(255, 255, 254, 0));
        deliver(&mut c, now, &ack);
        let acts: Vec<_> = drain(&mut c, now).into_iter().map(|a| (now, a)).collect();
        assert!(deconfigured(&acts).is_empty(), "the interface stays up");
        let conf = configured(&acts);
        assert_eq!(conf.len(), 1);
        let (_, new, was) = &conf[0];
        assert_eq!(was.as_ref(), Some(&old));
        assert_eq!(new.address, "192.168.1.57/23".parse().unwrap());
        assert_eq!(new.router, Some(Ipv4Addr::new(192, 168, 1, 254)));
        assert_eq!(c.state(), ClientState::Bound);
        assert!(!acts
            .iter()
            .any(|(_, a)| matches!(a, ClientAction::ArpProbe(_))));
    }

    #[test]
    fn renewal_ack_with_another_address_drops_the_old_and_checks_the_new() {
        let mut c = DhcpClient::new(MAC, cfg(), 15);
        let mut now = T0;
        bind(&mut c, &mut now);
        let old = c.lease().unwrap().clone();
        let acts = run(&mut c, &mut now, T0 + Duration::from_secs(1800));
        let (_, _, req) = sends(&acts).pop().unwrap();
        let mut ack = reply(&req, MessageType::Ack);
        ack.yiaddr = ADDR2;
        deliver(&mut c, now, &ack);
        let acts: Vec<_> = drain(&mut c, now).into_iter().map(|a| (now, a)).collect();
        assert_eq!(deconfigured(&acts), [old]);
        assert_eq!(c.state(), ClientState::Checking);
        let until = now + Duration::from_secs(10);
        let acts = run(&mut c, &mut now, until);
        assert!(acts
            .iter()
            .any(|(_, a)| *a == ClientAction::ArpProbe(ADDR2)));
        assert_eq!(configured(&acts)[0].1.address.addr(), ADDR2);
    }

    #[test]
    fn nak_while_renewing_drops_the_address_and_restarts() {
        // RFC 2131 §4.4.5 (figure 5): DHCPNAK in RENEWING → "Halt network",
        // back to INIT.
        let mut c = DhcpClient::new(MAC, cfg(), 16);
        let mut now = T0;
        bind(&mut c, &mut now);
        let lease = c.lease().unwrap().clone();
        let acts = run(&mut c, &mut now, T0 + Duration::from_secs(1800));
        let (_, _, req) = sends(&acts).pop().unwrap();
        deliver(&mut c, now, &nak(&req));
        let acts: Vec<_> = drain(&mut c, now).into_iter().map(|a| (now, a)).collect();
        assert_eq!(deconfigured(&acts), [lease]);
        let s = sends(&acts);
        assert_eq!(s[0].2.message_type, MessageType::Discover);
        assert_eq!(s[0].2.options.requested_ip, None);
        assert_eq!(c.stats().rx_nak, 1);
    }

    #[test]
    fn nak_in_requesting_restarts_and_repeated_naks_back_off() {
        let mut c = DhcpClient::new(MAC, cfg(), 17);
        let mut now = T0;
        let mut restarts = Vec::new();
        for _ in 0..5 {
            let until = now + Duration::from_secs(200);
            let acts = run(&mut c, &mut now, until);
            let (t, _, d) = sends(&acts).into_iter().next().unwrap();
            restarts.push(t);
            now = t;
            deliver(&mut c, now, &reply(&d, MessageType::Offer));
            let (_, req) = only_send(&drain(&mut c, now));
            // A NAK from another server than the one chosen is ignored.
            let mut n = nak(&req);
            n.options.server_id = Some(Ipv4Addr::new(192, 168, 1, 2));
            deliver(&mut c, now, &n);
            assert_eq!(c.state(), ClientState::Requesting);
            deliver(&mut c, now, &nak(&req));
            assert_eq!(c.state(), ClientState::Init);
        }
        let gaps: Vec<u64> = restarts
            .windows(2)
            .map(|w| (w[1] - w[0]).total_micros() / 1_000_000)
            .collect();
        // First NAK: at once; then 1, 2, 4 s.
        assert_eq!(gaps, [0, 1, 2, 4]);
    }

    #[test]
    fn init_reboot_requests_the_remembered_address() {
        // RFC 2131 §4.3.2, INIT-REBOOT: "'server identifier' MUST NOT be
        // filled in, 'requested IP address' option MUST be filled in with
        // client's notion of its previously assigned address. 'ciaddr' MUST
        // be zero. The client is seeking to verify a previously allocated,
        // cached configuration."
        let mut c = DhcpClient::new(
            MAC,
            ClientConfig {
                requested: Some(ADDR),
                ..cfg()
            },
            18,
        );
        assert_eq!(c.state(), ClientState::InitReboot);
        let mut now = T0;
        let (tx, req) = only_send(&drain(&mut c, now));
        assert_eq!(c.state(), ClientState::Rebooting);
        assert_eq!(
            (tx.src, tx.dst),
            (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
        );
        assert_eq!(req.message_type, MessageType::Request);
        assert_eq!(req.options.requested_ip, Some(ADDR));
        assert_eq!(req.options.server_id, None);
        assert_eq!(req.ciaddr, Ipv4Addr::UNSPECIFIED);
        deliver(&mut c, now, &reply(&req, MessageType::Ack));
        assert_eq!(c.state(), ClientState::Checking);
        let acts = run(&mut c, &mut now, T0 + Duration::from_secs(10));
        assert_eq!(configured(&acts)[0].1.address.addr(), ADDR);
    }

    #[test]
    fn init_reboot_nak_or_silence_falls_back_to_discovery() {
        let mut c = DhcpClient::new(
            MAC,
            ClientConfig {
                requested: Some(ADDR),
                ..cfg()
            },
            19,
        );
        let (_, req) = only_send(&drain(&mut c, T0));
        deliver(&mut c, T0, &nak(&req));
        let (_, d) = only_send(&drain(&mut c, T0));
        assert_eq!(d.message_type, MessageType::Discover);
        // No server answers: after the retransmissions, INIT.
        let mut c = DhcpClient::new(
            MAC,
            ClientConfig {
                requested: Some(ADDR),
                ..cfg()
            },
            20,
        );
        let mut now = T0;
        let acts = run(&mut c, &mut now, T0 + Duration::from_secs(200));
        let s = sends(&acts);
        let n = s
            .iter()
            .take_while(|x| x.2.message_type == MessageType::Request)
            .count();
        assert_eq!(n, 5);
        assert_eq!(s[n].2.message_type, MessageType::Discover);
    }

    #[test]
    fn rapid_commit_ack_to_discover_is_taken() {
        // RFC 4039 §4: "If the client receives a DHCPACK message with a
        // Rapid Commit option in response to the DHCPDISCOVER message, it
        // ... MAY apply the configuration parameters".
        let mut c = DhcpClient::new(MAC, cfg(), 21);
        let mut now = T0;
        let (_, d) = only_send(&drain(&mut c, now));
        // An ACK without the option is not a rapid commit: ignored.
        deliver(&mut c, now, &reply(&d, MessageType::Ack));
        assert_eq!(c.state(), ClientState::Selecting);
        let mut ack = reply(&d, MessageType::Ack);
        ack.options.rapid_commit = true;
        deliver(&mut c, now, &ack);
        assert_eq!(c.state(), ClientState::Checking);
        let acts = run(&mut c, &mut now, T0 + Duration::from_secs(10));
        assert!(!sends(&acts)
            .iter()
            .any(|x| x.2.message_type == MessageType::Request));
        assert_eq!(configured(&acts)[0].1.acquired, T0);
    }

    #[test]
    fn release_sends_dhcprelease_and_removes_the_address() {
        let mut c = DhcpClient::new(MAC, cfg(), 22);
        let mut now = T0;
        bind(&mut c, &mut now);
        let lease = c.lease().unwrap().clone();
        c.release(now);
        let acts: Vec<_> = drain(&mut c, now).into_iter().map(|a| (now, a)).collect();
        let s = sends(&acts);
        // RFC 2131 §4.4.6: the client "sends a DHCPRELEASE message to the
        // server"; table 5: 'ciaddr' set, "Server identifier MUST".
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].1.src, s[0].1.dst), (ADDR, SERVER));
        assert_eq!(s[0].2.message_type, MessageType::Release);
        assert_eq!(s[0].2.ciaddr, ADDR);
        assert_eq!(s[0].2.options.server_id, Some(SERVER));
        assert_eq!(deconfigured(&acts), std::slice::from_ref(&lease));
        assert_eq!(c.state(), ClientState::Stopped);
        assert_eq!(c.poll_at(), None);
        assert!(run(&mut c, &mut now, T0 + Duration::from_secs(10_000)).is_empty());
        // Without send_release: the address goes, nothing is sent.
        let mut c = DhcpClient::new(
            MAC,
            ClientConfig {
                send_release: false,
                ..cfg()
            },
            22,
        );
        let mut now = T0;
        bind(&mut c, &mut now);
        c.release(now);
        assert_eq!(drain(&mut c, now), [ClientAction::Deconfigure(lease)]);
    }

    #[test]
    fn infinite_lease_never_renews() {
        // RFC 2131 §3.3: "0xffffffff is reserved to represent 'infinity'".
        let mut c = DhcpClient::new(MAC, cfg(), 23);
        let (_, d) = only_send(&drain(&mut c, T0));
        deliver(&mut c, T0, &reply(&d, MessageType::Offer));
        let (_, req) = only_send(&drain(&mut c, T0));
        let mut ack = reply(&req, MessageType::Ack);
        ack.options.lease_time = Some(u32::MAX);
        deliver(&mut c, T0, &ack);
        let mut now = T0;
        let _ = run(&mut c, &mut now, T0 + Duration::from_secs(20));
        assert!(c.lease().unwrap().is_infinite());
        assert_eq!(c.poll_at(), None);
        let acts = run(&mut c, &mut now, T0 + Duration::from_secs(10 * 365 * 86400));
        assert!(acts.is_empty());
        assert_eq!(c.state(), ClientState::Bound);
    }

    #[test]
    fn unusable_acks_are_ignored_and_short_leases_clamped() {
        let mut c = DhcpClient::new(MAC, cfg(), 24);
        let (_, d) = only_send(&drain(&mut c, T0));
        deliver(&mut c, T0, &reply(&d, MessageType::Offer));
        let (_, req) = only_send(&drain(&mut c, T0));
        // RFC 2131 table 3: the lease time "MUST" be in a DHCPACK to a
        // DHCPREQUEST.
        let mut ack = reply(&req, MessageType::Ack);
        ack.options.lease_time = None;
        deliver(&mut c, T0, &ack);
        let mut ack = reply(&req, MessageType::Ack);
        ack.options.server_id = None;
        deliver(&mut c, T0, &ack);
        assert_eq!(c.state(), ClientState::Requesting);
        assert_eq!(c.stats().drop_unusable, 2);
        let mut ack = reply(&req, MessageType::Ack);
        ack.options.lease_time = Some(0);
        ack.options.subnet_mask = Some(Ipv4Addr::new(255, 0, 255, 0));
        deliver(&mut c, T0, &ack);
        let mut now = T0;
        let acts = run(&mut c, &mut now, T0 + Duration::from_secs(8));
        let lease = &configured(&acts)[0].1;
        assert_eq!(lease.lease_time, Duration::from_secs(10));
        // A mask with holes is not a prefix: the class's is used.
        assert_eq!(lease.address.prefix_len(), 24);
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn random_replies_and_arp_in_every_state_break_nothing() {
        // Replies that match the exchange in flight but carry random types,
        // addresses, times and masks, random bytes, ARP noise and clock
        // jumps: no panic, poll always settles, and a Configure never comes
        // without its address being checked or renewed first.
        let mut rng = XorShift(0x5eed_d4c9_0000_0001);
        for round in 0..40u64 {
            let mut cfg = cfg();
            if round.is_multiple_of(3) {
                cfg.requested = Some(ADDR);
            }
            let mut c = DhcpClient::new(MAC, cfg, round);
            let mut now = T0;
            let mut last: Option<Repr> = None;
            let mut configured: Option<Ipv4Cidr> = None;
            for _ in 0..400 {
                match rng.next() % 6 {
                    0 => now += Duration::from_micros(rng.next() % 5_000_000_000),
                    1 => {
                        let a = Ipv4Addr::from(rng.next() as u32 & 0xff00_00ff | 0x0a00_0000);
                        let who = if rng.next().is_multiple_of(2) {
                            MAC
                        } else {
                            OTHER_MAC
                        };
                        c.on_arp(now, a, who, ADDR);
                    }
                    2 => {
                        let n = (rng.next() % 400) as usize;
                        let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                        c.on_message(now, &junk);
                    }
                    _ => {
                        let Some(req) = &last else { continue };
                        let t = MessageType::from_u8(1 + (rng.next() % 8) as u8).unwrap();
                        let mut r = reply(req, t);
                        r.yiaddr = Ipv4Addr::from(0x0a00_0000 | (rng.next() as u32 & 0xff));
                        r.options.lease_time = Some(rng.next() as u32 % 4000);
                        r.options.renewal_time = Some(rng.next() as u32 % 4000);
                        r.options.rebinding_time = Some(rng.next() as u32 % 4000);
                        r.options.subnet_mask = Some(Ipv4Addr::from(rng.next() as u32));
                        r.options.rapid_commit = rng.next().is_multiple_of(2);
                        if rng.next().is_multiple_of(4) {
                            r.options.server_id = None;
                        }
                        deliver(&mut c, now, &r);
                    }
                }
                let mut n = 0;
                while let Some(a) = c.poll(now) {
                    n += 1;
                    assert!(n < 100, "poll does not settle");
                    match a {
                        ClientAction::Send(tx) => last = Some(parse(&tx)),
                        ClientAction::Configure { lease, old } => {
                            assert_eq!(old.map(|l| l.address), configured);
                            configured = Some(lease.address);
                        }
                        ClientAction::Deconfigure(l) => {
                            assert_eq!(Some(l.address), configured);
                            configured = None;
                        }
                        _ => {}
                    }
                }
                assert_eq!(configured, c.lease().map(|l| l.address), "{:?}", c.state());
                if let Some(t) = c.poll_at() {
                    assert!(t > now || t == Instant::ZERO || c.poll(now).is_none());
                }
            }
        }
    }
}
