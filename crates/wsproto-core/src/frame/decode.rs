//! The incremental frame decoder.
//!
//! It keeps its state between calls, so the input may be split at any byte.
//! Payload bytes are unmasked in place as soon as they arrive (unless a
//! `Connection` unmasked them as it copied them in: see `unmask`), which
//! lets the connection validate text before the frame is complete, and a
//! complete payload is split off the receive buffer as a `Bytes` without
//! copying.

use bytes::{Buf, Bytes, BytesMut};
use core::ops::Range;

use super::header::FrameHeader;
use super::mask::apply_mask;
use crate::error::ProtocolError;
use crate::Status;

/// Which peer's frames are being decoded; decides the masking rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We are the client: frames from the server must not be masked.
    Client,
    /// We are the server: frames from the client must be masked.
    Server,
}

/// A complete frame split off the receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The frame's header.
    pub header: FrameHeader,
    /// The unmasked payload, a zero-copy slice of the receive buffer.
    pub payload: Bytes,
}

/// One step of decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A header was parsed and checked; its payload follows.
    Header(FrameHeader),
    /// More payload of the current frame arrived and is now unmasked at this
    /// range of the receive buffer (the frame is not complete yet).
    Payload(Range<usize>),
    /// The current frame is complete. The payload's first `seen` bytes were
    /// already reported through [`Step::Payload`].
    Frame {
        /// The frame.
        frame: Frame,
        /// How many leading payload bytes were already reported.
        seen: usize,
    },
}

#[derive(Debug, Clone, Copy)]
enum State {
    Header,
    Payload {
        header: FrameHeader,
        unmasked: usize,
    },
}

/// Decodes frames from a receive buffer, enforcing the per-frame rules.
///
/// ```
/// use bytes::BytesMut;
/// use wsproto_core::frame::{FrameDecoder, Role, Step};
/// use wsproto_core::Status;
///
/// // RFC 6455 section 5.7: a masked "Hello" from a client.
/// let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// let mut buf = BytesMut::from(&wire[..]);
/// let mut decoder = FrameDecoder::new(Role::Server, 0, 1 << 20);
/// assert!(matches!(decoder.step(&mut buf).unwrap(), Status::Complete(Step::Header(_))));
/// let Status::Complete(Step::Frame { frame, .. }) = decoder.step(&mut buf).unwrap() else { panic!() };
/// assert_eq!(&frame.payload[..], b"Hello");
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    role: Role,
    allowed_rsv: u8,
    max_frame_size: usize,
    state: State,
}

impl FrameDecoder {
    /// A decoder for `role`, accepting the RSV bits in `allowed_rsv`
    /// (0 without extensions) and payloads of at most `max_frame_size` bytes.
    pub fn new(role: Role, allowed_rsv: u8, max_frame_size: usize) -> FrameDecoder {
        FrameDecoder {
            role,
            allowed_rsv,
            max_frame_size,
            state: State::Header,
        }
    }

    /// The payload being decoded, if any: its key, how many of its bytes
    /// the decoder has seen (and unmasked), and how many are still to come.
    pub(crate) fn payload_progress(&self) -> Option<(Option<[u8; 4]>, u64, u64)> {
        match self.state {
            State::Header => None,
            State::Payload { header, unmasked } => Some((
                header.mask,
                unmasked as u64,
                header.payload_len.saturating_sub(unmasked as u64),
            )),
        }
    }

    /// Whether the decoder is between frames.
    pub fn at_frame_boundary(&self) -> bool {
        matches!(self.state, State::Header)
    }

    /// Advances by one step over `buf`, consuming the header and, when the
    /// frame is complete, its payload. [`Status::Partial`] means more input
    /// is needed.
    pub fn step(&mut self, buf: &mut BytesMut) -> Result<Status<Step>, ProtocolError> {
        self.step_premasked(buf, 0, None)
    }

    /// [`step`](Self::step) over a buffer whose first `premasked` bytes are
    /// headers and payload bytes already unmasked (by the connection's
    /// `Unmasker`, as it copied them in).
    ///
    /// With `whole`, a frame whose payload is all buffered comes out in one
    /// step, as [`Step::Frame`] with `seen` 0, and the length of its header,
    /// which was not reported as a [`Step::Header`], is put in `whole`
    /// (left alone otherwise). Small frames then cost one step instead of
    /// two, and their header is not written to the decoder's state and read
    /// back.
    pub(crate) fn step_premasked(
        &mut self,
        buf: &mut BytesMut,
        premasked: usize,
        whole: Option<&mut usize>,
    ) -> Result<Status<Step>, ProtocolError> {
        match self.state {
            State::Header => {
                let (header, header_len) = match FrameHeader::parse(buf)? {
                    Status::Complete(h) => h,
                    Status::Partial => return Ok(Status::Partial),
                };
                self.check(&header)?;
                // `check` bounded the length by `max_frame_size`, a usize.
                let len = header.payload_len as usize;
                if let Some(whole) = whole {
                    if buf.len().saturating_sub(header_len) >= len {
                        buf.advance(header_len);
                        *whole = header_len;
                        let from = premasked.saturating_sub(header_len);
                        let payload = take_payload(buf, len, header.mask, from);
                        return Ok(Status::Complete(Step::Frame {
                            frame: Frame { header, payload },
                            seen: 0,
                        }));
                    }
                }
                buf.advance(header_len);
                self.state = State::Payload {
                    header,
                    unmasked: 0,
                };
                Ok(Status::Complete(Step::Header(header)))
            }
            State::Payload { header, unmasked } => {
                // `check` bounded the length by `max_frame_size`, a usize.
                let len = header.payload_len as usize;
                let available = buf.len().min(len);
                let from = unmasked.max(premasked);
                if available == len {
                    let payload = take_payload(buf, len, header.mask, from);
                    self.state = State::Header;
                    return Ok(Status::Complete(Step::Frame {
                        frame: Frame { header, payload },
                        seen: unmasked,
                    }));
                }
                if let Some(key) = header.mask {
                    if let Some(newly) = buf.get_mut(from..available) {
                        apply_mask(newly, key, from);
                    }
                }
                if available > unmasked {
                    self.state = State::Payload {
                        header,
                        unmasked: available,
                    };
                    return Ok(Status::Complete(Step::Payload(unmasked..available)));
                }
                Ok(Status::Partial)
            }
        }
    }

    fn check(&self, header: &FrameHeader) -> Result<(), ProtocolError> {
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if header.rsv & !self.allowed_rsv != 0 {
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        if header.payload_len > self.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooLarge {
                len: header.payload_len,
                limit: self.max_frame_size,
            });
        }
        Ok(())
    }
}

/// Splits a whole payload of `len` bytes off the front of `buf`, unmasking
/// its bytes from `from` on with `key`.
///
/// The unmasking comes between the split and `freeze`: straight after the
/// split, `freeze` read its result (stored field by field) with one wider
/// load that waited for those stores to reach the cache, a
/// store-forwarding stall that took 18% of decoding 16-byte frames.
#[inline(always)]
fn take_payload(buf: &mut BytesMut, len: usize, key: Option<[u8; 4]>, from: usize) -> Bytes {
    let mut payload = buf.split_to(len);
    if let Some(key) = key {
        if let Some(newly) = payload.get_mut(from..) {
            apply_mask(newly, key, from);
        }
    }
    payload.freeze()
}
