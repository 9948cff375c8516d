//! Two ringstack stacks over the seeded simulated link: whole conversations
//! with delay and loss, in milliseconds of real time, the same every run.

use ringstack::dev::sim::{self, LinkConfig, SimDevice};
use ringstack::eth::MacAddr;
use ringstack::icmp::ping::PingEvent;
use ringstack::stack::{Config, Stack};
use ringstack::time::{Duration, Instant};
use std::net::{Ipv4Addr, SocketAddrV4};

const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn stack(last: u8, seed: u8) -> Stack {
    let mut c = Config::new(
        MacAddr([2, 0, 0, 0, 0, last]),
        format!("198.18.0.{last}/24").parse().unwrap(),
    );
    c.seed = [seed; 32];
    Stack::new(c).unwrap()
}

/// Poll both stacks, jumping the clock to the next thing that happens.
struct World {
    a: Stack,
    b: Stack,
    da: SimDevice,
    db: SimDevice,
    now: Instant,
}

impl World {
    fn new(link: LinkConfig, seed: u64) -> World {
        let (da, db) = sim::pair(link.clone(), link, seed);
        World {
            a: stack(1, 1),
            b: stack(2, 2),
            da,
            db,
            now: Instant::from_secs(1),
        }
    }

    fn step(&mut self) {
        self.a.poll(self.now, &mut self.da).unwrap();
        self.b.poll(self.now, &mut self.db).unwrap();
        let next = [
            self.a.poll_at(),
            self.b.poll_at(),
            self.da.next_arrival(),
            self.db.next_arrival(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(self.now + Duration::from_millis(100));
        // Never stand still, never skip more than 100 ms of the caller's time.
        self.now = next
            .max(self.now + Duration::from_micros(1))
            .min(self.now + Duration::from_millis(100));
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }
}

#[test]
fn pings_cross_a_lossy_50ms_link_with_the_expected_rtt_and_loss() {
    let link = LinkConfig {
        delay: Duration::from_millis(50),
        loss: 0.1,
        ..Default::default()
    };
    let mut w = World::new(link, 42);
    let h = w.a.ping_open().unwrap();
    let mut replies = Vec::new();
    for seq in 0..200u16 {
        w.a.ping_send(h, B, seq, 56, false).unwrap();
        w.run_for(Duration::from_millis(250));
        while let Ok(Some(ev)) = w.a.ping_recv(h) {
            if let PingEvent::Reply { rtt, corrupt, .. } = ev {
                assert!(!corrupt);
                replies.push(rtt);
            }
        }
    }
    // Each echo crosses the link twice: about 0.9^2 = 81 % come back. The
    // first few also wait for ARP, whose request is retried once a second.
    assert!(
        (140..=180).contains(&replies.len()),
        "{} of 200 replies",
        replies.len()
    );
    let steady: Vec<_> = replies
        .iter()
        .filter(|r| **r < Duration::from_millis(150))
        .collect();
    assert!(steady.len() > 130);
    for r in steady {
        assert!(
            *r >= Duration::from_millis(100) && *r < Duration::from_millis(101),
            "rtt {r}"
        );
    }
    assert!(w.a.stats().arp.tx_requests >= 1);
}

#[test]
fn a_60000_byte_datagram_survives_only_when_every_fragment_does() {
    // 41 fragments at 1 % loss each: the datagram arrives with probability
    // 0.99^41 = 66 %; the receiver never delivers a partial one.
    let link = LinkConfig {
        delay: Duration::from_millis(5),
        loss: 0.01,
        ..Default::default()
    };
    let mut w = World::new(link, 7);
    let ha =
        w.a.udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
            .unwrap();
    let hb =
        w.b.udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 9))
            .unwrap();
    let data: Vec<u8> = (0..60000u32).map(|i| (i % 253) as u8).collect();
    let mut got = 0;
    for _ in 0..100 {
        w.a.udp_send_to(ha, &data, SocketAddrV4::new(B, 9)).unwrap();
        w.run_for(Duration::from_millis(50));
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = w.b.udp_recv_from(hb, &mut buf) {
            assert_eq!(from.ip(), &A);
            assert!(buf[..n] == data[..], "a delivered datagram is whole");
            got += 1;
        }
    }
    assert!((50..=85).contains(&got), "{got} of 100 arrived");
    // Incomplete datagrams time out and free their memory.
    w.run_for(Duration::from_secs(31));
    assert_eq!(w.b.held_resources().2, 0);
    assert!(w.b.stats().ip.frag_timeouts > 0);
}

