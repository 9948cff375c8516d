//! IPv4 reassembly.
//!
//! The procedure is RFC 791 §3.2 ("An Example Reassembly Procedure") with the
//! bookkeeping of RFC 815, hardened for a receiver that faces attackers:
//!
//! * Fragments are matched on (source, destination, protocol, identification),
//!   RFC 791's BUFID.
//! * Overlap is never resolved: a fragment that overlaps held data with other
//!   bounds or other bytes throws the whole datagram away, as RFC 5722 asks of
//!   IPv6. RFC 791 would let "the more recently arrived copy" win, which is
//!   what teardrop and IDS-evasion attacks rely on. An exact duplicate (same
//!   offset, same length, same bytes) is harmless and ignored.
//! * Every resource is bounded by [`ReassemblyConfig`]: datagrams in progress,
//!   fragments per datagram, and payload bytes held over all datagrams.
//! * The timer starts at the first fragment and is never extended. RFC 791
//!   raises it with each fragment's TTL, which would let a trickle of
//!   fragments pin memory for minutes.
//!
//! # Memory
//!
//! Each datagram keeps the bytes of its fragments in one buffer, appended in
//! arrival order, plus a sorted list of `(offset, length, position)` pieces.
//! Appending rather than placing at the offset means a tiny fragment at offset
//! 65 000 costs 8 bytes, not 65 000: held memory follows what was received,
//! never what an attacker claims is coming. The payload is laid out in order
//! only on completion, into a scratch buffer that [`FragOutcome::Complete`]
//! borrows (no copy at all when the fragments arrived in order).
//!
//! [`Reassembler::bytes_held`] is the sum of those buffers' *capacities*,
//! kept at or below `max_bytes`. Outside that budget there are only a few
//! fixed costs: the scratch buffer and one recycled spare buffer (each at most
//! [`MAX_PAYLOAD`] bytes), and per datagram a fixed-size header (with the
//! 124-byte ICMP quote) and at most `max_fragments_per_datagram` pieces of
//! 24 bytes.
//!
//! # Determinism
//!
//! Nothing reads a clock or a random source: datagrams are indexed by
//! `BTreeMap`s (no per-process hash seeds, no hash flooding), and timeouts are
//! reported in deadline order, ties in arrival order.

use core::net::Ipv4Addr;
use std::collections::BTreeMap;

use crate::time::{Duration, Instant};

/// The largest IPv4 payload: Total Length is 16 bits, and the header is at
/// least 20 octets. RFC 791 §3.1: "This field allows the length of a datagram
/// to be up to 65,535 octets."
pub const MAX_PAYLOAD: usize = 65_535 - 20;

/// Header bytes kept from the offset-0 fragment for an ICMP quote: the
/// largest IPv4 header (IHL 15 × 4).
const QUOTE_HEADER_MAX: usize = 60;
/// Payload bytes kept from the offset-0 fragment. RFC 792 quotes the first
/// 8; later RFCs allow more, which helps whoever reads the error, and 64
/// keeps the quote small enough to store inline.
const QUOTE_DATA_MAX: usize = 64;
const QUOTE_MAX: usize = QUOTE_HEADER_MAX + QUOTE_DATA_MAX;

/// Identifies the datagram a fragment belongs to (RFC 791's BUFID).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct FragKey {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ident: u16,
}

/// Limits on reassembly. Every one of them bounds attacker-controlled memory
/// or work, so there is no "unlimited".
#[derive(Clone, Debug)]
pub struct ReassemblyConfig {
    /// How long a datagram may take to complete, measured from its first
    /// fragment. RFC 791: "The current recommendation for the initial timer
    /// setting is 15 seconds"; Linux uses 30 s, as do we.
    pub timeout: Duration,
    /// Datagrams in progress at once.
    pub max_datagrams: usize,
    /// Distinct fragments one datagram may have. 64 covers a 65 515-byte
    /// payload in 1 024-byte fragments; smaller pieces than that are almost
    /// always an attack.
    pub max_fragments_per_datagram: usize,
    /// Payload buffer capacity held over all datagrams, in bytes.
    pub max_bytes: usize,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            timeout: Duration::from_secs(30),
            max_datagrams: 64,
            max_fragments_per_datagram: 64,
            max_bytes: 4 << 20,
        }
    }
}

/// Why a fragment (and with it, possibly, the whole datagram) was dropped.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum FragDrop {
    /// Overlaps data already held with different bytes or different bounds:
    /// the whole datagram is dropped.
    Overlap,
    /// `offset + len` is past [`MAX_PAYLOAD`]: this fragment is dropped.
    TooBig,
    /// A non-last fragment whose length is 0 or not a multiple of 8, a last
    /// fragment that disagrees with the known end, or data past the known
    /// end: this fragment is dropped.
    BadLength,
    /// The datagram would have more than `max_fragments_per_datagram`
    /// fragments: the whole datagram is dropped.
    TooManyFragments,
    /// No slot for a new datagram: this fragment is dropped, existing work is
    /// kept.
    TooManyDatagrams,
    /// `max_bytes` would be exceeded: this fragment is dropped, existing work
    /// is kept.
    TooManyBytes,
}

impl FragDrop {
    /// The name of the counter, in snake case.
    pub fn as_str(&self) -> &'static str {
        match self {
            FragDrop::Overlap => "overlap",
            FragDrop::TooBig => "too_big",
            FragDrop::BadLength => "bad_length",
            FragDrop::TooManyFragments => "too_many_fragments",
            FragDrop::TooManyDatagrams => "too_many_datagrams",
            FragDrop::TooManyBytes => "too_many_bytes",
        }
    }

    /// Whether the whole datagram the fragment belonged to was discarded
    /// along with it, rather than just the fragment.
    pub fn drops_datagram(&self) -> bool {
        matches!(self, FragDrop::Overlap | FragDrop::TooManyFragments)
    }
}

/// What [`Reassembler::add`] did with a fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum FragOutcome<'a> {
    /// All fragments present: the reassembled IP payload (not including any
    /// IP header), valid until the next call on the Reassembler.
    Complete(&'a [u8]),
    Incomplete,
    Dropped(FragDrop),
}

/// A datagram that timed out.
///
/// `first_fragment` is the offset-0 fragment's IP header (up to 60 bytes)
/// followed by up to its first 64 payload bytes, if that fragment arrived.
/// That is always at least 8 payload bytes: a fragment at offset 0 with MF
/// set carries at least one 8-byte block.
/// RFC 792: "If fragment zero is not available then no time exceeded need be
/// sent at all."
#[derive(Copy, Clone, Debug)]
pub struct Expired<'a> {
    pub key: FragKey,
    pub first_fragment: Option<&'a [u8]>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Every call to `add`.
    pub fragments: u64,
    pub reassembled: u64,
    pub duplicates: u64,
    pub timeouts: u64,
    pub dropped_overlap: u64,
    pub dropped_too_big: u64,
    pub dropped_bad_length: u64,
    pub dropped_too_many_fragments: u64,
    pub dropped_too_many_datagrams: u64,
    pub dropped_too_many_bytes: u64,
}

