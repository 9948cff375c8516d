//! The whole stack: arbitrary frames and clock advances into a stack with a
//! bound UDP socket and a ping socket; after every step the memory caps hold.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringstack::dev::{Transmit, TxError};
use ringstack::eth::MacAddr;
use ringstack::stack::{Config, Stack};
use ringstack::time::{Duration, Instant};
use std::net::{Ipv4Addr, SocketAddrV4};

struct Sink;
impl Transmit for Sink {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError> {
        let mut b = vec![0u8; len];
        fill(&mut b);
        Ok(())
    }
}

const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

fuzz_target!(|data: &[u8]| {
    let mut c = Config::new(MAC, "198.18.0.2/24".parse().unwrap());
    c.reassembly.max_bytes = 64 * 1024;
    c.reassembly.max_datagrams = 8;
    c.arp.capacity = 16;
    let mut s = Stack::new(c).unwrap();
    let h = s.udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7)).unwrap();
    let mut now = Instant::from_secs(1);
    let mut sink = Sink;
    // Records: a 2-byte length, a 1-byte clock step (x10 ms), then the frame.
    // Frames get our MAC as destination half of the time so they go deep.
    let mut rest = data;
    while rest.len() >= 3 {
        let len = (u16::from_be_bytes([rest[0], rest[1]]) as usize).min(rest.len() - 3);
        now += Duration::from_millis(rest[2] as u64 * 10);
        let mut frame = rest[3..3 + len].to_vec();
        rest = &rest[3 + len..];
        if frame.len() >= 6 && frame[0] & 1 == 0 {
            frame[..6].copy_from_slice(&MAC.0);
        }
        s.process_frame(now, &frame, &mut sink);
        while let Ok((n, from)) = s.udp_recv_from(h, &mut [0u8; 2048]) {
            let _ = s.udp_send_to(h, &[0u8; 16][..n.min(16)], from);
        }
        let (arp, pending, bytes, dgrams) = s.held_resources();
        assert!(arp <= 16 && pending <= 256 && bytes <= 64 * 1024 && dgrams <= 8);
    }
});
