//! ringstack's TCP against the Linux kernel's, over a veth pair between two
//! namespaces: curl, python's http.server and kernel sockets on one
//! side, `ringstack serve --http/--tcp-echo/--discard`, `ringstack get` and
//! `ringstack send` on the other; loss injected with nftables; tshark checks
//! the wire.

mod common;

use common::*;
use ringstack::dev::host::{self, VethPair};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Byte `i` of every body ringstack generates (src/bin/ringstack/tcp_apps.rs).
fn body_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// Read a stream to its end, checking every byte against the pattern.
fn check_pattern(mut r: impl Read, expect_len: u64) -> u64 {
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    loop {
        let n = r.read(&mut buf).expect("read body");
        if n == 0 {
            break;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            assert_eq!(
                b,
                body_byte(pos + i as u64),
                "byte {} differs",
                pos + i as u64
            );
        }
        pos += n as u64;
    }
    assert_eq!(pos, expect_len, "body length");
    pos
}

/// Drop `pct` % of the frames ringstack sends, at the kernel's input.
fn drop_from_stack(pct: u32) {
    host::run(&["nft", "add", "table", "inet", "rsloss"]).unwrap();
    host::run(&[
        "nft",
        "add",
        "chain",
        "inet",
        "rsloss",
        "in",
        "{ type filter hook input priority 0 ; }",
    ])
    .unwrap();
    let rule = format!("ip saddr {STACK_IP} numgen random mod 100 < {pct} drop");
    let mut args = vec!["nft", "add", "rule", "inet", "rsloss", "in"];
    args.extend(rule.split(' '));
    host::run(&args).unwrap();
}

fn curl_bytes(drv: &[&str], n: u64, loss: u32) {
    let net = Net::new();
    let _server = net.serve(&[drv, &["--http", "80"]].concat());
    if loss > 0 {
        drop_from_stack(loss);
    }
    let t = Instant::now();
    let mut curl = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "120",
            &format!("http://{STACK_IP}/bytes/{n}"),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let got = check_pattern(curl.stdout.take().unwrap(), n);
    assert!(curl.wait().unwrap().success());
    eprintln!(
        "curl fetched {got} bytes from ringstack at {loss}% loss in {:?}",
        t.elapsed()
    );
}

macro_rules! on_drivers {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[test]
            fn xdp() {
                super::$name(&["--driver", "xdp"]);
            }
            #[test]
            fn packet() {
                super::$name(&["--driver", "packet"]);
            }
        })*
    };
}

on_drivers!(
    curl_fetches_100_mb_from_ringstack_http,
    curl_fetches_through_1_and_5_percent_loss,
    ringstack_get_fetches_100_mb_from_a_kernel_http_server,
    ringstack_get_through_1_and_5_percent_loss,
    kernel_client_echoes_10_mb_through_ringstack_tcp_echo,
    ringstack_send_to_a_kernel_tcp_sink,
    ringstack_send_to_a_kernel_echo_server,
    ringstack_send_marks_every_segment_with_its_dscp,
    a_thousand_concurrent_connections,
    client_killed_mid_transfer_frees_the_connection,
    closed_port_answers_rst,
    the_wire_is_clean,
);

fn curl_fetches_100_mb_from_ringstack_http(drv: &[&str]) {
    skip_unless!("ip", "ping", "ethtool", "curl");
    curl_bytes(drv, 100 << 20, 0);
}

fn curl_fetches_through_1_and_5_percent_loss(drv: &[&str]) {
    skip_unless!("ip", "ping", "ethtool", "curl", "nft");
    curl_bytes(drv, 10 << 20, 1);
    curl_bytes(drv, 5 << 20, 5);
}

