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
#[inline(always)]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // Rotate the key so that position 0 of `buf` uses key[offset % 4].
    let key = rotate_key(key, offset);
    if buf.len() < VECTOR_MIN {
        mask_unaligned(buf, key);
        return;
    }
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    match simd() {
        Simd::Avx512 if buf.len() < WIDE_ALIGN_MIN => {
            // SAFETY: `mask_unaligned_avx512` is only unsafe because it is
            // compiled with AVX-512F enabled; `simd` gives `Avx512` only
            // where the CPU has it. Its body is safe code, tested against
            // the naive reference in this module's tests.
            unsafe { mask_unaligned_avx512(buf, key) };
            return;
        }
        Simd::Avx512 if buf.len() >= WIDE_MIN => {
            // SAFETY: as above, for `mask_lanes_avx512`.
            unsafe { mask_lanes_avx512(buf, key) };
            return;
        }
        level @ (Simd::Avx2 | Simd::Avx2AlignEarly) if buf.len() < level.align_min() => {
            // SAFETY: `mask_unaligned_avx2` is only unsafe because it is
            // compiled with AVX2 enabled; `simd` gives `Avx2` and
            // `Avx2AlignEarly` only where the CPU has it. Its body is the
            // same safe code as `mask_unaligned`, tested against the naive
            // reference in this module's tests.
            unsafe { mask_unaligned_avx2(buf, key) };
            return;
        }
        Simd::Avx2 | Simd::Avx2AlignEarly | Simd::Avx512 => {
            // SAFETY: `mask_blocks_avx2` is only unsafe because it is
            // compiled with AVX2 enabled; `simd` gives `Avx2`,
            // `Avx2AlignEarly` or `Avx512` only where the CPU has AVX2. Its
            // body is the same safe code as `mask_blocks`, tested against
            // the naive reference in this module's tests.
            unsafe { mask_blocks_avx2(buf, key) };
            return;
        }
        Simd::Portable => {}
    }
    mask_blocks(buf, key);
}

/// The portable path of [`apply_mask`], without run-time CPU detection: the
/// reference the SIMD path is benchmarked against.
#[doc(hidden)]
pub fn apply_mask_portable(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    if buf.len() < ALIGN_MIN {
        mask_unaligned(buf, key);
    } else {
        mask_blocks(buf, key);
    }
}

/// The instruction sets the masking loops have builds for, widest last.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Simd {
    Portable = 1,
    Avx2 = 2,
    /// The AVX2 loops on a CPU that has AVX-512 but where its 64-byte
    /// stores do not pay (`wide_stores_pay`: AMD's Zen 4), whose straddling
    /// 32-byte stores cost enough that aligning them pays from
    /// [`EARLY_ALIGN_MIN`] rather than [`ALIGN_MIN`].
    Avx2AlignEarly = 3,
    Avx512 = 4,
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
impl Simd {
    /// From what size the AVX2 loops store at aligned addresses.
    #[inline(always)]
    fn align_min(self) -> usize {
        match self {
            Simd::Avx2AlignEarly => EARLY_ALIGN_MIN,
            _ => ALIGN_MIN,
        }
    }
}

/// The [`Simd`] level the dispatch uses, found on the first call (0 until
/// then): one load and compare per call instead of one feature test per
/// instruction set.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
static SIMD: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// The instruction set the masking loops use on this CPU.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[inline(always)]
fn simd() -> Simd {
    let level = match SIMD.load(core::sync::atomic::Ordering::Relaxed) {
        4 => Simd::Avx512,
        3 => Simd::Avx2AlignEarly,
        2 => Simd::Avx2,
        1 => Simd::Portable,
        _ => detect_simd(),
    };
    #[cfg(test)]
    let level = tests::SIMD_FORCED
        .with(|forced| forced.get())
        .map_or(level, |forced| {
            // A test runs each build the CPU can run, whatever the dispatch
            // prefers.
            forced.min(supported_simd())
        });
    level
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[cold]
fn detect_simd() -> Simd {
    let level = match supported_simd() {
        Simd::Avx512 if !wide_stores_pay() => Simd::Avx2AlignEarly,
        level => level,
    };
    SIMD.store(level as u8, core::sync::atomic::Ordering::Relaxed);
    level
}

/// Whether the dispatch may use AVX2 here (AVX-512 CPUs have it too).
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[inline]
pub(super) fn has_avx2() -> bool {
    simd() != Simd::Portable
}

/// The widest instruction set this CPU can run.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn supported_simd() -> Simd {
    if !std::is_x86_feature_detected!("avx2") {
        Simd::Portable
    } else if std::is_x86_feature_detected!("avx512f") {
        Simd::Avx512
    } else {
        Simd::Avx2
    }
}

