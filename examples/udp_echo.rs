//! A UDP echo server on ringstack, in the run-to-completion style: the
//! application's logic runs in the poll thread, between polls.
//!
//! `cargo run --example udp_echo -- IFACE 198.18.0.2/24` (needs CAP_NET_RAW).

use ringstack::dev::{self, Device};
use ringstack::stack::{Config, Stack};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(iface), Some(addr)) = (args.next(), args.next()) else {
        return Err("usage: udp_echo IFACE ADDRESS/PREFIX".into());
    };
    let mut dev = dev::packet::PacketDevice::open(&iface, Default::default())?;
    let mac = ringstack::eth::MacAddr(dev.caps().mac.ok_or("interface has no MAC")?);
    let mut stack = Stack::new(Config::new(mac, addr.parse()?))?;
    let sock = stack.udp_bind("0.0.0.0:7".parse()?)?;
    let mut buf = [0u8; 65536];
    loop {
        let now = dev::monotonic_now();
        stack.poll(now, &mut dev)?;
        while let Ok((n, from)) = stack.udp_recv_from(sock, &mut buf) {
            stack.udp_send_to(sock, &buf[..n], from)?;
        }
        dev.wait(Some(
            stack.poll_delay(now, ringstack::Duration::from_millis(10)),
        ))?;
    }
}
