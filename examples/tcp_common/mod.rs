//! Two TCP stacks in one thread moving bulk data, for `benches/tcp.rs` and
//! `examples/tcp_cost.rs`: ringstack (two `Stack`s on `dev::pipe::pair`)
//! and smoltcp 0.12 (two `Interface`s on an in-memory pair built the same
//! way: bounded FIFO per direction, frame buffers recycled without being cleared).
//!
//! Both sides are set up alike: Ethernet, MTU 1500 (MSS 1460), 256 KiB
//! send and receive buffers, window scaling, software checksums computed
//! and verified, a Reno-family congestion controller (ringstack NewReno,
//! smoltcp Reno), delayed ACKs at each stack's default, and TCP timestamps
//! on or off on both. The clock is fake: it advances `STEP` per round, a
//! round being one poll of each stack plus its application's work.
//!
//! Unless `check` is asked for, the applications neither write nor read
//! the payload (`send_with` / `recv` closures that only count), so what is
//! timed is the stacks' own work: segmentation, headers, checksums, the
//! copy between ring and frame on each side, ACK processing and timers.
#![allow(dead_code)]

use ringstack::dev::{pipe, Device};
use ringstack::eth::MacAddr;
use ringstack::stack::{Config, Stack};
use ringstack::tcp::{ConnHandle, TcpError};
use ringstack::time::{Duration, Instant};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};

use smoltcp::iface::{Config as SmolConfig, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

/// Buffer size of every send and receive buffer, both stacks.
pub const BUF: usize = 256 * 1024;
/// L3 MTU of both links; MSS = MTU − 40 = 1460.
pub const MTU: usize = 1500;
pub const MSS: u64 = 1460;
/// Fake time per round.
pub const STEP: Duration = Duration::from_micros(10);
/// Frames one direction of either in-memory link holds (pipe's default).
pub const QUEUE: usize = pipe::DEFAULT_QUEUE_FRAMES;
/// A transfer that makes no progress for this much fake time has stalled.
const STALL: Duration = Duration::from_secs(10);

const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PORT: u16 = 5001;

/// Byte `i` of the stream when the data is checked.
fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

fn fill(buf: &mut [u8], pos: u64) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = pattern(pos + k as u64);
    }
}

fn verify(buf: &[u8], pos: u64) {
    for (k, b) in buf.iter().enumerate() {
        assert_eq!(
            *b,
            pattern(pos + k as u64),
            "wrong byte at stream offset {}",
            pos + k as u64
        );
    }
}

/// What one transfer did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub bytes: u64,
    pub rounds: u64,
    /// Frames client → server (data) and server → client (ACKs).
    pub frames_data_dir: u64,
    pub frames_ack_dir: u64,
    /// Retransmitted segments, where the stack reports them.
    pub retransmits: Option<u64>,
}

/// Options both stacks get.
#[derive(Debug, Clone, Copy)]
pub struct Opts {
    pub timestamps: bool,
}

/// A connected client/server pair that can move data client → server.
pub trait Bulk {
    fn name(&self) -> &'static str;
    /// Moves `bytes` more bytes from client to server; returns when the
    /// server's application has read them all. With `check` the sender
    /// writes a pattern and the receiver verifies every byte.
    fn transfer(&mut self, bytes: u64, check: bool) -> Outcome;
    /// Closes both directions gracefully and checks both ends see EOF.
    fn close(&mut self);
}

pub fn make(name: &str, o: Opts) -> Box<dyn Bulk> {
    make_with(name, o, MTU)
}

/// [`make`] with both links at another L3 MTU (MSS = `mtu` − 40).
pub fn make_with(name: &str, o: Opts, mtu: usize) -> Box<dyn Bulk> {
    match name {
        "ringstack" => Box::new(RsPair::new(o, mtu)),
        "smoltcp" => Box::new(SmolPair::new(o, mtu)),
        _ => panic!("stack must be ringstack or smoltcp"),
    }
}

