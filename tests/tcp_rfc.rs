//! RFC behaviour against a scripted peer: each test injects hand-made
//! segments into one `Tcp` and checks what it emits. Each quotes the
//! sentence it checks.

mod tcp_util;

use ringstack::tcp::wire::Repr;
use ringstack::tcp::{ConnHandle, IcmpErrorKind, Keepalive, State, Tcp, TcpConfig, TcpError};
use ringstack::time::Duration;
use tcp_util::*;

const PPORT: u16 = 5000;

fn base_cfg() -> TcpConfig {
    TcpConfig {
        timestamps: false,
        sack: false,
        window_scale: false,
        ..TcpConfig::default()
    }
}

fn r(seq_: u32, ack: Option<u32>) -> Repr<'static> {
    Repr {
        src_port: PPORT,
        dst_port: 80,
        seq_number: seq(seq_),
        ack_number: ack.map(seq),
        window_len: 65535,
        ..Repr::default()
    }
}

/// A passive connection with the scripted peer: returns the handle, our
/// ISS+1 (what the peer acknowledges) and the peer's next sequence number.
struct Conn {
    raw: Raw,
    h: ConnHandle,
    /// Our next sequence number, as the peer sees it.
    us: u32,
    /// The peer's next sequence number.
    them: u32,
}

fn establish_with(cfg: TcpConfig, syn: Repr<'static>) -> Conn {
    let mut raw = Raw::new(cfg);
    let l = raw.tcp.listen(sa(US, 80), 8).unwrap();
    raw.inject(&syn);
    let out = raw.take();
    assert_eq!(out.len(), 1, "one SYN-ACK");
    let sa_ = out[0].repr();
    assert!(sa_.syn && sa_.ack_number == Some(syn.seq_number + 1));
    let us = sa_.seq_number.0.wrapping_add(1);
    let them = syn.seq_number.0.wrapping_add(1);
    raw.inject(&r(them, Some(us)));
    let h = raw.tcp.accept(l).unwrap();
    assert_eq!(raw.tcp.state(h), Ok(State::Established));
    raw.take();
    Conn { raw, h, us, them }
}

fn establish(cfg: TcpConfig) -> Conn {
    let syn = Repr {
        syn: true,
        max_seg_size: Some(1460),
        ..r(1000, None)
    };
    establish_with(cfg, syn)
}

fn data_segs(out: &[Seg]) -> Vec<(u32, usize)> {
    out.iter()
        .map(|s| s.repr())
        .filter(|r| !r.payload.is_empty())
        .map(|r| (r.seq_number.0, r.payload.len()))
        .collect()
}

#[test]
fn rst_to_closed_port_uses_both_forms() {
    // RFC 9293 §3.10.7.1: "If the ACK bit is off, sequence number zero is
    // used, <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>. If the ACK bit is
    // on, <SEQ=SEG.ACK><CTL=RST>".
    let mut raw = Raw::new(base_cfg());
    let syn = Repr {
        syn: true,
        payload: b"abc",
        ..r(7000, None)
    };
    raw.inject(&syn);
    let out = raw.take();
    let rst = out[0].repr();
    assert!(rst.rst);
    assert_eq!(rst.seq_number, seq(0));
    assert_eq!(rst.ack_number, Some(seq(7000 + 4)));
    raw.inject(&r(7000, Some(4242)));
    let rst_out = raw.take();
    let rst = rst_out[0].repr();
    let rst_seq = rst.seq_number;
    assert!(rst.rst && rst.ack_number.is_none());
    assert_eq!(rst_seq, seq(4242));
    // "An incoming segment containing a RST is discarded."
    raw.inject(&Repr {
        rst: true,
        ..r(1, None)
    });
    assert!(raw.take().is_empty());
    assert_eq!(raw.tcp.stats().out_rsts, 2);
}

#[test]
fn listener_answers_an_ack_with_a_reset() {
    // §3.10.7.2: "Any acknowledgment is bad if it arrives on a connection
    // still in the LISTEN state. An acceptable reset segment should be
    // formed for any arriving ACK-bearing segment ... <SEQ=SEG.ACK><CTL=RST>".
    let mut raw = Raw::new(base_cfg());
    raw.tcp.listen(sa(US, 80), 8).unwrap();
    raw.inject(&r(5, Some(999)));
    let rst = raw.take();
    assert!(rst[0].repr().rst && rst[0].repr().seq_number == seq(999));
    // "An incoming RST should be ignored."
    raw.inject(&Repr {
        rst: true,
        ..r(5, None)
    });
    assert!(raw.take().is_empty());
}

#[test]
fn syn_without_mss_option_means_536() {
    // MUST-15: "If an MSS Option is not received at connection setup, TCP
    // implementations MUST assume a default send MSS of 536".
    let syn = Repr {
        syn: true,
        ..r(1000, None)
    };
    let mut c = establish_with(base_cfg(), syn);
    c.raw.tcp.set_nodelay(c.h, true).unwrap();
    c.raw.tcp.send(c.h, &[1u8; 3000]).unwrap();
    c.raw.poll();
    let segs = data_segs(&c.raw.take());
    assert!(!segs.is_empty());
    assert!(segs.iter().all(|&(_, n)| n <= 536), "{segs:?}");
    assert_eq!(segs[0].1, 536);
}

#[test]
fn mss_is_clamped_to_the_peers_and_ours_is_on_every_syn() {
    // MUST-14: "TCP endpoints MUST implement both sending and receiving
    // the MSS Option"; SHLD-5 / MAY-3: MSS on every SYN.
    let mut cfg = base_cfg();
    cfg.mss = 1400;
    let syn = Repr {
        syn: true,
        max_seg_size: Some(1000),
        ..r(1000, None)
    };
    let mut raw = Raw::new(cfg.clone());
    raw.tcp.listen(sa(US, 80), 8).unwrap();
    raw.inject(&syn);
    assert_eq!(raw.take()[0].repr().max_seg_size, Some(1400));
    let mut c = establish_with(cfg, syn);
    c.raw.tcp.send(c.h, &[1u8; 5000]).unwrap();
    c.raw.poll();
    let out = c.raw.take();
    let segs = data_segs(&out);
    assert_eq!(segs[0].1, 1000);
    // MUST-65: "MUST NOT send [MSS] in other segments" than SYN.
    assert!(out.iter().all(|s| s.repr().max_seg_size.is_none()));
}

#[test]
fn segment_outside_the_window_gets_an_ack_not_processing() {
    // §3.10.7.4: "If an incoming segment is not acceptable, an
    // acknowledgment should be sent in reply ... <SEQ=SND.NXT><ACK=RCV.NXT>
    // <CTL=ACK> ... After sending the acknowledgment, drop the unacceptable
    // segment and return."
    let mut c = establish(base_cfg());
    let far = c.them.wrapping_add(10_000_000);
    c.raw.inject(&Repr {
        payload: b"junk",
        ..r(far, Some(c.us))
    });
    c.raw.poll();
    let out = c.raw.take();
    assert_eq!(out.len(), 1);
    let a = out[0].repr();
    assert_eq!(a.ack_number, Some(seq(c.them)));
    assert_eq!(a.seq_number, seq(c.us));
    let mut buf = [0u8; 8];
    assert_eq!(c.raw.tcp.recv(c.h, &mut buf), Err(TcpError::WouldBlock));
    // An old duplicate below RCV.NXT too.
    c.raw.inject(&Repr {
        payload: b"old",
        ..r(c.them.wrapping_sub(3), Some(c.us))
    });
    c.raw.poll();
    assert_eq!(c.raw.take().len(), 1);
}

#[test]
fn rst_exactly_at_rcv_nxt_resets_and_in_window_rst_gets_a_challenge_ack() {
    // RFC 5961 §3.2: "If the RST bit is set and the sequence number exactly
    // matches the next expected sequence number (RCV.NXT), then TCP MUST
    // reset the connection. ... If the RST bit is set and the sequence
    // number does not exactly match ... but is within the current receive
    // window ... TCP MUST send an acknowledgment (challenge ACK)".
    let mut c = establish(base_cfg());
    c.raw.inject(&Repr {
        rst: true,
        ..r(c.them.wrapping_add(100), None)
    });
    let out = c.raw.take();
    assert_eq!(out.len(), 1);
    let a = out[0].repr();
    assert!(!a.rst && a.ack_number == Some(seq(c.them)) && a.seq_number == seq(c.us));
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::Established));
    assert_eq!(c.raw.tcp.stats().challenge_acks, 1);
    // Out of window: silently dropped.
    c.raw.inject(&Repr {
        rst: true,
        ..r(c.them.wrapping_add(1 << 30), None)
    });
    assert!(c.raw.take().is_empty());
    // Exact: reset, reported as ConnectionReset (MUST-12).
    c.raw.inject(&Repr {
        rst: true,
        payload: b"diagnostic", // SHLD-2: RSTs with data are accepted
        ..r(c.them, None)
    });
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::Closed));
    let mut buf = [0u8; 4];
    assert_eq!(
        c.raw.tcp.recv(c.h, &mut buf),
        Err(TcpError::ConnectionReset)
    );
}

#[test]
fn syn_on_an_established_connection_gets_a_challenge_ack() {
    // RFC 5961 §4.2: "If the SYN bit is set, irrespective of the sequence
    // number, TCP MUST send an ACK (also referred to as challenge ACK) to
    // the remote peer ... After sending the acknowledgment, TCP MUST drop
    // the unacceptable segment".
    let mut c = establish(base_cfg());
    for s in [c.them, c.them.wrapping_add(5), c.them.wrapping_sub(5)] {
        c.raw.inject(&Repr {
            syn: true,
            ..r(s, None)
        });
        let out = c.raw.take();
        assert_eq!(out.len(), 1);
        assert!(!out[0].repr().rst && !out[0].repr().syn);
        assert_eq!(c.raw.tcp.state(c.h), Ok(State::Established));
    }
}

