//! Stack behaviour, frame by frame, with a device that is two queues.

use super::*;
use crate::arp::wire as arpw;
use crate::dev::{DeviceCaps, DeviceStats, Transmit, TxError};
use crate::eth::{self, EtherType};
use crate::icmp::wire as icmpw;
use crate::ip::wire::{self as ipw, Protocol};
use crate::udp::wire as udpw;
use std::collections::VecDeque;

const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const PEER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const OUR_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// Frames in, frames out; nothing else.
#[derive(Default)]
struct QueueDev {
    rx: VecDeque<Vec<u8>>,
    tx: TxLog,
}

#[derive(Default)]
struct TxLog {
    frames: Vec<Vec<u8>>,
    limit: Option<usize>,
}

impl Transmit for TxLog {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError> {
        if self.limit.is_some_and(|l| self.frames.len() >= l) {
            return Err(TxError::Exhausted);
        }
        let mut f = vec![0u8; len];
        fill(&mut f);
        self.frames.push(f);
        Ok(())
    }
}

impl Device for QueueDev {
    fn caps(&self) -> DeviceCaps {
        DeviceCaps {
            mtu: 1500,
            mac: None,
            rx_batch: 64,
            kind: "test".into(),
        }
    }
    fn receive(
        &mut self,
        _now: Instant,
        budget: usize,
        f: &mut dyn FnMut(&[u8], &mut dyn Transmit),
    ) -> io::Result<usize> {
        let mut n = 0;
        while n < budget {
            let Some(fr) = self.rx.pop_front() else { break };
            f(&fr, &mut self.tx);
            n += 1;
        }
        Ok(n)
    }
    fn transmitter(&mut self) -> &mut dyn Transmit {
        &mut self.tx
    }
    fn flush(&mut self, _now: Instant) -> io::Result<()> {
        Ok(())
    }
    fn wait(&mut self, _t: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    fn stats(&self) -> DeviceStats {
        DeviceStats::default()
    }
}

fn config() -> Config {
    let mut c = Config::new(OUR_MAC, "198.18.0.2/24".parse().unwrap());
    c.announce = false;
    c
}

fn stack() -> Stack {
    Stack::new(config()).unwrap()
}

fn t(ms: i64) -> Instant {
    Instant::from_millis(ms)
}

fn frame(dst: MacAddr, ethertype: EtherType, vlan: Option<u16>, payload: &[u8]) -> Vec<u8> {
    let repr = eth::Repr {
        src_addr: PEER_MAC,
        dst_addr: dst,
        ethertype,
        vlan: vlan.map(|vid| eth::VlanTag {
            pcp: 0,
            dei: false,
            vid,
        }),
    };
    let mut f = vec![0u8; repr.header_len() + payload.len()];
    repr.emit(&mut eth::Frame::new_unchecked(&mut f[..]));
    f[repr.header_len()..].copy_from_slice(payload);
    f
}

fn arp(op: arpw::Operation, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let r = arpw::Repr {
        operation: op,
        source_mac: PEER_MAC,
        source_ip: sender,
        target_mac: MacAddr::ZERO,
        target_ip: target,
    };
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(&mut arpw::Packet::new_unchecked(&mut b[..]));
    let dst = if op == arpw::Operation::Request {
        MacAddr::BROADCAST
    } else {
        OUR_MAC
    };
    frame(dst, EtherType::Arp, None, &b)
}

fn ip_packet(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: Protocol,
    payload: &[u8],
    frag: Option<(u16, bool, u16)>,
) -> Vec<u8> {
    let (ident, more, off) = frag.unwrap_or((1, false, 0));
    let r = ipw::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: proto,
        payload_len: payload.len(),
        ttl: 64,
        tos: 0,
        ident,
        dont_frag: false,
        more_frags: more,
        frag_offset: off,
    };
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(&mut ipw::Packet::new_unchecked(&mut b[..]));
    b[20..].copy_from_slice(payload);
    b
}

fn icmp_bytes(r: &icmpw::Repr) -> Vec<u8> {
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(&mut icmpw::Packet::new_unchecked(&mut b[..]));
    b
}

fn udp_bytes(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let r = udpw::Repr {
        src_port: sport,
        dst_port: dport,
    };
    let mut b = vec![0u8; 8 + data.len()];
    r.emit(&mut udpw::Packet::new_unchecked(&mut b[..]), src, dst, data);
    b
}

fn echo_request_frame(dst_ip: Ipv4Addr, dst_mac: MacAddr, data: &[u8]) -> Vec<u8> {
    let icmp = icmp_bytes(&icmpw::Repr::EchoRequest {
        ident: 0x1234,
        seq: 7,
        data,
    });
    frame(
        dst_mac,
        EtherType::Ipv4,
        None,
        &ip_packet(PEER_IP, dst_ip, Protocol::Icmp, &icmp, None),
    )
}

/// Parse a frame we sent down to its IP packet.
fn sent_ip(f: &[u8]) -> (ipw::Repr, Vec<u8>) {
    let e = eth::Frame::new_checked(f).unwrap();
    assert_eq!(e.payload_ethertype(), EtherType::Ipv4);
    let p = ipw::Packet::new_checked(e.payload()).unwrap();
    assert!(p.verify_checksum(), "IP header checksum of a frame we sent");
    (ipw::Repr::parse(&p).unwrap(), p.payload().to_vec())
}

/// Only the IPv4 frames of `out` (a stale neighbour may add ARP probes).
fn ip_only(out: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    out.into_iter()
        .filter(|f| {
            eth::Frame::new_checked(&f[..]).is_ok_and(|e| e.payload_ethertype() == EtherType::Ipv4)
        })
        .collect()
}

fn run(s: &mut Stack, d: &mut QueueDev, now: Instant, frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    d.rx.extend(frames);
    s.poll(now, d).unwrap();
    std::mem::take(&mut d.tx.frames)
}

/// Teach the stack the peer's MAC, as an ARP request from the peer would.
fn learn_peer(s: &mut Stack, d: &mut QueueDev) {
    run(
        s,
        d,
        t(0),
        vec![arp(arpw::Operation::Request, PEER_IP, OUR_IP)],
    );
    assert_eq!(s.neighbor(PEER_IP), Some(PEER_MAC));
}

