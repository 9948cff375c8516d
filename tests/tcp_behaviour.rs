//! RFC behaviour between two TCP tables over the simulated link, with
//! segments dropped on purpose by a filter. Each test quotes what it checks.

mod tcp_util;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::rc::Rc;

use ringstack::tcp::wire::Repr;
use ringstack::tcp::{ConnHandle, State, TcpConfig, TcpError};
use ringstack::time::{Duration, Instant};
use tcp_util::*;

fn cfg() -> TcpConfig {
    TcpConfig::default()
}

/// Times at which A sent data segments starting at `seq`.
fn sends_of(cap: &[(Instant, Seg)], from: Ipv4Addr) -> Vec<(Instant, u32, usize)> {
    cap.iter()
        .filter(|(_, s)| s.src == from)
        .map(|(t, s)| (*t, s.repr()))
        .filter(|(_, r)| !r.payload.is_empty())
        .map(|(t, r)| (t, r.seq_number.0, r.payload.len()))
        .collect()
}

/// Drops A's data segments for which `pred(n, seq)` holds, where `n` counts
/// the transmissions of that sequence number so far (0 = first).
fn drop_a_data(net: &mut Net, pred: impl Fn(u32, u32) -> bool + 'static) {
    let seen: Rc<RefCell<HashMap<u32, u32>>> = Default::default();
    net.filter = Some(Box::new(move |_, r: &Repr<'_>, src| {
        if src != A || r.payload.is_empty() {
            return true;
        }
        let mut m = seen.borrow_mut();
        let n = m.entry(r.seq_number.0).or_insert(0);
        let drop = pred(*n, r.seq_number.0);
        *n += 1;
        !drop
    }));
}

#[test]
fn rto_doubles_on_each_timeout_and_the_retry_limit_aborts() {
    // RFC 6298 §5.5: "The host MUST set RTO <- RTO * 2 ("back off the
    // timer")"; MUST-20 (R2): "when the number of transmissions of the same
    // segment reaches ... R2, close the connection" — reported as TimedOut.
    let mut ca = cfg();
    ca.data_retries = 6;
    let mut net = Net::new(ca, cfg(), link_ms(10), 1);
    let (c, _s) = open(&mut net);
    net.capture = Some(Vec::new());
    drop_a_data(&mut net, |_, _| true);
    net.a.send(c, b"into the void").unwrap();
    net.run_for(Duration::from_secs(600));
    let sends = sends_of(net.capture.as_ref().unwrap(), A);
    assert_eq!(sends.len(), 7, "original + 6 retransmissions");
    let gaps: Vec<u64> = sends
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).total_micros())
        .collect();
    for g in gaps.windows(2) {
        assert_eq!(g[1], 2 * g[0], "{gaps:?}");
    }
    assert_eq!(net.a.state(c), Ok(State::Closed));
    let mut b = [0u8; 1];
    assert_eq!(net.a.recv(c, &mut b), Err(TcpError::TimedOut));
    assert_eq!(net.a.stats().data_timeouts, 1);
}

#[test]
fn rto_backoff_is_capped_at_rto_max() {
    // RFC 6298 §2.5: "A maximum value MAY be placed on RTO provided it is at
    // least 60 seconds."
    let mut ca = cfg();
    ca.data_retries = 12;
    let mut net = Net::new(ca, cfg(), link_ms(10), 2);
    let (c, _s) = open(&mut net);
    net.capture = Some(Vec::new());
    drop_a_data(&mut net, |_, _| true);
    net.a.send(c, b"x").unwrap();
    net.run_for(Duration::from_secs(2000));
    let sends = sends_of(net.capture.as_ref().unwrap(), A);
    let last = (sends[sends.len() - 1].0 - sends[sends.len() - 2].0).total_millis();
    assert_eq!(last, 60_000);
}

#[test]
fn syn_retries_then_timed_out_and_connect_timeout() {
    // MUST-22/23: SYN retransmissions are handled like data, with their own
    // limit; the app may give up sooner (connect_timeout).
    let mut ca = cfg();
    ca.syn_retries = 3;
    let mut net = Net::new(ca, cfg(), link_ms(10), 3);
    net.capture = Some(Vec::new());
    net.filter = Some(Box::new(|_, _, _| false));
    let t0 = net.now;
    let c = net.a.connect(net.now, sa(A, 0), sa(B, 80)).unwrap();
    net.run_for(Duration::from_secs(100));
    let syns: Vec<u64> = net
        .capture
        .as_ref()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.repr().syn)
        .map(|(t, _)| (*t - t0).total_millis())
        .collect();
    // RFC 6298 §2.1: 1 s before any sample, doubling.
    assert_eq!(syns, vec![0, 1000, 3000, 7000]);
    let mut b = [0u8; 1];
    assert_eq!(net.a.recv(c, &mut b), Err(TcpError::TimedOut));
    assert_eq!(net.a.stats().attempt_fails, 1);

    let mut ca = cfg();
    ca.connect_timeout = Some(Duration::from_millis(2500));
    let mut net = Net::new(ca, cfg(), link_ms(10), 3);
    net.filter = Some(Box::new(|_, _, _| false));
    let c = net.a.connect(net.now, sa(A, 0), sa(B, 80)).unwrap();
    net.run_for(Duration::from_millis(2499));
    assert_eq!(net.a.state(c), Ok(State::SynSent));
    net.run_for(Duration::from_millis(2));
    assert_eq!(net.a.recv(c, &mut b), Err(TcpError::TimedOut));
}

#[test]
fn default_syn_retransmission_lasts_at_least_three_minutes() {
    // MUST-23: "R2 for a SYN segment MUST be set large enough to provide
    // retransmission of the segment for at least 3 minutes."
    let mut net = Net::new(TcpConfig::default(), cfg(), link_ms(10), 5);
    net.capture = Some(Vec::new());
    net.filter = Some(Box::new(|_, _, _| false));
    let t0 = net.now;
    let c = net.a.connect(net.now, sa(A, 0), sa(B, 80)).unwrap();
    net.run_for(Duration::from_secs(179));
    assert_eq!(
        net.a.state(c),
        Ok(State::SynSent),
        "still trying after 179 s"
    );
    net.run_for(Duration::from_secs(200));
    let last_syn = net
        .capture
        .as_ref()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.repr().syn)
        .map(|(t, _)| (*t - t0).total_millis())
        .max();
    assert!(last_syn >= Some(120_000), "last SYN at {last_syn:?} ms");
    let mut b = [0u8; 1];
    assert_eq!(net.a.recv(c, &mut b), Err(TcpError::TimedOut));
}