#[test]
fn challenge_acks_are_rate_limited_per_connection() {
    // RFC 5961 §7: "An implementation SHOULD include a ACK throttling
    // mechanism".
    let mut cfg = base_cfg();
    cfg.challenge_ack_limit = 5;
    let mut c = establish(cfg);
    for i in 0..50 {
        c.raw.inject(&Repr {
            rst: true,
            ..r(c.them.wrapping_add(10 + i), None)
        });
    }
    assert_eq!(c.raw.take().len(), 5);
    assert_eq!(c.raw.tcp.stats().challenge_acks_suppressed, 45);
    c.raw.advance(Duration::from_secs(1));
    c.raw.inject(&Repr {
        rst: true,
        ..r(c.them.wrapping_add(10), None)
    });
    assert_eq!(c.raw.take().len(), 1);
}

#[test]
fn ack_of_unsent_data_or_too_old_is_dropped_and_acked() {
    // RFC 5961 §5.2: "All incoming segments whose ACK value doesn't satisfy
    // the above condition MUST be discarded and an ACK sent back."
    let mut c = establish(base_cfg());
    c.raw.inject(&Repr {
        payload: b"evil",
        ..r(c.them, Some(c.us.wrapping_add(100)))
    });
    assert_eq!(c.raw.take().len(), 1);
    let mut buf = [0u8; 8];
    assert_eq!(c.raw.tcp.recv(c.h, &mut buf), Err(TcpError::WouldBlock));
    c.raw.inject(&Repr {
        payload: b"evil",
        ..r(c.them, Some(c.us.wrapping_sub(1 << 20)))
    });
    assert_eq!(c.raw.take().len(), 1);
    assert_eq!(c.raw.tcp.recv(c.h, &mut buf), Err(TcpError::WouldBlock));
    assert_eq!(c.raw.tcp.stats().drop_bad_ack, 2);
}

#[test]
fn paws_drops_a_segment_with_an_old_timestamp() {
    // RFC 7323 §5.3 R1: "If there is a Timestamps option in the arriving
    // segment, SEG.TSval < TS.Recent, TS.Recent is valid ..., and the RST
    // bit is not set, then treat the arriving segment as not acceptable:
    // Send an acknowledgment in reply ... and drop the segment."
    let mut cfg = base_cfg();
    cfg.timestamps = true;
    let syn = Repr {
        syn: true,
        timestamp: Some((1000, 0)),
        ..r(1000, None)
    };
    let mut raw = Raw::new(cfg);
    let l = raw.tcp.listen(sa(US, 80), 8).unwrap();
    raw.inject(&syn);
    let synack_out = raw.take();
    let sa_ = synack_out[0].repr();
    let (tsval, tsecr) = sa_.timestamp.unwrap();
    assert_eq!(tsecr, 1000);
    let us = sa_.seq_number.0 + 1;
    raw.inject(&Repr {
        timestamp: Some((1001, tsval)),
        ..r(1001, Some(us))
    });
    let h = raw.tcp.accept(l).unwrap();
    raw.inject(&Repr {
        timestamp: Some((1005, tsval)),
        payload: b"new",
        ..r(1001, Some(us))
    });
    raw.inject(&Repr {
        timestamp: Some((900, tsval)),
        payload: b"old",
        ..r(1004, Some(us))
    });
    assert_eq!(raw.tcp.stats().paws_drops, 1);
    let mut buf = [0u8; 8];
    assert_eq!(raw.tcp.recv(h, &mut buf), Ok(3));
    assert_eq!(&buf[..3], b"new");
    // "Once TSopt has been successfully negotiated ... a non-<RST> segment
    // without a TSopt SHOULD be silently dropped" (RFC 7323 §3.2).
    raw.take();
    raw.inject(&Repr {
        payload: b"nots",
        ..r(1004, Some(us))
    });
    assert!(raw.take().is_empty());
    assert_eq!(raw.tcp.stats().drop_no_timestamp, 1);
}

#[test]
fn window_scale_applies_only_after_the_syn() {
    // RFC 7323 §2.2: "The Window field in a segment where the SYN bit is set
    // (i.e., a <SYN> or <SYN,ACK>) MUST NOT be scaled."
    let mut cfg = base_cfg();
    cfg.window_scale = true;
    cfg.rx_buffer = 1 << 20;
    let syn = Repr {
        syn: true,
        window_scale: Some(2),
        window_len: 1000,
        ..r(1000, None)
    };
    let mut raw = Raw::new(cfg.clone());
    raw.tcp.listen(sa(US, 80), 8).unwrap();
    raw.inject(&syn);
    let synack_out = raw.take();
    let sa_ = synack_out[0].repr();
    assert_eq!(sa_.window_scale, Some(5)); // 1 MiB >> 5 fits 16 bits
    assert_eq!(sa_.window_len, 65535); // unscaled in the SYN-ACK
    let mut c = establish_with(cfg, syn);
    // The ACK said 65535 << 2; our data flow is limited by cwnd (10 MSS),
    // not by a 65535-byte unscaled reading.
    assert_eq!(c.raw.tcp.conn_stats(c.h).unwrap().snd_wnd, 65535 << 2);
    c.raw.poll();
    let a = c.raw.take();
    let _ = a;
    // Our later segments carry the scaled window: 1 MiB >> 5.
    c.raw.inject(&Repr {
        payload: b"x",
        ..r(c.them, Some(c.us))
    });
    c.raw.advance(Duration::from_millis(100));
    let ack = c.raw.take().pop().unwrap();
    assert_eq!(ack.repr().window_len as usize, ((1 << 20) - 1) >> 5);
}

#[test]
fn nagle_holds_small_segments_until_the_ack() {
    // RFC 9293 §3.7.4 (SHLD-7): "If there is unacknowledged data (i.e.,
    // SND.NXT > SND.UNA), then the sending TCP endpoint buffers all user
    // data ... until the outstanding data has been acknowledged or until
    // the TCP endpoint can send a full-sized segment".
    let mut c = establish(base_cfg());
    c.raw.tcp.send(c.h, b"a").unwrap();
    c.raw.poll();
    assert_eq!(data_segs(&c.raw.take()), vec![(c.us, 1)]);
    c.raw.tcp.send(c.h, b"b").unwrap();
    c.raw.tcp.send(c.h, b"c").unwrap();
    c.raw.poll();
    assert!(data_segs(&c.raw.take()).is_empty(), "held by Nagle");
    c.raw.inject(&r(c.them, Some(c.us + 1)));
    c.raw.poll();
    // Both small writes go in one segment (SHLD-27, MAY-16).
    assert_eq!(data_segs(&c.raw.take()), vec![(c.us + 1, 2)]);
}

#[test]
fn nodelay_sends_each_small_write_at_once() {
    // MUST-17: "A TCP implementation MUST include a way for an application
    // to disable the Nagle algorithm on an individual connection".
    let mut c = establish(base_cfg());
    c.raw.tcp.set_nodelay(c.h, true).unwrap();
    for (i, b) in [b"a", b"b", b"c"].into_iter().enumerate() {
        c.raw.tcp.send(c.h, b).unwrap();
        c.raw.poll();
        let out = c.raw.take();
        assert_eq!(data_segs(&out), vec![(c.us + i as u32, 1)]);
        // MUST-61: PSH on the segment that empties the send queue.
        assert!(out[0].repr().psh);
    }
}

#[test]
fn delayed_ack_waits_for_the_timer_and_acks_every_second_full_segment() {
    // SHLD-18/19, MUST-40: "an ACK should be generated for at least every
    // second full-sized segment, and MUST be generated within 500 ms of the
    // arrival of the first unacknowledged packet".
    let mut cfg = base_cfg();
    cfg.delayed_ack = Duration::from_millis(40);
    let mut c = establish(cfg);
    c.raw.inject(&Repr {
        payload: &[1; 100],
        ..r(c.them, Some(c.us))
    });
    c.raw.poll();
    assert!(c.raw.take().is_empty(), "ACK delayed");
    c.raw.advance(Duration::from_millis(39));
    assert!(c.raw.take().is_empty());
    c.raw.advance(Duration::from_millis(1));
    let out = c.raw.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].repr().ack_number, Some(seq(c.them + 100)));
    // Two full-sized segments: an ACK at once.
    let big = [2u8; 1460];
    c.raw.inject(&Repr {
        payload: &big,
        ..r(c.them + 100, Some(c.us))
    });
    c.raw.inject(&Repr {
        payload: &big,
        ..r(c.them + 1560, Some(c.us))
    });
    c.raw.poll();
    let out = c.raw.take();
    // MUST-58/59: both processed before one ACK.
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].repr().ack_number, Some(seq(c.them + 3020)));
}

#[test]
fn delayed_acks_of_flows_interleaved_in_one_batch_all_go_out() {
    // MUST-40: an ACK "MUST be generated within 500 ms of the arrival of
    // the first unacknowledged packet", for every connection. The table
    // settles a flow's timers once per run of its segments; segments of
    // three flows arriving interleaved before one poll must each arm
    // their connection's delayed-ACK timer, none left unsettled.
    let mut cfg = base_cfg();
    cfg.delayed_ack = Duration::from_millis(40);
    let mut raw = Raw::new(cfg);
    let l = raw.tcp.listen(sa(US, 80), 8).unwrap();
    let ports = [5000u16, 5001, 5002];
    let mut conns = Vec::new();
    for &port in &ports {
        let at = |seq_: u32, ack: Option<u32>| Repr {
            src_port: port,
            ..r(seq_, ack)
        };
        raw.inject(&Repr {
            syn: true,
            max_seg_size: Some(1460),
            ..at(1000, None)
        });
        let out = raw.take();
        let us = out[0].repr().seq_number.0.wrapping_add(1);
        raw.inject(&at(1001, Some(us)));
        let h = raw.tcp.accept(l).unwrap();
        assert_eq!(raw.tcp.state(h), Ok(State::Established));
        conns.push((port, us));
    }
    // Nothing left to send: no poll below settles a flow by sending.
    raw.poll();
    raw.take();
    // A, B, A, C: each switch of flow settles the one before, and the
    // poll settles the last.
    let mut sent = [0u32; 3];
    for i in [0usize, 1, 0, 2] {
        let (port, us) = conns[i];
        raw.inject(&Repr {
            src_port: port,
            payload: &[7; 100],
            ..r(1001 + sent[i], Some(us))
        });
        sent[i] += 100;
    }
    raw.poll();
    assert!(raw.take().is_empty(), "ACKs delayed");
    raw.advance(Duration::from_millis(40));
    let mut acked: Vec<(u16, u32)> = raw
        .take()
        .iter()
        .map(|s| s.repr())
        .map(|r| (r.dst_port, r.ack_number.unwrap().0))
        .collect();
    acked.sort();
    let want: Vec<(u16, u32)> = (0..3).map(|i| (ports[i], 1001 + sent[i])).collect();
    assert_eq!(acked, want, "one delayed ACK per flow, each complete");
}

