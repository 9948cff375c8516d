//! `ringstack get URL` and `ringstack send HOST:PORT --bytes N`: TCP clients
//! on the stack, for people and for tests against real servers.

use super::tcp_apps::{fill_body, parse_response_head, parse_url, ResponseHead};
use super::{bring_up, idle, stop_flag, NetArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use ringstack::dev;
use ringstack::stack::Stack;
use ringstack::tcp::{ConnHandle, State, TcpError};
use ringstack::time::{Duration, Instant};
use std::io::Write;
use std::net::SocketAddrV4;
use std::sync::atomic::Ordering;

#[derive(Args, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    net: NetArgs,
    /// http://A.B.C.D[:PORT]/PATH
    url: String,
    /// Write the body to FILE, or to stdout with "-" (the default).
    #[arg(short = 'o', long, default_value = "-")]
    output: String,
    /// Give up after this many seconds without progress.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

#[derive(Args, Debug)]
pub struct SendArgs {
    #[command(flatten)]
    net: NetArgs,
    /// Where to send, e.g. 198.18.0.1:9000.
    dst: SocketAddrV4,
    /// How many bytes to send.
    #[arg(long)]
    bytes: u64,
    /// Give up after this many seconds without progress.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Differentiated Services codepoint (0-63) for every segment of the
    /// connection, the SYN included, e.g. 8 (CS1) to mark bulk traffic.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=63))]
    dscp: Option<u8>,
}

fn connect(stack: &mut Stack, now: Instant, dst: SocketAddrV4) -> Result<ConnHandle> {
    stack
        .tcp_connect(now, dst)
        .map_err(|e| anyhow::anyhow!("connect to {dst}: {e}"))
}

/// Prints progress at most once a second, to stderr.
struct Progress {
    start: Instant,
    next: Instant,
    what: &'static str,
}

impl Progress {
    fn new(now: Instant, what: &'static str) -> Progress {
        Progress {
            start: now,
            next: now + Duration::from_secs(1),
            what,
        }
    }
    fn tick(&mut self, now: Instant, bytes: u64) {
        if now >= self.next {
            let s = now.saturating_since(self.start).as_secs_f64().max(1e-6);
            eprintln!(
                "ringstack: {} {} bytes ({:.1} Mbit/s)",
                self.what,
                bytes,
                bytes as f64 * 8.0 / s / 1e6
            );
            self.next = now + Duration::from_secs(1);
        }
    }
    fn rate(&self, now: Instant, bytes: u64) -> (f64, f64) {
        let s = now.saturating_since(self.start).as_secs_f64().max(1e-6);
        (s, bytes as f64 * 8.0 / s / 1e6)
    }
}

pub fn get(a: GetArgs) -> Result<i32> {
    let url = parse_url(&a.url).map_err(|e| anyhow::anyhow!(e))?;
    let stop = stop_flag()?;
    let (mut dev, mut stack) = bring_up(&a.net)?;
    let mut out: Box<dyn Write> = if a.output == "-" {
        Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::io::stdout().lock(),
        ))
    } else {
        Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&a.output).with_context(|| format!("creating {}", a.output))?,
        ))
    };
    let now = dev::monotonic_now();
    let h = connect(&mut stack, now, url.addr)?;
    let host = url.addr.to_string();
    let req = format!("GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ringstack\r\nAccept: */*\r\nConnection: close\r\n\r\n", url.path).into_bytes();
    let (mut sent, mut head, mut body) = (0usize, Vec::new(), 0u64);
    let mut resp: Option<ResponseHead> = None;
    let mut buf = vec![0u8; 256 * 1024];
    let timeout = Duration::from_secs(a.timeout);
    let mut last = now;
    let mut progress = Progress::new(now, "received");
    let ok = loop {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted after {body} bytes");
        }
        let now = dev::monotonic_now();
        let mut busy = stack.poll(now, &mut dev).context("device error")? > 0;
        if sent < req.len() {
            match stack.tcp().send(h, &req[sent..]) {
                Ok(n) => sent += n,
                Err(TcpError::WouldBlock) => {}
                Err(e) => bail!("connect to {}: {e}", url.addr),
            }
        }
        loop {
            match stack.tcp().recv(h, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    busy = true;
                    last = now;
                    let mut data = &buf[..n];
                    if resp.is_none() {
                        head.extend_from_slice(data);
                        let Some(end) = head
                            .windows(4)
                            .position(|w| w == b"\r\n\r\n")
                            .map(|p| p + 4)
                        else {
                            if head.len() > 64 * 1024 {
                                bail!("response head longer than 64 KiB");
                            }
                            continue;
                        };
                        let r =
                            parse_response_head(&head[..end]).map_err(|e| anyhow::anyhow!(e))?;
                        if r.chunked {
                            bail!("chunked transfer encoding is not supported yet");
                        }
                        if r.status != 200 {
                            bail!(
                                "server answered {}",
                                String::from_utf8_lossy(
                                    head.split(|&b| b == b'\r').next().unwrap_or(&[])
                                )
                            );
                        }
                        let rest = head.split_off(end);
                        out.write_all(&rest).context("writing the body")?;
                        body += rest.len() as u64;
                        resp = Some(r);
                        data = &[];
                    }
                    out.write_all(data).context("writing the body")?;
                    body += data.len() as u64;
                    progress.tick(now, body);
                }
                Err(TcpError::WouldBlock) => break,
                Err(e) => bail!("{} after {body} bytes", e),
            }
        }
        let done = matches!(stack.tcp().recv(h, &mut []), Ok(0));
        let complete = resp
            .as_ref()
            .and_then(|r| r.content_length)
            .is_some_and(|cl| body >= cl);
        if complete || done {
            let Some(r) = &resp else {
                bail!("connection closed before a response")
            };
            if let Some(cl) = r.content_length {
                if body != cl {
                    bail!("body has {body} bytes, Content-Length said {cl}");
                }
            }
            break true;
        }
        if now.saturating_since(last) > timeout {
            bail!("no progress for {} s ({body} bytes received)", a.timeout);
        }
        if !busy {
            idle(&mut *dev, &stack, now, a.net.dev.busy_poll)?;
        }
    };
    out.flush().context("writing the body")?;
    let now = dev::monotonic_now();
    let (secs, mbps) = progress.rate(now, body);
    let retrans = stack
        .tcp()
        .conn_stats(h)
        .map(|s| s.retransmits)
        .unwrap_or(0);
    let _ = stack.tcp().close(h);
    // Let the FIN and the last ACKs leave.
    let end = now + Duration::from_millis(200);
    while dev::monotonic_now() < end {
        stack.poll(dev::monotonic_now(), &mut dev)?;
        idle(&mut *dev, &stack, dev::monotonic_now(), false)?;
    }
    eprintln!("ringstack: fetched {body} bytes in {secs:.3} s ({mbps:.1} Mbit/s), {retrans} retransmissions");
    Ok(if ok { 0 } else { 1 })
}

