//! The machinery TCP runs for every congestion controller: pacing from
//! `poll_at` deadlines, delivery-rate samples, and the undo of a spurious
//! loss response. Two TCP tables over the simulated link (`tcp_util`).

mod tcp_util;

use ringstack::tcp::{CcAlgorithm, TcpConfig};
use ringstack::time::{Duration, Instant};
use tcp_util::*;

/// Departure times of A's data segments.
fn data_departures(net: &Net) -> Vec<Instant> {
    net.capture
        .as_ref()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.src == A && !s.repr().payload.is_empty())
        .map(|(t, _)| *t)
        .collect()
}

fn initial_window_departures(pace_all: bool) -> Vec<Instant> {
    let ca = TcpConfig {
        pace_all,
        ..TcpConfig::default()
    };
    let mut net = Net::new(ca, TcpConfig::default(), link_ms(50), 3);
    let (c, _s) = open(&mut net);
    net.capture = Some(Vec::new());
    // Ten full segments: exactly the RFC 6928 initial window.
    let mss = net.a.conn_stats(c).unwrap().snd_mss;
    net.a.send(c, &vec![7u8; 10 * mss]).unwrap();
    net.run_for(Duration::from_millis(99));
    data_departures(&net)
}

#[test]
fn unpaced_initial_window_leaves_in_one_burst() {
    let t = initial_window_departures(false);
    assert_eq!(t.len(), 10);
    assert!(t.iter().all(|&x| x == t[0]), "{t:?}");
}

#[test]
fn paced_initial_window_is_spread_over_the_rtt() {
    // Linux's tcp_update_pacing_rate: 2 x cwnd / SRTT in slow start. With
    // cwnd = 10 segments and SRTT = 100 ms that is one segment every 5 ms;
    // the burst allowance lets at most the first few go at once.
    let t = initial_window_departures(true);
    assert_eq!(t.len(), 10);
    let same_as_first = t.iter().filter(|&&x| x == t[0]).count();
    assert!(same_as_first <= 3, "burst of {same_as_first}: {t:?}");
    let span = t[9] - t[0];
    assert!(
        span >= Duration::from_millis(30) && span <= Duration::from_millis(50),
        "ten paced segments span {span}"
    );
    // No two later segments closer than the pacing gap allows (less a
    // microsecond of rounding).
    for w in t[3..].windows(2) {
        assert!(w[1] - w[0] >= Duration::from_micros(4_900), "{t:?}");
    }
}

#[test]
fn delivery_rate_sample_tracks_the_bottleneck() {
    // draft-cheng-iccrg-delivery-rate-estimation §2: the rate delivered
    // "over a time interval at least as long as the send and ACK phases"
    // reflects the bottleneck, not the sender's burst rate.
    let link = Link {
        delay: Duration::from_millis(10),
        rate: 1_250_000, // 10 Mbit/s
        queue: 64 * 1024,
        ..Link::default()
    };
    let mut net = Net::new(TcpConfig::default(), TcpConfig::default(), link, 5);
    let (c, s) = open(&mut net);
    let data = vec![1u8; 2_000_000];
    let mut sent = 0;
    let mut buf = vec![0u8; 65536];
    net.run_until(Duration::from_secs(10), |n| {
        while sent < data.len() {
            match n.a.send(c, &data[sent..]) {
                Ok(k) if k > 0 => sent += k,
                _ => break,
            }
        }
        while let Ok(k) = n.b.recv(s, &mut buf) {
            if k == 0 {
                break;
            }
        }
        n.a.conn_stats(c).unwrap().bytes_acked > 1_500_000
    });
    let st = net.a.conn_stats(c).unwrap();
    // Payload rate: the link counts 40 bytes more per segment than TCP
    // payload plus headers; about 1448 / (1448 + 32 + 20 + 40) of 1.25 MB/s.
    let expect = 1_250_000.0 * 1448.0 / 1540.0;
    let got = st.delivery_rate as f64;
    assert!(
        (got - expect).abs() / expect < 0.1,
        "delivery rate {got} vs bottleneck payload rate {expect}"
    );
    assert!(st.min_rtt.unwrap() >= Duration::from_millis(20));
}

#[test]
fn spurious_timeout_is_undone_by_eifel_detection() {
    // RFC 3522 §2: "if the value of the Timestamp Echo Reply field of the
    // acceptable ACK's Timestamps option is smaller than the value of
    // RetransmitTS, then ... the retransmission was spurious." A delay spike
    // longer than the RTO makes the timer fire although nothing was lost.
    let mut net = Net::new(TcpConfig::default(), TcpConfig::default(), link_ms(5), 9);
    let (c, s) = open(&mut net);
    let mut buf = vec![0u8; 65536];
    // Warm up: grow cwnd past the initial window, with a tight RTO.
    let block = vec![3u8; 400_000];
    let mut sent = 0;
    net.run_until(Duration::from_secs(20), |n| {
        while sent < block.len() {
            match n.a.send(c, &block[sent..]) {
                Ok(k) if k > 0 => sent += k,
                _ => break,
            }
        }
        while let Ok(k) = n.b.recv(s, &mut buf) {
            if k == 0 {
                break;
            }
        }
        n.a.conn_stats(c).unwrap().bytes_acked == block.len() as u64
    });
    let before = net.a.conn_stats(c).unwrap();
    assert_eq!(before.rto_timeouts, 0);
    // Now a 1.5 s spell in which the path's delay is 1 s each way, far over
    // the ~200 ms RTO: the timer fires (and backs off) while every copy
    // travels the same slow path, so the ACK of the originals comes first.
    net.link.delay = Duration::from_millis(1000);
    net.a.send(c, &[4u8; 20_000]).unwrap();
    net.run_for(Duration::from_millis(1500));
    net.link.delay = Duration::from_millis(5);
    let mut got = 0;
    net.run_until(Duration::from_secs(20), |n| {
        while let Ok(k) = n.b.recv(s, &mut buf) {
            if k == 0 {
                break;
            }
            got += k;
        }
        got == 20_000 && n.a.conn_stats(c).unwrap().bytes_acked == 420_000
    });
    let after = net.a.conn_stats(c).unwrap();
    assert!(after.rto_timeouts >= 1, "the spike fired the RTO");
    assert!(after.spurious_undos >= 1, "Eifel detected it: {after:?}");
    assert!(net.a.stats().spurious_undos >= 1);
    // The loss response was taken back: ssthresh is not left at the
    // halved flight (NewReno restores at least what the timeout took).
    assert!(
        after.ssthresh >= before.cwnd / 2 && after.ssthresh > 2 * after.snd_mss,
        "ssthresh {} after undo, cwnd before {}",
        after.ssthresh,
        before.cwnd
    );
}

#[test]
fn set_congestion_control_switches_a_live_connection() {
    let mut net = Net::new(TcpConfig::default(), TcpConfig::default(), link_ms(5), 2);
    let (c, _s) = open(&mut net);
    assert_eq!(net.a.conn_stats(c).unwrap().cc_name, "newreno");
    let cwnd = net.a.conn_stats(c).unwrap().cwnd;
    net.a.set_congestion_control(c, CcAlgorithm::Cubic).unwrap();
    let st = net.a.conn_stats(c).unwrap();
    assert_eq!(st.cc_name, "cubic");
    assert_eq!(st.cwnd, cwnd, "the new controller starts from the window");
    net.a.set_congestion_control(c, CcAlgorithm::Bbr).unwrap();
    let st = net.a.conn_stats(c).unwrap();
    assert_eq!(st.cc_name, "bbr");
    assert!(st.pacing_rate.is_some(), "BBR paces");
}