#[test]
fn out_of_order_segment_gets_an_immediate_duplicate_ack_and_is_kept() {
    // RFC 5681 §4.2: "A TCP receiver SHOULD send an immediate duplicate ACK
    // when an out-of-order segment arrives" and "an immediate ACK ... when
    // the segment fills in all or part of a gap"; SHLD-31: hold it.
    let mut cfg = base_cfg();
    cfg.sack = true;
    let syn = Repr {
        syn: true,
        sack_permitted: true,
        ..r(1000, None)
    };
    let mut c = establish_with(cfg, syn);
    c.raw.inject(&Repr {
        payload: b"world",
        ..r(c.them + 5, Some(c.us))
    });
    c.raw.poll();
    let out = c.raw.take();
    assert_eq!(out.len(), 1);
    let a = out[0].repr();
    assert_eq!(a.ack_number, Some(seq(c.them)));
    // RFC 2018: the block covering the segment that triggered the ACK.
    assert_eq!(a.sack_ranges[0], Some((seq(c.them + 5), seq(c.them + 10))));
    c.raw.inject(&Repr {
        payload: b"hello",
        ..r(c.them, Some(c.us))
    });
    c.raw.poll();
    let out = c.raw.take();
    assert_eq!(out.len(), 1, "gap filled: immediate ACK");
    assert_eq!(out[0].repr().ack_number, Some(seq(c.them + 10)));
    let mut buf = [0u8; 16];
    assert_eq!(c.raw.tcp.recv(c.h, &mut buf), Ok(10));
    assert_eq!(&buf[..10], b"helloworld");
}

#[test]
fn persist_probe_reopens_a_zero_window() {
    // MUST-36: "the sending TCP peer must regularly transmit at least one
    // octet of new data (if available) ... even if the send window is zero";
    // SHLD-29: the first probe after one RTO; SHLD-30: backoff.
    let mut c = establish(base_cfg());
    c.raw.tcp.set_nodelay(c.h, true).unwrap();
    c.raw.inject(&Repr {
        window_len: 0,
        ..r(c.them, Some(c.us))
    });
    c.raw.tcp.send(c.h, b"payload").unwrap();
    c.raw.poll();
    assert!(
        data_segs(&c.raw.take()).is_empty(),
        "zero window: nothing sent"
    );
    let mut probes = Vec::new();
    let t0 = c.raw.now;
    for _ in 0..4 {
        for _ in 0..20_000 {
            if !data_segs(&c.raw.out).is_empty() {
                break;
            }
            c.raw.advance(Duration::from_millis(10));
        }
        let out = c.raw.take();
        let d = data_segs(&out);
        assert_eq!(d, vec![(c.us, 1)], "one-octet probe");
        probes.push(c.raw.now - t0);
        // The peer still has no room: ACK with window 0 (MUST-37: alive).
        c.raw.inject(&Repr {
            window_len: 0,
            ..r(c.them, Some(c.us))
        });
    }
    // Intervals grow (exponential backoff).
    let gaps: Vec<_> = probes.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.windows(2).all(|g| g[1] > g[0]), "{gaps:?}");
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::Established));
    // The peer opens its window in answer to a probe: the rest flows.
    c.raw.advance(Duration::from_secs(120));
    c.raw.inject(&r(c.them, Some(c.us + 1)));
    c.raw.poll();
    let d = data_segs(&c.raw.take());
    assert_eq!(d.last(), Some(&(c.us + 1, 6)), "{d:?}");
}

#[test]
fn receiver_sws_avoidance_does_not_open_the_window_a_byte_at_a_time() {
    // MUST-39: the receiver advances the right edge only by at least
    // min(RCV.BUFF/2, Eff.snd.MSS).
    let mut cfg = base_cfg();
    cfg.rx_buffer = 8192;
    let mut c = establish(cfg);
    let mut at = c.them;
    // Fill the buffer.
    while at - c.them < 8192 {
        let n = (8192 - (at - c.them)).min(1460) as usize;
        let buf = vec![3u8; n];
        c.raw.inject(&Repr {
            payload: &buf,
            ..r(at, Some(c.us))
        });
        at += n as u32;
    }
    c.raw.advance(Duration::from_millis(100));
    let last = c.raw.take().pop().unwrap();
    assert_eq!(last.repr().window_len, 0);
    // Drain one byte at a time: no window update until a whole MSS frees.
    let mut one = [0u8; 1];
    for _ in 0..1000 {
        c.raw.tcp.recv(c.h, &mut one).unwrap();
        c.raw.poll();
        for s in c.raw.take() {
            let w = s.repr().window_len;
            assert!(w == 0 || w >= 1460, "tiny window update {w}");
        }
    }
}

#[test]
fn keepalive_is_off_by_default_and_probes_then_aborts_when_on() {
    // MUST-25: "This mechanism MUST default to off"; MUST-29: a single
    // unanswered probe is no reason to abort; SHLD-12: "SEG.SEQ = SND.NXT-1".
    let mut c = establish(base_cfg());
    c.raw.advance(Duration::from_secs(3 * 3600));
    assert!(c.raw.take().is_empty());
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::Established));
    c.raw
        .tcp
        .set_keepalive(
            c.h,
            Some(Keepalive {
                idle: Duration::from_secs(10),
                interval: Duration::from_secs(2),
                probes: 3,
            }),
        )
        .unwrap();
    c.raw.advance(Duration::from_secs(10));
    let out = c.raw.take();
    assert_eq!(out.len(), 1);
    let p = out[0].repr();
    assert!(p.payload.is_empty() && p.seq_number == seq(c.us - 1));
    // Answered: the connection lives on, the idle clock restarts.
    c.raw.inject(&r(c.them, Some(c.us)));
    c.raw.advance(Duration::from_secs(5));
    assert!(c.raw.take().is_empty());
    // Unanswered: probes at 10 s, then every 2 s, abort after 3.
    c.raw.advance(Duration::from_secs(60));
    assert_eq!(c.raw.take().len(), 3);
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::Closed));
    let mut b = [0u8; 1];
    assert_eq!(c.raw.tcp.recv(c.h, &mut b), Err(TcpError::TimedOut));
}

#[test]
fn icmp_soft_errors_never_abort_and_hard_ones_abort_syn_sent() {
    // MUST-56: soft Destination Unreachable codes 0, 1, 5, Time Exceeded
    // and Parameter Problem "MUST NOT" abort; SHLD-26: hard errors should;
    // MUST-55: Source Quench is discarded; RFC 5927: the quoted sequence
    // number must be in flight.
    let mut c = establish(base_cfg());
    c.raw.tcp.send(c.h, b"data").unwrap();
    c.raw.poll();
    c.raw.take();
    let (l, p) = (sa(US, 80), sa(PEER, PPORT));
    for k in [
        IcmpErrorKind::NetUnreachable,
        IcmpErrorKind::HostUnreachable,
        IcmpErrorKind::SourceRouteFailed,
        IcmpErrorKind::TimeExceeded,
        IcmpErrorKind::ParameterProblem,
        IcmpErrorKind::SourceQuench,
    ] {
        c.raw.tcp.icmp_error(c.raw.now, l, p, seq(c.us), k);
        assert_eq!(c.raw.tcp.state(c.h), Ok(State::Established), "{k:?}");
    }
    assert_eq!(
        c.raw.tcp.readiness(c.h).unwrap().error,
        Some(TcpError::HostUnreachable)
    );
    // A forged error quoting a sequence number not in flight: ignored.
    let before = c.raw.tcp.stats().icmp_ignored;
    c.raw.tcp.icmp_error(
        c.raw.now,
        l,
        p,
        seq(c.us + 100_000),
        IcmpErrorKind::PortUnreachable,
    );
    assert_eq!(c.raw.tcp.stats().icmp_ignored, before + 1);
    // Port unreachable in ESTABLISHED: soft.
    c.raw
        .tcp
        .icmp_error(c.raw.now, l, p, seq(c.us), IcmpErrorKind::PortUnreachable);
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::Established));
    // Frag needed: smaller segments, no abort.
    c.raw.tcp.icmp_error(
        c.raw.now,
        l,
        p,
        seq(c.us),
        IcmpErrorKind::FragmentationNeeded { mtu: 576 },
    );
    assert_eq!(c.raw.tcp.conn_stats(c.h).unwrap().snd_mss, 536);
    // SYN-SENT + port unreachable: refused.
    let mut raw = Raw::new(base_cfg());
    let h = raw.tcp.connect(raw.now, sa(US, 0), sa(PEER, 80)).unwrap();
    raw.poll();
    let syn_out = raw.take();
    let syn = syn_out[0].repr();
    let local = raw.tcp.local_addr(h).unwrap();
    raw.tcp.icmp_error(
        raw.now,
        local,
        sa(PEER, 80),
        syn.seq_number,
        IcmpErrorKind::PortUnreachable,
    );
    assert_eq!(raw.tcp.state(h), Ok(State::Closed));
    let mut b = [0u8; 1];
    assert_eq!(raw.tcp.recv(h, &mut b), Err(TcpError::ConnectionRefused));
}

