//! ringstack's parsers against etherparse on the same bytes. The first byte
//! picks the layer; a disagreement that is not one of the intended
//! differences (docs/DIFFERENTIAL.md) is a crash.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod compare {
    include!("../../tests/differential/compare.rs");
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let r = match sel % 5 {
        0 => compare::ipv4(rest),
        1 => compare::udp(rest),
        2 => compare::arp(rest),
        3 => compare::icmp(rest),
        _ => compare::ethernet(rest),
    };
    if let Err(e) = r {
        panic!("{e}");
    }
});
