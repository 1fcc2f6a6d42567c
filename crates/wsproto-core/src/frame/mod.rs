//! Frames: header, incremental decoding, encoding, masking.

mod decode;
mod encode;
mod header;
mod mask;
mod text;
mod unmask;

pub use decode::{Frame, FrameDecoder, Role, Step};
pub use encode::encode_frame;
pub(crate) use encode::{encode_frame_rsv, encode_header};
pub use header::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, RSV1};
pub use mask::{apply_mask, apply_mask_portable};
pub(crate) use unmask::Unmasker;
