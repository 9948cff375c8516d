//! Small, safe wrappers over the libc calls the Linux drivers share:
//! interface lookups by name (index, MAC, MTU, flags), file-descriptor flags,
//! `poll(2)` with a timeout, socket options, and an owned `mmap` region.
//!
//! Every failure comes back as an [`io::Error`] whose message names what was
//! being done and to what ("SIOCGIFMTU on va: ..."), with the same
//! [`io::ErrorKind`] as the underlying OS error; the OS error itself stays
//! reachable through [`std::error::Error::source`].

use crate::time::Duration;
use std::ffi::c_void;
use std::fmt;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

/// An OS error with a sentence saying what was being attempted.
#[derive(Debug)]
struct Context {
    what: String,
    source: io::Error,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

impl std::error::Error for Context {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Wrap `source` so its message starts with `what`; the kind is kept.
pub(crate) fn with_context(source: io::Error, what: impl Into<String>) -> io::Error {
    with_context_as(source.kind(), source, what)
}

/// Like [`with_context`], but with a different kind (say, `NotFound` for
/// ENODEV, which std files under `Uncategorized`).
pub(crate) fn with_context_as(
    kind: io::ErrorKind,
    source: io::Error,
    what: impl Into<String>,
) -> io::Error {
    io::Error::new(
        kind,
        Context {
            what: what.into(),
            source,
        },
    )
}

/// The last OS error (errno), explained by `what`, which runs only after
/// errno was read (building a message may allocate, which may touch errno).
pub(crate) fn last_error<S: Into<String>>(what: impl FnOnce() -> S) -> io::Error {
    let err = io::Error::last_os_error();
    with_context(err, what())
}

#[cfg(test)]
/// The errno of `err`, if it carries one (directly or as the source of a
/// [`with_context`] error).
pub(crate) fn errno_of(err: &io::Error) -> Option<i32> {
    if let Some(code) = err.raw_os_error() {
        return Some(code);
    }
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<Context>())
        .and_then(|ctx| ctx.source.raw_os_error())
}

/// A NUL-terminated interface name that fits `IFNAMSIZ`.
fn if_name_bytes(name: &str) -> io::Result<[libc::c_char; libc::IFNAMSIZ]> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.bytes().any(|b| b == 0 || b == b'/')
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "invalid interface name {name:?}: must be 1 to {} bytes, without NUL or '/'",
                libc::IFNAMSIZ - 1
            ),
        ));
    }
    let mut out = [0 as libc::c_char; libc::IFNAMSIZ];
    for (dst, src) in out.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(out)
}

/// A zeroed `ifreq` carrying `name`.
pub(crate) fn ifreq_for(name: &str) -> io::Result<libc::ifreq> {
    let ifr_name = if_name_bytes(name)?;
    // SAFETY: `ifreq` is a plain C struct (a name array and a union of
    // integers, sockaddrs and a pointer); all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { MaybeUninit::zeroed().assume_init() };
    req.ifr_name = ifr_name;
    Ok(req)
}

/// The name the kernel left in `req.ifr_name` (after TUNSETIFF, say).
pub(crate) fn ifreq_name(req: &libc::ifreq) -> String {
    let bytes: Vec<u8> = req
        .ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// "no such interface: foo" for ENODEV/ENXIO, `what on foo: ...` otherwise.
fn if_error(err: io::Error, what: &str, name: &str) -> io::Error {
    match err.raw_os_error() {
        Some(libc::ENODEV) | Some(libc::ENXIO) => with_context_as(
            io::ErrorKind::NotFound,
            err,
            format!("no such interface: {name}"),
        ),
        _ => with_context(err, format!("{what} on {name}")),
    }
}

/// A datagram socket to hang interface ioctls on. It needs no privilege and
/// sees the interfaces of the caller's network namespace.
fn ioctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; the result is checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(last_error(|| {
            "socket(AF_INET, SOCK_DGRAM) for interface ioctls"
        }));
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Run one of the `SIOC*IF*` ioctls that take an `ifreq` on interface `name`.
fn if_ioctl(name: &str, request: libc::c_ulong, what: &str) -> io::Result<libc::ifreq> {
    let mut req = ifreq_for(name)?;
    let sock = ioctl_socket()?;
    // SAFETY: every request passed here (SIOCGIFHWADDR, SIOCGIFMTU,
    // SIOCGIFFLAGS) reads the name from and writes its answer into the
    // `ifreq` we own, which lives across the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request as _, &mut req as *mut libc::ifreq) };
    if rc < 0 {
        return Err(if_error(io::Error::last_os_error(), what, name));
    }
    Ok(req)
}

/// The index of interface `name` in the caller's network namespace.
pub fn if_index(name: &str) -> io::Result<u32> {
    let cname = if_name_bytes(name)?;
    // SAFETY: `cname` is NUL-terminated (IFNAMSIZ bytes, name shorter than
    // that, rest zero) and outlives the call.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(if_error(io::Error::last_os_error(), "if_nametoindex", name));
    }
    Ok(index)
}

