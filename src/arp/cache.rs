//! The neighbour cache: IPv4 address to MAC, with a bounded queue of packets
//! waiting for resolution.
//!
//! States follow the spirit of RFC 4861's neighbour unreachability detection,
//! applied to ARP the way Linux does:
//! - `Incomplete`: a broadcast request is out; packets wait in a small queue.
//! - `Reachable`: recently confirmed by an ARP packet from the neighbour.
//! - `Stale`: older than `reachable_time`. Still used, but the first use sends
//!   unicast probes; no answer after `probe_retries` and the entry is deleted.
//! - `Failed`: resolution gave up; packets are dropped until `failed_hold`
//!   passes, so a dead address cannot make us flood requests.
//!
//! RFC 1122 §2.3.2.1 caps requests at one per second per destination, which
//! `request_interval` enforces. Timers live in a heap keyed by deadline, so
//! the cost of a poll never depends on how many entries the cache holds.

use crate::eth::MacAddr;
use crate::time::{Duration, Instant};
use core::cmp::Reverse;
use core::net::Ipv4Addr;
use std::collections::{BinaryHeap, HashMap, VecDeque};

#[derive(Debug, Clone)]
pub struct ArpConfig {
    /// Entries held at most; a full cache evicts failed, then the oldest entries.
    pub capacity: usize,
    /// Time after a confirmation during which an entry is used without question.
    pub reachable_time: Duration,
    /// An entry not confirmed for this long is deleted.
    pub gc_time: Duration,
    /// Minimum time between two requests for the same address (RFC 1122: 1 s).
    pub request_interval: Duration,
    /// Broadcast requests sent before resolution fails.
    pub request_retries: u32,
    /// Unicast probes sent to a stale entry before it is deleted.
    pub probe_retries: u32,
    /// How long a failed address drops packets before it is tried again.
    pub failed_hold: Duration,
    /// Packets waiting on one unresolved address.
    pub pending_per_neighbor: usize,
    /// Packets waiting over all unresolved addresses.
    pub pending_total: usize,
}

impl Default for ArpConfig {
    fn default() -> Self {
        ArpConfig {
            capacity: 1024,
            reachable_time: Duration::from_secs(30),
            gc_time: Duration::from_secs(120),
            request_interval: Duration::from_secs(1),
            request_retries: 3,
            probe_retries: 3,
            failed_hold: Duration::from_secs(3),
            pending_per_neighbor: 16,
            pending_total: 256,
        }
    }
}

#[derive(Debug)]
enum State {
    Incomplete {
        requests: u32,
        next: Instant,
        queue: VecDeque<Vec<u8>>,
    },
    Reachable {
        mac: MacAddr,
    },
    Stale {
        mac: MacAddr,
        probes: u32,
        next: Option<Instant>,
    },
    Failed {
        until: Instant,
    },
}

#[derive(Debug)]
struct Entry {
    state: State,
    /// Last time an ARP packet from the neighbour confirmed its MAC.
    confirmed: Instant,
}

/// What the caller should do with a packet for `ip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Send it to this MAC.
    Mac(MacAddr),
    /// Send it to this MAC, and also send a unicast ARP probe to it.
    MacAndProbe(MacAddr),
    /// Not resolved yet: queue the packet with [`NeighborCache::queue`], and
    /// broadcast a request if `send_request`.
    Pending { send_request: bool },
    /// Resolution failed recently: drop the packet.
    Failed,
}

/// What [`NeighborCache::learn`] did with a sender's address.
#[derive(Debug, PartialEq, Eq)]
pub enum Learned {
    Nothing,
    /// The address resolved: these packets were waiting for it.
    Released(VecDeque<Vec<u8>>),
    /// The sender claims a MAC other than the one held. The entry keeps
    /// `held`; with `probe`, send a unicast request to `held` now.
    Conflict {
        held: MacAddr,
        probe: bool,
    },
}