#[test]
fn answers_arp_request_for_its_address() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    let out = run(
        &mut s,
        &mut d,
        t(0),
        vec![arp(arpw::Operation::Request, PEER_IP, OUR_IP)],
    );
    assert_eq!(out.len(), 1);
    let e = eth::Frame::new_checked(&out[0][..]).unwrap();
    assert_eq!(
        (e.dst_addr(), e.src_addr(), e.ethertype()),
        (PEER_MAC, OUR_MAC, EtherType::Arp)
    );
    let r = arpw::Repr::parse(&arpw::Packet::new_checked(e.payload()).unwrap()).unwrap();
    assert_eq!(
        r,
        arpw::Repr {
            operation: arpw::Operation::Reply,
            source_mac: OUR_MAC,
            source_ip: OUR_IP,
            target_mac: PEER_MAC,
            target_ip: PEER_IP
        }
    );
    // RFC 826: the requester is added to the table because we are the target.
    assert_eq!(s.neighbor(PEER_IP), Some(PEER_MAC));
}

#[test]
fn ignores_arp_for_other_addresses_and_does_not_learn_from_them() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    let out = run(
        &mut s,
        &mut d,
        t(0),
        vec![arp(
            arpw::Operation::Request,
            PEER_IP,
            Ipv4Addr::new(198, 18, 0, 99),
        )],
    );
    assert!(out.is_empty());
    assert_eq!(s.neighbor(PEER_IP), None);
    assert_eq!(s.stats().arp.drop_not_for_us, 1);
}

#[test]
fn arp_claiming_our_address_is_counted_as_conflict() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    let out = run(
        &mut s,
        &mut d,
        t(0),
        vec![arp(arpw::Operation::Request, OUR_IP, PEER_IP)],
    );
    assert!(out.is_empty());
    assert_eq!(s.stats().arp.address_conflicts, 1);
}

#[test]
fn announces_address_with_gratuitous_arp() {
    let mut c = config();
    c.announce = true;
    let (mut s, mut d) = (Stack::new(c).unwrap(), QueueDev::default());
    let out = run(&mut s, &mut d, t(0), vec![]);
    assert_eq!(out.len(), 1);
    let e = eth::Frame::new_checked(&out[0][..]).unwrap();
    assert_eq!(e.dst_addr(), MacAddr::BROADCAST);
    let r = arpw::Repr::parse(&arpw::Packet::new_checked(e.payload()).unwrap()).unwrap();
    // RFC 5227 §2.3: sender and target protocol address both ours.
    assert_eq!(
        (r.operation, r.source_ip, r.target_ip),
        (arpw::Operation::Request, OUR_IP, OUR_IP)
    );
    // The second announcement follows ANNOUNCE_INTERVAL (2 s) later.
    assert!(run(&mut s, &mut d, t(1999), vec![]).is_empty());
    assert_eq!(run(&mut s, &mut d, t(2000), vec![]).len(), 1);
    assert!(run(&mut s, &mut d, t(10_000), vec![]).is_empty());
    assert_eq!(s.stats().arp.tx_gratuitous, 2);
}

#[test]
fn echo_request_gets_reply_with_same_ident_seq_and_data() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    learn_peer(&mut s, &mut d);
    let data: Vec<u8> = (0..56).collect();
    let out = run(
        &mut s,
        &mut d,
        t(1),
        vec![echo_request_frame(OUR_IP, OUR_MAC, &data)],
    );
    assert_eq!(out.len(), 1);
    let (ip, payload) = sent_ip(&out[0]);
    assert_eq!(
        (ip.src_addr, ip.dst_addr, ip.protocol),
        (OUR_IP, PEER_IP, Protocol::Icmp)
    );
    let p = icmpw::Packet::new_checked(&payload[..]).unwrap();
    assert_eq!(
        icmpw::Repr::parse(&p).unwrap(),
        icmpw::Repr::EchoReply {
            ident: 0x1234,
            seq: 7,
            data: &data
        }
    );
}

#[test]
fn echo_request_to_broadcast_is_discarded() {
    // RFC 1122 §3.2.2.6: "An ICMP Echo Request destined to an IP broadcast or
    // IP multicast address MAY be silently discarded."
    let (mut s, mut d) = (stack(), QueueDev::default());
    learn_peer(&mut s, &mut d);
    let out = run(
        &mut s,
        &mut d,
        t(1),
        vec![echo_request_frame(
            Ipv4Addr::new(198, 18, 0, 255),
            MacAddr::BROADCAST,
            b"x",
        )],
    );
    assert!(out.is_empty());
    assert_eq!(s.stats().icmp.drop_broadcast_echo, 1);
}

#[test]
fn large_echo_is_reassembled_and_the_reply_fragmented() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    learn_peer(&mut s, &mut d);
    let data: Vec<u8> = (0..8000u32).map(|i| i as u8).collect();
    let icmp = icmp_bytes(&icmpw::Repr::EchoRequest {
        ident: 1,
        seq: 2,
        data: &data,
    });
    let frames: Vec<Vec<u8>> = icmp
        .chunks(1480)
        .enumerate()
        .map(|(i, c)| {
            let more = (i + 1) * 1480 < icmp.len();
            frame(
                OUR_MAC,
                EtherType::Ipv4,
                None,
                &ip_packet(
                    PEER_IP,
                    OUR_IP,
                    Protocol::Icmp,
                    c,
                    Some((99, more, (i * 1480) as u16)),
                ),
            )
        })
        .collect();
    let out = run(&mut s, &mut d, t(1), frames);
    assert_eq!(out.len(), 6, "8008 bytes of ICMP in 1480-byte fragments");
    let mut whole = vec![0u8; 8008];
    let mut idents = std::collections::HashSet::new();
    for f in &out {
        let (ip, payload) = sent_ip(f);
        assert!(f.len() <= 1514);
        assert_eq!(ip.frag_offset % 8, 0);
        idents.insert(ip.ident);
        whole[ip.frag_offset as usize..ip.frag_offset as usize + payload.len()]
            .copy_from_slice(&payload);
    }
    assert_eq!(idents.len(), 1, "all fragments share one IP ID");
    let p = icmpw::Packet::new_checked(&whole[..]).unwrap();
    assert_eq!(
        icmpw::Repr::parse(&p).unwrap(),
        icmpw::Repr::EchoReply {
            ident: 1,
            seq: 2,
            data: &data
        }
    );
    assert_eq!(s.stats().ip.reassembled, 1);
}