impl ReassemblyStats {
    fn dropped(&mut self, why: FragDrop) -> &mut u64 {
        match why {
            FragDrop::Overlap => &mut self.dropped_overlap,
            FragDrop::TooBig => &mut self.dropped_too_big,
            FragDrop::BadLength => &mut self.dropped_bad_length,
            FragDrop::TooManyFragments => &mut self.dropped_too_many_fragments,
            FragDrop::TooManyDatagrams => &mut self.dropped_too_many_datagrams,
            FragDrop::TooManyBytes => &mut self.dropped_too_many_bytes,
        }
    }
}

/// Counters saturate rather than wrap: a wrapped counter lies.
fn bump(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}

/// `FragKey` as an ordered tuple, so the index can be a `BTreeMap` without
/// adding `Ord` to the public key type.
type KeyOrd = (u32, u32, u8, u16);

fn key_ord(key: &FragKey) -> KeyOrd {
    (
        u32::from(key.src),
        u32::from(key.dst),
        key.protocol,
        key.ident,
    )
}

/// A datagram's deadline, and an arrival sequence number that makes the key
/// unique and breaks ties in arrival order.
type TimerKey = (Instant, u64);

/// One fragment's data: payload bytes `off..off + len`, stored at
/// `buf[at..at + len]`. All three are at most [`MAX_PAYLOAD`], so sums of two
/// never overflow.
#[derive(Copy, Clone, Debug)]
struct Piece {
    off: usize,
    len: usize,
    at: usize,
}

impl Piece {
    fn end(&self) -> usize {
        self.off + self.len
    }
}

/// The ICMP quote, stored inline so that keeping it costs no allocation.
#[derive(Clone, Debug)]
struct Quote {
    bytes: [u8; QUOTE_MAX],
    len: usize,
}

impl Quote {
    fn new(header: &[u8], data: &[u8]) -> Quote {
        let header = header.get(..QUOTE_HEADER_MAX).unwrap_or(header);
        let data = data.get(..QUOTE_DATA_MAX).unwrap_or(data);
        let mut bytes = [0; QUOTE_MAX];
        bytes[..header.len()].copy_from_slice(header);
        bytes[header.len()..header.len() + data.len()].copy_from_slice(data);
        Quote {
            bytes,
            len: header.len() + data.len(),
        }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[derive(Debug)]
struct Datagram {
    key: FragKey,
    timer: TimerKey,
    /// Sorted by `off`, pairwise disjoint, none empty. A zero-length last
    /// fragment is not a piece: all it carries is `total`.
    pieces: Vec<Piece>,
    /// The pieces' bytes in arrival order; `buf.len()` is the sum of their
    /// lengths. Its capacity is what counts against `max_bytes`.
    buf: Vec<u8>,
    /// Payload length, once the last fragment (MF = 0) has arrived.
    total: Option<usize>,
    quote: Option<Quote>,
}

impl Datagram {
    /// The pieces are disjoint and lie within `0..total`, so once their
    /// lengths add up to `total` there is no hole left (RFC 815 step 8: "If
    /// the hole descriptor list is now empty, the datagram is now complete").
    fn is_complete(&self) -> bool {
        self.total == Some(self.buf.len())
    }
}

/// Reassembles IPv4 datagrams from their fragments. See the module docs.
#[derive(Debug)]
pub struct Reassembler {
    config: ReassemblyConfig,
    datagrams: BTreeMap<KeyOrd, Datagram>,
    timers: BTreeMap<TimerKey, KeyOrd>,
    next_seq: u64,
    /// Sum of `buf.capacity()` over `datagrams`, plus that of a datagram
    /// being started inside `add`.
    held: usize,
    /// Where `Complete` payloads are laid out; its contents live until the
    /// next call.
    scratch: Vec<u8>,
    /// The largest buffer freed so far, reused for the next datagram so a
    /// steady stream of fragmented datagrams allocates nothing.
    spare: Vec<u8>,
    stats: ReassemblyStats,
}

/// The result of [`Reassembler::add`] before it borrows the payload.
enum Step {
    Complete,
    Incomplete,
}

impl Reassembler {
    pub fn new(config: ReassemblyConfig) -> Reassembler {
        Reassembler {
            config,
            datagrams: BTreeMap::new(),
            timers: BTreeMap::new(),
            next_seq: 0,
            held: 0,
            scratch: Vec::new(),
            spare: Vec::new(),
            stats: ReassemblyStats::default(),
        }
    }

    /// Add one fragment. `offset` in bytes (already multiplied by 8), `more` =
    /// the MF flag, `data` = this fragment's IP payload, `header` = this
    /// fragment's IP header bytes (kept only for the offset-0 fragment, for
    /// the ICMP quote; at most 60 bytes of it).
    ///
    /// An unfragmented datagram (offset 0, MF = 0) is returned as `Complete`
    /// at once, and, as in RFC 791's procedure, flushes any reassembly under
    /// the same key: "IF FO = 0 AND MF = 0 THEN IF buffer with BUFID is
    /// allocated THEN flush all reassembly for this BUFID; Submit datagram to
    /// next step".
    pub fn add(
        &mut self,
        now: Instant,
        key: FragKey,
        offset: usize,
        more: bool,
        data: &[u8],
        header: &[u8],
    ) -> FragOutcome<'_> {
        bump(&mut self.stats.fragments);
        match self.add_inner(now, key, offset, more, data, header) {
            Ok(Step::Complete) => {
                bump(&mut self.stats.reassembled);
                FragOutcome::Complete(&self.scratch)
            }
            Ok(Step::Incomplete) => FragOutcome::Incomplete,
            Err(why) => {
                bump(self.stats.dropped(why));
                FragOutcome::Dropped(why)
            }
        }
    }

    fn add_inner(
        &mut self,
        now: Instant,
        key: FragKey,
        offset: usize,
        more: bool,
        data: &[u8],
        header: &[u8],
    ) -> Result<Step, FragDrop> {
        // Checks that need no state come first, so junk never allocates.
        let end = match offset.checked_add(data.len()) {
            Some(end) if end <= MAX_PAYLOAD => end,
            _ => return Err(FragDrop::TooBig),
        };
        // Every fragment but the last carries a whole number of 8-octet
        // blocks (RFC 791: offsets count 8-octet units), and an empty one
        // would be a piece that adds nothing but bookkeeping.
        if more && (data.is_empty() || !data.len().is_multiple_of(8)) {
            return Err(FragDrop::BadLength);
        }
        let k = key_ord(&key);

        if offset == 0 && !more {
            if let Some(stale) = self.datagrams.remove(&k) {
                self.release(stale);
            }
            self.scratch.clear();
            // reserve_exact keeps the scratch capacity at most MAX_PAYLOAD.
            if self.scratch.try_reserve_exact(data.len()).is_err() {
                return Err(FragDrop::TooManyBytes);
            }
            self.scratch.extend_from_slice(data);
            return Ok(Step::Complete);
        }

        let frag = Fragment {
            offset,
            end,
            more,
            data,
            header,
        };
        let limits = Limits {
            max_fragments: self.config.max_fragments_per_datagram,
            max_bytes: self.config.max_bytes,
        };

        if let Some(dg) = self.datagrams.get_mut(&k) {
            match place(dg, &frag, limits, &mut self.held, &mut self.spare) {
                Ok(duplicate) => {
                    if duplicate {
                        bump(&mut self.stats.duplicates);
                    }
                    if !dg.is_complete() {
                        return Ok(Step::Incomplete);
                    }
                }
                Err(why) => {
                    if why.drops_datagram() {
                        if let Some(dg) = self.datagrams.remove(&k) {
                            self.release(dg);
                        }
                    }
                    return Err(why);
                }
            }
            // Complete: the datagram leaves the table and its payload goes
            // to the scratch buffer.
            let Some(dg) = self.datagrams.remove(&k) else {
                return Ok(Step::Incomplete);
            };
            self.timers.remove(&dg.timer);
            return self.finish(dg);
        }

        if self.datagrams.len() >= self.config.max_datagrams {
            return Err(FragDrop::TooManyDatagrams);
        }
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        let mut dg = Datagram {
            key,
            timer: (now + self.config.timeout, seq),
            pieces: Vec::new(),
            buf: Vec::new(),
            total: None,
            quote: None,
        };
        if let Err(why) = place(&mut dg, &frag, limits, &mut self.held, &mut self.spare) {
            // Never entered the table, but its buffer may have been counted.
            self.held = self.held.saturating_sub(dg.buf.capacity());
            recycle(&mut self.spare, dg.buf);
            return Err(why);
        }
        if dg.is_complete() {
            // Unreachable today (a lone fragment that completes a datagram
            // has offset 0 and MF = 0, handled above), kept so the table
            // never holds a complete datagram.
            return self.finish(dg);
        }
        self.timers.insert(dg.timer, k);
        self.datagrams.insert(k, dg);
        Ok(Step::Incomplete)
    }

    /// Lay out a complete datagram's payload in `scratch` and free the rest.
    /// The caller has already taken it out of both tables.
    fn finish(&mut self, mut dg: Datagram) -> Result<Step, FragDrop> {
        self.held = self.held.saturating_sub(dg.buf.capacity());
        let in_place = dg.pieces.iter().all(|p| p.at == p.off);
        let outcome = if in_place {
            // Fragments arrived in order, so the buffer already is the
            // payload: hand it over instead of copying.
            core::mem::swap(&mut self.scratch, &mut dg.buf);
            Ok(Step::Complete)
        } else {
            self.scratch.clear();
            if self.scratch.try_reserve_exact(dg.buf.len()).is_ok() {
                for p in &dg.pieces {
                    let bytes = dg.buf.get(p.at..p.at + p.len);
                    debug_assert!(bytes.is_some(), "piece outside its buffer");
                    self.scratch.extend_from_slice(bytes.unwrap_or_default());
                }
                Ok(Step::Complete)
            } else {
                // Out of memory for at most MAX_PAYLOAD bytes; the datagram
                // is lost either way, but never delivered short.
                Err(FragDrop::TooManyBytes)
            }
        };
        recycle(&mut self.spare, dg.buf);
        outcome
    }

    /// Free a datagram that was taken out of `datagrams` (but whose timer may
    /// still be set).
    fn release(&mut self, dg: Datagram) {
        self.timers.remove(&dg.timer);
        self.held = self.held.saturating_sub(dg.buf.capacity());
        recycle(&mut self.spare, dg.buf);
    }

    /// Expire datagrams whose first fragment arrived `timeout` or more before
    /// `now`, calling `on_expired` for each, earliest first.
    pub fn expire(&mut self, now: Instant, on_expired: &mut dyn FnMut(Expired<'_>)) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let k = entry.remove();
            let Some(dg) = self.datagrams.remove(&k) else {
                debug_assert!(false, "timer without a datagram");
                continue;
            };
            bump(&mut self.stats.timeouts);
            on_expired(Expired {
                key: dg.key,
                first_fragment: dg.quote.as_ref().map(Quote::as_slice),
            });
            self.held = self.held.saturating_sub(dg.buf.capacity());
            recycle(&mut self.spare, dg.buf);
        }
    }

    /// Earliest time `expire` has work to do (None when nothing is held).
    /// O(log datagrams).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.first_key_value().map(|(&(t, _), _)| t)
    }

