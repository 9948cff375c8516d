//! Many concurrent TCP connections between two ringstack stacks in one
//! thread, joined by `dev::pipe`, with consecutive frames belonging to
//! different connections and different hosts.
//!
//! A single bulk flow keeps every one-entry cache on the path warm: the
//! input's last accepted (source, destination) pair, the output's last next
//! hop, the neighbour cache's last answer, TCP's last 4-tuple. Here each
//! connection runs from its own client address where it can (the client
//! stack holds up to `--addrs` addresses on one /16, and `Tcp::connect`
//! takes the source address to use) to one of a few server addresses, and
//! the applications serve the connections round-robin, so every frame
//! misses those caches and takes the hash lookups behind them.
//!
//! ```text
//! cargo run --release --example many_flows -- rr 4000 400000
//! cargo run --release --example many_flows -- stream 4000 200000
//! valgrind --tool=callgrind target/release/examples/many_flows rr 4000 20000
//! ```
//!
//! Modes:
//! - `rr`: every connection carries one transaction at a time, a 64-byte
//!   request answered by a 64-byte response; as soon as the client reads a
//!   response it sends the connection's next request. WORK transactions.
//! - `stream`: bulk client → server, the client writing one full segment
//!   (1460 bytes, 1448 with timestamps) per connection in turn, 64 a round,
//!   the server reading whatever arrived. WORK data segments; comparable with
//!   `examples/tcp_cost`'s single flow, but with about one ACK per two data
//!   segments instead of one per sixty.
//!
//! Connections are opened and warmed up (two passes over every connection)
//! before the measured WORK, which is timed by the wall clock. Under
//! callgrind, run it at two WORKs: the difference of the totals over the
//! difference in work is the steady-state cost, setup cancelled out
//! (`benches/many_flows.sh` does that and the timing runs).
//!
//! Options: `--addrs A` client addresses (default 16, or one per connection
//! when there are fewer), `--no-ts` timestamps off on both ends. Sixteen
//! already put a different address on every consecutive frame. More
//! measure something else: the stack's own-address checks walk its list of
//! addresses, so the client holding A addresses pays about 34 instructions
//! per address on every frame (A = 1000: 85 % of all the instructions), a
//! cost of playing many hosts in one stack.

use ringstack::dev::{pipe, Device};
use ringstack::eth::MacAddr;
use ringstack::ip::cidr::Ipv4Cidr;
use ringstack::stack::{Config, Stack};
use ringstack::tcp::{ConnHandle, TcpError};
use ringstack::time::{Duration, Instant};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

const MTU: usize = 1500;
/// Payload of a full segment: MTU − 40, less 12 for the timestamp option.
fn seg_size(timestamps: bool) -> usize {
    MTU - 40 - if timestamps { 12 } else { 0 }
}
const PORT: u16 = 5001;
/// Fake time per round (one poll of each stack and its application's work).
const STEP: Duration = Duration::from_micros(10);
/// Request and response size in `rr` mode: one small segment each.
const MSG: usize = 64;
/// Segments the `stream` client writes per round: the receiving stack's
/// default RX batch, so it keeps up and the pipe never fills.
const STREAM_PER_ROUND: usize = 64;
/// Send and receive buffers of every connection. Small, as a server with
/// thousands of connections would set them; the stream buffers are a whole
/// number of segments, so a one-segment write always finds room in one
/// piece of the ring.
const RR_BUF: usize = 4096;
const STREAM_BUF_SEGS: usize = 12;
/// Server addresses: the client's next hop changes from one frame to the
/// next too, while its address checks (linear over the addresses) stay short.
const SERVER_ADDRS: usize = 4;
const DEFAULT_CLIENT_ADDRS: usize = 16;
/// Connections opened per round during setup: few enough that the SYNs
/// waiting for ARP fit the neighbour cache's queues (16 per address, 256 in
/// all), so none is dropped and retried a second later.
const CONNECT_PER_ROUND: usize = 32;
/// No progress for this much fake time is a stall (a bug, not a result).
const STALL: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Rr,
    Stream,
}

fn server_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 1 + i as u8)
}

fn client_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 16 + (i / 250) as u8, 1 + (i % 250) as u8)
}

fn stack(mac: u8, addrs: &[Ipv4Addr], peers: usize, buf: usize, timestamps: bool) -> Stack {
    let cidr = |a: Ipv4Addr| Ipv4Cidr::new(a, 16).unwrap();
    let mut c = Config::new(MacAddr([2, 0, 0, 0, 0, mac]), cidr(addrs[0]));
    c.mtu = MTU;
    c.announce = false;
    c.seed = [mac; 32];
    c.tcp.rx_buffer = buf;
    c.tcp.tx_buffer = buf;
    c.tcp.timestamps = timestamps;
    // Room for every peer: evicting a neighbour the next frame needs would
    // turn the benchmark into one of ARP.
    c.arp.capacity = c.arp.capacity.max(2 * peers);
    let mut s = Stack::new(c).unwrap();
    for &a in &addrs[1..] {
        s.add_address(cidr(a));
    }
    s
}

