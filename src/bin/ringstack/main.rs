//! `ringstack`: run the stack on an interface, ping through it, or build a
//! lab of network namespaces and watch it answer the Linux kernel.

mod gateway;
mod lab;
mod tcp_apps;
mod tcp_cmds;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ringstack::dev::{self, Device};
use ringstack::eth::MacAddr;
use ringstack::icmp::ping::PingEvent;
use ringstack::ip::cidr::Ipv4Cidr;
use ringstack::stack::{Config, Stack};
use ringstack::tcp::CcAlgorithm;
use ringstack::time::{Duration, Instant};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "ringstack",
    version,
    about = "A poll-mode userspace TCP/IP stack",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Bring the stack up on an interface and answer ARP, ping and UDP until Ctrl-C.
    Serve(ServeArgs),
    /// Send ICMP echo requests through the stack, like iputils ping.
    Ping(PingArgs),
    /// Fetch an http:// URL through the stack (HTTP/1.1 GET).
    Get(tcp_cmds::GetArgs),
    /// Send N bytes to a TCP server and report throughput and retransmissions.
    Send(tcp_cmds::SendArgs),
    /// Build network namespaces, run the stack on one end and drive real
    /// traffic from the Linux kernel on the other (needs root).
    Lab(lab::LabArgs),
    /// Run a router over several interfaces from a config file, forwarding
    /// between them; or check a config file (--check).
    Gateway(gateway::GatewayArgs),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Driver {
    /// AF_XDP if it can start here, else AF_PACKET (the fallback is logged).
    Auto,
    /// AF_XDP: ringstack's own rings and XDP redirect program.
    Xdp,
    /// AF_PACKET with a memory-mapped receive ring (see --packet-ring).
    Packet,
    /// A TAP device (created if it does not exist).
    Tap,
}

impl Driver {
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Auto => "auto",
            Driver::Xdp => "xdp",
            Driver::Packet => "packet",
            Driver::Tap => "tap",
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum XdpAttachArg {
    Auto,
    Skb,
    Drv,
}

/// `--packet-ring`: the AF_PACKET receive ring's layout.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum PacketRingArg {
    /// TPACKET_V2: each frame handed over as soon as it arrives (no latency floor).
    V2,
    /// TPACKET_V3: frames handed over a block at a time (full, or after 1 ms).
    V3,
}

