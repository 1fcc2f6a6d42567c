//! The behaviours Autobahn|Testsuite checks, group by group, as plain Rust
//! tests on the core, so `cargo test` catches a conformance regression
//! without Python. Case numbers refer to the suite's ids.

mod common;

use bytes::Bytes;
use common::*;
use wsproto_core::{CloseCode, Config, Connection, Error, Event, Message, ProtocolError, State};

const K: [u8; 4] = [0x0f, 0xf0, 0xaa, 0x55];

/// Feeds `wire` to a server and collects events until the first error.
fn run(conn: &mut Connection, wire: &[u8]) -> (Vec<Event>, Option<Error>) {
    conn.receive(wire);
    let mut events = Vec::new();
    loop {
        match conn.poll_event() {
            Ok(Some(e)) => events.push(e),
            Ok(None) => return (events, None),
            Err(e) => return (events, Some(e)),
        }
    }
}

fn frames(parts: &[(u8, &[u8])]) -> Vec<u8> {
    parts
        .iter()
        .flat_map(|(b0, p)| client_frame(*b0, p, K))
        .collect()
}

// ----- 1: framing ------------------------------------------------------------

#[test]
fn case_1_text_and_binary_of_every_length_form() {
    for len in [0usize, 125, 126, 127, 128, 65535, 65536] {
        for b0 in [0x81u8, 0x82] {
            let payload = vec![b'*'; len];
            let mut conn = server();
            let (events, err) = run(&mut conn, &client_frame(b0, &payload, K));
            assert!(err.is_none());
            let expected = if b0 == 0x81 {
                Message::text(String::from_utf8(payload).unwrap())
            } else {
                Message::binary(payload)
            };
            assert_eq!(events, vec![Event::Message(expected)], "len {len}");
        }
    }
}

#[test]
fn case_1_1_8_payload_arriving_in_small_chunks() {
    let wire = client_frame(0x82, &[0xfe; 65535], K);
    let mut conn = server();
    let mut got = Vec::new();
    for chunk in wire.chunks(997) {
        got.extend(run(&mut conn, chunk).0);
    }
    assert_eq!(
        got,
        vec![Event::Message(Message::binary(vec![0xfe; 65535]))]
    );
}

// ----- 2: pings and pongs ------------------------------------------------------

#[test]
fn case_2_pings_are_answered_with_identical_pongs() {
    for payload in [
        &b""[..],
        b"Hello, world!",
        &[0u8, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0, 0xff],
        &[0xfe; 125],
    ] {
        let mut conn = server();
        let (events, _) = run(&mut conn, &client_frame(0x89, payload, K));
        assert_eq!(events, vec![Event::Ping(Bytes::copy_from_slice(payload))]);
        let mut expected = vec![0x8a, payload.len() as u8];
        expected.extend_from_slice(payload);
        assert_eq!(drain(&mut conn), expected);
    }
}

#[test]
fn case_2_5_ping_over_125_bytes_fails_with_1002() {
    let wire = [0x89, 0xfe, 0x00, 0x7e, 1, 2, 3, 4];
    let mut conn = server();
    let (_, err) = run(&mut conn, &wire);
    assert_eq!(
        err,
        Some(Error::Protocol(ProtocolError::ControlFrameTooLong(126)))
    );
    assert_eq!(sent_close_code(&mut conn), Some(1002));
}

#[test]
fn case_2_7_unsolicited_pong_is_ignored_and_2_10_many_pings_each_answered() {
    let mut conn = server();
    let (events, err) = run(&mut conn, &client_frame(0x8a, b"unsolicited", K));
    assert!(err.is_none());
    assert!(matches!(events[..], [Event::Pong(_)]));
    assert!(conn.poll_transmit().is_none(), "no answer to a pong");
    let wire: Vec<u8> = (0..10u8)
        .flat_map(|i| client_frame(0x89, &[i], K))
        .collect();
    let (events, _) = run(&mut conn, &wire);
    assert_eq!(events.len(), 10);
    let pongs = frames_sent_by(wsproto_core::Role::Server, &drain(&mut conn));
    assert_eq!(
        pongs.iter().map(|f| f.payload[0]).collect::<Vec<_>>(),
        (0..10).collect::<Vec<u8>>()
    );
}

