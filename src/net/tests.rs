//! Two `NetStack`s joined by an in-memory link that works across threads:
//! the std-like sockets end to end, without root or a kernel peer.

use super::*;
use crate::dev::notify::Notifier;
use crate::dev::{DeviceCaps, Transmit, TxError};
use crate::time::Instant;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration as StdDuration;

/// One direction of the link: frames, and an eventfd the receiver sleeps on.
struct Wire {
    q: Mutex<VecDeque<Vec<u8>>>,
    ready: Notifier,
}

struct ChanTx {
    out: Arc<Wire>,
    staged: Vec<Vec<u8>>,
}

impl Transmit for ChanTx {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError> {
        if len > 1514 + 4 {
            return Err(TxError::TooLong);
        }
        let mut v = vec![0u8; len];
        fill(&mut v);
        self.staged.push(v);
        Ok(())
    }
}

struct ChanDev {
    rx: Arc<Wire>,
    tx: ChanTx,
    mac: [u8; 6],
    /// Set: `receive` fails, as a device that went away.
    fail: Arc<std::sync::atomic::AtomicBool>,
}

impl Device for ChanDev {
    fn caps(&self) -> DeviceCaps {
        DeviceCaps {
            mtu: 1500,
            mac: Some(self.mac),
            rx_batch: 64,
            kind: "chan".into(),
        }
    }
    fn receive(
        &mut self,
        _now: Instant,
        budget: usize,
        on_frame: &mut dyn FnMut(&[u8], &mut dyn Transmit),
    ) -> io::Result<usize> {
        self.rx.ready.take();
        if self.fail.load(Ordering::Relaxed) {
            return Err(io::Error::other("unplugged"));
        }
        let mut n = 0;
        while n < budget {
            let Some(f) = self.rx.q.lock().unwrap().pop_front() else {
                break;
            };
            on_frame(&f, &mut self.tx);
            n += 1;
        }
        Ok(n)
    }
    fn transmitter(&mut self) -> &mut dyn Transmit {
        &mut self.tx
    }
    fn flush(&mut self, _now: Instant) -> io::Result<()> {
        if !self.tx.staged.is_empty() {
            self.tx
                .out
                .q
                .lock()
                .unwrap()
                .extend(self.tx.staged.drain(..));
            self.tx.out.ready.notify();
        }
        Ok(())
    }
    fn wait(&mut self, _timeout: Option<crate::time::Duration>) -> io::Result<()> {
        Ok(())
    }
    fn wait_fds(&self, fds: &mut Vec<i32>) -> bool {
        if !self.rx.q.lock().unwrap().is_empty() {
            return false;
        }
        fds.push(self.rx.ready.as_raw_fd());
        true
    }
    fn stats(&self) -> DeviceStats {
        DeviceStats::default()
    }
}