impl From<dev::packet::RingVersion> for PacketRingArg {
    fn from(r: dev::packet::RingVersion) -> Self {
        match r {
            dev::packet::RingVersion::V2 => PacketRingArg::V2,
            dev::packet::RingVersion::V3 => PacketRingArg::V3,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum XdpCopyArg {
    Auto,
    Copy,
    Zc,
}

/// Options every command that brings up the stack shares.
#[derive(Args, Debug, Clone)]
pub struct NetArgs {
    /// Interface to run on (a veth end, a NIC, or a TAP name with --driver tap).
    #[arg(long)]
    iface: Option<String>,
    /// Our address and prefix, e.g. 198.18.0.2/24.
    #[arg(long, value_parser = parse_cidr)]
    addr: Option<Ipv4Cidr>,
    /// Default gateway (must be on the --addr subnet).
    #[arg(long)]
    gateway: Option<Ipv4Addr>,
    /// Take the address, mask, default route and DNS from a DHCP server
    /// (instead of --addr and --gateway).
    #[arg(long, conflicts_with_all = ["addr", "gateway"])]
    dhcp: bool,
    /// With --dhcp: do not send DHCPRELEASE at exit (keep the lease).
    #[arg(long, requires = "dhcp")]
    dhcp_keep_lease: bool,
    /// With --dhcp: remember the leased address in FILE and ask for it
    /// again at the next start (RFC 2131 INIT-REBOOT).
    #[arg(long, value_name = "FILE", requires = "dhcp")]
    dhcp_lease_file: Option<PathBuf>,
    /// Our MAC address (default: the interface's; a random local one on TAP).
    #[arg(long, value_parser = parse_mac)]
    mac: Option<MacAddr>,
    /// IP MTU (default: the interface's).
    #[arg(long, value_parser = clap::value_parser!(u16).range(68..))]
    mtu: Option<u16>,
    /// Only accept and send frames with this 802.1Q VLAN ID.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..4095))]
    vlan: Option<u16>,
    /// TCP congestion control for connections opened or accepted: reno, cubic or bbr.
    #[arg(long, default_value_t = CcAlgorithm::NewReno, value_parser = parse_cc)]
    cc: CcAlgorithm,
    /// Pace reno and cubic too, at cwnd/SRTT x 2 in slow start and x 1.2 after (bbr always paces).
    #[arg(long)]
    pace: bool,
    #[command(flatten)]
    dev: DevArgs,
}

/// How devices are opened and driven.
#[derive(Args, Debug, Clone)]
pub struct DevArgs {
    /// Device driver.
    #[arg(long, value_enum, default_value_t = Driver::Auto)]
    driver: Driver,
    /// AF_XDP: attach the XDP program in the driver (drv), generically (skb), or drv-else-skb.
    #[arg(long, value_enum, default_value_t = XdpAttachArg::Auto)]
    xdp_attach: XdpAttachArg,
    /// AF_XDP: zero-copy (zc), copy, or zero-copy-else-copy.
    #[arg(long, value_enum, default_value_t = XdpCopyArg::Auto)]
    xdp_copy: XdpCopyArg,
    /// AF_XDP: queues to bind, one socket each (must cover every RX queue).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    xdp_queues: u16,
    /// AF_XDP: UMEM frame size.
    #[arg(long, default_value = "4096", value_parser = ["2048", "4096"])]
    xdp_frame_size: String,
    /// AF_XDP: UMEM frames per queue.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(64..=1 << 20))]
    xdp_frames: u32,
    /// AF_XDP: start even if the interface has RX queues no socket is bound to.
    #[arg(long)]
    xdp_allow_unbound_queues: bool,
    /// AF_PACKET: receive ring layout, per-frame (v2) or per-block (v3) handoff.
    #[arg(long, value_enum, default_value_t = PacketRingArg::from(dev::packet::RingVersion::default()))]
    packet_ring: PacketRingArg,
    /// Write every frame received and sent to this pcap file (with several
    /// interfaces, one file per interface: FILE with the interface's name
    /// before the extension).
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// Spin on the device instead of sleeping in poll(2) when idle.
    #[arg(long)]
    busy_poll: bool,
}

pub(crate) fn parse_cc(s: &str) -> Result<CcAlgorithm, String> {
    s.parse().map_err(|e: &str| e.to_string())
}

#[derive(Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    net: NetArgs,
    /// Bring up the interfaces, addresses and routes of a gateway config
    /// file instead of --iface/--addr (without forwarding between them).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve DHCP on --iface, handing out this range (FIRST-LAST, inside
    /// the --addr subnet); ringstack is the router.
    #[arg(long, value_name = "FIRST-LAST", value_parser = parse_range, requires = "lease_file")]
    dhcp_server: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Where the DHCP server keeps its leases (kept across restarts,
    /// written before every ACK).
    #[arg(long, value_name = "FILE", requires = "dhcp_server")]
    lease_file: Option<PathBuf>,
    /// Lease time the DHCP server grants, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600, value_parser = clap::value_parser!(u32).range(60..))]
    lease_time: u32,
    /// How long the DHCP server holds an offered address for a client that
    /// has not yet asked for it, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    offer_hold: u32,
    /// How long the DHCP server waits for an answer to the ARP probe of an
    /// address before offering it, in milliseconds; 0 offers without
    /// probing (faster, but an address someone took by hand is offered
    /// until the client declines it).
    #[arg(long, value_name = "MS", default_value_t = 500, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    dhcp_probe_ms: u32,
    /// Echo UDP datagrams received on this port (repeatable).
    #[arg(long = "udp-echo", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    udp_echo: Vec<u16>,
    /// Echo TCP connections on this port.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    tcp_echo: Option<u16>,
    /// Accept TCP connections on this port, read and drop, report throughput.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    discard: Option<u16>,
    /// Serve HTTP/1.1 on this port: GET /bytes/N and a status page at /.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    http: Option<u16>,
    /// Print counters every SECS seconds (0: only at exit).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    stats_interval: u64,
    /// Print counters in Prometheus text format instead of a table.
    #[arg(long)]
    prometheus: bool,
}

#[derive(Args, Debug)]
struct PingArgs {
    #[command(flatten)]
    net: NetArgs,
    /// Address to ping.
    target: Ipv4Addr,
    /// Stop after COUNT replies (or requests, if they are lost).
    #[arg(short = 'c', long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    count: u32,
    /// Payload bytes per request; sizes above MTU-28 are fragmented.
    #[arg(short = 's', long, default_value_t = 56, value_parser = clap::value_parser!(u32).range(0..=65507))]
    size: u32,
    /// Seconds between requests.
    #[arg(short = 'i', long, default_value_t = 1.0, value_parser = parse_interval)]
    interval: f64,
    /// Seconds to wait for replies after the last request.
    #[arg(short = 'W', long, default_value_t = 2.0, value_parser = parse_interval)]
    timeout: f64,
    /// Set DF: fail instead of fragmenting.
    #[arg(long)]
    dont_fragment: bool,
    /// Print only the summary.
    #[arg(short = 'q', long)]
    quiet: bool,
}

fn parse_range(s: &str) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    let bad = || {
        format!(
            "{s:?} is not a range FIRST-LAST of IPv4 addresses (e.g. 198.18.0.100-198.18.0.199)"
        )
    };
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
    let b: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
    if u32::from(a) > u32::from(b) {
        return Err(format!("{s:?}: the first address is above the last"));
    }
    Ok((a, b))
}

fn parse_cidr(s: &str) -> Result<Ipv4Cidr, String> {
    s.parse::<Ipv4Cidr>()
        .map_err(|e| format!("{e} (expected ADDRESS/PREFIX, e.g. 198.18.0.2/24)"))
}
fn parse_mac(s: &str) -> Result<MacAddr, String> {
    let m = s
        .parse::<MacAddr>()
        .map_err(|_| format!("{s:?} is not a MAC address (expected aa:bb:cc:dd:ee:ff)"))?;
    if !m.is_unicast() || m == MacAddr::ZERO {
        return Err(format!("{m} is not a unicast MAC address"));
    }
    Ok(m)
}
fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds between 0 and 3600"
        )),
    }
}