#[test]
fn karn_no_rtt_sample_from_a_retransmitted_segment() {
    // MUST-18 / RFC 6298 §3: "RTT samples MUST NOT be made using segments
    // that were retransmitted".
    let mut ca = cfg();
    ca.timestamps = false;
    let mut net = Net::new(ca.clone(), ca, link_ms(25), 4);
    let (c, _s) = open(&mut net);
    net.a.send(c, b"warm").unwrap();
    net.run_for(Duration::from_secs(1));
    let before = net.a.conn_stats(c).unwrap();
    drop_a_data(&mut net, |n, _| n == 0);
    net.a.send(c, b"dropped once").unwrap();
    net.run_for(Duration::from_secs(3));
    let after = net.a.conn_stats(c).unwrap();
    assert_eq!(after.rto_timeouts, 1);
    assert_eq!(after.bytes_acked, before.bytes_acked + 12);
    // A sample from the original would be RTO + RTT ≈ 250 ms.
    assert_eq!(after.srtt, before.srtt);
}

#[test]
fn every_ack_of_new_data_gives_an_rtt_sample_with_timestamps() {
    // RFC 7323 §4.1: "RTTM ... the TSecr value ... can be used to compute
    // an RTT sample" on every ACK that advances the left edge, not once
    // per window as Karn's timed segment. The TS clock starts at a random
    // offset per connection, so several connections cover offsets on both
    // sides of 2^31 (a wrap-unsafe comparison once lost half of them).
    for seed in 1..=12 {
        // A 10 Mbit/s bottleneck spaces the ACKs out: many per RTT.
        let link = Link {
            rate: 1_250_000,
            queue: 1 << 20,
            ..link_ms(5)
        };
        let mut net = Net::new(cfg(), cfg(), link, seed);
        let (c, s) = open(&mut net);
        send_and_drain(&mut net, c, s, 300_000);
        net.run_for(Duration::from_secs(1));
        let st = net.a.conn_stats(c).unwrap();
        // Every segment A received after the handshake is an ACK of data.
        assert!(
            st.rtt_samples + 2 >= st.segs_in,
            "seed {seed}: {} RTT samples from {} ACKs",
            st.rtt_samples,
            st.segs_in
        );
    }
}

fn bulk_setup(sack: bool, seed: u64) -> (Net, ConnHandle, ConnHandle) {
    let mut c = cfg();
    c.sack = sack;
    c.timestamps = false;
    c.delayed_ack = Duration::from_millis(40);
    let mut net = Net::new(c.clone(), c, link_ms(25), seed);
    let (a, b) = open(&mut net);
    net.capture = Some(Vec::new());
    (net, a, b)
}

/// Writes `total` bytes from A as the send ring takes them while B reads.
fn send_and_drain(net: &mut Net, c: ConnHandle, s: ConnHandle, total: usize) {
    let mut sent = 0;
    let mut got = 0;
    let chunk = vec![7u8; 65536];
    let mut buf = vec![0u8; 65536];
    assert!(net.run_until(Duration::from_secs(600), |n| {
        while sent < total {
            match n.a.send(c, &chunk[..(total - sent).min(chunk.len())]) {
                Ok(k) if k > 0 => sent += k,
                _ => break,
            }
        }
        while let Ok(k) = n.b.recv(s, &mut buf) {
            if k == 0 {
                break;
            }
            got += k;
        }
        got >= total
    }));
}

fn drain(net: &mut Net, s: ConnHandle, want: usize) {
    let mut got = 0;
    let mut buf = vec![0u8; 65536];
    assert!(net.run_until(Duration::from_secs(120), |n| {
        while let Ok(k) = n.b.recv(s, &mut buf) {
            if k == 0 {
                break;
            }
            got += k;
        }
        got >= want
    }));
}

#[test]
fn three_duplicate_acks_trigger_fast_retransmit_with_limited_transmit() {
    // RFC 5681 §3.2: "The fast retransmit algorithm uses the arrival of 3
    // duplicate ACKs ... as an indication that a segment has been lost";
    // RFC 3042: "a TCP sender SHOULD send a segment of previously unsent
    // data in response to each of the first two duplicate acknowledgments".
    let (mut net, c, s) = bulk_setup(false, 5);
    // A 10 Mbit/s bottleneck spaces the segments, so each duplicate ACK
    // arrives on its own.
    net.link.rate = 1_250_000;
    net.link.queue = 1 << 20;
    let first = Rc::new(RefCell::new(None::<u32>));
    let f2 = first.clone();
    drop_a_data(&mut net, move |n, seq| {
        let mut f = f2.borrow_mut();
        let base = *f.get_or_insert(seq);
        n == 0 && seq == base.wrapping_add(1460)
    });
    net.a.send(c, &vec![5u8; 40 * 1460]).unwrap();
    drain(&mut net, s, 40 * 1460);
    let st = net.a.conn_stats(c).unwrap();
    assert_eq!((st.fast_retransmits, st.rto_timeouts), (1, 0));
    let cap = net.capture.take().unwrap();
    let lost = first.borrow().unwrap().wrapping_add(1460);
    let rtx_at = cap
        .iter()
        .filter(|(_, s)| {
            s.src == A && s.repr().seq_number.0 == lost && !s.repr().payload.is_empty()
        })
        .nth(1)
        .map(|(t, _)| *t)
        .unwrap();
    let acks: Vec<Instant> = cap
        .iter()
        // ACKs that had reached A (one-way delay 25 ms) by then.
        .filter(|(t, s)| {
            s.src == B
                && *t + Duration::from_millis(25) <= rtx_at
                && s.repr().ack_number == Some(seq(lost))
        })
        .map(|(t, _)| *t)
        .collect();
    // One ACK that first reached `lost`, then exactly three duplicates.
    assert_eq!(acks.len(), 4);
    // Limited transmit: two new segments went out between the first
    // duplicate ACK's arrival and the retransmission.
    let first_dup = acks[1] + Duration::from_millis(25);
    let highest_before = cap
        .iter()
        .filter(|(t, s)| s.src == A && *t < first_dup && !s.repr().payload.is_empty())
        .map(|(_, s)| s.repr().seq_number.0.wrapping_sub(lost) as i32)
        .max()
        .unwrap();
    let new_between = cap
        .iter()
        .filter(|(t, s)| {
            s.src == A && *t >= first_dup && *t < rtx_at && !s.repr().payload.is_empty()
        })
        .filter(|(_, s)| s.repr().seq_number.0.wrapping_sub(lost) as i32 > highest_before)
        .count();
    assert_eq!(new_between, 2);
}