#[test]
fn rst_in_syn_sent_needs_an_acceptable_ack_and_refuses() {
    // §3.10.7.3: "If the ACK was acceptable, then signal to the user
    // "error: connection reset" ... Otherwise (no ACK), drop the segment".
    // And "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset".
    let mut raw = Raw::new(base_cfg());
    let h = raw
        .tcp
        .connect(raw.now, sa(US, 40000), sa(PEER, 80))
        .unwrap();
    raw.poll();
    let syn_out = raw.take();
    let syn = syn_out[0].repr();
    let iss = syn.seq_number.0;
    let from_peer = |seq_: u32, ack: Option<u32>| Repr {
        src_port: 80,
        dst_port: 40000,
        seq_number: seq(seq_),
        ack_number: ack.map(seq),
        window_len: 1000,
        ..Repr::default()
    };
    // Bad ACK: answered with <SEQ=SEG.ACK><CTL=RST>.
    raw.inject(&Repr {
        syn: true,
        ..from_peer(9, Some(iss + 5))
    });
    let out = raw.take();
    assert!(out[0].repr().rst && out[0].repr().seq_number == seq(iss + 5));
    // RST without ACK: ignored.
    raw.inject(&Repr {
        rst: true,
        ..from_peer(9, None)
    });
    assert_eq!(raw.tcp.state(h), Ok(State::SynSent));
    raw.inject(&Repr {
        rst: true,
        ..from_peer(0, Some(iss + 1))
    });
    assert_eq!(raw.tcp.state(h), Ok(State::Closed));
    let mut b = [0u8; 1];
    assert_eq!(raw.tcp.recv(h, &mut b), Err(TcpError::ConnectionRefused));
}

#[test]
fn rst_in_passive_syn_received_returns_to_listen() {
    // MUST-11 / §3.10.7.4: "If this connection was initiated with a passive
    // OPEN (i.e., came from the LISTEN state), then return this connection
    // to LISTEN state and return."
    let mut raw = Raw::new(base_cfg());
    let l = raw.tcp.listen(sa(US, 80), 8).unwrap();
    raw.inject(&Repr {
        syn: true,
        ..r(1000, None)
    });
    raw.take();
    assert_eq!(raw.tcp.connection_count(), 1);
    raw.inject(&Repr {
        rst: true,
        ..r(1001, None)
    });
    assert_eq!(raw.tcp.connection_count(), 0);
    assert_eq!(raw.tcp.accept(l), Err(TcpError::WouldBlock));
    // The listener still works.
    raw.inject(&Repr {
        syn: true,
        ..r(5000, None)
    });
    assert!(raw.take()[0].repr().syn);
}

#[test]
fn bad_addresses_and_api_misuse_never_panic() {
    // MUST-46: "reject as an error a local OPEN call for an invalid remote
    // IP address (e.g., a broadcast or multicast address)"; MUST-57/63:
    // drop segments to or from them silently.
    let mut raw = Raw::new(base_cfg());
    for bad in [
        std::net::Ipv4Addr::BROADCAST,
        std::net::Ipv4Addr::new(224, 0, 0, 1),
        std::net::Ipv4Addr::UNSPECIFIED,
    ] {
        assert!(matches!(
            raw.tcp.connect(raw.now, sa(US, 0), sa(bad, 80)),
            Err(TcpError::InvalidArgument(_))
        ));
        let mut out = 0;
        let syn = Repr {
            syn: true,
            ..r(1, None)
        };
        raw.tcp.process(raw.now, bad, US, &syn, &mut |_, _, _, _| {
            out += 1;
            true
        });
        raw.tcp
            .process(raw.now, PEER, bad, &syn, &mut |_, _, _, _| {
                out += 1;
                true
            });
        assert_eq!(out, 0);
    }
    // Closed handles, double close, sends after shutdown, huge sizes.
    let h = raw.tcp.connect(raw.now, sa(US, 0), sa(PEER, 80)).unwrap();
    let big = vec![0u8; 10 << 20];
    let n = raw.tcp.send(h, &big).unwrap();
    assert_eq!(n, TcpConfig::default().tx_buffer);
    assert_eq!(raw.tcp.send(h, &big), Err(TcpError::WouldBlock));
    raw.tcp.shutdown_write(h).unwrap();
    assert_eq!(raw.tcp.send(h, b"x"), Err(TcpError::InvalidState));
    raw.tcp.close(h).unwrap();
    assert_eq!(raw.tcp.close(h), Err(TcpError::InvalidHandle));
    assert_eq!(raw.tcp.send(h, b"x"), Err(TcpError::InvalidHandle));
    assert_eq!(raw.tcp.state(h), Err(TcpError::InvalidHandle));
    assert_eq!(raw.tcp.abort(h), Err(TcpError::InvalidHandle));
    assert!(raw.tcp.set_buffer_sizes(h, Some(usize::MAX), None).is_err());
    let h = raw.tcp.connect(raw.now, sa(US, 0), sa(PEER, 81)).unwrap();
    raw.tcp
        .set_buffer_sizes(h, Some(usize::MAX), Some(usize::MAX))
        .unwrap();
    raw.advance(Duration::from_secs(1));
}

#[test]
fn random_segments_never_panic() {
    // Hostile input: random flags, numbers, options and payloads at a
    // listener and at established connections of every option setting.
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    for variant in 0..4 {
        let mut cfg = base_cfg();
        cfg.timestamps = variant & 1 == 1;
        cfg.sack = variant & 2 == 2;
        cfg.window_scale = variant == 3;
        let mut c = establish(cfg);
        c.raw.tcp.send(c.h, &[9u8; 20000]).unwrap();
        let payload = [0xaau8; 3000];
        for i in 0..20_000u32 {
            let near = rng.next().is_multiple_of(2);
            let s = if near {
                c.them
                    .wrapping_add((rng.next() % 70_000) as u32)
                    .wrapping_sub(5000)
            } else {
                rng.next() as u32
            };
            let a = if near {
                c.us.wrapping_add((rng.next() % 70_000) as u32)
                    .wrapping_sub(5000)
            } else {
                rng.next() as u32
            };
            let f = rng.next();
            let seg = Repr {
                src_port: if rng.next().is_multiple_of(8) {
                    1 + (rng.next() % 3) as u16
                } else {
                    PPORT
                },
                dst_port: 80,
                seq_number: seq(s),
                ack_number: (f & 1 == 1).then_some(seq(a)),
                syn: f & 2 != 0 && f & 0x100 == 0,
                fin: f & 4 != 0,
                rst: f & 8 != 0 && f & 0x200 == 0,
                window_len: (rng.next() % 65536) as u16,
                window_scale: (f & 16 != 0).then_some((rng.next() % 20) as u8),
                max_seg_size: (f & 32 != 0).then_some((rng.next() % 3000) as u16),
                sack_permitted: f & 64 != 0,
                timestamp: (f & 128 != 0).then(|| (rng.next() as u32, rng.next() as u32)),
                sack_ranges: if f & 0x400 != 0 {
                    [
                        Some((
                            seq(a.wrapping_sub(100)),
                            seq(a.wrapping_add(rng.next() as u32 % 3000)),
                        )),
                        None,
                        None,
                        None,
                    ]
                } else {
                    [None; 4]
                },
                payload: &payload[..(rng.next() % 1500) as usize],
                ..Repr::default()
            };
            c.raw.inject(&seg);
            if i % 50 == 0 {
                c.raw.advance(Duration::from_millis(rng.next() % 3000));
                let mut b = [0u8; 4096];
                let _ = c.raw.tcp.recv(c.h, &mut b);
                let _ = c.raw.tcp.send(c.h, &b[..(rng.next() % 4096) as usize]);
            }
            c.raw.out.clear();
        }
        let _ = c.raw.tcp.stats();
    }
}

#[test]
fn listen_backlog_and_listener_close() {
    // MUST-42: a LISTEN on a port with a pending connect from it is fine.
    let mut raw = Raw::new(base_cfg());
    raw.tcp.connect(raw.now, sa(US, 80), sa(PEER, 9)).unwrap();
    let l = raw.tcp.listen(sa(US, 80), 2).unwrap();
    assert_eq!(raw.tcp.listen(sa(US, 80), 2), Err(TcpError::AddrInUse));
    for p in 0..2u16 {
        let syn = Repr {
            syn: true,
            src_port: 6000 + p,
            ..r(100, None)
        };
        raw.inject(&syn);
        let sa_ = raw.take();
        let us = sa_[0].repr().seq_number.0 + 1;
        raw.inject(&Repr {
            src_port: 6000 + p,
            ..r(101, Some(us))
        });
    }
    // The accept queue (backlog 2) is full: a third SYN is dropped, as
    // Linux does, and the client retries later.
    raw.inject(&Repr {
        syn: true,
        src_port: 6002,
        ..r(100, None)
    });
    assert!(raw.take().is_empty());
    assert_eq!(raw.tcp.stats().listen_overflows, 1);
    assert!(raw.tcp.accept(l).is_ok());
    // A completed connection nobody accepted is reset when the listener
    // closes.
    raw.tcp.close_listener(l).unwrap();
    raw.poll();
    assert_eq!(raw.take().iter().filter(|s| s.repr().rst).count(), 1);
    assert_eq!(raw.tcp.accept(l), Err(TcpError::InvalidHandle));
}

#[allow(dead_code)]
fn unused(_: Tcp) {}

// ----- urgent data (RFC 9293 §3.8.5, RFC 6093) -------------------------------

#[test]
fn urgent_pointer_spanning_many_segments_is_tracked_and_read_in_line() {
    // MUST-31: "A TCP implementation MUST support a sequence of urgent data
    // of any length"; MUST-62: the urgent pointer "points to the sequence
    // number of the octet following the urgent data". 10 000 urgent bytes
    // announced by the first of seven segments, the pointer repeated (and
    // clamped by each segment's distance) on the rest.
    let mut c = establish(base_cfg());
    let start = c.them;
    let total = 10_000u32;
    let chunk = [b'u'; 1460];
    let mut off = 0u32;
    while off < total {
        let n = (total - off).min(1460);
        let ptr = (start + total - (start + off)) as u16;
        let seg = Repr {
            urgent_at: Some(ptr),
            payload: &chunk[..n as usize],
            ..r(start + off, Some(c.us))
        };
        c.raw.inject(&seg);
        off += n;
    }
    let st = c.raw.tcp.conn_stats(c.h).unwrap();
    // MUST-32: notified when urgent data first appears; the repeats of the
    // same pointer are not new.
    assert_eq!(st.urgent_notifications, 1);
    assert!(c.raw.tcp.readiness(c.h).unwrap().urgent);
    // MUST-33: how much urgent data is still unread.
    assert_eq!(c.raw.tcp.urgent_pending(c.h).unwrap(), Some(10_000));
    let mut buf = vec![0u8; 4000];
    assert_eq!(c.raw.tcp.recv(c.h, &mut buf).unwrap(), 4000);
    assert_eq!(c.raw.tcp.urgent_pending(c.h).unwrap(), Some(6000));
    let mut rest = vec![0u8; 8000];
    assert_eq!(c.raw.tcp.recv(c.h, &mut rest).unwrap(), 6000);
    assert_eq!(c.raw.tcp.urgent_pending(c.h).unwrap(), None);
    assert!(!c.raw.tcp.readiness(c.h).unwrap().urgent);
}

