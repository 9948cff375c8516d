//! The baseline for TCP echo benchmarks: an echo server on kernel sockets,
//! one connection at a time, TCP_NODELAY, blocking in read (or spinning on
//! a non-blocking socket with --busy).
//!
//! `tcp_kernel_echo BIND_IP:PORT [--busy]`

use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let addr = a
        .first()
        .ok_or("usage: tcp_kernel_echo BIND_IP:PORT [--busy]")?;
    let busy = a.iter().any(|x| x == "--busy");
    let l = TcpListener::bind(addr)?;
    let mut buf = vec![0u8; 65536];
    loop {
        let (mut s, _) = l.accept()?;
        s.set_nodelay(true)?;
        s.set_nonblocking(busy)?;
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    // write_all on a non-blocking socket can see WouldBlock;
                    // 64-byte echoes never fill the send buffer here.
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
                Err(_) => break,
            }
        }
    }
}
