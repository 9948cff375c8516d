//! DHCP load generator: N clients, each with its own locally administered
//! MAC, run DISCOVER → OFFER → REQUEST → ACK against whatever server
//! answers on IFACE, with at most WINDOW exchanges outstanding. Frames go
//! out and come in through an AF_PACKET socket (promiscuous, so replies
//! unicast to a client's MAC are seen as well as broadcast ones); no IP
//! stack is involved. A message without an answer is sent again after
//! TIMEOUT_MS; the run gives up after LIMIT_SECS.
//!
//! ```text
//! dhcp_load IFACE N [WINDOW] [TIMEOUT_MS] [LIMIT_SECS]
//! ```
//!
//! Defaults: window 64, timeout 2000 ms, limit 120 s. Prints one line:
//! `leases=… secs=… rate=… p50_ms=… p99_ms=… retransmits=… naks=…`, where
//! the latency of a lease runs from its first DISCOVER to its ACK. Exits
//! with 1 if fewer than N leases were acknowledged.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ringstack::dev::{self, Device, TxError};
use ringstack::dhcp::wire::{self as dhcpw, MessageType, Op, Repr};
use ringstack::eth::{self, EtherType, MacAddr};
use ringstack::ip::wire::{self as ipw, Protocol};
use ringstack::udp::wire as udpw;

#[derive(Copy, Clone, PartialEq, Eq)]
enum Phase {
    Waiting,
    Discovering,
    Requesting,
    Done,
}

struct Client {
    phase: Phase,
    started: Instant,
    sent: Instant,
    offer: Ipv4Addr,
    server: Ipv4Addr,
}

fn mac(i: u32) -> MacAddr {
    let b = i.to_be_bytes();
    MacAddr([0x02, 0x4c, b[0], b[1], b[2], b[3]])
}

/// The xid of client `i`: its index with a marker in the top byte, so a
/// stray reply to someone else does not match.
fn xid(i: u32) -> u32 {
    0x5a00_0000 | i
}

/// A broadcast DISCOVER, or a REQUEST for the offered address.
fn message(i: u32, c: &Client) -> Vec<u8> {
    let t = match c.phase {
        Phase::Requesting => MessageType::Request,
        _ => MessageType::Discover,
    };
    let mut r = Repr::new(Op::Request, t, xid(i), mac(i));
    r.broadcast = true;
    r.options.parameter_request_list = vec![1, 3, 6, 51, 58, 59];
    if t == MessageType::Request {
        r.options.requested_ip = Some(c.offer);
        r.options.server_id = Some(c.server);
    }
    let dhcp = r.to_vec();
    let (src, dst) = (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST);
    let mut udp = vec![0u8; udpw::HEADER_LEN + dhcp.len()];
    udpw::Repr {
        src_port: dhcpw::CLIENT_PORT,
        dst_port: dhcpw::SERVER_PORT,
    }
    .emit(
        &mut udpw::Packet::new_unchecked(&mut udp[..]),
        src,
        dst,
        &dhcp,
    );
    let ip = ipw::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: Protocol::Udp,
        payload_len: udp.len(),
        ttl: 64,
        tos: 0,
        ident: 0,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
    };
    let mut f = vec![0u8; eth::HEADER_LEN + ip.buffer_len()];
    eth::Repr {
        src_addr: mac(i),
        dst_addr: MacAddr::BROADCAST,
        ethertype: EtherType::Ipv4,
        vlan: None,
    }
    .emit(&mut eth::Frame::new_unchecked(&mut f[..]));
    ip.emit(&mut ipw::Packet::new_unchecked(&mut f[eth::HEADER_LEN..]));
    f[eth::HEADER_LEN + ipw::HEADER_LEN..].copy_from_slice(&udp);
    f
}

/// A DHCP reply to one of ours in this frame, if there is one.
fn reply(frame: &[u8], n: u32) -> Option<(u32, Repr)> {
    let f = eth::Frame::new_checked(frame).ok()?;
    if eth::Repr::parse(&f).ok()?.ethertype != EtherType::Ipv4 {
        return None;
    }
    let p = ipw::Packet::new_checked(f.payload()).ok()?;
    let ip = ipw::Repr::parse(&p).ok()?;
    if ip.protocol != Protocol::Udp {
        return None;
    }
    let u = udpw::Packet::new_checked(p.payload()).ok()?;
    if u.dst_port() != dhcpw::CLIENT_PORT {
        return None;
    }
    let r = Repr::parse_bytes(u.payload()).ok()?;
    let i = r.xid ^ 0x5a00_0000;
    (r.op == Op::Reply && i < n && r.client_mac() == Some(mac(i))).then_some((i, r))
}

