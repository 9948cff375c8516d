//! The stack thread: it owns the [`Stack`] and the device, and loops:
//! commands from the queue, `Stack::poll`, bytes and readiness moved
//! between TCP/UDP and the shared sockets, then a spin or a sleep in
//! `poll(2)` on the device's descriptors and its own eventfd.

use super::core::{Body, Cmd, Core, Fault, ListenBody, Phase, Sock, State, StreamBody, UdpBody};
use crate::dev::{self, Device};
use crate::stack::{Stack, UdpHandle};
use crate::tcp::{ConnHandle, ListenHandle, Tcp, TcpError};
use crate::time::{Duration, Instant};
use core::net::{Ipv4Addr, SocketAddrV4};
use std::collections::HashMap;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

struct StreamEntry {
    sock: Arc<Sock<StreamBody>>,
    h: ConnHandle,
    f: Flags,
}

/// What the stack thread remembers of a connection between services.
#[derive(Debug, Default)]
struct Flags {
    /// Every handle is gone: close once the bytes left in `tx` are in TCP.
    closing: bool,
    /// `shutdown_write` was passed on to TCP.
    fin_sent: bool,
    /// Bytes were left in the socket's `tx` for lack of room in TCP.
    tx_left: bool,
    /// The handshake is not complete.
    connecting: bool,
    /// The end of the stream was handed to the socket.
    eof: bool,
}

struct ListenEntry {
    sock: Arc<Sock<ListenBody>>,
    h: ListenHandle,
}

struct UdpEntry {
    sock: Arc<Sock<UdpBody>>,
    h: UdpHandle,
    closing: bool,
    /// Datagrams were handed to the stack since the last poll.
    handed: bool,
}

enum Entry {
    Stream(StreamEntry),
    Listen(ListenEntry),
    Udp(UdpEntry),
}

/// How the loop idles.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoopOpts {
    pub busy_poll: bool,
    /// The longest sleep in `poll(2)` without a timer due.
    pub max_sleep: Duration,
    /// How long the thread goes on after the last handle is gone, so that
    /// closed connections can finish their FIN exchange.
    pub linger: Duration,
}

pub(crate) struct Runtime {
    pub stack: Stack,
    pub dev: Box<dyn Device>,
    pub core: Arc<Core>,
    pub opts: LoopOpts,
    entries: HashMap<u64, Entry>,
    fds: Vec<i32>,
    /// Streams a listener accepted in the current pass, inserted after it.
    accepted: Vec<(u64, Entry)>,
    /// Entries whose handles are gone but which still have work.
    closing: Vec<u64>,
    /// A thread or task was woken in this pass.
    woke: bool,
}

impl Runtime {
    pub(crate) fn new(stack: Stack, dev: Box<dyn Device>, core: Arc<Core>, opts: LoopOpts) -> Self {
        Runtime {
            stack,
            dev,
            core,
            opts,
            entries: HashMap::new(),
            fds: Vec::new(),
            accepted: Vec::new(),
            closing: Vec::new(),
            woke: false,
        }
    }

