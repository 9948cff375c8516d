//! The receiving end of the TCP bulk benchmarks on a kernel socket: accepts
//! connections one at a time, reads each to EOF and drops the bytes, then
//! prints its size and rate (accept to EOF, like `ringstack serve
//! --discard`) and closes.
//!
//! `tcp_kernel_sink BIND_IP:PORT [--check]`
//!
//! With `--check` every byte must follow the pattern `ringstack send` and
//! `tcp_kernel_send` write (byte i is i mod 251); a mismatch is reported.

use std::io::Read;
use std::net::TcpListener;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let addr = a
        .first()
        .ok_or("usage: tcp_kernel_sink BIND_IP:PORT [--check]")?;
    let check = a.iter().any(|x| x == "--check");
    let l = TcpListener::bind(addr)?;
    eprintln!("sink: listening on {addr}");
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let (mut s, peer) = l.accept()?;
        let start = Instant::now();
        let (mut bytes, mut bad) = (0u64, None);
        loop {
            let n = match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    println!("sink: {peer}: {e} after {bytes} bytes");
                    break;
                }
            };
            if check && bad.is_none() {
                for (k, b) in buf[..n].iter().enumerate() {
                    if *b != ((bytes + k as u64) % 251) as u8 {
                        bad = Some(bytes + k as u64);
                        break;
                    }
                }
            }
            bytes += n as u64;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "sink: {bytes} bytes from {peer} in {secs:.3} s ({:.1} Mbit/s){}",
            bytes as f64 * 8.0 / secs / 1e6,
            match (check, bad) {
                (false, _) => String::new(),
                (true, None) => ", pattern ok".to_string(),
                (true, Some(at)) => format!(", WRONG BYTE at offset {at}"),
            }
        );
    }
}
