//! ringstack's DHCP client against dnsmasq, the kernel's neighbour on a
//! veth pair: `ringstack serve --dhcp` takes a lease, answers on it,
//! renews and rebinds it on dnsmasq's T1/T2, declines an address a kernel
//! host already holds, loses its address when the lease expires and takes
//! a new one when the server is back, and releases at exit.

mod common;

use common::*;
use ringstack::dev::host::{self, VethPair};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicUsize = AtomicUsize::new(0);

struct Lab {
    pair: VethPair,
    leases: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let tag = format!("d{}", SEQ.fetch_add(1, Ordering::Relaxed));
        let pair = VethPair::create(&tag, &format!("{KERNEL_IP}/24")).expect("namespaces");
        // The test thread lives with the kernel and dnsmasq: its pings
        // are theirs.
        host::enter_netns(&pair.ns_b).expect("enter the kernel's namespace");
        let dir = std::env::temp_dir();
        Lab {
            leases: dir.join(format!("ringstack-{}.leases", pair.ns_b)),
            log: dir.join(format!("ringstack-{}.dnsmasq", pair.ns_b)),
            pair,
        }
    }

    /// dnsmasq serving 198.18.0.50-60 with 2-minute leases (its shortest)
    /// and the options in `extra`.
    fn dnsmasq(&self, extra: &[&str]) -> Proc {
        self.dnsmasq_on(&format!("--interface={}", self.pair.if_b), extra)
    }

    fn dnsmasq_on(&self, iface: &str, extra: &[&str]) -> Proc {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let c = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.pair.ns_b,
                "dnsmasq",
                "--no-daemon",
                "--port=0",
                "--bind-interfaces",
                "--log-dhcp",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--dhcp-range=198.18.0.50,198.18.0.60,2m",
                "--dhcp-option=3,198.18.0.1",
            ])
            .arg(iface)
            .arg(format!("--dhcp-leasefile={}", self.leases.display()))
            .args(extra)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dnsmasq");
        std::thread::sleep(Duration::from_millis(300));
        Proc(Some(c))
    }

    fn serve(&self, drv: &[&str]) -> Proc {
        let c = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.pair.ns_a,
                BIN,
                "serve",
                "--iface",
                &self.pair.if_a,
                "--dhcp",
                "--udp-echo",
                "7",
            ])
            .args(drv)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ringstack");
        Proc(Some(c))
    }

    fn dnsmasq_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.leases);
        let _ = std::fs::remove_file(&self.log);
    }
}

fn answers(ip: &str) -> bool {
    host::run(&["ping", "-c", "1", "-W", "1", ip]).is_ok()
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn count(log: &str, what: &str) -> usize {
    log.lines().filter(|l| l.contains(what)).count()
}

/// The address of dnsmasq's last DHCPACK (dnsmasq picks it from a hash of
/// the MAC).
fn acked(log: &str) -> Option<String> {
    log.lines()
        .rfind(|l| l.contains("DHCPACK("))
        .and_then(|l| {
            let mut w = l
                .split_whitespace()
                .skip_while(|w| !w.starts_with("DHCPACK("));
            w.nth(1)
        })
        .map(str::to_string)
}

impl Lab {
    /// Wait for a lease and for ringstack to answer on it; its address.
    fn bound(&self, limit: Duration) -> String {
        let mut addr = None;
        // RFC 5227 probing takes up to about 9 s after the ACK.
        let ok = wait_for(limit, || {
            addr = acked(&self.dnsmasq_log());
            addr.as_deref().is_some_and(answers)
        });
        assert!(ok, "no lease answered:\n{}", self.dnsmasq_log());
        addr.unwrap()
    }
}

macro_rules! on_two_drivers {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[test]
            fn packet() {
                super::$name(&["--driver", "packet"]);
            }
            #[test]
            fn xdp_drv() {
                super::$name(&["--driver", "xdp", "--xdp-attach", "drv"]);
            }
        })*
    };
}

on_two_drivers!(a_lease_from_dnsmasq_configures_the_interface_and_is_released_at_exit);

