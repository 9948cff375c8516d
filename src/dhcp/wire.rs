//! DHCPv4 message format (RFC 2131 §2, RFC 951 for the BOOTP part) and the
//! options this crate understands (RFC 2132, RFC 3396, RFC 4039).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +---------------+---------------+---------------+---------------+
//! |     op (1)    |   htype (1)   |   hlen (1)    |   hops (1)    |
//! +---------------+---------------+---------------+---------------+
//! |                            xid (4)                            |
//! +-------------------------------+-------------------------------+
//! |           secs (2)            |           flags (2)           |
//! +-------------------------------+-------------------------------+
//! |                          ciaddr  (4)                          |
//! |                          yiaddr  (4)                          |
//! |                          siaddr  (4)                          |
//! |                          giaddr  (4)                          |
//! +---------------------------------------------------------------+
//! |                          chaddr  (16)                         |
//! |                          sname   (64)                         |
//! |                          file    (128)                        |
//! +---------------------------------------------------------------+
//! |              magic cookie 99.130.83.99 (4)                    |
//! |                          options (variable)                   |
//! +---------------------------------------------------------------+
//! ```
//!
//! [`Repr::parse`] gathers the options from the options field and, when
//! option 52 says so, from `file` and `sname`, concatenating repeated codes
//! as RFC 3396 asks. Known options with a malformed value are dropped (the
//! message is not), except the message type, without which a message is not
//! DHCP. Unknown options are kept, up to [`MAX_OTHER_OPTIONS`], so a server
//! can relay what it does not understand. [`Repr::emit`] writes everything
//! into the options field (never overloading), splitting values longer than
//! 255 bytes into consecutive options.

use core::net::Ipv4Addr;

use crate::eth::MacAddr;

pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;

/// The fixed BOOTP part, up to the magic cookie.
pub const HEADER_LEN: usize = 236;
/// Where the options field starts, after the cookie.
pub const OPTIONS_OFFSET: usize = 240;
/// RFC 2131 §3: "The first four octets of the 'options' field of the DHCP
/// message contain the (decimal) values 99, 130, 83 and 99".
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// RFC 1542 §2.1: BOOTP relays and old servers may drop messages shorter
/// than 300 bytes, so [`Repr::emit`] pads to this.
pub const MIN_MESSAGE_LEN: usize = 300;
/// RFC 2131 §2: "a DHCP client must be prepared to receive DHCP messages
/// with an 'options' field of at least length 312 octets", i.e. a 576-byte
/// message; what a server may send a client that names no larger size.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 576;
/// The broadcast bit of `flags` (RFC 2131 §2, figure 2).
pub const BROADCAST_FLAG: u16 = 0x8000;
/// Unknown options kept per message; more are dropped.
pub const MAX_OTHER_OPTIONS: usize = 64;
/// Addresses kept per list option (routers, DNS servers); more are dropped.
pub const MAX_ADDRS: usize = 16;

/// Hardware type of Ethernet in `htype` (RFC 1700, ARP hardware types).
pub const HTYPE_ETHERNET: u8 = 1;

mod field {
    use core::ops::Range;

    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const HOPS: usize = 3;
    pub const XID: Range<usize> = 4..8;
    pub const SECS: Range<usize> = 8..10;
    pub const FLAGS: Range<usize> = 10..12;
    pub const CIADDR: Range<usize> = 12..16;
    pub const YIADDR: Range<usize> = 16..20;
    pub const SIADDR: Range<usize> = 20..24;
    pub const GIADDR: Range<usize> = 24..28;
    pub const CHADDR: Range<usize> = 28..44;
    pub const SNAME: Range<usize> = 44..108;
    pub const FILE: Range<usize> = 108..236;
    pub const MAGIC: Range<usize> = 236..240;
}

/// Option codes (RFC 2132 unless noted).
pub mod opt {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const ROUTER: u8 = 3;
    pub const DNS: u8 = 6;
    pub const HOSTNAME: u8 = 12;
    pub const DOMAIN_NAME: u8 = 15;
    pub const BROADCAST_ADDR: u8 = 28;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const OVERLOAD: u8 = 52;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const PARAMETER_LIST: u8 = 55;
    pub const MESSAGE: u8 = 56;
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    pub const RENEWAL_TIME: u8 = 58;
    pub const REBINDING_TIME: u8 = 59;
    pub const CLIENT_ID: u8 = 61;
    /// RFC 4039.
    pub const RAPID_COMMIT: u8 = 80;
    pub const END: u8 = 255;
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Error {
    /// Shorter than the fixed header and the magic cookie.
    Truncated,
    /// No DHCP magic cookie: plain BOOTP, or not BOOTP at all.
    BadCookie,
    /// `op` is neither BOOTREQUEST nor BOOTREPLY.
    BadOp,
    /// `hlen` over 16, the size of `chaddr`.
    BadHardwareLength,
    /// An option's length runs past the end of its field.
    BadOption,
    /// No message type option (53): BOOTP, not DHCP.
    NoMessageType,
    /// A message type option that is not one byte of 1..=8.
    BadMessageType,
}

impl Error {
    pub fn as_str(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadCookie => "bad_cookie",
            Error::BadOp => "bad_op",
            Error::BadHardwareLength => "bad_hardware_length",
            Error::BadOption => "bad_option",
            Error::NoMessageType => "no_message_type",
            Error::BadMessageType => "bad_message_type",
        }
    }
}

