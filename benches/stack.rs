//! Cost of carrying one frame through the stack to completion, reply
//! included: an ICMP echo request answered in place, and a UDP datagram
//! delivered to a socket and echoed back by the application between polls.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
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

/// A transmitter that writes into one reused buffer, as a TX ring would.
struct Sink {
    buf: Vec<u8>,
    frames: u64,
}

impl Transmit for Sink {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError> {
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        fill(&mut self.buf[..len]);
        self.frames += 1;
        Ok(())
    }
}

fn ip_frame(proto: Protocol, payload: &[u8]) -> Vec<u8> {
    let e = eth::Repr {
        src_addr: PEER_MAC,
        dst_addr: OUR_MAC,
        ethertype: EtherType::Ipv4,
        vlan: None,
    };
    let ip = ipw::Repr {
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
    let mut f = vec![0u8; 14 + ip.buffer_len()];
    e.emit(&mut eth::Frame::new_unchecked(&mut f[..]));
    ip.emit(&mut ipw::Packet::new_unchecked(&mut f[14..]));
    f[34..].copy_from_slice(payload);
    f
}

fn ready_stack(sink: &mut Sink) -> Stack {
    let mut c = Config::new(OUR_MAC, "198.18.0.2/24".parse().unwrap());
    c.announce = false;
    let mut s = Stack::new(c).unwrap();
    // Learn the peer so replies need no ARP.
    let r = arpw::Repr {
        operation: arpw::Operation::Request,
        source_mac: PEER_MAC,
        source_ip: PEER_IP,
        target_mac: MacAddr::ZERO,
        target_ip: OUR_IP,
    };
    let mut a = vec![0u8; 14 + 28];
    eth::Repr {
        src_addr: PEER_MAC,
        dst_addr: MacAddr::BROADCAST,
        ethertype: EtherType::Arp,
        vlan: None,
    }
    .emit(&mut eth::Frame::new_unchecked(&mut a[..]));
    r.emit(&mut arpw::Packet::new_unchecked(&mut a[14..]));
    s.process_frame(Instant::ZERO, &a, sink);
    s
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("stack");
    for size in [56usize, 1472] {
        let data: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let req = icmpw::Repr::EchoRequest {
            ident: 1,
            seq: 1,
            data: &data,
        };
        let mut icmp = vec![0u8; req.buffer_len()];
        req.emit(&mut icmpw::Packet::new_unchecked(&mut icmp[..]));
        let frame = ip_frame(Protocol::Icmp, &icmp);
        let mut sink = Sink {
            buf: Vec::new(),
            frames: 0,
        };
        let mut s = ready_stack(&mut sink);
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(
            BenchmarkId::new("icmp_echo_request_to_reply", size),
            &frame,
            |b, f| b.iter(|| s.process_frame(Instant::ZERO, black_box(f), &mut sink)),
        );
        assert!(sink.frames > 0, "the stack answered");

        let u = udpw::Repr {
            src_port: 4000,
            dst_port: 7,
        };
        let mut udp = vec![0u8; 8 + size];
        u.emit(
            &mut udpw::Packet::new_unchecked(&mut udp[..]),
            PEER_IP,
            OUR_IP,
            &data,
        );
        let frame = ip_frame(Protocol::Udp, &udp);
        let mut sink = Sink {
            buf: Vec::new(),
            frames: 0,
        };
        let mut s = ready_stack(&mut sink);
        let h = s
            .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7))
            .unwrap();
        let mut buf = vec![0u8; 2048];
        let mut dev = NullDev { sink };
        g.bench_with_input(
            BenchmarkId::new("udp_receive_echo_send", size),
            &frame,
            |b, f| {
                b.iter(|| {
                    s.process_frame(Instant::ZERO, black_box(f), &mut dev.sink);
                    let (n, from) = s.udp_recv_from(h, &mut buf).unwrap();
                    s.udp_send_to(h, &buf[..n], from).unwrap();
                    s.poll(Instant::ZERO, &mut dev).unwrap();
                })
            },
        );
        assert!(dev.sink.frames > 0);
    }
    g.finish();
}

/// A device with nothing to receive whose transmitter is the sink: `poll`
/// then only flushes socket output.
struct NullDev {
    sink: Sink,
}

impl ringstack::dev::Device for NullDev {
    fn caps(&self) -> ringstack::dev::DeviceCaps {
        ringstack::dev::DeviceCaps {
            mtu: 1500,
            mac: None,
            rx_batch: 64,
            kind: "null".into(),
        }
    }
    fn receive(
        &mut self,
        _: Instant,
        _: usize,
        _: &mut dyn FnMut(&[u8], &mut dyn Transmit),
    ) -> std::io::Result<usize> {
        Ok(0)
    }
    fn transmitter(&mut self) -> &mut dyn Transmit {
        &mut self.sink
    }
    fn flush(&mut self, _: Instant) -> std::io::Result<()> {
        Ok(())
    }
    fn wait(&mut self, _: Option<ringstack::Duration>) -> std::io::Result<()> {
        Ok(())
    }
    fn stats(&self) -> ringstack::dev::DeviceStats {
        Default::default()
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