    pub fn datagrams_in_progress(&self) -> usize {
        self.datagrams.len()
    }

    /// Payload buffer capacity held for datagrams in progress; never more
    /// than `max_bytes`.
    pub fn bytes_held(&self) -> usize {
        self.held
    }

    pub fn stats(&self) -> &ReassemblyStats {
        &self.stats
    }

    pub fn config(&self) -> &ReassemblyConfig {
        &self.config
    }
}

/// A fragment, as `add` was given it, with `end` already checked.
struct Fragment<'d> {
    offset: usize,
    end: usize,
    more: bool,
    data: &'d [u8],
    header: &'d [u8],
}

#[derive(Copy, Clone)]
struct Limits {
    max_fragments: usize,
    max_bytes: usize,
}

/// Add `frag` to `dg`, or say why not. Returns whether it was an exact
/// duplicate. On error `dg` is unchanged, except that its buffer may have
/// grown (and `held` with it).
fn place(
    dg: &mut Datagram,
    frag: &Fragment<'_>,
    limits: Limits,
    held: &mut usize,
    spare: &mut Vec<u8>,
) -> Result<bool, FragDrop> {
    let len = frag.data.len();
    let max_end = dg.pieces.last().map_or(0, Piece::end);

    // Overlap is judged first: it condemns the whole datagram, so a
    // teardrop-style fragment that also lies about the end must not get
    // away with the lesser BadLength.
    let idx = dg.pieces.partition_point(|p| p.off < frag.offset);
    let duplicate = if len == 0 {
        // A zero-length last fragment carries no bytes to overlap; it only
        // repeats the end if that is known already.
        dg.total == Some(frag.end)
    } else if let Some(same) = dg
        .pieces
        .get(idx)
        .filter(|p| p.off == frag.offset && p.len == len)
    {
        if dg.buf.get(same.at..same.at + len) != Some(frag.data) {
            return Err(FragDrop::Overlap);
        }
        true
    } else {
        let prev_overlaps = idx
            .checked_sub(1)
            .and_then(|i| dg.pieces.get(i))
            .is_some_and(|p| p.end() > frag.offset);
        let next_overlaps = dg.pieces.get(idx).is_some_and(|p| p.off < frag.end);
        if prev_overlaps || next_overlaps {
            return Err(FragDrop::Overlap);
        }
        false
    };

    // What the fragment says about the end of the datagram must agree with
    // what is known: one end, and no data past it.
    if frag.more {
        if dg.total.is_some_and(|total| frag.end > total) {
            return Err(FragDrop::BadLength);
        }
    } else {
        match dg.total {
            Some(total) if total != frag.end => return Err(FragDrop::BadLength),
            None if max_end > frag.end => return Err(FragDrop::BadLength),
            _ => {}
        }
    }

    if !duplicate && len > 0 {
        if dg.pieces.len() >= limits.max_fragments {
            return Err(FragDrop::TooManyFragments);
        }
        let total = if frag.more { dg.total } else { Some(frag.end) };
        if !grow(&mut dg.buf, len, total, limits.max_bytes, held, spare) {
            return Err(FragDrop::TooManyBytes);
        }
        if dg.pieces.len() == dg.pieces.capacity() {
            // Grow the piece list geometrically but never past the limit, so
            // its memory is bounded by max_fragments exactly.
            let room = limits.max_fragments - dg.pieces.len();
            let extra = dg.pieces.len().max(4).min(room);
            if dg.pieces.try_reserve_exact(extra).is_err() {
                return Err(FragDrop::TooManyBytes);
            }
        }
        let at = dg.buf.len();
        dg.buf.extend_from_slice(frag.data);
        dg.pieces.insert(
            idx,
            Piece {
                off: frag.offset,
                len,
                at,
            },
        );
        if frag.offset == 0 {
            dg.quote = Some(Quote::new(frag.header, frag.data));
        }
    }
    if !frag.more {
        // A duplicate may still be the first to say it is the last.
        dg.total = Some(frag.end);
    }
    Ok(duplicate)
}

