//! XOR masking of frame payloads (RFC 6455 section 5.3).
//!
//! Masking is its own inverse, so the same function masks outgoing client
//! frames and unmasks incoming ones. Payloads may arrive in pieces, so the
//! function takes the offset of `buf` inside the payload: byte `i` of the
//! payload is XORed with `key[i % 4]`.

use bytes::BytesMut;
use core::mem::MaybeUninit;

/// XORs `buf` with the masking `key`, where `buf` starts `offset` bytes into
/// the frame payload.
///
/// Works for any length, any alignment and any offset, so a payload that
/// arrives in several reads can be unmasked piece by piece.
///
/// # Example
///
/// ```
/// use wsproto_core::apply_mask;
///
/// let key = [0x37, 0xfa, 0x21, 0x3d];
/// // "Hello" masked with the key from RFC 6455 section 5.7.
/// let mut masked = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// // Unmask the first two bytes, then the rest, as if they arrived apart.
/// apply_mask(&mut masked[..2], key, 0);
/// apply_mask(&mut masked[2..], key, 2);
/// assert_eq!(&masked, b"Hello");
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // Rotate the key so that position 0 of `buf` uses key[offset % 4].
    let key = rotate_key(key, offset);
    if buf.len() < 32 {
        mask_short(buf, key);
        return;
    }
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: `mask_blocks_avx2` is only unsafe because it is compiled
        // with AVX2 enabled; the CPU was just checked to support AVX2. Its
        // body is the same safe code as `mask_blocks`, tested against the
        // naive reference in this module's tests.
        unsafe { mask_blocks_avx2(buf, key) };
        return;
    }
    mask_blocks(buf, key);
}

/// The portable path of [`apply_mask`], without run-time CPU detection: the
/// reference the SIMD path is benchmarked against.
#[doc(hidden)]
pub fn apply_mask_portable(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    if buf.len() < 32 {
        mask_short(buf, key);
    } else {
        mask_blocks(buf, key);
    }
}

#[inline]
fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    let k = u32::from_ne_bytes(key);
    let shift = (offset % 4) as u32 * 8;
    // In memory order the key is k0 k1 k2 k3; rotating by one byte must give
    // k1 k2 k3 k0 regardless of endianness.
    let rotated = if cfg!(target_endian = "little") {
        k.rotate_right(shift)
    } else {
        k.rotate_left(shift)
    };
    rotated.to_ne_bytes()
}

/// Short payloads (chat messages, pings): 4-byte words, then bytes.
#[inline]
fn mask_short(buf: &mut [u8], key: [u8; 4]) {
    let key32 = u32::from_ne_bytes(key);
    let mut words = buf.chunks_exact_mut(4);
    for word in &mut words {
        let mut w = [0u8; 4];
        w.copy_from_slice(word);
        word.copy_from_slice(&(u32::from_ne_bytes(w) ^ key32).to_ne_bytes());
    }
    mask_bytes(words.into_remainder(), key);
}

/// 32-byte blocks XORed with the key repeated eight times: a loop the
/// compiler turns into whole-register SIMD (two SSE2 or one AVX2 XOR per
/// block) with unaligned loads, so no alignment prologue is needed. Blocks
/// are a multiple of 4 bytes, so the key phase is the same for the tail.
///
/// Measured alternatives that were slower (docs/performance.md): u64 lanes
/// against a broadcast key, 64-byte blocks under AVX2, and 128-byte blocks
/// under AVX-512 (which LLVM left scalar).
#[inline(always)]
fn mask_blocks(buf: &mut [u8], key: [u8; 4]) {
    mask_blocks_of::<32>(buf, key);
}

#[inline(always)]
fn mask_blocks_of<const N: usize>(buf: &mut [u8], key: [u8; 4]) {
    let mut pattern = [0u8; N];
    for (p, k) in pattern.iter_mut().zip(key.iter().cycle()) {
        *p = *k;
    }
    let mut blocks = buf.chunks_exact_mut(N);
    for block in &mut blocks {
        for (b, p) in block.iter_mut().zip(pattern.iter()) {
            *b ^= *p;
        }
    }
    mask_short(blocks.into_remainder(), key);
}

