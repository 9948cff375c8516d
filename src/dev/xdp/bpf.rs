//! The XDP program and its XSKMAP, through the raw `bpf(2)` syscall: no
//! libbpf, no clang, no ELF.
//!
//! The program is six instruction slots:
//!
//! ```text
//! r2 = *(u32 *)(r1 + 16)   ; ctx->rx_queue_index
//! r1 = map_fd ll           ; the XSKMAP (ld_imm64, BPF_PSEUDO_MAP_FD; 2 slots)
//! r3 = 2                   ; XDP_PASS when the queue has no socket
//! call bpf_redirect_map
//! exit
//! ```
//!
//! It is attached with a BPF link, so it goes away when the link fd closes,
//! including when the process dies.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::sys::cvt;

// linux/bpf.h: commands.
const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
const BPF_LINK_CREATE: libc::c_int = 28;

const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
/// `enum bpf_attach_type`: BPF_XDP.
const BPF_XDP: u32 = 37;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const XDP_PASS: i32 = 2;
/// `offsetof(struct xdp_md, rx_queue_index)`.
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;

// linux/if_link.h
pub(crate) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub(crate) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

// Opcode pieces (linux/bpf_common.h, linux/bpf.h).
const BPF_LD: u8 = 0x00;
const BPF_LDX: u8 = 0x01;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_DW: u8 = 0x18;
const BPF_IMM: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_MOV: u8 = 0xb0;
const BPF_CALL: u8 = 0x80;
const BPF_EXIT: u8 = 0x90;

/// `struct bpf_insn`: the register nibbles share one byte, dst low, src high.
#[repr(C)]
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
pub(crate) struct BpfInsn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl BpfInsn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
        BpfInsn {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        }
    }
}

/// The redirect program for XSKMAP `map_fd`.
pub(crate) fn redirect_program(map_fd: RawFd) -> [BpfInsn; 6] {
    [
        // r2 = ctx->rx_queue_index (r1 holds ctx on entry)
        BpfInsn::new(BPF_LDX | BPF_MEM | BPF_W, 2, 1, XDP_MD_RX_QUEUE_INDEX, 0),
        // r1 = &xskmap: ld_imm64 with the map fd, second half zero
        BpfInsn::new(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, map_fd),
        BpfInsn::new(0, 0, 0, 0, 0),
        // r3 = XDP_PASS: what to do when the queue has no socket
        BpfInsn::new(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, XDP_PASS),
        // r0 = bpf_redirect_map(r1, r2, r3)
        BpfInsn::new(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        BpfInsn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ]
}

// The parts of `union bpf_attr` we use; the kernel zero-extends a shorter
// attr, so each command passes only its own prefix.

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoByFdAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// Start of `struct bpf_prog_info`.
#[repr(C)]
#[derive(Default)]
struct ProgInfoHead {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
}

fn name16(s: &str) -> [u8; 16] {
    let mut n = [0u8; 16];
    for (d, b) in n.iter_mut().zip(s.bytes().take(15)) {
        *d = b;
    }
    n
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_int> {
    // SAFETY: `attr` is a live, writable `#[repr(C)]` prefix of `union
    // bpf_attr` for `cmd`, of exactly the size we pass; every pointer inside
    // it points to memory the caller keeps alive across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    cvt(r as libc::c_int)
}

fn bpf_fd<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<OwnedFd> {
    let fd = bpf(cmd, attr)?;
    // SAFETY: the command returns a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn perm_hint(e: io::Error, what: &str) -> io::Error {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{what}: {e} (AF_XDP needs CAP_NET_RAW, CAP_NET_ADMIN and CAP_BPF, or root)"),
        ),
        _ => super::sys::context(e, what),
    }
}

/// An XSKMAP with room for `entries` queues.
pub(crate) fn create_xskmap(entries: u32) -> io::Result<OwnedFd> {
    let mut a = MapCreateAttr {
        map_type: BPF_MAP_TYPE_XSKMAP,
        key_size: 4,
        value_size: 4,
        max_entries: entries,
        map_name: name16("ringstack_xsks"),
        ..Default::default()
    };
    bpf_fd(BPF_MAP_CREATE, &mut a).map_err(|e| perm_hint(e, "BPF_MAP_CREATE (XSKMAP)"))
}

/// `map[queue] = socket fd`.
pub(crate) fn xskmap_set(map: &OwnedFd, queue: u32, sock: RawFd) -> io::Result<()> {
    let key = queue;
    let value = sock as u32;
    let mut a = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: &key as *const u32 as u64,
        value: &value as *const u32 as u64,
        flags: 0, // BPF_ANY
        ..Default::default()
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(drop).map_err(|e| {
        perm_hint(
            e,
            &format!("inserting the queue {queue} socket into the XSKMAP"),
        )
    })
}