error_via_as_str!(Error);

#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum Op {
    /// BOOTREQUEST, client to server.
    Request,
    /// BOOTREPLY, server to client.
    Reply,
}

/// Option 53 (RFC 2132 §9.6).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum MessageType {
    Discover,
    Offer,
    Request,
    Decline,
    Ack,
    Nak,
    Release,
    Inform,
}

impl MessageType {
    pub fn from_u8(v: u8) -> Option<MessageType> {
        Some(match v {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            _ => return None,
        })
    }

    pub fn to_u8(self) -> u8 {
        match self {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Discover => "DHCPDISCOVER",
            MessageType::Offer => "DHCPOFFER",
            MessageType::Request => "DHCPREQUEST",
            MessageType::Decline => "DHCPDECLINE",
            MessageType::Ack => "DHCPACK",
            MessageType::Nak => "DHCPNAK",
            MessageType::Release => "DHCPRELEASE",
            MessageType::Inform => "DHCPINFORM",
        }
    }
}

/// A read/write view of a DHCP message (the UDP payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it; accessors may panic until
    /// [`Packet::check_len`] has succeeded.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The fixed header and the cookie fit, the cookie is DHCP's, and
    /// `hlen` fits `chaddr`. Options are checked by [`Repr::parse`].
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < OPTIONS_OFFSET {
            return Err(Error::Truncated);
        }
        if b[field::MAGIC] != MAGIC_COOKIE {
            return Err(Error::BadCookie);
        }
        if usize::from(b[field::HLEN]) > field::CHADDR.len() {
            return Err(Error::BadHardwareLength);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn be16(&self, r: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    fn addr(&self, r: core::ops::Range<usize>) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[r];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The raw `op` byte: 1 BOOTREQUEST, 2 BOOTREPLY.
    pub fn op(&self) -> u8 {
        self.buffer.as_ref()[field::OP]
    }

    pub fn htype(&self) -> u8 {
        self.buffer.as_ref()[field::HTYPE]
    }

    pub fn hlen(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    pub fn hops(&self) -> u8 {
        self.buffer.as_ref()[field::HOPS]
    }

    pub fn xid(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::XID];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    pub fn secs(&self) -> u16 {
        self.be16(field::SECS)
    }

    pub fn flags(&self) -> u16 {
        self.be16(field::FLAGS)
    }

    pub fn broadcast(&self) -> bool {
        self.flags() & BROADCAST_FLAG != 0
    }

    pub fn ciaddr(&self) -> Ipv4Addr {
        self.addr(field::CIADDR)
    }

    pub fn yiaddr(&self) -> Ipv4Addr {
        self.addr(field::YIADDR)
    }

    pub fn siaddr(&self) -> Ipv4Addr {
        self.addr(field::SIADDR)
    }

    pub fn giaddr(&self) -> Ipv4Addr {
        self.addr(field::GIADDR)
    }

    /// All 16 bytes of `chaddr`; the address is the first `hlen`.
    pub fn chaddr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::CHADDR]
    }

    pub fn sname(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SNAME]
    }

    pub fn file(&self) -> &[u8] {
        &self.buffer.as_ref()[field::FILE]
    }

    /// Everything after the cookie.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[OPTIONS_OFFSET..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_be16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    fn set_addr(&mut self, r: core::ops::Range<usize>, a: Ipv4Addr) {
        self.buffer.as_mut()[r].copy_from_slice(&a.octets());
    }

    pub fn set_op(&mut self, v: u8) {
        self.buffer.as_mut()[field::OP] = v;
    }

    pub fn set_htype(&mut self, v: u8) {
        self.buffer.as_mut()[field::HTYPE] = v;
    }

    pub fn set_hlen(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v;
    }

    pub fn set_hops(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOPS] = v;
    }

    pub fn set_xid(&mut self, v: u32) {
        self.buffer.as_mut()[field::XID].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_secs(&mut self, v: u16) {
        self.set_be16(field::SECS, v)
    }

    pub fn set_flags(&mut self, v: u16) {
        self.set_be16(field::FLAGS, v)
    }

    pub fn set_ciaddr(&mut self, a: Ipv4Addr) {
        self.set_addr(field::CIADDR, a)
    }

    pub fn set_yiaddr(&mut self, a: Ipv4Addr) {
        self.set_addr(field::YIADDR, a)
    }

    pub fn set_siaddr(&mut self, a: Ipv4Addr) {
        self.set_addr(field::SIADDR, a)
    }

    pub fn set_giaddr(&mut self, a: Ipv4Addr) {
        self.set_addr(field::GIADDR, a)
    }

    pub fn set_chaddr(&mut self, v: &[u8; 16]) {
        self.buffer.as_mut()[field::CHADDR].copy_from_slice(v)
    }

    pub fn set_sname(&mut self, v: &[u8; 64]) {
        self.buffer.as_mut()[field::SNAME].copy_from_slice(v)
    }

    pub fn set_file(&mut self, v: &[u8; 128]) {
        self.buffer.as_mut()[field::FILE].copy_from_slice(v)
    }

    pub fn set_magic(&mut self) {
        self.buffer.as_mut()[field::MAGIC].copy_from_slice(&MAGIC_COOKIE)
    }

    pub fn options_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[OPTIONS_OFFSET..]
    }
}

