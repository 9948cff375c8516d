//! The AF_XDP driver against the Linux kernel, over a veth pair between two
//! namespaces made for the test (root only; skipped with a reason otherwise).
//!
//! Each parent test builds the namespaces (names carry the pid; a Drop guard
//! deletes them, panic or not) and re-runs this test binary inside our
//! namespace with `ip netns exec`, selecting `xdp_child` with an environment
//! variable saying which scenario to run. The kernel end is driven from the
//! peer namespace by `ip netns exec` (ARP answers, a Python AF_PACKET sender).

#![cfg(target_os = "linux")]

use std::process::{Command, Stdio};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use ringstack::dev::xdp::{XdpAttach, XdpConfig, XdpCopyMode, XdpDevice};
use ringstack::dev::{monotonic_now, Device, Transmit};
use ringstack::Duration;

const CHILD_ENV: &str = "RINGSTACK_XDP_CHILD";
const SOAK_FRAMES: u32 = 1_000_000;
const SOAK_ETHERTYPE: [u8; 2] = [0x88, 0xb5];
const SOAK_MAGIC: &[u8] = b"RSXDPSOAK";

// ---------------------------------------------------------------- helpers

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn must(args: &[&str]) -> String {
    run(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Why the kernel tests can't run here, if they can't.
fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("not root (AF_XDP needs CAP_NET_ADMIN + CAP_BPF)".into());
    }
    for (cmd, arg) in [
        ("ip", "-V"),
        ("ethtool", "--version"),
        ("python3", "--version"),
    ] {
        if !have(cmd, arg) {
            return Some(format!("`{cmd}` is not installed"));
        }
    }
    None
}

/// Two namespaces joined by a veth pair; deleted on drop.
struct Lab {
    ns_ours: String,
    ns_peer: String,
    if_ours: String,
    if_peer: String,
    net: u8,
}