// ----- 3 and 4: reserved bits and opcodes after a valid frame ------------------

#[test]
fn case_3_and_4_valid_frame_then_violation_then_ping() {
    // The echo of the first frame goes out, the violation closes with 1002,
    // and the ping behind it is never answered.
    let violations: [u8; 6] = [0x81 | 0x20, 0x81 | 0x70, 0x89 | 0x40, 0x83, 0x87, 0x8b];
    for bad in violations {
        let mut conn = server();
        let wire = frames(&[(0x81, b"Hello"), (bad, b"bad"), (0x89, b"")]);
        let (events, err) = run(&mut conn, &wire);
        assert_eq!(
            events,
            vec![Event::Message(Message::text("Hello"))],
            "{bad:#x}"
        );
        assert!(err.is_some());
        assert_eq!(sent_close_code(&mut conn), Some(1002));
        assert_eq!(conn.state(), State::Closed);
    }
}

// ----- 5: fragmentation ----------------------------------------------------------

#[test]
fn case_5_fragmented_ping_and_pong_fail() {
    for b0 in [0x09u8, 0x0a] {
        let mut conn = server();
        let (_, err) = run(&mut conn, &frames(&[(b0, b"frag"), (0x80, b"ment")]));
        assert_eq!(
            err,
            Some(Error::Protocol(ProtocolError::FragmentedControlFrame))
        );
    }
}

#[test]
fn case_5_6_to_5_8_control_frames_between_fragments() {
    let mut conn = server();
    let wire = frames(&[
        (0x01, b"fragment1"),
        (0x89, b"ping"),
        (0x8a, b"pong"),
        (0x80, b"fragment2"),
    ]);
    let (events, err) = run(&mut conn, &wire);
    assert!(err.is_none());
    assert_eq!(
        events,
        vec![
            Event::Ping(Bytes::from_static(b"ping")),
            Event::Pong(Bytes::from_static(b"pong")),
            Event::Message(Message::text("fragment1fragment2")),
        ]
    );
}

#[test]
fn case_5_9_to_5_20_continuation_sequencing() {
    let cases: [&[(u8, &[u8])]; 4] = [
        &[(0x80, b"fragment1"), (0x81, b"Hello")], // 5.9: continuation, nothing to continue
        &[(0x00, b"fragment1"), (0x80, b"fragment2")], // 5.15-style: starts with a continuation
        &[(0x01, b"fragment1"), (0x01, b"fragment2")], // new text frame inside a message
        &[(0x01, b"fragment1"), (0x82, b"fragment2")], // new binary frame inside a message
    ];
    for wire in cases {
        let mut conn = server();
        let (events, err) = run(&mut conn, &frames(wire));
        assert!(events.iter().all(|e| !matches!(e, Event::Message(_))));
        assert!(err.is_some());
        assert_eq!(sent_close_code(&mut conn), Some(1002));
    }
}

// ----- 6: UTF-8 ---------------------------------------------------------------------

const VALID: &[&[u8]] = &[
    b"",
    "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
    "κόσμε".as_bytes(),
    b"\x00",
    b"\xc2\x80",
    b"\xe0\xa0\x80",
    b"\xf0\x90\x80\x80",
    b"\x7f",
    b"\xdf\xbf",
    b"\xef\xbf\xbf",
    b"\xf4\x8f\xbf\xbf",
    b"\xed\x9f\xbf",
    b"\xee\x80\x80",
    b"\xef\xbf\xbd",
];