/// The options of a message, typed where this crate uses them.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Options {
    /// 1.
    pub subnet_mask: Option<Ipv4Addr>,
    /// 3, in preference order.
    pub routers: Vec<Ipv4Addr>,
    /// 6, in preference order.
    pub dns_servers: Vec<Ipv4Addr>,
    /// 12.
    pub hostname: Option<String>,
    /// 15.
    pub domain_name: Option<String>,
    /// 28.
    pub broadcast_addr: Option<Ipv4Addr>,
    /// 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// 51, seconds; `u32::MAX` is infinity (RFC 2131 §3.3).
    pub lease_time: Option<u32>,
    /// 54.
    pub server_id: Option<Ipv4Addr>,
    /// 55.
    pub parameter_request_list: Vec<u8>,
    /// 56: why a server sent DHCPNAK, or why a client declined.
    pub message: Option<String>,
    /// 57.
    pub max_message_size: Option<u16>,
    /// 58, T1 in seconds.
    pub renewal_time: Option<u32>,
    /// 59, T2 in seconds.
    pub rebinding_time: Option<u32>,
    /// 61, type byte first.
    pub client_id: Option<Vec<u8>>,
    /// 80 (RFC 4039).
    pub rapid_commit: bool,
    /// Everything else, in the order first seen, at most
    /// [`MAX_OTHER_OPTIONS`].
    pub other: Vec<(u8, Vec<u8>)>,
}

impl Options {
    /// The value of an unknown option, if present.
    pub fn other(&self, code: u8) -> Option<&[u8]> {
        self.other
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| &v[..])
    }

    /// Calls `f` with every option to send, message type first (after the
    /// caller), in one fixed order so that emit is deterministic.
    fn for_each(&self, f: &mut impl FnMut(u8, &[u8])) {
        let be32 = |v: u32| v.to_be_bytes();
        if let Some(a) = self.server_id {
            f(opt::SERVER_ID, &a.octets());
        }
        if let Some(v) = self.lease_time {
            f(opt::LEASE_TIME, &be32(v));
        }
        if let Some(v) = self.renewal_time {
            f(opt::RENEWAL_TIME, &be32(v));
        }
        if let Some(v) = self.rebinding_time {
            f(opt::REBINDING_TIME, &be32(v));
        }
        if let Some(a) = self.subnet_mask {
            f(opt::SUBNET_MASK, &a.octets());
        }
        if let Some(a) = self.broadcast_addr {
            f(opt::BROADCAST_ADDR, &a.octets());
        }
        for (code, list) in [(opt::ROUTER, &self.routers), (opt::DNS, &self.dns_servers)] {
            if !list.is_empty() {
                let mut buf = [0u8; 4 * MAX_ADDRS];
                let n = list.len().min(MAX_ADDRS);
                for (chunk, a) in buf.chunks_exact_mut(4).zip(&list[..n]) {
                    chunk.copy_from_slice(&a.octets());
                }
                f(code, &buf[..4 * n]);
            }
        }
        if let Some(s) = &self.domain_name {
            f(opt::DOMAIN_NAME, s.as_bytes());
        }
        if let Some(s) = &self.hostname {
            f(opt::HOSTNAME, s.as_bytes());
        }
        if let Some(a) = self.requested_ip {
            f(opt::REQUESTED_IP, &a.octets());
        }
        if let Some(id) = &self.client_id {
            f(opt::CLIENT_ID, id);
        }
        if !self.parameter_request_list.is_empty() {
            f(opt::PARAMETER_LIST, &self.parameter_request_list);
        }
        if let Some(v) = self.max_message_size {
            f(opt::MAX_MESSAGE_SIZE, &v.to_be_bytes());
        }
        if self.rapid_commit {
            f(opt::RAPID_COMMIT, &[]);
        }
        if let Some(s) = &self.message {
            f(opt::MESSAGE, s.as_bytes());
        }
        // Codes that would break the framing or repeat the message type are
        // never sent from `other`; parse never puts them there.
        for (code, v) in self.other.iter().take(MAX_OTHER_OPTIONS) {
            if !matches!(
                *code,
                opt::PAD | opt::END | opt::OVERLOAD | opt::MESSAGE_TYPE
            ) {
                f(*code, v);
            }
        }
    }
}

