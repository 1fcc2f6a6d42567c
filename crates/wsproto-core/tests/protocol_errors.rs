//! One test per protocol violation: the error reported, and the close frame
//! the connection queued with the matching code.

mod common;

use common::*;
use wsproto_core::{CloseCode, Config, Connection, Error, Event, ProtocolError, State};

const K: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];

/// Feeds `wire` to `conn`, expects `expected`, and checks the close code sent.
fn expect_error(mut conn: Connection, wire: &[u8], expected: ProtocolError, code: u16) {
    conn.receive(wire);
    let err = loop {
        match conn.poll_event() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error for {expected:?}"),
            Err(e) => break e,
        }
    };
    assert_eq!(err, Error::Protocol(expected.clone()));
    assert_eq!(err.close_code().map(u16::from), Some(code));
    assert_eq!(
        conn.state(),
        State::CloseSent,
        "close queued, not yet flushed"
    );
    assert_eq!(sent_close_code(&mut conn), Some(code), "{expected:?}");
    assert_eq!(
        conn.state(),
        State::Closed,
        "nothing to wait for after a failure"
    );
    // Reported once; the connection reads nothing more.
    conn.receive(&client_frame(0x81, b"more", K));
    assert_eq!(conn.poll_event(), Ok(None));
    assert_eq!(conn.send_text("x"), Err(Error::Closed));
}

#[test]
fn server_rejects_unmasked_frame() {
    expect_error(
        server(),
        &server_frame(0x81, b"hi"),
        ProtocolError::UnmaskedFrame,
        1002,
    );
}

#[test]
fn client_rejects_masked_frame() {
    expect_error(
        client(K),
        &client_frame(0x81, b"hi", K),
        ProtocolError::MaskedFrame,
        1002,
    );
}

#[test]
fn rsv_bits_without_extension() {
    for (bit, rsv) in [(0x40u8, 0b100u8), (0x20, 0b010), (0x10, 0b001)] {
        expect_error(
            server(),
            &client_frame(0x81 | bit, b"hi", K),
            ProtocolError::ReservedBits(rsv),
            1002,
        );
    }
}

#[test]
fn reserved_opcodes() {
    for op in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
        expect_error(
            server(),
            &client_frame(0x80 | op, b"", K),
            ProtocolError::ReservedOpcode(op),
            1002,
        );
    }
}

#[test]
fn control_frame_over_125_bytes() {
    for op in [0x88u8, 0x89, 0x8a] {
        expect_error(
            server(),
            &client_frame(op, &[b'a'; 126], K),
            ProtocolError::ControlFrameTooLong(126),
            1002,
        );
    }
}

#[test]
fn fragmented_control_frame() {
    for op in [0x08u8, 0x09, 0x0a] {
        expect_error(
            server(),
            &client_frame(op, b"", K),
            ProtocolError::FragmentedControlFrame,
            1002,
        );
    }
}

#[test]
fn continuation_without_a_start() {
    expect_error(
        server(),
        &client_frame(0x80, b"x", K),
        ProtocolError::UnexpectedContinuation,
        1002,
    );
    expect_error(
        server(),
        &client_frame(0x00, b"x", K),
        ProtocolError::UnexpectedContinuation,
        1002,
    );
}

#[test]
fn new_data_frame_inside_a_fragmented_message() {
    for second in [0x81u8, 0x82, 0x01, 0x02] {
        let mut wire = client_frame(0x01, b"he", K);
        wire.extend(client_frame(second, b"llo", K));
        expect_error(server(), &wire, ProtocolError::ExpectedContinuation, 1002);
    }
}

#[test]
fn close_payload_of_one_byte() {
    expect_error(
        server(),
        &client_frame(0x88, &[0x03], K),
        ProtocolError::InvalidCloseLength,
        1002,
    );
}

#[test]
fn close_codes_not_allowed_on_the_wire() {
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        expect_error(
            server(),
            &client_frame(0x88, &code.to_be_bytes(), K),
            ProtocolError::InvalidCloseCode(code),
            1002,
        );
    }
}

#[test]
fn close_codes_allowed_on_the_wire_are_echoed() {
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ] {
        let mut conn = server();
        conn.receive(&client_frame(0x88, &code.to_be_bytes(), K));
        let Some(Event::Close(frame)) = conn.poll_event().unwrap() else {
            panic!("code {code}")
        };
        assert_eq!(frame.code, CloseCode::from(code));
        assert_eq!(sent_close_code(&mut conn), Some(code));
    }
}

