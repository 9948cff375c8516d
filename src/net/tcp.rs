//! `TcpListener` and `TcpStream` in the shape of `std::net`'s.

use super::core::{Cmd, ListenBody, Phase, Sock, State, StreamBody, Wait};
use super::{each_addr, NetStack};
use core::fmt;
use core::net::{SocketAddr, SocketAddrV4};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, ToSocketAddrs};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// A stream and the stack it belongs to; closing happens when the last
/// clone ([`TcpStream::try_clone`]) is dropped.
pub(crate) struct StreamInner {
    pub(crate) net: NetStack,
    pub(crate) sock: Arc<Sock<StreamBody>>,
}

impl Drop for StreamInner {
    fn drop(&mut self) {
        self.net.core().submit(Cmd::Close(self.sock.id));
    }
}

pub(crate) struct ListenInner {
    pub(crate) net: NetStack,
    pub(crate) sock: Arc<Sock<ListenBody>>,
}

impl Drop for ListenInner {
    fn drop(&mut self) {
        self.net.core().submit(Cmd::Close(self.sock.id));
    }
}

fn bad_timeout() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "cannot set a 0 duration timeout",
    )
}

fn not_connected() -> io::Error {
    io::ErrorKind::NotConnected.into()
}

/// A TCP connection of a [`NetStack`], like [`std::net::TcpStream`].
///
/// Reads and writes block unless [`TcpStream::set_nonblocking`] says
/// otherwise; `Read` and `Write` are implemented for `&TcpStream` too, so
/// one thread can read while another writes.
pub struct TcpStream {
    pub(crate) inner: Arc<StreamInner>,
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.sock.lock();
        f.debug_struct("TcpStream")
            .field("local", &st.b.local)
            .field("peer", &st.b.peer)
            .finish()
    }
}