/// Make room in `buf` for `extra` more bytes within the byte budget, counting
/// capacity in `held`. Capacity doubles, so appending costs amortised O(1),
/// but never past `total` (the payload length, if known) or the budget.
///
/// The known total is deliberately not allocated up front: it is only a
/// claim by whoever sent the last fragment, and believing it would let one
/// 8-byte fragment at offset 65 000 tie up 65 000 bytes.
fn grow(
    buf: &mut Vec<u8>,
    extra: usize,
    total: Option<usize>,
    max_bytes: usize,
    held: &mut usize,
    spare: &mut Vec<u8>,
) -> bool {
    let need = buf.len() + extra;
    if need <= buf.capacity() {
        return true;
    }
    let others = held.saturating_sub(buf.capacity());
    // The most this buffer may hold without breaking the budget.
    let budget = max_bytes.saturating_sub(others);
    if need > budget {
        return false;
    }
    if buf.capacity() == 0 && spare.capacity() >= need && spare.capacity() <= budget {
        core::mem::swap(buf, spare);
        buf.clear();
        *held = others + buf.capacity();
        return true;
    }
    let ceiling = budget.min(total.unwrap_or(MAX_PAYLOAD));
    let target = buf.capacity().saturating_mul(2).min(ceiling).max(need);
    if buf.try_reserve_exact(target - buf.len()).is_err() {
        return false;
    }
    *held = others + buf.capacity();
    true
}