impl Lab {
    fn new(tag: &str, net: u8, queues: u32) -> Lab {
        let pid = std::process::id();
        let lab = Lab {
            ns_ours: format!("rsxdp-{pid}-{tag}-a"),
            ns_peer: format!("rsxdp-{pid}-{tag}-b"),
            if_ours: format!("xa{pid}{tag}"),
            if_peer: format!("xb{pid}{tag}"),
            net,
        };
        // From here on, Drop cleans up whatever got made.
        for ns in [&lab.ns_ours, &lab.ns_peer] {
            must(&["ip", "netns", "add", ns]);
            must(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-q",
                "-w",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]);
        }
        let q = queues.to_string();
        let mut add = vec!["ip", "link", "add", &lab.if_ours, "netns", &lab.ns_ours];
        if queues > 1 {
            add.extend(["numrxqueues", &q, "numtxqueues", &q]);
        }
        add.extend([
            "type",
            "veth",
            "peer",
            "name",
            &lab.if_peer,
            "netns",
            &lab.ns_peer,
        ]);
        if queues > 1 {
            add.extend(["numrxqueues", &q, "numtxqueues", &q]);
        }
        must(&add);
        let a = |args: &[&str]| {
            let mut v = vec!["ip", "netns", "exec", &lab.ns_ours];
            v.extend_from_slice(args);
            must(&v)
        };
        let b = |args: &[&str]| {
            let mut v = vec!["ip", "netns", "exec", &lab.ns_peer];
            v.extend_from_slice(args);
            must(&v)
        };
        if queues > 1 {
            a(&["ethtool", "-L", &lab.if_ours, "rx", &q, "tx", &q]);
            b(&["ethtool", "-L", &lab.if_peer, "rx", &q, "tx", &q]);
        }
        a(&["ip", "link", "set", "dev", "lo", "up"]);
        a(&["ip", "link", "set", "dev", &lab.if_ours, "up"]);
        let peer_addr = format!("198.18.{net}.1/24");
        b(&["ip", "addr", "add", &peer_addr, "dev", &lab.if_peer]);
        b(&["ip", "link", "set", "dev", &lab.if_peer, "up"]);
        // The kernel end must hand us whole frames with real checksums.
        b(&[
            "ethtool",
            "-K",
            &lab.if_peer,
            "tx",
            "off",
            "tso",
            "off",
            "gso",
            "off",
            "gro",
            "off",
        ]);
        lab
    }

    /// Run `scenario` of `xdp_child` inside our namespace. Returns its
    /// stdout, or None if the child reported a reason to skip.
    fn child(&self, scenario: &str, mode: &str) -> Option<String> {
        self.child_via(scenario, mode, &[])
    }

    /// As `child`, with `wrapper` (e.g. setpriv ...) between `ip netns exec`
    /// and the test binary.
    fn child_via(&self, scenario: &str, mode: &str, wrapper: &[&str]) -> Option<String> {
        let out = self.spawn_child(scenario, mode, wrapper);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        // libtest prints "test xdp_child ... " before the child's own
        // output, so the marker need not start its line.
        if let Some(l) = stdout.lines().find_map(|l| l.split_once("XDP-SKIP:")) {
            println!("skipping:{}", l.1);
            return None;
        }
        assert!(out.status.success(), "child {scenario}/{mode} failed");
        assert!(
            stdout.contains("XDP-CHILD-OK"),
            "child {scenario}/{mode} ran nothing"
        );
        Some(stdout)
    }

    fn spawn_child(&self, scenario: &str, mode: &str, wrapper: &[&str]) -> std::process::Output {
        let exe = std::env::current_exe().expect("test binary path");
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns_ours])
            .args(wrapper)
            .arg(exe)
            .args(["--exact", "xdp_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, scenario)
            .env("RS_MODE", mode)
            .env("RS_IF", &self.if_ours)
            .env("RS_PEER_NS", &self.ns_peer)
            .env("RS_PEER_IF", &self.if_peer)
            .env("RS_NET", self.net.to_string())
            .output()
            .expect("spawn child");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        println!("--- child {scenario}/{mode} stdout ---\n{stdout}");
        if !stderr.trim().is_empty() {
            println!("--- child {scenario}/{mode} stderr ---\n{stderr}");
        }
        out
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.ns_ours, &self.ns_peer] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

// ---------------------------------------------------------- parent tests

fn scenario(tag: &str, net: u8, queues: u32, name: &str, mode: &str) {
    if let Some(why) = skip_reason() {
        println!("skipping AF_XDP kernel test: {why}");
        return;
    }
    let lab = Lab::new(tag, net, queues);
    lab.child(name, mode);
}

#[test]
fn xdp_skb_mode_arp_and_soak() {
    scenario("s", 61, 1, "arp_soak", "skb");
}

#[test]
fn xdp_driver_mode_arp_and_soak() {
    scenario("d", 62, 1, "arp_soak", "drv");
}

#[test]
fn xdp_queue_count_checks() {
    scenario("q", 63, 2, "queues", "auto");
}

#[test]
fn xdp_open_errors_are_clear() {
    scenario("e", 64, 1, "errors", "auto");
}

#[test]
fn xdp_without_privileges_says_what_is_needed() {
    if let Some(why) = skip_reason() {
        println!("skipping AF_XDP kernel test: {why}");
        return;
    }
    if !have("setpriv", "--version") {
        println!("skipping: setpriv is not installed");
        return;
    }
    let lab = Lab::new("p", 66, 1);
    lab.child_via(
        "noperm",
        "auto",
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ],
    );
}

#[test]
fn xdp_foreign_program_on_the_interface_is_reported() {
    scenario("f", 67, 1, "foreign", "auto");
}

