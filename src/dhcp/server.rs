//! The DHCPv4 server (RFC 2131 §4.3) for one subnet: a pool of dynamic
//! addresses, static reservations, and a lease table bounded in size, kept
//! durable by a [`LeaseStore`].
//!
//! Sans-IO like the client: the stack hands in every DHCP message that
//! reaches port 67 ([`DhcpServer::on_message`]) with the Ethernet source it
//! came from, and carries out what [`DhcpServer::poll`] returns until it
//! returns `None`, then calls it again at [`DhcpServer::poll_at`].
//!
//! Before offering an address it has not bound to this client already, the
//! server asks the stack to check nobody uses it ([`ServerAction::Probe`]:
//! an ARP probe, or an ICMP echo as dnsmasq does). The offer waits for the
//! answer ([`DhcpServer::on_probe_result`]) or for `probe_timeout` to pass
//! in silence, while other clients are served. A binding is written to the
//! store before its DHCPACK is queued; if the write fails, no ACK goes out
//! and the client retransmits.
//!
//! What one client can take is bounded: a token bucket per source MAC
//! limits the messages it may send, and `max_per_mac` the addresses
//! requests from one Ethernet source may hold at once, however many
//! `chaddr`s or client ids they claim. The lease table never grows past
//! `max_leases`. Everything refused is counted in [`ServerStats`].

use core::fmt;
use core::net::Ipv4Addr;
use std::collections::{HashMap, VecDeque};

use super::store::{ClientKey, LeaseStore, MemoryStore, StoredLease};
use super::wire::{opt, MessageType, Op, Repr, CLIENT_PORT, DEFAULT_MAX_MESSAGE_LEN, SERVER_PORT};
use crate::eth::MacAddr;
use crate::ip::cidr::Ipv4Cidr;
use crate::time::{Duration, Instant};

/// A token bucket: `burst` messages at once, then one per `interval`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub burst: u32,
    pub interval: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Our address on the subnet: the server identifier (option 54) and the
    /// source of every reply.
    pub address: Ipv4Addr,
    pub subnet: Ipv4Cidr,
    /// Inclusive ranges of dynamic addresses, inside `subnet`. Reserved
    /// addresses, ours, and the subnet's network and broadcast addresses
    /// are never handed out from them.
    pub pools: Vec<(Ipv4Addr, Ipv4Addr)>,
    /// Fixed addresses by client id or MAC (a MAC reservation matches a
    /// client whatever client id it sends).
    pub reservations: Vec<(ClientKey, Ipv4Addr)>,
    /// `Duration::MAX` grants infinite leases.
    pub lease_time: Duration,
    /// T1 and T2 (options 58, 59); `None`: 0.5 and 0.875 of the lease.
    pub renewal_time: Option<Duration>,
    pub rebinding_time: Option<Duration>,
    /// Option 3.
    pub routers: Vec<Ipv4Addr>,
    /// Option 6.
    pub dns: Vec<Ipv4Addr>,
    /// Option 15.
    pub domain: Option<String>,
    /// Any other option, sent when the client's parameter request list asks
    /// for it (or when it sent none).
    pub extra_options: Vec<(u8, Vec<u8>)>,
    /// Entries in the lease table: bindings, offers, probes and quarantined
    /// addresses together.
    pub max_leases: usize,
    /// Per source MAC (the relay's clients: per `chaddr`); `None`: no limit.
    pub rate_limit: Option<RateLimit>,
    /// Source MACs tracked by the rate limiter.
    pub rate_table_max: usize,
    /// Addresses (bound, offered or being probed) that requests from one
    /// Ethernet source may hold; `None`: no limit.
    pub max_per_mac: Option<usize>,
    /// Check an address is unused before offering it.
    pub probe: bool,
    /// Silence this long after a probe means the address is free.
    pub probe_timeout: Duration,
    /// Probes outstanding at once; more DISCOVERs wait for the client's
    /// retransmission.
    pub max_pending_probes: usize,
    /// How long an offered address is held for the client.
    pub offer_hold: Duration,
    /// How long a declined or in-use address is kept out of the pool.
    pub quarantine: Duration,
    /// Answer a DISCOVER carrying option 80 with an ACK (RFC 4039).
    pub rapid_commit: bool,
    /// Answer INIT-REBOOT and renewals from clients we have no record of
    /// (after a lost lease file) with an ACK when the address is free,
    /// instead of RFC 2131's silence.
    pub authoritative: bool,
}

impl ServerConfig {
    /// A server at `server` (its address and prefix) handing out every
    /// other host address of the subnet for an hour, itself as the router.
    pub fn new(server: Ipv4Cidr) -> ServerConfig {
        let net = u32::from(server.network());
        let last = match server.broadcast() {
            Some(b) => u32::from(b) - 1,
            None => net | !u32::from(server.netmask()),
        };
        let first = if server.prefix_len() >= 31 {
            net
        } else {
            net + 1
        };
        ServerConfig {
            address: server.addr(),
            subnet: server,
            pools: vec![(Ipv4Addr::from(first), Ipv4Addr::from(last))],
            reservations: Vec::new(),
            lease_time: Duration::from_secs(3600),
            renewal_time: None,
            rebinding_time: None,
            routers: vec![server.addr()],
            dns: Vec::new(),
            domain: None,
            extra_options: Vec::new(),
            max_leases: 4096,
            rate_limit: Some(RateLimit {
                burst: 8,
                interval: Duration::from_secs(1),
            }),
            rate_table_max: 4096,
            max_per_mac: Some(8),
            probe: true,
            probe_timeout: Duration::from_millis(500),
            max_pending_probes: 64,
            offer_hold: Duration::from_secs(60),
            quarantine: Duration::from_secs(600),
            rapid_commit: true,
            authoritative: false,
        }
    }

    /// Checks what [`DhcpServer::new`] relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.subnet.contains(self.address) {
            return Err(ConfigError::AddressOutsideSubnet);
        }
        for &(a, b) in &self.pools {
            if u32::from(a) > u32::from(b) {
                return Err(ConfigError::PoolReversed);
            }
            if !self.subnet.contains(a) || !self.subnet.contains(b) {
                return Err(ConfigError::PoolOutsideSubnet);
            }
        }
        let mut ranges: Vec<(u32, u32)> = self
            .pools
            .iter()
            .map(|&(a, b)| (a.into(), b.into()))
            .collect();
        ranges.sort();
        if ranges.windows(2).any(|w| w[1].0 <= w[0].1) {
            return Err(ConfigError::PoolsOverlap);
        }
        for (i, (k, a)) in self.reservations.iter().enumerate() {
            if !self.subnet.contains(*a) || *a == self.address {
                return Err(ConfigError::ReservationOutsideSubnet);
            }
            if self.reservations[..i]
                .iter()
                .any(|(k2, a2)| k2 == k || a2 == a)
            {
                return Err(ConfigError::DuplicateReservation);
            }
        }
        if self.lease_time < Duration::from_secs(60) {
            return Err(ConfigError::LeaseTooShort);
        }
        if self.max_leases == 0 || self.rate_table_max == 0 || self.max_pending_probes == 0 {
            return Err(ConfigError::ZeroLimit);
        }
        if let Some(r) = self.rate_limit {
            if r.burst == 0 || r.interval == Duration::ZERO {
                return Err(ConfigError::ZeroLimit);
            }
        }
        for (code, v) in &self.extra_options {
            // The server writes the typed ones itself (3, 6 and 15 have
            // their own fields), and PAD and END frame the rest.
            if TYPED_OPTIONS.contains(code) || v.len() > 1024 {
                return Err(ConfigError::BadExtraOption);
            }
        }
        Ok(())
    }
}

/// Options with a typed field in [`super::wire::Options`]: not allowed in
/// `extra_options`.
const TYPED_OPTIONS: [u8; 20] = [
    opt::PAD,
    opt::SUBNET_MASK,
    opt::ROUTER,
    opt::DNS,
    opt::HOSTNAME,
    opt::DOMAIN_NAME,
    opt::BROADCAST_ADDR,
    opt::REQUESTED_IP,
    opt::LEASE_TIME,
    opt::OVERLOAD,
    opt::MESSAGE_TYPE,
    opt::SERVER_ID,
    opt::PARAMETER_LIST,
    opt::MESSAGE,
    opt::MAX_MESSAGE_SIZE,
    opt::RENEWAL_TIME,
    opt::REBINDING_TIME,
    opt::CLIENT_ID,
    opt::RAPID_COMMIT,
    opt::END,
];

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    AddressOutsideSubnet,
    PoolReversed,
    PoolOutsideSubnet,
    PoolsOverlap,
    ReservationOutsideSubnet,
    DuplicateReservation,
    LeaseTooShort,
    ZeroLimit,
    BadExtraOption,
}

impl ConfigError {
    pub fn as_str(&self) -> &'static str {
        match self {
            ConfigError::AddressOutsideSubnet => "the server address is not in the subnet",
            ConfigError::PoolReversed => "a pool range ends before it starts",
            ConfigError::PoolOutsideSubnet => "a pool range leaves the subnet",
            ConfigError::PoolsOverlap => "pool ranges overlap",
            ConfigError::ReservationOutsideSubnet => {
                "a reservation is outside the subnet or is the server's address"
            }
            ConfigError::DuplicateReservation => "two reservations share a client or an address",
            ConfigError::LeaseTooShort => "the lease time is under 60 s",
            ConfigError::ZeroLimit => "a limit is zero",
            ConfigError::BadExtraOption => {
                "an extra option is one with its own setting or that the server sets itself, or is over 1024 bytes"
            }
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ConfigError {}

/// A reply for the stack to send: UDP from our address port 67.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub dst_ip: Ipv4Addr,
    /// 68 to a client, 67 to a relay agent.
    pub dst_port: u16,
    /// `Some`: send the frame to this MAC without ARP (the broadcast
    /// address, or a client that has no address yet to answer ARP with).
    /// `None`: route `dst_ip` and resolve the next hop as usual.
    pub dst_mac: Option<MacAddr>,
    pub payload: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerAction {
    Reply(Reply),
    /// Check whether anyone uses this address (ARP probe or ICMP echo) and
    /// report with [`DhcpServer::on_probe_result`]; silence for
    /// `probe_timeout` counts as free, so reporting `false` is optional.
    Probe(Ipv4Addr),
}

/// Counters; every message not answered is counted under its reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    pub rx: u64,
    pub discovers: u64,
    pub requests: u64,
    pub declines: u64,
    pub releases: u64,
    pub informs: u64,
    pub offers: u64,
    pub acks: u64,
    pub naks: u64,
    pub probes: u64,
    pub probes_in_use: u64,
    pub probes_timed_out: u64,
    pub drop_malformed: u64,
    /// BOOTREPLY, or a server's message type from a client.
    pub drop_not_request: u64,
    /// `chaddr` not an Ethernet unicast MAC.
    pub refused_hardware: u64,
    pub refused_rate_limited: u64,
    pub refused_per_mac: u64,
    pub refused_table_full: u64,
    pub refused_pool_exhausted: u64,
    pub refused_probe_backlog: u64,
    /// The client's reserved address is quarantined or held by another.
    pub refused_reserved_unavailable: u64,
    /// Relayed from a `giaddr` outside our subnet.
    pub ignored_wrong_relay: u64,
    /// A REQUEST naming another server (the client chose it).
    pub ignored_other_server: u64,
    /// INIT-REBOOT or renewal from a client we have no record of: RFC 2131
    /// §4.3.2 "MUST remain silent".
    pub ignored_unknown_client: u64,
    /// A REQUEST with neither server id, requested address nor `ciaddr`,
    /// or an INFORM without `ciaddr`.
    pub ignored_bad_request: u64,
    /// DECLINE or RELEASE of an address the client does not hold.
    pub ignored_not_holder: u64,
    pub store_errors: u64,
    /// Extra options left out to fit the client's maximum message size.
    pub options_dropped: u64,
    /// Rate limiter entries evicted while the table was full.
    pub rate_evictions: u64,
}

/// One address in the table.
#[derive(Clone, Debug)]
struct Entry {
    /// `None` for a quarantined address.
    key: Option<ClientKey>,
    mac: MacAddr,
    /// Who asked: the Ethernet source, or `chaddr` behind a relay.
    src: MacAddr,
    hostname: Option<String>,
    state: State,
}

#[derive(Clone, Debug)]
enum State {
    /// Waiting for the stack's check before an offer (or a rapid-commit
    /// ACK) answers `req`.
    Probing {
        gen: u64,
        deadline: Instant,
        req: Box<Repr>,
        attempt: u8,
    },
    Offered {
        until: Instant,
    },
    Bound {
        expires: Instant,
    },
    Quarantined {
        until: Instant,
    },
}

impl Entry {
    /// Holds its address at `now`: nobody else may have it.
    fn active(&self, now: Instant) -> bool {
        match &self.state {
            State::Probing { .. } => true,
            State::Offered { until } | State::Quarantined { until } => *until > now,
            State::Bound { expires } => *expires > now,
        }
    }

