//! `ringstack gateway` as the router between two kernels: three network
//! namespaces in a line, a LAN host (198.18.1.2) — ringstack on two veths
//! (198.18.1.1, 198.51.100.1) — a WAN host (198.51.100.2), each kernel
//! routing through ringstack. Every scenario runs on AF_PACKET and on
//! AF_XDP attached generically (skb) and in the veth driver (drv).

mod common;

use common::*;
use ringstack::dev::host::{self, add_quiet_netns, run};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

macro_rules! on_every_driver {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[test]
            fn packet() {
                super::$name(&["--driver", "packet"]);
            }
            #[test]
            fn xdp_skb() {
                super::$name(&["--driver", "xdp", "--xdp-attach", "skb"]);
            }
            #[test]
            fn xdp_drv() {
                super::$name(&["--driver", "xdp", "--xdp-attach", "drv"]);
            }
        })*
    };
}

const LAN_HOST: &str = "198.18.1.2";
const LAN_GW: &str = "198.18.1.1";
const WAN_HOST: &str = "198.51.100.2";
const WAN_GW: &str = "198.51.100.1";

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// The three namespaces, deleted on drop.
struct Line {
    lan: String,
    gw: String,
    wan: String,
    gw_lan: String,
    gw_wan: String,
    config: std::path::PathBuf,
}

impl Line {
    /// `wan_mtu`: the MTU of the WAN link, both ends.
    fn new(wan_mtu: u32, lan_extra: &str) -> Line {
        let id = format!(
            "g{}x{}",
            SEQ.fetch_add(1, Ordering::Relaxed),
            std::process::id()
        );
        let l = Line {
            lan: format!("{id}l"),
            gw: format!("{id}g"),
            wan: format!("{id}w"),
            gw_lan: format!("{id}a"),
            gw_wan: format!("{id}b"),
            config: std::env::temp_dir().join(format!("ringstack-{id}.toml")),
        };
        let (lan_if, wan_if) = (format!("{id}c"), format!("{id}d"));
        for ns in [&l.lan, &l.gw, &l.wan] {
            add_quiet_netns(ns).expect("namespace");
        }
        let sh = |args: &[&str]| {
            run(args).unwrap_or_else(|e| panic!("{e}"));
        };
        sh(&[
            "ip", "link", "add", &l.gw_lan, "netns", &l.gw, "type", "veth", "peer", "name",
            &lan_if, "netns", &l.lan,
        ]);
        sh(&[
            "ip", "link", "add", &l.gw_wan, "netns", &l.gw, "type", "veth", "peer", "name",
            &wan_if, "netns", &l.wan,
        ]);
        let mtu = wan_mtu.to_string();
        for (ns, dev) in [(&l.gw, &l.gw_wan), (&l.wan, &wan_if)] {
            sh(&["ip", "-n", ns, "link", "set", "dev", dev, "mtu", &mtu]);
        }
        for (ns, dev, addr, via) in [
            (&l.lan, &lan_if, LAN_HOST, LAN_GW),
            (&l.wan, &wan_if, WAN_HOST, WAN_GW),
        ] {
            sh(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                dev,
            ]);
            sh(&["ip", "-n", ns, "link", "set", "dev", dev, "up"]);
            sh(&["ip", "-n", ns, "route", "add", "default", "via", via]);
            // Full checksums and MTU-sized frames from the kernels (LAB.md).
            sh(&[
                "ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso",
                "off", "gro", "off",
            ]);
        }
        for dev in [&l.gw_lan, &l.gw_wan] {
            sh(&["ip", "-n", &l.gw, "link", "set", "dev", dev, "up"]);
        }
        l.write_config(lan_extra, "");
        l
    }

    fn write_config(&self, lan_extra: &str, wan_extra: &str) {
        let text = format!(
            "[[interface]]\nname = \"lan\"\ndevice = \"{}\"\naddress = \"{LAN_GW}/24\"\n{lan_extra}\n\n[[interface]]\nname = \"wan\"\ndevice = \"{}\"\naddress = \"{WAN_GW}/24\"\n{wan_extra}\n",
            self.gw_lan, self.gw_wan
        );
        std::fs::write(&self.config, text).expect("write config");
    }

    /// `ringstack gateway` in the middle namespace, once it forwards.
    fn gateway(&self, drv: &[&str]) -> Proc {
        let c = Command::new("ip")
            .args(["netns", "exec", &self.gw, BIN, "gateway", "--config"])
            .arg(&self.config)
            .args(drv)
            .args(["--udp-echo", "7"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ringstack gateway");
        let p = Proc(Some(c));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.lan(&["ping", "-c", "1", "-W", "1", WAN_HOST]).is_ok() {
                return p;
            }
        }
        panic!("the gateway never forwarded:\n{}", p.finish());
    }

    fn lan(&self, args: &[&str]) -> std::io::Result<String> {
        host::VethPair::exec(&self.lan, args)
    }
    fn wan(&self, args: &[&str]) -> std::io::Result<String> {
        host::VethPair::exec(&self.wan, args)
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        for ns in [&self.lan, &self.gw, &self.wan] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_file(&self.config);
    }
}

