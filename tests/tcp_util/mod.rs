//! Shared test harness for the TCP engine: two `Tcp` tables joined by a
//! seeded lossy channel (`Net`), and a single table driven by hand-made
//! segments (`Raw`). Time is simulated: the clock jumps to the next event.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{Ipv4Addr, SocketAddrV4};

use ringstack::tcp::wire::{Packet, Repr};
use ringstack::tcp::{ConnHandle, SegmentOut, SeqNumber, State, Tcp, TcpConfig};
use ringstack::time::{Duration, Instant};

pub const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

pub struct XorShift(pub u64);
impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// True with probability `ppm` parts per million.
    pub fn chance(&mut self, ppm: u64) -> bool {
        ppm > 0 && self.next() % 1_000_000 < ppm
    }
}

/// A serialized segment.
#[derive(Clone, Debug)]
pub struct Seg {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// The IPv4 TOS byte the engine asked for (0 for injected segments).
    pub tos: u8,
    pub bytes: Vec<u8>,
}

impl Seg {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, r: &Repr<'_>) -> Seg {
        Seg::with_tos(src, dst, 0, r)
    }

    /// What the engine emitted, with the TOS byte it handed over.
    pub fn with_tos(src: Ipv4Addr, dst: Ipv4Addr, tos: u8, r: &Repr<'_>) -> Seg {
        let mut bytes = vec![0; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut bytes[..]), src, dst);
        Seg {
            src,
            dst,
            tos,
            bytes,
        }
    }
    pub fn repr(&self) -> Repr<'_> {
        let p = Packet::new_checked(&self.bytes[..]).expect("our own segment");
        Repr::parse(&p, self.src, self.dst).expect("our own segment")
    }
}

#[derive(Clone, Debug, Default)]
pub struct Link {
    /// One-way delay.
    pub delay: Duration,
    pub loss_ppm: u64,
    pub dup_ppm: u64,
    /// Extra random delay of up to `reorder_jitter` for this share.
    pub reorder_ppm: u64,
    pub reorder_jitter: Duration,
    pub corrupt_ppm: u64,
    /// Bottleneck rate in bytes per second (0: none) and its queue in bytes.
    pub rate: u64,
    pub queue: usize,
}

