//! permessage-deflate (RFC 7692) through the public API: negotiation by the
//! handshakes, RSV1 rules, context takeover, the threshold, and bounded
//! inflation.
#![cfg(feature = "deflate")]

mod common;

use bytes::BytesMut;
use common::{drain, FixedRandom};
use proptest::prelude::*;
use wsproto_core::frame::{Frame, FrameDecoder, Role, Step, RSV1};
use wsproto_core::handshake::{DeflateConfig, DeflateParams, DeflateResponseError};
use wsproto_core::{
    accept_key, Accept, ClientHandshake, ClientRequest, CloseCode, Config, Connection, Error,
    Event, HandshakeError, Message, ProtocolError, ServerHandshake, Status,
};

/// Runs both handshakes against each other in memory.
fn connect(client: Config, server: Config) -> (Connection, Connection) {
    let request = ClientRequest::new("ws://example.com/chat").unwrap();
    let mut chs = ClientHandshake::with_random(&request, client, Box::new(FixedRandom([9; 4])));
    let mut shs = ServerHandshake::new(server);
    assert!(matches!(
        shs.receive(chs.request_bytes()).unwrap(),
        Status::Complete(_)
    ));
    let (response, server) = shs.accept(Accept::default()).unwrap();
    assert!(matches!(
        chs.receive(&response).unwrap(),
        Status::Complete(_)
    ));
    (chs.into_connection().unwrap(), server)
}

fn deflate(d: DeflateConfig) -> Config {
    Config {
        deflate: Some(d),
        ..Config::default()
    }
}

/// Moves everything `from` has queued into `to`, returning the wire bytes.
fn pump(from: &mut Connection, to: &mut Connection) -> Vec<u8> {
    let wire = drain(from);
    to.receive(&wire);
    wire
}

fn frames(sender: Role, wire: &[u8]) -> Vec<Frame> {
    let receiver = match sender {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    };
    let mut decoder = FrameDecoder::new(receiver, RSV1, usize::MAX);
    let mut buf = BytesMut::from(wire);
    let mut out = Vec::new();
    while let Status::Complete(step) = decoder.step(&mut buf).unwrap() {
        if let Step::Frame { frame, .. } = step {
            out.push(frame);
        }
    }
    out
}

