//! `ringstack::net` against the Linux kernel over a veth pair between two
//! namespaces: the std-like, mio and tokio sockets of a `NetStack` serve
//! and fetch from kernel sockets, curl and python's http.server. Every
//! scenario runs on AF_XDP and on AF_PACKET. Without root they print why
//! they skip.

mod common;

use common::*;
use ringstack::dev::host;
use ringstack::dev::open::Driver;
use ringstack::net::{NetStack, TcpListener, TcpStream, UdpSocket};
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A NetStack on the ringstack end of `net`, answering ping.
fn up(
    net: &Net,
    drv: Driver,
    tune: impl FnOnce(ringstack::net::Builder) -> ringstack::net::Builder,
) -> NetStack {
    let name = format!("rsnet{}", SEQ.fetch_add(1, Ordering::Relaxed));
    let b = NetStack::builder()
        .interface(&net.pair.if_a)
        .address(format!("{STACK_IP}/24").parse().unwrap())
        .netns(&net.pair.ns_a)
        .driver(drv)
        .thread_name(&name);
    let s = tune(b).spawn().expect("NetStack::spawn");
    let deadline = Instant::now() + Duration::from_secs(15);
    while host::run(&["ping", "-c", "1", "-W", "1", STACK_IP]).is_err() {
        assert!(
            Instant::now() < deadline,
            "the NetStack does not answer ping"
        );
    }
    s
}

fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

macro_rules! on_drivers {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[test]
            fn xdp() {
                super::$name(ringstack::dev::open::Driver::Xdp);
            }
            #[test]
            fn packet() {
                super::$name(ringstack::dev::open::Driver::Packet);
            }
        })*
    };
}

on_drivers!(
    std_echo_server_serves_a_thousand_kernel_connections,
    std_stream_fetches_from_python_http_server,
    udp_request_response_both_ways,
    std_errors_have_std_kinds_against_the_kernel,
    app_threads_share_one_stack_against_the_kernel,
    dropping_everything_releases_the_device,
);

#[cfg(feature = "mio")]
on_drivers!(mio_loop_serves_many_kernel_connections);

#[cfg(feature = "tokio")]
on_drivers!(tokio_http_server_serves_curl);

