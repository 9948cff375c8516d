//! The fast paths must not change what the engine does: header prediction
//! on input and send runs on output. The same seeded transfers run with
//! them on and off, and every frame either side emits (time, addresses,
//! bytes) and every counter must come out the same.

mod tcp_util;

use ringstack::tcp::wire::Repr;
use ringstack::tcp::{CcAlgorithm, ConnHandle, ConnStats, SeqNumber, State, TcpConfig, TcpStats};
use ringstack::time::{Duration, Instant};
use tcp_util::*;

#[derive(Clone, Copy, Debug)]
struct Case {
    loss_ppm: u64,
    reorder: bool,
    timestamps: bool,
    sack: bool,
    cc: CcAlgorithm,
    /// Send and receive buffers; small ones make the window the limit.
    buffer: usize,
    /// The receiver stops reading now and then, long enough for its window
    /// to close and the sender to probe.
    stalls: bool,
    /// A 20 Mbit/s bottleneck with a 40 KB queue, so the controller, not
    /// only the random loss, decides the pace.
    bottleneck: bool,
    /// The receiver sends data back, so data segments carry new ACKs.
    both_ways: bool,
    /// A send buffer four times the receive buffer, so the peer's window,
    /// not the send buffer, ends a burst.
    big_tx: bool,
    /// A→B is a whole number of full segments (with and without
    /// timestamps), so the FIN can ride on a full segment.
    whole_segments: bool,
    seed: u64,
}

/// What one run leaves behind.
struct Trace {
    frames: Vec<(Instant, Seg)>,
    stats: [ConnStats; 2],
    /// The table counters but the two that count prediction itself.
    tables: [TcpStats; 2],
    /// (data, ACKs) taken by prediction, at A and at B.
    predicted: [(u64, u64); 2],
    /// Segments sent as send-run continuations, both ends.
    runs: u64,
    received: [u64; 2],
}

const A_TO_B: u64 = 400_000;
const B_TO_A: u64 = 60_000;

