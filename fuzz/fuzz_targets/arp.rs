//! ARP: parse, and round-trip what parses.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringstack::arp::wire::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::new_checked(data) else { return };
    let _ = (p.operation(), p.source_hardware_addr(), p.target_protocol_addr());
    let Ok(r) = Repr::parse(&p) else { return };
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut Packet::new_unchecked(&mut buf[..]));
    assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(), r);
});
