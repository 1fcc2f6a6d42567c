//! Helpers shared by the integration tests.
#![allow(dead_code)]

use bytes::BytesMut;
use wsproto_core::frame::{Frame, FrameDecoder, Role, Step};
use wsproto_core::{Config, Connection, RandomSource, Status};

/// A "random" source that always yields the same bytes, so masked output
/// can be compared byte for byte with the RFC's examples.
pub struct FixedRandom(pub [u8; 4]);

impl RandomSource for FixedRandom {
    fn fill(&mut self, dest: &mut [u8]) {
        for (i, b) in dest.iter_mut().enumerate() {
            *b = self.0[i % 4];
        }
    }
}

pub fn server() -> Connection {
    Connection::server(Config::default())
}

pub fn server_with(config: Config) -> Connection {
    Connection::server(config)
}

pub fn client(key: [u8; 4]) -> Connection {
    Connection::client(Config::default(), Box::new(FixedRandom(key)))
}

pub fn client_with(config: Config, key: [u8; 4]) -> Connection {
    Connection::client(config, Box::new(FixedRandom(key)))
}

/// Drains everything the connection wants to send.
pub fn drain(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = conn.poll_transmit() {
        out.extend_from_slice(chunk);
        let n = chunk.len();
        conn.advance(n);
    }
    out
}

/// Decodes frames as the peer of `sender_role` would (masking rules apply).
pub fn frames_sent_by(sender_role: Role, bytes: &[u8]) -> Vec<Frame> {
    let receiver = match sender_role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    };
    let mut decoder = FrameDecoder::new(receiver, 0, usize::MAX);
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    loop {
        match decoder.step(&mut buf).expect("our own output must decode") {
            Status::Partial => break,
            Status::Complete(Step::Frame { frame, .. }) => frames.push(frame),
            Status::Complete(_) => {}
        }
    }
    assert!(buf.is_empty(), "trailing bytes after the last frame");
    frames
}

/// The close code in the close frame this connection queued, if any.
pub fn sent_close_code(conn: &mut Connection) -> Option<u16> {
    let role = conn.role();
    let bytes = drain(conn);
    frames_sent_by(role, &bytes)
        .into_iter()
        .find(|f| f.header.opcode == wsproto_core::OpCode::Close)
        .map(|f| {
            if f.payload.is_empty() {
                1005
            } else {
                u16::from_be_bytes([f.payload[0], f.payload[1]])
            }
        })
}

/// Masks `payload` into a client frame with the given first byte (FIN, RSV, opcode).
pub fn client_frame(b0: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut out = vec![b0];
    let len = payload.len();
    if len <= 125 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// An unmasked server frame.
pub fn server_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    let len = payload.len();
    if len <= 125 {
        out.push(len as u8);
    } else if len <= 0xffff {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}