/// Returns false to drop a segment on purpose.
pub type Filter = Box<dyn FnMut(Instant, &Repr<'_>, Ipv4Addr) -> bool>;

pub struct Net {
    pub now: Instant,
    pub a: Tcp,
    pub b: Tcp,
    pub link: Link,
    pub rng: XorShift,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    flights: std::collections::HashMap<u64, Seg>,
    next_id: u64,
    busy: [Instant; 2],
    pub delivered: u64,
    pub dropped: u64,
    stalls: u64,
    /// Every segment sent, if capturing.
    pub capture: Option<Vec<(Instant, Seg)>>,
    /// Returns false to drop a segment on purpose.
    pub filter: Option<Filter>,
}

impl Net {
    pub fn new(ca: TcpConfig, cb: TcpConfig, link: Link, seed: u64) -> Net {
        let mut sa = [0u8; 32];
        sa[..8].copy_from_slice(&seed.to_le_bytes());
        let mut sb = sa;
        sb[8] = 1;
        Net {
            now: Instant::from_secs(1000),
            a: Tcp::new(ca, sa),
            b: Tcp::new(cb, sb),
            link,
            rng: XorShift(seed | 1),
            heap: BinaryHeap::new(),
            flights: Default::default(),
            next_id: 0,
            busy: [Instant::ZERO; 2],
            delivered: 0,
            dropped: 0,
            stalls: 0,
            capture: None,
            filter: None,
        }
    }

    fn enqueue(&mut self, seg: Seg) {
        if let Some(c) = self.capture.as_mut() {
            c.push((self.now, seg.clone()));
        }
        if let Some(f) = self.filter.as_mut() {
            if !f(self.now, &seg.repr(), seg.src) {
                self.dropped += 1;
                return;
            }
        }
        let l = self.link.clone();
        if self.rng.chance(l.loss_ppm) {
            self.dropped += 1;
            return;
        }
        let dir = usize::from(seg.src == B);
        let mut depart = self.now;
        if l.rate > 0 {
            let start = self.busy[dir].max(self.now);
            let backlog = (start - self.now).total_micros() * l.rate / 1_000_000;
            if backlog as usize > l.queue {
                self.dropped += 1;
                return;
            }
            let tx = Duration::from_micros((seg.bytes.len() as u64 + 40) * 1_000_000 / l.rate);
            depart = start + tx;
            self.busy[dir] = depart;
        }
        let mut at = depart + l.delay;
        if self.rng.chance(l.reorder_ppm) && l.reorder_jitter > Duration::ZERO {
            at += Duration::from_micros(self.rng.next() % l.reorder_jitter.total_micros());
        }
        let mut seg = seg;
        if self.rng.chance(l.corrupt_ppm) {
            let i = (self.rng.next() as usize) % seg.bytes.len();
            seg.bytes[i] ^= 1 << (self.rng.next() % 8);
        }
        let copies = if self.rng.chance(l.dup_ppm) { 2 } else { 1 };
        for _ in 0..copies {
            let id = self.next_id;
            self.next_id += 1;
            self.flights.insert(id, seg.clone());
            self.heap.push(Reverse((at, id)));
        }
    }

    fn poll_both(&mut self) {
        let now = self.now;
        let mut out = Vec::new();
        self.a.poll_out(now, &mut Capture(&mut out));
        self.b.poll_out(now, &mut Capture(&mut out));
        for s in out {
            self.enqueue(s);
        }
    }

    /// Delivers everything due now, then polls both tables.
    pub fn run_now(&mut self) {
        let mut out = Vec::new();
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if at > self.now {
                break;
            }
            self.heap.pop();
            let seg = self.flights.remove(&id).unwrap();
            let Ok(p) = Packet::new_checked(&seg.bytes[..]) else {
                continue;
            };
            // As the stack hands segments over: the payload's checksum is
            // left to the engine, which sums in-order data while staging
            // it in the receive ring (and the link corrupts some).
            let Ok((r, check)) = Repr::parse_deferring_payload(&p, seg.src, seg.dst) else {
                continue;
            };
            let tcp = if seg.dst == A {
                &mut self.a
            } else {
                &mut self.b
            };
            let intact = tcp.process_unverified(
                self.now,
                seg.src,
                seg.dst,
                &r,
                check,
                &mut |s, d, tos, r| {
                    out.push(Seg::with_tos(s, d, tos, r));
                    true
                },
            );
            self.delivered += u64::from(intact);
        }
        for s in out {
            self.enqueue(s);
        }
        self.poll_both();
    }

    /// The next instant anything happens.
    pub fn next_event(&self) -> Option<Instant> {
        [
            self.a.poll_at(),
            self.b.poll_at(),
            self.heap.peek().map(|Reverse((t, _))| *t),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Jumps to the next event (never backwards, never past `limit`) and
    /// runs it. False if nothing is scheduled before `limit`.
    pub fn step(&mut self, limit: Instant) -> bool {
        match self.next_event() {
            Some(t) if t <= limit => {
                if t <= self.now {
                    self.stalls += 1;
                    assert!(
                        self.stalls < 10_000,
                        "no progress at {:?}: a={:?} b={:?}",
                        self.now,
                        self.a.poll_at(),
                        self.b.poll_at()
                    );
                } else {
                    self.stalls = 0;
                }
                self.now = self.now.max(t);
                self.run_now();
                true
            }
            _ => {
                self.now = self.now.max(limit);
                self.run_now();
                false
            }
        }
    }

    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.step(end) {}
    }

    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Net) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            if done(self) {
                return true;
            }
            if !self.step(end) && self.now >= end {
                return done(self);
            }
        }
    }
}

/// The byte at offset `i` of test stream `k`: cheap, not periodic in any
/// segment-sized way.
pub fn pattern(k: u64, i: u64) -> u8 {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ k.wrapping_mul(0xd6e8_feb8_6659_fd93);
    (x >> 56) as u8 ^ (i >> 11) as u8
}

/// A single table fed hand-made segments from a scripted peer.
pub struct Raw {
    pub now: Instant,
    pub tcp: Tcp,
    pub out: Vec<Seg>,
}

pub const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

