//! What the stack thread and the application threads share: the command
//! queue, the stack thread's wake-up, and per socket a [`Sock`]: its
//! buffers and state behind a mutex, with every way a waiting thread or
//! task can be told that something changed (a condition variable for
//! blocking calls, wakers for async tasks, two eventfds mirroring the
//! socket's readiness for mio).
//!
//! The protocol:
//!
//! - An application thread changes a socket's state under its mutex (takes
//!   bytes, adds bytes, asks for a FIN) and, when the stack thread has
//!   work to do, marks the socket dirty: the first mark pushes
//!   `Cmd::Service(id)` onto the lock-free queue, later ones are absorbed
//!   until the stack thread clears the mark. [`Core::submit`] writes to the
//!   stack thread's eventfd only if that thread said it is going to sleep;
//!   a spinning stack thread finds the command without a syscall.
//! - The stack thread services the socket (moves bytes between the socket
//!   and TCP's rings, records connection state and errors) under the same
//!   mutex and calls [`Sock::notify`] when anything changed: the condition
//!   variable is signalled only if a thread waits on it, wakers are woken,
//!   mio's eventfds are set to the new readiness, and an event counter is
//!   bumped for threads that spin before they block.

use super::ring::ByteRing;
use crate::dev::notify::Notifier;
use crate::stack;
use crate::tcp::TcpError;
use core::net::SocketAddrV4;
use crossbeam_queue::SegQueue;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Why an operation failed, kept until it is reported; converted to an
/// [`io::Error`] with std's kinds by [`Fault::to_io`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Tcp(TcpError),
    Stack(stack::Error),
    Kind(io::ErrorKind, &'static str),
}

impl Fault {
    pub(crate) fn kind(self) -> io::ErrorKind {
        use io::ErrorKind as K;
        match self {
            Fault::Tcp(e) => match e {
                TcpError::WouldBlock => K::WouldBlock,
                TcpError::InvalidHandle | TcpError::InvalidState => K::NotConnected,
                TcpError::AddrInUse => K::AddrInUse,
                TcpError::NoFreePorts => K::AddrNotAvailable,
                TcpError::TooManyConnections => K::Other,
                TcpError::ConnectionRefused => K::ConnectionRefused,
                TcpError::ConnectionReset => K::ConnectionReset,
                TcpError::TimedOut | TcpError::ExcessiveRetransmissions => K::TimedOut,
                TcpError::NetUnreachable => K::NetworkUnreachable,
                TcpError::HostUnreachable => K::HostUnreachable,
                TcpError::InvalidArgument(_) => K::InvalidInput,
            },
            Fault::Stack(e) => match e {
                stack::Error::InvalidConfig(_) | stack::Error::InvalidArgument(_) => {
                    K::InvalidInput
                }
                stack::Error::MessageTooLong { .. } => K::InvalidInput,
                stack::Error::NoRoute(_) => K::NetworkUnreachable,
                stack::Error::AddrInUse(_) => K::AddrInUse,
                stack::Error::NoFreePorts => K::AddrNotAvailable,
                stack::Error::InvalidHandle => K::NotConnected,
                stack::Error::WouldBlock | stack::Error::Exhausted => K::WouldBlock,
                stack::Error::TooManySockets => K::Other,
                stack::Error::HostUnreachable(_) => K::HostUnreachable,
                // Destination unreachable: net, host, protocol, port.
                stack::Error::Icmp {
                    msg_type: 3, code, ..
                } => match code {
                    0 | 6 | 9 | 11 => K::NetworkUnreachable,
                    2 | 3 => K::ConnectionRefused,
                    _ => K::HostUnreachable,
                },
                stack::Error::Icmp { .. } => K::Other,
                stack::Error::NoDevice(_) => K::NetworkDown,
            },
            Fault::Kind(k, _) => k,
        }
    }

    pub(crate) fn to_io(self) -> io::Error {
        match self {
            Fault::Tcp(e) => io::Error::new(self.kind(), e),
            Fault::Stack(e) => io::Error::new(self.kind(), e),
            Fault::Kind(k, msg) => io::Error::new(k, msg),
        }
    }
}

/// What the application asks of the stack thread.
pub(crate) enum Cmd {
    Listen(Arc<Sock<ListenBody>>, SocketAddrV4),
    Connect(Arc<Sock<StreamBody>>, SocketAddrV4),
    UdpBind(Arc<Sock<UdpBody>>, SocketAddrV4),
    /// The socket has work for the stack thread (see [`Sock::mark_dirty`]).
    Service(u64),
    /// Every handle of the socket is gone.
    Close(u64),
    Status(std::sync::mpsc::Sender<super::Status>),
}