/// Output of a command that may fail (ping exits 1 when an error came back).
fn out(ns: &str, args: &[&str]) -> String {
    let o = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

on_every_driver!(
    pings_cross_and_ttl_expiry_and_traceroute_name_the_gateway,
    a_30_mb_http_transfer_through_the_gateway_is_byte_exact,
    df_too_big_gets_frag_needed_and_non_df_is_fragmented,
    no_route_is_net_unreachable_and_spoofed_sources_are_dropped,
    a_reload_changes_addresses_without_losing_a_forwarded_packet,
);

fn pings_cross_and_ttl_expiry_and_traceroute_name_the_gateway(drv: &[&str]) {
    skip_unless!("ip", "ping", "ethtool", "traceroute");
    let line = Line::new(1500, "");
    let gw = line.gateway(drv);
    let p = line
        .lan(&[
            "ping", "-c", "200", "-i", "0.005", "-W", "2", "-q", WAN_HOST,
        ])
        .expect("ping");
    assert_eq!(ping_summary(&p), (200, 200), "{p}");
    let p = line
        .wan(&["ping", "-c", "50", "-i", "0.005", "-W", "2", "-q", LAN_HOST])
        .expect("ping");
    assert_eq!(ping_summary(&p), (50, 50), "{p}");
    // The router's own addresses answer from either side.
    let p = line
        .lan(&["ping", "-c", "3", "-i", "0.05", "-q", WAN_GW])
        .expect("ping the WAN address");
    assert_eq!(ping_summary(&p), (3, 3), "{p}");
    let ttl1 = out(
        &line.lan,
        &["ping", "-c", "1", "-t", "1", "-W", "1", WAN_HOST],
    );
    assert!(
        ttl1.contains(&format!("From {LAN_GW} icmp_seq=1 Time to live exceeded")),
        "{ttl1}"
    );
    let tr = out(
        &line.lan,
        &["traceroute", "-n", "-q", "1", "-w", "2", WAN_HOST],
    );
    let hops: Vec<&str> = tr
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(hops, vec![LAN_GW, WAN_HOST], "{tr}");
    let counters = gw.finish();
    assert!(counter(&counters, "ip", "forwarded") >= 500, "{counters}");
    assert!(
        counter(&counters, "ip", "fwd_drop_ttl_expired") >= 2,
        "{counters}"
    );
    assert_eq!(
        counter(&counters, "ip", "drop_bad_checksum"),
        0,
        "{counters}"
    );
}

fn a_30_mb_http_transfer_through_the_gateway_is_byte_exact(drv: &[&str]) {
    skip_unless!("ip", "ping", "ethtool", "curl", "python3", "sha256sum");
    let line = Line::new(1500, "");
    let dir = tempdir(&line.wan);
    let file = format!("{dir}/blob");
    run(&[
        "sh",
        "-c",
        &format!("head -c 30000000 /dev/urandom > {file}"),
    ])
    .expect("blob");
    let server = Proc(Some(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &line.wan,
                "python3",
                "-m",
                "http.server",
                "8000",
                "--bind",
                WAN_HOST,
                "--directory",
                &dir,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("http.server"),
    ));
    let gw = line.gateway(drv);
    let got = format!("{dir}/got");
    let url = format!("http://{WAN_HOST}:8000/blob");
    let mut fetched = Err(std::io::Error::other("not tried"));
    for _ in 0..20 {
        fetched = line.lan(&["curl", "-sS", "--max-time", "120", "-o", &got, &url]);
        if fetched.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    fetched.expect("curl through the gateway");
    let sum = |f: &str| {
        run(&["sha256sum", f])
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(sum(&got), sum(&file), "the body differs");
    drop(server);
    let counters = gw.finish();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(counter(&counters, "ip", "forwarded") > 20_000, "{counters}");
}

fn tempdir(tag: &str) -> String {
    let d = std::env::temp_dir().join(format!("ringstack-gw-{tag}"));
    std::fs::create_dir_all(&d).expect("tempdir");
    d.to_string_lossy().into_owned()
}

fn df_too_big_gets_frag_needed_and_non_df_is_fragmented(drv: &[&str]) {
    skip_unless!("ip", "ping", "ethtool");
    let line = Line::new(1400, "");
    let gw = line.gateway(drv);
    // First, before the LAN host learns the path MTU: its 1500-byte
    // fragments must be cut again for the 1400-byte WAN.
    let p = line
        .lan(&[
            "ping", "-c", "5", "-i", "0.05", "-W", "2", "-M", "dont", "-s", "3000", WAN_HOST,
        ])
        .expect("big pings");
    assert_eq!(ping_summary(&p), (5, 5), "{p}");
    let df = out(
        &line.lan,
        &[
            "ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1450", WAN_HOST,
        ],
    );
    assert!(
        df.contains(&format!(
            "From {LAN_GW} icmp_seq=1 Frag needed and DF set (mtu = 1400)"
        )),
        "{df}"
    );
    // The kernel learned the path MTU: its next DF ping of that size is
    // refused locally.
    let again = out(
        &line.lan,
        &[
            "ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1450", WAN_HOST,
        ],
    );
    assert!(
        again.contains("mtu = 1400") || again.contains("mtu=1400"),
        "{again}"
    );
    let counters = gw.finish();
    assert!(
        counter(&counters, "ip", "fwd_drop_frag_needed") >= 1,
        "{counters}"
    );
    assert!(
        counter(&counters, "ip", "fwd_fragmented") >= 5,
        "{counters}"
    );
}

fn no_route_is_net_unreachable_and_spoofed_sources_are_dropped(drv: &[&str]) {
    skip_unless!("ip", "ping", "ethtool");
    let line = Line::new(1500, "rp_filter = \"strict\"");
    let gw = line.gateway(drv);
    let nr = out(&line.lan, &["ping", "-c", "1", "-W", "1", "192.0.2.1"]);
    assert!(
        nr.contains(&format!(
            "From {LAN_GW} icmp_seq=1 Destination Net Unreachable"
        )),
        "{nr}"
    );
    // The LAN host claims a WAN-side address: strict reverse-path filtering
    // on the LAN interface drops what it sends from it.
    let lan_if = run(&["ip", "-n", &line.lan, "-o", "link", "show", "type", "veth"]).expect("link");
    let lan_if = lan_if
        .split(':')
        .nth(1)
        .unwrap()
        .trim()
        .split('@')
        .next()
        .unwrap()
        .to_string();
    line.lan(&["ip", "addr", "add", "198.51.100.77/32", "dev", &lan_if])
        .expect("spoof address");
    let sp = out(
        &line.lan,
        &[
            "ping",
            "-c",
            "3",
            "-i",
            "0.05",
            "-W",
            "1",
            "-I",
            "198.51.100.77",
            WAN_HOST,
        ],
    );
    assert!(sp.contains("3 packets transmitted, 0 received"), "{sp}");
    let counters = gw.finish();
    assert_eq!(
        counter(&counters, "ip", "fwd_drop_rp_filter"),
        3,
        "{counters}"
    );
    assert!(
        counter(&counters, "ip", "fwd_drop_no_route") >= 1,
        "{counters}"
    );
}

fn a_reload_changes_addresses_without_losing_a_forwarded_packet(drv: &[&str]) {
    skip_unless!("ip", "ping", "ethtool");
    let line = Line::new(1500, "");
    let gw = line.gateway(drv);
    let pid = gw.0.as_ref().unwrap().id();
    let flood = Command::new("ip")
        .args([
            "netns", "exec", &line.lan, "ping", "-c", "300", "-i", "0.01", "-W", "2", "-q",
            WAN_HOST,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ping");
    std::thread::sleep(Duration::from_millis(800));
    line.write_config("addresses = [\"198.18.1.1/24\", \"198.18.1.5/24\"]", "");
    // The first interface now has two addresses: rewrite without the old
    // single `address` key.
    let text = std::fs::read_to_string(&line.config).unwrap();
    let text = text.replacen(&format!("address = \"{LAN_GW}/24\"\n"), "", 1);
    std::fs::write(&line.config, text).unwrap();
    run(&["kill", "-HUP", &pid.to_string()]).expect("SIGHUP");
    let o = flood.wait_with_output().expect("ping");
    let o = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        ping_summary(&o),
        (300, 300),
        "a forwarded packet was lost across the reload:\n{o}"
    );
    let p = line
        .lan(&[
            "ping",
            "-c",
            "2",
            "-i",
            "0.05",
            "-W",
            "1",
            "-q",
            "198.18.1.5",
        ])
        .expect("the new address");
    assert_eq!(ping_summary(&p), (2, 2), "{p}");
    let all = gw.finish();
    assert!(all.contains("reloaded"), "{all}");
    assert!(all.contains("lan: added 198.18.1.5/24"), "{all}");
}

#[test]
fn a_wan_interface_takes_its_address_and_default_route_from_dnsmasq() {
    skip_unless!("ip", "ping", "ethtool", "dnsmasq");
    let line = Line::new(1500, "");
    // The WAN side by DHCP: dnsmasq on the WAN host hands out
    // 198.51.100.50-60 with itself as the router.
    std::fs::write(
        &line.config,
        format!(
            "[[interface]]\nname = \"lan\"\ndevice = \"{}\"\naddress = \"{LAN_GW}/24\"\n\n[[interface]]\nname = \"wan\"\ndevice = \"{}\"\ndhcp = true\n",
            line.gw_lan, line.gw_wan
        ),
    )
    .unwrap();
    let log = std::env::temp_dir().join(format!("ringstack-{}.dnsmasq", line.wan));
    let leases = std::env::temp_dir().join(format!("ringstack-{}.leases", line.wan));
    let wan_if = run(&["ip", "-n", &line.wan, "-o", "link", "show", "type", "veth"]).expect("link");
    let wan_if = wan_if
        .split(':')
        .nth(1)
        .unwrap()
        .trim()
        .split('@')
        .next()
        .unwrap()
        .to_string();
    let _dnsmasq = Proc(Some(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &line.wan,
                "dnsmasq",
                "--no-daemon",
                "--port=0",
                "--bind-interfaces",
                "--log-dhcp",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--dhcp-range=198.51.100.50,198.51.100.60,2m",
                "--dhcp-option=3,198.51.100.2",
            ])
            .arg(format!("--interface={wan_if}"))
            .arg(format!("--dhcp-leasefile={}", leases.display()))
            .arg(format!("--log-facility={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq"),
    ));
    let gw = Proc(Some(
        Command::new("ip")
            .args(["netns", "exec", &line.gw, BIN, "gateway", "--config"])
            .arg(&line.config)
            .args(["--driver", "packet"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gateway"),
    ));
    // The lease, then ringstack's WAN address answering the WAN host.
    let deadline = Instant::now() + Duration::from_secs(25);
    let mut addr = None;
    while Instant::now() < deadline && addr.is_none() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        addr = text
            .lines()
            .rfind(|l| l.contains("DHCPACK("))
            .and_then(|l| {
                let mut w = l
                    .split_whitespace()
                    .skip_while(|w| !w.starts_with("DHCPACK("));
                w.nth(1)
            })
            .map(str::to_string)
            .filter(|a| line.wan(&["ping", "-c", "1", "-W", "1", a]).is_ok());
        std::thread::sleep(Duration::from_millis(200));
    }
    let Some(addr) = addr else {
        panic!(
            "no lease on the WAN side:\n{}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            gw.finish()
        );
    };
    // The WAN host reaches the LAN through the leased address; the LAN host
    // reaches beyond the WAN host through the lease's default route.
    line.wan(&["ip", "route", "replace", "198.18.1.0/24", "via", &addr])
        .expect("route back");
    line.wan(&["ip", "addr", "add", "203.0.113.9/32", "dev", &wan_if])
        .expect("far address");
    let p = line
        .lan(&[
            "ping",
            "-c",
            "5",
            "-i",
            "0.05",
            "-W",
            "2",
            "-q",
            "203.0.113.9",
        ])
        .expect("ping beyond the WAN");
    assert_eq!(ping_summary(&p), (5, 5), "{p}");
    let out = gw.finish();
    assert!(
        out.contains(&format!("dhcp: bound {addr}/24 via 198.51.100.2")),
        "{out}"
    );
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&leases);
}

#[test]
fn a_lan_host_takes_a_lease_from_the_gateway_and_reaches_the_wan_through_it() {
    skip_unless!("ip", "ping", "ethtool", "busybox");
    let line = Line::new(1500, "");
    let leases = std::env::temp_dir().join(format!("ringstack-{}.leases", line.gw));
    let mut text = std::fs::read_to_string(&line.config).unwrap();
    text += &format!(
        "\n[[dhcp_server]]\ninterface = \"lan\"\nrange = \"198.18.1.100-198.18.1.150\"\nlease_time = 600\nlease_file = \"{}\"\n",
        leases.display()
    );
    std::fs::write(&line.config, text).unwrap();
    let gw = line.gateway(&["--driver", "packet"]);
    // The LAN host forgets its static address and asks.
    let lan_if = run(&["ip", "-n", &line.lan, "-o", "link", "show", "type", "veth"]).expect("link");
    let lan_if = lan_if
        .split(':')
        .nth(1)
        .unwrap()
        .trim()
        .split('@')
        .next()
        .unwrap()
        .to_string();
    line.lan(&["ip", "addr", "flush", "dev", &lan_if])
        .expect("flush");
    let script = std::env::temp_dir().join(format!("ringstack-{}.sh", line.lan));
    std::fs::write(
        &script,
        "#!/bin/sh\n[ \"$1\" = bound ] || exit 0\nip addr add \"$ip/$mask\" dev \"$interface\"\nip route replace default via \"$router\"\necho \"leased $ip router $router\"\n",
    )
    .unwrap();
    run(&["chmod", "+x", &script.to_string_lossy()]).unwrap();
    let out = line
        .lan(&[
            "busybox",
            "udhcpc",
            "-i",
            &lan_if,
            "-n",
            "-q",
            "-f",
            "-t",
            "5",
            "-T",
            "1",
            "-s",
            &script.to_string_lossy(),
        ])
        .expect("udhcpc");
    assert!(out.contains("router 198.18.1.1"), "{out}");
    let p = line
        .lan(&["ping", "-c", "5", "-i", "0.05", "-W", "2", "-q", WAN_HOST])
        .expect("ping through");
    assert_eq!(ping_summary(&p), (5, 5), "{p}");
    let counters = gw.finish();
    assert!(counter(&counters, "if:lan", "dhcp_acks") >= 1, "{counters}");
    let _ = std::fs::remove_file(&leases);
    let _ = std::fs::remove_file(&script);
}

#[test]
fn check_names_the_line_and_key_of_an_error_and_accepts_a_good_file() {
    let dir = std::env::temp_dir();
    let bad = dir.join(format!("ringstack-check-bad-{}.toml", std::process::id()));
    let good = dir.join(format!("ringstack-check-good-{}.toml", std::process::id()));
    std::fs::write(
        &bad,
        "[[interface]]\nname = \"lan\"\ndevice = \"eth9\"\naddress = \"198.18.1.300/24\"\n",
    )
    .unwrap();
    std::fs::write(&good, "[[interface]]\nname = \"lan\"\ndevice = \"eth9\"\naddress = \"198.18.1.1/24\"\n\n[[route]]\nto = \"0.0.0.0/0\"\nvia = \"198.18.1.254\"\n").unwrap();
    let o = Command::new(BIN)
        .args(["gateway", "--check"])
        .arg(&bad)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(
        text.contains("line 4") && text.contains("\"address\""),
        "{text}"
    );
    let o = Command::new(BIN)
        .args(["gateway", "--check"])
        .arg(&good)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("ok"), "{text}");
    let _ = std::fs::remove_file(&bad);
    let _ = std::fs::remove_file(&good);
}