impl Raw {
    pub fn new(cfg: TcpConfig) -> Raw {
        Raw {
            now: Instant::from_secs(100),
            tcp: Tcp::new(cfg, [7; 32]),
            out: Vec::new(),
        }
    }

    /// A segment from PEER:`sport` to US:`dport`.
    pub fn inject(&mut self, r: &Repr<'_>) {
        let seg = Seg::new(PEER, US, r);
        let p = Packet::new_checked(&seg.bytes[..]).unwrap();
        let r = Repr::parse(&p, PEER, US).unwrap();
        let out = &mut self.out;
        self.tcp
            .process(self.now, PEER, US, &r, &mut |s, d, tos, r| {
                out.push(Seg::with_tos(s, d, tos, r));
                true
            });
    }

    /// [`Raw::inject`] the way the stack hands segments over: payload
    /// unverified, so in-order data is staged in the receive ring and
    /// header prediction may take it.
    pub fn inject_staged(&mut self, r: &Repr<'_>) {
        let seg = Seg::new(PEER, US, r);
        let p = Packet::new_checked(&seg.bytes[..]).unwrap();
        let (r, check) = Repr::parse_deferring_payload(&p, PEER, US).unwrap();
        let out = &mut self.out;
        let intact =
            self.tcp
                .process_unverified(self.now, PEER, US, &r, check, &mut |s, d, tos, r| {
                    out.push(Seg::with_tos(s, d, tos, r));
                    true
                });
        assert!(intact, "a segment we built has a good checksum");
    }

    pub fn poll(&mut self) {
        self.tcp.poll_out(self.now, &mut Capture(&mut self.out));
    }

    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.tcp.poll_at() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.poll();
            if self.tcp.poll_at() == Some(self.now) {
                // Ready list non-empty with nothing to send would spin.
                self.poll();
                if self.tcp.poll_at() == Some(self.now) {
                    break;
                }
            }
        }
        self.now = end;
        self.poll();
    }

    pub fn take(&mut self) -> Vec<Seg> {
        std::mem::take(&mut self.out)
    }
}

pub fn sa(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

pub fn seq(v: u32) -> SeqNumber {
    SeqNumber(v)
}

/// A link with `one_way` milliseconds of delay each way and nothing else.
pub fn link_ms(one_way: u64) -> Link {
    Link {
        delay: Duration::from_millis(one_way),
        ..Link::default()
    }
}

/// A connects to B's port 80; returns (A's end, B's accepted end) once A is
/// ESTABLISHED. Panics if that takes a minute of simulated time.
pub fn open(net: &mut Net) -> (ConnHandle, ConnHandle) {
    let l = net.b.listen(sa(B, 80), 16).unwrap();
    let c = net.a.connect(net.now, sa(A, 0), sa(B, 80)).unwrap();
    let mut s = None;
    assert!(net.run_until(Duration::from_secs(60), |n| {
        if s.is_none() {
            s = n.b.accept(l).ok();
        }
        s.is_some() && n.a.state(c) == Ok(State::Established)
    }));
    (c, s.unwrap())
}

/// The harness's output: every segment captured, and runs taken and cut
/// into their segments as the stack's output writes them (through
/// [`Repr::run_header`]), so the engine's run path is what these tests
/// drive.
pub struct Capture<'a>(pub &'a mut Vec<Seg>);

impl SegmentOut for Capture<'_> {
    fn segment(&mut self, src: Ipv4Addr, dst: Ipv4Addr, tos: u8, seg: &Repr<'_>) -> bool {
        self.0.push(Seg::with_tos(src, dst, tos, seg));
        true
    }

    fn run(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        tos: u8,
        first: &Repr<'_>,
        mss: usize,
    ) -> Option<usize> {
        // Written from the run's header template, as the stack's direct
        // path writes them, so every test on this harness checks those
        // bytes (the receiver verifies each checksum).
        let Some(h) = first.run_header(src, dst, mss) else {
            return Some(0);
        };
        for n in 0..h.segments() {
            let mut bytes = vec![0; h.header_len() + mss];
            h.write(&mut bytes, n);
            self.0.push(Seg {
                src,
                dst,
                tos,
                bytes,
            });
        }
        Some(h.segments())
    }
}