// ----- ringstack ------------------------------------------------------------

pub struct RsPair {
    a: Stack,
    b: Stack,
    da: pipe::PipeDevice,
    db: pipe::PipeDevice,
    now: Instant,
    client: ConnHandle,
    server: ConnHandle,
    sent: u64,
    recvd: u64,
}

fn rs_stack(ip: Ipv4Addr, last: u8, o: Opts, mtu: usize) -> Stack {
    let mut c = Config::new(
        MacAddr([2, 0, 0, 0, 0, last]),
        format!("{ip}/24").parse().unwrap(),
    );
    c.mtu = mtu;
    c.announce = false;
    c.seed = [last; 32];
    c.tcp.rx_buffer = BUF;
    c.tcp.tx_buffer = BUF;
    c.tcp.timestamps = o.timestamps;
    Stack::new(c).unwrap()
}

impl RsPair {
    pub fn new(o: Opts, mtu: usize) -> RsPair {
        let (da, db) = pipe::pair(mtu);
        let mut a = rs_stack(CLIENT_IP, 1, o, mtu);
        let mut b = rs_stack(SERVER_IP, 2, o, mtu);
        let now = Instant::from_secs(1);
        let l = b.tcp_listen(PORT, 8).unwrap();
        let client = a
            .tcp_connect(now, SocketAddrV4::new(SERVER_IP, PORT))
            .unwrap();
        let mut p = RsPair {
            a,
            b,
            da,
            db,
            now,
            client,
            server: client,
            sent: 0,
            recvd: 0,
        };
        let mut server = None;
        for _ in 0..100_000 {
            p.round();
            if server.is_none() {
                server = p.b.tcp().accept(l).ok();
            }
            let up = p.a.tcp().readiness(client).unwrap().writable;
            if let (true, Some(s)) = (up, server) {
                p.server = s;
                return p;
            }
        }
        panic!("ringstack: the connection did not come up");
    }

    fn round(&mut self) {
        self.now += STEP;
        self.a.poll(self.now, &mut self.da).unwrap();
        self.b.poll(self.now, &mut self.db).unwrap();
    }
}

