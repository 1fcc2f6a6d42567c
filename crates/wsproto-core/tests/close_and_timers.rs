//! The close handshake's states, ping/pong, limits on sending, zero copy,
//! and the timers driven by time the caller passes in.

mod common;

use bytes::Bytes;
use common::*;
use std::time::Duration;
use wsproto_core::{CloseCode, Config, Error, Event, Message, State};

const K: [u8; 4] = [1, 2, 3, 4];
const S: Duration = Duration::from_secs(1);

#[test]
fn peer_close_is_answered_with_the_same_code() {
    let mut conn = server();
    let mut payload = 1001u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"going");
    conn.receive(&client_frame(0x88, &payload, K));
    let Some(Event::Close(frame)) = conn.poll_event().unwrap() else {
        panic!()
    };
    assert_eq!(frame.code, CloseCode::Away);
    assert_eq!(&*frame.reason, "going");
    assert_eq!(conn.state(), State::CloseReceived);
    assert_eq!(conn.send_text("late"), Err(Error::Closed));
    assert_eq!(drain(&mut conn), [0x88, 0x02, 0x03, 0xe9]);
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(conn.poll_timeout(), None);
}

#[test]
fn empty_close_is_answered_with_empty_close() {
    let mut conn = client(K);
    conn.receive(&server_frame(0x88, b""));
    let Some(Event::Close(frame)) = conn.poll_event().unwrap() else {
        panic!()
    };
    assert_eq!(frame.code, CloseCode::NoStatus);
    let out = drain(&mut conn);
    assert_eq!(out, [0x88, 0x80, 1, 2, 3, 4]);
}

#[test]
fn our_close_then_theirs() {
    let mut conn = server();
    conn.close(CloseCode::Normal, "bye").unwrap();
    assert_eq!(conn.state(), State::CloseSent);
    assert_eq!(conn.close(CloseCode::Normal, ""), Err(Error::Closed));
    assert_eq!(conn.send_binary(b"x"), Err(Error::Closed));
    assert_eq!(conn.ping(b""), Err(Error::Closed));
    assert_eq!(drain(&mut conn), b"\x88\x05\x03\xe8bye");
    // Messages sent before the peer saw our close are still delivered,
    // pings are not answered any more.
    conn.receive(&client_frame(0x81, b"in flight", K));
    conn.receive(&client_frame(0x89, b"p", K));
    conn.receive(&client_frame(0x88, &1000u16.to_be_bytes(), K));
    assert_eq!(
        conn.poll_event().unwrap(),
        Some(Event::Message(Message::text("in flight")))
    );
    assert!(matches!(conn.poll_event().unwrap(), Some(Event::Ping(_))));
    assert!(matches!(conn.poll_event().unwrap(), Some(Event::Close(_))));
    assert_eq!(conn.state(), State::Closed);
    assert!(
        conn.poll_transmit().is_none(),
        "nothing is sent after our close"
    );
    // Anything after the close frame is ignored.
    conn.receive(&client_frame(0x81, b"after", K));
    assert_eq!(conn.poll_event(), Ok(None));
}

#[test]
fn close_arguments_are_checked() {
    let mut conn = server();
    for code in [1005u16, 1006, 1015, 999, 2000, 5000] {
        assert_eq!(
            conn.close(CloseCode::from(code), ""),
            Err(Error::InvalidCloseCode(code))
        );
    }
    assert_eq!(
        conn.close(CloseCode::Normal, &"x".repeat(124)),
        Err(Error::CloseReasonTooLong(124))
    );
    assert!(conn.close(CloseCode::Other(4000), &"x".repeat(123)).is_ok());
}

#[test]
fn pings_are_answered_unless_disabled() {
    let mut conn = server();
    conn.receive(&client_frame(0x89, b"abc", K));
    assert_eq!(
        conn.poll_event().unwrap(),
        Some(Event::Ping(Bytes::from_static(b"abc")))
    );
    assert_eq!(drain(&mut conn), [0x8a, 0x03, b'a', b'b', b'c']);

    let mut conn = server_with(Config {
        auto_pong: false,
        ..Config::default()
    });
    conn.receive(&client_frame(0x89, b"abc", K));
    assert!(matches!(conn.poll_event().unwrap(), Some(Event::Ping(_))));
    assert!(conn.poll_transmit().is_none());
    conn.pong(b"abc").unwrap();
    assert_eq!(drain(&mut conn), [0x8a, 0x03, b'a', b'b', b'c']);
}

#[test]
fn control_payload_limit_on_send() {
    let mut conn = server();
    assert_eq!(conn.ping(&[0; 126]), Err(Error::ControlPayloadTooLong(126)));
    assert_eq!(conn.pong(&[0; 126]), Err(Error::ControlPayloadTooLong(126)));
    assert!(conn.ping(&[0; 125]).is_ok());
}