/// Load the redirect program; on a verifier refusal the error carries the
/// verifier's log.
pub(crate) fn load_program(map: &OwnedFd) -> io::Result<OwnedFd> {
    let insns = redirect_program(map.as_raw_fd());
    let license = b"GPL\0";
    let attempt = |log: Option<&mut Vec<u8>>| {
        let mut a = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            prog_name: name16("ringstack_xsk"),
            expected_attach_type: BPF_XDP,
            ..Default::default()
        };
        if let Some(buf) = log {
            a.log_level = 1;
            a.log_size = buf.len() as u32;
            a.log_buf = buf.as_mut_ptr() as u64;
        }
        bpf_fd(BPF_PROG_LOAD, &mut a)
    };
    match attempt(None) {
        Ok(fd) => Ok(fd),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM)) => {
            Err(perm_hint(e, "BPF_PROG_LOAD (XDP)"))
        }
        Err(first) => {
            // Load again with the verifier log switched on, to say why.
            let mut log = vec![0u8; 64 * 1024];
            match attempt(Some(&mut log)) {
                Ok(fd) => Ok(fd),
                Err(_) => {
                    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                    let text = String::from_utf8_lossy(&log[..end]);
                    Err(io::Error::new(
                        first.kind(),
                        format!(
                            "BPF_PROG_LOAD (XDP): {first}; verifier log:\n{}",
                            text.trim_end()
                        ),
                    ))
                }
            }
        }
    }
}

/// Attach `prog` to `ifindex` through a BPF link in the given XDP mode
/// (`XDP_FLAGS_SKB_MODE` or `XDP_FLAGS_DRV_MODE`). Closing the returned fd
/// detaches it.
pub(crate) fn attach_link(
    prog: &OwnedFd,
    ifindex: u32,
    ifname: &str,
    flags: u32,
) -> io::Result<OwnedFd> {
    let mut a = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type: BPF_XDP,
        flags,
    };
    let mode = if flags & XDP_FLAGS_DRV_MODE != 0 {
        "driver"
    } else {
        "skb"
    };
    bpf_fd(BPF_LINK_CREATE, &mut a).map_err(|e| match e.raw_os_error() {
        Some(libc::EBUSY) | Some(libc::EEXIST) => io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "attaching XDP ({mode} mode) to {ifname}: {e}: another XDP program is \
                 already attached to {ifname} (see `ip link show dev {ifname}`; if it \
                 is stale, remove it with `ip link set dev {ifname} xdpgeneric off` \
                 or `xdpdrv off`)"
            ),
        ),
        _ => perm_hint(e, &format!("attaching XDP ({mode} mode) to {ifname}")),
    })
}

/// The kernel's id for a loaded program (as `bpftool prog show id N`).
pub(crate) fn prog_id(prog: &OwnedFd) -> io::Result<u32> {
    let mut info = ProgInfoHead::default();
    let mut a = InfoByFdAttr {
        bpf_fd: prog.as_raw_fd() as u32,
        info_len: std::mem::size_of::<ProgInfoHead>() as u32,
        info: &mut info as *mut ProgInfoHead as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut a)?;
    Ok(info.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insn_layout_matches_the_kernel() {
        assert_eq!(std::mem::size_of::<BpfInsn>(), 8);
        assert_eq!(std::mem::size_of::<ProgLoadAttr>(), 72);
        assert_eq!(std::mem::size_of::<MapCreateAttr>(), 44);
        assert_eq!(std::mem::size_of::<MapElemAttr>(), 32);
    }

    #[test]
    fn program_encoding() {
        let p = redirect_program(7);
        // ldxw r2, [r1 + 16]
        assert_eq!(
            p[0],
            BpfInsn {
                code: 0x61,
                regs: 0x12,
                off: 16,
                imm: 0
            }
        );
        // lddw r1, map_fd 7 (src = BPF_PSEUDO_MAP_FD)
        assert_eq!(
            p[1],
            BpfInsn {
                code: 0x18,
                regs: 0x11,
                off: 0,
                imm: 7
            }
        );
        assert_eq!(
            p[2],
            BpfInsn {
                code: 0,
                regs: 0,
                off: 0,
                imm: 0
            }
        );
        // mov64 r3, 2
        assert_eq!(
            p[3],
            BpfInsn {
                code: 0xb7,
                regs: 0x03,
                off: 0,
                imm: 2
            }
        );
        // call 51 (bpf_redirect_map)
        assert_eq!(
            p[4],
            BpfInsn {
                code: 0x85,
                regs: 0,
                off: 0,
                imm: 51
            }
        );
        assert_eq!(
            p[5],
            BpfInsn {
                code: 0x95,
                regs: 0,
                off: 0,
                imm: 0
            }
        );
    }

    #[test]
    fn names_are_truncated_and_terminated() {
        let n = name16("a_name_longer_than_fifteen");
        assert_eq!(n[15], 0);
        assert_eq!(&n[..15], b"a_name_longer_t");
    }
}