/// RFC 9293 §3.1, MUST-3: the receiver verifies the checksum of every
/// segment and discards failures. Through whole stacks, where in-order data
/// is summed while it is copied into the socket's ring and committed only
/// if the sum passes: one bit flipped in 4 % of frames (past the IPv4
/// header, so only TCP's checksum sees it), with 1 % loss besides, and
/// 4 MB each way must arrive byte for byte. A corrupt segment that was
/// committed anyway would show up in the hash and the position check.
#[test]
fn tcp_delivers_every_byte_intact_over_a_link_that_flips_bits() {
    let link = LinkConfig {
        delay: Duration::from_millis(2),
        loss: 0.01,
        corrupt: 0.04,
        ..Default::default()
    };
    let mut w = World::new(link, 7);
    let l = w.b.tcp_listen(5001, 4).unwrap();
    let ca = w.a.tcp_connect(w.now, SocketAddrV4::new(B, 5001)).unwrap();
    let mut cb = None;
    const N: usize = 4_000_000;
    let data = |i: usize| (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes()[7];
    let (mut sent_a, mut sent_b, mut got_a, mut got_b) = (0, 0, 0, 0);
    let (mut hash_a, mut hash_b) = (0xcbf2_9ce4_8422_2325u64, 0xcbf2_9ce4_8422_2325u64);
    let mut mismatches = 0;
    let deadline = w.now + Duration::from_secs(120);
    let mut buf = vec![0u8; 65536];
    while (got_a < N || got_b < N) && w.now < deadline {
        w.step();
        if cb.is_none() {
            cb = w.b.tcp().accept(l).ok();
        }
        let Some(cb) = cb else { continue };
        for (st, h, sent) in [(&mut w.a, ca, &mut sent_a), (&mut w.b, cb, &mut sent_b)] {
            let chunk: Vec<u8> = (*sent..(*sent + 16384).min(N)).map(data).collect();
            if !chunk.is_empty() {
                if let Ok(n) = st.tcp().send(h, &chunk) {
                    *sent += n;
                }
            }
        }
        for (st, h, got, hash) in [
            (&mut w.b, cb, &mut got_b, &mut hash_b),
            (&mut w.a, ca, &mut got_a, &mut hash_a),
        ] {
            while let Ok(n) = st.tcp().recv(h, &mut buf) {
                if n == 0 {
                    break;
                }
                for (i, &b) in buf[..n].iter().enumerate() {
                    mismatches += usize::from(b != data(*got + i));
                    *hash = (*hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
                }
                *got += n;
            }
        }
    }
    let want = (0..N).fold(0xcbf2_9ce4_8422_2325u64, |h, i| {
        (h ^ u64::from(data(i))).wrapping_mul(0x100_0000_01b3)
    });
    assert_eq!((got_a, got_b), (N, N), "both directions complete");
    assert_eq!(mismatches, 0);
    assert_eq!((hash_a, hash_b), (want, want));
    let corrupted = w.da.tx_link_stats().corrupted + w.db.tx_link_stats().corrupted;
    let dropped = w.a.stats().tcpw.drop_bad_checksum + w.b.stats().tcpw.drop_bad_checksum;
    eprintln!("{corrupted} frames corrupted, {dropped} checksum drops");
    assert!(corrupted > 200, "the link corrupted {corrupted} frames");
    // Nearly every flip lands in a TCP header or payload (the rest in
    // ARP frames or the IPv4 options of none): each is a counted drop.
    assert!(
        dropped * 10 >= corrupted * 9,
        "{dropped} checksum drops for {corrupted} corrupted frames"
    );
}
