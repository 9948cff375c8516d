//! NewReno, CUBIC and BBR on the simulated bottleneck of `cc_util`: the
//! published behaviour of each, and the snapshot of `docs/CC-GRID.md`.

mod cc_util;

use cc_util::*;
use ringstack::tcp::CcAlgorithm;
use ringstack::time::Duration;

const MBIT: u64 = 1_000_000;

/// Re-runs the 10 Mbit/s rows of the checked-in grid for `cc` and compares.
/// The simulation is deterministic, so a difference is a change in
/// behaviour; the tolerances let a deliberate small change through and
/// catch a regression. Regenerate with `cargo run --release --example
/// cc_grid -- grid` when a change is meant.
fn snapshot(cc: CcAlgorithm) {
    let table = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CC-GRID.md"))
        .expect("docs/CC-GRID.md");
    let mut checked = 0;
    let mut bad = Vec::new();
    for line in table.lines() {
        let Some((sc, want)) = parse_row(line) else {
            continue;
        };
        if sc.cc != cc || sc.rate_bps != 10 * MBIT {
            continue;
        }
        let o = run(&sc);
        let got = [
            o.utilisation * 100.0,
            o.mean_queue_delay.total_micros() as f64 / 1000.0,
            o.retrans_ratio * 100.0,
        ];
        let util_ok = (got[0] - want[0]).abs() <= 3.0;
        let queue_ok = (got[1] - want[1]).abs() <= 2.0 + want[1] * 0.15;
        let rtx_ok = (got[2] - want[2]).abs() <= 0.5 + want[2] * 0.25;
        if !(util_ok && queue_ok && rtx_ok) {
            bad.push(format!("table: {line}\n  now: {}", table_row(&sc, &o)));
        }
        checked += 1;
    }
    assert_eq!(checked, 36, "the table has every 10 Mbit/s cell for {cc}");
    assert!(
        bad.is_empty(),
        "cells drifted from docs/CC-GRID.md:\n{}",
        bad.join("\n")
    );
}

#[test]
fn grid_snapshot_reno() {
    snapshot(CcAlgorithm::NewReno);
}

#[test]
fn grid_snapshot_cubic() {
    snapshot(CcAlgorithm::Cubic);
}

#[test]
fn grid_snapshot_bbr() {
    snapshot(CcAlgorithm::Bbr);
}

#[test]
fn bbr_keeps_the_link_busy_under_random_loss_where_loss_based_control_collapses() {
    // BBR draft §1: BBR "is robust to ... packet loss that is not due to
    // congestion" — its model does not read a random drop as a full queue,
    // whereas a loss-based window shrinks with 1/sqrt(p) (Mathis et al.).
    let at = |cc| run(&Scenario::new(cc, 100 * MBIT, 50, 1.0, 0.01)).utilisation;
    let (reno, cubic, bbr) = (
        at(CcAlgorithm::NewReno),
        at(CcAlgorithm::Cubic),
        at(CcAlgorithm::Bbr),
    );
    assert!(bbr >= 0.90, "BBR utilisation {bbr:.3} at 1 % loss");
    assert!(reno < 0.3, "NewReno {reno:.3}");
    assert!(cubic < 0.5, "CUBIC {cubic:.3}");
}

#[test]
fn bbr_keeps_a_deep_buffer_nearly_empty_while_cubic_fills_it() {
    // BBR aims at the BDP in flight, so a 4-BDP drop-tail queue stays
    // nearly empty; CUBIC fills the buffer until it overflows.
    let sc = |cc| Scenario::new(cc, 10 * MBIT, 50, 4.0, 0.0);
    let bbr = run(&sc(CcAlgorithm::Bbr));
    let cubic = run(&sc(CcAlgorithm::Cubic));
    let rtt = Duration::from_millis(50);
    assert!(
        bbr.mean_queue_delay < Duration::from_micros(rtt.total_micros() / 2),
        "BBR mean queueing delay {} with a 4-BDP buffer",
        bbr.mean_queue_delay
    );
    assert!(
        cubic.mean_queue_delay > rtt,
        "CUBIC mean queueing delay {}",
        cubic.mean_queue_delay
    );
    assert!(bbr.utilisation > 0.9, "BBR util {:.3}", bbr.utilisation);
}

