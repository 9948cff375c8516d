//! The internet checksum over the sizes that matter: a header, a full frame,
//! a jumbo frame, a maximal reassembled datagram. The baseline is the
//! byte-pair loop straight from RFC 1071 §4.1, measured in the same run.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringstack::ip::checksum;
use std::hint::black_box;

fn rfc1071_reference(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    let mut c = data.chunks_exact(2);
    for w in &mut c {
        s = s.wrapping_add(u16::from_be_bytes([w[0], w[1]]) as u32);
    }
    if let [b] = c.remainder() {
        s = s.wrapping_add((*b as u32) << 8);
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum");
    for size in [20usize, 1500, 9000, 65536] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("ringstack", size), &data, |b, d| {
            b.iter(|| checksum::checksum(black_box(d)))
        });
        g.bench_with_input(
            BenchmarkId::new("rfc1071_reference", size),
            &data,
            |b, d| b.iter(|| rfc1071_reference(black_box(d))),
        );
    }
    g.finish();
    // The send path's copy of a payload into the frame, with its sum: a
    // copy and then a sum read the bytes twice, `copy_and_sum` once.
    let mut g = c.benchmark_group("copy_with_sum");
    for size in [1460usize, 8960] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
        let mut frame = vec![0u8; size + 54];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("copy_then_sum", size), &data, |b, d| {
            b.iter(|| {
                frame[54..].copy_from_slice(black_box(d));
                checksum::sum(black_box(d))
            })
        });
        g.bench_with_input(BenchmarkId::new("copy_and_sum", size), &data, |b, d| {
            b.iter(|| checksum::copy_and_sum(&mut frame[54..], black_box(d)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