/// Whether the 64-byte AVX-512 loops beat the 32-byte AVX2 ones here: on
/// Intel's cores (a Xeon: 256 B 5.0 against 6.5 ns, 16 KiB 109 against
/// 122; see [`WIDE_ALIGN_MIN`] and [`WIDE_MIN`]), not on AMD's Zen 4, which
/// runs a 64-byte operation as two 32-byte halves and pays more for a
/// misaligned 64-byte store than for two 32-byte ones (an AMD EPYC with
/// AVX-512, 1-byte-misaligned, fastest of 40 interleaved rounds: 256 B 8.95
/// against 4.87 ns, 512 B 10.39 against 8.17, 64 B to 1 KiB copies 10 to
/// 25% slower, level from 2 KiB). Other vendors' cores are unmeasured and
/// get AVX2.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn wide_stores_pay() -> bool {
    // SAFETY: every x86_64 CPU has the CPUID instruction (newer compilers
    // declare the call safe, hence the allow).
    #[allow(unused_unsafe)]
    let vendor = unsafe { core::arch::x86_64::__cpuid(0) };
    // "GenuineIntel", in the order CPUID leaves it in EBX, EDX, ECX.
    (vendor.ebx, vendor.edx, vendor.ecx) == (0x756e_6547, 0x4965_6e69, 0x6c65_746e)
}

/// Payloads shorter than this are masked inline, without run-time CPU
/// detection: below it the call into the AVX2 code costs more than the
/// wider registers save (32 to 192 bytes 10 to 40% slower through the call
/// in an A/B run; docs/performance.md, Masking).
const VECTOR_MIN: usize = 256;

/// Where the dispatch uses AVX2 (CPUs without AVX-512, and AMD's), payloads
/// shorter than this are masked without aligning the stores: the bytes before
/// the first aligned address and after the last whole block cost more than the
/// straddling stores below it, and less above it. On an Intel Xeon: 256 B 6.5
/// ns aligned against 3.7 unaligned, 1 KiB 11.6 against 12.5, 4 KiB 31.9
/// against 59.7. On an AMD EPYC (Zen 3), fastest of 30 interleaved rounds,
/// 1-byte misaligned, two runs: 512 B 12.4 and 25.4 ns aligned against 9.6 and
/// 16.6 unaligned, 768 B 14.0 and 25.7 against 12.5 and 22.1, 1 KiB 15.5 and
/// 29.5 against 15.9 and 24.6, 1.5 KiB 18.8 and 33.8 against 22.3 and 35.1 (the
/// VM ran at different speeds in the two runs).
const ALIGN_MIN: usize = 1024;

/// [`ALIGN_MIN`] where the dispatch uses AVX2 on a CPU with AVX-512
/// ([`Simd::Avx2AlignEarly`]). On an AMD EPYC of Zen 4, 1 byte past a page,
/// fastest of 30 interleaved rounds (`mask_rounds`), unaligned against
/// aligned stores, two runs alike to 0.05 ns: 512 B 8.15 against 8.39 ns,
/// 544 B 8.33 against 8.12, 640 B 9.61 against 8.94, 768 B 10.99 against
/// 9.48, 960 B 13.22 against 10.30 (yawc's function 12.99); 256 B 4.87
/// against 7.31.
#[cfg_attr(not(all(target_arch = "x86_64", feature = "std")), allow(dead_code))]
const EARLY_ALIGN_MIN: usize = 544;

/// Where the dispatch uses AVX-512 (Intel's CPUs: `wide_stores_pay`), payloads
/// from [`VECTOR_MIN`] up to this size are masked in 64-byte blocks from
/// wherever they start (each store straddles two cache lines when the payload
/// is misaligned, but there are half as many as with AVX2, and no bytes before
/// an aligned address to mask word by word); from here the AVX2 blocks at
/// aligned addresses are faster. A/B, 1-byte-misaligned, fastest of 30
/// interleaved rounds: 256 B 5.0 ns against 6.5 (AVX2 unaligned) and 6.2
/// (yawc); 512 B 7.0 against 9.0 and 8.7; 768 B 9.1 against 13.5 and 13.1; 1
/// KiB 19.1 against 14.3 for the aligned AVX2 blocks.
#[cfg_attr(not(all(target_arch = "x86_64", feature = "std")), allow(dead_code))]
const WIDE_ALIGN_MIN: usize = 1024;

/// Payloads of at least this many bytes are masked with 64-byte AVX-512
/// stores at aligned addresses where the dispatch uses them: below it the
/// bytes before the first 64-byte aligned address and after the last whole
/// block cost more than the wider stores save (A/B against the AVX2
/// blocks: 1 KiB 16.7 against 14.2 ns, 2 KiB 21.8 against 23.5, 4 KiB 31.5
/// against 41.8, 16 KiB 109 against 122; docs/performance.md, Masking).
#[cfg_attr(not(all(target_arch = "x86_64", feature = "std")), allow(dead_code))]
const WIDE_MIN: usize = 2048;

