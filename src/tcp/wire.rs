//! TCP segment wire format (RFC 9293 §3.1) and the options ringstack knows:
//! MSS (RFC 9293 §3.2), window scale and timestamps (RFC 7323), SACK
//! (RFC 2018).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Port          |       Destination Port        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Sequence Number                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Acknowledgment Number                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Data |       |C|E|U|A|P|R|S|F|                               |
//! | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//! |       |       |R|E|G|K|H|T|N|N|                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Checksum            |         Urgent Pointer        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                           [Options]                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                             Data ...                          :
//! ```
//!
//! TCP has no length field: the segment is the whole buffer, so hand
//! [`Packet`] exactly the IP payload (`ip::wire::Packet::payload`, which
//! already drops link-layer padding). The pseudo-header's TCP Length is the
//! buffer's length.
//!
//! # Options: what is accepted and what is dropped
//!
//! RFC 9293 §3.1: "A TCP implementation MUST be able to receive a TCP Option
//! in any segment (MUST-5). A TCP implementation MUST (MUST-6) ignore
//! without error any TCP Option it does not implement, assuming that the
//! option has a length field. ... TCP implementations MUST be prepared to
//! handle an illegal option length (e.g., zero); a suggested procedure is to
//! reset the connection and log the error cause (MUST-7)."
//!
//! So [`TcpOptions`] walks the option list and:
//! - skips an option of unknown kind whose length is sane, reporting it as
//!   [`TcpOption::Unknown`] (MUST-6);
//! - treats as **malformed** a length byte that is missing, below 2, or runs
//!   past the end of the header; a known option whose length is not the one
//!   its RFC defines (MSS 4, window scale 3, SACK-permitted 2, timestamps
//!   10); and a SACK option whose length is not 2 + 8n for n in 1..=4.
//!   After a malformed option the rest of the list cannot be trusted, and
//!   [`Repr::parse`] rejects the whole segment with [`Error::Malformed`].
//!   Of the two remedies MUST-7 suggests we choose **dropping the segment**
//!   rather than resetting the connection: a reset would let anyone who can
//!   inject one bad segment tear a connection down, while a dropped segment
//!   is recovered by retransmission if it was genuine. (Linux is laxer: it
//!   ignores a known option of the wrong length and keeps the segment.)
//! - stops at End of Option List and ignores whatever follows it, even
//!   though MUST-69 says that "MUST be header padding of zeros": the
//!   sender broke that rule, not the segment.
//!
//! Window scale shift counts above 14 are reported raw by [`TcpOptions`]
//! and clamped to 14 by [`Repr::parse`]: RFC 7323 §2.3, "If a Window Scale
//! option is received with a shift.cnt value larger than 14, the TCP SHOULD
//! log the error but MUST use 14 instead of the specified value."
//!
//! When an option appears twice the later one wins, as in Linux.
//!
//! An option list of exactly NOP, NOP, Timestamps (RFC 7323 Appendix A, what
//! Linux and ringstack send on every segment after the handshake) is decoded
//! without the walk; anything else, near misses included, takes the walk.
//! Both give the same [`Repr`], which the unit tests check.
//!
//! Options are reported whatever segment carries them. RFC 9293 says MSS
//! "MUST NOT be sent in other segments" than a SYN (MUST-65) and RFC 7323
//! §2.2 that a window scale option "in a segment without a SYN bit should be
//! ignored": ignoring them on non-SYN segments is the engine's job.

use core::net::Ipv4Addr;

use super::seq::SeqNumber;
use crate::ip::checksum;

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// Data Offset is four bits of 32-bit words: 15 × 4.
pub const MAX_HEADER_LEN: usize = 60;

/// Room for options in the largest header.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;

/// RFC 7323 §2.3: "the shift count MUST be limited to 14 (which allows
/// windows of 2^30 = 1 GiB)".
pub const MAX_WINDOW_SCALE: u8 = 14;

/// The most SACK blocks one option can carry: (40 - 2) / 8.
pub const MAX_SACK_BLOCKS: usize = 4;

/// The IPv4 protocol number, for the pseudo-header.
const PROTO_TCP: u8 = 6;

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    /// Data Offset (4 bits), Rsrvd (4 bits), control bits (8 bits).
    pub const FLAGS: Range<usize> = 12..14;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// Control bits as they sit in the low 12 bits of the 16-bit word at offset
/// 12 ([`Packet::flags`]). The four bits above CWR are Rsrvd; the lowest of
/// them is AccECN's AE (RFC 9768), which ringstack does not implement.
pub mod flag {
    pub const FIN: u16 = 0x001;
    pub const SYN: u16 = 0x002;
    pub const RST: u16 = 0x004;
    pub const PSH: u16 = 0x008;
    pub const ACK: u16 = 0x010;
    pub const URG: u16 = 0x020;
    pub const ECE: u16 = 0x040;
    pub const CWR: u16 = 0x080;
    /// The Rsrvd bits.
    pub const RESERVED: u16 = 0xf00;
}

/// Option kinds (IANA "TCP Option Kind Numbers").
mod kind {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Error {
    /// Shorter than 20 bytes, or than Data Offset says.
    Truncated,
    /// Data Offset below 5 words.
    BadHeaderLength,
    BadChecksum,
    /// A port is 0, or the options cannot be parsed (see the module docs).
    Malformed,
}

impl Error {
    pub fn as_str(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadHeaderLength => "bad_header_length",
            Error::BadChecksum => "bad_checksum",
            Error::Malformed => "malformed",
        }
    }
}

error_via_as_str!(Error);

/// A read/write view of a TCP segment: the whole buffer is the segment.
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

    /// Checks, in this order: the fixed header fits, Data Offset is at least
    /// 5, and the options fit.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.header_len() < HEADER_LEN {
            return Err(Error::BadHeaderLength);
        }
        if self.header_len() > len {
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

    fn be32(&self, r: core::ops::Range<usize>) -> u32 {
        let b = &self.buffer.as_ref()[r];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    pub fn src_port(&self) -> u16 {
        self.be16(field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        self.be16(field::DST_PORT)
    }

    pub fn seq_number(&self) -> SeqNumber {
        SeqNumber(self.be32(field::SEQ_NUM))
    }

    /// The raw field; it means something only when [`Packet::ack`] is set.
    pub fn ack_number(&self) -> SeqNumber {
        SeqNumber(self.be32(field::ACK_NUM))
    }

    /// Data Offset in bytes (the field counts 32-bit words).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::FLAGS.start] >> 4) * 4
    }

    /// The 12 bits after Data Offset: Rsrvd and the control bits, as the
    /// [`flag`] constants lay them out.
    pub fn flags(&self) -> u16 {
        self.be16(field::FLAGS) & 0x0fff
    }

    fn flag(&self, mask: u16) -> bool {
        self.flags() & mask != 0
    }

    pub fn fin(&self) -> bool {
        self.flag(flag::FIN)
    }

    pub fn syn(&self) -> bool {
        self.flag(flag::SYN)
    }

    pub fn rst(&self) -> bool {
        self.flag(flag::RST)
    }

    pub fn psh(&self) -> bool {
        self.flag(flag::PSH)
    }

    pub fn ack(&self) -> bool {
        self.flag(flag::ACK)
    }

    pub fn urg(&self) -> bool {
        self.flag(flag::URG)
    }

    pub fn ece(&self) -> bool {
        self.flag(flag::ECE)
    }

    pub fn cwr(&self) -> bool {
        self.flag(flag::CWR)
    }

    /// The Window field, unscaled.
    pub fn window_len(&self) -> u16 {
        self.be16(field::WINDOW)
    }

    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }

    /// The Urgent Pointer field; it means something only when
    /// [`Packet::urg`] is set.
    pub fn urgent_at(&self) -> u16 {
        self.be16(field::URGENT)
    }

    // The variable-length accessors below use get(): a header length changed
    // by a setter after check_len() yields an empty slice, not a panic.

    /// Bytes 20..Data Offset, padding included. Walk them with
    /// [`TcpOptions`].
    pub fn options(&self) -> &[u8] {
        let hl = self.header_len();
        self.buffer.as_ref().get(HEADER_LEN..hl).unwrap_or_default()
    }

    /// Everything after the header.
    pub fn payload(&self) -> &[u8] {
        let hl = self.header_len();
        self.buffer.as_ref().get(hl..).unwrap_or_default()
    }

    /// SEG.LEN: RFC 9293 §3.4, "The segment length (SEG.LEN) includes both
    /// data and sequence space-occupying controls", that is SYN and FIN.
    pub fn segment_len(&self) -> usize {
        self.payload().len() + usize::from(self.syn()) + usize::from(self.fin())
    }

    /// The ones'-complement sum over the pseudo-header and the whole
    /// segment is all ones. A buffer over 65535 bytes cannot be a TCP
    /// segment over IPv4 (TCP Length is 16 bits) and never verifies.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let data = self.buffer.as_ref();
        let Ok(len) = u16::try_from(data.len()) else {
            return false;
        };
        let pseudo = checksum::pseudo_header(src, dst, PROTO_TCP, len);
        checksum::combine(&[pseudo, checksum::sum(data)]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_be16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    fn set_be32(&mut self, r: core::ops::Range<usize>, v: u32) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_src_port(&mut self, v: u16) {
        self.set_be16(field::SRC_PORT, v)
    }

    pub fn set_dst_port(&mut self, v: u16) {
        self.set_be16(field::DST_PORT, v)
    }

    pub fn set_seq_number(&mut self, v: SeqNumber) {
        self.set_be32(field::SEQ_NUM, v.0)
    }

    pub fn set_ack_number(&mut self, v: SeqNumber) {
        self.set_be32(field::ACK_NUM, v.0)
    }

    /// `len` in bytes: a multiple of 4 from 20 to 60. Keeps the flags.
    pub fn set_header_len(&mut self, len: usize) {
        debug_assert!(
            len.is_multiple_of(4) && (HEADER_LEN..=MAX_HEADER_LEN).contains(&len),
            "TCP header length {len}"
        );
        let b = &mut self.buffer.as_mut()[field::FLAGS.start];
        *b = (*b & 0x0f) | (((len / 4) as u8) << 4);
    }

    /// Writes the 12 bits after Data Offset (Rsrvd and control bits);
    /// keeps Data Offset.
    pub fn set_flags(&mut self, flags: u16) {
        let offset = self.be16(field::FLAGS) & 0xf000;
        self.set_be16(field::FLAGS, offset | (flags & 0x0fff))
    }

    fn set_flag(&mut self, mask: u16, on: bool) {
        let f = self.flags();
        self.set_flags(if on { f | mask } else { f & !mask })
    }

    pub fn set_fin(&mut self, on: bool) {
        self.set_flag(flag::FIN, on)
    }

    pub fn set_syn(&mut self, on: bool) {
        self.set_flag(flag::SYN, on)
    }

    pub fn set_rst(&mut self, on: bool) {
        self.set_flag(flag::RST, on)
    }

    pub fn set_psh(&mut self, on: bool) {
        self.set_flag(flag::PSH, on)
    }

    pub fn set_ack(&mut self, on: bool) {
        self.set_flag(flag::ACK, on)
    }

    pub fn set_urg(&mut self, on: bool) {
        self.set_flag(flag::URG, on)
    }

    pub fn set_ece(&mut self, on: bool) {
        self.set_flag(flag::ECE, on)
    }

    pub fn set_cwr(&mut self, on: bool) {
        self.set_flag(flag::CWR, on)
    }

    pub fn set_window_len(&mut self, v: u16) {
        self.set_be16(field::WINDOW, v)
    }

    pub fn set_checksum(&mut self, v: u16) {
        self.set_be16(field::CHECKSUM, v)
    }

    pub fn set_urgent_at(&mut self, v: u16) {
        self.set_be16(field::URGENT, v)
    }

    /// Bytes 20..Data Offset, so the header length must be set first.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..hl)
            .unwrap_or_default()
    }

    /// Everything after the header, so the header length must be set first.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        self.buffer.as_mut().get_mut(hl..).unwrap_or_default()
    }

    /// Computes the checksum over the pseudo-header and the whole buffer, so
    /// the header, options and payload must be in place first. There is no
    /// zero special case: RFC 9293 §3.1, "The TCP checksum is never
    /// optional."
    ///
    /// A buffer over 65535 bytes is not a segment; a debug build asserts,
    /// release computes a wrong checksum.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        debug_assert!(data.len() <= usize::from(u16::MAX));
        let pseudo = checksum::pseudo_header(src, dst, PROTO_TCP, data.len() as u16);
        let c = !checksum::combine(&[pseudo, checksum::sum(data)]);
        self.set_checksum(c)
    }
}

