//! `ringstack lab`: two network namespaces joined by a veth pair, ringstack
//! on one end, the Linux kernel and its tools on the other, real traffic
//! between them, and the stack's counters at the end.

use anyhow::{bail, Context, Result};
use clap::Args;
use ringstack::dev::host::{self, VethPair};
use ringstack::tcp::CcAlgorithm;
use std::io::Read;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const STACK_ADDR: &str = "198.18.0.2";
const KERNEL_ADDR: &str = "198.18.0.1";

#[derive(Args, Debug)]
pub struct LabArgs {
    /// Driver for ringstack's end of the veth pair.
    #[arg(long, value_enum, default_value_t = super::Driver::Auto)]
    driver: super::Driver,
    /// Capture the kernel side with tcpdump and check the capture with tshark.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    capture: bool,
    /// Congestion control of ringstack's TCP in the lab (reno, cubic, bbr).
    #[arg(long, default_value_t = CcAlgorithm::Bbr, value_parser = super::parse_cc)]
    cc: CcAlgorithm,
}

struct Lab {
    passed: u32,
    failed: u32,
}

impl Lab {
    fn step(&mut self, name: &str, r: Result<String>) {
        match r {
            Ok(detail) => {
                self.passed += 1;
                println!("  ok    {name}");
                for l in detail.lines().filter(|l| !l.trim().is_empty()) {
                    println!("          {l}");
                }
            }
            Err(e) => {
                self.failed += 1;
                println!("  FAIL  {name}: {e:#}");
            }
        }
    }
}

/// A child we started, ended by PID with SIGTERM when dropped.
struct Proc(Option<Child>);