fn next_message(conn: &mut Connection) -> Message {
    match conn.poll_event().unwrap() {
        Some(Event::Message(m)) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

const CHAT_LINE: &str =
    r#"{"type":"message","from":"ann","text":"the quick brown fox jumps over the lazy dog"}"#;

#[test]
fn default_configs_negotiate_and_compress_both_ways() {
    let (mut client, mut server) = connect(Config::default(), Config::default());
    let expected = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    assert_eq!(client.permessage_deflate(), Some(&expected));
    assert_eq!(server.permessage_deflate(), Some(&expected));

    for flip in [false, true] {
        let (sender, receiver) = if flip {
            (&mut server, &mut client)
        } else {
            (&mut client, &mut server)
        };
        let role = sender.role();
        let mut sizes = Vec::new();
        for _ in 0..3 {
            sender.send(Message::text(CHAT_LINE)).unwrap();
            let wire = pump(sender, receiver);
            let sent = frames(role, &wire);
            assert_eq!(sent.len(), 1);
            assert_eq!(sent[0].header.rsv, RSV1, "compressed messages carry RSV1");
            sizes.push(wire.len());
            assert_eq!(next_message(receiver).as_text(), Some(CHAT_LINE));
        }
        // Context takeover: repeats of a message are back-references.
        assert!(sizes[0] < CHAT_LINE.len(), "{sizes:?}");
        assert!(sizes[1] < sizes[0] / 3, "{sizes:?}");
    }
}

#[test]
fn without_config_nothing_is_offered_or_accepted() {
    let off = Config {
        deflate: None,
        ..Config::default()
    };
    let (client, server) = connect(off.clone(), Config::default());
    assert_eq!(client.permessage_deflate(), None);
    assert_eq!(server.permessage_deflate(), None);
    let (client, server) = connect(Config::default(), off);
    assert_eq!(client.permessage_deflate(), None);
    assert_eq!(server.permessage_deflate(), None);
}

#[test]
fn no_context_takeover_resets_each_message() {
    let client_config = deflate(DeflateConfig {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflateConfig::default()
    });
    let (mut client, mut server) = connect(client_config, Config::default());
    let params = *server.permessage_deflate().unwrap();
    assert!(params.server_no_context_takeover && params.client_no_context_takeover);
    for flip in [false, true] {
        let (sender, receiver) = if flip {
            (&mut server, &mut client)
        } else {
            (&mut client, &mut server)
        };
        let mut sizes = Vec::new();
        for _ in 0..3 {
            sender.send(Message::text(CHAT_LINE)).unwrap();
            sizes.push(pump(sender, receiver).len());
            assert_eq!(next_message(receiver).as_text(), Some(CHAT_LINE));
        }
        assert!(sizes.iter().all(|&s| s == sizes[0]), "{sizes:?}");
    }
}

#[test]
fn window_bits_are_negotiated_and_eight_means_uncompressed() {
    // The client asks the server for an 8-bit window: agreed, and the server
    // then sends plain frames, while the client still compresses.
    let request = ClientRequest::new("ws://h/").unwrap();
    let chs =
        ClientHandshake::with_random(&request, Config::default(), Box::new(FixedRandom([1; 4])));
    let mut shs = ServerHandshake::new(Config::default());
    let text = String::from_utf8(chs.request_bytes().to_vec())
        .unwrap()
        .replace(
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8; client_max_window_bits=10",
        );
    assert!(matches!(
        shs.receive(text.as_bytes()).unwrap(),
        Status::Complete(_)
    ));
    let (response, mut server) = shs.accept(Accept::default()).unwrap();
    let response = String::from_utf8(response).unwrap();
    assert!(
        response.contains(
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8; client_max_window_bits=10\r\n"
        ),
        "{response}"
    );
    assert_eq!(
        server.permessage_deflate().unwrap().server_max_window_bits,
        8
    );
    server.send(Message::text(CHAT_LINE.repeat(4))).unwrap();
    let wire = drain(&mut server);
    let sent = frames(Role::Server, &wire);
    assert_eq!(sent[0].header.rsv, 0);
    assert_eq!(sent[0].payload.len(), CHAT_LINE.len() * 4);
    drop(chs);
}

#[test]
fn client_refuses_responses_it_did_not_offer() {
    let asked = deflate(DeflateConfig {
        server_max_window_bits: 10,
        ..DeflateConfig::default()
    });
    for (extensions, expected) in [
        (
            "permessage-deflate; server_max_window_bits=12",
            HandshakeError::InvalidDeflateResponse(DeflateResponseError::WindowLargerThanOffered(
                "server_max_window_bits".into(),
            )),
        ),
        (
            "permessage-deflate; server_max_window_bits=10; bogus",
            HandshakeError::InvalidDeflateResponse(DeflateResponseError::UnknownParameter(
                "bogus".into(),
            )),
        ),
        (
            "permessage-deflate; server_max_window_bits=10, permessage-deflate; server_max_window_bits=10",
            HandshakeError::UnexpectedExtension("permessage-deflate".into()),
        ),
    ] {
        let request = ClientRequest::new("ws://h/").unwrap();
        let mut hs =
            ClientHandshake::with_random(&request, asked.clone(), Box::new(FixedRandom([1; 4])));
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Extensions: {extensions}\r\n\r\n",
            accept_key(hs.key().as_bytes())
        );
        assert_eq!(hs.receive(response.as_bytes()).unwrap_err(), expected);
    }
    // Without an offer, any extension is refused.
    let request = ClientRequest::new("ws://h/").unwrap();
    let off = Config {
        deflate: None,
        ..Config::default()
    };
    let mut hs = ClientHandshake::with_random(&request, off, Box::new(FixedRandom([1; 4])));
    assert!(!String::from_utf8_lossy(hs.request_bytes()).contains("Extensions"));
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        accept_key(hs.key().as_bytes())
    );
    assert_eq!(
        hs.receive(response.as_bytes()).unwrap_err(),
        HandshakeError::UnexpectedExtension("permessage-deflate".into())
    );
}

