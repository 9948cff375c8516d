//! DHCP server throughput: leases per second, DISCOVER → OFFER → REQUEST →
//! ACK, each from a distinct MAC, with the lease store in memory and on
//! disk (the file store fsyncs every lease before its ACK).
//!
//! Only the server's own work is timed (`on_message` and `poll`); building
//! the clients' messages and parsing the replies is not.
//!
//! ```text
//! cargo run --release --example dhcp_leases [CLIENTS] [FILE_CLIENTS] [DIR]
//! ```
//!
//! Defaults: 50 000 clients in memory, 2 000 with the file store in the
//! system's temporary directory (pass a directory on the disk that would
//! hold the real lease file: fsync costs what that disk costs).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Instant as Wall, SystemTime, UNIX_EPOCH};

use ringstack::dhcp::server::{DhcpServer, ServerAction, ServerConfig};
use ringstack::dhcp::store::{FileStore, LeaseStore, MemoryStore, WallClock};
use ringstack::dhcp::wire::{MessageType, Op, Repr};
use ringstack::eth::MacAddr;
use ringstack::time::{Duration, Instant};

fn mac(i: u32) -> MacAddr {
    let b = i.to_be_bytes();
    MacAddr([2, 0x44, b[0], b[1], b[2], b[3]])
}

fn config(clients: u32, probe: bool) -> ServerConfig {
    // A /12: a million addresses, so the pool stays mostly free and the
    // search for a free address short.
    let mut c = ServerConfig::new("10.64.0.1/12".parse().unwrap());
    c.max_leases = clients as usize + 1024;
    c.probe = probe;
    c.dns = vec![Ipv4Addr::new(10, 64, 0, 1)];
    c.domain = Some("lan".into());
    c
}

/// Runs every client through DORA; returns the seconds the server spent.
fn run<S: LeaseStore>(server: &mut DhcpServer<S>, clients: u32) -> f64 {
    let mut now = Instant::from_secs(1);
    let mut busy = std::time::Duration::ZERO;
    let mut acks = 0u32;
    let mut replies = Vec::new();
    for i in 0..clients {
        let m = mac(i);
        let mut d = Repr::new(Op::Request, MessageType::Discover, i, m);
        d.options.parameter_request_list = vec![1, 3, 6, 15, 28, 51, 58, 59];
        d.options.client_id = Some([&[1u8][..], m.as_bytes()].concat());
        d.options.hostname = Some(format!("host-{i}"));
        let discover = d.to_vec();

        let t = Wall::now();
        server.on_message(now, &discover, m);
        while let Some(a) = server.poll(now) {
            match a {
                // The stack found nobody there.
                ServerAction::Probe(ip) => server.on_probe_result(now, ip, false),
                ServerAction::Reply(r) => replies.push(r),
            }
        }
        busy += t.elapsed();

        let offer = Repr::parse_bytes(&replies.pop().expect("an offer").payload).unwrap();
        assert_eq!(offer.message_type, MessageType::Offer);
        let mut r = d.clone();
        r.message_type = MessageType::Request;
        r.options.server_id = offer.options.server_id;
        r.options.requested_ip = Some(offer.yiaddr);
        let request = r.to_vec();

        let t = Wall::now();
        server.on_message(now, &request, m);
        while let Some(a) = server.poll(now) {
            if let ServerAction::Reply(r) = a {
                replies.push(r);
            }
        }
        busy += t.elapsed();

        let ack = Repr::parse_bytes(&replies.pop().expect("an ack").payload).unwrap();
        assert_eq!(ack.message_type, MessageType::Ack);
        acks += 1;
        now += Duration::from_micros(10);
    }
    assert_eq!(acks, clients);
    black_box(&server);
    busy.as_secs_f64()
}

fn report(what: &str, clients: u32, secs: f64) {
    println!(
        "{what:<44} {clients:>7} leases  {:>9.0} leases/s  {:>7.2} us/lease",
        f64::from(clients) / secs,
        secs * 1e6 / f64::from(clients)
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let clients: u32 = args.next().map_or(50_000, |a| a.parse().expect("CLIENTS"));
    let file_clients: u32 = args
        .next()
        .map_or(2_000, |a| a.parse().expect("FILE_CLIENTS"));
    let dir: PathBuf = args.next().map_or_else(std::env::temp_dir, PathBuf::from);

    for (what, probe) in [
        ("memory store, no probe", false),
        ("memory store, probe answered at once", true),
    ] {
        let mut s =
            DhcpServer::new(config(clients, probe), MemoryStore::new(), Instant::ZERO).unwrap();
        let secs = run(&mut s, clients);
        report(what, clients, secs);
    }

    let path = dir.join(format!(
        "ringstack-dhcp-bench-{}.leases",
        std::process::id()
    ));
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (store, _) = FileStore::open(
        &path,
        WallClock {
            now: Instant::ZERO,
            unix_secs: unix,
        },
    )
    .expect("open the lease file");
    let mut s = DhcpServer::new(config(file_clients, false), store, Instant::ZERO).unwrap();
    let secs = run(&mut s, file_clients);
    report(
        &format!("file store (fsync per lease) in {}", dir.display()),
        file_clients,
        secs,
    );
    drop(s);
    let _ = std::fs::remove_file(&path);
}