    fn held_by(&self, key: &ClientKey) -> bool {
        self.key.as_ref() == Some(key)
    }

    /// When it stopped holding its address (for choosing what to reuse).
    fn stale_since(&self) -> Instant {
        match &self.state {
            State::Probing { deadline, .. } => *deadline,
            State::Offered { until } | State::Quarantined { until } => *until,
            State::Bound { expires } => *expires,
        }
    }
}

#[derive(Clone, Debug)]
struct Bucket {
    tokens: u32,
    /// Refill accounted up to here.
    at: Instant,
}

/// The longest client identifier (option 61) a client is known by: one
/// option's worth. RFC 3396 lets a sender concatenate many, but RFC 6842
/// makes us echo it, and a reply that long cannot reach the client; the
/// message is refused as malformed.
pub const MAX_CLIENT_ID_LEN: usize = 255;
/// The longest hostname (option 12) kept with a lease (RFC 1035's limit
/// on a domain name); a longer one is left out.
pub const MAX_HOSTNAME_LEN: usize = 255;

/// Attempts at finding an unused address for one DISCOVER.
const MAX_PROBE_ATTEMPTS: u8 = 3;

pub struct DhcpServer<S: LeaseStore = MemoryStore> {
    cfg: ServerConfig,
    store: S,
    /// Dynamic ranges as (first, size), sorted.
    ranges: Vec<(u32, u32)>,
    pool_size: u64,
    reserved_by_key: HashMap<ClientKey, Ipv4Addr>,
    reserved_addrs: HashMap<Ipv4Addr, ClientKey>,
    entries: HashMap<Ipv4Addr, Entry>,
    by_key: HashMap<ClientKey, Ipv4Addr>,
    /// Probe deadlines in order (all share one timeout); stale ones are
    /// skipped by generation.
    probes: VecDeque<(Instant, Ipv4Addr, u64)>,
    pending_probes: usize,
    gen: u64,
    rate: HashMap<MacAddr, Bucket>,
    /// Sources in the order they entered `rate`, oldest first (with some
    /// already gone): who to evict when it is full.
    rate_order: VecDeque<MacAddr>,
    last_rate_sweep: Instant,
    /// Per source MAC, addresses its requests created (pruned lazily).
    holders: HashMap<MacAddr, Vec<Ipv4Addr>>,
    actions: VecDeque<ServerAction>,
    stats: ServerStats,
}

impl<S: LeaseStore> fmt::Debug for DhcpServer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhcpServer")
            .field("address", &self.cfg.address)
            .field("entries", &self.entries.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The lease table's view of a binding.
pub type ServerLease = StoredLease;

impl<S: LeaseStore> DhcpServer<S> {
    /// A server for `cfg`, with the leases `store` holds (those outside the
    /// subnet are dropped from it; past `max_leases`, the longest-lived are
    /// kept).
    pub fn new(cfg: ServerConfig, store: S, now: Instant) -> Result<DhcpServer<S>, ConfigError> {
        cfg.validate()?;
        let reserved_addrs: HashMap<Ipv4Addr, ClientKey> = cfg
            .reservations
            .iter()
            .map(|(k, a)| (*a, k.clone()))
            .collect();
        let reserved_by_key = cfg.reservations.iter().cloned().collect();
        let mut ranges: Vec<(u32, u32)> = cfg
            .pools
            .iter()
            .map(|&(a, b)| (u32::from(a), u32::from(b) - u32::from(a) + 1))
            .collect();
        ranges.sort();
        let pool_size = ranges.iter().map(|r| u64::from(r.1)).sum();
        let mut loaded = store.leases();
        loaded.sort_by_key(|l| core::cmp::Reverse(l.expires));
        let mut s = DhcpServer {
            cfg,
            store,
            ranges,
            pool_size,
            reserved_by_key,
            reserved_addrs,
            entries: HashMap::new(),
            by_key: HashMap::new(),
            probes: VecDeque::new(),
            pending_probes: 0,
            gen: 0,
            rate: HashMap::new(),
            rate_order: VecDeque::new(),
            last_rate_sweep: now,
            holders: HashMap::new(),
            actions: VecDeque::new(),
            stats: ServerStats::default(),
        };
        for l in loaded {
            let keep = s.allocatable(l.addr, &l.client)
                && s.entries.len() < s.cfg.max_leases
                && !s.entries.contains_key(&l.addr)
                && !s.by_key.contains_key(&l.client);
            if !keep {
                if s.store.remove(l.addr).is_err() {
                    s.stats.store_errors += 1;
                }
                continue;
            }
            s.by_key.insert(l.client.clone(), l.addr);
            s.holders.entry(l.mac).or_default().push(l.addr);
            s.entries.insert(
                l.addr,
                Entry {
                    key: Some(l.client),
                    mac: l.mac,
                    src: l.mac,
                    hostname: l.hostname,
                    state: State::Bound { expires: l.expires },
                },
            );
        }
        Ok(s)
    }

    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Entries in the lease table (bound, offered, probing, quarantined).
    pub fn table_len(&self) -> usize {
        self.entries.len()
    }

    /// Bindings that have not expired at `now`.
    pub fn leases(&self, now: Instant) -> impl Iterator<Item = ServerLease> + '_ {
        self.entries
            .iter()
            .filter_map(move |(a, e)| match (&e.state, &e.key) {
                (State::Bound { expires }, Some(k)) if *expires > now => Some(StoredLease {
                    addr: *a,
                    client: k.clone(),
                    mac: e.mac,
                    expires: *expires,
                    hostname: e.hostname.clone(),
                }),
                _ => None,
            })
    }

    /// The next thing for the stack to do, running due probe timeouts
    /// first. Call until `None`.
    pub fn poll(&mut self, now: Instant) -> Option<ServerAction> {
        if self.actions.is_empty() {
            while let Some(&(deadline, addr, gen)) = self.probes.front() {
                if deadline > now {
                    break;
                }
                self.probes.pop_front();
                if self.probing(addr, gen) {
                    self.stats.probes_timed_out += 1;
                    self.probe_done(now, addr, false);
                }
            }
        }
        self.actions.pop_front()
    }

    /// `Instant::ZERO` (always due) while actions are queued; else the next
    /// probe timeout.
    pub fn poll_at(&self) -> Option<Instant> {
        if !self.actions.is_empty() {
            return Some(Instant::ZERO);
        }
        self.probes.front().map(|p| p.0)
    }

    /// The answer to a [`ServerAction::Probe`]: `in_use` if anyone replied.
    pub fn on_probe_result(&mut self, now: Instant, addr: Ipv4Addr, in_use: bool) {
        let gen = match self.entries.get(&addr) {
            Some(Entry {
                state: State::Probing { gen, .. },
                ..
            }) => *gen,
            _ => return,
        };
        if self.probing(addr, gen) {
            self.probe_done(now, addr, in_use);
        }
    }

    fn probing(&self, addr: Ipv4Addr, gen: u64) -> bool {
        matches!(self.entries.get(&addr), Some(Entry { state: State::Probing { gen: g, .. }, .. }) if *g == gen)
    }

    fn probe_done(&mut self, now: Instant, addr: Ipv4Addr, in_use: bool) {
        let Some(e) = self.entries.get_mut(&addr) else {
            return;
        };
        let State::Probing { req, attempt, .. } = core::mem::replace(
            &mut e.state,
            State::Offered {
                until: now + self.cfg.offer_hold,
            },
        ) else {
            return;
        };
        self.pending_probes -= 1;
        let src = e.src;
        if !in_use {
            self.answer_discover(now, addr, &req);
            return;
        }
        // Someone answered for an address we thought free: keep it out of
        // the pool for a while, and try another for this client.
        self.stats.probes_in_use += 1;
        let key = e.key.take();
        e.state = State::Quarantined {
            until: now + self.cfg.quarantine,
        };
        if let Some(k) = key {
            if self.by_key.get(&k) == Some(&addr) {
                self.by_key.remove(&k);
            }
            if attempt + 1 < MAX_PROBE_ATTEMPTS {
                self.discover(now, &req, k, src, attempt + 1);
            }
        }
    }

    /// A DHCP message that reached port 67, with the Ethernet source of its
    /// frame.
    pub fn on_message(&mut self, now: Instant, udp_payload: &[u8], from_mac: MacAddr) {
        self.stats.rx += 1;
        let mut req = match Repr::parse_bytes(udp_payload) {
            Ok(r) => r,
            Err(_) => {
                self.stats.drop_malformed += 1;
                return;
            }
        };
        if req
            .options
            .client_id
            .as_ref()
            .is_some_and(|id| id.len() > MAX_CLIENT_ID_LEN)
        {
            self.stats.drop_malformed += 1;
            return;
        }
        if req
            .options
            .hostname
            .as_ref()
            .is_some_and(|h| h.len() > MAX_HOSTNAME_LEN)
        {
            req.options.hostname = None;
        }
        if req.op != Op::Request {
            self.stats.drop_not_request += 1;
            return;
        }
        let Some(chaddr) = req
            .client_mac()
            .filter(|m| m.is_unicast() && *m != MacAddr::ZERO)
        else {
            self.stats.refused_hardware += 1;
            return;
        };
        let relayed = !req.giaddr.is_unspecified();
        if relayed && !self.cfg.subnet.contains(req.giaddr) {
            self.stats.ignored_wrong_relay += 1;
            return;
        }
        // Behind a relay every frame comes from the relay's MAC: the client
        // can only be told apart by what it claims.
        let src = if relayed { chaddr } else { from_mac };
        if !self.rate_ok(now, src) {
            self.stats.refused_rate_limited += 1;
            return;
        }
        // RFC 2131 §4.2: the client identifier if there is one, else
        // `chaddr`.
        let key = match &req.options.client_id {
            Some(id) => ClientKey::Id(id.clone()),
            None => ClientKey::Mac(chaddr),
        };
        match req.message_type {
            MessageType::Discover => {
                self.stats.discovers += 1;
                self.discover(now, &req, key, src, 0);
            }
            MessageType::Request => {
                self.stats.requests += 1;
                self.request(now, &req, key, src);
            }
            MessageType::Decline => {
                self.stats.declines += 1;
                self.decline(now, &req, key);
            }
            MessageType::Release => {
                self.stats.releases += 1;
                self.release(now, &req, key);
            }
            MessageType::Inform => {
                self.stats.informs += 1;
                self.inform(&req);
            }
            _ => self.stats.drop_not_request += 1,
        }
    }

    fn rate_ok(&mut self, now: Instant, src: MacAddr) -> bool {
        let Some(limit) = self.cfg.rate_limit else {
            return true;
        };
        if !self.rate.contains_key(&src) {
            if self.rate.len() >= self.cfg.rate_table_max {
                self.evict_rate(now, limit);
            }
            self.rate_order.push_back(src);
        }
        let b = self.rate.entry(src).or_insert(Bucket {
            tokens: limit.burst,
            at: now,
        });
        let step = limit.interval.total_micros().max(1);
        let earned = now.saturating_since(b.at).total_micros() / step;
        if earned > 0 {
            b.tokens = (u64::from(b.tokens) + earned).min(u64::from(limit.burst)) as u32;
            b.at = if b.tokens == limit.burst {
                now
            } else {
                b.at + Duration::from_micros(earned * step)
            };
        }
        if b.tokens == 0 {
            return false;
        }
        b.tokens -= 1;
        true
    }

    /// Makes room for one more source: first every bucket that has refilled
    /// (its source went quiet), at most once per refill time so a flood of
    /// new sources does not rescan the table per message; else any one.
    fn evict_rate(&mut self, now: Instant, limit: RateLimit) {
        let refill = limit.interval.saturating_mul(limit.burst);
        if now.saturating_since(self.last_rate_sweep) >= refill {
            self.last_rate_sweep = now;
            let step = limit.interval.total_micros().max(1);
            self.rate.retain(|_, b| {
                u64::from(b.tokens) + now.saturating_since(b.at).total_micros() / step
                    < u64::from(limit.burst)
            });
        }
        // Else the oldest source: under a flood of new ones, a bucket lasts
        // for `rate_table_max` newcomers.
        while self.rate.len() >= self.cfg.rate_table_max {
            let Some(k) = self.rate_order.pop_front() else {
                break;
            };
            if self.rate.remove(&k).is_some() {
                self.stats.rate_evictions += 1;
            }
        }
        if self.rate_order.len() > 2 * self.cfg.rate_table_max {
            let rate = &self.rate;
            self.rate_order.retain(|k| rate.contains_key(k));
        }
    }

    /// Whether `addr` may be bound to `key` at all: in a pool and not
    /// reserved for another, or reserved for this key.
    fn allocatable(&self, addr: Ipv4Addr, key: &ClientKey) -> bool {
        match self.reserved_addrs.get(&addr) {
            Some(k) => k == key,
            None => self.in_pool(addr),
        }
    }

    fn in_pool(&self, addr: Ipv4Addr) -> bool {
        let a = u32::from(addr);
        self.ranges
            .iter()
            .any(|&(first, n)| a >= first && a - first < n)
            && self.dynamic(addr)
    }

    /// Not ours, not the subnet's network or broadcast, not reserved.
    fn dynamic(&self, addr: Ipv4Addr) -> bool {
        addr != self.cfg.address
            && (self.cfg.subnet.prefix_len() >= 31
                || (addr != self.cfg.subnet.network() && Some(addr) != self.cfg.subnet.broadcast()))
            && !self.reserved_addrs.contains_key(&addr)
    }

    fn reservation(&self, key: &ClientKey, mac: MacAddr) -> Option<Ipv4Addr> {
        self.reserved_by_key
            .get(key)
            .or_else(|| self.reserved_by_key.get(&ClientKey::Mac(mac)))
            .copied()
    }

    /// The key the table holds a reserved address under: the reservation's
    /// own, so that a client matched by MAC keeps it whatever id it sends.
    fn reserved_key(&self, addr: Ipv4Addr, key: &ClientKey) -> ClientKey {
        self.reserved_addrs
            .get(&addr)
            .cloned()
            .unwrap_or_else(|| key.clone())
    }

    /// RFC 2131 §4.3.1's order: the reservation, the client's current or
    /// previous binding, the address it asks for, then a free one.
    fn discover(&mut self, now: Instant, req: &Repr, key: ClientKey, src: MacAddr, attempt: u8) {
        let Some(mac) = req.client_mac() else {
            return;
        };
        if let Some(addr) = self.reservation(&key, mac) {
            let key = self.reserved_key(addr, &key);
            match self.entries.get(&addr) {
                Some(e) if e.held_by(&key) => self.offer_existing(now, addr, req),
                Some(e) if e.active(now) => self.stats.refused_reserved_unavailable += 1,
                _ => self.start_offer(now, addr, key, req, src, attempt),
            }
            return;
        }
        if let Some(&addr) = self.by_key.get(&key) {
            if self.entries.get(&addr).is_some_and(|e| e.held_by(&key)) {
                self.offer_existing(now, addr, req);
                return;
            }
        }
        let requested = req
            .options
            .requested_ip
            .filter(|&a| self.in_pool(a) && self.entries.get(&a).is_none_or(|e| !e.active(now)));
        let Some(addr) = requested.or_else(|| self.free_address(now, &key)) else {
            self.stats.refused_pool_exhausted += 1;
            return;
        };
        self.start_offer(now, addr, key, req, src, attempt);
    }

    /// Answers a client that holds `addr` already (bound, offered, or
    /// being probed for it).
    fn offer_existing(&mut self, now: Instant, addr: Ipv4Addr, req: &Repr) {
        let hold = now + self.cfg.offer_hold;
        let Some(e) = self.entries.get_mut(&addr) else {
            return;
        };
        match &mut e.state {
            // A retransmitted DISCOVER: answer its xid when the probe ends.
            State::Probing { req: r, .. } => **r = req.clone(),
            State::Offered { until } => {
                *until = hold;
                self.answer_discover(now, addr, req);
            }
            State::Bound { expires } if *expires > now => self.answer_discover(now, addr, req),
            // An expired binding is offered again like a fresh one, but
            // without a probe: nobody else has had it since.
            _ => {
                e.state = State::Offered { until: hold };
                self.answer_discover(now, addr, req);
            }
        }
    }

    /// A new entry for `key` at `addr`: probed first if configured.
    fn start_offer(
        &mut self,
        now: Instant,
        addr: Ipv4Addr,
        key: ClientKey,
        req: &Repr,
        src: MacAddr,
        attempt: u8,
    ) {
        let Some(mac) = req.client_mac() else {
            return;
        };
        if self.cfg.probe && self.pending_probes >= self.cfg.max_pending_probes {
            self.stats.refused_probe_backlog += 1;
            return;
        }
        if !self.make_room(now, addr, &key, src) {
            return;
        }
        let state = if self.cfg.probe {
            self.gen += 1;
            let deadline = now + self.cfg.probe_timeout;
            self.probes.push_back((deadline, addr, self.gen));
            self.pending_probes += 1;
            self.stats.probes += 1;
            self.actions.push_back(ServerAction::Probe(addr));
            State::Probing {
                gen: self.gen,
                deadline,
                req: Box::new(req.clone()),
                attempt,
            }
        } else {
            State::Offered {
                until: now + self.cfg.offer_hold,
            }
        };
        self.insert(
            addr,
            Entry {
                key: Some(key),
                mac,
                src,
                hostname: req.options.hostname.clone(),
                state,
            },
        );
        if !self.cfg.probe {
            self.answer_discover(now, addr, req);
        }
    }

    /// Checks the per-source cap and the table bound before `key` takes a
    /// new entry at `addr`, evicting stale entries if the table is full.
    fn make_room(&mut self, now: Instant, addr: Ipv4Addr, key: &ClientKey, src: MacAddr) -> bool {
        if let Some(cap) = self.cfg.max_per_mac {
            let entries = &self.entries;
            let held = self.holders.entry(src).or_default();
            held.retain(|a| {
                entries
                    .get(a)
                    .is_some_and(|e| e.src == src && e.active(now))
            });
            let others = held
                .iter()
                .filter(|a| entries.get(a).is_some_and(|e| !e.held_by(key)))
                .count();
            if others >= cap {
                self.stats.refused_per_mac += 1;
                return false;
            }
        }
        if !self.entries.contains_key(&addr) && self.entries.len() >= self.cfg.max_leases {
            self.sweep(now);
            if self.entries.len() >= self.cfg.max_leases {
                self.stats.refused_table_full += 1;
                return false;
            }
        }
        true
    }

    /// Drops every entry that no longer holds its address: lapsed offers
    /// and quarantines, then (only if that freed nothing) expired bindings,
    /// whose only value is giving a returning client its old address.
    fn sweep(&mut self, now: Instant) {
        let before = self.entries.len();
        let gone: Vec<Ipv4Addr> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.active(now) && !matches!(e.state, State::Bound { .. }))
            .map(|(a, _)| *a)
            .collect();
        for a in gone {
            self.remove_entry(a);
        }
        if self.entries.len() == before {
            let gone: Vec<Ipv4Addr> = self
                .entries
                .iter()
                .filter(|(_, e)| !e.active(now))
                .map(|(a, _)| *a)
                .collect();
            for a in gone {
                self.remove_entry(a);
            }
        }
        if self.holders.len() > 2 * self.cfg.max_leases {
            let entries = &self.entries;
            self.holders.retain(|src, held| {
                held.retain(|a| entries.get(a).is_some_and(|e| e.src == *src));
                !held.is_empty()
            });
        }
    }