fn run(c: Case, prediction: bool) -> Trace {
    let cfg = TcpConfig {
        timestamps: c.timestamps,
        sack: c.sack,
        cc: c.cc,
        rx_buffer: c.buffer,
        tx_buffer: if c.big_tx { 4 * c.buffer } else { c.buffer },
        ooo_max_bytes: c.buffer,
        header_prediction: prediction,
        send_runs: prediction,
        ..TcpConfig::default()
    };
    let link = Link {
        delay: Duration::from_millis(5),
        loss_ppm: c.loss_ppm,
        reorder_ppm: if c.reorder { 100_000 } else { 0 },
        reorder_jitter: Duration::from_millis(4),
        rate: if c.bottleneck { 2_500_000 } else { 0 },
        queue: 40_000,
        ..Link::default()
    };
    let mut net = Net::new(cfg.clone(), cfg, link, c.seed);
    net.capture = Some(Vec::new());
    let l = net.b.listen(sa(B, 80), 4).unwrap();
    let a = net.a.connect(net.now, sa(A, 0), sa(B, 80)).unwrap();
    let t0 = net.now;
    let mut b: Option<ConnHandle> = None;
    let mut sent = [0u64; 2];
    let mut got = [0u64; 2];
    let mut shut = [false; 2];
    // 528 520 = lcm(1460, 1448): both MSSs divide it.
    let a_to_b = if c.whole_segments { 528_520 } else { A_TO_B };
    let want = [a_to_b, if c.both_ways { B_TO_A } else { 0 }];
    let mut buf = vec![0u8; 16 * 1024];
    let end = t0 + Duration::from_secs(120);
    while net.now < end {
        if b.is_none() {
            b = net.b.accept(l).ok();
        }
        let stalled = c.stalls && {
            let ms = (net.now - t0).total_millis();
            ms % 400 >= 150
        };
        for (i, h) in [Some(a), b].into_iter().enumerate() {
            let Some(h) = h else { continue };
            let tcp = if i == 0 { &mut net.a } else { &mut net.b };
            // Only when there is room, as an application polling for
            // writability would.
            while sent[i] < want[i] && tcp.readiness(h).is_ok_and(|r| r.writable) {
                let n = (want[i] - sent[i]).min(buf.len() as u64) as usize;
                for (k, x) in buf[..n].iter_mut().enumerate() {
                    *x = pattern(i as u64, sent[i] + k as u64);
                }
                match tcp.send(h, &buf[..n]) {
                    Ok(k) if k > 0 => sent[i] += k as u64,
                    _ => break,
                }
            }
            let open = matches!(tcp.state(h), Ok(State::Established | State::CloseWait));
            // The receiver closes once it has everything, so it receives
            // in ESTABLISHED.
            let done = sent[i] == want[i] && (i == 0 || got[1] == want[0]);
            if done && !shut[i] && open {
                shut[i] = tcp.shutdown_write(h).is_ok();
            }
            // The receiver (B) stalls; A always reads.
            if i == 1 && stalled {
                continue;
            }
            while let Ok(k) = tcp.recv(h, &mut buf) {
                if k == 0 {
                    break;
                }
                for (j, x) in buf[..k].iter().enumerate() {
                    assert_eq!(*x, pattern(1 - i as u64, got[i] + j as u64), "{c:?}");
                }
                got[i] += k as u64;
            }
        }
        if got == [want[1], want[0]] && shut == [true, true] {
            break;
        }
        // The app loop runs again at least every 10 ms, so a stall ends.
        let tick = net.now + Duration::from_millis(10);
        advance(&mut net, tick);
    }
    assert_eq!(got, [want[1], want[0]], "transfer incomplete: {c:?}");
    // Let the closing handshake and the last ACKs finish.
    let until = net.now + Duration::from_secs(5);
    while net.now < until {
        advance(&mut net, until);
    }
    let b = b.unwrap();
    Trace {
        frames: net.capture.take().unwrap(),
        stats: [net.a.conn_stats(a).unwrap(), net.b.conn_stats(b).unwrap()],
        tables: [unpredicted(net.a.stats()), unpredicted(net.b.stats())],
        predicted: [net.a.stats(), net.b.stats()].map(|s| (s.predicted_data, s.predicted_acks)),
        runs: net.a.stats().run_segs + net.b.stats().run_segs,
        received: got,
    }
}

/// Runs the next event, or the clock to `limit`, as `Net::step` does: a
/// table still ready after a poll at the same instant is polled again, and
/// one that never stops being ready (sending nothing) fails the test. A
/// paced connection with a retransmission waiting for its pacing time once
/// did that.
fn advance(net: &mut Net, limit: Instant) {
    net.step(limit);
}

/// The table counters but the two that count header prediction itself.
fn unpredicted(s: &TcpStats) -> TcpStats {
    TcpStats {
        predicted_data: 0,
        predicted_acks: 0,
        run_segs: 0,
        ..s.clone()
    }
}

/// Runs `c` with and without the fast paths; returns what prediction took
/// with them on, (data, ACKs), both ends together, the zero-window probes
/// sent and the segments sent as run continuations.
fn check(c: Case) -> (u64, u64, u64, u64) {
    let off = run(c, false);
    let on = run(c, true);
    assert_eq!(off.predicted, [(0, 0); 2]);
    assert_eq!(off.runs, 0);
    assert_eq!(
        on.frames.len(),
        off.frames.len(),
        "frame count differs: {c:?}"
    );
    for (i, (x, y)) in on.frames.iter().zip(&off.frames).enumerate() {
        assert!(
            x.0 == y.0 && x.1.src == y.1.src && x.1.dst == y.1.dst && x.1.bytes == y.1.bytes,
            "frame {i} differs for {c:?}:\n with:    {:?} {:?}\n without: {:?} {:?}",
            x.0,
            x.1.repr(),
            y.0,
            y.1.repr()
        );
    }
    assert_eq!(on.stats, off.stats, "ConnStats differ: {c:?}");
    assert_eq!(on.tables, off.tables, "TcpStats differ: {c:?}");
    assert_eq!(on.received, off.received);
    let [a, b] = on.predicted;
    let probes = on.tables[0].zero_window_probes + on.tables[1].zero_window_probes;
    (a.0 + b.0, a.1 + b.1, probes, on.runs)
}

