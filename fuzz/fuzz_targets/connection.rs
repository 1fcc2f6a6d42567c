//! Arbitrary input bytes interleaved with arbitrary API calls (send, ping,
//! close, partial writes, timers) on a connection of either role.
//! Invariants: no panic; every byte the connection sends decodes as frames
//! with the right masking (a frame cut short only when a timeout aborted the
//! connection); close codes sent are valid on the wire; nothing follows our
//! close frame; once the outgoing buffer is above its limit, nothing but a
//! control frame is added to it.
#![no_main]

use std::time::Duration;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wsproto_core::frame::{FrameDecoder, Step};
use wsproto_core::{ChaChaSource, CloseCode, Config, Connection, OpCode, Role, State, Status};

const MAX_WRITE: usize = 4096;
const MAX_MESSAGE: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut ops)) = data.split_first() else {
        return;
    };
    let config = Config {
        max_frame_size: MAX_MESSAGE,
        max_message_size: MAX_MESSAGE,
        max_fragments: 8,
        max_write_buffer: MAX_WRITE,
        max_send_frame_size: if first & 2 != 0 { Some(usize::from(first >> 2) + 1) } else { None },
        ping_interval: Some(Duration::from_secs(1)),
        ping_timeout: Duration::from_secs(1),
        close_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let role = if first & 1 == 0 { Role::Server } else { Role::Client };
    let mut conn = match role {
        Role::Server => Connection::server(config),
        Role::Client => Connection::client(config, Box::new(ChaChaSource::from_seed([1; 32]))),
    };
    let peer = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let mut sent = BytesMut::new();
    let mut now = Duration::ZERO;
    let mut aborted = false;
    while let Some((&op, rest)) = ops.split_first() {
        let queued_before = conn.buffered_out();
        let (&arg, rest) = rest.split_first().unwrap_or((&0, &[]));
        let len = usize::from(arg).min(rest.len());
        let (chunk, rest) = rest.split_at(len);
        ops = rest;
        match op % 9 {
            0 => conn.receive(chunk),
            1 => conn.read_buf().extend_from_slice(chunk),
            2 => drop(conn.send_binary(chunk)),
            3 => drop(conn.send_text(&String::from_utf8_lossy(chunk))),
            4 => drop(conn.ping(&chunk[..chunk.len().min(125)])),
            5 => {
                let code = u16::from_be_bytes([arg, chunk.first().copied().unwrap_or(0)]);
                let reason = String::from_utf8_lossy(chunk.get(1..).unwrap_or(&[]));
                let reason: String = reason.chars().take(30).collect();
                drop(conn.close(CloseCode::from(code), &reason));
            }
            6 => {
                now += Duration::from_millis(u64::from(arg) * 20);
                let queued = conn.buffered_out();
                conn.handle_timeout(now);
                // A timeout that aborts drops what was queued: the transport
                // is to be dropped, so a partly written frame stays cut.
                if queued > 0 && conn.buffered_out() == 0 && conn.state() == State::Closed {
                    aborted = true;
                }
            }
            7 => {
                // A partial write of `arg` bytes.
                if let Some(out) = conn.poll_transmit() {
                    let n = usize::from(arg).min(out.len());
                    sent.extend_from_slice(&out[..n]);
                    conn.advance(n);
                }
            }
            _ => while let Ok(Some(_)) = conn.poll_event() {},
        }
        // Above the high-water mark, nothing but a control frame (at most
        // 2 + 4 + 125 bytes) may be added: sends fail and input is not parsed.
        if queued_before > MAX_WRITE {
            assert!(conn.buffered_out() <= queued_before + 131, "outgoing buffer grew past its limit");
        }
    }
    while let Some(out) = conn.poll_transmit() {
        sent.extend_from_slice(out);
        let n = out.len();
        conn.advance(n);
    }
    // Everything we sent decodes, and nothing follows our close frame.
    let mut decoder = FrameDecoder::new(peer, 0, usize::MAX);
    let mut closed = false;
    loop {
        match decoder.step(&mut sent) {
            Ok(Status::Complete(Step::Frame { frame, .. })) => {
                assert!(!closed, "a frame after our close frame");
                if frame.header.opcode == OpCode::Close {
                    closed = true;
                    if frame.payload.len() >= 2 {
                        let code = u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
                        assert!(CloseCode::from(code).is_valid_on_wire(), "sent close code {code}");
                    }
                }
            }
            Ok(Status::Complete(_)) => {}
            Ok(Status::Partial) => break,
            Err(e) => panic!("our own output does not decode: {e}"),
        }
    }
    assert!(sent.is_empty() || aborted, "trailing bytes in our own output");
});