/// Tunables every socket of a stack shares.
#[derive(Debug, Clone)]
pub(crate) struct SockOpts {
    pub stream_buffer: usize,
    pub udp_queue: usize,
    pub backlog: usize,
    /// How long a blocking call spins on the socket's event counter before
    /// it sleeps on the condition variable.
    pub spin: Duration,
}

/// The state shared by the stack thread and every handle of one stack.
pub(crate) struct Core {
    cmds: SegQueue<Cmd>,
    notifier: Notifier,
    /// The stack thread is about to sleep or sleeping: wake it by eventfd.
    sleeping: AtomicBool,
    /// Every `NetStack` and socket is gone: finish and exit.
    pub(crate) stop: AtomicBool,
    /// The stack thread has ended (a device error or a panic).
    dead: AtomicBool,
    why_dead: Mutex<Option<Arc<str>>>,
    next_id: AtomicU64,
    pub(crate) opts: SockOpts,
}

impl Core {
    pub(crate) fn new(opts: SockOpts) -> io::Result<Core> {
        Ok(Core {
            cmds: SegQueue::new(),
            notifier: Notifier::new()?,
            sleeping: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            why_dead: Mutex::new(None),
            next_id: AtomicU64::new(1),
            opts,
        })
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Queue a command and wake the stack thread if it sleeps.
    pub(crate) fn submit(&self, cmd: Cmd) {
        self.cmds.push(cmd);
        self.kick();
    }

    /// Wake the stack thread if it sleeps or is about to.
    pub(crate) fn kick(&self) {
        // Pairs with the fence in `prepare_sleep`: either the stack thread
        // sees our command, or we see its flag and write the eventfd.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            self.notifier.notify();
        }
    }

    pub(crate) fn queue_is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    pub(crate) fn pop(&self) -> Option<Cmd> {
        self.cmds.pop()
    }

    /// The stack thread is going to sleep: true if it may (nothing queued,
    /// not stopping). [`Core::woke`] must follow either way.
    pub(crate) fn prepare_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        self.cmds.is_empty() && !self.stop.load(Ordering::Relaxed)
    }

    pub(crate) fn woke(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
        self.notifier.take();
    }

    pub(crate) fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    pub(crate) fn set_dead(&self, why: &str) {
        let mut w = self.why_dead.lock().unwrap_or_else(|e| e.into_inner());
        if w.is_none() {
            *w = Some(Arc::from(why));
        }
        self.dead.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    pub(crate) fn why_dead(&self) -> Arc<str> {
        let w = self.why_dead.lock().unwrap_or_else(|e| e.into_inner());
        w.clone().unwrap_or_else(|| Arc::from("stopped"))
    }

    pub(crate) fn dead_error(&self) -> io::Error {
        dead_error(&self.why_dead())
    }
}

pub(crate) fn dead_error(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        format!("the ringstack thread has ended: {why}"),
    )
}

/// Readiness as the application sees it, from a socket's body.
pub(crate) trait Body {
    /// A read (or accept) would not block.
    fn readable(&self) -> bool;
    /// A write would not block.
    fn writable(&self) -> bool;
}

/// Where a socket's setup stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The stack thread has not answered yet (bind), or the handshake
    /// goes on (connect).
    Pending,
    Open,
    Failed,
}

/// A TCP connection's side of the shared state.
#[derive(Debug)]
pub(crate) struct StreamBody {
    pub phase: Phase,
    pub local: Option<SocketAddrV4>,
    pub peer: Option<SocketAddrV4>,
    /// Received bytes the application has not read.
    pub rx: ByteRing,
    /// The peer's FIN has been read into `rx`'s end.
    pub rx_eof: bool,
    /// The stack thread stopped moving bytes because `rx` was full.
    pub rx_more: bool,
    /// Bytes the application wrote that TCP has not taken yet.
    pub tx: ByteRing,
    /// The error that ended the connection, until a call reports it.
    pub err: Option<Fault>,
    /// The error was reported: reads now see the end, writes a broken pipe.
    pub err_reported: bool,
    pub shut_rd: bool,
    pub shut_wr: bool,
    pub nodelay: bool,
    /// A Nagle setting for the stack thread to apply.
    pub nodelay_req: Option<bool>,
}

impl StreamBody {
    pub(crate) fn new(buffer: usize, phase: Phase) -> StreamBody {
        StreamBody {
            phase,
            local: None,
            peer: None,
            rx: ByteRing::new(buffer),
            rx_eof: false,
            rx_more: false,
            tx: ByteRing::new(buffer),
            err: None,
            err_reported: false,
            shut_rd: false,
            shut_wr: false,
            nodelay: false,
            nodelay_req: None,
        }
    }
}