fn grid(cc: CcAlgorithm) {
    let mut seed = 11;
    let mut taken = (0, 0);
    let mut probes = 0;
    let mut runs = 0;
    for loss_ppm in [0, 10_000, 50_000] {
        for reorder in [false, true] {
            for timestamps in [true, false] {
                for buffer in [16 * 1024, 256 * 1024] {
                    for stalls in [false, true] {
                        // Two seeds, and with them the other knobs.
                        for _ in 0..2 {
                            seed += 1;
                            let c = Case {
                                loss_ppm,
                                reorder,
                                timestamps,
                                sack: seed % 3 != 0,
                                cc,
                                buffer,
                                stalls,
                                bottleneck: seed % 4 < 2,
                                both_ways: seed % 2 == 0,
                                big_tx: seed % 3 == 1,
                                whole_segments: seed % 5 < 2,
                                seed,
                            };
                            let (d, a, p, r) = check(c);
                            taken.0 += d;
                            taken.1 += a;
                            probes += p;
                            runs += r;
                        }
                    }
                }
            }
        }
    }
    // The comparison means something only if prediction was taken, both
    // kinds, many times.
    assert!(taken.0 > 5_000 && taken.1 > 1_000, "{cc:?}: {taken:?}");
    assert!(runs > 5_000, "{cc:?}: {runs} run segments");
    // And the stalls closed the window.
    assert!(probes > 0, "{cc:?}: no zero-window probe");
}

#[test]
fn same_frames_with_and_without_prediction_reno() {
    grid(CcAlgorithm::NewReno);
}

#[test]
fn same_frames_with_and_without_prediction_cubic() {
    grid(CcAlgorithm::Cubic);
}

#[test]
fn same_frames_with_and_without_prediction_bbr() {
    grid(CcAlgorithm::Bbr);
}

/// A clean one-way bulk transfer is almost all predicted segments: the
/// receiver's data and the sender's ACKs.
#[test]
fn prediction_takes_the_bulk_of_a_clean_transfer() {
    for timestamps in [true, false] {
        let c = Case {
            loss_ppm: 0,
            reorder: false,
            timestamps,
            sack: true,
            cc: CcAlgorithm::Cubic,
            // Below the bottleneck's queue: no drops.
            buffer: 32 * 1024,
            stalls: false,
            bottleneck: true,
            both_ways: false,
            big_tx: false,
            whole_segments: false,
            seed: 5,
        };
        let on = run(c, true);
        let (mut data, mut acks) = (0u64, 0u64);
        for (_, s) in &on.frames {
            let r = s.repr();
            if s.src == A && !r.payload.is_empty() {
                data += 1;
            } else if s.src == B && r.payload.is_empty() && !r.syn && !r.fin {
                acks += 1;
            }
        }
        let [a, b] = on.predicted;
        assert!(
            b.0 * 100 >= data * 95,
            "receiver predicted {} of {data} data segments",
            b.0
        );
        assert!(
            a.1 * 100 >= acks * 85,
            "sender predicted {} of {acks} ACKs",
            a.1
        );
    }
}

/// Two tables, prediction on and off, fed the same scripted peer: every
/// step must leave the same frames, counters and connection numbers. The
/// script aims at the edges of the prediction tests (old, equal and
/// missing timestamps, window changes, SACK blocks, URG, data that also
/// acknowledges, out-of-order and duplicate data, ACKs of nothing, of new
/// data and of data never sent, a full receive buffer).
struct Twin {
    raw: [Raw; 2],
    h: [Option<ConnHandle>; 2],
}

impl Twin {
    /// Feeds `r` to both and returns what both sent (the same, or a panic).
    fn inject(&mut self, r: &Repr<'_>, what: &str) -> Vec<Seg> {
        for t in &mut self.raw {
            t.inject(r);
        }
        self.compare(what)
    }