#[test]
fn urgent_pointer_advance_is_a_new_notification() {
    // MUST-32: "notify the application ... when urgent data first appears
    // or the pointer advances".
    let mut c = establish(base_cfg());
    let them = c.them;
    c.raw.inject(&Repr {
        urgent_at: Some(3),
        payload: b"abc",
        ..r(them, Some(c.us))
    });
    c.raw.inject(&Repr {
        urgent_at: Some(2),
        payload: b"de",
        ..r(them + 3, Some(c.us))
    });
    assert_eq!(c.raw.tcp.conn_stats(c.h).unwrap().urgent_notifications, 2);
    assert_eq!(c.raw.tcp.urgent_pending(c.h).unwrap(), Some(5));
    // A pointer of zero names the segment's own first octet: nothing urgent.
    c.raw.inject(&Repr {
        urgent_at: Some(0),
        payload: b"f",
        ..r(them + 5, Some(c.us))
    });
    assert_eq!(c.raw.tcp.conn_stats(c.h).unwrap().urgent_notifications, 2);
}

#[test]
fn urg_is_processed_even_with_a_zero_receive_window() {
    // MUST-66: "A TCP receiver MUST process the RST and URG fields of all
    // incoming segments, even when the receive window is zero."
    let mut cfg = base_cfg();
    cfg.rx_buffer = 1000;
    let mut c = establish(cfg);
    let fill = [1u8; 1000];
    c.raw.inject(&Repr {
        payload: &fill,
        ..r(c.them, Some(c.us))
    });
    c.raw.poll();
    c.them += 1000;
    c.raw.take();
    // The window is now zero; a bare URG at RCV.NXT announcing data ahead.
    c.raw.inject(&Repr {
        urgent_at: Some(100),
        ..r(c.them, Some(c.us))
    });
    assert_eq!(c.raw.tcp.conn_stats(c.h).unwrap().urgent_notifications, 1);
}

#[test]
fn send_urgent_sets_the_pointer_past_the_last_urgent_octet() {
    // MUST-30 (send side) and MUST-62: "SEG.UP = SND.UP - SEG.SEQ", with
    // SND.UP just past the last urgent byte; URG stays on until the urgent
    // data is acknowledged, and Nagle does not hold it back.
    let mut c = establish(base_cfg());
    c.raw.tcp.send(c.h, b"hello").unwrap();
    c.raw.poll();
    let first = c.raw.take();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].repr().urgent_at, None);
    // "hello" is unacknowledged: Nagle would hold a small segment, but not
    // urgent data.
    assert_eq!(c.raw.tcp.send_urgent(c.h, b"!!").unwrap(), 2);
    c.raw.poll();
    let out = c.raw.take();
    assert_eq!(out.len(), 1, "urgent data is pushed despite Nagle");
    let seg = out[0].repr();
    assert_eq!(seg.payload, b"!!");
    assert_eq!(seg.seq_number, seq(c.us + 5));
    assert_eq!(seg.urgent_at, Some(2), "points just past the last '!'");
    // ACK of everything ends urgent mode: later segments carry no URG.
    c.raw.inject(&r(c.them, Some(c.us + 7)));
    c.raw.tcp.send(c.h, b"later").unwrap();
    c.raw.poll();
    let out = c.raw.take();
    assert!(out.iter().all(|s| s.repr().urgent_at.is_none()));
}

#[test]
fn a_shrunken_window_sends_nothing_new_and_keeps_retransmitting_inside_it() {
    // SHLD-15 and SHLD-16, RFC 9293 §3.8.6: "If the right window edge has
    // moved to the left ... the sender SHOULD NOT send new data beyond the
    // current right window edge", but "SHOULD ... retransmit ... old
    // unacknowledged data between SND.UNA and SND.UNA+SND.WND".
    let mut c = establish(base_cfg());
    c.raw.tcp.send(c.h, &vec![9u8; 40_000]).unwrap();
    c.raw.poll();
    let first = data_segs(&c.raw.take());
    let sent_to = first
        .iter()
        .map(|&(s, l)| s.wrapping_add(l as u32))
        .max()
        .unwrap();
    assert!(sent_to.wrapping_sub(c.us) > 8_000, "{first:?}");
    // The peer takes two segments and shrinks its window to two more:
    // the right edge moves from far ahead to below what we sent.
    let una = c.us.wrapping_add(2920);
    let edge = una.wrapping_add(2920);
    c.raw.inject(&Repr {
        window_len: 2920,
        ..r(c.them, Some(una))
    });
    c.raw.poll();
    let after = data_segs(&c.raw.take());
    assert!(
        after
            .iter()
            .all(|&(s, _)| (s.wrapping_sub(sent_to) as i32) < 0),
        "new data past the shrunken edge: {after:?}"
    );
    // The retransmission timer fires: the oldest unacknowledged data, which
    // lies inside the window, goes again, and nothing past the edge.
    c.raw.advance(Duration::from_secs(2));
    let rtx = data_segs(&c.raw.take());
    assert!(!rtx.is_empty(), "no retransmission");
    assert_eq!(rtx[0].0, una);
    for &(s, l) in &rtx {
        assert!(
            (edge.wrapping_sub(s.wrapping_add(l as u32)) as i32) >= 0,
            "{rtx:?} passes the edge {edge}"
        );
    }
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::Established));
}

#[test]
fn sender_sws_avoidance_holds_a_sliver_until_the_override_timer() {
    // MUST-38, RFC 9293 §3.8.6.2.1: send when "(1) a maximum-sized segment
    // can be sent ... or (3) at least a fraction Fs of the maximum window
    // can be sent", else wait for "a timeout ... in the range 0.1-1.0
    // seconds" (MUST-60: queued data never waits forever).
    let mut c = establish(base_cfg());
    c.raw.tcp.send(c.h, &vec![5u8; 40_000]).unwrap();
    c.raw.poll();
    let first = data_segs(&c.raw.take());
    let sent: usize = first.iter().map(|s| s.1).sum();
    // Everything acknowledged, but only 1000 bytes of window: under a
    // segment and under half of the 65535 the peer once offered.
    let una = c.us.wrapping_add(sent as u32);
    c.raw.inject(&Repr {
        window_len: 1000,
        ..r(c.them, Some(una))
    });
    c.raw.poll();
    assert!(data_segs(&c.raw.take()).is_empty(), "a sliver sent at once");
    c.raw.advance(Duration::from_millis(150));
    assert!(data_segs(&c.raw.take()).is_empty(), "sent before 0.2 s");
    c.raw.advance(Duration::from_millis(100));
    assert_eq!(data_segs(&c.raw.take()), vec![(una, 1000)]);
}

#[test]
fn ts_recent_is_forgotten_after_24_days_idle() {
    // RFC 7323 §5.5: "If a connection remains idle for more than 24 days
    // ... TS.Recent ... is invalid", so PAWS (§5.3 R1, which needs "TS.Recent
    // is valid") no longer drops an older TSval; the same segment a day
    // earlier is dropped.
    let mut cfg = base_cfg();
    cfg.timestamps = true;
    for (idle_days, accepted) in [(23u64, false), (25, true)] {
        let mut raw = Raw::new(cfg.clone());
        let l = raw.tcp.listen(sa(US, 80), 8).unwrap();
        raw.inject(&Repr {
            syn: true,
            timestamp: Some((1_000_000, 0)),
            ..r(1000, None)
        });
        let out = raw.take();
        let sa_ = out[0].repr();
        let us = sa_.seq_number.0 + 1;
        let tsval = sa_.timestamp.unwrap().0;
        raw.inject(&Repr {
            timestamp: Some((1_000_001, tsval)),
            ..r(1001, Some(us))
        });
        let h = raw.tcp.accept(l).unwrap();
        raw.advance(Duration::from_secs(idle_days * 86_400));
        raw.take();
        // The peer's clock went back (a reboot, a wrapped clock).
        raw.inject(&Repr {
            timestamp: Some((5, tsval)),
            payload: b"late",
            ..r(1001, Some(us))
        });
        let mut buf = [0u8; 8];
        let got = raw.tcp.recv(h, &mut buf);
        assert_eq!(
            got.is_ok_and(|n| n == 4),
            accepted,
            "{idle_days} days: {got:?}"
        );
        assert_eq!(raw.tcp.stats().paws_drops, u64::from(!accepted));
    }
}

#[test]
fn rst_in_active_syn_received_refuses_the_connection() {
    // MUST-11 (the active half), RFC 9293 §3.10.7.3, SYN-RECEIVED: "If this
    // connection was initiated with an active OPEN (i.e., came from
    // SYN-SENT state), then the connection was refused; signal the user
    // 'connection refused'".
    let mut raw = Raw::new(base_cfg());
    let h = raw
        .tcp
        .connect(raw.now, sa(US, 80), sa(PEER, PPORT))
        .unwrap();
    raw.poll();
    let out = raw.take();
    assert!(out.len() == 1 && out[0].repr().syn);
    let iss = out[0].repr().seq_number;
    // Simultaneous open: the peer's own SYN crosses ours.
    raw.inject(&Repr {
        syn: true,
        max_seg_size: Some(1460),
        ..r(5000, None)
    });
    raw.poll();
    assert_eq!(raw.tcp.state(h), Ok(State::SynReceived));
    raw.take();
    raw.inject(&Repr {
        rst: true,
        ..r(5001, Some((iss + 1).0))
    });
    assert_eq!(raw.tcp.state(h), Ok(State::Closed));
    let mut b = [0u8; 4];
    assert_eq!(raw.tcp.recv(h, &mut b), Err(TcpError::ConnectionRefused));
}

