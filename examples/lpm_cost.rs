//! Runs K passes of 100 000 lookups over a synthetic table of N prefixes,
//! for counting instructions per lookup with callgrind:
//!
//! ```text
//! valgrind --tool=callgrind target/release/examples/lpm_cost 1000000 random 0
//! valgrind --tool=callgrind target/release/examples/lpm_cost 1000000 random 1
//! ```
//! The difference of the two totals over 100 000 is the cost of one
//! lookup, the same on every run whatever else the machine does. Address
//! kinds: `random` (uniform over the 2^32 addresses) and `in_table` (inside
//! a random prefix of the table, random host bits).

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ringstack::route::lpm::{synthetic_internet_table, PrefixTable};
use std::hint::black_box;
use std::net::Ipv4Addr;

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: lpm_cost N random|in_table K";
    let n: usize = args.next().and_then(|a| a.parse().ok()).expect(usage);
    let inside = match args.next().as_deref() {
        Some("random") => false,
        Some("in_table") => true,
        _ => panic!("{usage}"),
    };
    let passes: usize = args.next().and_then(|a| a.parse().ok()).expect(usage);

    let prefixes = synthetic_internet_table(n, 42);
    let mut t = PrefixTable::new();
    for (i, &(a, l)) in prefixes.iter().enumerate() {
        t.insert(a, l, i as u32).unwrap();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let addrs: Vec<Ipv4Addr> = (0..100_000)
        .map(|_| {
            let r = rng.next_u32();
            if inside {
                let (a, l) = prefixes[rng.next_u32() as usize % prefixes.len()];
                Ipv4Addr::from(u32::from(a) | (r & u32::MAX.checked_shr(u32::from(l)).unwrap_or(0)))
            } else {
                Ipv4Addr::from(r)
            }
        })
        .collect();
    let mut sum = 0u32;
    for _ in 0..passes {
        for &a in &addrs {
            if let Some(v) = t.lookup(black_box(a)) {
                sum = sum.wrapping_add(v);
            }
        }
    }
    black_box(sum);
}