fn chan_pair() -> (ChanDev, ChanDev) {
    let wire = || {
        Arc::new(Wire {
            q: Mutex::new(VecDeque::new()),
            ready: Notifier::new().unwrap(),
        })
    };
    let (ab, ba) = (wire(), wire());
    let a = ChanDev {
        rx: ba.clone(),
        tx: ChanTx {
            out: ab.clone(),
            staged: Vec::new(),
        },
        mac: [0x02, 0, 0, 0, 0, 1],
        fail: Arc::default(),
    };
    let b = ChanDev {
        rx: ab,
        tx: ChanTx {
            out: ba,
            staged: Vec::new(),
        },
        mac: [0x02, 0, 0, 0, 0, 2],
        fail: Arc::default(),
    };
    (a, b)
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Two stacks, 10.0.0.1 and 10.0.0.2, each on its own thread; `tune`
/// changes both builders.
fn stacks_with(tune: impl Fn(Builder) -> Builder) -> (NetStack, NetStack, String) {
    let tag = format!("nt{}", SEQ.fetch_add(1, Ordering::Relaxed));
    let (da, db) = chan_pair();
    let a = tune(
        NetStack::builder()
            .address("10.0.0.1/24".parse().unwrap())
            .device(move || Ok(Box::new(da)))
            .thread_name(&format!("{tag}a")),
    )
    .spawn()
    .unwrap();
    let b = tune(
        NetStack::builder()
            .address("10.0.0.2/24".parse().unwrap())
            .device(move || Ok(Box::new(db)))
            .thread_name(&format!("{tag}b")),
    )
    .spawn()
    .unwrap();
    (a, b, tag)
}

fn stacks() -> (NetStack, NetStack) {
    let (a, b, _) = stacks_with(|b| b);
    (a, b)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn thread_alive(name: &str) -> bool {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .any(|c| c.trim_end() == name)
}

/// Echo every connection's bytes back until it ends, a thread each.
fn echo_server(net: &NetStack, port: u16) -> std::thread::JoinHandle<()> {
    let l = TcpListener::bind(net, ("0.0.0.0", port)).unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 8192];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}

#[test]
fn tcp_echo_round_trip_and_end_of_stream() {
    let (a, b) = stacks();
    let _server = echo_server(&b, 7);
    let mut s = TcpStream::connect(&a, "10.0.0.2:7").unwrap();
    assert_eq!(s.peer_addr().unwrap(), "10.0.0.2:7".parse().unwrap());
    assert_eq!(s.local_addr().unwrap().ip().to_string(), "10.0.0.1");
    s.set_read_timeout(Some(StdDuration::from_secs(10)))
        .unwrap();
    let data = pattern(300_000, 7);
    let mut w = s.try_clone().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echoed bytes differ");
    // The end of the stream stays the end.
    assert_eq!(s.read(&mut [0u8; 16]).unwrap(), 0);
}

#[test]
fn connect_to_a_closed_port_is_refused() {
    let (a, _b) = stacks();
    let e = TcpStream::connect(&a, "10.0.0.2:81").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
}

#[test]
fn connect_timeout_to_a_silent_address_times_out() {
    let (a, _b) = stacks();
    let t = std::time::Instant::now();
    let e = TcpStream::connect_timeout(
        &a,
        &"10.0.0.99:80".parse().unwrap(),
        StdDuration::from_millis(300),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(t.elapsed() >= StdDuration::from_millis(290));
    assert!(t.elapsed() < StdDuration::from_secs(5));
    let e = TcpStream::connect_timeout(&a, &"10.0.0.2:80".parse().unwrap(), StdDuration::ZERO)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn read_timeout_and_nonblocking_mode_say_would_block() {
    let (a, b) = stacks();
    let l = TcpListener::bind(&b, "10.0.0.2:9").unwrap();
    let s = TcpStream::connect(&a, "10.0.0.2:9").unwrap();
    let (_peer, from) = l.accept().unwrap();
    assert_eq!(from, s.local_addr().unwrap());
    s.set_read_timeout(Some(StdDuration::from_millis(100)))
        .unwrap();
    let t = std::time::Instant::now();
    let e = (&s).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert!(t.elapsed() >= StdDuration::from_millis(95));
    s.set_nonblocking(true).unwrap();
    let e = (&s).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    l.set_nonblocking(true).unwrap();
    assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    assert_eq!(
        s.set_read_timeout(Some(StdDuration::ZERO))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn closing_with_unread_data_resets_the_peer() {
    let (a, b) = stacks();
    let l = TcpListener::bind(&b, "0.0.0.0:10").unwrap();
    let mut s = TcpStream::connect(&a, "10.0.0.2:10").unwrap();
    let (peer, _) = l.accept().unwrap();
    s.write_all(b"never read").unwrap();
    // Let the bytes reach the peer's socket, then drop it unread.
    std::thread::sleep(StdDuration::from_millis(100));
    drop(peer);
    s.set_read_timeout(Some(StdDuration::from_secs(5))).unwrap();
    let e = s.read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
    // Reported once, as on Linux: then the end of the stream and a broken
    // pipe.
    assert_eq!(s.read(&mut [0u8; 8]).unwrap(), 0);
    assert_eq!(s.write(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
}

#[test]
fn bind_errors_have_std_kinds() {
    let (a, _b) = stacks();
    let _l = TcpListener::bind(&a, "0.0.0.0:80").unwrap();
    let e = TcpListener::bind(&a, "0.0.0.0:80").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
    let e = TcpListener::bind(&a, "10.0.0.77:80").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrNotAvailable);
    let e = TcpListener::bind(&a, "[::1]:80").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let any = TcpListener::bind(&a, "0.0.0.0:0").unwrap();
    assert!(any.local_addr().unwrap().port() >= 49152);
    let _u = UdpSocket::bind(&a, "0.0.0.0:53").unwrap();
    let e = UdpSocket::bind(&a, "0.0.0.0:53").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
    let e = UdpSocket::bind(&a, "10.0.0.77:53").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrNotAvailable);
    let s = TcpStream::connect(&a, "10.0.0.2:80");
    assert_eq!(s.unwrap_err().kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn udp_request_response() {
    let (a, b) = stacks();
    let server = UdpSocket::bind(&b, "0.0.0.0:7").unwrap();
    let h = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        for _ in 0..100 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server.send_to(&buf[..n], from).unwrap();
        }
    });
    let c = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    c.set_read_timeout(Some(StdDuration::from_secs(5))).unwrap();
    c.connect("10.0.0.2:7").unwrap();
    for i in 0..100u32 {
        let msg = pattern(1 + (i as usize * 37) % 1400, i as u8);
        c.send(&msg).unwrap();
        let mut buf = [0u8; 2048];
        let n = c.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &msg[..]);
    }
    h.join().unwrap();
    // Truncation, as recvfrom(2): the rest of the datagram is dropped.
    let other = UdpSocket::bind(&b, "0.0.0.0:8").unwrap();
    other
        .send_to(b"0123456789", ("10.0.0.1", c.local_addr().unwrap().port()))
        .unwrap();
    c.connect("10.0.0.2:8").unwrap();
    let mut small = [0u8; 4];
    assert_eq!(c.peek(&mut small).unwrap(), 4);
    assert_eq!(c.recv(&mut small).unwrap(), 4);
    assert_eq!(&small, b"0123");
}

#[test]
fn udp_port_unreachable_is_refused_on_a_connected_socket() {
    let (a, _b) = stacks();
    let c = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    c.connect("10.0.0.2:9").unwrap();
    c.set_read_timeout(Some(StdDuration::from_secs(5))).unwrap();
    c.send(b"anyone?").unwrap();
    let e = c.recv(&mut [0u8; 16]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
}

#[test]
fn dropping_every_handle_stops_the_thread() {
    let (a, b, tag) = stacks_with(|b| b.linger(std::time::Duration::from_millis(500)));
    let (na, nb) = (format!("{tag}a"), format!("{tag}b"));
    assert!(thread_alive(&na) && thread_alive(&nb));
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let mut s = TcpStream::connect(&a, "10.0.0.2:7").unwrap();
    let (mut p, _) = l.accept().unwrap();
    let u = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    s.write_all(b"bye").unwrap();
    let mut buf = [0u8; 3];
    p.read_exact(&mut buf).unwrap();
    let st = a.status().unwrap();
    assert_eq!(st.sockets, 2);
    assert_eq!(st.tcp_connections, 1);
    // The stacks outlive their NetStack handles while sockets remain.
    drop(a);
    drop(b);
    assert!(thread_alive(&na) && thread_alive(&nb));
    drop((s, p, l, u));
    let deadline = std::time::Instant::now() + StdDuration::from_secs(5);
    while (thread_alive(&na) || thread_alive(&nb)) && std::time::Instant::now() < deadline {
        std::thread::sleep(StdDuration::from_millis(10));
    }
    assert!(!thread_alive(&na), "{na} still runs");
    assert!(!thread_alive(&nb), "{nb} still runs");
}

#[test]
fn closed_stream_frees_its_socket_and_connection() {
    let (a, b) = stacks();
    let _server = echo_server(&b, 7);
    for _ in 0..20 {
        let mut s = TcpStream::connect(&a, "10.0.0.2:7").unwrap();
        s.write_all(b"x").unwrap();
        let mut one = [0u8; 1];
        s.read_exact(&mut one).unwrap();
    }
    // Every client closed first and sits in TIME-WAIT; the server side
    // freed its connections.
    let deadline = std::time::Instant::now() + StdDuration::from_secs(5);
    loop {
        let (sa, sb) = (a.status().unwrap(), b.status().unwrap());
        if sa.sockets == 0 && sb.sockets == 1 && sb.tcp_connections == 0 {
            assert_eq!(sa.tcp_connections, 20, "clients in TIME-WAIT");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a: {} sockets {} conns; b: {} sockets {} conns",
            sa.sockets,
            sa.tcp_connections,
            sb.sockets,
            sb.tcp_connections
        );
        std::thread::sleep(StdDuration::from_millis(10));
    }
}

#[test]
fn backlog_full_of_connections_is_drained_by_accept() {
    // Four wait in the socket and four in TCP's accept queue; the ninth
    // SYN is dropped until `accept` makes room, and its retransmission
    // gets in.
    let (a, b, _) = stacks_with(|b| b.backlog(4));
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let clients = std::thread::spawn(move || {
        let conns: Vec<_> = (0..12)
            .map(|_| TcpStream::connect(&a, "10.0.0.2:7").unwrap())
            .collect();
        for mut s in conns {
            s.set_read_timeout(Some(StdDuration::from_secs(10)))
                .unwrap();
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"ok");
        }
    });
    std::thread::sleep(StdDuration::from_millis(300));
    let st = b.status().unwrap();
    assert_eq!(st.tcp_connections, 8, "4 in the socket, 4 in TCP");
    for _ in 0..12 {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"ok").unwrap();
    }
    clients.join().unwrap();
}

/// Many application threads on one stack at once, both ways: request and
/// response of varying sizes on a connection each, a stream shared by a
/// reader and a writer thread, and UDP. A lost wake-up shows as a read
/// timing out.
#[test]
fn many_threads_share_one_stack() {
    let (a, b) = stacks();
    let _server = echo_server(&b, 7);
    let udp = UdpSocket::bind(&b, "0.0.0.0:7").unwrap();
    let udp_echo = std::thread::spawn(move || {
        udp.set_read_timeout(Some(StdDuration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            udp.send_to(&buf[..n], from).unwrap();
        }
    });
    let mut threads = Vec::new();
    for t in 0..6u8 {
        let a = a.clone();
        threads.push(std::thread::spawn(move || {
            let mut s = TcpStream::connect(&a, "10.0.0.2:7").unwrap();
            s.set_nodelay(true).unwrap();
            s.set_read_timeout(Some(StdDuration::from_secs(10)))
                .unwrap();
            for i in 0..300usize {
                let msg = pattern(1 + (i * 97 + t as usize * 13) % 6000, t);
                s.write_all(&msg).unwrap();
                let mut back = vec![0u8; msg.len()];
                s.read_exact(&mut back)
                    .unwrap_or_else(|e| panic!("thread {t} round {i}: {e}"));
                assert!(back == msg);
            }
        }));
    }
    // One stream, two threads: one writes 2 MB while the other reads the echo.
    {
        let a = a.clone();
        threads.push(std::thread::spawn(move || {
            let s = TcpStream::connect(&a, "10.0.0.2:7").unwrap();
            s.set_read_timeout(Some(StdDuration::from_secs(10)))
                .unwrap();
            let w = s.try_clone().unwrap();
            let data = pattern(2 << 20, 99);
            let sent = data.clone();
            let writer = std::thread::spawn(move || (&w).write_all(&sent).unwrap());
            let mut got = vec![0u8; data.len()];
            (&s).read_exact(&mut got).unwrap();
            writer.join().unwrap();
            assert!(got == data);
        }));
    }
    for t in 0..3u8 {
        let a = a.clone();
        threads.push(std::thread::spawn(move || {
            let c = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
            c.connect("10.0.0.2:7").unwrap();
            c.set_read_timeout(Some(StdDuration::from_secs(1))).unwrap();
            let mut ok = 0;
            for i in 0..300u32 {
                let msg = pattern(8 + (i as usize % 500), t);
                c.send(&msg).unwrap();
                let mut buf = [0u8; 2048];
                // Nothing is lost on this link; a timeout is a lost wake-up.
                let n = c.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], &msg[..]);
                ok += 1;
            }
            assert_eq!(ok, 300);
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    udp_echo.join().unwrap();
}

/// An edge-triggered mio echo server: reads and writes until WouldBlock,
/// keeps what it could not write, and waits for the next event.
#[cfg(feature = "mio")]
fn mio_echo_server(l: TcpListener, stop: Arc<std::sync::atomic::AtomicBool>) -> usize {
    use ::mio::{Events, Interest, Poll, Token};
    use std::collections::HashMap;
    let mut poll = Poll::new().unwrap();
    let mut l = l;
    poll.registry()
        .register(&mut l, Token(0), Interest::READABLE)
        .unwrap();
    let mut conns: HashMap<usize, (TcpStream, Vec<u8>)> = HashMap::new();
    let mut next = 1;
    let mut served = 0;
    let mut events = Events::with_capacity(256);
    while !stop.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(StdDuration::from_millis(50)))
            .unwrap();
        for ev in events.iter() {
            if ev.token() == Token(0) {
                loop {
                    match l.accept() {
                        Ok((mut s, _)) => {
                            let t = Token(next);
                            next += 1;
                            poll.registry()
                                .register(&mut s, t, Interest::READABLE | Interest::WRITABLE)
                                .unwrap();
                            conns.insert(t.0, (s, Vec::new()));
                            served += 1;
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => panic!("accept: {e}"),
                    }
                }
                continue;
            }
            let Some((s, pending)) = conns.get_mut(&ev.token().0) else {
                continue;
            };
            let mut closed = false;
            let mut buf = [0u8; 4096];
            loop {
                // Write what is pending before reading more.
                while !pending.is_empty() {
                    match s.write(pending) {
                        Ok(n) => {
                            pending.drain(..n);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => {
                            closed = true;
                            break;
                        }
                    }
                }
                if !pending.is_empty() || closed {
                    break;
                }
                match s.read(&mut buf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            if closed {
                let (mut s, _) = conns.remove(&ev.token().0).unwrap();
                poll.registry().deregister(&mut s).unwrap();
            }
        }
    }
    served
}

#[cfg(feature = "mio")]
#[test]
fn mio_edge_triggered_echo_with_many_connections() {
    let (a, b) = stacks();
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let server = std::thread::spawn(move || mio_echo_server(l, stop2));
    let mut conns: Vec<TcpStream> = (0..100)
        .map(|_| {
            let s = TcpStream::connect(&a, "10.0.0.2:7").unwrap();
            s.set_read_timeout(Some(StdDuration::from_secs(10)))
                .unwrap();
            s
        })
        .collect();
    for round in 0..3u8 {
        for (i, s) in conns.iter_mut().enumerate() {
            // Some larger than the socket buffer, so the server sees
            // WouldBlock on write and must wait for a writable edge.
            let len = if i % 10 == 0 { 200_000 } else { 100 + i };
            let msg = pattern(len, round ^ i as u8);
            let mut w = s.try_clone().unwrap();
            let sent = msg.clone();
            let writer = std::thread::spawn(move || w.write_all(&sent).unwrap());
            let mut back = vec![0u8; msg.len()];
            s.read_exact(&mut back)
                .unwrap_or_else(|e| panic!("round {round} conn {i}: {e}"));
            writer.join().unwrap();
            assert!(back == msg);
        }
    }
    drop(conns);
    stop.store(true, Ordering::Relaxed);
    assert_eq!(server.join().unwrap(), 100);
}

#[cfg(feature = "mio")]
#[test]
fn mio_nonblocking_connect_reports_writable_then_refused_or_connected() {
    use ::mio::{Events, Interest, Poll, Token};
    let (a, b) = stacks();
    let _l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let mut poll = Poll::new().unwrap();
    let mut ok = TcpStream::connect_nonblocking(&a, "10.0.0.2:7".parse().unwrap()).unwrap();
    let mut refused = TcpStream::connect_nonblocking(&a, "10.0.0.2:8".parse().unwrap()).unwrap();
    poll.registry()
        .register(&mut ok, Token(1), Interest::READABLE | Interest::WRITABLE)
        .unwrap();
    poll.registry()
        .register(&mut refused, Token(2), Interest::WRITABLE)
        .unwrap();
    let mut events = Events::with_capacity(8);
    let (mut saw_ok, mut saw_refused) = (false, false);
    let deadline = std::time::Instant::now() + StdDuration::from_secs(5);
    while !(saw_ok && saw_refused) {
        assert!(std::time::Instant::now() < deadline, "no writable event");
        poll.poll(&mut events, Some(StdDuration::from_millis(100)))
            .unwrap();
        for ev in events.iter() {
            assert!(ev.is_writable(), "{ev:?}");
            match ev.token() {
                Token(1) => {
                    assert!(ok.peer_addr().is_ok());
                    assert!(ok.take_error().unwrap().is_none());
                    saw_ok = true;
                }
                Token(2) => {
                    let e = refused.take_error().unwrap().expect("an error");
                    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
                    saw_refused = true;
                }
                t => panic!("{t:?}"),
            }
        }
    }
    // Connected and idle: no readable event, no more writable ones.
    poll.poll(&mut events, Some(StdDuration::from_millis(100)))
        .unwrap();
    assert!(events.is_empty(), "spurious events");
    assert_eq!(
        ok.read(&mut [0u8; 4]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_echo_on_both_runtimes() {
    use super::tokio::{TcpListener, TcpStream, UdpSocket};
    use ::tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (a, b) = stacks();
    let server_rt = ::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let bb = b.clone();
    server_rt.spawn(async move {
        let l = TcpListener::bind(&bb, "0.0.0.0:7").await.unwrap();
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            ::tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => s.write_all(&buf[..n]).await.unwrap(),
                    }
                }
            });
        }
    });
    server_rt.spawn(async move {
        let u = UdpSocket::bind(&b, "0.0.0.0:7").await.unwrap();
        let mut buf = [0u8; 2048];
        loop {
            let (n, from) = u.recv_from(&mut buf).await.unwrap();
            u.send_to(&buf[..n], from).await.unwrap();
        }
    });
    let client_rt = ::tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    client_rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..20u8 {
            let a = a.clone();
            tasks.push(::tokio::spawn(async move {
                let s = TcpStream::connect(&a, "10.0.0.2:7").await.unwrap();
                s.set_nodelay(true).unwrap();
                let (mut r, mut w) = ::tokio::io::split(s);
                let msg = pattern(50_000 + t as usize * 1000, t);
                let sent = msg.clone();
                let writer = ::tokio::spawn(async move {
                    w.write_all(&sent).await.unwrap();
                    w.shutdown().await.unwrap();
                });
                let mut back = Vec::new();
                r.read_to_end(&mut back).await.unwrap();
                writer.await.unwrap();
                assert!(back == msg, "task {t}");
            }));
        }
        for t in tasks {
            ::tokio::time::timeout(StdDuration::from_secs(20), t)
                .await
                .expect("lost wake-up")
                .unwrap();
        }
        let u = UdpSocket::bind(&a, "0.0.0.0:0").await.unwrap();
        u.connect("10.0.0.2:7").await.unwrap();
        for i in 0..50u8 {
            u.send(&[i; 64]).await.unwrap();
            let mut buf = [0u8; 128];
            let n = ::tokio::time::timeout(StdDuration::from_secs(5), u.recv(&mut buf))
                .await
                .expect("lost wake-up")
                .unwrap();
            assert_eq!(&buf[..n], &[i; 64]);
        }
        let e = TcpStream::connect(&a, "10.0.0.2:8").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    });
}

#[test]
fn sockets_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<NetStack>();
    check::<TcpListener>();
    check::<TcpStream>();
    check::<UdpSocket>();
    #[cfg(feature = "tokio")]
    {
        check::<super::tokio::TcpListener>();
        check::<super::tokio::TcpStream>();
        check::<super::tokio::UdpSocket>();
    }
}

#[test]
fn a_failing_device_fails_blocked_and_later_calls() {
    let (da, db) = chan_pair();
    let fail = db.fail.clone();
    let a = NetStack::builder()
        .address("10.0.0.1/24".parse().unwrap())
        .device(move || Ok(Box::new(da)))
        .spawn()
        .unwrap();
    let b = NetStack::builder()
        .address("10.0.0.2/24".parse().unwrap())
        .device(move || Ok(Box::new(db)))
        .spawn()
        .unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let _c = TcpStream::connect(&a, "10.0.0.2:7").unwrap();
    let (s, _) = l.accept().unwrap();
    let reader = std::thread::spawn(move || (&s).read(&mut [0u8; 8]));
    std::thread::sleep(StdDuration::from_millis(50));
    fail.store(true, Ordering::Relaxed);
    // The stack thread finds out at its next poll (a timer, at most the
    // longest sleep, 100 ms).
    let e = reader.join().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotConnected, "{e}");
    assert!(e.to_string().contains("unplugged"), "{e}");
    let e = TcpListener::bind(&b, "0.0.0.0:8").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotConnected, "{e}");
    assert!(b.status().is_err());
}