#[test]
fn invalid_utf8_in_text() {
    expect_error(
        server(),
        &client_frame(0x81, b"ab\xffcd", K),
        ProtocolError::InvalidUtf8,
        1007,
    );
    // Truncated sequence at the end of the message.
    expect_error(
        server(),
        &client_frame(0x81, b"ab\xe2\x82", K),
        ProtocolError::InvalidUtf8,
        1007,
    );
}

#[test]
fn invalid_utf8_in_close_reason() {
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye\xc0\xaf");
    expect_error(
        server(),
        &client_frame(0x88, &payload, K),
        ProtocolError::InvalidCloseReason,
        1007,
    );
}

#[test]
fn sixty_four_bit_length_with_top_bit_set() {
    let wire = [0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    expect_error(server(), &wire, ProtocolError::InvalidLength, 1002);
}

#[test]
fn frame_over_the_limit() {
    let config = Config {
        max_frame_size: 100,
        ..Config::default()
    };
    expect_error(
        server_with(config),
        &client_frame(0x82, &[0; 101], K),
        ProtocolError::FrameTooLarge {
            len: 101,
            limit: 100,
        },
        1009,
    );
}

#[test]
fn huge_declared_length_fails_before_any_payload() {
    // 2^63 - 1 declared; nothing is allocated for it, the header alone fails.
    let wire = [
        0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
    ];
    expect_error(
        server(),
        &wire,
        ProtocolError::FrameTooLarge {
            len: (1 << 63) - 1,
            limit: Config::default().max_frame_size,
        },
        1009,
    );
}

#[test]
fn message_over_the_limit_across_fragments() {
    let config = Config {
        max_message_size: 10,
        ..Config::default()
    };
    let mut wire = client_frame(0x02, &[0; 6], K);
    wire.extend(client_frame(0x80, &[0; 5], K));
    expect_error(
        server_with(config),
        &wire,
        ProtocolError::MessageTooLarge { limit: 10 },
        1009,
    );
}

#[test]
fn too_many_fragments() {
    let config = Config {
        max_fragments: 3,
        ..Config::default()
    };
    let mut wire = Vec::new();
    wire.extend(client_frame(0x01, b"a", K));
    for _ in 0..3 {
        wire.extend(client_frame(0x00, b"a", K));
    }
    expect_error(
        server_with(config),
        &wire,
        ProtocolError::TooManyFragments { limit: 3 },
        1009,
    );
}

#[test]
fn invalid_utf8_fails_on_the_first_fragment_not_the_last() {
    let mut conn = server();
    conn.receive(&client_frame(0x01, b"ok \xed\xa0\x80", K)); // a surrogate, FIN not set
    assert_eq!(
        conn.poll_event(),
        Err(Error::Protocol(ProtocolError::InvalidUtf8))
    );
    assert_eq!(sent_close_code(&mut conn), Some(1007));
}

#[test]
fn invalid_utf8_fails_before_the_frame_is_complete() {
    // A text frame declaring 1000 bytes, of which only the first 8 arrived.
    let payload: Vec<u8> = b"abc\xffdefg"
        .iter()
        .copied()
        .chain(std::iter::repeat_n(b'a', 992))
        .collect();
    let wire = client_frame(0x81, &payload, K);
    let mut conn = server();
    conn.receive(&wire[..8 + 8]); // 8 header bytes (2 + 2 + 4) + 8 payload bytes
    assert_eq!(
        conn.poll_event(),
        Err(Error::Protocol(ProtocolError::InvalidUtf8))
    );
    assert_eq!(sent_close_code(&mut conn), Some(1007));
}

#[test]
fn valid_utf8_split_inside_a_character_across_fragments() {
    let text = "κόσμε";
    let bytes = text.as_bytes();
    let mut wire = client_frame(0x01, &bytes[..1], K); // splits the first character
    wire.extend(client_frame(0x00, &bytes[1..4], K));
    wire.extend(client_frame(0x80, &bytes[4..], K));
    let mut conn = server();
    conn.receive(&wire);
    assert_eq!(
        conn.poll_event().unwrap(),
        Some(Event::Message(wsproto_core::Message::text(text)))
    );
}

#[test]
fn control_frames_may_interleave_fragments() {
    let mut wire = client_frame(0x01, b"Hel", K);
    wire.extend(client_frame(0x89, b"p", K));
    wire.extend(client_frame(0x80, b"lo", K));
    let mut conn = server();
    conn.receive(&wire);
    assert!(matches!(conn.poll_event().unwrap(), Some(Event::Ping(_))));
    assert_eq!(
        conn.poll_event().unwrap(),
        Some(Event::Message(wsproto_core::Message::text("Hello")))
    );
}