#[test]
fn udp_to_closed_port_gets_port_unreachable_quoting_the_datagram() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    learn_peer(&mut s, &mut d);
    let ipb = ip_packet(
        PEER_IP,
        OUR_IP,
        Protocol::Udp,
        &udp_bytes(PEER_IP, OUR_IP, 5000, 9, b"hello"),
        None,
    );
    let out = run(
        &mut s,
        &mut d,
        t(1),
        vec![frame(OUR_MAC, EtherType::Ipv4, None, &ipb)],
    );
    assert_eq!(out.len(), 1);
    let (_, payload) = sent_ip(&out[0]);
    let p = icmpw::Packet::new_checked(&payload[..]).unwrap();
    match icmpw::Repr::parse(&p).unwrap() {
        icmpw::Repr::DstUnreachable { code, invoking, .. } => {
            assert_eq!(code, icmpw::DstUnreachable::PortUnreachable);
            // RFC 792: the internet header plus at least 64 bits of data.
            assert_eq!(invoking, &ipb[..]);
        }
        other => panic!("expected port unreachable, got {other:?}"),
    }
    assert_eq!(s.stats().udp.drop_no_port, 1);
}

#[test]
fn no_icmp_error_for_broadcast_or_non_initial_fragment() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    learn_peer(&mut s, &mut d);
    let bcast = Ipv4Addr::new(198, 18, 0, 255);
    let to_bcast = ip_packet(
        PEER_IP,
        bcast,
        Protocol::Udp,
        &udp_bytes(PEER_IP, bcast, 5000, 9, b"x"),
        None,
    );
    let out = run(
        &mut s,
        &mut d,
        t(1),
        vec![frame(MacAddr::BROADCAST, EtherType::Ipv4, None, &to_bcast)],
    );
    assert!(out.is_empty());
    // An unknown protocol in a unicast datagram gets Protocol Unreachable...
    let unknown = ip_packet(PEER_IP, OUR_IP, Protocol::Unknown(253), b"12345678", None);
    assert_eq!(
        run(
            &mut s,
            &mut d,
            t(2),
            vec![frame(OUR_MAC, EtherType::Ipv4, None, &unknown)]
        )
        .len(),
        1
    );
    // ...but never when it came as a link-layer broadcast.
    assert!(run(
        &mut s,
        &mut d,
        t(3),
        vec![frame(MacAddr::BROADCAST, EtherType::Ipv4, None, &unknown)]
    )
    .is_empty());
    assert_eq!(s.stats().icmp.tx_errors_suppressed, 2);
}

#[test]
fn never_answers_an_icmp_error_with_an_icmp_error() {
    // RFC 1122 §3.2.2: "An ICMP error message MUST NOT be sent as the result
    // of receiving: an ICMP error message". Fragment zero of an ICMP error
    // that never completes would otherwise earn a Time Exceeded.
    let (mut s, mut d) = (stack(), QueueDev::default());
    learn_peer(&mut s, &mut d);
    let err = icmp_bytes(&icmpw::Repr::DstUnreachable {
        code: icmpw::DstUnreachable::HostUnreachable,
        next_hop_mtu: 0,
        invoking: &[0; 56],
    });
    let first = ip_packet(
        PEER_IP,
        OUR_IP,
        Protocol::Icmp,
        &err[..32],
        Some((3, true, 0)),
    );
    // The same for an echo request, which is not an error: that one is answered.
    let echo = icmp_bytes(&icmpw::Repr::EchoRequest {
        ident: 1,
        seq: 1,
        data: &[0; 56],
    });
    let first_echo = ip_packet(
        PEER_IP,
        OUR_IP,
        Protocol::Icmp,
        &echo[..32],
        Some((4, true, 0)),
    );
    run(
        &mut s,
        &mut d,
        t(0),
        [first, first_echo]
            .map(|p| frame(OUR_MAC, EtherType::Ipv4, None, &p))
            .to_vec(),
    );
    let out = ip_only(run(&mut s, &mut d, t(30_000), vec![]));
    assert_eq!(
        out.len(),
        1,
        "only the echo's reassembly timeout is reported"
    );
    let (_, payload) = sent_ip(&out[0]);
    let p = icmpw::Packet::new_checked(&payload[..]).unwrap();
    let icmpw::Repr::TimeExceeded { invoking, .. } = icmpw::Repr::parse(&p).unwrap() else {
        panic!("not time exceeded")
    };
    assert_eq!(
        u16::from_be_bytes([invoking[4], invoking[5]]),
        4,
        "quotes the echo's datagram (IP ID 4)"
    );
    assert_eq!(s.stats().icmp.tx_errors_suppressed, 1);
}

#[test]
fn icmp_errors_are_rate_limited() {
    let mut c = config();
    c.icmp_error_rate = 10;
    c.icmp_error_burst = 5;
    let (mut s, mut d) = (Stack::new(c).unwrap(), QueueDev::default());
    learn_peer(&mut s, &mut d);
    let ipb = ip_packet(
        PEER_IP,
        OUR_IP,
        Protocol::Udp,
        &udp_bytes(PEER_IP, OUR_IP, 5000, 9, b"x"),
        None,
    );
    let frames = vec![frame(OUR_MAC, EtherType::Ipv4, None, &ipb); 50];
    assert_eq!(run(&mut s, &mut d, t(1000), frames).len(), 5);
    assert_eq!(s.stats().icmp.tx_errors_rate_limited, 45);
    // 100 ms later at 10/s one more token has accrued.
    assert_eq!(
        run(
            &mut s,
            &mut d,
            t(1100),
            vec![frame(OUR_MAC, EtherType::Ipv4, None, &ipb); 3]
        )
        .len(),
        1
    );
}

#[test]
fn udp_socket_receives_and_its_send_waits_for_arp() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    let h = s
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7))
        .unwrap();
    let ipb = ip_packet(
        PEER_IP,
        OUR_IP,
        Protocol::Udp,
        &udp_bytes(PEER_IP, OUR_IP, 4000, 7, b"ping"),
        None,
    );
    run(
        &mut s,
        &mut d,
        t(0),
        vec![frame(OUR_MAC, EtherType::Ipv4, None, &ipb)],
    );
    let mut buf = [0u8; 16];
    let (n, from) = s.udp_recv_from(h, &mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"ping"[..], SocketAddrV4::new(PEER_IP, 4000))
    );
    assert_eq!(s.udp_recv_from(h, &mut buf), Err(Error::WouldBlock));

    s.udp_send_to(h, b"pong", from).unwrap();
    let out = run(&mut s, &mut d, t(1), vec![]);
    assert_eq!(
        out.len(),
        1,
        "only the ARP request goes out while the datagram waits"
    );
    assert_eq!(
        eth::Frame::new_checked(&out[0][..]).unwrap().ethertype(),
        EtherType::Arp
    );
    let out = run(
        &mut s,
        &mut d,
        t(2),
        vec![arp(arpw::Operation::Reply, PEER_IP, OUR_IP)],
    );
    assert_eq!(out.len(), 1);
    let (ip, payload) = sent_ip(&out[0]);
    let u = udpw::Packet::new_checked(&payload[..]).unwrap();
    assert!(u.verify_checksum(ip.src_addr, ip.dst_addr));
    assert_eq!(
        (u.src_port(), u.dst_port(), u.payload()),
        (7, 4000, &b"pong"[..])
    );
}

