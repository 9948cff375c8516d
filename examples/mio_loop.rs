//! A TCP and UDP echo server in one mio event loop over ringstack's
//! sockets (feature `mio`): edge-triggered, each socket read and written
//! until `WouldBlock`, what could not be written kept for the next
//! writable event.
//!
//! ```text
//! sudo ip netns exec A cargo run --release --features mio --example mio_loop -- \
//!     --iface va --addr 198.18.0.2/24 [--busy-poll] [--cpu 1] [--port 7]
//! ```

mod net_common;

use mio::{Events, Interest, Poll, Token};
use ringstack::net::{TcpListener, TcpStream, UdpSocket};
use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};

const LISTENER: Token = Token(0);
const UDP: Token = Token(1);

/// Echo what `s` has to read, until it would block; false when it ended.
fn echo(s: &mut TcpStream, pending: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 16384];
    loop {
        while !pending.is_empty() {
            match s.write(pending) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        match s.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

fn main() -> io::Result<()> {
    let (net, args) = net_common::spawn()?;
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(&net, ("0.0.0.0", args.port))?;
    let mut udp = UdpSocket::bind(&net, ("0.0.0.0", args.port))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    poll.registry()
        .register(&mut udp, UDP, Interest::READABLE)?;
    eprintln!("serving on {}", listener.local_addr()?);
    let mut conns: HashMap<Token, (TcpStream, Vec<u8>)> = HashMap::new();
    let mut next = 2;
    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; 65536];
    loop {
        poll.poll(&mut events, None)?;
        for ev in events.iter() {
            match ev.token() {
                LISTENER => loop {
                    match listener.accept() {
                        Ok((mut s, _)) => {
                            s.set_nodelay(true)?;
                            let t = Token(next);
                            next += 1;
                            poll.registry().register(
                                &mut s,
                                t,
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            conns.insert(t, (s, Vec::new()));
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                },
                UDP => loop {
                    match udp.recv_from(&mut buf) {
                        Ok((n, from)) => {
                            udp.send_to(&buf[..n], from)?;
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                },
                t => {
                    let Some((s, pending)) = conns.get_mut(&t) else {
                        continue;
                    };
                    if !echo(s, pending) {
                        let (mut s, _) = conns.remove(&t).expect("present");
                        poll.registry().deregister(&mut s)?;
                    }
                }
            }
        }
    }
}
