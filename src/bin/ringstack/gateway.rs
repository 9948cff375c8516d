//! `ringstack gateway`: a router over the interfaces of a config file, and
//! `serve --config`, the same without forwarding.
//!
//! One thread polls every device in turn (`Stack::poll_devices`), runs the
//! optional services, and sleeps in poll(2) on all devices at once when
//! idle. SIGINT/SIGTERM end it (counters printed, devices closed, which
//! detaches the XDP programs); SIGHUP reloads the file in place: addresses,
//! routes and interface features change, established connections, sockets
//! and neighbour caches stay.

use crate::{open_device, random_seed, stop_flag, tcp_apps, DevArgs, Driver};
use anyhow::{Context, Result};
use clap::Args;
use ringstack::dev::{self, Device};
use ringstack::eth::MacAddr;
use ringstack::router::config::{self, DriverKind, GatewayConfig};
use ringstack::router::runtime::{self, Link};
use ringstack::stack::{Config, IfaceId, Stack, Stats};
use ringstack::tcp::CcAlgorithm;
use ringstack::time::Duration;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct GatewayArgs {
    /// The config file to run (TOML: [[interface]] and [[route]] tables).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "check",
        conflicts_with = "check"
    )]
    config: Option<PathBuf>,
    /// Check a config file and exit: 0 and a summary if it is valid, 2 and
    /// the line and key of the error if not.
    #[arg(long, value_name = "FILE")]
    check: Option<PathBuf>,
    /// Print the routing table at start and after every reload.
    #[arg(long)]
    show_routes: bool,
    /// TCP congestion control of the services' connections: reno, cubic or bbr.
    #[arg(long, default_value_t = CcAlgorithm::NewReno, value_parser = crate::parse_cc)]
    cc: CcAlgorithm,
    /// Pace reno and cubic too.
    #[arg(long)]
    pace: bool,
    #[command(flatten)]
    services: ServiceArgs,
    /// How devices are opened (--driver is used for interfaces whose
    /// driver is "auto"; --pcap FILE writes one file per interface).
    #[command(flatten)]
    dev: DevArgs,
}

/// The services `serve` runs; `gateway` runs them on the router's own
/// addresses.
#[derive(Args, Debug, Clone)]
pub struct ServiceArgs {
    /// Echo UDP datagrams received on this port (repeatable).
    #[arg(long = "udp-echo", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub udp_echo: Vec<u16>,
    /// Echo TCP connections on this port.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub tcp_echo: Option<u16>,
    /// Accept TCP connections on this port, read and drop.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub discard: Option<u16>,
    /// Serve HTTP/1.1 on this port: GET /bytes/N and a status page at /.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub http: Option<u16>,
    /// Print counters every SECS seconds (0: only at exit).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub stats_interval: u64,
    /// Print counters in Prometheus text format instead of a table.
    #[arg(long)]
    pub prometheus: bool,
}

/// What `run` needs, from `gateway` or from `serve --config`.
pub struct RunArgs {
    pub config: PathBuf,
    pub forwarding: bool,
    pub services: ServiceArgs,
    pub show_routes: bool,
    pub dev: DevArgs,
    pub cc: CcAlgorithm,
    pub pace: bool,
}

pub fn main(a: GatewayArgs) -> Result<i32> {
    if let Some(path) = &a.check {
        return Ok(match config::load(path) {
            Ok(cfg) => {
                print!("{}", cfg.summary());
                println!("{}: ok", path.display());
                0
            }
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                2
            }
        });
    }
    run(RunArgs {
        config: a.config.expect("clap requires --config or --check"),
        forwarding: true,
        services: a.services,
        show_routes: a.show_routes,
        dev: a.dev,
        cc: a.cc,
        pace: a.pace,
    })
}

fn driver(d: DriverKind, default: Driver) -> Driver {
    match d {
        DriverKind::Auto => default,
        DriverKind::Xdp => Driver::Xdp,
        DriverKind::Packet => Driver::Packet,
        DriverKind::Tap => Driver::Tap,
    }
}

/// `base.pcap` with the interface's name before the extension.
fn pcap_path(base: &Path, name: &str) -> PathBuf {
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = base.extension().map(|e| e.to_string_lossy().into_owned());
    let file = match ext {
        Some(e) => format!("{stem}-{name}.{e}"),
        None => format!("{stem}-{name}"),
    };
    base.with_file_name(file)
}

/// Every interface's device, in file order, and what each says it is.
type Opened = (Vec<Box<dyn Device>>, Vec<Link>);