#[test]
fn udp_bind_rejects_taken_ports_and_foreign_addresses() {
    let mut s = stack();
    s.udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 53))
        .unwrap();
    assert_eq!(
        s.udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 53)),
        Err(Error::AddrInUse(53))
    );
    assert!(matches!(
        s.udp_bind(SocketAddrV4::new(PEER_IP, 54)),
        Err(Error::InvalidArgument(_))
    ));
    let e = s
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .unwrap();
    let port = s.udp_local_addr(e).unwrap().port();
    assert!((49152..=65535).contains(&port));
}

#[test]
fn udp_send_checks_route_size_and_df() {
    let mut s = stack();
    let h = s
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .unwrap();
    let far = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 9), 9);
    assert_eq!(
        s.udp_send_to(h, b"x", far),
        Err(Error::NoRoute(Ipv4Addr::new(203, 0, 113, 9)))
    );
    let peer = SocketAddrV4::new(PEER_IP, 9);
    assert!(matches!(
        s.udp_send_to(h, &[0; 65508], peer),
        Err(Error::MessageTooLong { .. })
    ));
    s.udp_set_dont_fragment(h, true).unwrap();
    assert_eq!(
        s.udp_send_to(h, &[0; 1473], peer),
        Err(Error::MessageTooLong {
            len: 1473,
            max: 1472
        })
    );
    s.udp_send_to(h, &[0; 1472], peer).unwrap();
    assert!(matches!(
        s.udp_send_to(h, b"x", SocketAddrV4::new(PEER_IP, 0)),
        Err(Error::InvalidArgument(_))
    ));
    s.udp_close(h).unwrap();
    assert_eq!(s.udp_send_to(h, b"x", peer), Err(Error::InvalidHandle));
}

#[test]
fn datagram_through_gateway_uses_gateways_mac() {
    let mut c = config();
    c.gateway = Some(PEER_IP);
    let (mut s, mut d) = (Stack::new(c).unwrap(), QueueDev::default());
    learn_peer(&mut s, &mut d);
    let h = s
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .unwrap();
    s.udp_send_to(
        h,
        b"far",
        SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 9), 9),
    )
    .unwrap();
    let out = run(&mut s, &mut d, t(1), vec![]);
    assert_eq!(
        eth::Frame::new_checked(&out[0][..]).unwrap().dst_addr(),
        PEER_MAC
    );
    assert_eq!(sent_ip(&out[0]).0.dst_addr, Ipv4Addr::new(203, 0, 113, 9));
}

#[test]
fn icmp_port_unreachable_reaches_the_sending_socket() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    learn_peer(&mut s, &mut d);
    let h = s
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 4444))
        .unwrap();
    let quote = ip_packet(
        OUR_IP,
        PEER_IP,
        Protocol::Udp,
        &udp_bytes(OUR_IP, PEER_IP, 4444, 9, b"abc"),
        None,
    );
    let err = icmp_bytes(&icmpw::Repr::DstUnreachable {
        code: icmpw::DstUnreachable::PortUnreachable,
        next_hop_mtu: 0,
        invoking: &quote,
    });
    run(
        &mut s,
        &mut d,
        t(1),
        vec![frame(
            OUR_MAC,
            EtherType::Ipv4,
            None,
            &ip_packet(PEER_IP, OUR_IP, Protocol::Icmp, &err, None),
        )],
    );
    assert_eq!(
        s.udp_recv_from(h, &mut [0; 8]),
        Err(Error::Icmp {
            from: PEER_IP,
            msg_type: 3,
            code: 3
        })
    );
    assert_eq!(
        s.udp_recv_from(h, &mut [0; 8]),
        Err(Error::WouldBlock),
        "an error is reported once"
    );
}

#[test]
fn ping_socket_measures_rtt_from_send_to_reply() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    learn_peer(&mut s, &mut d);
    let h = s.ping_open().unwrap();
    s.ping_send(h, PEER_IP, 1, 100, false).unwrap();
    let out = run(&mut s, &mut d, t(10), vec![]);
    let (ip, payload) = sent_ip(&out[0]);
    let p = icmpw::Packet::new_checked(&payload[..]).unwrap();
    let icmpw::Repr::EchoRequest { ident, seq, data } = icmpw::Repr::parse(&p).unwrap() else {
        panic!("not an echo request")
    };
    assert_eq!((ident, seq, data.len()), (s.ping_ident(h).unwrap(), 1, 100));
    let reply = icmp_bytes(&icmpw::Repr::EchoReply { ident, seq, data });
    let f = frame(
        OUR_MAC,
        EtherType::Ipv4,
        None,
        &ip_packet(ip.dst_addr, ip.src_addr, Protocol::Icmp, &reply, None),
    );
    run(&mut s, &mut d, t(13), vec![f]);
    assert_eq!(
        s.ping_recv(h).unwrap(),
        Some(PingEvent::Reply {
            from: PEER_IP,
            seq: 1,
            len: 100,
            ttl: 64,
            rtt: Duration::from_millis(3),
            corrupt: false
        })
    );
}

#[test]
fn vlan_frames_are_accepted_only_on_the_configured_vlan_and_answers_are_tagged() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    let mut tagged = arp(arpw::Operation::Request, PEER_IP, OUR_IP);
    let payload = tagged[14..].to_vec();
    tagged = frame(MacAddr::BROADCAST, EtherType::Arp, Some(10), &payload);
    assert!(run(&mut s, &mut d, t(0), vec![tagged.clone()]).is_empty());
    assert_eq!(s.stats().eth.drop_vlan, 1);

    let mut c = config();
    c.vlan = Some(10);
    let mut s = Stack::new(c).unwrap();
    let out = run(&mut s, &mut d, t(0), vec![tagged]);
    assert_eq!(out.len(), 1);
    let e = eth::Frame::new_checked(&out[0][..]).unwrap();
    assert_eq!(e.vlan().map(|v| v.vid), Some(10));
    assert_eq!(e.payload_ethertype(), EtherType::Arp);
    // Untagged frames are not ours on a VLAN interface.
    assert!(run(
        &mut s,
        &mut d,
        t(1),
        vec![arp(arpw::Operation::Request, PEER_IP, OUR_IP)]
    )
    .is_empty());
}