pub fn send(a: SendArgs) -> Result<i32> {
    let stop = stop_flag()?;
    let (mut dev, mut stack) = bring_up(&a.net)?;
    let now = dev::monotonic_now();
    let h = connect(&mut stack, now, a.dst)?;
    if let Some(d) = a.dscp {
        // Before the first poll, so the SYN carries it too.
        stack.tcp().set_dscp(h, d)?;
    }
    let (mut queued, mut shut) = (0u64, false);
    let mut sink = vec![0u8; 64 * 1024];
    let timeout = Duration::from_secs(a.timeout);
    let (mut last, mut last_acked) = (now, 0u64);
    let mut progress = Progress::new(now, "acknowledged");
    loop {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted after {queued} bytes queued");
        }
        let now = dev::monotonic_now();
        let mut busy = stack.poll(now, &mut dev).context("device error")? > 0;
        let tcp = stack.tcp();
        while queued < a.bytes {
            let left = a.bytes - queued;
            let pos = queued;
            match tcp.send_with(h, |b| {
                let n = (b.len() as u64).min(left) as usize;
                fill_body(&mut b[..n], pos);
                n
            }) {
                Ok(0) | Err(TcpError::WouldBlock) => break,
                Ok(n) => {
                    queued += n as u64;
                    busy = true;
                }
                Err(e) => bail!("{} after {queued} bytes queued", e),
            }
        }
        if queued == a.bytes && !shut {
            tcp.shutdown_write(h)
                .map_err(|e| anyhow::anyhow!("shutdown: {e}"))?;
            shut = true;
        }
        // Whatever the peer sends is read and dropped, so its window never stalls us.
        while let Ok(n) = tcp.recv(h, &mut sink) {
            if n == 0 {
                break;
            }
        }
        let st = tcp.conn_stats(h).map_err(|e| anyhow::anyhow!("{e}"))?;
        if st.bytes_acked > last_acked {
            last_acked = st.bytes_acked;
            last = now;
        }
        progress.tick(now, st.bytes_acked);
        let state = tcp.state(h).map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(e) = tcp.readiness(h).ok().and_then(|r| r.error) {
            bail!(
                "{e} after {} of {} bytes acknowledged",
                st.bytes_acked,
                a.bytes
            );
        }
        // Done when every byte and our FIN are acknowledged.
        if shut
            && st.bytes_acked >= a.bytes
            && matches!(state, State::FinWait2 | State::TimeWait | State::Closed)
        {
            let (secs, mbps) = progress.rate(now, st.bytes_acked);
            println!(
                "sent {} bytes to {} in {secs:.3} s: {mbps:.1} Mbit/s, {} retransmissions ({} fast, {} timeouts), srtt {}, cc {} ({}), cwnd {}, pacing {}",
                st.bytes_acked,
                a.dst,
                st.retransmits,
                st.fast_retransmits,
                st.rto_timeouts,
                st.srtt.map_or("-".to_string(), |d| d.to_string()),
                st.cc_name,
                st.cc_state,
                st.cwnd,
                st.pacing_rate
                    .map_or("off".to_string(), |r| format!("{:.1} Mbit/s", r as f64 * 8.0 / 1e6)),
            );
            let _ = tcp.close(h);
            let end = now + Duration::from_millis(200);
            while dev::monotonic_now() < end {
                stack.poll(dev::monotonic_now(), &mut dev)?;
            }
            return Ok(0);
        }
        if now.saturating_since(last) > timeout {
            bail!(
                "no progress for {} s: {} of {} bytes acknowledged",
                a.timeout,
                st.bytes_acked,
                a.bytes
            );
        }
        if !busy {
            idle(&mut *dev, &stack, now, a.net.dev.busy_poll)?;
        }
    }
}
