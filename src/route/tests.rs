//! The forwarding path, frame by frame: a router with a LAN and a WAN
//! interface, each transmitter a log.

use crate::arp::wire as arpw;
use crate::dev::{Transmit, TxError};
use crate::eth::{self, EtherType, MacAddr};
use crate::icmp::wire as icmpw;
use crate::ip::cidr::Ipv4Cidr;
use crate::ip::wire::{self as ipw, Protocol};
use crate::stack::{Config, IfaceId, InterfaceConfig, RpFilter, Stack, Transmitters};
use crate::time::Instant;
use core::net::Ipv4Addr;

const LAN: IfaceId = IfaceId(0);
const WAN: IfaceId = IfaceId(1);
const LAN_MAC: MacAddr = MacAddr([2, 0, 0, 0, 1, 1]);
const WAN_MAC: MacAddr = MacAddr([2, 0, 0, 0, 2, 1]);
const HOST_MAC: MacAddr = MacAddr([2, 0, 0, 0, 1, 9]);
const FAR_MAC: MacAddr = MacAddr([2, 0, 0, 0, 2, 9]);
const LAN_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const WAN_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const HOST: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 9);
const FAR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 9);
const BEYOND: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);

#[derive(Default)]
struct Log {
    frames: Vec<Vec<u8>>,
}

impl Transmit for Log {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError> {
        let mut f = vec![0u8; len];
        fill(&mut f);
        self.frames.push(f);
        Ok(())
    }
}

#[derive(Default)]
struct Logs([Log; 2]);

impl Transmitters for Logs {
    fn tx(&mut self, iface: IfaceId) -> Option<&mut dyn Transmit> {
        self.0
            .get_mut(iface.index())
            .map(|l| l as &mut dyn Transmit)
    }
}

impl Logs {
    fn take(&mut self, i: IfaceId) -> Vec<Vec<u8>> {
        core::mem::take(&mut self.0[i.index()].frames)
    }
}

fn t(ms: i64) -> Instant {
    Instant::from_millis(ms)
}

/// LAN 198.18.1.1/24, WAN 198.51.100.1/24 with MTU `wan_mtu`, default
/// route via FAR, both neighbours known, forwarding on.
fn router(wan_mtu: usize) -> Stack {
    let mut c = Config::new(LAN_MAC, "198.18.1.1/24".parse().unwrap());
    c.announce = false;
    let mut s = Stack::new(c).unwrap();
    let wan = InterfaceConfig {
        mtu: wan_mtu,
        ..InterfaceConfig::new("wan", WAN_MAC, vec!["198.51.100.1/24".parse().unwrap()])
    };
    assert_eq!(s.add_interface(wan).unwrap(), WAN);
    s.add_route(cidr("0.0.0.0/0"), Some(FAR), None, 0).unwrap();
    s.set_forwarding(true);
    s.ifs[0].arp.learn(t(0), HOST, HOST_MAC, true);
    s.ifs[1].arp.learn(t(0), FAR, FAR_MAC, true);
    s
}

fn cidr(s: &str) -> Ipv4Cidr {
    s.parse().unwrap()
}

struct Pkt {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    df: bool,
    protocol: Protocol,
    payload: Vec<u8>,
}

impl Pkt {
    fn udp(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> Pkt {
        // A UDP header with checksum 0 (none) and a patterned body: the
        // router never looks past the IP header.
        let mut payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        payload[..8].copy_from_slice(&[0x30, 0x39, 0x00, 0x07, (len >> 8) as u8, len as u8, 0, 0]);
        Pkt {
            src,
            dst,
            ttl: 64,
            df: false,
            protocol: Protocol::Udp,
            payload,
        }
    }

    fn ip(&self) -> Vec<u8> {
        let r = ipw::Repr {
            src_addr: self.src,
            dst_addr: self.dst,
            protocol: self.protocol,
            payload_len: self.payload.len(),
            ttl: self.ttl,
            tos: 0,
            ident: 0x1234,
            dont_frag: self.df,
            more_frags: false,
            frag_offset: 0,
        };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut ipw::Packet::new_unchecked(&mut b[..]));
        b[ipw::HEADER_LEN..].copy_from_slice(&self.payload);
        b
    }