    fn compare(&mut self, what: &str) -> Vec<Seg> {
        let [a, b] = &mut self.raw;
        let (x, y) = (a.take(), b.take());
        assert_eq!(x.len(), y.len(), "after {what}: frame count");
        for (i, (p, q)) in x.iter().zip(&y).enumerate() {
            assert!(
                p.bytes == q.bytes,
                "after {what}: frame {i}\n with:    {:?}\n without: {:?}",
                p.repr(),
                q.repr()
            );
        }
        assert_eq!(
            unpredicted(a.tcp.stats()),
            unpredicted(b.tcp.stats()),
            "after {what}"
        );
        if let [Some(ha), Some(hb)] = self.h {
            assert_eq!(a.tcp.conn_stats(ha), b.tcp.conn_stats(hb), "after {what}");
            assert_eq!(a.tcp.state(ha), b.tcp.state(hb), "after {what}");
            assert_eq!(a.tcp.readiness(ha), b.tcp.readiness(hb), "after {what}");
        }
        x
    }

    fn both(&mut self, what: &str, mut f: impl FnMut(&mut Raw, ConnHandle)) -> Vec<Seg> {
        for (t, h) in self.raw.iter_mut().zip(self.h) {
            f(t, h.unwrap());
        }
        self.compare(what)
    }
}