/// The hardware address of Ethernet interface `name` (SIOCGIFHWADDR).
///
/// Fails for interfaces without a 6-byte Ethernet address (TUN, IP tunnels);
/// loopback is accepted (its frames carry Ethernet headers of zeros).
pub fn if_mac(name: &str) -> io::Result<[u8; 6]> {
    let req = if_ioctl(name, libc::SIOCGIFHWADDR, "SIOCGIFHWADDR")?;
    // SAFETY: SIOCGIFHWADDR succeeded, so the kernel filled `ifru_hwaddr`.
    let addr = unsafe { req.ifr_ifru.ifru_hwaddr };
    let family = addr.sa_family;
    if family != libc::ARPHRD_ETHER && family != libc::ARPHRD_LOOPBACK {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("interface {name} is not Ethernet (hardware type {family})"),
        ));
    }
    let mut mac = [0u8; 6];
    for (dst, src) in mac.iter_mut().zip(addr.sa_data.iter()) {
        *dst = *src as u8;
    }
    Ok(mac)
}

/// The MTU of interface `name` (SIOCGIFMTU): the largest L3 packet.
pub fn if_mtu(name: &str) -> io::Result<usize> {
    let req = if_ioctl(name, libc::SIOCGIFMTU, "SIOCGIFMTU")?;
    // SAFETY: SIOCGIFMTU succeeded, so the kernel filled `ifru_mtu`.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    usize::try_from(mtu).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("SIOCGIFMTU on {name}: negative MTU {mtu}"),
        )
    })
}

#[allow(dead_code)] // not needed by packet/tap; kept for the AF_XDP driver
/// The interface flags of `name` (`IFF_UP`, `IFF_RUNNING`, ...).
pub fn if_flags(name: &str) -> io::Result<libc::c_int> {
    let req = if_ioctl(name, libc::SIOCGIFFLAGS, "SIOCGIFFLAGS")?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the kernel filled `ifru_flags`.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    Ok(libc::c_int::from(flags) & 0xffff)
}

/// Set `IFF_UP` on interface `name` (needs CAP_NET_ADMIN unless already up).
pub fn if_set_up(name: &str) -> io::Result<()> {
    let mut req = if_ioctl(name, libc::SIOCGIFFLAGS, "SIOCGIFFLAGS")?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the kernel filled `ifru_flags`.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    let sock = ioctl_socket()?;
    // SAFETY: SIOCSIFFLAGS reads the name and `ifru_flags` from the `ifreq`
    // we own, which lives across the call.
    let rc = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCSIFFLAGS as _,
            &mut req as *mut libc::ifreq,
        )
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        let hint = if err.raw_os_error() == Some(libc::EPERM) {
            " (need CAP_NET_ADMIN)"
        } else {
            ""
        };
        return Err(with_context(
            err,
            format!("bringing {name} up (SIOCSIFFLAGS IFF_UP){hint}"),
        ));
    }
    Ok(())
}

#[allow(dead_code)] // sockets here are opened non-blocking; kept for AF_XDP
/// Put `fd` in non-blocking mode.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(F_GETFL) takes no pointer; a bad fd yields EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(last_error(|| format!("fcntl(F_GETFL) on fd {fd}")));
    }
    if flags & libc::O_NONBLOCK != 0 {
        return Ok(());
    }
    // SAFETY: fcntl(F_SETFL) takes an integer argument, no pointer.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    if rc < 0 {
        return Err(last_error(|| {
            format!("fcntl(F_SETFL, O_NONBLOCK) on fd {fd}")
        }));
    }
    Ok(())
}