#[test]
fn rsv1_only_on_the_first_frame_of_a_fragmented_message() {
    let small_frames = Config {
        max_send_frame_size: Some(16),
        ..Config::default()
    };
    let (mut client, mut server) = connect(small_frames, Config::default());
    let text = CHAT_LINE.repeat(3);
    client.send(Message::text(text.as_str())).unwrap();
    let wire = pump(&mut client, &mut server);
    let sent = frames(Role::Client, &wire);
    assert!(sent.len() > 1);
    assert_eq!(sent[0].header.rsv, RSV1);
    assert!(sent[1..].iter().all(|f| f.header.rsv == 0));
    assert_eq!(next_message(&mut server).as_text(), Some(text.as_str()));
}

#[test]
fn below_the_threshold_messages_go_out_plain() {
    let (mut client, mut server) = connect(Config::default(), Config::default());
    server.send(Message::text("hi there")).unwrap();
    let wire = pump(&mut server, &mut client);
    assert_eq!(frames(Role::Server, &wire)[0].header.rsv, 0);
    assert_eq!(next_message(&mut client).as_text(), Some("hi there"));
}

/// A direct send compresses like any other: the payload is not written by
/// reference but queued compressed, and the peer reads the message back.
#[test]
fn direct_sends_are_compressed_too() {
    let (mut client, mut server) = connect(Config::default(), Config::default());
    let text = CHAT_LINE.repeat(400); // 34 KB, above the 16 KiB by-reference size
    let send = server.send_text_direct(&text).unwrap();
    assert!(send.chunks().all(|c| c.as_ptr() != text.as_ptr()));
    drop(send);
    let wire = pump(&mut server, &mut client);
    assert!(wire.len() < text.len() / 10, "{}", wire.len());
    assert_eq!(frames(Role::Server, &wire)[0].header.rsv, RSV1);
    assert_eq!(next_message(&mut client).as_text(), Some(text.as_str()));
}

/// A masked frame with explicit flags, as a client would send it.
fn client_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first_byte];
    assert!(payload.len() < 126);
    out.push(0x80 | payload.len() as u8);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
    out
}

fn expect_failure(conn: &mut Connection, wire: &[u8], expected: ProtocolError) {
    conn.receive(wire);
    loop {
        match conn.poll_event() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error for {expected:?}"),
            Err(e) => {
                assert_eq!(e, Error::Protocol(expected.clone()));
                break;
            }
        }
    }
    let close = drain(conn);
    let code = u16::from_be_bytes([close[2], close[3]]);
    assert_eq!(CloseCode::from(code), expected.close_code());
}

/// "Hello" compressed (RFC 7692 section 7.2.3.1).
const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

#[test]
fn rsv1_where_it_may_not_be_is_a_protocol_error() {
    // On a continuation frame.
    let (_, mut server) = connect(Config::default(), Config::default());
    let mut wire = client_frame(0x41, &HELLO[..3]); // RSV1, text, no FIN
    wire.extend(client_frame(0xc0, &HELLO[3..])); // FIN, RSV1, continuation
    expect_failure(&mut server, &wire, ProtocolError::ReservedBits(0b100));
    // On a ping.
    let (_, mut server) = connect(Config::default(), Config::default());
    expect_failure(
        &mut server,
        &client_frame(0xc9, b""),
        ProtocolError::ReservedBits(0b100),
    );
    // Without negotiation.
    let off = Config {
        deflate: None,
        ..Config::default()
    };
    let (_, mut server) = connect(off, Config::default());
    expect_failure(
        &mut server,
        &client_frame(0xc1, &HELLO),
        ProtocolError::ReservedBits(0b100),
    );
    // With it, the same frame is "Hello", split as the peer likes.
    let (_, mut server) = connect(Config::default(), Config::default());
    let mut wire = client_frame(0x41, &HELLO[..3]);
    wire.extend(client_frame(0x80, &HELLO[3..]));
    server.receive(&wire);
    assert_eq!(next_message(&mut server).as_text(), Some("Hello"));
}