/// The std idiom: a thread per connection echoing until the end of the
/// stream. The kernel opens 1000 connections, writes on each, then reads
/// each echo.
fn std_echo_server_serves_a_thousand_kernel_connections(drv: Driver) {
    skip_unless!("ip", "ping", "ethtool");
    let net = Net::new();
    let stack = up(&net, drv, |b| b.backlog(1024));
    let l = TcpListener::bind(&stack, "0.0.0.0:7").unwrap();
    let served = std::sync::Arc::new(AtomicUsize::new(0));
    let served2 = served.clone();
    let acceptor = std::thread::spawn(move || {
        for s in l.incoming() {
            let mut s = s.unwrap();
            let served = served2.clone();
            std::thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => s.write_all(&buf[..n]).unwrap(),
                        }
                    }
                    served.fetch_add(1, Ordering::Relaxed);
                })
                .unwrap();
        }
    });
    let mut conns: Vec<std::net::TcpStream> = (0..1000)
        .map(|i| {
            let s = std::net::TcpStream::connect((STACK_IP, 7))
                .unwrap_or_else(|e| panic!("connection {i}: {e}"));
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        })
        .collect();
    for (i, s) in conns.iter_mut().enumerate() {
        s.write_all(format!("hello {i:04}").as_bytes()).unwrap();
    }
    for (i, s) in conns.iter_mut().enumerate() {
        let mut b = [0u8; 10];
        s.read_exact(&mut b)
            .unwrap_or_else(|e| panic!("echo on connection {i}: {e}"));
        assert_eq!(&b, format!("hello {i:04}").as_bytes());
    }
    // A bulk echo on a few of them, larger than every buffer on the way.
    let big: Vec<u8> = (0..4_000_000u64).map(pattern_byte).collect();
    for s in conns.iter_mut().take(3) {
        let mut w = s.try_clone().unwrap();
        let sent = big.clone();
        let writer = std::thread::spawn(move || w.write_all(&sent).unwrap());
        let mut back = vec![0u8; big.len()];
        s.read_exact(&mut back).unwrap();
        writer.join().unwrap();
        assert!(back == big);
    }
    drop(conns);
    let deadline = Instant::now() + Duration::from_secs(20);
    while served.load(Ordering::Relaxed) < 1000 {
        assert!(
            Instant::now() < deadline,
            "{} of 1000 server threads saw the end of their stream",
            served.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = stack.status().unwrap();
    assert_eq!(st.sockets, 1, "only the listener is left");
    drop(acceptor);
}

/// `TcpStream` as an HTTP client of python's http.server: 20 MiB, byte for
/// byte.
fn std_stream_fetches_from_python_http_server(drv: Driver) {
    skip_unless!("ip", "ping", "ethtool", "python3");
    let net = Net::new();
    let dir = std::env::temp_dir().join(format!("rs-netapi-{}", net.pair.ns_b));
    std::fs::create_dir_all(&dir).unwrap();
    let len = 20u64 << 20;
    let body: Vec<u8> = (0..len).map(|i| pattern_byte(i * 7 + 3)).collect();
    std::fs::write(dir.join("big"), &body).unwrap();
    let server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "8000",
            "--bind",
            KERNEL_IP,
            "--directory",
        ])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Proc(Some(server));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect((KERNEL_IP, 8000)).is_err() {
        assert!(
            Instant::now() < deadline,
            "python http.server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let stack = up(&net, drv, |b| b);
    let t = Instant::now();
    let mut s = TcpStream::connect(&stack, (KERNEL_IP, 8000)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET /big HTTP/1.0\r\nHost: {KERNEL_IP}\r\n\r\n").unwrap();
    let mut got = Vec::with_capacity(body.len() + 1024);
    s.read_to_end(&mut got).unwrap();
    let took = t.elapsed();
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&got[..head_end]);
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(head.contains(&format!("Content-Length: {len}")), "{head}");
    assert!(got[head_end..] == body[..], "the body differs");
    eprintln!(
        "fetched {len} bytes from python in {took:?} ({:.0} Mbit/s)",
        len as f64 * 8.0 / took.as_secs_f64() / 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A kernel client against a ringstack UDP echo, and a ringstack client
/// against a kernel UDP echo.
fn udp_request_response_both_ways(drv: Driver) {
    skip_unless!("ip", "ping", "ethtool");
    let net = Net::new();
    let stack = up(&net, drv, |b| b);
    let server = UdpSocket::bind(&stack, "0.0.0.0:7").unwrap();
    let echo = std::thread::spawn(move || {
        server
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let mut buf = [0u8; 65536];
        let mut n_echoed = 0;
        while let Ok((n, from)) = server.recv_from(&mut buf) {
            server.send_to(&buf[..n], from).unwrap();
            n_echoed += 1;
        }
        n_echoed
    });
    let k = std::net::UdpSocket::bind((KERNEL_IP, 0)).unwrap();
    k.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    k.connect((STACK_IP, 7)).unwrap();
    let mut lost = 0;
    for i in 0..500usize {
        // Up to 9000 bytes: fragmented both ways.
        let len = 1 + (i * 131) % 9000;
        let msg: Vec<u8> = (0..len as u64)
            .map(|j| pattern_byte(j + i as u64))
            .collect();
        k.send(&msg).unwrap();
        let mut buf = [0u8; 9100];
        match k.recv(&mut buf) {
            Ok(n) => assert_eq!(&buf[..n], &msg[..]),
            Err(_) => lost += 1,
        }
    }
    assert!(lost <= 2, "{lost} of 500 datagrams lost on a veth");
    assert!(echo.join().unwrap() >= 498);

    // The other way: the kernel echoes.
    let kernel_echo = std::net::UdpSocket::bind((KERNEL_IP, 9)).unwrap();
    let kecho = std::thread::spawn(move || {
        kernel_echo
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = kernel_echo.recv_from(&mut buf) {
            kernel_echo.send_to(&buf[..n], from).unwrap();
        }
    });
    let c = UdpSocket::bind(&stack, "0.0.0.0:0").unwrap();
    c.connect((KERNEL_IP, 9)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    for i in 0..200u8 {
        c.send(&[i; 100]).unwrap();
        let mut buf = [0u8; 200];
        let n = c.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[i; 100]);
    }
    kecho.join().unwrap();
    // Nobody listens on port 10: the kernel's port unreachable comes back
    // as ConnectionRefused on the connected socket.
    c.connect((KERNEL_IP, 10)).unwrap();
    c.send(b"anyone?").unwrap();
    let e = c.recv(&mut [0u8; 16]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
}

fn std_errors_have_std_kinds_against_the_kernel(drv: Driver) {
    skip_unless!("ip", "ping", "ethtool");
    let net = Net::new();
    let stack = up(&net, drv, |b| b);
    // Nobody listens: the kernel answers the SYN with a reset.
    let e = TcpStream::connect(&stack, (KERNEL_IP, 1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    // Nobody is there at all: no ARP answer, no SYN-ACK.
    let t = Instant::now();
    let e = TcpStream::connect_timeout(
        &stack,
        &"198.18.0.99:80".parse().unwrap(),
        Duration::from_millis(500),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
    // A listener in use, an address that is not ours.
    let _l = TcpListener::bind(&stack, "0.0.0.0:80").unwrap();
    assert_eq!(
        TcpListener::bind(&stack, "0.0.0.0:80").unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    assert_eq!(
        TcpListener::bind(&stack, (KERNEL_IP, 81))
            .unwrap_err()
            .kind(),
        ErrorKind::AddrNotAvailable
    );
    // A kernel server that says nothing: the read timeout, then
    // non-blocking mode.
    let kl = std::net::TcpListener::bind((KERNEL_IP, 5000)).unwrap();
    let mut s = TcpStream::connect(&stack, (KERNEL_IP, 5000)).unwrap();
    let (mut k, _) = kl.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let t = Instant::now();
    assert_eq!(
        s.read(&mut [0u8; 4]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert!(t.elapsed() >= Duration::from_millis(190));
    s.set_nonblocking(true).unwrap();
    assert_eq!(
        s.read(&mut [0u8; 4]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    s.set_nonblocking(false).unwrap();
    // Half-close from the kernel: data, then the end of the stream.
    k.write_all(b"last words").unwrap();
    k.shutdown(Shutdown::Write).unwrap();
    let mut got = String::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(got, "last words");
    // Our side still writes, then closes.
    s.write_all(b"bye").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = String::new();
    k.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "bye");
    // A kernel server that closes with our bytes unread sends a reset.
    let mut s = TcpStream::connect(&stack, (KERNEL_IP, 5000)).unwrap();
    let (k, _) = kl.accept().unwrap();
    s.write_all(b"unread").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(k);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let e = s.read(&mut [0u8; 4]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
    assert_eq!(s.write(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
    // And the other way: our stream dropped with bytes unread resets the
    // kernel's.
    let l = TcpListener::bind(&stack, "0.0.0.0:6000").unwrap();
    let mut k = std::net::TcpStream::connect((STACK_IP, 6000)).unwrap();
    let (ours, _) = l.accept().unwrap();
    k.write_all(b"unread").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(ours);
    k.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let e = k.read(&mut [0u8; 4]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
}

/// Eight application threads, each with a connection to a kernel echo
/// server, in request/response of varying sizes, while two more share
/// one stream (one writes, one reads).
fn app_threads_share_one_stack_against_the_kernel(drv: Driver) {
    skip_unless!("ip", "ping", "ethtool");
    let net = Net::new();
    let stack = up(&net, drv, |b| b);
    let kl = std::net::TcpListener::bind((KERNEL_IP, 7)).unwrap();
    std::thread::spawn(move || {
        for s in kl.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let mut threads = Vec::new();
    for t in 0..8u64 {
        let stack = stack.clone();
        threads.push(std::thread::spawn(move || {
            let mut s = TcpStream::connect(&stack, (KERNEL_IP, 7)).unwrap();
            s.set_nodelay(true).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            for i in 0..500u64 {
                let len = 1 + ((i * 97 + t * 13) % 5000) as usize;
                let msg: Vec<u8> = (0..len as u64).map(|j| pattern_byte(j + i + t)).collect();
                s.write_all(&msg).unwrap();
                let mut back = vec![0u8; len];
                s.read_exact(&mut back)
                    .unwrap_or_else(|e| panic!("thread {t} round {i}: {e}"));
                assert!(back == msg);
            }
        }));
    }
    let s = TcpStream::connect(&stack, (KERNEL_IP, 7)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let w = s.try_clone().unwrap();
    let data: Vec<u8> = (0..8_000_000u64).map(pattern_byte).collect();
    let sent = data.clone();
    let writer = std::thread::spawn(move || (&w).write_all(&sent).unwrap());
    let mut got = vec![0u8; data.len()];
    (&s).read_exact(&mut got).unwrap();
    writer.join().unwrap();
    assert!(got == data);
    for t in threads {
        t.join().unwrap();
    }
}

/// The stack thread ends when the last handle goes, and with it the
/// device: nothing answers ping any more, the XDP program leaves the
/// interface, AF_PACKET's socket closes.
fn dropping_everything_releases_the_device(drv: Driver) {
    skip_unless!("ip", "ping", "ethtool");
    let net = Net::new();
    let name = format!("rsdrop{}", SEQ.fetch_add(1, Ordering::Relaxed));
    let stack = up(&net, drv, |b| {
        b.thread_name(&name).linger(Duration::from_millis(500))
    });
    let kind = stack.device_kind().to_string();
    let ns = net.pair.ns_a.clone();
    let ifa = net.pair.if_a.clone();
    let xdp_attached = || {
        host::run(&["ip", "-n", &ns, "link", "show", "dev", &ifa])
            .unwrap()
            .contains("xdp")
    };
    let packet_sockets = || {
        host::run(&["ip", "netns", "exec", &ns, "cat", "/proc/net/packet"])
            .unwrap()
            .lines()
            .count()
            - 1
    };
    if drv == Driver::Xdp {
        assert!(xdp_attached(), "{kind}: no XDP program attached");
    } else {
        assert!(packet_sockets() >= 1);
    }
    let l = TcpListener::bind(&stack, "0.0.0.0:7").unwrap();
    let mut k = std::net::TcpStream::connect((STACK_IP, 7)).unwrap();
    let (mut s, _) = l.accept().unwrap();
    let u = UdpSocket::bind(&stack, "0.0.0.0:7").unwrap();
    k.write_all(b"ping").unwrap();
    let mut b = [0u8; 4];
    s.read_exact(&mut b).unwrap();
    s.write_all(b"pong").unwrap();
    k.read_exact(&mut b).unwrap();
    drop(stack);
    // Sockets keep the stack alive.
    host::run(&["ping", "-c", "1", "-W", "1", STACK_IP]).expect("still answering");
    drop((l, s, u));
    // Our FIN reached the kernel before the thread ended.
    k.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(k.read(&mut b).unwrap(), 0);
    let alive = |n: &str| {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
            .any(|c| c.trim_end() == n)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(&name) {
        assert!(Instant::now() < deadline, "the stack thread still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
    if drv == Driver::Xdp {
        assert!(!xdp_attached(), "the XDP program is still attached");
    } else {
        assert_eq!(packet_sockets(), 0, "an AF_PACKET socket is left");
    }
    assert!(
        host::run(&["ping", "-c", "1", "-W", "1", STACK_IP]).is_err(),
        "something still answers for the stack"
    );
}

#[cfg(feature = "mio")]
fn mio_loop_serves_many_kernel_connections(drv: Driver) {
    use mio::{Events, Interest, Poll, Token};
    use std::collections::HashMap;
    skip_unless!("ip", "ping", "ethtool");
    let net = Net::new();
    let stack = up(&net, drv, |b| b.backlog(1024));
    let mut l = TcpListener::bind(&stack, "0.0.0.0:7").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    // An edge-triggered echo loop: read and write until WouldBlock.
    let server = std::thread::spawn(move || {
        let mut poll = Poll::new().unwrap();
        poll.registry()
            .register(&mut l, Token(0), Interest::READABLE)
            .unwrap();
        let mut conns: HashMap<usize, (TcpStream, Vec<u8>)> = HashMap::new();
        let (mut next, mut accepted, mut closed) = (1, 0usize, 0usize);
        let mut events = Events::with_capacity(1024);
        while !stop2.load(Ordering::Relaxed) {
            poll.poll(&mut events, Some(Duration::from_millis(50)))
                .unwrap();
            for ev in events.iter() {
                if ev.token() == Token(0) {
                    loop {
                        match l.accept() {
                            Ok((mut s, _)) => {
                                poll.registry()
                                    .register(
                                        &mut s,
                                        Token(next),
                                        Interest::READABLE | Interest::WRITABLE,
                                    )
                                    .unwrap();
                                conns.insert(next, (s, Vec::new()));
                                next += 1;
                                accepted += 1;
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
                let mut done = false;
                let mut buf = [0u8; 16384];
                loop {
                    while !pending.is_empty() {
                        match s.write(pending) {
                            Ok(n) => {
                                pending.drain(..n);
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(_) => {
                                done = true;
                                break;
                            }
                        }
                    }
                    if !pending.is_empty() || done {
                        break;
                    }
                    match s.read(&mut buf) {
                        Ok(0) => done = true,
                        Ok(n) => {
                            pending.extend_from_slice(&buf[..n]);
                            continue;
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(_) => done = true,
                    }
                    break;
                }
                if done {
                    let (mut s, _) = conns.remove(&ev.token().0).unwrap();
                    poll.registry().deregister(&mut s).unwrap();
                    closed += 1;
                }
            }
        }
        (accepted, closed)
    });
    let mut conns: Vec<std::net::TcpStream> = (0..500)
        .map(|i| {
            let s = std::net::TcpStream::connect((STACK_IP, 7))
                .unwrap_or_else(|e| panic!("connection {i}: {e}"));
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        })
        .collect();
    for round in 0..3u64 {
        for (i, s) in conns.iter_mut().enumerate() {
            s.write_all(format!("r{round} c{i:04}").as_bytes()).unwrap();
        }
        for (i, s) in conns.iter_mut().enumerate() {
            let want = format!("r{round} c{i:04}");
            let mut b = vec![0u8; want.len()];
            s.read_exact(&mut b)
                .unwrap_or_else(|e| panic!("round {round} connection {i}: {e}"));
            assert_eq!(b, want.as_bytes());
        }
    }
    // Bulk on a few: the loop must wait for writable edges.
    let big: Vec<u8> = (0..3_000_000u64).map(pattern_byte).collect();
    for s in conns.iter_mut().step_by(100) {
        let mut w = s.try_clone().unwrap();
        let sent = big.clone();
        let writer = std::thread::spawn(move || w.write_all(&sent).unwrap());
        let mut back = vec![0u8; big.len()];
        s.read_exact(&mut back).unwrap();
        writer.join().unwrap();
        assert!(back == big);
    }
    drop(conns);
    let deadline = Instant::now() + Duration::from_secs(10);
    while stack.status().unwrap().sockets > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let (accepted, closed) = server.join().unwrap();
    assert_eq!((accepted, closed), (500, 500));
}

/// hyper serving HTTP/1.1 over ringstack's tokio sockets, in a
/// multi-thread runtime, as `examples/tokio_http.rs` does; curl fetches
/// from it with keep-alive.
#[cfg(feature = "tokio")]
fn tokio_http_server_serves_curl(drv: Driver) {
    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use ringstack::net::tokio::TcpListener;
    skip_unless!("ip", "ping", "ethtool", "curl");
    let net = Net::new();
    let stack = up(&net, drv, |b| b);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    async fn bytes(
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
        let n: u64 = req
            .uri()
            .path()
            .strip_prefix("/bytes/")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Ok(Response::new(Full::new((0..n).map(pattern_byte).collect())))
    }
    let st = stack.clone();
    rt.spawn(async move {
        let l = TcpListener::bind(&st, "0.0.0.0:80").await.unwrap();
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), hyper::service::service_fn(bytes))
                    .await;
            });
        }
    });
    let t = Instant::now();
    let len = 10u64 << 20;
    let urls: Vec<String> = [0u64, 1, 1000, 100_000, len]
        .iter()
        .map(|n| format!("http://{STACK_IP}/bytes/{n}"))
        .collect();
    // One curl, several requests on one keep-alive connection.
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "60",
            "-w",
            "%{size_download} %{num_connects}\\n",
        ])
        .args(urls.iter().flat_map(|u| ["-o", "/dev/null", u.as_str()]))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sizes: Vec<(u64, u64)> = text
        .lines()
        .map(|l| {
            let mut it = l.split_whitespace().map(|x| x.parse::<u64>().unwrap());
            (it.next().unwrap(), it.next().unwrap())
        })
        .collect();
    assert_eq!(
        sizes.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![0, 1, 1000, 100_000, len],
        "{text}"
    );
    assert_eq!(
        sizes.iter().map(|s| s.1).sum::<u64>(),
        1,
        "one connection for all: {text}"
    );
    // And the bytes themselves.
    let mut curl = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "60",
            &format!("http://{STACK_IP}/bytes/{len}"),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut body = Vec::new();
    curl.stdout.take().unwrap().read_to_end(&mut body).unwrap();
    assert!(curl.wait().unwrap().success());
    assert_eq!(body.len() as u64, len);
    assert!(body
        .iter()
        .enumerate()
        .all(|(i, &b)| b == pattern_byte(i as u64)));
    eprintln!(
        "curl fetched {} MiB from the tokio server in {:?}",
        2 * (len >> 20),
        t.elapsed()
    );
    rt.shutdown_timeout(Duration::from_secs(1));
}