fn open_all(cfg: &GatewayConfig, d: &DevArgs, seed: &[u8; 32]) -> Result<Opened> {
    let mut devs = Vec::new();
    let mut links = Vec::new();
    for (i, c) in cfg.interfaces.iter().enumerate() {
        let pcap = d.pcap.as_deref().map(|p| pcap_path(p, &c.name));
        let dev = open_device(&c.device, driver(c.driver, d.driver), d, pcap.as_deref())
            .with_context(|| format!("interface {:?} (line {})", c.name, c.line))?;
        let caps = dev.caps();
        // A TAP's own MAC belongs to the kernel side: pick a locally
        // administered one of our own.
        let mac = caps
            .mac
            .map(MacAddr)
            .unwrap_or(MacAddr([0x02, seed[0], seed[1], seed[2], seed[3], i as u8]));
        links.push(Link {
            mac: Some(mac),
            mtu: caps.mtu,
        });
        devs.push(dev);
    }
    Ok((devs, links))
}

pub fn run(a: RunArgs) -> Result<i32> {
    let mut cfg = match config::load(&a.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringstack: {}: {e}", a.config.display());
            return Ok(2);
        }
    };
    let stop = stop_flag()?;
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .context("installing SIGHUP handler")?;
    let seed = random_seed();
    let (mut devs, links) = open_all(&cfg, &a.dev, &seed)?;
    // Placeholders: `runtime::build` takes interface 0's MAC and addresses
    // from the file (none for a DHCP interface).
    let mut base = Config::new(
        MacAddr([2, 0, 0, 0, 0, 1]),
        "192.0.2.1/32".parse().expect("a valid prefix"),
    );
    base.seed = seed;
    base.tcp.cc = a.cc;
    base.tcp.pace_all = a.pace;
    let mut stack = runtime::build(&cfg, &links, base, a.forwarding).map_err(anyhow::Error::msg)?;
    let what = if a.forwarding { "gateway" } else { "serving" };
    for (i, (c, d)) in cfg.interfaces.iter().zip(&devs).enumerate() {
        let mut addrs: Vec<String> = c.addresses.iter().map(|a| a.to_string()).collect();
        if c.dhcp {
            addrs.push("address by DHCP".into());
        }
        eprintln!(
            "ringstack: {what}: {} on {} ({}, {}, mtu {}) {}",
            c.name,
            c.device,
            d.caps().kind,
            stack.interface_mac(IfaceId(i as u16)).expect("built"),
            stack.interface_mtu(IfaceId(i as u16)).expect("built"),
            addrs.join(" ")
        );
    }
    if a.show_routes {
        print!("{}", stack.format_routes());
    }
    start_dhcp_servers(&mut stack, &cfg, &a.config)?;
    let s = &a.services;
    let mut echo = Vec::new();
    for &port in &s.udp_echo {
        let h = stack
            .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
            .map_err(|e| anyhow::anyhow!("--udp-echo {port}: {e}"))?;
        echo.push(h);
    }
    let mut services = tcp_apps::Services::new(&mut stack, s.tcp_echo, s.discard, s.http)
        .map_err(anyhow::Error::msg)?;
    let interval = Duration::from_secs(s.stats_interval);
    let mut next_stats = dev::monotonic_now() + interval;
    let mut buf = vec![0u8; 65536];
    let mut fds = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if reload.swap(false, Ordering::Relaxed) {
            match config::load(&a.config) {
                Err(e) => eprintln!(
                    "ringstack: reload refused, still running the old config: {}: {e}",
                    a.config.display()
                ),
                Ok(new) => match runtime::reload(&mut stack, &cfg, &new, &links) {
                    Ok(changes) => {
                        eprintln!(
                            "ringstack: reloaded {} ({} changes)",
                            a.config.display(),
                            changes.len()
                        );
                        for c in changes {
                            eprintln!("ringstack:   {c}");
                        }
                        if a.show_routes {
                            print!("{}", stack.format_routes());
                        }
                        cfg = new;
                    }
                    Err(e) => {
                        eprintln!("ringstack: reload refused, still running the old config: {e}")
                    }
                },
            }
        }
        let now = dev::monotonic_now();
        let n = stack.poll_devices(now, &mut devs).context("device error")?;
        let mut busy = n > 0;
        for &h in &echo {
            while let Ok((len, from)) = stack.udp_recv_from(h, &mut buf) {
                busy = true;
                if let Err(e) = stack.udp_send_to(h, &buf[..len], from) {
                    tracing::debug!(%from, "udp echo: {e}");
                }
            }
        }
        if !services.is_empty() {
            busy |= services.step(now, &mut stack);
        }
        if s.stats_interval > 0 && now >= next_stats {
            print_stats(&stack, &cfg, &devs, s.prometheus);
            next_stats = now + interval;
        }
        if !busy && !a.dev.busy_poll {
            let d = stack.poll_delay(now, Duration::from_millis(50));
            if d > Duration::ZERO {
                dev::wait_any(&devs, Some(d), &mut fds)?;
            }
        }
    }
    // Release DHCP leases, and let queued answers leave before we go.
    stack.dhcp_release(dev::monotonic_now());
    stack.poll_devices(dev::monotonic_now(), &mut devs)?;
    print_stats(&stack, &cfg, &devs, s.prometheus);
    Ok(0)
}

