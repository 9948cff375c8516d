//! Ethernet II frames with at most one IEEE 802.1Q tag.
//!
//! ```text
//!  0      6      12         14        16         18
//! +------+------+----------+---------+----------+---------
//! | dst  | src  | 0x8100   | TCI     | type     | payload     (tagged)
//! +------+------+----------+---------+----------+---------
//! | dst  | src  | type     | payload                         (untagged)
//! ```
//!
//! The frame check sequence is not part of the buffer: every device we use
//! strips it on receive and adds it on transmit.

use super::MacAddr;

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Length of one 802.1Q tag (TPID + TCI).
pub const VLAN_TAG_LEN: usize = 4;

mod field {
    use core::ops::Range;

    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// Only present when ETHERTYPE is 0x8100.
    pub const TCI: Range<usize> = 14..16;
    pub const INNER_ETHERTYPE: Range<usize> = 16..18;
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum EtherType {
    Ipv4,
    Arp,
    /// An IEEE 802.1Q tag follows (TPID 0x8100).
    Vlan,
    Unknown(u16),
}

impl From<u16> for EtherType {
    #[inline]
    fn from(v: u16) -> EtherType {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x8100 => EtherType::Vlan,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(v: EtherType) -> u16 {
        match v {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Vlan => 0x8100,
            EtherType::Unknown(other) => other,
        }
    }
}

/// The fields of an 802.1Q tag control information word.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct VlanTag {
    /// Priority code point, 0..=7.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier, 0..=4095. 0 means "priority tag only, no VLAN".
    pub vid: u16,
}

impl VlanTag {
    pub fn from_tci(tci: u16) -> VlanTag {
        VlanTag {
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        }
    }

    /// Out-of-range `pcp` or `vid` bits are masked off rather than allowed to
    /// spill into the neighbouring fields.
    pub fn to_tci(&self) -> u16 {
        (u16::from(self.pcp & 0x7) << 13) | (u16::from(self.dei) << 12) | (self.vid & 0x0fff)
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Error {
    /// Shorter than the header its EtherType announces.
    Truncated,
}

impl Error {
    pub fn as_str(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
        }
    }
}

error_via_as_str!(Error);

/// A read/write view of an Ethernet frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` without checking it; accessors may panic until
    /// [`Frame::check_len`] has succeeded.
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Frame<T>, Error> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// The buffer holds the whole header, including the 802.1Q tag when the
    /// outer EtherType announces one.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn dst_addr(&self) -> MacAddr {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        MacAddr(a)
    }

    pub fn src_addr(&self) -> MacAddr {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        MacAddr(a)
    }

    /// The outer EtherType field: [`EtherType::Vlan`] for a tagged frame.
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        be16(self.buffer.as_ref(), field::ETHERTYPE.start).into()
    }

    #[inline]
    fn outer_is_vlan(&self) -> bool {
        // Read without indexing: header_len() is used by check_len() itself.
        match self.buffer.as_ref().get(field::ETHERTYPE) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]) == u16::from(EtherType::Vlan),
            _ => false,
        }
    }

    /// The 802.1Q tag, if the outer EtherType is 0x8100.
    #[inline]
    pub fn vlan(&self) -> Option<VlanTag> {
        if !self.outer_is_vlan() {
            return None;
        }
        match self.buffer.as_ref().get(field::TCI)? {
            &[hi, lo] => Some(VlanTag::from_tci(u16::from_be_bytes([hi, lo]))),
            _ => None,
        }
    }

    /// The EtherType of the payload: the inner one for a tagged frame.
    ///
    /// A second tag (QinQ 0x88a8 or a nested 0x8100) is not parsed, so it is
    /// reported here as `Unknown(0x88a8)` or `Vlan`.
    #[inline]
    pub fn payload_ethertype(&self) -> EtherType {
        if !self.outer_is_vlan() {
            return self.ethertype();
        }
        match self.buffer.as_ref().get(field::INNER_ETHERTYPE) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]).into(),
            // Only reachable on an unchecked view.
            _ => EtherType::Unknown(0),
        }
    }

    /// 14, or 18 with an 802.1Q tag.
    pub fn header_len(&self) -> usize {
        if self.outer_is_vlan() {
            HEADER_LEN + VLAN_TAG_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Everything after the header, including any padding up to the 60-byte
    /// minimum frame: the network layer trims by its own length field.
    pub fn payload(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(self.header_len()..)
            .unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    /// Sets the outer EtherType; [`EtherType::Vlan`] makes the frame tagged.
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&u16::from(ethertype).to_be_bytes());
    }

    /// Writes the TCI. The outer EtherType must already be [`EtherType::Vlan`]
    /// for the tag to mean anything.
    ///
    /// # Panics
    /// If the buffer is shorter than 18 bytes.
    pub fn set_vlan(&mut self, tag: VlanTag) {
        self.buffer.as_mut()[field::TCI].copy_from_slice(&tag.to_tci().to_be_bytes());
    }

    /// Writes the EtherType of the payload: the inner field if the frame is
    /// tagged, else the outer one.
    pub fn set_payload_ethertype(&mut self, ethertype: EtherType) {
        let at = self.header_len() - 2;
        self.buffer.as_mut()[at..at + 2].copy_from_slice(&u16::from(ethertype).to_be_bytes());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        self.buffer.as_mut().get_mut(start..).unwrap_or_default()
    }
}