#[test]
fn bad_headers_are_counted_by_reason() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    let good = ip_packet(
        PEER_IP,
        OUR_IP,
        Protocol::Udp,
        &udp_bytes(PEER_IP, OUR_IP, 1, 7, b"x"),
        None,
    );
    let mut bad_csum = good.clone();
    bad_csum[10] ^= 0xff;
    let mut bad_ver = good.clone();
    bad_ver[0] = 0x65;
    let mut bad_ihl = good.clone();
    bad_ihl[0] = 0x44;
    let mut bad_len = good.clone();
    bad_len[2..4].copy_from_slice(&200u16.to_be_bytes());
    let mut bad_udp = good.clone();
    let n = bad_udp.len();
    bad_udp[n - 1] ^= 0xff;
    let spoofed = ip_packet(
        OUR_IP,
        OUR_IP,
        Protocol::Udp,
        &udp_bytes(OUR_IP, OUR_IP, 1, 7, b"x"),
        None,
    );
    let frames = [bad_csum, bad_ver, bad_ihl, bad_len, bad_udp, spoofed]
        .map(|p| frame(OUR_MAC, EtherType::Ipv4, None, &p));
    let mut all = frames.to_vec();
    all.push(vec![0u8; 10]);
    all.push(frame(OUR_MAC, EtherType::Unknown(0x88cc), None, b"lldp"));
    all.push(frame(
        MacAddr([2, 9, 9, 9, 9, 9]),
        EtherType::Ipv4,
        None,
        &good,
    ));
    let out = run(&mut s, &mut d, t(0), all);
    assert!(out.is_empty());
    let st = s.stats();
    assert_eq!(
        (
            st.ip.drop_bad_checksum,
            st.ip.drop_bad_version,
            st.ip.drop_bad_header_len,
            st.ip.drop_truncated,
            st.udp.drop_bad_checksum,
            st.ip.drop_bad_src
        ),
        (1, 1, 1, 1, 1, 1)
    );
    assert_eq!(
        (
            st.eth.drop_truncated,
            st.eth.drop_unknown_ethertype,
            st.eth.drop_not_our_mac
        ),
        (1, 1, 1)
    );
}

#[test]
fn overlapping_fragments_drop_the_datagram() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    learn_peer(&mut s, &mut d);
    let h = s
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7))
        .unwrap();
    let udp = udp_bytes(PEER_IP, OUR_IP, 1, 7, &[0xaa; 100]);
    let f1 = ip_packet(
        PEER_IP,
        OUR_IP,
        Protocol::Udp,
        &udp[..64],
        Some((5, true, 0)),
    );
    // Teardrop: the second fragment starts inside the first.
    let f2 = ip_packet(
        PEER_IP,
        OUR_IP,
        Protocol::Udp,
        &udp[32..],
        Some((5, false, 32)),
    );
    run(
        &mut s,
        &mut d,
        t(1),
        [f1, f2]
            .map(|p| frame(OUR_MAC, EtherType::Ipv4, None, &p))
            .to_vec(),
    );
    assert!(!s.udp_can_recv(h));
    assert_eq!(s.stats().ip.frag_drop_overlap, 1);
    assert_eq!(s.held_resources().2, 0);
}

#[test]
fn reassembly_timeout_sends_time_exceeded_only_if_fragment_zero_arrived() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    learn_peer(&mut s, &mut d);
    let first = ip_packet(PEER_IP, OUR_IP, Protocol::Udp, &[0; 64], Some((7, true, 0)));
    let later = ip_packet(
        PEER_IP,
        OUR_IP,
        Protocol::Udp,
        &[0; 64],
        Some((8, true, 64)),
    );
    run(
        &mut s,
        &mut d,
        t(0),
        [first, later]
            .map(|p| frame(OUR_MAC, EtherType::Ipv4, None, &p))
            .to_vec(),
    );
    assert!(s.poll_at().is_some_and(|at| at <= t(30_000)));
    assert!(run(&mut s, &mut d, t(29_999), vec![]).is_empty());
    let out = ip_only(run(&mut s, &mut d, t(30_000), vec![]));
    assert_eq!(
        out.len(),
        1,
        "one Time Exceeded, for the datagram whose first fragment arrived"
    );
    let (_, payload) = sent_ip(&out[0]);
    let p = icmpw::Packet::new_checked(&payload[..]).unwrap();
    assert!(matches!(
        icmpw::Repr::parse(&p).unwrap(),
        icmpw::Repr::TimeExceeded {
            code: icmpw::TimeExceeded::FragReassembly,
            ..
        }
    ));
    assert_eq!(s.held_resources().2, 0);
}

#[test]
fn tx_exhaustion_keeps_datagrams_queued_until_there_is_room() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    learn_peer(&mut s, &mut d);
    let h = s
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .unwrap();
    for i in 0..10u8 {
        s.udp_send_to(h, &[i], SocketAddrV4::new(PEER_IP, 9))
            .unwrap();
    }
    d.tx.limit = Some(4);
    assert_eq!(run(&mut s, &mut d, t(1), vec![]).len(), 4);
    assert_eq!(s.poll_at(), Some(Instant::ZERO), "more to send");
    assert_eq!(run(&mut s, &mut d, t(2), vec![]).len(), 4);
    let last = run(&mut s, &mut d, t(3), vec![]);
    assert_eq!(last.len(), 2);
    let (_, p) = sent_ip(&last[1]);
    assert_eq!(p[8], 9, "order kept, nothing lost");
    assert!(s.poll_at() > Some(t(3)), "nothing left to send");
}

