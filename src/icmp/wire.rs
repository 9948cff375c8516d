//! ICMPv4 wire format (RFC 792, with RFC 1191's next-hop MTU).
//!
//! ```text
//!  0               1               2               3
//! +---------------+---------------+-------------------------------+
//! |     Type      |     Code      |          Checksum             |
//! +---------------+---------------+-------------------------------+
//! |  echo: Identifier / Sequence; unreachable: unused / MTU;     |
//! |  parameter problem: Pointer / unused                         |
//! +---------------------------------------------------------------+
//! |  echo data, or the invoking datagram's header + leading bytes |
//! ```
//!
//! A [`Packet`] spans its whole buffer: the caller hands over exactly the
//! ICMP message (the IP payload, already cut to Total Length), and the
//! checksum covers all of it.

use crate::ip::checksum;

/// Length of the fixed part: type, code, checksum and four type-specific bytes.
pub const HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQ: Range<usize> = 6..8;
    pub const POINTER: usize = 4;
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
    /// Bytes 4..8 as a whole, for zeroing what a type leaves unused.
    pub const REST_OF_HEADER: Range<usize> = 4..8;
}

/// The message types this module names.
pub mod msg_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DST_UNREACHABLE: u8 = 3;
    pub const SOURCE_QUENCH: u8 = 4;
    pub const REDIRECT: u8 = 5;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROBLEM: u8 = 12;
}

/// Whether `msg_type` is an ICMP error message, in the sense of RFC 1122
/// §3.2.2: "An ICMP error message MUST NOT be sent as the result of
/// receiving: an ICMP error message ...". The error types are Destination
/// Unreachable, Source Quench, Redirect, Time Exceeded and Parameter
/// Problem; everything else (echo, timestamp, ...) is a query.
pub fn is_error_type(msg_type: u8) -> bool {
    matches!(
        msg_type,
        msg_type::DST_UNREACHABLE
            | msg_type::SOURCE_QUENCH
            | msg_type::REDIRECT
            | msg_type::TIME_EXCEEDED
            | msg_type::PARAM_PROBLEM
    )
}

/// Destination Unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum DstUnreachable {
    NetUnreachable,
    HostUnreachable,
    ProtoUnreachable,
    PortUnreachable,
    /// "Fragmentation needed and DF set"; carries the next-hop MTU (RFC 1191).
    FragRequired,
    SrcRouteFailed,
    NetUnknown,
    HostUnknown,
    AdminProhibited,
    /// Any other code, kept so the stack can still pass it up.
    Other(u8),
}

impl From<u8> for DstUnreachable {
    fn from(code: u8) -> DstUnreachable {
        match code {
            0 => DstUnreachable::NetUnreachable,
            1 => DstUnreachable::HostUnreachable,
            2 => DstUnreachable::ProtoUnreachable,
            3 => DstUnreachable::PortUnreachable,
            4 => DstUnreachable::FragRequired,
            5 => DstUnreachable::SrcRouteFailed,
            6 => DstUnreachable::NetUnknown,
            7 => DstUnreachable::HostUnknown,
            13 => DstUnreachable::AdminProhibited,
            other => DstUnreachable::Other(other),
        }
    }
}

impl From<DstUnreachable> for u8 {
    fn from(code: DstUnreachable) -> u8 {
        match code {
            DstUnreachable::NetUnreachable => 0,
            DstUnreachable::HostUnreachable => 1,
            DstUnreachable::ProtoUnreachable => 2,
            DstUnreachable::PortUnreachable => 3,
            DstUnreachable::FragRequired => 4,
            DstUnreachable::SrcRouteFailed => 5,
            DstUnreachable::NetUnknown => 6,
            DstUnreachable::HostUnknown => 7,
            DstUnreachable::AdminProhibited => 13,
            DstUnreachable::Other(other) => other,
        }
    }
}

/// Time Exceeded codes (RFC 792).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum TimeExceeded {
    TtlExpired,
    FragReassembly,
}