impl Proc {
    /// SIGTERM, then collect stdout.
    fn finish(mut self) -> String {
        let Some(mut c) = self.0.take() else {
            return String::new();
        };
        let _ = host::terminate(c.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        let mut out = String::new();
        if let Some(mut o) = c.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        out
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

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Run a tool in the kernel's namespace (the lab thread lives there).
fn kernel(args: &[&str]) -> Result<String> {
    Ok(host::run(args)?)
}

pub fn run(a: LabArgs) -> Result<i32> {
    if !host::is_root() {
        bail!("the lab creates network namespaces and needs root (try: sudo ringstack lab)");
    }
    for tool in ["ip", "ping"] {
        if !host::have_tool(tool) {
            bail!("`{tool}` not found; install iproute2 and iputils-ping");
        }
    }
    let stop = super::stop_flag()?;
    let exe = std::env::current_exe().context("locating our own binary")?;
    let exe = exe.to_string_lossy().into_owned();
    if a.driver == super::Driver::Tap {
        bail!("the lab runs ringstack on a veth end; --driver tap is not for the lab");
    }
    let driver = a.driver.as_str();
    println!("ringstack lab: building namespaces");
    let pair = VethPair::create("rsl", &format!("{KERNEL_ADDR}/24"))
        .context("creating the namespace pair")?;
    println!(
        "  ringstack: netns {} dev {} {STACK_ADDR}/24 (driver {driver})",
        pair.ns_a, pair.if_a
    );
    println!(
        "  kernel:    netns {} dev {} {KERNEL_ADDR}/24",
        pair.ns_b, pair.if_b
    );
    if !host::have_tool("ethtool") {
        println!(
            "  note: ethtool missing, kernel offloads stay on (frames may carry partial checksums)"
        );
    }
    // Everything the lab itself does from here runs as the kernel's side.
    host::enter_netns(&pair.ns_b)?;

    let pcap = std::env::temp_dir().join(format!("ringstack-lab-{}.pcap", std::process::id()));
    let capture = if a.capture && host::have_tool("tcpdump") {
        let c = Command::new("tcpdump")
            .args(["-i", &pair.if_b, "-U", "-n", "-s", "0", "-w"])
            .arg(&pcap)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting tcpdump")?;
        std::thread::sleep(Duration::from_millis(500));
        Some(Proc(Some(c)))
    } else {
        if a.capture {
            println!("  note: tcpdump missing, no capture (apt-get install tcpdump tshark)");
        }
        None
    };

    let server = Command::new("ip")
        .args([
            "netns", "exec", &pair.ns_a, &exe, "serve", "--iface", &pair.if_a, "--addr",
        ])
        .arg(format!("{STACK_ADDR}/24"))
        .args(["--driver", driver, "--udp-echo", "7", "--http", "80"])
        .args(["--cc", a.cc.as_str()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .env("RUST_LOG", "warn")
        .spawn()
        .context("starting ringstack serve")?;
    let server = Proc(Some(server));

    let mut lab = Lab {
        passed: 0,
        failed: 0,
    };
    println!("\nkernel -> ringstack");
    // The stack is up once it answers ARP; give it a few seconds.
    let up = wait_until(Duration::from_secs(10), || {
        kernel(&["ping", "-c", "1", "-W", "1", STACK_ADDR]).is_ok()
    });
    lab.step(
        "stack answers its first ping",
        if up {
            Ok(String::new())
        } else {
            Err(anyhow::anyhow!("no answer within 10 s"))
        },
    );

    if host::have_tool("arping") {
        lab.step(
            "arping resolves the stack's MAC",
            kernel(&["arping", "-c", "3", "-w", "5", "-I", &pair.if_b, STACK_ADDR])
                .map(|o| tail(&o, 2)),
        );
    } else {
        println!("  skip  arping: not installed (apt-get install iputils-arping)");
    }
    lab.step(
        "ping: 20 echoes",
        kernel(&["ping", "-c", "20", "-i", "0.05", "-W", "2", STACK_ADDR])
            .and_then(|o| expect_no_loss(&o)),
    );
    lab.step(
        "ping -s 8000: fragmented both ways",
        kernel(&[
            "ping", "-c", "5", "-i", "0.1", "-s", "8000", "-W", "2", STACK_ADDR,
        ])
        .and_then(|o| expect_no_loss(&o)),
    );
    lab.step(
        "UDP echo from a kernel socket",
        udp_echo(&[b"hello from the kernel".to_vec()]),
    );
    lab.step(
        "UDP echo of a 60000-byte datagram (fragments reassembled both ways)",
        udp_echo(&[(0..60000u32).map(|i| (i * 7) as u8).collect()]),
    );

    if host::have_tool("curl") {
        lab.step(
            &format!(
                "curl fetches 20 MB over TCP from ringstack's HTTP server ({})",
                a.cc
            ),
            curl_fetch(20 << 20),
        );
    } else {
        println!("  skip  curl: not installed (apt-get install curl)");
    }

    if stop.load(std::sync::atomic::Ordering::Relaxed) {
        println!("interrupted");
        return Ok(130);
    }
    let counters = server.finish();
    println!("\nringstack's counters after the kernel's traffic:");
    for l in counters.lines() {
        println!("  {l}");
    }

    println!("ringstack -> kernel");
    let ping = host::run(&[
        "ip",
        "netns",
        "exec",
        &pair.ns_a,
        &exe,
        "ping",
        "--iface",
        &pair.if_a,
        "--addr",
        &format!("{STACK_ADDR}/24"),
        "--driver",
        driver,
        "-c",
        "5",
        "-i",
        "0.1",
        "-s",
        "4000",
        KERNEL_ADDR,
    ]);
    lab.step(
        "ringstack ping -s 4000 to the kernel",
        ping.map_err(anyhow::Error::from)
            .and_then(|o| expect_no_loss(&o)),
    );
    if host::have_tool("python3") {
        lab.step(
            &format!(
                "ringstack get ({}) fetches 20 MB from a kernel HTTP server",
                a.cc
            ),
            get_from_kernel(&exe, &pair, driver, a.cc),
        );
    } else {
        println!("  skip  ringstack get: python3 not installed");
    }

    if let Some(c) = capture {
        c.finish();
        if host::have_tool("tshark") {
            lab.step(
                "tshark finds no malformed frames or bad checksums",
                tshark_check(&pcap),
            );
        } else {
            println!("  skip  tshark check: not installed (apt-get install tshark)");
        }
        let _ = std::fs::remove_file(&pcap);
    }

    if !stop.load(std::sync::atomic::Ordering::Relaxed) {
        forwarding(&mut lab, &exe, driver);
    }

    println!("\n{} passed, {} failed", lab.passed, lab.failed);
    drop(pair);
    Ok(if lab.failed == 0 { 0 } else { 1 })
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Accept ping output only when nothing was lost; show its summary.
fn expect_no_loss(out: &str) -> Result<String> {
    let summary = out
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or("");
    if !summary.contains(" 0% packet loss") {
        bail!("loss: {}", summary.trim());
    }
    Ok(tail(out, 2))
}

fn udp_echo(payloads: &[Vec<u8>]) -> Result<String> {
    let sock = UdpSocket::bind((KERNEL_ADDR, 0)).context("binding a kernel UDP socket")?;
    sock.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = vec![0u8; 65536];
    let mut report = String::new();
    for p in payloads {
        let t = Instant::now();
        sock.send_to(p, (STACK_ADDR, 7)).context("send_to")?;
        let (n, from) = sock.recv_from(&mut buf).context("no echo within 2 s")?;
        if &buf[..n] != p.as_slice() {
            bail!(
                "echo from {from} differs: {n} bytes back for {} sent",
                p.len()
            );
        }
        report += &format!(
            "{} bytes echoed by {from} in {:.3} ms\n",
            n,
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(report)
}

/// curl on the kernel side fetches `n` generated bytes from ringstack and
/// checks them against the pattern the server generates.
fn curl_fetch(n: u64) -> Result<String> {
    let t = Instant::now();
    let mut c = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "60",
            &format!("http://{STACK_ADDR}/bytes/{n}"),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting curl")?;
    let mut body = Vec::with_capacity(n as usize);
    c.stdout
        .take()
        .context("curl stdout")?
        .read_to_end(&mut body)?;
    if !c.wait()?.success() {
        bail!("curl failed after {} bytes", body.len());
    }
    if body.len() as u64 != n
        || body
            .iter()
            .enumerate()
            .any(|(i, &b)| b != super::tcp_apps::body_byte(i as u64))
    {
        bail!(
            "body of {} bytes differs from what the server generates",
            body.len()
        );
    }
    let s = t.elapsed().as_secs_f64();
    Ok(format!(
        "{n} bytes in {s:.2} s ({:.0} Mbit/s), every byte checked",
        n as f64 * 8.0 / s / 1e6
    ))
}

/// python's http.server on the kernel side; `ringstack get` in ringstack's
/// namespace; the two files compared.
fn get_from_kernel(exe: &str, pair: &VethPair, driver: &str, cc: CcAlgorithm) -> Result<String> {
    let dir = std::env::temp_dir().join(format!("ringstack-lab-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let data: Vec<u8> = (0..20u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.join("file"), &data)?;
    let server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "8000",
            "--bind",
            KERNEL_ADDR,
            "--directory",
        ])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting python3 -m http.server")?;
    let server = Proc(Some(server));
    // python takes a while to start under load: wait until it listens.
    let listening = wait_until(Duration::from_secs(20), || {
        std::net::TcpStream::connect((KERNEL_ADDR, 8000)).is_ok()
    });
    if !listening {
        bail!("python3 -m http.server did not start within 20 s");
    }
    let out = dir.join("fetched");
    let r = host::run(&[
        "ip",
        "netns",
        "exec",
        &pair.ns_a,
        exe,
        "get",
        "--iface",
        &pair.if_a,
        "--addr",
        &format!("{STACK_ADDR}/24"),
        "--driver",
        driver,
        "--cc",
        cc.as_str(),
        &format!("http://{KERNEL_ADDR}:8000/file"),
        "-o",
        &out.to_string_lossy(),
    ]);
    server.finish();
    let fetched = std::fs::read(&out).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    r?;
    if fetched != data {
        bail!(
            "fetched {} bytes that differ from the {} served",
            fetched.len(),
            data.len()
        );
    }
    Ok(format!(
        "{} bytes, identical to the file served",
        fetched.len()
    ))
}

fn tshark_check(pcap: &std::path::Path) -> Result<String> {
    let p = pcap.to_string_lossy();
    let bad = host::run(&[
        "tshark",
        "-r",
        &p,
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "--disable-protocol",
        "thrift",
        "-Y",
        "_ws.malformed || _ws.expert.severity == error",
    ])?;
    let total = host::run(&["tshark", "-r", &p, "-T", "fields", "-e", "frame.number"])?
        .lines()
        .count();
    if !bad.trim().is_empty() {
        bail!("suspicious frames:\n{}", tail(&bad, 10));
    }
    Ok(format!("{total} frames checked"))
}

/// Three namespaces deleted on drop: a LAN host, the gateway, a WAN host.
struct Line {
    names: [String; 3],
    config: std::path::PathBuf,
}

impl Drop for Line {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_file(&self.config);
    }
}

fn in_ns(ns: &str, args: &[&str]) -> Result<String> {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(args);
    Ok(host::run(&v)?)
}

/// Output and error text of a command that may fail (ping exits 1 when
/// an ICMP error comes back).
fn in_ns_any(ns: &str, args: &[&str]) -> String {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default()
}

/// The router: `ringstack gateway` between a LAN host and a WAN host, both
/// Linux kernels routing through it.
fn forwarding(lab: &mut Lab, exe: &str, driver: &str) {
    println!("\nringstack as the router: LAN host 198.18.1.2 -- ringstack gateway -- WAN host 198.51.100.2");
    let line = match build_line() {
        Ok(l) => l,
        Err(e) => {
            lab.step("building the three namespaces", Err(e));
            return;
        }
    };
    let [lan, gw, wan] = &line.names;
    let router = Command::new("ip")
        .args(["netns", "exec", gw, exe, "gateway", "--config"])
        .arg(&line.config)
        .args(["--driver", driver])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let router = match router {
        Ok(c) => Proc(Some(c)),
        Err(e) => {
            lab.step("starting ringstack gateway", Err(e.into()));
            return;
        }
    };
    let up = wait_until(Duration::from_secs(10), || {
        in_ns(lan, &["ping", "-c", "1", "-W", "1", "198.51.100.2"]).is_ok()
    });
    if !up {
        lab.step(
            "the gateway forwards",
            Err(anyhow::anyhow!("no ping got through in 10 s")),
        );
        return;
    }
    lab.step(
        "the LAN host pings the WAN host through ringstack (200 echoes)",
        in_ns(
            lan,
            &["ping", "-c", "200", "-i", "0.005", "-q", "198.51.100.2"],
        )
        .and_then(|o| expect_no_loss(&o)),
    );
    let ttl = in_ns_any(
        lan,
        &["ping", "-c", "1", "-t", "1", "-W", "1", "198.51.100.2"],
    );
    lab.step(
        "ping -t 1 is answered with time exceeded from the gateway",
        if ttl.contains("From 198.18.1.1 icmp_seq=1 Time to live exceeded") {
            Ok(String::new())
        } else {
            Err(anyhow::anyhow!("{}", tail(&ttl, 3)))
        },
    );
    let df = in_ns_any(
        lan,
        &[
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            "-M",
            "do",
            "-s",
            "1450",
            "198.51.100.2",
        ],
    );
    lab.step(
        "a DF ping larger than the WAN's MTU 1400 gets frag-needed (mtu = 1400)",
        if df.contains("mtu = 1400") {
            Ok(String::new())
        } else {
            Err(anyhow::anyhow!("{}", tail(&df, 3)))
        },
    );
    if host::have_tool("curl") && host::have_tool("python3") {
        lab.step(
            "the LAN host fetches 5 MB from the WAN host's http.server through ringstack",
            fetch_across(lan, wan),
        );
    }
    let counters = router.finish();
    let wanted = [
        "forwarded",
        "fwd_drop_ttl_expired",
        "fwd_drop_frag_needed",
        "forwarded_in",
        "forwarded_out",
    ];
    for l in counters.lines().filter(|l| {
        !l.starts_with(' ')
            || wanted
                .iter()
                .any(|w| l.split_whitespace().next() == Some(w))
    }) {
        if l.starts_with(' ') || l.starts_with("if:") {
            println!("  {l}");
        }
    }
}

fn build_line() -> Result<Line> {
    let id = format!("rsr{}", std::process::id());
    let line = Line {
        names: [format!("{id}l"), format!("{id}g"), format!("{id}w")],
        config: std::env::temp_dir().join(format!("{id}.toml")),
    };
    let [lan, gw, wan] = &line.names;
    for ns in &line.names {
        host::add_quiet_netns(ns)?;
    }
    let (ga, gb, la, wb) = (
        format!("{id}a"),
        format!("{id}b"),
        format!("{id}c"),
        format!("{id}d"),
    );
    host::run(&[
        "ip", "link", "add", &ga, "netns", gw, "type", "veth", "peer", "name", &la, "netns", lan,
    ])?;
    host::run(&[
        "ip", "link", "add", &gb, "netns", gw, "type", "veth", "peer", "name", &wb, "netns", wan,
    ])?;
    for (ns, dev) in [(gw, &gb), (wan, &wb)] {
        host::run(&["ip", "-n", ns, "link", "set", "dev", dev, "mtu", "1400"])?;
    }
    for (ns, dev, addr, via) in [
        (lan, &la, "198.18.1.2/24", "198.18.1.1"),
        (wan, &wb, "198.51.100.2/24", "198.51.100.1"),
    ] {
        host::run(&["ip", "-n", ns, "addr", "add", addr, "dev", dev])?;
        host::run(&["ip", "-n", ns, "link", "set", "dev", dev, "up"])?;
        host::run(&["ip", "-n", ns, "route", "add", "default", "via", via])?;
        if host::have_tool("ethtool") {
            in_ns(
                ns,
                &[
                    "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
                ],
            )?;
        }
    }
    for dev in [&ga, &gb] {
        host::run(&["ip", "-n", gw, "link", "set", "dev", dev, "up"])?;
    }
    std::fs::write(
        &line.config,
        format!("[[interface]]\nname = \"lan\"\ndevice = \"{ga}\"\naddress = \"198.18.1.1/24\"\n\n[[interface]]\nname = \"wan\"\ndevice = \"{gb}\"\naddress = \"198.51.100.1/24\"\n"),
    )?;
    println!(
        "  gateway config {}:\n    lan {ga} 198.18.1.1/24, wan {gb} 198.51.100.1/24 (mtu 1400)",
        line.config.display()
    );
    Ok(line)
}

fn fetch_across(lan: &str, wan: &str) -> Result<String> {
    let dir = std::env::temp_dir().join(format!("rsr-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let data: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(dir.join("file"), &data)?;
    let d = dir.to_string_lossy().into_owned();
    let server = Proc(Some(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                wan,
                "python3",
                "-m",
                "http.server",
                "8000",
                "--bind",
                "198.51.100.2",
                "--directory",
                &d,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    ));
    let got = dir.join("got");
    let g = got.to_string_lossy().into_owned();
    let ok = wait_until(Duration::from_secs(10), || {
        in_ns(
            lan,
            &[
                "curl",
                "-sS",
                "--max-time",
                "60",
                "-o",
                &g,
                "http://198.51.100.2:8000/file",
            ],
        )
        .is_ok()
    });
    drop(server);
    let fetched = std::fs::read(&got).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    if !ok {
        bail!("curl through the gateway failed");
    }
    if fetched != data {
        bail!(
            "fetched {} bytes that differ from the {} served",
            fetched.len(),
            data.len()
        );
    }
    Ok(format!(
        "{} bytes, identical to the file served",
        fetched.len()
    ))
}