#[test]
fn random_frames_never_panic_and_memory_stays_bounded() {
    let mut c = config();
    c.reassembly.max_datagrams = 8;
    c.reassembly.max_bytes = 64 * 1024;
    let (mut s, mut d) = (Stack::new(c).unwrap(), QueueDev::default());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..50_000 {
        let len = (rnd() % 1600) as usize;
        let mut f: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        // Make most frames get past Ethernet and IPv4's first checks so the
        // deeper parsers see the noise.
        if f.len() > 40 && i % 4 != 0 {
            f[..6].copy_from_slice(&OUR_MAC.0);
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            f[14] = 0x45;
            let tl = (f.len() - 14) as u16;
            f[16..18].copy_from_slice(&tl.to_be_bytes());
            f[26..30].copy_from_slice(&PEER_IP.octets());
            f[30..34].copy_from_slice(&OUR_IP.octets());
            f[24] = 0;
            f[25] = 0;
            let c = crate::ip::checksum::checksum(&f[14..34]);
            f[24..26].copy_from_slice(&c.to_be_bytes());
        }
        run(&mut s, &mut d, t(i / 10), vec![f]);
        let (arp, pending, bytes, dgrams) = s.held_resources();
        assert!(arp <= 1024 && pending <= 256 && bytes <= 64 * 1024 && dgrams <= 8);
    }
    assert!(s.stats().total_drops() > 0);
}

#[test]
fn spoofed_arp_reply_does_not_redirect_replies_and_triggers_a_probe() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    learn_peer(&mut s, &mut d);
    const ATTACKER: MacAddr = MacAddr([2, 6, 6, 6, 6, 6]);
    let r = arpw::Repr {
        operation: arpw::Operation::Reply,
        source_mac: ATTACKER,
        source_ip: PEER_IP,
        target_mac: OUR_MAC,
        target_ip: OUR_IP,
    };
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(&mut arpw::Packet::new_unchecked(&mut b[..]));
    let mut f = frame(OUR_MAC, EtherType::Arp, None, &b);
    f[6..12].copy_from_slice(&ATTACKER.0);
    let out = run(&mut s, &mut d, t(1), vec![f]);
    // One unicast probe to the MAC we hold, asking the real owner.
    assert_eq!(out.len(), 1);
    let e = eth::Frame::new_checked(&out[0][..]).unwrap();
    assert_eq!((e.dst_addr(), e.ethertype()), (PEER_MAC, EtherType::Arp));
    assert_eq!(s.neighbor(PEER_IP), Some(PEER_MAC));
    assert_eq!(s.stats().arp.mac_conflicts, 1);
    // Echo replies still go to the real peer.
    let out = ip_only(run(
        &mut s,
        &mut d,
        t(2),
        vec![echo_request_frame(OUR_IP, OUR_MAC, b"hi")],
    ));
    assert_eq!(
        eth::Frame::new_checked(&out[0][..]).unwrap().dst_addr(),
        PEER_MAC
    );
}

#[test]
fn tcp_retransmissions_reaching_r1_make_arp_reverify_the_next_hop() {
    // RFC 9293 §3.8.3, MUST-20: "When the number of transmissions of the
    // same segment reaches or exceeds threshold R1, pass negative advice
    // (see Section 3.3.1.4 of [19]) to the IP layer, to trigger
    // dead-gateway diagnosis." Here the SYN goes unanswered: after R1 = 3
    // retransmissions the next use of the neighbour entry probes it.
    let mut s = stack();
    let mut d = QueueDev::default();
    learn_peer(&mut s, &mut d);
    let c = s.tcp_connect(t(0), SocketAddrV4::new(PEER_IP, 80)).unwrap();
    let arp_requests = |frames: &[Vec<u8>]| {
        frames
            .iter()
            .filter(|f| {
                eth::Frame::new_checked(&f[..])
                    .is_ok_and(|e| e.ethertype() == EtherType::Arp && e.dst_addr() == PEER_MAC)
            })
            .count()
    };
    let mut probes_before = 0;
    let mut probes_after = 0;
    for ms in (0..16_000).step_by(100) {
        let out = run(&mut s, &mut d, t(ms), Vec::new());
        if s.tcp().stats().r1_notices == 0 {
            probes_before += arp_requests(&out);
        } else {
            probes_after += arp_requests(&out);
        }
    }
    assert_eq!(s.tcp().stats().r1_notices, 1);
    assert_eq!(probes_before, 0, "the entry was trusted until R1");
    assert!(
        probes_after >= 1,
        "negative advice re-verified the neighbour"
    );
    // SHLD-9: the application hears of it as a soft error.
    assert_eq!(
        s.tcp().readiness(c).unwrap().error,
        Some(TcpError::ExcessiveRetransmissions)
    );
}

/// Segments of every shape the engine sends: bare ACK, SYN with options,
/// data of one byte and of a full MSS, SACK blocks, FIN, RST, a TTL other
/// than the default.
fn tcp_segments(payload: &[u8]) -> Vec<(u8, crate::tcp::wire::Repr<'_>)> {
    use crate::tcp::wire::Repr;
    use crate::tcp::SeqNumber;
    let base = Repr {
        src_port: 5001,
        dst_port: 49152,
        seq_number: SeqNumber(0x1234_5678),
        ack_number: Some(SeqNumber(0x9abc_def0)),
        window_len: 512,
        ..Repr::default()
    };
    let s = |n: u32| SeqNumber(0x9abc_def0u32.wrapping_add(n));
    vec![
        (64, base),
        (
            64,
            Repr {
                syn: true,
                ack_number: None,
                max_seg_size: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamp: Some((1, 0)),
                ..base
            },
        ),
        (
            64,
            Repr {
                payload: &payload[..1],
                psh: true,
                ..base
            },
        ),
        (
            64,
            Repr {
                payload: &payload[..1448],
                timestamp: Some((7, 9)),
                ..base
            },
        ),
        (
            64,
            Repr {
                payload: &payload[..1460],
                ..base
            },
        ),
        (
            1,
            Repr {
                sack_ranges: [Some((s(100), s(200))), Some((s(300), s(400))), None, None],
                timestamp: Some((0xffff_ffff, 3)),
                ..base
            },
        ),
        (
            64,
            Repr {
                fin: true,
                payload: &payload[..17],
                ..base
            },
        ),
        (
            64,
            Repr {
                rst: true,
                ack_number: None,
                ..base
            },
        ),
    ]
}