    fn frame(&self, from: MacAddr, to: MacAddr) -> Vec<u8> {
        eth_frame(from, to, EtherType::Ipv4, &self.ip())
    }
}

fn eth_frame(src: MacAddr, dst: MacAddr, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
    let repr = eth::Repr {
        src_addr: src,
        dst_addr: dst,
        ethertype,
        vlan: None,
    };
    let mut f = vec![0u8; repr.header_len() + payload.len()];
    repr.emit(&mut eth::Frame::new_unchecked(&mut f[..]));
    f[repr.header_len()..].copy_from_slice(payload);
    f
}

fn from_lan(s: &mut Stack, logs: &mut Logs, now: Instant, p: &Pkt) {
    s.process_frame_on(now, LAN, &p.frame(HOST_MAC, LAN_MAC), logs);
}

fn ip_of(frame: &[u8]) -> ipw::Packet<&[u8]> {
    ipw::Packet::new_checked(&frame[eth::HEADER_LEN..]).unwrap()
}

/// The ICMP message (type, code, next-hop MTU, quoted bytes) in `frame`,
/// checking that it goes from `src` to `dst`.
fn icmp_of(frame: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> (u8, u8, u16, Vec<u8>) {
    let ip = ip_of(frame);
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr(), ip.dst_addr()), (src, dst));
    assert_eq!(ip.protocol(), Protocol::Icmp);
    let p = icmpw::Packet::new_checked(ip.payload()).unwrap();
    let quote = ip.payload()[8..].to_vec();
    icmpw::Repr::parse(&p).expect("a valid ICMP message");
    (p.msg_type(), p.msg_code(), p.next_hop_mtu(), quote)
}

#[test]
fn a_forwarded_datagram_leaves_with_ttl_one_less_and_a_valid_checksum() {
    let mut s = router(1500);
    let mut logs = Logs::default();
    let p = Pkt::udp(HOST, BEYOND, 300);
    from_lan(&mut s, &mut logs, t(1), &p);
    let out = logs.take(WAN);
    assert_eq!(out.len(), 1);
    assert!(logs.take(LAN).is_empty());
    let f = eth::Frame::new_checked(&out[0][..]).unwrap();
    assert_eq!((f.dst_addr(), f.src_addr()), (FAR_MAC, WAN_MAC));
    let ip = ip_of(&out[0]);
    assert_eq!(ip.ttl(), 63);
    assert!(
        ip.verify_checksum(),
        "RFC 1624 update keeps the header sum right"
    );
    // Everything else is the datagram as it came.
    let mut want = p.ip();
    want[8] = 63;
    want[10..12].copy_from_slice(&out[0][eth::HEADER_LEN + 10..eth::HEADER_LEN + 12]);
    assert_eq!(&out[0][eth::HEADER_LEN..], &want[..]);
    let st = s.stats();
    assert_eq!(st.ip.forwarded, 1);
    assert_eq!(st.ip.rx_delivered, 0);
    assert_eq!(s.interface_stats(LAN).unwrap().forwarded_in, 1);
    assert_eq!(s.interface_stats(WAN).unwrap().forwarded_out, 1);
}

#[test]
fn ttl_one_is_answered_with_time_exceeded_from_the_lan_address() {
    let mut s = router(1500);
    let mut logs = Logs::default();
    let p = Pkt {
        ttl: 1,
        ..Pkt::udp(HOST, BEYOND, 100)
    };
    from_lan(&mut s, &mut logs, t(1), &p);
    assert!(logs.take(WAN).is_empty());
    let back = logs.take(LAN);
    assert_eq!(back.len(), 1);
    let (ty, code, _, quote) = icmp_of(&back[0], LAN_IP, HOST);
    assert_eq!((ty, code), (11, 0));
    // RFC 1812 §4.3.2.3: the quote starts with the datagram as received.
    assert_eq!(&quote[..], &p.ip()[..quote.len()]);
    assert!(quote.len() >= 28);
    assert_eq!(s.stats().ip.fwd_drop_ttl_expired, 1);
}