fn main() {
    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let r = match cli.cmd {
        Cmd::Serve(a) => serve(a),
        Cmd::Ping(a) => ping(a).map(|ok| if ok { 0 } else { 1 }),
        Cmd::Get(a) => tcp_cmds::get(a),
        Cmd::Send(a) => tcp_cmds::send(a),
        Cmd::Lab(a) => lab::run(a),
        Cmd::Gateway(a) => gateway::main(a),
    };
    match r {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("ringstack: error: {e:#}");
            std::process::exit(2);
        }
    }
}

/// SIGINT and SIGTERM set the returned flag; the loops check it.
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("installing signal handler")?;
    }
    Ok(stop)
}

fn random_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut seed);
    }
    // Mix in the clock so a missing /dev/urandom still varies per run.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    for (i, b) in t.to_le_bytes().iter().enumerate() {
        seed[i] ^= b;
    }
    seed
}

/// Open `iface` with `driver`, wrapped in a pcap writer to `pcap` if given.
pub fn open_device(
    iface: &str,
    driver: Driver,
    d: &DevArgs,
    pcap: Option<&std::path::Path>,
) -> Result<Box<dyn Device>> {
    let mut dev: Box<dyn Device> = match driver {
        Driver::Packet => Box::new(open_packet(iface, d)?),
        Driver::Tap => Box::new(
            dev::tap::TapDevice::open(iface).with_context(|| format!("opening TAP {iface}"))?,
        ),
        Driver::Xdp => Box::new(open_xdp(iface, d)?),
        Driver::Auto => match open_xdp(iface, d) {
            Ok(d) => Box::new(d),
            Err(e) => {
                tracing::warn!("{iface}: AF_XDP unavailable, falling back to AF_PACKET: {e:#}");
                Box::new(open_packet(iface, d)?)
            }
        },
    };
    if let Some(path) = pcap {
        dev = Box::new(
            dev::pcap::PcapDevice::new(dev, path)
                .with_context(|| format!("creating pcap file {}", path.display()))?,
        );
    }
    Ok(dev)
}