/// The header of a frame, with the payload's EtherType already looked up
/// behind any tag.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Repr {
    pub src_addr: MacAddr,
    pub dst_addr: MacAddr,
    /// The payload's EtherType, never [`EtherType::Vlan`] unless the frame is
    /// double-tagged.
    pub ethertype: EtherType,
    pub vlan: Option<VlanTag>,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &Frame<&T>) -> Result<Repr, Error> {
        frame.check_len()?;
        Ok(Repr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.payload_ethertype(),
            vlan: frame.vlan(),
        })
    }

    pub fn header_len(&self) -> usize {
        match self.vlan {
            Some(_) => HEADER_LEN + VLAN_TAG_LEN,
            None => HEADER_LEN,
        }
    }

    /// Writes the header, tag included.
    ///
    /// # Panics
    /// If the buffer is shorter than [`Repr::header_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        match self.vlan {
            Some(tag) => {
                frame.set_ethertype(EtherType::Vlan);
                frame.set_vlan(tag);
            }
            None => frame.set_ethertype(self.ethertype),
        }
        frame.set_payload_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole ARP request frame from 52:54:00:12:34:56 ("who has 10.0.2.2?
    /// tell 10.0.2.15") as a Linux host sends it: broadcast destination,
    /// EtherType 0x0806, zero-padded to the 60-byte minimum.
    const UNTAGGED: [u8; 60] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // src
        0x08, 0x06, // ARP
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype ptype hlen plen op
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x0a, 0x00, 0x02, 0x0f, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x02, 0x02, // target
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
    ];

    /// An IPv4 frame on VLAN 100 with priority 5: TPID 0x8100, TCI 0xa064,
    /// inner EtherType 0x0800, then the first bytes of an IPv4 header.
    const TAGGED: [u8; 22] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src
        0x81, 0x00, // 802.1Q TPID
        0xa0, 0x64, // PCP 5, DEI 0, VID 100
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x54,
    ];

    const HOST1: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const HOST2: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);

    #[test]
    fn deconstructs_untagged_frame() {
        let f = Frame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst_addr(), MacAddr::BROADCAST);
        assert_eq!(f.src_addr(), MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(f.payload_ethertype(), EtherType::Arp);
        assert_eq!(f.vlan(), None);
        assert_eq!(f.header_len(), 14);
        // Padding stays: ARP/IP decide how much of it is theirs.
        assert_eq!(f.payload().len(), 46);
        assert_eq!(&f.payload()[..4], &[0x00, 0x01, 0x08, 0x00]);
    }

    #[test]
    fn deconstructs_8021q_tagged_frame() {
        let f = Frame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(f.dst_addr(), HOST2);
        assert_eq!(f.src_addr(), HOST1);
        assert_eq!(f.ethertype(), EtherType::Vlan);
        assert_eq!(f.payload_ethertype(), EtherType::Ipv4);
        assert_eq!(
            f.vlan(),
            Some(VlanTag {
                pcp: 5,
                dei: false,
                vid: 100
            })
        );
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0x45, 0x00, 0x00, 0x54]);
    }

    #[test]
    fn tci_bits_are_pcp_dei_vid() {
        // 802.1Q: PCP is the top 3 bits, DEI the next, VID the low 12.
        let t = VlanTag::from_tci(0xffff);
        assert_eq!(
            t,
            VlanTag {
                pcp: 7,
                dei: true,
                vid: 0xfff
            }
        );
        assert_eq!(t.to_tci(), 0xffff);
        assert_eq!(
            VlanTag {
                pcp: 0,
                dei: true,
                vid: 0
            }
            .to_tci(),
            0x1000
        );
        // Oversized fields do not leak into their neighbours.
        assert_eq!(
            VlanTag {
                pcp: 0xff,
                dei: false,
                vid: 0xffff
            }
            .to_tci(),
            0xefff
        );
    }

    #[test]
    fn constructs_untagged_header() {
        let repr = Repr {
            src_addr: MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            dst_addr: MacAddr::BROADCAST,
            ethertype: EtherType::Arp,
            vlan: None,
        };
        assert_eq!(repr.header_len(), 14);
        let mut buf = [0u8; 14];
        repr.emit(&mut Frame::new_unchecked(&mut buf[..]));
        assert_eq!(buf, UNTAGGED[..14]);
    }

    #[test]
    fn constructs_tagged_header() {
        let repr = Repr {
            src_addr: HOST1,
            dst_addr: HOST2,
            ethertype: EtherType::Ipv4,
            vlan: Some(VlanTag {
                pcp: 5,
                dei: false,
                vid: 100,
            }),
        };
        assert_eq!(repr.header_len(), 18);
        let mut buf = [0u8; 18];
        repr.emit(&mut Frame::new_unchecked(&mut buf[..]));
        assert_eq!(buf, TAGGED[..18]);
    }

    #[test]
    fn parse_then_emit_is_identity() {
        for bytes in [&UNTAGGED[..], &TAGGED[..]] {
            let repr = Repr::parse(&Frame::new_checked(bytes).unwrap()).unwrap();
            let mut out = bytes.to_vec();
            out[..repr.header_len()].fill(0);
            repr.emit(&mut Frame::new_unchecked(&mut out[..]));
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn rejects_frame_shorter_than_header() {
        for n in 0..14 {
            assert_eq!(
                Frame::new_checked(&UNTAGGED[..n]).err(),
                Some(Error::Truncated)
            );
        }
        assert!(Frame::new_checked(&UNTAGGED[..14]).is_ok());
    }

    #[test]
    fn rejects_tagged_frame_cut_inside_the_tag() {
        for n in 14..18 {
            assert_eq!(
                Frame::new_checked(&TAGGED[..n]).err(),
                Some(Error::Truncated)
            );
        }
        let f = Frame::new_checked(&TAGGED[..18]).unwrap();
        assert_eq!(f.payload(), &[] as &[u8]);
    }

    #[test]
    fn second_tag_is_reported_not_parsed() {
        // QinQ: outer 0x8100 then an 802.1ad S-tag TPID 0x88a8 as "inner type".
        let mut qinq = TAGGED;
        qinq[16..18].copy_from_slice(&[0x88, 0xa8]);
        let f = Frame::new_checked(&qinq[..]).unwrap();
        assert_eq!(f.payload_ethertype(), EtherType::Unknown(0x88a8));
        // Nested 802.1Q.
        qinq[16..18].copy_from_slice(&[0x81, 0x00]);
        let f = Frame::new_checked(&qinq[..]).unwrap();
        assert_eq!(f.payload_ethertype(), EtherType::Vlan);
        assert_eq!(f.header_len(), 18);
    }

    #[test]
    fn ethertype_round_trips_through_u16() {
        for v in [0x0800u16, 0x0806, 0x8100, 0x86dd, 0x88a8, 0, 0xffff] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
        assert_eq!(EtherType::from(0x0800), EtherType::Ipv4);
        assert_eq!(EtherType::from(0x0806), EtherType::Arp);
        assert_eq!(EtherType::from(0x8100), EtherType::Vlan);
    }

    #[test]
    fn setters_write_where_getters_read() {
        let mut buf = [0u8; 18];
        let mut f = Frame::new_unchecked(&mut buf[..]);
        f.set_dst_addr(HOST2);
        f.set_src_addr(HOST1);
        f.set_ethertype(EtherType::Vlan);
        f.set_vlan(VlanTag {
            pcp: 1,
            dei: true,
            vid: 4094,
        });
        f.set_payload_ethertype(EtherType::Arp);
        assert_eq!(f.dst_addr(), HOST2);
        assert_eq!(f.src_addr(), HOST1);
        assert_eq!(
            f.vlan(),
            Some(VlanTag {
                pcp: 1,
                dei: true,
                vid: 4094
            })
        );
        assert_eq!(f.payload_ethertype(), EtherType::Arp);
        assert!(f.payload_mut().is_empty());
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
        if let Ok(f) = Frame::new_checked(bytes) {
            let _ = (f.dst_addr(), f.src_addr(), f.ethertype(), f.vlan());
            let _ = (f.payload_ethertype(), f.header_len(), f.payload().len());
            let repr = Repr::parse(&f).unwrap();
            let mut out = vec![0u8; repr.header_len()];
            repr.emit(&mut Frame::new_unchecked(&mut out[..]));
            assert_eq!(out, bytes[..repr.header_len()]);
        }
        // Unchecked views must still not panic in the variable-length parts.
        let f = Frame::new_unchecked(bytes);
        let _ = (f.vlan(), f.header_len(), f.payload().len());
        let _ = Repr::parse(&f);
    }

    #[test]
    fn never_panics_on_truncations_or_random_bytes() {
        for bytes in [&UNTAGGED[..], &TAGGED[..]] {
            for n in 0..=bytes.len() {
                exercise(&bytes[..n]);
            }
        }
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..4000 {
            let len = (rng.next() % 40) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Make tags common enough to matter.
            if len >= 14 && rng.next().is_multiple_of(2) {
                buf[12..14].copy_from_slice(&[0x81, 0x00]);
            }
            exercise(&buf);
        }
    }
}
