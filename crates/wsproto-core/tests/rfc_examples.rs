//! RFC 6455's own examples, byte for byte: section 1.3 (the accept key) and
//! section 5.7 (frames), in both directions, plus the length-form boundaries.

mod common;

use common::*;
use wsproto_core::frame::Role;
use wsproto_core::{accept_key, Config, Event, Message, OpCode};

const HELLO_UNMASKED: [u8; 7] = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
const HELLO_MASKED: [u8; 11] = [
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
const RFC_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

#[test]
fn section_1_3_accept_key() {
    assert_eq!(
        accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn single_frame_unmasked_text_decodes_and_encodes() {
    let mut client = client(RFC_KEY);
    client.receive(&HELLO_UNMASKED);
    assert_eq!(
        client.poll_event().unwrap(),
        Some(Event::Message(Message::text("Hello")))
    );
    let mut server = server();
    server.send_text("Hello").unwrap();
    assert_eq!(drain(&mut server), HELLO_UNMASKED);
}

#[test]
fn single_frame_masked_text_decodes_and_encodes() {
    let mut server = server();
    server.receive(&HELLO_MASKED);
    assert_eq!(
        server.poll_event().unwrap(),
        Some(Event::Message(Message::text("Hello")))
    );
    let mut client = client(RFC_KEY);
    client.send_text("Hello").unwrap();
    assert_eq!(drain(&mut client), HELLO_MASKED);
}

#[test]
fn fragmented_unmasked_text() {
    let wire = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    let mut client = client(RFC_KEY);
    client.receive(&wire);
    assert_eq!(
        client.poll_event().unwrap(),
        Some(Event::Message(Message::text("Hello")))
    );
    let mut server = server_with(Config {
        max_send_frame_size: Some(3),
        ..Config::default()
    });
    server.send_text("Hello").unwrap();
    assert_eq!(drain(&mut server), wire);
}

#[test]
fn unmasked_ping_and_masked_pong() {
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    // A client receiving the ping answers with exactly the RFC's masked pong.
    let mut client = client(RFC_KEY);
    client.receive(&ping);
    assert_eq!(
        client.poll_event().unwrap(),
        Some(Event::Ping(bytes::Bytes::from_static(b"Hello")))
    );
    assert_eq!(drain(&mut client), pong);
    let mut server = server();
    server.ping(b"Hello").unwrap();
    assert_eq!(drain(&mut server), ping);
    server.receive(&pong);
    assert_eq!(
        server.poll_event().unwrap(),
        Some(Event::Pong(bytes::Bytes::from_static(b"Hello")))
    );
}

#[test]
fn binary_256_bytes_and_64_kib_unmasked() {
    for (len, header) in [
        (256usize, vec![0x82, 0x7e, 0x01, 0x00]),
        (
            65536,
            vec![0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00],
        ),
    ] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
        let mut server = server();
        server.send_binary(&payload).unwrap();
        let out = drain(&mut server);
        assert_eq!(&out[..header.len()], &header[..]);
        assert_eq!(&out[header.len()..], &payload[..]);
        let mut client = client(RFC_KEY);
        client.receive(&out);
        assert_eq!(
            client.poll_event().unwrap(),
            Some(Event::Message(Message::binary(payload)))
        );
    }
}

#[test]
fn length_form_boundaries_both_ways() {
    for (len, header_len, len7) in [
        (0usize, 2usize, None),
        (125, 2, None),
        (126, 4, Some(126u8)),
        (65535, 4, Some(126)),
        (65536, 10, Some(127)),
    ] {
        let payload = vec![0xabu8; len];
        // Encode as server (unmasked) and as client (masked).
        let mut server = server();
        server.send_binary(&payload).unwrap();
        let out = drain(&mut server);
        assert_eq!(out.len(), header_len + len, "server, len {len}");
        assert_eq!(out[1] & 0x7f, len7.unwrap_or(len as u8));

        let mut client = client([9, 8, 7, 6]);
        client.send_binary(&payload).unwrap();
        let masked = drain(&mut client);
        assert_eq!(masked.len(), header_len + 4 + len, "client, len {len}");
        assert_eq!(masked[1] & 0x80, 0x80);

        let frames = frames_sent_by(Role::Client, &masked);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].header.opcode, OpCode::Binary);
        assert_eq!(frames[0].payload.len(), len);

        let mut receiver = common::server();
        receiver.receive(&masked);
        assert_eq!(
            receiver.poll_event().unwrap(),
            Some(Event::Message(Message::binary(payload)))
        );
    }
}

#[test]
fn fresh_mask_key_per_frame_from_os_random() {
    use wsproto_core::{ChaChaSource, Connection};
    let mut client = Connection::client(Config::default(), Box::new(ChaChaSource::from_os()));
    for _ in 0..64 {
        client.send_text("x").unwrap();
    }
    let out = drain(&mut client);
    let keys: std::collections::HashSet<[u8; 4]> =
        out.chunks(7).map(|f| [f[2], f[3], f[4], f[5]]).collect();
    // 64 frames from a CSPRNG: a repeated 32-bit key is vanishingly unlikely.
    assert_eq!(keys.len(), 64);
}