impl TryFrom<u8> for TimeExceeded {
    /// The unknown code.
    type Error = u8;

    fn try_from(code: u8) -> Result<TimeExceeded, u8> {
        match code {
            0 => Ok(TimeExceeded::TtlExpired),
            1 => Ok(TimeExceeded::FragReassembly),
            other => Err(other),
        }
    }
}

impl From<TimeExceeded> for u8 {
    fn from(code: TimeExceeded) -> u8 {
        match code {
            TimeExceeded::TtlExpired => 0,
            TimeExceeded::FragReassembly => 1,
        }
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Error {
    /// Shorter than the 8-byte header.
    Truncated,
    BadChecksum,
    /// A known type with a code it cannot have.
    Malformed,
    /// A type we do not handle: redirect, source quench, timestamp, ...
    Unsupported,
}

impl Error {
    pub fn as_str(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadChecksum => "bad_checksum",
            Error::Malformed => "malformed",
            Error::Unsupported => "unsupported",
        }
    }
}

error_via_as_str!(Error);

/// A read/write view of an ICMP message; its extent is the whole buffer.
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

    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
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

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }

    /// Echo and echo reply: the identifier (bytes 4..6).
    pub fn echo_ident(&self) -> u16 {
        self.be16(field::ECHO_IDENT)
    }

    /// Echo and echo reply: the sequence number (bytes 6..8).
    pub fn echo_seq(&self) -> u16 {
        self.be16(field::ECHO_SEQ)
    }

    /// Fragmentation needed: the next-hop MTU (bytes 6..8, RFC 1191 §4).
    /// Routers older than RFC 1191 leave it zero.
    pub fn next_hop_mtu(&self) -> u16 {
        self.be16(field::NEXT_HOP_MTU)
    }

    /// Parameter problem: the octet of the invoking header at fault (byte 4).
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }

    /// Everything after the 8-byte header: echo data, or the quoted invoking
    /// datagram.
    pub fn data(&self) -> &[u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or_default()
    }

    /// The checksum sums to zero over the whole message.
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_be16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    pub fn set_checksum(&mut self, v: u16) {
        self.set_be16(field::CHECKSUM, v)
    }

    pub fn set_echo_ident(&mut self, v: u16) {
        self.set_be16(field::ECHO_IDENT, v)
    }

    pub fn set_echo_seq(&mut self, v: u16) {
        self.set_be16(field::ECHO_SEQ, v)
    }

    pub fn set_next_hop_mtu(&mut self, v: u16) {
        self.set_be16(field::NEXT_HOP_MTU, v)
    }

    pub fn set_pointer(&mut self, v: u8) {
        self.buffer.as_mut()[field::POINTER] = v;
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..)
            .unwrap_or_default()
    }

    /// Computes the checksum over the whole buffer, so the data must be in
    /// place first.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c)
    }

    fn clear_rest_of_header(&mut self) {
        self.buffer.as_mut()[field::REST_OF_HEADER].fill(0);
    }
}