#[test]
fn no_route_is_answered_with_net_unreachable() {
    let mut s = router(1500);
    s.remove_route(cidr("0.0.0.0/0"), None);
    let mut logs = Logs::default();
    from_lan(&mut s, &mut logs, t(1), &Pkt::udp(HOST, BEYOND, 64));
    assert!(logs.take(WAN).is_empty());
    let back = logs.take(LAN);
    assert_eq!(back.len(), 1);
    let (ty, code, _, _) = icmp_of(&back[0], LAN_IP, HOST);
    assert_eq!((ty, code), (3, 0));
    assert_eq!(s.stats().ip.fwd_drop_no_route, 1);
}

#[test]
fn df_larger_than_the_wan_mtu_gets_frag_needed_with_that_mtu() {
    let mut s = router(1400);
    let mut logs = Logs::default();
    let p = Pkt {
        df: true,
        ..Pkt::udp(HOST, BEYOND, 1480)
    };
    from_lan(&mut s, &mut logs, t(1), &p);
    assert!(logs.take(WAN).is_empty());
    let back = logs.take(LAN);
    assert_eq!(back.len(), 1);
    let (ty, code, mtu, _) = icmp_of(&back[0], LAN_IP, HOST);
    assert_eq!((ty, code, mtu), (3, 4, 1400));
    // One byte under the MTU passes.
    let fits = Pkt {
        df: true,
        ..Pkt::udp(HOST, BEYOND, 1380)
    };
    from_lan(&mut s, &mut logs, t(2), &fits);
    assert_eq!(logs.take(WAN).len(), 1);
}

#[test]
fn without_df_a_larger_datagram_is_fragmented_and_reassembles_to_the_original() {
    let mut s = router(576);
    let mut logs = Logs::default();
    let p = Pkt::udp(HOST, BEYOND, 1400);
    from_lan(&mut s, &mut logs, t(1), &p);
    let out = logs.take(WAN);
    assert_eq!(out.len(), 3);
    let mut body = vec![0u8; p.payload.len()];
    let mut seen = 0;
    for (i, f) in out.iter().enumerate() {
        assert!(f.len() - eth::HEADER_LEN <= 576);
        let ip = ip_of(f);
        assert!(ip.verify_checksum());
        assert_eq!(ip.ttl(), 63);
        assert_eq!(ip.ident(), 0x1234);
        assert_eq!(ip.more_frags(), i + 1 < out.len());
        let off = usize::from(ip.frag_offset());
        assert_eq!(off % 8, 0);
        body[off..off + ip.payload().len()].copy_from_slice(ip.payload());
        seen += ip.payload().len();
    }
    assert_eq!(seen, body.len());
    assert_eq!(body, p.payload);
    assert_eq!(s.stats().ip.fwd_fragments, 3);
}

