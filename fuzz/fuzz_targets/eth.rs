//! Ethernet/802.1Q: parse; where parse succeeds, emit and parse again — the
//! round trip must be stable.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringstack::eth::{Frame, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(f) = Frame::new_checked(data) else { return };
    let _ = (f.dst_addr(), f.src_addr(), f.ethertype(), f.vlan(), f.payload_ethertype(), f.payload().len());
    let Ok(r) = Repr::parse(&f) else { return };
    let mut buf = vec![0u8; r.header_len() + f.payload().len()];
    r.emit(&mut Frame::new_unchecked(&mut buf[..]));
    buf[r.header_len()..].copy_from_slice(f.payload());
    let again = Repr::parse(&Frame::new_checked(&buf[..]).expect("emitted frame parses")).expect("emitted repr parses");
    assert_eq!(r, again);
});
