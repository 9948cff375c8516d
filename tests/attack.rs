//! The hostile network: scapy, in the kernel's namespace, throws malformed
//! and malicious frames at `ringstack serve`. After each attack the stack
//! must still answer the kernel's ping and UDP echo, have counted the drops,
//! and hold no more memory than its caps allow.
//!
//! TCP attacks run against `--http 80` and `--tcp-echo 7`: after each, a
//! kernel client must still fetch a page over a fresh connection.

mod common;

use common::{counter, ping_summary, Proc, BIN, KERNEL_IP, STACK_IP};
use ringstack::dev::host::{self, VethPair};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicUsize = AtomicUsize::new(0);
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/attack/attack.py");

fn skip() -> Option<String> {
    if let Some(why) = common::skip_reason(&["ip", "ping", "ethtool", "python3"]) {
        return Some(why);
    }
    if host::run(&["python3", "-c", "import scapy"]).is_err() {
        return Some("scapy is not installed (scripts/install-deps.sh installs it)".into());
    }
    None
}

/// Resident memory of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn still_answers() {
    // A fresh TCP connection is served.
    let mut s = TcpStream::connect_timeout(
        &format!("{STACK_IP}:80").parse().unwrap(),
        Duration::from_secs(10),
    )
    .expect("TCP connect after the attack");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /bytes/100000 HTTP/1.0\r\n\r\n").unwrap();
    let mut page = Vec::new();
    s.read_to_end(&mut page)
        .expect("HTTP response after the attack");
    assert!(
        page.starts_with(b"HTTP/1.1 200 OK") && page.len() > 100_000,
        "{} bytes",
        page.len()
    );
    let out = host::run(&["ping", "-c", "5", "-i", "0.05", "-W", "2", STACK_IP])
        .expect("ping after the attack");
    assert_eq!(ping_summary(&out), (5, 5), "{out}");
    let sock = UdpSocket::bind((KERNEL_IP, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(b"still there?", (STACK_IP, 7)).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = sock.recv_from(&mut buf).expect("UDP echo after the attack");
    assert_eq!(&buf[..n], b"still there?");
}

/// Run one scenario against a fresh stack; returns the stack's counters.
fn attack(scenario: &str) -> String {
    attack_with(scenario, |_| (Vec::new(), ()), |_| ())
}

/// `setup` runs once the stack is up and returns extra arguments for the
/// scapy script; `during` runs after the attack, before the common checks.
fn attack_with<S>(
    scenario: &str,
    setup: impl FnOnce(&VethPair) -> (Vec<String>, S),
    during: impl FnOnce(S),
) -> String {
    let tag = format!("a{}", SEQ.fetch_add(1, Ordering::Relaxed));
    let pair = VethPair::create(&tag, &format!("{KERNEL_IP}/24")).expect("namespaces");
    host::enter_netns(&pair.ns_b).unwrap();
    // A /16, so floods from thousands of on-link addresses are possible; the
    // kernel is the gateway the ARP-spoofing scenario targets.
    let server = Command::new("ip")
        .args([
            "netns", "exec", &pair.ns_a, BIN, "serve", "--iface", &pair.if_a, "--addr",
        ])
        .arg(format!("{STACK_IP}/16"))
        .args([
            "--gateway",
            KERNEL_IP,
            "--udp-echo",
            "7",
            "--tcp-echo",
            "7",
            "--http",
            "80",
            "--driver",
            "packet",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = server.id();
    let server = Proc(Some(server));
    let deadline = Instant::now() + Duration::from_secs(15);
    while host::run(&["ping", "-c", "1", "-W", "1", STACK_IP]).is_err() {
        assert!(Instant::now() < deadline, "stack did not come up");
    }
    let rss_before = rss_kib(pid);
    let mac = host::run(&["ip", "neigh", "show", STACK_IP]).unwrap();
    let mac = mac
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .expect("neighbour entry")
        .to_string();
    let (extra, state) = setup(&pair);
    let mut args = vec!["python3", SCRIPT, scenario, &pair.if_b, STACK_IP, &mac];
    args.extend(extra.iter().map(String::as_str));
    let out = host::run(&args).expect("scapy attack");
    assert!(out.starts_with("sent "), "{out}");
    during(state);
    still_answers();
    let rss_after = rss_kib(pid);
    let counters = server.finish();
    // Everything a peer can make the stack hold is capped; the process must
    // not have grown by more than the caps (ARP 1024 entries + 256 queued
    // packets, reassembly 4 MiB) plus slack.
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB under {scenario}"
    );
    assert!(counter(&counters, "arp", "neighbors") <= 1024, "{counters}");
    assert!(
        counter(&counters, "arp", "pending_packets") <= 256,
        "{counters}"
    );
    assert!(
        counter(&counters, "ip", "reasm_datagrams") <= 64,
        "{counters}"
    );
    assert!(
        counter(&counters, "ip", "reasm_bytes") <= 4 << 20,
        "{counters}"
    );
    eprintln!("{scenario}: RSS {rss_before} -> {rss_after} KiB");
    counters
}

macro_rules! attack_test {
    ($name:ident, |$c:ident| $check:expr) => {
        #[test]
        fn $name() {
            if let Some(why) = skip() {
                eprintln!("skipped: {why}");
                return;
            }
            let $c = attack(stringify!($name));
            $check;
        }
    };
}

attack_test!(teardrop, |c| assert!(
    counter(&c, "ip", "frag_drop_overlap") >= 1000,
    "{c}"
));
attack_test!(tiny_fragments, |c| {
    let dropped = counter(&c, "ip", "frag_drop_too_many_fragments")
        + counter(&c, "ip", "frag_drop_too_many_datagrams");
    assert!(dropped > 0, "{c}");
});
attack_test!(ping_of_death, |c| assert!(
    counter(&c, "ip", "frag_drop_too_big") >= 20,
    "{c}"
));
attack_test!(fragment_flood, |c| {
    let dropped = counter(&c, "ip", "frag_drop_too_many_datagrams")
        + counter(&c, "ip", "frag_drop_too_many_bytes");
    assert!(dropped >= 10_000, "{c}");
});
attack_test!(arp_flood, |c| {
    assert!(counter(&c, "arp", "rx_requests") >= 9_000, "{c}");
    assert!(
        counter(&c, "arp", "evicted") > 0,
        "the cache must have evicted to stay bounded: {c}"
    );
});
attack_test!(arp_spoof_gateway, |c| assert!(
    counter(&c, "arp", "mac_conflicts") >= 1000,
    "{c}"
));
attack_test!(bad_headers, |c| {
    let d = [
        "drop_bad_header_len",
        "drop_bad_total_len",
        "drop_bad_checksum",
        "drop_bad_version",
        "drop_truncated",
    ]
    .iter()
    .map(|n| counter(&c, "ip", n))
    .sum::<u64>();
    assert!(d >= 1500, "{c}");
    assert!(counter(&c, "udp", "drop_bad_checksum") >= 200, "{c}");
});
attack_test!(icmp_flood, |c| {
    assert!(counter(&c, "icmp", "rx_echo_requests") >= 9_000, "{c}");
    assert!(
        counter(&c, "arp", "pending_dropped") > 0,
        "replies to nonexistent hosts must be bounded: {c}"
    );
});
attack_test!(icmp_errors_quoting_us, |c| assert!(
    counter(&c, "icmp", "rx_errors") >= 4_000,
    "{c}"
));
attack_test!(syn_flood, |c| {
    assert!(
        counter(&c, "tcp", "syn_cookies_sent") > 0,
        "a full SYN queue must fall back to cookies: {c}"
    );
});
attack_test!(tcp_flags_and_options, |c| {
    assert!(
        counter(&c, "tcp", "drop_malformed") + counter(&c, "tcp", "in_errs") > 0,
        "{c}"
    );
    assert!(counter(&c, "tcp", "out_rsts") > 0, "{c}");
});

#[test]
fn blind_rst_syn_injection() {
    if let Some(why) = skip() {
        eprintln!("skipped: {why}");
        return;
    }
    // RFC 5961: RSTs and SYNs with guessed sequence numbers must not tear
    // down a live connection; in-window ones earn a challenge ACK.
    let c = attack_with(
        "blind_rst_syn_injection",
        |_| {
            let s = TcpStream::connect((STACK_IP, 7)).expect("connect to the echo port");
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let port = s.local_addr().unwrap().port();
            (
                vec![KERNEL_IP.to_string(), port.to_string(), "7".to_string()],
                s,
            )
        },
        |mut s: TcpStream| {
            s.write_all(b"still connected?").unwrap();
            let mut b = [0u8; 16];
            s.read_exact(&mut b)
                .expect("the connection survived the injection");
            assert_eq!(&b, b"still connected?");
        },
    );
    assert!(
        counter(&c, "tcp", "challenge_acks")
            + counter(&c, "tcp", "challenge_acks_suppressed")
            + counter(&c, "tcp", "drop_bad_rst")
            + counter(&c, "tcp", "drop_out_of_window")
            > 0,
        "{c}"
    );
    assert_eq!(counter(&c, "tcp", "estab_resets"), 0, "{c}");
    assert!(
        counter(&c, "tcp", "icmp_ignored") >= 1000,
        "ICMP errors with guessed sequence numbers are ignored: {c}"
    );
}