/// Open the device and build a stack on it.
pub fn bring_up(net: &NetArgs) -> Result<(Box<dyn Device>, Stack)> {
    let Some(iface) = net.iface.as_deref() else {
        bail!("--iface is required");
    };
    let addr = match (net.addr, net.dhcp) {
        (Some(a), _) => a,
        // A placeholder, removed below: the lease brings the address.
        (None, true) => "0.0.0.0/32".parse().expect("a valid prefix"),
        (None, false) => bail!("--addr is required (or --dhcp)"),
    };
    let dev = open_device(iface, net.dev.driver, &net.dev, net.dev.pcap.as_deref())?;
    let caps = dev.caps();
    let seed = random_seed();
    let mac = match (net.mac, caps.mac) {
        (Some(m), _) => m,
        (None, Some(m)) => MacAddr(m),
        // A TAP's own MAC belongs to the kernel side: pick a locally
        // administered one of our own.
        (None, None) => MacAddr([0x02, seed[0], seed[1], seed[2], seed[3], seed[4]]),
    };
    let mtu = match net.mtu {
        Some(m) if m as usize > caps.mtu => {
            bail!("--mtu {m} is larger than the interface MTU {}", caps.mtu)
        }
        Some(m) => m as usize,
        None => caps.mtu,
    };
    let mut config = Config::new(mac, addr);
    config.gateway = net.gateway;
    config.mtu = mtu;
    config.vlan = net.vlan;
    config.seed = seed;
    config.rx_batch = caps.rx_batch.max(1);
    config.tcp.cc = net.cc;
    config.tcp.pace_all = net.pace;
    if net.dhcp {
        config.addrs.clear();
    }
    let mut stack = Stack::new(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    if net.dhcp {
        let cfg = ringstack::dhcp::ClientConfig {
            // dhclient and udhcpc start at once too: one host, one
            // interface, nothing to desynchronise from.
            init_delay: (Duration::ZERO, Duration::ZERO),
            send_release: !net.dhcp_keep_lease,
            requested: net.dhcp_lease_file.as_deref().and_then(remembered_lease),
            ..Default::default()
        };
        stack
            .enable_dhcp(ringstack::stack::IfaceId(0), cfg)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tracing::info!(%iface, driver = %caps.kind, %mac, mtu, "stack up, asking DHCP for an address");
    } else {
        tracing::info!(%iface, driver = %caps.kind, %mac, %addr, mtu, "stack up");
    }
    Ok((dev, stack))
}

fn open_packet(iface: &str, net: &DevArgs) -> Result<dev::packet::PacketDevice> {
    use dev::packet::{PacketConfig, PacketDevice, RingVersion};
    let mut config = PacketConfig::new(match net.packet_ring {
        PacketRingArg::V2 => RingVersion::V2,
        PacketRingArg::V3 => RingVersion::V3,
    });
    // V2 slots must hold a whole frame: size them for the interface's MTU
    // (jumbo frames need larger slots than the default 2048 bytes).
    if let Ok(mtu) = dev::sys::if_mtu(iface) {
        config = config.fit_mtu(mtu);
    }
    PacketDevice::open(iface, config).with_context(|| format!("opening AF_PACKET on {iface}"))
}

fn open_xdp(iface: &str, net: &DevArgs) -> Result<dev::xdp::XdpDevice> {
    use dev::xdp::{XdpAttach, XdpConfig, XdpCopyMode};
    let cfg = XdpConfig {
        queues: net.xdp_queues as usize,
        frame_size: if net.xdp_frame_size == "2048" {
            2048
        } else {
            4096
        },
        frame_count: net.xdp_frames,
        attach: match net.xdp_attach {
            XdpAttachArg::Auto => XdpAttach::Auto,
            XdpAttachArg::Skb => XdpAttach::Skb,
            XdpAttachArg::Drv => XdpAttach::Driver,
        },
        zero_copy: match net.xdp_copy {
            XdpCopyArg::Auto => XdpCopyMode::Auto,
            XdpCopyArg::Copy => XdpCopyMode::Copy,
            XdpCopyArg::Zc => XdpCopyMode::ZeroCopy,
        },
        busy_poll: net.busy_poll,
        allow_unbound_queues: net.xdp_allow_unbound_queues,
    };
    dev::xdp::XdpDevice::open(iface, cfg).with_context(|| format!("opening AF_XDP on {iface}"))
}

/// One turn of the run loop's idle handling: spin, or sleep in the device
/// until a frame arrives or the stack's next timer is due.
fn idle(dev: &mut dyn Device, stack: &Stack, now: Instant, busy: bool) -> Result<()> {
    if busy {
        std::hint::spin_loop();
        return Ok(());
    }
    let d = stack.poll_delay(now, Duration::from_millis(50));
    if d > Duration::ZERO {
        dev.wait(Some(d))?;
    }
    Ok(())
}

fn print_stats(stack: &Stack, dev: &dyn Device, prometheus: bool) {
    let s = stack.stats();
    if prometheus {
        print!("{}", s.to_prometheus());
        return;
    }
    println!("--- ringstack counters ---");
    print!("{}", s.to_table(true));
    if let Some(d) = stack.dhcp_server_stats(ringstack::stack::IfaceId(0)) {
        println!("dhcp_server:");
        for (k, v) in [
            ("discovers", d.discovers),
            ("requests", d.requests),
            ("offers", d.offers),
            ("acks", d.acks),
            ("naks", d.naks),
            ("releases", d.releases),
            ("declines", d.declines),
            ("probes", d.probes),
            ("probes_in_use", d.probes_in_use),
            ("refused_pool_exhausted", d.refused_pool_exhausted),
            ("refused_rate_limited", d.refused_rate_limited),
            ("refused_per_mac", d.refused_per_mac),
            ("refused_table_full", d.refused_table_full),
            ("refused_probe_backlog", d.refused_probe_backlog),
            ("refused_hardware", d.refused_hardware),
            ("drop_malformed", d.drop_malformed),
            ("drop_not_request", d.drop_not_request),
            ("ignored_unknown_client", d.ignored_unknown_client),
            ("ignored_bad_request", d.ignored_bad_request),
            ("rate_evictions", d.rate_evictions),
            ("rx", d.rx),
        ] {
            if v > 0 {
                println!("    {k:<32} {v}");
            }
        }
    }
    let d = dev.stats();
    println!("device ({}):", dev.caps().kind);
    println!("    {:<32} {}", "rx_frames", d.rx_frames);
    println!("    {:<32} {}", "tx_frames", d.tx_frames);
    println!("    {:<32} {}", "rx_dropped", d.rx_dropped);
    println!("    {:<32} {}", "tx_exhausted", d.tx_exhausted);
    for (k, v) in &d.extra {
        println!("    {k:<32} {v}");
    }
}

fn serve(a: ServeArgs) -> Result<i32> {
    if let Some(path) = &a.config {
        let n = &a.net;
        if n.iface.is_some()
            || n.addr.is_some()
            || n.gateway.is_some()
            || n.mac.is_some()
            || n.mtu.is_some()
            || n.vlan.is_some()
        {
            bail!("--config names the interfaces, addresses and routes: drop --iface, --addr, --gateway, --mac, --mtu and --vlan");
        }
        return gateway::run(gateway::RunArgs {
            config: path.clone(),
            forwarding: false,
            services: gateway::ServiceArgs {
                udp_echo: a.udp_echo,
                tcp_echo: a.tcp_echo,
                discard: a.discard,
                http: a.http,
                stats_interval: a.stats_interval,
                prometheus: a.prometheus,
            },
            show_routes: false,
            dev: a.net.dev,
            cc: a.net.cc,
            pace: a.net.pace,
        });
    }
    let stop = stop_flag()?;
    let (mut dev, mut stack) = bring_up(&a.net)?;
    if let (Some((first, last)), Some(path)) = (a.dhcp_server, &a.lease_file) {
        start_dhcp_server(
            &mut stack,
            first,
            last,
            path,
            (a.lease_time, a.offer_hold, a.dhcp_probe_ms),
        )?;
    }
    let mut echo = Vec::new();
    for &port in &a.udp_echo {
        let h = stack
            .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
            .map_err(|e| anyhow::anyhow!("--udp-echo {port}: {e}"))?;
        echo.push(h);
    }
    eprintln!(
        "ringstack: serving on {} as {} ({}, {}){}",
        a.net.iface.as_deref().unwrap_or_default(),
        stack
            .addresses()
            .first()
            .map_or("DHCP".to_string(), |a| a.to_string()),
        stack.mac(),
        dev.caps().kind,
        if a.udp_echo.is_empty() {
            String::new()
        } else {
            format!(", UDP echo on {:?}", a.udp_echo)
        }
    );
    let mut services = tcp_apps::Services::new(&mut stack, a.tcp_echo, a.discard, a.http)
        .map_err(|e| anyhow::anyhow!(e))?;
    for (what, port) in [
        ("TCP echo", a.tcp_echo),
        ("discard", a.discard),
        ("HTTP", a.http),
    ] {
        if let Some(p) = port {
            eprintln!("ringstack: {what} on port {p}");
        }
    }
    let interval = Duration::from_secs(a.stats_interval);
    let mut next_stats = dev::monotonic_now() + interval;
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let now = dev::monotonic_now();
        let n = stack.poll(now, &mut dev).context("device error")?;
        let mut busy = n > 0;
        for &h in &echo {
            while let Ok((len, from)) = stack.udp_recv_from(h, &mut buf) {
                busy = true;
                if let Err(e) = stack.udp_send_to(h, &buf[..len], from) {
                    tracing::debug!(%from, "udp echo: {e}");
                }
            }
        }
        while let Some(ev) = stack.take_dhcp_event() {
            if let (ringstack::stack::DhcpEvent::Bound { lease, .. }, Some(path)) =
                (&ev, &a.net.dhcp_lease_file)
            {
                if let Err(e) = std::fs::write(path, format!("{}\n", lease.address.addr())) {
                    tracing::warn!(file = %path.display(), "cannot remember the lease: {e}");
                }
            }
        }
        if !services.is_empty() {
            busy |= services.step(now, &mut stack);
        }
        if a.stats_interval > 0 && now >= next_stats {
            print_stats(&stack, &*dev, a.prometheus);
            next_stats = now + interval;
        }
        if !busy {
            idle(&mut *dev, &stack, now, a.net.dev.busy_poll)?;
        }
    }
    // Release a DHCP lease, and let queued answers leave before we go.
    stack.dhcp_release(dev::monotonic_now());
    stack.poll(dev::monotonic_now(), &mut dev)?;
    print_stats(&stack, &*dev, a.prometheus);
    Ok(0)
}

