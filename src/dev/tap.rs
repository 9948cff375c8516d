//! TAP driver: `/dev/net/tun` in `IFF_TAP | IFF_NO_PI` mode. Every `read(2)`
//! returns one Ethernet frame the kernel sent out of the TAP; every `write(2)`
//! hands one frame to the kernel as if it arrived on the TAP.
//!
//! The TAP's own MAC belongs to the kernel side (it is the kernel's address on
//! that link), so [`DeviceCaps::mac`] is `None` and the stack must pick a MAC
//! of its own, different from [`TapDevice::kernel_mac`].
//!
//! A TAP created here is not persistent: it disappears when the device is
//! dropped. An existing TAP (say, made with `ip tuntap add mode tap`) is
//! attached to instead.

use super::sys;
use super::{Device, DeviceCaps, DeviceStats, Transmit, TxError};
use crate::time::{Duration, Instant};
use std::ffi::c_void;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Bytes an Ethernet frame may have beyond the L3 MTU: header and one VLAN tag.
const L2_OVERHEAD: usize = 14 + 4;

/// RX buffer: the largest frame a TAP can carry (MTU 65535) with its header,
/// so a frame is never cut even if the MTU is raised after opening.
const RX_BUF: usize = 65535 + L2_OVERHEAD;

/// A TAP interface driven through `/dev/net/tun`.
pub struct TapDevice {
    fd: OwnedFd,
    name: String,
    mtu: usize,
    rx_buf: Vec<u8>,
    tx: TapTx,
    rx_frames: u64,
    rx_bytes: u64,
}

impl TapDevice {
    /// Create TAP `name` (or attach to an existing one), non-blocking, and
    /// bring its link up. Needs CAP_NET_ADMIN. A name pattern such as
    /// `"tap%d"` lets the kernel choose; see [`TapDevice::name`].
    pub fn open(name: &str) -> io::Result<TapDevice> {
        let mut req = sys::ifreq_for(name)?;
        req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;

        let path = c"/dev/net/tun";
        // SAFETY: `path` is a NUL-terminated string literal; open(2) only
        // reads it. `owned_fd` checks the result.
        let rc = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        let fd = sys::owned_fd(rc, || format!("opening /dev/net/tun for TAP {name}"))?;

        // SAFETY: TUNSETIFF reads the name and flags from the `ifreq` we own
        // and writes the interface's final name back into it; `req` lives
        // across the call.
        let rc = unsafe {
            libc::ioctl(
                fd.as_raw_fd(),
                libc::TUNSETIFF as _,
                &mut req as *mut libc::ifreq,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            let hint = match err.raw_os_error() {
                Some(libc::EPERM) => " (need CAP_NET_ADMIN)",
                Some(libc::EBUSY) => " (already attached by another process)",
                Some(libc::EINVAL) => {
                    " (an interface of that name exists and is not a single-queue TAP?)"
                }
                _ => "",
            };
            return Err(sys::with_context(
                err,
                format!("TUNSETIFF IFF_TAP|IFF_NO_PI on {name}{hint}"),
            ));
        }
        let name = sys::ifreq_name(&req);
        sys::if_set_up(&name)?;
        let mtu = sys::if_mtu(&name)?;
        let raw = fd.as_raw_fd();
        Ok(TapDevice {
            fd,
            mtu,
            rx_buf: vec![0; RX_BUF],
            tx: TapTx {
                fd: raw,
                buf: vec![0; mtu.saturating_add(L2_OVERHEAD)],
                max_frame: mtu.saturating_add(L2_OVERHEAD),
                deferred_errno: None,
                frames: 0,
                bytes: 0,
                dropped: 0,
                errors: 0,
            },
            name,
            rx_frames: 0,
            rx_bytes: 0,
        })
    }

    /// The interface's name (the kernel's choice if a pattern was given).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kernel side's MAC on this link; the stack must use another one.
    pub fn kernel_mac(&self) -> io::Result<[u8; 6]> {
        sys::if_mac(&self.name)
    }
}

impl AsRawFd for TapDevice {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The TX half. It writes each frame with `write(2)` inside `transmit`: a TAP
/// has no batched write (one syscall per frame whichever way), so queueing
/// until `flush` would change neither the syscall count nor the copies, only
/// add latency and a pool to run out of. One scratch buffer is enough.
struct TapTx {
    fd: RawFd,
    buf: Vec<u8>,
    max_frame: usize,
    /// errno of a write failure other than a plain drop, reported by `flush`.
    deferred_errno: Option<i32>,
    frames: u64,
    bytes: u64,
    dropped: u64,
    errors: u64,
}

impl Transmit for TapTx {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError> {
        if len > self.max_frame {
            return Err(TxError::TooLong);
        }
        let frame = &mut self.buf[..len];
        fill(frame);
        loop {
            // SAFETY: `frame` is `len` initialised bytes we own, alive across
            // the call; write(2) only reads them.
            let rc = unsafe { libc::write(self.fd, frame.as_ptr() as *const c_void, len) };
            if rc >= 0 {
                self.frames += 1;
                self.bytes += len as u64;
                return Ok(());
            }
            let errno = io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            match errno {
                libc::EINTR => continue,
                // `fill` already ran, so this is a loss, not Exhausted.
                libc::EAGAIN | libc::ENOBUFS => self.dropped += 1,
                e => {
                    self.errors += 1;
                    self.deferred_errno.get_or_insert(e);
                }
            }
            return Ok(());
        }
    }
}

impl Device for TapDevice {
    fn caps(&self) -> DeviceCaps {
        DeviceCaps {
            mtu: self.mtu,
            mac: None,
            rx_batch: 64,
            kind: "tap".to_string(),
        }
    }