/// Work the cache's timers ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerAction {
    /// Send an ARP request for `ip`: broadcast, or unicast to a stale entry's MAC.
    Request {
        ip: Ipv4Addr,
        unicast: Option<MacAddr>,
    },
    /// Resolution of `ip` failed; `dropped` packets were waiting for it.
    Failed { ip: Ipv4Addr, dropped: usize },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub resolved: u64,
    /// Claims of a different MAC for a resolved address, not applied.
    pub conflicts: u64,
    pub failed: u64,
    pub evicted: u64,
    pub expired: u64,
    pub pending_dropped: u64,
    /// Entries an upper layer's negative advice turned stale.
    pub suspected: u64,
}

#[derive(Debug)]
pub struct NeighborCache {
    config: ArpConfig,
    entries: HashMap<Ipv4Addr, Entry>,
    /// The last address `resolve` answered from a `Reachable` entry, with
    /// that entry's MAC and `confirmed` time: the same answer again needs no
    /// hashing while `now - confirmed < reachable_time`, the condition the
    /// slow path checks. Every method that changes `entries` (other than
    /// such a hit) clears it first, so it always mirrors a reachable entry.
    last: Option<(Ipv4Addr, MacAddr, Instant)>,
    timers: BinaryHeap<Reverse<(Instant, Ipv4Addr)>>,
    pending: usize,
    stats: CacheStats,
}

impl NeighborCache {
    pub fn new(config: ArpConfig) -> NeighborCache {
        NeighborCache {
            entries: HashMap::with_capacity(config.capacity.min(4096)),
            last: None,
            timers: BinaryHeap::new(),
            pending: 0,
            stats: CacheStats::default(),
            config,
        }
    }

    pub fn config(&self) -> &ArpConfig {
        &self.config
    }
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Packets currently waiting for resolution.
    pub fn pending_packets(&self) -> usize {
        self.pending
    }

    /// The MAC for `ip` if one is known (reachable or stale), without side effects.
    pub fn peek(&self, ip: Ipv4Addr) -> Option<MacAddr> {
        match self.entries.get(&ip)?.state {
            State::Reachable { mac } | State::Stale { mac, .. } => Some(mac),
            _ => None,
        }
    }

    /// Decide how to send a packet to `ip` at `now`.
    #[inline]
    pub fn resolve(&mut self, now: Instant, ip: Ipv4Addr) -> Resolution {
        if let Some(mac) = self.cached(now, ip) {
            return Resolution::Mac(mac);
        }
        self.resolve_lookup(now, ip)
    }

    /// What [`resolve`](Self::resolve) would answer from its last-hit
    /// memory alone, with none of its side effects: `Some` only where
    /// `resolve` would return `Resolution::Mac` without touching the map.
    #[inline]
    pub fn cached(&self, now: Instant, ip: Ipv4Addr) -> Option<MacAddr> {
        match self.last {
            Some((last_ip, mac, confirmed))
                if last_ip == ip
                    && now.saturating_since(confirmed) < self.config.reachable_time =>
            {
                Some(mac)
            }
            _ => None,
        }
    }

    /// [`resolve`](Self::resolve) through the map.
    #[inline(never)]
    fn resolve_lookup(&mut self, now: Instant, ip: Ipv4Addr) -> Resolution {
        let reachable = self.config.reachable_time;
        let interval = self.config.request_interval;
        self.last = None;
        match self.entries.get_mut(&ip) {
            Some(e) => match &mut e.state {
                State::Reachable { mac } => {
                    let mac = *mac;
                    if now.saturating_since(e.confirmed) < reachable {
                        self.last = Some((ip, mac, e.confirmed));
                        return Resolution::Mac(mac);
                    }
                    e.state = State::Stale {
                        mac,
                        probes: 1,
                        next: Some(now + interval),
                    };
                    self.timers.push(Reverse((now + interval, ip)));
                    Resolution::MacAndProbe(mac)
                }
                State::Stale { mac, probes, next } => {
                    let mac = *mac;
                    if next.is_none() {
                        *probes = 1;
                        *next = Some(now + interval);
                        self.timers.push(Reverse((now + interval, ip)));
                        return Resolution::MacAndProbe(mac);
                    }
                    Resolution::Mac(mac)
                }
                State::Incomplete { .. } => Resolution::Pending {
                    send_request: false,
                },
                State::Failed { until } => {
                    if now < *until {
                        return Resolution::Failed;
                    }
                    e.state = State::Incomplete {
                        requests: 1,
                        next: now + interval,
                        queue: VecDeque::new(),
                    };
                    self.timers.push(Reverse((now + interval, ip)));
                    Resolution::Pending { send_request: true }
                }
            },
            None => {
                self.make_room(now);
                self.entries.insert(
                    ip,
                    Entry {
                        state: State::Incomplete {
                            requests: 1,
                            next: now + interval,
                            queue: VecDeque::new(),
                        },
                        confirmed: now,
                    },
                );
                self.timers.push(Reverse((now + interval, ip)));
                Resolution::Pending { send_request: true }
            }
        }
    }