/// [`mask_unaligned`] compiled for CPUs with AVX2.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx2")]
unsafe fn mask_unaligned_avx2(buf: &mut [u8], key: [u8; 4]) {
    mask_unaligned(buf, key);
}

/// Short payloads (chat messages, pings), and the bytes around a long
/// payload's aligned blocks: 32-byte blocks from wherever `buf` starts (two
/// SSE2 or one AVX2 XOR each, the key broadcast from a register), then
/// 8-byte words, a 4-byte word and bytes. Inlined into the caller.
///
/// The words do not overlap: a load that partly overlaps a recent store of
/// another size waits for that store to retire (a store-forwarding stall),
/// which made overlapping first and last words slower than this when the
/// same bytes were masked again soon after. Measured alternatives (a
/// temporary A/B harness, interleaved rounds against yawc's function, 4 B
/// to 255 B; docs/performance.md, "The short path at 3a7b091"): a 32-byte
/// key pattern built byte by byte in a stack array (what this was) ran at
/// 0.64x to 0.89x yawc's at 32 to 128 B, its byte stores stalling the wide
/// loads of the pattern; a 16-byte word after the blocks instead of the
/// 8-byte loop lost at multiples of 32 B (0.88x at 32 B).
#[inline(always)]
fn mask_unaligned(buf: &mut [u8], key: [u8; 4]) {
    let k = u32::from_ne_bytes(key);
    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        xor_lanes(block, wide(k));
    }
    // Blocks and words are whole multiples of the key: its phase stays.
    let mut words = blocks.into_remainder().chunks_exact_mut(8);
    for word in &mut words {
        xor_lanes(word, wide(k));
    }
    let (word, tail) = split_word::<4>(words.into_remainder());
    if let Some(word) = word {
        *word = (u32::from_ne_bytes(*word) ^ k).to_ne_bytes();
    }
    for (byte, k) in tail.iter_mut().zip(key) {
        *byte ^= k;
    }
}

#[inline]
pub(super) fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
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

/// The first `N` bytes of `buf`, if it holds as many, and the rest.
#[inline(always)]
fn split_word<const N: usize>(buf: &mut [u8]) -> (Option<&mut [u8; N]>, &mut [u8]) {
    let at = if buf.len() >= N { N } else { 0 };
    let (word, rest) = buf.split_at_mut(at);
    (word.first_chunk_mut::<N>(), rest)
}

/// A key word (as read from memory) repeated over 8 bytes, so that its
/// bytes in memory order repeat the key.
#[inline(always)]
fn wide(k: u32) -> u64 {
    u64::from(k) | (u64::from(k) << 32)
}

/// The key word as seen from `offset` bytes further into the payload.
#[inline(always)]
fn rotate_word(k: u32, offset: usize) -> u32 {
    u32::from_ne_bytes(rotate_key(k.to_ne_bytes(), offset))
}

/// XORs every 8-byte lane of `buf` (a whole number of lanes) with a key
/// word repeated over it. On a 32-byte block LLVM makes it one AVX2 or two
/// SSE2 XORs with the key broadcast from a register (a key pattern in a
/// stack array was slower: 4 KiB 100 against 120 GiB/s in the aligned
/// blocks). Over many blocks at once it becomes 64-byte XORs under AVX-512.
#[inline(always)]
fn xor_lanes(buf: &mut [u8], k: u64) {
    for lane in buf.chunks_exact_mut(8) {
        if let Some(lane) = lane.first_chunk_mut::<8>() {
            *lane = (u64::from_ne_bytes(*lane) ^ k).to_ne_bytes();
        }
    }
}

/// Payloads of at least one block (32 bytes): a whole-register XOR per
/// block, stored at addresses aligned to the block size.
///
/// A 32-byte store that straddles two cache lines costs about twice one
/// that does not, and received payloads start anywhere: a 1-byte
/// misalignment made every other AVX2 store straddle, leaving AVX2 slower
/// than SSE2 at 256 B to 1 KiB. So the bytes before the first aligned
/// address go through [`mask_unaligned`], and so do the blocks after it,
/// whose last few bytes are words that do not overlap.
///
/// Measured alternatives that were slower (docs/performance.md): unaligned
/// first and last blocks overlapping the aligned ones (read into a
/// temporary before the middle was changed, which cost a store-forwarding
/// stall each: 64 B at half the speed), 64-byte blocks under AVX2, and
/// one flat loop of 8-byte lanes ([`mask_lanes`]) under AVX2 (16 KiB 147
/// against 122 ns).
#[inline(always)]
fn mask_blocks(buf: &mut [u8], key: [u8; 4]) {
    let (body, key) = mask_head(buf, key, 32);
    mask_unaligned(body, key);
}

