//! Writing frames into an outgoing buffer.

use bytes::{Buf, BufMut, BytesMut};

use super::header::{OpCode, MAX_HEADER_LEN};
use super::mask::extend_masked;

/// Appends one frame to `out`: the header in its shortest length form, then
/// the payload, masked as it is copied when `mask` is set.
///
/// ```
/// use bytes::BytesMut;
/// use wsproto_core::frame::encode_frame;
/// use wsproto_core::OpCode;
///
/// // RFC 6455 section 5.7: the masked "Hello" a client sends.
/// let mut out = BytesMut::new();
/// encode_frame(&mut out, OpCode::Text, true, b"Hello", Some([0x37, 0xfa, 0x21, 0x3d]));
/// assert_eq!(&out[..], &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// ```
pub fn encode_frame(
    out: &mut BytesMut,
    opcode: OpCode,
    fin: bool,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    encode_frame_rsv(out, opcode, fin, 0, payload, mask);
}

/// [`encode_frame`] with RSV bits (RSV1 = 0b100 marks a compressed message).
pub(crate) fn encode_frame_rsv(
    out: &mut BytesMut,
    opcode: OpCode,
    fin: bool,
    rsv: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    out.reserve(MAX_HEADER_LEN + payload.len());
    if payload.len() >= ALIAS_MIN && out.is_empty() {
        dodge_aliasing(out, payload, MAX_HEADER_LEN);
    }
    encode_header(out, opcode, fin, rsv, payload.len(), mask);
    match mask {
        Some(key) => extend_masked(out, payload, key, 0),
        None => out.put_slice(payload),
    }
}

/// Payloads from this size are checked by [`dodge_aliasing`].
const ALIAS_MIN: usize = 4096;

/// How far behind its copy a source may lie, modulo 4 KiB, before the copy
/// slows down.
const ALIAS_WINDOW: usize = 128;

/// Moves the start of the empty buffer `out` when the payload copied to it
/// (after a header of at most `header_max` bytes) would land a little ahead
/// of `payload` modulo 4 KiB. The CPU then takes the copy's loads for
/// reads of its own recent stores (4K aliasing) and a 64 KiB copy runs
/// about a third slower; large allocations from the system allocator
/// (which start at the same offset in a page) make this the common case
/// for a payload the application allocated and the outgoing buffer.
fn dodge_aliasing(out: &mut BytesMut, payload: &[u8], header_max: usize) {
    let dst = out.as_ptr() as usize + header_max;
    let distance = dst.wrapping_sub(payload.as_ptr() as usize) % 4096;
    if distance < ALIAS_WINDOW {
        let pad = ALIAS_WINDOW * 2;
        out.reserve(pad + header_max + payload.len());
        out.put_bytes(0, pad);
        out.advance(pad);
    }
}

/// Appends only the header of a frame whose payload is `payload_len` bytes
/// (for a payload written separately, as in a vectored write).
pub(crate) fn encode_header(
    out: &mut BytesMut,
    opcode: OpCode,
    fin: bool,
    rsv: u8,
    payload_len: usize,
    mask: Option<[u8; 4]>,
) {
    // Fixed-size writes (the compiler turns each into a store), not one
    // copy of a variable-length header: for small frames the header's copy
    // cost as much as the rest of the frame.
    let b0 = (u8::from(fin) << 7) | ((rsv & 0x7) << 4) | opcode as u8;
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload_len {
        len @ 0..=125 => out.put_u16(u16::from_be_bytes([b0, mask_bit | len as u8])),
        len @ 126..=0xffff => {
            out.put_u16(u16::from_be_bytes([b0, mask_bit | 126]));
            out.put_u16(len as u16);
        }
        len => {
            out.put_u16(u16::from_be_bytes([b0, mask_bit | 127]));
            out.put_u64(len as u64);
        }
    }
    if let Some(key) = mask {
        out.put_u32(u32::from_be_bytes(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// The header written field by field is [`FrameHeader::encode`]'s, in
    /// every length form.
    #[test]
    fn header_bytes_match_frame_header_encode() {
        use super::super::header::FrameHeader;
        let lens = [
            0usize,
            1,
            125,
            126,
            127,
            0xffff,
            0x1_0000,
            0x1234_5678,
            usize::MAX >> 1,
        ];
        for len in lens {
            for mask in [None, Some([0x37, 0xfa, 0x21, 0x3d])] {
                for (fin, rsv, opcode) in [
                    (true, 0, OpCode::Text),
                    (false, 0b100, OpCode::Binary),
                    (true, 0b111, OpCode::Ping),
                ] {
                    let mut out = BytesMut::new();
                    encode_header(&mut out, opcode, fin, rsv, len, mask);
                    let header = FrameHeader {
                        fin,
                        rsv,
                        opcode,
                        mask,
                        payload_len: len as u64,
                    };
                    let mut expected = [0u8; MAX_HEADER_LEN];
                    let n = header.encode(&mut expected);
                    assert_eq!(&out[..], &expected[..n], "len {len} mask {mask:?}");
                }
            }
        }
    }

    /// A payload placed just behind the outgoing buffer modulo 4 KiB is
    /// written after a moved start, and the frame is the same.
    #[test]
    fn a_payload_that_would_alias_moves_the_buffer_start() {
        for mask in [None, Some([1, 2, 3, 4])] {
            for distance in [0, 1, 17, ALIAS_WINDOW - 1, ALIAS_WINDOW, 2000] {
                let mut out = BytesMut::with_capacity(3 * 4096 + 64 * 1024);
                let dst = out.as_ptr() as usize + MAX_HEADER_LEN;
                let storage: Vec<u8> = (0..80 * 1024u32).map(|i| (i % 251) as u8).collect();
                // Start the payload `distance` bytes before `dst` modulo 4 KiB.
                let base = storage.as_ptr() as usize;
                let start = (dst.wrapping_sub(distance).wrapping_sub(base)) % 4096;
                let payload = &storage[start..start + 8 * 1024];
                let before = out.as_ptr();
                encode_frame(&mut out, OpCode::Binary, true, payload, mask);
                let moved = out.as_ptr() != before;
                assert_eq!(moved, distance < ALIAS_WINDOW, "distance {distance}");

                let mut expected = BytesMut::new();
                encode_header(&mut expected, OpCode::Binary, true, 0, payload.len(), mask);
                let mut body = payload.to_vec();
                if let Some(key) = mask {
                    super::super::mask::apply_mask(&mut body, key, 0);
                }
                expected.extend_from_slice(&body);
                assert_eq!(out, expected);
            }
        }
    }
}