#[test]
fn a_fragment_is_fragmented_again_keeping_offsets_and_more_fragments() {
    // The second half of a datagram, offset 1480, MF clear, 1000 bytes.
    let p = Pkt::udp(HOST, BEYOND, 1000);
    let mut b = p.ip();
    {
        let mut ip = ipw::Packet::new_unchecked(&mut b[..]);
        ip.set_flags_and_offset(false, true, 1480);
        ip.fill_checksum();
    }
    let mut frags = Vec::new();
    let n = super::forward::fragment(&b, 500, 9, &mut |f| frags.push(f.to_vec()));
    assert_eq!(n, 3);
    let offs: Vec<(u16, bool)> = frags
        .iter()
        .map(|f| {
            let ip = ipw::Packet::new_checked(&f[..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(ip.ttl(), 9);
            (ip.frag_offset(), ip.more_frags())
        })
        .collect();
    // The original had MF set: the last piece keeps it.
    assert_eq!(offs, vec![(1480, true), (1960, true), (2440, true)]);
}

#[test]
fn only_options_with_the_copied_flag_go_into_later_fragments() {
    // Record Route (7, not copied), then Loose Source Route (0x83, copied),
    // NOP, EOL.
    let opts = [7, 7, 4, 0, 0, 0, 0, 0x83, 7, 4, 1, 2, 3, 4, 1, 0];
    let mut out = [0u8; 40];
    let n = super::forward::copied_options(&opts, &mut out);
    assert_eq!(n, 8);
    assert_eq!(&out[..8], &[0x83, 7, 4, 1, 2, 3, 4, 0]);
}

#[test]
fn martian_and_spoofed_sources_are_dropped_and_counted() {
    let mut s = router(1500);
    let mut logs = Logs::default();
    for src in [
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(0, 1, 2, 3),
        Ipv4Addr::new(240, 0, 0, 1),
        Ipv4Addr::new(224, 0, 0, 5),
        WAN_IP,
        Ipv4Addr::new(198, 18, 1, 255),
    ] {
        from_lan(&mut s, &mut logs, t(1), &Pkt::udp(src, BEYOND, 64));
    }
    assert!(logs.take(WAN).is_empty());
    assert!(
        logs.take(LAN).is_empty(),
        "no ICMP error about a bogus source"
    );
    assert_eq!(s.stats().ip.fwd_drop_martian_src, 6);
    assert_eq!(s.stats().ip.forwarded, 0);
}

#[test]
fn strict_reverse_path_drops_a_source_that_routes_out_another_interface() {
    let mut s = router(1500);
    let mut logs = Logs::default();
    // A WAN-side source arriving on the LAN: loose passes it (there is a
    // route back), strict does not (the route back is the WAN).
    let spoof = Pkt::udp(FAR, HOST, 64);
    let lan_peer = Pkt::udp(HOST, FAR, 64);
    from_lan(&mut s, &mut logs, t(1), &spoof);
    assert_eq!(
        logs.take(LAN).len(),
        1,
        "loose: forwarded back to the LAN host"
    );
    let mut c = InterfaceConfig::new("if0", LAN_MAC, vec![]);
    c.rp_filter = RpFilter::Strict;
    s.configure_interface(LAN, &c).unwrap();
    from_lan(&mut s, &mut logs, t(2), &spoof);
    assert!(logs.take(LAN).is_empty());
    assert_eq!(s.stats().ip.fwd_drop_rp_filter, 1);
    from_lan(&mut s, &mut logs, t(3), &lan_peer);
    assert_eq!(
        logs.take(WAN).len(),
        1,
        "strict passes a source routed back by LAN"
    );
    // Loose with no route back at all: no default route, unknown source.
    c.rp_filter = RpFilter::Loose;
    s.configure_interface(LAN, &c).unwrap();
    s.remove_route(cidr("0.0.0.0/0"), None);
    from_lan(&mut s, &mut logs, t(4), &Pkt::udp(BEYOND, FAR, 64));
    assert!(logs.take(WAN).is_empty());
    assert_eq!(s.stats().ip.fwd_drop_rp_filter, 2);
}

#[test]
fn link_and_directed_broadcasts_are_not_forwarded() {
    let mut s = router(1500);
    let mut logs = Logs::default();
    let p = Pkt::udp(HOST, BEYOND, 64);
    s.process_frame_on(t(1), LAN, &p.frame(HOST_MAC, MacAddr::BROADCAST), &mut logs);
    let dbc = Pkt::udp(HOST, Ipv4Addr::new(198, 51, 100, 255), 64);
    from_lan(&mut s, &mut logs, t(1), &dbc);
    let mcast = Pkt::udp(HOST, Ipv4Addr::new(239, 1, 2, 3), 64);
    from_lan(&mut s, &mut logs, t(1), &mcast);
    assert!(logs.take(WAN).is_empty());
    assert!(logs.take(LAN).is_empty());
    let st = s.stats().ip;
    assert_eq!(
        (
            st.fwd_drop_link_broadcast,
            st.fwd_drop_directed_broadcast,
            st.fwd_drop_martian_dst
        ),
        (1, 1, 1)
    );
}

#[test]
fn no_icmp_error_is_sent_about_an_icmp_error() {
    let mut s = router(1500);
    let mut logs = Logs::default();
    // A port unreachable on its way, TTL expiring here.
    let mut icmp = vec![3u8, 3, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&Pkt::udp(BEYOND, HOST, 8).ip()[..28]);
    let c = crate::ip::checksum::checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let p = Pkt {
        ttl: 1,
        protocol: Protocol::Icmp,
        payload: icmp,
        ..Pkt::udp(HOST, BEYOND, 8)
    };
    from_lan(&mut s, &mut logs, t(1), &p);
    assert!(logs.take(LAN).is_empty());
    assert!(logs.take(WAN).is_empty());
    assert_eq!(s.stats().icmp.tx_errors_suppressed, 1);
}

#[test]
fn icmp_errors_from_the_forwarding_path_are_rate_limited() {
    let mut s = router(1500);
    let mut logs = Logs::default();
    let p = Pkt {
        ttl: 1,
        ..Pkt::udp(HOST, BEYOND, 64)
    };
    for _ in 0..500 {
        from_lan(&mut s, &mut logs, t(1), &p);
    }
    let sent = logs.take(LAN).len() as u64;
    let st = s.stats();
    assert_eq!(st.ip.fwd_drop_ttl_expired, 500);
    assert_eq!(sent, st.icmp.tx_errors);
    assert!(
        sent <= u64::from(s.config().icmp_error_burst) + 1,
        "{sent} errors"
    );
    assert_eq!(st.icmp.tx_errors_rate_limited, 500 - sent);
}

#[test]
fn an_unresolved_next_hop_holds_the_datagram_until_arp_answers() {
    let mut s = router(1500);
    let mut logs = Logs::default();
    let other = Ipv4Addr::new(198, 51, 100, 77);
    let other_mac = MacAddr([2, 0, 0, 0, 2, 77]);
    let p = Pkt::udp(HOST, other, 200);
    from_lan(&mut s, &mut logs, t(1), &p);
    let out = logs.take(WAN);
    assert_eq!(out.len(), 1, "an ARP request, not the datagram");
    let arp = arpw::Packet::new_checked(&out[0][eth::HEADER_LEN..]).unwrap();
    let req = arpw::Repr::parse(&arp).unwrap();
    assert_eq!(
        (req.source_ip, req.target_ip, req.source_mac),
        (WAN_IP, other, WAN_MAC)
    );
    let reply = arpw::Repr {
        operation: arpw::Operation::Reply,
        source_mac: other_mac,
        source_ip: other,
        target_mac: WAN_MAC,
        target_ip: WAN_IP,
    };
    let mut b = vec![0u8; reply.buffer_len()];
    reply.emit(&mut arpw::Packet::new_unchecked(&mut b[..]));
    s.process_frame_on(
        t(2),
        WAN,
        &eth_frame(other_mac, WAN_MAC, EtherType::Arp, &b),
        &mut logs,
    );
    let out = logs.take(WAN);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..6], &other_mac.0);
    let ip = ip_of(&out[0]);
    assert_eq!(ip.ttl(), 63);
    assert!(ip.verify_checksum());
    assert_eq!(ip.payload(), &p.payload[..]);
}