/// The BPF link dies with the process: a child that aborts while the
/// device is open leaves no program behind.
#[test]
fn xdp_program_detaches_when_the_process_dies() {
    if let Some(why) = skip_reason() {
        println!("skipping AF_XDP kernel test: {why}");
        return;
    }
    let lab = Lab::new("c", 68, 1);
    let out = lab.spawn_child("crash", "skb", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.contains("XDP-SKIP:") {
        return;
    }
    assert!(!out.status.success(), "the child was meant to abort");
    let id = stdout
        .lines()
        .find_map(|l| l.split("PROG_ID=").nth(1))
        .expect("child printed its program id")
        .trim()
        .to_string();
    let deadline = StdInstant::now() + StdDuration::from_secs(3);
    loop {
        let link = must(&[
            "ip",
            "-n",
            &lab.ns_ours,
            "link",
            "show",
            "dev",
            &lab.if_ours,
        ]);
        let in_kernel =
            have("bpftool", "version") && run(&["bpftool", "prog", "show", "id", &id]).is_ok();
        if !link.contains("prog/xdp") && !in_kernel {
            println!("program {id} gone after the process died");
            break;
        }
        assert!(
            StdInstant::now() < deadline,
            "program {id} outlived its process: {link}"
        );
        std::thread::sleep(StdDuration::from_millis(50));
    }
}

#[test]
fn xdp_overload_drops_are_counted() {
    scenario("o", 65, 1, "drops", "skb");
}

/// In driver mode the socket's drops also show in the interface's
/// rx_dropped: counted once all the same (see `assert_all_counted`).
#[test]
fn xdp_driver_mode_overload_drops_are_counted() {
    scenario("r", 68, 1, "drops", "drv");
}

// ------------------------------------------------------ the child side

/// Entry point for the re-executed child; a no-op in a normal test run.
#[test]
fn xdp_child() {
    let Ok(scenario) = std::env::var(CHILD_ENV) else {
        return;
    };
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let ctx = Ctx {
        ifname: env("RS_IF"),
        peer_ns: env("RS_PEER_NS"),
        peer_if: env("RS_PEER_IF"),
        net: env("RS_NET").parse().unwrap(),
        mode: env("RS_MODE"),
    };
    let done = match scenario.as_str() {
        "arp_soak" => child_arp_soak(&ctx),
        "queues" => child_queues(&ctx),
        "errors" => child_errors(&ctx),
        "drops" => child_drops(&ctx),
        "noperm" => child_noperm(&ctx),
        "foreign" => child_foreign(&ctx),
        "crash" => {
            let cfg = XdpConfig {
                attach: XdpAttach::Skb,
                frame_count: 256,
                ..Default::default()
            };
            let Some(dev) = open_or_skip(&ctx.ifname, cfg) else {
                return;
            };
            let link = must(&["ip", "link", "show", "dev", &ctx.ifname]);
            assert!(link.contains("prog/xdp"), "{link}");
            println!("PROG_ID={}", dev.prog_id());
            use std::io::Write;
            std::io::stdout().flush().unwrap();
            // No destructors: the kernel alone has to clean up.
            std::process::abort();
        }
        other => panic!("unknown scenario {other}"),
    };
    if done {
        println!("XDP-CHILD-OK");
    }
}

struct Ctx {
    ifname: String,
    peer_ns: String,
    peer_if: String,
    net: u8,
    mode: String,
}

impl Ctx {
    fn our_ip(&self) -> [u8; 4] {
        [198, 18, self.net, 2]
    }
    fn peer_ip(&self) -> [u8; 4] {
        [198, 18, self.net, 1]
    }
}

/// Open, or say why AF_XDP can't be tested here (prints XDP-SKIP).
fn open_or_skip(ifname: &str, cfg: XdpConfig) -> Option<XdpDevice> {
    match XdpDevice::open(ifname, cfg) {
        Ok(d) => Some(d),
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
            println!("XDP-SKIP: AF_XDP unavailable: {e}");
            None
        }
        Err(e) => panic!("XdpDevice::open({ifname}): {e}"),
    }
}

fn arp_request(mac: [u8; 6], spa: [u8; 4], tpa: [u8; 4]) -> [u8; 60] {
    let mut f = [0u8; 60];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&spa);
    f[38..42].copy_from_slice(&tpa);
    f
}

/// The sender's MAC if `f` is an ARP reply from `peer_ip` to `our_mac`.
fn arp_reply_from(f: &[u8], our_mac: [u8; 6], peer_ip: [u8; 4]) -> Option<[u8; 6]> {
    let ok = f.len() >= 42
        && f[0..6] == our_mac
        && f[12..14] == [0x08, 0x06]
        && f[20..22] == [0, 2]
        && f[28..32] == peer_ip
        && f[32..38] == our_mac;
    ok.then(|| f[22..28].try_into().unwrap())
}

fn send(tx: &mut dyn Transmit, frame: &[u8]) {
    tx.transmit(frame.len(), &mut |buf| buf.copy_from_slice(frame))
        .expect("transmit");
}

fn sysfs_stat(ifname: &str, what: &str) -> u64 {
    // `ip netns exec` mounts a sysfs of the namespace we run in.
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/statistics/{what}"))
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(0)
}

fn stat(dev: &XdpDevice, name: &str) -> u64 {
    dev.stats()
        .extra
        .iter()
        .find(|(k, _)| *k == name)
        .map(|&(_, v)| v)
        .unwrap_or(0)
}

