//! A wake-up descriptor (a Linux eventfd), and `poll(2)` over several
//! descriptors at once.
//!
//! A thread that sleeps in `poll(2)` on its devices also sleeps on a
//! [`Notifier`], so another thread can wake it with one `write(2)`.
//! `ringstack::net` uses one per stack thread, and two per socket registered
//! with mio, whose counters mirror the socket's readiness: an eventfd is
//! readable (`POLLIN`) while its counter is above zero and writable
//! (`POLLOUT`) while it is below [`Notifier::MAX`], so [`Notifier::add`] and
//! [`Notifier::take`] move a descriptor in and out of either state and
//! epoll reports each change as an edge.

use super::sys;
use crate::time::Duration;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// An eventfd in non-blocking mode.
#[derive(Debug)]
pub struct Notifier {
    fd: OwnedFd,
}

impl Notifier {
    /// The largest value the counter holds; at this value the descriptor
    /// is not writable.
    pub const MAX: u64 = u64::MAX - 1;

    /// A new descriptor with its counter at zero.
    pub fn new() -> io::Result<Notifier> {
        // SAFETY: eventfd takes no pointers; the result is checked by
        // `owned_fd`, which takes ownership of a valid descriptor.
        let rc = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        Ok(Notifier {
            fd: sys::owned_fd(rc, || "eventfd")?,
        })
    }

    /// Add one to the counter: the descriptor becomes readable and a
    /// sleeper in `poll(2)` wakes. Never blocks; a counter that cannot
    /// grow is already readable, so that failure is ignored.
    pub fn notify(&self) {
        let _ = self.add(1);
    }

    /// Add `n` to the counter. `WouldBlock` when the sum would pass
    /// [`Notifier::MAX`].
    pub fn add(&self, n: u64) -> io::Result<()> {
        let b = n.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live local buffer to a descriptor
        // we own.
        let rc = unsafe { libc::write(self.fd.as_raw_fd(), b.as_ptr().cast(), b.len()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Read and reset the counter; 0 when it was already zero.
    pub fn take(&self) -> u64 {
        let mut b = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live local buffer of 8
        // bytes from a descriptor we own.
        let rc = unsafe { libc::read(self.fd.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) };
        if rc == 8 {
            u64::from_ne_bytes(b)
        } else {
            0
        }
    }

    /// Sleep until one of `fds` or this notifier is readable, or `timeout`
    /// passes (`None`: no limit).
    pub fn wait_with(&self, fds: &[RawFd], timeout: Option<Duration>) -> io::Result<()> {
        const INLINE: usize = 8;
        let me = self.fd.as_raw_fd();
        if fds.len() < INLINE {
            let mut all = [me; INLINE];
            all[1..=fds.len()].copy_from_slice(fds);
            poll_in(&all[..=fds.len()], timeout)
        } else {
            let mut all = Vec::with_capacity(fds.len() + 1);
            all.push(me);
            all.extend_from_slice(fds);
            poll_in(&all, timeout)
        }
    }
}

impl AsRawFd for Notifier {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Notifier {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Sleep until one of `fds` is readable or `timeout` passes (`None`: no
/// limit), with microsecond resolution (`ppoll`). A signal cutting the
/// sleep short is not an error.
pub fn poll_in(fds: &[RawFd], timeout: Option<Duration>) -> io::Result<()> {
    const INLINE: usize = 8;
    let blank = libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    };
    let mut inline = [blank; INLINE];
    let mut heap = Vec::new();
    let pfds: &mut [libc::pollfd] = if fds.len() <= INLINE {
        &mut inline[..fds.len()]
    } else {
        heap.resize(fds.len(), blank);
        &mut heap
    };
    for (p, &fd) in pfds.iter_mut().zip(fds) {
        p.fd = fd;
    }
    let ts;
    let ts_ptr = match timeout {
        None => std::ptr::null(),
        Some(d) => {
            let micros = d.total_micros();
            let secs = (micros / 1_000_000).min(100 * 365 * 86_400);
            ts = libc::timespec {
                tv_sec: secs as libc::time_t,
                tv_nsec: ((micros % 1_000_000) * 1000) as libc::c_long,
            };
            &ts as *const libc::timespec
        }
    };
    // SAFETY: `pfds` is a live slice of `len` pollfd structs; `ts_ptr` is
    // null or points to `ts`, which outlives the call; a null sigmask
    // leaves the signal mask alone.
    let rc = unsafe {
        libc::ppoll(
            pfds.as_mut_ptr(),
            pfds.len() as libc::nfds_t,
            ts_ptr,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(());
        }
        return Err(sys::with_context(
            e,
            "poll on device and wake-up descriptors",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(n: &Notifier) -> bool {
        sys::poll_readable(n.as_raw_fd(), Some(Duration::ZERO)).unwrap()
    }

    #[test]
    fn notify_makes_readable_and_take_resets() {
        let n = Notifier::new().unwrap();
        assert!(!readable(&n));
        n.notify();
        n.notify();
        assert!(readable(&n));
        assert_eq!(n.take(), 2);
        assert!(!readable(&n));
        assert_eq!(n.take(), 0);
    }

    #[test]
    fn counter_stops_at_max() {
        let n = Notifier::new().unwrap();
        n.add(Notifier::MAX).unwrap();
        let e = n.add(1).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(n.take(), Notifier::MAX);
    }

    #[test]
    fn wait_with_wakes_on_the_notifier_or_times_out() {
        let n = std::sync::Arc::new(Notifier::new().unwrap());
        let t = std::time::Instant::now();
        n.wait_with(&[], Some(Duration::from_millis(20))).unwrap();
        assert!(t.elapsed() >= std::time::Duration::from_millis(19));
        let n2 = n.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            n2.notify();
        });
        let other = Notifier::new().unwrap();
        let t = std::time::Instant::now();
        n.wait_with(&[other.as_raw_fd()], Some(Duration::from_secs(10)))
            .unwrap();
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        h.join().unwrap();
    }
}
