//! Longest-prefix match (`route::lpm::PrefixTable`) over synthetic tables
//! with the public BGP table's mix of prefix lengths, at 10, 10 000 and
//! 1 000 000 prefixes: lookups of random addresses and of addresses inside
//! the table's prefixes, in batches of 4096 drawn in turn from a million
//! addresses so that the big table's paths are not all in cache; and the
//! time to build the largest table one insert at a time. Prints each
//! table's heap bytes per prefix.
//!
//! `cargo test --bench lpm` runs each case once in a debug build, where a
//! million inserts would take minutes; there the largest table has 20 000
//! prefixes.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ringstack::route::lpm::{synthetic_internet_table, PrefixTable};
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

const BIG: usize = if cfg!(debug_assertions) {
    20_000
} else {
    1_000_000
};
const BATCH: usize = 4096;

fn build(prefixes: &[(Ipv4Addr, u8)]) -> PrefixTable<u32> {
    let mut t = PrefixTable::new();
    for (i, &(a, l)) in prefixes.iter().enumerate() {
        t.insert(a, l, i as u32).expect("lengths are at most 32");
    }
    t
}

/// `n` addresses: uniformly random, or inside a random prefix of the
/// table with random host bits.
fn addresses(prefixes: &[(Ipv4Addr, u8)], inside: bool, n: usize) -> Vec<Ipv4Addr> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    (0..n)
        .map(|_| {
            let r = rng.next_u32();
            if inside {
                let (a, l) = prefixes[rng.next_u32() as usize % prefixes.len()];
                let host = u32::MAX.checked_shr(u32::from(l)).unwrap_or(0);
                Ipv4Addr::from(u32::from(a) | (r & host))
            } else {
                Ipv4Addr::from(r)
            }
        })
        .collect()
}

fn lookups(c: &mut Criterion) {
    let mut g = c.benchmark_group("lpm_lookup");
    g.throughput(Throughput::Elements(BATCH as u64));
    for n in [10, 10_000, BIG] {
        let prefixes = synthetic_internet_table(n, 42);
        let t = build(&prefixes);
        eprintln!(
            "lpm: {n} prefixes hold {} bytes, {:.1} bytes/prefix",
            t.memory_bytes(),
            t.memory_bytes() as f64 / n as f64
        );
        for (kind, inside) in [("random", false), ("in_table", true)] {
            let addrs = addresses(&prefixes, inside, 1 << 20);
            let mut at = 0;
            g.bench_function(BenchmarkId::new(kind, n), |b| {
                b.iter(|| {
                    let batch = &addrs[at..at + BATCH];
                    at = (at + BATCH) % addrs.len();
                    let mut sum = 0u32;
                    for &a in batch {
                        if let Some(v) = t.lookup(black_box(a)) {
                            sum = sum.wrapping_add(v);
                        }
                    }
                    sum
                })
            });
        }
    }
    g.finish();
}

fn building(c: &mut Criterion) {
    let prefixes = synthetic_internet_table(BIG, 42);
    let mut g = c.benchmark_group("lpm_build");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(30));
    g.bench_function(BenchmarkId::new("insert_all", BIG), |b| {
        b.iter_batched(|| (), |()| build(&prefixes), BatchSize::PerIteration)
    });
    g.finish();
}

criterion_group!(benches, lookups, building);
criterion_main!(benches);