/// The address a `--dhcp-lease-file` remembers, if it holds one.
fn remembered_lease(path: &std::path::Path) -> Option<Ipv4Addr> {
    let text = std::fs::read_to_string(path).ok()?;
    match text.trim().parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            tracing::warn!(file = %path.display(), "not an address; starting without one");
            None
        }
    }
}

/// The DHCP server of `serve --dhcp-server`: on interface 0, from its
/// first address, with a lease file that survives restarts.
fn start_dhcp_server(
    stack: &mut Stack,
    first: Ipv4Addr,
    last: Ipv4Addr,
    path: &std::path::Path,
    (lease_secs, offer_hold_secs, probe_ms): (u32, u32, u32),
) -> Result<()> {
    use ringstack::dhcp::{FileStore, ServerConfig, WallClock};
    let Some(&me) = stack.addresses().first() else {
        bail!("--dhcp-server needs --addr: the server's address and subnet");
    };
    if !me.contains(first) || !me.contains(last) {
        bail!("--dhcp-server {first}-{last} is not inside {me}");
    }
    let now = dev::monotonic_now();
    let unix_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (store, report) = FileStore::open(path, WallClock { now, unix_secs })
        .with_context(|| format!("lease file {}", path.display()))?;
    if report.dropped_tail > 0 {
        tracing::warn!(file = %path.display(), bytes = report.dropped_tail, "lease file ended in a torn record (a crash while writing); it was cut off");
    }
    let mut cfg = ServerConfig::new(me);
    cfg.pools = vec![(first, last)];
    cfg.lease_time = Duration::from_secs(u64::from(lease_secs));
    cfg.offer_hold = Duration::from_secs(u64::from(offer_hold_secs));
    cfg.probe = probe_ms > 0;
    if probe_ms > 0 {
        cfg.probe_timeout = Duration::from_millis(u64::from(probe_ms));
    }
    stack
        .enable_dhcp_server(ringstack::stack::IfaceId(0), cfg, Box::new(store), now)
        .map_err(|e| anyhow::anyhow!("--dhcp-server: {e}"))?;
    eprintln!(
        "ringstack: DHCP server on {me}: {first}-{last}, {lease_secs} s leases, {} held in {}",
        report.leases,
        path.display()
    );
    Ok(())
}

