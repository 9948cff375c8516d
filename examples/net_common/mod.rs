//! The command line the `ringstack::net` examples share:
//!
//! `--iface IF --addr CIDR [--gateway IP] [--driver auto|xdp|packet|tap]
//!  [--busy-poll] [--cpu N] [--spin-us N] [--port N]`
#![allow(dead_code)]

use ringstack::net::NetStack;
use std::io;

pub struct Args {
    pub port: u16,
    /// Arguments the example reads itself (`--flag` and its value).
    pub rest: Vec<String>,
}

/// Parse the shared options and start the stack.
pub fn spawn() -> io::Result<(NetStack, Args)> {
    let bad = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    let mut b = NetStack::builder();
    let mut port = 7;
    let mut rest = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| bad(format!("{a} needs a value")));
        match a.as_str() {
            "--iface" => b = b.interface(&val()?),
            "--addr" => b = b.address(val()?.parse().map_err(|e| bad(format!("--addr: {e}")))?),
            "--gateway" => {
                b = b.gateway(val()?.parse().map_err(|e| bad(format!("--gateway: {e}")))?)
            }
            "--driver" => b = b.driver(val()?.parse().map_err(|e: &str| bad(e.into()))?),
            "--busy-poll" => b = b.busy_poll(true),
            "--cpu" => b = b.cpu(val()?.parse().map_err(|_| bad("--cpu N".into()))?),
            "--spin-us" => {
                let us: u64 = val()?.parse().map_err(|_| bad("--spin-us N".into()))?;
                b = b.spin(std::time::Duration::from_micros(us));
            }
            "--port" => port = val()?.parse().map_err(|_| bad("--port N".into()))?,
            _ => {
                rest.push(a.clone());
                if let Some(v) = it.next() {
                    rest.push(v);
                }
            }
        }
    }
    let net = b.spawn()?;
    eprintln!(
        "{} on {} ({})",
        std::env::args().next().unwrap_or_default(),
        net.address(),
        net.device_kind()
    );
    Ok((net, Args { port, rest }))
}