#[test]
fn dscp_is_carried_by_every_segment_and_can_change_mid_connection() {
    // MUST-48: "The application layer MUST be able to specify the
    // Differentiated Services field for segments that are transmitted on a
    // connection." SHLD-22: "TCP SHOULD pass the current DS field value
    // unchanged to the IP layer, when it sends segments on the connection."
    // SHLD-21: "the application SHOULD be able to change the DS field value
    // during the connection lifetime".
    let mut raw = Raw::new(base_cfg());
    let l = raw.tcp.listen(sa(US, 80), 8).unwrap();
    // A listener's DSCP reaches its SYN-ACK and what it accepts.
    raw.tcp.set_listener_dscp(l, 46).unwrap();
    raw.inject(&Repr {
        syn: true,
        ..r(1000, None)
    });
    let out = raw.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].tos, 46 << 2, "SYN-ACK carries EF");
    let us = out[0].repr().seq_number.0.wrapping_add(1);
    let them = 1001;
    raw.inject(&r(them, Some(us)));
    let h = raw.tcp.accept(l).unwrap();
    assert_eq!(raw.tcp.dscp(h), Ok(46));

    // Data, then its retransmission after the RTO.
    raw.tcp.send(h, b"hello").unwrap();
    raw.poll();
    let out = raw.take();
    assert_eq!(data_segs(&out), vec![(us, 5)]);
    assert!(out.iter().all(|s| s.tos == 0xb8), "{out:?}");
    raw.advance(Duration::from_secs(2));
    let out = raw.take();
    let rtx = data_segs(&out);
    assert!(
        !rtx.is_empty() && rtx.iter().all(|&d| d == (us, 5)),
        "retransmitted: {rtx:?}"
    );
    assert!(out.iter().all(|s| s.tos == 0xb8), "retransmission keeps EF");

    // A pure ACK for the peer's data (after the delayed-ACK timer).
    raw.inject(&Repr {
        payload: b"abc",
        ..r(them, Some(us + 5))
    });
    raw.advance(Duration::from_millis(600));
    let out = raw.take();
    let acks: Vec<_> = out
        .iter()
        .filter(|s| s.repr().payload.is_empty() && s.repr().ack_number == Some(seq(them + 3)))
        .collect();
    assert!(!acks.is_empty(), "the data was ACKed: {out:?}");
    assert!(acks.iter().all(|s| s.tos == 0xb8), "pure ACK keeps EF");

    // Changed mid-connection: later segments carry the new value.
    raw.tcp.set_dscp(h, 10).unwrap();
    raw.tcp.send(h, b"more").unwrap();
    raw.poll();
    let out = raw.take();
    assert_eq!(data_segs(&out), vec![(us + 5, 4)]);
    assert!(out.iter().all(|s| s.tos == 10 << 2), "{out:?}");

    // Out of range: refused, nothing changes.
    assert!(matches!(
        raw.tcp.set_dscp(h, 64),
        Err(TcpError::InvalidArgument(_))
    ));
    assert!(raw.tcp.set_listener_dscp(l, 200).is_err());
    assert_eq!(raw.tcp.dscp(h), Ok(10));

    // A RST for a segment that matches no connection has no connection to
    // take a DSCP from: it goes out as best effort.
    raw.inject(&Repr {
        dst_port: 81,
        ..r(5, Some(6))
    });
    let out = raw.take();
    assert_eq!(out.len(), 1);
    assert!(out[0].repr().rst);
    assert_eq!(out[0].tos, 0);
}

#[test]
fn data_is_retransmitted_for_more_than_100_seconds_before_the_abort() {
    // SHLD-11: "R2 SHOULD correspond to at least 100 seconds." With the
    // defaults (15 retransmissions, RTO from 200 ms doubling to 60 s) an
    // unanswered segment keeps being retransmitted past 100 s; then the
    // connection is aborted with `TimedOut` (MUST-20), not left hanging.
    let mut c = establish(TcpConfig::default());
    c.raw.tcp.send(c.h, b"never acknowledged").unwrap();
    c.raw.poll();
    assert_eq!(data_segs(&c.raw.take()), vec![(c.us, 18)]);
    let mut sends = 0;
    for _ in 0..100 {
        c.raw.advance(Duration::from_secs(1));
        sends += data_segs(&c.raw.take()).len();
        assert_eq!(c.raw.tcp.state(c.h), Ok(State::Established));
    }
    assert!(sends >= 8, "{sends} retransmissions in 100 s");
    c.raw.advance(Duration::from_secs(1200));
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::Closed));
    let mut b = [0u8; 1];
    assert_eq!(c.raw.tcp.recv(c.h, &mut b), Err(TcpError::TimedOut));
}

#[test]
fn keepalive_never_probes_while_data_is_outstanding() {
    // MUST-26: "Keep-alive packets MUST only be sent when no sent data is
    // outstanding, and no data or acknowledgment packets have been
    // received for the connection within an interval." With data
    // unacknowledged only retransmissions of it go out, never a probe at
    // SND.NXT-1 (SHLD-12's form) or SND.UNA-1.
    let mut cfg = base_cfg();
    cfg.data_retries = 30;
    let mut c = establish(cfg);
    c.raw
        .tcp
        .set_keepalive(
            c.h,
            Some(Keepalive {
                idle: Duration::from_secs(1),
                interval: Duration::from_secs(1),
                probes: 3,
            }),
        )
        .unwrap();
    c.raw.tcp.send(c.h, b"x").unwrap();
    c.raw.advance(Duration::from_secs(30));
    let out = c.raw.take();
    assert!(!out.is_empty());
    for s in &out {
        let r = s.repr();
        assert_eq!(
            (r.seq_number, r.payload.len()),
            (seq(c.us), 1),
            "only the data, retransmitted: {out:?}"
        );
    }
    // Keepalive's own abort (3 unanswered probes) never fired either.
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::Established));
    // Once the data is acknowledged and the line is quiet, probes start.
    c.raw.inject(&r(c.them, Some(c.us + 1)));
    c.raw.take();
    c.raw.advance(Duration::from_millis(1500));
    let out = c.raw.take();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].repr().seq_number, seq(c.us));
    assert!(out[0].repr().payload.is_empty());
}

#[test]
fn a_new_passive_open_leaves_live_connections_alone() {
    // MUST-41: a passive OPEN "MUST NOT" disturb existing connections: it
    // either creates a new LISTEN record or fails. A second listen on the
    // connection's own port fails; one on another port succeeds; the
    // established connection moves data both ways after both.
    let mut c = establish(base_cfg());
    assert!(
        c.raw.tcp.listen(sa(US, 80), 8).is_err(),
        "port 80 listens already"
    );
    let other = c.raw.tcp.listen(sa(US, 8080), 8).unwrap();
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::Established));
    c.raw.tcp.set_nodelay(c.h, true).unwrap();
    c.raw.tcp.send(c.h, b"still here").unwrap();
    c.raw.poll();
    assert_eq!(data_segs(&c.raw.take()), vec![(c.us, 10)]);
    c.raw.inject(&Repr {
        payload: b"me too",
        ..r(c.them, Some(c.us + 10))
    });
    let mut b = [0u8; 16];
    assert_eq!(c.raw.tcp.recv(c.h, &mut b), Ok(6));
    assert_eq!(&b[..6], b"me too");
    // Closing the new listener does not touch the connection either.
    c.raw.tcp.close_listener(other).unwrap();
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::Established));
}

#[test]
fn a_window_shrunk_to_zero_below_sent_data_is_probed_and_never_aborts() {
    // MUST-34: the sender "MUST be robust against window shrinking, which
    // may cause the 'usable window' to become negative". MUST-35: "If this
    // happens, the sender SHOULD NOT send new data, but SHOULD retransmit
    // normally the old unacknowledged data between SND.UNA and SND.UNA+SND.WND.
    // The sender MAY also retransmit old data beyond SND.UNA+SND.WND, but
    // SHOULD NOT time out the connection if data beyond the right window
    // edge is not acknowledged" (SHLD-17); a zero window falls back to
    // probing. The peer shrinks the window to zero with 2000 bytes sent
    // beyond it and answers every segment for 20 minutes, far past R2.
    let mut c = establish(base_cfg());
    c.raw.tcp.set_nodelay(c.h, true).unwrap();
    let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    assert_eq!(c.raw.tcp.send(c.h, &data), Ok(3000));
    c.raw.poll();
    let sent: usize = data_segs(&c.raw.take()).iter().map(|d| d.1).sum();
    assert_eq!(sent, 3000);
    let shrink = Repr {
        window_len: 0,
        ..r(c.them, Some(c.us + 1000))
    };
    c.raw.inject(&shrink);
    let mut answered = 0;
    for _ in 0..1200 {
        c.raw.advance(Duration::from_secs(1));
        let out = c.raw.take();
        for s in &out {
            let r = s.repr();
            // Nothing new: every byte sent lies in what went out before.
            assert!(
                (r.seq_number.0.wrapping_sub(c.us) as usize) + r.payload.len() <= 3000,
                "new data into a zero window: {r:?}"
            );
        }
        if !out.is_empty() {
            c.raw.inject(&shrink);
            answered += 1;
        }
        assert_eq!(
            c.raw.tcp.state(c.h),
            Ok(State::Established),
            "after {answered} answers"
        );
    }
    assert!(
        answered >= 10,
        "the zero window was probed {answered} times in 20 minutes"
    );
    // The window opens: the 2000 bytes beyond the old edge go (again).
    c.raw.inject(&r(c.them, Some(c.us + 1000)));
    let mut got = 0;
    for _ in 0..200 {
        c.raw.advance(Duration::from_millis(100));
        for (s, n) in data_segs(&c.raw.take()) {
            let end = s.wrapping_sub(c.us) as usize + n;
            got = got.max(end);
            c.raw.inject(&r(c.them, Some(c.us + end as u32)));
        }
        if got == 3000 {
            break;
        }
    }
    assert_eq!(got, 3000, "everything acknowledged once the window opened");
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::Established));
    let st = c.raw.tcp.conn_stats(c.h).unwrap();
    assert_eq!(st.bytes_acked, 3000, "{st:?}");
}