fn ping(a: PingArgs) -> Result<bool> {
    let stop = stop_flag()?;
    let (mut dev, mut stack) = bring_up(&a.net)?;
    let h = stack.ping_open().map_err(|e| anyhow::anyhow!("{e}"))?;
    let size = a.size as usize;
    println!(
        "PING {} ({}) {}({}) bytes of data.",
        a.target,
        a.target,
        size,
        size + 28
    );
    let interval = Duration::from_micros((a.interval * 1e6) as u64);
    let timeout = Duration::from_micros((a.timeout * 1e6) as u64);
    let start = dev::monotonic_now();
    let (mut sent, mut received, mut errors, mut dups, mut corrupt) =
        (0u32, 0u32, 0u32, 0u32, 0u32);
    let mut rtts: Vec<f64> = Vec::new();
    let mut next_send = start;
    let mut last_send = start;
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let now = dev::monotonic_now();
        if sent < a.count && now >= next_send {
            match stack.ping_send(h, a.target, sent as u16 + 1, size, a.dont_fragment) {
                Ok(()) => {}
                Err(e) => bail!("cannot send to {}: {e}", a.target),
            }
            sent += 1;
            last_send = now;
            next_send = now + interval;
        }
        stack.poll(now, &mut dev).context("device error")?;
        while let Ok(Some(ev)) = stack.ping_recv(h) {
            match ev {
                PingEvent::Reply {
                    from,
                    seq,
                    len,
                    ttl,
                    rtt,
                    corrupt: bad,
                } => {
                    received += 1;
                    let ms = rtt.total_micros() as f64 / 1000.0;
                    rtts.push(ms);
                    if bad {
                        corrupt += 1;
                    }
                    if !a.quiet {
                        let note = if bad { " (payload corrupted)" } else { "" };
                        println!(
                            "{} bytes from {from}: icmp_seq={seq} ttl={ttl} time={ms:.3} ms{note}",
                            len + 8
                        );
                    }
                }
                PingEvent::Duplicate { from, seq } => {
                    dups += 1;
                    if !a.quiet {
                        println!("reply from {from}: icmp_seq={seq} (DUP!)");
                    }
                }
                PingEvent::Error {
                    from,
                    seq,
                    msg_type,
                    code,
                } => {
                    errors += 1;
                    if !a.quiet {
                        println!(
                            "From {from} icmp_seq={seq} {}",
                            icmp_error_text(msg_type, code)
                        );
                    }
                }
                PingEvent::SendFailed { seq, error } => {
                    errors += 1;
                    if !a.quiet {
                        println!("icmp_seq={seq}: send failed: {error}");
                    }
                }
            }
        }
        if sent >= a.count
            && (received + errors >= a.count || now.saturating_since(last_send) >= timeout)
        {
            break;
        }
        let wake = if sent < a.count {
            next_send
        } else {
            last_send + timeout
        };
        let d = wake
            .saturating_since(dev::monotonic_now())
            .min(stack.poll_delay(now, Duration::from_millis(10)));
        if d > Duration::ZERO && !a.net.dev.busy_poll {
            dev.wait(Some(d))?;
        }
    }
    let elapsed = dev::monotonic_now().saturating_since(start);
    println!("\n--- {} ping statistics ---", a.target);
    let loss = if sent == 0 {
        0.0
    } else {
        100.0 * (sent - received.min(sent)) as f64 / sent as f64
    };
    let mut line = format!("{sent} packets transmitted, {received} received");
    if dups > 0 {
        line += &format!(", +{dups} duplicates");
    }
    if corrupt > 0 {
        line += &format!(", {corrupt} corrupted");
    }
    if errors > 0 {
        line += &format!(", +{errors} errors");
    }
    println!(
        "{line}, {loss:.0}% packet loss, time {}ms",
        elapsed.total_millis()
    );
    if !rtts.is_empty() {
        let n = rtts.len() as f64;
        let min = rtts.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = rtts.iter().cloned().fold(0.0, f64::max);
        let avg = rtts.iter().sum::<f64>() / n;
        let mdev = (rtts.iter().map(|r| (r - avg) * (r - avg)).sum::<f64>() / n).sqrt();
        println!("rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms");
    }
    Ok(received > 0 && corrupt == 0)
}

fn icmp_error_text(t: u8, code: u8) -> String {
    match (t, code) {
        (3, 0) => "Destination Net Unreachable".into(),
        (3, 1) => "Destination Host Unreachable".into(),
        (3, 2) => "Destination Protocol Unreachable".into(),
        (3, 3) => "Destination Port Unreachable".into(),
        (3, 4) => "Frag needed and DF set".into(),
        (11, 0) => "Time to live exceeded".into(),
        (11, 1) => "Frag reassembly time exceeded".into(),
        _ => format!("ICMP type {t} code {code}"),
    }
}