impl Body for StreamBody {
    fn readable(&self) -> bool {
        !self.rx.is_empty()
            || self.rx_eof
            || self.shut_rd
            || self.err.is_some()
            || self.err_reported
            || self.phase == Phase::Failed
    }
    fn writable(&self) -> bool {
        (self.phase == Phase::Open && (self.tx.free() > 0 || self.shut_wr))
            || self.err.is_some()
            || self.err_reported
            || self.phase == Phase::Failed
    }
}

/// A listener's side: connections accepted by the stack thread, waiting
/// for the application's `accept`.
#[derive(Debug)]
pub(crate) struct ListenBody {
    pub phase: Phase,
    pub local: Option<SocketAddrV4>,
    pub err: Option<Fault>,
    pub queue: VecDeque<(Arc<Sock<StreamBody>>, SocketAddrV4)>,
    pub backlog: usize,
}

impl Body for ListenBody {
    fn readable(&self) -> bool {
        !self.queue.is_empty() || self.err.is_some() || self.phase == Phase::Failed
    }
    fn writable(&self) -> bool {
        false
    }
}

/// A UDP socket's side: datagrams both ways, with their buffers recycled.
#[derive(Debug)]
pub(crate) struct UdpBody {
    pub phase: Phase,
    pub local: Option<SocketAddrV4>,
    /// Set by `connect`: the only source received from and the default
    /// destination.
    pub peer: Option<SocketAddrV4>,
    pub rx: VecDeque<(SocketAddrV4, Vec<u8>)>,
    pub tx: VecDeque<(SocketAddrV4, Vec<u8>)>,
    /// Datagrams each queue holds at most.
    pub cap: usize,
    pub pool: Vec<Vec<u8>>,
    pub err: Option<Fault>,
}

impl UdpBody {
    /// A buffer holding a copy of `data`, from the pool if one is there.
    pub(crate) fn buffer(&mut self, data: &[u8]) -> Vec<u8> {
        let mut v = self.pool.pop().unwrap_or_default();
        v.clear();
        v.extend_from_slice(data);
        v
    }

    pub(crate) fn recycle(&mut self, v: Vec<u8>) {
        if self.pool.len() < self.cap {
            self.pool.push(v);
        }
    }
}

impl Body for UdpBody {
    fn readable(&self) -> bool {
        !self.rx.is_empty() || self.err.is_some() || self.phase == Phase::Failed
    }
    fn writable(&self) -> bool {
        self.tx.len() < self.cap || self.err.is_some() || self.phase == Phase::Failed
    }
}

/// The two eventfds of a socket registered with mio: `r` is readable while
/// the socket is, `w` writable while the socket is, so epoll's edge
/// triggering reports each change from not ready to ready.
#[derive(Debug)]
pub(crate) struct Mirror {
    pub r: Notifier,
    pub w: Notifier,
    r_on: bool,
    w_on: bool,
    #[cfg_attr(not(feature = "mio"), allow(dead_code))]
    pub r_registered: bool,
    #[cfg_attr(not(feature = "mio"), allow(dead_code))]
    pub w_registered: bool,
}

impl Mirror {
    #[cfg_attr(not(feature = "mio"), allow(dead_code))]
    pub(crate) fn new() -> io::Result<Mirror> {
        Ok(Mirror {
            r: Notifier::new()?,
            w: Notifier::new()?,
            r_on: false,
            w_on: true,
            r_registered: false,
            w_registered: false,
        })
    }

    /// Returns whether a descriptor became ready (an epoll waiter wakes).
    pub(crate) fn set(&mut self, readable: bool, writable: bool) -> bool {
        let woke = (readable && !self.r_on) || (writable && !self.w_on);
        if readable != self.r_on {
            if readable {
                self.r.notify();
            } else {
                self.r.take();
            }
            self.r_on = readable;
        }
        if writable != self.w_on {
            if writable {
                self.w.take();
            } else {
                let _ = self.w.add(Notifier::MAX);
            }
            self.w_on = writable;
        }
        woke
    }
}

/// The mutex-protected part of a [`Sock`].
#[derive(Debug)]
pub(crate) struct State<B> {
    pub b: B,
    pub nonblocking: bool,
    pub read_timeout: Option<Duration>,
    pub write_timeout: Option<Duration>,
    /// Threads waiting on the condition variable.
    waiters: u32,
    wakers: Vec<Waker>,
    pub mirror: Option<Mirror>,
    /// The stack thread has ended; every call fails with this.
    pub dead: Option<Arc<str>>,
}

/// How long a blocking call may wait.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// The socket's read timeout (`WouldBlock` when it passes, as on Linux).
    Read,
    /// The socket's write timeout.
    Write,
    /// Until the deadline (`TimedOut` when it passes), ignoring
    /// non-blocking mode: for answers the stack thread gives at once.
    Until(Option<Instant>),
}

