//! Two TCP tables over a seeded lossy channel: handshakes, transfers with
//! byte-exact checks, closes. Time is simulated.

mod tcp_util;

use ringstack::tcp::{State, TcpConfig, TcpError};
use ringstack::time::{Duration, Instant};
use tcp_util::*;

fn cfg() -> TcpConfig {
    TcpConfig::default()
}

#[test]
fn three_way_handshake_and_small_exchange() {
    let link = Link {
        delay: Duration::from_millis(10),
        ..Link::default()
    };
    let mut net = Net::new(cfg(), cfg(), link, 1);
    let (c, s) = open(&mut net);
    assert_eq!(net.b.state(s), Ok(State::Established));
    assert_eq!(net.a.send(c, b"hello").unwrap(), 5);
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    assert!(net.run_until(Duration::from_secs(5), |n| {
        if let Ok(k) = n.b.recv(s, &mut buf) {
            got.extend_from_slice(&buf[..k]);
        }
        got.len() == 5
    }));
    assert_eq!(&got, b"hello");
    // Graceful close both ways.
    net.a.close(c).unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| n.b.recv(s, &mut buf) == Ok(0)));
    net.b.close(s).unwrap();
    net.run_for(Duration::from_secs(1));
    // A is in TIME-WAIT (orphaned); B is gone.
    assert_eq!(net.b.connection_count(), 0);
    assert_eq!(net.a.connection_count(), 1);
    net.run_for(Duration::from_secs(61));
    assert_eq!(net.a.connection_count(), 0);
    let _ = TcpError::WouldBlock;
    let _ = Instant::ZERO;
}

/// One direction of a transfer: how much has been written and verified.
#[derive(Default)]
struct Flow {
    sent: u64,
    recvd: u64,
    eof: bool,
}

struct Cell {
    link: Link,
    bytes: u64,
    buf: usize,
    /// The receiver of A's data stops reading in [start, end) (sim time
    /// offsets from the transfer's start).
    stall: Option<(Duration, Duration)>,
    seed: u64,
    limit: Duration,
}

/// Transfers `bytes` each way at once and checks every byte; returns the
/// simulated duration.
fn transfer(cell: &Cell) -> Duration {
    let mut ca = cfg();
    ca.rx_buffer = cell.buf;
    ca.tx_buffer = cell.buf;
    ca.ooo_max_bytes = cell.buf;
    let mut net = Net::new(ca.clone(), ca, cell.link.clone(), cell.seed);
    let (c, s) = open(&mut net);
    let t0 = net.now;
    let mut ab = Flow::default();
    let mut ba = Flow::default();
    let n = cell.bytes;
    let done = net.run_until(cell.limit, |net| {
        let t = net.now - t0;
        // Writers: fill the send ring with the pattern, then shut down.
        for (tcp, h, f, k) in [
            (&mut net.a, c, &mut ab, 1u64),
            (&mut net.b, s, &mut ba, 2u64),
        ] {
            while f.sent < n {
                let start = f.sent;
                let w = tcp.send_with(h, |buf| {
                    let m = buf.len().min((n - start) as usize);
                    for (i, b) in buf[..m].iter_mut().enumerate() {
                        *b = pattern(k, start + i as u64);
                    }
                    m
                });
                match w {
                    Ok(0) | Err(TcpError::WouldBlock) => break,
                    Ok(m) => f.sent += m as u64,
                    Err(e) => panic!("send {k}: {e}: {:?}", tcp.conn_stats(h)),
                }
                if f.sent == n {
                    tcp.shutdown_write(h).unwrap();
                }
            }
        }
        // Readers: verify against the pattern.
        let stalled = cell.stall.is_some_and(|(a, b)| t >= a && t < b);
        for (tcp, h, f, k, may) in [
            (&mut net.b, s, &mut ab, 1u64, !stalled),
            (&mut net.a, c, &mut ba, 2u64, true),
        ] {
            while may && !f.eof {
                let start = f.recvd;
                match tcp.recv_with(h, |data| {
                    for (i, &b) in data.iter().enumerate() {
                        assert_eq!(
                            b,
                            pattern(k, start + i as u64),
                            "stream {k} byte {}",
                            start + i as u64
                        );
                    }
                    data.len()
                }) {
                    Ok(0) => f.eof = true,
                    Ok(m) => f.recvd += m as u64,
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => panic!("recv {k}: {e} at {}", f.recvd),
                }
            }
        }
        ab.eof && ba.eof
    });
    assert!(
        done,
        "transfer unfinished after {:?}: a->b {}/{} b->a {}/{}; a {:?} b {:?}",
        cell.limit,
        ab.recvd,
        n,
        ba.recvd,
        n,
        net.a.conn_stats(c),
        net.b.conn_stats(s)
    );
    assert_eq!((ab.recvd, ba.recvd), (n, n));
    let took = net.now - t0;
    net.a.close(c).unwrap();
    net.b.close(s).unwrap();
    net.run_for(Duration::from_secs(130));
    assert_eq!(net.a.connection_count() + net.b.connection_count(), 0);
    took
}

