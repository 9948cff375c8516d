//! DHCP messages: parse arbitrary bytes; what parses emits within bounds
//! and parses back equal.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringstack::dhcp::wire::{Packet, Repr, MIN_MESSAGE_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::new_checked(data) {
        let _ = (p.xid(), p.flags(), p.chaddr(), p.sname(), p.file(), p.options().len());
    }
    let Ok(r) = Repr::parse_bytes(data) else { return };
    let out = r.to_vec();
    assert_eq!(out.len(), r.buffer_len());
    // Options never grow on the way through, except that those overloaded
    // into `sname` and `file` (192 bytes) move into the options field, and
    // END is always written.
    assert!(out.len() <= MIN_MESSAGE_LEN.max(data.len() + 192 + 1), "{} from {}", out.len(), data.len());
    let back = Repr::parse_bytes(&out).expect("our own output parses");
    assert_eq!(back, r);
    assert_eq!(back.to_vec(), out);
});