struct Flow {
    c: ConnHandle,
    s: ConnHandle,
    /// Bytes of the message in flight the reader has seen so far.
    got: usize,
}

struct Bench {
    mode: Mode,
    seg: usize,
    a: Stack,
    b: Stack,
    da: pipe::PipeDevice,
    db: pipe::PipeDevice,
    now: Instant,
    flows: Vec<Flow>,
    /// Where each application's round-robin pass resumes. Frames travel in
    /// the order the applications wrote them (the stack sends connections
    /// in the order they became ready, the pipe keeps order), so each reader
    /// finds its next message on the connection at its cursor.
    client_at: usize,
    server_at: usize,
    /// Work done: transactions completed (rr) or segments read (stream).
    done: u64,
    last_progress: Instant,
}

impl Bench {
    fn new(mode: Mode, n: usize, addrs: usize, timestamps: bool) -> Bench {
        let seg = seg_size(timestamps);
        let buf = match mode {
            Mode::Rr => RR_BUF,
            Mode::Stream => STREAM_BUF_SEGS * seg,
        };
        let saddrs: Vec<_> = (0..SERVER_ADDRS.min(n)).map(server_addr).collect();
        let caddrs: Vec<_> = (0..addrs).map(client_addr).collect();
        let (da, db) = pipe::pair(MTU);
        let mut b = Bench {
            mode,
            seg,
            a: stack(1, &caddrs, saddrs.len(), buf, timestamps),
            b: stack(2, &saddrs, caddrs.len(), buf, timestamps),
            da,
            db,
            now: Instant::from_secs(1),
            flows: Vec::with_capacity(n),
            client_at: 0,
            server_at: 0,
            done: 0,
            last_progress: Instant::from_secs(1),
        };
        let l = b.b.tcp_listen(PORT, n).unwrap();
        // Server connections are paired with their client side by the
        // client's address and port, so both cursors walk the same order.
        // A BTreeMap: std's HashMap seeds its hasher at random, which would
        // make the setup's instruction count differ from run to run.
        let mut index = BTreeMap::new();
        let mut server = vec![None; n];
        let mut accepted = 0;
        let mut clients = Vec::with_capacity(n);
        for round in 0..1_000_000 {
            for _ in 0..CONNECT_PER_ROUND {
                let i = clients.len();
                if i == n {
                    break;
                }
                let local = SocketAddrV4::new(caddrs[i % caddrs.len()], 0);
                let remote = SocketAddrV4::new(saddrs[i % saddrs.len()], PORT);
                let c = b.a.tcp().connect(b.now, local, remote).unwrap();
                index.insert(b.a.tcp_ref().local_addr(c).unwrap(), i);
                clients.push(c);
            }
            b.now += STEP;
            b.a.poll(b.now, &mut b.da).unwrap();
            b.b.poll(b.now, &mut b.db).unwrap();
            while let Ok(s) = b.b.tcp().accept(l) {
                let peer = b.b.tcp_ref().peer_addr(s).unwrap();
                server[index[&peer]] = Some(s);
                accepted += 1;
            }
            let up = clients.len() == n
                && accepted == n
                && clients
                    .iter()
                    .all(|&c| b.a.tcp_ref().readiness(c).unwrap().writable);
            if up {
                b.flows = clients
                    .iter()
                    .zip(server)
                    .map(|(&c, s)| Flow {
                        c,
                        s: s.unwrap(),
                        got: 0,
                    })
                    .collect();
                if mode == Mode::Rr {
                    for i in 0..n {
                        b.send(true, i, MSG);
                    }
                }
                return b;
            }
            assert!(round < 999_999, "connections did not come up");
        }
        unreachable!()
    }

    /// Writes `len` bytes on flow `i` (the client's side or the server's),
    /// all of which must fit.
    fn send(&mut self, client: bool, i: usize, len: usize) {
        let (st, h) = if client {
            (&mut self.a, self.flows[i].c)
        } else {
            (&mut self.b, self.flows[i].s)
        };
        let n = st.tcp().send_with(h, |buf| len.min(buf.len())).unwrap();
        assert_eq!(n, len, "no room for a message of {len} bytes");
    }

    /// Reads what flow `i` has at the client or the server; 0 when nothing.
    fn recv(&mut self, client: bool, i: usize) -> usize {
        let (st, h) = if client {
            (&mut self.a, self.flows[i].c)
        } else {
            (&mut self.b, self.flows[i].s)
        };
        let mut total = 0;
        loop {
            match st.tcp().recv_with(h, |d| d.len()) {
                Ok(0) => panic!("EOF on flow {i}"),
                Ok(n) => total += n,
                Err(TcpError::WouldBlock) => return total,
                Err(e) => panic!("flow {i}: {e}"),
            }
        }
    }