    fn remove_entry(&mut self, addr: Ipv4Addr) {
        let Some(e) = self.entries.remove(&addr) else {
            return;
        };
        if let Some(k) = &e.key {
            if self.by_key.get(k) == Some(&addr) {
                self.by_key.remove(k);
            }
        }
        match e.state {
            // A failed removal leaves a stale record; after a restart it
            // may hand the client back an address it declined, which the
            // client's own probe catches again. Not worth refusing for.
            State::Bound { .. } if self.store.remove(addr).is_err() => self.stats.store_errors += 1,
            State::Probing { .. } => self.pending_probes -= 1,
            _ => {}
        }
    }

    /// Puts `e` at `addr`, replacing whatever was there and whatever else
    /// its key held.
    fn insert(&mut self, addr: Ipv4Addr, e: Entry) {
        if self.entries.contains_key(&addr) {
            self.remove_entry(addr);
        }
        if let Some(k) = &e.key {
            if let Some(old) = self.by_key.insert(k.clone(), addr) {
                if old != addr {
                    self.remove_entry(old);
                    self.by_key.insert(k.clone(), addr);
                }
            }
        }
        let held = self.holders.entry(e.src).or_default();
        if !held.contains(&addr) {
            held.push(addr);
        }
        self.entries.insert(addr, e);
    }