    /// The loop; returns when every handle is gone (after the linger) or
    /// the device fails.
    pub(crate) fn run(mut self) {
        let mut linger_until: Option<Instant> = None;
        loop {
            let now = dev::monotonic_now();
            let mut worked = self.drain_commands(now);
            let due = self.stack.poll_at().is_some_and(|t| t <= now);
            let n = match self.stack.poll(now, &mut self.dev) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!("ringstack::net: device failed: {e}");
                    self.core.set_dead(&format!("device error: {e}"));
                    return;
                }
            };
            if n > 0 || due || worked {
                self.service_all();
                worked = true;
            }
            if !self.closing.is_empty() {
                self.service_closing();
            }
            if std::mem::take(&mut self.woke) {
                // Let a woken application thread run now if it shares
                // our core, rather than when our time slice ends: it
                // will likely answer at once. Cheap when it does not.
                std::thread::yield_now();
            }
            if self.core.stop.load(Ordering::Acquire) && self.core_queue_empty() {
                let until = *linger_until.get_or_insert(now + self.opts.linger);
                if self.finished(now) || now >= until {
                    return;
                }
            }
            if self.opts.busy_poll || n > 0 || worked {
                std::hint::spin_loop();
                continue;
            }
            self.sleep(now);
        }
    }

    fn core_queue_empty(&self) -> bool {
        self.core.queue_is_empty()
    }

    /// Nothing is left to finish: no sockets, and TCP has no timer due
    /// soon (only TIME-WAIT and idle state remain) or no connections.
    fn finished(&self, now: Instant) -> bool {
        if !self.entries.is_empty() {
            return false;
        }
        self.stack.tcp_ref().connection_count() == 0
            || self
                .stack
                .poll_at()
                .is_none_or(|t| t > now + Duration::from_millis(500))
    }

    fn sleep(&mut self, now: Instant) {
        let mut delay = self.stack.poll_delay(now, self.opts.max_sleep);
        if self.core.stop.load(Ordering::Acquire) {
            delay = delay.min(Duration::from_millis(10));
        }
        if delay == Duration::ZERO {
            return;
        }
        self.fds.clear();
        if !self.dev.wait_fds(&mut self.fds) {
            // A frame is ready, or the device has nothing to sleep on.
            std::thread::yield_now();
            return;
        }
        if self.core.prepare_sleep() {
            if let Err(e) = self.core.notifier().wait_with(&self.fds, Some(delay)) {
                tracing::warn!("ringstack::net: poll failed: {e}");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        self.core.woke();
    }

    fn drain_commands(&mut self, now: Instant) -> bool {
        let mut any = false;
        while let Some(cmd) = self.core.pop() {
            any = true;
            match cmd {
                Cmd::Service(id) => self.service(id),
                Cmd::Close(id) => self.close(id),
                Cmd::Connect(sock, addr) => self.connect(now, sock, addr),
                Cmd::Listen(sock, addr) => self.listen(sock, addr),
                Cmd::UdpBind(sock, addr) => self.udp_bind(sock, addr),
                Cmd::Status(reply) => {
                    let _ = reply.send(super::Status {
                        sockets: self.entries.len(),
                        tcp_connections: self.stack.tcp_ref().connection_count(),
                        stats: self.stack.stats(),
                        device: self.dev.stats(),
                    });
                }
            }
        }
        any
    }

    fn connect(&mut self, now: Instant, sock: Arc<Sock<StreamBody>>, addr: SocketAddrV4) {
        match self.stack.tcp_connect(now, addr) {
            Ok(h) => {
                let tcp = self.stack.tcp();
                let _ = tcp.set_soft_error_reports(h, false);
                let local = tcp.local_addr(h).ok();
                {
                    let mut st = sock.lock();
                    st.b.local = local;
                    // The handle may be gone already; Close follows then.
                    sock.notify(&mut st);
                }
                let id = sock.id;
                let mut e = StreamEntry {
                    sock,
                    h,
                    f: Flags {
                        connecting: true,
                        ..Flags::default()
                    },
                };
                service_stream(self.stack.tcp(), &mut e);
                self.entries.insert(id, Entry::Stream(e));
            }
            Err(e) => {
                let mut st = sock.lock();
                st.b.phase = Phase::Failed;
                st.b.err = Some(Fault::Tcp(e));
                sock.notify(&mut st);
            }
        }
    }

    fn listen(&mut self, sock: Arc<Sock<ListenBody>>, addr: SocketAddrV4) {
        let r = self.check_local(*addr.ip()).and_then(|()| {
            let backlog = sock.lock().b.backlog;
            if addr.port() != 0 {
                return self
                    .stack
                    .tcp()
                    .listen(addr, backlog)
                    .map(|h| (h, addr))
                    .map_err(Fault::Tcp);
            }
            // Port 0: a free port of the ephemeral range, as bind(2) picks.
            let (lo, hi) = self.stack.config().ephemeral_ports;
            let span = u32::from(hi - lo) + 1;
            let start = u32::from_ne_bytes(rand_bytes()) % span;
            for i in 0..span {
                let port = lo + ((start + i) % span) as u16;
                let a = SocketAddrV4::new(*addr.ip(), port);
                if let Ok(h) = self.stack.tcp().listen(a, backlog) {
                    return Ok((h, a));
                }
            }
            Err(Fault::Tcp(TcpError::NoFreePorts))
        });
        let mut st = sock.lock();
        match r {
            Ok((h, local)) => {
                st.b.phase = Phase::Open;
                st.b.local = Some(local);
                sock.notify(&mut st);
                drop(st);
                self.entries
                    .insert(sock.id, Entry::Listen(ListenEntry { sock, h }));
            }
            Err(f) => {
                st.b.phase = Phase::Failed;
                st.b.err = Some(f);
                sock.notify(&mut st);
            }
        }
    }

    fn udp_bind(&mut self, sock: Arc<Sock<UdpBody>>, addr: SocketAddrV4) {
        let r = self.check_local(*addr.ip()).and_then(|()| {
            let h = self.stack.udp_bind(addr).map_err(Fault::Stack)?;
            let local = self.stack.udp_local_addr(h).map_err(Fault::Stack)?;
            Ok((h, local))
        });
        let mut st = sock.lock();
        match r {
            Ok((h, local)) => {
                st.b.phase = Phase::Open;
                st.b.local = Some(local);
                sock.notify(&mut st);
                drop(st);
                self.entries.insert(
                    sock.id,
                    Entry::Udp(UdpEntry {
                        sock,
                        h,
                        closing: false,
                        handed: false,
                    }),
                );
            }
            Err(f) => {
                st.b.phase = Phase::Failed;
                st.b.err = Some(f);
                sock.notify(&mut st);
            }
        }
    }

    fn check_local(&self, ip: Ipv4Addr) -> Result<(), Fault> {
        if ip.is_unspecified() || self.stack.is_local(ip) {
            Ok(())
        } else {
            Err(Fault::Kind(
                io::ErrorKind::AddrNotAvailable,
                "the address is not one of the stack's",
            ))
        }
    }

    fn service(&mut self, id: u64) {
        let Some(e) = self.entries.get_mut(&id) else {
            return;
        };
        self.woke |= match e {
            Entry::Stream(s) => service_stream(self.stack.tcp(), s),
            Entry::Listen(l) => service_listen(self.stack.tcp(), l, &self.core, &mut self.accepted),
            Entry::Udp(u) => service_udp(&mut self.stack, u),
        };
        self.insert_accepted();
    }

    /// After a poll that received frames or ran timers: every socket that
    /// may have news.
    fn service_all(&mut self) {
        let tcp = self.stack.tcp();
        for e in self.entries.values_mut() {
            match e {
                Entry::Stream(s) => {
                    if s.f.connecting || s.f.tx_left || s.f.closing || s.sock.is_dirty() {
                        self.woke |= service_stream(tcp, s);
                        continue;
                    }
                    if s.f.eof {
                        // Ended; a write finds any later error (it marks
                        // the socket dirty).
                        continue;
                    }
                    // Cheap look first: most connections have no news.
                    if tcp
                        .readiness(s.h)
                        .is_ok_and(|r| !r.readable && r.error.is_none())
                    {
                        continue;
                    }
                    self.woke |= service_stream(tcp, s);
                }
                Entry::Listen(l) => {
                    self.woke |= service_listen(tcp, l, &self.core, &mut self.accepted)
                }
                Entry::Udp(_) => {}
            }
        }
        for e in self.entries.values_mut() {
            if let Entry::Udp(u) = e {
                self.woke |= service_udp(&mut self.stack, u);
            }
        }
        self.insert_accepted();
    }

    fn insert_accepted(&mut self) {
        for (id, mut e) in self.accepted.drain(..) {
            if let Entry::Stream(s) = &mut e {
                self.woke |= service_stream(self.stack.tcp(), s);
            }
            self.entries.insert(id, e);
        }
    }

    /// Finish entries whose handles are gone.
    fn service_closing(&mut self) {
        let mut i = 0;
        while i < self.closing.len() {
            let id = self.closing[i];
            if self.try_finish(id) {
                self.closing.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    fn close(&mut self, id: u64) {
        match self.entries.get_mut(&id) {
            Some(Entry::Stream(s)) => {
                s.f.closing = true;
                let unread = !s.sock.lock().b.rx.is_empty();
                if unread {
                    // Unread data: a reset, as close(2) sends (RFC 9293
                    // SHLD-3; Linux does the same).
                    let _ = self.stack.tcp().abort(s.h);
                    self.entries.remove(&id);
                    return;
                }
                service_stream(self.stack.tcp(), s);
            }
            Some(Entry::Listen(l)) => {
                let _ = self.stack.tcp().close_listener(l.h);
                let queued: Vec<_> = l.sock.lock().b.queue.drain(..).collect();
                self.entries.remove(&id);
                // Accepted by the stack, never by the application: reset,
                // as Linux resets what is left in a closed listener's queue.
                for (s, _) in queued {
                    if let Some(Entry::Stream(e)) = self.entries.remove(&s.id) {
                        let _ = self.stack.tcp().abort(e.h);
                    }
                }
                return;
            }
            Some(Entry::Udp(u)) => {
                u.closing = true;
                service_udp(&mut self.stack, u);
            }
            None => return,
        }
        if !self.try_finish(id) {
            self.closing.push(id);
        }
    }

    /// Close a closing entry once it has nothing left to hand to the stack.
    fn try_finish(&mut self, id: u64) -> bool {
        let done = match self.entries.get_mut(&id) {
            None => return true,
            Some(Entry::Stream(s)) => {
                let st = s.sock.lock();
                let done = st.b.tx.is_empty() || st.b.err.is_some() || st.b.err_reported;
                drop(st);
                if done {
                    let _ = self.stack.tcp().close(s.h);
                }
                done
            }
            Some(Entry::Udp(u)) => {
                // Datagrams handed to the stack leave at the next poll; close
                // after it.
                let done = u.sock.lock().b.tx.is_empty() && !u.handed;
                u.handed = false;
                if done {
                    let _ = self.stack.udp_close(u.h);
                }
                done
            }
            Some(Entry::Listen(_)) => true,
        };
        if done {
            self.entries.remove(&id);
        }
        done
    }
}

impl Drop for Runtime {
    /// Whether the loop ended normally or by a panic: no handle may wait
    /// forever. Sockets still here and commands still queued fail.
    fn drop(&mut self) {
        self.core.set_dead("stopped");
        let why = self.core.why_dead();
        fn kill<B: Body>(s: &Sock<B>, why: &Arc<str>) {
            let mut st = s.lock();
            st.dead = Some(why.clone());
            s.notify(&mut st);
        }
        for e in self.entries.values() {
            match e {
                Entry::Stream(s) => kill(&s.sock, &why),
                Entry::Listen(l) => {
                    kill(&l.sock, &why);
                    for (s, _) in l.sock.lock().b.queue.iter() {
                        kill(s, &why);
                    }
                }
                Entry::Udp(u) => kill(&u.sock, &why),
            }
        }
        while let Some(cmd) = self.core.pop() {
            match cmd {
                Cmd::Connect(s, _) => kill(&s, &why),
                Cmd::Listen(s, _) => kill(&s, &why),
                Cmd::UdpBind(s, _) => kill(&s, &why),
                _ => {}
            }
        }
    }
}

fn rand_bytes() -> [u8; 4] {
    let mut b = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    b
}

/// Move bytes and news between a connection and its socket; whether a
/// waiting thread or task was woken.
fn service_stream(tcp: &mut Tcp, e: &mut StreamEntry) -> bool {
    e.sock.clear_dirty();
    let mut st = e.sock.lock();
    let changed = stream_step(tcp, e.h, &mut e.f, &mut st);
    changed && e.sock.notify(&mut st)
}

fn stream_step(tcp: &mut Tcp, h: ConnHandle, e: &mut Flags, st: &mut State<StreamBody>) -> bool {
    let b = &mut st.b;
    let mut changed = false;
    if let Some(on) = b.nodelay_req.take() {
        let _ = tcp.set_nodelay(h, on);
    }
    if e.connecting {
        match tcp.state(h) {
            Ok(s) if s.is_synchronized() => {
                e.connecting = false;
                b.phase = Phase::Open;
                b.peer = tcp.peer_addr(h).ok();
                changed = true;
            }
            Ok(_) => {}
            Err(_) => e.connecting = false,
        }
    }
    // The application's bytes into TCP's send ring.
    while !b.tx.is_empty() {
        match tcp.send_with(h, |buf| b.tx.pop_into(buf)) {
            Ok(0) | Err(TcpError::WouldBlock) => break,
            Ok(_) => changed = true,
            // Not yet: SYN-SENT queues, other states before ESTABLISHED
            // do not.
            Err(TcpError::InvalidState) if e.connecting => break,
            Err(err) => {
                fail(b, err);
                changed = true;
                break;
            }
        }
    }
    e.tx_left = !b.tx.is_empty();
    if b.shut_wr && !e.fin_sent && b.tx.is_empty() && !e.connecting {
        e.fin_sent = true;
        let _ = tcp.shutdown_write(h);
    }
    // TCP's receive ring into the socket's.
    loop {
        if b.rx.free() == 0 {
            b.rx_more = true;
            break;
        }
        match tcp.recv_with(h, |data| b.rx.push(data)) {
            Ok(0) => {
                // Nothing readable and the peer's FIN is in (or the
                // connection is closed): the end of the stream.
                if !e.connecting && !b.rx_eof {
                    b.rx_eof = true;
                    e.eof = true;
                    changed = true;
                }
                break;
            }
            Ok(_) => changed = true,
            Err(TcpError::WouldBlock) => break,
            Err(err) => {
                if b.err.is_none() && !b.err_reported {
                    fail(b, err);
                    changed = true;
                }
                e.connecting = false;
                e.eof = true;
                break;
            }
        }
    }
    if b.shut_rd {
        b.rx.clear();
    }
    changed
}

/// The connection ended with `err`: keep it for the application.
fn fail(b: &mut StreamBody, err: TcpError) {
    if b.err.is_none() && !b.err_reported {
        b.err = Some(Fault::Tcp(err));
    }
    if b.phase == Phase::Pending {
        b.phase = Phase::Failed;
    }
    b.tx.clear();
}

fn service_listen(
    tcp: &mut Tcp,
    l: &mut ListenEntry,
    core: &Core,
    accepted: &mut Vec<(u64, Entry)>,
) -> bool {
    l.sock.clear_dirty();
    let mut st = l.sock.lock();
    let mut changed = false;
    while st.b.queue.len() < st.b.backlog {
        let Ok(h) = tcp.accept(l.h) else {
            break;
        };
        let _ = tcp.set_soft_error_reports(h, false);
        let (Ok(local), Ok(peer)) = (tcp.local_addr(h), tcp.peer_addr(h)) else {
            let _ = tcp.abort(h);
            continue;
        };
        let mut body = StreamBody::new(core.opts.stream_buffer, Phase::Open);
        body.local = Some(local);
        body.peer = Some(peer);
        let sock = Arc::new(Sock::new(core.next_id(), body));
        st.b.queue.push_back((sock.clone(), peer));
        accepted.push((
            sock.id,
            Entry::Stream(StreamEntry {
                sock,
                h,
                f: Flags::default(),
            }),
        ));
        changed = true;
    }
    changed && l.sock.notify(&mut st)
}

fn service_udp(stack: &mut Stack, u: &mut UdpEntry) -> bool {
    u.sock.clear_dirty();
    let mut st = u.sock.lock();
    let b = &mut st.b;
    let mut changed = false;
    while let Some((dst, data)) = b.tx.front() {
        match stack.udp_send_to(u.h, data, *dst) {
            Err(crate::stack::Error::WouldBlock) => break,
            r => {
                let (_, v) = b.tx.pop_front().expect("front exists");
                b.recycle(v);
                match r {
                    Ok(()) => u.handed = true,
                    Err(e) => b.err = Some(Fault::Stack(e)),
                }
                changed = true;
            }
        }
    }
    if !u.closing {
        while b.rx.len() < b.cap {
            let peer = b.peer;
            let r = stack.udp_recv_with(u.h, |data, from| {
                if peer.is_some_and(|p| p != from) {
                    return;
                }
                let v = b.buffer(data);
                b.rx.push_back((from, v));
            });
            match r {
                Ok(()) => changed = true,
                Err(crate::stack::Error::WouldBlock) => break,
                Err(e) => {
                    // ICMP errors reach only a connected socket, as on
                    // Linux without IP_RECVERR.
                    if b.peer.is_some() {
                        b.err = Some(Fault::Stack(e));
                        changed = true;
                    }
                }
            }
        }
    }
    changed && u.sock.notify(&mut st)
}