#[test]
fn a_next_hop_that_never_answers_gets_host_unreachable() {
    let mut s = router(1500);
    let mut logs = Logs::default();
    let ghost = Ipv4Addr::new(198, 51, 100, 66);
    from_lan(&mut s, &mut logs, t(1), &Pkt::udp(HOST, ghost, 64));
    // Let ARP give up (three requests a second apart), then ask again
    // while the failure is held.
    for ms in (100..4_000).step_by(100) {
        s.run_timers(t(ms), &mut logs);
    }
    assert_eq!(s.stats().arp.resolution_failed, 1);
    logs.take(WAN);
    assert!(logs.take(LAN).is_empty());
    from_lan(&mut s, &mut logs, t(4_000), &Pkt::udp(HOST, ghost, 64));
    let back = logs.take(LAN);
    assert_eq!(back.len(), 1);
    let (ty, code, _, _) = icmp_of(&back[0], LAN_IP, HOST);
    assert_eq!((ty, code), (3, 1));
    assert_eq!(s.stats().ip.fwd_drop_host_unreachable, 1);
}

#[test]
fn proxy_arp_answers_for_a_wan_address_only_when_switched_on() {
    let mut s = router(1500);
    let mut logs = Logs::default();
    let ask = arpw::Repr {
        operation: arpw::Operation::Request,
        source_mac: HOST_MAC,
        source_ip: HOST,
        target_mac: MacAddr::ZERO,
        target_ip: FAR,
    };
    let mut b = vec![0u8; ask.buffer_len()];
    ask.emit(&mut arpw::Packet::new_unchecked(&mut b[..]));
    let frame = eth_frame(HOST_MAC, MacAddr::BROADCAST, EtherType::Arp, &b);
    s.process_frame_on(t(1), LAN, &frame, &mut logs);
    assert!(logs.take(LAN).is_empty());
    let mut c = InterfaceConfig::new("if0", LAN_MAC, vec![]);
    c.proxy_arp = true;
    s.configure_interface(LAN, &c).unwrap();
    s.process_frame_on(t(2), LAN, &frame, &mut logs);
    let out = logs.take(LAN);
    assert_eq!(out.len(), 1);
    let r =
        arpw::Repr::parse(&arpw::Packet::new_checked(&out[0][eth::HEADER_LEN..]).unwrap()).unwrap();
    assert_eq!(
        (r.operation, r.source_ip, r.source_mac),
        (arpw::Operation::Reply, FAR, LAN_MAC)
    );
    // Never for an address on the asking interface's own side.
    let ask_lan = arpw::Repr {
        target_ip: Ipv4Addr::new(198, 18, 1, 50),
        ..ask
    };
    ask_lan.emit(&mut arpw::Packet::new_unchecked(&mut b[..]));
    s.process_frame_on(
        t(3),
        LAN,
        &eth_frame(HOST_MAC, MacAddr::BROADCAST, EtherType::Arp, &b),
        &mut logs,
    );
    assert!(logs.take(LAN).is_empty());
}

