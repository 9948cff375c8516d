//! Clients and a server talking to each other through their actions on a
//! simulated link, for hours of lease time: renewals, restarts with
//! INIT-REBOOT, releases, a server restart from its store, and a host with
//! a static address inside the pool. After every step no two hosts use one
//! address and the server's table is consistent.

use core::net::Ipv4Addr;
use std::collections::VecDeque;

use super::client::{ClientAction, ClientConfig, ClientState, DhcpClient};
use super::server::{DhcpServer, ServerAction, ServerConfig, ServerStats};
use super::store::MemoryStore;
use crate::eth::MacAddr;
use crate::ip::cidr::Ipv4Cidr;
use crate::time::{Duration, Instant};

const T0: Instant = Instant::from_secs(0);
const STATIC_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 105);
const STATIC_MAC: MacAddr = MacAddr([2, 0x57, 0, 0, 0, 1]);

struct Host {
    mac: MacAddr,
    c: DhcpClient,
    /// What the host's stack has configured.
    addr: Option<Ipv4Cidr>,
    binds: u32,
}

enum Frame {
    ToServer {
        payload: Vec<u8>,
        from: MacAddr,
    },
    /// To every host (`None`) or one.
    ToHosts {
        payload: Vec<u8>,
        only: Option<usize>,
    },
    Arp {
        sender_ip: Ipv4Addr,
        sender_mac: MacAddr,
        target_ip: Ipv4Addr,
    },
}

struct Net {
    cfg: ServerConfig,
    server: DhcpServer,
    hosts: Vec<Host>,
    frames: VecDeque<Frame>,
    rng: u64,
    /// Probes answered "free" at once rather than left to time out.
    answered_free: u64,
    /// Counters of servers before a restart.
    earlier: Vec<ServerStats>,
}

fn client_cfg(requested: Option<Ipv4Addr>) -> ClientConfig {
    ClientConfig {
        requested,
        ..ClientConfig::default()
    }
}

