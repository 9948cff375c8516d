//! Reassembly under arbitrary fragment streams: never a panic, never more
//! bytes held than the cap, and a completed datagram is never longer than
//! the largest IPv4 payload.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringstack::ip::frag::{FragKey, FragOutcome, ReassemblyConfig, Reassembler};
use ringstack::time::{Duration, Instant};
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    let cfg = ReassemblyConfig { max_datagrams: 4, max_fragments_per_datagram: 16, max_bytes: 32 * 1024, timeout: Duration::from_secs(30) };
    let mut r = Reassembler::new(cfg);
    let mut now = Instant::ZERO;
    // Each record: ident(1) offset(2) more(1) len(2) time-step(1).
    for rec in data.chunks_exact(7) {
        let key = FragKey { src: Ipv4Addr::new(198, 18, 0, 1), dst: Ipv4Addr::new(198, 18, 0, 2), protocol: 17, ident: rec[0] as u16 % 3 };
        let offset = u16::from_be_bytes([rec[1], rec[2]]) as usize;
        let len = (u16::from_be_bytes([rec[4], rec[5]]) % 2048) as usize;
        now += Duration::from_millis(rec[6] as u64 * 100);
        let payload = vec![rec[0]; len];
        if let FragOutcome::Complete(d) = r.add(now, key, offset, rec[3] & 1 == 1, &payload, &[0x45; 20]) {
            assert!(d.len() <= 65515);
        }
        r.expire(now, &mut |_| {});
        assert!(r.bytes_held() <= 32 * 1024);
        assert!(r.datagrams_in_progress() <= 4);
    }
});
