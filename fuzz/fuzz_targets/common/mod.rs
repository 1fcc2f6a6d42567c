//! What the round-trip targets share: messages read from fuzz input, and
//! moving bytes from a client to a server.
#![allow(dead_code)]

use wsproto_core::{Connection, Event, Message};

/// Messages from `input` as `[kind][len][bytes...]`: even kinds binary, odd
/// kinds text (made valid with `from_utf8_lossy`). With `repeat`, the body
/// is repeated `kind >> 4` more times, so that compression finds
/// something to do.
pub fn messages(mut input: &[u8], repeat: bool) -> Vec<Message> {
    let mut messages = Vec::new();
    while let Some((&kind, tail)) = input.split_first() {
        let (&len, tail) = tail.split_first().unwrap_or((&0, &[]));
        let len = usize::from(len).min(tail.len());
        let (body, tail) = tail.split_at(len);
        input = tail;
        let times = if repeat { usize::from(kind >> 4) + 1 } else { 1 };
        let body = body.repeat(times);
        messages.push(if kind & 1 == 0 {
            Message::binary(body)
        } else {
            Message::text(String::from_utf8_lossy(&body).into_owned())
        });
    }
    messages
}

/// Everything `conn` has queued to send.
pub fn transmit(conn: &mut Connection) -> Vec<u8> {
    let mut wire = Vec::new();
    while let Some(out) = conn.poll_transmit() {
        wire.extend_from_slice(out);
        let n = out.len();
        conn.advance(n);
    }
    wire
}

/// Feeds `wire` to `server` in pieces of `chunk` bytes, every third one
/// appended to `read_buf` as an adapter reading straight into it does (the
/// others through `receive`, which unmasks large payloads as it copies),
/// and collects the messages; any other event, or an error, is a bug.
pub fn deliver(server: &mut Connection, wire: &[u8], chunk: usize, got: &mut Vec<Message>) {
    for (i, piece) in wire.chunks(chunk).enumerate() {
        if i % 3 == 2 {
            server.read_buf().extend_from_slice(piece);
        } else {
            server.receive(piece);
        }
        while let Some(event) = server.poll_event().expect("valid input") {
            match event {
                Event::Message(m) => got.push(m),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}