impl Net {
    fn new(clients: u16, probe: bool) -> Net {
        let mut cfg = ServerConfig::new("10.0.0.1/24".parse().unwrap());
        cfg.pools = vec![(Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 149))];
        cfg.lease_time = Duration::from_secs(600);
        cfg.probe = probe;
        let server = DhcpServer::new(cfg.clone(), MemoryStore::new(), T0).unwrap();
        let hosts = (0..clients)
            .map(|i| {
                let mac = MacAddr([2, 0, 0, 0, (i >> 8) as u8, i as u8]);
                Host {
                    mac,
                    c: DhcpClient::new(mac, client_cfg(None), u64::from(i) + 1),
                    addr: None,
                    binds: 0,
                }
            })
            .collect();
        Net {
            cfg,
            server,
            hosts,
            frames: VecDeque::new(),
            rng: 0x9e37_79b9_7f4a_7c15,
            answered_free: 0,
            earlier: Vec::new(),
        }
    }

    fn rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Who, if anyone, answers ARP for `ip`.
    fn owner(&self, ip: Ipv4Addr) -> Option<MacAddr> {
        if ip == STATIC_IP {
            return Some(STATIC_MAC);
        }
        self.hosts
            .iter()
            .find(|h| h.addr.is_some_and(|a| a.addr() == ip))
            .map(|h| h.mac)
    }

    fn client_action(&mut self, now: Instant, i: usize, a: ClientAction) {
        let mac = self.hosts[i].mac;
        match a {
            ClientAction::Send(tx) => {
                if tx.src != Ipv4Addr::UNSPECIFIED {
                    assert_eq!(
                        Some(tx.src),
                        self.hosts[i].addr.map(|a| a.addr()),
                        "sent from an address it lacks"
                    );
                }
                self.frames.push_back(Frame::ToServer {
                    payload: tx.payload,
                    from: mac,
                });
            }
            ClientAction::ArpProbe(ip) => {
                self.frames.push_back(Frame::Arp {
                    sender_ip: Ipv4Addr::UNSPECIFIED,
                    sender_mac: mac,
                    target_ip: ip,
                });
                // The holder's stack defends its address with a reply.
                if let Some(owner) = self.owner(ip) {
                    self.frames.push_back(Frame::Arp {
                        sender_ip: ip,
                        sender_mac: owner,
                        target_ip: Ipv4Addr::UNSPECIFIED,
                    });
                }
            }
            ClientAction::ArpAnnounce(ip) => self.frames.push_back(Frame::Arp {
                sender_ip: ip,
                sender_mac: mac,
                target_ip: ip,
            }),
            ClientAction::Configure { lease, old } => {
                let ip = lease.address.addr();
                assert_eq!(self.hosts[i].addr, old.map(|l| l.address), "{now:?}");
                if let Some(other) = self.owner(ip).filter(|m| *m != mac) {
                    panic!("{now:?}: {ip} configured on {mac} while {other} uses it");
                }
                assert!(self.cfg.subnet.contains(ip));
                self.hosts[i].addr = Some(lease.address);
                self.hosts[i].binds += 1;
            }
            ClientAction::Deconfigure(lease) => {
                assert_eq!(self.hosts[i].addr, Some(lease.address));
                self.hosts[i].addr = None;
            }
        }
    }

    fn server_action(&mut self, now: Instant, a: ServerAction) {
        match a {
            ServerAction::Reply(r) => {
                assert_eq!(r.dst_port, 68);
                let only = match r.dst_mac {
                    Some(m) if m.is_broadcast() => None,
                    Some(m) => match self.hosts.iter().position(|h| h.mac == m) {
                        Some(i) => Some(i),
                        None => return,
                    },
                    None => match self
                        .hosts
                        .iter()
                        .position(|h| h.addr.is_some_and(|a| a.addr() == r.dst_ip))
                    {
                        Some(i) => Some(i),
                        None => return,
                    },
                };
                self.frames.push_back(Frame::ToHosts {
                    payload: r.payload,
                    only,
                });
            }
            ServerAction::Probe(ip) => {
                if self.owner(ip).is_some() {
                    self.server.on_probe_result(now, ip, true);
                } else if self.rand().is_multiple_of(2) {
                    self.answered_free += 1;
                    self.server.on_probe_result(now, ip, false);
                }
            }
        }
    }

    /// Runs every action and delivers every frame until all is quiet.
    fn settle(&mut self, now: Instant) {
        loop {
            for i in 0..self.hosts.len() {
                while let Some(a) = self.hosts[i].c.poll(now) {
                    self.client_action(now, i, a);
                }
            }
            while let Some(a) = self.server.poll(now) {
                self.server_action(now, a);
            }
            if self.frames.is_empty() {
                break;
            }
            while let Some(f) = self.frames.pop_front() {
                match f {
                    Frame::ToServer { payload, from } => {
                        self.server.on_message(now, &payload, from)
                    }
                    Frame::ToHosts { payload, only } => {
                        for (i, h) in self.hosts.iter_mut().enumerate() {
                            if only.is_none_or(|o| o == i) {
                                h.c.on_message(now, &payload);
                            }
                        }
                    }
                    Frame::Arp {
                        sender_ip,
                        sender_mac,
                        target_ip,
                    } => {
                        // Every host sees every ARP broadcast, its own too.
                        for h in &mut self.hosts {
                            h.c.on_arp(now, sender_ip, sender_mac, target_ip);
                        }
                    }
                }
            }
            self.server.check_invariants().unwrap();
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.hosts
            .iter()
            .filter_map(|h| h.c.poll_at())
            .chain(self.server.poll_at())
            .min()
    }

    /// A host restarts: a graceful one releases first; a crashed one just
    /// loses its stack. Either comes back asking for its old address.
    fn restart(&mut self, now: Instant, i: usize, graceful: bool) {
        let old = self.hosts[i].addr.map(|a| a.addr());
        if graceful {
            self.hosts[i].c.release(now);
            while let Some(a) = self.hosts[i].c.poll(now) {
                self.client_action(now, i, a);
            }
        }
        self.hosts[i].addr = None;
        let seed = self.rand();
        self.hosts[i].c = DhcpClient::new(self.hosts[i].mac, client_cfg(old), seed);
    }

    fn restart_server(&mut self, now: Instant) {
        self.earlier.push(self.server.stats().clone());
        let store = self.server.store().clone();
        self.server = DhcpServer::new(self.cfg.clone(), store, now).unwrap();
    }

    /// Runs until `end`, with a random host restart every `churn`.
    fn run(&mut self, from: Instant, end: Instant, churn: Option<Duration>) {
        let mut now = from;
        let mut next_churn = churn.map(|c| from + c);
        let mut server_restarted = false;
        while now < end {
            self.settle(now);
            if let Some(at) = next_churn.filter(|at| *at <= now) {
                let i = (self.rand() % self.hosts.len() as u64) as usize;
                let graceful = self.rand().is_multiple_of(2);
                self.restart(now, i, graceful);
                if !server_restarted
                    && (now - from).total_micros() > (end - from).total_micros() / 2
                {
                    self.restart_server(now);
                    server_restarted = true;
                }
                next_churn = churn.map(|c| at + c);
                continue;
            }
            let next = [self.next_deadline(), next_churn, Some(end)]
                .into_iter()
                .flatten()
                .min()
                .unwrap();
            now = next.max(now);
        }
        self.settle(end);
    }

    /// A counter summed over every server run.
    fn total(&self, f: impl Fn(&ServerStats) -> u64) -> u64 {
        self.earlier
            .iter()
            .chain([self.server.stats()])
            .map(f)
            .sum()
    }

    fn bound(&self) -> usize {
        self.hosts
            .iter()
            .filter(|h| {
                h.addr.is_some()
                    && matches!(h.c.state(), ClientState::Bound | ClientState::Renewing)
            })
            .count()
    }
}

