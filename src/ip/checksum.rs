//! The internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Every layer calls these two or three functions, so they are written for
//! speed: the sum adds native-endian 32-bit words into 64-bit accumulators
//! (vectorised by the compiler), folds once and byte-swaps once at the end. RFC 1071 §2(B) makes that legal: the
//! ones'-complement sum is independent of byte order.

use core::net::Ipv4Addr;

#[inline]
fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    let mut s = (acc & 0xffff) + (acc >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// The 16-bit ones'-complement sum of `data` (not complemented), as a value in
/// host order whose big-endian bytes are the wire bytes.
///
/// When combining sums of several pieces, only the last piece may have an odd
/// length.
pub fn sum(data: &[u8]) -> u16 {
    // 32-bit words widened into 64-bit accumulators: no carry can be lost
    // before 2^32 words, far beyond any IPv4 datagram, and the loop has no
    // dependency on a carry flag, so the compiler vectorises it.
    let mut chunks = data.chunks_exact(16);
    let (mut a, mut b, mut c, mut d) = (0u64, 0u64, 0u64, 0u64);
    for ch in &mut chunks {
        a += u32::from_ne_bytes([ch[0], ch[1], ch[2], ch[3]]) as u64;
        b += u32::from_ne_bytes([ch[4], ch[5], ch[6], ch[7]]) as u64;
        c += u32::from_ne_bytes([ch[8], ch[9], ch[10], ch[11]]) as u64;
        d += u32::from_ne_bytes([ch[12], ch[13], ch[14], ch[15]]) as u64;
    }
    let mut acc = a + b + c + d;
    let mut rest = chunks.remainder();
    while rest.len() >= 4 {
        acc += u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as u64;
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        acc += u16::from_ne_bytes([rest[0], rest[1]]) as u64;
        rest = &rest[2..];
    }
    if let Some(&b) = rest.first() {
        // An odd final byte is the high half of a zero-padded word.
        acc += u16::from_ne_bytes([b, 0]) as u64;
    }
    u16::from_be(fold(acc))
}

/// Ones'-complement addition of two partial sums.
#[inline]
pub fn add(a: u16, b: u16) -> u16 {
    let s = a as u32 + b as u32;
    ((s & 0xffff) + (s >> 16)) as u16
}

/// Ones'-complement sum of several partial sums.
pub fn combine(parts: &[u16]) -> u16 {
    parts.iter().fold(0, |acc, &p| add(acc, p))
}

/// The checksum to put on the wire: the complement of the sum of `data`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// Sum of the IPv4 pseudo-header used by UDP and TCP (RFC 768, RFC 9293 §3.1).
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u16 {
    let s = src.octets();
    let d = dst.octets();
    combine(&[
        u16::from_be_bytes([s[0], s[1]]),
        u16::from_be_bytes([s[2], s[3]]),
        u16::from_be_bytes([d[0], d[1]]),
        u16::from_be_bytes([d[2], d[3]]),
        protocol as u16,
        length,
    ])
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit field changed from `old`
/// to `new`, `HC' = ~(~HC + ~m + m')`. Unlike eqn. 2 it never yields 0x0000
/// from a non-zero sum, which is the case RFC 1624 §3 warns about.
#[inline]
pub fn update(checksum: u16, old: u16, new: u16) -> u16 {
    !combine(&[!checksum, !old, new])
}

/// [`update`] for a 32-bit field (an IPv4 address).
#[inline]
pub fn update32(checksum: u16, old: u32, new: u32) -> u16 {
    let c = update(checksum, (old >> 16) as u16, (new >> 16) as u16);
    update(c, old as u16, new as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte-at-a-time reference straight from RFC 1071 §4.1.
    fn reference(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for c in data.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            s += w as u32;
        }
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 numerical example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        assert_eq!(
            sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn matches_reference_at_every_length_and_alignment() {
        let mut x: u32 = 0x1234_5678;
        let buf: Vec<u8> = (0..2100)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for off in 0..8 {
            for len in (0..200).chain([1499, 1500, 2048, 2091]) {
                let d = &buf[off..off + len];
                assert_eq!(sum(d), reference(d), "off {off} len {len}");
            }
        }
        assert_eq!(sum(&[0xff; 4096]), 0xffff);
    }

    #[test]
    fn known_ipv4_header_verifies() {
        // A real header (wikipedia's example); its checksum field is b861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0);
        let mut z = h;
        z[10] = 0;
        z[11] = 0;
        assert_eq!(checksum(&z), 0xb861);
    }

    #[test]
    fn incremental_update_equals_recompute() {
        let mut h = [
            0x45u8, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0x00,
            0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let c = checksum(&h);
        // Decrement TTL as a router does.
        let old = u16::from_be_bytes([h[8], h[9]]);
        h[8] -= 1;
        let new = u16::from_be_bytes([h[8], h[9]]);
        assert_eq!(update(c, old, new), checksum(&h));
        // Rewrite the source address as SNAT does.
        let old32 = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
        h[12..16].copy_from_slice(&[198, 18, 0, 2]);
        let new32 = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
        assert_eq!(
            update32(
                checksum(&{
                    let mut t = h;
                    t[12..16].copy_from_slice(&old32.to_be_bytes());
                    t
                }),
                old32,
                new32
            ),
            checksum(&h)
        );
    }
}
