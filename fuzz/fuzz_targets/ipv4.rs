//! IPv4: parse, and round-trip what parses (options are dropped on emit, so
//! the Repr, not the bytes, must survive).
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringstack::ip::wire::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::new_checked(data) else { return };
    let _ = (p.options().len(), p.payload().len(), p.verify_checksum(), p.frag_offset());
    let Ok(r) = Repr::parse(&p) else { return };
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut Packet::new_unchecked(&mut buf[..]));
    buf[r.header_len()..].copy_from_slice(p.payload());
    let again = Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap();
    assert_eq!(again, r);
});
