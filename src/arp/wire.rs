//! ARP wire format (RFC 826). The view handles any hardware/protocol address
//! lengths; [`Repr`] only Ethernet/IPv4.
//!
//! ```text
//!  0        2        4     5     6        8
//! +--------+--------+-----+-----+--------+-----+-----+-----+-----+
//! | htype  | ptype  | hlen| plen| oper   | sha | spa | tha | tpa |
//! +--------+--------+-----+-----+--------+-----+-----+-----+-----+
//! ```

use core::net::Ipv4Addr;

use crate::eth::MacAddr;

mod field {
    use core::ops::Range;

    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    /// The addresses start here; their lengths come from HLEN and PLEN.
    pub const ADDRS: usize = 8;
}

/// `ar$hrd` for Ethernet.
const HTYPE_ETHERNET: u16 = 1;
/// `ar$pro` for IPv4: the IPv4 EtherType.
const PTYPE_IPV4: u16 = 0x0800;

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Operation {
    Request,
    Reply,
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(v: u16) -> Operation {
        match v {
            1 => Operation::Request,
            2 => Operation::Reply,
            other => Operation::Unknown(other),
        }
    }
}

impl From<Operation> for u16 {
    fn from(v: Operation) -> u16 {
        match v {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(other) => other,
        }
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Error {
    /// Shorter than the fixed part or than the addresses it announces.
    Truncated,
    /// Not Ethernet/IPv4, or an operation other than request/reply (RARP,
    /// InARP).
    Unsupported,
}

impl Error {
    pub fn as_str(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::Unsupported => "unsupported",
        }
    }
}

error_via_as_str!(Error);

/// A read/write view of an ARP packet.
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

    /// The fixed 8 bytes and the four addresses fit. Trailing bytes (Ethernet
    /// padding) are allowed.
    pub fn check_len(&self) -> Result<(), Error> {
        let data = self.buffer.as_ref();
        if data.len() < field::ADDRS || data.len() < self.tpa_range().end {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn byte(&self, at: usize) -> u8 {
        self.buffer.as_ref().get(at).copied().unwrap_or(0)
    }

    fn be16(&self, r: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    pub fn hardware_type(&self) -> u16 {
        self.be16(field::HTYPE)
    }

    pub fn protocol_type(&self) -> u16 {
        self.be16(field::PTYPE)
    }

    pub fn hardware_len(&self) -> u8 {
        self.byte(field::HLEN)
    }

    pub fn protocol_len(&self) -> u8 {
        self.byte(field::PLEN)
    }

    pub fn operation(&self) -> Operation {
        self.be16(field::OPER).into()
    }

    fn sha_range(&self) -> core::ops::Range<usize> {
        let start = field::ADDRS;
        start..start + usize::from(self.hardware_len())
    }

    fn spa_range(&self) -> core::ops::Range<usize> {
        let start = self.sha_range().end;
        start..start + usize::from(self.protocol_len())
    }

    fn tha_range(&self) -> core::ops::Range<usize> {
        let start = self.spa_range().end;
        start..start + usize::from(self.hardware_len())
    }

    fn tpa_range(&self) -> core::ops::Range<usize> {
        let start = self.tha_range().end;
        start..start + usize::from(self.protocol_len())
    }

    // The address getters tolerate a length byte changed after check_len():
    // they return an empty slice rather than panic.
    fn slice(&self, r: core::ops::Range<usize>) -> &[u8] {
        self.buffer.as_ref().get(r).unwrap_or_default()
    }

    pub fn source_hardware_addr(&self) -> &[u8] {
        self.slice(self.sha_range())
    }

    pub fn source_protocol_addr(&self) -> &[u8] {
        self.slice(self.spa_range())
    }

    pub fn target_hardware_addr(&self) -> &[u8] {
        self.slice(self.tha_range())
    }

    pub fn target_protocol_addr(&self) -> &[u8] {
        self.slice(self.tpa_range())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_be16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_hardware_type(&mut self, v: u16) {
        self.set_be16(field::HTYPE, v)
    }

    pub fn set_protocol_type(&mut self, v: u16) {
        self.set_be16(field::PTYPE, v)
    }

    /// Set the lengths before the addresses: they place the address fields.
    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v;
    }

    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PLEN] = v;
    }

    pub fn set_operation(&mut self, op: Operation) {
        self.set_be16(field::OPER, op.into())
    }

    /// # Panics
    /// If `addr` is not `hardware_len()` bytes or the buffer is too short.
    pub fn set_source_hardware_addr(&mut self, addr: &[u8]) {
        let r = self.sha_range();
        self.buffer.as_mut()[r].copy_from_slice(addr);
    }

    /// # Panics
    /// If `addr` is not `protocol_len()` bytes or the buffer is too short.
    pub fn set_source_protocol_addr(&mut self, addr: &[u8]) {
        let r = self.spa_range();
        self.buffer.as_mut()[r].copy_from_slice(addr);
    }

    /// # Panics
    /// If `addr` is not `hardware_len()` bytes or the buffer is too short.
    pub fn set_target_hardware_addr(&mut self, addr: &[u8]) {
        let r = self.tha_range();
        self.buffer.as_mut()[r].copy_from_slice(addr);
    }

    /// # Panics
    /// If `addr` is not `protocol_len()` bytes or the buffer is too short.
    pub fn set_target_protocol_addr(&mut self, addr: &[u8]) {
        let r = self.tpa_range();
        self.buffer.as_mut()[r].copy_from_slice(addr);
    }
}

/// An Ethernet/IPv4 ARP request or reply.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Repr {
    /// Request or Reply; never `Unknown` after [`Repr::parse`].
    pub operation: Operation,
    pub source_mac: MacAddr,
    pub source_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

fn ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    let four: [u8; 4] = b.try_into().ok()?;
    Some(Ipv4Addr::from(four))
}