/// Every frame the peer sent is received or counted dropped, once.
///
/// A frame is lost at one of two places, and each loss is counted by
/// exactly one of `xsk_dropped` (our socket's XDP_STATISTICS: RX ring full,
/// no fill frame) and `peer_tx_dropped` (the peer veth's tx_dropped: its
/// `veth_xmit` could not hand the frame over). Our interface's rx_dropped
/// counts one of those same losses again, depending on the attach mode:
/// - SKB (generic) mode: `veth_xmit` queues the frame on our backlog
///   (`netif_rx`); a full backlog bumps our rx_dropped *and*, through the
///   returned NET_RX_DROP, the peer's tx_dropped. The program runs later in
///   our receive path, and a failed redirect to the socket is freed by
///   `do_xdp_generic` without touching the device counters.
/// - Driver mode: the frame goes into our veth's ptr_ring; a full ring is
///   the peer's tx_dropped only. The program runs in veth's NAPI poll and a
///   failed redirect is counted by the socket *and* as veth's rx_drops,
///   which is what our rx_dropped shows. Adding it (or the max of it and
///   the peer's count) to `xsk_dropped` counts those drops twice: the soak
///   over-counted by 23 552 on a loaded machine that way.
///
/// So the sum is `received + xsk_dropped + peer_tx_dropped`, exactly, and
/// our rx_dropped can only be a cross-check: never more than the two.
fn assert_all_counted(
    sent: u64,
    received: u64,
    xsk_dropped: u64,
    peer_tx_dropped: u64,
    our_rx_dropped: u64,
) {
    assert_eq!(
        received + xsk_dropped + peer_tx_dropped,
        sent,
        "every frame sent is received or counted dropped, once (received {received}, \
         xsk_dropped {xsk_dropped}, peer tx_dropped {peer_tx_dropped}, our rx_dropped \
         {our_rx_dropped})"
    );
    assert!(
        our_rx_dropped <= xsk_dropped + peer_tx_dropped,
        "our interface dropped {our_rx_dropped} frames that neither the socket \
         ({xsk_dropped}) nor the peer ({peer_tx_dropped}) counted"
    );
}

const SENDER: &str = r#"
import socket, struct, sys, time
ifname, n, dst = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
pace = int(sys.argv[4]) if len(sys.argv) > 4 else 128
def rd(p):
    with open(f"/sys/class/net/{ifname}/statistics/{p}") as f:
        return int(f.read())
