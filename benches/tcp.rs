//! Bulk TCP between two stacks in one thread, ringstack against smoltcp
//! 0.12, both set up alike (see `examples/tcp_common`): 16 MiB from client
//! to server over an in-memory Ethernet pair, MSS 1460 (and, in two more
//! rows, MTU 9000 on both), 256 KiB buffers,
//! fake clock. Each iteration is one transfer on a freshly connected pair
//! (setup and ARP are outside the timing); the throughput is application
//! bytes delivered per second of CPU in this one thread, so it is the
//! protocol work of both ends together.
//!
//! smoltcp 0.12 runs without TCP timestamps: with them on it sizes
//! segments without the 12 option bytes, so full-size segments exceed the
//! MTU and are dropped (fixed upstream after 0.12, smoltcp PR #1161).
//! ringstack runs both ways: timestamps off (the matched comparison) and
//! on (its default).
//!
//! Before measuring, each configuration moves 1 MiB with every byte
//! written and checked and closes both ways, so a wrong byte, a stall or a
//! broken close fails the bench (and `cargo test --bench tcp`).

#[path = "../examples/tcp_common/mod.rs"]
mod tcp_common;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tcp_common::{make_with, Opts, MTU};

const BYTES: u64 = 16 << 20;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("tcp_bulk_16MiB");
    g.throughput(Throughput::Bytes(BYTES));
    g.sample_size(30);
    // Jumbo frames on both links too: the per-segment work shrinks six-fold
    // beside the per-byte work (copies and checksums), so the two rows
    // separate what each stack spends per segment from what it spends per
    // byte.
    let cases = [
        ("smoltcp", "no_timestamps", false, MTU),
        ("ringstack", "no_timestamps", false, MTU),
        ("ringstack", "timestamps", true, MTU),
        ("smoltcp", "no_timestamps_mtu9000", false, 9000),
        ("ringstack", "no_timestamps_mtu9000", false, 9000),
    ];
    for (stack, variant, ts, mtu) in cases {
        let o = Opts { timestamps: ts };
        // Correctness first: every byte checked, then a clean close.
        let mut p = make_with(stack, o, mtu);
        let r = p.transfer(1 << 20, true);
        assert_eq!(r.bytes, 1 << 20);
        p.close();
        g.bench_function(BenchmarkId::new(stack, variant), |b| {
            b.iter_batched(
                || make_with(stack, o, mtu),
                |mut p| {
                    p.transfer(BYTES, false);
                    p
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
