//! Unmasking a server's text payload and checking it is UTF-8 in one pass.
//!
//! The unmasker copies large payloads into the receive buffer unmasking
//! them as it goes ([`super::unmask`]); checking text afterwards reads every
//! byte a second time. With AVX2 each 32-byte block is checked as it is
//! unmasked, while it is still in a register, by the lookup algorithm of
//! Keiser and Lemire ("Validating UTF-8 in less than one instruction per
//! byte", 2021; simdutf8, which the rest of the crate uses, runs the same).
//! Without AVX2 the copy reports whether the piece is all ASCII (an OR per
//! word), and only other text gets a second pass.

use bytes::BytesMut;

use super::mask::extend_masked_ascii;

/// Appends `src` to `buf` XORed with the masking `key`, where `src` starts
/// `offset` bytes into the frame payload (as `extend_masked`), and says
/// whether the appended bytes are valid UTF-8 on their own: whole
/// characters, none cut at either end.
pub(crate) fn extend_masked_text(
    buf: &mut BytesMut,
    src: &[u8],
    key: [u8; 4],
    offset: u64,
) -> bool {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if super::mask::has_avx2() {
        let key = super::mask::rotate_key(key, (offset % 4) as usize);
        // SAFETY: `copy_masked_utf8` needs AVX2, which `has_avx2` found,
        // and writes every element of `dst`, as `append_written` asks.
        // Tests below check the bytes and the verdict against the naive
        // unmasking and `core::str::from_utf8` for every length to 200 at
        // every key offset and several alignments, every two bytes across
        // the edges of the blocks, characters cut across runs of ASCII
        // blocks, and proptests.
        let valid = unsafe {
            super::mask::append_written(buf, src.len(), |dst| avx2::copy_masked_utf8(dst, src, key))
        };
        // `None` (no room, which `reserve` rules out) appended nothing:
        // the fallback below then does the work.
        if let Some(valid) = valid {
            return valid;
        }
    }
    let start = buf.len();
    extend_masked_ascii(buf, src, key, offset)
        || simdutf8::basic::from_utf8(buf.get(start..).unwrap_or_default()).is_ok()
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
mod avx2 {
    use core::arch::x86_64::{
        __m256i, _mm256_alignr_epi8, _mm256_and_si256, _mm256_loadu_si256, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_permute2x128_si256, _mm256_set1_epi32, _mm256_set1_epi8,
        _mm256_setzero_si256, _mm256_shuffle_epi8, _mm256_srli_epi16, _mm256_storeu_si256,
        _mm256_subs_epu8, _mm256_testz_si256, _mm256_xor_si256,
    };
    use core::mem::MaybeUninit;

    // The error each pair of a byte and the one after it can show; a pair
    // is in error when its first byte's high nibble, its first byte's low
    // nibble and its second byte's high nibble all allow the same error.
    /// A lead followed by ASCII or another lead.
    const TOO_SHORT: u8 = 1 << 0;
    /// ASCII followed by a continuation.
    const TOO_LONG: u8 = 1 << 1;
    /// E0 followed by 80..9F.
    const OVERLONG_3: u8 = 1 << 2;
    /// F4 to FF followed by 90..BF (above U+10FFFF).
    const TOO_LARGE: u8 = 1 << 3;
    /// ED followed by A0..BF.
    const SURROGATE: u8 = 1 << 4;
    /// C0 or C1 followed by a continuation.
    const OVERLONG_2: u8 = 1 << 5;
    /// F5 to FF followed by 80..8F (shares a bit with OVERLONG_4, as
    /// the two never meet: F0 against F5 and up).
    const TOO_LARGE_1000: u8 = 1 << 6;
    /// F0 followed by 80..8F.
    const OVERLONG_4: u8 = 1 << 6;
    /// Two continuations in a row: valid only inside a 3- or 4-byte
    /// character, which the third and fourth byte check decides.
    const TWO_CONTS: u8 = 1 << 7;
    const CARRY: u8 = TOO_SHORT | TOO_LONG | TWO_CONTS;

    const FIRST_HIGH: [u8; 32] = twice([
        // 0_______: ASCII
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        // 10______: continuation
        TWO_CONTS,
        TWO_CONTS,
        TWO_CONTS,
        TWO_CONTS,
        // 1100____, 1101____: two-byte lead
        TOO_SHORT | OVERLONG_2,
        TOO_SHORT,
        // 1110____: three-byte lead
        TOO_SHORT | OVERLONG_3 | SURROGATE,
        // 1111____: four-byte lead (or invalid)
        TOO_SHORT | TOO_LARGE | TOO_LARGE_1000 | OVERLONG_4,
    ]);
    const FIRST_LOW: [u8; 32] = twice([
        CARRY | OVERLONG_3 | OVERLONG_2 | OVERLONG_4,
        CARRY | OVERLONG_2,
        CARRY,
        CARRY,
        CARRY | TOO_LARGE,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000 | SURROGATE,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
    ]);
    const SECOND_HIGH: [u8; 32] = twice([
        // 0_______: ASCII
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        // 1000____
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4,
        // 1001____
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE,
        // 101_____
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
        // 11______: a lead
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
    ]);

    /// Above these, the last three bytes of a block start a character the
    /// block does not finish (a four-, three- or two-byte lead).
    const LAST_LEADS: [u8; 32] = {
        let mut max = [0xff; 32];
        max[29] = 0b1111_0000 - 1;
        max[30] = 0b1110_0000 - 1;
        max[31] = 0b1100_0000 - 1;
        max
    };

    /// A 16-byte table in both halves of a register (the byte shuffle looks
    /// up within each 16-byte half).
    // Only ever evaluated at compile time, where an index out of bounds
    // fails the build rather than panicking.
    #[allow(clippy::indexing_slicing)]
    const fn twice(table: [u8; 16]) -> [u8; 32] {
        let mut both = [0; 32];
        let mut i = 0;
        while i < 16 {
            both[i] = table[i];
            both[i + 16] = table[i];
            i += 1;
        }
        both
    }

    /// The lookup tables and constants, in registers.
    struct Tables {
        first_high: __m256i,
        first_low: __m256i,
        second_high: __m256i,
        last_leads: __m256i,
        nibble: __m256i,
    }

    /// # Safety
    ///
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn load(bytes: &[u8; 32]) -> __m256i {
        // SAFETY: `bytes` is 32 readable bytes; `loadu` needs no alignment.
        unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
    }

    /// The errors of each byte of `input` with the bytes before it (the
    /// last three of `prev`, the block before).
    ///
    /// # Safety
    ///
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn errors(t: &Tables, input: __m256i, prev: __m256i) -> __m256i {
        // The 16 bytes before each half: the upper half of `prev`, then the
        // lower half of `input`.
        let before = _mm256_permute2x128_si256(prev, input, 0x21);
        let prev1 = _mm256_alignr_epi8(input, before, 15);
        let prev1_high = _mm256_and_si256(_mm256_srli_epi16(prev1, 4), t.nibble);
        let input_high = _mm256_and_si256(_mm256_srli_epi16(input, 4), t.nibble);
        let pairs = _mm256_and_si256(
            _mm256_and_si256(
                _mm256_shuffle_epi8(t.first_high, prev1_high),
                _mm256_shuffle_epi8(t.first_low, _mm256_and_si256(prev1, t.nibble)),
            ),
            _mm256_shuffle_epi8(t.second_high, input_high),
        );
        // Two continuations in a row are right exactly where a three-byte
        // lead is two bytes back or a four-byte lead three bytes back.
        let prev2 = _mm256_alignr_epi8(input, before, 14);
        let prev3 = _mm256_alignr_epi8(input, before, 13);
        let third = _mm256_subs_epu8(prev2, _mm256_set1_epi8((0b1110_0000u8 - 0x80) as i8));
        let fourth = _mm256_subs_epu8(prev3, _mm256_set1_epi8((0b1111_0000u8 - 0x80) as i8));
        let must_continue = _mm256_and_si256(
            _mm256_or_si256(third, fourth),
            _mm256_set1_epi8(0x80u8 as i8),
        );
        _mm256_xor_si256(must_continue, pairs)
    }

    /// Writes the first 32 bytes of `src` XORed with `k` to `dst` and
    /// returns them.
    ///
    /// # Safety
    ///
    /// The CPU must have AVX2, and `dst` and `src` must be at least 32
    /// bytes long.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn copy_block(dst: &mut [MaybeUninit<u8>], src: &[u8], k: __m256i) -> __m256i {
        debug_assert!(dst.len() >= 32 && src.len() >= 32);
        // SAFETY: both are 32 bytes or more (the caller's promise);
        // `loadu` and `storeu` need no alignment.
        unsafe {
            let block = _mm256_xor_si256(_mm256_loadu_si256(src.as_ptr().cast()), k);
            _mm256_storeu_si256(dst.as_mut_ptr().cast(), block);
            block
        }
    }

    /// Adds the errors of `block` to `error`; `prev` is the last block that
    /// was not all ASCII, which an ASCII block leaves in place (it is
    /// right only if `prev` ended with whole characters).
    ///
    /// # Safety
    ///
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn check(t: &Tables, block: __m256i, error: &mut __m256i, prev: &mut __m256i) {
        if _mm256_movemask_epi8(block) == 0 {
            *error = _mm256_or_si256(*error, _mm256_subs_epu8(*prev, t.last_leads));
        } else {
            // SAFETY: AVX2 is the caller's promise.
            *error = _mm256_or_si256(*error, unsafe { errors(t, block, *prev) });
            *prev = block;
        }
    }

    /// Writes `src` XORed with `key` (a key already rotated to `src`'s
    /// offset) to `dst`, as long, and returns whether it is valid UTF-8.
    /// Every element of `dst` is written.
    ///
    /// # Safety
    ///
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn copy_masked_utf8(
        dst: &mut [MaybeUninit<u8>],
        src: &[u8],
        key: [u8; 4],
    ) -> bool {
        // SAFETY (all `load`s below): AVX2 is the caller's promise.
        let t = unsafe {
            Tables {
                first_high: load(&FIRST_HIGH),
                first_low: load(&FIRST_LOW),
                second_high: load(&SECOND_HIGH),
                last_leads: load(&LAST_LEADS),
                nibble: _mm256_set1_epi8(0x0f),
            }
        };
        let mut k = _mm256_set1_epi32(i32::from_ne_bytes(key));
        let mut error = _mm256_setzero_si256();
        let mut prev = _mm256_setzero_si256();
        let (mut dst, mut src, mut key) = (dst, src, key);
        // Stores that cross a cache line cost more (on a Zen 4 EPYC, 16 KiB
        // of ASCII 8 bytes off a boundary: 394 ns against 307, fastest of
        // 300 rounds; docs/performance.md, Decoding): the blocks
        // are stored at 32-byte boundaries of `dst`, after the first
        // `skip` bytes, which are checked as the end of a block that
        // starts with ASCII zeros.
        let skip = dst.as_ptr().align_offset(32);
        if (1..32).contains(&skip) && src.len() >= 64 {
            if let (Some(d), Some(s), Some(rest)) = (
                dst.first_chunk_mut::<32>(),
                src.first_chunk::<32>(),
                src.get(skip..),
            ) {
                let mut edge = [0u8; 64];
                // SAFETY: `s` is 32 readable bytes, `d` and the back half
                // of `edge` 32 writable ones, the 32 bytes of `edge` from
                // `skip` (less than 32) readable; `loadu` and `storeu`
                // need no alignment.
                let head = unsafe {
                    let first = _mm256_xor_si256(_mm256_loadu_si256(s.as_ptr().cast()), k);
                    _mm256_storeu_si256(d.as_mut_ptr().cast(), first);
                    _mm256_storeu_si256(edge.as_mut_ptr().add(32).cast(), first);
                    _mm256_loadu_si256(edge.as_ptr().add(skip).cast())
                };
                // SAFETY: AVX2 is the caller's promise.
                unsafe { check(&t, head, &mut error, &mut prev) };
                src = rest;
                dst = dst.get_mut(skip..).unwrap_or_default();
                key = super::super::mask::rotate_key(key, skip);
                k = _mm256_set1_epi32(i32::from_ne_bytes(key));
            }
        }
        // Two blocks at a time: a run of ASCII, common in text, then costs
        // one test per 64 bytes.
        let mut dst_pairs = dst.chunks_exact_mut(64);
        let mut src_pairs = src.chunks_exact(64);
        for (d, s) in (&mut dst_pairs).zip(&mut src_pairs) {
            let (d0, d1) = d.split_at_mut(32);
            let (s0, s1) = s.split_at(32);
            // SAFETY: AVX2 is the caller's promise; the halves are 32
            // bytes each. (Arrays instead, from `split_first_chunk`, made
            // ASCII text 15% slower in the harness of the comment above.)
            let (a, b) = unsafe { (copy_block(d0, s0, k), copy_block(d1, s1, k)) };
            if _mm256_movemask_epi8(_mm256_or_si256(a, b)) == 0 {
                error = _mm256_or_si256(error, _mm256_subs_epu8(prev, t.last_leads));
            } else {
                // SAFETY: AVX2 is the caller's promise.
                unsafe {
                    check(&t, a, &mut error, &mut prev);
                    check(&t, b, &mut error, &mut prev);
                }
            }
        }
        let mut dst_blocks = dst_pairs.into_remainder().chunks_exact_mut(32);
        let mut src_blocks = src_pairs.remainder().chunks_exact(32);
        for (d, s) in (&mut dst_blocks).zip(&mut src_blocks) {
            // SAFETY: AVX2 is the caller's promise; both are 32 bytes.
            unsafe {
                let block = copy_block(d, s, k);
                check(&t, block, &mut error, &mut prev);
            }
        }
        let src = src_blocks.remainder();
        if !src.is_empty() {
            // The last bytes, padded with ASCII zeros: a character they
            // cut shows as one cut by the padding.
            let mut tail = [0u8; 32];
            for ((t, s), k) in tail.iter_mut().zip(src).zip(key.iter().cycle()) {
                *t = s ^ k;
            }
            for (d, t) in dst_blocks.into_remainder().iter_mut().zip(tail) {
                d.write(t);
            }
            // SAFETY: AVX2 is the caller's promise.
            let block = unsafe { load(&tail) };
            // SAFETY: AVX2 is the caller's promise.
            unsafe { check(&t, block, &mut error, &mut prev) };
        }
        error = _mm256_or_si256(error, _mm256_subs_epu8(prev, t.last_leads));
        _mm256_testz_si256(error, error) == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    use crate::frame::mask::tests::for_each_simd;

    fn masked(plain: &[u8], key: [u8; 4], offset: usize) -> Vec<u8> {
        plain
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[(i + offset) % 4])
            .collect()
    }

    /// Checks one piece through every instruction set the CPU has, after
    /// `before` bytes already in the buffer (which moves the copy against
    /// the 32-byte alignment).
    fn check(plain: &[u8], key: [u8; 4], offset: usize, before: usize) {
        let src = masked(plain, key, offset);
        let expected = core::str::from_utf8(plain).is_ok();
        for_each_simd(|simd| {
            let mut buf = BytesMut::with_capacity(before + src.len());
            buf.extend((0..before).map(|i| 0xc0 | i as u8));
            let valid = extend_masked_text(&mut buf, &src, key, offset as u64);
            assert_eq!(&buf[before..], plain, "{simd}: bytes, {plain:x?}");
            assert_eq!(valid, expected, "{simd}: verdict, {plain:x?}");
        });
    }

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// Text with characters of every width.
    fn text(len: usize) -> Vec<u8> {
        let mut s: Vec<u8> = "aκό世界😀 \u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}\u{d7ff}\u{e000}"
            .bytes()
            .cycle()
            .take(len + 4)
            .collect();
        // Whole characters only: cut back to a boundary.
        while core::str::from_utf8(&s).is_err() || s.len() > len {
            s.pop();
        }
        s
    }

    #[test]
    fn every_length_offset_and_alignment() {
        for len in 0..200 {
            let plain = text(len);
            for offset in 0..4 {
                for before in [0, 1, 31] {
                    check(&plain, KEY, offset, before);
                }
            }
            // The same text cut inside a character at the end, and started
            // inside one.
            if plain.len() > 1 {
                check(&plain[..plain.len() - 1], KEY, 0, 0);
                check(&plain[1..], KEY, 0, 0);
            }
        }
    }

    /// Every pair of bytes across the edges of a 16-byte half, a 32-byte
    /// block and a 64-byte pair of blocks, and every lead worth testing
    /// followed by the pairs that end three- and four-byte characters at
    /// the places around those edges, among ASCII and among whole non-ASCII
    /// characters (which make every block take the full check).
    #[test]
    fn every_pair_at_every_block_edge() {
        let ascii = [b'a'; 100];
        let wide: Vec<u8> = "é".repeat(50).into_bytes();
        let mut buf = BytesMut::with_capacity(140);
        // The copy starts at a 32-byte boundary, so the blocks' edges are
        // where the indices below put them.
        let before = buf.as_ptr().align_offset(32);
        let interesting = [
            0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1,
            0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff,
        ];
        for filler in [&ascii[..], &wide[..]] {
            let mut plain = filler.to_vec();
            let mut check = |plain: &[u8]| check_fast(&mut buf, before, plain);
            for at in [15, 31, 63] {
                for a in 0..=255u8 {
                    for b in 0..=255u8 {
                        plain[at] = a;
                        plain[at + 1] = b;
                        check(&plain);
                    }
                }
                plain.copy_from_slice(filler);
            }
            for at in [0, 13, 14, 29, 30, 31, 61, 62, 63] {
                for a in interesting {
                    plain[at] = a;
                    for b in interesting {
                        for c in interesting {
                            plain[at + 1] = b;
                            plain[at + 2] = c;
                            check(&plain);
                            for d in [0x7f, 0x80, 0xbf, 0xc0] {
                                plain[at + 3] = d;
                                check(&plain);
                            }
                            plain[at + 3] = filler[at + 3];
                        }
                    }
                }
                plain.copy_from_slice(filler);
            }
        }
    }

    /// A character cut at the end of a block, whole ASCII blocks, then the
    /// rest of the character: the lead and its continuations pair up
    /// across the ASCII, which an ASCII block must not hide.
    #[test]
    fn a_character_cut_by_ascii_blocks_is_an_error() {
        for character in ["é", "€", "😀"] {
            let character = character.as_bytes();
            for cut in 1..character.len() {
                // The cut at the end of the first or the second block of a
                // pair, then one to four ASCII blocks.
                for blocks_before in 1..5 {
                    for ascii_blocks in 1..5 {
                        let mut plain = vec![b'a'; 32 * blocks_before - cut];
                        plain.extend_from_slice(&character[..cut]);
                        plain.extend(core::iter::repeat(b'b').take(32 * ascii_blocks));
                        plain.extend_from_slice(&character[cut..]);
                        plain.extend_from_slice("and more é".as_bytes());
                        for before in 0..32 {
                            check(&plain, KEY, 0, before);
                        }
                    }
                }
            }
        }
    }

    /// [`check`] without the alignments and offsets, for the many cases.
    fn check_fast(buf: &mut BytesMut, before: usize, plain: &[u8]) {
        let src = masked(plain, KEY, 0);
        let expected = core::str::from_utf8(plain).is_ok();
        for_each_simd(|simd| {
            buf.clear();
            buf.extend_from_slice(&[0xc0; 32][..before]);
            let valid = extend_masked_text(buf, &src, KEY, 0);
            assert_eq!(valid, expected, "{simd}: {plain:x?}");
        });
    }

    proptest! {
        #[test]
        fn text_equals_reference(
            s in "\\PC{0,600}",
            cut in any::<[usize; 2]>(),
            noise in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
            key in any::<[u8; 4]>(),
            offset in 0usize..4,
            before in 0usize..64,
        ) {
            let mut plain = s.into_bytes();
            let from = cut[0] % (plain.len() + 1);
            let to = from + cut[1] % (plain.len() - from + 1);
            plain = plain[from..to].to_vec();
            for (at, byte) in noise {
                if !plain.is_empty() {
                    let at = at % plain.len();
                    plain[at] = byte;
                }
            }
            check(&plain, key, offset, before);
        }

        #[test]
        fn bytes_equal_reference(
            plain in proptest::collection::vec(any::<u8>(), 0..300),
            key in any::<[u8; 4]>(),
            offset in 0usize..4,
        ) {
            check(&plain, key, offset, 0);
        }
    }
}