/// A parsed DHCP message. Owns its options: DHCP is not on the fast path,
/// and a client or server keeps parts of a message across calls.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Repr {
    pub op: Op,
    pub message_type: MessageType,
    pub htype: u8,
    pub hlen: u8,
    pub hops: u8,
    pub xid: u32,
    pub secs: u16,
    /// The broadcast bit; the other 15 bits "MUST be zero" (RFC 2131 §2)
    /// and are neither kept nor sent.
    pub broadcast: bool,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 16],
    /// Zero when option 52 used it for options.
    pub sname: [u8; 64],
    /// Zero when option 52 used it for options.
    pub file: [u8; 128],
    pub options: Options,
}

/// Where the bytes of each option code go while the areas are walked:
/// repeated codes concatenate (RFC 3396 §7).
struct Gather {
    /// Per code, 1 + index into `values`; 0 means not seen.
    index: [u16; 256],
    values: Vec<(u8, Vec<u8>)>,
}

impl Gather {
    fn new() -> Gather {
        Gather {
            index: [0; 256],
            values: Vec::new(),
        }
    }

    fn push(&mut self, code: u8, v: &[u8]) {
        match self.index[usize::from(code)] {
            0 => {
                self.values.push((code, v.to_vec()));
                self.index[usize::from(code)] = self.values.len() as u16;
            }
            i => self.values[usize::from(i) - 1].1.extend_from_slice(v),
        }
    }

    /// Walks one area (options, file or sname) to END or its end.
    fn walk(&mut self, area: &[u8]) -> Result<(), Error> {
        let mut i = 0;
        while i < area.len() {
            match area[i] {
                opt::PAD => i += 1,
                opt::END => return Ok(()),
                code => {
                    let len = usize::from(*area.get(i + 1).ok_or(Error::BadOption)?);
                    let v = area.get(i + 2..i + 2 + len).ok_or(Error::BadOption)?;
                    self.push(code, v);
                    i += 2 + len;
                }
            }
        }
        Ok(())
    }
}

fn ipv4(v: &[u8]) -> Option<Ipv4Addr> {
    let b: [u8; 4] = v.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}

fn be32(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.try_into().ok()?))
}

fn addr_list(v: &[u8]) -> Vec<Ipv4Addr> {
    if v.is_empty() || !v.len().is_multiple_of(4) {
        return Vec::new();
    }
    v.chunks_exact(4)
        .take(MAX_ADDRS)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .collect()
}

/// RFC 2132 §2: strings are "not null terminated", but some implementations
/// add one (or several); they are stripped. Empty or not UTF-8: dropped.
fn text(v: &[u8]) -> Option<String> {
    let end = v.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    let s = core::str::from_utf8(&v[..end]).ok()?;
    (!s.is_empty()).then(|| s.to_owned())
}

impl Repr {
    /// A message with every field zero but these, Ethernet `chaddr`, and no
    /// options.
    pub fn new(op: Op, message_type: MessageType, xid: u32, chaddr: MacAddr) -> Repr {
        let mut ch = [0u8; 16];
        ch[..6].copy_from_slice(chaddr.as_bytes());
        Repr {
            op,
            message_type,
            htype: HTYPE_ETHERNET,
            hlen: 6,
            hops: 0,
            xid,
            secs: 0,
            broadcast: false,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr: ch,
            sname: [0; 64],
            file: [0; 128],
            options: Options::default(),
        }
    }

    /// `chaddr` as a MAC address, when `htype` and `hlen` say Ethernet.
    pub fn client_mac(&self) -> Option<MacAddr> {
        (self.htype == HTYPE_ETHERNET && self.hlen == 6)
            .then(|| MacAddr::from_bytes(&self.chaddr))
            .flatten()
    }

    /// Checks the header, walks the option areas, and types what it knows.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&T>) -> Result<Repr, Error> {
        p.check_len()?;
        let op = match p.op() {
            1 => Op::Request,
            2 => Op::Reply,
            _ => return Err(Error::BadOp),
        };
        let mut g = Gather::new();
        g.walk(p.options())?;
        // RFC 2131 §4.1: option 52 "MUST appear only in the 'options'
        // field"; a value other than 1..=3 overloads nothing.
        let overload = match g.index[usize::from(opt::OVERLOAD)] {
            0 => 0,
            i => match g.values[usize::from(i) - 1].1[..] {
                [v @ 1..=3] => v,
                _ => 0,
            },
        };
        let mut sname = [0u8; 64];
        let mut file = [0u8; 128];
        sname.copy_from_slice(p.sname());
        file.copy_from_slice(p.file());
        // RFC 3396 §7: the options field, then file, then sname.
        if overload & 1 != 0 {
            g.walk(p.file())?;
            file = [0; 128];
        }
        if overload & 2 != 0 {
            g.walk(p.sname())?;
            sname = [0; 64];
        }

