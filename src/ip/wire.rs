//! IPv4 header wire format (RFC 791).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |Type of Service|          Total Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Identification        |Flags|      Fragment Offset    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Source Address                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Destination Address                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Options                    |    Padding    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The buffer may run past Total Length (Ethernet pads short frames to 60
//! bytes); everything here measures the datagram by Total Length.

use core::net::Ipv4Addr;

use super::checksum;

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

mod field {
    use core::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum Protocol {
    Icmp,
    Tcp,
    Udp,
    Gre,
    Esp,
    Unknown(u8),
}

impl From<u8> for Protocol {
    fn from(v: u8) -> Protocol {
        match v {
            1 => Protocol::Icmp,
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            47 => Protocol::Gre,
            50 => Protocol::Esp,
            other => Protocol::Unknown(other),
        }
    }
}

impl From<Protocol> for u8 {
    fn from(v: Protocol) -> u8 {
        match v {
            Protocol::Icmp => 1,
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Gre => 47,
            Protocol::Esp => 50,
            Protocol::Unknown(other) => other,
        }
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Error {
    /// The buffer ends before the header or before Total Length.
    Truncated,
    /// Version field is not 4.
    BadVersion,
    /// IHL below 5 words.
    BadHeaderLength,
    /// Total Length smaller than the header.
    BadTotalLength,
    BadChecksum,
}

impl Error {
    pub fn as_str(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadVersion => "bad_version",
            Error::BadHeaderLength => "bad_header_length",
            Error::BadTotalLength => "bad_total_length",
            Error::BadChecksum => "bad_checksum",
        }
    }
}

error_via_as_str!(Error);

/// A read/write view of an IPv4 datagram.
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

    /// Checks, in this order: the fixed header fits, version is 4, IHL is at
    /// least 5, the options fit, Total Length covers the header, and the
    /// buffer holds Total Length bytes.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::BadVersion);
        }
        if self.header_len() < HEADER_LEN {
            return Err(Error::BadHeaderLength);
        }
        if self.header_len() > len {
            return Err(Error::Truncated);
        }
        if usize::from(self.total_len()) < self.header_len() {
            return Err(Error::BadTotalLength);
        }
        if usize::from(self.total_len()) > len {
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

    fn addr(&self, r: core::ops::Range<usize>) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[r];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// IHL in bytes (the field counts 32-bit words).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The Type of Service byte as RFC 2474 and RFC 3168 redefine it:
    /// DSCP in the top six bits, ECN in the bottom two.
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    pub fn dscp(&self) -> u8 {
        self.tos() >> 2
    }

    pub fn ecn(&self) -> u8 {
        self.tos() & 0x03
    }

    #[inline]
    pub fn total_len(&self) -> u16 {
        self.be16(field::LENGTH)
    }

    pub fn ident(&self) -> u16 {
        self.be16(field::IDENT)
    }

    /// The reserved flag bit ("must be zero", RFC 791). Receivers ignore it.
    pub fn reserved_flag(&self) -> bool {
        self.be16(field::FLG_OFF) & 0x8000 != 0
    }

    pub fn dont_frag(&self) -> bool {
        self.be16(field::FLG_OFF) & FLAG_DF != 0
    }

    pub fn more_frags(&self) -> bool {
        self.be16(field::FLG_OFF) & FLAG_MF != 0
    }

    /// Fragment offset in bytes: the 13-bit field counts 8-byte units, so the
    /// largest value, 65528, still fits.
    pub fn frag_offset(&self) -> u16 {
        (self.be16(field::FLG_OFF) & OFFSET_MASK) * 8
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    pub fn protocol(&self) -> Protocol {
        self.buffer.as_ref()[field::PROTOCOL].into()
    }

    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }

    pub fn src_addr(&self) -> Ipv4Addr {
        self.addr(field::SRC_ADDR)
    }

    pub fn dst_addr(&self) -> Ipv4Addr {
        self.addr(field::DST_ADDR)
    }

    // The variable-length accessors below use get(): a header or total length
    // changed by a setter after check_len() yields an empty slice, not a panic.

    /// The first `header_len()` bytes, options included.
    #[inline(always)]
    pub fn header(&self) -> &[u8] {
        let hl = self.header_len();
        self.buffer.as_ref().get(..hl).unwrap_or_default()
    }

    pub fn options(&self) -> &[u8] {
        let hl = self.header_len();
        self.buffer.as_ref().get(HEADER_LEN..hl).unwrap_or_default()
    }

    /// The bytes from the end of the header to Total Length: this fragment's
    /// payload, without any link-layer padding.
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        let (hl, tl) = (self.header_len(), usize::from(self.total_len()));
        self.buffer.as_ref().get(hl..tl).unwrap_or_default()
    }