    /// A free pool address for `key`: never used ones first, from a start
    /// that depends on the key so a client tends to get the same address
    /// back; failing that, the one stale the longest.
    fn free_address(&mut self, now: Instant, key: &ClientKey) -> Option<Ipv4Addr> {
        if self.pool_size == 0 {
            return None;
        }
        let start = fnv(key) % self.pool_size;
        let mut stale: Option<(Instant, Ipv4Addr)> = None;
        for i in 0..self.pool_size {
            let addr = self.pool_addr((start + i) % self.pool_size);
            if !self.dynamic(addr) {
                continue;
            }
            match self.entries.get(&addr) {
                None => return Some(addr),
                Some(e) if !e.active(now) => {
                    let since = e.stale_since();
                    if stale.is_none_or(|(t, _)| since < t) {
                        stale = Some((since, addr));
                    }
                }
                Some(_) => {}
            }
        }
        stale.map(|(_, a)| a)
    }

    fn pool_addr(&self, mut i: u64) -> Ipv4Addr {
        for &(first, n) in &self.ranges {
            if i < u64::from(n) {
                return Ipv4Addr::from(first + i as u32);
            }
            i -= u64::from(n);
        }
        Ipv4Addr::UNSPECIFIED
    }

    /// OFFER, or with rapid commit a committed ACK.
    fn answer_discover(&mut self, now: Instant, addr: Ipv4Addr, req: &Repr) {
        if req.options.rapid_commit && self.cfg.rapid_commit {
            // RFC 4039 §4: the server "MUST commit the client's lease
            // binding" before the DHCPACK carrying Rapid Commit.
            if self.commit(now, addr, req) {
                self.ack(req, addr, true);
            }
            return;
        }
        self.stats.offers += 1;
        let r = self.reply(req, MessageType::Offer, addr);
        self.push_reply(req, r);
    }

    fn request(&mut self, now: Instant, req: &Repr, key: ClientKey, src: MacAddr) {
        let Some(mac) = req.client_mac() else {
            return;
        };
        let o = &req.options;
        let reserved = self.reservation(&key, mac);
        let key = match reserved {
            Some(a) => self.reserved_key(a, &key),
            None => key,
        };
        if let Some(server) = o.server_id {
            // SELECTING: the client answers an offer.
            if server != self.cfg.address {
                // RFC 2131 §4.3.2: the client chose another server; an offer
                // we still hold for it can go back to the pool.
                self.stats.ignored_other_server += 1;
                if let Some(&a) = self.by_key.get(&key) {
                    if matches!(
                        self.entries.get(&a).map(|e| &e.state),
                        Some(State::Offered { .. })
                    ) {
                        self.remove_entry(a);
                    }
                }
                return;
            }
            let addr = o.requested_ip.unwrap_or(req.ciaddr);
            let ok = self.entries.get(&addr).is_some_and(|e| {
                e.held_by(&key) && matches!(e.state, State::Offered { .. } | State::Bound { .. })
            });
            if ok && self.commit(now, addr, req) {
                self.ack(req, addr, false);
            } else if !ok {
                self.nak(req, "address not offered to this client");
            }
            return;
        }
        // INIT-REBOOT names the address in option 50; RENEWING and
        // REBINDING in 'ciaddr'.
        let addr = match (o.requested_ip, req.ciaddr.is_unspecified()) {
            (Some(a), true) => a,
            (_, false) => req.ciaddr,
            (None, true) => {
                self.stats.ignored_bad_request += 1;
                return;
            }
        };
        // RFC 2131 §4.3.2, INIT-REBOOT: "If the DHCP server detects that the
        // client is on the wrong net ... then the server SHOULD send a
        // DHCPNAK message to the client."
        if !self.cfg.subnet.contains(addr) {
            self.nak(req, "wrong network");
            return;
        }
        if reserved.is_some_and(|r| r != addr)
            || self.reserved_addrs.get(&addr).is_some_and(|k| *k != key)
        {
            self.nak(req, "address reserved for another client");
            return;
        }
        match self.entries.get(&addr) {
            Some(e) if e.held_by(&key) && !matches!(e.state, State::Probing { .. }) => {
                if self.commit(now, addr, req) {
                    self.ack(req, addr, false);
                }
            }
            // "If not [correct], then the server SHOULD send a DHCPNAK".
            Some(e) if e.active(now) => self.nak(req, "address in use"),
            _ => {
                // "If the DHCP server has no record of this client, then it
                // MUST remain silent". A reservation is a record: its
                // client gets its address whatever the table forgot.
                let reserved = self.reserved_addrs.get(&addr) == Some(&key);
                if !reserved && (!self.cfg.authoritative || !self.allocatable(addr, &key)) {
                    self.stats.ignored_unknown_client += 1;
                    return;
                }
                if self.make_room(now, addr, &key, src) && self.commit_new(now, addr, key, src, req)
                {
                    self.ack(req, addr, false);
                }
            }
        }
    }

    /// Makes the entry at `addr` (held by the requesting client) a binding,
    /// written to the store first. False if the store refused.
    fn commit(&mut self, now: Instant, addr: Ipv4Addr, req: &Repr) -> bool {
        let Some(e) = self.entries.get(&addr) else {
            return false;
        };
        let (Some(key), src) = (e.key.clone(), e.src) else {
            return false;
        };
        self.commit_new(now, addr, key, src, req)
    }

    fn commit_new(
        &mut self,
        now: Instant,
        addr: Ipv4Addr,
        key: ClientKey,
        src: MacAddr,
        req: &Repr,
    ) -> bool {
        let Some(mac) = req.client_mac() else {
            return false;
        };
        let hostname = req
            .options
            .hostname
            .clone()
            .or_else(|| self.entries.get(&addr).and_then(|e| e.hostname.clone()));
        // A stale entry of another client at `addr` goes first, with its
        // record, so that removing it cannot undo the put below.
        if self.entries.get(&addr).is_some_and(|e| !e.held_by(&key)) {
            self.remove_entry(addr);
        }
        let expires = now + self.cfg.lease_time;
        let record = StoredLease {
            addr,
            client: key.clone(),
            mac,
            expires,
            hostname: hostname.clone(),
        };
        if self.store.put(&record).is_err() {
            self.stats.store_errors += 1;
            return false;
        }
        let state = State::Bound { expires };
        match self.entries.get_mut(&addr) {
            Some(e) if e.held_by(&key) => {
                if matches!(e.state, State::Probing { .. }) {
                    self.pending_probes -= 1;
                }
                e.state = state;
                e.mac = mac;
                e.hostname = hostname;
            }
            _ => self.insert(
                addr,
                Entry {
                    key: Some(key),
                    mac,
                    src,
                    hostname,
                    state,
                },
            ),
        }
        true
    }

    fn decline(&mut self, now: Instant, req: &Repr, key: ClientKey) {
        if req.options.server_id.is_some_and(|s| s != self.cfg.address) {
            self.stats.ignored_other_server += 1;
            return;
        }
        let key = self.effective_key(req, key);
        let Some(addr) = req.options.requested_ip else {
            self.stats.ignored_bad_request += 1;
            return;
        };
        if !self.entries.get(&addr).is_some_and(|e| e.held_by(&key)) {
            self.stats.ignored_not_holder += 1;
            return;
        }
        // RFC 2131 §4.3.3: "The server MUST mark the network address as not
        // available".
        tracing::warn!(%addr, "DHCPDECLINE: address in use by a host we did not configure");
        self.remove_entry(addr);
        let e = Entry {
            key: None,
            mac: MacAddr::ZERO,
            src: MacAddr::ZERO,
            hostname: None,
            state: State::Quarantined {
                until: now + self.cfg.quarantine,
            },
        };
        self.entries.insert(addr, e);
    }

    fn release(&mut self, now: Instant, req: &Repr, key: ClientKey) {
        if req.options.server_id.is_some_and(|s| s != self.cfg.address) {
            self.stats.ignored_other_server += 1;
            return;
        }
        let key = self.effective_key(req, key);
        let addr = req.ciaddr;
        let Some(e) = self.entries.get_mut(&addr).filter(|e| e.held_by(&key)) else {
            self.stats.ignored_not_holder += 1;
            return;
        };
        // RFC 2131 §4.3.4: "the server marks the network address as not
        // allocated. The server SHOULD retain a record of the client's
        // initialization parameters for possible reuse".
        if !matches!(e.state, State::Bound { .. }) {
            return;
        }
        e.state = State::Bound { expires: now };
        let record = StoredLease {
            addr,
            client: key,
            mac: e.mac,
            expires: now,
            hostname: e.hostname.clone(),
        };
        if self.store.put(&record).is_err() {
            self.stats.store_errors += 1;
        }
    }

    /// The key the table uses for this client: a reservation's when it
    /// matches by MAC.
    fn effective_key(&self, req: &Repr, key: ClientKey) -> ClientKey {
        match req.client_mac().and_then(|m| self.reservation(&key, m)) {
            Some(a) => self.reserved_key(a, &key),
            None => key,
        }
    }

    /// RFC 2131 §4.3.5: configuration only, "The server SHOULD NOT check
    /// for an existing lease ... and MUST NOT include a lease expiration
    /// time".
    fn inform(&mut self, req: &Repr) {
        if req.ciaddr.is_unspecified() {
            self.stats.ignored_bad_request += 1;
            return;
        }
        let mut r = self.reply(req, MessageType::Ack, Ipv4Addr::UNSPECIFIED);
        r.options.lease_time = None;
        r.options.renewal_time = None;
        r.options.rebinding_time = None;
        r.ciaddr = req.ciaddr;
        self.stats.acks += 1;
        self.push_reply(req, r);
    }

    fn ack(&mut self, req: &Repr, addr: Ipv4Addr, rapid: bool) {
        let mut r = self.reply(req, MessageType::Ack, addr);
        r.ciaddr = req.ciaddr;
        r.options.rapid_commit = rapid;
        self.stats.acks += 1;
        self.push_reply(req, r);
    }

    fn nak(&mut self, req: &Repr, why: &str) {
        // RFC 2131 table 3: a DHCPNAK carries the server id, a message, the
        // client id, and nothing else; 'yiaddr' and 'ciaddr' are 0.
        let mut r = Repr::new(Op::Reply, MessageType::Nak, req.xid, MacAddr::ZERO);
        r.htype = req.htype;
        r.hlen = req.hlen;
        r.chaddr = req.chaddr;
        r.giaddr = req.giaddr;
        // §4.3.2: "If 'giaddr' is set in the DHCPREQUEST message ... The
        // server MUST set the broadcast bit in the DHCPNAK".
        r.broadcast = req.broadcast || !req.giaddr.is_unspecified();
        r.options.server_id = Some(self.cfg.address);
        r.options.message = Some(why.to_owned());
        r.options.client_id = req.options.client_id.clone();
        self.stats.naks += 1;
        self.push_reply(req, r);
    }

