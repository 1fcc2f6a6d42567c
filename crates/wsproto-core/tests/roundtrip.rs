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
    feed(receiver, wire, chunks, &[Way::Receive], 1)
        .into_iter()
        .map(|event| event.expect("valid input"))
        .collect()
}

/// How a chunk reaches the connection: copied by `receive` (which unmasks
/// as it copies), or appended to `read_buf` as an adapter reading straight
/// into it does (unmasked in place later).
#[derive(Debug, Clone, Copy)]
enum Way {
    Receive,
    ReadBuf,
}

fn way() -> impl Strategy<Value = Way> {
    prop_oneof![Just(Way::Receive), Just(Way::ReadBuf)]
}

/// Feeds `wire` in chunks of the given sizes, each the given way (both
/// cycled), polling after every `poll_every` chunks (so several frames can
/// wait unparsed), and returns every result up to the first error.
fn feed(
    receiver: &mut Connection,
    wire: &[u8],
    chunks: &[usize],
    ways: &[Way],
    poll_every: usize,
) -> Vec<Result<Event, String>> {
    let mut results = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < wire.len() {
        let n = chunks[i % chunks.len()].clamp(1, wire.len() - pos);
        let chunk = &wire[pos..pos + n];
        match ways[i % ways.len()] {
            Way::Receive => receiver.receive(chunk),
            Way::ReadBuf => receiver.read_buf().extend_from_slice(chunk),
        }
        pos += n;
        i += 1;
        if i % poll_every == 0 || pos == wire.len() {
            loop {
                match receiver.poll_event() {
                    Ok(Some(event)) => results.push(Ok(event)),
                    Ok(None) => break,
                    Err(e) => {
                        results.push(Err(e.to_string()));
                        return results;
                    }
                }
            }
        }
    }
    results
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

    /// Messages sent from borrowed slices with `send_*_direct`, each written
    /// partly (arbitrary byte counts, offered as a writev would) before the
    /// `DirectSend` is dropped and its rest copied into the queue, give the
    /// same bytes as the copying `send_*` calls, in any role and with any
    /// send-side fragmentation; and large server payloads are offered as the
    /// caller's own slice.
    #[test]
    fn direct_sends_match_copying_sends(
        items in proptest::collection::vec(item(), 0..10),
        sender_is_client in any::<bool>(),
        frame_size in proptest::option::of(prop_oneof![1usize..400, 1000usize..40_000]),
        writes in proptest::collection::vec(proptest::option::of(1usize..70_000), 1..8),
        seed in any::<[u8; 32]>(),
    ) {
        let config = Config { max_send_frame_size: frame_size, ..Config::default() };
        let make = || if sender_is_client {
            Connection::client(config.clone(), Box::new(wsproto_core::ChaChaSource::from_seed(seed)))
        } else {
            Connection::server(config.clone())
        };
        let (mut copying, mut direct) = (make(), make());
        let mut wire = Vec::new();
        let mut w = 0;
        for item in &items {
            match item {
                Item::Message(m) => copying.send(m.clone()).unwrap(),
                Item::Ping(p) => copying.ping(p).unwrap(),
            }
            let mut send = match item {
                Item::Message(Message::Binary(b)) => direct.send_binary_direct(b).unwrap(),
                Item::Message(Message::Text(t)) => direct.send_text_direct(t).unwrap(),
                Item::Ping(p) => {
                    direct.ping(p).unwrap();
                    continue;
                }
            };
            let Item::Message(message) = item else { unreachable!() };
            let payload: &[u8] = message.payload();
            let by_reference = send.chunks().any(|c| c.as_ptr() == payload.as_ptr() && !c.is_empty());
            prop_assert_eq!(
                by_reference,
                !sender_is_client
                    && payload.len() >= 16 * 1024
                    && frame_size.map_or(true, |max| payload.len() <= max)
            );
            // Up to two writes (`None`: the socket would block), then drop.
            for _ in 0..2 {
                let Some(limit) = writes[w % writes.len()] else { break };
                w += 1;
                let offered: Vec<u8> = send.chunks().flatten().copied().collect();
                prop_assert_eq!(offered.len(), send.remaining());
                let n = limit.min(offered.len());
                wire.extend_from_slice(&offered[..n]);
                send.advance(n);
            }
            w += 1;
        }
        wire.extend(drain(&mut direct));
        prop_assert_eq!(wire, drain(&mut copying));
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

    /// A server's input reaches it through `receive` (unmasked as it is
    /// copied) or straight into `read_buf` (unmasked in place), in any mix
    /// and any split, with polls after every chunk or only now and then:
    /// the messages are the same.
    #[test]
    fn every_way_in_gives_the_same_messages(
        items in proptest::collection::vec(item(), 0..10),
        frame_size in proptest::option::of(prop_oneof![1usize..400, 1000usize..40_000]),
        chunks in proptest::collection::vec(1usize..70_000, 1..6),
        ways in proptest::collection::vec(way(), 1..5),
        poll_every in 1usize..4,
        seed in any::<[u8; 32]>(),
    ) {
        let config = Config { max_send_frame_size: frame_size, ..Config::default() };
        let random = Box::new(wsproto_core::ChaChaSource::from_seed(seed));
        let mut sender = Connection::client(config, random);
        for item in &items {
            match item {
                Item::Message(m) => sender.send(m.clone()).unwrap(),
                Item::Ping(p) => sender.ping(p).unwrap(),
            }
        }
        let wire = drain(&mut sender);
        let mut receiver = Connection::server(Config::default());
        let events = feed(&mut receiver, &wire, &chunks, &ways, poll_every);
        let expected: Vec<Result<Event, String>> = expected_events(&items).into_iter().map(Ok).collect();
        prop_assert_eq!(events, expected);
    }

    /// Masked frames with corrupted bytes: whichever way the input comes in,
    /// the same events and the same error come out.
    #[test]
    fn every_way_in_fails_the_same_way(
        frames in proptest::collection::vec((0u8..16, any::<bool>(), payload_len(), any::<Option<[u8; 4]>>()), 0..6),
        corruptions in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        chunks in proptest::collection::vec(1usize..5000, 1..6),
        ways in proptest::collection::vec(way(), 1..5),
        poll_every in 1usize..4,
    ) {
        let mut wire = BytesMut::new();
        for (opcode, fin, len, key) in &frames {
            let opcode = OpCode::from_u8(*opcode).unwrap_or(OpCode::Binary);
            let payload: Vec<u8> = (0..*len).map(|i| (i * 31 % 251) as u8).collect();
            encode_frame(&mut wire, opcode, *fin, &payload, *key);
        }
        for (at, byte) in &corruptions {
            if !wire.is_empty() {
                let at = at % wire.len();
                wire[at] = *byte;
            }
        }
        let config = Config { max_frame_size: 50_000, ..Config::default() };
        let reference = feed(&mut Connection::server(config.clone()), &wire, &[wire.len().max(1)], &[Way::ReadBuf], 1);
        let received = feed(&mut Connection::server(config.clone()), &wire, &chunks, &[Way::Receive], poll_every);
        let mixed = feed(&mut Connection::server(config), &wire, &chunks, &ways, poll_every);
        prop_assert_eq!(&received, &reference);
        prop_assert_eq!(&mixed, &reference);
    }

    /// Large text in several scripts, some of it made invalid by one byte,
    /// in single and fragmented frames: text the unmasker checks as it
    /// copies (and the connection then skips) gives the same messages and
    /// the same errors, at the same point, as text validated in place.
    #[test]
    fn checked_text_fails_and_passes_like_text_validated_in_place(
        messages in proptest::collection::vec(
            ("[a-z κόσμε世界😀]{300,6000}", proptest::option::of((any::<usize>(), 0x80u8..=0xff)), 0usize..3),
            1..5),
        chunks in proptest::collection::vec(1usize..20_000, 1..6),
        ways in proptest::collection::vec(way(), 1..5),
        poll_every in 1usize..4,
        key in any::<[u8; 4]>(),
    ) {
        let mut wire = BytesMut::new();
        for (text, corruption, fragments) in &messages {
            let mut payload = text.as_bytes().to_vec();
            if let Some((at, byte)) = corruption {
                let at = at % payload.len();
                payload[at] = *byte;
            }
            let step = payload.len() / (fragments + 1) + 1;
            let pieces: Vec<&[u8]> = payload.chunks(step).collect();
            for (i, piece) in pieces.iter().enumerate() {
                let opcode = if i == 0 { OpCode::Text } else { OpCode::Continuation };
                encode_frame(&mut wire, opcode, i + 1 == pieces.len(), piece, Some(key));
            }
        }
        let reference = feed(&mut Connection::server(Config::default()), &wire, &[wire.len().max(1)], &[Way::ReadBuf], 1);
        let received = feed(&mut Connection::server(Config::default()), &wire, &chunks, &[Way::Receive], poll_every);
        let mixed = feed(&mut Connection::server(Config::default()), &wire, &chunks, &ways, poll_every);
        prop_assert_eq!(&received, &reference);
        prop_assert_eq!(&mixed, &reference);
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
