//! TCP urgent data against the Linux kernel (RFC 9293 §3.8.5, MUST-30 and
//! MUST-62 "wire: Linux peer send/recv MSG_OOB both ways"): a kernel client
//! sends a byte with MSG_OOB to `ringstack serve --tcp-echo`, which reads
//! it in line, sees the urgent mark, and echoes the byte back as urgent
//! data; the kernel must then read it with MSG_OOB, out of the stream.
//! Linux puts the urgent pointer just past the urgent byte and reads it
//! that way (tcp_stdurg = 0), which is what RFC 9293 specifies: a pointer
//! one off on either side and the kernel would hand back the wrong byte.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Reads the kernel's out-of-band byte, waiting for it to arrive.
fn recv_oob(s: &TcpStream, limit: Duration) -> Option<u8> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        let mut b = 0u8;
        // SAFETY: a one-byte buffer we own, on a socket we own.
        let n = unsafe {
            libc::recv(
                s.as_raw_fd(),
                (&mut b as *mut u8).cast(),
                1,
                libc::MSG_OOB | libc::MSG_DONTWAIT,
            )
        };
        if n == 1 {
            return Some(b);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn send_oob(s: &TcpStream, b: u8) {
    // SAFETY: a one-byte buffer we own, on a socket we own.
    let n = unsafe { libc::send(s.as_raw_fd(), (&b as *const u8).cast(), 1, libc::MSG_OOB) };
    assert_eq!(n, 1, "send MSG_OOB: {}", std::io::Error::last_os_error());
}

#[test]
fn urgent_byte_round_trips_through_ringstack_echo() {
    skip_unless!("ip", "ping", "ethtool");
    let net = Net::new();
    let server = net.serve(&["--tcp-echo", "7"]);
    let mut s = TcpStream::connect((STACK_IP, 7)).expect("connect to ringstack");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    for round in 0..3u8 {
        s.write_all(b"hello").unwrap();
        let urgent = b'!' + round;
        send_oob(&s, urgent);
        s.write_all(b"world").unwrap();
        // Linux stops an ordinary read at the urgent mark, and throws the
        // urgent byte away once a read passes it: read up to the mark, take
        // the urgent byte, then the rest.
        let mut before = [0u8; 5];
        s.read_exact(&mut before)
            .expect("echoed stream before the mark");
        assert_eq!(&before, b"hello", "round {round}");
        assert_eq!(
            recv_oob(&s, Duration::from_secs(5)),
            Some(urgent),
            "round {round}: the kernel reads the echoed byte as urgent"
        );
        let mut after = [0u8; 5];
        s.read_exact(&mut after)
            .expect("echoed stream after the mark");
        assert_eq!(
            &after, b"world",
            "round {round}: the urgent byte is not in line"
        );
    }
    drop(s);
    let out = server.finish();
    assert!(
        counter(&out, "tcp", "urgent_notifications") >= 3,
        "ringstack saw each urgent pointer:\n{out}"
    );
}
