//! `mio::event::Source` for the three socket types (feature `mio`).
//!
//! A registered socket gets two eventfds whose state mirrors its
//! readiness (see `core::Mirror`): one readable while the socket is
//! readable, registered for `READABLE`, one writable while the socket is
//! writable, registered for `WRITABLE`, both under the caller's token.
//! mio registers edge-triggered, so an event arrives when a socket goes
//! from not ready to ready, as with mio's own sockets: read, write or
//! accept until `WouldBlock`, then wait. Registering puts the socket in
//! non-blocking mode. A `TcpStream` made by
//! [`TcpStream::connect_nonblocking`](super::TcpStream::connect_nonblocking)
//! becomes writable when the handshake completes or fails.

use super::core::{Body, Mirror, Sock};
use super::{TcpListener, TcpStream, UdpSocket};
use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::io;
use std::os::fd::AsRawFd;

impl<B: Body> Sock<B> {
    fn mio_register(
        &self,
        registry: &Registry,
        token: Token,
        interests: Interest,
        again: bool,
    ) -> io::Result<()> {
        let mut st = self.lock();
        st.nonblocking = true;
        if st.mirror.is_none() {
            st.mirror = Some(Mirror::new()?);
            Self::settle(&mut st);
        }
        let m = st.mirror.as_mut().expect("made above");
        if !again && (m.r_registered || m.w_registered) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the socket is registered already",
            ));
        }
        for (fd, want, registered, interest) in [
            (
                m.r.as_raw_fd(),
                interests.is_readable(),
                &mut m.r_registered,
                Interest::READABLE,
            ),
            (
                m.w.as_raw_fd(),
                interests.is_writable(),
                &mut m.w_registered,
                Interest::WRITABLE,
            ),
        ] {
            let mut src = SourceFd(&fd);
            match (want, *registered) {
                (true, true) => src.reregister(registry, token, interest)?,
                (true, false) => src.register(registry, token, interest)?,
                (false, true) => src.deregister(registry)?,
                (false, false) => {}
            }
            *registered = want;
        }
        Ok(())
    }

    fn mio_deregister(&self, registry: &Registry) -> io::Result<()> {
        let mut st = self.lock();
        let Some(m) = st.mirror.as_mut() else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the socket is not registered",
            ));
        };
        if m.r_registered {
            SourceFd(&m.r.as_raw_fd()).deregister(registry)?;
            m.r_registered = false;
        }
        if m.w_registered {
            SourceFd(&m.w.as_raw_fd()).deregister(registry)?;
            m.w_registered = false;
        }
        Ok(())
    }
}

macro_rules! source {
    ($t:ty) => {
        impl Source for $t {
            fn register(
                &mut self,
                registry: &Registry,
                token: Token,
                interests: Interest,
            ) -> io::Result<()> {
                self.inner
                    .sock
                    .mio_register(registry, token, interests, false)
            }
            fn reregister(
                &mut self,
                registry: &Registry,
                token: Token,
                interests: Interest,
            ) -> io::Result<()> {
                self.inner
                    .sock
                    .mio_register(registry, token, interests, true)
            }
            fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
                self.inner.sock.mio_deregister(registry)
            }
        }
    };
}

source!(TcpStream);
source!(TcpListener);
source!(UdpSocket);