    /// The header checksum sums to zero over the header, options included.
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.header()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_be16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_version(&mut self, version: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (version << 4);
    }

    /// `len` in bytes: a multiple of 4, at most 60.
    pub fn set_header_len(&mut self, len: usize) {
        debug_assert!(
            len.is_multiple_of(4) && len <= 60,
            "IPv4 header length {len}"
        );
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) as u8 & 0x0f);
    }

    /// Writes the whole DSCP+ECN byte.
    pub fn set_dscp_ecn(&mut self, tos: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = tos;
    }

    pub fn set_total_len(&mut self, len: u16) {
        self.set_be16(field::LENGTH, len)
    }

    pub fn set_ident(&mut self, ident: u16) {
        self.set_be16(field::IDENT, ident)
    }

    /// Writes the flags and the offset, clearing the reserved bit.
    /// `offset_bytes` must be a multiple of 8: only fragment boundaries are
    /// representable.
    pub fn set_flags_and_offset(&mut self, dont_frag: bool, more_frags: bool, offset_bytes: u16) {
        debug_assert!(
            offset_bytes.is_multiple_of(8),
            "fragment offset {offset_bytes}"
        );
        let mut v = offset_bytes / 8;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        self.set_be16(field::FLG_OFF, v)
    }

    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol.into();
    }

    pub fn set_checksum(&mut self, checksum: u16) {
        self.set_be16(field::CHECKSUM, checksum)
    }

    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Computes the header checksum over `header_len()` bytes, so the header
    /// length must be set first.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c)
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len(), usize::from(self.total_len()));
        self.buffer.as_mut().get_mut(hl..tl).unwrap_or_default()
    }
}

/// A validated IPv4 header, options dropped.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: Protocol,
    /// Bytes after the header: this fragment's payload.
    pub payload_len: usize,
    pub ttl: u8,
    /// The DSCP+ECN byte.
    pub tos: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// In bytes.
    pub frag_offset: u16,
}