    /// An OFFER or ACK of `addr` with our configuration.
    fn reply(&self, req: &Repr, t: MessageType, addr: Ipv4Addr) -> Repr {
        let mut r = Repr::new(Op::Reply, t, req.xid, MacAddr::ZERO);
        r.htype = req.htype;
        r.hlen = req.hlen;
        r.chaddr = req.chaddr;
        r.broadcast = req.broadcast;
        r.giaddr = req.giaddr;
        r.yiaddr = addr;
        let c = &self.cfg;
        let o = &mut r.options;
        o.server_id = Some(c.address);
        let secs =
            |d: Duration| u32::try_from(d.total_micros() / 1_000_000).unwrap_or(u32::MAX - 1);
        if c.lease_time == Duration::MAX {
            o.lease_time = Some(u32::MAX);
        } else {
            let lease = c.lease_time;
            o.lease_time = Some(secs(lease));
            let t2 = c
                .rebinding_time
                .unwrap_or(Duration::from_micros(lease.total_micros() / 8 * 7));
            o.rebinding_time = Some(secs(t2));
            o.renewal_time = Some(secs(
                c.renewal_time
                    .unwrap_or(Duration::from_micros(lease.total_micros() / 2)),
            ));
        }
        o.subnet_mask = Some(c.subnet.netmask());
        o.broadcast_addr = c.subnet.broadcast();
        o.routers = c.routers.clone();
        o.dns_servers = c.dns.clone();
        o.domain_name = c.domain.clone();
        // RFC 6842: "the server MUST ... return the 'client identifier'".
        o.client_id = req.options.client_id.clone();
        let prl = &req.options.parameter_request_list;
        o.other = c
            .extra_options
            .iter()
            .filter(|(code, _)| prl.is_empty() || prl.contains(code))
            .cloned()
            .collect();
        r
    }

    /// RFC 2131 §4.1's rules for where a reply goes, and the size the
    /// client accepts.
    fn push_reply(&mut self, req: &Repr, mut r: Repr) {
        let max =
            usize::from(req.options.max_message_size.unwrap_or(0)).max(DEFAULT_MAX_MESSAGE_LEN);
        while r.buffer_len() > max && r.options.other.pop().is_some() {
            self.stats.options_dropped += 1;
        }
        let chaddr = req.client_mac().unwrap_or(MacAddr::BROADCAST);
        let (dst_ip, dst_port, dst_mac) = if !req.giaddr.is_unspecified() {
            // "If the 'giaddr' field in a DHCP message from a client is
            // non-zero, the server sends any return messages to the 'DHCP
            // server' port on the BOOTP relay agent whose address appears in
            // 'giaddr'."
            (req.giaddr, SERVER_PORT, None)
        } else if r.message_type == MessageType::Nak {
            // "In all cases, when 'giaddr' is zero, the server broadcasts
            // any DHCPNAK messages to 0xffffffff."
            (Ipv4Addr::BROADCAST, CLIENT_PORT, Some(MacAddr::BROADCAST))
        } else if !req.ciaddr.is_unspecified() {
            // "If the 'giaddr' field is zero and the 'ciaddr' field is
            // nonzero, then the server unicasts DHCPOFFER and DHCPACK
            // messages to the address in 'ciaddr'."
            (req.ciaddr, CLIENT_PORT, None)
        } else if req.broadcast {
            // "... and the broadcast bit is set, then the server broadcasts
            // DHCPOFFER and DHCPACK messages to 0xffffffff."
            (Ipv4Addr::BROADCAST, CLIENT_PORT, Some(MacAddr::BROADCAST))
        } else {
            // "If the broadcast bit is not set ... then the server unicasts
            // DHCPOFFER and DHCPACK messages to the client's hardware
            // address and 'yiaddr' address."
            (r.yiaddr, CLIENT_PORT, Some(chaddr))
        };
        self.actions.push_back(ServerAction::Reply(Reply {
            dst_ip,
            dst_port,
            dst_mac,
            payload: r.to_vec(),
        }));
    }

    /// Checks the table's invariants; for tests and fuzzing. Every key
    /// holds at most one address, `by_key` agrees with the entries, every
    /// entry is an address we may hand out, and the bounds hold.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.entries.len() > self.cfg.max_leases {
            return Err(format!(
                "{} entries over max_leases {}",
                self.entries.len(),
                self.cfg.max_leases
            ));
        }
        if self.rate.len() > self.cfg.rate_table_max {
            return Err(format!(
                "rate table {} over {}",
                self.rate.len(),
                self.cfg.rate_table_max
            ));
        }
        let probing = self
            .entries
            .values()
            .filter(|e| matches!(e.state, State::Probing { .. }))
            .count();
        if probing != self.pending_probes || probing > self.cfg.max_pending_probes {
            return Err(format!(
                "{probing} probing, {} counted",
                self.pending_probes
            ));
        }
        let mut seen: HashMap<&ClientKey, Ipv4Addr> = HashMap::new();
        for (a, e) in &self.entries {
            if let Some(k) = &e.key {
                if let Some(other) = seen.insert(k, *a) {
                    return Err(format!("{k:?} holds {a} and {other}"));
                }
                if self.by_key.get(k) != Some(a) {
                    return Err(format!("by_key disagrees for {k:?} at {a}"));
                }
                if !self.allocatable(*a, k) {
                    return Err(format!("{a} bound to {k:?} is not allocatable to it"));
                }
            }
        }
        if self.by_key.len() != seen.len() {
            return Err("by_key holds keys without entries".into());
        }
        Ok(())
    }
}

