//! UDP wire format (RFC 768).
//!
//! ```text
//!  0      7 8     15 16    23 24    31
//! +--------+--------+--------+--------+
//! |     Source      |   Destination   |
//! |      Port       |      Port       |
//! +--------+--------+--------+--------+
//! |                 |                 |
//! |     Length      |    Checksum     |
//! +--------+--------+--------+--------+
//! |          data octets ...
//! ```
//!
//! The buffer may run past Length; the datagram is what Length says.

use core::net::Ipv4Addr;

use crate::ip::checksum;

pub const HEADER_LEN: usize = 8;

/// The IPv4 protocol number, for the pseudo-header.
const PROTO_UDP: u8 = 17;

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Error {
    /// Shorter than the header, or than the Length field says.
    Truncated,
    /// Length field below 8.
    BadLength,
    BadChecksum,
    /// Destination port 0.
    Malformed,
}

impl Error {
    pub fn as_str(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadLength => "bad_length",
            Error::BadChecksum => "bad_checksum",
            Error::Malformed => "malformed",
        }
    }
}

error_via_as_str!(Error);

/// A read/write view of a UDP datagram.
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

    /// The header fits, Length covers at least the header, and the buffer
    /// holds Length bytes.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let field_len = usize::from(self.len());
        if field_len < HEADER_LEN {
            return Err(Error::BadLength);
        }
        if field_len > len {
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

    pub fn src_port(&self) -> u16 {
        self.be16(field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        self.be16(field::DST_PORT)
    }

    /// The Length field: header plus data, in bytes.
    #[allow(clippy::len_without_is_empty)] // a header field, not a container size
    pub fn len(&self) -> u16 {
        self.be16(field::LENGTH)
    }

    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }

    // The datagram and payload use get(): a Length changed by a setter after
    // check_len() yields an empty slice, not a panic.

    /// Header and data: the first Length bytes.
    fn datagram(&self) -> &[u8] {
        let len = usize::from(self.len());
        self.buffer.as_ref().get(..len).unwrap_or_default()
    }

    /// Bytes 8..Length.
    pub fn payload(&self) -> &[u8] {
        let len = usize::from(self.len());
        self.buffer
            .as_ref()
            .get(HEADER_LEN..len)
            .unwrap_or_default()
    }

    /// RFC 768: "An all zero transmitted checksum value means that the
    /// transmitter generated no checksum", so a zero field verifies.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let pseudo = checksum::pseudo_header(src, dst, PROTO_UDP, self.len());
        checksum::combine(&[pseudo, checksum::sum(self.datagram())]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_be16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_src_port(&mut self, v: u16) {
        self.set_be16(field::SRC_PORT, v)
    }

    pub fn set_dst_port(&mut self, v: u16) {
        self.set_be16(field::DST_PORT, v)
    }

    pub fn set_len(&mut self, v: u16) {
        self.set_be16(field::LENGTH, v)
    }

    pub fn set_checksum(&mut self, v: u16) {
        self.set_be16(field::CHECKSUM, v)
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.len());
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..len)
            .unwrap_or_default()
    }

    /// Computes the checksum over the pseudo-header, the header and Length
    /// bytes, so Length and the payload must be in place first.
    ///
    /// RFC 768: "If the computed checksum is zero, it is transmitted as all
    /// ones", because zero on the wire means "no checksum".
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let pseudo = checksum::pseudo_header(src, dst, PROTO_UDP, self.len());
        let c = !checksum::combine(&[pseudo, checksum::sum(self.datagram())]);
        self.set_checksum(if c == 0 { 0xffff } else { c })
    }
}

/// The ports of a validated datagram; the payload stays in the packet.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Repr {
    pub src_port: u16,
    pub dst_port: u16,
}