/// Masks the bytes of `buf` before its first `align`-aligned address
/// through [`mask_unaligned`], and returns the rest of `buf` with the key as
/// seen from there.
#[inline(always)]
fn mask_head(buf: &mut [u8], key: [u8; 4], align: usize) -> (&mut [u8], [u8; 4]) {
    // `align_offset` may give up (usize::MAX); any start is then correct.
    let skip = buf.as_ptr().align_offset(align).min(buf.len());
    let (head, body) = buf.split_at_mut(skip);
    mask_unaligned(head, key);
    (body, rotate_key(key, skip))
}

/// [`mask_blocks`] compiled for CPUs with AVX2.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx2")]
unsafe fn mask_blocks_avx2(buf: &mut [u8], key: [u8; 4]) {
    mask_blocks(buf, key);
}

/// Payloads of at least [`WIDE_MIN`] bytes where the dispatch uses
/// AVX-512: 64-byte aligned stores.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx512f")]
unsafe fn mask_lanes_avx512(buf: &mut [u8], key: [u8; 4]) {
    mask_lanes::<64>(buf, key);
}

/// [`mask_blocks`] with `N`-byte blocks written as one flat loop of 8-byte
/// lanes, for AVX-512: there LLVM vectorizes [`mask_blocks`]' nested block
/// and lane loops across blocks, with a gather and a scatter per lane,
/// while it turns this loop into 64-byte loads and stores, four per
/// iteration.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[inline(always)]
fn mask_lanes<const N: usize>(buf: &mut [u8], key: [u8; 4]) {
    let (body, key) = mask_head(buf, key, N);
    let k = wide(u32::from_ne_bytes(key));
    let (body, rest) = body.split_at_mut(body.len() / N * N);
    xor_lanes(body, k);
    // Whole blocks keep the key's phase.
    mask_unaligned(rest, key);
}

/// Payloads from [`VECTOR_MIN`] to [`WIDE_ALIGN_MIN`] where the dispatch
/// uses AVX-512: 64-byte blocks from wherever `buf` starts (as
/// [`mask_lanes`] without the alignment), then [`mask_unaligned`]. The
/// flat loop covers groups of four blocks; left to it, the one to three
/// blocks after them went one 32-byte register at a time (384 B: 0.93x to
/// 1.02x yawc's function in `mask_rounds`, 1.23x to 1.24x with the blocks
/// written out; on a Xeon).
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx512f")]
unsafe fn mask_unaligned_avx512(buf: &mut [u8], key: [u8; 4]) {
    let k = wide(u32::from_ne_bytes(key));
    let (body, rest) = buf.split_at_mut(buf.len() / 256 * 256);
    xor_lanes(body, k);
    // At most three blocks are left; written out, not as a loop, because
    // LLVM would vectorize that loop across blocks with gathers.
    let rest = xor_first_block(rest, k);
    let rest = xor_first_block(rest, k);
    let rest = xor_first_block(rest, k);
    mask_unaligned(rest, key);
}

/// XORs the first 64 bytes of `buf`, if it holds as many, with `k`, and
/// returns the bytes after them (or all of `buf`).
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[inline(always)]
fn xor_first_block(buf: &mut [u8], k: u64) -> &mut [u8] {
    if buf.len() < 64 {
        return buf;
    }
    let (block, rest) = buf.split_at_mut(64);
    xor_lanes(block, k);
    rest
}

/// Appends `src` to `buf` XORed with the masking `key`, where `src` starts
/// `offset` bytes into the frame payload: copying and (un)masking in one
/// pass, for a client's outgoing payloads and a server's incoming ones.
pub(crate) fn extend_masked(buf: &mut BytesMut, src: &[u8], key: [u8; 4], offset: u64) {
    // SAFETY: `copy_masked` writes every element of the `src.len()` bytes
    // it is given (it asserts the lengths are equal). This module's tests
    // check the appended bytes against the naive reference, and the
    // proptests in `tests/roundtrip.rs` the connection's input against the
    // decoder's in-place unmasking over arbitrary splits.
    unsafe {
        // The offset only matters modulo 4.
        append_written(buf, src.len(), |dst| {
            copy_masked(dst, src, key, (offset % 4) as usize)
        });
    }
}

/// Appends a whole `frame` to `buf`: its first `head_len` bytes (the
/// header) as they are, the rest (the payload) XORed with the masking
/// `key`, with one reservation and one length update for both.
pub(crate) fn extend_framed(buf: &mut BytesMut, frame: &[u8], head_len: usize, key: [u8; 4]) {
    let Some((head, payload)) = frame.split_at_checked(head_len) else {
        return;
    };
    // SAFETY: every byte is written: the header by the 16-byte copy (which
    // covers a header of at most 14 bytes) or else the loop, every byte
    // after it by `copy_masked`. `dst` is as long as `frame`, so
    // `get_mut(head_len..)` finds the payload's room, as `split_at_checked`
    // found the payload. Tests as for `extend_masked`, and
    // `extend_framed_copies_header_and_unmasks_payload` below.
    unsafe {
        append_written(buf, frame.len(), |dst| {
            match (dst.first_chunk_mut::<16>(), frame.first_chunk::<16>()) {
                // One 16-byte move instead of a loop over the header.
                (Some(to), Some(from)) if head_len <= 16 => *to = from.map(MaybeUninit::new),
                _ => {
                    for (slot, byte) in dst.iter_mut().zip(head) {
                        slot.write(*byte);
                    }
                }
            }
            if let Some(dst) = dst.get_mut(head_len..) {
                copy_masked(dst, payload, key, 0);
            }
        });
    }
}

