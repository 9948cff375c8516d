//! The whole stack, stateful: arbitrary frames and clock advances into a
//! stack with a bound UDP socket, a TCP listener and an established TCP
//! connection (set up by a scripted handshake). After every step the memory
//! caps hold and the connection's counters stay consistent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringstack::arp::wire as arpw;
use ringstack::dev::{Device, DeviceCaps, DeviceStats, Transmit, TxError};
use ringstack::eth::{self, EtherType, MacAddr};
use ringstack::ip::wire::{self as ipw, Protocol};
use ringstack::stack::{Config, Stack};
use ringstack::tcp::CcAlgorithm;
use ringstack::tcp::wire as tcpw;
use ringstack::tcp::SeqNumber;
use ringstack::time::{Duration, Instant};
use std::net::{Ipv4Addr, SocketAddrV4};

const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// Keeps the last frame sent, so the handshake can read the SYN-ACK.
#[derive(Default)]
struct Sink {
    last: Vec<u8>,
}
impl Transmit for Sink {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError> {
        self.last.clear();
        self.last.resize(len, 0);
        fill(&mut self.last);
        Ok(())
    }
}
impl Device for Sink {
    fn caps(&self) -> DeviceCaps {
        DeviceCaps { mtu: 1500, mac: None, rx_batch: 1, kind: "fuzz".into() }
    }
    fn receive(&mut self, _: Instant, _: usize, _: &mut dyn FnMut(&[u8], &mut dyn Transmit)) -> std::io::Result<usize> {
        Ok(0)
    }
    fn transmitter(&mut self) -> &mut dyn Transmit {
        self
    }
    fn flush(&mut self, _: Instant) -> std::io::Result<()> {
        Ok(())
    }
    fn wait(&mut self, _: Option<ringstack::Duration>) -> std::io::Result<()> {
        Ok(())
    }
    fn stats(&self) -> DeviceStats {
        DeviceStats::default()
    }
}

fn frame(ethertype: EtherType, dst: MacAddr, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + payload.len()];
    eth::Repr { src_addr: PEER_MAC, dst_addr: dst, ethertype, vlan: None }.emit(&mut eth::Frame::new_unchecked(&mut f[..]));
    f[14..].copy_from_slice(payload);
    f
}

fn tcp_frame(seg: &tcpw::Repr) -> Vec<u8> {
    let ip = ipw::Repr {
        src_addr: PEER,
        dst_addr: IP,
        protocol: Protocol::Tcp,
        payload_len: seg.buffer_len(),
        ttl: 64,
        tos: 0,
        ident: 7,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let mut b = vec![0u8; ip.buffer_len()];
    ip.emit(&mut ipw::Packet::new_unchecked(&mut b[..]));
    seg.emit(&mut tcpw::Packet::new_unchecked(&mut b[20..]), PEER, IP);
    frame(EtherType::Ipv4, MAC, &b)
}

fuzz_target!(|data: &[u8]| {
    let mut c = Config::new(MAC, "198.18.0.2/24".parse().unwrap());
    c.announce = false;
    c.reassembly.max_bytes = 64 * 1024;
    c.reassembly.max_datagrams = 8;
    c.arp.capacity = 16;
    c.tcp.max_syn_backlog = 8;
    c.tcp.max_connections = 64;
    // The first byte picks the congestion controller and pacing, so every
    // controller meets the same hostile traffic through the real engine.
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    c.tcp.cc = CcAlgorithm::ALL[usize::from(pick) % 3];
    c.tcp.pace_all = pick & 4 != 0;
    let mut s = Stack::new(c).unwrap();
    let u = s.udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7)).unwrap();
    let l = s.tcp_listen(80, 16).unwrap();
    let mut now = Instant::from_secs(1);
    let mut sink = Sink::default();

    // Handshake: the peer's ARP request, its SYN, our SYN-ACK, its ACK.
    let arp = arpw::Repr { operation: arpw::Operation::Request, source_mac: PEER_MAC, source_ip: PEER, target_mac: MacAddr::ZERO, target_ip: IP };
    let mut ab = [0u8; 28];
    arp.emit(&mut arpw::Packet::new_unchecked(&mut ab[..]));
    s.process_frame(now, &frame(EtherType::Arp, MacAddr::BROADCAST, &ab), &mut sink);
    let syn = tcpw::Repr { src_port: 40000, dst_port: 80, seq_number: SeqNumber(1000), syn: true, window_len: 65535, max_seg_size: Some(1460), ..Default::default() };
    s.process_frame(now, &tcp_frame(&syn), &mut sink);
    s.poll(now, &mut sink).unwrap();
    let synack_seq = {
        let e = eth::Frame::new_checked(&sink.last[..]).expect("SYN-ACK frame");
        let p = ipw::Packet::new_checked(e.payload()).expect("SYN-ACK IP");
        let t = tcpw::Packet::new_checked(p.payload()).expect("SYN-ACK TCP");
        assert!(t.syn() && t.ack(), "the stack answers a SYN with a SYN-ACK");
        t.seq_number()
    };
    let ack = tcpw::Repr { src_port: 40000, dst_port: 80, seq_number: SeqNumber(1001), ack_number: Some(synack_seq + 1), window_len: 65535, ..Default::default() };
    s.process_frame(now, &tcp_frame(&ack), &mut sink);
    let conn = s.tcp().accept(l).expect("established connection");

    // Records: 2-byte length, 1-byte clock step (x10 ms), then the frame.
    // Frames get our MAC as destination half of the time so they go deep.
    let mut rest = data;
    let mut buf = [0u8; 4096];
    while rest.len() >= 3 {
        let len = (u16::from_be_bytes([rest[0], rest[1]]) as usize).min(rest.len() - 3);
        now += Duration::from_millis(rest[2] as u64 * 10);
        let mut f = rest[3..3 + len].to_vec();
        rest = &rest[3 + len..];
        if f.len() >= 6 && f[0] & 1 == 0 {
            f[..6].copy_from_slice(&MAC.0);
        }
        s.process_frame(now, &f, &mut sink);
        s.poll(now, &mut sink).unwrap();
        while let Ok((n, from)) = s.udp_recv_from(u, &mut buf) {
            let _ = s.udp_send_to(u, &buf[..n.min(64)], from);
        }
        // The application reads and answers, and accepts what arrives.
        while matches!(s.tcp().recv(conn, &mut buf), Ok(n) if n > 0) {}
        // Enough to fill windows, so the controller and pacing decide.
        let _ = s.tcp().send(conn, &[0x5a; 3000]);
        while let Ok(h) = s.tcp().accept(l) {
            let _ = s.tcp().close(h);
        }
        let (arp, pending, bytes, dgrams) = s.held_resources();
        assert!(arp <= 16 && pending <= 256 && bytes <= 64 * 1024 && dgrams <= 8);
        assert!(s.tcp_ref().connection_count() <= 64 + 8);
        if let Ok(st) = s.tcp_ref().conn_stats(conn) {
            assert!(st.bytes_acked <= st.bytes_sent, "{st:?}");
            assert!(st.cwnd > 0 && st.rto > Duration::ZERO, "{st:?}");
            assert!(st.cwnd <= 1 << 30, "{st:?}");
            assert!(st.pacing_rate.is_none_or(|r| r > 0), "{st:?}");
        }
    }
});
