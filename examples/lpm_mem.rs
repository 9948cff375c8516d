//! Memory and update cost of `route::lpm::PrefixTable` by table size:
//! heap bytes and bytes per prefix, the time to build each table one
//! insert at a time, and single updates on the largest: the slowest of
//! 10 000 removals and re-insertions of its own prefixes, and adding and
//! removing a default route and a /8 over it.
//!
//! ```text
//! cargo run --release --example lpm_mem
//! ```

use ringstack::route::lpm::{synthetic_internet_table, PrefixTable};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

fn main() {
    let mut host = PrefixTable::new();
    for (p, l) in [
        ("0.0.0.0", 0),
        ("192.168.1.0", 24),
        ("192.168.1.1", 32),
        ("169.254.0.0", 16),
        ("10.8.0.0", 16),
    ] {
        host.insert(p.parse().unwrap(), l, 0u32).unwrap();
    }
    println!(
        "{:>9} prefixes: {:>9} bytes",
        host.len(),
        host.memory_bytes()
    );

    for n in [10, 10_000, 100_000, 1_000_000] {
        let prefixes = synthetic_internet_table(n, 42);
        let t0 = Instant::now();
        let mut t = PrefixTable::new();
        for (i, &(a, l)) in prefixes.iter().enumerate() {
            t.insert(a, l, i as u32).unwrap();
        }
        let built = t0.elapsed();
        println!(
            "{n:>9} prefixes: {:>9} bytes, {:>6.1} bytes/prefix, built in {built:.2?}",
            t.memory_bytes(),
            t.memory_bytes() as f64 / n as f64,
        );
        if n == 1_000_000 {
            let mut slowest = Duration::ZERO;
            let mut total = Duration::ZERO;
            for (i, &(a, l)) in prefixes.iter().step_by(100).enumerate() {
                let t0 = Instant::now();
                t.remove(a, l).unwrap();
                t.insert(a, l, i as u32).unwrap();
                let took = t0.elapsed();
                slowest = slowest.max(took);
                total += took;
            }
            println!(
                "  remove + insert of its own prefixes: {:.2?} on average, {slowest:.2?} at most",
                total / 10_000,
            );
            for (p, l) in [(Ipv4Addr::UNSPECIFIED, 0), (Ipv4Addr::new(44, 0, 0, 0), 8)] {
                let t0 = Instant::now();
                t.insert(p, l, 0).unwrap();
                let ins = t0.elapsed();
                let t0 = Instant::now();
                t.remove(p, l).unwrap();
                println!("  insert {p}/{l}: {ins:.2?}, remove: {:.2?}", t0.elapsed());
            }
        }
    }
}
