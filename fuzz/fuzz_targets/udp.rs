//! UDP: parse with a pseudo-header from the first 8 bytes, and round-trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringstack::udp::wire::{Packet, Repr};
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let src = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
    let dst = Ipv4Addr::new(data[4], data[5], data[6], data[7]);
    let Ok(p) = Packet::new_checked(&data[8..]) else { return };
    let _ = (p.payload().len(), p.verify_checksum(src, dst));
    let Ok(r) = Repr::parse(&p, src, dst) else { return };
    let mut buf = vec![0u8; 8 + p.payload().len()];
    r.emit(&mut Packet::new_unchecked(&mut buf[..]), src, dst, p.payload());
    let q = Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(Repr::parse(&q, src, dst).unwrap(), r);
    assert_eq!(q.payload(), p.payload());
});
