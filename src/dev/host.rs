//! Host plumbing for the lab, the CLI and the integration tests: network
//! namespaces, veth pairs, and signalling processes we started.
//!
//! Everything here shells out to `ip` or makes one syscall; none of it is on
//! the packet path.

use std::io;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

/// Whether we run as root (CAP_NET_ADMIN and CAP_NET_RAW in practice).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Move the calling thread into the named network namespace
/// (`/run/netns/NAME`, as made by `ip netns add`). Other threads stay where
/// they are; threads spawned afterwards by this one start in it.
pub fn enter_netns(name: &str) -> io::Result<()> {
    let path = format!("/run/netns/{name}");
    let f = std::fs::File::open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("open {path}: {e}")))?;
    // SAFETY: the fd is a valid open namespace file for the duration of the
    // call; setns only changes this thread's namespace membership.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("setns into {name}: {e}")));
    }
    Ok(())
}

/// Send SIGTERM to a process we started.
pub fn terminate(pid: u32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill has no memory-safety preconditions; a stale pid yields ESRCH.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Choose a kernel TCP socket's congestion control (`TCP_CONGESTION`), as
/// the kernel-peer tests and benchmarks do to run the kernel's cubic or bbr
/// against ringstack. Root may pick any loaded algorithm; others only those
/// in net.ipv4.tcp_allowed_congestion_control.
pub fn set_tcp_congestion(s: &impl AsRawFd, cc: &str) -> io::Result<()> {
    // SAFETY: the buffer outlives the call and its length is passed; a bad
    // fd or name is an error return, not undefined behaviour.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            cc.as_ptr().cast(),
            cc.len() as libc::socklen_t,
        )
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("TCP_CONGESTION {cc}: {e}"),
        ));
    }
    Ok(())
}

/// A kernel TCP socket's congestion control (`TCP_CONGESTION`).
pub fn tcp_congestion(s: &impl AsRawFd) -> io::Result<String> {
    let mut buf = [0u8; 16];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` and `len` are valid for the call and `len` is its size.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let b = &buf[..(len as usize).min(buf.len())];
    Ok(String::from_utf8_lossy(b.split(|&c| c == 0).next().unwrap_or(b)).into_owned())
}

/// Whether a program is on PATH.
pub fn have_tool(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// Run a command, failing with its stderr when it exits non-zero.
pub fn run(args: &[&str]) -> io::Result<String> {
    let (prog, rest) = args
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let out = Command::new(prog)
        .args(rest)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "`{}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates network namespace `name` with its loopback up and IPv6 off for
/// every interface in it, present and future: the kernel's IPv6 chatter
/// (MLD, DAD, RS) would only clutter captures and counters. The caller
/// deletes it (`ip netns del`).
pub fn add_quiet_netns(name: &str) -> io::Result<()> {
    run(&["ip", "netns", "add", name])?;
    for k in ["all", "default"] {
        // Best effort: a kernel built without IPv6 has nothing to turn off.
        let _ = run(&[
            "ip",
            "netns",
            "exec",
            name,
            "sysctl",
            "-q",
            "-w",
            &format!("net.ipv6.conf.{k}.disable_ipv6=1"),
        ]);
    }
    run(&["ip", "-n", name, "link", "set", "dev", "lo", "up"])?;
    Ok(())
}

/// Two network namespaces joined by a veth pair, deleted on drop (which also
/// removes the veth pair and ends nothing else).
///
/// `a`'s end is meant for ringstack and gets no kernel address; `b`'s end
/// gets `b_addr` and has checksum/segmentation offloads turned off, so the
/// frames it sends carry full checksums and MTU-sized segments.
#[derive(Debug)]
pub struct VethPair {
    pub ns_a: String,
    pub ns_b: String,
    pub if_a: String,
    pub if_b: String,
}

impl VethPair {
    /// `tag` must be short (interface names are at most 15 bytes) and unique
    /// per run; the process id is added.
    pub fn create(tag: &str, b_addr: &str) -> io::Result<VethPair> {
        let id = format!("{tag}{}", std::process::id());
        let pair = VethPair {
            ns_a: format!("{id}a"),
            ns_b: format!("{id}b"),
            if_a: format!("{id}a"),
            if_b: format!("{id}b"),
        };
        if pair.if_a.len() > 15 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface name {} too long", pair.if_a),
            ));
        }
        add_quiet_netns(&pair.ns_a)?;
        // From here on, Drop cleans up whatever was made.
        add_quiet_netns(&pair.ns_b)?;
        run(&[
            "ip", "link", "add", &pair.if_a, "netns", &pair.ns_a, "type", "veth", "peer", "name",
            &pair.if_b, "netns", &pair.ns_b,
        ])?;
        for (ns, ifn) in [(&pair.ns_a, &pair.if_a), (&pair.ns_b, &pair.if_b)] {
            run(&["ip", "-n", ns, "link", "set", "dev", ifn, "up"])?;
        }
        run(&[
            "ip", "-n", &pair.ns_b, "addr", "add", b_addr, "dev", &pair.if_b,
        ])?;
        if have_tool("ethtool") {
            run(&[
                "ip", "netns", "exec", &pair.ns_b, "ethtool", "-K", &pair.if_b, "tx", "off", "tso",
                "off", "gso", "off", "gro", "off",
            ])?;
        }
        Ok(pair)
    }

    /// Run a command inside namespace `ns`.
    pub fn exec(ns: &str, args: &[&str]) -> io::Result<String> {
        let mut v = vec!["ip", "netns", "exec", ns];
        v.extend_from_slice(args);
        run(&v)
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        for ns in [&self.ns_a, &self.ns_b] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}