/// A SACK block: RFC 2018 §3, "Left Edge of Block: This is the first
/// sequence number of this block. Right Edge of Block: This is the sequence
/// number immediately following the last sequence number of this block."
pub type SackBlock = (SeqNumber, SeqNumber);

/// One TCP option as it appears on the wire. Values are raw: a window scale
/// above 14 or an MSS of 0 is reported as sent.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum TcpOption<'a> {
    /// Kind 0: the list ends here.
    EndOfList,
    /// Kind 1: padding between options.
    NoOperation,
    /// Kind 2, length 4 (RFC 9293 §3.2).
    MaxSegmentSize(u16),
    /// Kind 3, length 3: the shift count (RFC 7323 §2.2).
    WindowScale(u8),
    /// Kind 4, length 2 (RFC 2018 §2).
    SackPermitted,
    /// Kind 5, length 2 + 8n: 1 to 4 blocks, filled from the front
    /// (RFC 2018 §3).
    SackRange([Option<SackBlock>; MAX_SACK_BLOCKS]),
    /// Kind 8, length 10 (RFC 7323 §3.2).
    Timestamps { tsval: u32, tsecr: u32 },
    /// Any other kind with a sane length; `data` is what follows the length
    /// byte.
    Unknown { kind: u8, data: &'a [u8] },
}