fn scripted(seed: u64, timestamps: bool, sack: bool, wscale: bool) -> (u64, u64) {
    const PPORT: u16 = 5000;
    let cfg = |on| TcpConfig {
        timestamps,
        sack,
        window_scale: wscale,
        rx_buffer: 8 * 1460,
        tx_buffer: 32 * 1024,
        header_prediction: on,
        send_runs: on,
        ..TcpConfig::default()
    };
    let mut tw = Twin {
        raw: [Raw::new(cfg(true)), Raw::new(cfg(false))],
        h: [None; 2],
    };
    let mut rng = XorShift(seed * 2 + 1);
    let base = Repr {
        src_port: PPORT,
        dst_port: 80,
        ..Repr::default()
    };
    let ls = [0, 1].map(|i| tw.raw[i].tcp.listen(sa(US, 80), 8).unwrap());
    let mut tsval = 5000u32;
    let mut them = 7000u32;
    let syn = Repr {
        seq_number: seq(them),
        syn: true,
        window_len: 8192,
        max_seg_size: Some(1460),
        window_scale: wscale.then_some(2),
        sack_permitted: sack,
        timestamp: timestamps.then_some((tsval, 0)),
        ..base
    };
    let out = tw.inject(&syn, "SYN");
    let sa_ = out[0].repr();
    let mut tsecr = sa_.timestamp.map_or(0, |t| t.0);
    them += 1;
    let mut una = sa_.seq_number.0.wrapping_add(1);
    let mut high = una;
    let ack = Repr {
        seq_number: seq(them),
        ack_number: Some(seq(una)),
        window_len: 8192,
        timestamp: timestamps.then_some((tsval, tsecr)),
        ..base
    };
    tw.inject(&ack, "handshake ACK");
    tw.h = [0, 1].map(|i| Some(tw.raw[i].tcp.accept(ls[i]).unwrap()));

    let mut wnd = 8192u16;
    let mut acked_by_us = them;
    // Segments the peer "sent" but that the network holds back, and ones
    // it already delivered (for duplicates).
    let mut held: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut sent: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut buf = [0u8; 4096];
    for step in 0..3000 {
        let k = rng.next() % 100;
        let what = format!("step {step} (kind {k})");
        let out = if k < 15 {
            // The app writes; our data goes out at the next poll.
            let n = 1 + (rng.next() % 3000) as usize;
            let data: Vec<u8> = (0..n).map(|i| pattern(3, i as u64)).collect();
            tw.both(&what, |t, h| {
                let _ = t.tcp.send(h, &data);
                t.poll();
            })
        } else if k < 30 {
            tw.both(&what, |t, h| {
                let _ = t.tcp.recv(h, &mut buf[..1 + (step * 7919) % 4096]);
                t.poll();
            })
        } else if k < 35 {
            let d = Duration::from_millis(rng.next() % 300);
            tw.both(&what, |t, _| t.advance(d))
        } else if k < 42 && !held.is_empty() {
            // A held-back segment arrives late (out of order or filling).
            let (s, p) = held.remove(0);
            let r = Repr {
                seq_number: seq(s),
                ack_number: Some(seq(una)),
                window_len: wnd,
                timestamp: timestamps.then_some((tsval, tsecr)),
                payload: &p,
                ..base
            };
            let o = tw.inject(&r, &what);
            sent.push((s, p));
            o
        } else if k < 44 && !sent.is_empty() {
            let (s, p) = sent[(rng.next() as usize) % sent.len()].clone();
            let r = Repr {
                seq_number: seq(s),
                ack_number: Some(seq(una)),
                window_len: wnd,
                timestamp: timestamps.then_some((tsval, tsecr)),
                payload: &p,
                ..base
            };
            tw.inject(&r, &what)
        } else {
            // A new segment from the peer: data or a pure ACK, with one
            // of the header fields perturbed now and then. Like a sender
            // after a timeout, the peer goes back to what we acknowledged
            // now and then, so data we trimmed or lost comes again.
            if rng.next().is_multiple_of(4) {
                them = acked_by_us;
            }
            let len = if rng.next().is_multiple_of(2) {
                0
            } else {
                1 + (rng.next() % 1460) as usize
            };
            let payload: Vec<u8> = (0..len)
                .map(|i| pattern(4, (them as u64) + i as u64))
                .collect();
            // ACK: mostly what we sent, sometimes less, sometimes nothing
            // new, rarely more than was sent.
            let a = match rng.next() % 10 {
                0..=5 => high,
                6 => una.wrapping_add(
                    ((high.wrapping_sub(una)) / 2)
                        .max(1)
                        .min(high.wrapping_sub(una)),
                ),
                7 => high.wrapping_add(10),
                _ => una,
            };
            if rng.next().is_multiple_of(20) {
                wnd = [0, 1460, 4096, 8192, 8191][(rng.next() % 5) as usize];
            }
            tsval = tsval.wrapping_add((rng.next() % 3) as u32);
            let ts = match rng.next() % 20 {
                0 => None,
                1 => Some((tsval.wrapping_sub(10), tsecr)),
                _ => Some((tsval, tsecr)),
            };
            let mut sacks = [None; 4];
            if rng.next().is_multiple_of(10) {
                sacks[0] = Some((seq(una.wrapping_add(100)), seq(una.wrapping_add(900))));
            }
            let r = Repr {
                seq_number: seq(them),
                ack_number: Some(seq(a)),
                window_len: wnd,
                psh: rng.next().is_multiple_of(2),
                urgent_at: (rng.next().is_multiple_of(50)).then_some(1),
                timestamp: if timestamps { ts } else { None },
                sack_ranges: sacks,
                payload: &payload,
                ..base
            };
            if len > 0 && rng.next().is_multiple_of(25) {
                // Lost for now: the network holds it back.
                held.push((them, payload.clone()));
                them = them.wrapping_add(len as u32);
                Vec::new()
            } else {
                let o = tw.inject(&r, &what);
                if len > 0 {
                    sent.push((them, payload.clone()));
                    if sent.len() > 32 {
                        sent.remove(0);
                    }
                }
                them = them.wrapping_add(len as u32);
                if SeqNumber(a) > SeqNumber(una) && SeqNumber(a) <= SeqNumber(high) {
                    una = a;
                }
                o
            }
        };
        // What the peer learns from our answers.
        for s in &out {
            let r = s.repr();
            let end = r.seq_number.0.wrapping_add(r.payload.len() as u32);
            if SeqNumber(end) > SeqNumber(high) {
                high = end;
            }
            if let Some((v, _)) = r.timestamp {
                tsecr = v;
            }
            if let Some(a) = r.ack_number {
                acked_by_us = a.0;
            }
        }
    }
    let s = tw.raw[0].tcp.stats();
    (s.predicted_data, s.predicted_acks)
}

#[test]
fn scripted_peer_edges_agree_with_and_without_prediction() {
    let mut taken = (0, 0);
    for seed in 1..=12 {
        let (d, a) = scripted(seed, seed % 2 == 0, seed % 3 != 0, seed % 4 < 2);
        taken.0 += d;
        taken.1 += a;
    }
    assert!(taken.0 > 1_000 && taken.1 > 700, "{taken:?}");
}