impl TcpStream {
    /// Open a connection to `addr`, trying each address in turn, and wait
    /// for the handshake. `ConnectionRefused` when the peer answers with a
    /// reset, `TimedOut` when SYN retransmissions run out.
    pub fn connect(net: &NetStack, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_until(net, a, None))
    }

    /// Like [`TcpStream::connect`] to one address, giving up with
    /// `TimedOut` after `timeout` (which may not be zero).
    pub fn connect_timeout(
        net: &NetStack,
        addr: &SocketAddr,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(bad_timeout());
        }
        let a = super::resolve(*addr)?.remove(0)?;
        TcpStream::connect_until(net, a, Some(Instant::now() + timeout))
    }

    /// Start connecting to one address and return at once, as mio's
    /// `TcpStream::connect` does: the stream is non-blocking, becomes
    /// writable when the handshake completes or fails, and then
    /// [`TcpStream::peer_addr`] or [`TcpStream::take_error`] tell which.
    pub fn connect_nonblocking(net: &NetStack, addr: SocketAddr) -> io::Result<TcpStream> {
        let a = super::resolve(addr)?.remove(0)?;
        let s = TcpStream::start(net, a);
        s.inner.sock.lock().nonblocking = true;
        Ok(s)
    }

    pub(crate) fn start(net: &NetStack, addr: SocketAddrV4) -> TcpStream {
        let core = net.core();
        let body = StreamBody::new(core.opts.stream_buffer, Phase::Pending);
        let sock = Arc::new(Sock::new(core.next_id(), body));
        core.submit(Cmd::Connect(sock.clone(), addr));
        TcpStream {
            inner: Arc::new(StreamInner {
                net: net.clone(),
                sock,
            }),
        }
    }

    fn connect_until(
        net: &NetStack,
        addr: SocketAddrV4,
        deadline: Option<Instant>,
    ) -> io::Result<TcpStream> {
        let s = TcpStream::start(net, addr);
        s.inner
            .sock
            .block_on(net.core(), Wait::Until(deadline), |st| match st.b.phase {
                Phase::Pending => Poll::Pending,
                Phase::Open => Poll::Ready(Ok(())),
                Phase::Failed => Poll::Ready(Err(take_err(st))),
            })?;
        Ok(s)
    }

    pub(crate) fn from_accepted(net: &NetStack, sock: Arc<Sock<StreamBody>>) -> TcpStream {
        TcpStream {
            inner: Arc::new(StreamInner {
                net: net.clone(),
                sock,
            }),
        }
    }

    fn sock(&self) -> &Sock<StreamBody> {
        &self.inner.sock
    }

    fn core(&self) -> &super::core::Core {
        self.inner.net.core()
    }

    /// The remote address; `NotConnected` before the handshake completes.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        let st = self.sock().lock();
        match (st.b.phase, st.b.peer) {
            (Phase::Open, Some(p)) => Ok(SocketAddr::V4(p)),
            _ => Err(not_connected()),
        }
    }

    /// The local address, known once the stack thread has taken the
    /// connect request (this waits for that, a few microseconds).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock().block_on(self.core(), Wait::Until(None), |st| {
            match (st.b.local, st.b.phase) {
                (Some(l), _) => Poll::Ready(Ok(SocketAddr::V4(l))),
                (None, Phase::Failed) => Poll::Ready(Err(not_connected())),
                _ => Poll::Pending,
            }
        })
    }

    /// Shut down reading, writing or both. Writing: the FIN follows the
    /// bytes already written. Reading: reads return 0 from now on and
    /// what arrives is dropped.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let mut st = self.sock().lock();
        if st.b.phase != Phase::Open {
            return Err(not_connected());
        }
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            st.b.shut_rd = true;
            st.b.rx.clear();
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            st.b.shut_wr = true;
        }
        Sock::settle(&mut st);
        drop(st);
        self.sock().mark_dirty(self.core());
        Ok(())
    }

    /// Turn Nagle's algorithm off (`true`) or on (the default).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let mut st = self.sock().lock();
        st.b.nodelay = nodelay;
        st.b.nodelay_req = Some(nodelay);
        drop(st);
        self.sock().mark_dirty(self.core());
        Ok(())
    }

    /// Whether Nagle's algorithm is off.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.sock().lock().b.nodelay)
    }

    /// Make reads fail with `WouldBlock` after `dur` without data (`None`:
    /// wait forever). A zero duration is `InvalidInput`.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        if dur.is_some_and(|d| d.is_zero()) {
            return Err(bad_timeout());
        }
        self.sock().lock().read_timeout = dur;
        Ok(())
    }

    /// Make writes fail with `WouldBlock` after `dur` without room.
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
    /// Shared by every clone, like the flag of a duplicated descriptor.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        let mut st = self.sock().lock();
        st.nonblocking = nonblocking;
        Ok(())
    }

    /// Another handle to the same connection; it closes when the last one
    /// is dropped.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: self.inner.clone(),
        })
    }

    /// The error that ended the connection, if it has not been reported
    /// by another call yet.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let mut st = self.sock().lock();
        Ok(st.b.err.take().map(|f| {
            st.b.err_reported = true;
            f.to_io()
        }))
    }

    /// Read without consuming.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock().block_on(self.core(), Wait::Read, |st| {
            if !st.b.rx.is_empty() {
                return Poll::Ready(Ok(st.b.rx.peek_into(buf)));
            }
            read_end(st)
        })
    }

    pub(crate) fn read_locked(
        st: &mut State<StreamBody>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if !st.b.rx.is_empty() && !st.b.shut_rd {
            return Poll::Ready(Ok(st.b.rx.pop_into(buf)));
        }
        read_end(st)
    }

    pub(crate) fn write_locked(st: &mut State<StreamBody>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if st.b.err.is_some() {
            return Poll::Ready(Err(take_err(st)));
        }
        if st.b.err_reported || st.b.shut_wr || st.b.phase == Phase::Failed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if st.b.phase == Phase::Pending {
            return Poll::Pending;
        }
        match st.b.tx.push(buf) {
            0 => Poll::Pending,
            n => Poll::Ready(Ok(n)),
        }
    }

    fn do_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut more = false;
        let r = self.sock().block_on(self.core(), Wait::Read, |st| {
            let r = TcpStream::read_locked(st, buf);
            if r.is_ready() {
                more = std::mem::take(&mut st.b.rx_more);
            }
            r
        });
        if more {
            self.sock().mark_dirty(self.core());
        }
        r
    }

    fn do_write(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let r = self.sock().block_on(self.core(), Wait::Write, |st| {
            TcpStream::write_locked(st, buf)
        });
        if matches!(r, Ok(n) if n > 0) {
            self.sock().mark_dirty(self.core());
        }
        r
    }
}