/// The one-pass TCP output (`Out::emit_tcp_direct`) must leave exactly
/// what the layered path (`send_ip` → `send_packet` → `transmit_frame`)
/// leaves: the same frames byte for byte, the same IP identification
/// sequence and the same counters, including when the device is full,
/// whatever TOS byte the connection asks for.
#[test]
fn direct_tcp_emit_matches_the_layered_path() {
    let payload: Vec<u8> = (0..1460u32).map(|i| (i * 7 + 3) as u8).collect();
    let segs = tcp_segments(&payload);
    let mut frames = [Vec::new(), Vec::new()];
    let mut stats = Vec::new();
    for (k, out_frames) in frames.iter_mut().enumerate() {
        let (mut s, mut d) = (stack(), QueueDev::default());
        learn_peer(&mut s, &mut d);
        let now = t(1);
        // The layered path's first resolve fills the neighbour cache's
        // last-hit memory; the direct path then takes every segment.
        let mut log = TxLog::default();
        for (i, (ttl, seg)) in segs.iter().enumerate() {
            if i == 5 {
                log.limit = Some(log.frames.len());
            } else {
                log.limit = None;
            }
            // Every segment a different DSCP: both paths must carry it.
            let tos = (i as u8).wrapping_mul(0x2c) & 0xfc;
            let mut o = s.out();
            let sent = if k == 0 {
                o.emit_tcp_layered(now, &mut log, *ttl, tos, OUR_IP, PEER_IP, seg)
            } else {
                let direct = o.emit_tcp_direct(now, &mut log, *ttl, tos, OUR_IP, PEER_IP, seg);
                assert!(
                    i == 0 || direct.is_some(),
                    "segment {i} left the direct path"
                );
                direct.unwrap_or_else(|| {
                    o.emit_tcp_layered(now, &mut log, *ttl, tos, OUR_IP, PEER_IP, seg)
                })
            };
            assert_eq!(sent, i != 5, "segment {i}: sent or refused for room");
            if sent {
                let f = log.frames.last().unwrap();
                assert_eq!(f[eth::HEADER_LEN + 1], tos, "segment {i}: TOS on the wire");
            }
        }
        *out_frames = log.frames;
        stats.push(s.stats().clone());
    }
    assert_eq!(frames[0].len(), segs.len() - 1);
    for (i, (a, b)) in frames[0].iter().zip(&frames[1]).enumerate() {
        assert_eq!(a, b, "frame {i} differs");
    }
    assert_eq!(stats[0], stats[1]);
}

/// Whatever the direct path does not know how to frame, it leaves alone
/// without touching a counter or the IP identification: an unresolved next
/// hop (the layered path then queues behind ARP), a VLAN tag, a broadcast
/// destination, a segment too big for the MTU.
#[test]
fn direct_tcp_emit_declines_what_it_cannot_frame() {
    let payload = vec![0u8; 1500];
    let seg = crate::tcp::wire::Repr {
        src_port: 1,
        dst_port: 2,
        payload: &payload[..100],
        ..Default::default()
    };
    let big = crate::tcp::wire::Repr {
        payload: &payload[..1461],
        ..seg
    };
    let now = t(1);
    let mut log = TxLog::default();
    // Unresolved next hop.
    let mut s = stack();
    let before = (s.stats().clone(), s.eg.next_ident);
    assert_eq!(
        s.out()
            .emit_tcp_direct(now, &mut log, 64, 0, OUR_IP, PEER_IP, &seg),
        None
    );
    assert_eq!((s.stats().clone(), s.eg.next_ident), before);
    // Resolved, but broadcast, oversized, or with a VLAN tag.
    let (mut s, mut d) = (stack(), QueueDev::default());
    learn_peer(&mut s, &mut d);
    s.out()
        .emit_tcp_layered(now, &mut log, 64, 0, OUR_IP, PEER_IP, &seg);
    let before = (s.stats().clone(), s.eg.next_ident);
    let bcast = Ipv4Addr::new(198, 18, 0, 255);
    assert_eq!(
        s.out()
            .emit_tcp_direct(now, &mut log, 64, 0, OUR_IP, bcast, &seg),
        None
    );
    assert_eq!(
        s.out()
            .emit_tcp_direct(now, &mut log, 64, 0, OUR_IP, PEER_IP, &big),
        None
    );
    assert_eq!((s.stats().clone(), s.eg.next_ident), before);
    assert!(s
        .out()
        .emit_tcp_direct(now, &mut log, 64, 0, OUR_IP, PEER_IP, &seg)
        .is_some());
    let mut c = config();
    c.vlan = Some(7);
    let mut s = Stack::new(c).unwrap();
    s.ifs[0].arp.learn(now, PEER_IP, PEER_MAC, true);
    s.out()
        .emit_tcp_layered(now, &mut log, 64, 0, OUR_IP, PEER_IP, &seg);
    assert_eq!(s.ifs[0].arp.cached(now, PEER_IP), Some(PEER_MAC));
    assert_eq!(
        s.out()
            .emit_tcp_direct(now, &mut log, 64, 0, OUR_IP, PEER_IP, &seg),
        None
    );
}

/// The input path remembers the last (source, destination) pair it
/// accepted; removing the address must make the next packet to it
/// "not for us" again, and a new address must be accepted.
#[test]
fn a_removed_address_stops_being_ours_at_once() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    learn_peer(&mut s, &mut d);
    let ping = echo_request_frame(OUR_IP, OUR_MAC, b"abc");
    assert_eq!(
        ip_only(run(&mut s, &mut d, t(1), vec![ping.clone()])).len(),
        1
    );
    assert_eq!(
        ip_only(run(&mut s, &mut d, t(2), vec![ping.clone()])).len(),
        1
    );
    s.remove_address(OUR_IP);
    assert!(ip_only(run(&mut s, &mut d, t(3), vec![ping])).is_empty());
    assert_eq!(s.stats().ip.drop_not_for_us, 1);
    s.add_address("198.18.0.3/24".parse().unwrap());
    let other = echo_request_frame(Ipv4Addr::new(198, 18, 0, 3), OUR_MAC, b"abc");
    assert_eq!(ip_only(run(&mut s, &mut d, t(4), vec![other])).len(), 1);
}

/// The one-pass TCP output remembers the last destination's next hop;
/// a new gateway must take effect on the very next segment.
#[test]
fn direct_tcp_emit_follows_a_gateway_change() {
    let gw1 = (Ipv4Addr::new(198, 18, 0, 101), MacAddr([2, 0, 0, 0, 1, 1]));
    let gw2 = (Ipv4Addr::new(198, 18, 0, 102), MacAddr([2, 0, 0, 0, 1, 2]));
    let far = Ipv4Addr::new(203, 0, 113, 9);
    let mut s = stack();
    let now = t(1);
    for (ip, mac) in [gw1, gw2] {
        s.ifs[0].arp.learn(now, ip, mac, true);
    }
    let seg = crate::tcp::wire::Repr {
        src_port: 1,
        dst_port: 2,
        payload: b"x",
        ..Default::default()
    };
    let mut log = TxLog::default();
    let mut send = |s: &mut Stack| {
        assert!(s.out().emit_tcp(now, &mut log, 64, 0, OUR_IP, far, &seg));
        MacAddr(log.frames.last().unwrap()[..6].try_into().unwrap())
    };
    s.set_gateway(Some(gw1.0)).unwrap();
    assert_eq!(send(&mut s), gw1.1);
    assert_eq!(send(&mut s), gw1.1);
    s.set_gateway(Some(gw2.0)).unwrap();
    assert_eq!(send(&mut s), gw2.1);
    assert_eq!(send(&mut s), gw2.1);
    // Without a gateway the far address has no route: nothing is sent.
    s.set_gateway(None).unwrap();
    let before = log.frames.len();
    assert!(s.out().emit_tcp(now, &mut log, 64, 0, OUR_IP, far, &seg));
    assert_eq!(log.frames.len(), before);
    assert_eq!(s.stats().tcpw.tx_dropped, 1);
}