#[test]
fn write_buffer_high_water_mark() {
    let mut conn = server_with(Config {
        max_write_buffer: 100,
        ..Config::default()
    });
    conn.send_binary(&[0; 150]).unwrap(); // under the mark before: accepted
    assert_eq!(
        conn.send_binary(b"x"),
        Err(Error::WriteBufferFull { limit: 100 })
    );
    // Input is not parsed either, so pongs cannot pile up.
    conn.receive(&client_frame(0x89, b"", K));
    assert_eq!(conn.poll_event(), Ok(None));
    drain(&mut conn);
    assert!(matches!(conn.poll_event().unwrap(), Some(Event::Ping(_))));
    assert!(conn.send_binary(b"x").is_ok());
}

#[test]
fn partial_writes_keep_order() {
    let mut conn = server();
    conn.send_text("abc").unwrap();
    conn.send_text("def").unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = conn.poll_transmit() {
        out.push(chunk[0]);
        conn.advance(1);
    }
    assert_eq!(out, [0x81, 3, b'a', b'b', b'c', 0x81, 3, b'd', b'e', b'f']);
}

#[test]
fn received_messages_are_slices_of_the_receive_buffer() {
    let mut conn = server();
    let wire = client_frame(0x82, &[7u8; 1000], K);
    conn.read_buf().reserve(wire.len());
    let base = conn.read_buf().as_ptr() as usize;
    conn.read_buf().extend_from_slice(&wire);
    let Some(Event::Message(Message::Binary(data))) = conn.poll_event().unwrap() else {
        panic!()
    };
    assert_eq!(
        data.as_ptr() as usize,
        base + 8,
        "payload not copied: unmasked in place"
    );
    assert!(data.iter().all(|&b| b == 7));
}

#[test]
fn close_timeout_ends_a_handshake_the_peer_never_answers() {
    let mut conn = server();
    assert_eq!(conn.poll_timeout(), None);
    conn.close(CloseCode::Normal, "").unwrap();
    drain(&mut conn);
    // The timer starts when the caller first tells the time.
    assert_eq!(conn.poll_timeout(), Some(Duration::ZERO));
    conn.handle_timeout(10 * S);
    assert_eq!(conn.poll_timeout(), Some(15 * S));
    conn.handle_timeout(14 * S);
    assert_eq!(conn.state(), State::CloseSent);
    conn.handle_timeout(15 * S);
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(conn.poll_timeout(), None);
}

#[test]
fn close_timeout_is_configurable_and_cancelled_by_the_reply() {
    let mut conn = server_with(Config {
        close_timeout: 2 * S,
        ..Config::default()
    });
    conn.close(CloseCode::Normal, "").unwrap();
    drain(&mut conn);
    conn.handle_timeout(S);
    assert_eq!(conn.poll_timeout(), Some(3 * S));
    conn.receive(&client_frame(0x88, b"", K));
    assert!(matches!(conn.poll_event().unwrap(), Some(Event::Close(_))));
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(conn.poll_timeout(), None);
}

fn keepalive_server() -> wsproto_core::Connection {
    server_with(Config {
        ping_interval: Some(10 * S),
        ping_timeout: 5 * S,
        ..Config::default()
    })
}

#[test]
fn keepalive_pings_when_idle_and_fails_when_unanswered() {
    let mut conn = keepalive_server();
    assert_eq!(conn.poll_timeout(), Some(Duration::ZERO));
    conn.handle_timeout(100 * S);
    assert_eq!(conn.poll_timeout(), Some(110 * S));
    conn.handle_timeout(110 * S);
    assert_eq!(drain(&mut conn), [0x89, 0x00], "a keepalive ping");
    assert_eq!(conn.poll_timeout(), Some(115 * S));
    conn.handle_timeout(115 * S);
    assert_eq!(conn.poll_event(), Err(Error::KeepaliveTimeout));
    assert_eq!(conn.state(), State::Closed);
    assert!(conn.poll_transmit().is_none());
}

#[test]
fn keepalive_is_satisfied_by_any_traffic() {
    let mut conn = keepalive_server();
    conn.handle_timeout(Duration::ZERO);
    conn.handle_timeout(10 * S);
    assert_eq!(drain(&mut conn), [0x89, 0x00]);
    conn.receive(&client_frame(0x8a, b"", K)); // the pong
    assert!(matches!(conn.poll_event().unwrap(), Some(Event::Pong(_))));
    conn.handle_timeout(15 * S);
    assert_eq!(conn.state(), State::Open);
    assert_eq!(conn.poll_timeout(), Some(25 * S));
    // A message counts as traffic too: no ping at the next interval.
    conn.receive(&client_frame(0x81, b"hi", K));
    conn.poll_event().unwrap();
    conn.handle_timeout(25 * S);
    assert!(conn.poll_transmit().is_none());
    assert_eq!(conn.poll_event(), Ok(None));
}
