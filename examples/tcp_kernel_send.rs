//! The sending end of the TCP bulk benchmarks on a kernel socket: connects,
//! writes BYTES (byte i is i mod 251, as `ringstack send` writes), shuts
//! down its write side and waits for the peer to close, so every byte has
//! been received; prints the rate from connect to the peer's FIN.
//! With CC the socket uses that congestion control (TCP_CONGESTION, set
//! right after connect, before any data; e.g. `cubic`, `bbr`), which works
//! in any namespace for root, unlike the per-namespace sysctl, which
//! refuses algorithms outside net.ipv4.tcp_allowed_congestion_control.
//!
//! `tcp_kernel_send DST_IP:PORT BYTES [CC]`

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 2 {
        return Err("usage: tcp_kernel_send DST_IP:PORT BYTES [CC]".into());
    }
    let total: u64 = a[1].parse()?;
    // One 251 × 1024-byte block holds the pattern at every offset mod 251.
    let block: Vec<u8> = (0..251 * 1024).map(|i| (i % 251) as u8).collect();
    let start = Instant::now();
    let mut s = TcpStream::connect(&a[0])?;
    if let Some(cc) = a.get(2) {
        ringstack::dev::host::set_tcp_congestion(&s, cc)?;
    }
    let mut sent = 0u64;
    while sent < total {
        let off = (sent % 251) as usize;
        let n = ((total - sent) as usize).min(block.len() - off);
        s.write_all(&block[off..off + n])?;
        sent += n as u64;
    }
    s.shutdown(Shutdown::Write)?;
    let mut sink = [0u8; 4096];
    while s.read(&mut sink)? > 0 {}
    let secs = start.elapsed().as_secs_f64();
    println!(
        "sent {sent} bytes to {} in {secs:.3} s: {:.1} Mbit/s{}",
        a[0],
        sent as f64 * 8.0 / secs / 1e6,
        a.get(2).map_or(String::new(), |cc| format!(", cc {cc}"))
    );
    Ok(())
}
