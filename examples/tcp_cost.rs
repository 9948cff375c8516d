//! Moves N full-size segments' worth of data (N × 1460 bytes) between two
//! stacks in one thread — two ringstack `Stack`s or two smoltcp
//! `Interface`s, set up alike (see `tcp_common`) — for counting instructions
//! per data segment with callgrind:
//!
//! ```text
//! valgrind --tool=callgrind target/release/examples/tcp_cost ringstack 1000
//! valgrind --tool=callgrind target/release/examples/tcp_cost ringstack 11000
//! ```
//! The difference of the two totals over 10 000 is what one data segment
//! costs *both ends together*: the sender building and checksumming it, the
//! receiver checking it and copying it into its ring, and the share of ACKs
//! sent and processed. Connection setup is in both runs and cancels out.
//! `--no-ts` turns TCP timestamps off on both ends; `--check` writes and
//! verifies a byte pattern (off for counting: the applications then touch
//! no payload). `benches/tcp_cost.sh` runs it all and prints the table;
//! `benches/tcp_cost_check.sh` compares the figures with
//! `benches/tcp_cost.baseline`.

mod tcp_common;

use tcp_common::{make, Opts, MSS};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let stack = a.first().map(String::as_str).unwrap_or("ringstack");
    let segs: u64 = a.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let o = Opts {
        timestamps: !a.iter().any(|x| x == "--no-ts"),
    };
    let check = a.iter().any(|x| x == "--check");
    let mut p = make(stack, o);
    let r = p.transfer(segs * MSS, check);
    if check {
        p.close();
    }
    println!(
        "{} {segs} segments: {} bytes, {} rounds, {} frames data way, {} frames ACK way, retransmits {}, checksum path {}",
        p.name(),
        r.bytes,
        r.rounds,
        r.frames_data_dir,
        r.frames_ack_dir,
        r.retransmits.map_or("n/a".to_string(), |n| n.to_string()),
        checksum_path()
    );
    // Dropping the stacks walks their hash maps, and std seeds each map's
    // hasher at random per process, so the walk, and with it the
    // program's total, differed by a few hundred instructions from run to
    // run. Not dropping them makes the count the same on every run.
    std::mem::forget(p);
}

/// The loop `ringstack::ip::checksum` runs on this CPU, which is picked at
/// run time (the same test as there). The two loops differ by hundreds of
/// instructions per segment (the AVX2 loop took 795 off when it came in),
/// so a count is only comparable with one taken on the same path. Under valgrind the CPU that
/// answers is valgrind's model, not the host, which is why the program
/// reports it rather than the check reading /proc/cpuinfo.
fn checksum_path() -> String {
    let arch = std::env::consts::ARCH;
    #[cfg(target_arch = "x86_64")]
    {
        if cfg!(target_feature = "avx2") {
            // Built for AVX2: no run-time test, the portable loop compiled
            // for 256-bit vectors, which is neither of the other two.
            return format!("{arch}-avx2-build");
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return format!("{arch}-avx2");
        }
    }
    format!("{arch}-portable")
}