/// [`extend_masked`], and whether every byte it appended is ASCII, for
/// text on CPUs without AVX2 (with it, `text.rs` checks all of UTF-8 as it
/// copies): all-ASCII text needs no UTF-8 pass of its own, and the copy
/// learns it for an OR per word. The portable loops only, which are what
/// the dispatch picks on such CPUs.
pub(crate) fn extend_masked_ascii(
    buf: &mut BytesMut,
    src: &[u8],
    key: [u8; 4],
    offset: u64,
) -> bool {
    // SAFETY: `copy_short` and `copy_blocks` write every element of `dst`
    // (as long as `src`); tests as for `extend_masked`, and
    // `ascii_copy_reports_every_high_byte` below.
    let seen = unsafe {
        append_written(buf, src.len(), |dst| {
            let key = rotate_key(key, (offset % 4) as usize);
            if src.len() < 32 {
                copy_short::<true>(dst, src, key)
            } else {
                copy_blocks::<true>(dst, src, key)
            }
        })
    };
    seen.is_some_and(|seen| seen & HIGH_BITS == 0)
}

/// The top bit of every byte of a word.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Appends `len` bytes to `buf` that `write` writes in place, into the
/// buffer's spare capacity, and returns what `write` returns (`None` only
/// if the room `reserve` made is missing, which it never is).
///
/// # Safety
///
/// `write` must write every element of the slice it is given.
#[inline(always)]
pub(super) unsafe fn append_written<T>(
    buf: &mut BytesMut,
    len: usize,
    write: impl FnOnce(&mut [MaybeUninit<u8>]) -> T,
) -> Option<T> {
    buf.reserve(len);
    let before = buf.len();
    let dst = buf.spare_capacity_mut().get_mut(..len)?;
    let result = write(dst);
    // SAFETY: `reserve` made room for `len` more bytes, and `write` wrote
    // all of them (the caller's promise).
    unsafe { buf.set_len(before + len) };
    Some(result)
}

/// Writes `src` XORed with the masking `key` into `dst` (which must be as
/// long), where `src` starts `offset` bytes into the frame payload: the copy
/// into the receive buffer and the unmasking in one pass over the bytes.
/// Every element of `dst` is written.
fn copy_masked(dst: &mut [MaybeUninit<u8>], src: &[u8], key: [u8; 4], offset: usize) {
    assert_eq!(dst.len(), src.len(), "copy_masked: lengths differ");
    let key = rotate_key(key, offset);
    if src.len() < 32 {
        copy_short::<false>(dst, src, key);
        return;
    }
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    match simd() {
        Simd::Avx512 if src.len() >= 64 => {
            // SAFETY: `copy_lanes_avx512` is only unsafe because it is
            // compiled with AVX-512F enabled; `simd` gives `Avx512` only
            // where the CPU has it. Its body is safe code, tested against
            // the naive reference in this module's tests.
            unsafe { copy_lanes_avx512(dst, src, key) };
            return;
        }
        Simd::Avx2 | Simd::Avx2AlignEarly | Simd::Avx512 => {
            // SAFETY: `copy_blocks_avx2` is only unsafe because it is
            // compiled with AVX2 enabled; `simd` gives `Avx2`,
            // `Avx2AlignEarly` or `Avx512` only where the CPU has AVX2. Its
            // body is the same safe code as `copy_blocks`, tested against
            // the naive reference in this module's tests.
            unsafe { copy_blocks_avx2(dst, src, key) };
            return;
        }
        Simd::Portable => {}
    }
    copy_blocks::<false>(dst, src, key);
}

/// Fewer than 32 bytes: 4-byte words, then bytes. With `SEEN`, returns
/// the bytes written ORed together; otherwise 0.
#[inline]
fn copy_short<const SEEN: bool>(dst: &mut [MaybeUninit<u8>], src: &[u8], key: [u8; 4]) -> u64 {
    let mut seen = 0;
    let mut copy = |d: &mut MaybeUninit<u8>, masked: u8| {
        if SEEN {
            seen |= masked;
        }
        d.write(masked);
    };
    let mut dst_words = dst.chunks_exact_mut(4);
    let mut src_words = src.chunks_exact(4);
    for (d, s) in (&mut dst_words).zip(&mut src_words) {
        for ((d, s), k) in d.iter_mut().zip(s).zip(key) {
            copy(d, s ^ k);
        }
    }
    let dst = dst_words.into_remainder();
    let src = src_words.remainder();
    for ((d, s), k) in dst.iter_mut().zip(src).zip(key) {
        copy(d, s ^ k);
    }
    u64::from(seen)
}

