//! ICMPv4: parse, and round-trip what parses.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringstack::icmp::wire::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::new_checked(data) else { return };
    let _ = (p.msg_type(), p.echo_seq(), p.next_hop_mtu(), p.data().len(), p.verify_checksum());
    let Ok(r) = Repr::parse(&p) else { return };
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut Packet::new_unchecked(&mut buf[..]));
    assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(), r);
});
