//! The frame header: opcode, flags, length and masking key (RFC 6455 section 5.2).

use crate::error::ProtocolError;
use crate::Status;

/// Longest possible header: 2 bytes, 8 bytes of extended length, 4 of mask key.
pub const MAX_HEADER_LEN: usize = 14;

/// The RSV1 bit in [`FrameHeader::rsv`]: set on the first frame of a
/// compressed message under permessage-deflate (RFC 7692 section 6).
pub const RSV1: u8 = 0b100;

/// Largest payload a control frame (close, ping, pong) may carry.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame opcode.
///
/// Reserved opcodes (3-7 and 11-15) are not representable: the decoder
/// rejects them with [`ProtocolError::ReservedOpcode`].
///
/// ```
/// use wsproto_core::OpCode;
/// assert!(OpCode::Ping.is_control());
/// assert_eq!(OpCode::Text as u8, 0x1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// Continues a fragmented message.
    Continuation = 0x0,
    /// First frame of a text message.
    Text = 0x1,
    /// First frame of a binary message.
    Binary = 0x2,
    /// Starts or answers the close handshake.
    Close = 0x8,
    /// Asks the peer for a pong.
    Ping = 0x9,
    /// Answers a ping, or is sent unsolicited as a heartbeat.
    Pong = 0xA,
}

impl OpCode {
    /// Maps the 4-bit wire value to an opcode, `None` for reserved values.
    pub fn from_u8(value: u8) -> Option<OpCode> {
        Some(match value {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// Whether this is a control opcode (close, ping, pong).
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// A parsed frame header.
///
/// ```
/// use wsproto_core::{FrameHeader, OpCode, Status};
///
/// // RFC 6455 section 5.7: a single-frame unmasked text message "Hello".
/// let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
/// let Status::Complete((header, len)) = FrameHeader::parse(&bytes).unwrap() else { panic!() };
/// assert_eq!(len, 2);
/// assert!(header.fin);
/// assert_eq!(header.opcode, OpCode::Text);
/// assert_eq!(header.payload_len, 5);
/// assert_eq!(header.mask, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Last frame of a message.
    pub fin: bool,
    /// The three reserved bits RSV1..RSV3 as the low three bits (RSV1 = 0b100).
    pub rsv: u8,
    /// The frame's opcode.
    pub opcode: OpCode,
    /// The masking key, present on every client-to-server frame.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses a header from the start of `buf`.
    ///
    /// Returns [`Status::Partial`] when `buf` does not yet hold the whole
    /// header, or the header and its length in bytes. Checks only what the
    /// header alone can tell: reserved opcodes, a 64-bit length with its top
    /// bit set, and the rules for control frames. Role, RSV and size rules
    /// belong to the decoder, which knows the configuration.
    pub fn parse(buf: &[u8]) -> Result<Status<(FrameHeader, usize)>, ProtocolError> {
        let (b0, b1) = match buf {
            [b0, b1, ..] => (*b0, *b1),
            _ => return Ok(Status::Partial),
        };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x7;
        let opcode = OpCode::from_u8(b0 & 0x0f).ok_or(ProtocolError::ReservedOpcode(b0 & 0x0f))?;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7f;
        let ext_len = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask_len = if masked { 4 } else { 0 };
        let header_len = 2 + ext_len + mask_len;
        let Some(rest) = buf.get(2..header_len) else {
            return Ok(Status::Partial);
        };
        let (len_bytes, mask_bytes) = rest.split_at(ext_len);
        let payload_len = match *len_bytes {
            [] => u64::from(len7),
            [hi, lo] => u64::from(u16::from_be_bytes([hi, lo])),
            [a, b, c, d, e, f, g, h] => {
                let len = u64::from_be_bytes([a, b, c, d, e, f, g, h]);
                if len >> 63 != 0 {
                    return Err(ProtocolError::InvalidLength);
                }
                len
            }
            _ => return Err(ProtocolError::InvalidLength),
        };
        let mask = if masked {
            let mut m = [0u8; 4];
            m.copy_from_slice(mask_bytes);
            Some(m)
        } else {
            None
        };
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlFrameTooLong(payload_len));
            }
        }
        Ok(Status::Complete((
            FrameHeader {
                fin,
                rsv,
                opcode,
                mask,
                payload_len,
            },
            header_len,
        )))
    }

    /// Length in bytes of this header on the wire.
    pub fn encoded_len(&self) -> usize {
        2 + match self.payload_len {
            0..=125 => 0,
            126..=0xffff => 2,
            _ => 8,
        } + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Writes the header into `out`, which must hold at least
    /// [`MAX_HEADER_LEN`] bytes, and returns the number of bytes written.
    ///
    /// Uses the shortest length form, as RFC 6455 section 5.2 requires:
    /// 7-bit for at most 125 bytes, 16-bit up to 65535, 64-bit above.
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x7) << 4) | self.opcode as u8;
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut n = match self.payload_len {
            len @ 0..=125 => {
                out[1] = mask_bit | len as u8;
                2
            }
            len @ 126..=0xffff => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            len => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&len.to_be_bytes());
                10
            }
        };
        if let (Some(key), Some(slot)) = (self.mask, out.get_mut(n..n + 4)) {
            slot.copy_from_slice(&key);
            n += 4;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_complete(bytes: &[u8]) -> (FrameHeader, usize) {
        match FrameHeader::parse(bytes).unwrap() {
            Status::Complete(h) => h,
            Status::Partial => panic!("partial"),
        }
    }

    fn encode(h: &FrameHeader) -> alloc::vec::Vec<u8> {
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut out);
        assert_eq!(n, h.encoded_len());
        out[..n].to_vec()
    }

    #[test]
    fn length_form_boundaries() {
        for (len, expected_header_len) in [
            (0u64, 2usize),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (u64::MAX >> 1, 10),
        ] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let h = FrameHeader {
                    fin: true,
                    rsv: 0,
                    opcode: OpCode::Binary,
                    mask,
                    payload_len: len,
                };
                let bytes = encode(&h);
                let mask_len = if mask.is_some() { 4 } else { 0 };
                assert_eq!(bytes.len(), expected_header_len + mask_len, "len {len}");
                let len7 = bytes[1] & 0x7f;
                match expected_header_len {
                    2 => assert_eq!(u64::from(len7), len),
                    4 => assert_eq!(len7, 126),
                    _ => assert_eq!(len7, 127),
                }
                assert_eq!(parse_complete(&bytes), (h, bytes.len()));
                // Every strict prefix is partial.
                for cut in 0..bytes.len() {
                    assert_eq!(FrameHeader::parse(&bytes[..cut]).unwrap(), Status::Partial);
                }
            }
        }
    }

    #[test]
    fn top_bit_of_64_bit_length_is_an_error() {
        let mut bytes = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            FrameHeader::parse(&bytes),
            Err(ProtocolError::InvalidLength)
        );
        bytes[2] = 0x7f;
        assert!(FrameHeader::parse(&bytes).is_ok());
    }

    #[test]
    fn reserved_opcodes_are_rejected() {
        for op in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
            assert_eq!(
                FrameHeader::parse(&[0x80 | op, 0]),
                Err(ProtocolError::ReservedOpcode(op))
            );
        }
    }

    #[test]
    fn control_frame_rules() {
        assert_eq!(
            FrameHeader::parse(&[0x09, 0]),
            Err(ProtocolError::FragmentedControlFrame)
        );
        assert_eq!(
            FrameHeader::parse(&[0x89, 126, 0, 126]),
            Err(ProtocolError::ControlFrameTooLong(126))
        );
        assert!(FrameHeader::parse(&[0x89, 125]).is_ok());
    }
}