/// Make the kernel drop `pct` % of the frames it sends to ringstack *after*
/// its TCP has handed them to a device, so ringstack sees real wire loss: the
/// kernel's address moves from its veth to a bridge with the veth as its only
/// port, and the bridge's output hook drops. (A drop in the kernel's IP
/// output or on the veth's egress is returned to TCP as a local error, and
/// TCP merely sends the segment again later: no loss on the wire.)
fn drop_toward_stack(net: &Net, pct: u32) {
    let vb = &net.pair.if_b;
    let addr = format!("{KERNEL_IP}/24");
    for cmd in [
        vec!["ip", "link", "add", "rsbr", "type", "bridge"],
        vec!["ip", "addr", "del", &addr, "dev", vb],
        vec!["ip", "link", "set", "dev", vb, "master", "rsbr"],
        vec!["ip", "addr", "add", &addr, "dev", "rsbr"],
        vec!["ip", "link", "set", "dev", "rsbr", "up"],
        vec![
            "ethtool", "-K", "rsbr", "tx", "off", "tso", "off", "gso", "off", "gro", "off",
        ],
        vec!["nft", "add", "table", "bridge", "rsloss"],
        vec![
            "nft",
            "add",
            "chain",
            "bridge",
            "rsloss",
            "out",
            "{ type filter hook output priority 0 ; }",
        ],
    ] {
        host::run(&cmd).unwrap_or_else(|e| panic!("{e}"));
    }
    let rule = format!("ip daddr {STACK_IP} numgen random mod 100 < {pct} drop");
    let mut args = vec!["nft", "add", "rule", "bridge", "rsloss", "out"];
    args.extend(rule.split(' '));
    host::run(&args).unwrap();
}

/// The kernel's TCP RetransSegs (from /proc/net/snmp of the namespace the
/// calling thread is in: `cat` inherits it).
fn kernel_retrans_segs() -> u64 {
    let snmp = host::run(&["cat", "/proc/net/snmp"]).unwrap();
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next().unwrap(), tcp.next().unwrap());
    let i = names
        .split_whitespace()
        .position(|n| n == "RetransSegs")
        .unwrap();
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