/// One socket as both sides see it.
#[derive(Debug)]
pub(crate) struct Sock<B> {
    pub id: u64,
    state: Mutex<State<B>>,
    cond: Condvar,
    dirty: AtomicBool,
    /// Bumped by every [`Sock::notify`], for threads that spin.
    events: AtomicU64,
}

impl<B: Body> Sock<B> {
    pub(crate) fn new(id: u64, b: B) -> Sock<B> {
        Sock {
            id,
            state: Mutex::new(State {
                b,
                nonblocking: false,
                read_timeout: None,
                write_timeout: None,
                waiters: 0,
                wakers: Vec::new(),
                mirror: None,
                dead: None,
            }),
            cond: Condvar::new(),
            dirty: AtomicBool::new(false),
            events: AtomicU64::new(0),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State<B>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ask the stack thread to service this socket.
    pub(crate) fn mark_dirty(&self, core: &Core) {
        if !self.dirty.swap(true, Ordering::AcqRel) {
            core.submit(Cmd::Service(self.id));
        }
    }

    /// The stack thread starts servicing: changes made from now on need a
    /// new mark.
    pub(crate) fn clear_dirty(&self) {
        self.dirty.store(false, Ordering::Release);
    }

    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// The stack thread changed the state: wake whoever waits. Returns
    /// whether a thread or task was woken.
    pub(crate) fn notify(&self, st: &mut State<B>) -> bool {
        self.events.fetch_add(1, Ordering::Release);
        let mut woke = st.waiters > 0 || !st.wakers.is_empty();
        if st.waiters > 0 {
            self.cond.notify_all();
        }
        for w in st.wakers.drain(..) {
            w.wake();
        }
        woke |= Self::settle(st);
        woke
    }

    /// Bring mio's eventfds in line with the state (after any change);
    /// whether one became ready.
    pub(crate) fn settle(st: &mut State<B>) -> bool {
        let (r, w) = if st.dead.is_some() {
            (true, true)
        } else {
            (st.b.readable(), st.b.writable())
        };
        match &mut st.mirror {
            Some(m) => m.set(r, w),
            None => false,
        }
    }

    /// Run `op` until it is ready, blocking as `wait` allows. `op` returns
    /// `Poll::Pending` when it would block.
    pub(crate) fn block_on<R>(
        &self,
        core: &Core,
        wait: Wait,
        mut op: impl FnMut(&mut State<B>) -> Poll<io::Result<R>>,
    ) -> io::Result<R> {
        let mut st = self.lock();
        let (deadline, on_timeout) = match wait {
            Wait::Read => (st.read_timeout, io::ErrorKind::WouldBlock),
            Wait::Write => (st.write_timeout, io::ErrorKind::WouldBlock),
            Wait::Until(_) => (None, io::ErrorKind::TimedOut),
        };
        let deadline = match wait {
            Wait::Until(d) => d,
            _ => deadline.map(|d| Instant::now() + d),
        };
        let nonblocking = st.nonblocking && !matches!(wait, Wait::Until(_));
        let mut spun = false;
        loop {
            if let Some(why) = &st.dead {
                return Err(dead_error(why));
            }
            if let Poll::Ready(r) = op(&mut st) {
                Self::settle(&mut st);
                return r;
            }
            if nonblocking {
                Self::settle(&mut st);
                return Err(io::ErrorKind::WouldBlock.into());
            }
            if core.is_dead() {
                // The stack thread ended before it could mark this socket.
                return Err(core.dead_error());
            }
            if !spun && !core.opts.spin.is_zero() {
                spun = true;
                let seen = self.events.load(Ordering::Acquire);
                drop(st);
                let until = Instant::now() + core.opts.spin;
                while self.events.load(Ordering::Acquire) == seen && Instant::now() < until {
                    std::hint::spin_loop();
                }
                st = self.lock();
                continue;
            }
            st.waiters += 1;
            st = match deadline {
                None => self.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        st.waiters -= 1;
                        Self::settle(&mut st);
                        return Err(io::Error::new(on_timeout, "timed out"));
                    }
                    self.cond
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            st.waiters -= 1;
            spun = false;
        }
    }

    /// Run `op` once for an async task: `Pending` leaves the task's waker
    /// to be woken at the socket's next change.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_op<R>(
        &self,
        core: &Core,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&mut State<B>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        let mut st = self.lock();
        if let Some(why) = &st.dead {
            return Poll::Ready(Err(dead_error(why)));
        }
        let r = op(&mut st);
        if r.is_pending() {
            if core.is_dead() {
                return Poll::Ready(Err(core.dead_error()));
            }
            if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                st.wakers.push(cx.waker().clone());
            }
        }
        Self::settle(&mut st);
        r
    }
}
