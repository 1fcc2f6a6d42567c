//! Any sequence of messages, sent with any fragmentation by a client, split
//! at any byte boundaries on the way, arrives at a server as the same
//! messages in the same order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsproto_core::{ChaChaSource, Config, Connection, Event, Message};

fuzz_target!(|data: &[u8]| {
    let Some((&control, mut rest)) = data.split_first() else {
        return;
    };
    // Messages: [kind][len][bytes...]; text is made valid with from_utf8_lossy.
    let mut messages = Vec::new();
    while let Some((&kind, tail)) = rest.split_first() {
        let (&len, tail) = tail.split_first().unwrap_or((&0, &[]));
        let len = usize::from(len).min(tail.len());
        let (body, tail) = tail.split_at(len);
        rest = tail;
        messages.push(if kind & 1 == 0 {
            Message::binary(body.to_vec())
        } else {
            Message::text(String::from_utf8_lossy(body).into_owned())
        });
    }
    let frame_size = usize::from(control & 0x0f) + 1;
    let chunk = usize::from(control >> 4) + 1;
    let mut client = Connection::client(
        Config { max_send_frame_size: Some(frame_size), ..Config::default() },
        Box::new(ChaChaSource::from_seed([2; 32])),
    );
    for m in &messages {
        client.send(m.clone()).expect("send");
    }
    let mut wire = Vec::new();
    while let Some(out) = client.poll_transmit() {
        wire.extend_from_slice(out);
        let n = out.len();
        client.advance(n);
    }
    let mut server = Connection::server(Config::default());
    let mut got = Vec::new();
    for piece in wire.chunks(chunk) {
        server.receive(piece);
        while let Some(event) = server.poll_event().expect("valid input") {
            match event {
                Event::Message(m) => got.push(m),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(got, messages);
});