impl Repr {
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&T>) -> Result<Repr, Error> {
        p.check_len()?;
        if p.hardware_type() != HTYPE_ETHERNET
            || p.protocol_type() != PTYPE_IPV4
            || p.hardware_len() != 6
            || p.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        let operation = match p.operation() {
            op @ (Operation::Request | Operation::Reply) => op,
            Operation::Unknown(_) => return Err(Error::Unsupported),
        };
        // check_len() and the lengths above make these four lookups succeed.
        let addrs = (
            MacAddr::from_bytes(p.source_hardware_addr()),
            ipv4(p.source_protocol_addr()),
            MacAddr::from_bytes(p.target_hardware_addr()),
            ipv4(p.target_protocol_addr()),
        );
        match addrs {
            (Some(source_mac), Some(source_ip), Some(target_mac), Some(target_ip)) => Ok(Repr {
                operation,
                source_mac,
                source_ip,
                target_mac,
                target_ip,
            }),
            _ => Err(Error::Truncated),
        }
    }

    /// 28: 8 fixed bytes, two MAC and two IPv4 addresses.
    pub const fn buffer_len(&self) -> usize {
        field::ADDRS + 2 * 6 + 2 * 4
    }

    /// # Panics
    /// If the buffer is shorter than [`Repr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_hardware_type(HTYPE_ETHERNET);
        p.set_protocol_type(PTYPE_IPV4);
        p.set_hardware_len(6);
        p.set_protocol_len(4);
        p.set_operation(self.operation);
        p.set_source_hardware_addr(self.source_mac.as_bytes());
        p.set_source_protocol_addr(&self.source_ip.octets());
        p.set_target_hardware_addr(self.target_mac.as_bytes());
        p.set_target_protocol_addr(&self.target_ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST1: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const HOST2: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
    const IP1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const IP2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    /// "Who has 198.18.0.1? Tell 198.18.0.2", as ringstack's interface sends it.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, // ar$hrd: Ethernet
        0x08, 0x00, // ar$pro: IPv4
        0x06, 0x04, // ar$hln, ar$pln
        0x00, 0x01, // ar$op: request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // ar$sha
        0xc6, 0x12, 0x00, 0x02, // ar$spa
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ar$tha: unknown
        0xc6, 0x12, 0x00, 0x01, // ar$tpa
    ];

    /// The Linux peer's answer: "198.18.0.1 is at 02:00:00:00:00:02".
    const REPLY: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, // reply
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc6, 0x12, 0x00, 0x01, // sender
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0xc6, 0x12, 0x00, 0x02, // target
    ];

    fn request_repr() -> Repr {
        Repr {
            operation: Operation::Request,
            source_mac: HOST1,
            source_ip: IP2,
            target_mac: MacAddr::ZERO,
            target_ip: IP1,
        }
    }

    fn reply_repr() -> Repr {
        Repr {
            operation: Operation::Reply,
            source_mac: HOST2,
            source_ip: IP1,
            target_mac: HOST1,
            target_ip: IP2,
        }
    }

    #[test]
    fn deconstructs_request() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), 0x0800);
        assert_eq!(p.hardware_len(), 6);
        assert_eq!(p.protocol_len(), 4);
        assert_eq!(p.operation(), Operation::Request);
        assert_eq!(p.source_hardware_addr(), HOST1.as_bytes());
        assert_eq!(p.source_protocol_addr(), &IP2.octets());
        assert_eq!(p.target_hardware_addr(), &[0; 6]);
        assert_eq!(p.target_protocol_addr(), &IP1.octets());
        assert_eq!(Repr::parse(&p), Ok(request_repr()));
    }

    #[test]
    fn deconstructs_reply() {
        let p = Packet::new_checked(&REPLY[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(reply_repr()));
    }

    #[test]
    fn constructs_request_and_reply() {
        for (repr, bytes) in [(request_repr(), REQUEST), (reply_repr(), REPLY)] {
            assert_eq!(repr.buffer_len(), 28);
            let mut buf = [0xaau8; 28];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
            assert_eq!(buf, bytes);
        }
    }

    #[test]
    fn accepts_ethernet_padding_after_the_packet() {
        // An ARP packet arrives in a 60-byte frame: 46 bytes of payload.
        let mut padded = [0u8; 46];
        padded[..28].copy_from_slice(&REQUEST);
        let p = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(request_repr()));
        assert_eq!(p.target_protocol_addr(), &IP1.octets());
    }

    #[test]
    fn rejects_packet_shorter_than_its_addresses() {
        for n in 0..28 {
            assert_eq!(
                Packet::new_checked(&REQUEST[..n]).err(),
                Some(Error::Truncated),
                "len {n}"
            );
        }
        // The address lengths come from the packet: a larger ar$hln needs more.
        let mut big = REQUEST;
        big[4] = 7;
        assert_eq!(Packet::new_checked(&big[..]).err(), Some(Error::Truncated));
    }

    #[test]
    fn rejects_non_ethernet_ipv4_as_unsupported() {
        // RFC 826: "?Do I have the hardware type in ar$hrd? ... [optionally
        // check the hardware length ar$hln] ?Do I speak the protocol in ar$pro?"
        let cases: [(usize, u8); 5] = [(1, 6), (3, 0xdd), (4, 8), (5, 16), (2, 0x86)];
        for (at, v) in cases {
            let mut bad = [0u8; 64];
            bad[..28].copy_from_slice(&REQUEST);
            bad[at] = v;
            let p = Packet::new_checked(&bad[..]).unwrap();
            assert_eq!(Repr::parse(&p), Err(Error::Unsupported), "byte {at}={v}");
        }
    }

    #[test]
    fn rejects_unknown_operation_as_unsupported() {
        // 3 and 4 are RARP (RFC 903); 8 and 9 InARP (RFC 2390).
        for op in [0u8, 3, 4, 8, 9, 0xff] {
            let mut bad = REQUEST;
            bad[7] = op;
            let p = Packet::new_checked(&bad[..]).unwrap();
            assert_eq!(p.operation(), Operation::Unknown(op.into()));
            assert_eq!(Repr::parse(&p), Err(Error::Unsupported));
        }
    }

    #[test]
    fn view_handles_other_address_lengths() {
        // An InfiniBand-style 20-byte hardware address: the view places the
        // fields by the length bytes even though Repr refuses it.
        let mut buf = [0u8; 8 + 2 * 20 + 2 * 4];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_hardware_type(32);
        p.set_protocol_type(0x0800);
        p.set_hardware_len(20);
        p.set_protocol_len(4);
        p.set_operation(Operation::Reply);
        p.set_source_hardware_addr(&[0x11; 20]);
        p.set_source_protocol_addr(&[1, 2, 3, 4]);
        p.set_target_hardware_addr(&[0x22; 20]);
        p.set_target_protocol_addr(&[5, 6, 7, 8]);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.source_hardware_addr(), &[0x11; 20]);
        assert_eq!(p.source_protocol_addr(), &[1, 2, 3, 4]);
        assert_eq!(p.target_hardware_addr(), &[0x22; 20]);
        assert_eq!(p.target_protocol_addr(), &[5, 6, 7, 8]);
        assert_eq!(Repr::parse(&p), Err(Error::Unsupported));
    }

    #[test]
    fn parse_then_emit_is_identity() {
        for bytes in [REQUEST, REPLY] {
            let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
            let mut out = [0u8; 28];
            repr.emit(&mut Packet::new_unchecked(&mut out[..]));
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn operation_round_trips_through_u16() {
        for v in [0u16, 1, 2, 3, 0xffff] {
            assert_eq!(u16::from(Operation::from(v)), v);
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
        let unchecked = Packet::new_unchecked(bytes);
        let _ = Repr::parse(&unchecked);
        let Ok(p) = Packet::new_checked(bytes) else {
            return;
        };
        let _ = (p.hardware_type(), p.protocol_type(), p.operation());
        let _ = (p.source_hardware_addr(), p.source_protocol_addr());
        let _ = (p.target_hardware_addr(), p.target_protocol_addr());
        if let Ok(repr) = Repr::parse(&p) {
            let mut out = [0u8; 28];
            repr.emit(&mut Packet::new_unchecked(&mut out[..]));
            assert_eq!(out, bytes[..28]);
        }
    }

    #[test]
    fn never_panics_on_truncations_or_random_bytes() {
        for bytes in [REQUEST, REPLY] {
            for n in 0..=bytes.len() {
                exercise(&bytes[..n]);
            }
        }
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for _ in 0..4000 {
            let len = (rng.next() % 64) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Mostly-valid headers reach deeper code than pure noise.
            if len >= 8 && rng.next().is_multiple_of(2) {
                buf[..8].copy_from_slice(&REQUEST[..8]);
                buf[7] = (rng.next() % 3) as u8;
            }
            exercise(&buf);
        }
    }
}
