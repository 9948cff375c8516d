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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// A fresh `ringstack serve` in namespaces of its own, under attack.
struct Target {
    // Fields drop in order: the server stops before its namespaces go.
    server: Proc,
    pair: VethPair,
    pid: u32,
    mac: String,
    rss_before: u64,
}

impl Target {
    fn up() -> Target {
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
        Target {
            pair,
            server,
            pid,
            mac,
            rss_before,
        }
    }

    /// `python3 attack.py SCENARIO IFACE STACK_IP STACK_MAC EXTRA...`
    fn script_args<'a>(&'a self, scenario: &'a str, extra: &'a [String]) -> Vec<&'a str> {
        let mut args = vec![
            "python3",
            SCRIPT,
            scenario,
            &self.pair.if_b,
            STACK_IP,
            &self.mac,
        ];
        args.extend(extra.iter().map(String::as_str));
        args
    }

    /// The common checks after an attack; returns the stack's counters.
    fn finish(self, scenario: &str) -> String {
        still_answers();
        let rss_after = rss_kib(self.pid);
        let rss_before = self.rss_before;
        let counters = self.server.finish();
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
}

/// `setup` runs once the stack is up and returns extra arguments for the
/// scapy script; `during` runs after the attack, before the common checks.
fn attack_with<S>(
    scenario: &str,
    setup: impl FnOnce(&VethPair) -> (Vec<String>, S),
    during: impl FnOnce(S),
) -> String {
    let t = Target::up();
    let (extra, state) = setup(&t.pair);
    let out = host::run(&t.script_args(scenario, &extra)).expect("scapy attack");
    assert!(out.starts_with("sent "), "{out}");
    during(state);
    t.finish(scenario)
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

/// How long the SYN flood is spread over, and how long one fetch during it
/// may take (a SYN the flood crowded out costs the kernel 1 s to resend).
const FLOOD_SECS: u64 = 8;
const FETCH_LIMIT: Duration = Duration::from_secs(5);
/// Kernel clients fetching side by side during the flood.
const CLIENTS: usize = 4;

/// Seconds since the epoch: the clock the scapy script prints.
fn epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// One HTTP fetch of `bytes` over a fresh kernel TCP connection, within
/// `limit`; its start and end on the epoch clock.
fn fetch_during_flood(i: usize, bytes: u64, limit: Duration) -> (f64, f64) {
    let (t0, begun) = (epoch(), Instant::now());
    let mut s = TcpStream::connect_timeout(&format!("{STACK_IP}:80").parse().unwrap(), FETCH_LIMIT)
        .unwrap_or_else(|e| panic!("fetch {i}: connect during the flood: {e}"));
    let connected = begun.elapsed();
    let port = s.local_addr().unwrap().port();
    s.set_read_timeout(Some(FETCH_LIMIT)).unwrap();
    s.write_all(format!("GET /bytes/{bytes} HTTP/1.0\r\n\r\n").as_bytes())
        .unwrap();
    let mut page = Vec::new();
    let mut first_byte = None;
    let mut buf = [0u8; 16384];
    loop {
        let n = s.read(&mut buf).unwrap_or_else(|e| {
            panic!(
                "fetch {i} (port {port}, connected after {connected:?}): HTTP response during \
                 the flood: {e} after {} bytes, {:?}",
                page.len(),
                begun.elapsed()
            )
        });
        if n == 0 {
            break;
        }
        first_byte.get_or_insert_with(|| begun.elapsed());
        page.extend_from_slice(&buf[..n]);
    }
    assert!(
        page.starts_with(b"HTTP/1.1 200 OK") && page.len() as u64 > bytes,
        "fetch {i}: {} bytes",
        page.len()
    );
    let took = begun.elapsed();
    assert!(
        took < limit,
        "fetch {i} (port {port}) of {bytes} bytes took {took:?} during the flood: connected \
         after {connected:?}, first byte after {first_byte:?}"
    );
    (t0, epoch())
}

/// RFC 4987: 10 000 spoofed SYNs fill the SYN queue (1024 half-open) and
/// SYN cookies take over; a legitimate kernel client connecting again and
/// again *while* the flood lasts must get in, and fetch `bytes`, every time,
/// each fetch within `limit`; with `median`, half of them within that.
fn syn_flood_with_fetches(bytes: u64, limit: Duration, median: Option<Duration>) {
    if let Some(why) = skip() {
        eprintln!("skipped: {why}");
        return;
    }
    let t = Target::up();
    let extra = vec![FLOOD_SECS.to_string()];
    let args = t.script_args("syn_flood", &extra);
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the scapy flood");
    let stdout = child.stdout.take().unwrap();
    let flood = Proc(Some(child));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stdout).lines() {
            if tx.send(l.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    // "start T", then "full T" once the SYN queue must be full. scapy builds
    // the 10 000 frames first: slow on a loaded machine.
    let stamp = |what: &str| -> f64 {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("no {what:?} line from the flood: {e}"));
        line.strip_prefix(what)
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or_else(|| panic!("expected {what:?}, the flood said {line:?}"))
    };
    let start = stamp("start");
    let full = stamp("full");
    // CLIENTS kernel clients, each connecting and fetching again and again
    // until the flood is over.
    let over = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let over = over.clone();
            std::thread::spawn(move || {
                let mut v = Vec::new();
                while !over.load(Ordering::Relaxed) && v.len() < 1000 {
                    v.push(fetch_during_flood(c * 1000 + v.len(), bytes, limit));
                }
                v
            })
        })
        .collect();
    let summary = rx.recv_timeout(Duration::from_secs(10 * FLOOD_SECS));
    over.store(true, Ordering::Relaxed);
    let mut fetches = Vec::new();
    for c in clients {
        match c.join() {
            Ok(v) => fetches.extend(v),
            Err(e) => std::panic::resume_unwind(e),
        }
    }
    let l = summary.unwrap_or_else(|e| panic!("the flood did not end: {e}"));
    let v: Vec<&str> = l.split_whitespace().collect();
    assert!(v.len() == 3 && v[0] == "sent", "flood said {l:?}");
    let (sent, end) = (v[1].parse::<u64>().unwrap(), v[2].parse::<f64>().unwrap());
    let (log, ok) = flood.wait(Duration::from_secs(30));
    assert!(ok, "the scapy flood failed: {log}");
    assert_eq!(sent, 10_000, "SYNs sent");
    // Concurrency, on one clock: the fetches counted began after the SYN
    // queue was full and ended before the last SYN left.
    let during = fetches
        .iter()
        .filter(|&&(s, e)| s >= full && e <= end)
        .count();
    let mut took: Vec<f64> = fetches.iter().map(|f| f.1 - f.0).collect();
    took.sort_by(f64::total_cmp);
    let longest = took.last().copied().unwrap_or(0.0);
    let mid = took.get(took.len() / 2).copied().unwrap_or(0.0);
    eprintln!(
        "syn flood: {sent} SYNs in {:.2} s (queue full after {:.3} s); {} fetches of {bytes} \
         bytes by {CLIENTS} clients, {during} entirely during the flood, the median \
         {mid:.3} s, the longest {longest:.3} s",
        end - start,
        full - start,
        fetches.len()
    );
    if let Some(m) = median {
        assert!(
            mid < m.as_secs_f64(),
            "the median fetch of {bytes} bytes took {mid:.3} s during the flood: {took:?}"
        );
    }
    assert!(
        during >= 20,
        "only {during} of {} fetches fell within the flood ({full:.3}..{end:.3}): {fetches:?}",
        fetches.len()
    );
    let c = t.finish("syn_flood_while_a_kernel_client_connects");
    let (cookies, ok, failed) = (
        counter(&c, "tcp", "syn_cookies_sent"),
        counter(&c, "tcp", "syn_cookies_ok"),
        counter(&c, "tcp", "syn_cookies_failed"),
    );
    eprintln!(
        "syn flood: cookies sent {cookies} ok {ok} failed {failed}; passive_opens {} \
         drop_listen {} listen_overflows {} syn_queue_full_drops {}",
        counter(&c, "tcp", "passive_opens"),
        counter(&c, "tcp", "drop_listen"),
        counter(&c, "tcp", "listen_overflows"),
        counter(&c, "tcp", "syn_queue_full_drops"),
    );
    // Every SYN past the 1024th got a cookie: the spoofed ones and ours.
    assert!(
        cookies >= 10_000 - 1024,
        "a full SYN queue must fall back to cookies: {c}"
    );
    // Only our client answers cookies, and each fetch once the queue was
    // full came in through one.
    assert!(
        ok >= during as u64,
        "{during} fetches during the flood, {ok} validated cookies: {c}"
    );
    assert_eq!(failed, 0, "no honest ACK fails the cookie check: {c}");
}

#[test]
fn syn_flood_while_a_kernel_client_connects() {
    // A small page: what matters here is getting in.
    syn_flood_with_fetches(1000, FETCH_LIMIT, None);
}

#[test]
fn syn_flood_cookie_connections_are_as_good_as_others() {
    // A connection made through a SYN cookie moves data like any other:
    // the cookie carries the peer's window scale (Linux's 10, not ours),
    // and the cookie SYN-ACK's TSval never runs ahead of the clock, so the
    // first data segment is not dropped by Linux's PAWS. Both were bugs
    // this test found (100 kB took ~9 s, then ~1 s per fetch). Both bugs
    // slowed every cookie connection, so the median fetch must be fast; a
    // single fetch may meet a frame the flood crowded out (a retransmission
    // timeout, ~1 s on a loaded machine) and only has the 5 s limit.
    syn_flood_with_fetches(100_000, FETCH_LIMIT, Some(Duration::from_millis(400)));
}