#[test]
fn newreno_partial_ack_retransmits_the_next_hole_without_a_timeout() {
    // RFC 6582 §3.2 step 5: "If this ACK does *not* acknowledge all of the
    // data up to and including recover, then this is a partial ACK. In this
    // case, retransmit the first unacknowledged segment." One reduction per
    // window: "exactly one ssthresh cut".
    let (mut net, c, s) = bulk_setup(false, 6);
    let first = Rc::new(RefCell::new(None::<u32>));
    let f2 = first.clone();
    drop_a_data(&mut net, move |n, seq| {
        let mut f = f2.borrow_mut();
        let base = *f.get_or_insert(seq);
        let k = seq.wrapping_sub(base) / 1460;
        n == 0 && (k == 2 || k == 5 || k == 7)
    });
    net.a.send(c, &vec![6u8; 30 * 1460]).unwrap();
    drain(&mut net, s, 30 * 1460);
    let st = net.a.conn_stats(c).unwrap();
    assert_eq!(st.rto_timeouts, 0, "{st:?}");
    assert_eq!(st.fast_retransmits, 1);
    assert_eq!(net.a.stats().newreno_recoveries, 1);
    assert_eq!(st.retransmits, 3);
}

#[test]
fn sack_recovery_retransmits_only_the_holes() {
    // RFC 6675 §4 NextSeg rule (1): retransmit sequence numbers that are
    // lost and not SACKed; SACKed data is never resent.
    let (mut net, c, s) = bulk_setup(true, 7);
    let first = Rc::new(RefCell::new(None::<u32>));
    let f2 = first.clone();
    drop_a_data(&mut net, move |n, seq| {
        let mut f = f2.borrow_mut();
        let base = *f.get_or_insert(seq);
        let k = seq.wrapping_sub(base) / 1460;
        n == 0 && (k == 2 || k == 5 || k == 8)
    });
    net.a.send(c, &vec![7u8; 40 * 1460]).unwrap();
    drain(&mut net, s, 40 * 1460);
    let st = net.a.conn_stats(c).unwrap();
    assert_eq!(st.rto_timeouts, 0, "{st:?}");
    assert_eq!(net.a.stats().sack_recoveries, 1);
    let base = first.borrow().unwrap();
    let sends = sends_of(net.capture.as_ref().unwrap(), A);
    let mut count: HashMap<u32, u32> = HashMap::new();
    for (_, sq, _) in &sends {
        *count.entry(sq.wrapping_sub(base) / 1460).or_default() += 1;
    }
    let resent: Vec<u32> = {
        let mut v: Vec<u32> = count
            .iter()
            .filter(|(_, &n)| n > 1)
            .map(|(&k, _)| k)
            .collect();
        v.sort();
        v
    };
    assert_eq!(resent, vec![2, 5, 8]);
    assert!(count.values().all(|&n| n <= 2));
}

#[test]
fn simultaneous_open_reaches_established() {
    // MUST-10 / RFC 9293 §3.5 Figure 8: "A TCP implementation MUST support
    // simultaneous open attempts".
    let mut net = Net::new(cfg(), cfg(), link_ms(20), 8);
    let a = net.a.connect(net.now, sa(A, 1111), sa(B, 2222)).unwrap();
    let b = net.b.connect(net.now, sa(B, 2222), sa(A, 1111)).unwrap();
    let mut saw_syn_received = false;
    assert!(net.run_until(Duration::from_secs(10), |n| {
        saw_syn_received |= n.a.state(a) == Ok(State::SynReceived);
        n.a.state(a) == Ok(State::Established) && n.b.state(b) == Ok(State::Established)
    }));
    assert!(saw_syn_received);
    net.a.send(a, b"hi").unwrap();
    let mut buf = [0u8; 4];
    assert!(net.run_until(Duration::from_secs(5), |n| n.b.recv(b, &mut buf) == Ok(2)));
}

#[test]
fn simultaneous_close_goes_through_closing_to_time_wait() {
    // RFC 9293 §3.6 Figure 13: both FINs cross; each side goes FIN-WAIT-1 →
    // CLOSING → TIME-WAIT.
    let mut net = Net::new(cfg(), cfg(), link_ms(20), 9);
    let (c, s) = open(&mut net);
    net.a.shutdown_write(c).unwrap();
    net.b.shutdown_write(s).unwrap();
    let mut closing = (false, false);
    assert!(net.run_until(Duration::from_secs(5), |n| {
        closing.0 |= n.a.state(c) == Ok(State::Closing);
        closing.1 |= n.b.state(s) == Ok(State::Closing);
        n.a.state(c) == Ok(State::TimeWait) && n.b.state(s) == Ok(State::TimeWait)
    }));
    assert_eq!(closing, (true, true));
}

#[test]
fn half_close_lets_data_flow_the_other_way() {
    // RFC 9293 §3.6: "the user who CLOSEs may continue to RECEIVE until the
    // TCP receiver is told that the remote side has CLOSED also"; MUST-12:
    // the FIN shows as end of stream.
    let mut net = Net::new(cfg(), cfg(), link_ms(20), 10);
    let (c, s) = open(&mut net);
    net.a.send(c, b"request").unwrap();
    net.a.shutdown_write(c).unwrap();
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    assert!(net.run_until(Duration::from_secs(5), |n| {
        match n.b.recv(s, &mut buf) {
            Ok(0) => true,
            Ok(k) => {
                got.extend_from_slice(&buf[..k]);
                false
            }
            _ => false,
        }
    }));
    assert_eq!(got, b"request");
    assert_eq!(net.b.state(s), Ok(State::CloseWait));
    assert_eq!(net.a.state(c), Ok(State::FinWait2));
    net.b.send(s, b"response after your FIN").unwrap();
    net.b.close(s).unwrap();
    let mut got = Vec::new();
    assert!(net.run_until(Duration::from_secs(5), |n| {
        match n.a.recv(c, &mut buf) {
            Ok(0) => true,
            Ok(k) => {
                got.extend_from_slice(&buf[..k]);
                false
            }
            _ => false,
        }
    }));
    assert_eq!(got, b"response after your FIN");
    assert_eq!(net.a.state(c), Ok(State::TimeWait));
}

