//! Shared inputs for the benchmarks in `benches/benches/`.

use bytes::BytesMut;
use wsproto_core::frame::encode_frame;
use wsproto_core::OpCode;

/// `count` masked client frames of `size` bytes each, as a server receives them.
pub fn masked_frames(count: usize, size: usize, opcode: OpCode) -> BytesMut {
    let payload: Vec<u8> = match opcode {
        OpCode::Text => {
            let mut text = String::with_capacity(size);
            for c in "aé€😀".chars().cycle() {
                if text.len() + c.len_utf8() > size {
                    break;
                }
                text.push(c);
            }
            while text.len() < size {
                text.push('a');
            }
            text.into_bytes()
        }
        _ => (0..size).map(|i| i as u8).collect(),
    };
    let mut out = BytesMut::new();
    for i in 0..count {
        let key = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes();
        encode_frame(&mut out, opcode, true, &payload, Some(key));
    }
    out
}

/// The README's code blocks, compiled (and, where not `no_run`, run) as
/// doctests so that the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
