//! ringstack against the Linux kernel, over a veth pair between two network
//! namespaces: the kernel's ping, arping and UDP sockets on one end,
//! `ringstack serve` / `ringstack ping` on the other, and tshark checking
//! what crossed the wire.

mod common;

use common::*;
use ringstack::dev::host;
use std::net::UdpSocket;
use std::time::Duration;

/// Every scenario runs on each driver: AF_PACKET, and AF_XDP with the XDP
/// program attached generically (skb) and in the veth driver (drv).
macro_rules! on_every_driver {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[test]
            fn packet() {
                super::$name(&["--driver", "packet"]);
            }
            #[test]
            fn xdp_skb() {
                super::$name(&["--driver", "xdp", "--xdp-attach", "skb"]);
            }
            #[test]
            fn xdp_drv() {
                super::$name(&["--driver", "xdp", "--xdp-attach", "drv"]);
            }
        })*
    };
}

on_every_driver!(
    kernel_ping_1000_echoes_none_lost,
    kernel_ping_of_4000_bytes_is_fragmented_both_ways_and_clean_on_the_wire,
    arping_resolves_the_stack,
    udp_echo_from_a_kernel_socket_for_every_size_up_to_60000_bytes,
    kernel_udp_to_a_closed_port_is_refused,
    ringstack_pings_the_kernel_with_fragmented_echoes,
    ringstack_ping_reports_an_unreachable_host,
    stack_survives_hostile_frames_from_the_wire_and_still_answers,
);

fn kernel_ping_1000_echoes_none_lost(drv: &[&str]) {
    skip_unless!("ip", "ping", "ethtool");
    let net = Net::new();
    let server = net.serve(drv);
    let out = host::run(&[
        "ping", "-c", "1000", "-i", "0.002", "-W", "2", "-q", STACK_IP,
    ])
    .expect("ping");
    assert_eq!(ping_summary(&out), (1000, 1000), "{out}");
    let counters = server.finish();
    assert!(
        counter(&counters, "icmp", "tx_echo_replies") >= 1000,
        "{counters}"
    );
    assert_eq!(
        counter(&counters, "ip", "drop_bad_checksum"),
        0,
        "{counters}"
    );
}

fn kernel_ping_of_4000_bytes_is_fragmented_both_ways_and_clean_on_the_wire(drv: &[&str]) {
    skip_unless!("ip", "ping", "ethtool", "tcpdump", "tshark");
    let net = Net::new();
    let server = net.serve(drv);
    let cap = net.capture();
    let out = host::run(&[
        "ping", "-c", "100", "-i", "0.01", "-s", "4000", "-W", "2", "-q", STACK_IP,
    ])
    .expect("ping");
    assert_eq!(ping_summary(&out), (100, 100), "{out}");
    let counters = server.finish();
    // 4008 bytes of ICMP in 1480-byte pieces: three fragments each way.
    assert!(counter(&counters, "ip", "reassembled") >= 100, "{counters}");
    assert!(
        counter(&counters, "ip", "tx_fragments") >= 300,
        "{counters}"
    );
    let frames = cap.check();
    assert!(frames >= 600, "captured only {frames} frames");
}

fn arping_resolves_the_stack(drv: &[&str]) {
    skip_unless!("ip", "ping", "arping", "ethtool");
    let net = Net::new();
    let _server = net.serve(drv);
    let out = host::run(&[
        "arping",
        "-c",
        "3",
        "-w",
        "5",
        "-I",
        &net.pair.if_b,
        STACK_IP,
    ])
    .expect("arping");
    assert!(out.contains("Received 3 response(s)"), "{out}");
}

fn udp_echo_from_a_kernel_socket_for_every_size_up_to_60000_bytes(drv: &[&str]) {
    skip_unless!("ip", "ping", "ethtool", "tcpdump", "tshark");
    let net = Net::new();
    let server = net.serve(drv);
    let cap = net.capture();
    let sock = UdpSocket::bind((KERNEL_IP, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = vec![0u8; 65536];
    // 1472 fills one frame; 1473 is the first size that fragments; 60000
    // takes 41 fragments each way (reassembled by ringstack, then by the kernel).
    for size in [0usize, 1, 100, 1472, 1473, 4000, 8000, 30000, 60000, 65507] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 + size) as u8).collect();
        sock.send_to(&data, (STACK_IP, 7)).unwrap();
        let (n, from) = sock
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("no echo for {size} bytes: {e}"));
        assert_eq!(from.to_string(), format!("{STACK_IP}:7"));
        assert_eq!(n, size);
        assert!(buf[..n] == data[..], "echo of {size} bytes differs");
    }
    let counters = server.finish();
    assert_eq!(counter(&counters, "udp", "rx_datagrams"), 10, "{counters}");
    assert_eq!(counter(&counters, "udp", "tx_datagrams"), 10, "{counters}");
    cap.check();
}