with open(f"/sys/class/net/{ifname}/address") as f:
    src = bytes.fromhex(f.read().strip().replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
d0 = rd("tx_dropped")
sent = 0
for i in range(n):
    frame = dst + src + b"\x88\xb5" + b"RSXDPSOAK" + struct.pack("!I", i) + bytes(50)
    try:
        s.send(frame)
        sent += 1
    except OSError:
        pass
    if pace and i % pace == pace - 1:
        time.sleep(0.001)
print(sent, rd("tx_dropped") - d0, flush=True)
"#;

fn child_arp_soak(ctx: &Ctx) -> bool {
    // Driver mode also runs with busy polling (RX kicks on every empty poll).
    let (attach, frame_size, busy_poll, want_kind) = match ctx.mode.as_str() {
        "skb" => (XdpAttach::Skb, 4096, false, "xdp/skb/copy"),
        "drv" => (XdpAttach::Driver, 2048, true, "xdp/drv/copy"),
        m => panic!("mode {m}"),
    };
    let cfg = XdpConfig {
        attach,
        frame_size,
        busy_poll,
        frame_count: 4096,
        // Auto: asks for zero-copy first, veth refuses, we get copy.
        zero_copy: XdpCopyMode::Auto,
        ..Default::default()
    };
    let Some(mut dev) = open_or_skip(&ctx.ifname, cfg) else {
        return false;
    };
    let caps = dev.caps();
    println!("opened {:?}: kind {} mtu {}", dev, caps.kind, caps.mtu);
    assert_eq!(caps.kind, want_kind);
    assert_eq!(dev.attach_mode(), attach);
    assert!(!dev.is_zero_copy());
    assert_eq!(caps.mtu, 1500);
    let mac = caps.mac.expect("interface MAC");
    let acc = dev.umem_accounting();
    assert_eq!(acc.total, 4096);
    assert_eq!((acc.in_fill, acc.free), (2048, 2048), "{acc:?}");

    // --- ARP: a hand-built request out, the kernel's reply back in through
    // the RX ring; a second request goes out from inside the RX callback
    // with the lent transmitter, and its reply must arrive too.
    let req = arp_request(mac, ctx.our_ip(), ctx.peer_ip());
    send(dev.transmitter(), &req);
    dev.flush(monotonic_now()).unwrap();
    let mut replies = 0;
    let mut peer_mac = None;
    let deadline = StdInstant::now() + StdDuration::from_secs(5);
    while replies < 2 && StdInstant::now() < deadline {
        dev.receive(monotonic_now(), 64, &mut |f, tx| {
            if let Some(m) = arp_reply_from(f, mac, ctx.peer_ip()) {
                replies += 1;
                peer_mac = Some(m);
                if replies == 1 {
                    send(tx, &req);
                }
            }
        })
        .unwrap();
        dev.flush(monotonic_now()).unwrap();
        dev.wait(Some(Duration::from_millis(10))).unwrap();
    }
    let peer_mac = peer_mac.expect("no ARP reply from the kernel");
    assert_eq!(
        replies, 2,
        "the reply to the request sent from the callback"
    );
    println!("ARP: {replies} replies from {peer_mac:02x?}");
    assert!(stat(&dev, "xdp_tx_kicks") > 0, "copy mode needs TX kicks");

    // --- Soak: the kernel side sends SOAK_FRAMES frames; every one is
    // received or counted as dropped somewhere.
    let st0 = dev.stats();
    let rx_drop0 = sysfs_stat(&ctx.ifname, "rx_dropped");
    let mac_hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    let mut sender = Command::new("ip")
        .args(["netns", "exec", &ctx.peer_ns, "python3", "-c", SENDER])
        .args([&ctx.peer_if, &SOAK_FRAMES.to_string(), &mac_hex])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sender");
    let mut seen = vec![false; SOAK_FRAMES as usize];
    let (mut received, mut dup, mut other) = (0u32, 0u32, 0u32);
    let mut on_frame = |f: &[u8], _tx: &mut dyn Transmit| {
        if f.len() >= 27 && f[12..14] == SOAK_ETHERTYPE && &f[14..23] == SOAK_MAGIC {
            let seq = u32::from_be_bytes(f[23..27].try_into().unwrap()) as usize;
            if std::mem::replace(&mut seen[seq], true) {
                dup += 1;
            }
            received += 1;
        } else {
            other += 1;
        }
    };
    let started = StdInstant::now();
    let mut quiet_since = None;
    loop {
        let n = dev.receive(monotonic_now(), 64, &mut on_frame).unwrap();
        dev.flush(monotonic_now()).unwrap();
        if n > 0 {
            quiet_since = None;
            continue;
        }
        if sender.try_wait().unwrap().is_some() {
            // Drain: stop after 300 ms without a frame.
            let q = *quiet_since.get_or_insert_with(StdInstant::now);
            if q.elapsed() > StdDuration::from_millis(300) {
                break;
            }
        }
        assert!(started.elapsed() < StdDuration::from_secs(60), "soak hung");
        dev.wait(Some(Duration::from_millis(1))).unwrap();
    }
    let out = sender.wait_with_output().unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    let mut it = line.split_whitespace().map(|x| x.parse::<u64>().unwrap());
    let (sent, peer_tx_dropped) = (it.next().unwrap(), it.next().unwrap());
    let st = dev.stats();
    let xsk_dropped = st.rx_dropped - st0.rx_dropped;
    let our_rx_dropped = sysfs_stat(&ctx.ifname, "rx_dropped") - rx_drop0;
    println!(
        "soak: sent {sent} received {received} (dup {dup}, other {other}) xsk_dropped \
         {xsk_dropped} peer tx_dropped {peer_tx_dropped} our rx_dropped {our_rx_dropped} \
         in {:?}",
        started.elapsed()
    );
    println!("stats: {st:?}");
    assert_eq!(dup, 0, "a frame delivered twice");
    assert!(sent > 0);
    assert_all_counted(
        sent,
        received as u64,
        xsk_dropped,
        peer_tx_dropped,
        our_rx_dropped,
    );
    // Paced, nothing should be lost on an idle machine (none was in our
    // runs); a loaded one may drop some, and those are counted above.
    assert!(
        received as u64 * 2 >= sent,
        "paced sender: at least half should arrive"
    );
    assert_eq!(st.rx_frames - st0.rx_frames, (received + other) as u64);

    // --- A TX burst far beyond copy mode's per-sendto batch: fill the TX
    // side until it refuses, flush once, and the peer must get all of it.
    let peer_rx = || -> u64 {
        let path = format!("/sys/class/net/{}/statistics/rx_packets", ctx.peer_if);
        must(&["ip", "netns", "exec", &ctx.peer_ns, "cat", &path])
            .trim()
            .parse()
            .unwrap()
    };
    let rx0 = peer_rx();
    let exhausted0 = dev.stats().tx_exhausted;
    let mut burst = [0u8; 60];
    burst[0..6].copy_from_slice(&peer_mac);
    burst[6..12].copy_from_slice(&mac);
    burst[12..14].copy_from_slice(&SOAK_ETHERTYPE);
    let mut queued = 0u64;
    loop {
        match dev
            .transmitter()
            .transmit(burst.len(), &mut |b| b.copy_from_slice(&burst))
        {
            Ok(()) => queued += 1,
            Err(e) => {
                assert_eq!(e, ringstack::dev::TxError::Exhausted);
                break;
            }
        }
    }
    assert_eq!(dev.stats().tx_exhausted, exhausted0 + 1);
    assert_eq!(
        dev.transmitter().transmit(5000, &mut |_| unreachable!()),
        Err(ringstack::dev::TxError::TooLong)
    );
    let acc = dev.umem_accounting();
    println!("TX burst: {queued} frames queued; {acc:?}");
    assert_eq!(queued, 2048, "half the UMEM serves TX");
    dev.flush(monotonic_now()).unwrap();
    let deadline = StdInstant::now() + StdDuration::from_secs(3);
    while peer_rx() - rx0 < queued && StdInstant::now() < deadline {
        dev.flush(monotonic_now()).unwrap();
        std::thread::sleep(StdDuration::from_millis(20));
    }
    println!(
        "TX burst: peer received {} of {queued}; {} TX kicks so far",
        peer_rx() - rx0,
        stat(&dev, "xdp_tx_kicks")
    );
    assert_eq!(peer_rx() - rx0, queued);

    // --- No frame leaked: after a quiescent flush everything is free or
    // in the fill ring.
    let deadline = StdInstant::now() + StdDuration::from_secs(2);
    let acc = loop {
        dev.flush(monotonic_now()).unwrap();
        let acc = dev.umem_accounting();
        if acc.in_tx + acc.in_completion_or_flight == 0 || StdInstant::now() > deadline {
            break acc;
        }
        std::thread::sleep(StdDuration::from_millis(10));
    };
    println!("accounting: {acc:?}");
    assert_eq!(acc.sum(), acc.total);
    assert_eq!(
        (acc.in_rx, acc.in_tx, acc.in_completion_or_flight),
        (0, 0, 0)
    );
    assert_eq!(acc.free + acc.in_fill, acc.total);
    assert_eq!(stat(&dev, "umem_ownership_violations"), 0);
    assert_eq!(stat(&dev, "xdp_rx_kicks") > 0, busy_poll);
    assert_eq!(stat(&dev, "xdp_bad_rx_descs"), 0);

    // --- Dropping the device removes the program from the interface.
    let prog_id = dev.prog_id();
    assert!(prog_id > 0);
    let link = must(&["ip", "link", "show", "dev", &ctx.ifname]);
    assert!(link.contains("xdp"), "program attached while open: {link}");
    if have("bpftool", "version") {
        let dump = must(&[
            "bpftool",
            "prog",
            "dump",
            "xlated",
            "id",
            &prog_id.to_string(),
        ]);
        println!("program {prog_id}:\n{dump}");
        assert!(dump.contains("redirect"), "{dump}");
    }
    drop(dev);
    let deadline = StdInstant::now() + StdDuration::from_secs(3);
    loop {
        let link = must(&["ip", "link", "show", "dev", &ctx.ifname]);
        let gone_from_link = !link.contains("prog/xdp");
        let gone_from_kernel = if have("bpftool", "version") {
            run(&["bpftool", "prog", "show", "id", &prog_id.to_string()]).is_err()
        } else {
            println!("bpftool missing: checking `ip link` only");
            true
        };
        if gone_from_link && gone_from_kernel {
            break;
        }
        assert!(
            StdInstant::now() < deadline,
            "program {prog_id} still there after drop: {link}"
        );
        std::thread::sleep(StdDuration::from_millis(50));
    }
    println!("program {prog_id} gone after drop");
    true
}

fn child_queues(ctx: &Ctx) -> bool {
    let base = XdpConfig {
        attach: XdpAttach::Skb,
        zero_copy: XdpCopyMode::Copy,
        frame_count: 256,
        ..Default::default()
    };
    // Two RX queues, one socket: refused with a clear reason.
    let e = XdpDevice::open(&ctx.ifname, base.clone()).unwrap_err();
    if e.kind() == std::io::ErrorKind::Unsupported {
        println!("XDP-SKIP: {e}");
        return false;
    }
    println!("queues=1 on 2 queues: {e}");
    assert!(e.to_string().contains("allow_unbound_queues"), "{e}");
    // Three sockets on two queues: out of range.
    let e = XdpDevice::open(
        &ctx.ifname,
        XdpConfig {
            queues: 3,
            ..base.clone()
        },
    )
    .unwrap_err();
    println!("queues=3 on 2 queues: {e}");
    assert!(e.to_string().contains("out of range"), "{e}");
    // Allowed explicitly.
    let d = open_or_skip(
        &ctx.ifname,
        XdpConfig {
            allow_unbound_queues: true,
            ..base.clone()
        },
    )
    .unwrap();
    assert_eq!(d.queue_count(), 1);
    drop(d);
    // Both queues bound, in every attach mode, and ARP still works.
    for attach in [XdpAttach::Skb, XdpAttach::Driver, XdpAttach::Auto] {
        let mut d = open_or_skip(
            &ctx.ifname,
            XdpConfig {
                queues: 2,
                attach,
                zero_copy: XdpCopyMode::Auto,
                ..base.clone()
            },
        )
        .unwrap();
        assert_eq!(d.queue_count(), 2);
        let caps = d.caps();
        println!("queues=2 attach {attach:?}: {}", caps.kind);
        let mac = caps.mac.unwrap();
        let req = arp_request(mac, ctx.our_ip(), ctx.peer_ip());
        let mut got = false;
        let deadline = StdInstant::now() + StdDuration::from_secs(5);
        let mut next_send = StdInstant::now();
        while !got {
            assert!(StdInstant::now() < deadline, "no ARP reply on 2 queues");
            if StdInstant::now() >= next_send {
                send(d.transmitter(), &req);
                next_send = StdInstant::now() + StdDuration::from_millis(300);
            }
            d.flush(monotonic_now()).unwrap();
            d.receive(monotonic_now(), 64, &mut |f, _| {
                got |= arp_reply_from(f, mac, ctx.peer_ip()).is_some();
            })
            .unwrap();
            d.wait(Some(Duration::from_millis(5))).unwrap();
        }
        let acc = d.umem_accounting();
        assert_eq!(acc.total, 512);
        assert_eq!(acc.sum(), acc.total);
    }
    true
}

fn child_errors(ctx: &Ctx) -> bool {
    let cfg = XdpConfig {
        attach: XdpAttach::Skb,
        frame_count: 256,
        ..Default::default()
    };
    let Some(first) = open_or_skip(&ctx.ifname, cfg.clone()) else {
        return false;
    };
    // A second device on the same queue.
    let e = XdpDevice::open(&ctx.ifname, cfg.clone()).unwrap_err();
    println!("second device: {e}");
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
    drop(first);
    // Once the first is gone, the interface is free again.
    drop(XdpDevice::open(&ctx.ifname, cfg.clone()).expect("reopen after drop"));

    // veth has no zero-copy: asking for it is a clear error.
    let e = XdpDevice::open(
        &ctx.ifname,
        XdpConfig {
            attach: XdpAttach::Driver,
            zero_copy: XdpCopyMode::ZeroCopy,
            ..cfg.clone()
        },
    )
    .unwrap_err();
    println!("zero-copy on veth: {e}");
    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("zero-copy"), "{e}");

    // An MTU the frames can't hold.
    must(&["ip", "link", "set", "dev", &ctx.ifname, "mtu", "3000"]);
    let e = XdpDevice::open(
        &ctx.ifname,
        XdpConfig {
            frame_size: 2048,
            ..cfg.clone()
        },
    )
    .unwrap_err();
    println!("MTU 3000, 2048-byte frames: {e}");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("MTU"), "{e}");
    // 4096-byte frames hold it.
    let d = XdpDevice::open(
        &ctx.ifname,
        XdpConfig {
            frame_size: 4096,
            ..cfg.clone()
        },
    )
    .expect("MTU 3000 with 4096-byte frames");
    assert_eq!(d.caps().mtu, 3000);
    drop(d);
    must(&["ip", "link", "set", "dev", &ctx.ifname, "mtu", "1500"]);
    true
}

