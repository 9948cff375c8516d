//! TCP and UDP echo servers on ringstack's `std::net`-shaped sockets: the
//! code a `std::net` program has, with the stack as the first argument of
//! `bind`. One thread per TCP connection, one for UDP.
//!
//! ```text
//! sudo ip netns exec A cargo run --release --example std_echo -- \
//!     --iface va --addr 198.18.0.2/24 [--driver packet] [--busy-poll] [--cpu 1] [--port 7]
//! ```

mod net_common;

use ringstack::net::{TcpListener, UdpSocket};
use std::io::{Read, Write};

fn main() -> std::io::Result<()> {
    let (net, args) = net_common::spawn()?;
    let udp = UdpSocket::bind(&net, ("0.0.0.0", args.port))?;
    std::thread::spawn(move || -> std::io::Result<()> {
        let mut buf = [0u8; 65536];
        loop {
            let (n, from) = udp.recv_from(&mut buf)?;
            udp.send_to(&buf[..n], from)?;
        }
    });
    let listener = TcpListener::bind(&net, ("0.0.0.0", args.port))?;
    eprintln!("serving on {}", listener.local_addr()?);
    for stream in listener.incoming() {
        let mut stream = stream?;
        stream.set_nodelay(true)?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    Ok(())
}
