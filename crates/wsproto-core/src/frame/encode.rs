//! Writing frames into an outgoing buffer.

use bytes::{BufMut, BytesMut};

use super::header::{FrameHeader, OpCode, MAX_HEADER_LEN};
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
    encode_header(out, opcode, fin, rsv, payload.len(), mask);
    match mask {
        Some(key) => extend_masked(out, payload, key, 0),
        None => out.put_slice(payload),
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
    let header = FrameHeader {
        fin,
        rsv,
        opcode,
        mask,
        payload_len: payload_len as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let head_len = header.encode(&mut head);
    out.put_slice(head.get(..head_len).unwrap_or_default());
}