/// `ringstack get` a `mib` MiB file of pseudo-random bytes from python's
/// http.server, with `loss` % of the frames dropped in each direction on the
/// kernel's side, and compare SHA-256 sums. Returns how long the get took.
fn get_from_python_http(drv: &[&str], mib: usize, loss: u32) -> Duration {
    let net = Net::new();
    if loss > 0 {
        // Data toward ringstack, and ringstack's SYN, request and ACKs.
        drop_toward_stack(&net, loss);
        drop_from_stack(loss);
    }
    let dir = std::env::temp_dir().join(format!("rs-http-{}", net.pair.ns_b));
    std::fs::create_dir_all(&dir).unwrap();
    let mut f = std::fs::File::create(dir.join("big")).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for b in chunk.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        f.write_all(&chunk).unwrap();
    }
    drop(f);
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
    // python takes a while to start under load: wait until it listens.
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect((KERNEL_IP, 8000)).is_err() {
        assert!(
            Instant::now() < deadline,
            "python http.server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let retrans0 = kernel_retrans_segs();
    let out = dir.join("fetched");
    let t = Instant::now();
    let p = net.ringstack(
        "get",
        &[
            drv,
            &[
                &format!("http://{KERNEL_IP}:8000/big"),
                "-o",
                out.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    let (log, ok) = p.wait(Duration::from_secs(180));
    let took = t.elapsed();
    assert!(ok, "ringstack get failed after {took:?}:\n{log}");
    let sum = |p: &std::path::Path| {
        host::run(&["sha256sum", p.to_str().unwrap()])
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        sum(&dir.join("big")),
        sum(&out),
        "SHA-256 of the fetched file"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let retrans = kernel_retrans_segs() - retrans0;
    eprintln!(
        "ringstack get: {mib} MiB at {loss}% loss in {took:?}; the kernel retransmitted {retrans} \
         segments; {}",
        log.lines().last().unwrap_or("")
    );
    if loss > 0 {
        // The loss was real: the kernel had to resend data toward us.
        assert!(retrans > 0, "no retransmission at {loss}% loss");
    }
    took
}

fn ringstack_get_fetches_100_mb_from_a_kernel_http_server(drv: &[&str]) {
    skip_unless!("ip", "ethtool", "python3", "sha256sum");
    get_from_python_http(drv, 100, 0);
}

fn ringstack_get_through_1_and_5_percent_loss(drv: &[&str]) {
    skip_unless!("ip", "ethtool", "python3", "sha256sum", "nft");
    get_from_python_http(drv, 10, 1);
    get_from_python_http(drv, 5, 5);
}

fn kernel_client_echoes_10_mb_through_ringstack_tcp_echo(drv: &[&str]) {
    skip_unless!("ip", "ping", "ethtool");
    let net = Net::new();
    let _server = net.serve(&[drv, &["--tcp-echo", "7"]].concat());
    let mut s = TcpStream::connect((STACK_IP, 7)).expect("connect to ringstack");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let data: Vec<u8> = (0..(10u64 << 20)).map(|i| body_byte(i * 7)).collect();
    let mut w = s.try_clone().unwrap();
    let d2 = data.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&d2).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut back = Vec::with_capacity(data.len());
    s.read_to_end(&mut back).expect("echo");
    writer.join().unwrap();
    assert!(
        back == data,
        "echoed {} of {} bytes, or different bytes",
        back.len(),
        data.len()
    );
}

fn ringstack_send_to_a_kernel_tcp_sink(drv: &[&str]) {
    skip_unless!("ip", "ethtool");
    let net = Net::new();
    let listener = std::net::TcpListener::bind((KERNEL_IP, 9000)).unwrap();
    let n: u64 = 50 << 20;
    let reader = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        check_pattern(s, n)
    });
    let p = net.ringstack(
        "send",
        &[
            drv,
            &[&format!("{KERNEL_IP}:9000"), "--bytes", &n.to_string()],
        ]
        .concat(),
    );
    let (log, ok) = p.wait(Duration::from_secs(120));
    assert!(ok, "ringstack send failed:\n{log}");
    assert!(log.contains(&format!("sent {n} bytes")), "{log}");
    assert_eq!(reader.join().unwrap(), n);
}

/// MUST-48 against a real peer: `ringstack send --dscp 46` marks every
/// segment it sends, SYN to FIN, as the kernel's nftables sees them arrive.
fn ringstack_send_marks_every_segment_with_its_dscp(drv: &[&str]) {
    skip_unless!("ip", "ethtool", "nft");
    let net = Net::new();
    let from = STACK_IP.to_string();
    for cmd in [
        vec!["nft", "add", "table", "ip", "rsdscp"],
        vec![
            "nft",
            "add",
            "chain",
            "ip",
            "rsdscp",
            "in",
            "{ type filter hook prerouting priority -300 ; }",
        ],
        vec![
            "nft", "add", "rule", "ip", "rsdscp", "in", "ip", "saddr", &from, "tcp", "dport",
            "9001", "ip", "dscp", "ef", "counter",
        ],
        vec![
            "nft", "add", "rule", "ip", "rsdscp", "in", "ip", "saddr", &from, "tcp", "dport",
            "9001", "counter",
        ],
    ] {
        host::run(&cmd).unwrap_or_else(|e| panic!("{e}"));
    }
    let listener = std::net::TcpListener::bind((KERNEL_IP, 9001)).unwrap();
    let n: u64 = 4 << 20;
    let reader = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        check_pattern(s, n)
    });
    let p = net.ringstack(
        "send",
        &[
            drv,
            &[
                &format!("{KERNEL_IP}:9001"),
                "--bytes",
                &n.to_string(),
                "--dscp",
                "46",
            ],
        ]
        .concat(),
    );
    let (log, ok) = p.wait(Duration::from_secs(60));
    assert!(ok, "ringstack send failed:\n{log}");
    assert_eq!(reader.join().unwrap(), n);
    let table = host::run(&["nft", "list", "table", "ip", "rsdscp"]).unwrap();
    let counts: Vec<u64> = table
        .split("packets ")
        .skip(1)
        .map(|t| t.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 2, "{table}");
    let (ef, all) = (counts[0], counts[1]);
    // Every data segment at least: 4 MiB in segments of at most 1460.
    assert!(all as f64 >= n as f64 / 1460.0, "{table}");
    assert_eq!(ef, all, "segments without DSCP 46:\n{table}");
    // And the option is refused, not wrapped, above six bits.
    let p = net.ringstack(
        "send",
        &[
            drv,
            &[&format!("{KERNEL_IP}:9001"), "--bytes", "1", "--dscp", "64"],
        ]
        .concat(),
    );
    let (log, ok) = p.wait(Duration::from_secs(20));
    assert!(!ok && log.contains("64"), "{log}");
}

