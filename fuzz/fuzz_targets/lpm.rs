//! The longest-prefix-match table under arbitrary updates and lookups:
//! never a panic (lengths above 32 included), and every answer the same as
//! a map of exact prefixes searched from /32 down to /0.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringstack::route::lpm::{PrefixLenError, PrefixTable};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

fn mask(a: u32, len: u8) -> u32 {
    a & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fuzz_target!(|data: &[u8]| {
    let mut t = PrefixTable::new();
    let mut m: BTreeMap<(u32, u8), u16> = BTreeMap::new();
    // Each record: op(1) address(4) length(1). Addresses are XORed onto
    // the previous one so that short inputs make nested prefixes.
    let mut prev = 0u32;
    for (i, rec) in data.chunks_exact(6).enumerate() {
        let value = i as u16;
        let addr = prev ^ u32::from_be_bytes([rec[1], rec[2], rec[3], rec[4]]);
        prev = addr;
        let len = rec[5];
        let ip = Ipv4Addr::from(addr);
        match rec[0] % 4 {
            0 => {
                let want = if len > 32 {
                    Err(PrefixLenError { len })
                } else {
                    Ok(m.insert((mask(addr, len), len), value))
                };
                assert_eq!(t.insert(ip, len, value), want);
            }
            1 => {
                let want = if len > 32 { None } else { m.remove(&(mask(addr, len), len)) };
                assert_eq!(t.remove(ip, len), want);
            }
            2 => {
                let want = if len > 32 { None } else { m.get(&(mask(addr, len), len)).copied() };
                assert_eq!(t.get(ip, len), want);
            }
            _ => {
                let want = (0..=32u8).rev().find_map(|l| m.get(&(mask(addr, l), l)).map(|&v| (l, v)));
                assert_eq!(t.lookup_len(ip), want);
            }
        }
        assert_eq!(t.len(), m.len());
    }
    let all: Vec<_> = t.iter().map(|(a, l, v)| ((u32::from(a), l), v)).collect();
    assert!(all.iter().copied().eq(m.iter().map(|(&k, &v)| (k, v))));
});