impl Bulk for RsPair {
    fn name(&self) -> &'static str {
        "ringstack"
    }

    fn transfer(&mut self, bytes: u64, check: bool) -> Outcome {
        let (fa, fb) = (self.da.stats().tx_frames, self.db.stats().tx_frames);
        let rtx0 = self.a.tcp().conn_stats(self.client).unwrap().retransmits;
        let goal_sent = self.sent + bytes;
        let goal_recvd = self.recvd + bytes;
        let mut rounds = 0u64;
        let mut last_progress = self.now;
        while self.recvd < goal_recvd {
            self.now += STEP;
            rounds += 1;
            self.a.poll(self.now, &mut self.da).unwrap();
            let tcp = self.a.tcp();
            while self.sent < goal_sent {
                let left = goal_sent - self.sent;
                let pos = self.sent;
                match tcp.send_with(self.client, |buf| {
                    let n = (buf.len() as u64).min(left) as usize;
                    if check {
                        fill(&mut buf[..n], pos);
                    }
                    n
                }) {
                    Ok(0) | Err(TcpError::WouldBlock) => break,
                    Ok(n) => self.sent += n as u64,
                    Err(e) => panic!("ringstack: send after {} bytes: {e}", self.sent),
                }
            }
            self.b.poll(self.now, &mut self.db).unwrap();
            let tcp = self.b.tcp();
            loop {
                let pos = self.recvd;
                match tcp.recv_with(self.server, |d| {
                    if check {
                        verify(d, pos);
                    }
                    d.len()
                }) {
                    Ok(0) => panic!("ringstack: EOF after {} of {goal_recvd} bytes", self.recvd),
                    Ok(n) => {
                        self.recvd += n as u64;
                        last_progress = self.now;
                    }
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => panic!("ringstack: recv after {} bytes: {e}", self.recvd),
                }
            }
            if self.now.saturating_since(last_progress) > STALL {
                panic!(
                    "ringstack: stalled at {} of {goal_recvd} bytes received ({} sent); client {:?}; server {:?}",
                    self.recvd,
                    self.sent,
                    self.a.tcp().conn_stats(self.client),
                    self.b.tcp().conn_stats(self.server)
                );
            }
        }
        assert_eq!(self.recvd, goal_recvd, "ringstack: more bytes than sent");
        Outcome {
            bytes,
            rounds,
            frames_data_dir: self.da.stats().tx_frames - fa,
            frames_ack_dir: self.db.stats().tx_frames - fb,
            retransmits: Some(self.a.tcp().conn_stats(self.client).unwrap().retransmits - rtx0),
        }
    }

    fn close(&mut self) {
        self.a.tcp().shutdown_write(self.client).unwrap();
        let (mut server_eof, mut client_eof) = (false, false);
        let mut buf = [0u8; 64];
        for _ in 0..1_000_000 {
            self.round();
            if !server_eof {
                match self.b.tcp().recv(self.server, &mut buf) {
                    Ok(0) => {
                        server_eof = true;
                        self.b.tcp().close(self.server).unwrap();
                    }
                    Ok(n) => panic!("ringstack: {n} bytes after the data"),
                    Err(TcpError::WouldBlock) => {}
                    Err(e) => panic!("ringstack: server close: {e}"),
                }
            }
            if server_eof && !client_eof {
                match self.a.tcp().recv(self.client, &mut buf) {
                    Ok(0) => {
                        client_eof = true;
                        self.a.tcp().close(self.client).unwrap();
                    }
                    Ok(n) => panic!("ringstack: {n} unexpected bytes at the client"),
                    Err(TcpError::WouldBlock) => {}
                    Err(e) => panic!("ringstack: client close: {e}"),
                }
            }
            if client_eof && self.b.tcp_ref().connection_count() == 0 {
                // The server's side is gone (LAST-ACK acknowledged); the
                // client sits in TIME-WAIT.
                return;
            }
        }
        panic!(
            "ringstack: close did not finish (server EOF {server_eof}, client EOF {client_eof})"
        );
    }
}

// ----- smoltcp ----------------------------------------------------------------

/// One direction of the smoltcp link: what `SmolDev`'s pipe does, for
/// smoltcp's token API.
#[derive(Default)]
struct SLink {
    /// Each frame is the first `.1` bytes of its buffer; buffers keep their
    /// grown length when recycled, as in ringstack's pipe, so neither link
    /// zeroes a frame before the stack writes it.
    frames: VecDeque<(Vec<u8>, usize)>,
    free: Vec<Vec<u8>>,
    sent: u64,
    mtu: usize,
}

pub struct SmolDev {
    rx: Rc<RefCell<SLink>>,
    tx: Rc<RefCell<SLink>>,
}

fn smol_pair(mtu: usize) -> (SmolDev, SmolDev) {
    let link = || {
        Rc::new(RefCell::new(SLink {
            mtu,
            ..SLink::default()
        }))
    };
    let (ab, ba) = (link(), link());
    (
        SmolDev {
            rx: ba.clone(),
            tx: ab.clone(),
        },
        SmolDev { rx: ab, tx: ba },
    )
}

pub struct SmolRx {
    buf: Vec<u8>,
    len: usize,
    link: Rc<RefCell<SLink>>,
}

impl phy::RxToken for SmolRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(&self.buf[..self.len]);
        self.link.borrow_mut().free.push(self.buf);
        r
    }
}

pub struct SmolTx {
    link: Rc<RefCell<SLink>>,
}

