//! Arbitrary bytes into a connection of either role, split at a point chosen
//! by the input: never a panic, and every frame the connection sends in
//! answer decodes, with any close code valid on the wire.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wsproto_core::frame::{FrameDecoder, Step};
use wsproto_core::{ChaChaSource, CloseCode, Config, Connection, OpCode, Role, Status};

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let config = Config {
        max_frame_size: 1 << 16,
        max_message_size: 1 << 17,
        ..Config::default()
    };
    let mut conn = if control & 1 == 0 {
        Connection::server(config)
    } else {
        Connection::client(config, Box::new(ChaChaSource::from_seed([0; 32])))
    };
    let split = usize::from(control >> 1).min(input.len());
    for piece in [&input[..split], &input[split..]] {
        conn.receive(piece);
        while let Ok(Some(_)) = conn.poll_event() {}
    }
    let mut out = BytesMut::new();
    while let Some(chunk) = conn.poll_transmit() {
        out.extend_from_slice(chunk);
        let n = chunk.len();
        conn.advance(n);
    }
    let peer = match conn.role() {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let mut decoder = FrameDecoder::new(peer, 0, usize::MAX);
    loop {
        match decoder.step(&mut out) {
            Ok(Status::Complete(Step::Frame { frame, .. })) => {
                if frame.header.opcode == OpCode::Close && frame.payload.len() >= 2 {
                    let code = u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
                    assert!(CloseCode::from(code).is_valid_on_wire(), "sent close code {code}");
                }
            }
            Ok(Status::Complete(_)) => {}
            Ok(Status::Partial) => break,
            Err(e) => panic!("our own output does not decode: {e}"),
        }
    }
    assert!(out.is_empty(), "trailing bytes in our own output");
});