/// Bytes the kernel's interface toward ringstack has sent.
fn kernel_tx_bytes(net: &Net) -> u64 {
    let path = format!("/sys/class/net/{}/statistics/tx_bytes", net.pair.if_b);
    // `ip netns exec` mounts the namespace's own sysfs.
    VethPair::exec(&net.pair.ns_b, &["cat", &path])
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn ringstack_send_to_a_kernel_echo_server(drv: &[&str]) {
    skip_unless!("ip", "ethtool", "socat");
    let net = Net::new();
    // socat hands each connection to a cat of its own; -t 10: after
    // ringstack's FIN, keep echoing what cat still has for up to 10 s.
    let echo = Command::new("socat")
        .args([
            "-t",
            "10",
            &format!("TCP-LISTEN:9001,bind={KERNEL_IP},reuseaddr,fork"),
            "EXEC:cat",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let echo = Proc(Some(echo));
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect((KERNEL_IP, 9001)).is_err() {
        assert!(Instant::now() < deadline, "socat did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Far more than every buffer on the way can hold (ringstack's 256 KiB
    // window, the kernel's socket buffers of up to 4 + 6 MiB, two pipes): if
    // send did not read the echo, the kernel's window would close and send
    // would stall.
    let n: u64 = 32 << 20;
    let tx0 = kernel_tx_bytes(&net);
    let t = Instant::now();
    let p = net.ringstack(
        "send",
        &[
            drv,
            &[&format!("{KERNEL_IP}:9001"), "--bytes", &n.to_string()],
        ]
        .concat(),
    );
    let (log, ok) = p.wait(Duration::from_secs(120));
    let took = t.elapsed();
    assert!(ok, "ringstack send failed after {took:?}:\n{log}");
    assert!(log.contains(&format!("sent {n} bytes")), "{log}");
    // The echo really flowed back; its tail may still have been in the
    // kernel's send buffer (at most 4 MiB) when send, done, closed.
    let echoed = kernel_tx_bytes(&net) - tx0;
    eprintln!(
        "ringstack send: {n} bytes to a kernel echo in {took:?}, {echoed} bytes (frames \
         included) echoed back; {}",
        log.lines().find(|l| l.starts_with("sent ")).unwrap_or("")
    );
    assert!(
        echoed >= n - (8 << 20),
        "only {echoed} of {n} bytes came back:\n{}",
        echo.finish()
    );
}

fn a_thousand_concurrent_connections(drv: &[&str]) {
    skip_unless!("ip", "ping", "ethtool");
    let net = Net::new();
    let _server = net.serve(&[drv, &["--tcp-echo", "7"]].concat());
    let mut conns: Vec<TcpStream> = (0..1000)
        .map(|i| {
            let s =
                TcpStream::connect((STACK_IP, 7)).unwrap_or_else(|e| panic!("connection {i}: {e}"));
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
}

fn client_killed_mid_transfer_frees_the_connection(drv: &[&str]) {
    skip_unless!("ip", "ping", "ethtool", "curl");
    let net = Net::new();
    let server = net.serve(&[drv, &["--http", "80"]].concat());
    let mut curl = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "--limit-rate",
            "2M",
            &format!("http://{STACK_IP}/bytes/{}", 1u64 << 30),
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    curl.kill().unwrap();
    let _ = curl.wait();
    // The kernel answers what we send next with RST; the stack frees the
    // connection and still serves new ones.
    std::thread::sleep(Duration::from_millis(1000));
    let mut s = TcpStream::connect((STACK_IP, 80)).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(
        page.contains("tcp connections: 1"),
        "only the status request's connection is left:\n{page}"
    );
    let counters = server.finish();
    assert!(counter(&counters, "tcp", "estab_resets") >= 1, "{counters}");
}

fn closed_port_answers_rst(drv: &[&str]) {
    skip_unless!("ip", "ping", "ethtool");
    let net = Net::new();
    let _server = net.serve(drv);
    let e = TcpStream::connect_timeout(
        &format!("{STACK_IP}:4321").parse().unwrap(),
        Duration::from_secs(5),
    )
    .expect_err("nothing listens");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
}

fn the_wire_is_clean(drv: &[&str]) {
    skip_unless!("ip", "ping", "ethtool", "curl", "tcpdump", "tshark");
    let net = Net::new();
    let _server = net.serve(&[drv, &["--http", "80"]].concat());
    let cap = net.capture();
    let out = host::run(&[
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://{STACK_IP}/bytes/3000000"),
    ])
    .unwrap();
    assert_eq!(out, "200");
    let frames = cap.check_tcp();
    assert!(frames > 100, "{frames} frames");
}