    fn round(&mut self) {
        let n = self.flows.len();
        self.now += STEP;
        self.a.poll(self.now, &mut self.da).unwrap();
        match self.mode {
            Mode::Rr => loop {
                // A response, whole: the transaction is done and the
                // connection's next request goes out.
                let i = self.client_at;
                self.flows[i].got += self.recv(true, i);
                if self.flows[i].got < MSG {
                    break;
                }
                assert_eq!(self.flows[i].got, MSG);
                self.flows[i].got = 0;
                self.done += 1;
                self.last_progress = self.now;
                self.send(true, i, MSG);
                self.client_at = (i + 1) % n;
            },
            Mode::Stream => {
                let seg = self.seg;
                for _ in 0..STREAM_PER_ROUND {
                    let i = self.client_at;
                    let h = self.flows[i].c;
                    let w = self
                        .a
                        .tcp()
                        .send_with(h, |buf| if buf.len() >= seg { seg } else { 0 });
                    match w {
                        Ok(0) | Err(TcpError::WouldBlock) => break,
                        Ok(_) => self.client_at = (i + 1) % n,
                        r => panic!("flow {i}: send {r:?}"),
                    }
                }
            }
        }
        self.b.poll(self.now, &mut self.db).unwrap();
        match self.mode {
            Mode::Rr => loop {
                let i = self.server_at;
                self.flows[i].got += self.recv(false, i);
                if self.flows[i].got < MSG {
                    break;
                }
                assert_eq!(self.flows[i].got, MSG);
                self.flows[i].got = 0;
                self.send(false, i, MSG);
                self.server_at = (i + 1) % n;
            },
            Mode::Stream => loop {
                // Each connection's next segment, in the order written;
                // with one connection, everything it has.
                let i = self.server_at;
                let got = self.recv(false, i);
                if got == 0 {
                    break;
                }
                let f = &mut self.flows[i];
                f.got += got;
                self.done += (f.got / self.seg) as u64;
                f.got %= self.seg;
                self.last_progress = self.now;
                self.server_at = (i + 1) % n;
                if n == 1 {
                    break;
                }
            },
        }
        if self.now.saturating_since(self.last_progress) > STALL {
            panic!(
                "stalled after {} units of work (client at {}, server at {})",
                self.done, self.client_at, self.server_at
            );
        }
    }

    fn run(&mut self, work: u64) -> Outcome {
        let (fa, fb) = (self.da.stats().tx_frames, self.db.stats().tx_frames);
        let goal = self.done + work;
        let mut rounds = 0;
        let start = std::time::Instant::now();
        while self.done < goal {
            self.round();
            rounds += 1;
        }
        Outcome {
            secs: start.elapsed().as_secs_f64(),
            work: self.done - (goal - work),
            rounds,
            frames_ab: self.da.stats().tx_frames - fa,
            frames_ba: self.db.stats().tx_frames - fb,
        }
    }

    fn retransmits(&self) -> u64 {
        self.a.tcp_ref().stats().retrans_segs + self.b.tcp_ref().stats().retrans_segs
    }
}

struct Outcome {
    secs: f64,
    work: u64,
    rounds: u64,
    frames_ab: u64,
    frames_ba: u64,
}

fn usage() -> ! {
    eprintln!("usage: many_flows rr|stream FLOWS WORK [--addrs A] [--no-ts]");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args.first().map(String::as_str) {
        Some("rr") => Mode::Rr,
        Some("stream") => Mode::Stream,
        _ => usage(),
    };
    let n: usize = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| usage());
    let work: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| usage());
    let addrs = match args.iter().position(|a| a == "--addrs") {
        Some(i) => args
            .get(i + 1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| usage()),
        None => n.min(DEFAULT_CLIENT_ADDRS),
    };
    let timestamps = !args.iter().any(|a| a == "--no-ts");
    if n == 0 || addrs == 0 || addrs > n || addrs > 250 * 200 {
        usage();
    }
    let mut b = Bench::new(mode, n, addrs, timestamps);
    // Two passes over every connection: slow start done, every ring
    // allocated, every cache entry made.
    b.run(2 * n as u64 + 1000);
    let r = b.run(work);
    assert_eq!(
        b.retransmits(),
        0,
        "a fault-free pipe needs no retransmission"
    );
    let (what, rate) = match mode {
        Mode::Rr => (
            "transactions",
            format!("{:.0} transactions/s", r.work as f64 / r.secs),
        ),
        Mode::Stream => (
            "segments",
            format!("{:.1} MB/s", (r.work * b.seg as u64) as f64 / r.secs / 1e6),
        ),
    };
    println!(
        "{} flows {n} addrs {addrs} ts {}: {} {what} in {:.3} s, {rate}, {} rounds, {} frames client to server, {} frames server to client",
        if mode == Mode::Rr { "rr" } else { "stream" },
        if timestamps { "on" } else { "off" },
        r.work,
        r.secs,
        r.rounds,
        r.frames_ab,
        r.frames_ba,
    );
    // Not dropped: the drop walks hash maps whose hashers std seeds at
    // random, which would make callgrind's total differ from run to run.
    std::mem::forget(b);
}
