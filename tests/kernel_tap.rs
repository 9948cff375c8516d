//! `ringstack serve --driver tap`: the stack creates a TAP device in a
//! namespace of its own, the kernel's side of the TAP gets an address, and
//! the kernel pings and UDP-echoes through it.

mod common;

use common::{ping_summary, Proc, BIN};
use ringstack::dev::host;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Ns(String);
impl Drop for Ns {
    fn drop(&mut self) {
        let _ = host::run(&["ip", "netns", "del", &self.0]);
    }
}

#[test]
fn kernel_pings_and_udp_echoes_through_a_tap() {
    if let Some(why) = common::skip_reason(&["ip", "ping"]) {
        eprintln!("skipped: {why}");
        return;
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        eprintln!("skipped: /dev/net/tun does not exist");
        return;
    }
    let ns = Ns(format!("rstap{}", std::process::id()));
    host::run(&["ip", "netns", "add", &ns.0]).unwrap();
    host::run(&["ip", "-n", &ns.0, "link", "set", "dev", "lo", "up"]).unwrap();
    let tap = format!("rst{}", std::process::id());
    let server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            BIN,
            "serve",
            "--driver",
            "tap",
            "--iface",
            &tap,
            "--addr",
            "198.51.100.2/24",
            "--udp-echo",
            "7",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let server = Proc(Some(server));
    // The TAP appears once ringstack opened it; the kernel's side gets an address.
    let deadline = Instant::now() + Duration::from_secs(10);
    while host::run(&["ip", "-n", &ns.0, "link", "show", "dev", &tap]).is_err() {
        assert!(Instant::now() < deadline, "ringstack did not create {tap}");
        std::thread::sleep(Duration::from_millis(50));
    }
    host::run(&[
        "ip",
        "-n",
        &ns.0,
        "addr",
        "add",
        "198.51.100.1/24",
        "dev",
        &tap,
    ])
    .unwrap();
    host::enter_netns(&ns.0).unwrap();
    let out = host::run(&["ping", "-c", "50", "-i", "0.01", "-W", "2", "198.51.100.2"])
        .expect("ping over the TAP");
    assert_eq!(ping_summary(&out), (50, 50), "{out}");
    let out = host::run(&[
        "ping",
        "-c",
        "5",
        "-i",
        "0.05",
        "-s",
        "3000",
        "-W",
        "2",
        "198.51.100.2",
    ])
    .expect("big ping over the TAP");
    assert_eq!(ping_summary(&out), (5, 5), "{out}");
    let sock = std::net::UdpSocket::bind(("198.51.100.1", 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let data: Vec<u8> = (0..20000u32).map(|i| (i % 251) as u8).collect();
    sock.send_to(&data, ("198.51.100.2", 7)).unwrap();
    let mut buf = vec![0u8; 65536];
    let (n, _) = sock.recv_from(&mut buf).expect("UDP echo over the TAP");
    assert!(buf[..n] == data[..]);
    let counters = server.finish();
    assert!(counters.contains("device (tap)"), "{counters}");
}
