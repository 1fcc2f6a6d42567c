//! Arbitrary bytes as the payloads of masked text messages, repeated to the
//! sizes a server checks for UTF-8 as it unmasks them, sent whole or in two
//! fragments and delivered in pieces of any size (some through `receive`,
//! some appended to `read_buf`). Invariant: the server delivers each
//! message, with the same bytes, exactly when its payload is valid UTF-8 by
//! `core::str::from_utf8`; at the first one that is not, it fails with
//! `InvalidUtf8`, delivers nothing more and queues a close with code 1007.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wsproto_core::frame::encode_frame;
use wsproto_core::{Config, Connection, Error, Event, OpCode, ProtocolError};

fuzz_target!(|data: &[u8]| {
    let Some((&control, mut input)) = data.split_first() else {
        return;
    };
    // Payloads as [shape][len][bytes...]: the bytes repeated (shape & 15) * 8
    // + 1 times; fragmented in two at the byte `len * (shape >> 4)` when
    // that is inside the payload.
    let mut wire = BytesMut::new();
    let mut payloads = Vec::new();
    let key = [0x37, 0xfa, 0x21, 0x3d];
    while let Some((&shape, tail)) = input.split_first() {
        let (&len, tail) = tail.split_first().unwrap_or((&0, &[]));
        let len = usize::from(len).min(tail.len());
        let (body, tail) = tail.split_at(len);
        input = tail;
        let payload = body.repeat(usize::from(shape & 15) * 8 + 1);
        let cut = len * usize::from(shape >> 4);
        if cut > 0 && cut < payload.len() {
            encode_frame(&mut wire, OpCode::Text, false, &payload[..cut], Some(key));
            encode_frame(
                &mut wire,
                OpCode::Continuation,
                true,
                &payload[cut..],
                Some(key),
            );
        } else {
            encode_frame(&mut wire, OpCode::Text, true, &payload, Some(key));
        }
        payloads.push(payload);
    }
    let chunk = usize::from(control) * 33 + 1;
    let mut server = Connection::server(Config::default());
    let mut got = Vec::new();
    let mut error = None;
    'deliver: for (i, piece) in wire.chunks(chunk).enumerate() {
        if i % 3 == 2 {
            server.read_buf().extend_from_slice(piece);
        } else {
            server.receive(piece);
        }
        loop {
            match server.poll_event() {
                Ok(Some(Event::Message(m))) => got.push(m),
                Ok(Some(other)) => panic!("unexpected {other:?}"),
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break 'deliver;
                }
            }
        }
    }
    let valid = payloads
        .iter()
        .take_while(|p| std::str::from_utf8(p).is_ok())
        .count();
    assert_eq!(got.len(), valid, "messages delivered");
    for (m, p) in got.iter().zip(&payloads) {
        assert_eq!(m.as_text().map(str::as_bytes), Some(&p[..]));
    }
    if valid == payloads.len() {
        assert!(error.is_none(), "{error:?}");
    } else {
        assert!(
            matches!(error, Some(Error::Protocol(ProtocolError::InvalidUtf8))),
            "{error:?}"
        );
        let mut out = Vec::new();
        while let Some(bytes) = server.poll_transmit() {
            out.extend_from_slice(bytes);
            let n = bytes.len();
            server.advance(n);
        }
        // A server's close frame: unmasked, the code 1007 first.
        assert!(
            out.windows(4)
                .any(|w| w[0] == 0x88 && w[2..] == [0x03, 0xef]),
            "{out:x?}"
        );
    }
});