impl<'a> TcpOption<'a> {
    /// Bytes this option takes on the wire.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::SackRange(blocks) => 2 + 8 * blocks.iter().flatten().count(),
            TcpOption::Timestamps { .. } => 10,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buf` and returns its length.
    /// `None` entries of a `SackRange` are skipped.
    ///
    /// # Panics
    /// If `buf` is shorter than [`TcpOption::buffer_len`]. An `Unknown`
    /// option with more than 253 data bytes, or a `SackRange` with no
    /// blocks, cannot be parsed back: a debug build asserts.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.buffer_len();
        let buf = &mut buf[..len];
        match *self {
            TcpOption::EndOfList => buf[0] = kind::END,
            TcpOption::NoOperation => buf[0] = kind::NOP,
            TcpOption::MaxSegmentSize(mss) => {
                buf[..2].copy_from_slice(&[kind::MSS, 4]);
                buf[2..].copy_from_slice(&mss.to_be_bytes());
            }
            TcpOption::WindowScale(shift) => {
                buf.copy_from_slice(&[kind::WINDOW_SCALE, 3, shift]);
            }
            TcpOption::SackPermitted => buf.copy_from_slice(&[kind::SACK_PERMITTED, 2]),
            TcpOption::SackRange(blocks) => {
                debug_assert!(len > 2, "a SACK option needs a block");
                buf[..2].copy_from_slice(&[kind::SACK, len as u8]);
                for (chunk, (left, right)) in
                    buf[2..].chunks_exact_mut(8).zip(blocks.iter().flatten())
                {
                    chunk[..4].copy_from_slice(&left.0.to_be_bytes());
                    chunk[4..].copy_from_slice(&right.0.to_be_bytes());
                }
            }
            TcpOption::Timestamps { tsval, tsecr } => {
                buf[..2].copy_from_slice(&[kind::TIMESTAMPS, 10]);
                buf[2..6].copy_from_slice(&tsval.to_be_bytes());
                buf[6..].copy_from_slice(&tsecr.to_be_bytes());
            }
            TcpOption::Unknown { kind, data } => {
                debug_assert!(len <= usize::from(u8::MAX), "option length {len}");
                buf[0] = kind;
                buf[1] = len as u8;
                buf[2..].copy_from_slice(data);
            }
        }
        len
    }
}

/// An iterator over an option list, such as [`Packet::options`].
///
/// Yields each option in order, `EndOfList` included, then stops. A
/// malformed option (see the module docs) yields one `Err(Malformed)`, after
/// which the iterator is exhausted: nothing after a bad length can be
/// framed.
#[derive(Clone, Debug)]
pub struct TcpOptions<'a> {
    rest: &'a [u8],
}

impl<'a> TcpOptions<'a> {
    pub const fn new(options: &'a [u8]) -> TcpOptions<'a> {
        TcpOptions { rest: options }
    }

    fn fail(&mut self) -> Option<Result<TcpOption<'a>, Error>> {
        self.rest = &[];
        Some(Err(Error::Malformed))
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&k, after_kind) = self.rest.split_first()?;
        match k {
            kind::END => {
                // What follows is padding, not options.
                self.rest = &[];
                return Some(Ok(TcpOption::EndOfList));
            }
            kind::NOP => {
                self.rest = after_kind;
                return Some(Ok(TcpOption::NoOperation));
            }
            _ => {}
        }
        // Every other kind has a length byte that counts kind and length.
        let Some(&len) = after_kind.first() else {
            return self.fail();
        };
        let len = usize::from(len);
        if len < 2 || len > self.rest.len() {
            return self.fail();
        }
        let (this, rest) = self.rest.split_at(len);
        self.rest = rest;
        let data = &this[2..];
        let be16 = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
        let be32 = |i: usize| u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        let option = match (k, len) {
            (kind::MSS, 4) => TcpOption::MaxSegmentSize(be16(0)),
            (kind::WINDOW_SCALE, 3) => TcpOption::WindowScale(data[0]),
            (kind::SACK_PERMITTED, 2) => TcpOption::SackPermitted,
            (kind::TIMESTAMPS, 10) => TcpOption::Timestamps {
                tsval: be32(0),
                tsecr: be32(4),
            },
            // 10, 18, 26 or 34: one to four blocks.
            (kind::SACK, 10 | 18 | 26 | 34) => {
                let mut blocks = [None; MAX_SACK_BLOCKS];
                for (j, slot) in blocks.iter_mut().take((len - 2) / 8).enumerate() {
                    *slot = Some((SeqNumber(be32(8 * j)), SeqNumber(be32(8 * j + 4))));
                }
                TcpOption::SackRange(blocks)
            }
            // A kind we know with a length its RFC does not allow.
            (
                kind::MSS
                | kind::WINDOW_SCALE
                | kind::SACK_PERMITTED
                | kind::TIMESTAMPS
                | kind::SACK,
                _,
            ) => return self.fail(),
            (kind, _) => TcpOption::Unknown { kind, data },
        };
        Some(Ok(option))
    }
}

impl core::iter::FusedIterator for TcpOptions<'_> {}

/// The rest of a segment's checksum test once its pseudo-header and header
/// are summed (from [`Repr::parse_deferring_payload`]): the segment is
/// intact exactly when the payload's sum completes it to all ones. The
/// TCP header is a whole number of 32-bit words, so the payload's sum
/// lines up with the header's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a segment is not verified until its payload is"]
pub struct PayloadCheck {
    header_sum: u16,
}

impl PayloadCheck {
    /// With the payload's [`checksum::sum`], taken wherever it was read.
    pub fn verify_sum(self, payload_sum: u16) -> bool {
        checksum::add(self.header_sum, payload_sum) == 0xffff
    }

    /// Sums the payload here.
    pub fn verify(self, payload: &[u8]) -> bool {
        self.verify_sum(checksum::sum(payload))
    }
}

/// A validated TCP segment with its options decoded and its payload
/// borrowed.
///
/// Flags are kept as the peer sent them, whatever the combination (SYN+FIN,
/// SYN+RST, RST with data are all parseable): judging them is the engine's
/// job. The Rsrvd bits are dropped and never emitted (RFC 9293 §3.1: "Must
/// be zero in generated segments and must be ignored in received
/// segments").
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct Repr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq_number: SeqNumber,
    /// `Some` exactly when the ACK bit is set: RFC 9293 §3.1, "If the ACK
    /// control bit is set, this field contains the value of the next
    /// sequence number the sender of the segment is expecting to receive."
    pub ack_number: Option<SeqNumber>,
    /// The Window field, unscaled.
    pub window_len: u16,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
    pub ece: bool,
    pub cwr: bool,
    /// `Some` exactly when the URG bit is set. Parsed so the engine can
    /// honour MUST-66 ("A TCP receiver MUST process the RST and URG fields
    /// of all incoming segments"); ringstack itself never sends urgent data.
    pub urgent_at: Option<u16>,
    /// Clamped to 14 on parse and on emit.
    pub window_scale: Option<u8>,
    /// Raw: 0 or tiny values are the engine's to refuse or floor.
    pub max_seg_size: Option<u16>,
    pub sack_permitted: bool,
    /// Filled from the front; on emit only as many as fit are written
    /// ([`Repr::max_sack_blocks`]).
    pub sack_ranges: [Option<SackBlock>; MAX_SACK_BLOCKS],
    /// (TSval, TSecr).
    pub timestamp: Option<(u32, u32)>,
    pub payload: &'a [u8],
}

/// Room for the longest header (60 bytes) and a little more, so that
/// [`RunHeader::write`] can copy it whole as two 32-byte moves.
const RUN_HEADER_MAX: usize = 64;

/// What [`Repr::run_header`] makes: segment `i` of a run is this header
/// with its sequence number `i * mss` on, PSH on the last if the run's
/// first had it, and the checksum completed by the sum of its payload,
/// which the payload's copy takes. Each segment comes out byte for byte as
/// [`Repr::run_segment`] through [`Repr::emit`] would write it.
#[derive(Clone, Debug)]
pub struct RunHeader<'a> {
    bytes: [u8; RUN_HEADER_MAX],
    len: usize,
    /// The pseudo-header (every segment has the same length) and `bytes`.
    shared_sum: u16,
    seq: SeqNumber,
    psh: bool,
    mss: usize,
    payload: &'a [u8],
}

impl RunHeader<'_> {
    /// The TCP header length of every segment.
    pub fn header_len(&self) -> usize {
        self.len
    }

    /// The full `mss`-byte segments in the run; bytes past the last are
    /// not part of it, as with [`Repr::run_segment`].
    pub fn segments(&self) -> usize {
        self.payload.len() / self.mss
    }

    /// Writes segment `i` (< [`RunHeader::segments`]) into `buf`, which
    /// must be exactly `header_len() + mss` bytes.
    ///
    /// # Panics
    /// If `i` is past the run or `buf` is shorter than the segment.
    #[inline]
    pub fn write(&self, buf: &mut [u8], i: usize) {
        debug_assert_eq!(buf.len(), self.len + self.mss);
        let payload = &self.payload[i * self.mss..(i + 1) * self.mss];
        // The shared header, copied whole where the buffer has room: a
        // fixed 64-byte copy, whose bytes past the header the payload then
        // overwrites, costs less than one sized by the header length.
        if buf.len() >= RUN_HEADER_MAX {
            buf[..RUN_HEADER_MAX].copy_from_slice(&self.bytes);
        } else {
            buf[..self.len].copy_from_slice(&self.bytes[..self.len]);
        }
        let seq = self.seq + i * self.mss;
        buf[field::SEQ_NUM].copy_from_slice(&seq.0.to_be_bytes());
        let psh = self.psh && i + 1 == self.segments();
        // PSH is a bit of the low byte of the big-endian word at offset
        // 12, so it adds `flag::PSH` to that word's share of the sum.
        let psh = u16::from(psh) * flag::PSH;
        buf[field::FLAGS.end - 1] |= psh as u8;
        let payload_sum = checksum::copy_and_sum(&mut buf[self.len..], payload);
        let c = !checksum::combine(&[
            self.shared_sum,
            (seq.0 >> 16) as u16,
            seq.0 as u16,
            psh,
            payload_sum,
        ]);
        buf[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

/// The header length [`Repr::emit`] writes for a given set of options, so a
/// transmit frame can be sized before a `Repr` exists. Equal to
/// [`Repr::header_len`] for a `Repr` with those options; `sack_blocks`
/// counts the blocks offered, of which only those that fit are written.
pub const fn header_len_for(
    max_seg_size: bool,
    window_scale: bool,
    sack_permitted: bool,
    timestamp: bool,
    sack_blocks: usize,
) -> usize {
    let fixed = fixed_options_len(max_seg_size, window_scale, sack_permitted, timestamp);
    let n = sack_blocks_that_fit(fixed, sack_blocks);
    HEADER_LEN + fixed + sack_option_len(n)
}

/// Options other than SACK blocks, laid out as Linux does: each padded with
/// NOPs to 4 bytes, so no trailing padding is ever needed.
const fn fixed_options_len(mss: bool, ws: bool, sack_permitted: bool, ts: bool) -> usize {
    let mut len = 0;
    if mss {
        len += 4; // MSS
    }
    if ts {
        len += 12; // SACK-permitted or NOP NOP, then timestamps
    } else if sack_permitted {
        len += 4; // NOP NOP SACK-permitted
    }
    if ws {
        len += 4; // NOP window scale
    }
    len
}

/// How many of `offered` SACK blocks fit after `fixed` bytes of options.
const fn sack_blocks_that_fit(fixed: usize, offered: usize) -> usize {
    // NOP NOP kind length, then 8 bytes a block.
    let room = MAX_OPTIONS_LEN - fixed;
    let fit = if room >= 12 { (room - 4) / 8 } else { 0 };
    let fit = if fit > MAX_SACK_BLOCKS {
        MAX_SACK_BLOCKS
    } else {
        fit
    };
    if offered < fit {
        offered
    } else {
        fit
    }
}

const fn sack_option_len(blocks: usize) -> usize {
    if blocks == 0 {
        0
    } else {
        4 + 8 * blocks
    }
}

/// (TSval, TSecr) if `options` is exactly NOP, NOP, Timestamps (12 bytes,
/// RFC 7323 Appendix A); `None` for anything else, which then takes the
/// general walk. Both give the same `Repr`.
fn nop_nop_timestamps(options: &[u8]) -> Option<(u32, u32)> {
    match *options {
        [kind::NOP, kind::NOP, kind::TIMESTAMPS, 10, v0, v1, v2, v3, e0, e1, e2, e3] => Some((
            u32::from_be_bytes([v0, v1, v2, v3]),
            u32::from_be_bytes([e0, e1, e2, e3]),
        )),
        _ => None,
    }
}

impl<'a> Repr<'a> {
    /// Checks lengths, the checksum (RFC 9293 §3.1: "the receiver MUST check
    /// it (MUST-3)"), that neither port is 0 (port 0 is reserved and cannot
    /// be answered), and that the options parse; see the module docs for
    /// what makes options malformed.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        p: &Packet<&'a T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<Repr<'a>, Error> {
        p.check_len()?;
        if !p.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        Self::parse_fields(p)
    }

    /// [`Repr::parse`] with the payload's share of the checksum left to the
    /// caller: the pseudo-header and the TCP header are summed here, and
    /// the returned [`PayloadCheck`] completes the test with the payload's
    /// sum, which the receive path takes while it copies the payload into
    /// the socket's ring (one read of the bytes instead of two). Until it
    /// passes, nothing in the segment may be acted on. Errors the full
    /// checksum would have preceded (bad options, a zero port) come first
    /// here, so such a segment is counted as malformed, not as corrupt.
    pub fn parse_deferring_payload<T: AsRef<[u8]> + ?Sized>(
        p: &Packet<&'a T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<(Repr<'a>, PayloadCheck), Error> {
        let bytes: &'a [u8] = <T as AsRef<[u8]>>::as_ref(p.buffer);
        if let Some(r) = Self::parse_common_deferring(bytes, src, dst) {
            return Ok(r);
        }
        Self::parse_general_deferring(p, src, dst)
    }

    /// [`Repr::parse_deferring_payload`] for the two headers nearly every
    /// segment after the handshake has, no options or exactly NOP, NOP,
    /// timestamps (RFC 7323 Appendix A), when nothing in them is an error:
    /// the header's words loaded once, summed in registers and cut into
    /// the fields. `None` for anything else, including every error, which
    /// the general path then reports; nothing is decided here that it
    /// would decide differently (`the_common_header_shortcut_decides_as_
    /// the_general_path`).
    #[inline]
    fn parse_common_deferring(
        bytes: &'a [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Option<(Repr<'a>, PayloadCheck)> {
        let h = bytes
            .first_chunk::<32>()
            .map(|h| &h[..])
            .or(bytes.get(..HEADER_LEN))?;
        let word =
            |i: usize| u32::from_be_bytes([h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]]);
        let head = [word(0), word(1), word(2), word(3), word(4)];
        let len = u16::try_from(bytes.len()).ok()?;
        let hl = (head[3] >> 28) as usize * 4;
        let (options_sum, timestamp) = match hl {
            HEADER_LEN => (0, None),
            32 if h.len() == 32 && word(5) == 0x0101_080a => {
                let ts = [word(5), word(6), word(7)];
                (checksum::sum_be32(&ts), Some((ts[1], ts[2])))
            }
            _ => return None,
        };
        if head[0] >> 16 == 0 || head[0] & 0xffff == 0 {
            return None;
        }
        let flags = (head[3] >> 16) as u16;
        let pseudo = checksum::pseudo_header(src, dst, PROTO_TCP, len);
        let header_sum = checksum::add(
            checksum::add(pseudo, checksum::sum_be32(&head)),
            options_sum,
        );
        let repr = Repr {
            src_port: (head[0] >> 16) as u16,
            dst_port: head[0] as u16,
            seq_number: SeqNumber(head[1]),
            ack_number: (flags & flag::ACK != 0).then_some(SeqNumber(head[2])),
            window_len: head[3] as u16,
            syn: flags & flag::SYN != 0,
            fin: flags & flag::FIN != 0,
            rst: flags & flag::RST != 0,
            psh: flags & flag::PSH != 0,
            ece: flags & flag::ECE != 0,
            cwr: flags & flag::CWR != 0,
            urgent_at: (flags & flag::URG != 0).then_some(head[4] as u16),
            timestamp,
            payload: &bytes[hl..],
            ..Repr::default()
        };
        Some((repr, PayloadCheck { header_sum }))
    }

    /// [`Repr::parse_deferring_payload`] for every header.
    fn parse_general_deferring<T: AsRef<[u8]> + ?Sized>(
        p: &Packet<&'a T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<(Repr<'a>, PayloadCheck), Error> {
        p.check_len()?;
        let bytes = p.buffer.as_ref();
        let Ok(len) = u16::try_from(bytes.len()) else {
            return Err(Error::BadChecksum);
        };
        let pseudo = checksum::pseudo_header(src, dst, PROTO_TCP, len);
        let header_sum = checksum::add(pseudo, checksum::sum(&bytes[..p.header_len()]));
        Ok((Self::parse_fields(p)?, PayloadCheck { header_sum }))
    }

    /// The fields of a segment whose length `check_len` has passed.
    #[inline(always)]
    fn parse_fields<T: AsRef<[u8]> + ?Sized>(p: &Packet<&'a T>) -> Result<Repr<'a>, Error> {
        if p.src_port() == 0 || p.dst_port() == 0 {
            return Err(Error::Malformed);
        }
        // Borrow from the buffer itself, not from `p`, so the payload
        // outlives this call.
        let bytes: &'a [u8] = <T as AsRef<[u8]>>::as_ref(p.buffer);
        let hl = p.header_len();
        let options = bytes.get(HEADER_LEN..hl).unwrap_or_default();
        let payload = bytes.get(hl..).unwrap_or_default();

        let mut repr = Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq_number: p.seq_number(),
            ack_number: p.ack().then(|| p.ack_number()),
            window_len: p.window_len(),
            syn: p.syn(),
            fin: p.fin(),
            rst: p.rst(),
            psh: p.psh(),
            ece: p.ece(),
            cwr: p.cwr(),
            urgent_at: p.urg().then(|| p.urgent_at()),
            payload,
            ..Repr::default()
        };
        // RFC 7323 Appendix A's layout, which Linux and ringstack send on
        // every segment after the handshake: NOP, NOP, timestamps. The
        // general walk would find just the timestamps in these 12 bytes.
        if let Some((tsval, tsecr)) = nop_nop_timestamps(options) {
            repr.timestamp = Some((tsval, tsecr));
            return Ok(repr);
        }
        if !options.is_empty() {
            repr.walk_options(options)?;
        }
        Ok(repr)
    }

    /// The general option walk of [`Repr::parse`]: every option in order,
    /// the later of two duplicates winning.
    fn walk_options(&mut self, options: &[u8]) -> Result<(), Error> {
        for option in TcpOptions::new(options) {
            match option? {
                TcpOption::EndOfList | TcpOption::NoOperation => {}
                TcpOption::MaxSegmentSize(mss) => self.max_seg_size = Some(mss),
                TcpOption::WindowScale(shift) => {
                    self.window_scale = Some(shift.min(MAX_WINDOW_SCALE))
                }
                TcpOption::SackPermitted => self.sack_permitted = true,
                TcpOption::SackRange(blocks) => self.sack_ranges = blocks,
                TcpOption::Timestamps { tsval, tsecr } => self.timestamp = Some((tsval, tsecr)),
                // MUST-6: "ignore without error any TCP Option it does not
                // implement".
                TcpOption::Unknown { .. } => {}
            }
        }
        Ok(())
    }

    fn fixed_options_len(&self) -> usize {
        fixed_options_len(
            self.max_seg_size.is_some(),
            self.window_scale.is_some(),
            self.sack_permitted,
            self.timestamp.is_some(),
        )
    }

    /// How many SACK blocks [`Repr::emit`] writes: those offered, up to what
    /// fits beside the other options (4 alone, 3 with timestamps).
    pub fn max_sack_blocks(&self) -> usize {
        sack_blocks_that_fit(
            self.fixed_options_len(),
            self.sack_ranges.iter().flatten().count(),
        )
    }

    /// 20 plus the options `emit` writes; always a multiple of 4, at most 60.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.fixed_options_len() + sack_option_len(self.max_sack_blocks())
    }

    /// Header plus payload: the exact buffer `emit` wants.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Segment `i` of a run of `mss`-byte segments whose first is `self`
    /// ([`SegmentOut::run`](crate::tcp::SegmentOut::run)): the sequence
    /// number `i * mss` on, the `i`-th `mss` bytes of the payload, PSH only
    /// on the last. `None` past the end, and for an `mss` of 0 (a run of
    /// empty segments would never end).
    pub fn run_segment(&self, i: usize, mss: usize) -> Option<Repr<'a>> {
        if mss == 0 {
            return None;
        }
        let n = self.payload.len() / mss;
        let payload = self.payload.get(i.checked_mul(mss)?..)?.get(..mss)?;
        Some(Repr {
            seq_number: self.seq_number + i * mss,
            payload,
            psh: self.psh && i + 1 == n,
            ..*self
        })
    }

    /// The header every segment of a run of `mss`-byte segments starting
    /// with `self` shares ([`SegmentOut::run`](crate::tcp::SegmentOut::run)),
    /// for writing segment after segment without building a `Repr` and
    /// walking [`Repr::emit`] for each. `None` if `mss` is 0 or above what
    /// the IPv4 length field can carry with the header.
    pub fn run_header(&self, src: Ipv4Addr, dst: Ipv4Addr, mss: usize) -> Option<RunHeader<'a>> {
        let len = self.header_len();
        let length = u16::try_from(len.checked_add(mss)?).ok()?;
        if mss == 0 {
            return None;
        }
        let mut bytes = [0u8; RUN_HEADER_MAX];
        // The header of segment 0 with sequence number 0, no PSH and no
        // payload; its checksum field is cleared again below, so the sum
        // of these bytes is the sum of what every segment shares.
        let proto = Repr {
            seq_number: SeqNumber(0),
            psh: false,
            payload: &[],
            ..*self
        };
        proto.emit(&mut Packet::new_unchecked(&mut bytes[..len]), src, dst);
        bytes[field::CHECKSUM].fill(0);
        let pseudo = checksum::pseudo_header(src, dst, PROTO_TCP, length);
        Some(RunHeader {
            bytes,
            len,
            shared_sum: checksum::add(pseudo, checksum::sum(&bytes[..len])),
            seq: self.seq_number,
            psh: self.psh,
            mss,
            payload: self.payload,
        })
    }

    /// SEG.LEN: payload plus one each for SYN and FIN.
    pub fn segment_len(&self) -> usize {
        self.payload.len() + usize::from(self.syn) + usize::from(self.fin)
    }

    /// Calls `f` with each option in the order `emit` writes them, which is
    /// Linux's (`tcp_options_write`): MSS; SACK-permitted and timestamps
    /// packed into 12 bytes (or NOP NOP SACK-permitted alone); NOP window
    /// scale; NOP NOP SACK blocks.
    fn for_each_option(&self, mut f: impl FnMut(TcpOption<'static>)) {
        if let Some(mss) = self.max_seg_size {
            f(TcpOption::MaxSegmentSize(mss));
        }
        if let Some((tsval, tsecr)) = self.timestamp {
            if self.sack_permitted {
                f(TcpOption::SackPermitted);
            } else {
                f(TcpOption::NoOperation);
                f(TcpOption::NoOperation);
            }
            f(TcpOption::Timestamps { tsval, tsecr });
        } else if self.sack_permitted {
            f(TcpOption::NoOperation);
            f(TcpOption::NoOperation);
            f(TcpOption::SackPermitted);
        }
        if let Some(shift) = self.window_scale {
            f(TcpOption::NoOperation);
            f(TcpOption::WindowScale(shift.min(MAX_WINDOW_SCALE)));
        }
        let n = self.max_sack_blocks();
        if n > 0 {
            let mut blocks = [None; MAX_SACK_BLOCKS];
            for (slot, block) in blocks
                .iter_mut()
                .zip(self.sack_ranges.iter().flatten().take(n))
            {
                *slot = Some(*block);
            }
            f(TcpOption::NoOperation);
            f(TcpOption::NoOperation);
            f(TcpOption::SackRange(blocks));
        }
    }

    /// Writes the header, the options, the payload and the checksum.
    ///
    /// The ACK bit is set iff `ack_number` is `Some` (the field is zero
    /// otherwise), URG iff `urgent_at` is `Some`; Rsrvd is zero.
    ///
    /// # Panics
    /// If the buffer is shorter than [`Repr::buffer_len`]. It must be
    /// exactly that long, since TCP has no length field and every byte of
    /// it is segment: a debug build asserts.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        p: &mut Packet<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) {
        debug_assert_eq!(p.buffer.as_ref().len(), self.buffer_len());
        let hl = self.header_len();
        let bit = |on: bool, bit: u16| u16::from(on) * bit;
        let flags = bit(self.fin, flag::FIN)
            | bit(self.syn, flag::SYN)
            | bit(self.rst, flag::RST)
            | bit(self.psh, flag::PSH)
            | bit(self.ack_number.is_some(), flag::ACK)
            | bit(self.urgent_at.is_some(), flag::URG)
            | bit(self.ece, flag::ECE)
            | bit(self.cwr, flag::CWR);
        // The fixed header goes out as five 32-bit words whose sum is taken
        // from the registers: summing it back from the buffer would load
        // 16 bytes over stores that have not reached the cache yet, a
        // store-forwarding stall that cost more than the whole header.
        // Data Offset, zeroed Rsrvd and the control bits share a word with
        // the window; the checksum's own half of its word is zero.
        let head = [
            u32::from(self.src_port) << 16 | u32::from(self.dst_port),
            self.seq_number.0,
            self.ack_number.unwrap_or_default().0,
            ((hl / 4) as u32) << 28 | u32::from(flags & 0x0fff) << 16 | u32::from(self.window_len),
            u32::from(self.urgent_at.unwrap_or(0)),
        ];
        let buf = p.buffer.as_mut();
        for (w, at) in head.iter().zip(buf[..HEADER_LEN].chunks_exact_mut(4)) {
            at.copy_from_slice(&w.to_be_bytes());
        }
        let mut header_sum = checksum::sum_be32(&head);
        let options = &mut buf[HEADER_LEN..hl];
        match (self.timestamp, hl - HEADER_LEN) {
            // Timestamps alone, the usual segment after the handshake:
            // NOP, NOP, TS, as `for_each_option` would lay them out.
            (Some((tsval, tsecr)), 12)
                if self.max_seg_size.is_none()
                    && self.window_scale.is_none()
                    && !self.sack_permitted =>
            {
                let ts = [
                    u32::from_be_bytes([kind::NOP, kind::NOP, kind::TIMESTAMPS, 10]),
                    tsval,
                    tsecr,
                ];
                for (w, at) in ts.iter().zip(options.chunks_exact_mut(4)) {
                    at.copy_from_slice(&w.to_be_bytes());
                }
                header_sum = checksum::add(header_sum, checksum::sum_be32(&ts));
            }
            (None, 0) => {}
            _ => {
                // SYNs and SACK-carrying segments: rare enough to sum back.
                let mut at = 0;
                self.for_each_option(|o| at += o.emit(&mut options[at..]));
                debug_assert_eq!(at, hl - HEADER_LEN);
                header_sum = checksum::add(header_sum, checksum::sum(options));
            }
        }
        // The payload is summed as it is copied, from the vectors the copy
        // loads: one read of the bytes instead of two, and no load over the
        // copy's fresh stores. `hl` is a multiple of 4, so the payload's
        // words line up with the header's.
        let payload_sum = checksum::copy_and_sum(&mut buf[hl..], self.payload);
        let length = (hl + self.payload.len()) as u16;
        let pseudo = checksum::pseudo_header(src, dst, PROTO_TCP, length);
        let c = !checksum::combine(&[pseudo, header_sum, payload_sum]);
        buf[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run's segments are its full `mss`-byte slices, as many from
    /// `run_segment` as `RunHeader::segments` counts, and each header
    /// `RunHeader::write` lays down is the one `emit` writes for that
    /// segment; an MSS of 0 or one too long for IPv4 makes no run at all.
    #[test]
    fn run_segments_and_run_headers_agree() {
        let payload: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let first = Repr {
            src_port: 80,
            dst_port: 40000,
            seq_number: SeqNumber(u32::MAX - 3000),
            ack_number: Some(SeqNumber(5)),
            window_len: 1000,
            psh: true,
            timestamp: Some((1, 2)),
            payload: &payload,
            ..Repr::default()
        };
        assert_eq!(first.run_segment(0, 0), None);
        assert!(first.run_header(LOCAL, PEER, 0).is_none());
        assert!(first.run_header(LOCAL, PEER, 70_000).is_none());
        for mss in [1, 7, 1000, 1448, 2500, 5000, 5001] {
            let h = first.run_header(LOCAL, PEER, mss).unwrap();
            let n = (0..)
                .take_while(|&i| first.run_segment(i, mss).is_some())
                .count();
            assert_eq!(h.segments(), n, "mss {mss}");
            assert_eq!(n, payload.len() / mss, "mss {mss}");
            for i in 0..n {
                let seg = first.run_segment(i, mss).unwrap();
                let mut want = vec![0; seg.buffer_len()];
                seg.emit(&mut Packet::new_unchecked(&mut want[..]), LOCAL, PEER);
                let mut got = vec![0xa5; h.header_len() + mss];
                h.write(&mut got, i);
                assert_eq!(got, want, "mss {mss}, segment {i}");
            }
        }
    }

    /// The shortcut for option-less and NOP-NOP-timestamps headers decides
    /// every segment it takes as the general path does, field for field
    /// and down to the header's partial checksum, and the public entry
    /// point answers as the general path for all: headers of both shapes
    /// with random fields, then with one bit flipped anywhere in the
    /// first 36 bytes (data offset, option bytes, ports), cut short or
    /// with a zero port.
    #[test]
    fn the_common_header_shortcut_decides_as_the_general_path() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut taken = 0;
        for round in 0..40_000 {
            let ts = round % 2 == 0;
            let hl = if ts { 32 } else { 20 };
            let mut b = vec![0u8; hl + (next() % 40) as usize];
            for v in b.iter_mut() {
                *v = next() as u8;
            }
            b[12] = ((hl / 4) as u8) << 4 | (b[12] & 0x0f);
            if ts {
                b[20..24].copy_from_slice(&[1, 1, 8, 10]);
            }
            let r = next();
            match r % 5 {
                0 | 1 => {}
                2 => {
                    let i = (r >> 8) as usize % b.len().min(36);
                    b[i] ^= 1 << ((r >> 16) % 8);
                }
                3 => b.truncate((r >> 8) as usize % (b.len() + 1)),
                _ => b[(r >> 8) as usize % 4] = 0,
            }
            if r % 7 == 0 && b.len() >= 4 {
                b[..4].fill(0);
            }
            let p = Packet::new_unchecked(&b[..]);
            let general = Repr::parse_general_deferring(&p, LOCAL, PEER);
            if let Some(fast) = Repr::parse_common_deferring(&b, LOCAL, PEER) {
                taken += 1;
                assert_eq!(Ok(fast), general, "{b:02x?}");
            }
            assert_eq!(
                Repr::parse_deferring_payload(&p, LOCAL, PEER),
                general,
                "{b:02x?}"
            );
        }
        assert!(taken > 15_000, "the shortcut took {taken}");
    }

    const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    // The vectors below were laid out by hand in the shapes Linux sends, and
    // their checksums computed with a separate Python RFC 1071 sum over the
    // pseudo-header and segment, not with this module.

    /// A Linux SYN, 198.18.0.2:40000 -> 198.18.0.1:80: window 64240, MSS
    /// 1460, SACK-permitted, timestamps (TSval 0x0a1b2c3d, TSecr 0), NOP,
    /// window scale 7. 40-byte header, checksum 0x9184.
    const SYN: [u8; 40] = [
        0x9c, 0x40, 0x00, 0x50, // ports
        0x1f, 0x2e, 0x3d, 0x4c, // seq
        0x00, 0x00, 0x00, 0x00, // ack
        0xa0, 0x02, 0xfa, 0xf0, // offset 10, SYN, window 64240
        0x91, 0x84, 0x00, 0x00, // checksum, urgent
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x04, 0x02, 0x08, 0x0a, // SACK-permitted, TS kind and length
        0x0a, 0x1b, 0x2c, 0x3d, 0x00, 0x00, 0x00, 0x00, // TSval, TSecr
        0x01, 0x03, 0x03, 0x07, // NOP, WS 7
    ];

    /// The SYN-ACK to it from 198.18.0.1:80: window 65160, same options,
    /// TSval 0x5e6f7081 echoing 0x0a1b2c3d. Checksum 0xe831.
    const SYN_ACK: [u8; 40] = [
        0x00, 0x50, 0x9c, 0x40, 0x7a, 0x6b, 0x5c, 0x4d, 0x1f, 0x2e, 0x3d, 0x4d, 0xa0, 0x12, 0xfe,
        0x88, 0xe8, 0x31, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x5e, 0x6f,
        0x70, 0x81, 0x0a, 0x1b, 0x2c, 0x3d, 0x01, 0x03, 0x03, 0x07,
    ];

    /// A pure ACK from 198.18.0.2 with timestamps and two SACK blocks, as
    /// Linux packs them: NOP NOP TS, NOP NOP SACK. 52-byte header, checksum
    /// 0x13a4.
    const ACK_SACK: [u8; 52] = [
        0x9c, 0x40, 0x00, 0x50, 0x1f, 0x2e, 0x3d, 0x4d, 0x7a, 0x6b, 0x64,
        0x22, // ports, seq, ack
        0xd0, 0x10, 0x01, 0xf5, 0x13, 0xa4, 0x00, 0x00, // offset 13, ACK, window 501
        0x01, 0x01, 0x08, 0x0a, 0x0a, 0x1b, 0x2d, 0x01, 0x5e, 0x6f, 0x71, 0x90, // NOP NOP TS
        0x01, 0x01, 0x05, 0x12, // NOP NOP SACK, 2 blocks
        0x7a, 0x6b, 0x6e, 0x66, 0x7a, 0x6b, 0x74, 0x12, // block 1
        0x7a, 0x6b, 0x69, 0xca, 0x7a, 0x6b, 0x6a, 0x2e, // block 2
    ];

    /// Data from 198.18.0.1:80 with PSH+ACK and timestamps: 32-byte header
    /// and the 17-byte (odd) payload "hello, ringstack\n". Checksum 0xfa7e.
    const DATA: [u8; 49] = [
        0x00, 0x50, 0x9c, 0x40, 0x7a, 0x6b, 0x5c, 0x4e, 0x1f, 0x2e, 0x3d, 0x4d, 0x80, 0x18, 0x01,
        0xfd, 0xfa, 0x7e, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0x5e, 0x6f, 0x71, 0x90, 0x0a, 0x1b,
        0x2d, 0x01, b'h', b'e', b'l', b'l', b'o', b',', b' ', b'r', b'i', b'n', b'g', b's', b't',
        b'a', b'c', b'k', b'\n',
    ];

    /// An ACK from 198.18.0.2 with four SACK blocks and no timestamps (the
    /// most one option holds), one block straddling the wrap; ack
    /// 0xfffffff0, window 1024. 56-byte header, checksum 0x7c57.
    const ACK_SACK4: [u8; 56] = [
        0x9c, 0x40, 0x00, 0x50, 0x1f, 0x2e, 0x3d, 0x4d, 0xff, 0xff, 0xff, 0xf0, 0xe0, 0x10, 0x04,
        0x00, 0x7c, 0x57, 0x00, 0x00, 0x01, 0x01, 0x05, 0x22, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x02, 0x00, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x00, 0x04, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x06, 0x00,
    ];

    /// FIN+ACK with no options at seq 0xffffffff, window 502. Checksum
    /// 0xae59.
    const FIN_ACK: [u8; 20] = [
        0x9c, 0x40, 0x00, 0x50, 0xff, 0xff, 0xff, 0xff, 0x7a, 0x6b, 0x5c, 0x60, 0x50, 0x11, 0x01,
        0xf6, 0xae, 0x59, 0x00, 0x00,
    ];

    /// Every vector with the addresses it was summed over and its checksum.
    fn vectors() -> [(&'static [u8], Ipv4Addr, Ipv4Addr, u16); 6] {
        [
            (&SYN, LOCAL, PEER, 0x9184),
            (&SYN_ACK, PEER, LOCAL, 0xe831),
            (&ACK_SACK, LOCAL, PEER, 0x13a4),
            (&DATA, PEER, LOCAL, 0xfa7e),
            (&ACK_SACK4, LOCAL, PEER, 0x7c57),
            (&FIN_ACK, LOCAL, PEER, 0xae59),
        ]
    }

    fn sq(v: u32) -> SeqNumber {
        SeqNumber(v)
    }

    fn syn_repr() -> Repr<'static> {
        Repr {
            src_port: 40000,
            dst_port: 80,
            seq_number: sq(0x1f2e3d4c),
            window_len: 64240,
            syn: true,
            max_seg_size: Some(1460),
            sack_permitted: true,
            timestamp: Some((0x0a1b2c3d, 0)),
            window_scale: Some(7),
            ..Repr::default()
        }
    }

    /// Rebuilds `bytes` with a new option area (a multiple of 4 bytes) and
    /// a valid checksum, so only the options can fail a parse.
    fn with_options(bytes: &[u8], options: &[u8]) -> Vec<u8> {
        assert_eq!(options.len() % 4, 0);
        let p = Packet::new_checked(bytes).unwrap();
        let mut out = bytes[..HEADER_LEN].to_vec();
        out.extend_from_slice(options);
        out.extend_from_slice(p.payload());
        let mut q = Packet::new_unchecked(&mut out[..]);
        q.set_header_len(HEADER_LEN + options.len());
        q.fill_checksum(LOCAL, PEER);
        out
    }

    fn options_of(bytes: &[u8]) -> Vec<Result<TcpOption<'_>, Error>> {
        TcpOptions::new(bytes).collect()
    }

    #[test]
    fn deconstructs_linux_syn() {
        let p = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (40000, 80));
        assert_eq!(p.seq_number(), sq(0x1f2e3d4c));
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), flag::SYN);
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst() && !p.psh());
        assert!(!p.urg() && !p.ece() && !p.cwr());
        assert_eq!(p.window_len(), 64240);
        assert_eq!(p.checksum(), 0x9184);
        assert_eq!(p.urgent_at(), 0);
        assert_eq!(p.options(), &SYN[20..]);
        assert_eq!(p.payload(), &[] as &[u8]);
        // RFC 9293 §3.1: "If SYN is set, the sequence number is the initial
        // sequence number (ISN) and the first data octet is ISN+1."
        assert_eq!(p.segment_len(), 1);
        assert!(p.verify_checksum(LOCAL, PEER));
        assert_eq!(
            options_of(p.options()),
            [
                Ok(TcpOption::MaxSegmentSize(1460)),
                Ok(TcpOption::SackPermitted),
                Ok(TcpOption::Timestamps {
                    tsval: 0x0a1b2c3d,
                    tsecr: 0
                }),
                Ok(TcpOption::NoOperation),
                Ok(TcpOption::WindowScale(7)),
            ]
        );
        assert_eq!(Repr::parse(&p, LOCAL, PEER), Ok(syn_repr()));
    }

    #[test]
    fn parses_syn_ack() {
        let p = Packet::new_checked(&SYN_ACK[..]).unwrap();
        assert_eq!(p.flags(), flag::SYN | flag::ACK);
        assert_eq!(
            Repr::parse(&p, PEER, LOCAL),
            Ok(Repr {
                src_port: 80,
                dst_port: 40000,
                seq_number: sq(0x7a6b5c4d),
                ack_number: Some(sq(0x1f2e3d4d)),
                window_len: 65160,
                syn: true,
                max_seg_size: Some(1460),
                sack_permitted: true,
                timestamp: Some((0x5e6f7081, 0x0a1b2c3d)),
                window_scale: Some(7),
                ..Repr::default()
            })
        );
    }

    #[test]
    fn parses_pure_ack_with_sack_blocks() {
        let p = Packet::new_checked(&ACK_SACK[..]).unwrap();
        assert_eq!(p.header_len(), 52);
        assert_eq!(p.segment_len(), 0);
        let r = Repr::parse(&p, LOCAL, PEER).unwrap();
        assert_eq!(r.ack_number, Some(sq(0x7a6b6422)));
        assert_eq!(r.window_len, 501);
        assert_eq!(r.timestamp, Some((0x0a1b2d01, 0x5e6f7190)));
        assert_eq!(
            r.sack_ranges,
            [
                Some((sq(0x7a6b6e66), sq(0x7a6b7412))),
                Some((sq(0x7a6b69ca), sq(0x7a6b6a2e))),
                None,
                None
            ]
        );
        assert!(!r.syn && !r.fin && !r.psh && !r.sack_permitted);
        assert_eq!((r.max_seg_size, r.window_scale), (None, None));
    }

    #[test]
    fn parses_data_segment_with_psh() {
        let p = Packet::new_checked(&DATA[..]).unwrap();
        assert_eq!(p.flags(), flag::PSH | flag::ACK);
        assert_eq!(p.payload(), b"hello, ringstack\n");
        assert_eq!(p.segment_len(), 17);
        let r = Repr::parse(&p, PEER, LOCAL).unwrap();
        assert!(r.psh);
        assert_eq!(r.payload, b"hello, ringstack\n");
        assert_eq!(r.segment_len(), 17);
        assert_eq!(r.seq_number, sq(0x7a6b5c4e));
        assert_eq!(r.timestamp, Some((0x5e6f7190, 0x0a1b2d01)));
    }

    #[test]
    fn parses_four_sack_blocks() {
        // RFC 2018 §3: "a SACK option that specifies n blocks will have a
        // length of 8*n+2 bytes, so the 40 bytes available for TCP options
        // can specify a maximum of 4 blocks."
        let p = Packet::new_checked(&ACK_SACK4[..]).unwrap();
        let r = Repr::parse(&p, LOCAL, PEER).unwrap();
        assert_eq!(
            r.sack_ranges,
            [
                Some((sq(0x100), sq(0x200))),
                Some((sq(0xffffff00), sq(0x10))),
                Some((sq(0x300), sq(0x400))),
                Some((sq(0x500), sq(0x600))),
            ]
        );
        assert_eq!(r.max_sack_blocks(), 4);
        assert_eq!(r.header_len(), 56);
    }

    #[test]
    fn fin_occupies_one_sequence_number() {
        // RFC 9293 §3.4: "The segment length (SEG.LEN) includes both data
        // and sequence space-occupying controls."
        let p = Packet::new_checked(&FIN_ACK[..]).unwrap();
        assert_eq!(p.flags(), flag::FIN | flag::ACK);
        assert_eq!(p.segment_len(), 1);
        let r = Repr::parse(&p, LOCAL, PEER).unwrap();
        assert!(r.fin);
        assert_eq!(r.segment_len(), 1);
        assert_eq!(r.seq_number + r.segment_len(), sq(0));
    }

    #[test]
    fn checksum_matches_independent_computation() {
        // RFC 9293 §3.1: "The checksum field is the 16-bit ones' complement
        // of the ones' complement sum of all 16-bit words in the header and
        // text." The expected values come from a separate implementation.
        for (bytes, src, dst, sum) in vectors() {
            let mut b = bytes.to_vec();
            b[16] = 0;
            b[17] = 0;
            let mut p = Packet::new_unchecked(&mut b[..]);
            p.fill_checksum(src, dst);
            assert_eq!(p.checksum(), sum);
            assert!(p.verify_checksum(src, dst));
        }
    }

    #[test]
    fn emit_reproduces_real_segments() {
        for (bytes, src, dst, _) in vectors() {
            let p = Packet::new_checked(bytes).unwrap();
            let r = Repr::parse(&p, src, dst).unwrap();
            assert_eq!(r.header_len(), p.header_len());
            assert_eq!(r.buffer_len(), bytes.len());
            let mut out = vec![0xa5; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut out[..]), src, dst);
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn emit_lays_out_options_as_linux_does() {
        // Built by hand, not parsed: the same bytes as the captured SYN.
        let r = syn_repr();
        assert_eq!(r.header_len(), 40);
        let mut out = [0u8; 40];
        r.emit(&mut Packet::new_unchecked(&mut out[..]), LOCAL, PEER);
        assert_eq!(out, SYN);
        // Without timestamps, SACK-permitted is padded with NOPs in front.
        let r = Repr {
            timestamp: None,
            ..syn_repr()
        };
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut out[..]), LOCAL, PEER);
        assert_eq!(
            Packet::new_checked(&out[..]).unwrap().options(),
            [0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x04, 0x02, 0x01, 0x03, 0x03, 0x07]
        );
        // Timestamps without SACK-permitted get two NOPs instead.
        let r = Repr {
            sack_permitted: false,
            max_seg_size: None,
            window_scale: None,
            ..syn_repr()
        };
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut out[..]), LOCAL, PEER);
        let p = Packet::new_checked(&out[..]).unwrap();
        assert_eq!(&p.options()[..4], &[0x01, 0x01, 0x08, 0x0a]);
        assert_eq!(Repr::parse(&p, LOCAL, PEER), Ok(r));
    }

    #[test]
    fn header_len_for_matches_what_emit_writes() {
        for bits in 0..16u32 {
            for offered in 0..=MAX_SACK_BLOCKS {
                let mut ranges = [None; MAX_SACK_BLOCKS];
                for (i, r) in ranges.iter_mut().take(offered).enumerate() {
                    let i = i as u32;
                    *r = Some((sq(i * 100), sq(i * 100 + 50)));
                }
                let r = Repr {
                    src_port: 1,
                    dst_port: 2,
                    max_seg_size: (bits & 1 != 0).then_some(1460),
                    window_scale: (bits & 2 != 0).then_some(7),
                    sack_permitted: bits & 4 != 0,
                    timestamp: (bits & 8 != 0).then_some((1, 2)),
                    sack_ranges: ranges,
                    ack_number: Some(sq(5)),
                    payload: b"xyz",
                    ..Repr::default()
                };
                let hl = header_len_for(
                    bits & 1 != 0,
                    bits & 2 != 0,
                    bits & 4 != 0,
                    bits & 8 != 0,
                    offered,
                );
                assert_eq!(r.header_len(), hl, "bits {bits} offered {offered}");
                assert!(hl.is_multiple_of(4) && hl <= MAX_HEADER_LEN);
                let mut out = vec![0u8; r.buffer_len()];
                r.emit(&mut Packet::new_unchecked(&mut out[..]), LOCAL, PEER);
                let p = Packet::new_checked(&out[..]).unwrap();
                assert_eq!(p.header_len(), hl);
                // What comes back is what went in, less the SACK blocks that
                // did not fit.
                let back = Repr::parse(&p, LOCAL, PEER).unwrap();
                let mut expect = r;
                let n = r.max_sack_blocks();
                assert!(n <= offered);
                for slot in expect.sack_ranges.iter_mut().skip(n) {
                    *slot = None;
                }
                assert_eq!(back, expect);
            }
        }
    }

    #[test]
    fn sack_blocks_that_do_not_fit_are_dropped_from_the_back() {
        // RFC 2018 §4: "The first SACK block ... MUST specify the contiguous
        // block of data containing the segment which triggered this ACK",
        // so the first blocks are the ones to keep.
        let four = [
            Some((sq(10), sq(20))),
            Some((sq(30), sq(40))),
            Some((sq(50), sq(60))),
            Some((sq(70), sq(80))),
        ];
        let r = Repr {
            src_port: 1,
            dst_port: 2,
            ack_number: Some(sq(1)),
            timestamp: Some((7, 8)),
            sack_ranges: four,
            ..Repr::default()
        };
        // Timestamps take 12 of the 40 option bytes; NOP NOP kind length
        // and three 8-byte blocks fill the other 28.
        assert_eq!(r.max_sack_blocks(), 3);
        assert_eq!(r.header_len(), 20 + 12 + 4 + 24);
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut out[..]), LOCAL, PEER);
        let back = Repr::parse(&Packet::new_checked(&out[..]).unwrap(), LOCAL, PEER).unwrap();
        assert_eq!(back.sack_ranges, [four[0], four[1], four[2], None]);
        // None entries are skipped, not counted.
        let r = Repr {
            timestamp: None,
            sack_ranges: [None, four[1], None, four[3]],
            ..r
        };
        assert_eq!(r.max_sack_blocks(), 2);
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut out[..]), LOCAL, PEER);
        let back = Repr::parse(&Packet::new_checked(&out[..]).unwrap(), LOCAL, PEER).unwrap();
        assert_eq!(back.sack_ranges, [four[1], four[3], None, None]);
    }

    #[test]
    fn window_scale_above_14_is_clamped() {
        // RFC 7323 §2.3: "If a Window Scale option is received with a
        // shift.cnt value larger than 14, the TCP SHOULD log the error but
        // MUST use 14 instead of the specified value."
        for (shift, used) in [(14, 14), (15, 14), (255, 14), (0, 0)] {
            let b = with_options(&SYN, &[0x01, 0x03, 0x03, shift]);
            let p = Packet::new_checked(&b[..]).unwrap();
            // The option walk reports what was sent, so it can be logged.
            assert_eq!(
                options_of(p.options()),
                [
                    Ok(TcpOption::NoOperation),
                    Ok(TcpOption::WindowScale(shift))
                ]
            );
            let r = Repr::parse(&p, LOCAL, PEER).unwrap();
            assert_eq!(r.window_scale, Some(used));
        }
        // And we never send more than 14: "the shift count MUST be limited
        // to 14".
        let r = Repr {
            window_scale: Some(200),
            ..syn_repr()
        };
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut out[..]), LOCAL, PEER);
        assert_eq!(out[39], 14);
    }

    #[test]
    fn unknown_options_are_skipped() {
        // RFC 9293 §3.1: "A TCP implementation MUST (MUST-6) ignore without
        // error any TCP Option it does not implement, assuming that the
        // option has a length field."
        let opts = [
            0x22, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, // TFO cookie (kind 34)
            0x1e, 0x04, 0x00, 0x81, // an MPTCP-ish kind 30
            0xfe, 0x02, // experimental kind 254, no data
            0x02, 0x04, 0x05, 0x78, // MSS 1400 still found after them
            0x00, 0x00, 0x00, 0x00, // EOL and padding
        ];
        let b = with_options(&SYN, &opts);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            options_of(p.options()),
            [
                Ok(TcpOption::Unknown {
                    kind: 34,
                    data: &[1, 2, 3, 4, 5, 6, 7, 8]
                }),
                Ok(TcpOption::Unknown {
                    kind: 30,
                    data: &[0x00, 0x81]
                }),
                Ok(TcpOption::Unknown {
                    kind: 254,
                    data: &[]
                }),
                Ok(TcpOption::MaxSegmentSize(1400)),
                Ok(TcpOption::EndOfList),
            ]
        );
        let r = Repr::parse(&p, LOCAL, PEER).unwrap();
        assert_eq!(r.max_seg_size, Some(1400));
        assert_eq!(
            (r.window_scale, r.timestamp, r.sack_permitted),
            (None, None, false)
        );
    }

    #[test]
    fn options_need_not_be_aligned() {
        // RFC 9293 §3.2: "receivers MUST be prepared to process options even
        // if they do not begin on a word boundary (MUST-64)."
        let opts = [
            0x03, 0x03, 0x05, // WS 5 at offset 0
            0x02, 0x04, 0x02, 0x18, // MSS 536 at offset 3
            0x08, 0x0a, 0, 0, 0, 9, 0, 0, 0, 0, // TS at offset 7
            0x04, 0x02, // SACK-permitted at offset 17
            0x00, // EOL
        ];
        let b = with_options(&SYN, &opts);
        let r = Repr::parse(&Packet::new_checked(&b[..]).unwrap(), LOCAL, PEER).unwrap();
        assert_eq!(r.window_scale, Some(5));
        assert_eq!(r.max_seg_size, Some(536));
        assert_eq!(r.timestamp, Some((9, 0)));
        assert!(r.sack_permitted);
    }

    #[test]
    fn nothing_after_end_of_option_list_is_read() {
        // RFC 9293 §3.2: End of Option List "is used at the end of all
        // options". What follows should be zero padding (MUST-69); a sender
        // that put garbage there is not believed, nor punished.
        let b = with_options(&SYN, &[0x02, 0x04, 0x05, 0xb4, 0x00, 0x03, 0x00, 0x07]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            options_of(p.options()),
            [
                Ok(TcpOption::MaxSegmentSize(1460)),
                Ok(TcpOption::EndOfList)
            ]
        );
        let r = Repr::parse(&p, LOCAL, PEER).unwrap();
        assert_eq!((r.max_seg_size, r.window_scale), (Some(1460), None));
    }

    #[test]
    fn later_duplicate_option_wins() {
        let b = with_options(&SYN, &[0x02, 0x04, 0x05, 0xb4, 0x02, 0x04, 0x02, 0x18]);
        let r = Repr::parse(&Packet::new_checked(&b[..]).unwrap(), LOCAL, PEER).unwrap();
        assert_eq!(r.max_seg_size, Some(536));
    }

    #[test]
    fn illegal_option_lengths_drop_the_segment() {
        // RFC 9293 §3.1: "TCP implementations MUST be prepared to handle an
        // illegal option length (e.g., zero); a suggested procedure is to
        // reset the connection and log the error cause (MUST-7)." We drop.
        let cases: &[(&str, &[u8])] = &[
            ("length zero", &[0x22, 0x00, 0x00, 0x00]),
            ("length one", &[0x22, 0x01, 0x00, 0x00]),
            ("length byte missing", &[0x01, 0x01, 0x01, 0x22]),
            ("length past the header", &[0x22, 0x05, 0x00, 0x00]),
            ("MSS length 3", &[0x02, 0x03, 0x05, 0x00]),
            (
                "MSS length 5",
                &[0x02, 0x05, 0x05, 0xb4, 0x00, 0x00, 0x00, 0x00],
            ),
            ("MSS length 2", &[0x02, 0x02, 0x00, 0x00]),
            ("WS length 2", &[0x03, 0x02, 0x00, 0x00]),
            ("WS length 4", &[0x03, 0x04, 0x07, 0x00]),
            ("SACK-permitted length 3", &[0x04, 0x03, 0x00, 0x00]),
            ("SACK-permitted length 4", &[0x04, 0x04, 0x00, 0x00]),
            (
                "timestamps length 9",
                &[0x08, 0x09, 0, 0, 0, 1, 0, 0, 0, 0x00, 0x00, 0x00],
            ),
            (
                "timestamps length 11",
                &[0x08, 0x0b, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x00],
            ),
            ("SACK without blocks", &[0x01, 0x01, 0x05, 0x02]),
            (
                "SACK length 11",
                &[0x05, 0x0b, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0x00],
            ),
            (
                "SACK length 9",
                &[0x05, 0x09, 0, 0, 0, 1, 0, 0, 0, 0x00, 0x00, 0x00],
            ),
            (
                "SACK length 18 in 12 bytes",
                &[0x05, 0x12, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0],
            ),
            (
                "good MSS then length zero",
                &[0x02, 0x04, 0x05, 0xb4, 0x01, 0x22, 0x00, 0x00],
            ),
        ];
        for (what, opts) in cases {
            let b = with_options(&DATA, opts);
            let p = Packet::new_checked(&b[..]).unwrap();
            assert!(p.verify_checksum(LOCAL, PEER), "{what}");
            assert_eq!(
                Repr::parse(&p, LOCAL, PEER),
                Err(Error::Malformed),
                "{what}"
            );
            // The walk ends with exactly one error.
            let walked = options_of(p.options());
            assert_eq!(walked.last(), Some(&Err(Error::Malformed)), "{what}");
            assert_eq!(walked.iter().filter(|o| o.is_err()).count(), 1, "{what}");
        }
    }

    #[test]
    fn sack_lengths_of_one_to_four_blocks_parse() {
        for n in 1..=4usize {
            let mut opts = vec![0x01, 0x01, 0x05, (2 + 8 * n) as u8];
            for i in 0..n as u32 {
                opts.extend_from_slice(&(i * 10).to_be_bytes());
                opts.extend_from_slice(&(i * 10 + 5).to_be_bytes());
            }
            let b = with_options(&DATA, &opts);
            let r = Repr::parse(&Packet::new_checked(&b[..]).unwrap(), LOCAL, PEER).unwrap();
            assert_eq!(r.sack_ranges.iter().flatten().count(), n);
            assert_eq!(
                r.sack_ranges[n - 1],
                Some((sq((n as u32 - 1) * 10), sq((n as u32 - 1) * 10 + 5)))
            );
        }
    }

    #[test]
    fn option_emit_and_walk_round_trip() {
        let all = [
            TcpOption::EndOfList,
            TcpOption::NoOperation,
            TcpOption::MaxSegmentSize(65535),
            TcpOption::WindowScale(14),
            TcpOption::SackPermitted,
            TcpOption::SackRange([Some((sq(1), sq(2))), None, None, None]),
            TcpOption::SackRange([
                Some((sq(1), sq(2))),
                Some((sq(u32::MAX), sq(3))),
                Some((sq(4), sq(5))),
                Some((sq(6), sq(7))),
            ]),
            TcpOption::Timestamps {
                tsval: 0xdeadbeef,
                tsecr: 1,
            },
            TcpOption::Unknown {
                kind: 99,
                data: &[1, 2, 3],
            },
        ];
        for o in all {
            let mut buf = [0u8; 40];
            let n = o.emit(&mut buf);
            assert_eq!(n, o.buffer_len());
            assert_eq!(options_of(&buf[..n]), [Ok(o)]);
        }
    }

    #[test]
    fn ack_number_counts_only_with_the_ack_bit() {
        // RFC 9293 §3.1: "If the ACK control bit is set, this field contains
        // the value of the next sequence number".
        let mut b = SYN;
        b[8..12].copy_from_slice(&[1, 2, 3, 4]);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(LOCAL, PEER);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.ack_number(), sq(0x01020304));
        assert_eq!(Repr::parse(&p, LOCAL, PEER).unwrap().ack_number, None);
    }

    #[test]
    fn flags_are_reported_as_sent_and_reserved_bits_ignored() {
        // RFC 9293 §3.1, Rsrvd: "Must be zero in generated segments and must
        // be ignored in received segments". Odd combinations (SYN+FIN+RST,
        // RFC 3168's ECE+CWR on a SYN, URG) are kept for the engine to judge.
        let mut b = SYN;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_flags(
            flag::RESERVED | flag::CWR | flag::ECE | flag::URG | flag::RST | flag::FIN | flag::SYN,
        );
        p.set_urgent_at(0x1234);
        p.fill_checksum(LOCAL, PEER);
        assert_eq!(p.header_len(), 40);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.flags(), 0xfe7);
        assert!(p.cwr() && p.ece() && p.urg() && p.rst() && p.syn() && p.fin());
        assert!(!p.ack() && !p.psh());
        let r = Repr::parse(&p, LOCAL, PEER).unwrap();
        assert!(r.cwr && r.ece && r.rst && r.syn && r.fin && !r.psh);
        assert_eq!(r.urgent_at, Some(0x1234));
        assert_eq!(r.segment_len(), 2);
        // Emitted with the reserved bits clear, the rest identical.
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut out[..]), LOCAL, PEER);
        let q = Packet::new_checked(&out[..]).unwrap();
        assert_eq!(q.flags(), 0x0e7);
        assert_eq!(q.urgent_at(), 0x1234);
        assert_eq!(out[14..16], b[14..16]);
        assert_eq!(out[18..], b[18..]);
        // The urgent pointer is ignored without URG.
        let mut b = FIN_ACK;
        b[18..20].copy_from_slice(&[0, 9]);
        Packet::new_unchecked(&mut b[..]).fill_checksum(LOCAL, PEER);
        let r = Repr::parse(&Packet::new_checked(&b[..]).unwrap(), LOCAL, PEER).unwrap();
        assert_eq!(r.urgent_at, None);
    }

    #[test]
    fn flag_setters_touch_only_their_bit() {
        let mut b = FIN_ACK;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_fin(false);
        p.set_syn(true);
        p.set_rst(true);
        p.set_psh(true);
        p.set_urg(true);
        p.set_ece(true);
        p.set_cwr(true);
        p.set_ack(false);
        assert_eq!(p.flags(), 0x0ee);
        assert_eq!(p.header_len(), 20);
        p.set_header_len(24);
        assert_eq!((p.header_len(), p.flags()), (24, 0x0ee));
    }

    #[test]
    fn checksum_covers_pseudo_header_header_and_payload() {
        // RFC 9293 §3.1: "The checksum also covers a pseudo-header ...
        // Including the pseudo-header in the checksum gives the TCP
        // connection protection against misrouted segments."
        let p = Packet::new_checked(&DATA[..]).unwrap();
        let other = Ipv4Addr::new(198, 18, 0, 3);
        assert_eq!(Repr::parse(&p, other, LOCAL), Err(Error::BadChecksum));
        assert_eq!(Repr::parse(&p, PEER, other), Err(Error::BadChecksum));
        for i in 0..DATA.len() {
            let mut b = DATA;
            b[i] ^= 0x01;
            let p = Packet::new_unchecked(&b[..]);
            assert_eq!(
                Repr::parse(&p, PEER, LOCAL),
                Err(Error::BadChecksum),
                "byte {i}"
            );
        }
        // A longer buffer (say, trailing padding mistaken for segment) fails.
        let mut long = DATA.to_vec();
        long.push(0);
        let p = Packet::new_checked(&long[..]).unwrap();
        assert_eq!(Repr::parse(&p, PEER, LOCAL), Err(Error::BadChecksum));
    }

    /// The deferred test accepts exactly what the whole-segment test does:
    /// every hand-computed vector, and no single flipped bit anywhere in
    /// the header, options or payload, nor a wrong pseudo-header address.
    #[test]
    fn deferred_payload_check_agrees_with_the_whole_checksum() {
        for (bytes, src, dst, _) in vectors() {
            let p = Packet::new_checked(bytes).unwrap();
            let (r, c) = Repr::parse_deferring_payload(&p, src, dst).unwrap();
            assert_eq!(Ok(r), Repr::parse(&p, src, dst));
            assert!(c.verify(r.payload));
            let other = Ipv4Addr::new(198, 18, 0, 3);
            let (r, c) = Repr::parse_deferring_payload(&p, other, dst).unwrap();
            assert!(!c.verify(r.payload));
            for i in 0..bytes.len() {
                for bit in [0x01, 0x80] {
                    let mut b = bytes.to_vec();
                    b[i] ^= bit;
                    let p = Packet::new_unchecked(&b[..]);
                    match Repr::parse_deferring_payload(&p, src, dst) {
                        Ok((r, c)) => assert!(!c.verify(r.payload), "byte {i} bit {bit:#x}"),
                        // A flip that breaks the header's own shape.
                        Err(e) => assert_ne!(e, Error::BadChecksum, "byte {i}"),
                    }
                }
            }
        }
    }

    #[test]
    fn port_zero_is_malformed() {
        for at in [0, 2] {
            let mut b = DATA;
            b[at] = 0;
            b[at + 1] = 0;
            Packet::new_unchecked(&mut b[..]).fill_checksum(PEER, LOCAL);
            let p = Packet::new_checked(&b[..]).unwrap();
            assert_eq!(Repr::parse(&p, PEER, LOCAL), Err(Error::Malformed));
        }
    }

    #[test]
    fn rejects_bad_lengths() {
        for n in 0..HEADER_LEN {
            assert_eq!(Packet::new_checked(&SYN[..n]).err(), Some(Error::Truncated));
        }
        // Options cut short.
        for n in HEADER_LEN..40 {
            assert_eq!(Packet::new_checked(&SYN[..n]).err(), Some(Error::Truncated));
        }
        // Data Offset below 5 words.
        for words in 0..5u8 {
            let mut b = FIN_ACK;
            b[12] = words << 4;
            assert_eq!(
                Packet::new_checked(&b[..]).err(),
                Some(Error::BadHeaderLength)
            );
        }
        // Data Offset 15 on a 56-byte segment.
        let mut b = ACK_SACK4;
        b[12] = 0xf0;
        assert_eq!(Packet::new_checked(&b[..]).err(), Some(Error::Truncated));
    }

    #[test]
    fn every_truncation_is_rejected() {
        for (bytes, src, dst, _) in vectors() {
            for n in 0..bytes.len() {
                let p = Packet::new_unchecked(&bytes[..n]);
                assert!(Repr::parse(&p, src, dst).is_err(), "{n} of {}", bytes.len());
                exercise(&bytes[..n]);
            }
        }
    }

    #[test]
    fn accessors_survive_a_header_length_set_past_the_buffer() {
        let mut b = FIN_ACK;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_header_len(60);
        assert_eq!(p.options_mut(), &mut [] as &mut [u8]);
        assert_eq!(p.payload_mut(), &mut [] as &mut [u8]);
        assert_eq!((p.options(), p.payload()), (&[][..], &[][..]));
        assert_eq!(p.check_len(), Err(Error::Truncated));
    }

    #[test]
    fn error_strings_are_stable() {
        let all = [
            Error::Truncated,
            Error::BadHeaderLength,
            Error::BadChecksum,
            Error::Malformed,
        ];
        let names: Vec<String> = all.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            names,
            [
                "truncated",
                "bad_header_length",
                "bad_checksum",
                "malformed"
            ]
        );
    }

    /// What `Repr::parse` must make of `options`: the general walk's
    /// verdict, on a `Repr` with no options.
    fn walked(options: &[u8]) -> Result<Repr<'static>, Error> {
        let mut r = Repr::default();
        r.walk_options(options).map(|()| r)
    }

    /// `Repr::parse` of the DATA segment's fixed header with `options`
    /// (padded with End of Option List to a whole word), the fields that
    /// do not come from options zeroed.
    fn parse_with(options: &[u8]) -> Result<Repr<'static>, Error> {
        let mut out = DATA[..HEADER_LEN].to_vec();
        out.extend_from_slice(options);
        let words = out.len().div_ceil(4);
        out.resize(words * 4, kind::END);
        let mut q = Packet::new_unchecked(&mut out[..]);
        q.set_header_len(words * 4);
        q.fill_checksum(LOCAL, PEER);
        let out: &'static [u8] = Vec::leak(out);
        Repr::parse(&Packet::new_unchecked(out), LOCAL, PEER).map(|mut r| {
            r.src_port = 0;
            r.dst_port = 0;
            r.seq_number = SeqNumber(0);
            r.ack_number = None;
            r.window_len = 0;
            r.psh = false;
            r
        })
    }

    fn check_fast_path_agrees(options: &[u8]) -> Option<(u32, u32)> {
        let fast = nop_nop_timestamps(options);
        let general = walked(options);
        if let Some(ts) = fast {
            assert_eq!(
                general,
                Ok(Repr {
                    timestamp: Some(ts),
                    ..Repr::default()
                }),
                "{options:02x?}"
            );
        }
        // Padding would change what an odd-length list means.
        if options.len().is_multiple_of(4) {
            assert_eq!(parse_with(options), general, "{options:02x?}");
        }
        fast
    }

    #[test]
    fn nop_nop_timestamps_fast_path_agrees_with_the_general_walk() {
        const TS: [u8; 8] = [0x0a, 0x1b, 0x2c, 0x3d, 0x5e, 0x6f, 0x70, 0x81];
        let cat = |head: &[u8], tail: &[u8]| [head, tail].concat();
        let exact = cat(&[1, 1, 8, 10], &TS);
        assert_eq!(
            check_fast_path_agrees(&exact),
            Some((0x0a1b_2c3d, 0x5e6f_7081))
        );
        // Near misses take the general walk, which decides as always.
        type Timestamps = Option<(u32, u32)>;
        let near_misses: Vec<(Vec<u8>, Result<Timestamps, Error>)> = vec![
            // Timestamps with a wrong length byte: malformed.
            (cat(&[1, 1, 8, 9], &TS), Err(Error::Malformed)),
            (cat(&[1, 1, 8, 11], &TS), Err(Error::Malformed)),
            // Timestamps first, then End of Option List and padding.
            (
                cat(&cat(&[8, 10], &TS), &[0, 0]),
                Ok(Some((0x0a1b_2c3d, 0x5e6f_7081))),
            ),
            // NOP, timestamps, NOP.
            (
                cat(&cat(&[1, 8, 10], &TS), &[1]),
                Ok(Some((0x0a1b_2c3d, 0x5e6f_7081))),
            ),
            // End of Option List before the timestamps: nothing after it counts.
            (cat(&[0, 1, 8, 10], &TS), Ok(None)),
            (cat(&[1, 0, 8, 10], &TS), Ok(None)),
            // 12 bytes of other options: MSS, NOP, WS, NOP NOP SACK-permitted.
            (vec![2, 4, 5, 180, 1, 3, 3, 7, 1, 1, 4, 2], Ok(None)),
            // NOP NOP and a one-block SACK: 12 bytes, kind 5 not 8.
            (cat(&[1, 1, 5, 10], &TS), Ok(None)),
            // An unknown kind of length 10 where timestamps would be.
            (cat(&[1, 1, 254, 10], &TS), Ok(None)),
            // Twelve NOPs.
            (vec![1; 12], Ok(None)),
            // Truncated: the option list ends inside the timestamps.
            (cat(&[1, 1, 8, 10], &TS[..4]), Err(Error::Malformed)),
            (cat(&[1, 1, 8, 10], &TS[..7]), Err(Error::Malformed)),
            // The usual layout followed by more: a second timestamps wins.
            (
                cat(&cat(&[1, 1, 8, 10], &TS), &cat(&[1, 1, 8, 10], &[9; 8])),
                Ok(Some((0x0909_0909, 0x0909_0909))),
            ),
            // ... or NOP NOP SACK, as Linux sends with holes.
            (
                cat(
                    &cat(&[1, 1, 8, 10], &TS),
                    &cat(&[1, 1, 5, 10], &[0, 0, 1, 0, 0, 0, 2, 0]),
                ),
                Ok(Some((0x0a1b_2c3d, 0x5e6f_7081))),
            ),
        ];
        for (o, want) in &near_misses {
            assert_eq!(check_fast_path_agrees(o), None, "{o:02x?}");
            assert_eq!(walked(o).map(|r| r.timestamp), *want, "{o:02x?}");
        }
        // The exact layout, one byte at a time replaced by values that
        // matter to the walk, and cut at every length.
        let mut fast = 0;
        for i in 0..12 {
            for v in [0u8, 1, 2, 5, 8, 9, 10, 11, 12, 255] {
                let mut o = exact.clone();
                o[i] = v;
                fast += usize::from(check_fast_path_agrees(&o).is_some());
            }
        }
        for n in 0..exact.len() {
            assert_eq!(check_fast_path_agrees(&exact[..n]), None);
        }
        // The bytes that are TSval and TSecr may take any value; the first
        // four only their own.
        assert_eq!(fast, 8 * 10 + 4);
        let mut rng = XorShift(0x005e_ed0f_7323);
        for _ in 0..20_000 {
            let mut o = exact.clone();
            for b in o.iter_mut() {
                if rng.next().is_multiple_of(6) {
                    *b = rng.next() as u8;
                }
            }
            check_fast_path_agrees(&o);
        }
    }

    #[test]
    fn fast_emit_of_timestamps_lays_out_what_the_general_path_does() {
        let mut n = 0;
        for bits in 0..16u32 {
            for blocks in 0..=MAX_SACK_BLOCKS {
                let mut r = Repr {
                    src_port: 80,
                    dst_port: 40000,
                    seq_number: SeqNumber(7),
                    ack_number: Some(SeqNumber(9)),
                    window_len: 1000,
                    max_seg_size: (bits & 1 != 0).then_some(1460),
                    window_scale: (bits & 2 != 0).then_some(7),
                    sack_permitted: bits & 4 != 0,
                    timestamp: (bits & 8 != 0).then_some((0x0102_0304, 0xa0b0_c0d0)),
                    payload: b"abc",
                    ..Repr::default()
                };
                for (j, slot) in r.sack_ranges.iter_mut().take(blocks).enumerate() {
                    let j = j as u32;
                    *slot = Some((SeqNumber(100 * j), SeqNumber(100 * j + 50)));
                }
                let mut out = vec![0; r.buffer_len()];
                r.emit(&mut Packet::new_unchecked(&mut out[..]), LOCAL, PEER);
                let mut general = vec![0; r.header_len() - HEADER_LEN];
                let mut at = 0;
                r.for_each_option(|o| at += o.emit(&mut general[at..]));
                assert_eq!(at, general.len());
                assert_eq!(&out[HEADER_LEN..r.header_len()], &general[..], "{r:?}");
                n += 1;
            }
        }
        assert_eq!(n, 16 * 5);
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

    /// Every accessor, the option walk, and parse -> emit -> parse, which
    /// must give back what the first parse did (less SACK blocks that no
    /// longer fit beside the other options in Linux's layout).
    fn exercise(bytes: &[u8]) {
        for o in TcpOptions::new(bytes) {
            let _ = o;
        }
        let _ = Repr::parse(&Packet::new_unchecked(bytes), LOCAL, PEER);
        let Ok(p) = Packet::new_checked(bytes) else {
            return;
        };
        let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number());
        let _ = (p.header_len(), p.flags(), p.window_len(), p.checksum());
        let _ = (
            p.urgent_at(),
            p.segment_len(),
            p.verify_checksum(LOCAL, PEER),
        );
        let mut walked = 0;
        for o in TcpOptions::new(p.options()) {
            walked += o.map_or(0, |o| o.buffer_len());
        }
        assert!(walked <= p.options().len());
        if let Ok(r) = Repr::parse(&p, LOCAL, PEER) {
            assert!(r.window_scale.is_none_or(|s| s <= MAX_WINDOW_SCALE));
            assert_eq!(r.payload, p.payload());
            let mut out = vec![0; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut out[..]), LOCAL, PEER);
            let q = Packet::new_checked(&out[..]).unwrap();
            let back = Repr::parse(&q, LOCAL, PEER).unwrap();
            let mut expect = r;
            for slot in expect.sack_ranges.iter_mut().skip(r.max_sack_blocks()) {
                *slot = None;
            }
            assert_eq!(back, expect);
        }
    }

    #[test]
    fn never_panics_on_random_bytes() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut parsed = 0;
        for _ in 0..6000 {
            let len = (rng.next() % 96) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Steer most inputs into deeper paths: a plausible Data Offset,
            // non-zero ports, options drawn from real kinds, and usually a
            // valid checksum.
            if len >= HEADER_LEN && !rng.next().is_multiple_of(4) {
                let words = 5 + rng.next() % 11;
                buf[12] = (buf[12] & 0x0f) | ((words as u8) << 4);
                buf[1] |= 1;
                buf[3] |= 1;
                let hl = (words as usize * 4).min(len);
                for b in buf[HEADER_LEN..hl].iter_mut() {
                    if rng.next().is_multiple_of(3) {
                        *b = [0, 1, 2, 3, 4, 5, 8, 10, 18, 34][(rng.next() % 10) as usize];
                    }
                }
                if !rng.next().is_multiple_of(4) {
                    Packet::new_unchecked(&mut buf[..]).fill_checksum(LOCAL, PEER);
                }
            }
            if Repr::parse(&Packet::new_unchecked(&buf[..]), LOCAL, PEER).is_ok() {
                parsed += 1;
            }
            exercise(&buf);
        }
        // The steering works: a fair share got all the way through.
        assert!(parsed > 300, "only {parsed} parsed");
    }

    #[test]
    fn never_panics_on_random_option_lists() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..6000 {
            let len = (rng.next() % 41) as usize;
            let opts: Vec<u8> = (0..len)
                .map(|_| match rng.next() % 4 {
                    0 => rng.next() as u8,
                    _ => [0, 1, 2, 3, 4, 5, 8, 10, 18, 26, 34][(rng.next() % 11) as usize],
                })
                .collect();
            let mut total = 0;
            let mut errors = 0;
            for o in TcpOptions::new(&opts) {
                match o {
                    Ok(o) => {
                        total += o.buffer_len();
                        // Whatever walks re-emits to the same bytes.
                        let mut buf = [0u8; 40];
                        let n = o.emit(&mut buf);
                        assert_eq!(options_of(&buf[..n]), [Ok(o)]);
                    }
                    Err(e) => {
                        assert_eq!(e, Error::Malformed);
                        errors += 1;
                    }
                }
            }
            assert!(total <= len && errors <= 1);
        }
    }
}