    fn receive(
        &mut self,
        _now: Instant,
        budget: usize,
        on_frame: &mut dyn FnMut(&[u8], &mut dyn Transmit),
    ) -> io::Result<usize> {
        let mut handed = 0;
        while handed < budget {
            // SAFETY: `rx_buf` has `rx_buf.len()` writable bytes we own,
            // alive across the call.
            let rc = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    self.rx_buf.as_mut_ptr() as *mut c_void,
                    self.rx_buf.len(),
                )
            };
            if rc < 0 {
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EAGAIN) => break,
                    Some(libc::EINTR) => continue,
                    _ => {
                        return Err(sys::with_context(
                            err,
                            format!("read from TAP {}", self.name),
                        ))
                    }
                }
            }
            let len = rc as usize;
            self.rx_frames += 1;
            self.rx_bytes += len as u64;
            on_frame(&self.rx_buf[..len], &mut self.tx);
            handed += 1;
        }
        Ok(handed)
    }

    fn transmitter(&mut self) -> &mut dyn Transmit {
        &mut self.tx
    }

    fn flush(&mut self, _now: Instant) -> io::Result<()> {
        match self.tx.deferred_errno.take() {
            None => Ok(()),
            Some(e) => Err(sys::with_context(
                io::Error::from_raw_os_error(e),
                format!("write to TAP {}", self.name),
            )),
        }
    }

    fn wait_fds(&self, fds: &mut Vec<i32>) -> bool {
        fds.push(self.fd.as_raw_fd());
        true
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        sys::poll_readable(self.fd.as_raw_fd(), timeout)
            .map_err(|e| sys::with_context(e, format!("poll on TAP {}", self.name)))?;
        Ok(())
    }

    fn stats(&self) -> DeviceStats {
        DeviceStats {
            rx_frames: self.rx_frames,
            rx_bytes: self.rx_bytes,
            tx_frames: self.tx.frames,
            tx_bytes: self.tx.bytes,
            rx_dropped: 0,
            tx_exhausted: 0,
            extra: vec![
                ("tx_dropped", self.tx.dropped),
                ("tx_errors", self.tx.errors),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_before_touching_the_kernel() {
        let err = TapDevice::open("a-name-much-too-long").err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("invalid interface name"), "{err}");
    }

    #[test]
    fn attaching_to_a_non_tap_interface_explains_itself() {
        if !sys::is_root() {
            println!("skipped: needs root");
            return;
        }
        // "lo" exists and is not a TAP: TUNSETIFF fails without creating
        // anything, so this is safe outside a namespace.
        let err = TapDevice::open("lo").err().unwrap();
        assert!(err.to_string().contains("TUNSETIFF"), "{err}");
        assert!(err.to_string().contains("on lo"), "{err}");
    }
}