#[test]
fn cubic_window_after_a_loss_follows_the_rfc9438_curve() {
    // RFC 9438 §4.2: "W_cubic(t) = C*(t-K)^3 + W_max" with C = 0.4 and
    // K = cubic_root((W_max - cwnd_epoch)/C), cwnd_epoch = 0.7 * cwnd at
    // the loss (§4.6). W_max is cwnd at the loss, or 0.85 of it under fast
    // convergence (§4.7) when the loss came below the previous W_max: the
    // epoch must follow one of the two curves all the way to the next loss.
    // A big BDP keeps CUBIC out of the Reno-friendly region.
    let mut sc = Scenario::new(CcAlgorithm::Cubic, 200 * MBIT, 100, 1.0, 0.0);
    sc.duration = Duration::from_secs(40);
    sc.series_every = Some(Duration::from_millis(100));
    let o = run(&sc);
    let s = &o.series;
    let mss = o.final_stats[0].snd_mss as f64;
    // Multiplicative decreases in congestion avoidance: cwnd × 0.7 (the
    // slow-start overshoot ends in a timeout instead, cwnd to 1 MSS).
    let drops: Vec<usize> = (1..s.len())
        .filter(|&i| {
            let r = s[i].cwnd as f64 / s[i - 1].cwnd as f64;
            (0.6..0.8).contains(&r) && s[i - 1].state == "avoidance"
        })
        .collect();
    assert!(!drops.is_empty(), "no multiplicative decrease seen");
    let mut compared = 0;
    for (n, &i) in drops.iter().enumerate() {
        let prior = s[i - 1].cwnd as f64 / mss;
        let t0 = s[i].t.as_secs_f64();
        let end = drops.get(n + 1).map_or(s.len(), |&j| j - 1);
        let fits = |w_max: f64| {
            let k = ((w_max - 0.7 * prior).max(0.0) / 0.4).cbrt();
            s[i + 2..end].iter().all(|p| {
                let t = p.t.as_secs_f64() - t0;
                // The epoch starts at its first ACK, up to an RTT (here
                // 100-200 ms) after the reduction, and cwnd chases
                // W_cubic(t + RTT) (§4.2): allow that shift, and 3 %.
                let at = |dt: f64| (0.4 * (t + dt - k).powi(3) + w_max).max(0.7 * prior);
                let (lo, hi) = (at(-0.3), at(0.3));
                let got = p.cwnd as f64 / mss;
                got >= lo * 0.97 - 2.0 && got <= hi * 1.03 + 2.0
            })
        };
        if end <= i + 20 {
            // A second loss right after the first (the tail of a
            // slow-start overshoot): too short an epoch to fit a curve.
            continue;
        }
        compared += 1;
        assert!(
            fits(prior) || fits(0.85 * prior),
            "epoch {n} (loss at {t0:.1} s, cwnd {prior:.0} segments) follows neither W_cubic curve: {:?}",
            s[i..end].iter().map(|p| p.cwnd / 1448).collect::<Vec<_>>()
        );
    }
    assert!(compared >= 1, "no epoch long enough to compare");
}

fn two_flows(cc: CcAlgorithm) -> Outcome {
    let mut sc = Scenario::new(cc, 20 * MBIT, 20, 1.0, 0.0);
    sc.duration = Duration::from_secs(60);
    sc.warmup = Duration::from_secs(20);
    sc.flows = vec![Duration::ZERO, Duration::from_secs(2)];
    run(&sc)
}

#[test]
fn two_reno_flows_share_the_bottleneck_fairly() {
    let o = two_flows(CcAlgorithm::NewReno);
    assert!(
        o.jain() >= 0.9,
        "Jain {:.3}: {:?}",
        o.jain(),
        o.flow_goodput_bps
    );
}