const INVALID: &[&[u8]] = &[
    b"\x80", // lone continuation byte
    b"\xbf",
    b"\xc0\xaf", // overlong '/'
    b"\xe0\x80\xaf",
    b"\xf0\x80\x80\xaf",
    b"\xc1\xbf",     // overlong maximum
    b"\xed\xa0\x80", // UTF-16 surrogates
    b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80", // above U+10FFFF
    b"\xfe",
    b"\xff",
    b"\xfe\xfe\xff\xff",
    b"\xc0", // truncated at the end
    b"\xe0\x80",
    b"\xf0\x9f\x98",
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
];

#[test]
fn case_6_valid_utf8_in_one_frame_and_in_one_byte_fragments() {
    for text in VALID {
        let mut conn = server();
        let (events, err) = run(&mut conn, &client_frame(0x81, text, K));
        assert!(err.is_none(), "{text:x?}");
        assert_eq!(events.len(), 1);
        // Every byte in its own fragment (6.2.x, 6.4.x style).
        if text.len() > 1 {
            let mut parts: Vec<(u8, &[u8])> = text.chunks(1).map(|c| (0x00, c)).collect();
            parts[0].0 = 0x01;
            parts.last_mut().unwrap().0 = 0x80;
            let mut conn = server();
            let (events, err) = run(&mut conn, &frames(&parts));
            assert!(err.is_none(), "{text:x?} fragmented");
            assert_eq!(
                events,
                vec![Event::Message(Message::text(
                    std::str::from_utf8(text).unwrap()
                ))]
            );
        }
    }
}

#[test]
fn case_6_invalid_utf8_closes_with_1007() {
    for bad in INVALID {
        let mut payload = b"ab".to_vec();
        payload.extend_from_slice(bad);
        let mut conn = server();
        let (events, err) = run(&mut conn, &client_frame(0x81, &payload, K));
        assert!(events.is_empty(), "{bad:x?}");
        assert_eq!(
            err,
            Some(Error::Protocol(ProtocolError::InvalidUtf8)),
            "{bad:x?}"
        );
        assert_eq!(sent_close_code(&mut conn), Some(1007));
    }
}

#[test]
fn case_6_4_fail_fast_before_the_message_ends() {
    // 6.4.1: a first fragment ending in an invalid sequence, then a pause:
    // the close must come before the rest arrives.
    let mut conn = server();
    let (_, err) = run(
        &mut conn,
        &client_frame(
            0x01,
            "κόσμε"
                .as_bytes()
                .iter()
                .copied()
                .chain([0xf4, 0x90])
                .collect::<Vec<_>>()
                .as_slice(),
            K,
        ),
    );
    assert_eq!(err, Some(Error::Protocol(ProtocolError::InvalidUtf8)));
    // 6.4.3: the same inside one frame whose tail has not arrived yet.
    let payload: Vec<u8> = "κόσμε"
        .bytes()
        .chain([0xf4, 0x90, 0x80, 0x80])
        .chain("edited".bytes())
        .collect();
    let wire = client_frame(0x81, &payload, K);
    let mut conn = server();
    let (_, err) = run(&mut conn, &wire[..6 + 12]); // header + "κόσμε" + f4 90
    assert_eq!(err, Some(Error::Protocol(ProtocolError::InvalidUtf8)));
}

// ----- 7: the close handshake ------------------------------------------------------

#[test]
fn case_7_1_nothing_after_close_is_processed() {
    let mut conn = server();
    let wire = frames(&[
        (0x88, &1000u16.to_be_bytes()),
        (0x81, b"after close"),
        (0x89, b""),
    ]);
    let (events, err) = run(&mut conn, &wire);
    assert!(err.is_none());
    assert!(matches!(events[..], [Event::Close(_)]));
    assert_eq!(
        drain(&mut conn),
        [0x88, 0x02, 0x03, 0xe8],
        "only the close reply, no pong"
    );
}

