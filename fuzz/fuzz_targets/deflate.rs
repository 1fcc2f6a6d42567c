//! permessage-deflate under hostile and arbitrary input.
//!
//! 1. A server that agreed to permessage-deflate receives masked frames built
//!    from the input (any FIN/RSV1 bits, text/binary/continuation, payloads
//!    that are mostly not DEFLATE at all): no panic, every message delivered
//!    is within `max_message_size`, and once an error is reported the
//!    connection is closed with a code that fits it.
//! 2. Messages made from the same input, compressed by a client with the
//!    parameters the first byte picks, arrive at a server as the same
//!    messages, whatever the split of the wire bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsproto_core::handshake::{DeflateConfig, DeflateParams};
use wsproto_core::{ChaChaSource, Config, Connection, Event};

mod common;

const MAX_MESSAGE: usize = 4096;

fn params(bits: u8) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: bits & 1 != 0,
        client_no_context_takeover: bits & 2 != 0,
        server_max_window_bits: 8 + (bits >> 2) % 8,
        client_max_window_bits: 8 + (bits >> 5) % 8,
    }
}

fn config(threshold: usize) -> Config {
    Config {
        max_message_size: MAX_MESSAGE,
        max_frame_size: MAX_MESSAGE,
        deflate: Some(DeflateConfig { compression_threshold: threshold, ..DeflateConfig::default() }),
        ..Config::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&bits, rest)) = data.split_first() else {
        return;
    };
    hostile_frames(bits, rest);
    round_trip(bits, rest);
});

fn hostile_frames(bits: u8, mut input: &[u8]) {
    let mut server = Connection::server(config(64)).with_permessage_deflate(params(bits));
    let key = [0x37, 0xfa, 0x21, 0x3d];
    while let Some((&flags, tail)) = input.split_first() {
        let (&len, tail) = tail.split_first().unwrap_or((&0, &[]));
        let len = usize::from(len).min(tail.len()).min(125);
        let (payload, tail) = tail.split_at(len);
        input = tail;
        let opcode = [0x0, 0x1, 0x2][usize::from(flags & 0x0f) % 3];
        let mut frame = vec![(flags & 0xc0) | opcode, 0x80 | len as u8];
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        server.receive(&frame);
        loop {
            match server.poll_event() {
                Ok(Some(Event::Message(m))) => assert!(m.len() <= MAX_MESSAGE),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

fn round_trip(bits: u8, input: &[u8]) {
    let Some((&control, input)) = input.split_first() else {
        return;
    };
    let mut messages = common::messages(input, true);
    messages.retain(|m| m.len() <= MAX_MESSAGE);
    let threshold = usize::from(control & 0x0f);
    let chunk = usize::from(control >> 4) + 1;
    let mut client = Connection::client(config(threshold), Box::new(ChaChaSource::from_seed([3; 32])))
        .with_permessage_deflate(params(bits));
    let mut server = Connection::server(config(threshold)).with_permessage_deflate(params(bits));
    let mut got = Vec::new();
    for m in &messages {
        client.send(m.clone()).expect("send");
        let wire = common::transmit(&mut client);
        common::deliver(&mut server, &wire, chunk, &mut got);
    }
    assert_eq!(got, messages);
}