    /// An upper layer suspects `ip` (TCP retransmissions reached R1, RFC
    /// 9293 MUST-20's negative advice; RFC 1122 §2.3.2.1's "advice from
    /// higher layers"): a reachable entry turns stale, so its next use
    /// re-verifies it with unicast probes and a dead neighbour is found.
    pub fn suspect(&mut self, ip: Ipv4Addr) -> bool {
        self.last = None;
        match self.entries.get_mut(&ip) {
            Some(e) => match e.state {
                State::Reachable { mac } => {
                    e.state = State::Stale {
                        mac,
                        probes: 0,
                        next: None,
                    };
                    self.stats.suspected += 1;
                    true
                }
                _ => false,
            },
            None => false,
        }
    }

    /// Queue a packet for an address that [`resolve`](Self::resolve) said is
    /// pending. Returns false (and counts a drop) when the queue is full.
    pub fn queue(&mut self, ip: Ipv4Addr, packet: Vec<u8>) -> bool {
        self.last = None;
        if self.pending >= self.config.pending_total && !self.shed_oldest_pending(ip) {
            self.stats.pending_dropped += 1;
            return false;
        }
        match self.entries.get_mut(&ip).map(|e| &mut e.state) {
            Some(State::Incomplete { queue, .. })
                if queue.len() < self.config.pending_per_neighbor =>
            {
                queue.push_back(packet);
                self.pending += 1;
                true
            }
            _ => {
                self.stats.pending_dropped += 1;
                false
            }
        }
    }

    /// An ARP packet from `ip` said its MAC is `mac`. With `create`, a new
    /// entry is made (RFC 826: "if we are the target"); otherwise only an
    /// existing entry is updated (RFC 826's merge flag).
    ///
    /// A resolved entry's MAC is never overwritten by a claim for a
    /// different MAC: one forged frame would otherwise redirect our traffic.
    /// The claim instead starts a unicast probe of the MAC we hold; if that
    /// neighbour stops answering, the entry is deleted and the next packet
    /// resolves the address afresh by broadcast.
    pub fn learn(&mut self, now: Instant, ip: Ipv4Addr, mac: MacAddr, create: bool) -> Learned {
        self.last = None;
        let gc = self.config.gc_time;
        let interval = self.config.request_interval;
        if let Some(e) = self.entries.get_mut(&ip) {
            match &mut e.state {
                State::Reachable { mac: held } | State::Stale { mac: held, .. } if *held != mac => {
                    let held = *held;
                    self.stats.conflicts += 1;
                    let probing = matches!(e.state, State::Stale { next: Some(_), .. });
                    if !probing {
                        e.state = State::Stale {
                            mac: held,
                            probes: 1,
                            next: Some(now + interval),
                        };
                        self.timers.push(Reverse((now + interval, ip)));
                    }
                    return Learned::Conflict {
                        held,
                        probe: !probing,
                    };
                }
                _ => {}
            }
            e.confirmed = now;
            let old = core::mem::replace(&mut e.state, State::Reachable { mac });
            self.timers.push(Reverse((now + gc, ip)));
            return match old {
                State::Incomplete { queue, .. } => {
                    self.stats.resolved += 1;
                    self.pending -= queue.len();
                    Learned::Released(queue)
                }
                _ => Learned::Nothing,
            };
        }
        if create {
            self.make_room(now);
            self.entries.insert(
                ip,
                Entry {
                    state: State::Reachable { mac },
                    confirmed: now,
                },
            );
            self.timers.push(Reverse((now + gc, ip)));
        }
        Learned::Nothing
    }

