//! The DHCP server, stateful: a sequence of messages (structured, or raw
//! bytes) from a few clients and an attacker, clock steps, probe answers
//! and store failures, into a server with a small pool. After every step
//! the table is consistent and bounded, and no DHCPACK ever gives an
//! address to one client while another holds an unexpired ACK for it
//! (unless that one released or declined it).
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringstack::dhcp::server::{DhcpServer, RateLimit, ServerAction, ServerConfig};
use ringstack::dhcp::store::{ClientKey, MemoryStore};
use ringstack::dhcp::wire::{MessageType, Op, Repr};
use ringstack::eth::MacAddr;
use ringstack::time::{Duration, Instant};
use std::collections::HashMap;
use std::net::Ipv4Addr;

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const RESERVED: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);
const ATTACKER: MacAddr = MacAddr([2, 0xba, 0xd0, 0, 0, 1]);

fn mac(i: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, i % 16])
}

fn addr(b: u8) -> Ipv4Addr {
    match b % 4 {
        0 => Ipv4Addr::new(10, 0, 0, 100 + b % 20),
        1 => RESERVED,
        2 => Ipv4Addr::new(10, 0, 0, b),
        _ => Ipv4Addr::new(192, 168, b, 1),
    }
}

struct Bytes<'a>(&'a [u8]);
impl Bytes<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let Some(flags) = input.u8() else { return };
    let mut cfg = ServerConfig::new("10.0.0.1/24".parse().unwrap());
    cfg.pools = vec![(Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 115))];
    cfg.reservations = vec![(ClientKey::Mac(mac(3)), RESERVED)];
    cfg.max_leases = 12;
    cfg.max_per_mac = Some(3);
    cfg.rate_limit = Some(RateLimit { burst: 4, interval: Duration::from_secs(1) });
    cfg.rate_table_max = 8;
    cfg.max_pending_probes = 4;
    cfg.probe = flags & 1 != 0;
    cfg.rapid_commit = flags & 2 != 0;
    cfg.authoritative = flags & 4 != 0;
    cfg.lease_time = Duration::from_secs(120);
    let max_leases = cfg.max_leases;
    let mut s = DhcpServer::new(cfg, MemoryStore::new(), Instant::ZERO).unwrap();
    let mut now = Instant::ZERO;
    let mut probes: Vec<Ipv4Addr> = Vec::new();
    // Address -> (client, expiry) per the DHCPACKs seen.
    let mut acked: HashMap<Ipv4Addr, (ClientKey, Instant)> = HashMap::new();
    let key_of = |r: &Repr, a: Ipv4Addr| match (&r.options.client_id, a == RESERVED) {
        (Some(id), false) => ClientKey::Id(id.clone()),
        _ => ClientKey::Mac(r.client_mac().unwrap_or(MacAddr::ZERO)),
    };

    for _ in 0..200 {
        let Some(op) = input.u8() else { break };
        let mut sent: Option<Vec<u8>> = None;
        match op % 8 {
            0 => {
                let n = input.u8().unwrap_or(0) as usize * 2;
                let raw = input.take(n).to_vec();
                s.on_message(now, &raw, mac(op >> 3));
                sent = Some(raw);
            }
            1..=5 => {
                let who = input.u8().unwrap_or(0);
                let t = MessageType::from_u8(1 + input.u8().unwrap_or(0) % 8).unwrap();
                let opts = input.u8().unwrap_or(0);
                let a = addr(input.u8().unwrap_or(0));
                let mut r = Repr::new(Op::Request, t, u32::from(who), mac(who));
                if opts & 1 != 0 {
                    r.options.requested_ip = Some(a);
                }
                r.options.server_id = match (opts >> 1) & 3 {
                    0 => None,
                    1 | 2 => Some(SERVER),
                    _ => Some(Ipv4Addr::new(10, 0, 0, 2)),
                };
                if opts & 8 != 0 {
                    r.ciaddr = a;
                }
                if opts & 16 != 0 {
                    r.options.client_id = Some(vec![0, who % 4, who >> 4]);
                }
                r.options.rapid_commit = opts & 32 != 0;
                r.broadcast = opts & 64 != 0;
                if opts & 128 != 0 {
                    r.giaddr = if who & 1 != 0 { Ipv4Addr::new(10, 0, 0, 2) } else { Ipv4Addr::new(172, 16, 0, 1) };
                }
                let from = if who & 0x80 != 0 { ATTACKER } else { mac(who) };
                sent = Some(r.to_vec());
                s.on_message(now, sent.as_deref().unwrap(), from);
            }
            6 => {
                let b = input.u8().unwrap_or(0);
                now += if b & 1 != 0 { Duration::from_millis(u64::from(b) * 10) } else { Duration::from_secs(u64::from(b)) };
            }
            _ => {
                let b = input.u8().unwrap_or(0);
                if let Some(&p) = probes.get(usize::from(b >> 1) % probes.len().max(1)) {
                    s.on_probe_result(now, p, b & 1 != 0);
                }
            }
        }
        while let Some(a) = s.poll(now) {
            match a {
                ServerAction::Probe(p) => {
                    probes.push(p);
                    if probes.len() > 32 {
                        probes.remove(0);
                    }
                }
                ServerAction::Reply(r) => {
                    let m = Repr::parse_bytes(&r.payload).expect("the server's replies parse");
                    assert_eq!(m.op, Op::Reply);
                    assert!(r.payload.len() <= 576);
                    if m.message_type != MessageType::Ack || m.yiaddr.is_unspecified() {
                        continue;
                    }
                    let lease = Duration::from_secs(u64::from(m.options.lease_time.expect("an ACK carries its lease time")));
                    let key = key_of(&m, m.yiaddr);
                    if let Some((holder, until)) = acked.get(&m.yiaddr) {
                        assert!(
                            *holder == key || *until <= now,
                            "{} ACKed to {key:?} while {holder:?} holds it until {until:?} (now {now:?})",
                            m.yiaddr
                        );
                    }
                    // One address per client: an ACK elsewhere ends its
                    // other binding.
                    acked.retain(|_, (k, _)| *k != key);
                    acked.insert(m.yiaddr, (key, now + lease));
                }
            }
        }
        s.check_invariants().unwrap();
        assert!(s.table_len() <= max_leases);
        // Leases the server reports are ones it ACKed...
        let held: HashMap<Ipv4Addr, ClientKey> = s.leases(now).map(|l| (l.addr, l.client)).collect();
        for (a, k) in &held {
            assert_eq!(acked.get(a).map(|x| &x.0), Some(k), "{a} held by {k:?} but never ACKed to it");
        }
        // ...and one it ACKed goes before its time only when its holder
        // gives it up: a RELEASE or DECLINE in this very step.
        let gave_up = sent
            .and_then(|b| Repr::parse_bytes(&b).ok())
            .and_then(|r| match r.message_type {
                MessageType::Release => Some((key_of(&r, r.ciaddr), r.ciaddr)),
                MessageType::Decline => r.options.requested_ip.map(|a| (key_of(&r, a), a)),
                _ => None,
            });
        acked.retain(|a, (k, until)| {
            if *until <= now || held.get(a) == Some(k) {
                return true;
            }
            assert_eq!(gave_up.as_ref(), Some(&(k.clone(), *a)), "the server dropped {a} of {k:?} before {until:?}");
            false
        });
    }
});