#[test]
fn corrupt_data_and_bad_utf8_inside_compression_close_with_1007() {
    let (_, mut server) = connect(Config::default(), Config::default());
    expect_failure(
        &mut server,
        &client_frame(0xc1, &[0xff; 20]),
        ProtocolError::InvalidCompressedData,
    );
    // Valid DEFLATE (a stored block) holding invalid UTF-8.
    let (_, mut server) = connect(Config::default(), Config::default());
    let stored = [0x00, 0x02, 0x00, 0xfd, 0xff, 0xc3, 0x28, 0x00];
    expect_failure(
        &mut server,
        &client_frame(0xc1, &stored),
        ProtocolError::InvalidUtf8,
    );
    // The same bytes as a binary message are fine.
    let (_, mut server) = connect(Config::default(), Config::default());
    server.receive(&client_frame(0xc2, &stored));
    assert_eq!(next_message(&mut server).payload()[..], [0xc3, 0x28]);
}

#[test]
fn a_small_frame_cannot_inflate_past_the_message_limit() {
    let limit = 1 << 20;
    let (mut client, mut server) = connect(
        Config::default(),
        Config {
            max_message_size: limit,
            ..Config::default()
        },
    );
    // 64 MiB of zeros compress to about 64 KiB.
    let bomb = vec![0u8; 64 << 20];
    client.send(Message::binary(bomb)).unwrap();
    let wire = drain(&mut client);
    assert!(wire.len() < 100_000, "{}", wire.len());
    expect_failure(&mut server, &wire, ProtocolError::MessageTooLarge { limit });
    // Exactly at the limit is allowed.
    let (mut client, mut server) = connect(
        Config::default(),
        Config {
            max_message_size: limit,
            ..Config::default()
        },
    );
    client.send(Message::binary(vec![0u8; limit])).unwrap();
    pump(&mut client, &mut server);
    assert_eq!(next_message(&mut server).len(), limit);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Messages of any size and content, any negotiated parameters, frames
    /// of any size, and the wire cut anywhere: everything arrives as sent.
    #[test]
    fn compressed_conversation_roundtrips(
        messages in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(0u8..8, 0..5000)), 1..8),
        server_bits in 9u8..=15,
        client_bits in 9u8..=15,
        server_reset: bool,
        client_reset: bool,
        frame_size in proptest::option::of(1usize..3000),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let client_config = Config {
            max_send_frame_size: frame_size,
            deflate: Some(DeflateConfig {
                server_no_context_takeover: server_reset,
                client_no_context_takeover: client_reset,
                server_max_window_bits: server_bits,
                client_max_window_bits: client_bits,
                compression_threshold: 0,
                ..DeflateConfig::default()
            }),
            ..Config::default()
        };
        let server_config = Config {
            max_send_frame_size: frame_size,
            deflate: Some(DeflateConfig { compression_threshold: 0, ..DeflateConfig::default() }),
            ..Config::default()
        };
        let (mut client, mut server) = connect(client_config, server_config);
        let params = *client.permessage_deflate().unwrap();
        prop_assert_eq!(params.server_max_window_bits, server_bits);
        prop_assert_eq!(params.client_max_window_bits, client_bits);
        for flip in [false, true] {
        let (sender, receiver) = if flip { (&mut server, &mut client) } else { (&mut client, &mut server) };
            let mut sent = Vec::new();
            for (text, bytes) in &messages {
                let message = if *text {
                    Message::text(String::from_utf8(bytes.iter().map(|b| b'a' + b).collect()).unwrap())
                } else {
                    Message::binary(bytes.clone())
                };
                sender.send(message.clone()).unwrap();
                sent.push(message);
            }
            let wire = drain(sender);
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
            points.sort_unstable();
            let mut got = Vec::new();
            let mut start = 0;
            for end in points.into_iter().chain([wire.len()]) {
                receiver.receive(&wire[start..end]);
                start = end;
                while let Some(event) = receiver.poll_event().unwrap() {
                    if let Event::Message(m) = event {
                        got.push(m);
                    }
                }
            }
            prop_assert_eq!(got, sent);
        }
    }
}