#[test]
fn soft_error_reports_can_be_switched_off() {
    // SHLD-20: "the application SHOULD be able to disable" the reporting of
    // soft errors (MUST-47); they still decide what a later timeout says.
    let mut c = establish(base_cfg());
    c.raw.tcp.send(c.h, b"data").unwrap();
    c.raw.poll();
    c.raw.take();
    let (l, p) = (sa(US, 80), sa(PEER, PPORT));
    c.raw.tcp.set_soft_error_reports(c.h, false).unwrap();
    c.raw
        .tcp
        .icmp_error(c.raw.now, l, p, seq(c.us), IcmpErrorKind::NetUnreachable);
    assert_eq!(c.raw.tcp.stats().icmp_soft_errors, 1, "the error arrived");
    let r = c.raw.tcp.readiness(c.h).unwrap();
    assert_eq!(r.error, None, "reports are off");
    assert!(r.writable);
    // Back on: the recorded report shows.
    c.raw.tcp.set_soft_error_reports(c.h, true).unwrap();
    assert_eq!(
        c.raw.tcp.readiness(c.h).unwrap().error,
        Some(TcpError::NetUnreachable)
    );
    // Off again, and R2 runs out: the abort still names the ICMP cause.
    c.raw.tcp.set_soft_error_reports(c.h, false).unwrap();
    c.raw.advance(Duration::from_secs(3600));
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::Closed));
    assert_eq!(
        c.raw.tcp.readiness(c.h).unwrap().error,
        Some(TcpError::NetUnreachable)
    );
}

// ----- segments that are not acceptable ------------------------------------

/// An ESTABLISHED connection (no window scaling) whose `rx`-byte receive
/// buffer the peer has filled in full-sized segments, and whose ACK of
/// them (window 0) has gone out; the app has read nothing.
fn filled(rx: usize) -> Conn {
    let mut cfg = base_cfg();
    cfg.rx_buffer = rx;
    let mut c = establish(cfg);
    let mut left = rx;
    while left > 0 {
        let n = left.min(1460);
        let data = vec![1u8; n];
        c.raw.inject(&Repr {
            payload: &data,
            ..r(c.them, Some(c.us))
        });
        c.them += n as u32;
        left -= n;
    }
    c.raw.advance(Duration::from_millis(100));
    let last = c.raw.take().pop().expect("the data is acknowledged");
    let last = last.repr();
    assert_eq!(last.ack_number, Some(seq(c.them)));
    assert_eq!(last.window_len, 0);
    c
}

/// What goes out in answer to what was just injected, with no time
/// passing: the stack polls after each batch of arrivals.
fn answer(c: &mut Conn) -> Vec<Seg> {
    c.raw.poll();
    c.raw.take()
}

/// `out` is exactly one segment, an ACK `<SEQ=seq_><ACK=ack>` with nothing
/// else; returns its window.
fn bare_ack(out: &[Seg], seq_: u32, ack: u32, what: &str) -> u16 {
    assert_eq!(out.len(), 1, "{what}: one ACK, got {out:?}");
    let a = out[0].repr();
    assert!(
        !a.syn && !a.fin && !a.rst && a.payload.is_empty(),
        "{what}: {a:?}"
    );
    assert_eq!(a.seq_number, seq(seq_), "{what}: SEQ=SND.NXT");
    assert_eq!(a.ack_number, Some(seq(ack)), "{what}: ACK=RCV.NXT");
    a.window_len
}

/// The probe of RFC 9293 §3.8.6.1: one octet of new data at RCV.NXT.
fn probe(c: &Conn) -> Repr<'static> {
    Repr {
        payload: b"p",
        ..r(c.them, Some(c.us))
    }
}

#[test]
fn a_one_octet_probe_into_a_zero_window_is_answered_at_once_and_not_taken() {
    // §3.10.7.4: "If the RCV.WND is zero, no segments will be acceptable,
    // but special allowance should be made to accept valid ACKs, URGs, and
    // RSTs. If an incoming segment is not acceptable, an acknowledgment
    // should be sent in reply". §3.8.6.1: "As long as the receiving TCP
    // peer continues to send acknowledgments in response to the probe
    // segments, the sending TCP peer MUST allow the connection to stay
    // open" (MUST-37): the probe of "one octet of new data" needs its ACK.
    let mut c = filled(1000);
    for i in 0..3 {
        c.raw.inject(&probe(&c));
        let w = bare_ack(&answer(&mut c), c.us, c.them, &format!("probe {i}"));
        assert_eq!(w, 0);
        c.raw.advance(Duration::from_millis(200 << i));
        assert!(c.raw.take().is_empty(), "one answer per probe");
    }
    // None of the probes' octets was taken.
    let mut buf = [0u8; 2000];
    assert_eq!(c.raw.tcp.recv(c.h, &mut buf), Ok(1000));
    assert!(buf[..1000].iter().all(|&b| b == 1));
    // Reading opens the window; the probed octet is taken when it comes
    // again.
    let w = bare_ack(&answer(&mut c), c.us, c.them, "window update");
    assert_eq!(w, 1000);
    c.raw.inject(&probe(&c));
    c.raw.advance(Duration::from_millis(100));
    assert_eq!(c.raw.tcp.recv(c.h, &mut buf), Ok(1));
    assert_eq!(buf[0], b'p');
}

#[test]
fn a_zero_length_probe_is_answered_and_its_limit_never_silences_a_data_probe() {
    // Linux probes with no data at RCV.NXT - 1. Table 6 ("0 0 SEG.SEQ =
    // RCV.NXT") finds it not acceptable: "an acknowledgment should be sent
    // in reply". Answers to segments without data go at most every 500 ms,
    // or two ends that disagree would trade them for ever; a probe with
    // data is answered whatever that limit did.
    let mut c = filled(1000);
    let zero = r(c.them.wrapping_sub(1), Some(c.us));
    c.raw.inject(&zero);
    let w = bare_ack(&c.raw.take(), c.us, c.them, "zero-length probe");
    assert_eq!(w, 0, "the current window");
    c.raw.advance(Duration::from_millis(100));
    c.raw.inject(&zero);
    assert!(answer(&mut c).is_empty(), "within 500 ms of the last");
    c.raw.inject(&probe(&c));
    let w = bare_ack(&answer(&mut c), c.us, c.them, "one-octet probe");
    assert_eq!(w, 0);
    c.raw.advance(Duration::from_millis(400));
    c.raw.inject(&zero);
    let w = bare_ack(&c.raw.take(), c.us, c.them, "500 ms later");
    assert_eq!(w, 0);
}

#[test]
fn a_probe_with_a_fin_into_a_zero_window_is_refused_whole_and_a_bare_fin_is_taken() {
    // A FIN comes after the segment's text: with the text not acceptable
    // the FIN is not either, and §3.10.7.4 answers. A FIN on its own needs
    // no buffer room and is taken at RCV.NXT even into a zero window (as
    // Linux does), so the peer's close does not wait for its timer.
    let mut c = filled(1000);
    c.raw.inject(&Repr {
        fin: true,
        ..probe(&c)
    });
    let w = bare_ack(&answer(&mut c), c.us, c.them, "probe with FIN");
    assert_eq!(w, 0);
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::Established));
    c.raw.inject(&Repr {
        fin: true,
        ..r(c.them, Some(c.us))
    });
    let w = bare_ack(&answer(&mut c), c.us, c.them + 1, "bare FIN");
    assert_eq!(w, 0);
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::CloseWait));
    let mut buf = [0u8; 2000];
    assert_eq!(c.raw.tcp.recv(c.h, &mut buf), Ok(1000));
    assert_eq!(c.raw.tcp.recv(c.h, &mut buf), Ok(0), "then the end");
}

#[test]
fn a_probe_into_a_window_reopened_by_less_than_one_mss_is_refused_and_answered() {
    // MUST-39: the receiver opens its window only by min(RCV.BUFF/2,
    // Eff.snd.MSS) or more; until then RCV.WND stays zero, so "no
    // segments will be acceptable" and a probe is answered with window 0.
    // The probe comes the way the stack hands segments over, staged in the
    // receive ring, where header prediction must not take it.
    let mut c = filled(8 * 1460);
    let mut buf = vec![0u8; 8 * 1460];
    assert_eq!(c.raw.tcp.recv(c.h, &mut buf[..1000]), Ok(1000));
    assert!(
        answer(&mut c).is_empty(),
        "1000 bytes are not worth offering"
    );
    c.raw.inject_staged(&probe(&c));
    let w = bare_ack(&answer(&mut c), c.us, c.them, "probe");
    assert_eq!(w, 0);
    assert_eq!(
        c.raw.tcp.stats().predicted_data,
        8,
        "the fill, not the probe"
    );
    // 2000 bytes free: a window worth offering, and the octet is taken.
    assert_eq!(c.raw.tcp.recv(c.h, &mut buf[..1000]), Ok(1000));
    let w = bare_ack(&answer(&mut c), c.us, c.them, "window update");
    assert_eq!(w, 2000);
    c.raw.inject_staged(&probe(&c));
    c.raw.advance(Duration::from_millis(100));
    let left = 8 * 1460 - 2000;
    assert_eq!(c.raw.tcp.recv(c.h, &mut buf), Ok(left + 1));
    assert_eq!(buf[left], b'p');
}

#[test]
fn a_lost_window_update_is_made_good_by_the_next_probe() {
    // §3.8.6.1: "This retransmission is essential to guarantee that when
    // either TCP peer has a zero window the reopening of the window will be
    // reliably reported to the other." The peer's probes are answered while
    // the window is closed; the update sent when the app reads is lost; the
    // next probe alone must get the data flowing again.
    let mut c = filled(1000);
    c.raw.inject(&probe(&c));
    assert_eq!(bare_ack(&answer(&mut c), c.us, c.them, "probe"), 0);
    let mut buf = [0u8; 2000];
    assert_eq!(c.raw.tcp.recv(c.h, &mut buf), Ok(1000));
    let lost = answer(&mut c);
    assert_eq!(bare_ack(&lost, c.us, c.them, "window update (lost)"), 1000);
    // The peer still sees a zero window and probes on its timer.
    c.raw.advance(Duration::from_millis(400));
    c.raw.inject_staged(&probe(&c));
    c.raw.advance(Duration::from_millis(40));
    let out = c.raw.take();
    let w = bare_ack(&out, c.us, c.them + 1, "the probe's ACK");
    assert_eq!(w, 999, "the window, open again");
    c.them += 1;
    let rest = [2u8; 999];
    c.raw.inject_staged(&Repr {
        payload: &rest,
        ..r(c.them, Some(c.us))
    });
    assert_eq!(c.raw.tcp.recv(c.h, &mut buf), Ok(1000));
    assert_eq!(&buf[..2], b"p\x02");
}