#[test]
fn a_full_pool_of_clients_for_six_hours_never_shares_an_address() {
    // 49 clients for the 49 addresses the static host leaves: one of them
    // must be offered the static address, and the probe must catch it.
    let mut net = Net::new(49, true);
    let six_hours = T0 + Duration::from_secs(6 * 3600);
    net.run(T0, six_hours, Some(Duration::from_secs(300)));
    // A quiet quarter of an hour at the end: everyone settles.
    net.run(six_hours, six_hours + Duration::from_secs(900), None);
    assert_eq!(net.bound(), 49);
    let mut addrs: Vec<_> = net.hosts.iter().map(|h| h.addr.unwrap().addr()).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 49);
    assert!(
        !addrs.contains(&STATIC_IP),
        "the server's probe found the static host"
    );
    assert_eq!(net.earlier.len(), 1, "the server restarted once");
    // 600 s leases renewed at T1 for six hours: some 36 renewals each.
    assert!(net.total(|s| s.acks) > 49 * 30);
    assert!(net.total(|s| s.probes_in_use) >= 1);
    assert!(net.answered_free > 0 && net.total(|s| s.probes_timed_out) > 0);
    // Restarted clients asked for their old addresses and got them, from
    // the restarted server too.
    assert_eq!(net.total(|s| s.naks), 0);
    assert!(net.total(|s| s.releases) > 0);
    let total_binds: u32 = net.hosts.iter().map(|h| h.binds).sum();
    assert!(total_binds >= 49 + 50, "restarts rebind: {total_binds}");
}

#[test]
fn without_server_probes_the_clients_own_check_declines_the_static_address() {
    let mut net = Net::new(49, false);
    let end = T0 + Duration::from_secs(2 * 3600);
    net.run(T0, end, None);
    // 50 pool addresses less the static host's: all 49 clients bound, the
    // static address declined by whichever client was offered it.
    assert_eq!(net.bound(), 49);
    assert!(net
        .hosts
        .iter()
        .all(|h| h.addr.unwrap().addr() != STATIC_IP));
    assert_eq!(net.server.stats().declines, 1);
    let conflicts: u64 = net.hosts.iter().map(|h| h.c.stats().conflicts).sum();
    assert_eq!(conflicts, 1);
}

#[test]
fn more_clients_than_addresses_fill_the_pool_and_no_more() {
    let mut net = Net::new(60, true);
    let end = T0 + Duration::from_secs(3 * 3600);
    net.run(T0, end, None);
    assert_eq!(net.bound(), 49);
    assert!(net.server.stats().refused_pool_exhausted > 0);
    // The eleven left over keep asking, politely: retransmissions back off
    // to 64 s, so no more than about one DISCOVER a minute each.
    let discovers = net.server.stats().discovers;
    assert!(discovers < 60 + 11 * 3 * 60 + 200, "{discovers}");
}