/// A tiny UMEM and a slow reader under an unpaced sender: frames are lost,
/// and every loss is counted somewhere.
fn child_drops(ctx: &Ctx) -> bool {
    let attach = match ctx.mode.as_str() {
        "skb" => XdpAttach::Skb,
        "drv" => XdpAttach::Driver,
        m => panic!("mode {m}"),
    };
    let cfg = XdpConfig {
        attach,
        frame_count: 64,
        ..Default::default()
    };
    let Some(mut dev) = open_or_skip(&ctx.ifname, cfg) else {
        return false;
    };
    let mac = dev.caps().mac.unwrap();
    let mac_hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    let rx_drop0 = sysfs_stat(&ctx.ifname, "rx_dropped");
    let n = 3000u32;
    let mut sender = Command::new("ip")
        .args(["netns", "exec", &ctx.peer_ns, "python3", "-c", SENDER])
        .args([&ctx.peer_if, &n.to_string(), &mac_hex, "0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sender");
    let mut received = 0u64;
    let mut quiet_since = None;
    loop {
        let got = dev
            .receive(monotonic_now(), 4, &mut |f, _| {
                if f.len() >= 23 && f[12..14] == SOAK_ETHERTYPE && &f[14..23] == SOAK_MAGIC {
                    received += 1;
                }
            })
            .unwrap();
        if got == 0 && sender.try_wait().unwrap().is_some() {
            let q = *quiet_since.get_or_insert_with(StdInstant::now);
            if q.elapsed() > StdDuration::from_millis(300) {
                break;
            }
        } else {
            quiet_since = None;
        }
        // A slow consumer.
        std::thread::sleep(StdDuration::from_micros(200));
    }
    let out = sender.wait_with_output().unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    let mut it = line.split_whitespace().map(|x| x.parse::<u64>().unwrap());
    let (sent, peer_tx_dropped) = (it.next().unwrap(), it.next().unwrap());
    let st = dev.stats();
    let our_rx_dropped = sysfs_stat(&ctx.ifname, "rx_dropped") - rx_drop0;
    println!(
        "overload: sent {sent} received {received} xsk_dropped {} peer tx_dropped \
         {peer_tx_dropped} our rx_dropped {our_rx_dropped}",
        st.rx_dropped
    );
    println!("stats: {st:?}");
    assert!(st.rx_dropped > 0, "the overload should overflow the rings");
    if attach == XdpAttach::Driver {
        // The socket's drops are veth's failed redirects too.
        assert_eq!(
            our_rx_dropped, st.rx_dropped,
            "driver mode counts them twice"
        );
    }
    assert_all_counted(
        sent,
        received,
        st.rx_dropped,
        peer_tx_dropped,
        our_rx_dropped,
    );
    dev.flush(monotonic_now()).unwrap();
    let acc = dev.umem_accounting();
    println!("accounting: {acc:?}");
    assert_eq!(acc.free + acc.in_fill, acc.total);
    true
}

fn child_noperm(ctx: &Ctx) -> bool {
    let e = XdpDevice::open(&ctx.ifname, XdpConfig::default()).unwrap_err();
    println!("unprivileged open: {e}");
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("CAP_NET_ADMIN"), "{e}");
    true
}

