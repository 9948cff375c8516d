//! ringstack's DHCP server (`ringstack serve --dhcp-server`) against the
//! clients people run: busybox udhcpc and ISC dhclient, each on its own
//! macvlan (its own MAC) in the kernel's namespace. Distinct clients get
//! distinct addresses, a release frees one, a pool of N refuses the N+1-th
//! cleanly, and after `kill -9` a restarted server still knows its leases.

mod common;

use common::*;
use ringstack::dev::host::{self, VethPair};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static SEQ: AtomicUsize = AtomicUsize::new(0);

struct Lab {
    pair: VethPair,
    dir: std::path::PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let tag = format!("s{}", SEQ.fetch_add(1, Ordering::Relaxed));
        let pair = VethPair::create(&tag, "192.0.2.250/24").expect("namespaces");
        host::enter_netns(&pair.ns_b).expect("enter");
        let dir = std::env::temp_dir().join(format!("ringstack-dhcps-{}", pair.ns_b));
        std::fs::create_dir_all(&dir).unwrap();
        // The hook scripts print what the client got.
        let script = dir.join("hook.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\necho \"hook $1 ip=$ip new_ip=$new_ip_address\"\n",
        )
        .unwrap();
        // dhclient's: it configures the address, so that its DHCPRELEASE
        // (unicast from that address) can leave.
        let dh = dir.join("dhclient.sh");
        std::fs::write(&dh, "#!/bin/sh\ncase \"$reason\" in\nBOUND|REBOOT) ip addr add \"$new_ip_address/24\" dev \"$interface\" ;;\nesac\nexit 0\n").unwrap();
        host::run(&["chmod", "+x", &dh.to_string_lossy()]).unwrap();
        host::run(&["chmod", "+x", &script.to_string_lossy()]).unwrap();
        Lab { pair, dir }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    fn server(&self, pool: &str) -> Proc {
        let c = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.pair.ns_a,
                BIN,
                "serve",
                "--iface",
                &self.pair.if_a,
                "--addr",
                "198.18.0.1/24",
                "--driver",
                "packet",
                "--dhcp-server",
                pool,
                "--lease-file",
                &self.file("leases"),
                "--lease-time",
                "600",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ringstack");
        std::thread::sleep(Duration::from_millis(800));
        Proc(Some(c))
    }

    /// A macvlan client interface with its own MAC on the kernel's end.
    fn client_if(&self, n: usize) -> String {
        let name = format!("{}m{n}", self.pair.if_b);
        let mac = format!("02:00:00:00:01:{n:02x}");
        host::run(&[
            "ip",
            "link",
            "add",
            &name,
            "link",
            &self.pair.if_b,
            "address",
            &mac,
            "type",
            "macvlan",
            "mode",
            "bridge",
        ])
        .expect("macvlan");
        host::run(&["ip", "link", "set", "dev", &name, "up"]).expect("up");
        let _ = host::run(&["ethtool", "-K", &name, "tx", "off"]);
        name
    }

    /// udhcpc on `ifname`: the address it was given, if any.
    fn udhcpc(&self, ifname: &str, extra: &[&str]) -> Option<String> {
        let out = Command::new("busybox")
            .args([
                "udhcpc",
                "-i",
                ifname,
                "-n",
                "-q",
                "-f",
                "-t",
                "3",
                "-T",
                "1",
                "-s",
                &self.file("hook.sh"),
            ])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("udhcpc");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        text.lines()
            .find(|l| l.starts_with("hook bound"))
            .and_then(|l| l.split("ip=").nth(1))
            .and_then(|s| s.split_whitespace().next())
            .map(str::to_string)
    }

    /// dhclient, one shot, with its own lease file per interface.
    fn dhclient(&self, ifname: &str) -> Option<String> {
        let out = Command::new("timeout")
            .args([
                "20",
                "dhclient",
                "-4",
                "-1",
                "-d",
                "-sf",
                &self.file("dhclient.sh"),
                "-lf",
                &self.file(&format!("{ifname}.dhl")),
                "-pf",
                &self.file(&format!("{ifname}.pid")),
                ifname,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("dhclient");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        text.lines()
            .find(|l| l.contains("bound to "))
            .and_then(|l| l.split("bound to ").nth(1))
            .and_then(|s| s.split_whitespace().next())
            .map(str::to_string)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn udhcpc_and_dhclient_get_distinct_addresses_and_a_release_frees_one() {
    skip_unless!("ip", "busybox", "dhclient");
    let lab = Lab::new();
    let server = lab.server("198.18.0.100-198.18.0.109");
    let (a, b, c) = (lab.client_if(1), lab.client_if(2), lab.client_if(3));
    let got_a = lab.udhcpc(&a, &[]).expect("udhcpc got no lease");
    let got_b = lab.udhcpc(&b, &[]).expect("udhcpc got no lease");
    let got_c = lab.dhclient(&c).expect("dhclient got no lease");
    // dhclient -r releases its lease.
    host::run(&[
        "timeout",
        "10",
        "dhclient",
        "-4",
        "-r",
        "-sf",
        &lab.file("dhclient.sh"),
        "-lf",
        &lab.file(&format!("{c}.dhl")),
        "-pf",
        &lab.file(&format!("{c}.pid")),
        &c,
    ])
    .expect("dhclient -r");
    for g in [&got_a, &got_b, &got_c] {
        assert!(g.starts_with("198.18.0.10"), "{g} outside the pool");
    }
    assert!(
        got_a != got_b && got_b != got_c && got_a != got_c,
        "{got_a} {got_b} {got_c}"
    );
    let out = server.finish();
    assert_eq!(counter(&out, "dhcp_server", "releases"), 1, "{out}");
    assert!(counter(&out, "dhcp_server", "acks") >= 3, "{out}");
}

#[test]
fn a_pool_of_two_refuses_the_third_client_cleanly() {
    skip_unless!("ip", "busybox");
    let lab = Lab::new();
    let server = lab.server("198.18.0.100-198.18.0.101");
    let got: Vec<Option<String>> = (1..=3)
        .map(|n| lab.udhcpc(&lab.client_if(n), &[]))
        .collect();
    assert!(got[0].is_some() && got[1].is_some(), "{got:?}");
    assert_eq!(got[2], None, "a third address from a pool of two: {got:?}");
    let out = server.finish();
    assert!(
        counter(&out, "dhcp_server", "refused_pool_exhausted") >= 1,
        "{out}"
    );
}

#[test]
fn after_kill_9_a_restarted_server_gives_a_returning_client_its_address() {
    skip_unless!("ip", "dhclient");
    let lab = Lab::new();
    let server = lab.server("198.18.0.100-198.18.0.109");
    let c = lab.client_if(1);
    let first = lab.dhclient(&c).expect("first lease");
    // kill -9: no chance to write anything more.
    let pid = server.0.as_ref().unwrap().id();
    host::run(&["kill", "-9", &pid.to_string()]).expect("kill -9");
    drop(server);
    let server = lab.server("198.18.0.100-198.18.0.109");
    // dhclient asks for its remembered address again (INIT-REBOOT).
    let again = lab.dhclient(&c).expect("second lease");
    assert_eq!(first, again);
    let out = server.finish();
    assert_eq!(counter(&out, "dhcp_server", "naks"), 0, "{out}");
}
