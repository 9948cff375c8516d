//! Sockets in the shape of `std::net`, mio and tokio, over a ringstack
//! that runs on a thread of its own.
//!
//! [`Stack::poll`](crate::stack::Stack::poll) with handles is the
//! run-to-completion API: the lowest latency, but the application drives
//! the stack. This module is for programs written against `std::net`,
//! `mio` or `tokio`: [`NetStack`] starts a stack on a dedicated thread and
//! hands out sockets that work like the ones those programs already use.
//! Switching is a matter of a few lines:
//!
//! ```no_run
//! use ringstack::net::{NetStack, TcpListener};
//! use std::io::{Read, Write};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let net = NetStack::builder()
//!     .interface("veth0")
//!     .address("198.18.0.2/24".parse()?)
//!     .spawn()?;
//! // std::net::TcpListener::bind("0.0.0.0:7") becomes:
//! let listener = TcpListener::bind(&net, "0.0.0.0:7")?;
//! for stream in listener.incoming() {
//!     let mut stream = stream?;
//!     let mut buf = [0u8; 4096];
//!     loop {
//!         let n = stream.read(&mut buf)?;
//!         if n == 0 {
//!             break;
//!         }
//!         stream.write_all(&buf[..n])?;
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # The sockets
//!
//! - [`TcpListener`], [`TcpStream`] and [`UdpSocket`] have the names,
//!   methods and error kinds of their `std::net` namesakes, with the stack
//!   as the first argument of the constructors (`bind`, `connect`,
//!   `connect_timeout`). They block by default; read and write timeouts and
//!   non-blocking mode work as in std (on Linux a read timeout ends in
//!   `WouldBlock`). Addresses are anything that is
//!   [`ToSocketAddrs`](std::net::ToSocketAddrs); ringstack is IPv4 only,
//!   so IPv6 addresses fail with `Unsupported`.
//! - With the `mio` feature the three implement
//!   [`mio::event::Source`](https://docs.rs/mio/1/mio/event/trait.Source.html),
//!   edge-triggered like mio's own sockets (read or write until
//!   `WouldBlock`, then wait for the next event); a connection started
//!   with [`TcpStream::connect_nonblocking`] becomes writable when its
//!   handshake ends.
//! - With the `tokio` feature, [`tokio`](self::tokio) has `TcpListener`,
//!   `TcpStream` (with `AsyncRead` and `AsyncWrite`) and `UdpSocket`
//!   usable from any tokio runtime.
//!
//! Sockets are `Send + Sync` and own a handle to their stack: the stack
//! thread ends when the [`NetStack`] and every socket are gone (after up
//! to [`Builder::linger`], so that closed connections finish their FIN
//! exchange). Dropping a socket closes it: a TCP stream sends what it
//! holds and then its FIN (a reset instead if received data is unread, as
//! close(2) does); a listener resets the connections nobody accepted.
//!
//! # How it works
//!
//! The stack thread owns the `Stack` and the device. Each socket has a
//! shared state (buffers and flags behind a mutex) that both sides
//! change; what the application asks of the stack thread goes through a
//! lock-free queue (crossbeam's `SegQueue`). The stack thread loops:
//! commands, `Stack::poll`, then for every socket with news it moves bytes
//! between TCP's rings and the socket's and wakes whoever waits, then it
//! spins ([`Builder::busy_poll`]) or sleeps in `poll(2)` on the device and
//! an eventfd. Wake-ups cost a syscall only where a side sleeps: an
//! application thread writes the eventfd only if the stack thread said it
//! is going to sleep, and the stack thread signals a condition variable
//! only if a thread waits on it (a blocking call can spin first,
//! [`Builder::spin`]). Each direction costs one copy more than the
//! run-to-completion API (application ↔ socket buffer ↔ TCP ring).

#![warn(missing_docs)]

mod core;
#[cfg(feature = "mio")]
mod mio;
mod ring;
mod tcp;
mod thread;
#[cfg(feature = "tokio")]
pub mod tokio;
mod udp;

#[cfg(test)]
mod tests;

pub use crate::dev::open::Driver;
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;

use self::core::{Core, SockOpts};
use crate::dev::open::OpenOptions;
use crate::dev::{self, Device, DeviceStats};
use crate::eth::MacAddr;
use crate::ip::cidr::Ipv4Cidr;
use crate::stack::{Config, Stack, Stats};
use crate::tcp::CcAlgorithm;
use crate::time::Duration;
use ::core::fmt;
use ::core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::io;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use thread::{LoopOpts, Runtime};