        let mut message_type = None;
        let mut o = Options::default();
        for (code, v) in g.values {
            match code {
                opt::MESSAGE_TYPE => {
                    let t = match v[..] {
                        [t] => MessageType::from_u8(t),
                        _ => None,
                    };
                    message_type = Some(t.ok_or(Error::BadMessageType)?);
                }
                opt::OVERLOAD => {}
                opt::SUBNET_MASK => o.subnet_mask = ipv4(&v),
                opt::ROUTER => o.routers = addr_list(&v),
                opt::DNS => o.dns_servers = addr_list(&v),
                opt::HOSTNAME => o.hostname = text(&v),
                opt::DOMAIN_NAME => o.domain_name = text(&v),
                opt::BROADCAST_ADDR => o.broadcast_addr = ipv4(&v),
                opt::REQUESTED_IP => o.requested_ip = ipv4(&v),
                opt::LEASE_TIME => o.lease_time = be32(&v),
                opt::SERVER_ID => o.server_id = ipv4(&v),
                opt::PARAMETER_LIST => o.parameter_request_list = v,
                opt::MESSAGE => o.message = text(&v),
                opt::MAX_MESSAGE_SIZE => {
                    o.max_message_size = <[u8; 2]>::try_from(&v[..]).ok().map(u16::from_be_bytes)
                }
                opt::RENEWAL_TIME => o.renewal_time = be32(&v),
                opt::REBINDING_TIME => o.rebinding_time = be32(&v),
                // RFC 2132 §9.14: "The code for this option is 61, and its
                // minimum length is 2."
                opt::CLIENT_ID => o.client_id = (v.len() >= 2).then_some(v),
                opt::RAPID_COMMIT => o.rapid_commit = v.is_empty(),
                _ => {
                    if o.other.len() < MAX_OTHER_OPTIONS {
                        o.other.push((code, v));
                    }
                }
            }
        }
        let mut chaddr = [0u8; 16];
        chaddr.copy_from_slice(p.chaddr());
        Ok(Repr {
            op,
            message_type: message_type.ok_or(Error::NoMessageType)?,
            htype: p.htype(),
            hlen: p.hlen(),
            hops: p.hops(),
            xid: p.xid(),
            secs: p.secs(),
            broadcast: p.broadcast(),
            ciaddr: p.ciaddr(),
            yiaddr: p.yiaddr(),
            siaddr: p.siaddr(),
            giaddr: p.giaddr(),
            chaddr,
            sname,
            file,
            options: o,
        })
    }

    /// Parses a UDP payload: [`Packet::new_checked`] then [`Repr::parse`].
    pub fn parse_bytes(bytes: &[u8]) -> Result<Repr, Error> {
        Repr::parse(&Packet::new_checked(bytes)?)
    }

    /// The bytes the options take with the message type and END, values
    /// over 255 bytes split across several options.
    fn options_len(&self) -> usize {
        let mut n = 3 + 1; // message type, END
        self.options.for_each(&mut |_, v| n += option_len(v.len()));
        n
    }

    /// The length [`Repr::emit`] writes: header, cookie, options and END,
    /// padded to [`MIN_MESSAGE_LEN`].
    pub fn buffer_len(&self) -> usize {
        (OPTIONS_OFFSET + self.options_len()).max(MIN_MESSAGE_LEN)
    }

    /// Writes the message into the first [`Repr::buffer_len`] bytes and
    /// zeroes the rest.
    ///
    /// # Panics
    /// If the buffer is shorter than [`Repr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_op(match self.op {
            Op::Request => 1,
            Op::Reply => 2,
        });
        p.set_htype(self.htype);
        p.set_hlen(self.hlen);
        p.set_hops(self.hops);
        p.set_xid(self.xid);
        p.set_secs(self.secs);
        p.set_flags(if self.broadcast { BROADCAST_FLAG } else { 0 });
        p.set_ciaddr(self.ciaddr);
        p.set_yiaddr(self.yiaddr);
        p.set_siaddr(self.siaddr);
        p.set_giaddr(self.giaddr);
        p.set_chaddr(&self.chaddr);
        p.set_sname(&self.sname);
        p.set_file(&self.file);
        p.set_magic();
        let out = p.options_mut();
        let mut at = 0;
        let mut put = |code: u8, v: &[u8]| {
            if v.is_empty() {
                out[at..at + 2].copy_from_slice(&[code, 0]);
                at += 2;
            }
            for chunk in v.chunks(255) {
                out[at] = code;
                out[at + 1] = chunk.len() as u8;
                out[at + 2..at + 2 + chunk.len()].copy_from_slice(chunk);
                at += 2 + chunk.len();
            }
        };
        put(opt::MESSAGE_TYPE, &[self.message_type.to_u8()]);
        self.options.for_each(&mut put);
        out[at] = opt::END;
        out[at + 1..].fill(opt::PAD);
    }

    /// [`Repr::emit`] into a new buffer of [`Repr::buffer_len`] bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut v[..]));
        v
    }
}