/// Wait until `fd` is readable (or has an error or hang-up to report) or
/// `timeout` passes; `None` waits forever. Returns whether `fd` is ready.
/// A signal cutting the wait short returns `Ok(false)`.
///
/// Uses `ppoll`, so sub-millisecond timeouts are not rounded to zero.
pub fn poll_readable(fd: RawFd, timeout: Option<Duration>) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts;
    let ts_ptr = match timeout {
        None => std::ptr::null(),
        Some(d) => {
            let micros = d.total_micros();
            // Anything beyond a century is "forever" for practical purposes
            // and must not overflow time_t.
            let secs = (micros / 1_000_000).min(100 * 365 * 86_400);
            ts = libc::timespec {
                tv_sec: secs as libc::time_t,
                tv_nsec: ((micros % 1_000_000) * 1000) as libc::c_long,
            };
            &ts as *const libc::timespec
        }
    };
    // SAFETY: `pfd` is one valid pollfd we own; `ts_ptr` is null or points
    // to `ts`, which lives to the end of this function; a null sigmask
    // leaves the signal mask alone.
    let rc = unsafe { libc::ppoll(&mut pfd, 1, ts_ptr, std::ptr::null()) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EINTR) {
            return Ok(false);
        }
        return Err(with_context(err, format!("poll on fd {fd}")));
    }
    if rc > 0 && pfd.revents & libc::POLLNVAL != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("poll on fd {fd}: not an open file descriptor"),
        ));
    }
    Ok(rc > 0)
}

/// `setsockopt(fd, level, name, value)`; `what` names the option and the
/// socket for the error message.
pub fn setsockopt<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
    what: &str,
) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of exactly `size_of::<T>()` bytes,
    // which the kernel only reads. Callers pass the C type the option expects.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value as *const T as *const c_void,
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(last_error(|| what));
    }
    Ok(())
}

/// `getsockopt(fd, level, name)` into a zero-initialised `T`.
///
/// Only for plain C types (integers and structs of integers), for which
/// all-zero bytes and any bytes the kernel writes are valid values.
pub fn getsockopt<T: Copy>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    what: &str,
) -> io::Result<T> {
    let mut value = MaybeUninit::<T>::zeroed();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `value`, which has
    // room for `size_of::<T>()` bytes; `len` is a live socklen_t.
    let rc =
        unsafe { libc::getsockopt(fd, level, name, value.as_mut_ptr() as *mut c_void, &mut len) };
    if rc < 0 {
        return Err(last_error(|| what));
    }
    // SAFETY: `value` started zeroed and the kernel wrote bytes of a `T`
    // into it; callers only use plain integer types, valid for any bytes.
    Ok(unsafe { value.assume_init() })
}

/// A shared, read-write memory mapping of a file descriptor, unmapped on drop.
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: an `Mmap` owns its mapping outright (no other Rust value aliases
// it), so moving it to another thread moves sole ownership; it exposes only
// raw pointers, whose users uphold their own synchronisation.
unsafe impl Send for Mmap {}

impl Mmap {
    /// Map `len` bytes of `fd` from offset 0, shared, readable and writable.
    pub fn shared(fd: RawFd, len: usize, what: &str) -> io::Result<Mmap> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{what}: cannot map zero bytes"),
            ));
        }
        // SAFETY: a fresh mapping chosen by the kernel (null hint) overlaps
        // no existing Rust object; the result is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(last_error(|| format!("{what}: mmap of {len} bytes")));
        }
        let ptr = NonNull::new(ptr as *mut u8)
            .ok_or_else(|| io::Error::other(format!("{what}: mmap returned null")))?;
        Ok(Mmap { ptr, len })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe exactly the mapping created in
        // `shared`, which nothing uses after the owning `Mmap` is dropped.
        unsafe {
            libc::munmap(self.ptr.as_ptr() as *mut c_void, self.len);
        }
    }
}

