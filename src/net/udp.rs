//! `UdpSocket` in the shape of `std::net`'s.

use super::core::{Cmd, Phase, Sock, State, UdpBody, Wait};
use super::{each_addr, resolve, NetStack};
use core::fmt;
use core::net::{SocketAddr, SocketAddrV4};
use std::collections::VecDeque;
use std::io;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// The largest UDP payload in one IPv4 datagram.
const MAX_PAYLOAD: usize = 65535 - 20 - 8;

pub(crate) struct UdpInner {
    pub(crate) net: NetStack,
    pub(crate) sock: Arc<Sock<UdpBody>>,
}

impl Drop for UdpInner {
    fn drop(&mut self) {
        self.net.core().submit(Cmd::Close(self.sock.id));
    }
}

/// A UDP socket of a [`NetStack`], like [`std::net::UdpSocket`].
///
/// `send_to` queues the datagram for the stack thread and returns; errors
/// the stack finds later (no route, an ICMP error on a connected socket)
/// are reported by the next call, as the kernel reports ICMP errors.
pub struct UdpSocket {
    pub(crate) inner: Arc<UdpInner>,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.sock.lock();
        f.debug_struct("UdpSocket")
            .field("local", &st.b.local)
            .field("peer", &st.b.peer)
            .finish()
    }
}

fn bad_timeout() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "cannot set a 0 duration timeout",
    )
}

impl UdpSocket {
    /// Bind to `addr` (0.0.0.0 for every address of the stack; port 0
    /// picks a random free ephemeral port).
    pub fn bind(net: &NetStack, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        each_addr(addr, |a| {
            let core = net.core();
            let cap = core.opts.udp_queue;
            let sock = Arc::new(Sock::new(
                core.next_id(),
                UdpBody {
                    phase: Phase::Pending,
                    local: None,
                    peer: None,
                    rx: VecDeque::new(),
                    tx: VecDeque::new(),
                    cap,
                    pool: Vec::new(),
                    err: None,
                },
            ));
            core.submit(Cmd::UdpBind(sock.clone(), a));
            let s = UdpSocket {
                inner: Arc::new(UdpInner {
                    net: net.clone(),
                    sock,
                }),
            };
            s.sock()
                .block_on(core, Wait::Until(None), |st| match st.b.phase {
                    Phase::Pending => Poll::Pending,
                    Phase::Open => Poll::Ready(Ok(())),
                    Phase::Failed => Poll::Ready(Err(take_err(st))),
                })?;
            Ok(s)
        })
    }

    fn sock(&self) -> &Sock<UdpBody> {
        &self.inner.sock
    }

    fn core(&self) -> &super::core::Core {
        self.inner.net.core()
    }

