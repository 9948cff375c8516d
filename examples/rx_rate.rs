//! Receive rate of a ringstack stack: busy-poll a device for SECS seconds and
//! report frames per second carried through the stack (Ethernet validation,
//! dispatch, counters). Pair it with `blast` on the other end.
//!
//! `rx_rate xdp-skb|xdp-drv|packet|packet-v2|packet-v3 IFACE SECS`
//!
//! `packet` uses the driver's default RX ring; `packet-v2` and `packet-v3`
//! pick TPACKET_V2 or TPACKET_V3, each with its default geometry
//! (`PacketConfig::new`); `PACKET_BLOCKS=N` overrides the block count.

use ringstack::dev::{self, Device};
use ringstack::stack::{Config, Stack};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 3 {
        return Err("usage: rx_rate xdp-skb|xdp-drv|packet|packet-v2|packet-v3 IFACE SECS".into());
    }
    let secs: f64 = a[2].parse()?;
    let mut d: Box<dyn Device> = match a[0].as_str() {
        m @ ("packet" | "packet-v2" | "packet-v3") => {
            use dev::packet::{PacketConfig, RingVersion};
            let ring = match m {
                "packet-v2" => RingVersion::V2,
                "packet-v3" => RingVersion::V3,
                _ => RingVersion::default(),
            };
            // PACKET_BLOCKS=N: ring of N blocks instead of the default.
            let mut cfg = PacketConfig::new(ring);
            match std::env::var("PACKET_BLOCKS") {
                Ok(n) if !n.is_empty() => cfg.block_count = n.parse()?,
                _ => {}
            }
            Box::new(dev::packet::PacketDevice::open(&a[1], cfg)?)
        }
        m @ ("xdp-skb" | "xdp-drv") => {
            let attach = if m == "xdp-skb" {
                dev::xdp::XdpAttach::Skb
            } else {
                dev::xdp::XdpAttach::Driver
            };
            let busy = std::env::var("RX_BUSY").map_or(true, |v| v != "0");
            let cfg = dev::xdp::XdpConfig {
                attach,
                busy_poll: busy,
                ..Default::default()
            };
            Box::new(dev::xdp::XdpDevice::open(&a[1], cfg)?)
        }
        _ => return Err("driver must be xdp-skb, xdp-drv, packet, packet-v2 or packet-v3".into()),
    };
    let mac = ringstack::eth::MacAddr(d.caps().mac.ok_or("no MAC")?);
    let mut c = Config::new(mac, "198.18.0.2/24".parse()?);
    c.announce = false;
    let mut s = Stack::new(c)?;
    println!("ready {}", d.caps().kind);
    // Start timing at the first frame, stop after SECS seconds or 1 s idle.
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let mut frames = 0u64;
    loop {
        let n = s.poll(dev::monotonic_now(), &mut d)? as u64;
        let now = Instant::now();
        if n > 0 {
            first.get_or_insert(now);
            frames += n;
            last = now;
        }
        match first {
            Some(f) if now.duration_since(f).as_secs_f64() >= secs => break,
            Some(_) if now.duration_since(last) > Duration::from_secs(1) => break,
            None if now.duration_since(last) > Duration::from_secs(30) => {
                return Err("no frames in 30 s".into())
            }
            _ => {}
        }
    }
    let el = last
        .duration_since(first.unwrap_or(last))
        .as_secs_f64()
        .max(1e-9);
    let st = d.stats();
    println!(
        "{} received {frames} frames in {el:.3} s: {:.3} Mpps (device rx_dropped {})",
        d.caps().kind,
        frames as f64 / el / 1e6,
        st.rx_dropped
    );
    for (k, v) in st.extra.iter().filter(|(_, v)| *v > 0) {
        println!("    {k} {v}");
    }
    Ok(())
}