/// A TCP header shorter than 20 bytes is counted as truncated; one whose
/// Data Offset is below 5 (RFC 9293 §3.1: "the number of 32-bit words in
/// the TCP header") is malformed, not truncated; neither is answered.
#[test]
fn short_and_malformed_tcp_headers_are_counted_apart() {
    let (mut s, mut d) = (stack(), QueueDev::default());
    learn_peer(&mut s, &mut d);
    let tcp = |b: &[u8]| {
        frame(
            OUR_MAC,
            EtherType::Ipv4,
            None,
            &ip_packet(PEER_IP, OUR_IP, Protocol::Tcp, b, None),
        )
    };
    let mut bad_offset = [0u8; 20];
    bad_offset[..4].copy_from_slice(&[0x13, 0x88, 0x00, 0x50]);
    bad_offset[12] = 4 << 4;
    let out = run(
        &mut s,
        &mut d,
        t(1),
        vec![
            tcp(&[0x13, 0x88, 0x00, 0x50, 0, 0, 0, 0, 0, 0]),
            tcp(&bad_offset),
        ],
    );
    assert!(ip_only(out).is_empty());
    assert_eq!(s.stats().tcpw.drop_truncated, 1);
    assert_eq!(s.stats().tcpw.drop_malformed, 1);
}

/// A run through `emit_tcp_run` leaves exactly the frames, IP
/// identifications and counters its segments leave one by one through
/// `emit_tcp`, PSH on the last only; when the device fills partway, it
/// reports how many went out and the rest are untouched.
#[test]
fn a_segment_run_is_framed_as_its_segments_one_by_one() {
    use crate::tcp::wire::SackBlock;
    use crate::tcp::SeqNumber;
    let payload: Vec<u8> = (0..6 * 1001u32).map(|i| (i * 13 + 5) as u8).collect();
    let block = |a: u32, b: u32| -> Option<SackBlock> { Some((SeqNumber(a), SeqNumber(b))) };
    let base = crate::tcp::wire::Repr {
        src_port: 4000,
        dst_port: 80,
        seq_number: SeqNumber(u32::MAX - 2500),
        ack_number: Some(SeqNumber(77)),
        window_len: 512,
        psh: true,
        timestamp: Some((11, 22)),
        payload: &payload,
        ..Default::default()
    };
    // Every header layout a run can carry (no options, timestamps, SACK
    // blocks with and without them, ECE), PSH set or not, and an odd MSS
    // whose payloads end on an odd byte, and a tiny one; the payload holds a partial
    // segment past the last full one, which is not part of the run.
    let firsts = [
        (base, 1000),
        (
            crate::tcp::wire::Repr {
                timestamp: None,
                ..base
            },
            1000,
        ),
        (
            crate::tcp::wire::Repr {
                sack_ranges: [block(9000, 9500), block(7000, 8000), None, None],
                psh: false,
                ..base
            },
            1000,
        ),
        (
            crate::tcp::wire::Repr {
                timestamp: None,
                ece: true,
                sack_ranges: [block(1, 2), block(3, 4), block(5, 6), block(u32::MAX, 7)],
                ..base
            },
            1001,
        ),
        (base, 999),
        // A segment shorter than the header template's 64-byte copy.
        (
            crate::tcp::wire::Repr {
                timestamp: None,
                ..base
            },
            24,
        ),
    ];
    for (first, mss) in firsts {
        let segments = first.payload.len() / mss;
        for limit in [None, Some(4)] {
            let mut frames = [Vec::new(), Vec::new()];
            let mut stats = Vec::new();
            for (k, out_frames) in frames.iter_mut().enumerate() {
                let (mut s, mut d) = (stack(), QueueDev::default());
                learn_peer(&mut s, &mut d);
                let now = t(1);
                let mut log = TxLog::default();
                s.out().emit_tcp_layered(
                    now,
                    &mut log,
                    64,
                    0,
                    OUR_IP,
                    PEER_IP,
                    &first.run_segment(0, mss).unwrap(),
                );
                log.limit = limit.map(|n| n + log.frames.len());
                let sent = if k == 0 {
                    s.out()
                        .emit_tcp_run(now, &mut log, 64, 0x28, OUR_IP, PEER_IP, &first, mss)
                        .expect("the direct path takes the run")
                } else {
                    let mut n = 0;
                    while let Some(seg) = first.run_segment(n, mss) {
                        if !s
                            .out()
                            .emit_tcp(now, &mut log, 64, 0x28, OUR_IP, PEER_IP, &seg)
                        {
                            break;
                        }
                        n += 1;
                    }
                    n
                };
                assert_eq!(sent, limit.unwrap_or(segments), "segments sent");
                *out_frames = log.frames;
                stats.push((s.stats().clone(), s.eg.next_ident));
            }
            let case = format!("mss {mss}, limit {limit:?}, {first:?}");
            assert_eq!(frames[0].len(), frames[1].len(), "{case}");
            for (i, (a, b)) in frames[0].iter().zip(&frames[1]).enumerate() {
                assert_eq!(a, b, "frame {i}, {case}");
            }
            assert_eq!(stats[0], stats[1], "{case}");
            // PSH (0x08) on the run's last segment only, if the run has it.
            let flags: Vec<u8> = frames[0][1..]
                .iter()
                .map(|f| f[eth::HEADER_LEN + 20 + 13] & 0x08)
                .collect();
            let want: Vec<u8> = (0..limit.unwrap_or(segments))
                .map(|i| {
                    if first.psh && i == segments - 1 {
                        0x08
                    } else {
                        0
                    }
                })
                .collect();
            assert_eq!(flags, want, "{case}");
        }
    }
}
