//! A UDP ping-pong client on a kernel socket: N round trips to an echo
//! server, one in flight at a time; prints transactions per second and RTT
//! percentiles.
//!
//! `udp_pingpong SERVER_IP:PORT N [SIZE]`

use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 2 {
        return Err("usage: udp_pingpong SERVER_IP:PORT N [SIZE]".into());
    }
    let n: usize = a[1].parse()?;
    let size: usize = a.get(2).map(|s| s.parse()).transpose()?.unwrap_or(64);
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    sock.connect(&a[0])?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    let msg = vec![0x5au8; size];
    let mut buf = vec![0u8; 65536];
    // Warm up ARP, caches and the server's loop.
    for _ in 0..100 {
        sock.send(&msg)?;
        let _ = sock.recv(&mut buf);
    }
    let mut rtts = Vec::with_capacity(n);
    let mut lost = 0;
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        sock.send(&msg)?;
        match sock.recv(&mut buf) {
            Ok(_) => rtts.push(t.elapsed()),
            Err(_) => lost += 1,
        }
    }
    let total = start.elapsed().as_secs_f64();
    rtts.sort();
    let p = |q: f64| {
        rtts.get(((rtts.len() as f64 - 1.0) * q) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    println!(
        "{} round trips of {size} bytes: {:.0} trans/s, rtt p50 {:.1} us p99 {:.1} us p99.9 {:.1} us, {lost} lost",
        rtts.len(),
        rtts.len() as f64 / total,
        p(0.5),
        p(0.99),
        p(0.999)
    );
    Ok(())
}