/// [`mask_blocks`] compiled for CPUs with AVX2.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx2")]
unsafe fn mask_blocks_avx2(buf: &mut [u8], key: [u8; 4]) {
    mask_blocks(buf, key);
}

/// Appends `src` to `buf` XORed with the masking `key`, where `src` starts
/// `offset` bytes into the frame payload: copying and (un)masking in one
/// pass, for a client's outgoing payloads and a server's incoming ones.
pub(crate) fn extend_masked(buf: &mut BytesMut, src: &[u8], key: [u8; 4], offset: u64) {
    buf.reserve(src.len());
    let len = buf.len();
    if let Some(dst) = buf.spare_capacity_mut().get_mut(..src.len()) {
        // The offset only matters modulo 4.
        copy_masked(dst, src, key, (offset % 4) as usize);
        // SAFETY: `reserve` made room for `src.len()` more bytes, and
        // `copy_masked` wrote every one of the first `src.len()` bytes of
        // the spare capacity (it writes each element of `dst`, whose length
        // it asserts equals `src.len()`). This module's tests check the
        // appended bytes against the naive reference, and the proptests in
        // `tests/roundtrip.rs` the connection's input against the decoder's
        // in-place unmasking over arbitrary splits.
        unsafe { buf.set_len(len + src.len()) };
    }
}

/// Writes `src` XORed with the masking `key` into `dst` (which must be as
/// long), where `src` starts `offset` bytes into the frame payload: the copy
/// into the receive buffer and the unmasking in one pass over the bytes.
/// Every element of `dst` is written.
pub(crate) fn copy_masked(dst: &mut [MaybeUninit<u8>], src: &[u8], key: [u8; 4], offset: usize) {
    assert_eq!(dst.len(), src.len(), "copy_masked: lengths differ");
    let key = rotate_key(key, offset);
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if src.len() >= 32 && std::is_x86_feature_detected!("avx2") {
        // SAFETY: `copy_blocks_avx2` is only unsafe because it is compiled
        // with AVX2 enabled; the CPU was just checked to support AVX2. Its
        // body is the same safe code as `copy_blocks`, tested against the
        // naive reference in this module's tests.
        unsafe { copy_blocks_avx2(dst, src, key) };
        return;
    }
    copy_blocks(dst, src, key);
}

/// [`mask_blocks`] from one buffer into another: 32-byte blocks, then the
/// remainder byte by byte with the key phase the blocks left (a multiple
/// of 4 bytes, so unchanged).
#[inline(always)]
fn copy_blocks(dst: &mut [MaybeUninit<u8>], src: &[u8], key: [u8; 4]) {
    copy_blocks_of::<32>(dst, src, key);
}

#[inline(always)]
fn copy_blocks_of<const N: usize>(dst: &mut [MaybeUninit<u8>], src: &[u8], key: [u8; 4]) {
    let mut pattern = [0u8; N];
    for (p, k) in pattern.iter_mut().zip(key.iter().cycle()) {
        *p = *k;
    }
    let mut dst_blocks = dst.chunks_exact_mut(N);
    let mut src_blocks = src.chunks_exact(N);
    for (d, s) in (&mut dst_blocks).zip(&mut src_blocks) {
        for ((d, s), p) in d.iter_mut().zip(s.iter()).zip(pattern.iter()) {
            d.write(*s ^ *p);
        }
    }
    let mut dst_words = dst_blocks.into_remainder().chunks_exact_mut(4);
    let mut src_words = src_blocks.remainder().chunks_exact(4);
    for (d, s) in (&mut dst_words).zip(&mut src_words) {
        for ((d, s), k) in d.iter_mut().zip(s).zip(key) {
            d.write(*s ^ k);
        }
    }
    let dst = dst_words.into_remainder();
    let src = src_words.remainder();
    for ((d, s), k) in dst.iter_mut().zip(src).zip(key) {
        d.write(*s ^ k);
    }
}

/// [`copy_blocks`] compiled for CPUs with AVX2.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx2")]
unsafe fn copy_blocks_avx2(dst: &mut [MaybeUninit<u8>], src: &[u8], key: [u8; 4]) {
    copy_blocks(dst, src, key);
}

