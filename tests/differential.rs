//! ringstack's parsers against etherparse on the same bytes: the lab
//! capture's frames (fuzz/corpus), every truncation of them, every header
//! byte set to 0x00, 0xff and +1, and seeded random buffers. Where one
//! accepts what the other rejects, the difference must be one of the
//! intended ones in docs/DIFFERENTIAL.md, or the test fails.

#[path = "differential/compare.rs"]
mod compare;

use std::path::Path;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no seeds in {}", dir.display());
    v
}

/// Every truncation, every byte of the first 64 set three ways, and 2000
/// random buffers.
fn variants(seeds: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for s in seeds {
        for n in 0..=s.len() {
            out.push(s[..n].to_vec());
        }
        for i in 0..s.len().min(64) {
            for v in [0x00, 0xff, s[i].wrapping_add(1)] {
                let mut m = s.clone();
                m[i] = v;
                out.push(m);
            }
        }
    }
    let mut x: u64 = 0x853c_49e6_748f_ea9b;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 200) as usize;
        out.push((0..len).map(|i| (x >> (i % 56)) as u8).collect());
    }
    out
}

fn check(target: &str, strip: usize, f: fn(&[u8]) -> Result<(), String>) {
    let seeds: Vec<Vec<u8>> = seeds(target)
        .into_iter()
        .map(|s| s[strip.min(s.len())..].to_vec())
        .collect();
    let all = variants(&seeds);
    let fails: Vec<String> = all
        .iter()
        .filter_map(|d| f(d).err().map(|e| format!("{e}\n  bytes: {d:02x?}")))
        .collect();
    assert!(
        fails.is_empty(),
        "{} of {} inputs differ; first:\n{}",
        fails.len(),
        all.len(),
        fails[0]
    );
}

#[test]
fn ipv4_agrees_with_etherparse() {
    check("ipv4", 0, compare::ipv4);
}

#[test]
fn udp_agrees_with_etherparse() {
    // UDP seeds start with the 8 pseudo-header address bytes.
    check("udp", 8, compare::udp);
}

#[test]
fn arp_agrees_with_etherparse() {
    check("arp", 0, compare::arp);
}

#[test]
fn icmp_agrees_with_etherparse() {
    check("icmp", 0, compare::icmp);
}

#[test]
fn ethernet_agrees_with_etherparse() {
    check("eth", 0, compare::ethernet);
}
