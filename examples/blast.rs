//! Send COUNT Ethernet frames of SIZE bytes to DST_MAC as fast as AF_PACKET
//! allows (sendmmsg batches), for receive-rate benchmarks.
//!
//! `blast IFACE DST_MAC COUNT [SIZE]`; frames carry EtherType 0x88b5
//! (local experimental), so a stack receiving them counts and drops them.

use ringstack::dev::{self, Device};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 3 {
        return Err("usage: blast IFACE DST_MAC COUNT [SIZE]".into());
    }
    let dst: ringstack::eth::MacAddr = a[1].parse().map_err(|_| "bad DST_MAC")?;
    let count: u64 = a[2].parse()?;
    let size: usize = a.get(3).map(|s| s.parse()).transpose()?.unwrap_or(60);
    if !(60..=1514).contains(&size) {
        return Err("SIZE must be 60..=1514".into());
    }
    let cfg = dev::packet::PacketConfig {
        tx_frames: 1024,
        ..Default::default()
    };
    let mut d = dev::packet::PacketDevice::open(&a[0], cfg)?;
    let src = d.caps().mac.unwrap_or([2, 0, 0, 0, 0, 9]);
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < count {
        let r = d.transmitter().transmit(size, &mut |f| {
            f.fill(0);
            f[..6].copy_from_slice(&dst.0);
            f[6..12].copy_from_slice(&src);
            f[12..14].copy_from_slice(&[0x88, 0xb5]);
            f[14..22].copy_from_slice(&sent.to_be_bytes());
        });
        match r {
            Ok(()) => sent += 1,
            Err(_) => d.flush(dev::monotonic_now())?,
        }
    }
    d.flush(dev::monotonic_now())?;
    let secs = start.elapsed().as_secs_f64();
    let st = d.stats();
    println!(
        "sent {sent} frames of {size} bytes in {secs:.3} s: {:.3} Mpps (tx_enobufs {})",
        sent as f64 / secs / 1e6,
        st.extra
            .iter()
            .find(|(k, _)| *k == "tx_enobufs")
            .map_or(0, |e| e.1)
    );
    Ok(())
}