/// Opens the device on the stack thread; see [`Builder::device`].
type DeviceFactory = Box<dyn FnOnce() -> io::Result<Box<dyn Device>> + Send>;
type Configure = Box<dyn FnOnce(&mut Config) + Send>;

/// Configures and starts a [`NetStack`]; from [`NetStack::builder`].
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ringstack::net::{Driver, NetStack};
/// use ringstack::tcp::CcAlgorithm;
/// let net = NetStack::builder()
///     .interface("veth0")
///     .address("198.18.0.2/24".parse()?)
///     .gateway("198.18.0.1".parse()?)
///     .driver(Driver::Packet)
///     .busy_poll(true)
///     .cpu(1)
///     .congestion_control(CcAlgorithm::Cubic)
///     .spawn()?;
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct Builder {
    interface: Option<String>,
    address: Option<Ipv4Cidr>,
    gateway: Option<Ipv4Addr>,
    driver: Driver,
    open: OpenOptions,
    device: Option<DeviceFactory>,
    busy_poll: bool,
    cpu: Option<usize>,
    cc: Option<CcAlgorithm>,
    mac: Option<MacAddr>,
    mtu: Option<usize>,
    netns: Option<String>,
    configure: Option<Configure>,
    stream_buffer: usize,
    udp_queue: usize,
    backlog: usize,
    linger: Duration,
    spin: Option<std::time::Duration>,
    max_sleep: Duration,
    thread_name: Option<String>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("interface", &self.interface)
            .field("address", &self.address)
            .field("gateway", &self.gateway)
            .field("driver", &self.driver)
            .field("busy_poll", &self.busy_poll)
            .field("cpu", &self.cpu)
            .finish_non_exhaustive()
    }
}

impl Builder {
    fn new() -> Builder {
        Builder {
            interface: None,
            address: None,
            gateway: None,
            driver: Driver::Auto,
            open: OpenOptions::default(),
            device: None,
            busy_poll: false,
            cpu: None,
            cc: None,
            mac: None,
            mtu: None,
            netns: None,
            configure: None,
            stream_buffer: 64 * 1024,
            udp_queue: 256,
            backlog: 128,
            linger: Duration::from_secs(2),
            spin: None,
            max_sleep: Duration::from_millis(100),
            thread_name: None,
        }
    }

    /// The interface the stack takes over (give it no kernel address, or
    /// the kernel answers too).
    pub fn interface(mut self, name: &str) -> Builder {
        self.interface = Some(name.to_string());
        self
    }

    /// The stack's address and subnet.
    pub fn address(mut self, addr: Ipv4Cidr) -> Builder {
        self.address = Some(addr);
        self
    }

    /// The default gateway; it must be on the address's subnet.
    pub fn gateway(mut self, gw: Ipv4Addr) -> Builder {
        self.gateway = Some(gw);
        self
    }

    /// The driver: AF_XDP falling back to AF_PACKET by default.
    pub fn driver(mut self, driver: Driver) -> Builder {
        self.driver = driver;
        self
    }

    /// The drivers' tunables.
    pub fn open_options(mut self, opts: OpenOptions) -> Builder {
        self.open = opts;
        self
    }

    /// Open the device with `open` instead of by interface name: a TAP, a
    /// device wrapped in a pcap writer, or one of your own. It runs on the
    /// stack thread, so the device need not be `Send`.
    pub fn device(
        mut self,
        open: impl FnOnce() -> io::Result<Box<dyn Device>> + Send + 'static,
    ) -> Builder {
        self.device = Some(Box::new(open));
        self
    }

    /// Spin instead of sleeping in `poll(2)` when idle: the lowest latency,
    /// one core at 100 %. Off by default. Blocking calls then spin for
    /// 50 µs before they sleep unless [`Builder::spin`] says otherwise.
    pub fn busy_poll(mut self, on: bool) -> Builder {
        self.busy_poll = on;
        self
    }

    /// Pin the stack thread to this CPU.
    pub fn cpu(mut self, cpu: usize) -> Builder {
        self.cpu = Some(cpu);
        self
    }

    /// The congestion controller of every connection (NewReno by default).
    pub fn congestion_control(mut self, cc: CcAlgorithm) -> Builder {
        self.cc = Some(cc);
        self
    }

    /// The stack's MAC; by default the interface's (a TAP gets a random
    /// locally administered one).
    pub fn mac(mut self, mac: MacAddr) -> Builder {
        self.mac = Some(mac);
        self
    }