/// Reading found no bytes: the end of the stream, an error, or wait.
fn read_end(st: &mut State<StreamBody>) -> Poll<io::Result<usize>> {
    if st.b.shut_rd || st.b.rx_eof || st.b.err_reported {
        return Poll::Ready(Ok(0));
    }
    if st.b.err.is_some() || st.b.phase == Phase::Failed {
        return Poll::Ready(Err(take_err(st)));
    }
    Poll::Pending
}

/// Report the stored error once; afterwards reads see the end of the
/// stream and writes a broken pipe, as on Linux.
pub(crate) fn take_err(st: &mut State<StreamBody>) -> io::Error {
    st.b.err_reported = true;
    match st.b.err.take() {
        Some(f) => f.to_io(),
        None => not_connected(),
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.do_read(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.do_read(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.do_write(buf)
    }
    /// Like std's: nothing to do, bytes leave as soon as TCP allows.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.do_write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A TCP listener of a [`NetStack`], like [`std::net::TcpListener`].
pub struct TcpListener {
    pub(crate) inner: Arc<ListenInner>,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("local", &self.inner.sock.lock().b.local)
            .finish()
    }
}

impl TcpListener {
    /// Listen on `addr` (0.0.0.0 for every address of the stack; port 0
    /// picks a free ephemeral port). `AddrInUse` if the port is taken,
    /// `AddrNotAvailable` if the address is not the stack's.
    pub fn bind(net: &NetStack, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            let core = net.core();
            let sock = Arc::new(Sock::new(
                core.next_id(),
                ListenBody {
                    phase: Phase::Pending,
                    local: None,
                    err: None,
                    queue: VecDeque::new(),
                    backlog: core.opts.backlog,
                },
            ));
            core.submit(Cmd::Listen(sock.clone(), a));
            let l = TcpListener {
                inner: Arc::new(ListenInner {
                    net: net.clone(),
                    sock,
                }),
            };
            l.inner
                .sock
                .block_on(core, Wait::Until(None), |st| match st.b.phase {
                    Phase::Pending => Poll::Pending,
                    Phase::Open => Poll::Ready(Ok(())),
                    Phase::Failed => Poll::Ready(Err(st
                        .b
                        .err
                        .take()
                        .map_or_else(not_connected, |f| f.to_io()))),
                })?;
            Ok(l)
        })
    }

    pub(crate) fn accept_locked(
        net: &NetStack,
        st: &mut State<ListenBody>,
        more: &mut bool,
    ) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        if let Some(f) = st.b.err.take() {
            return Poll::Ready(Err(f.to_io()));
        }
        let full = st.b.queue.len() >= st.b.backlog;
        match st.b.queue.pop_front() {
            Some((sock, peer)) => {
                *more = full;
                Poll::Ready(Ok((
                    TcpStream::from_accepted(net, sock),
                    SocketAddr::V4(peer),
                )))
            }
            None => Poll::Pending,
        }
    }

    /// Wait for a connection (or fail with `WouldBlock` in non-blocking
    /// mode). The stream is in blocking mode whatever the listener's is.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let net = &self.inner.net;
        let mut more = false;
        let r = self.inner.sock.block_on(net.core(), Wait::Read, |st| {
            TcpListener::accept_locked(net, st, &mut more)
        });
        if more {
            // The stack thread stopped taking connections at the backlog.
            self.inner.sock.mark_dirty(net.core());
        }
        r
    }

    /// An endless iterator of [`TcpListener::accept`]'s streams.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address listened on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner
            .sock
            .lock()
            .b
            .local
            .map(SocketAddr::V4)
            .ok_or_else(not_connected)
    }

    /// Non-blocking mode for `accept`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.sock.lock().nonblocking = nonblocking;
        Ok(())
    }

    /// Another handle to the same listener.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: self.inner.clone(),
        })
    }

    /// A pending error, if any (never, today: a listener has none to keep).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self.inner.sock.lock().b.err.take().map(|f| f.to_io()))
    }
}

/// Accepted streams, from [`TcpListener::incoming`]; never ends.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}
