//! Async sockets for tokio (feature `tokio`): [`TcpListener`],
//! [`TcpStream`] (with [`AsyncRead`] and [`AsyncWrite`]) and [`UdpSocket`],
//! in the shape of `tokio::net`'s, with the stack as the first argument of
//! the constructors.
//!
//! They need no tokio reactor: the stack thread wakes the task's waker
//! when the socket changes, so they work from any runtime (current-thread
//! or multi-thread) and from plain futures executors.
//!
//! ```no_run
//! use ringstack::net::{tokio::TcpListener, NetStack};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # async fn serve(net: NetStack) -> std::io::Result<()> {
//! let listener = TcpListener::bind(&net, "0.0.0.0:7").await?;
//! loop {
//!     let (mut stream, _) = listener.accept().await?;
//!     tokio::spawn(async move {
//!         let mut buf = [0u8; 4096];
//!         while let Ok(n) = stream.read(&mut buf).await {
//!             if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
//!                 break;
//!             }
//!         }
//!     });
//! }
//! # }
//! ```

use super::core::{Cmd, ListenBody, Phase, Sock, UdpBody};
use super::tcp::{take_err, ListenInner, StreamInner};
use super::udp::{check_datagram, first_addr, UdpInner};
use super::{resolve, NetStack};
use core::fmt;
use core::net::{SocketAddr, SocketAddrV4};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::net::{Shutdown, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A TCP listener, like `tokio::net::TcpListener`.
pub struct TcpListener {
    inner: Arc<ListenInner>,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("local", &self.inner.sock.lock().b.local)
            .finish()
    }
}