#[test]
fn a_host_does_not_forward() {
    let mut s = router(1500);
    s.set_forwarding(false);
    let mut logs = Logs::default();
    from_lan(&mut s, &mut logs, t(1), &Pkt::udp(HOST, BEYOND, 64));
    assert!(logs.take(WAN).is_empty());
    assert!(logs.take(LAN).is_empty());
    assert_eq!(s.stats().ip.drop_not_for_us, 1);
}

#[test]
fn the_routers_wan_address_answers_pings_from_the_lan() {
    let mut s = router(1500);
    let mut logs = Logs::default();
    let mut echo = vec![8u8, 0, 0, 0, 0, 1, 0, 1, b'h', b'i'];
    let c = crate::ip::checksum::checksum(&echo);
    echo[2..4].copy_from_slice(&c.to_be_bytes());
    let p = Pkt {
        protocol: Protocol::Icmp,
        payload: echo,
        ..Pkt::udp(HOST, WAN_IP, 8)
    };
    from_lan(&mut s, &mut logs, t(1), &p);
    assert!(logs.take(WAN).is_empty());
    let back = logs.take(LAN);
    assert_eq!(back.len(), 1);
    assert_eq!(icmp_of(&back[0], WAN_IP, HOST).0, 0);
    assert_eq!(s.stats().ip.forwarded, 0);
}

#[test]
fn routes_list_local_connected_and_static() {
    let s = router(1500);
    let text = s.format_routes();
    for want in [
        "198.18.1.0/24",
        "198.51.100.0/24",
        "0.0.0.0/0",
        "via 198.51.100.9",
        "local",
        "connected",
        "static",
    ] {
        assert!(text.contains(want), "{want} missing in\n{text}");
    }
}