/// `OwnedFd` from a syscall result, or the OS error explained by `what`.
pub fn owned_fd<S: Into<String>>(rc: RawFd, what: impl FnOnce() -> S) -> io::Result<OwnedFd> {
    if rc < 0 {
        return Err(last_error(what));
    }
    // SAFETY: `rc` is a descriptor a syscall just returned to us; nobody else
    // owns it, so `OwnedFd` may close it on drop.
    Ok(unsafe { OwnedFd::from_raw_fd(rc) })
}

/// The page size of this machine.
pub fn page_size() -> usize {
    // SAFETY: sysconf takes no pointers.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as usize
    } else {
        4096
    }
}

#[cfg(test)]
/// Whether this process runs as root (for messages that suggest a fix).
pub fn is_root() -> bool {
    // SAFETY: geteuid takes no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Pin the calling thread to one CPU (`sched_setaffinity`).
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cpu {cpu} is beyond CPU_SETSIZE"),
        ));
    }
    // SAFETY: cpu_set_t is plain data for which all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above), the bound CPU_SET
    // needs to stay inside `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a live cpu_set_t and its size is passed; pid 0 is the
    // calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(last_error(|| format!("sched_setaffinity to cpu {cpu}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_interface_is_named_in_the_error() {
        let err = if_index("rsnosuch0").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(
            err.to_string().contains("no such interface: rsnosuch0"),
            "{err}"
        );
        let err = if_mtu("rsnosuch0").unwrap_err();
        assert!(
            err.to_string().contains("no such interface: rsnosuch0"),
            "{err}"
        );
        let err = if_mac("rsnosuch0").unwrap_err();
        assert!(
            err.to_string().contains("no such interface: rsnosuch0"),
            "{err}"
        );
        assert_eq!(errno_of(&err), Some(libc::ENODEV));
    }

    #[test]
    fn bad_interface_names_are_rejected_before_any_syscall() {
        for name in ["", "a-name-that-is-too-long", "a\0b", "a/b"] {
            let err = if_index(name).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name:?}");
            assert!(err.to_string().contains("invalid interface name"));
        }
    }

    #[test]
    fn loopback_lookups_work_without_privilege() {
        assert!(if_index("lo").unwrap() > 0);
        assert!(if_mtu("lo").unwrap() >= 1500);
        assert_eq!(if_mac("lo").unwrap(), [0; 6]);
        assert!(if_flags("lo").is_ok());
    }

    #[test]
    fn poll_times_out_and_sees_readable_data() {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
        let rd = owned_fd(if rc < 0 { rc } else { fds[0] }, || "pipe2").unwrap();
        let wr = owned_fd(fds[1], || "pipe2").unwrap();
        set_nonblocking(rd.as_raw_fd()).unwrap();
        let t = std::time::Instant::now();
        assert!(!poll_readable(rd.as_raw_fd(), Some(Duration::from_micros(2000))).unwrap());
        assert!(t.elapsed() >= std::time::Duration::from_micros(1500));
        assert!(!poll_readable(rd.as_raw_fd(), Some(Duration::ZERO)).unwrap());
        // SAFETY: writes one byte from a live buffer to a pipe we own.
        let n = unsafe { libc::write(wr.as_raw_fd(), b"x".as_ptr() as *const c_void, 1) };
        assert_eq!(n, 1);
        assert!(poll_readable(rd.as_raw_fd(), Some(Duration::MAX)).unwrap());
        assert!(poll_readable(rd.as_raw_fd(), None).unwrap());
    }

    #[test]
    fn poll_on_a_closed_fd_is_an_error() {
        let fd = {
            let sock = ioctl_socket().unwrap();
            sock.as_raw_fd()
        };
        // `fd` is closed now; unless another thread reused the number, poll
        // reports POLLNVAL. Tolerate the race rather than flake.
        if let Err(err) = poll_readable(fd, Some(Duration::ZERO)) {
            assert!(err.to_string().contains("not an open file descriptor"));
        }
    }

    #[test]
    fn errors_keep_their_kind_and_source() {
        let err = with_context(
            io::Error::from_raw_os_error(libc::EPERM),
            "AF_PACKET socket on va",
        );
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(err.to_string().starts_with("AF_PACKET socket on va: "));
        assert_eq!(errno_of(&err), Some(libc::EPERM));
    }
}