impl TcpListener {
    /// Listen on `addr` (the first address that works).
    pub async fn bind(net: &NetStack, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let mut last = None;
        for a in resolve(addr)? {
            let r = match a {
                Ok(a) => TcpListener::bind_one(net, a).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(l) => return Ok(l),
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

    async fn bind_one(net: &NetStack, a: SocketAddrV4) -> io::Result<TcpListener> {
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
        poll_fn(|cx| {
            l.inner.sock.poll_op(core, cx, |st| match st.b.phase {
                Phase::Pending => Poll::Pending,
                Phase::Open => Poll::Ready(Ok(())),
                Phase::Failed => Poll::Ready(Err(st
                    .b
                    .err
                    .take()
                    .map_or_else(|| io::ErrorKind::NotConnected.into(), |f| f.to_io()))),
            })
        })
        .await?;
        Ok(l)
    }

    /// Wait for a connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Poll for a connection.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let net = &self.inner.net;
        let mut more = false;
        let r = self.inner.sock.poll_op(net.core(), cx, |st| {
            super::TcpListener::accept_locked(net, st, &mut more)
        });
        if more {
            self.inner.sock.mark_dirty(net.core());
        }
        r.map_ok(|(s, a)| (TcpStream { inner: s.inner }, a))
    }

    /// The address listened on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner
            .sock
            .lock()
            .b
            .local
            .map(SocketAddr::V4)
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    /// The blocking listener on the same socket.
    pub fn into_std(self) -> super::TcpListener {
        super::TcpListener { inner: self.inner }
    }

    /// An async listener on a blocking one's socket.
    pub fn from_std(l: super::TcpListener) -> TcpListener {
        TcpListener { inner: l.inner }
    }
}

/// A TCP connection, like `tokio::net::TcpStream`.
pub struct TcpStream {
    inner: Arc<StreamInner>,
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
    /// Open a connection to `addr`, trying each address in turn.
    pub async fn connect(net: &NetStack, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for a in resolve(addr)? {
            let r = match a {
                Ok(a) => TcpStream::connect_one(net, a).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(s) => return Ok(s),
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

    async fn connect_one(net: &NetStack, a: SocketAddrV4) -> io::Result<TcpStream> {
        let s = TcpStream {
            inner: super::TcpStream::start(net, a).inner,
        };
        poll_fn(|cx| {
            s.inner.sock.poll_op(net.core(), cx, |st| match st.b.phase {
                Phase::Pending => Poll::Pending,
                Phase::Open => Poll::Ready(Ok(())),
                Phase::Failed => Poll::Ready(Err(take_err(st))),
            })
        })
        .await?;
        Ok(s)
    }

    fn blocking(&self) -> super::TcpStream {
        super::TcpStream {
            inner: self.inner.clone(),
        }
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.blocking().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.blocking().local_addr()
    }

    /// Turn Nagle's algorithm off (`true`) or on.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.blocking().set_nodelay(nodelay)
    }

    /// Whether Nagle's algorithm is off.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.blocking().nodelay()
    }

    /// The error that ended the connection, if not reported yet.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.blocking().take_error()
    }

    /// The blocking stream on the same connection.
    pub fn into_std(self) -> super::TcpStream {
        super::TcpStream { inner: self.inner }
    }

    /// An async stream on a blocking one's connection.
    pub fn from_std(s: super::TcpStream) -> TcpStream {
        TcpStream { inner: s.inner }
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let sock = &self.inner.sock;
        let core = self.inner.net.core();
        let mut more = false;
        let r = sock.poll_op(core, cx, |st| {
            let r = super::TcpStream::read_locked(st, buf.initialize_unfilled());
            if r.is_ready() {
                more = std::mem::take(&mut st.b.rx_more);
            }
            r
        });
        if more {
            sock.mark_dirty(core);
        }
        match r {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let sock = &self.inner.sock;
        let core = self.inner.net.core();
        let r = sock.poll_op(core, cx, |st| super::TcpStream::write_locked(st, buf));
        if matches!(r, Poll::Ready(Ok(_))) {
            sock.mark_dirty(core);
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Sends the FIN after the bytes already written.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.blocking().shutdown(Shutdown::Write))
    }
}

/// A UDP socket, like `tokio::net::UdpSocket`.
pub struct UdpSocket {
    inner: Arc<UdpInner>,
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

impl UdpSocket {
    /// Bind to `addr` (port 0: a random free port).
    pub async fn bind(net: &NetStack, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let a = first_addr(addr, "could not resolve to any addresses")?;
        let core = net.core();
        let sock = Arc::new(Sock::new(
            core.next_id(),
            UdpBody {
                phase: Phase::Pending,
                local: None,
                peer: None,
                rx: VecDeque::new(),
                tx: VecDeque::new(),
                cap: core.opts.udp_queue,
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
        poll_fn(|cx| {
            s.inner.sock.poll_op(core, cx, |st| match st.b.phase {
                Phase::Pending => Poll::Pending,
                Phase::Open => Poll::Ready(Ok(())),
                Phase::Failed => Poll::Ready(Err(super::udp::take_err(st))),
            })
        })
        .await?;
        Ok(s)
    }

    fn blocking(&self) -> super::UdpSocket {
        super::UdpSocket {
            inner: self.inner.clone(),
        }
    }

    /// Send one datagram to `addr` (its first address).
    pub async fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let dst = first_addr(addr, "no addresses to send data to")?;
        poll_fn(|cx| self.poll_send_v4(cx, buf, dst)).await
    }

    /// Poll to send one datagram to `target`.
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        match resolve(target).and_then(|mut v| v.remove(0)) {
            Ok(dst) => self.poll_send_v4(cx, buf, dst),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_send_v4(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        dst: SocketAddrV4,
    ) -> Poll<io::Result<usize>> {
        check_datagram(buf, dst)?;
        let sock: &Sock<UdpBody> = &self.inner.sock;
        let core = self.inner.net.core();
        let r = sock.poll_op(core, cx, |st| super::UdpSocket::send_locked(st, buf, dst));
        if matches!(r, Poll::Ready(Ok(_))) {
            sock.mark_dirty(core);
        }
        r
    }

    /// Receive one datagram and its sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_fn(|cx| {
            self.inner.sock.poll_op(self.inner.net.core(), cx, |st| {
                super::UdpSocket::recv_locked(st, buf, false)
            })
        })
        .await
    }

    /// Poll to receive one datagram into `buf`; returns its sender.
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        let r = self.inner.sock.poll_op(self.inner.net.core(), cx, |st| {
            super::UdpSocket::recv_locked(st, buf.initialize_unfilled(), false)
        });
        r.map_ok(|(n, from)| {
            buf.advance(n);
            from
        })
    }

    /// Set the default destination and receive only from it.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        self.blocking().connect(addr)
    }

    /// Send to the connected address.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let peer = self.inner.sock.lock().b.peer;
        match peer {
            Some(p) => poll_fn(|cx| self.poll_send_v4(cx, buf, p)).await,
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Receive from the connected address.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_from(buf).await.map(|(n, _)| n)
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.blocking().local_addr()
    }

    /// The connected address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.blocking().peer_addr()
    }

    /// A pending error, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.blocking().take_error()
    }

    /// The blocking socket.
    pub fn into_std(self) -> super::UdpSocket {
        super::UdpSocket { inner: self.inner }
    }

    /// An async socket on a blocking one.
    pub fn from_std(s: super::UdpSocket) -> UdpSocket {
        UdpSocket { inner: s.inner }
    }
}
