//! The internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Every layer calls these two or three functions, so they are written for
//! speed: the sum adds native-endian 32-bit words into 64-bit accumulators
//! (vectorised by the compiler, or with AVX2 intrinsics where the CPU has
//! them), folds once and byte-swaps once at the end. RFC 1071 §2(B) makes
//! that legal: the ones'-complement sum is independent of byte order.

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
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    // Payloads are where the bytes are: on x86-64 CPUs with AVX2 the same
    // loop, compiled for 256-bit vectors, does twice the bytes per
    // instruction of the SSE2 baseline every x86-64 build targets. Headers
    // are too short for the wider loop to pay for the feature test.
    #[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
    if data.len() >= 128 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU was just found to support AVX2, the only
        // requirement `sum_avx2` adds to a safe function.
        #[allow(unsafe_code)]
        return unsafe { sum_avx2(data) };
    }
    sum_words(data)
}

/// 128-byte blocks [`sum`] takes before the AVX2 loop empties its 32-bit
/// lanes: each lane gains at most 65 536 in magnitude per block, so 2^12
/// blocks keep it within ±2^28, and the four accumulators' lanes added
/// together within ±2^30, clear of the i32 range.
#[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
const AVX2_BATCH: usize = 1 << 12;

/// [`sum`] with 256-bit vectors. `vpmaddwd` against ones adds each pair of
/// 16-bit words into a 32-bit lane in one instruction, one 32-byte load
/// feeding it; it multiplies signed words, so every word is first moved
/// into the signed range (xor 0x8000 turns `w` into `w - 32768`) and the
/// 32 768 per word is added back at the end. Four accumulators keep the
/// adds independent. This replaced widening 32-bit words into 64-bit lanes
/// (`vpmovzxdq`), which spends a shuffle per 16 bytes and measured 14 %
/// slower on 1460 bytes and 28 % on 8960 (Zen 3). Written with intrinsics
/// because the compiler does not find this from the portable loop.
#[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
#[target_feature(enable = "avx2")]
fn sum_avx2(data: &[u8]) -> u16 {
    // SAFETY: without COPY the destination is never touched.
    #[allow(unsafe_code)]
    unsafe {
        sum_copy_avx2::<false>(data, core::ptr::null_mut())
    }
}

/// 32 bytes from offset `n` keep the last `n` bytes of a vector.
#[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
static TAIL_MASK: [u8; 64] = {
    let mut m = [0u8; 64];
    let mut i = 32;
    while i < 64 {
        m[i] = 0xff;
        i += 1;
    }
    m
};

