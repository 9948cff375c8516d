//! Steady-state bulk throughput, ringstack against smoltcp 0.12, measured
//! interleaved: both pairs (set up alike, see `tcp_common`) are connected
//! and warmed up with 8 MiB, then take turns moving 2 MiB each, 200 turns.
//! On a shared VM whose speed drifts by ±30 % within seconds, alternating
//! turns puts both stacks under the same drift, so their ratio holds still
//! while their absolute times wander; the minimum and median of each are
//! printed with the ratio.
//!
//! ```text
//! cargo run --release --example tcp_ab [--ts] [--mtu N]
//! ```
//! `--ts` turns timestamps on for ringstack only (smoltcp 0.12 cannot run
//! full-size segments with them, see `benches/tcp.rs`). `--mtu` sets both
//! links' MTU (default 1500; both stacks get the same).

mod tcp_common;

use tcp_common::{make_with, Opts};

const TURNS: usize = 200;
const CHUNK: u64 = 2 << 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ts = args.iter().any(|a| a == "--ts");
    let mtu = match args.iter().position(|a| a == "--mtu") {
        Some(i) => match args.get(i + 1).and_then(|v| v.parse::<usize>().ok()) {
            Some(m) if (576..=65535).contains(&m) => m,
            _ => {
                eprintln!("--mtu needs a number from 576 to 65535");
                std::process::exit(2);
            }
        },
        None => tcp_common::MTU,
    };
    let names = ["smoltcp", "ringstack"];
    let mut pairs: Vec<_> = names
        .iter()
        .map(|n| {
            let o = Opts {
                timestamps: ts && *n == "ringstack",
            };
            make_with(n, o, mtu)
        })
        .collect();
    for p in pairs.iter_mut() {
        p.transfer(8 << 20, false);
    }
    let mut t = [Vec::new(), Vec::new()];
    for _ in 0..TURNS {
        for (i, p) in pairs.iter_mut().enumerate() {
            let s = std::time::Instant::now();
            p.transfer(CHUNK, false);
            t[i].push(s.elapsed().as_secs_f64() * 1e6);
        }
    }
    for v in t.iter_mut() {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "MTU {mtu}, ringstack timestamps {}, {TURNS} turns of 2 MiB each",
        if ts { "on" } else { "off" }
    );
    for (name, v) in names.iter().zip(&t) {
        println!(
            "{name:>10}: min {:>5.0} µs, median {:>5.0} µs per 2 MiB ({:.2} GB/s at the median)",
            v[0],
            v[TURNS / 2],
            CHUNK as f64 / v[TURNS / 2] / 1e3
        );
    }
    println!(
        "ringstack / smoltcp throughput: {:.2}x at the minimum, {:.2}x at the median",
        t[0][0] / t[1][0],
        t[0][TURNS / 2] / t[1][TURNS / 2]
    );
}