#[test]
fn two_cubic_flows_share_the_bottleneck_fairly() {
    let o = two_flows(CcAlgorithm::Cubic);
    assert!(
        o.jain() >= 0.9,
        "Jain {:.3}: {:?}",
        o.jain(),
        o.flow_goodput_bps
    );
}

#[test]
fn two_bbr_flows_share_the_bottleneck_fairly() {
    let o = two_flows(CcAlgorithm::Bbr);
    assert!(
        o.jain() >= 0.9,
        "Jain {:.3}: {:?}",
        o.jain(),
        o.flow_goodput_bps
    );
}

#[test]
fn bbr_probes_rtt_periodically() {
    // BBR draft: "BBR ... enters ProbeRTT if it has not measured a new
    // minimum RTT for ProbeRTTInterval" — with a steady queue-free path
    // the minimum never drops, so PROBE_RTT comes round on that schedule.
    let mut sc = Scenario::new(CcAlgorithm::Bbr, 10 * MBIT, 50, 1.0, 0.0);
    sc.duration = Duration::from_secs(41);
    sc.series_every = Some(Duration::from_millis(10));
    let o = run(&sc);
    let mut entries = Vec::new();
    for w in o.series.windows(2) {
        if w[1].state == "probe-rtt" && w[0].state != "probe-rtt" {
            entries.push(w[1].t.as_secs_f64());
        }
    }
    assert!(entries.len() >= 3, "PROBE_RTT entered at {entries:?}");
    for g in entries.windows(2) {
        let gap = g[1] - g[0];
        assert!(
            (4.0..=11.0).contains(&gap),
            "PROBE_RTT every {gap:.1} s: {entries:?}"
        );
    }
}

#[test]
fn every_algorithm_fills_a_clean_path() {
    for cc in CcAlgorithm::ALL {
        let o = run(&Scenario::new(cc, 10 * MBIT, 10, 1.0, 0.0));
        assert!(o.utilisation > 0.9, "{cc}: {:.3}", o.utilisation);
    }
}

/// Not a check: prints one scenario's time series and final stats, for
/// looking into a cell (`CC=bbr LOSS=0.01 cargo test --release --test
/// cc_sim -- --ignored --nocapture print_one_scenario`, and RATE in
/// Mbit/s, RTT in ms, BUF in BDPs).
#[test]
#[ignore = "a tool for looking at one scenario, not a check"]
fn print_one_scenario() {
    let cc: CcAlgorithm = std::env::var("CC").unwrap_or("bbr".into()).parse().unwrap();
    let var = |k: &str, d: &str| std::env::var(k).unwrap_or(d.into());
    let loss: f64 = var("LOSS", "0.01").parse().unwrap();
    let rate: u64 = var("RATE", "100").parse().unwrap();
    let rtt: u64 = var("RTT", "50").parse().unwrap();
    let buf: f64 = var("BUF", "1").parse().unwrap();
    let mut sc = Scenario::new(cc, rate * MBIT, rtt, buf, loss);
    sc.series_every = Some(Duration::from_millis(
        var("EVERY_MS", "250").parse().unwrap(),
    ));
    if let Ok(ms) = std::env::var("DURATION_MS") {
        sc.duration = Duration::from_millis(ms.parse().unwrap());
        sc.warmup = Duration::ZERO;
    }
    sc.pace_all = var("PACE", "0") == "1";
    let o = run(&sc);
    for s in &o.series {
        eprintln!(
            "{:.2} cwnd {} gp {:.1} dr {:.1} pace {:?} {} {:?}",
            s.t.as_secs_f64(),
            s.cwnd / 1448,
            s.goodput_bps / 1e6,
            s.delivery_rate_bps / 1e6,
            s.pacing_bps.map(|p| (p / 1e6) as u64),
            s.state,
            s.srtt
        );
    }
    eprintln!(
        "drops random {} queue {} ooo {}",
        o.random_drops, o.queue_drops, o.receiver_ooo_drops
    );
    eprintln!("util {:.3} {:?}", o.utilisation, o.final_stats);
}
