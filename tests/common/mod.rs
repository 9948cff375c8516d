//! Shared plumbing for tests that run ringstack against the Linux kernel in
//! network namespaces. Each test makes its own uniquely named pair and
//! deletes it on drop, even when the test fails.
#![allow(dead_code)]

use ringstack::dev::host::{self, VethPair};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const STACK_IP: &str = "198.18.0.2";
pub const KERNEL_IP: &str = "198.18.0.1";
pub const BIN: &str = env!("CARGO_BIN_EXE_ringstack");

/// Why a test cannot run here, or None when it can.
pub fn skip_reason(tools: &[&str]) -> Option<String> {
    if !host::is_root() {
        return Some("needs root to create network namespaces".into());
    }
    tools
        .iter()
        .find(|t| !host::have_tool(t))
        .map(|t| format!("`{t}` is not installed (scripts/install-deps.sh installs it)"))
}

/// Print why a test is skipped and return from it.
#[macro_export]
macro_rules! skip_unless {
    ($($tool:expr),*) => {
        if let Some(why) = common::skip_reason(&[$($tool),*]) {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

/// A namespace pair whose kernel side the calling thread has entered.
pub struct Net {
    pub pair: VethPair,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

impl Net {
    pub fn new() -> Net {
        // Tests run in parallel in one process: the pid alone is not unique.
        let tag = format!("t{}", SEQ.fetch_add(1, Ordering::Relaxed));
        let pair = VethPair::create(&tag, &format!("{KERNEL_IP}/24")).expect("create namespaces");
        host::enter_netns(&pair.ns_b).expect("enter the kernel's namespace");
        Net { pair }
    }

    /// Start `ringstack ARGS...` in ringstack's namespace with --iface/--addr filled in.
    pub fn ringstack(&self, cmd: &str, extra: &[&str]) -> Proc {
        let c = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.pair.ns_a,
                BIN,
                cmd,
                "--iface",
                &self.pair.if_a,
                "--addr",
            ])
            .arg(format!("{STACK_IP}/24"))
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ringstack");
        Proc(Some(c))
    }

    /// `ringstack serve` with UDP echo on port 7, once it answers ping.
    pub fn serve(&self, extra: &[&str]) -> Proc {
        let mut args = vec!["--udp-echo", "7"];
        args.extend_from_slice(extra);
        let p = self.ringstack("serve", &args);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if host::run(&["ping", "-c", "1", "-W", "1", STACK_IP]).is_ok() {
                return p;
            }
        }
        let out = p.finish();
        panic!("ringstack serve did not answer ping within 15 s; it said:\n{out}");
    }

    /// Capture the kernel's side of the link with tcpdump.
    pub fn capture(&self) -> Capture {
        let path = std::env::temp_dir().join(format!("ringstack-test-{}.pcap", self.pair.ns_b));
        let c = Command::new("tcpdump")
            .args(["-i", &self.pair.if_b, "-U", "-n", "-s", "0", "-w"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tcpdump");
        let p = Proc(Some(c));
        // tcpdump's "listening on" comes before its first packet is written;
        // wait until a frame we provoke (an ARP or echo request) is in the
        // file, so the test's traffic is captured from its first frame.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).map_or(0, |m| m.len()) <= 24 {
            assert!(
                Instant::now() < deadline,
                "tcpdump wrote nothing within 10 s"
            );
            let _ = host::run(&["ping", "-c", "1", "-W", "1", STACK_IP]);
        }
        Capture {
            proc: Some(p),
            path,
        }
    }
}

/// A child process, ended with SIGTERM by PID.
pub struct Proc(pub Option<Child>);

impl Proc {
    /// SIGTERM, wait, and return stdout followed by stderr.
    pub fn finish(mut self) -> String {
        let Some(mut c) = self.0.take() else {
            return String::new();
        };
        let _ = host::terminate(c.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        let mut out = String::new();
        if let Some(mut o) = c.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(mut e) = c.stderr.take() {
            let _ = e.read_to_string(&mut out);
        }
        out
    }

    /// Wait for the process to exit by itself; stdout+stderr and success.
    pub fn wait(mut self, limit: Duration) -> (String, bool) {
        let Some(mut c) = self.0.take() else {
            return (String::new(), false);
        };
        let deadline = Instant::now() + limit;
        let mut ok = false;
        loop {
            match c.try_wait() {
                Ok(Some(st)) => {
                    ok = st.success();
                    break;
                }
                _ if Instant::now() >= deadline => {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let mut out = String::new();
        if let Some(mut o) = c.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(mut e) = c.stderr.take() {
            let _ = e.read_to_string(&mut out);
        }
        (out, ok)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = host::terminate(c.id());
            let _ = c.wait();
        }
    }
}

pub struct Capture {
    proc: Option<Proc>,
    pub path: std::path::PathBuf,
}

impl Capture {
    /// Stop capturing and have tshark check every frame: it must find no
    /// malformed packet and no bad checksum. Returns the number of frames.
    pub fn check(mut self) -> usize {
        if let Some(p) = self.proc.take() {
            p.finish();
        }
        let p = self.path.to_string_lossy().into_owned();
        let bad = host::run(&[
            "tshark", "-r", &p, "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "--disable-protocol",
            "thrift", "-Y", "_ws.malformed || _ws.expert.severity == error || ip.checksum.status == \"Bad\" || udp.checksum.status == \"Bad\" || icmp.checksum.status == \"Bad\"",
        ])
        .expect("tshark");
        assert!(bad.trim().is_empty(), "tshark flagged frames:\n{bad}");
        host::run(&["tshark", "-r", &p, "-T", "fields", "-e", "frame.number"])
            .expect("tshark")
            .lines()
            .count()
    }
}

impl Capture {
    /// [`Capture::check`] with TCP checksums checked too, and TCP's own
    /// expert errors (bad checksum, malformed options) counted as failures.
    pub fn check_tcp(mut self) -> usize {
        if let Some(p) = self.proc.take() {
            p.finish();
        }
        let p = self.path.to_string_lossy().into_owned();
        // One exception, for the kernel's frames only: a TCP checksum of
        // 0xffff where 0x0000 is computed. With TX checksum offload off
        // (as these tests set it), Linux's software fallback
        // (`skb_checksum_help`) writes a zero checksum as 0xffff
        // (CSUM_MANGLED_0, UDP's rule), about once in 65 536 segments;
        // both are zero in ones' complement (RFC 1624 §3) and every
        // receiver accepts it, but tshark reports it as a bad checksum and
        // an error. ringstack never sends it: its checksum is the
        // complement of a sum that is never zero. Seen once in a clean-clone
        // CI run (the_wire_is_clean::packet).
        let filter = format!(
            "_ws.malformed || ip.checksum.status == \"Bad\" || ((tcp.checksum.status == \"Bad\" || _ws.expert.severity == error) && !(tcp.checksum.ffff && ip.src == {KERNEL_IP}))"
        );
        let bad = host::run(&[
            "tshark",
            "-r",
            &p,
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "--disable-protocol",
            "thrift",
            "-Y",
            &filter,
        ])
        .expect("tshark");
        assert!(bad.trim().is_empty(), "tshark flagged frames:\n{bad}");
        host::run(&["tshark", "-r", &p, "-T", "fields", "-e", "frame.number"])
            .expect("tshark")
            .lines()
            .count()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The "N packets transmitted, M received" line of a ping run, parsed.
pub fn ping_summary(out: &str) -> (u32, u32) {
    let line = out
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping summary in:\n{out}"));
    let nums: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    (nums[0], nums[1])
}

/// A counter from `ringstack serve`'s exit table ("    name    value").
pub fn counter(out: &str, layer: &str, name: &str) -> u64 {
    let mut in_layer = false;
    for l in out.lines() {
        if !l.starts_with(' ') {
            // "device (xdp/drv/copy):" is the "device" layer.
            in_layer = l.trim_end_matches(':').split(' ').next() == Some(layer);
            continue;
        }
        let mut it = l.split_whitespace();
        if in_layer && it.next() == Some(name) {
            return it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        }
    }
    0
}