/// Bytes one option value takes on the wire, split into 255-byte pieces.
fn option_len(n: usize) -> usize {
    if n == 0 {
        2
    } else {
        n + 2 * n.div_ceil(255)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lays out a message by hand: the 28 bytes from `op` to `giaddr`, the
    /// client's MAC padded to 16, `sname`, `file`, the cookie, `options`.
    fn message(head: [u8; 28], mac: [u8; 6], sname: &[u8], file: &[u8], options: &[u8]) -> Vec<u8> {
        let mut m = head.to_vec();
        m.extend_from_slice(&mac);
        m.extend_from_slice(&[0; 10]);
        let mut s = [0u8; 64];
        s[..sname.len()].copy_from_slice(sname);
        m.extend_from_slice(&s);
        let mut f = [0u8; 128];
        f[..file.len()].copy_from_slice(file);
        m.extend_from_slice(&f);
        m.extend_from_slice(&[0x63, 0x82, 0x53, 0x63]);
        m.extend_from_slice(options);
        m
    }

    const CLIENT_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    /// A BusyBox udhcpc DISCOVER: xid 0x3903f326, broadcast bit clear,
    /// client id type 1 + MAC, max size 576, its usual parameter list and
    /// vendor class, padded to 300 bytes.
    fn udhcpc_discover() -> Vec<u8> {
        #[rustfmt::skip]
        let head = [
            0x01, 0x01, 0x06, 0x00, // BOOTREQUEST, Ethernet, hlen 6, hops 0
            0x39, 0x03, 0xf3, 0x26, // xid
            0x00, 0x00, 0x00, 0x00, // secs, flags
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ciaddr..giaddr
        ];
        #[rustfmt::skip]
        let mut opts = vec![
            53, 1, 1,                                   // DHCPDISCOVER
            61, 7, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // client id
            57, 2, 0x02, 0x40,                          // max size 576
            55, 7, 1, 3, 6, 12, 15, 28, 42,             // parameter list
            60, 12, b'u', b'd', b'h', b'c', b'p', b' ', b'1', b'.', b'3', b'6', b'.', b'1',
            255,
        ];
        opts.resize(300 - 240, 0);
        message(head, CLIENT_MAC, &[], &[], &opts)
    }

    /// A dnsmasq OFFER of 192.168.1.57 from 192.168.1.1: broadcast bit set
    /// (the client asked), siaddr the server, hour lease with T1 and T2,
    /// mask, broadcast address, router, DNS and domain "lan".
    fn dnsmasq_offer() -> Vec<u8> {
        #[rustfmt::skip]
        let head = [
            0x02, 0x01, 0x06, 0x00, // BOOTREPLY
            0x39, 0x03, 0xf3, 0x26,
            0x00, 0x00, 0x80, 0x00, // secs 0, broadcast
            0, 0, 0, 0,             // ciaddr
            192, 168, 1, 57,        // yiaddr
            192, 168, 1, 1,         // siaddr
            0, 0, 0, 0,             // giaddr
        ];
        #[rustfmt::skip]
        let opts = [
            53, 1, 2,
            54, 4, 192, 168, 1, 1,
            51, 4, 0x00, 0x00, 0x0e, 0x10, // 3600 s
            58, 4, 0x00, 0x00, 0x07, 0x08, // 1800 s
            59, 4, 0x00, 0x00, 0x0c, 0x4e, // 3150 s
            1, 4, 255, 255, 255, 0,
            28, 4, 192, 168, 1, 255,
            3, 4, 192, 168, 1, 1,
            6, 4, 192, 168, 1, 1,
            15, 3, b'l', b'a', b'n',
            255,
        ];
        message(head, CLIENT_MAC, &[], &[], &opts)
    }

    #[test]
    fn deconstructs_udhcpc_discover() {
        let bytes = udhcpc_discover();
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            (p.op(), p.htype(), p.hlen(), p.xid()),
            (1, 1, 6, 0x3903_f326)
        );
        assert!(!p.broadcast());
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r.op, Op::Request);
        assert_eq!(r.message_type, MessageType::Discover);
        assert_eq!(r.client_mac(), Some(MacAddr(CLIENT_MAC)));
        let o = &r.options;
        assert_eq!(
            o.client_id.as_deref(),
            Some(&[1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56][..])
        );
        assert_eq!(o.max_message_size, Some(576));
        assert_eq!(o.parameter_request_list, [1, 3, 6, 12, 15, 28, 42]);
        assert_eq!(o.other(60), Some(&b"udhcp 1.36.1"[..]));
        assert_eq!(o.other.len(), 1);
        assert!(!o.rapid_commit && o.server_id.is_none() && o.requested_ip.is_none());
    }

    #[test]
    fn deconstructs_dnsmasq_offer() {
        let bytes = dnsmasq_offer();
        let r = Repr::parse_bytes(&bytes).unwrap();
        assert_eq!(r.op, Op::Reply);
        assert_eq!(r.message_type, MessageType::Offer);
        assert!(r.broadcast);
        assert_eq!(r.yiaddr, Ipv4Addr::new(192, 168, 1, 57));
        assert_eq!(r.siaddr, Ipv4Addr::new(192, 168, 1, 1));
        let o = &r.options;
        assert_eq!(o.server_id, Some(Ipv4Addr::new(192, 168, 1, 1)));
        assert_eq!(
            (o.lease_time, o.renewal_time, o.rebinding_time),
            (Some(3600), Some(1800), Some(3150))
        );
        assert_eq!(o.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(o.broadcast_addr, Some(Ipv4Addr::new(192, 168, 1, 255)));
        assert_eq!(o.routers, [Ipv4Addr::new(192, 168, 1, 1)]);
        assert_eq!(o.dns_servers, [Ipv4Addr::new(192, 168, 1, 1)]);
        assert_eq!(o.domain_name.as_deref(), Some("lan"));
        assert!(o.other.is_empty());
    }

    #[test]
    fn constructs_dnsmasq_offer_byte_for_byte() {
        let bytes = dnsmasq_offer();
        let r = Repr::parse_bytes(&bytes).unwrap();
        let out = r.to_vec();
        // dnsmasq sent 297 bytes; we pad to the BOOTP minimum of 300.
        assert_eq!(bytes.len(), 297);
        assert_eq!(out.len(), MIN_MESSAGE_LEN);
        assert_eq!(&out[..297], &bytes[..]);
        assert_eq!(&out[297..], &[0, 0, 0]);
    }

    #[test]
    fn constructs_a_discover_exactly() {
        let mut r = Repr::new(
            Op::Request,
            MessageType::Discover,
            0x3903_f326,
            MacAddr(CLIENT_MAC),
        );
        r.options.client_id = Some(vec![1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        r.options.parameter_request_list = vec![1, 3, 6, 12, 15, 28, 42];
        r.options.max_message_size = Some(576);
        r.options.other.push((60, b"udhcp 1.36.1".to_vec()));
        // The udhcpc capture with our option order: 53, 61, 55, 57, 60.
        #[rustfmt::skip]
        let mut opts = vec![
            53, 1, 1,
            61, 7, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56,
            55, 7, 1, 3, 6, 12, 15, 28, 42,
            57, 2, 0x02, 0x40,
            60, 12, b'u', b'd', b'h', b'c', b'p', b' ', b'1', b'.', b'3', b'6', b'.', b'1',
            255,
        ];
        opts.resize(60, 0);
        let expect = message(
            udhcpc_discover()[..28].try_into().unwrap(),
            CLIENT_MAC,
            &[],
            &[],
            &opts,
        );
        assert_eq!(r.buffer_len(), 300);
        assert_eq!(r.to_vec(), expect);
    }

    #[test]
    fn overloaded_file_and_sname_carry_options_in_rfc_3396_order() {
        // RFC 2131 §4.1: "If the options in a DHCP message extend into the
        // 'sname' and 'file' fields, the 'option overload' option MUST
        // appear in the 'options' field, with value 1, 2 or 3".
        let head: [u8; 28] = dnsmasq_offer()[..28].try_into().unwrap();
        let file = [3, 4, 10, 0, 0, 1, 15, 2, b'e', b'x', 255];
        let sname = [3, 4, 10, 0, 0, 2, 15, 4, b'.', b'c', b'o', b'm', 255];
        let opts = [53, 1, 5, 52, 1, 3, 54, 4, 10, 0, 0, 1, 255];
        let r = Repr::parse_bytes(&message(head, CLIENT_MAC, &sname, &file, &opts)).unwrap();
        assert_eq!(r.message_type, MessageType::Ack);
        // RFC 3396 §7: options split across areas are concatenated, "the
        // 'options' field first, then 'file', then 'sname'".
        assert_eq!(
            r.options.routers,
            [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)]
        );
        assert_eq!(r.options.domain_name.as_deref(), Some("ex.com"));
        assert_eq!((r.sname, r.file), ([0; 64], [0; 128]));
        assert!(r.options.other.is_empty());
        // Without option 52, the same fields are just a name and a file.
        let opts = [53, 1, 5, 255];
        let r =
            Repr::parse_bytes(&message(head, CLIENT_MAC, b"boot", b"pxelinux.0", &opts)).unwrap();
        assert!(r.options.routers.is_empty());
        assert_eq!(&r.sname[..5], b"boot\0");
        assert_eq!(&r.file[..11], b"pxelinux.0\0");
        assert_eq!(Repr::parse_bytes(&r.to_vec()).unwrap(), r);
    }

    #[test]
    fn long_options_split_and_concatenate() {
        // RFC 3396 §5: "the agent MUST split the option into multiple
        // smaller options" when a value exceeds 255 octets.
        let mut r = Repr::new(Op::Reply, MessageType::Ack, 1, MacAddr(CLIENT_MAC));
        let long: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
        r.options.other.push((224, long.clone()));
        r.options.hostname = Some("h".repeat(300));
        let out = r.to_vec();
        assert_eq!(out.len(), 240 + 3 + (600 + 6) + (300 + 4) + 1);
        let back = Repr::parse_bytes(&out).unwrap();
        assert_eq!(back.options.other(224), Some(&long[..]));
        assert_eq!(back, r);
    }

    #[test]
    fn pads_are_skipped_and_end_stops_the_walk() {
        let head: [u8; 28] = dnsmasq_offer()[..28].try_into().unwrap();
        let opts = [
            0, 0, 53, 1, 2, 0, 54, 4, 10, 0, 0, 1, 255, 1, 4, 255, 255, 0, 0,
        ];
        let r = Repr::parse_bytes(&message(head, CLIENT_MAC, &[], &[], &opts)).unwrap();
        assert_eq!(r.options.server_id, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(r.options.subnet_mask, None);
        // No END at all: the buffer's end ends the options.
        let r = Repr::parse_bytes(&message(head, CLIENT_MAC, &[], &[], &opts[..12])).unwrap();
        assert_eq!(r.options.server_id, Some(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn malformed_known_options_are_dropped_not_fatal() {
        let head: [u8; 28] = dnsmasq_offer()[..28].try_into().unwrap();
        #[rustfmt::skip]
        let opts = [
            53, 1, 2,
            1, 3, 255, 255, 255,      // mask of 3 bytes
            3, 5, 10, 0, 0, 1, 9,     // router list not a multiple of 4
            51, 2, 0, 1,              // lease time of 2 bytes
            61, 1, 7,                 // client id under the minimum of 2
            80, 1, 0,                 // rapid commit with a value
            12, 3, b'p', b'c', 0,     // NUL-terminated hostname, kept
            15, 2, 0xff, 0xfe,        // not UTF-8
            255,
        ];
        let r = Repr::parse_bytes(&message(head, CLIENT_MAC, &[], &[], &opts)).unwrap();
        let o = &r.options;
        assert_eq!(o.subnet_mask, None);
        assert!(o.routers.is_empty());
        assert_eq!(o.lease_time, None);
        assert_eq!(o.client_id, None);
        assert!(!o.rapid_commit);
        assert_eq!(o.hostname.as_deref(), Some("pc"));
        assert_eq!(o.domain_name, None);
    }

    #[test]
    fn rejects_what_is_not_dhcp() {
        let good = udhcpc_discover();
        for n in 0..OPTIONS_OFFSET {
            assert_eq!(
                Packet::new_checked(&good[..n]).err(),
                Some(Error::Truncated)
            );
        }
        let mut b = good.clone();
        b[239] = 0x64;
        assert_eq!(Repr::parse_bytes(&b).err(), Some(Error::BadCookie));
        let mut b = good.clone();
        b[0] = 3;
        assert_eq!(Repr::parse_bytes(&b).err(), Some(Error::BadOp));
        let mut b = good.clone();
        b[2] = 17;
        assert_eq!(Repr::parse_bytes(&b).err(), Some(Error::BadHardwareLength));
        // BOOTP: the cookie but no option 53.
        let head: [u8; 28] = good[..28].try_into().unwrap();
        let b = message(head, CLIENT_MAC, &[], &[], &[1, 4, 255, 0, 0, 0, 255]);
        assert_eq!(Repr::parse_bytes(&b).err(), Some(Error::NoMessageType));
        for bad in [&[53, 1, 0][..], &[53, 1, 9], &[53, 2, 1, 1], &[53, 0]] {
            let b = message(head, CLIENT_MAC, &[], &[], bad);
            assert_eq!(
                Repr::parse_bytes(&b).err(),
                Some(Error::BadMessageType),
                "{bad:?}"
            );
        }
        // A length that runs off the end of the options field.
        let b = message(head, CLIENT_MAC, &[], &[], &[53, 1, 1, 12, 9, b'a']);
        assert_eq!(Repr::parse_bytes(&b).err(), Some(Error::BadOption));
        let b = message(head, CLIENT_MAC, &[], &[], &[53, 1, 1, 12]);
        assert_eq!(Repr::parse_bytes(&b).err(), Some(Error::BadOption));
    }

    #[test]
    fn keeps_a_bounded_number_of_unknown_options() {
        let head: [u8; 28] = udhcpc_discover()[..28].try_into().unwrap();
        let mut opts = vec![53, 1, 1];
        for code in 100..(100 + MAX_OTHER_OPTIONS as u8 + 20) {
            opts.extend_from_slice(&[code, 1, code]);
        }
        let r = Repr::parse_bytes(&message(head, CLIENT_MAC, &[], &[], &opts)).unwrap();
        assert_eq!(r.options.other.len(), MAX_OTHER_OPTIONS);
        assert_eq!(Repr::parse_bytes(&r.to_vec()).unwrap(), r);
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn exercise(bytes: &[u8]) {
        let Ok(r) = Repr::parse_bytes(bytes) else {
            return;
        };
        let out = r.to_vec();
        assert_eq!(out.len(), r.buffer_len());
        assert_eq!(Repr::parse_bytes(&out).as_ref(), Ok(&r));
    }

    #[test]
    fn never_panics_and_round_trips_what_parses() {
        for base in [udhcpc_discover(), dnsmasq_offer()] {
            for n in 0..=base.len() {
                exercise(&base[..n]);
            }
        }
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let base = dnsmasq_offer();
        for _ in 0..20_000 {
            let mut b = base.clone();
            // Random option bytes after a valid message type, sometimes an
            // overload option, and random flips anywhere.
            let n = (rng.next() % 80) as usize;
            b.truncate(243);
            if rng.next().is_multiple_of(3) {
                b.extend_from_slice(&[52, 1, (rng.next() % 4) as u8]);
            }
            b.extend((0..n).map(|_| rng.next() as u8));
            for _ in 0..(rng.next() % 4) {
                let at = (rng.next() as usize) % b.len();
                b[at] = rng.next() as u8;
            }
            exercise(&b);
        }
    }
}