#[test]
fn time_wait_lasts_2msl_and_answers_a_retransmitted_fin() {
    // MUST-13: "the TCP endpoint that initiated the close MUST remain in
    // TIME-WAIT for 2 MSL"; §3.10.7.4: "The only thing that can arrive in
    // this state is a retransmission of the remote FIN. Acknowledge it, and
    // restart the 2 MSL timeout."
    let mut ca = cfg();
    ca.time_wait = Duration::from_secs(10);
    let mut net = Net::new(ca, cfg(), link_ms(20), 11);
    let (c, s) = open(&mut net);
    net.a.shutdown_write(c).unwrap();
    let mut buf = [0u8; 4];
    assert!(net.run_until(Duration::from_secs(5), |n| n.b.recv(s, &mut buf) == Ok(0)));
    // Drop A's ACK of B's FIN once, so B retransmits its FIN.
    let dropped = Rc::new(RefCell::new(0));
    let d2 = dropped.clone();
    net.filter = Some(Box::new(move |_, r, src| {
        if src == A && *d2.borrow() == 0 && r.payload.is_empty() && !r.fin {
            *d2.borrow_mut() += 1;
            return false;
        }
        true
    }));
    net.b.close(s).unwrap();
    let mut tw_at = None;
    assert!(net.run_until(Duration::from_secs(5), |n| {
        if n.a.state(c) == Ok(State::TimeWait) && tw_at.is_none() {
            tw_at = Some(n.now);
        }
        n.b.connection_count() == 0
    }));
    let tw_at = tw_at.unwrap();
    assert_eq!(*dropped.borrow(), 1);
    // B's retransmitted FIN restarted A's timer: TIME-WAIT ends 10 s after
    // the re-ACK, not after entering it.
    let re_ack = net.now;
    assert!(re_ack > tw_at);
    net.run_until(Duration::from_secs(30), |n| {
        n.a.state(c) == Ok(State::Closed)
    });
    let ended = net.now;
    let lasted = ended - re_ack;
    assert!(
        lasted >= Duration::from_millis(9_900) && lasted <= Duration::from_secs(10),
        "{lasted:?}"
    );
}

#[test]
fn time_wait_is_reused_by_a_newer_syn_with_timestamps() {
    // RFC 6191 §2: a SYN "can be accepted" in TIME-WAIT when "the
    // timestamp is strictly greater than the most recent timestamp
    // recorded by the previous incarnation"; MAY-2.
    let mut net = Net::new(cfg(), cfg(), link_ms(5), 12);
    let l = net.b.listen(sa(B, 80), 16).unwrap();
    let c = net.a.connect(net.now, sa(A, 40000), sa(B, 80)).unwrap();
    let mut s = None;
    net.run_until(Duration::from_secs(5), |n| {
        s = s.or(n.b.accept(l).ok());
        s.is_some()
    });
    // B closes first: B is the one in TIME-WAIT.
    net.b.close(s.unwrap()).unwrap();
    let mut buf = [0u8; 1];
    net.run_until(Duration::from_secs(5), |n| n.a.recv(c, &mut buf) == Ok(0));
    net.a.close(c).unwrap();
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.b.connection_count(), 1, "B in TIME-WAIT");
    let c2 = net.a.connect(net.now, sa(A, 40000), sa(B, 80)).unwrap();
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.a.state(c2), Ok(State::Established));
    assert_eq!(net.b.stats().time_wait_reused, 1);
    assert!(net.b.accept(l).is_ok());
}

#[test]
fn syn_cookies_let_a_legit_client_in_during_a_flood() {
    // RFC 4987 §3.6: with the SYN queue full, answer with a cookie ISN and
    // build the connection from the returning ACK. Forged ACKs fail.
    let mut cb = cfg();
    cb.max_syn_backlog = 64;
    let mut net = Net::new(cfg(), cb, link_ms(10), 13);
    let l = net.b.listen(sa(B, 80), 128).unwrap();
    let mut rng = XorShift(99);
    let mut sent_back = 0;
    for i in 0..5000u32 {
        let src = Ipv4Addr::from(0x0a80_0000u32 | (rng.next() as u32 & 0xffff));
        let syn = Repr {
            src_port: 1024 + (i % 60000) as u16,
            dst_port: 80,
            seq_number: seq(rng.next() as u32),
            syn: true,
            window_len: 1000,
            max_seg_size: Some(1460),
            timestamp: Some((rng.next() as u32, 0)),
            sack_permitted: true,
            window_scale: Some(7),
            ..Repr::default()
        };
        net.b.process(net.now, src, B, &syn, &mut |_, _, _, _| {
            sent_back += 1;
            true
        });
    }
    assert_eq!(sent_back, 5000, "every SYN answered: queue or cookie");
    assert!(net.b.stats().syn_cookies_sent >= 5000 - 64);
    // A forged-ACK flood finds no valid cookie.
    for _ in 0..20_000 {
        let ack = Repr {
            src_port: 1024 + (rng.next() % 60000) as u16,
            dst_port: 80,
            seq_number: seq(rng.next() as u32),
            ack_number: Some(seq(rng.next() as u32)),
            window_len: 1000,
            ..Repr::default()
        };
        net.b.process(
            net.now,
            Ipv4Addr::new(10, 9, 9, 9),
            B,
            &ack,
            &mut |_, _, _, _| true,
        );
    }
    assert_eq!(net.b.stats().syn_cookies_ok, 0);
    // The legit client.
    let c = net.a.connect(net.now, sa(A, 0), sa(B, 80)).unwrap();
    let mut s = None;
    assert!(net.run_until(Duration::from_secs(10), |n| {
        s = s.or(n.b.accept(l).ok());
        s.is_some()
    }));
    let s = s.unwrap();
    assert_eq!(net.b.stats().syn_cookies_ok, 1);
    // Options survived in the timestamp: SACK and window scale.
    assert!(net.b.conn_stats(s).unwrap().snd_wnd > 65535);
    let data = vec![1u8; 300_000];
    let mut off = 0;
    let mut got = 0;
    let mut buf = vec![0u8; 65536];
    assert!(net.run_until(Duration::from_secs(30), |n| {
        if off < data.len() {
            off += n.a.send(c, &data[off..]).unwrap_or(0);
        }
        while let Ok(k) = n.b.recv(s, &mut buf) {
            if k == 0 {
                break;
            }
            got += k;
        }
        got == data.len()
    }));
}