#[test]
fn case_7_1_5_close_inside_a_fragmented_message_is_a_normal_close() {
    let mut conn = server();
    let wire = frames(&[
        (0x01, b"fragment1"),
        (0x88, &1000u16.to_be_bytes()),
        (0x80, b"fragment2"),
    ]);
    let (events, err) = run(&mut conn, &wire);
    assert!(err.is_none());
    assert!(matches!(events[..], [Event::Close(_)]));
    assert_eq!(sent_close_code(&mut conn), Some(1000));
}

#[test]
fn case_7_3_close_payloads() {
    // 7.3.1 empty close: answered empty; 7.3.2 one byte: 1002; 7.3.3-7.3.5
    // code with and without reason, 123-byte reason: echoed; 7.3.6 a reason
    // making the payload 126 bytes: 1002.
    let mut conn = server();
    run(&mut conn, &client_frame(0x88, b"", K));
    assert_eq!(sent_close_code(&mut conn), Some(1005));
    let mut conn = server();
    run(&mut conn, &client_frame(0x88, b"\x03", K));
    assert_eq!(sent_close_code(&mut conn), Some(1002));
    for reason_len in [0usize, 2, 123] {
        let mut payload = 1000u16.to_be_bytes().to_vec();
        payload.extend(std::iter::repeat_n(b'*', reason_len));
        let mut conn = server();
        let (events, _) = run(&mut conn, &client_frame(0x88, &payload, K));
        let Event::Close(frame) = &events[0] else {
            panic!()
        };
        assert_eq!(
            (frame.code, frame.reason.len()),
            (CloseCode::Normal, reason_len)
        );
        assert_eq!(sent_close_code(&mut conn), Some(1000));
    }
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend([b'*'; 124]);
    let mut wire = vec![0x88, 0xfe, 0, 126];
    wire.extend_from_slice(&K);
    wire.extend(payload.iter().enumerate().map(|(i, b)| b ^ K[i % 4]));
    let mut conn = server();
    run(&mut conn, &wire);
    assert_eq!(sent_close_code(&mut conn), Some(1002));
}

#[test]
fn case_7_5_1_invalid_utf8_close_reason_is_1007() {
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
    );
    let mut conn = server();
    run(&mut conn, &client_frame(0x88, &payload, K));
    assert_eq!(sent_close_code(&mut conn), Some(1007));
}

// ----- 9: limits of scale ------------------------------------------------------------

#[test]
fn case_9_16_mib_message_in_one_frame_and_in_64_byte_fragments() {
    let config = Config {
        max_fragments: 1 << 20,
        ..Config::default()
    };
    let payload = vec![b'x'; 16 << 20];
    let mut conn = server_with(config.clone());
    let (events, err) = run(&mut conn, &client_frame(0x82, &payload, K));
    assert!(err.is_none());
    assert_eq!(events[0], Event::Message(Message::binary(payload.clone())));

    let mut conn = server_with(config);
    let mut wire = Vec::with_capacity(payload.len() * 2);
    let chunks: Vec<&[u8]> = payload[..4 << 20].chunks(64).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let b0 = match (i, i + 1 == chunks.len()) {
            (0, _) => 0x01,
            (_, true) => 0x80,
            _ => 0x00,
        };
        wire.extend(client_frame(b0, chunk, K));
    }
    let (events, err) = run(&mut conn, &wire);
    assert!(err.is_none());
    assert_eq!(
        events,
        vec![Event::Message(Message::text("x".repeat(4 << 20)))]
    );
}

// ----- 10: auto-fragmentation -----------------------------------------------------------

#[test]
fn case_10_1_1_a_64_kib_message_sent_in_1300_byte_fragments_echoes_intact() {
    let text = "*".repeat(65536);
    let mut sender = client_with(
        Config {
            max_send_frame_size: Some(1300),
            ..Config::default()
        },
        K,
    );
    sender.send_text(&text).unwrap();
    let wire = drain(&mut sender);
    let mut conn = server();
    let (events, err) = run(&mut conn, &wire);
    assert!(err.is_none());
    assert_eq!(events, vec![Event::Message(Message::text(text))]);
}
