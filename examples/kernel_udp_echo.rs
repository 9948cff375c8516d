//! The baseline for UDP echo benchmarks: an echo server on a kernel UDP
//! socket, blocking in recvfrom (or spinning with --busy).
//!
//! `kernel_udp_echo BIND_IP:PORT [--busy]`

use std::net::UdpSocket;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let addr = a
        .first()
        .ok_or("usage: kernel_udp_echo BIND_IP:PORT [--busy]")?;
    let sock = UdpSocket::bind(addr)?;
    let busy = a.iter().any(|x| x == "--busy");
    sock.set_nonblocking(busy)?;
    let mut buf = vec![0u8; 65536];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                sock.send_to(&buf[..n], from)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(e.into()),
        }
    }
}