#[test]
fn idle_connections_cost_nothing_per_poll() {
    // DESIGN.md: "100 000 idle connections must cost nothing per poll".
    let mut c = cfg();
    c.rx_buffer = 4096;
    c.tx_buffer = 4096;
    c.max_syn_backlog = 200_000;
    c.max_connections = 300_000;
    c.ephemeral_ports = (1024, 65535);
    let mut net = Net::new(c.clone(), c, link_ms(1), 14);
    let mut listeners = Vec::new();
    for p in 0..2u16 {
        listeners.push(net.b.listen(sa(B, 80 + p), 1 << 20).unwrap());
    }
    const N: usize = 100_000;
    for i in 0..N {
        net.a
            .connect(net.now, sa(A, 0), sa(B, 80 + (i % 2) as u16))
            .unwrap();
        if i % 1000 == 999 {
            net.run_for(Duration::from_millis(5));
        }
    }
    net.run_for(Duration::from_secs(5));
    let mut accepted = 0;
    for l in &listeners {
        while net.b.accept(*l).is_ok() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, N);
    assert_eq!(net.a.stats().curr_estab, N as u64);
    // Every timer has fired or been invalidated: nothing is scheduled.
    net.run_for(Duration::from_secs(5));
    assert_eq!(net.a.poll_at(), None);
    assert_eq!(net.b.poll_at(), None);
    assert_eq!(net.a.pending_timers() + net.b.pending_timers(), 0);
    let t = std::time::Instant::now();
    for _ in 0..10_000 {
        net.now += Duration::from_millis(1);
        net.a.poll(net.now, &mut |_, _, _, _| panic!("idle"));
    }
    // Generous even for a debug build on a loaded machine: a scan of 100k
    // connections per poll would take seconds here.
    assert!(
        t.elapsed() < std::time::Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn r1_reports_excessive_retransmission_before_r2_aborts() {
    // RFC 9293 §3.8.3: at R1 retransmissions of one segment, SHLD-9 "the
    // TCP implementation SHOULD ... inform the application of the delivery
    // problem" while the connection lives; at R2 it is closed (MUST-20).
    let mut ca = cfg();
    ca.data_retries = 6;
    let mut net = Net::new(ca, cfg(), link_ms(10), 4);
    let (c, _s) = open(&mut net);
    drop_a_data(&mut net, |_, _| true);
    net.a.send(c, b"lost").unwrap();
    let mut seen_soft = false;
    assert!(net.run_until(Duration::from_secs(600), |n| {
        let r = n.a.readiness(c).unwrap();
        if r.error == Some(TcpError::ExcessiveRetransmissions) {
            // SHLD-10: R1 is at least 3 retransmissions.
            assert!(n.a.conn_stats(c).unwrap().retransmits >= 3);
            assert_eq!(n.a.state(c), Ok(State::Established));
            seen_soft = true;
        }
        n.a.state(c) == Ok(State::Closed)
    }));
    assert!(seen_soft, "the app saw the R1 notice before the abort");
    assert_eq!(net.a.stats().r1_notices, 1);
    // The abort itself is a timeout, not the soft notice.
    assert_eq!(net.a.readiness(c).unwrap().error, Some(TcpError::TimedOut));
}

#[test]
fn r1_notice_clears_when_data_is_acknowledged_again() {
    let mut net = Net::new(cfg(), cfg(), link_ms(10), 6);
    let (c, _s) = open(&mut net);
    // Lose the first four transmissions of the segment, then let it through.
    drop_a_data(&mut net, |n, _| n < 4);
    net.a.send(c, b"eventually").unwrap();
    let mut soft = false;
    assert!(net.run_until(Duration::from_secs(120), |n| {
        soft |= n.a.readiness(c).unwrap().error == Some(TcpError::ExcessiveRetransmissions);
        n.a.conn_stats(c).unwrap().bytes_acked == 10
    }));
    assert!(soft);
    assert_eq!(net.a.readiness(c).unwrap().error, None);
    assert_eq!(net.a.state(c), Ok(State::Established));
}

#[test]
fn r2_is_set_per_connection_including_infinite() {
    // MUST-21: "An application MUST ... be able to set the value for R2 for
    // a particular connection"; None is "infinite".
    let mut net = Net::new(cfg(), cfg(), link_ms(10), 8);
    let (c, _s) = open(&mut net);
    net.a.set_retransmit_limit(c, Some(2)).unwrap();
    drop_a_data(&mut net, |_, _| true);
    net.a.send(c, b"x").unwrap();
    assert!(net.run_until(Duration::from_secs(60), |n| n.a.state(c)
        == Ok(State::Closed)));
    assert_eq!(net.a.conn_stats(c).unwrap().retransmits, 2);
    assert_eq!(net.a.readiness(c).unwrap().error, Some(TcpError::TimedOut));

    // The same black hole with no limit: still trying after six hours
    // (far past the default R2 of 15 retransmissions).
    let mut net = Net::new(cfg(), cfg(), link_ms(10), 9);
    let (c, _s) = open(&mut net);
    net.a.set_retransmit_limit(c, None).unwrap();
    drop_a_data(&mut net, |_, _| true);
    net.a.send(c, b"x").unwrap();
    net.run_for(Duration::from_secs(6 * 3600));
    assert_eq!(net.a.state(c), Ok(State::Established));
    assert!(net.a.conn_stats(c).unwrap().retransmits > 15);
}

#[test]
fn a_lost_retransmission_is_resent_without_waiting_for_the_timer() {
    // RFC 8985 §2: RACK marks a segment lost when one "sent
    // chronologically after" it has been delivered — which also catches a
    // retransmission lost again, where RFC 6675 alone can only wait for the
    // RTO. Segment 2 is lost twice; the data behind it keeps flowing.
    let (mut net, c, s) = bulk_setup(true, 11);
    let first = Rc::new(RefCell::new(None::<u32>));
    let f2 = first.clone();
    drop_a_data(&mut net, move |n, seq| {
        let mut f = f2.borrow_mut();
        let base = *f.get_or_insert(seq);
        seq.wrapping_sub(base) / 1460 == 2 && n < 2
    });
    send_and_drain(&mut net, c, s, 150 * 1460);
    let st = net.a.conn_stats(c).unwrap();
    assert_eq!(st.rto_timeouts, 0, "{st:?}");
    assert!(net.a.stats().rack_lost_retransmits >= 1);
    let base = first.borrow().unwrap();
    let sends = sends_of(net.capture.as_ref().unwrap(), A);
    let third = sends
        .iter()
        .filter(|(_, sq, _)| sq.wrapping_sub(base) / 1460 == 2)
        .count();
    assert_eq!(third, 3, "original, lost retransmission, RACK's resend");
}

#[test]
fn one_recovery_after_another_does_not_resend_what_is_in_flight() {
    // RFC 6675 §5 (4.2) retransmits "the first data segment presumed
    // dropped"; a retransmission of the previous recovery still on its way
    // is not. Losses spread over a long transfer make recoveries follow
    // each other; each lost segment must be resent exactly once.
    let (mut net, c, s) = bulk_setup(true, 12);
    let dropped = Rc::new(RefCell::new(0u64));
    let d2 = dropped.clone();
    let mut k = 0u64;
    net.filter = Some(Box::new(move |_, r: &Repr<'_>, src| {
        if src != A || r.payload.is_empty() {
            return true;
        }
        k += 1;
        // Every 37th data segment sent, first transmissions and
        // retransmissions alike.
        if k % 37 == 5 {
            *d2.borrow_mut() += 1;
            return false;
        }
        true
    }));
    send_and_drain(&mut net, c, s, 3000 * 1460);
    let st = net.a.stats();
    assert_eq!(st.rto_timeouts, 0, "{st:?}");
    assert!(st.sack_recoveries > 50);
    assert_eq!(
        st.retrans_segs,
        *dropped.borrow(),
        "one retransmission per lost segment"
    );
}

#[test]
fn a_receiver_holds_many_holes_at_once() {
    // SHLD-31: out-of-order data is queued — also with dozens of holes in
    // one large window (every third segment of 600 lost once).
    let mut c = cfg();
    c.rx_buffer = 4 << 20;
    c.tx_buffer = 4 << 20;
    c.ooo_max_bytes = 4 << 20;
    let mut net = Net::new(c.clone(), c, link_ms(25), 13);
    let (a, b) = open(&mut net);
    net.capture = Some(Vec::new());
    let first = Rc::new(RefCell::new(None::<u32>));
    let f2 = first.clone();
    // Let the window open first, then lose every third segment once.
    drop_a_data(&mut net, move |n, seq| {
        let mut f = f2.borrow_mut();
        let base = *f.get_or_insert(seq);
        let k = seq.wrapping_sub(base) / 1448;
        n == 0 && k > 300 && k < 900 && k % 3 == 0
    });
    send_and_drain(&mut net, a, b, 2000 * 1448);
    assert_eq!(net.b.stats().drop_ooo_full, 0, "every good segment kept");
}

#[test]
fn three_losses_in_one_recovery_cost_three_retransmissions() {
    // Segment A is lost, and so is its first retransmission; B, new data
    // sent during that recovery, is lost once. RACK (RFC 8985) finds A's
    // resend lost from the data sent after it, RFC 6675 finds B, and no
    // resend still on its way goes out again (RFC 6675 §5 (4.2) resends
    // "the first data segment presumed dropped"): three losses, three
    // retransmissions, no timeout.
    let (mut net, c, s) = bulk_setup(true, 14);
    let dropped = Rc::new(RefCell::new(0u64));
    let d2 = dropped.clone();
    let mut a_seq: Option<u32> = None;
    let mut a_sends = 0;
    let mut highest = 0u32;
    let mut b_armed = false;
    let mut b_done = false;
    let mut n_data = 0;
    net.filter = Some(Box::new(move |_, r: &Repr<'_>, src| {
        if src != A || r.payload.is_empty() {
            return true;
        }
        n_data += 1;
        let seq = r.seq_number.0;
        let new = seq.wrapping_sub(highest) as i32 > 0 || highest == 0;
        if new {
            highest = seq;
        }
        if a_seq.is_none() && n_data == 150 {
            a_seq = Some(seq);
        }
        if a_seq == Some(seq) {
            a_sends += 1;
            if a_sends <= 2 {
                if a_sends == 2 {
                    b_armed = true;
                }
                *d2.borrow_mut() += 1;
                return false;
            }
        } else if b_armed && !b_done && new {
            b_done = true;
            *d2.borrow_mut() += 1;
            return false;
        }
        true
    }));
    send_and_drain(&mut net, c, s, 1000 * 1460);
    let st = net.a.stats();
    assert_eq!(*dropped.borrow(), 3);
    assert_eq!(st.rto_timeouts, 0, "{st:?}");
    assert_eq!(st.retrans_segs, 3, "{st:?}");
    assert_eq!(st.rack_lost_retransmits, 1, "{st:?}");
}