impl Repr {
    /// Checks the lengths and the header checksum. Options are skipped; the
    /// addresses are not judged (broadcast or multicast sources are the
    /// stack's call).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&T>) -> Result<Repr, Error> {
        if let Some(r) = Self::parse_ihl5(p.buffer.as_ref()) {
            return r;
        }
        Self::parse_general(p)
    }

    /// [`Repr::parse`] through the accessors, for every header.
    fn parse_general<T: AsRef<[u8]> + ?Sized>(p: &Packet<&T>) -> Result<Repr, Error> {
        p.check_len()?;
        if !p.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        Ok(Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: p.payload().len(),
            ttl: p.ttl(),
            tos: p.tos(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            more_frags: p.more_frags(),
            frag_offset: p.frag_offset(),
        })
    }

    /// [`Repr::parse`] for the header every datagram without options has
    /// (version 4, IHL 5), from its five words loaded once: the checks in
    /// `check_len`'s order, the checksum summed from the words in
    /// registers, the fields cut from them. The general path reads each
    /// field through its accessor and sums the header from memory again,
    /// about twice the instructions. `None`: not that header, nothing
    /// decided.
    #[inline]
    fn parse_ihl5(bytes: &[u8]) -> Option<Result<Repr, Error>> {
        let h = bytes.first_chunk::<HEADER_LEN>()?;
        if h[0] != 0x45 {
            return None;
        }
        let w: [u32; 5] = core::array::from_fn(|i| {
            u32::from_be_bytes([h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]])
        });
        let total = (w[0] & 0xffff) as usize;
        if total < HEADER_LEN {
            return Some(Err(Error::BadTotalLength));
        }
        if total > bytes.len() {
            return Some(Err(Error::Truncated));
        }
        // The header sums to all ones exactly when its checksum is right.
        if checksum::sum_be32(&w) != 0xffff {
            return Some(Err(Error::BadChecksum));
        }
        let flags = (w[1] & 0xffff) as u16;
        Some(Ok(Repr {
            src_addr: Ipv4Addr::from(w[3]),
            dst_addr: Ipv4Addr::from(w[4]),
            protocol: ((w[2] >> 16) as u8).into(),
            payload_len: total - HEADER_LEN,
            ttl: (w[2] >> 24) as u8,
            tos: (w[0] >> 16) as u8,
            ident: (w[1] >> 16) as u16,
            dont_frag: flags & FLAG_DF != 0,
            more_frags: flags & FLAG_MF != 0,
            frag_offset: (flags & OFFSET_MASK) * 8,
        }))
    }

    /// RFC 791: a datagram is a fragment unless both the offset is zero and
    /// the more-fragments flag is clear.
    pub fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_offset != 0
    }

    /// Always 20: ringstack never emits options.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the header (IHL 5) and its checksum; the payload is the
    /// caller's.
    ///
    /// # Panics
    /// If the buffer is shorter than 20 bytes. `payload_len` above 65515
    /// does not fit Total Length: a debug build asserts, release wraps.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        debug_assert!(self.buffer_len() <= usize::from(u16::MAX));
        p.set_version(4);
        p.set_header_len(HEADER_LEN);
        p.set_dscp_ecn(self.tos);
        p.set_total_len(self.buffer_len() as u16);
        p.set_ident(self.ident);
        p.set_flags_and_offset(self.dont_frag, self.more_frags, self.frag_offset);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        p.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IHL-5 shortcut decides every header it takes as the general
    /// path does, error for error and field for field: valid headers with
    /// random fields, then each with one byte changed (checksum, length,
    /// version, flags), buffers cut short or padded. The general path
    /// itself is checked against the vectors below and against etherparse
    /// in `tests/differential.rs`.
    #[test]
    fn the_ihl5_shortcut_decides_as_the_general_path() {
        let mut x: u64 = 0x0123_4567_89ab_cdef;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut taken = 0;
        for _ in 0..20_000 {
            let payload = (next() % 64) as usize;
            let mut b = vec![0u8; 20 + payload + (next() % 3) as usize];
            for v in b.iter_mut() {
                *v = next() as u8;
            }
            b[0] = 0x45;
            b[2..4].copy_from_slice(&((20 + payload) as u16).to_be_bytes());
            b[10..12].fill(0);
            let c = checksum::checksum(&b[..20]);
            b[10..12].copy_from_slice(&c.to_be_bytes());
            let r = next();
            match r % 4 {
                0 => {}
                1 => {
                    let i = (r >> 8) as usize % 20;
                    b[i] ^= 1 << ((r >> 16) % 8);
                }
                2 => b.truncate((r >> 8) as usize % (b.len() + 1)),
                _ => b[2..4].copy_from_slice(&((r >> 8) as u16 % 100).to_be_bytes()),
            }
            let p = Packet::new_unchecked(&b[..]);
            let general = Repr::parse_general(&p);
            if let Some(fast) = Repr::parse_ihl5(&b) {
                taken += 1;
                assert_eq!(fast, general, "{b:02x?}");
            }
            assert_eq!(Repr::parse(&p), general, "{b:02x?}");
        }
        assert!(taken > 15_000, "the shortcut took {taken}");
    }

    const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    /// A ping with no data from 198.18.0.2 to 198.18.0.1 as Linux sends it:
    /// DF set, TTL 64, ident 0x1c46, header checksum 0x9273, followed by the
    /// 8-byte ICMP echo request.
    const ECHO: [u8; 28] = [
        0x45, 0x00, 0x00, 0x1c, // v4, IHL 5, TOS 0, total 28
        0x1c, 0x46, 0x40, 0x00, // ident, DF, offset 0
        0x40, 0x01, 0x92, 0x73, // TTL 64, ICMP, checksum
        0xc6, 0x12, 0x00, 0x02, // 198.18.0.2
        0xc6, 0x12, 0x00, 0x01, // 198.18.0.1
        0x08, 0x00, 0xe5, 0xca, 0x12, 0x34, 0x00, 0x01, // echo request
    ];

    /// The second fragment of a UDP datagram: MF set, offset 185 units =
    /// 1480 bytes, 8 bytes of payload.
    const FRAGMENT: [u8; 28] = [
        0x45, 0x00, 0x00, 0x1c, 0xbe, 0xef, 0x20, 0xb9, 0x40, 0x11, 0x0f, 0x01, 0xc6, 0x12, 0x00,
        0x01, 0xc6, 0x12, 0x00, 0x02, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    ];

    /// An IGMPv2 report to 224.0.0.22 carrying the Router Alert option
    /// (RFC 2113: 0x94 0x04 0x00 0x00), so IHL is 6. TOS 0xc0, TTL 1.
    const WITH_OPTIONS: [u8; 32] = [
        0x46, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x40, 0x00, 0x01, 0x02, 0x3d, 0xed, 0xc6, 0x12, 0x00,
        0x02, 0xe0, 0x00, 0x00, 0x16, // fixed header
        0x94, 0x04, 0x00, 0x00, // Router Alert
        0x16, 0x00, 0x09, 0xe9, 0xe0, 0x00, 0x00, 0x16, // IGMPv2 report
    ];

    fn echo_repr() -> Repr {
        Repr {
            src_addr: LOCAL,
            dst_addr: PEER,
            protocol: Protocol::Icmp,
            payload_len: 8,
            ttl: 64,
            tos: 0,
            ident: 0x1c46,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
    }

    fn fragment_repr() -> Repr {
        Repr {
            src_addr: PEER,
            dst_addr: LOCAL,
            protocol: Protocol::Udp,
            payload_len: 8,
            ttl: 64,
            tos: 0,
            ident: 0xbeef,
            dont_frag: false,
            more_frags: true,
            frag_offset: 1480,
        }
    }

    #[test]
    fn deconstructs_echo_datagram() {
        let p = Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!((p.dscp(), p.ecn(), p.tos()), (0, 0, 0));
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.ident(), 0x1c46);
        assert!(p.dont_frag() && !p.more_frags() && !p.reserved_flag());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), Protocol::Icmp);
        assert_eq!(p.checksum(), 0x9273);
        assert_eq!(p.src_addr(), LOCAL);
        assert_eq!(p.dst_addr(), PEER);
        assert_eq!(p.options(), &[] as &[u8]);
        assert_eq!(p.header(), &ECHO[..20]);
        assert_eq!(p.payload(), &ECHO[20..]);
        assert!(p.verify_checksum());
        assert_eq!(Repr::parse(&p), Ok(echo_repr()));
    }

    #[test]
    fn fragment_offset_is_reported_in_bytes() {
        // RFC 791: "The fragment offset is measured in units of 8 octets
        // (64 bits)."
        let p = Packet::new_checked(&FRAGMENT[..]).unwrap();
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.more_frags() && !p.dont_frag());
        let repr = Repr::parse(&p).unwrap();
        assert_eq!(repr, fragment_repr());
        assert!(repr.is_fragment());
        assert!(!echo_repr().is_fragment());
        // The last fragment has MF clear but a non-zero offset.
        let last = Repr {
            more_frags: false,
            ..fragment_repr()
        };
        assert!(last.is_fragment());
    }

    #[test]
    fn largest_fragment_offset_fits() {
        let mut buf = [0u8; 20];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_flags_and_offset(false, false, 65528);
        assert_eq!(p.frag_offset(), 65528);
        assert!(!p.dont_frag() && !p.more_frags() && !p.reserved_flag());
    }

    #[test]
    fn options_are_length_checked_and_skipped() {
        let p = Packet::new_checked(&WITH_OPTIONS[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload(), &WITH_OPTIONS[24..]);
        assert_eq!((p.dscp(), p.ecn()), (0x30, 0));
        let repr = Repr::parse(&p).unwrap();
        assert_eq!(repr.payload_len, 8);
        assert_eq!(repr.protocol, Protocol::Unknown(2));
        assert_eq!(repr.tos, 0xc0);
        assert_eq!(repr.ttl, 1);
        // Cut inside the options.
        for n in 20..24 {
            assert_eq!(
                Packet::new_checked(&WITH_OPTIONS[..n]).err(),
                Some(Error::Truncated)
            );
        }
    }

    #[test]
    fn constructs_echo_header() {
        let repr = echo_repr();
        assert_eq!(repr.header_len(), 20);
        assert_eq!(repr.buffer_len(), 28);
        let mut buf = [0xffu8; 28];
        buf[20..].copy_from_slice(&ECHO[20..]);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut p);
        assert_eq!(buf, ECHO);
    }

    #[test]
    fn constructs_fragment_header() {
        let mut buf = [0u8; 28];
        buf[20..].copy_from_slice(&FRAGMENT[20..]);
        fragment_repr().emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, FRAGMENT);
    }

    #[test]
    fn parse_then_emit_is_identity() {
        for bytes in [ECHO, FRAGMENT] {
            let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
            let mut out = bytes;
            out[..20].fill(0);
            repr.emit(&mut Packet::new_unchecked(&mut out[..]));
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        // A 28-byte datagram in a minimum frame arrives with 18 bytes of pad.
        let mut padded = [0u8; 46];
        padded[..28].copy_from_slice(&ECHO);
        let p = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(p.payload(), &ECHO[20..]);
        assert_eq!(Repr::parse(&p).unwrap().payload_len, 8);
    }

    #[test]
    fn rejects_in_the_documented_order() {
        let check = |f: &dyn Fn(&mut [u8]), len: usize, want: Error| {
            let mut b = ECHO;
            f(&mut b);
            assert_eq!(Packet::new_checked(&b[..len]).err(), Some(want));
        };
        // Shorter than a header, whatever the header says.
        check(&|b| b[0] = 0x65, 19, Error::Truncated);
        // "Version: 4 bits. The Version field indicates the format of the
        // internet header."
        check(&|b| b[0] = 0x65, 28, Error::BadVersion);
        check(&|b| b[0] = 0x05, 28, Error::BadVersion);
        // "Note that the minimum value for a correct header is 5."
        for ihl in 0..5 {
            check(&|b| b[0] = 0x40 | ihl, 28, Error::BadHeaderLength);
        }
        // IHL 15 asks for 60 bytes of header.
        check(&|b| b[0] = 0x4f, 28, Error::Truncated);
        // Total Length below the header length.
        check(&|b| b[3] = 19, 28, Error::BadTotalLength);
        check(&|b| b[3] = 0, 28, Error::BadTotalLength);
        // Total Length beyond the buffer.
        check(&|b| b[3] = 29, 28, Error::Truncated);
        check(&|_| {}, 27, Error::Truncated);
    }

    #[test]
    fn rejects_bad_header_checksum() {
        let mut bad = ECHO;
        bad[8] = 63; // TTL changed without updating the checksum
        let p = Packet::new_checked(&bad[..]).unwrap();
        assert!(!p.verify_checksum());
        assert_eq!(Repr::parse(&p), Err(Error::BadChecksum));
        // The checksum covers options too.
        let mut bad = WITH_OPTIONS;
        bad[21] = 0x05;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&bad[..]).unwrap()),
            Err(Error::BadChecksum)
        );
    }

    #[test]
    fn checksum_does_not_cover_the_payload() {
        // RFC 791: "The checksum field is the 16 bit one's complement of the
        // one's complement sum of all 16 bit words in the header."
        let mut b = ECHO;
        b[27] ^= 0xff;
        assert!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()).is_ok());
    }

    #[test]
    fn fill_checksum_covers_options() {
        let mut b = WITH_OPTIONS;
        b[10] = 0;
        b[11] = 0;
        Packet::new_unchecked(&mut b[..]).fill_checksum();
        assert_eq!(b, WITH_OPTIONS);
    }

    #[test]
    fn setters_write_where_getters_read() {
        let mut buf = [0u8; 40];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_version(4);
        p.set_header_len(24);
        p.set_dscp_ecn(0xb9); // EF (46) with ECT(1)
        p.set_total_len(40);
        p.set_ident(0xabcd);
        p.set_flags_and_offset(true, true, 8);
        p.set_ttl(255);
        p.set_protocol(Protocol::Gre);
        p.set_src_addr(PEER);
        p.set_dst_addr(LOCAL);
        p.fill_checksum();
        p.payload_mut().fill(0x5a);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            (p.version(), p.header_len(), p.dscp(), p.ecn()),
            (4, 24, 46, 1)
        );
        assert_eq!((p.total_len(), p.ident()), (40, 0xabcd));
        assert!(p.dont_frag() && p.more_frags());
        assert_eq!(p.frag_offset(), 8);
        assert_eq!((p.ttl(), p.protocol()), (255, Protocol::Gre));
        assert_eq!((p.src_addr(), p.dst_addr()), (PEER, LOCAL));
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &[0x5a; 16]);
    }

    #[test]
    fn protocol_round_trips_through_u8() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(Protocol::from(v)), v);
        }
        assert_eq!(Protocol::from(1), Protocol::Icmp);
        assert_eq!(Protocol::from(6), Protocol::Tcp);
        assert_eq!(Protocol::from(17), Protocol::Udp);
        assert_eq!(Protocol::from(47), Protocol::Gre);
        assert_eq!(Protocol::from(50), Protocol::Esp);
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
        let _ = (
            p.version(),
            p.header_len(),
            p.dscp(),
            p.ecn(),
            p.total_len(),
        );
        let _ = (p.ident(), p.dont_frag(), p.more_frags(), p.frag_offset());
        let _ = (
            p.ttl(),
            p.protocol(),
            p.checksum(),
            p.src_addr(),
            p.dst_addr(),
        );
        let _ = (p.options(), p.payload(), p.header(), p.verify_checksum());
        if let Ok(repr) = Repr::parse(&p) {
            assert_eq!(
                repr.buffer_len(),
                p.total_len() as usize - p.options().len()
            );
            // Without options or the reserved bit, emit reproduces the header.
            if p.header_len() == HEADER_LEN && !p.reserved_flag() {
                let mut out = [0u8; HEADER_LEN];
                repr.emit(&mut Packet::new_unchecked(&mut out[..]));
                assert_eq!(out, bytes[..HEADER_LEN]);
            }
        }
    }

    #[test]
    fn never_panics_on_truncations_or_random_bytes() {
        for bytes in [&ECHO[..], &FRAGMENT[..], &WITH_OPTIONS[..]] {
            for n in 0..=bytes.len() {
                exercise(&bytes[..n]);
            }
        }
        let mut rng = XorShift(0xdead_beef_cafe_f00d);
        for _ in 0..4000 {
            let len = (rng.next() % 80) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Steer most inputs past the version check, with plausible
            // lengths and often a valid checksum, so deeper paths run.
            if len >= HEADER_LEN && !rng.next().is_multiple_of(4) {
                buf[0] = 0x40 | (rng.next() % 16) as u8;
                let total = (rng.next() % (len as u64 + 8)) as u16;
                buf[2..4].copy_from_slice(&total.to_be_bytes());
                if rng.next().is_multiple_of(2) {
                    let mut p = Packet::new_unchecked(&mut buf[..]);
                    if p.header_len() <= len {
                        p.fill_checksum();
                    }
                }
            }
            exercise(&buf);
        }
    }
}
