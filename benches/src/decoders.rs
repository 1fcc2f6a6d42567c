//! Each library decoding a buffer of masked client frames into messages, as
//! a server does, reading from an in-memory transport: what the `decode`
//! criterion bench and the `decode_rounds` binary time. Each returns the sum
//! of the payload lengths it was handed, so no library can skip work.

use std::hint::black_box;

use futures_util::StreamExt;
use tokio::runtime::Runtime;
use wsproto_core::{Config, Connection, Event, OpCode};

use crate::{ascii_payload, payload, AsyncSliceStream, SliceStream};

/// What a socket read delivers at a time.
pub const READ: usize = 64 * 1024;

/// The decode cases: name, payload size, opcode and payload, in the order
/// the tables list them.
pub fn cases() -> Vec<(&'static str, usize, OpCode, Vec<u8>)> {
    vec![
        ("binary", 16, OpCode::Binary, payload(16, OpCode::Binary)),
        (
            "binary",
            1024,
            OpCode::Binary,
            payload(1024, OpCode::Binary),
        ),
        (
            "binary",
            16384,
            OpCode::Binary,
            payload(16384, OpCode::Binary),
        ),
        (
            "binary",
            65536,
            OpCode::Binary,
            payload(65536, OpCode::Binary),
        ),
        ("ascii", 16384, OpCode::Text, ascii_payload(16384)),
        ("text", 16384, OpCode::Text, payload(16384, OpCode::Text)),
    ]
}

/// Ours: the input fed to a server connection `READ` bytes at a time.
pub fn wsproto(input: &[u8]) -> usize {
    let mut conn = Connection::server(Config::default());
    let mut got = 0;
    for chunk in input.chunks(READ) {
        conn.receive(chunk);
        while let Some(Event::Message(m)) = conn.poll_event().unwrap() {
            got += black_box(m).len();
        }
    }
    got
}

/// tungstenite, reading `count` messages from a blocking stream.
pub fn tungstenite(input: &[u8], count: usize) -> usize {
    let stream = SliceStream::new(input);
    let mut ws =
        tungstenite::WebSocket::from_raw_socket(stream, tungstenite::protocol::Role::Server, None);
    let mut got = 0;
    for _ in 0..count {
        got += black_box(ws.read().unwrap()).len();
    }
    got
}

/// fastwebsockets, reading `count` frames on the runtime `rt`.
pub fn fastwebsockets(rt: &Runtime, input: &[u8], count: usize) -> usize {
    rt.block_on(async {
        let stream = AsyncSliceStream(SliceStream::new(input));
        let mut ws =
            fastwebsockets::WebSocket::after_handshake(stream, fastwebsockets::Role::Server);
        let mut got = 0;
        for _ in 0..count {
            got += black_box(ws.read_frame().await.unwrap()).payload.len();
        }
        got
    })
}

/// tokio-websockets, reading `count` messages on the runtime `rt`.
pub fn tokio_websockets(rt: &Runtime, input: &[u8], count: usize) -> usize {
    rt.block_on(async {
        let stream = AsyncSliceStream(SliceStream::new(input));
        let mut ws = tokio_websockets::ServerBuilder::new().serve(stream);
        let mut got = 0;
        for _ in 0..count {
            let message = ws.next().await.unwrap().unwrap();
            got += black_box(message.into_payload()).len();
        }
        got
    })
}

/// yawc with its UTF-8 check on, reading `count` frames on the runtime `rt`.
pub fn yawc(rt: &Runtime, input: &[u8], count: usize) -> usize {
    rt.block_on(async {
        let stream = AsyncSliceStream(SliceStream::new(input));
        let options = yawc::Options::default()
            .with_utf8()
            .without_compression()
            .with_limits(64 << 20, 64 << 20);
        let mut ws = yawc::WebSocket::from_stream(stream, yawc::Role::Server, options).unwrap();
        let mut got = 0;
        for _ in 0..count {
            let frame = ws.next_frame().await.unwrap();
            got += black_box(frame.into_parts().2).len();
        }
        got
    })
}

/// The least a decoder that copies from its transport must do: every read
/// copied into one `READ`-byte buffer that stays in cache, nothing else.
pub fn memcpy_reused(input: &[u8], read_buf: &mut [u8]) {
    for src in input.chunks(READ) {
        read_buf[..src.len()].copy_from_slice(black_box(src));
        black_box(&mut *read_buf);
    }
}