#[test]
fn a_cookie_connection_keeps_the_peers_window_scale_and_a_monotonic_tsval() {
    // RFC 4987 §3.6 / RFC 7323: what the cookie carries must be the peer's
    // window scale (it scales every window the peer sends), and our TSval
    // must never step back (RFC 7323 §5.3: the peer's PAWS drops a segment
    // whose TSval is older than the last one it saw).
    let mut ca = cfg();
    ca.rx_buffer = 64 << 20; // a shift of 10, like Linux
    let mut cb = cfg();
    cb.max_syn_backlog = 0; // every SYN gets a cookie
    let mut net = Net::new(ca, cb, link_ms(10), 15);
    net.capture = Some(Vec::new());
    let l = net.b.listen(sa(B, 80), 16).unwrap();
    let c = net.a.connect(net.now, sa(A, 0), sa(B, 80)).unwrap();
    let mut s = None;
    assert!(net.run_until(Duration::from_secs(10), |n| {
        s = s.or(n.b.accept(l).ok());
        s.is_some()
    }));
    let s = s.unwrap();
    assert_eq!(net.b.stats().syn_cookies_ok, 1);
    // B reads A's window with A's shift: the whole 64 MB ring (the SYN's
    // window field, 65535, would be all B knew with the wrong shift).
    let a_wnd = net.a.conn_stats(c).unwrap().rcv_wnd;
    assert_eq!(net.b.conn_stats(s).unwrap().snd_wnd, a_wnd);
    // Data from B: every TSval at or after the SYN-ACK's.
    let data = vec![5u8; 100_000];
    net.b.send(s, &data).unwrap();
    let mut got = 0;
    let mut buf = vec![0u8; 65536];
    assert!(net.run_until(Duration::from_secs(10), |n| {
        while let Ok(k) = n.a.recv(c, &mut buf) {
            if k == 0 {
                break;
            }
            got += k;
        }
        got == data.len()
    }));
    assert_eq!(net.a.stats().paws_drops, 0);
    let tsvals: Vec<u32> = net
        .capture
        .as_ref()
        .unwrap()
        .iter()
        .filter(|(_, seg)| seg.src == B)
        .filter_map(|(_, seg)| seg.repr().timestamp.map(|t| t.0))
        .collect();
    for w in tsvals.windows(2) {
        assert!(
            (w[1].wrapping_sub(w[0]) as i32) >= 0,
            "TSval stepped back: {w:?}"
        );
    }
    assert_eq!(net.b.conn_stats(s).unwrap().rto_timeouts, 0);
}