/// [`mask_blocks`] from one buffer into another (at least one block long):
/// the first and last blocks unaligned, the middle ones stored at aligned
/// addresses of `dst`. Blocks may overlap, as they write the same values
/// there; together they write every element of `dst`. With `SEEN`, returns
/// the bytes written ORed together, spread over a word's lanes (whether
/// any has its top bit set survives [`HIGH_BITS`]); otherwise 0.
#[inline(always)]
fn copy_blocks<const SEEN: bool>(dst: &mut [MaybeUninit<u8>], src: &[u8], key: [u8; 4]) -> u64 {
    const N: usize = 32;
    copy_framed::<N, SEEN>(dst, src, key, |d, s, k| {
        let mut seen = 0;
        for (d, s) in d.chunks_exact_mut(N).zip(s.chunks_exact(N)) {
            seen |= copy_block::<N, SEEN>(d, s, k);
        }
        seen
    })
}

/// The frame of [`copy_blocks`] for `N`-byte blocks: `middle` copies the
/// whole blocks from the first aligned address of `dst` (given the key
/// word there, repeated), then the last and first blocks are written.
#[inline(always)]
fn copy_framed<const N: usize, const SEEN: bool>(
    dst: &mut [MaybeUninit<u8>],
    src: &[u8],
    key: [u8; 4],
    middle: impl FnOnce(&mut [MaybeUninit<u8>], &[u8], u64) -> u64,
) -> u64 {
    let len = src.len();
    let skip = dst.as_ptr().align_offset(N).min(N);
    let k = u32::from_ne_bytes(key);
    let mut seen = 0;
    if let (Some(d), Some(s)) = (dst.get_mut(skip..), src.get(skip..)) {
        let whole = d.len() / N * N;
        if let (Some(d), Some(s)) = (d.get_mut(..whole), s.get(..whole)) {
            seen |= middle(d, s, wide(rotate_word(k, skip)));
        }
    }
    let last = len.saturating_sub(N);
    if let (Some(d), Some(s)) = (dst.get_mut(last..), src.get(last..)) {
        seen |= copy_block::<N, SEEN>(d, s, wide(rotate_word(k, last)));
    }
    seen | copy_block::<N, SEEN>(dst, src, wide(k))
}

/// Writes the first `N` bytes of `src` XORed with a key word repeated over
/// them to the first `N` of `dst` (as [`xor_lanes`]); nothing if either is
/// shorter.
#[inline(always)]
fn copy_block<const N: usize, const SEEN: bool>(
    dst: &mut [MaybeUninit<u8>],
    src: &[u8],
    k: u64,
) -> u64 {
    match (dst.first_chunk_mut::<N>(), src.first_chunk::<N>()) {
        (Some(dst), Some(src)) => copy_lanes::<SEEN>(dst, src, k),
        _ => 0,
    }
}

/// Writes every 8-byte lane of `src` XORed with `k` to `dst` (as long);
/// with `SEEN`, returns the lanes ORed together.
#[inline(always)]
fn copy_lanes<const SEEN: bool>(dst: &mut [MaybeUninit<u8>], src: &[u8], k: u64) -> u64 {
    let mut seen = 0;
    for (d, s) in dst.chunks_exact_mut(8).zip(src.chunks_exact(8)) {
        if let Some(s) = s.first_chunk::<8>() {
            let masked = u64::from_ne_bytes(*s) ^ k;
            if SEEN {
                seen |= masked;
            }
            for (d, m) in d.iter_mut().zip(masked.to_ne_bytes()) {
                d.write(m);
            }
        }
    }
    seen
}

/// [`copy_blocks`] compiled for CPUs with AVX2.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx2")]
unsafe fn copy_blocks_avx2(dst: &mut [MaybeUninit<u8>], src: &[u8], key: [u8; 4]) {
    copy_blocks::<false>(dst, src, key);
}