fn a_lease_from_dnsmasq_configures_the_interface_and_is_released_at_exit(drv: &[&str]) {
    skip_unless!("ip", "ping", "dnsmasq");
    let lab = Lab::new();
    let _server = lab.dnsmasq(&[]);
    let rs = lab.serve(drv);
    let addr = lab.bound(Duration::from_secs(20));
    let p = host::run(&["ping", "-c", "20", "-i", "0.01", "-q", &addr]).expect("ping");
    assert_eq!(ping_summary(&p), (20, 20), "{p}");
    let out = rs.finish();
    assert!(
        out.contains(&format!(
            "dhcp: bound {addr}/24 via 198.18.0.1, lease 120 s"
        )),
        "{out}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let log = lab.dnsmasq_log();
    for m in [
        "DHCPDISCOVER",
        "DHCPOFFER",
        "DHCPREQUEST",
        "DHCPACK",
        "DHCPRELEASE",
    ] {
        assert!(log.contains(m), "dnsmasq never saw {m}:\n{log}");
    }
}

/// A third namespace, a kernel host that took 198.18.0.50 by hand, on a
/// bridge with the server's end; deleted on drop.
struct Squatter {
    ns: String,
}

impl Squatter {
    fn new(lab: &Lab) -> Squatter {
        let ns = format!("{}s", lab.pair.ns_b);
        let (b, c) = (format!("{}v", lab.pair.if_b), format!("{}w", lab.pair.if_b));
        let br = format!("{}r", lab.pair.if_b);
        host::add_quiet_netns(&ns).expect("netns");
        let nb = &lab.pair.ns_b;
        for args in [
            vec![
                "ip", "link", "add", &b, "netns", nb, "type", "veth", "peer", "name", &c, "netns",
                &ns,
            ],
            vec!["ip", "-n", nb, "link", "add", &br, "type", "bridge"],
            vec!["ip", "-n", nb, "addr", "flush", "dev", &lab.pair.if_b],
            vec![
                "ip",
                "-n",
                nb,
                "link",
                "set",
                "dev",
                &lab.pair.if_b,
                "master",
                &br,
            ],
            vec!["ip", "-n", nb, "link", "set", "dev", &b, "master", &br],
            vec!["ip", "-n", nb, "addr", "add", "198.18.0.1/24", "dev", &br],
            vec!["ip", "-n", nb, "link", "set", "dev", &br, "up"],
            // The bridge sends dnsmasq's answers: full checksums (LAB.md).
            vec!["ip", "netns", "exec", nb, "ethtool", "-K", &br, "tx", "off"],
            vec!["ip", "-n", nb, "link", "set", "dev", &b, "up"],
            vec!["ip", "-n", &ns, "addr", "add", "198.18.0.50/24", "dev", &c],
            vec!["ip", "-n", &ns, "link", "set", "dev", &c, "up"],
        ] {
            host::run(&args).unwrap_or_else(|e| panic!("{e}"));
        }
        Squatter { ns }
    }
}

impl Drop for Squatter {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

#[test]
fn a_restarted_client_asks_for_its_remembered_address_first() {
    skip_unless!("ip", "ping", "dnsmasq");
    let lab = Lab::new();
    let _server = lab.dnsmasq(&[]);
    let remembered = lab.leases.with_extension("mine");
    let file = remembered.to_string_lossy().into_owned();
    let args = [
        "--driver",
        "packet",
        "--dhcp-keep-lease",
        "--dhcp-lease-file",
        file.as_str(),
    ];
    let first = lab.serve(&args);
    let addr = lab.bound(Duration::from_secs(20));
    first.finish();
    assert_eq!(std::fs::read_to_string(&remembered).unwrap().trim(), addr);
    let discovers = count(&lab.dnsmasq_log(), "DHCPDISCOVER");
    let second = lab.serve(&args);
    // INIT-REBOOT: a REQUEST for the remembered address, no DISCOVER.
    assert!(
        wait_for(Duration::from_secs(20), || answers(&addr)),
        "{}",
        lab.dnsmasq_log()
    );
    let out = second.finish();
    assert_eq!(
        count(&lab.dnsmasq_log(), "DHCPDISCOVER"),
        discovers,
        "{}",
        lab.dnsmasq_log()
    );
    assert!(out.contains(&format!("dhcp: bound {addr}/24")), "{out}");
    let _ = std::fs::remove_file(&remembered);
}

#[test]
fn an_offered_address_a_kernel_host_holds_is_declined_and_another_used() {
    skip_unless!("ip", "ping", "dnsmasq");
    let lab = Lab::new();
    let _squatter = Squatter::new(&lab);
    // dnsmasq, told not to ping first and to give ringstack's MAC .50,
    // offers the address a host already took by hand (the classic
    // "someone configured it statically").
    let bridge = format!("--interface={}r", lab.pair.if_b);
    let _server = lab.dnsmasq_on(
        &bridge,
        &["--no-ping", "--dhcp-host=02:00:00:00:00:2a,198.18.0.50"],
    );
    // ringstack uses its interface's MAC: give the veth the reserved one.
    VethPair::exec(
        &lab.pair.ns_a,
        &[
            "ip",
            "link",
            "set",
            "dev",
            &lab.pair.if_a,
            "address",
            "02:00:00:00:00:2a",
        ],
    )
    .expect("mac");
    let rs = lab.serve(&["--driver", "packet"]);
    // DECLINE, at least 10 s of wait, then a new offer and its probing.
    let ok = wait_for(Duration::from_secs(45), || {
        acked(&lab.dnsmasq_log()).is_some_and(|a| a != "198.18.0.50" && answers(&a))
    });
    let log = lab.dnsmasq_log();
    let out = rs.finish();
    assert!(ok, "no second lease:\n{log}\n{out}");
    let second = acked(&log).unwrap();
    assert!(count(&log, "DHCPDECLINE") >= 1, "{log}");
    assert!(out.contains(&format!("dhcp: bound {second}/24")), "{out}");
    assert!(!out.contains("dhcp: bound 198.18.0.50/24"), "{out}");
}

#[test]
fn renewals_go_to_the_server_and_a_blocked_renewal_is_made_good_by_rebinding() {
    skip_unless!("ip", "ping", "dnsmasq", "nft");
    let lab = Lab::new();
    // T1 10 s, T2 20 s (options 58 and 59), so renewing and rebinding
    // come within the test's minute.
    let _server = lab.dnsmasq(&["--dhcp-option=58,10", "--dhcp-option=59,20"]);
    let rs = lab.serve(&["--driver", "packet"]);
    let addr = lab.bound(Duration::from_secs(20));
    // The first renewal, unicast to the server at T1.
    assert!(
        wait_for(Duration::from_secs(15), || count(
            &lab.dnsmasq_log(),
            "DHCPACK"
        ) >= 2),
        "no renewal:\n{}",
        lab.dnsmasq_log()
    );
    // Drop what comes unicast to the server's port 67: the next renewals
    // go unanswered, and the broadcast REQUEST of REBINDING gets through.
    for rule in [
        "add table inet rsdh",
        "add chain inet rsdh in { type filter hook input priority 0; }",
        "add rule inet rsdh in ip daddr 198.18.0.1 udp dport 67 counter drop",
    ] {
        let mut args = vec!["nft"];
        args.extend(rule.split(' '));
        VethPair::exec(&lab.pair.ns_b, &args).unwrap_or_else(|e| panic!("{rule}: {e}"));
    }
    let acks = count(&lab.dnsmasq_log(), "DHCPACK");
    assert!(
        wait_for(Duration::from_secs(40), || count(
            &lab.dnsmasq_log(),
            "DHCPACK"
        ) > acks),
        "no rebinding:\n{}",
        lab.dnsmasq_log()
    );
    let dropped =
        VethPair::exec(&lab.pair.ns_b, &["nft", "list", "table", "inet", "rsdh"]).expect("nft");
    assert!(
        !dropped.contains("packets 0 "),
        "no renewal was blocked:\n{dropped}"
    );
    assert!(answers(&addr), "the address survived rebinding");
    drop(rs);
}

#[test]
fn an_expired_lease_removes_the_address_and_a_returning_server_gives_a_new_one() {
    skip_unless!("ip", "ping", "dnsmasq");
    let lab = Lab::new();
    let server = lab.dnsmasq(&[]);
    let rs = lab.serve(&["--driver", "packet"]);
    let addr = lab.bound(Duration::from_secs(20));
    let bound = Instant::now();
    drop(server);
    let _ = std::fs::remove_file(&lab.leases);
    // The 2-minute lease runs out with nobody to renew it.
    assert!(
        wait_for(Duration::from_secs(140), || !answers(&addr)),
        "the address outlived its lease"
    );
    assert!(
        bound.elapsed() >= Duration::from_secs(100),
        "gone too early: {:?}",
        bound.elapsed()
    );
    let _server = lab.dnsmasq(&[]);
    lab.bound(Duration::from_secs(60));
    let out = rs.finish();
    assert!(out.contains("dhcp: lease ended"), "{out}");
    assert_eq!(count(&out, "dhcp: bound"), 2, "{out}");
}