#[test]
fn a_freed_connection_slot_reused_by_another_flow_is_not_found_by_the_old_tuple() {
    // The 4-tuple lookup remembers its last hit. A half-open connection
    // reset by its peer is freed; a SYN from another port takes its slot.
    // The old flow's next segment must find no connection (§3.10.7.2: an
    // ACK to LISTEN gets <SEQ=SEG.ACK><CTL=RST>), and the new flow's
    // segments must reach the new connection.
    let mut raw = Raw::new(cfg());
    let l = raw.tcp.listen(sa(US, 80), 16).unwrap();
    let syn = |sport: u16, isn: u32| Repr {
        src_port: sport,
        dst_port: 80,
        seq_number: seq(isn),
        syn: true,
        window_len: 65535,
        max_seg_size: Some(1460),
        ..Repr::default()
    };
    raw.inject(&syn(1000, 5000));
    let out = raw.take();
    assert_eq!(out.len(), 1);
    let iss1 = out[0].repr().seq_number;
    // RST in window: SYN-RECEIVED from a passive open returns to LISTEN and
    // the connection is freed.
    raw.inject(&Repr {
        src_port: 1000,
        dst_port: 80,
        seq_number: seq(5001),
        rst: true,
        ..Repr::default()
    });
    assert_eq!(raw.tcp.connection_count(), 0);
    raw.inject(&syn(2000, 9000));
    let out = raw.take();
    assert_eq!(out.len(), 1, "SYN-ACK to the second flow");
    let iss2 = out[0].repr().seq_number;
    assert_eq!(raw.tcp.connection_count(), 1);
    // The old flow's ACK of its SYN-ACK: no connection, so a reset.
    raw.inject(&Repr {
        src_port: 1000,
        dst_port: 80,
        seq_number: seq(5001),
        ack_number: Some(iss1 + 1),
        window_len: 65535,
        ..Repr::default()
    });
    let out = raw.take();
    assert_eq!(out.len(), 1);
    let r = out[0].repr();
    assert!(r.rst && r.dst_port == 1000 && r.seq_number == iss1 + 1);
    // The new flow completes its handshake on the reused slot.
    raw.inject(&Repr {
        src_port: 2000,
        dst_port: 80,
        seq_number: seq(9001),
        ack_number: Some(iss2 + 1),
        window_len: 65535,
        ..Repr::default()
    });
    assert!(raw.take().is_empty());
    let s = raw.tcp.accept(l).unwrap();
    assert_eq!(raw.tcp.state(s), Ok(State::Established));
    assert_eq!(raw.tcp.peer_addr(s), Ok(sa(PEER, 2000)));
}

/// A's data segments: (time, seq, length).
fn data_sends(net: &Net) -> Vec<(Instant, u32, usize)> {
    sends_of(net.capture.as_ref().unwrap(), A)
}

/// Opens a connection over `link`, the first `syn_losses` of A's SYNs
/// dropped, then writes `bytes` at once. Returns the data segments A sent
/// in the first half RTT after its first one (before any ACK of data can
/// be back).
fn first_flight(syn_losses: usize, link_delay_ms: u64) -> Vec<(Instant, u32, usize)> {
    let mut c = cfg();
    c.timestamps = false;
    let mut net = Net::new(c.clone(), c, link_ms(link_delay_ms), 3);
    let mut dropped = 0;
    net.filter = Some(Box::new(move |_, r, src| {
        if src == A && r.syn && dropped < syn_losses {
            dropped += 1;
            return false;
        }
        true
    }));
    let (a, b) = open(&mut net);
    net.capture = Some(Vec::new());
    net.a.send(a, &vec![1u8; 100_000]).unwrap();
    net.run_for(Duration::from_millis(link_delay_ms));
    let _ = b;
    let sends = data_sends(&net);
    let t0 = sends[0].0;
    sends
        .into_iter()
        .filter(|s| s.0 < t0 + Duration::from_millis(link_delay_ms))
        .collect()
}