/// Keep the larger of `buf` and the current spare for reuse.
fn recycle(spare: &mut Vec<u8>, mut buf: Vec<u8>) {
    if buf.capacity() > spare.capacity() {
        buf.clear();
        *spare = buf;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 header for the quote: version/IHL 0x45, ident 0x1234, MF set,
    /// TTL 64, UDP, 192.0.2.1 -> 198.51.100.2.
    const HEADER: [u8; 20] = [
        0x45, 0, 0x05, 0xdc, 0x12, 0x34, 0x20, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 2,
    ];

    fn key(ident: u16) -> FragKey {
        FragKey {
            src: Ipv4Addr::new(192, 0, 2, 1),
            dst: Ipv4Addr::new(198, 51, 100, 2),
            protocol: 17,
            ident,
        }
    }

    fn at_ms(ms: i64) -> Instant {
        Instant::from_millis(ms)
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn shuffle<T>(&mut self, v: &mut [T]) {
            for i in (1..v.len()).rev() {
                v.swap(i, self.below(i as u64 + 1) as usize);
            }
        }
    }

    /// Bytes without structure, so a piece put in the wrong place shows.
    fn payload(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        (0..len).map(|_| rng.next() as u8).collect()
    }

    /// `total` bytes cut into `size`-byte fragments: (offset, len, more).
    fn cut(total: usize, size: usize) -> Vec<(usize, usize, bool)> {
        (0..total)
            .step_by(size)
            .map(|off| {
                let len = size.min(total - off);
                (off, len, off + len < total)
            })
            .collect()
    }

    /// `FragOutcome` without the borrow, so tests can keep calling `add`.
    #[derive(Debug, PartialEq, Eq)]
    enum Got {
        Complete(Vec<u8>),
        Incomplete,
        Dropped(FragDrop),
    }

    fn add(
        r: &mut Reassembler,
        now: Instant,
        ident: u16,
        offset: usize,
        more: bool,
        data: &[u8],
    ) -> Got {
        let got = match r.add(now, key(ident), offset, more, data, &HEADER) {
            FragOutcome::Complete(p) => Got::Complete(p.to_vec()),
            FragOutcome::Incomplete => Got::Incomplete,
            FragOutcome::Dropped(why) => Got::Dropped(why),
        };
        check_invariants(r);
        got
    }

    /// Asserts a payload without printing 60 000 bytes when it fails.
    fn assert_payload(got: Got, want: &[u8]) {
        let Got::Complete(p) = got else {
            panic!("expected Complete, got {got:?}");
        };
        assert_eq!(p.len(), want.len(), "payload length");
        if let Some(i) = p.iter().zip(want).position(|(a, b)| a != b) {
            panic!("payload differs first at byte {i}");
        }
    }

    /// Everything the reassembler promises about its own state.
    fn check_invariants(r: &Reassembler) {
        let max_frags = r.config.max_fragments_per_datagram;
        assert!(r.datagrams.len() <= r.config.max_datagrams);
        assert_eq!(r.timers.len(), r.datagrams.len());
        let mut held = 0;
        for (k, dg) in &r.datagrams {
            assert_eq!(key_ord(&dg.key), *k);
            assert_eq!(r.timers.get(&dg.timer), Some(k));
            held += dg.buf.capacity();
            assert!(dg.pieces.len() <= max_frags);
            assert!(dg.pieces.capacity() <= max_frags);
            let mut end = 0;
            let mut sum = 0;
            for p in &dg.pieces {
                assert!(p.len > 0, "empty piece");
                assert!(p.off >= end, "pieces overlap or are out of order");
                assert!(p.at + p.len <= dg.buf.len());
                end = p.end();
                sum += p.len;
            }
            assert!(end <= MAX_PAYLOAD);
            assert_eq!(sum, dg.buf.len());
            if let Some(total) = dg.total {
                assert!(end <= total, "data past the end");
                assert!(sum < total, "a complete datagram was left in the table");
            }
            assert_eq!(
                dg.quote.is_some(),
                dg.pieces.first().is_some_and(|p| p.off == 0)
            );
        }
        assert_eq!(held, r.held, "bytes_held must be the sum of capacities");
        assert!(r.held <= r.config.max_bytes, "over the byte budget");
        assert!(r.scratch.capacity() <= MAX_PAYLOAD);
        assert!(r.spare.capacity() <= MAX_PAYLOAD);
    }

    /// Feeds the 60 000-byte payload's 1480-byte fragments in `order` and
    /// returns the last outcome, checking that all the others are Incomplete.
    fn reassemble_60000(order: impl Fn(&mut Vec<(usize, usize, bool)>)) {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(60_000, 1);
        let mut frags = cut(60_000, 1480);
        assert_eq!(frags.len(), 41);
        order(&mut frags);
        let (&(off, len, more), rest) = frags.split_last().unwrap();
        for &(off, len, more) in rest {
            let got = add(&mut r, at_ms(0), 1, off, more, &data[off..off + len]);
            assert_eq!(got, Got::Incomplete);
        }
        let got = add(&mut r, at_ms(1), 1, off, more, &data[off..off + len]);
        assert_payload(got, &data);
        assert_eq!(r.datagrams_in_progress(), 0);
        assert_eq!(r.bytes_held(), 0);
        assert_eq!(r.next_deadline(), None);
        assert_eq!(r.stats().fragments, 41);
        assert_eq!(r.stats().reassembled, 1);
    }

    #[test]
    fn reassembles_60000_bytes_sent_in_order() {
        reassemble_60000(|_| {});
    }

    #[test]
    fn reassembles_60000_bytes_sent_in_reverse_order() {
        // The last fragment arrives first, so the end is known from the
        // start and everything else must fit under it.
        reassemble_60000(|f| f.reverse());
    }

    #[test]
    fn reassembles_60000_bytes_sent_in_random_order() {
        // RFC 815 asks for an algorithm that "can reassemble a datagram from
        // any number of fragments arriving in any order" (its tolerance of
        // "any possible pattern of overlap" we refuse on purpose).
        for seed in 1..=20 {
            reassemble_60000(|f| XorShift(seed).shuffle(f));
        }
    }

    #[test]
    fn reassembles_the_largest_payload_65515_bytes() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(MAX_PAYLOAD, 2);
        let mut frags = cut(MAX_PAYLOAD, 1480);
        XorShift(3).shuffle(&mut frags);
        let mut last = Got::Incomplete;
        for (off, len, more) in frags {
            last = add(&mut r, at_ms(0), 1, off, more, &data[off..off + len]);
        }
        assert_payload(last, &data);
    }

    #[test]
    fn buffers_are_reused_across_datagrams() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        for ident in 0..3 {
            let data = payload(10_000, ident.into());
            let mut frags = cut(10_000, 1480);
            XorShift(ident as u64 + 1).shuffle(&mut frags);
            let mut last = Got::Incomplete;
            for (off, len, more) in frags {
                last = add(&mut r, at_ms(0), ident, off, more, &data[off..off + len]);
            }
            assert_payload(last, &data);
            assert_eq!(r.bytes_held(), 0);
        }
        // A freed buffer is kept for the next datagram; it counts against
        // the budget again as soon as it is in use.
        assert!(r.spare.capacity() > 0);
        let data = payload(1480, 9);
        assert_eq!(add(&mut r, at_ms(0), 9, 0, true, &data), Got::Incomplete);
        assert!(r.bytes_held() >= 1480);
    }

    #[test]
    fn exact_duplicates_are_ignored_and_counted() {
        // RFC 5722 §4 (IPv6, which we follow for IPv4 too) only condemns
        // overlap; a fragment repeated byte for byte, as a network may
        // duplicate it, changes nothing.
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(4000, 4);
        let frags = cut(4000, 1480);
        for &(off, len, more) in &frags[..2] {
            for _ in 0..3 {
                let got = add(&mut r, at_ms(0), 1, off, more, &data[off..off + len]);
                assert_eq!(got, Got::Incomplete);
            }
        }
        assert_eq!(r.stats().duplicates, 4);
        let held = r.bytes_held();
        let (off, len, more) = frags[1];
        assert_eq!(
            add(&mut r, at_ms(0), 1, off, more, &data[off..off + len]),
            Got::Incomplete
        );
        assert_eq!(r.bytes_held(), held, "a duplicate takes no memory");
        let (off, len, more) = frags[2];
        let got = add(&mut r, at_ms(0), 1, off, more, &data[off..off + len]);
        assert_payload(got, &data);
        assert_eq!(r.stats().duplicates, 5);
        assert_eq!(r.stats().dropped_overlap, 0);
    }

    #[test]
    fn duplicate_last_fragments_are_ignored() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(2000, 5);
        assert_eq!(
            add(&mut r, at_ms(0), 1, 1480, false, &data[1480..]),
            Got::Incomplete
        );
        assert_eq!(
            add(&mut r, at_ms(0), 1, 1480, false, &data[1480..]),
            Got::Incomplete
        );
        // A zero-length last fragment at the known end says nothing new.
        assert_eq!(add(&mut r, at_ms(0), 1, 2000, false, &[]), Got::Incomplete);
        assert_eq!(r.stats().duplicates, 2);
        assert_payload(add(&mut r, at_ms(0), 1, 0, true, &data[..1480]), &data);
    }

    #[test]
    fn same_bounds_with_different_bytes_drop_the_whole_datagram() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(3000, 6);
        add(&mut r, at_ms(0), 1, 0, true, &data[..1480]);
        add(&mut r, at_ms(0), 1, 1480, true, &data[1480..2960]);
        let mut forged = data[1480..2960].to_vec();
        forged[100] ^= 1;
        assert_eq!(
            add(&mut r, at_ms(0), 1, 1480, true, &forged),
            Got::Dropped(FragDrop::Overlap)
        );
        assert_eq!(r.datagrams_in_progress(), 0);
        assert_eq!(r.bytes_held(), 0);
    }

    #[test]
    fn teardrop_overlap_drops_everything() {
        // Teardrop: the second fragment starts inside the first (and here
        // ends inside it too, which broke length arithmetic in old stacks).
        // RFC 5722 §4 (with erratum 3089): "When reassembling an IPv6
        // datagram, if one or more its constituent fragments is determined to
        // be an overlapping fragment, the entire datagram (and any
        // constituent fragments) MUST be silently discarded."
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(64, 7);
        assert_eq!(
            add(&mut r, at_ms(0), 1, 0, true, &data[..48]),
            Got::Incomplete
        );
        assert_eq!(
            add(&mut r, at_ms(0), 1, 24, false, &data[24..28]),
            Got::Dropped(FragDrop::Overlap)
        );
        assert_eq!(r.datagrams_in_progress(), 0);
        assert_eq!(r.bytes_held(), 0);
        assert_eq!(r.stats().dropped_overlap, 1);
        // What follows starts from nothing: it can never complete with the
        // discarded first fragment.
        assert_eq!(
            add(&mut r, at_ms(0), 1, 48, false, &data[48..]),
            Got::Incomplete
        );
        let mut quotes = Vec::new();
        r.expire(at_ms(30_000), &mut |e| {
            quotes.push(e.first_fragment.is_some())
        });
        assert_eq!(quotes, [false]);
    }

    #[test]
    fn every_kind_of_overlap_drops_the_datagram() {
        let data = payload(4096, 8);
        // (held, new): a fragment running into the next one, one covering a
        // held one, one inside a held one, same start but longer, and same
        // bytes under other bounds (still an overlap: RFC 5722 has no
        // exception for it, and it is how IDS-evasion splits data).
        let cases: [((usize, usize), (usize, usize)); 5] = [
            ((1480, 1480), (0, 1488)),
            ((8, 8), (0, 24)),
            ((0, 1480), (512, 8)),
            ((0, 1480), (0, 1488)),
            ((0, 1480), (1472, 16)),
        ];
        for ((held_off, held_len), (off, len)) in cases {
            let mut r = Reassembler::new(ReassemblyConfig::default());
            let held = &data[held_off..held_off + held_len];
            assert_eq!(
                add(&mut r, at_ms(0), 1, held_off, true, held),
                Got::Incomplete
            );
            assert_eq!(
                add(&mut r, at_ms(0), 1, off, true, &data[off..off + len]),
                Got::Dropped(FragDrop::Overlap),
                "held {held_off}+{held_len}, new {off}+{len}"
            );
            assert_eq!(r.datagrams_in_progress(), 0);
            assert_eq!(r.bytes_held(), 0);
        }
    }

    #[test]
    fn adjacent_fragments_do_not_overlap() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(24, 9);
        add(&mut r, at_ms(0), 1, 16, false, &data[16..]);
        add(&mut r, at_ms(0), 1, 0, true, &data[..8]);
        assert_payload(add(&mut r, at_ms(0), 1, 8, true, &data[8..16]), &data);
    }

    #[test]
    fn tiny_fragments_hit_max_fragments_and_drop_the_datagram() {
        // The tiny-fragment attack: 8-byte pieces, each its own fragment.
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(1024, 10);
        for i in 0..64 {
            let off = i * 8;
            let got = add(&mut r, at_ms(0), 1, off, true, &data[off..off + 8]);
            assert_eq!(got, Got::Incomplete, "piece {i}");
        }
        // Duplicates take no slot.
        assert_eq!(
            add(&mut r, at_ms(0), 1, 0, true, &data[..8]),
            Got::Incomplete
        );
        assert_eq!(
            add(&mut r, at_ms(0), 1, 512, true, &data[512..520]),
            Got::Dropped(FragDrop::TooManyFragments)
        );
        assert_eq!(r.datagrams_in_progress(), 0);
        assert_eq!(r.bytes_held(), 0);
        assert_eq!(r.stats().dropped_too_many_fragments, 1);
    }

    #[test]
    fn a_far_fragment_costs_only_its_own_bytes() {
        // Memory follows what arrived, not what the offsets claim.
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(8, 11);
        assert_eq!(
            add(&mut r, at_ms(0), 1, 65_000, false, &data),
            Got::Incomplete
        );
        assert_eq!(
            add(&mut r, at_ms(0), 2, 64_992, true, &data),
            Got::Incomplete
        );
        assert_eq!(r.bytes_held(), 16);
    }

    #[test]
    fn flood_of_idents_hits_max_datagrams_then_timeouts_free_everything() {
        let config = ReassemblyConfig::default();
        let mut r = Reassembler::new(config.clone());
        let data = payload(1480, 12);
        for ident in 0..64 {
            let now = at_ms(ident.into());
            assert_eq!(add(&mut r, now, ident, 0, true, &data), Got::Incomplete);
        }
        assert_eq!(
            add(&mut r, at_ms(100), 64, 0, true, &data),
            Got::Dropped(FragDrop::TooManyDatagrams)
        );
        // Existing work is kept and can still make progress.
        assert_eq!(
            add(&mut r, at_ms(100), 5, 1480, true, &data),
            Got::Incomplete
        );
        assert_eq!(r.datagrams_in_progress(), 64);
        assert_eq!(r.stats().dropped_too_many_datagrams, 1);
        assert_eq!(r.next_deadline(), Some(at_ms(0) + config.timeout));

        let mut expired = Vec::new();
        r.expire(at_ms(30_031), &mut |e| expired.push(e.key.ident));
        assert_eq!(expired, (0..32).collect::<Vec<_>>(), "earliest first");
        assert_eq!(r.next_deadline(), Some(at_ms(32) + config.timeout));
        r.expire(at_ms(40_000), &mut |e| expired.push(e.key.ident));
        assert_eq!(expired, (0..64).collect::<Vec<_>>());
        check_invariants(&r);
        assert_eq!(r.datagrams_in_progress(), 0);
        assert_eq!(r.bytes_held(), 0);
        assert_eq!(r.next_deadline(), None);
        assert_eq!(r.stats().timeouts, 64);
        // There is room again.
        assert_eq!(
            add(&mut r, at_ms(40_000), 64, 0, true, &data),
            Got::Incomplete
        );
    }

    #[test]
    fn flood_of_idents_hits_max_bytes_then_timeouts_free_everything() {
        let config = ReassemblyConfig {
            max_bytes: 10_000,
            ..ReassemblyConfig::default()
        };
        let mut r = Reassembler::new(config);
        let data = payload(1480, 13);
        for ident in 0..6 {
            assert_eq!(
                add(&mut r, at_ms(0), ident, 0, true, &data),
                Got::Incomplete
            );
        }
        assert_eq!(r.bytes_held(), 6 * 1480);
        assert_eq!(
            add(&mut r, at_ms(0), 6, 0, true, &data),
            Got::Dropped(FragDrop::TooManyBytes)
        );
        // Growing a datagram in progress is refused too, and it is kept.
        assert_eq!(
            add(&mut r, at_ms(0), 0, 1480, true, &data),
            Got::Dropped(FragDrop::TooManyBytes)
        );
        assert_eq!(r.datagrams_in_progress(), 6);
        assert_eq!(r.bytes_held(), 6 * 1480);
        // A zero-length last fragment needs no bytes.
        assert_eq!(add(&mut r, at_ms(0), 7, 2960, false, &[]), Got::Incomplete);
        assert_eq!(r.stats().dropped_too_many_bytes, 2);

        let mut n = 0;
        r.expire(at_ms(30_000), &mut |_| n += 1);
        assert_eq!(n, 7);
        assert_eq!(r.datagrams_in_progress(), 0);
        assert_eq!(r.bytes_held(), 0);
    }

    #[test]
    fn timeout_fires_exactly_timeout_after_the_first_fragment() {
        // The timer is set once and never raised: RFC 791's "TIMER <-
        // MAX(TIMER,TTL)" would let a trickle of fragments hold memory for up
        // to "the maximum time to live (approximately 4.25 minutes)".
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(1480, 14);
        let first = Instant::from_micros(1_234_567);
        add(&mut r, first, 1, 0, true, &data);
        add(
            &mut r,
            first + Duration::from_secs(29),
            1,
            1480,
            true,
            &data,
        );
        let deadline = first + Duration::from_secs(30);
        assert_eq!(r.next_deadline(), Some(deadline));

        let mut n = 0;
        r.expire(deadline - Duration::from_micros(1), &mut |_| n += 1);
        assert_eq!(n, 0);
        r.expire(deadline, &mut |_| n += 1);
        assert_eq!(n, 1);
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn time_going_backwards_is_harmless() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(8, 15);
        add(&mut r, at_ms(10_000), 1, 0, true, &data);
        add(&mut r, at_ms(5_000), 2, 0, true, &data);
        let mut order = Vec::new();
        r.expire(at_ms(0), &mut |e| order.push(e.key.ident));
        assert!(order.is_empty());
        r.expire(at_ms(40_000), &mut |e| order.push(e.key.ident));
        assert_eq!(order, [2, 1], "deadline order, not arrival order");
    }

    #[test]
    fn timeout_quotes_the_first_fragment_only_if_it_arrived() {
        // RFC 792: "If fragment zero is not available then no time exceeded
        // need be sent at all."
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(3000, 16);
        // Ident 1 has fragment zero, ident 2 does not, ident 3 has it with an
        // over-long header, ident 4 has a fragment zero shorter than 64 bytes.
        add(&mut r, at_ms(0), 1, 0, true, &data[..1480]);
        add(&mut r, at_ms(0), 2, 1480, true, &data[1480..2960]);
        let long_header = [0x4f; 80];
        let got = r.add(at_ms(0), key(3), 0, true, &data[..1480], &long_header);
        assert_eq!(got, FragOutcome::Incomplete);
        add(&mut r, at_ms(0), 4, 0, true, &data[..16]);
        add(&mut r, at_ms(0), 4, 32, false, &data[32..40]);

        let mut seen = Vec::new();
        r.expire(at_ms(30_000), &mut |e| {
            seen.push((e.key, e.first_fragment.map(<[u8]>::to_vec)));
        });
        let mut quote1 = HEADER.to_vec();
        quote1.extend_from_slice(&data[..64]);
        let mut quote3 = long_header[..60].to_vec();
        quote3.extend_from_slice(&data[..64]);
        let mut quote4 = HEADER.to_vec();
        quote4.extend_from_slice(&data[..16]);
        assert_eq!(
            seen,
            [
                (key(1), Some(quote1)),
                (key(2), None),
                (key(3), Some(quote3)),
                (key(4), Some(quote4)),
            ]
        );
        assert_eq!(r.stats().timeouts, 4);
    }

    #[test]
    fn ping_of_death_fragment_is_too_big() {
        // RFC 791: Total Length "allows the length of a datagram to be up to
        // 65,535 octets", so no payload byte lies at or past 65 515.
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(100, 17);
        assert_eq!(
            add(&mut r, at_ms(0), 1, 65_528, false, &data),
            Got::Dropped(FragDrop::TooBig)
        );
        assert_eq!(
            add(&mut r, at_ms(0), 1, 65_512, true, &data[..8]),
            Got::Dropped(FragDrop::TooBig)
        );
        assert_eq!(
            add(&mut r, at_ms(0), 1, usize::MAX, false, &data[..1]),
            Got::Dropped(FragDrop::TooBig)
        );
        assert_eq!(
            add(&mut r, at_ms(0), 1, 65_516, false, &[]),
            Got::Dropped(FragDrop::TooBig)
        );
        assert_eq!(r.stats().dropped_too_big, 4);
        assert_eq!(r.datagrams_in_progress(), 0);
        // Exactly at the limit is fine.
        assert_eq!(
            add(&mut r, at_ms(0), 1, 65_512, false, &data[..3]),
            Got::Incomplete
        );
    }

    #[test]
    fn non_last_fragments_must_be_whole_8_byte_blocks() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(16, 18);
        assert_eq!(
            add(&mut r, at_ms(0), 1, 0, true, &data[..12]),
            Got::Dropped(FragDrop::BadLength)
        );
        assert_eq!(
            add(&mut r, at_ms(0), 1, 8, true, &[]),
            Got::Dropped(FragDrop::BadLength)
        );
        assert_eq!(r.datagrams_in_progress(), 0, "junk allocates nothing");
        assert_eq!(r.stats().dropped_bad_length, 2);
    }

    #[test]
    fn last_fragments_must_agree_on_the_end() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(3000, 19);
        add(&mut r, at_ms(0), 1, 1480, false, &data[1480..2000]);
        let held = r.bytes_held();
        // Second last fragments with another end. (One with other bounds
        // over held data would be an Overlap, and drop everything.)
        assert_eq!(
            add(&mut r, at_ms(0), 1, 1992, false, &[]),
            Got::Dropped(FragDrop::BadLength)
        );
        assert_eq!(
            add(&mut r, at_ms(0), 1, 2000, false, &data[2000..2008]),
            Got::Dropped(FragDrop::BadLength)
        );
        // Data past the known end.
        assert_eq!(
            add(&mut r, at_ms(0), 1, 2000, true, &data[2000..2008]),
            Got::Dropped(FragDrop::BadLength)
        );
        // Only the fragment is dropped: the datagram still completes.
        assert_eq!(r.bytes_held(), held);
        assert_payload(
            add(&mut r, at_ms(0), 1, 0, true, &data[..1480]),
            &data[..2000],
        );
    }

    #[test]
    fn last_fragment_must_not_end_before_data_already_held() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(3000, 20);
        add(&mut r, at_ms(0), 1, 1480, true, &data[1480..2960]);
        assert_eq!(
            add(&mut r, at_ms(0), 1, 8, false, &data[8..16]),
            Got::Dropped(FragDrop::BadLength)
        );
        // A zero-length last fragment inside held data, too.
        assert_eq!(
            add(&mut r, at_ms(0), 1, 2000, false, &[]),
            Got::Dropped(FragDrop::BadLength)
        );
        assert_eq!(r.datagrams_in_progress(), 1);
    }

    #[test]
    fn zero_length_last_fragment_completes_the_datagram() {
        let data = payload(2960, 21);
        // Last, or first.
        for zero_first in [false, true] {
            let mut r = Reassembler::new(ReassemblyConfig::default());
            if zero_first {
                assert_eq!(add(&mut r, at_ms(0), 1, 2960, false, &[]), Got::Incomplete);
                assert_eq!(r.datagrams_in_progress(), 1);
                assert_eq!(r.bytes_held(), 0);
            }
            add(&mut r, at_ms(0), 1, 1480, true, &data[1480..]);
            let got = add(&mut r, at_ms(0), 1, 0, true, &data[..1480]);
            if zero_first {
                assert_payload(got, &data);
            } else {
                assert_eq!(got, Got::Incomplete);
                assert_payload(add(&mut r, at_ms(0), 1, 2960, false, &[]), &data);
            }
            assert_eq!(r.bytes_held(), 0);
        }
    }

    #[test]
    fn a_duplicate_may_be_the_first_to_say_it_is_last() {
        // Same offset, length and bytes, only MF differs: the bytes are a
        // duplicate, and the end it gives agrees with everything held.
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(16, 22);
        add(&mut r, at_ms(0), 1, 8, true, &data[8..]);
        assert_eq!(
            add(&mut r, at_ms(0), 1, 8, false, &data[8..]),
            Got::Incomplete
        );
        assert_payload(add(&mut r, at_ms(0), 1, 0, true, &data[..8]), &data);
    }

    #[test]
    fn an_unfragmented_datagram_is_complete_and_flushes_stale_reassembly() {
        // RFC 791 §3.2: "IF FO = 0 AND MF = 0 THEN IF buffer with BUFID is
        // allocated THEN flush all reassembly for this BUFID; Submit datagram
        // to next step; DONE."
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(3000, 23);
        add(&mut r, at_ms(0), 1, 1480, true, &data[1480..2960]);
        assert_payload(
            add(&mut r, at_ms(0), 1, 0, false, &data[..100]),
            &data[..100],
        );
        assert_eq!(r.datagrams_in_progress(), 0);
        assert_eq!(r.bytes_held(), 0);
        assert_eq!(r.next_deadline(), None);
        assert_payload(add(&mut r, at_ms(0), 2, 0, false, &[]), &[]);
        assert_eq!(r.stats().reassembled, 2);
    }

    #[test]
    fn zero_limits_refuse_everything_gracefully() {
        let data = payload(8, 24);
        let configs = [
            (
                ReassemblyConfig {
                    max_datagrams: 0,
                    ..ReassemblyConfig::default()
                },
                FragDrop::TooManyDatagrams,
            ),
            (
                ReassemblyConfig {
                    max_fragments_per_datagram: 0,
                    ..ReassemblyConfig::default()
                },
                FragDrop::TooManyFragments,
            ),
            (
                ReassemblyConfig {
                    max_bytes: 0,
                    ..ReassemblyConfig::default()
                },
                FragDrop::TooManyBytes,
            ),
        ];
        for (config, why) in configs {
            let mut r = Reassembler::new(config);
            assert_eq!(add(&mut r, at_ms(0), 1, 8, true, &data), Got::Dropped(why));
            assert_eq!(r.datagrams_in_progress(), 0);
        }
        // A zero timeout expires at the instant of arrival.
        let mut r = Reassembler::new(ReassemblyConfig {
            timeout: Duration::ZERO,
            ..ReassemblyConfig::default()
        });
        add(&mut r, at_ms(7), 1, 8, true, &data);
        let mut n = 0;
        r.expire(at_ms(7), &mut |_| n += 1);
        assert_eq!(n, 1);
    }

    #[test]
    fn drop_reasons_have_counter_names() {
        let all = [
            (FragDrop::Overlap, "overlap", true),
            (FragDrop::TooBig, "too_big", false),
            (FragDrop::BadLength, "bad_length", false),
            (FragDrop::TooManyFragments, "too_many_fragments", true),
            (FragDrop::TooManyDatagrams, "too_many_datagrams", false),
            (FragDrop::TooManyBytes, "too_many_bytes", false),
        ];
        for (why, name, whole) in all {
            assert_eq!(why.as_str(), name);
            assert_eq!(why.drops_datagram(), whole);
        }
    }

    #[test]
    fn random_fragments_never_panic_or_exceed_limits() {
        let config = ReassemblyConfig {
            timeout: Duration::from_millis(500),
            max_datagrams: 16,
            max_fragments_per_datagram: 16,
            max_bytes: 96 * 1024,
        };
        let mut r = Reassembler::new(config.clone());
        let mut rng = XorShift(0x005E_ED0F_F4A6);
        let truth = payload(MAX_PAYLOAD + 4096, 25);
        let mut corrupt = Vec::new();
        let mut now: i64 = 0;
        let mut completions = 0;
        for i in 0..100_000u32 {
            now += rng.below(2_000) as i64;
            if rng.below(1_000) == 0 {
                now -= 1_000_000; // clocks handed in may step back
            }
            let ident = rng.below(24) as u16;
            let (offset, len, more) = if rng.below(2) == 0 {
                // A piece of a plausible datagram of this ident, cut in one
                // of two sizes, so that completion and overlap both happen.
                let total = 1 + (usize::from(ident) * 7_919) % 20_000;
                // Mostly one cut per ident; a third use 512-byte pieces,
                // more than max_fragments of them.
                let small = ident.is_multiple_of(3) != (rng.below(16) == 0);
                let size = if small { 512 } else { 1480 };
                let frags = cut(total, size);
                frags[rng.below(frags.len() as u64) as usize]
            } else {
                let offset = match rng.below(10) {
                    0 => rng.next() as usize,
                    1 => rng.below(70_000) as usize,
                    _ => rng.below(70_000 / 8) as usize * 8,
                };
                let len = match rng.below(4) {
                    0 => 0,
                    1 => rng.below(3_000) as usize,
                    2 => rng.below(200) as usize * 8,
                    _ => 8,
                };
                (offset, len, rng.below(3) != 0)
            };
            let start = if offset <= MAX_PAYLOAD { offset } else { 0 };
            let mut data = &truth[start..start + len];
            if len > 0 && rng.below(20) == 0 {
                corrupt.clear();
                corrupt.extend_from_slice(data);
                let at = rng.below(len as u64) as usize;
                corrupt[at] ^= 0x80;
                data = &corrupt;
            }
            let header = &truth[..rng.below(100) as usize];
            let now = Instant::from_micros(now);
            match r.add(now, key(ident), offset, more, data, header) {
                FragOutcome::Complete(p) => {
                    assert!(p.len() <= MAX_PAYLOAD);
                    completions += 1;
                }
                FragOutcome::Incomplete | FragOutcome::Dropped(_) => {}
            }
            check_invariants(&r);
            if i % 64 == 0 {
                r.expire(now, &mut |e| {
                    if let Some(quote) = e.first_fragment {
                        assert!(quote.len() <= QUOTE_MAX);
                    }
                });
                check_invariants(&r);
            }
        }
        assert_eq!(r.stats().fragments, 100_000);
        assert!(completions > 100, "only {completions} completions");
        let s = r.stats();
        for (name, n) in [
            ("overlap", s.dropped_overlap),
            ("too_big", s.dropped_too_big),
            ("bad_length", s.dropped_bad_length),
            ("too_many_fragments", s.dropped_too_many_fragments),
            ("too_many_datagrams", s.dropped_too_many_datagrams),
            ("too_many_bytes", s.dropped_too_many_bytes),
            ("timeouts", s.timeouts),
            ("duplicates", s.duplicates),
        ] {
            assert!(n > 0, "the test never exercised {name}");
        }
        r.expire(Instant::from_micros(i64::MAX), &mut |_| {});
        assert_eq!(r.bytes_held(), 0);
        assert_eq!(r.datagrams_in_progress(), 0);
    }

    #[test]
    fn random_traffic_only_ever_delivers_the_true_payload() {
        // Fragments of eight datagrams, cut two ways, duplicated, reordered
        // and lost: whatever completes must be byte for byte what was sent.
        let mut r = Reassembler::new(ReassemblyConfig {
            timeout: Duration::from_millis(400),
            ..ReassemblyConfig::default()
        });
        let mut rng = XorShift(0xC0FF_EE00_1234);
        let totals: Vec<usize> = (0..8usize).map(|i| 1 + (i * 9_973) % 30_000).collect();
        let truths: Vec<Vec<u8>> = totals
            .iter()
            .zip(100..)
            .map(|(&t, seed)| payload(t, seed))
            .collect();
        let mut completions = 0;
        for i in 0..30_000i64 {
            let ident = rng.below(8) as usize;
            let size = if rng.below(16) == 0 { 1024 } else { 1480 };
            let frags = cut(totals[ident], size);
            let (off, len, more) = frags[rng.below(frags.len() as u64) as usize];
            let data = &truths[ident][off..off + len];
            let now = at_ms(i);
            if let FragOutcome::Complete(p) =
                r.add(now, key(ident as u16), off, more, data, &HEADER)
            {
                assert!(
                    p == &truths[ident][..],
                    "ident {ident} delivered wrong bytes"
                );
                completions += 1;
            }
            check_invariants(&r);
            r.expire(now, &mut |_| {});
        }
        assert!(completions > 200, "only {completions} completions");
        assert!(r.stats().dropped_overlap > 0);
    }
}
