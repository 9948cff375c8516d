//! Runs N frames of one kind through `Stack::process_frame`, for counting
//! instructions per frame with callgrind:
//!
//! ```text
//! valgrind --tool=callgrind target/release/examples/frame_cost echo 1
//! valgrind --tool=callgrind target/release/examples/frame_cost echo 10001
//! ```
//! The difference of the two totals over 10 000 is the cost of one frame,
//! independent of what else the machine is doing. Kinds: `echo` (ICMP echo
//! request answered in place, 56 bytes), `udp` (datagram to a bound socket,
//! read and dropped by the app), `drop` (bad IP checksum, counted).

use ringstack::arp::wire as arpw;
use ringstack::dev::{Transmit, TxError};
use ringstack::eth::{self, EtherType, MacAddr};
use ringstack::icmp::wire as icmpw;
use ringstack::ip::wire::{self as ipw, Protocol};
use ringstack::stack::{Config, Stack};
use ringstack::udp::wire as udpw;
use ringstack::Instant;
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};

const OUR_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const OUR_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

struct Sink(Vec<u8>);
impl Transmit for Sink {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError> {
        self.0.resize(len.max(self.0.len()), 0);
        fill(&mut self.0[..len]);
        Ok(())
    }
}

fn frame(ethertype: EtherType, dst: MacAddr, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + payload.len()];
    eth::Repr {
        src_addr: PEER_MAC,
        dst_addr: dst,
        ethertype,
        vlan: None,
    }
    .emit(&mut eth::Frame::new_unchecked(&mut f[..]));
    f[14..].copy_from_slice(payload);
    f
}

fn ip(proto: Protocol, payload: &[u8]) -> Vec<u8> {
    let r = ipw::Repr {
        src_addr: PEER_IP,
        dst_addr: OUR_IP,
        protocol: proto,
        payload_len: payload.len(),
        ttl: 64,
        tos: 0,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(&mut ipw::Packet::new_unchecked(&mut b[..]));
    b[20..].copy_from_slice(payload);
    frame(EtherType::Ipv4, OUR_MAC, &b)
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let kind = a.first().map(String::as_str).unwrap_or("echo");
    let n: u64 = a.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut c = Config::new(OUR_MAC, "198.18.0.2/24".parse().unwrap());
    c.announce = false;
    let mut s = Stack::new(c).unwrap();
    let mut sink = Sink(Vec::new());
    let arp = arpw::Repr {
        operation: arpw::Operation::Request,
        source_mac: PEER_MAC,
        source_ip: PEER_IP,
        target_mac: MacAddr::ZERO,
        target_ip: OUR_IP,
    };
    let mut ab = vec![0u8; 28];
    arp.emit(&mut arpw::Packet::new_unchecked(&mut ab[..]));
    s.process_frame(
        Instant::ZERO,
        &frame(EtherType::Arp, MacAddr::BROADCAST, &ab),
        &mut sink,
    );
    let h = s
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7))
        .unwrap();
    let data = [0x5au8; 56];
    let f = match kind {
        "echo" => {
            let r = icmpw::Repr::EchoRequest {
                ident: 1,
                seq: 1,
                data: &data,
            };
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut icmpw::Packet::new_unchecked(&mut b[..]));
            ip(Protocol::Icmp, &b)
        }
        "udp" => {
            let mut b = vec![0u8; 8 + data.len()];
            udpw::Repr {
                src_port: 4000,
                dst_port: 7,
            }
            .emit(
                &mut udpw::Packet::new_unchecked(&mut b[..]),
                PEER_IP,
                OUR_IP,
                &data,
            );
            ip(Protocol::Udp, &b)
        }
        "drop" => {
            let mut f = ip(Protocol::Udp, &[0u8; 64]);
            f[24] ^= 0xff;
            f
        }
        _ => panic!("kind must be echo, udp or drop"),
    };
    let mut buf = [0u8; 2048];
    for _ in 0..n {
        s.process_frame(Instant::ZERO, black_box(&f), &mut sink);
        while s.udp_recv_from(h, &mut buf).is_ok() {}
    }
    println!("{} frames; {:?}", n, s.stats().ip.rx_packets);
}