impl phy::TxToken for SmolTx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut l = self.link.borrow_mut();
        let cap = l.mtu + 18;
        let mut buf = l.free.pop().unwrap_or_else(|| Vec::with_capacity(cap));
        drop(l);
        if buf.len() < len {
            buf.resize(len, 0);
        }
        let r = f(&mut buf[..len]);
        let mut l = self.link.borrow_mut();
        l.frames.push_back((buf, len));
        l.sent += 1;
        r
    }
}

impl phy::Device for SmolDev {
    type RxToken<'a> = SmolRx;
    type TxToken<'a> = SmolTx;

    fn receive(
        &mut self,
        _: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (buf, len) = self.rx.borrow_mut().frames.pop_front()?;
        Some((
            SmolRx {
                buf,
                len,
                link: self.rx.clone(),
            },
            SmolTx {
                link: self.tx.clone(),
            },
        ))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        if self.tx.borrow().frames.len() >= QUEUE {
            return None;
        }
        Some(SmolTx {
            link: self.tx.clone(),
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = self.tx.borrow().mtu + 14;
        // Checksums: the default (computed on send, verified on receive),
        // as ringstack does.
        c
    }
}

/// smoltcp's timestamp generator is a plain `fn() -> u32`; it reads the
/// fake clock from here (milliseconds).
static SMOL_TS_CLOCK: AtomicU32 = AtomicU32::new(1);

fn smol_tsval() -> u32 {
    SMOL_TS_CLOCK.load(Ordering::Relaxed)
}

pub struct SmolPair {
    ia: Interface,
    ib: Interface,
    da: SmolDev,
    db: SmolDev,
    sa: SocketSet<'static>,
    sb: SocketSet<'static>,
    client: SocketHandle,
    server: SocketHandle,
    now: Instant,
    sent: u64,
    recvd: u64,
}

fn smol_now(t: Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(t.total_micros())
}

fn smol_iface(dev: &mut SmolDev, ip: Ipv4Addr, last: u8, now: Instant) -> Interface {
    let mut c = SmolConfig::new(EthernetAddress([2, 0, 0, 0, 0, last]).into());
    c.random_seed = u64::from(last);
    let mut i = Interface::new(c, dev, smol_now(now));
    i.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::Ipv4(ip), 24)).unwrap();
    });
    i
}

fn smol_socket(o: Opts) -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0u8; BUF]),
        tcp::SocketBuffer::new(vec![0u8; BUF]),
    );
    if o.timestamps {
        s.set_tsval_generator(Some(smol_tsval));
    }
    s
}

/// One poll: every received frame, then egress until the socket has
/// nothing more to send (smoltcp's `poll` sends one segment per socket).
fn smol_pump(i: &mut Interface, d: &mut SmolDev, s: &mut SocketSet<'static>, now: Instant) {
    i.poll(smol_now(now), d, s);
    while i.poll_egress(smol_now(now), d, s) == PollResult::SocketStateChanged {}
}

impl SmolPair {
    pub fn new(o: Opts, mtu: usize) -> SmolPair {
        let now = Instant::from_secs(1);
        let (mut da, mut db) = smol_pair(mtu);
        let ia = smol_iface(&mut da, CLIENT_IP, 1, now);
        let ib = smol_iface(&mut db, SERVER_IP, 2, now);
        let mut sa = SocketSet::new(Vec::new());
        let mut sb = SocketSet::new(Vec::new());
        let mut srv = smol_socket(o);
        srv.listen(PORT).unwrap();
        let server = sb.add(srv);
        let client = sa.add(smol_socket(o));
        let mut p = SmolPair {
            ia,
            ib,
            da,
            db,
            sa,
            sb,
            client,
            server,
            now,
            sent: 0,
            recvd: 0,
        };
        p.sa.get_mut::<tcp::Socket>(client)
            .connect(p.ia.context(), (IpAddress::Ipv4(SERVER_IP), PORT), 49152u16)
            .unwrap();
        for _ in 0..100_000 {
            p.round();
            let c = p.sa.get::<tcp::Socket>(client);
            let s = p.sb.get::<tcp::Socket>(server);
            if c.state() == tcp::State::Established && s.state() == tcp::State::Established {
                return p;
            }
        }
        panic!("smoltcp: the connection did not come up");
    }