/// Another XDP program already on the interface (attached the old way,
/// without a link): open must say so rather than fail obscurely.
fn child_foreign(ctx: &Ctx) -> bool {
    if !have("bpftool", "version") {
        println!("XDP-SKIP: bpftool missing, can't attach a foreign program");
        return false;
    }
    let cfg = XdpConfig {
        attach: XdpAttach::Skb,
        frame_count: 256,
        ..Default::default()
    };
    let Some(dev) = open_or_skip(&ctx.ifname, cfg.clone()) else {
        return false;
    };
    // Borrow our own program as the "foreign" one: pin it in a private
    // bpffs (this process has its own mount namespace under `ip netns
    // exec`), drop the device, attach the pinned program with `ip link`.
    let dir = format!("/tmp/rsxdp-bpffs-{}", std::process::id());
    std::fs::create_dir_all(&dir).unwrap();
    must(&["mount", "-t", "bpf", "bpf", &dir]);
    let pin = format!("{dir}/prog");
    must(&[
        "bpftool",
        "prog",
        "pin",
        "id",
        &dev.prog_id().to_string(),
        &pin,
    ]);
    drop(dev);
    must(&[
        "ip",
        "link",
        "set",
        "dev",
        &ctx.ifname,
        "xdpgeneric",
        "pinned",
        &pin,
    ]);
    for attach in [XdpAttach::Skb, XdpAttach::Driver, XdpAttach::Auto] {
        let e = XdpDevice::open(
            &ctx.ifname,
            XdpConfig {
                attach,
                ..cfg.clone()
            },
        )
        .unwrap_err();
        println!("{attach:?} with a foreign program attached: {e}");
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
        assert!(e.to_string().contains("another XDP program"), "{e}");
    }
    must(&["ip", "link", "set", "dev", &ctx.ifname, "xdpgeneric", "off"]);
    must(&["umount", &dir]);
    let _ = std::fs::remove_dir(&dir);
    // And the interface is usable again.
    drop(XdpDevice::open(&ctx.ifname, cfg).expect("open after the foreign program left"));
    true
}