/// A validated ICMP message of one of the kinds ringstack handles.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Repr<'a> {
    EchoRequest {
        ident: u16,
        seq: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq: u16,
        data: &'a [u8],
    },
    DstUnreachable {
        code: DstUnreachable,
        /// Meaningful for [`DstUnreachable::FragRequired`] only: parsed as 0
        /// and emitted as 0 for every other code.
        next_hop_mtu: u16,
        /// The quoted invoking datagram (IP header + leading payload), raw.
        invoking: &'a [u8],
    },
    TimeExceeded {
        code: TimeExceeded,
        invoking: &'a [u8],
    },
    ParamProblem {
        pointer: u8,
        invoking: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Checks, in order: length, checksum, then the type and its code.
    ///
    /// Destination Unreachable accepts every code (unknown ones as
    /// [`DstUnreachable::Other`]): RFC 1122 §3.2.2.1 wants them passed up.
    /// Parameter Problem accepts every code too (RFC 1122's 1, "required
    /// option missing", and RFC 1812's 2, "bad length") and keeps the
    /// pointer; the code itself is not kept.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&'a T>) -> Result<Repr<'a>, Error> {
        p.check_len()?;
        if !p.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        // Borrow the data for 'a, not for the lifetime of `p`.
        let whole: &'a [u8] = AsRef::<[u8]>::as_ref(p.buffer);
        let data = whole.get(HEADER_LEN..).unwrap_or_default();
        match (p.msg_type(), p.msg_code()) {
            (msg_type::ECHO_REQUEST, 0) => Ok(Repr::EchoRequest {
                ident: p.echo_ident(),
                seq: p.echo_seq(),
                data,
            }),
            (msg_type::ECHO_REPLY, 0) => Ok(Repr::EchoReply {
                ident: p.echo_ident(),
                seq: p.echo_seq(),
                data,
            }),
            (msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY, _) => Err(Error::Malformed),
            (msg_type::DST_UNREACHABLE, code) => {
                let code = DstUnreachable::from(code);
                let next_hop_mtu = match code {
                    DstUnreachable::FragRequired => p.next_hop_mtu(),
                    // "unused" (RFC 792): a sender may leave junk there.
                    _ => 0,
                };
                Ok(Repr::DstUnreachable {
                    code,
                    next_hop_mtu,
                    invoking: data,
                })
            }
            (msg_type::TIME_EXCEEDED, code) => match TimeExceeded::try_from(code) {
                Ok(code) => Ok(Repr::TimeExceeded {
                    code,
                    invoking: data,
                }),
                Err(_) => Err(Error::Malformed),
            },
            (msg_type::PARAM_PROBLEM, _) => Ok(Repr::ParamProblem {
                pointer: p.pointer(),
                invoking: data,
            }),
            _ => Err(Error::Unsupported),
        }
    }

    /// The echo data or quoted datagram.
    pub fn data(&self) -> &'a [u8] {
        match *self {
            Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => data,
            Repr::DstUnreachable { invoking, .. }
            | Repr::TimeExceeded { invoking, .. }
            | Repr::ParamProblem { invoking, .. } => invoking,
        }
    }

    /// The type and code bytes this message is sent with.
    pub fn type_and_code(&self) -> (u8, u8) {
        match *self {
            Repr::EchoRequest { .. } => (msg_type::ECHO_REQUEST, 0),
            Repr::EchoReply { .. } => (msg_type::ECHO_REPLY, 0),
            Repr::DstUnreachable { code, .. } => (msg_type::DST_UNREACHABLE, code.into()),
            Repr::TimeExceeded { code, .. } => (msg_type::TIME_EXCEEDED, code.into()),
            Repr::ParamProblem { .. } => (msg_type::PARAM_PROBLEM, 0),
        }
    }

    /// 8 + the data or quoted datagram.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data().len()
    }

    /// An error message, never to be answered with another (RFC 1122 §3.2.2).
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            Repr::DstUnreachable { .. } | Repr::TimeExceeded { .. } | Repr::ParamProblem { .. }
        )
    }

    /// Writes the header, copies the data in, and fills the checksum. Unused
    /// header bytes are zeroed.
    ///
    /// # Panics
    /// If the buffer is shorter than [`Repr::buffer_len`]. It should be
    /// exactly that long: the checksum covers the whole buffer.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        let (t, code) = self.type_and_code();
        p.set_msg_type(t);
        p.set_msg_code(code);
        p.clear_rest_of_header();
        match *self {
            Repr::EchoRequest { ident, seq, .. } | Repr::EchoReply { ident, seq, .. } => {
                p.set_echo_ident(ident);
                p.set_echo_seq(seq);
            }
            Repr::DstUnreachable {
                code: DstUnreachable::FragRequired,
                next_hop_mtu,
                ..
            } => p.set_next_hop_mtu(next_hop_mtu),
            Repr::ParamProblem { pointer, .. } => p.set_pointer(pointer),
            Repr::DstUnreachable { .. } | Repr::TimeExceeded { .. } => {}
        }
        let data = self.data();
        p.data_mut()[..data.len()].copy_from_slice(data);
        p.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux ping's 56 data bytes: a 16-byte struct timeval (tv_sec
    /// 1700000000, tv_usec 123456, little-endian) then the bytes 0x10..0x37.
    const PING_DATA: [u8; 56] = [
        0x00, 0xf1, 0x53, 0x65, 0x00, 0x00, 0x00, 0x00, 0x40, 0xe2, 0x01, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
        0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c,
        0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];
    /// Echo request, ident 0x0d2c, seq 1, checksum 0x95c7 over PING_DATA.
    const ECHO_REQUEST_HDR: [u8; 8] = [0x08, 0x00, 0x95, 0xc7, 0x0d, 0x2c, 0x00, 0x01];
    /// Its reply: only the type differs, so the checksum is 0x0800 larger.
    const ECHO_REPLY_HDR: [u8; 8] = [0x00, 0x00, 0x9d, 0xc7, 0x0d, 0x2c, 0x00, 0x01];

    /// A UDP datagram "ping" from 198.18.0.2:40000 to 198.18.0.1:9, quoted
    /// whole: IP header and all 12 bytes of UDP.
    const INVOKING: [u8; 32] = [
        0x45, 0x00, 0x00, 0x20, 0x4d, 0x21, 0x40, 0x00, 0x40, 0x11, 0x61, 0x84, 0xc6, 0x12, 0x00,
        0x02, 0xc6, 0x12, 0x00, 0x01, // IPv4
        0x9c, 0x40, 0x00, 0x09, 0x00, 0x0c, 0xf8, 0x93, b'p', b'i', b'n', b'g', // UDP
    ];
    const PORT_UNREACHABLE_HDR: [u8; 8] = [0x03, 0x03, 0x89, 0x42, 0x00, 0x00, 0x00, 0x00];
    const TIME_EXCEEDED_HDR: [u8; 8] = [0x0b, 0x00, 0x81, 0x45, 0x00, 0x00, 0x00, 0x00];
    const PARAM_PROBLEM_HDR: [u8; 8] = [0x0c, 0x00, 0x7f, 0x45, 0x01, 0x00, 0x00, 0x00];

    /// A 1500-byte DF datagram quoted as header + 8 bytes, answered with
    /// "fragmentation needed", next-hop MTU 1400.
    const BIG_INVOKING: [u8; 28] = [
        0x45, 0x00, 0x05, 0xd4, 0x4d, 0x22, 0x40, 0x00, 0x40, 0x11, 0x5b, 0xcf, 0xc6, 0x12, 0x00,
        0x02, 0xc6, 0x12, 0x00, 0x01, 0x9c, 0x40, 0x00, 0x09, 0x05, 0xb4, 0x12, 0x34,
    ];
    const FRAG_REQUIRED_HDR: [u8; 8] = [0x03, 0x04, 0x43, 0x52, 0x00, 0x00, 0x05, 0x78];

    fn message(header: [u8; 8], data: &[u8]) -> Vec<u8> {
        let mut m = header.to_vec();
        m.extend_from_slice(data);
        m
    }

    /// Every vector with the Repr it must parse to.
    fn vectors() -> Vec<(Vec<u8>, Repr<'static>)> {
        vec![
            (
                message(ECHO_REQUEST_HDR, &PING_DATA),
                Repr::EchoRequest {
                    ident: 0x0d2c,
                    seq: 1,
                    data: &PING_DATA,
                },
            ),
            (
                message(ECHO_REPLY_HDR, &PING_DATA),
                Repr::EchoReply {
                    ident: 0x0d2c,
                    seq: 1,
                    data: &PING_DATA,
                },
            ),
            (
                message(PORT_UNREACHABLE_HDR, &INVOKING),
                Repr::DstUnreachable {
                    code: DstUnreachable::PortUnreachable,
                    next_hop_mtu: 0,
                    invoking: &INVOKING,
                },
            ),
            (
                message(FRAG_REQUIRED_HDR, &BIG_INVOKING),
                Repr::DstUnreachable {
                    code: DstUnreachable::FragRequired,
                    next_hop_mtu: 1400,
                    invoking: &BIG_INVOKING,
                },
            ),
            (
                message(TIME_EXCEEDED_HDR, &INVOKING),
                Repr::TimeExceeded {
                    code: TimeExceeded::TtlExpired,
                    invoking: &INVOKING,
                },
            ),
            (
                message(PARAM_PROBLEM_HDR, &INVOKING),
                Repr::ParamProblem {
                    pointer: 1,
                    invoking: &INVOKING,
                },
            ),
        ]
    }

    #[test]
    fn deconstructs_linux_ping() {
        let bytes = message(ECHO_REQUEST_HDR, &PING_DATA);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.msg_type(), 8);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0x95c7);
        assert_eq!(p.echo_ident(), 0x0d2c);
        assert_eq!(p.echo_seq(), 1);
        assert_eq!(p.data(), &PING_DATA);
        assert!(p.verify_checksum());
    }

    #[test]
    fn deconstructs_frag_required_with_next_hop_mtu() {
        // RFC 1191 §4: "the router MUST include the MTU of that next-hop
        // network in the low-order 16 bits of the ICMP header field that is
        // labelled 'unused' in the ICMP specification".
        let bytes = message(FRAG_REQUIRED_HDR, &BIG_INVOKING);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!((p.msg_type(), p.msg_code()), (3, 4));
        assert_eq!(p.next_hop_mtu(), 1400);
        assert_eq!(p.data(), &BIG_INVOKING);
    }

    #[test]
    fn parses_every_vector() {
        for (bytes, want) in vectors() {
            let p = Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(Repr::parse(&p), Ok(want), "{bytes:02x?}");
        }
    }

    #[test]
    fn constructs_every_vector() {
        for (bytes, repr) in vectors() {
            assert_eq!(repr.buffer_len(), bytes.len());
            let mut out = vec![0xa5; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut out[..]));
            assert_eq!(out, bytes, "{repr:?}");
        }
    }

    #[test]
    fn parse_then_emit_is_identity() {
        for (bytes, _) in vectors() {
            let p = Packet::new_checked(&bytes[..]).unwrap();
            let repr = Repr::parse(&p).unwrap();
            let mut out = vec![0; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut out[..]));
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn echo_reply_answers_with_the_same_data() {
        // RFC 792: "The data received in the echo message must be returned in
        // the echo reply message."
        let request = message(ECHO_REQUEST_HDR, &PING_DATA);
        let Ok(Repr::EchoRequest { ident, seq, data }) =
            Repr::parse(&Packet::new_checked(&request[..]).unwrap())
        else {
            panic!("not an echo request");
        };
        let reply = Repr::EchoReply { ident, seq, data };
        let mut out = vec![0; reply.buffer_len()];
        reply.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, message(ECHO_REPLY_HDR, &PING_DATA));
    }

    #[test]
    fn rejects_message_shorter_than_header() {
        let bytes = message(ECHO_REQUEST_HDR, &[]);
        for n in 0..8 {
            assert_eq!(
                Packet::new_checked(&bytes[..n]).err(),
                Some(Error::Truncated)
            );
        }
    }

    #[test]
    fn empty_echo_is_valid() {
        // Type 8, ident 0, seq 0, no data: the checksum is !0x0800.
        let bytes = [0x08, 0x00, 0xf7, 0xff, 0, 0, 0, 0];
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Repr::parse(&p),
            Ok(Repr::EchoRequest {
                ident: 0,
                seq: 0,
                data: &[]
            })
        );
    }

    #[test]
    fn rejects_bad_checksum_before_looking_at_the_type() {
        // RFC 792: "The checksum is the 16-bit ones's complement of the one's
        // complement sum of the ICMP message starting with the ICMP Type."
        for (mut bytes, _) in vectors() {
            let last = bytes.len() - 1;
            bytes[last] ^= 0x01;
            let p = Packet::new_checked(&bytes[..]).unwrap();
            assert!(!p.verify_checksum());
            assert_eq!(Repr::parse(&p), Err(Error::BadChecksum));
        }
        // Even a type we do not support reports the checksum first.
        let junk = [13u8, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            Repr::parse(&Packet::new_checked(&junk[..]).unwrap()),
            Err(Error::BadChecksum)
        );
    }

    /// Rewrites type and code and fixes the checksum.
    fn retyped(header: [u8; 8], data: &[u8], t: u8, code: u8) -> Vec<u8> {
        let mut m = message(header, data);
        m[0] = t;
        m[1] = code;
        Packet::new_unchecked(&mut m[..]).fill_checksum();
        m
    }

    #[test]
    fn echo_with_nonzero_code_is_malformed() {
        // RFC 792, Echo or Echo Reply Message: "Code 0".
        for t in [0, 8] {
            let m = retyped(ECHO_REQUEST_HDR, &PING_DATA, t, 1);
            let p = Packet::new_checked(&m[..]).unwrap();
            assert_eq!(Repr::parse(&p), Err(Error::Malformed));
        }
    }

    #[test]
    fn time_exceeded_with_unknown_code_is_malformed() {
        // RFC 792 defines only code 0 (TTL) and 1 (reassembly).
        let m = retyped(TIME_EXCEEDED_HDR, &INVOKING, 11, 1);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&m[..]).unwrap()),
            Ok(Repr::TimeExceeded {
                code: TimeExceeded::FragReassembly,
                invoking: &INVOKING
            })
        );
        let m = retyped(TIME_EXCEEDED_HDR, &INVOKING, 11, 2);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&m[..]).unwrap()),
            Err(Error::Malformed)
        );
    }

    #[test]
    fn unknown_types_are_unsupported() {
        // Source quench, redirect, timestamp (request and reply), information
        // request, address mask request, and an unassigned type.
        for t in [4u8, 5, 13, 14, 15, 17, 42, 255] {
            let m = retyped(ECHO_REQUEST_HDR, &PING_DATA, t, 0);
            let p = Packet::new_checked(&m[..]).unwrap();
            assert_eq!(Repr::parse(&p), Err(Error::Unsupported), "type {t}");
        }
    }

    #[test]
    fn unknown_unreachable_codes_are_passed_up() {
        // RFC 1122 §3.2.2.1: "A Destination Unreachable message that is
        // received MUST be reported to the transport layer."
        let m = retyped(PORT_UNREACHABLE_HDR, &INVOKING, 3, 10);
        let repr = Repr::parse(&Packet::new_checked(&m[..]).unwrap()).unwrap();
        assert_eq!(
            repr,
            Repr::DstUnreachable {
                code: DstUnreachable::Other(10),
                next_hop_mtu: 0,
                invoking: &INVOKING
            }
        );
        let mut out = vec![0; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, m);
    }

    #[test]
    fn next_hop_mtu_is_ignored_unless_frag_required() {
        // Junk in the "unused" field of a port unreachable is not an MTU.
        let mut m = message(PORT_UNREACHABLE_HDR, &INVOKING);
        m[6..8].copy_from_slice(&1400u16.to_be_bytes());
        Packet::new_unchecked(&mut m[..]).fill_checksum();
        let repr = Repr::parse(&Packet::new_checked(&m[..]).unwrap()).unwrap();
        assert!(matches!(
            repr,
            Repr::DstUnreachable {
                next_hop_mtu: 0,
                ..
            }
        ));
        // And emit leaves it zero even if the caller fills it in.
        let repr = Repr::DstUnreachable {
            code: DstUnreachable::PortUnreachable,
            next_hop_mtu: 1400,
            invoking: &INVOKING,
        };
        let mut out = vec![0xff; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, message(PORT_UNREACHABLE_HDR, &INVOKING));
    }

    #[test]
    fn param_problem_keeps_pointer_for_every_code() {
        // RFC 1122 §3.2.2.5: "An incoming Parameter Problem message MUST be
        // passed to the transport layer". Code 1 is "required option missing".
        let m = retyped(PARAM_PROBLEM_HDR, &INVOKING, 12, 1);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&m[..]).unwrap()),
            Ok(Repr::ParamProblem {
                pointer: 1,
                invoking: &INVOKING
            })
        );
    }

    #[test]
    fn error_types_are_the_rfc1122_list() {
        for t in 0..=255u8 {
            assert_eq!(is_error_type(t), matches!(t, 3 | 4 | 5 | 11 | 12), "{t}");
        }
        for (bytes, repr) in vectors() {
            assert_eq!(repr.is_error(), is_error_type(bytes[0]));
        }
    }

    #[test]
    fn odd_length_message_checksums_with_zero_pad() {
        // RFC 1071: an odd byte is summed as if followed by a zero byte.
        let repr = Repr::EchoRequest {
            ident: 1,
            seq: 2,
            data: b"abc",
        };
        let mut out = vec![0; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        let p = Packet::new_checked(&out[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(Repr::parse(&p), Ok(repr));
    }

    #[test]
    fn codes_round_trip_through_u8() {
        for c in 0..=255u8 {
            assert_eq!(u8::from(DstUnreachable::from(c)), c);
            if let Ok(t) = TimeExceeded::try_from(c) {
                assert_eq!(u8::from(t), c);
            }
        }
        assert_eq!(DstUnreachable::from(13), DstUnreachable::AdminProhibited);
        assert_eq!(TimeExceeded::try_from(2), Err(2));
    }

    #[test]
    fn setters_write_where_getters_read() {
        let mut buf = [0u8; 12];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(3);
        p.set_msg_code(4);
        p.set_echo_ident(0x1234);
        p.set_echo_seq(0x5678);
        assert_eq!((p.echo_ident(), p.echo_seq()), (0x1234, 0x5678));
        p.set_next_hop_mtu(576);
        p.set_pointer(9);
        p.data_mut().copy_from_slice(b"quot");
        p.fill_checksum();
        assert_eq!((p.msg_type(), p.msg_code()), (3, 4));
        assert_eq!((p.pointer(), p.next_hop_mtu()), (9, 576));
        assert_eq!(p.data(), b"quot");
        assert!(p.verify_checksum());
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
        let _ = Repr::parse(&Packet::new_unchecked(bytes));
        let Ok(p) = Packet::new_checked(bytes) else {
            return;
        };
        let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.echo_ident());
        let _ = (p.echo_seq(), p.next_hop_mtu(), p.pointer(), p.data());
        let _ = p.verify_checksum();
        if let Ok(repr) = Repr::parse(&p) {
            assert_eq!(repr.buffer_len(), bytes.len());
            assert_eq!(repr.is_error(), is_error_type(p.msg_type()));
            let mut out = vec![0; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut out[..]));
            let again = Packet::new_checked(&out[..]).unwrap();
            assert_eq!(Repr::parse(&again), Ok(repr));
        }
    }

    #[test]
    fn never_panics_on_truncations_or_random_bytes() {
        for (bytes, _) in vectors() {
            for n in 0..=bytes.len() {
                exercise(&bytes[..n]);
            }
        }
        let mut rng = XorShift(0x0123_4567_89ab_cdef);
        for _ in 0..4000 {
            let len = (rng.next() % 48) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Random checksums almost never verify: fix most of them, and
            // favour the types we parse, so the type dispatch runs.
            if len >= HEADER_LEN && !rng.next().is_multiple_of(4) {
                buf[0] = [0, 3, 8, 11, 12][(rng.next() % 5) as usize];
                buf[1] = (rng.next() % 16) as u8;
                Packet::new_unchecked(&mut buf[..]).fill_checksum();
            }
            exercise(&buf);
        }
    }
}