    /// Run due timers; actions for the caller go to `out`.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<TimerAction>) {
        while let Some(&Reverse((at, ip))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.fire(now, ip, out);
        }
    }

    fn fire(&mut self, now: Instant, ip: Ipv4Addr, out: &mut Vec<TimerAction>) {
        self.last = None;
        let c = &self.config;
        let Some(e) = self.entries.get_mut(&ip) else {
            return;
        };
        match &mut e.state {
            State::Incomplete {
                requests,
                next,
                queue,
            } => {
                // Stale heap items (from an earlier state) are skipped by time.
                if *next > now {
                    return;
                }
                if *requests < c.request_retries {
                    *requests += 1;
                    *next = now + c.request_interval;
                    self.timers.push(Reverse((*next, ip)));
                    out.push(TimerAction::Request { ip, unicast: None });
                } else {
                    let dropped = queue.len();
                    self.pending -= dropped;
                    self.stats.pending_dropped += dropped as u64;
                    self.stats.failed += 1;
                    e.state = State::Failed {
                        until: now + c.failed_hold,
                    };
                    self.timers.push(Reverse((now + c.failed_hold, ip)));
                    out.push(TimerAction::Failed { ip, dropped });
                }
            }
            State::Stale { mac, probes, next } => {
                match *next {
                    Some(t) if t <= now => {}
                    // Not probing: the entry may simply have aged out.
                    None if now.saturating_since(e.confirmed) >= c.gc_time => {
                        self.entries.remove(&ip);
                        self.stats.expired += 1;
                        return;
                    }
                    _ => return,
                }
                if *probes < c.probe_retries {
                    *probes += 1;
                    *next = Some(now + c.request_interval);
                    self.timers.push(Reverse((now + c.request_interval, ip)));
                    out.push(TimerAction::Request {
                        ip,
                        unicast: Some(*mac),
                    });
                } else {
                    // Unanswered probes: the neighbour is gone. The next
                    // packet starts a fresh broadcast resolution.
                    self.entries.remove(&ip);
                    self.stats.expired += 1;
                }
            }
            State::Reachable { mac } => {
                let since = now.saturating_since(e.confirmed);
                if since >= c.gc_time {
                    self.entries.remove(&ip);
                    self.stats.expired += 1;
                } else if since >= c.reachable_time {
                    // Age into Stale so an unused entry is collected at gc_time.
                    let mac = *mac;
                    e.state = State::Stale {
                        mac,
                        probes: 0,
                        next: None,
                    };
                    self.timers.push(Reverse((e.confirmed + c.gc_time, ip)));
                }
            }
            State::Failed { until } => {
                if *until <= now {
                    self.entries.remove(&ip);
                }
            }
        }
    }

    /// When the next timer is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// The total of waiting packets is reached: drop the first packet of the
    /// longest-unresolved other address, so a flood of packets to hosts that
    /// never answer cannot starve a new resolution. Scans the cache, but only
    /// when the queues are full.
    fn shed_oldest_pending(&mut self, except: Ipv4Addr) -> bool {
        self.last = None;
        let victim = self
            .entries
            .iter()
            .filter(|(ip, e)| {
                **ip != except
                    && matches!(&e.state, State::Incomplete { queue, .. } if !queue.is_empty())
            })
            .min_by_key(|(_, e)| e.confirmed)
            .map(|(ip, _)| *ip);
        let Some(Entry {
            state: State::Incomplete { queue, .. },
            ..
        }) = victim.and_then(|ip| self.entries.get_mut(&ip))
        else {
            return false;
        };
        queue.pop_front();
        self.pending -= 1;
        self.stats.pending_dropped += 1;
        true
    }

    /// Make room for one more entry: drop a failed entry, else the oldest
    /// unresolved one (with its queued packets), else the least recently
    /// confirmed.
    fn make_room(&mut self, _now: Instant) {
        self.last = None;
        if self.entries.len() < self.config.capacity.max(1) {
            return;
        }
        let victim = self
            .entries
            .iter()
            .min_by_key(|(_, e)| {
                // Floods create unresolved entries; a confirmed neighbour
                // (the gateway, a peer we talk to) is worth more than any.
                let rank = match e.state {
                    State::Failed { .. } => 0,
                    State::Incomplete { .. } => 1,
                    State::Stale { .. } => 2,
                    State::Reachable { .. } => 3,
                };
                (rank, e.confirmed)
            })
            .map(|(ip, _)| *ip);
        if let Some(ip) = victim {
            if let Some(Entry {
                state: State::Incomplete { queue, .. },
                ..
            }) = self.entries.remove(&ip)
            {
                self.pending -= queue.len();
                self.stats.pending_dropped += queue.len() as u64;
            }
            self.stats.evicted += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

    fn t(ms: i64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn unresolved_address_queues_packets_then_releases_them_on_reply() {
        let mut c = NeighborCache::new(ArpConfig::default());
        assert_eq!(
            c.resolve(t(0), IP),
            Resolution::Pending { send_request: true }
        );
        assert!(c.queue(IP, vec![1]));
        // A second packet must not trigger a second request (RFC 1122 2.3.2.1 flood control).
        assert_eq!(
            c.resolve(t(10), IP),
            Resolution::Pending {
                send_request: false
            }
        );
        assert!(c.queue(IP, vec![2]));
        assert_eq!(c.pending_packets(), 2);
        let released = c.learn(t(20), IP, MAC, false);
        assert_eq!(
            released,
            Learned::Released(VecDeque::from(vec![vec![1], vec![2]]))
        );
        assert_eq!(c.pending_packets(), 0);
        assert_eq!(c.resolve(t(30), IP), Resolution::Mac(MAC));
    }

    #[test]
    fn requests_are_retried_once_per_second_then_resolution_fails() {
        let cfg = ArpConfig::default();
        let mut c = NeighborCache::new(cfg.clone());
        c.resolve(t(0), IP);
        c.queue(IP, vec![0; 100]);
        let mut out = Vec::new();
        c.poll(t(999), &mut out);
        assert!(
            out.is_empty(),
            "RFC 1122: no more than one request per second"
        );
        c.poll(t(1000), &mut out);
        c.poll(t(2000), &mut out);
        assert_eq!(
            out,
            vec![
                TimerAction::Request {
                    ip: IP,
                    unicast: None
                };
                2
            ]
        );
        out.clear();
        c.poll(t(3000), &mut out);
        assert_eq!(out, vec![TimerAction::Failed { ip: IP, dropped: 1 }]);
        assert_eq!(c.pending_packets(), 0);
        assert_eq!(c.resolve(t(3500), IP), Resolution::Failed);
        // After the hold time resolution starts afresh.
        assert_eq!(
            c.resolve(t(3000 + cfg.failed_hold.total_millis() as i64), IP),
            Resolution::Pending { send_request: true }
        );
    }

    #[test]
    fn stale_entry_is_probed_by_unicast_and_deleted_when_silent() {
        let mut c = NeighborCache::new(ArpConfig::default());
        c.learn(t(0), IP, MAC, true);
        assert_eq!(c.resolve(t(29_999), IP), Resolution::Mac(MAC));
        assert_eq!(c.resolve(t(30_000), IP), Resolution::MacAndProbe(MAC));
        // While probing the MAC is still used, without a probe per packet.
        assert_eq!(c.resolve(t(30_100), IP), Resolution::Mac(MAC));
        let mut out = Vec::new();
        for ms in [31_000, 32_000, 33_000] {
            c.poll(t(ms), &mut out);
        }
        assert_eq!(
            out,
            vec![
                TimerAction::Request {
                    ip: IP,
                    unicast: Some(MAC)
                };
                2
            ]
        );
        assert_eq!(c.peek(IP), None, "three unanswered probes delete the entry");
        assert_eq!(
            c.resolve(t(33_001), IP),
            Resolution::Pending { send_request: true }
        );
    }

    #[test]
    fn probe_answer_makes_entry_reachable_again() {
        let mut c = NeighborCache::new(ArpConfig::default());
        c.learn(t(0), IP, MAC, true);
        assert_eq!(c.resolve(t(40_000), IP), Resolution::MacAndProbe(MAC));
        c.learn(t(40_001), IP, MAC, false);
        let mut out = Vec::new();
        c.poll(t(45_000), &mut out);
        assert!(out.is_empty());
        assert_eq!(c.resolve(t(45_000), IP), Resolution::Mac(MAC));
    }

    #[test]
    fn unused_entries_expire_after_gc_time() {
        let mut c = NeighborCache::new(ArpConfig::default());
        c.learn(t(0), IP, MAC, true);
        let mut out = Vec::new();
        c.poll(t(119_999), &mut out);
        assert_eq!(c.len(), 1);
        c.poll(t(120_000), &mut out);
        assert_eq!(c.len(), 0);
        assert_eq!(c.stats().expired, 1);
        assert!(out.is_empty());
    }

    #[test]
    fn learn_without_create_does_not_add_entries() {
        // RFC 826: only "if we are the target" is a new pair added.
        let mut c = NeighborCache::new(ArpConfig::default());
        assert_eq!(c.learn(t(0), IP, MAC, false), Learned::Nothing);
        assert!(c.is_empty());
    }

    #[test]
    fn cache_and_queues_stay_bounded_under_flood() {
        let cfg = ArpConfig {
            capacity: 64,
            pending_per_neighbor: 4,
            pending_total: 100,
            ..Default::default()
        };
        let mut c = NeighborCache::new(cfg);
        for i in 0..10_000u32 {
            let ip = Ipv4Addr::from(0xc612_0000 | i);
            if let Resolution::Pending { .. } = c.resolve(t(i as i64), ip) {
                for _ in 0..8 {
                    c.queue(ip, vec![0; 64]);
                }
            }
            c.learn(t(i as i64), Ipv4Addr::from(0xc613_0000 | i), MAC, true);
            assert!(c.len() <= 64);
            assert!(c.pending_packets() <= 100);
        }
        assert!(c.stats().evicted > 0);
        assert!(c.stats().pending_dropped > 0);
    }

    #[test]
    fn a_claim_for_another_mac_is_verified_not_applied() {
        const SPOOF: MacAddr = MacAddr([2, 6, 6, 6, 6, 6]);
        let mut c = NeighborCache::new(ArpConfig::default());
        c.learn(t(0), IP, MAC, true);
        assert_eq!(
            c.learn(t(10), IP, SPOOF, false),
            Learned::Conflict {
                held: MAC,
                probe: true
            }
        );
        assert_eq!(
            c.peek(IP),
            Some(MAC),
            "one forged reply must not redirect traffic"
        );
        // A flood of claims starts one probe, not one each.
        assert_eq!(
            c.learn(t(11), IP, SPOOF, false),
            Learned::Conflict {
                held: MAC,
                probe: false
            }
        );
        // The real neighbour answers the probe: it stays.
        assert_eq!(c.learn(t(20), IP, MAC, false), Learned::Nothing);
        assert_eq!(c.resolve(t(30), IP), Resolution::Mac(MAC));
        assert_eq!(c.stats().conflicts, 2);
    }

    #[test]
    fn a_neighbour_that_moved_is_found_again_after_its_old_mac_goes_silent() {
        const NEW: MacAddr = MacAddr([2, 0, 0, 0, 0, 9]);
        let mut c = NeighborCache::new(ArpConfig::default());
        c.learn(t(0), IP, MAC, true);
        c.learn(t(10), IP, NEW, false);
        let mut out = Vec::new();
        for ms in [1010, 2010, 3010] {
            c.poll(t(ms), &mut out);
        }
        assert_eq!(c.peek(IP), None, "the old MAC never answered its probes");
        assert_eq!(
            c.resolve(t(3011), IP),
            Resolution::Pending { send_request: true }
        );
        assert!(matches!(
            c.learn(t(3012), IP, NEW, false),
            Learned::Released(_)
        ));
        assert_eq!(c.peek(IP), Some(NEW));
    }

    #[test]
    fn a_flood_of_unresolved_addresses_neither_evicts_neighbours_nor_starves_new_ones() {
        let cfg = ArpConfig {
            capacity: 64,
            pending_total: 32,
            ..Default::default()
        };
        let mut c = NeighborCache::new(cfg);
        c.learn(t(0), IP, MAC, true);
        for i in 0..1000u32 {
            let ip = Ipv4Addr::from(0xc612_1000 + i);
            if let Resolution::Pending { .. } = c.resolve(t(1), ip) {
                c.queue(ip, vec![0; 64]);
            }
        }
        assert_eq!(
            c.peek(IP),
            Some(MAC),
            "the confirmed neighbour survives the flood"
        );
        assert!(c.len() <= 64 && c.pending_packets() <= 32);
        // A new destination still gets its packet queued.
        let fresh = Ipv4Addr::new(198, 18, 9, 9);
        assert_eq!(
            c.resolve(t(2), fresh),
            Resolution::Pending { send_request: true }
        );
        assert!(c.queue(fresh, vec![1]));
        assert!(matches!(c.learn(t(3), fresh, MAC, false), Learned::Released(q) if q.len() == 1));
    }

    #[test]
    fn queue_refuses_packets_for_resolved_or_unknown_addresses() {
        let mut c = NeighborCache::new(ArpConfig::default());
        assert!(!c.queue(IP, vec![1]));
        c.learn(t(0), IP, MAC, true);
        assert!(!c.queue(IP, vec![1]));
        assert_eq!(c.stats().pending_dropped, 2);
    }

    #[test]
    fn remembered_last_hit_answers_as_the_full_lookup_would() {
        // `resolve` answers a repeat of its last reachable hit without the
        // map. Drive two caches with the same random operations, one with
        // the remembered hit wiped before every call, and compare every
        // answer: suspicion, conflicts, ageing to stale, probes, expiry,
        // eviction and re-resolution must all look the same.
        let cfg = ArpConfig {
            capacity: 3,
            ..ArpConfig::default()
        };
        let mut fast = NeighborCache::new(cfg.clone());
        let mut slow = NeighborCache::new(cfg);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut now = 0i64;
        let (mut hits, mut stale) = (0, 0);
        for _ in 0..200_000 {
            let r = next();
            // Time always moves, so no two entries share a `confirmed` time
            // and eviction (by oldest) does not depend on map order.
            now += [1, 1, 1, 1, 10, 500, 5_000, 40_000][(r % 8) as usize];
            let ip = Ipv4Addr::new(198, 18, 0, 1 + ((r >> 8) % 4) as u8);
            let mac = MacAddr([2, 0, 0, 0, 0, 1 + ((r >> 16) % 2) as u8]);
            slow.last = None;
            match (r >> 24) % 16 {
                0..=9 => {
                    if fast.last.is_some_and(|(i, ..)| i == ip) {
                        hits += 1;
                    }
                    let (a, b) = (fast.resolve(t(now), ip), slow.resolve(t(now), ip));
                    assert_eq!(a, b, "resolve {ip} at {now}");
                    if a == (Resolution::Pending { send_request: true }) {
                        fast.queue(ip, vec![0]);
                        slow.queue(ip, vec![0]);
                    }
                    stale += usize::from(matches!(a, Resolution::MacAndProbe(_)));
                }
                10..=11 => assert_eq!(
                    fast.learn(t(now), ip, mac, r >> 40 & 1 == 0),
                    slow.learn(t(now), ip, mac, r >> 40 & 1 == 0)
                ),
                12 => assert_eq!(fast.suspect(ip), slow.suspect(ip)),
                _ => {
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    fast.poll(t(now), &mut a);
                    slow.poll(t(now), &mut b);
                    assert_eq!(a, b);
                }
            }
            assert_eq!(fast.len(), slow.len());
            assert_eq!(fast.stats(), slow.stats());
        }
        assert!(hits > 1_000 && stale > 1_000, "{hits} hits, {stale} stale");
    }
}