    fn round(&mut self) {
        self.now += STEP;
        SMOL_TS_CLOCK.store(self.now.total_millis() as u32, Ordering::Relaxed);
        smol_pump(&mut self.ia, &mut self.da, &mut self.sa, self.now);
        smol_pump(&mut self.ib, &mut self.db, &mut self.sb, self.now);
    }
}

impl Bulk for SmolPair {
    fn name(&self) -> &'static str {
        "smoltcp"
    }

    fn transfer(&mut self, bytes: u64, check: bool) -> Outcome {
        let (fa, fb) = (self.da.tx.borrow().sent, self.db.tx.borrow().sent);
        let goal_sent = self.sent + bytes;
        let goal_recvd = self.recvd + bytes;
        let mut rounds = 0u64;
        let mut last_progress = self.now;
        while self.recvd < goal_recvd {
            self.now += STEP;
            rounds += 1;
            SMOL_TS_CLOCK.store(self.now.total_millis() as u32, Ordering::Relaxed);
            smol_pump(&mut self.ia, &mut self.da, &mut self.sa, self.now);
            let c = self.sa.get_mut::<tcp::Socket>(self.client);
            while self.sent < goal_sent && c.can_send() {
                let left = goal_sent - self.sent;
                let pos = self.sent;
                let n = c
                    .send(|buf| {
                        let n = (buf.len() as u64).min(left) as usize;
                        if check {
                            fill(&mut buf[..n], pos);
                        }
                        (n, n)
                    })
                    .expect("smoltcp: send");
                if n == 0 {
                    break;
                }
                self.sent += n as u64;
            }
            smol_pump(&mut self.ib, &mut self.db, &mut self.sb, self.now);
            let s = self.sb.get_mut::<tcp::Socket>(self.server);
            while s.can_recv() {
                let pos = self.recvd;
                let n = s
                    .recv(|d| {
                        if check {
                            verify(d, pos);
                        }
                        (d.len(), d.len())
                    })
                    .expect("smoltcp: recv");
                if n == 0 {
                    break;
                }
                self.recvd += n as u64;
                last_progress = self.now;
            }
            if self.now.saturating_since(last_progress) > STALL {
                panic!(
                    "smoltcp: stalled at {} of {goal_recvd} bytes received ({} sent)",
                    self.recvd, self.sent
                );
            }
        }
        assert_eq!(self.recvd, goal_recvd, "smoltcp: more bytes than sent");
        Outcome {
            bytes,
            rounds,
            frames_data_dir: self.da.tx.borrow().sent - fa,
            frames_ack_dir: self.db.tx.borrow().sent - fb,
            retransmits: None,
        }
    }

    fn close(&mut self) {
        self.sa.get_mut::<tcp::Socket>(self.client).close();
        let (mut server_eof, mut client_eof) = (false, false);
        for _ in 0..1_000_000 {
            self.round();
            let s = self.sb.get_mut::<tcp::Socket>(self.server);
            assert!(!s.can_recv(), "smoltcp: bytes after the data");
            if !server_eof && !s.may_recv() {
                server_eof = true;
                s.close();
            }
            let c = self.sa.get_mut::<tcp::Socket>(self.client);
            assert!(!c.can_recv(), "smoltcp: unexpected bytes at the client");
            if server_eof && !client_eof && !c.may_recv() {
                client_eof = true;
            }
            if client_eof && s_closed(&self.sb, self.server) {
                return;
            }
        }
        panic!("smoltcp: close did not finish (server EOF {server_eof}, client EOF {client_eof})");
    }
}

fn s_closed(set: &SocketSet<'static>, h: SocketHandle) -> bool {
    set.get::<tcp::Socket>(h).state() == tcp::State::Closed
}