fn kernel_udp_to_a_closed_port_is_refused(drv: &[&str]) {
    skip_unless!("ip", "ping", "ethtool");
    let net = Net::new();
    let _server = net.serve(drv);
    let sock = UdpSocket::bind((KERNEL_IP, 0)).unwrap();
    sock.connect((STACK_IP, 9999)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send(b"anyone?").unwrap();
    // The kernel turns our ICMP port unreachable into ECONNREFUSED.
    let err = sock
        .recv(&mut [0u8; 16])
        .expect_err("no datagram should come back");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
}

fn ringstack_pings_the_kernel_with_fragmented_echoes(drv: &[&str]) {
    skip_unless!("ip", "ethtool", "tcpdump", "tshark");
    let net = Net::new();
    let cap = net.capture();
    let p = net.ringstack(
        "ping",
        &[drv, &["-c", "20", "-i", "0.02", "-s", "4000", KERNEL_IP]].concat(),
    );
    let (out, ok) = p.wait(Duration::from_secs(30));
    assert!(ok, "ringstack ping failed:\n{out}");
    assert_eq!(ping_summary(&out), (20, 20), "{out}");
    assert!(
        out.contains("4008 bytes from 198.18.0.1: icmp_seq=1 ttl=64"),
        "{out}"
    );
    cap.check();
}

fn ringstack_ping_reports_an_unreachable_host(drv: &[&str]) {
    skip_unless!("ip", "ethtool");
    let net = Net::new();
    // Nobody owns .77: ARP resolution fails and ping says so.
    let p = net.ringstack(
        "ping",
        &[drv, &["-c", "2", "-i", "0.2", "-W", "4", "198.18.0.77"]].concat(),
    );
    let (out, ok) = p.wait(Duration::from_secs(30));
    assert!(!ok, "ping of a silent address must fail:\n{out}");
    assert_eq!(ping_summary(&out).1, 0, "{out}");
}

fn stack_survives_hostile_frames_from_the_wire_and_still_answers(drv: &[&str]) {
    skip_unless!("ip", "ping", "ethtool");
    use ringstack::dev::packet::PacketDevice;
    use ringstack::dev::Device;
    let net = Net::new();
    let server = net.serve(drv);
    let stack_mac = {
        host::run(&["ping", "-c", "1", STACK_IP]).unwrap();
        let n = host::run(&["ip", "neigh", "show", STACK_IP]).unwrap();
        let mac = n
            .split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .expect("neighbour entry")
            .to_string();
        mac.parse::<ringstack::eth::MacAddr>().unwrap()
    };
    let our_mac = ringstack::dev::sys::if_mac(&net.pair.if_b).unwrap();
    let mut dev = PacketDevice::open(&net.pair.if_b, Default::default()).unwrap();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut sent = 0;
    for i in 0..20_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = 60 + (x % 1400) as usize;
        let seed = x;
        let r = dev.transmitter().transmit(len, &mut |f| {
            let mut y = seed;
            for b in f.iter_mut() {
                y = y
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *b = (y >> 56) as u8;
            }
            f[..6].copy_from_slice(&stack_mac.0);
            f[6..12].copy_from_slice(&our_mac);
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            // Mostly IPv4 headers with broken fields; every 8th a fragment
            // with a random offset (a fragment flood).
            f[14] = if i % 5 == 0 { 0x46 } else { 0x45 };
            f[20] = if i % 8 == 0 { 0x20 } else { f[20] };
            f[26..30].copy_from_slice(&[198, 18, 0, 1]);
            f[30..34].copy_from_slice(&[198, 18, 0, 2]);
        });
        if r.is_ok() {
            sent += 1;
        }
        if i % 64 == 0 {
            dev.flush(ringstack::dev::monotonic_now()).unwrap();
        }
    }
    dev.flush(ringstack::dev::monotonic_now()).unwrap();
    assert!(sent > 19_000);
    // Still alive and answering.
    let out = host::run(&["ping", "-c", "5", "-i", "0.05", "-W", "2", STACK_IP])
        .expect("ping after the flood");
    assert_eq!(ping_summary(&out), (5, 5));
    let counters = server.finish();
    let drops: u64 = [
        "drop_bad_checksum",
        "drop_truncated",
        "drop_bad_total_len",
        "drop_bad_header_len",
    ]
    .iter()
    .map(|n| counter(&counters, "ip", n))
    .sum();
    assert!(
        drops > 10_000,
        "hostile frames must show up as counted drops:\n{counters}"
    );
}