#[inline]
fn mask_bytes(buf: &mut [u8], key: [u8; 4]) {
    for (byte, k) in buf.iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn rfc_example_hello() {
        let mut payload = *b"Hello";
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(payload, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn every_small_length_offset_and_alignment() {
        let key = [0x01, 0x23, 0x45, 0x67];
        let storage: Vec<u8> = (0..200u32).map(|i| (i * 7 + 3) as u8).collect();
        for start in 0..9 {
            for len in 0..(200 - start - 1) {
                for offset in 0..9 {
                    let mut fast = storage[start..start + len].to_vec();
                    let mut portable = fast.clone();
                    apply_mask_portable(&mut portable, key, offset);
                    let mut slow = fast.clone();
                    // Run on the original storage alignment too, not only on a fresh Vec.
                    let mut in_place = storage.clone();
                    apply_mask(&mut fast, key, offset);
                    apply_mask(&mut in_place[start..start + len], key, offset);
                    naive(&mut slow, key, offset);
                    assert_eq!(fast, slow, "start={start} len={len} offset={offset}");
                    assert_eq!(
                        portable, slow,
                        "portable, start={start} len={len} offset={offset}"
                    );
                    assert_eq!(&in_place[start..start + len], &slow[..]);
                }
            }
        }
    }

    /// `src` masked through [`extend_masked`], after a few bytes already in
    /// the buffer.
    fn copied(src: &[u8], key: [u8; 4], offset: usize) -> Vec<u8> {
        let mut buf = BytesMut::from(&b"abc"[..]);
        extend_masked(&mut buf, src, key, offset as u64);
        assert_eq!(&buf[..3], b"abc");
        buf[3..].to_vec()
    }

    #[test]
    fn copy_masked_every_small_length_offset_and_alignment() {
        let key = [0x89, 0xab, 0xcd, 0xef];
        let storage: Vec<u8> = (0..200u32).map(|i| (i * 13 + 5) as u8).collect();
        for start in 0..9 {
            for len in 0..(200 - start - 1) {
                for offset in 0..9 {
                    let src = &storage[start..start + len];
                    let mut slow = src.to_vec();
                    naive(&mut slow, key, offset);
                    assert_eq!(
                        copied(src, key, offset),
                        slow,
                        "start={start} len={len} offset={offset}"
                    );
                }
            }
        }
    }

    proptest! {
        #[test]
        fn equals_naive_reference(
            data in proptest::collection::vec(any::<u8>(), 0..2048),
            key in any::<[u8; 4]>(),
            offset in any::<usize>(),
            start in 0usize..16,
        ) {
            let start = start.min(data.len());
            let mut fast = data.clone();
            let mut portable = data.clone();
            let mut slow = data.clone();
            apply_mask(&mut fast[start..], key, offset);
            apply_mask_portable(&mut portable[start..], key, offset);
            naive(&mut slow[start..], key, offset);
            prop_assert_eq!(&fast, &slow);
            prop_assert_eq!(portable, slow);
        }

        #[test]
        fn copy_masked_equals_naive_reference(
            data in proptest::collection::vec(any::<u8>(), 0..4096),
            key in any::<[u8; 4]>(),
            offset in any::<usize>(),
            start in 0usize..16,
        ) {
            let start = start.min(data.len());
            let mut slow = data[start..].to_vec();
            naive(&mut slow, key, offset);
            prop_assert_eq!(copied(&data[start..], key, offset), slow);
        }

        #[test]
        fn piecewise_equals_whole(
            data in proptest::collection::vec(any::<u8>(), 0..1024),
            key in any::<[u8; 4]>(),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut whole = data.clone();
            apply_mask(&mut whole, key, 0);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
            cuts.push(0);
            cuts.push(data.len());
            cuts.sort_unstable();
            let mut pieces = data.clone();
            for w in cuts.windows(2) {
                apply_mask(&mut pieces[w[0]..w[1]], key, w[0]);
            }
            prop_assert_eq!(whole, pieces);
        }
    }
}