const MB: u64 = 1 << 20;

fn link(rtt_ms: u64, loss_ppm: u64) -> Link {
    Link {
        delay: Duration::from_millis(rtt_ms / 2),
        loss_ppm,
        rate: 12_500_000, // 100 Mbit/s bottleneck
        queue: 256 * 1024,
        ..Link::default()
    }
}

#[test]
fn bulk_transfer_clean_link() {
    let t = transfer(&Cell {
        link: link(50, 0),
        bytes: 10 * MB,
        buf: 256 * 1024,
        stall: None,
        seed: 3,
        limit: Duration::from_secs(600),
    });
    eprintln!("clean 10 MB each way: {t:?}");
}

/// The grid: loss × RTT × buffer, plus reordering, duplication, corruption
/// and a zero-window stall. 10 MB each way, except where loss makes that
/// slow in a debug build: 20 % loss moves 1 MB, and 4 KiB buffers at long
/// RTTs move 2 MB (a 4 KiB window at 300 ms is ~13 KB/s of simulated time;
/// it is the event count, not the simulated time, that costs).
#[test]
fn bulk_transfer_grid_is_byte_exact() {
    let mut cells = Vec::new();
    let mut seed = 100;
    for &rtt in &[1u64, 50, 300] {
        for &loss in &[0u64, 10_000, 50_000, 200_000] {
            for &buf in &[4 * 1024usize, 256 * 1024] {
                seed += 1;
                let mut bytes = 10 * MB;
                if loss >= 200_000 {
                    bytes = MB / if buf < 65536 { 4 } else { 1 };
                } else if buf < 65536 && (rtt >= 50 || loss > 0) {
                    bytes = 2 * MB / if loss >= 50_000 { 4 } else { 1 };
                }
                cells.push((
                    format!("rtt {rtt} ms loss {} % buf {buf}", loss / 10_000),
                    Cell {
                        link: link(rtt, loss),
                        bytes,
                        buf,
                        stall: None,
                        seed,
                        limit: Duration::from_secs(100_000),
                    },
                ));
            }
        }
    }
    // Reordering, duplication and corruption together.
    let mut l = link(50, 10_000);
    l.reorder_ppm = 50_000;
    l.reorder_jitter = Duration::from_millis(20);
    l.dup_ppm = 20_000;
    l.corrupt_ppm = 10_000;
    cells.push((
        "reorder+dup+corrupt".into(),
        Cell {
            link: l,
            bytes: 10 * MB,
            buf: 256 * 1024,
            stall: None,
            seed: 7,
            limit: Duration::from_secs(100_000),
        },
    ));
    // A receiver that stops reading for 5 s: zero window, persist probes.
    for (buf, loss) in [(256 * 1024, 0), (4096, 10_000)] {
        cells.push((
            format!("stall buf {buf} loss {loss}"),
            Cell {
                link: link(50, loss),
                bytes: 2 * MB,
                buf,
                stall: Some((Duration::from_millis(300), Duration::from_secs(5))),
                seed: 9,
                limit: Duration::from_secs(100_000),
            },
        ));
    }
    for (name, cell) in &cells {
        let wall = std::time::Instant::now();
        let t = transfer(cell);
        eprintln!(
            "{name:40} {:>8} KiB each way: sim {t:?}, wall {:?}",
            cell.bytes / 1024,
            wall.elapsed()
        );
    }
}