/// The AVX2 loop of [`sum`] and, with `COPY`, of [`copy_and_sum`]: every
/// 32-byte vector loaded for the sum is also stored to the same offset from
/// `to`, so the bytes are read once for both. A const parameter rather than
/// an `Option`, so the loop without the copy has no test in it.
///
/// A 1460-byte copy costs 392 instructions (callgrind), 11 blocks of 24
/// and the tail; the loop as iterator, batch counter, intrinsic stores and
/// a portable tail took 449.
///
/// # Safety
/// With `COPY`, `to` must be valid for writes of `data.len()` bytes that
/// do not overlap `data`.
#[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
unsafe fn sum_copy_avx2<const COPY: bool>(data: &[u8], to: *mut u8) -> u16 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi32, _mm256_add_epi64, _mm256_and_si256, _mm256_castsi256_si128,
        _mm256_cvtepi32_epi64, _mm256_extracti128_si256, _mm256_loadu_si256, _mm256_madd_epi16,
        _mm256_set1_epi16, _mm256_setzero_si256, _mm256_storeu_si256, _mm256_xor_si256,
        _mm_add_epi64, _mm_cvtsi128_si64, _mm_unpackhi_epi64,
    };
    let bias = _mm256_set1_epi16(i16::MIN);
    let ones = _mm256_set1_epi16(1);
    let pairs = |w: __m256i| _mm256_madd_epi16(_mm256_xor_si256(w, bias), ones);
    // The signed sum of all lanes, widened to 64 bits so the lanes can
    // start again from zero.
    let drain = |acc: &mut [__m256i; 4]| -> i64 {
        let v = _mm256_add_epi32(
            _mm256_add_epi32(acc[0], acc[1]),
            _mm256_add_epi32(acc[2], acc[3]),
        );
        *acc = [_mm256_setzero_si256(); 4];
        // Each lane of `v` is within ±2^30 (see AVX2_BATCH); the eight
        // together might not be, so they are widened before adding.
        let v = _mm256_add_epi64(
            _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)),
            _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(v)),
        );
        let v = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        _mm_cvtsi128_si64(_mm_add_epi64(v, _mm_unpackhi_epi64(v, v)))
    };
    // The first 32 bytes of `b`, which starts `at` bytes into `data`,
    // copied to `to + at` with COPY.
    let load = |b: &[u8], at: usize| {
        let b = &b[..32];
        // SAFETY: `b` has 32 readable bytes; the load has no alignment
        // requirement.
        let v = unsafe { _mm256_loadu_si256(b.as_ptr().cast::<__m256i>()) };
        if COPY {
            // SAFETY: `at + 32 <= data.len()` (`b` has 32 bytes, `at`
            // into `data`), the bytes the caller
            // vouched `to` can take; no alignment requirement.
            unsafe { _mm256_storeu_si256(to.add(at).cast::<__m256i>(), v) };
        }
        v
    };
    let mut acc = [_mm256_setzero_si256(); 4];
    let mut total: i64 = 0;
    let blocks = data.len() / 128;
    let mut b = 0;
    // One counter per block, not an iterator and a batch count beside it:
    // the loop's overhead is a tenth of its instructions.
    while b < blocks {
        let end = blocks.min(b + AVX2_BATCH);
        while b < end {
            let at = b * 128;
            // SAFETY: `at + 128 <= blocks * 128 <= data.len()`; no
            // alignment requirement.
            let v = unsafe {
                let p = data.as_ptr().add(at).cast::<__m256i>();
                [
                    _mm256_loadu_si256(p),
                    _mm256_loadu_si256(p.add(1)),
                    _mm256_loadu_si256(p.add(2)),
                    _mm256_loadu_si256(p.add(3)),
                ]
            };
            if COPY {
                // The stores in `asm!`, which the optimiser cannot see
                // into: as intrinsics it split them out of this loop into a
                // `memcpy` call, which reads the bytes a second time, the
                // very thing this function exists to avoid.
                // SAFETY: `at + 128 <= data.len()`, bytes the caller
                // vouched `to` can take; `vmovdqu` needs no alignment and
                // the CPU has AVX (this function's target feature).
                unsafe {
                    core::arch::asm!(
                        "vmovdqu ymmword ptr [{p}], {a}",
                        "vmovdqu ymmword ptr [{p} + 32], {b}",
                        "vmovdqu ymmword ptr [{p} + 64], {c}",
                        "vmovdqu ymmword ptr [{p} + 96], {d}",
                        p = in(reg) to.add(at),
                        a = in(ymm_reg) v[0],
                        b = in(ymm_reg) v[1],
                        c = in(ymm_reg) v[2],
                        d = in(ymm_reg) v[3],
                        options(nostack, preserves_flags),
                    );
                }
            }
            for (a, v) in acc.iter_mut().zip(v) {
                *a = _mm256_add_epi32(*a, pairs(v));
            }
            b += 1;
        }
        if b < blocks {
            total += drain(&mut acc);
        }
    }
    let mut at = blocks * 128;
    // Up to three 32-byte steps, one per accumulator, before the bytes
    // left go to the masked tail vector or, for odd lengths, the portable
    // loop.
    for a in acc.iter_mut() {
        if data.len() - at < 32 {
            break;
        }
        *a = _mm256_add_epi32(*a, pairs(load(&data[at..], at)));
        at += 32;
    }
    let mut extra_words = 0;
    let tail = data.len() - at;
    if tail > 0 && data.len() >= 32 && data.len().is_multiple_of(2) {
        // The last 1 to 31 bytes as one vector: the 32 bytes that end the
        // data, with the lanes already summed masked to zero. Its 16-bit
        // lanes line up with the words because the data's length (so the
        // vector's offset) is even. The copy stores those lanes again, with
        // the same bytes. For a 1460-byte segment this replaces the
        // portable loop and a `memcpy` call for the last 20 bytes.
        let from = data.len() - 32;
        let v = load(&data[from..], from);
        // SAFETY: `tail < 32`, so `tail..tail + 32` lies in the 64 bytes.
        let keep = unsafe { _mm256_loadu_si256(TAIL_MASK[tail..].as_ptr().cast::<__m256i>()) };
        acc[0] = _mm256_add_epi32(acc[0], pairs(_mm256_and_si256(v, keep)));
        // `pairs` counts a masked lane, a zero word, as -32 768 too: the
        // 16 - tail / 2 of them are added back with the data's words.
        extra_words = 16 - (tail / 2) as i64;
        at = data.len();
    }
    total += drain(&mut acc);
    let summed_words = (at / 2) as i64 + extra_words;
    // The true sum of the unsigned words, so not negative.
    let sum = (total + summed_words * 32_768) as u64;
    let rest = &data[at..];
    if rest.is_empty() {
        return finish(sum);
    }
    if COPY {
        // SAFETY: the last `rest.len()` bytes of the `data.len()` the caller
        // vouched for.
        unsafe { core::ptr::copy_nonoverlapping(rest.as_ptr(), to.add(at), rest.len()) };
    }
    finish(sum + words(rest))
}

