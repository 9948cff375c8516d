//! A TCP ping-pong client on a kernel socket: one connection, N round trips
//! of SIZE bytes, one request in flight (TCP_NODELAY); prints transactions
//! per second and RTT percentiles, in `udp_pingpong`'s format.
//!
//! `tcp_pingpong SERVER_IP:PORT N [SIZE]`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 2 {
        return Err("usage: tcp_pingpong SERVER_IP:PORT N [SIZE]".into());
    }
    let n: usize = a[1].parse()?;
    let size: usize = a.get(2).map(|s| s.parse()).transpose()?.unwrap_or(64);
    let mut s = TcpStream::connect(&a[0])?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let msg = vec![0x5au8; size];
    let mut buf = vec![0u8; size];
    let mut trip = |s: &mut TcpStream| -> std::io::Result<()> {
        s.write_all(&msg)?;
        s.read_exact(&mut buf)?;
        if buf != msg {
            return Err(std::io::Error::other("echo differs from request"));
        }
        Ok(())
    };
    // Warm up ARP, caches, the server's loop and the congestion window.
    for _ in 0..100 {
        trip(&mut s)?;
    }
    let mut rtts = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        trip(&mut s)?;
        rtts.push(t.elapsed());
    }
    let total = start.elapsed().as_secs_f64();
    rtts.sort();
    let p = |q: f64| {
        rtts.get(((rtts.len() as f64 - 1.0) * q) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    println!(
        "{} round trips of {size} bytes: {:.0} trans/s, rtt p50 {:.1} us p99 {:.1} us p99.9 {:.1} us, 0 lost",
        rtts.len(),
        rtts.len() as f64 / total,
        p(0.5),
        p(0.99),
        p(0.999)
    );
    Ok(())
}
