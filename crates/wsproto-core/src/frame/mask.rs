//! XOR masking of frame payloads (RFC 6455 section 5.3).
//!
//! Masking is its own inverse, so the same function masks outgoing client
//! frames and unmasks incoming ones. Payloads may arrive in pieces, so the
//! function takes the offset of `buf` inside the payload: byte `i` of the
//! payload is XORed with `key[i % 4]`.

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
    apply_mask_aligned_key(buf, key);
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

/// Masks `buf` as if it started at offset 0 of the payload.
///
/// The body works on 8-byte words: the compiler turns the word loop into
/// SIMD on every target that has it, without `unsafe`. The head (up to the
/// first 8-byte boundary) and the tail are done byte by byte, and the key is
/// rotated by the length of the head so that the words see the right phase.
fn apply_mask_aligned_key(buf: &mut [u8], key: [u8; 4]) {
    if buf.len() < 32 {
        // Short payloads (chat messages, pings): 4-byte words, no alignment
        // prologue; the key phase never changes because words are 4 bytes.
        let key32 = u32::from_ne_bytes(key);
        let mut words = buf.chunks_exact_mut(4);
        for word in &mut words {
            let mut w = [0u8; 4];
            w.copy_from_slice(word);
            word.copy_from_slice(&(u32::from_ne_bytes(w) ^ key32).to_ne_bytes());
        }
        mask_bytes(words.into_remainder(), key);
        return;
    }
    let head_len = buf.as_ptr().align_offset(8).min(buf.len());
    let (head, rest) = buf.split_at_mut(head_len);
    mask_bytes(head, key);
    let key = rotate_key(key, head_len);
    let key64 = {
        let mut k = [0u8; 8];
        k[..4].copy_from_slice(&key);
        k[4..].copy_from_slice(&key);
        u64::from_ne_bytes(k)
    };
    let mut chunks = rest.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let masked = u64::from_ne_bytes(word) ^ key64;
        chunk.copy_from_slice(&masked.to_ne_bytes());
    }
    // The words consumed a multiple of 4 bytes, so the key phase is unchanged.
    mask_bytes(chunks.into_remainder(), key);
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
                    let mut slow = fast.clone();
                    // Run on the original storage alignment too, not only on a fresh Vec.
                    let mut in_place = storage.clone();
                    apply_mask(&mut fast, key, offset);
                    apply_mask(&mut in_place[start..start + len], key, offset);
                    naive(&mut slow, key, offset);
                    assert_eq!(fast, slow, "start={start} len={len} offset={offset}");
                    assert_eq!(&in_place[start..start + len], &slow[..]);
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
            let mut slow = data.clone();
            apply_mask(&mut fast[start..], key, offset);
            naive(&mut slow[start..], key, offset);
            prop_assert_eq!(fast, slow);
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