/// [`copy_blocks`] for CPUs with AVX-512 (`src` at least 64 bytes): 64-byte
/// blocks, the middle ones as one flat loop of 8-byte lanes for the reason
/// given at [`mask_lanes`]. 64 B to 16 KiB 10 to 30% faster than the AVX2
/// blocks in an A/B run (16 KiB 125 against 182 ns, level with memcpy).
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx512f")]
unsafe fn copy_lanes_avx512(dst: &mut [MaybeUninit<u8>], src: &[u8], key: [u8; 4]) {
    copy_framed::<64, false>(dst, src, key, copy_lanes::<false>);
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    std::thread_local! {
        /// The instruction set this test thread makes the dispatch use
        /// (the widest the CPU has, if it lacks this one), rather than the
        /// one it prefers.
        pub(super) static SIMD_FORCED: core::cell::Cell<Option<Simd>> =
            const { core::cell::Cell::new(None) };
    }

    /// Runs `check` once per instruction set the dispatch can use (those
    /// this CPU lacks fall back to the next narrower one, as in use), so
    /// every build of the loops is tested here, not only the widest.
    pub(crate) fn for_each_simd(mut check: impl FnMut(&str)) {
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        {
            for (cap, name) in [
                (Simd::Avx512, "up to AVX-512"),
                (Simd::Avx2AlignEarly, "up to AVX2, aligned early"),
                (Simd::Avx2, "up to AVX2"),
                (Simd::Portable, "portable"),
            ] {
                SIMD_FORCED.with(|c| c.set(Some(cap)));
                check(name);
            }
            SIMD_FORCED.with(|c| c.set(None));
        }
        #[cfg(not(all(target_arch = "x86_64", feature = "std")))]
        check("native");
    }

    /// The vendor test reads CPUID right: AVX-512 is preferred on Intel's
    /// CPUs only (the kernel names the vendor in /proc/cpuinfo).
    #[cfg(all(target_arch = "x86_64", feature = "std", target_os = "linux"))]
    #[test]
    fn wide_stores_are_preferred_on_intel_only() {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
        let vendor = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("vendor_id"))
            .and_then(|rest| rest.split(':').nth(1))
            .map(str::trim)
            .unwrap();
        assert_eq!(wide_stores_pay(), vendor == "GenuineIntel", "{vendor}");
        let expected = match supported_simd() {
            Simd::Avx512 if vendor != "GenuineIntel" => Simd::Avx2AlignEarly,
            level => level,
        };
        assert_eq!(detect_simd(), expected);
    }

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

    /// Every length up to 200 and every length around the sizes where
    /// `apply_mask` changes method.
    fn lengths() -> impl Iterator<Item = usize> {
        (0..200)
            .chain(VECTOR_MIN - 40..VECTOR_MIN + 40)
            .chain(EARLY_ALIGN_MIN - 40..EARLY_ALIGN_MIN + 72)
            .chain(ALIGN_MIN - 40..ALIGN_MIN + 72)
            .chain(WIDE_ALIGN_MIN - 72..WIDE_ALIGN_MIN + 72)
            .chain(WIDE_MIN - 72..WIDE_MIN + 136)
    }

    #[test]
    fn every_small_length_offset_and_alignment() {
        let key = [0x01, 0x23, 0x45, 0x67];
        let storage: Vec<u8> = (0..2300u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut in_place = storage.clone();
        // Starts 0 to 71 put the payload at every address modulo 64.
        for start in 0..72 {
            for len in lengths() {
                let range = start..start + len;
                for offset in 0..5 {
                    let mut slow = storage[range.clone()].to_vec();
                    naive(&mut slow, key, offset);
                    let mut portable = storage[range.clone()].to_vec();
                    apply_mask_portable(&mut portable, key, offset);
                    assert_eq!(
                        portable, slow,
                        "apply_mask_portable, start={start} len={len} offset={offset}"
                    );
                    for_each_simd(|simd| {
                        in_place[range.clone()].copy_from_slice(&storage[range.clone()]);
                        apply_mask(&mut in_place[range.clone()], key, offset);
                        assert_eq!(
                            &in_place[range.clone()],
                            &slow[..],
                            "{simd}, start={start} len={len} offset={offset}"
                        );
                    });
                }
            }
        }
    }

    /// `src` masked through [`extend_masked`], after `before` bytes already
    /// in the buffer (which moves where the copy lands against the 32-byte
    /// alignment the stores use: 32 bytes under AVX2, 64 under AVX-512).
    fn copied(src: &[u8], key: [u8; 4], offset: usize, before: usize) -> Vec<u8> {
        let mut buf = BytesMut::with_capacity(before + src.len());
        buf.extend((0..before).map(|i| i as u8));
        extend_masked(&mut buf, src, key, offset as u64);
        assert!(buf[..before].iter().enumerate().all(|(i, b)| *b == i as u8));
        buf[before..].to_vec()
    }

    #[test]
    fn extend_framed_copies_header_and_unmasks_payload() {
        let key = [0x89, 0xab, 0xcd, 0xef];
        let storage: Vec<u8> = (0..1200u32).map(|i| (i * 7 + 3) as u8).collect();
        // Frames shorter and longer than the 16-byte header copy, with
        // every header length, landing after 0 to 40 bytes.
        for len in (0..40).chain([1024, 1100]) {
            for head_len in (0..=14).filter(|h| *h <= len) {
                for before in [0, 1, 7, 31, 40] {
                    let frame = &storage[..len];
                    let mut expected: Vec<u8> = (0..before).map(|i| i as u8).collect();
                    expected.extend_from_slice(&frame[..head_len]);
                    let mut payload = frame[head_len..].to_vec();
                    naive(&mut payload, key, 0);
                    expected.extend_from_slice(&payload);
                    for_each_simd(|simd| {
                        let mut buf = BytesMut::new();
                        buf.extend((0..before).map(|i| i as u8));
                        extend_framed(&mut buf, frame, head_len, key);
                        assert_eq!(
                            buf[..],
                            expected[..],
                            "{simd}, len={len} head_len={head_len} before={before}"
                        );
                    });
                }
            }
        }
    }

    #[test]
    fn copy_masked_every_small_length_offset_and_alignment() {
        let key = [0x89, 0xab, 0xcd, 0xef];
        let storage: Vec<u8> = (0..300u32).map(|i| (i * 13 + 5) as u8).collect();
        for start in 0..9 {
            for before in 0..65 {
                for len in 0..200 {
                    for offset in 0..5 {
                        let src = &storage[start..start + len];
                        let mut slow = src.to_vec();
                        naive(&mut slow, key, offset);
                        for_each_simd(|simd| {
                            assert_eq!(
                                copied(src, key, offset, before),
                                slow,
                                "{simd}, start={start} before={before} len={len} offset={offset}"
                            );
                        });
                    }
                }
            }
        }
    }

    /// `src` masked through [`extend_masked_ascii`] after `before` bytes,
    /// and what it said of the bytes it appended.
    fn copied_ascii(src: &[u8], key: [u8; 4], offset: usize, before: usize) -> (Vec<u8>, bool) {
        let mut buf = BytesMut::with_capacity(before + src.len());
        buf.extend((0..before).map(|i| i as u8 | 0x80));
        let ascii = extend_masked_ascii(&mut buf, src, key, offset as u64);
        assert!(buf[..before]
            .iter()
            .enumerate()
            .all(|(i, b)| *b == i as u8 | 0x80));
        (buf[before..].to_vec(), ascii)
    }

    /// Every length below 160, every offset, seven alignments, and the one
    /// non-ASCII byte (if any) at many places: the copy reports ASCII
    /// exactly when it is, and the bytes before the copy (all non-ASCII)
    /// never count.
    #[test]
    fn ascii_copy_reports_every_high_byte() {
        let key = [0x89, 0xab, 0xcd, 0xef];
        for before in [0, 1, 7, 31, 32, 33, 63] {
            for len in 0..160 {
                for offset in 0..4 {
                    for high in (0..=len).step_by(1 + len / 16) {
                        let mut plain: Vec<u8> =
                            (0..len).map(|i| (i * 7 + 3) as u8 & 0x7f).collect();
                        if let Some(b) = plain.get_mut(high) {
                            *b |= 0x80;
                        }
                        let mut src = plain.clone();
                        naive(&mut src, key, offset);
                        let (out, ascii) = copied_ascii(&src, key, offset, before);
                        assert_eq!(out, plain, "before={before} len={len}");
                        assert_eq!(
                            ascii,
                            high == len,
                            "before={before} len={len} offset={offset} high={high}"
                        );
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn equals_naive_reference(
            data in proptest::collection::vec(any::<u8>(), 0..5000),
            key in any::<[u8; 4]>(),
            offset in any::<usize>(),
            start in 0usize..64,
        ) {
            let start = start.min(data.len());
            let mut portable = data.clone();
            let mut slow = data.clone();
            apply_mask_portable(&mut portable[start..], key, offset);
            naive(&mut slow[start..], key, offset);
            for_each_simd(|simd| {
                let mut fast = data.clone();
                apply_mask(&mut fast[start..], key, offset);
                assert_eq!(&fast, &slow, "{}", simd);
            });
            prop_assert_eq!(portable, slow);
        }

        #[test]
        fn copy_masked_equals_naive_reference(
            data in proptest::collection::vec(any::<u8>(), 0..4096),
            key in any::<[u8; 4]>(),
            offset in any::<usize>(),
            start in 0usize..64,
            before in 0usize..64,
        ) {
            let start = start.min(data.len());
            let mut slow = data[start..].to_vec();
            naive(&mut slow, key, offset);
            for_each_simd(|simd| {
                assert_eq!(copied(&data[start..], key, offset, before), slow, "{}", simd);
            });
        }

        #[test]
        fn ascii_copy_equals_naive_reference(
            plain in proptest::collection::vec(0u8..0x80, 0..4096),
            high in proptest::option::of((any::<usize>(), 0x80u8..=0xff)),
            key in any::<[u8; 4]>(),
            offset in any::<usize>(),
            before in 0usize..64,
        ) {
            let mut plain = plain;
            if let Some((at, byte)) = high {
                if !plain.is_empty() {
                    let at = at % plain.len();
                    plain[at] = byte;
                }
            }
            let mut src = plain.clone();
            naive(&mut src, key, offset);
            let (out, ascii) = copied_ascii(&src, key, offset, before);
            prop_assert_eq!(&out, &plain);
            prop_assert_eq!(ascii, plain.is_ascii());
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