    /// The IP MTU; by default the interface's. It may not exceed it.
    pub fn mtu(mut self, mtu: usize) -> Builder {
        self.mtu = Some(mtu);
        self
    }

    /// Open the interface from inside this network namespace (as made by
    /// `ip netns add`). Only the stack thread enters it; the application's
    /// threads stay where they are.
    pub fn netns(mut self, name: &str) -> Builder {
        self.netns = Some(name.to_string());
        self
    }

    /// Change the stack's [`Config`] last, before the stack is built: TCP
    /// buffer sizes, timers, memory caps.
    pub fn configure(mut self, f: impl FnOnce(&mut Config) + Send + 'static) -> Builder {
        self.configure = Some(Box::new(f));
        self
    }

    /// Bytes a TCP socket buffers each way between the application and the
    /// stack thread, on top of TCP's own send and receive rings (64 KiB).
    pub fn stream_buffer(mut self, bytes: usize) -> Builder {
        self.stream_buffer = bytes.max(1);
        self
    }

    /// Datagrams a UDP socket queues each way (256).
    pub fn udp_queue(mut self, datagrams: usize) -> Builder {
        self.udp_queue = datagrams.max(1);
        self
    }

    /// Connections a listener holds for `accept` (128, std's backlog).
    pub fn backlog(mut self, n: usize) -> Builder {
        self.backlog = n.max(1);
        self
    }

    /// How long the stack thread goes on after the last handle is gone, at
    /// most, so that closed connections finish (2 s).
    pub fn linger(mut self, d: std::time::Duration) -> Builder {
        self.linger = Duration::from_micros(d.as_micros().min(u64::MAX as u128) as u64);
        self
    }

    /// How long a blocking call spins before it sleeps: no syscall to wake
    /// it when the answer comes within that time. 0 without busy polling,
    /// 50 µs with it.
    pub fn spin(mut self, d: std::time::Duration) -> Builder {
        self.spin = Some(d);
        self
    }

    /// The stack thread's name (at most 15 bytes show in `ps`); by
    /// default `rs-` and the interface's name.
    pub fn thread_name(mut self, name: &str) -> Builder {
        self.thread_name = Some(name.to_string());
        self
    }

    /// Start the stack thread. Fails if the device cannot be opened or the
    /// configuration is refused; the error says why.
    pub fn spawn(self) -> io::Result<NetStack> {
        let address = self.address.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "NetStack: no address given")
        })?;
        if self.interface.is_none() && self.device.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "NetStack: no interface or device given",
            ));
        }
        let spin = self.spin.unwrap_or(if self.busy_poll {
            std::time::Duration::from_micros(50)
        } else {
            std::time::Duration::ZERO
        });
        let core = Arc::new(Core::new(SockOpts {
            stream_buffer: self.stream_buffer,
            udp_queue: self.udp_queue,
            backlog: self.backlog,
            spin,
        })?);
        let loop_opts = LoopOpts {
            busy_poll: self.busy_poll,
            max_sleep: self.max_sleep,
            linger: self.linger,
        };
        let name = match (&self.thread_name, &self.interface) {
            (Some(n), _) => n.clone(),
            (None, Some(i)) => format!("rs-{i}"),
            (None, None) => "ringstack-net".to_string(),
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let core2 = core.clone();
        std::thread::Builder::new().name(name).spawn(move || {
            match start(self, address, core2, loop_opts) {
                Ok((rt, info)) => {
                    let _ = tx.send(Ok(info));
                    rt.run();
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })?;
        let info = rx
            .recv()
            .map_err(|_| io::Error::other("NetStack: the stack thread ended while starting"))??;
        Ok(NetStack {
            h: Arc::new(Handle { core, info }),
        })
    }
}

/// On the stack thread: open the device and build the stack.
fn start(
    b: Builder,
    address: Ipv4Cidr,
    core: Arc<Core>,
    opts: LoopOpts,
) -> io::Result<(Runtime, Info)> {
    if let Some(cpu) = b.cpu {
        dev::sys::pin_current_thread(cpu)?;
    }
    if let Some(ns) = &b.netns {
        dev::host::enter_netns(ns)?;
    }
    let dev = match (b.device, &b.interface) {
        (Some(open), _) => open()?,
        (None, Some(iface)) => {
            let mut o = b.open;
            o.xdp.busy_poll |= b.busy_poll;
            dev::open::open(iface, b.driver, &o)?
        }
        (None, None) => unreachable!("checked by spawn"),
    };
    let caps = dev.caps();
    let seed = random_seed();
    let mac = b
        .mac
        .or(caps.mac.map(MacAddr))
        .unwrap_or(MacAddr([0x02, seed[0], seed[1], seed[2], seed[3], seed[4]]));
    let mtu = match b.mtu {
        Some(m) if m > caps.mtu => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("NetStack: mtu {m} is larger than the device's {}", caps.mtu),
            ))
        }
        Some(m) => m,
        None => caps.mtu,
    };
    let mut config = Config::new(mac, address);
    config.gateway = b.gateway;
    config.mtu = mtu;
    config.seed = seed;
    config.rx_batch = caps.rx_batch.max(1);
    if let Some(cc) = b.cc {
        config.tcp.cc = cc;
    }
    if let Some(f) = b.configure {
        f(&mut config);
    }
    let stack = Stack::new(config)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("NetStack: {e}")))?;
    tracing::info!(driver = %caps.kind, %mac, %address, mtu, "ringstack::net: stack up");
    let info = Info {
        mac,
        address,
        mtu,
        device: caps.kind,
    };
    Ok((Runtime::new(stack, dev, core, opts), info))
}

