//! Property tests: whatever is sent, in whatever frames, split at whatever
//! byte boundaries, arrives as the same messages and pings, in order.

mod common;

use bytes::BytesMut;
use common::*;
use proptest::prelude::*;
use wsproto_core::frame::encode_frame;
use wsproto_core::{Config, Connection, Event, Message, OpCode};

#[derive(Debug, Clone)]
enum Item {
    Message(Message),
    Ping(Vec<u8>),
}

fn payload_len() -> impl Strategy<Value = usize> {
    prop_oneof![8 => 0usize..200, 3 => 100usize..3000, 1 => 65_530usize..65_545, 1 => 0usize..70_000, 1 => 16_380usize..16_390]
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        4 => payload_len().prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n))
            .prop_map(|v| Item::Message(Message::binary(v))),
        4 => "\\PC{0,300}".prop_map(|s| Item::Message(Message::text(s))),
        1 => proptest::collection::vec(any::<u8>(), 0..=125).prop_map(Item::Ping),
    ]
}

/// Feeds `wire` to `receiver` in chunks of the given sizes (cycled), polling
/// after each chunk, and returns every event.
fn feed_in_chunks(receiver: &mut Connection, wire: &[u8], chunks: &[usize]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < wire.len() {
        let n = chunks[i % chunks.len()].clamp(1, wire.len() - pos);
        receiver.receive(&wire[pos..pos + n]);
        pos += n;
        i += 1;
        while let Some(event) = receiver.poll_event().expect("valid input") {
            events.push(event);
        }
    }
    events
}

/// Takes the output as a writev would: all chunks offered, only the next of
/// `writes` (cycled) bytes accepted each time.
fn drain_vectored(conn: &mut Connection, writes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while conn.buffered_out() > 0 {
        let offered: Vec<u8> = conn.transmit_chunks().flatten().copied().collect();
        assert_eq!(offered.len(), conn.buffered_out());
        let n = writes[i % writes.len()].min(offered.len());
        out.extend_from_slice(&offered[..n]);
        conn.advance(n);
        i += 1;
    }
    out
}

fn expected_events(items: &[Item]) -> Vec<Event> {
    items
        .iter()
        .map(|item| match item {
            Item::Message(m) => Event::Message(m.clone()),
            Item::Ping(p) => Event::Ping(bytes::Bytes::from(p.clone())),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Through the public API: any role, any send-side fragmentation, and
    /// the output taken either contiguously or as vectored writes that stop
    /// at arbitrary byte counts (large server payloads are queued by
    /// reference, so both ways must give the same bytes).
    #[test]
    fn connection_roundtrip(
        items in proptest::collection::vec(item(), 0..12),
        sender_is_client in any::<bool>(),
        frame_size in proptest::option::of(prop_oneof![1usize..400, 1000usize..40_000]),
        vectored_writes in proptest::option::of(proptest::collection::vec(1usize..70_000, 1..8)),
        chunks in proptest::collection::vec(1usize..5000, 1..8),
        seed in any::<[u8; 32]>(),
    ) {
        let config = Config { max_send_frame_size: frame_size, ..Config::default() };
        let random = Box::new(wsproto_core::ChaChaSource::from_seed(seed));
        let (mut sender, mut receiver) = if sender_is_client {
            (Connection::client(config, random), Connection::server(Config::default()))
        } else {
            (Connection::server(config), Connection::client(Config::default(), random))
        };
        for item in &items {
            match item {
                Item::Message(m) => sender.send(m.clone()).unwrap(),
                Item::Ping(p) => sender.ping(p).unwrap(),
            }
        }
        let wire = match vectored_writes {
            None => drain(&mut sender),
            Some(writes) => drain_vectored(&mut sender, &writes),
        };
        prop_assert_eq!(sender.buffered_out(), 0);
        let events = feed_in_chunks(&mut receiver, &wire, &chunks);
        prop_assert_eq!(events, expected_events(&items));
    }

    /// Through the raw encoder: each message cut into arbitrary fragments,
    /// pings interleaved between fragments, the stream split byte-wise.
    #[test]
    fn arbitrary_fragments_and_interleaved_control_frames(
        messages in proptest::collection::vec(
            (any::<bool>(), "\\PC{0,200}", proptest::collection::vec(0usize..64, 0..6), proptest::collection::vec(any::<bool>(), 0..6)),
            0..8),
        chunks in proptest::collection::vec(1usize..64, 1..8),
        key in any::<[u8; 4]>(),
    ) {
        let mut wire = BytesMut::new();
        let mut expected = Vec::new();
        for (is_text, text, cuts, pings) in &messages {
            let payload = text.as_bytes();
            // Fragment boundaries: arbitrary byte offsets, which may split characters.
            let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (payload.len() + 1)).collect();
            bounds.push(0);
            bounds.push(payload.len());
            bounds.sort_unstable();
            bounds.dedup();
            if bounds.len() == 1 { bounds.push(payload.len()); }
            let pieces: Vec<&[u8]> = bounds.windows(2).map(|w| &payload[w[0]..w[1]]).collect();
            let first = if *is_text { OpCode::Text } else { OpCode::Binary };
            for (i, piece) in pieces.iter().enumerate() {
                let opcode = if i == 0 { first } else { OpCode::Continuation };
                encode_frame(&mut wire, opcode, i + 1 == pieces.len(), piece, Some(key));
                if pings.get(i).copied().unwrap_or(false) && i + 1 < pieces.len() {
                    encode_frame(&mut wire, OpCode::Ping, true, &[i as u8], Some(key));
                    expected.push(Event::Ping(bytes::Bytes::from(vec![i as u8])));
                }
            }
            expected.push(Event::Message(if *is_text {
                Message::text(text.as_str())
            } else {
                Message::binary(payload.to_vec())
            }));
        }
        let mut receiver = Connection::server(Config::default());
        let events = feed_in_chunks(&mut receiver, &wire, &chunks);
        prop_assert_eq!(events, expected);
    }

    /// Garbage never panics, and every close code the connection sends in
    /// answer is one that may appear on the wire.
    #[test]
    fn garbage_never_panics_and_closes_validly(
        input in proptest::collection::vec(any::<u8>(), 0..512),
        is_server in any::<bool>(),
        chunks in proptest::collection::vec(1usize..32, 1..4),
    ) {
        let mut conn = if is_server {
            Connection::server(Config { max_message_size: 300, max_frame_size: 200, ..Config::default() })
        } else {
            client([5, 6, 7, 8])
        };
        let mut pos = 0;
        let mut i = 0;
        while pos < input.len() {
            let n = chunks[i % chunks.len()].min(input.len() - pos);
            conn.receive(&input[pos..pos + n]);
            pos += n;
            i += 1;
            while let Ok(Some(_)) = conn.poll_event() {}
        }
        let role = conn.role();
        let out = drain(&mut conn);
        for frame in frames_sent_by(role, &out) {
            if frame.header.opcode == OpCode::Close && frame.payload.len() >= 2 {
                let code = u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
                prop_assert!(wsproto_core::CloseCode::from(code).is_valid_on_wire(), "sent {}", code);
            }
        }
    }
}