/// Copies `src` to the start of `dst` and returns [`sum`] of `src`, reading
/// the bytes once for both where the CPU has AVX2 (a separate copy and sum
/// read them twice). Panics if `dst` is shorter than `src`.
#[inline]
pub fn copy_and_sum(dst: &mut [u8], src: &[u8]) -> u16 {
    #[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
    if src.len() >= 128 && std::arch::is_x86_feature_detected!("avx2") {
        let dst = &mut dst[..src.len()];
        // SAFETY: the CPU was just found to support AVX2, and `dst` is a
        // distinct (`&mut`) slice of `src.len()` bytes.
        #[allow(unsafe_code)]
        return unsafe { sum_copy_avx2::<true>(src, dst.as_mut_ptr()) };
    }
    dst[..src.len()].copy_from_slice(src);
    sum(src)
}

#[inline(always)]
fn sum_words(data: &[u8]) -> u16 {
    finish(words(data))
}

#[inline(always)]
fn finish(acc: u64) -> u16 {
    u16::from_be(fold(acc))
}

/// The native-endian sum of `data`'s 32-bit words (and a trailing 16-bit
/// word and odd byte), unfolded.
#[inline(always)]
fn words(data: &[u8]) -> u64 {
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
    acc
}

/// The sum of big-endian 32-bit words given as host integers, for headers
/// built in registers: a word's two 16-bit halves add to the word itself
/// modulo 0xffff, so the words are added whole and folded once.
/// Always inlined, so the words stay in the registers they were built in:
/// an out-of-line call read them back from memory with one 16-byte load
/// over four 4-byte stores, the very stall it is there to avoid.
#[inline(always)]
pub fn sum_be32<const N: usize>(words: &[u32; N]) -> u16 {
    fold(words.iter().map(|&w| u64::from(w)).sum())
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
    // Every segment sent and received takes this sum: the six words are
    // added unfolded and folded once, rather than one carry fold each.
    let (s, d) = (u32::from(src), u32::from(dst));
    let acc = u64::from(s >> 16)
        + u64::from(s & 0xffff)
        + u64::from(d >> 16)
        + u64::from(d & 0xffff)
        + u64::from(protocol)
        + u64::from(length);
    fold(acc)
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
    fn words_summed_whole_match_the_bytes_they_are_written_as() {
        // Carries out of both halves and across the fold, and the all-ones
        // word whose halves sum to the negative zero 0xffff.
        let check = |words: &[u32], sum_words: u16| {
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            assert_eq!(sum_words, sum(&bytes), "{words:x?}");
        };
        let ip = [
            0x4500_05dc,
            0x1c46_4000,
            0x4006_0000,
            0xc612_0001,
            0xc612_0002,
        ];
        check(&ip, sum_be32(&ip));
        let carries = [0xffff_ffff, 0xffff_0001, 0x0001_ffff];
        check(&carries, sum_be32(&carries));
        let many = [0x8000_8000; 7];
        check(&many, sum_be32(&many));
        check(&[], sum_be32(&[]));
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 numerical example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        assert_eq!(
            sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    /// The AVX2 loop and the portable one agree on long inputs of every
    /// tail length, including all-ones words that carry on every add.
    #[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
    #[test]
    fn avx2_loop_matches_the_portable_one() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            println!("skipping: this CPU has no AVX2, so sum() never takes that loop");
            return;
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let buf: Vec<u8> = (0..70_004)
            .map(|_| {
                x ^= x << 7;
                x ^= x >> 9;
                x as u8
            })
            .collect();
        let ones = vec![0xffu8; 70_004];
        let zeros = vec![0u8; 70_004];
        for data in [&buf[..], &ones[..], &zeros[..]] {
            for len in (128..400).chain([1460, 1480, 8960, 65_535, 65_536, 69_999]) {
                for off in [0, 1, 3] {
                    let d = &data[off..off + len];
                    // SAFETY: the CPU has AVX2, checked above.
                    #[allow(unsafe_code)]
                    let v = unsafe { sum_avx2(d) };
                    assert_eq!(v, sum_words(d), "off {off} len {len}");
                    assert_eq!(sum(d), reference(d), "off {off} len {len}");
                }
            }
        }
    }

    /// Past the point where the AVX2 loop empties its lanes, with the words
    /// that move them furthest either way (all ones and all zeros): a batch
    /// too long for the i32 lanes wraps them and this fails.
    #[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
    #[test]
    fn avx2_lanes_are_emptied_before_they_can_wrap() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            println!("skipping: this CPU has no AVX2, so sum() never takes that loop");
            return;
        }
        // Five batches and an odd tail; with AVX2_BATCH four times longer
        // the lanes wrap (verified by making it so).
        let len = 5 * AVX2_BATCH * 128 + 77;
        for byte in [0xffu8, 0x00, 0x80, 0x7f] {
            let d = vec![byte; len];
            // SAFETY: the CPU has AVX2, checked above.
            #[allow(unsafe_code)]
            let v = unsafe { sum_avx2(&d) };
            assert_eq!(v, sum_words(&d), "bytes {byte:#x}");
        }
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

    /// `copy_and_sum` leaves exactly `copy_from_slice` behind (every byte
    /// past the source's length untouched) and returns the RFC 1071 sum,
    /// at every length through the vector loop's block and step tails, at
    /// odd offsets on both sides, and across a lane drain.
    #[test]
    fn copy_and_sum_copies_exactly_and_sums_like_the_reference() {
        let mut x: u32 = 0x0bad_cafe;
        let mut buf: Vec<u8> = (0..9100)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let lens = (0..300).chain([1460, 1461, 8960, 8999]);
        for fill in [0x00u8, 0xff] {
            buf[5000..9000].fill(fill);
            for len in lens.clone() {
                for (so, dof) in [(0, 0), (1, 0), (0, 3), (3, 1)] {
                    let src = &buf[so..so + len];
                    let mut dst = vec![0x5au8; len + 40];
                    let s = copy_and_sum(&mut dst[dof..], src);
                    assert_eq!(s, reference(src), "len {len} src+{so} dst+{dof}");
                    assert_eq!(&dst[dof..dof + len], src, "len {len}");
                    assert!(dst[..dof].iter().all(|&b| b == 0x5a), "before, len {len}");
                    assert!(
                        dst[dof + len..].iter().all(|&b| b == 0x5a),
                        "after, len {len}"
                    );
                }
            }
        }
        let long = vec![0xffu8; 5 * (1 << 19) + 77];
        let mut dst = vec![0u8; long.len()];
        assert_eq!(copy_and_sum(&mut dst, &long), sum_words(&long));
        assert_eq!(dst, long);
    }

    #[test]
    #[should_panic(expected = "range end index")]
    fn copy_and_sum_refuses_a_short_destination() {
        let mut dst = [0u8; 200];
        copy_and_sum(&mut dst, &[1u8; 201]);
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

    /// The once-folded pseudo-header sum equals the word-by-word
    /// ones'-complement sum, including where every word carries.
    #[test]
    fn pseudo_header_matches_word_by_word_sum() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut cases = vec![(u32::MAX, u32::MAX, 255u8, u16::MAX), (0, 0, 0, 0)];
        cases.extend((0..10_000).map(|_| {
            let r = next();
            (r as u32, (r >> 32) as u32, next() as u8, next() as u16)
        }));
        for (s, d, p, l) in cases {
            let words = [
                (s >> 16) as u16,
                s as u16,
                (d >> 16) as u16,
                d as u16,
                p as u16,
                l,
            ];
            let (src, dst) = (Ipv4Addr::from(s), Ipv4Addr::from(d));
            assert_eq!(
                pseudo_header(src, dst, p, l),
                combine(&words),
                "{src} {dst} {p} {l}"
            );
        }
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