    /// Queue `buf` as one datagram to `addr` (its first address).
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let dst = first_addr(addr, "no addresses to send data to")?;
        self.send_v4(buf, dst)
    }

    fn send_v4(&self, buf: &[u8], dst: SocketAddrV4) -> io::Result<usize> {
        check_datagram(buf, dst)?;
        let r = self.sock().block_on(self.core(), Wait::Write, |st| {
            UdpSocket::send_locked(st, buf, dst)
        });
        if r.is_ok() {
            self.sock().mark_dirty(self.core());
        }
        r
    }

    pub(crate) fn send_locked(
        st: &mut State<UdpBody>,
        buf: &[u8],
        dst: SocketAddrV4,
    ) -> Poll<io::Result<usize>> {
        if st.b.err.is_some() {
            return Poll::Ready(Err(take_err(st)));
        }
        if st.b.tx.len() >= st.b.cap {
            return Poll::Pending;
        }
        let v = st.b.buffer(buf);
        st.b.tx.push_back((dst, v));
        Poll::Ready(Ok(buf.len()))
    }

    /// Take the next datagram: its length (truncated to `buf`, the rest
    /// discarded, as recvfrom(2) does) and sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock().block_on(self.core(), Wait::Read, |st| {
            UdpSocket::recv_locked(st, buf, false)
        })
    }

    /// Like [`UdpSocket::recv_from`], leaving the datagram queued.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock().block_on(self.core(), Wait::Read, |st| {
            UdpSocket::recv_locked(st, buf, true)
        })
    }

    pub(crate) fn recv_locked(
        st: &mut State<UdpBody>,
        buf: &mut [u8],
        peek: bool,
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        loop {
            let Some((from, data)) = st.b.rx.front() else {
                if st.b.err.is_some() {
                    return Poll::Ready(Err(take_err(st)));
                }
                return Poll::Pending;
            };
            let from = *from;
            // Queued before `connect` from another source: dropped, as
            // the kernel would not have queued it.
            if st.b.peer.is_some_and(|p| p != from) {
                let (_, v) = st.b.rx.pop_front().expect("front exists");
                st.b.recycle(v);
                continue;
            }
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            if !peek {
                let (_, v) = st.b.rx.pop_front().expect("front exists");
                st.b.recycle(v);
            }
            return Poll::Ready(Ok((n, SocketAddr::V4(from))));
        }
    }

    /// Set the default destination and receive only from it.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let peer = first_addr(addr, "no addresses to connect to")?;
        if peer.port() == 0 || peer.ip().is_unspecified() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot connect to an unspecified address or port 0",
            ));
        }
        self.sock().lock().b.peer = Some(peer);
        Ok(())
    }

    /// Send to the connected address; `NotConnected` without one.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let peer = self.sock().lock().b.peer;
        match peer {
            Some(p) => self.send_v4(buf, p),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Receive from the connected address.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_from(buf).map(|(n, _)| n)
    }

    /// Like [`UdpSocket::recv`], leaving the datagram queued.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.peek_from(buf).map(|(n, _)| n)
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock()
            .lock()
            .b
            .local
            .map(SocketAddr::V4)
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    /// The connected address; `NotConnected` without one.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock()
            .lock()
            .b
            .peer
            .map(SocketAddr::V4)
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    /// Make receives fail with `WouldBlock` after `dur` (`None`: wait
    /// forever). A zero duration is `InvalidInput`.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        if dur.is_some_and(|d| d.is_zero()) {
            return Err(bad_timeout());
        }
        self.sock().lock().read_timeout = dur;
        Ok(())
    }

    /// Make sends fail with `WouldBlock` after `dur` with the queue full.
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        if dur.is_some_and(|d| d.is_zero()) {
            return Err(bad_timeout());
        }
        self.sock().lock().write_timeout = dur;
        Ok(())
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock().lock().read_timeout)
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock().lock().write_timeout)
    }

    /// Non-blocking mode: calls that would wait fail with `WouldBlock`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock().lock().nonblocking = nonblocking;
        Ok(())
    }

    /// Another handle to the same socket.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            inner: self.inner.clone(),
        })
    }

    /// A pending error (say, from an ICMP port unreachable), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self.sock().lock().b.err.take().map(|f| f.to_io()))
    }
}

pub(crate) fn take_err(st: &mut State<UdpBody>) -> io::Error {
    match st.b.err.take() {
        Some(f) => f.to_io(),
        None => io::ErrorKind::NotConnected.into(),
    }
}

pub(crate) fn first_addr(addr: impl ToSocketAddrs, none: &'static str) -> io::Result<SocketAddrV4> {
    match resolve(addr)?.into_iter().next() {
        Some(a) => a,
        None => Err(io::Error::new(io::ErrorKind::InvalidInput, none)),
    }
}

/// What the stack would refuse later, refused now.
pub(crate) fn check_datagram(buf: &[u8], dst: SocketAddrV4) -> io::Result<()> {
    if buf.len() > MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "message too long for one datagram",
        ));
    }
    let ip = dst.ip();
    if dst.port() == 0 || ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "destination is port 0, or an unspecified, multicast or loopback address",
        ));
    }
    Ok(())
}