fn random_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut seed);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    for (i, b) in t.to_le_bytes().iter().enumerate() {
        seed[i] ^= b;
    }
    seed
}

#[derive(Debug, Clone)]
struct Info {
    mac: MacAddr,
    address: Ipv4Cidr,
    mtu: usize,
    device: String,
}

struct Handle {
    core: Arc<Core>,
    info: Info,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // The last handle: the stack thread finishes what closed sockets
        // left and exits.
        self.core
            .stop
            .store(true, std::sync::atomic::Ordering::Release);
        self.core.kick();
    }
}

/// A ringstack running on a thread of its own; sockets are made with it
/// ([`TcpListener::bind`], [`TcpStream::connect`], [`UdpSocket::bind`]).
///
/// Cheap to clone: every clone and every socket is a handle to the same
/// stack, which stops when the last one is dropped.
#[derive(Clone)]
pub struct NetStack {
    h: Arc<Handle>,
}

impl fmt::Debug for NetStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetStack")
            .field("address", &self.h.info.address)
            .field("mac", &self.h.info.mac)
            .field("device", &self.h.info.device)
            .finish()
    }
}

/// Counters of a running stack, from [`NetStack::status`].
#[derive(Debug, Clone)]
pub struct Status {
    /// Sockets the stack thread holds: open ones, and closed ones still
    /// handing their last bytes to TCP.
    pub sockets: usize,
    /// TCP connections in any state, TIME-WAIT included.
    pub tcp_connections: usize,
    /// The stack's counters.
    pub stats: Stats,
    /// The device's counters.
    pub device: DeviceStats,
}

impl NetStack {
    /// Start configuring a stack.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The stack's MAC address.
    pub fn mac(&self) -> MacAddr {
        self.h.info.mac
    }

    /// The stack's address and subnet.
    pub fn address(&self) -> Ipv4Cidr {
        self.h.info.address
    }

    /// The IP MTU.
    pub fn mtu(&self) -> usize {
        self.h.info.mtu
    }

    /// The driver in use ("xdp/skb/copy", "packet", "tap" ...).
    pub fn device_kind(&self) -> &str {
        &self.h.info.device
    }

    /// Ask the stack thread for its counters.
    pub fn status(&self) -> io::Result<Status> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.core().submit(core::Cmd::Status(tx));
        // A stack thread that ended after our push never sees it; one that
        // ends later drops it with the queue, which ends `recv`.
        if self.core().is_dead() {
            return Err(self.core().dead_error());
        }
        rx.recv().map_err(|_| self.core().dead_error())
    }

    pub(crate) fn core(&self) -> &Core {
        &self.h.core
    }
}

/// The IPv4 addresses `addr` resolves to, in order; IPv6 ones become an
/// `Unsupported` error for the caller to report if nothing else works.
pub(crate) fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<io::Result<SocketAddrV4>>> {
    Ok(addr
        .to_socket_addrs()?
        .map(|a| match a {
            SocketAddr::V4(a) => Ok(a),
            SocketAddr::V6(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "ringstack is IPv4 only",
            )),
        })
        .collect())
}

/// Try `f` on each address in turn, as std does; the last error if none
/// works.
pub(crate) fn each_addr<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(SocketAddrV4) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in resolve(addr)? {
        match a.and_then(&mut f) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}
