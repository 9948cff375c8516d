//! Shared by the `dev_*` integration tests: network namespaces that clean up
//! after themselves, re-running one test inside a namespace, and hand-built
//! ARP frames.
//!
//! The pattern: an outer test (needs root, `ip`) builds a topology in fresh
//! namespaces named after the process id, then runs an `#[ignore]`d inner test
//! of the same binary inside one of them with `ip netns exec`. The inner test
//! does nothing unless the outer one set `RINGSTACK_NETNS_TEST`.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const INNER_ENV: &str = "RINGSTACK_NETNS_TEST";

/// Why these tests cannot run here, if they cannot.
pub fn skip_reason(tools: &[&str]) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    if euid != "0" {
        return Some(format!("needs root (euid {euid})"));
    }
    for tool in tools {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Some(format!("{tool} not installed"));
        }
    }
    None
}

/// Run `program args`, returning its stderr on failure.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Namespaces deleted on drop, even when the test panics.
pub struct Netns {
    names: Vec<String>,
}

impl Netns {
    /// Create namespaces `rsd{pid}{tag}{suffix}` for each suffix, with `lo`
    /// up and IPv6 off (no MLD/DAD chatter in the tests' captures).
    pub fn create(tag: &str, suffixes: &[&str]) -> Result<Netns, String> {
        let mut ns = Netns { names: Vec::new() };
        for s in suffixes {
            let name = format!("rsd{}{tag}{s}", std::process::id());
            run("ip", &["netns", "add", &name])?;
            ns.names.push(name.clone());
            run("ip", &["-n", &name, "link", "set", "dev", "lo", "up"])?;
            for key in ["all", "default"] {
                let _ = run(
                    "ip",
                    &[
                        "netns",
                        "exec",
                        &name,
                        "sysctl",
                        "-q",
                        "-w",
                        &format!("net.ipv6.conf.{key}.disable_ipv6=1"),
                    ],
                );
            }
        }
        Ok(ns)
    }

    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// Run `ip` with `args` inside namespace `i`.
    pub fn ip(&self, i: usize, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["-n", self.names[i].as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Run `program args` inside namespace `i`.
    pub fn exec(&self, i: usize, program: &str, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["netns", "exec", self.names[i].as_str(), program];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Run the `#[ignore]`d test `test` of this binary inside namespace `i`
    /// with `env` set, and panic with its output unless it passes.
    pub fn run_test(&self, i: usize, test: &str, env: &[(&str, &str)]) {
        let exe = std::env::current_exe().expect("current_exe");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.names[i]])
            .arg(&exe)
            .args([
                "--exact",
                test,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(INNER_ENV, "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = wait_with_timeout(cmd, Duration::from_secs(60));
        let text = format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{text}");
        assert!(
            out.status.success(),
            "inner test {test} failed in {}:\n{text}",
            self.names[i]
        );
        assert!(
            text.contains("1 passed"),
            "inner test {test} did not run:\n{text}"
        );
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for name in self.names.iter().rev() {
            let _ = run("ip", &["netns", "del", name]);
        }
    }
}

/// Run `cmd` to completion, killing it (our own child) after `limit`.
fn wait_with_timeout(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd.spawn().expect("spawn ip netns exec");
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait().expect("try_wait") {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("wait");
                panic!(
                    "inner test timed out after {limit:?}:\n{}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    child.wait_with_output().expect("wait_with_output")
}

/// Whether this is the inner run (inside a namespace made by the outer test).
pub fn is_inner() -> bool {
    if std::env::var_os(INNER_ENV).is_some() {
        return true;
    }
    println!("skipped: runs only inside a namespace set up by its outer test");
    false
}

pub fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} not set by the outer test"))
}

pub fn parse_mac(s: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    for (dst, part) in mac.iter_mut().zip(s.split(':')) {
        *dst = u8::from_str_radix(part, 16).expect("MAC");
    }
    mac
}

/// A broadcast ARP request: who has `target`? tell `sender_ip` at `mac`.
pub fn arp_request(mac: [u8; 6], sender_ip: [u8; 4], target: [u8; 4]) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&sender_ip);
    f[38..42].copy_from_slice(&target);
    f
}

/// An ARP frame's (operation, sender MAC, sender IP, target MAC, target IP).
pub type Arp = (u16, [u8; 6], [u8; 4], [u8; 6], [u8; 4]);

pub fn parse_arp(f: &[u8]) -> Option<Arp> {
    if f.len() < 42 || f[12..14] != [0x08, 0x06] || f[14..20] != [0, 1, 0x08, 0, 6, 4] {
        return None;
    }
    let op = u16::from_be_bytes([f[20], f[21]]);
    Some((
        op,
        f[22..28].try_into().ok()?,
        f[28..32].try_into().ok()?,
        f[32..38].try_into().ok()?,
        f[38..42].try_into().ok()?,
    ))
}

/// The source MAC of an Ethernet frame.
pub fn src_mac(f: &[u8]) -> Option<[u8; 6]> {
    f.get(6..12)?.try_into().ok()
}
