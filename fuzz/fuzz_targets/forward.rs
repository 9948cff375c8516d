//! The forwarding path, stateful: a router with three interfaces (one with
//! a small MTU, one on a VLAN with proxy ARP, one with strict reverse-path
//! filtering) and a few static routes takes arbitrary frames on any
//! interface and clock advances. Frames come raw, or as an IPv4 packet
//! behind a valid Ethernet header with its header checksum fixed up, so
//! the fuzzer gets past the checks into TTL, routing, fragmentation and
//! ICMP errors. After every step: no frame leaves an interface larger than
//! its MTU, from another MAC, or with a bad IPv4 header checksum, and the
//! memory caps hold.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringstack::dev::{Transmit, TxError};
use ringstack::eth::{self, EtherType, MacAddr};
use ringstack::ip::wire as ipw;
use ringstack::stack::{Config, IfaceId, InterfaceConfig, RpFilter, Stack, Transmitters};
use ringstack::time::{Duration, Instant};
use std::net::Ipv4Addr;

const MACS: [MacAddr; 3] = [
    MacAddr([2, 0, 0, 0, 1, 1]),
    MacAddr([2, 0, 0, 0, 2, 1]),
    MacAddr([2, 0, 0, 0, 3, 1]),
];
const MTUS: [usize; 3] = [1500, 576, 1500];
const VLANS: [Option<u16>; 3] = [None, None, Some(5)];
const PEER: MacAddr = MacAddr([2, 0, 0, 0, 9, 9]);

#[derive(Default)]
struct Sink {
    frames: Vec<Vec<u8>>,
}
impl Transmit for Sink {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError> {
        let mut f = vec![0u8; len];
        fill(&mut f);
        self.frames.push(f);
        Ok(())
    }
}
#[derive(Default)]
struct Sinks([Sink; 3]);
impl Transmitters for Sinks {
    fn tx(&mut self, iface: IfaceId) -> Option<&mut dyn Transmit> {
        self.0.get_mut(iface.index()).map(|s| s as &mut dyn Transmit)
    }
}

fn router() -> Stack {
    let mut c = Config::new(MACS[0], "198.18.1.1/24".parse().unwrap());
    c.announce = false;
    let mut s = Stack::new(c).unwrap();
    let mut wan = InterfaceConfig::new("wan", MACS[1], vec!["198.51.100.1/24".parse().unwrap()]);
    wan.mtu = MTUS[1];
    wan.rp_filter = RpFilter::Strict;
    s.add_interface(wan).unwrap();
    let mut dmz = InterfaceConfig::new("dmz", MACS[2], vec!["203.0.113.1/25".parse().unwrap()]);
    dmz.vlan = VLANS[2];
    dmz.proxy_arp = true;
    dmz.rp_filter = RpFilter::Off;
    s.add_interface(dmz).unwrap();
    s.add_route("0.0.0.0/0".parse().unwrap(), Some(Ipv4Addr::new(198, 51, 100, 254)), None, 0).unwrap();
    s.add_route("192.0.2.0/24".parse().unwrap(), Some(Ipv4Addr::new(203, 0, 113, 2)), None, 0).unwrap();
    s.add_route("198.18.2.0/23".parse().unwrap(), None, Some(IfaceId(0)), 5).unwrap();
    s.set_forwarding(true);
    s
}

fn framed(ifx: usize, body: &[u8], ethertype: EtherType, broadcast: bool) -> Vec<u8> {
    let repr = eth::Repr {
        src_addr: PEER,
        dst_addr: if broadcast { MacAddr::BROADCAST } else { MACS[ifx] },
        ethertype,
        vlan: VLANS[ifx].map(|vid| eth::VlanTag { pcp: 0, dei: false, vid }),
    };
    let mut f = vec![0u8; repr.header_len() + body.len()];
    repr.emit(&mut eth::Frame::new_unchecked(&mut f[..]));
    f[repr.header_len()..].copy_from_slice(body);
    f
}

fuzz_target!(|data: &[u8]| {
    let mut s = router();
    let mut sinks = Sinks::default();
    let mut now = Instant::from_millis(1);
    let mut rest = data;
    while rest.len() >= 3 {
        let (op, ifx, n) = (rest[0], usize::from(rest[1] % 3), usize::from(rest[2]) * 8);
        let body = &rest[3..(3 + n).min(rest.len())];
        rest = &rest[(3 + n).min(rest.len())..];
        match op % 4 {
            0 => s.process_frame_on(now, IfaceId(ifx as u16), body, &mut sinks),
            1 | 2 => {
                let mut ip = body.to_vec();
                if ip.len() >= 20 {
                    ip[0] = 0x40 | (ip[0] & 0x0f).max(5);
                    let hl = usize::from(ip[0] & 0x0f) * 4;
                    if ip.len() >= hl {
                        let total = ip.len() as u16;
                        ip[2..4].copy_from_slice(&total.to_be_bytes());
                        let mut p = ipw::Packet::new_unchecked(&mut ip[..]);
                        p.fill_checksum();
                    }
                }
                let f = framed(ifx, &ip, EtherType::Ipv4, op % 4 == 2 && body.first() == Some(&0));
                s.process_frame_on(now, IfaceId(ifx as u16), &f, &mut sinks);
            }
            _ => {
                now += Duration::from_millis(u64::from(rest.first().copied().unwrap_or(1)) * 50);
                s.poll_output(now, &mut sinks);
            }
        }
        for (i, sink) in sinks.0.iter_mut().enumerate() {
            for f in sink.frames.drain(..) {
                let e = eth::Frame::new_checked(&f[..]).expect("a whole Ethernet header");
                assert_eq!(e.src_addr(), MACS[i], "frame left interface {i} with another MAC");
                assert_eq!(e.vlan().map(|t| t.vid), VLANS[i]);
                if e.payload_ethertype() == EtherType::Ipv4 {
                    let p = ipw::Packet::new_checked(e.payload()).expect("a whole IPv4 header");
                    assert!(usize::from(p.total_len()) <= MTUS[i], "packet over the MTU of {i}");
                    assert!(p.verify_checksum(), "bad IPv4 header checksum out of {i}");
                    assert!(p.ttl() > 0);
                }
            }
        }
        let (neigh, pending, reasm, dgrams) = s.held_resources();
        let c = s.config();
        assert!(neigh <= 3 * c.arp.capacity);
        assert!(pending <= 3 * c.arp.pending_total);
        assert!(reasm <= c.reassembly.max_bytes);
        assert!(dgrams <= c.reassembly.max_datagrams);
    }
});