#[test]
fn the_initial_window_is_ten_segments_and_one_after_repeated_syn_loss() {
    // RFC 6928 §2: "IW = min (10*MSS, max (2*MSS, 14600))"; and "if the
    // SYN or SYN/ACK is lost ... the initial window ... MUST be one
    // segment" only "after ... more than one" retransmission of the SYN
    // (§2: "TCP implementations ... use the initial window of 1 ... if
    // ... retransmitted more than once").
    let f = first_flight(0, 50);
    assert_eq!(f.len(), 10, "{f:?}");
    assert!(f.iter().map(|s| s.2).sum::<usize>() <= 14_600);
    assert_eq!(first_flight(1, 50).len(), 10);
    assert_eq!(first_flight(2, 50).len(), 1);
}

#[test]
fn close_with_unread_data_resets_instead_of_sending_fin() {
    // SHLD-3, RFC 9293 §3.6.1: "If such a TCP ... receives data after CLOSE
    // ... or has unread data pending at CLOSE, it SHOULD send a RST to
    // show that data was lost."
    let mut net = Net::new(cfg(), cfg(), link_ms(5), 5);
    let (a, b) = open(&mut net);
    net.a.send(a, b"never read").unwrap();
    net.run_for(Duration::from_millis(100));
    net.capture = Some(Vec::new());
    net.b.close(b).unwrap();
    net.run_for(Duration::from_millis(100));
    let from_b: Vec<_> = net
        .capture
        .as_ref()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.src == B)
        .map(|(_, s)| (s.repr().rst, s.repr().fin))
        .collect();
    assert_eq!(from_b, vec![(true, false)], "B's segments after close");
    let mut buf = [0u8; 4];
    assert_eq!(net.a.recv(a, &mut buf), Err(TcpError::ConnectionReset));
}

#[test]
fn keepalive_is_off_by_default_and_waits_two_hours_when_on() {
    // MUST-25: "This mechanism MUST default to off"; MUST-28: the interval
    // "MUST default to no less than two hours".
    let mut net = Net::new(cfg(), cfg(), link_ms(5), 6);
    let (a, _b) = open(&mut net);
    net.run_for(Duration::from_secs(3 * 3600));
    assert_eq!(net.a.stats().keepalive_probes, 0);
    net.a
        .set_keepalive(a, Some(ringstack::tcp::Keepalive::default()))
        .unwrap();
    net.run_for(Duration::from_secs(7199));
    assert_eq!(net.a.stats().keepalive_probes, 0, "a probe before 2 h");
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.a.stats().keepalive_probes, 1);
    assert_eq!(net.a.state(a), Ok(State::Established));
}

#[test]
fn a_syn_timeout_leaves_a_three_second_rto_for_the_data() {
    // RFC 6298 §5.7: "If the timer expires awaiting the ACK of a SYN
    // segment and the TCP implementation is using an RTO less than 3
    // seconds, the RTO MUST be re-initialized to 3 seconds when data
    // transmission begins".
    let mut c = cfg();
    c.timestamps = false; // no sample from the retransmitted SYN's ACK
    let mut net = Net::new(c.clone(), c, link_ms(5), 7);
    let mut first = true;
    net.filter = Some(Box::new(move |_, r, src| {
        if src == A && r.syn && first {
            first = false;
            return false;
        }
        true
    }));
    let (a, _b) = open(&mut net);
    let st = net.a.conn_stats(a).unwrap();
    assert_eq!(st.srtt, None, "Karn: no sample from a retransmitted SYN");
    assert_eq!(st.rto, Duration::from_secs(3));
}

#[test]
fn an_idle_connection_restarts_from_the_initial_window() {
    // RFC 5681 §4.1: "if ... the TCP has not received a segment for more
    // than one retransmission timeout ... cwnd is reduced to the value of
    // the restart window ... RW = min(IW, cwnd)".
    let mut c = cfg();
    c.timestamps = false;
    let mut net = Net::new(c.clone(), c, link_ms(20), 8);
    let (a, b) = open(&mut net);
    send_and_drain(&mut net, a, b, 2_000_000);
    net.run_for(Duration::from_secs(1));
    let smss = net.a.conn_stats(a).unwrap().snd_mss;
    assert!(net.a.conn_stats(a).unwrap().cwnd > 30 * smss);
    net.run_for(Duration::from_secs(5));
    net.capture = Some(Vec::new());
    net.a.send(a, &vec![2u8; 200_000]).unwrap();
    net.run_for(Duration::from_millis(20));
    let sends = data_sends(&net);
    let t0 = sends[0].0;
    let burst = sends
        .iter()
        .filter(|s| s.0 < t0 + Duration::from_millis(20))
        .count();
    assert_eq!(burst, 10, "segments in the first RTT after idle");
}

#[test]
fn the_advertised_right_edge_never_moves_left() {
    // SHLD-14, RFC 9293 §3.8.6: the receiver "SHOULD NOT shrink the window,
    // i.e., move the right window edge to the left". With window scaling
    // the edge is SEG.ACK + (SEG.WND << Rcv.Wind.Shift); a small, busy
    // receive buffer under loss makes the window move all the time.
    for seed in 1..=6 {
        let mut c = cfg();
        c.rx_buffer = 24 * 1024;
        let link = Link {
            loss_ppm: 20_000,
            ..link_ms(10)
        };
        let mut net = Net::new(c.clone(), c, link, seed);
        net.capture = Some(Vec::new());
        let (a, b) = open(&mut net);
        send_and_drain(&mut net, a, b, 600_000);
        let cap = net.capture.take().unwrap();
        let shift = cap
            .iter()
            .find(|(_, s)| s.src == B && s.repr().syn)
            .and_then(|(_, s)| s.repr().window_scale)
            .unwrap_or(0);
        let mut edge: Option<u32> = None;
        let mut checked = 0;
        for (_, s) in cap.iter().filter(|(_, s)| s.src == B) {
            let r = s.repr();
            let (Some(ack), false, false) = (r.ack_number, r.syn, r.rst) else {
                continue;
            };
            let right = ack.0.wrapping_add(u32::from(r.window_len) << shift);
            if let Some(e) = edge {
                assert!(
                    (right.wrapping_sub(e) as i32) >= 0,
                    "seed {seed}: right edge {right} after {e}"
                );
            }
            edge = Some(right);
            checked += 1;
        }
        assert!(checked > 50, "seed {seed}: only {checked} segments");
    }
}
