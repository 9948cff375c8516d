//! Plain IPv4 forwarding in memory: a two-interface ringstack router takes
//! the same 64-byte UDP frame on its LAN interface N times and forwards it
//! out of its WAN interface into a sink that keeps only the last frame.
//! Prints packets per second on this core; run under callgrind at two N to
//! get instructions per forwarded packet (benches/forward_cost.sh).
//!
//!   cargo run --release --example forward_cost [N] [FRAME_BYTES]

use ringstack::dev::{Transmit, TxError};
use ringstack::eth::{self, EtherType, MacAddr};
use ringstack::ip::wire as ipw;
use ringstack::stack::{Config, IfaceId, InterfaceConfig, Stack, Transmitters};
use ringstack::time::Instant;
use std::net::Ipv4Addr;

struct Sink {
    last: Vec<u8>,
    frames: u64,
}

impl Transmit for Sink {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError> {
        if self.last.len() < len {
            self.last.resize(len, 0);
        }
        fill(&mut self.last[..len]);
        self.frames += 1;
        Ok(())
    }
}

struct Two([Sink; 2]);

impl Transmitters for Two {
    #[inline]
    fn tx(&mut self, iface: IfaceId) -> Option<&mut dyn Transmit> {
        self.0
            .get_mut(iface.index())
            .map(|s| s as &mut dyn Transmit)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let size: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(64)
        .clamp(64, 1514);
    let lan_mac = MacAddr([2, 0, 0, 0, 1, 1]);
    let mut c = Config::new(lan_mac, "198.18.1.1/24".parse().unwrap());
    c.announce = false;
    let mut s = Stack::new(c).unwrap();
    let wan = InterfaceConfig::new(
        "wan",
        MacAddr([2, 0, 0, 0, 2, 1]),
        vec!["198.51.100.1/24".parse().unwrap()],
    );
    s.add_interface(wan).unwrap();
    let gw = Ipv4Addr::new(198, 51, 100, 254);
    s.add_route("0.0.0.0/0".parse().unwrap(), Some(gw), None, 0)
        .unwrap();
    s.set_forwarding(true);
    let mut out = Two([
        Sink {
            last: Vec::new(),
            frames: 0,
        },
        Sink {
            last: Vec::new(),
            frames: 0,
        },
    ]);
    // Teach the WAN neighbour: an ARP reply from the gateway.
    let reply = ringstack::arp::wire::Repr {
        operation: ringstack::arp::wire::Operation::Reply,
        source_mac: MacAddr([2, 0, 0, 0, 2, 9]),
        source_ip: gw,
        target_mac: MacAddr([2, 0, 0, 0, 2, 1]),
        target_ip: Ipv4Addr::new(198, 51, 100, 1),
    };
    let now = Instant::from_millis(1);
    // Ask first so the reply is for a pending entry.
    let frame = udp_frame(lan_mac, size);
    s.process_frame_on(now, IfaceId(0), &frame, &mut out);
    let mut b = vec![0u8; reply.buffer_len()];
    reply.emit(&mut ringstack::arp::wire::Packet::new_unchecked(&mut b[..]));
    let arp = eth_frame(
        MacAddr([2, 0, 0, 0, 2, 9]),
        MacAddr([2, 0, 0, 0, 2, 1]),
        EtherType::Arp,
        &b,
    );
    s.process_frame_on(now, IfaceId(1), &arp, &mut out);
    let before = out.0[1].frames;
    let t = std::time::Instant::now();
    for _ in 0..n {
        s.process_frame_on(now, IfaceId(0), &frame, &mut out);
    }
    let dt = t.elapsed().as_secs_f64();
    let fwd = out.0[1].frames - before;
    assert_eq!(fwd, n, "every frame forwarded");
    println!(
        "{n} frames of {size} bytes forwarded: {:.2} Mpps on one core ({:.1} ns/packet)",
        n as f64 / dt / 1e6,
        dt * 1e9 / n as f64
    );
}

fn udp_frame(dst_mac: MacAddr, size: usize) -> Vec<u8> {
    let payload_len = size - eth::HEADER_LEN - ipw::HEADER_LEN;
    let r = ipw::Repr {
        src_addr: Ipv4Addr::new(198, 18, 1, 2),
        dst_addr: Ipv4Addr::new(203, 0, 113, 7),
        protocol: ipw::Protocol::Udp,
        payload_len,
        ttl: 64,
        tos: 0,
        ident: 1,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
    };
    let mut ip = vec![0u8; r.buffer_len()];
    r.emit(&mut ipw::Packet::new_unchecked(&mut ip[..]));
    ip[20..28].copy_from_slice(&[
        0x30,
        0x39,
        0,
        9,
        (payload_len >> 8) as u8,
        payload_len as u8,
        0,
        0,
    ]);
    eth_frame(MacAddr([2, 0, 0, 0, 1, 9]), dst_mac, EtherType::Ipv4, &ip)
}

fn eth_frame(src: MacAddr, dst: MacAddr, ethertype: EtherType, body: &[u8]) -> Vec<u8> {
    let repr = eth::Repr {
        src_addr: src,
        dst_addr: dst,
        ethertype,
        vlan: None,
    };
    let mut f = vec![0u8; repr.header_len() + body.len()];
    repr.emit(&mut eth::Frame::new_unchecked(&mut f[..]));
    f[repr.header_len()..].copy_from_slice(body);
    f
}