/// Each `[[dhcp_server]]`, its lease file relative to the config file.
fn start_dhcp_servers(stack: &mut Stack, cfg: &GatewayConfig, config_path: &Path) -> Result<()> {
    use ringstack::dhcp::{ClientKey, FileStore, ServerConfig, WallClock};
    for d in &cfg.dhcp_servers {
        let what = || format!("[[dhcp_server]] on {:?} (line {})", d.interface, d.line);
        let id = stack.interface_by_name(&d.interface).with_context(what)?;
        let Some(&me) = stack.interface_addresses(id).first() else {
            anyhow::bail!("{}: the interface has no address", what());
        };
        let path = config_path
            .parent()
            .map(|dir| dir.join(&d.lease_file))
            .unwrap_or_else(|| d.lease_file.clone());
        let now = dev::monotonic_now();
        let unix_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|t| t.as_secs())
            .unwrap_or(0);
        let (store, report) = FileStore::open(&path, WallClock { now, unix_secs })
            .with_context(|| format!("{}: lease file {}", what(), path.display()))?;
        let mut sc = ServerConfig::new(me);
        sc.pools = vec![(d.first, d.last)];
        sc.lease_time = Duration::from_secs(u64::from(d.lease_time));
        sc.routers = vec![d.router.unwrap_or(me.addr())];
        sc.dns = d.dns.clone();
        sc.probe = d.probe_ms > 0;
        if d.probe_ms > 0 {
            sc.probe_timeout = Duration::from_millis(u64::from(d.probe_ms));
        }
        sc.reservations = d
            .reservations
            .iter()
            .map(|&(m, ip)| (ClientKey::Mac(m), ip))
            .collect();
        stack
            .enable_dhcp_server(id, sc, Box::new(store), now)
            .map_err(|e| anyhow::anyhow!("{}: {e}", what()))?;
        eprintln!(
            "ringstack: DHCP server on {}: {}-{}, {} s leases, {} held in {}",
            d.interface,
            d.first,
            d.last,
            d.lease_time,
            report.leases,
            path.display()
        );
    }
    Ok(())
}

fn print_stats(stack: &Stack, cfg: &GatewayConfig, devs: &[Box<dyn Device>], prometheus: bool) {
    let s: Stats = stack.stats();
    if prometheus {
        print!("{}", s.to_prometheus());
    } else {
        println!("--- ringstack counters ---");
        print!("{}", s.to_table(true));
    }
    for (i, (c, d)) in cfg.interfaces.iter().zip(devs).enumerate() {
        let Some(st) = stack.interface_stats(IfaceId(i as u16)) else {
            continue;
        };
        let ds = d.stats();
        let rows = [
            ("rx_frames", st.rx_frames),
            ("rx_bytes", st.rx_bytes),
            ("forwarded_in", st.forwarded_in),
            ("forwarded_out", st.forwarded_out),
            ("forward_dropped", st.forward_dropped),
            ("device_rx_frames", ds.rx_frames),
            ("device_tx_frames", ds.tx_frames),
            ("device_rx_dropped", ds.rx_dropped),
            ("device_tx_exhausted", ds.tx_exhausted),
        ];
        let dhcp = stack.dhcp_server_stats(IfaceId(i as u16));
        let dhcp_rows = dhcp.map(|d| {
            [
                ("dhcp_offers", d.offers),
                ("dhcp_acks", d.acks),
                ("dhcp_naks", d.naks),
                ("dhcp_releases", d.releases),
                ("dhcp_declines", d.declines),
                ("dhcp_refused_pool_exhausted", d.refused_pool_exhausted),
                ("dhcp_refused_rate_limited", d.refused_rate_limited),
                ("dhcp_refused_probe_backlog", d.refused_probe_backlog),
                ("dhcp_refused_per_mac", d.refused_per_mac),
                ("dhcp_refused_table_full", d.refused_table_full),
                ("dhcp_drop_malformed", d.drop_malformed),
            ]
        });
        let rows: Vec<(&str, u64)> = rows
            .into_iter()
            .chain(dhcp_rows.into_iter().flatten())
            .collect();
        if prometheus {
            for (k, v) in rows {
                println!("ringstack_iface_{k}{{iface=\"{}\"}} {v}", c.name);
            }
        } else {
            println!("if:{} (device {}, {}):", c.name, c.device, d.caps().kind);
            for (k, v) in rows {
                println!("    {k:<32} {v}");
            }
            for (k, v) in &ds.extra {
                println!("    {k:<32} {v}");
            }
        }
    }
}