impl Repr {
    /// Checks lengths, the checksum (unless it was not sent), and that the
    /// destination port is not 0. Source port 0 is legal: RFC 768 "If not
    /// used, a value of zero is inserted."
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        p: &Packet<&T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<Repr, Error> {
        p.check_len()?;
        if !p.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        if p.dst_port() == 0 {
            return Err(Error::Malformed);
        }
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
        })
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header, copies `payload` in, and fills the checksum.
    ///
    /// # Panics
    /// If the buffer is shorter than 8 + `payload.len()`. It should be
    /// exactly that long. A payload over 65527 bytes does not fit Length: a
    /// debug build asserts, release wraps.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        p: &mut Packet<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: &[u8],
    ) {
        let len = HEADER_LEN + payload.len();
        debug_assert!(len <= usize::from(u16::MAX));
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len(len as u16);
        p.payload_mut().copy_from_slice(payload);
        p.fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    /// "ping" from 198.18.0.2:40000 to the discard port 198.18.0.1:9,
    /// checksum 0xf893.
    const PING: [u8; 12] = [
        0x9c, 0x40, 0x00, 0x09, 0x00, 0x0c, 0xf8, 0x93, b'p', b'i', b'n', b'g',
    ];

    /// A DNS query for example.com/A from 198.18.0.2:53000 to
    /// 198.18.0.1:53: 37 bytes, so the checksum pads an odd byte.
    const DNS_QUERY: [u8; 37] = [
        0xcf, 0x08, 0x00, 0x35, 0x00, 0x25, 0xb8, 0xa5, // UDP header
        0x1c, 0x2b, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // DNS header
        0x07, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0x03, b'c', b'o', b'm', 0x00, // qname
        0x00, 0x01, 0x00, 0x01, // A, IN
    ];

    /// Ports 1234 -> 5678 with a payload chosen so the checksum computes to
    /// zero; it goes on the wire as 0xffff.
    const ZERO_SUM: [u8; 10] = [0x04, 0xd2, 0x16, 0x2e, 0x00, 0x0a, 0xff, 0xff, 0x58, 0xb2];

    #[test]
    fn deconstructs_datagram() {
        let p = Packet::new_checked(&PING[..]).unwrap();
        assert_eq!(p.src_port(), 40000);
        assert_eq!(p.dst_port(), 9);
        assert_eq!(p.len(), 12);
        assert_eq!(p.checksum(), 0xf893);
        assert_eq!(p.payload(), b"ping");
        assert!(p.verify_checksum(LOCAL, PEER));
        assert_eq!(
            Repr::parse(&p, LOCAL, PEER),
            Ok(Repr {
                src_port: 40000,
                dst_port: 9
            })
        );
    }

    #[test]
    fn deconstructs_odd_length_dns_query() {
        let p = Packet::new_checked(&DNS_QUERY[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (53000, 53, 37));
        assert_eq!(p.payload(), &DNS_QUERY[8..]);
        assert!(p.verify_checksum(LOCAL, PEER));
    }

    #[test]
    fn constructs_datagrams() {
        for (bytes, src_port, dst_port) in [
            (&PING[..], 40000, 9),
            (&DNS_QUERY[..], 53000, 53),
            (&ZERO_SUM[..], 1234, 5678),
        ] {
            let repr = Repr { src_port, dst_port };
            assert_eq!(repr.header_len(), 8);
            let mut out = vec![0xa5; bytes.len()];
            repr.emit(
                &mut Packet::new_unchecked(&mut out[..]),
                LOCAL,
                PEER,
                &bytes[8..],
            );
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn computed_zero_checksum_is_sent_as_all_ones() {
        // RFC 768: "If the computed checksum is zero, it is transmitted as
        // all ones (the equivalent in one's complement arithmetic)."
        let mut b = ZERO_SUM;
        b[6] = 0;
        b[7] = 0;
        Packet::new_unchecked(&mut b[..]).fill_checksum(LOCAL, PEER);
        assert_eq!(&b[6..8], &[0xff, 0xff]);
        assert!(Packet::new_checked(&b[..])
            .unwrap()
            .verify_checksum(LOCAL, PEER));
    }

    #[test]
    fn zero_checksum_means_not_computed() {
        // RFC 768: "An all zero transmitted checksum value means that the
        // transmitter generated no checksum (for debugging or for higher
        // level protocols that don't care)."
        let mut b = PING;
        b[6] = 0;
        b[7] = 0;
        b[11] ^= 0xff; // would fail any real checksum
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(LOCAL, PEER));
        assert!(Repr::parse(&p, LOCAL, PEER).is_ok());
    }

    #[test]
    fn checksum_covers_the_pseudo_header() {
        // RFC 768: "the pseudo header ... contains the source address, the
        // destination address, the protocol, and the UDP length."
        let p = Packet::new_checked(&PING[..]).unwrap();
        let other = Ipv4Addr::new(198, 18, 0, 3);
        assert!(!p.verify_checksum(other, PEER));
        assert!(!p.verify_checksum(LOCAL, other));
        // The sum is commutative: swapping the addresses (as a reply does)
        // is invisible to the checksum.
        assert!(p.verify_checksum(PEER, LOCAL));
        assert_eq!(Repr::parse(&p, LOCAL, other), Err(Error::BadChecksum));
    }

    #[test]
    fn rejects_corrupted_payload() {
        let mut b = DNS_QUERY;
        b[36] ^= 0x01; // the odd last byte counts too
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p, LOCAL, PEER), Err(Error::BadChecksum));
    }

    #[test]
    fn destination_port_zero_is_malformed() {
        let mut b = PING;
        b[2] = 0;
        b[3] = 0;
        Packet::new_unchecked(&mut b[..]).fill_checksum(LOCAL, PEER);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p, LOCAL, PEER), Err(Error::Malformed));
    }

    #[test]
    fn source_port_zero_is_legal() {
        // RFC 768: Source Port "is an optional field ... If not used, a value
        // of zero is inserted."
        let mut b = PING;
        b[0] = 0;
        b[1] = 0;
        Packet::new_unchecked(&mut b[..]).fill_checksum(LOCAL, PEER);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            Repr::parse(&p, LOCAL, PEER),
            Ok(Repr {
                src_port: 0,
                dst_port: 9
            })
        );
    }

    #[test]
    fn rejects_bad_lengths() {
        for n in 0..8 {
            assert_eq!(
                Packet::new_checked(&PING[..n]).err(),
                Some(Error::Truncated)
            );
        }
        // RFC 768: "the minimum value of the length is eight."
        for l in 0..8u8 {
            let mut b = PING;
            b[5] = l;
            assert_eq!(Packet::new_checked(&b[..]).err(), Some(Error::BadLength));
        }
        // Length beyond the buffer.
        for n in 8..12 {
            assert_eq!(
                Packet::new_checked(&PING[..n]).err(),
                Some(Error::Truncated)
            );
        }
        let mut b = PING;
        b[5] = 13;
        assert_eq!(Packet::new_checked(&b[..]).err(), Some(Error::Truncated));
    }

    #[test]
    fn length_field_bounds_the_payload() {
        // Bytes after Length (say, an IP payload longer than the datagram)
        // are neither payload nor checksummed.
        let mut long = PING.to_vec();
        long.extend_from_slice(&[0xde, 0xad]);
        let p = Packet::new_checked(&long[..]).unwrap();
        assert_eq!(p.payload(), b"ping");
        assert!(p.verify_checksum(LOCAL, PEER));
        // A header-only datagram has an empty payload.
        let repr = Repr {
            src_port: 1,
            dst_port: 2,
        };
        let mut b = [0u8; 8];
        repr.emit(&mut Packet::new_unchecked(&mut b[..]), LOCAL, PEER, &[]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.len(), p.payload()), (8, &[] as &[u8]));
        assert_eq!(Repr::parse(&p, LOCAL, PEER), Ok(repr));
    }

    #[test]
    fn parse_then_emit_is_identity() {
        for bytes in [&PING[..], &DNS_QUERY[..], &ZERO_SUM[..]] {
            let p = Packet::new_checked(bytes).unwrap();
            let repr = Repr::parse(&p, LOCAL, PEER).unwrap();
            let mut out = vec![0; bytes.len()];
            repr.emit(
                &mut Packet::new_unchecked(&mut out[..]),
                LOCAL,
                PEER,
                p.payload(),
            );
            assert_eq!(out, bytes);
        }
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
        let _ = Repr::parse(&Packet::new_unchecked(bytes), LOCAL, PEER);
        let Ok(p) = Packet::new_checked(bytes) else {
            return;
        };
        let _ = (p.src_port(), p.dst_port(), p.len(), p.checksum());
        let _ = (p.payload(), p.verify_checksum(LOCAL, PEER));
        if let Ok(repr) = Repr::parse(&p, LOCAL, PEER) {
            let mut out = vec![0; HEADER_LEN + p.payload().len()];
            repr.emit(
                &mut Packet::new_unchecked(&mut out[..]),
                LOCAL,
                PEER,
                p.payload(),
            );
            // Identical unless the sender skipped the checksum.
            if p.checksum() != 0 {
                assert_eq!(out, bytes[..out.len()]);
            }
        }
    }

    #[test]
    fn never_panics_on_truncations_or_random_bytes() {
        for bytes in [&PING[..], &DNS_QUERY[..], &ZERO_SUM[..]] {
            for n in 0..=bytes.len() {
                exercise(&bytes[..n]);
            }
        }
        let mut rng = XorShift(0x5851_f42d_4c95_7f2d);
        for _ in 0..4000 {
            let len = (rng.next() % 48) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Plausible lengths and, often, a valid checksum.
            if len >= HEADER_LEN && !rng.next().is_multiple_of(4) {
                let l = (rng.next() % (len as u64 + 4)) as u16;
                buf[4..6].copy_from_slice(&l.to_be_bytes());
                if rng.next().is_multiple_of(2) {
                    Packet::new_unchecked(&mut buf[..]).fill_checksum(LOCAL, PEER);
                }
            }
            exercise(&buf);
        }
    }
}