fn send(d: &mut dyn Device, f: &[u8]) -> std::io::Result<()> {
    loop {
        match d
            .transmitter()
            .transmit(f.len(), &mut |b| b.copy_from_slice(f))
        {
            Ok(()) => return Ok(()),
            Err(TxError::Exhausted) => d.flush(dev::monotonic_now())?,
            Err(TxError::TooLong) => return Err(std::io::Error::other("frame too long")),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[k].as_secs_f64() * 1e3
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 2 {
        return Err("usage: dhcp_load IFACE N [WINDOW] [TIMEOUT_MS] [LIMIT_SECS]".into());
    }
    let n: u32 = a[1].parse()?;
    let arg = |k: usize, d: u64| a.get(k).map_or(Ok(d), |s| s.parse::<u64>());
    let window = arg(2, 64)?.max(1) as usize;
    let timeout = Duration::from_millis(arg(3, 2000)?);
    let limit = Duration::from_secs(arg(4, 120)?);
    if n >= 0x0100_0000 {
        return Err("N must be below 2^24".into());
    }
    let cfg = dev::packet::PacketConfig {
        promiscuous: true,
        ..Default::default()
    };
    let mut d: Box<dyn Device> = Box::new(dev::packet::PacketDevice::open(&a[0], cfg)?);

    let t0 = Instant::now();
    let mut clients: Vec<Client> = (0..n)
        .map(|_| Client {
            phase: Phase::Waiting,
            started: t0,
            sent: t0,
            offer: Ipv4Addr::UNSPECIFIED,
            server: Ipv4Addr::UNSPECIFIED,
        })
        .collect();
    let mut active: Vec<u32> = Vec::with_capacity(window);
    let mut next = 0u32;
    let mut latencies = Vec::with_capacity(n as usize);
    let (mut retransmits, mut naks) = (0u64, 0u64);
    let mut replies = Vec::new();
    let mut last_check = t0;
    while latencies.len() < n as usize && t0.elapsed() < limit {
        while active.len() < window && next < n {
            let c = &mut clients[next as usize];
            c.phase = Phase::Discovering;
            c.started = Instant::now();
            c.sent = c.started;
            send(&mut *d, &message(next, c))?;
            active.push(next);
            next += 1;
        }
        d.flush(dev::monotonic_now())?;

        replies.clear();
        let got = d.receive(dev::monotonic_now(), 64, &mut |f, _| {
            if let Some(r) = reply(f, n) {
                replies.push(r);
            }
        })?;
        let now = Instant::now();
        for (i, r) in replies.drain(..) {
            let c = &mut clients[i as usize];
            match (c.phase, r.message_type) {
                (Phase::Discovering, MessageType::Offer) => {
                    c.phase = Phase::Requesting;
                    c.offer = r.yiaddr;
                    c.server = r.options.server_id.unwrap_or(r.siaddr);
                    c.sent = now;
                    send(&mut *d, &message(i, c))?;
                }
                (Phase::Requesting, MessageType::Ack) if r.yiaddr == c.offer => {
                    c.phase = Phase::Done;
                    latencies.push(now - c.started);
                }
                (Phase::Requesting, MessageType::Nak) => {
                    naks += 1;
                    c.phase = Phase::Discovering;
                    c.sent = now;
                    send(&mut *d, &message(i, c))?;
                }
                _ => {}
            }
        }
        active.retain(|&i| clients[i as usize].phase != Phase::Done);

        if now - last_check >= Duration::from_millis(10) {
            last_check = now;
            for &i in &active {
                let c = &mut clients[i as usize];
                if now - c.sent >= timeout {
                    retransmits += 1;
                    c.sent = now;
                    send(&mut *d, &message(i, c))?;
                }
            }
        }
        if got == 0 {
            d.flush(dev::monotonic_now())?;
            d.wait(Some(ringstack::Duration::from_millis(1)))?;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let done = latencies.len();
    println!(
        "leases={done} secs={secs:.3} rate={:.0} p50_ms={:.2} p99_ms={:.2} retransmits={retransmits} naks={naks} rx_dropped={}",
        done as f64 / secs,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        d.stats().rx_dropped,
    );
    if done < n as usize {
        eprintln!("dhcp_load: only {done} of {n} leases within {limit:?}");
        std::process::exit(1);
    }
    Ok(())
}