/// FNV-1a of a client key: where its search for a free address starts.
fn fnv(key: &ClientKey) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    match key {
        ClientKey::Id(id) => id.iter().copied().for_each(&mut eat),
        ClientKey::Mac(m) => m.as_bytes().iter().copied().for_each(&mut eat),
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::store::{FileStore, WallClock};
    use crate::dhcp::wire::{Packet, BROADCAST_FLAG};

    const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
    const DNS: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 53);
    const T0: Instant = Instant::from_secs(100);
    const RELAY: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 168, 1, last)
    }

    fn mac(i: u16) -> MacAddr {
        let [a, b] = i.to_be_bytes();
        MacAddr([2, 0, 0, 1, a, b])
    }

    /// A /24 with ten dynamic addresses, .100 to .109.
    fn cfg() -> ServerConfig {
        let mut c = ServerConfig::new("192.168.1.1/24".parse().unwrap());
        c.pools = vec![(ip(100), ip(109))];
        c.dns = vec![DNS];
        c.domain = Some("lan".into());
        c
    }

    fn server(c: ServerConfig) -> DhcpServer {
        DhcpServer::new(c, MemoryStore::new(), T0).unwrap()
    }

    fn msg(i: u16, t: MessageType, xid: u32) -> Repr {
        Repr::new(Op::Request, t, xid, mac(i))
    }

    fn send(s: &mut DhcpServer<impl LeaseStore>, now: Instant, r: &Repr, i: u16) {
        s.on_message(now, &r.to_vec(), mac(i));
    }

    fn drain<S: LeaseStore>(s: &mut DhcpServer<S>, now: Instant) -> Vec<ServerAction> {
        std::iter::from_fn(|| s.poll(now)).collect()
    }

    fn replies(actions: &[ServerAction]) -> Vec<(Reply, Repr)> {
        actions
            .iter()
            .filter_map(|a| match a {
                ServerAction::Reply(r) => Some((
                    r.clone(),
                    Repr::parse(&Packet::new_checked(&r.payload[..]).unwrap()).unwrap(),
                )),
                _ => None,
            })
            .collect()
    }

    fn one_reply(actions: &[ServerAction]) -> (Reply, Repr) {
        let r = replies(actions);
        assert_eq!(r.len(), 1, "{actions:?}");
        r.into_iter().next().unwrap()
    }

    fn probes(actions: &[ServerAction]) -> Vec<Ipv4Addr> {
        actions
            .iter()
            .filter_map(|a| match a {
                ServerAction::Probe(ip) => Some(*ip),
                _ => None,
            })
            .collect()
    }

    /// DISCOVER, the probe answered free, OFFER: returns the offer.
    fn offer<S: LeaseStore>(s: &mut DhcpServer<S>, now: Instant, i: u16) -> Repr {
        send(s, now, &msg(i, MessageType::Discover, u32::from(i)), i);
        let mut acts = drain(s, now);
        for p in probes(&acts) {
            s.on_probe_result(now, p, false);
        }
        acts.extend(drain(s, now));
        assert_eq!(replies(&acts).len(), 1, "{:?}", s.stats());
        let (_, o) = one_reply(&acts);
        assert_eq!(o.message_type, MessageType::Offer);
        o
    }

    /// The whole DORA for client `i`; returns its address.
    fn dora<S: LeaseStore>(s: &mut DhcpServer<S>, now: Instant, i: u16) -> Ipv4Addr {
        let o = offer(s, now, i);
        let mut req = msg(i, MessageType::Request, o.xid);
        req.options.server_id = o.options.server_id;
        req.options.requested_ip = Some(o.yiaddr);
        send(s, now, &req, i);
        let (_, ack) = one_reply(&drain(s, now));
        assert_eq!(
            ack.message_type,
            MessageType::Ack,
            "{:?}",
            ack.options.message
        );
        assert_eq!(ack.yiaddr, o.yiaddr);
        s.check_invariants().unwrap();
        o.yiaddr
    }

    #[test]
    fn a_client_id_too_long_to_echo_is_refused_and_a_long_hostname_dropped() {
        // RFC 3396 lets a client concatenate option 61 to any length (a
        // fragmented 60 KB DISCOVER carries tens of KB). RFC 6842 makes us
        // echo it, so no reply could reach the client, yet rapid commit
        // would bind (and write) a lease under that key.
        let mut s = server(cfg());
        let mut d = msg(1, MessageType::Discover, 7);
        d.options.rapid_commit = true;
        d.options.client_id = Some(vec![1; MAX_CLIENT_ID_LEN + 1]);
        send(&mut s, T0, &d, 1);
        assert_eq!(drain(&mut s, T0), vec![]);
        assert_eq!(s.stats().drop_malformed, 1);
        assert_eq!(s.table_len(), 0);
        // The longest that fits one option is a client like any other; a
        // hostname longer than DNS allows is left out of the lease.
        d.options.client_id = Some(vec![1; MAX_CLIENT_ID_LEN]);
        d.options.hostname = Some("h".repeat(MAX_HOSTNAME_LEN + 1));
        send(&mut s, T0, &d, 1);
        for p in probes(&drain(&mut s, T0)) {
            s.on_probe_result(T0, p, false);
        }
        let (to, ack) = one_reply(&drain(&mut s, T0));
        assert_eq!(ack.message_type, MessageType::Ack);
        assert_eq!(ack.options.client_id, d.options.client_id);
        assert!(
            to.payload.len() <= DEFAULT_MAX_MESSAGE_LEN,
            "{}",
            to.payload.len()
        );
        let l: Vec<_> = s.leases(T0).collect();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].hostname, None);
        s.check_invariants().unwrap();
    }

    #[test]
    fn probes_then_offers_then_acks() {
        let mut s = server(cfg());
        let mut d = msg(1, MessageType::Discover, 7);
        d.options.hostname = Some("laptop".into());
        send(&mut s, T0, &d, 1);
        let acts = drain(&mut s, T0);
        // Nothing is offered before the check comes back.
        assert_eq!(acts.len(), 1);
        let addr = probes(&acts)[0];
        assert!((100..=109).contains(&addr.octets()[3]));
        assert_eq!(s.poll_at(), Some(T0 + Duration::from_millis(500)));
        s.on_probe_result(T0, addr, false);
        let (to, o) = one_reply(&drain(&mut s, T0));
        // RFC 2131 §4.1: broadcast bit clear, no 'giaddr' or 'ciaddr': "the
        // server unicasts DHCPOFFER and DHCPACK messages to the client's
        // hardware address and 'yiaddr' address".
        assert_eq!(
            (to.dst_ip, to.dst_port, to.dst_mac),
            (addr, 68, Some(mac(1)))
        );
        assert_eq!(
            (o.op, o.message_type, o.xid, o.yiaddr),
            (Op::Reply, MessageType::Offer, 7, addr)
        );
        assert_eq!(o.client_mac(), Some(mac(1)));
        let op = &o.options;
        assert_eq!(op.server_id, Some(SERVER));
        assert_eq!(
            (op.lease_time, op.renewal_time, op.rebinding_time),
            (Some(3600), Some(1800), Some(3150))
        );
        assert_eq!(op.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(op.broadcast_addr, Some(ip(255)));
        assert_eq!(
            (op.routers.clone(), op.dns_servers.clone()),
            (vec![SERVER], vec![DNS])
        );
        assert_eq!(op.domain_name.as_deref(), Some("lan"));
        assert!(s.leases(T0).next().is_none(), "an offer is not a lease");
        let mut req = msg(1, MessageType::Request, 7);
        req.options.server_id = Some(SERVER);
        req.options.requested_ip = Some(addr);
        send(&mut s, T0, &req, 1);
        let (_, ack) = one_reply(&drain(&mut s, T0));
        assert_eq!((ack.message_type, ack.yiaddr), (MessageType::Ack, addr));
        let leases: Vec<_> = s.leases(T0).collect();
        assert_eq!(leases.len(), 1);
        assert_eq!(leases[0].client, ClientKey::Mac(mac(1)));
        assert_eq!(leases[0].expires, T0 + Duration::from_secs(3600));
        assert_eq!(leases[0].hostname.as_deref(), Some("laptop"));
        assert_eq!(
            s.store().leases.get(&addr),
            Some(&leases[0]),
            "stored before the ACK"
        );
        assert_eq!(
            (s.stats().offers, s.stats().acks, s.stats().probes),
            (1, 1, 1)
        );
    }

    #[test]
    fn silence_after_a_probe_means_free() {
        let mut s = server(cfg());
        send(&mut s, T0, &msg(1, MessageType::Discover, 1), 1);
        drain(&mut s, T0);
        assert!(drain(&mut s, T0 + Duration::from_millis(499)).is_empty());
        let (_, o) = one_reply(&drain(&mut s, T0 + Duration::from_millis(500)));
        assert_eq!(o.message_type, MessageType::Offer);
        assert_eq!(s.stats().probes_timed_out, 1);
        assert_eq!(s.poll_at(), None);
    }

    #[test]
    fn an_address_in_use_is_quarantined_and_another_probed() {
        let mut s = server(cfg());
        send(&mut s, T0, &msg(1, MessageType::Discover, 1), 1);
        let first = probes(&drain(&mut s, T0))[0];
        s.on_probe_result(T0, first, true);
        let acts = drain(&mut s, T0);
        assert!(replies(&acts).is_empty());
        let second = probes(&acts)[0];
        assert_ne!(first, second);
        s.on_probe_result(T0, second, false);
        let (_, o) = one_reply(&drain(&mut s, T0));
        assert_eq!(o.yiaddr, second);
        assert_eq!(s.stats().probes_in_use, 1);
        // Nobody is offered the address in use while it is quarantined,
        // even asking for it by name.
        let mut d = msg(2, MessageType::Discover, 2);
        d.options.requested_ip = Some(first);
        send(&mut s, T0, &d, 2);
        assert_ne!(probes(&drain(&mut s, T0))[0], first);
        s.check_invariants().unwrap();
    }

    #[test]
    fn other_clients_are_served_while_a_probe_is_pending() {
        let mut s = server(cfg());
        send(&mut s, T0, &msg(1, MessageType::Discover, 1), 1);
        let a = probes(&drain(&mut s, T0))[0];
        send(&mut s, T0, &msg(2, MessageType::Discover, 2), 2);
        let b = probes(&drain(&mut s, T0))[0];
        assert_ne!(a, b);
        s.on_probe_result(T0, b, false);
        let (_, o) = one_reply(&drain(&mut s, T0));
        assert_eq!((o.xid, o.yiaddr), (2, b));
        // A retransmitted DISCOVER from the first client starts no second
        // probe, and the eventual offer answers its newest xid.
        send(
            &mut s,
            T0 + Duration::from_millis(100),
            &msg(1, MessageType::Discover, 11),
            1,
        );
        assert!(drain(&mut s, T0 + Duration::from_millis(100)).is_empty());
        s.on_probe_result(T0, a, false);
        let (_, o) = one_reply(&drain(&mut s, T0));
        assert_eq!((o.xid, o.yiaddr), (11, a));
        assert_eq!(s.stats().probes, 2);
    }

    #[test]
    fn probe_backlog_is_bounded() {
        let mut c = cfg();
        c.max_pending_probes = 3;
        let mut s = server(c);
        for i in 1..=5 {
            send(&mut s, T0, &msg(i, MessageType::Discover, 1), i);
        }
        assert_eq!(probes(&drain(&mut s, T0)).len(), 3);
        assert_eq!(s.stats().refused_probe_backlog, 2);
        s.check_invariants().unwrap();
    }

    #[test]
    fn replies_go_where_rfc_2131_section_4_1_says() {
        let mut c = cfg();
        c.probe = false;
        let mut s = server(c);
        // Broadcast bit set: "the server broadcasts DHCPOFFER and DHCPACK
        // messages to 0xffffffff".
        let mut d = msg(1, MessageType::Discover, 1);
        d.broadcast = true;
        send(&mut s, T0, &d, 1);
        let (to, o) = one_reply(&drain(&mut s, T0));
        assert_eq!(
            (to.dst_ip, to.dst_port, to.dst_mac),
            (Ipv4Addr::BROADCAST, 68, Some(MacAddr::BROADCAST))
        );
        assert!(o.broadcast);
        assert_eq!(&to.payload[10..12], &BROADCAST_FLAG.to_be_bytes());
        // Relayed: to the relay agent's server port, routed as usual.
        let mut d = msg(2, MessageType::Discover, 2);
        d.giaddr = RELAY;
        d.hops = 1;
        s.on_message(T0, &d.to_vec(), MacAddr([2, 0, 0, 0, 0, 2]));
        let (to, o) = one_reply(&drain(&mut s, T0));
        assert_eq!((to.dst_ip, to.dst_port, to.dst_mac), (RELAY, 67, None));
        assert_eq!(o.giaddr, RELAY);
        // A renewal ('ciaddr' set): unicast to 'ciaddr', resolved by ARP.
        let addr = dora(&mut s, T0, 3);
        let mut r = msg(3, MessageType::Request, 3);
        r.ciaddr = addr;
        send(&mut s, T0, &r, 3);
        let (to, ack) = one_reply(&drain(&mut s, T0));
        assert_eq!((to.dst_ip, to.dst_port, to.dst_mac), (addr, 68, None));
        assert_eq!((ack.ciaddr, ack.yiaddr), (addr, addr));
        // A NAK: "when 'giaddr' is zero, the server broadcasts any DHCPNAK
        // messages to 0xffffffff"...
        let mut r = msg(4, MessageType::Request, 4);
        r.options.requested_ip = Some(Ipv4Addr::new(10, 9, 9, 9));
        send(&mut s, T0, &r, 4);
        let (to, nak) = one_reply(&drain(&mut s, T0));
        assert_eq!(nak.message_type, MessageType::Nak);
        assert_eq!(
            (to.dst_ip, to.dst_mac),
            (Ipv4Addr::BROADCAST, Some(MacAddr::BROADCAST))
        );
        // ... and through a relay "The server MUST set the broadcast bit in
        // the DHCPNAK".
        r.giaddr = RELAY;
        send(&mut s, T0, &r, 4);
        let (to, nak) = one_reply(&drain(&mut s, T0));
        assert_eq!((to.dst_ip, to.dst_port), (RELAY, 67));
        assert!(nak.broadcast);
        // Relayed from a subnet we do not serve: ignored.
        r.giaddr = Ipv4Addr::new(10, 0, 0, 1);
        send(&mut s, T0, &r, 4);
        assert!(drain(&mut s, T0).is_empty());
        assert_eq!(s.stats().ignored_wrong_relay, 1);
    }

    #[test]
    fn the_client_after_the_pool_is_full_is_refused_cleanly() {
        let mut s = server(cfg());
        let mut got: Vec<Ipv4Addr> = (1..=10).map(|i| dora(&mut s, T0, i)).collect();
        got.sort();
        assert_eq!(got, (100..=109).map(ip).collect::<Vec<_>>());
        send(&mut s, T0, &msg(11, MessageType::Discover, 11), 11);
        assert!(drain(&mut s, T0).is_empty());
        assert_eq!(s.stats().refused_pool_exhausted, 1);
        s.check_invariants().unwrap();
        // Once a lease has lapsed its address goes to the newcomer.
        let later = T0 + Duration::from_secs(3601);
        let addr = dora(&mut s, later, 11);
        assert!(got.contains(&addr));
        assert_eq!(s.leases(later).count(), 1);
        s.check_invariants().unwrap();
    }

    #[test]
    fn a_returning_client_gets_its_address_back() {
        let mut s = server(cfg());
        let a = dora(&mut s, T0, 1);
        let b = dora(&mut s, T0, 2);
        // Bound: the same address, offered without a probe.
        send(&mut s, T0, &msg(1, MessageType::Discover, 9), 1);
        let acts = drain(&mut s, T0);
        assert!(probes(&acts).is_empty());
        assert_eq!(one_reply(&acts).1.yiaddr, a);
        // Expired but not reused: still its own.
        let later = T0 + Duration::from_secs(7200);
        assert_eq!(dora(&mut s, later, 2), b);
    }

    #[test]
    fn reservations_by_mac_and_by_client_id() {
        let mut c = cfg();
        let id = vec![0xff, 1, 2, 3, 4, 0, 3, 0, 1, 2, 0, 0, 1, 0, 2];
        c.reservations = vec![
            (ClientKey::Mac(mac(1)), ip(50)),
            (ClientKey::Id(id.clone()), ip(105)),
        ];
        let mut s = server(c);
        // By MAC, whatever client id it sends; outside the pool is fine.
        let o = offer(&mut s, T0, 1);
        assert_eq!(o.yiaddr, ip(50));
        let mut d = msg(1, MessageType::Discover, 5);
        d.options.client_id = Some(vec![1, 2, 3]);
        send(&mut s, T0, &d, 1);
        assert_eq!(one_reply(&drain(&mut s, T0)).1.yiaddr, ip(50));
        // By client id.
        let mut d = msg(2, MessageType::Discover, 6);
        d.options.client_id = Some(id.clone());
        send(&mut s, T0, &d, 2);
        s.on_probe_result(T0, ip(105), false);
        assert_eq!(one_reply(&drain(&mut s, T0)).1.yiaddr, ip(105));
        // Nobody else gets .105 from the pool: nine dynamic addresses left.
        let others: Vec<_> = (3..=11).map(|i| dora(&mut s, T0, i)).collect();
        assert!(!others.contains(&ip(105)) && !others.contains(&ip(50)));
        send(&mut s, T0, &msg(12, MessageType::Discover, 12), 12);
        assert!(drain(&mut s, T0).is_empty());
        // A reserved client rebooting is known by its reservation even
        // when the table has nothing for it.
        let mut s2 = server(s.config().clone());
        let mut r = msg(1, MessageType::Request, 12);
        r.options.requested_ip = Some(ip(50));
        send(&mut s2, T0, &r, 1);
        let (_, ack) = one_reply(&drain(&mut s2, T0));
        assert_eq!((ack.message_type, ack.yiaddr), (MessageType::Ack, ip(50)));
        // Asking for a reserved address by INIT-REBOOT is refused.
        let mut r = msg(13, MessageType::Request, 13);
        r.options.requested_ip = Some(ip(50));
        send(&mut s, T0, &r, 13);
        assert_eq!(
            one_reply(&drain(&mut s, T0)).1.message_type,
            MessageType::Nak
        );
        s.check_invariants().unwrap();
    }

    #[test]
    fn decline_quarantines_the_address() {
        let mut s = server(cfg());
        let addr = dora(&mut s, T0, 1);
        let mut d = msg(1, MessageType::Decline, 99);
        d.options.requested_ip = Some(addr);
        d.options.server_id = Some(SERVER);
        // Someone else cannot decline it for the holder.
        let mut other = msg(2, MessageType::Decline, 98);
        other.options = d.options.clone();
        send(&mut s, T0, &other, 2);
        assert_eq!(s.stats().ignored_not_holder, 1);
        send(&mut s, T0, &d, 1);
        assert!(drain(&mut s, T0).is_empty());
        assert!(s.leases(T0).next().is_none());
        assert!(!s.store().leases.contains_key(&addr));
        // RFC 2131 §4.3.3: "The server MUST mark the network address as not
        // available": the client's next try gets another address.
        let next = T0 + Duration::from_secs(10);
        assert_ne!(dora(&mut s, next, 1), addr);
        // Quarantine over: the address is back in the pool.
        let later = T0 + Duration::from_secs(601);
        let mut d = msg(2, MessageType::Discover, 2);
        d.options.requested_ip = Some(addr);
        send(&mut s, later, &d, 2);
        assert_eq!(probes(&drain(&mut s, later)), [addr]);
        s.check_invariants().unwrap();
    }

    #[test]
    fn release_frees_the_address_and_remembers_the_client() {
        let mut s = server(cfg());
        let addr = dora(&mut s, T0, 1);
        let mut r = msg(1, MessageType::Release, 5);
        r.ciaddr = addr;
        r.options.server_id = Some(SERVER);
        send(&mut s, T0, &r, 1);
        assert!(drain(&mut s, T0).is_empty(), "no reply to a release");
        // RFC 2131 §4.3.4: "marks the network address as not allocated".
        assert!(s.leases(T0).next().is_none());
        assert_eq!(s.store().leases[&addr].expires, T0);
        // "SHOULD retain a record of the client's initialization
        // parameters for possible reuse": it gets the same address back.
        assert_eq!(dora(&mut s, T0 + Duration::from_secs(5), 1), addr);
        // A release of someone else's address does nothing.
        let mut r = msg(2, MessageType::Release, 6);
        r.ciaddr = addr;
        send(&mut s, T0, &r, 2);
        assert_eq!(s.leases(T0 + Duration::from_secs(5)).count(), 1);
        assert_eq!(s.stats().ignored_not_holder, 1);
    }

    #[test]
    fn released_address_goes_to_another_client_when_the_pool_is_full() {
        let mut s = server(cfg());
        let addrs: Vec<_> = (1..=10).map(|i| dora(&mut s, T0, i)).collect();
        let mut r = msg(4, MessageType::Release, 5);
        r.ciaddr = addrs[3];
        send(&mut s, T0, &r, 4);
        assert_eq!(dora(&mut s, T0, 11), addrs[3]);
        s.check_invariants().unwrap();
    }

    #[test]
    fn init_reboot_on_the_wrong_network_is_naked() {
        // RFC 2131 §4.3.2: "If the DHCP server detects that the client is on
        // the wrong net ... then the server SHOULD send a DHCPNAK message".
        let mut s = server(cfg());
        let mut r = msg(1, MessageType::Request, 3);
        r.options.requested_ip = Some(Ipv4Addr::new(10, 1, 2, 3));
        send(&mut s, T0, &r, 1);
        let (to, nak) = one_reply(&drain(&mut s, T0));
        assert_eq!(nak.message_type, MessageType::Nak);
        assert_eq!(
            (nak.yiaddr, nak.ciaddr),
            (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED)
        );
        assert_eq!(nak.options.server_id, Some(SERVER));
        assert_eq!(nak.options.lease_time, None);
        assert_eq!(nak.options.message.as_deref(), Some("wrong network"));
        assert_eq!(to.dst_ip, Ipv4Addr::BROADCAST);
    }

    #[test]
    fn init_reboot_acks_a_known_client_naks_a_taken_address_and_ignores_strangers() {
        let mut s = server(cfg());
        let a = dora(&mut s, T0, 1);
        let b = dora(&mut s, T0, 2);
        let init_reboot = |i: u16, addr| {
            let mut r = msg(i, MessageType::Request, 40 + u32::from(i));
            r.options.requested_ip = Some(addr);
            r
        };
        let later = T0 + Duration::from_secs(100);
        send(&mut s, later, &init_reboot(1, a), 1);
        let (_, ack) = one_reply(&drain(&mut s, later));
        assert_eq!((ack.message_type, ack.yiaddr), (MessageType::Ack, a));
        // Client 1 claiming client 2's address: "If not [correct], then the
        // server SHOULD send a DHCPNAK message to the client."
        send(&mut s, later, &init_reboot(1, b), 1);
        assert_eq!(
            one_reply(&drain(&mut s, later)).1.message_type,
            MessageType::Nak
        );
        // A client we never saw, asking for a free address: "If the DHCP
        // server has no record of this client, then it MUST remain silent".
        send(&mut s, later, &init_reboot(3, ip(109)), 3);
        assert!(drain(&mut s, later).is_empty());
        assert_eq!(s.stats().ignored_unknown_client, 1);
        // Unless configured as the only server on the link.
        let mut c = cfg();
        c.authoritative = true;
        let mut s = server(c);
        send(&mut s, later, &init_reboot(3, ip(109)), 3);
        let (_, ack) = one_reply(&drain(&mut s, later));
        assert_eq!((ack.message_type, ack.yiaddr), (MessageType::Ack, ip(109)));
        s.check_invariants().unwrap();
    }

    #[test]
    fn renewal_extends_the_lease() {
        let mut s = server(cfg());
        let addr = dora(&mut s, T0, 1);
        let t1 = T0 + Duration::from_secs(1800);
        let mut r = msg(1, MessageType::Request, 77);
        r.ciaddr = addr;
        send(&mut s, t1, &r, 1);
        let (_, ack) = one_reply(&drain(&mut s, t1));
        assert_eq!(
            (ack.message_type, ack.yiaddr, ack.ciaddr),
            (MessageType::Ack, addr, addr)
        );
        let l: Vec<_> = s.leases(t1).collect();
        assert_eq!(l[0].expires, t1 + Duration::from_secs(3600));
        assert_eq!(
            s.store().leases[&addr].expires,
            t1 + Duration::from_secs(3600)
        );
        // Renewing an address that is somebody else's: NAK.
        let b = dora(&mut s, t1, 2);
        r.ciaddr = b;
        send(&mut s, t1, &r, 1);
        assert_eq!(
            one_reply(&drain(&mut s, t1)).1.message_type,
            MessageType::Nak
        );
    }

    #[test]
    fn selecting_another_server_returns_our_offer_to_the_pool() {
        let mut c = cfg();
        c.pools = vec![(ip(100), ip(100))];
        let mut s = server(c);
        let o = offer(&mut s, T0, 1);
        let mut r = msg(1, MessageType::Request, o.xid);
        r.options.server_id = Some(Ipv4Addr::new(192, 168, 1, 254));
        r.options.requested_ip = Some(Ipv4Addr::new(192, 168, 1, 200));
        send(&mut s, T0, &r, 1);
        assert!(drain(&mut s, T0).is_empty());
        assert_eq!(s.stats().ignored_other_server, 1);
        // The single address is free again at once.
        assert_eq!(dora(&mut s, T0, 2), ip(100));
    }

    #[test]
    fn request_for_an_address_not_offered_is_naked() {
        let mut s = server(cfg());
        let o = offer(&mut s, T0, 1);
        let mut r = msg(1, MessageType::Request, o.xid);
        r.options.server_id = Some(SERVER);
        r.options.requested_ip = Some(ip(109 - (o.yiaddr.octets()[3] == 109) as u8));
        send(&mut s, T0, &r, 1);
        let (_, nak) = one_reply(&drain(&mut s, T0));
        assert_eq!(nak.message_type, MessageType::Nak);
        // Another client cannot take up this client's offer.
        let mut r = msg(2, MessageType::Request, o.xid);
        r.options.server_id = Some(SERVER);
        r.options.requested_ip = Some(o.yiaddr);
        send(&mut s, T0, &r, 2);
        assert_eq!(
            one_reply(&drain(&mut s, T0)).1.message_type,
            MessageType::Nak
        );
        // A REQUEST with nothing to go on.
        send(&mut s, T0, &msg(3, MessageType::Request, 1), 3);
        assert!(drain(&mut s, T0).is_empty());
        assert_eq!(s.stats().ignored_bad_request, 1);
    }

    #[test]
    fn rapid_commit_answers_discover_with_a_committed_ack() {
        // RFC 4039 §4: the server "MUST commit the client's lease binding"
        // and respond with a DHCPACK "with the Rapid Commit option".
        let mut s = server(cfg());
        let mut d = msg(1, MessageType::Discover, 3);
        d.options.rapid_commit = true;
        send(&mut s, T0, &d, 1);
        let p = probes(&drain(&mut s, T0))[0];
        s.on_probe_result(T0, p, false);
        let (_, ack) = one_reply(&drain(&mut s, T0));
        assert_eq!((ack.message_type, ack.yiaddr), (MessageType::Ack, p));
        assert!(ack.options.rapid_commit);
        assert!(s.store().leases.contains_key(&p));
        // Not configured for it: a plain OFFER.
        let mut c = cfg();
        c.rapid_commit = false;
        let mut s = server(c);
        send(&mut s, T0, &d, 1);
        let p = probes(&drain(&mut s, T0))[0];
        s.on_probe_result(T0, p, false);
        let (_, o) = one_reply(&drain(&mut s, T0));
        assert_eq!(o.message_type, MessageType::Offer);
        assert!(!o.options.rapid_commit);
    }

    #[test]
    fn no_ack_goes_out_unless_the_lease_is_stored() {
        let mut s = server(cfg());
        let o = offer(&mut s, T0, 1);
        s.store.fail = true;
        let mut r = msg(1, MessageType::Request, o.xid);
        r.options.server_id = Some(SERVER);
        r.options.requested_ip = Some(o.yiaddr);
        send(&mut s, T0, &r, 1);
        assert!(drain(&mut s, T0).is_empty());
        assert_eq!(s.stats().store_errors, 1);
        assert!(s.leases(T0).next().is_none());
        // The client retransmits once the disk is back.
        s.store.fail = false;
        send(&mut s, T0 + Duration::from_secs(4), &r, 1);
        let (_, ack) = one_reply(&drain(&mut s, T0));
        assert_eq!(ack.message_type, MessageType::Ack);
        s.check_invariants().unwrap();
    }

    #[test]
    fn messages_per_source_mac_are_rate_limited() {
        let mut c = cfg();
        c.probe = false;
        let mut s = server(c);
        for n in 0..10 {
            send(&mut s, T0, &msg(1, MessageType::Discover, n), 1);
        }
        assert_eq!(replies(&drain(&mut s, T0)).len(), 8, "a burst of 8");
        assert_eq!(s.stats().refused_rate_limited, 2);
        // Another source is unaffected.
        send(&mut s, T0, &msg(2, MessageType::Discover, 1), 2);
        assert_eq!(replies(&drain(&mut s, T0)).len(), 1);
        // One token per second comes back.
        let t = T0 + Duration::from_millis(2500);
        for n in 0..3 {
            send(&mut s, t, &msg(1, MessageType::Discover, n), 1);
        }
        assert_eq!(replies(&drain(&mut s, t)).len(), 2);
    }

    #[test]
    fn rate_table_is_bounded() {
        let mut c = cfg();
        c.probe = false;
        c.rate_table_max = 16;
        c.max_leases = 16;
        let mut s = server(c);
        for i in 0..200u16 {
            s.on_message(T0, &msg(i, MessageType::Discover, 1).to_vec(), mac(i));
            drain(&mut s, T0);
            s.check_invariants().unwrap();
        }
        assert!(s.stats().rate_evictions > 0);
    }

    #[test]
    fn one_source_spoofing_many_chaddrs_cannot_starve_the_pool() {
        let mut c = cfg();
        c.probe = false;
        c.rate_limit = None;
        let mut s = server(c);
        let attacker = MacAddr([2, 0xba, 0xd0, 0, 0, 1]);
        for i in 100..200u16 {
            let mut d = msg(i, MessageType::Discover, 1);
            d.options.client_id = Some(vec![0, i as u8]);
            s.on_message(T0, &d.to_vec(), attacker);
            for (_, o) in replies(&drain(&mut s, T0)) {
                let mut r = msg(i, MessageType::Request, 1);
                r.options.client_id = Some(vec![0, i as u8]);
                r.options.server_id = Some(SERVER);
                r.options.requested_ip = Some(o.yiaddr);
                s.on_message(T0, &r.to_vec(), attacker);
                drain(&mut s, T0);
            }
        }
        assert_eq!(s.leases(T0).count(), 8, "max_per_mac");
        assert_eq!(s.stats().refused_per_mac, 92);
        // An honest client still gets one of the two left.
        dora(&mut s, T0, 1);
        s.check_invariants().unwrap();
    }

    #[test]
    fn the_table_is_bounded_and_lapsed_offers_make_room() {
        let mut c = cfg();
        c.probe = false;
        c.pools = vec![(ip(10), ip(250))];
        c.max_leases = 20;
        let mut s = server(c);
        for i in 1..=30 {
            send(&mut s, T0, &msg(i, MessageType::Discover, 1), i);
            drain(&mut s, T0);
            assert!(s.table_len() <= 20);
        }
        assert_eq!(s.stats().offers, 20);
        assert_eq!(s.stats().refused_table_full, 10);
        // Offers are held for a minute; after that the table has room.
        let later = T0 + Duration::from_secs(61);
        dora(&mut s, later, 31);
        s.check_invariants().unwrap();
    }

    #[test]
    fn inform_gets_configuration_without_a_lease() {
        // RFC 2131 §4.3.5: "MUST NOT include a lease expiration time" and
        // "sends a DHCPACK message directly to the address given in the
        // 'ciaddr' field".
        let mut s = server(cfg());
        let mut r = msg(1, MessageType::Inform, 8);
        r.ciaddr = ip(30);
        send(&mut s, T0, &r, 1);
        let (to, ack) = one_reply(&drain(&mut s, T0));
        assert_eq!(ack.message_type, MessageType::Ack);
        assert_eq!((to.dst_ip, to.dst_mac), (ip(30), None));
        assert_eq!((ack.yiaddr, ack.ciaddr), (Ipv4Addr::UNSPECIFIED, ip(30)));
        assert_eq!(ack.options.lease_time, None);
        assert_eq!(ack.options.dns_servers, [DNS]);
        assert_eq!(s.table_len(), 0);
    }

    #[test]
    fn extra_options_follow_the_request_list_and_the_size_limit() {
        let mut c = cfg();
        c.probe = false;
        c.extra_options = vec![
            (42, vec![192, 168, 1, 1]),
            (66, b"tftp.lan".to_vec()),
            (224, vec![7; 400]),
        ];
        let mut s = server(c.clone());
        let mut d = msg(1, MessageType::Discover, 1);
        d.options.parameter_request_list = vec![1, 3, 42];
        send(&mut s, T0, &d, 1);
        let (_, o) = one_reply(&drain(&mut s, T0));
        assert_eq!(o.options.other, [(42, vec![192, 168, 1, 1])]);
        // No list: everything, cut to the 576 bytes a client must accept
        // (RFC 2131 §2) unless it names a larger size.
        let d = msg(2, MessageType::Discover, 2);
        send(&mut s, T0, &d, 2);
        let (to, o) = one_reply(&drain(&mut s, T0));
        assert!(to.payload.len() <= 576);
        assert_eq!(o.options.other.len(), 2);
        assert_eq!(s.stats().options_dropped, 1);
        let mut d = msg(3, MessageType::Discover, 3);
        d.options.max_message_size = Some(1500);
        send(&mut s, T0, &d, 3);
        let (_, o) = one_reply(&drain(&mut s, T0));
        assert_eq!(o.options.other.len(), 3);
        // Options the server sets itself are refused in the config.
        c.extra_options = vec![(54, vec![1, 2, 3, 4])];
        assert_eq!(c.validate(), Err(ConfigError::BadExtraOption));
    }

    #[test]
    fn config_is_validated() {
        let base = cfg();
        assert_eq!(base.validate(), Ok(()));
        let check = |f: &dyn Fn(&mut ServerConfig), e| {
            let mut c = base.clone();
            f(&mut c);
            assert_eq!(c.validate(), Err(e));
            assert!(DhcpServer::new(c, MemoryStore::new(), T0).is_err());
        };
        check(
            &|c| c.address = Ipv4Addr::new(10, 0, 0, 1),
            ConfigError::AddressOutsideSubnet,
        );
        check(
            &|c| c.pools = vec![(ip(20), ip(10))],
            ConfigError::PoolReversed,
        );
        check(
            &|c| c.pools = vec![(ip(20), Ipv4Addr::new(192, 168, 2, 1))],
            ConfigError::PoolOutsideSubnet,
        );
        check(
            &|c| c.pools = vec![(ip(10), ip(20)), (ip(20), ip(30))],
            ConfigError::PoolsOverlap,
        );
        check(
            &|c| c.reservations = vec![(ClientKey::Mac(mac(1)), SERVER)],
            ConfigError::ReservationOutsideSubnet,
        );
        check(
            &|c| {
                c.reservations = vec![
                    (ClientKey::Mac(mac(1)), ip(5)),
                    (ClientKey::Mac(mac(1)), ip(6)),
                ]
            },
            ConfigError::DuplicateReservation,
        );
        check(
            &|c| c.lease_time = Duration::from_secs(30),
            ConfigError::LeaseTooShort,
        );
        check(&|c| c.max_leases = 0, ConfigError::ZeroLimit);
        // The default pool is the whole subnet but us.
        let c = ServerConfig::new("10.0.0.1/29".parse().unwrap());
        assert_eq!(
            c.pools,
            [(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 6))]
        );
        let mut s = DhcpServer::new(c, MemoryStore::new(), T0).unwrap();
        let got: Vec<_> = (1..=5).map(|i| dora(&mut s, T0, i)).collect();
        assert!(!got.contains(&Ipv4Addr::new(10, 0, 0, 1)));
        send(&mut s, T0, &msg(6, MessageType::Discover, 6), 6);
        assert!(drain(&mut s, T0).is_empty());
    }

    #[test]
    fn not_for_a_server_or_not_ethernet_is_counted() {
        let mut s = server(cfg());
        s.on_message(T0, b"junk", mac(1));
        let mut r = msg(1, MessageType::Offer, 1);
        send(&mut s, T0, &r, 1);
        r.op = Op::Reply;
        send(&mut s, T0, &r, 1);
        let mut d = msg(1, MessageType::Discover, 1);
        d.hlen = 16;
        send(&mut s, T0, &d, 1);
        let d = Repr::new(Op::Request, MessageType::Discover, 1, MacAddr::BROADCAST);
        send(&mut s, T0, &d, 1);
        let st = s.stats();
        assert_eq!(
            (st.drop_malformed, st.drop_not_request, st.refused_hardware),
            (1, 2, 2)
        );
        assert!(drain(&mut s, T0).is_empty());
        assert_eq!(s.table_len(), 0);
    }

    /// A scratch directory, removed when dropped.
    struct Scratch(std::path::PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn leases_survive_a_crash_and_a_torn_record() {
        let dir = Scratch(
            std::env::temp_dir().join(format!("ringstack-dhcp-server-{}", std::process::id())),
        );
        let _ = std::fs::remove_dir_all(&dir.0);
        std::fs::create_dir_all(&dir.0).unwrap();
        let path = dir.0.join("leases");
        let clock = WallClock {
            now: T0,
            unix_secs: 1_767_225_600,
        };
        let (store, _) = FileStore::open(&path, clock).unwrap();
        let mut s = DhcpServer::new(cfg(), store, T0).unwrap();
        let bound: Vec<Ipv4Addr> = (1..=4).map(|i| dora(&mut s, T0, i)).collect();
        // kill -9 halfway through writing a fifth record: the server is gone
        // without a word, the file ends mid-line.
        drop(s);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, b"L 192.168.1.109 02:00:00:01:00:05 17672").unwrap();
        drop(f);
        // A restart ten seconds later, with a monotonic clock from zero.
        let now = Instant::from_secs(3);
        let clock = WallClock {
            now,
            unix_secs: 1_767_225_610,
        };
        let (store, report) = FileStore::open(&path, clock).unwrap();
        assert_eq!((report.leases, report.dropped_tail), (4, 39));
        let mut s = DhcpServer::new(cfg(), store, now).unwrap();
        let mut held: Vec<Ipv4Addr> = s.leases(now).map(|l| l.addr).collect();
        held.sort();
        let mut want = bound.clone();
        want.sort();
        assert_eq!(held, want);
        let l = s.leases(now).find(|l| l.addr == bound[0]).unwrap();
        assert_eq!(l.expires, now + Duration::from_secs(3590));
        // A client rebooting is recognised; a newcomer gets none of theirs.
        let mut r = msg(2, MessageType::Request, 1);
        r.options.requested_ip = Some(bound[1]);
        send(&mut s, now, &r, 2);
        assert_eq!(
            one_reply(&drain(&mut s, now)).1.message_type,
            MessageType::Ack
        );
        let fresh = dora(&mut s, now, 9);
        assert!(!bound.contains(&fresh));
        s.check_invariants().unwrap();
    }
}