#[test]
fn data_partly_past_the_window_is_trimmed_and_answered_at_once() {
    // §3.10.7.4: "One could tailor actual segments to fit this assumption
    // by trimming off any portions that lie outside the window (including
    // SYN and FIN)". The trimmed part was not acceptable, so the sender
    // hears at once what was taken, not after the delayed-ACK timer.
    let mut c = filled(1000);
    let mut buf = [0u8; 1000];
    assert_eq!(c.raw.tcp.recv(c.h, &mut buf[..700]), Ok(700));
    assert_eq!(bare_ack(&answer(&mut c), c.us, c.them, "update"), 700);
    let data = [3u8; 900];
    c.raw.inject(&Repr {
        payload: &data,
        fin: true,
        ..r(c.them, Some(c.us))
    });
    let w = bare_ack(&answer(&mut c), c.us, c.them + 700, "trimmed");
    assert_eq!(w, 0);
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::Established), "FIN trimmed");
}

#[test]
fn urg_and_rst_are_processed_in_a_zero_window_whose_text_is_refused() {
    // MUST-66: "A TCP receiver MUST process the RST and URG fields of all
    // incoming segments, even when the receive window is zero." The text
    // of a probe carrying URG stays not acceptable and is answered.
    let mut c = filled(1000);
    c.raw.inject(&Repr {
        urgent_at: Some(1),
        ..probe(&c)
    });
    assert_eq!(c.raw.tcp.conn_stats(c.h).unwrap().urgent_notifications, 1);
    assert_eq!(bare_ack(&answer(&mut c), c.us, c.them, "URG probe"), 0);
    c.raw.inject(&Repr {
        rst: true,
        ..r(c.them, None)
    });
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::Closed));
    let mut buf = [0u8; 2000];
    assert_eq!(
        c.raw.tcp.recv(c.h, &mut buf),
        Err(TcpError::ConnectionReset)
    );
}

#[test]
fn a_probe_into_a_zero_window_is_answered_in_every_synchronized_state() {
    // §3.10.7.4's answer to a segment that is not acceptable holds in every
    // synchronized state, not only ESTABLISHED (the other tests).
    let mut c = filled(1000);
    c.raw.tcp.shutdown_write(c.h).unwrap();
    let fin = answer(&mut c);
    assert!(fin.len() == 1 && fin[0].repr().fin);
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::FinWait1));
    let snd_nxt = c.us + 1;
    c.raw.inject(&probe(&c));
    assert_eq!(bare_ack(&answer(&mut c), snd_nxt, c.them, "FIN-WAIT-1"), 0);
    c.raw.inject(&r(c.them, Some(snd_nxt)));
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::FinWait2));
    c.raw.inject(&probe(&c));
    assert_eq!(bare_ack(&answer(&mut c), snd_nxt, c.them, "FIN-WAIT-2"), 0);

    // After the peer's FIN anything more lies past it: "Ignore the segment
    // text", but still answer.
    let mut c = filled(1000);
    c.raw.inject(&Repr {
        fin: true,
        ..r(c.them, Some(c.us))
    });
    c.them += 1;
    assert_eq!(bare_ack(&answer(&mut c), c.us, c.them, "FIN"), 0);
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::CloseWait));
    c.raw.inject(&probe(&c));
    assert_eq!(bare_ack(&answer(&mut c), c.us, c.them, "CLOSE-WAIT"), 0);
    c.raw.tcp.shutdown_write(c.h).unwrap();
    let fin = answer(&mut c);
    assert!(fin.len() == 1 && fin[0].repr().fin);
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::LastAck));
    c.raw.inject(&probe(&c));
    assert_eq!(bare_ack(&answer(&mut c), c.us + 1, c.them, "LAST-ACK"), 0);
}

#[test]
fn a_flood_of_unacceptable_segments_gets_one_ack_per_batch() {
    // §3.10.7.4 answers each segment that is not acceptable, and "the
    // processing of received segments MUST be implemented to aggregate ACK
    // segments whenever possible (MUST-58). For example, if the TCP
    // endpoint is processing a series of queued segments, it MUST process
    // them all before sending any ACK segments (MUST-59)." So a burst of
    // them with data gets one answer, each arriving on its own gets its
    // own; without data, at most one every 500 ms.
    let mut c = establish(base_cfg());
    let far = c.them.wrapping_add(10_000_000);
    for i in 0..100 {
        c.raw.inject(&Repr {
            payload: b"junk",
            ..r(far + 4 * i, Some(c.us))
        });
    }
    assert!(c.raw.take().is_empty(), "not before the end of the batch");
    bare_ack(&answer(&mut c), c.us, c.them, "100 out of the window");
    for i in 0..3 {
        c.raw.advance(Duration::from_millis(1));
        c.raw.inject(&Repr {
            payload: b"old",
            ..r(c.them.wrapping_sub(3), Some(c.us))
        });
        bare_ack(&answer(&mut c), c.us, c.them, &format!("duplicate {i}"));
    }
    for _ in 0..100 {
        c.raw.inject(&r(far, Some(c.us)));
    }
    bare_ack(&answer(&mut c), c.us, c.them, "100 pure ones");
    c.raw.advance(Duration::from_millis(499));
    c.raw.inject(&r(far, Some(c.us)));
    assert!(answer(&mut c).is_empty(), "within 500 ms");
    c.raw.advance(Duration::from_millis(1));
    c.raw.inject(&r(far, Some(c.us)));
    bare_ack(&answer(&mut c), c.us, c.them, "500 ms on");
    assert_eq!(c.raw.tcp.stats().drop_out_of_window, 205);
}

#[test]
fn out_of_window_syns_share_the_challenge_ack_throttle() {
    // RFC 5961 §4.2: "If the SYN bit is set, irrespective of the sequence
    // number, TCP MUST send an ACK (also referred to as challenge ACK)";
    // §7: "In order to alleviate multiple RSTs/SYNs from triggering
    // multiple challenge ACKs, an ACK throttling mechanism is suggested."
    // A SYN outside the window is throttled like one inside it.
    let mut cfg = base_cfg();
    cfg.challenge_ack_limit = 5;
    let mut c = establish(cfg);
    for i in 0..50 {
        c.raw.inject(&Repr {
            syn: true,
            ..r(c.them.wrapping_add(1_000_000 + i), None)
        });
    }
    assert_eq!(answer(&mut c).len(), 5);
    assert_eq!(c.raw.tcp.stats().challenge_acks_suppressed, 45);
    assert_eq!(c.raw.tcp.state(c.h), Ok(State::Established));
}

#[test]
fn paws_rejects_are_answered_like_other_unacceptable_segments() {
    // RFC 7323 §5.3 R1: "treat the arriving segment as not acceptable: Send
    // an acknowledgment in reply as specified in RFC 793 page 69 and drop
    // the segment" - at most every 500 ms without data, as for a segment
    // outside the window, and at the end of the batch with data.
    let mut cfg = base_cfg();
    cfg.timestamps = true;
    let mut raw = Raw::new(cfg);
    let l = raw.tcp.listen(sa(US, 80), 8).unwrap();
    raw.inject(&Repr {
        syn: true,
        timestamp: Some((1000, 0)),
        ..r(1000, None)
    });
    let synack = raw.take();
    let sa_ = synack[0].repr();
    let (tsval, _) = sa_.timestamp.unwrap();
    let us = sa_.seq_number.0 + 1;
    raw.inject(&Repr {
        timestamp: Some((1001, tsval)),
        ..r(1001, Some(us))
    });
    raw.tcp.accept(l).unwrap();
    let old = |payload: &'static [u8]| Repr {
        timestamp: Some((900, tsval)),
        payload,
        ..r(1001, Some(us))
    };
    for _ in 0..20 {
        raw.inject(&old(b""));
    }
    raw.poll();
    assert_eq!(raw.take().len(), 1, "pure: one answer");
    for _ in 0..20 {
        raw.inject(&old(b"stale"));
    }
    assert!(raw.take().is_empty(), "not before the end of the batch");
    raw.poll();
    let out = raw.take();
    assert_eq!(out.len(), 1, "with data: one answer per batch");
    assert_eq!(out[0].repr().ack_number, Some(seq(1001)));
    assert_eq!(raw.tcp.stats().paws_drops, 40);
}

#[test]
fn acks_from_a_sender_that_counts_its_refused_probe_are_taken() {
    // §3.10.7.4: with RCV.WND zero "special allowance should be made to
    // accept valid ACKs". A sender whose SND.NXT counts the probe octet we
    // refused (RFC 9293's variables do, lwIP does) sends its ACKs at
    // RCV.NXT + 1; they still acknowledge our data. Nothing further out is
    // taken.
    let mut c = filled(1000);
    c.raw.tcp.set_nodelay(c.h, true).unwrap();
    assert_eq!(c.raw.tcp.send(c.h, &[9u8; 100]), Ok(100));
    assert_eq!(data_segs(&answer(&mut c)), vec![(c.us, 100)]);
    c.raw.inject(&probe(&c));
    bare_ack(&answer(&mut c), c.us + 100, c.them, "probe");
    c.raw.inject(&r(c.them + 2, Some(c.us + 100)));
    assert_eq!(c.raw.tcp.conn_stats(c.h).unwrap().bytes_acked, 0);
    c.raw.take();
    c.raw.inject(&r(c.them + 1, Some(c.us + 100)));
    assert_eq!(c.raw.tcp.conn_stats(c.h).unwrap().bytes_acked, 100);
    assert!(answer(&mut c).is_empty(), "a valid ACK, taken: no answer");
}
