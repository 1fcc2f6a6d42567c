//! Decoding a buffer of many masked client frames into messages, as a server
//! does: ours, tungstenite, fastwebsockets, tokio-websockets and yawc
//! reading the same bytes from an in-memory transport, and a memcpy of the
//! input as the bandwidth baseline. Every library validates UTF-8 on text
//! (yawc has it switched on) and every payload length is summed, so no one
//! skips work.
//!
//! Run: `cargo bench -p wsproto-benches --bench decode`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::StreamExt;
use std::hint::black_box;
use wsproto_benches::{
    ascii_payload, frame_count, masked_frames_of, payload, AsyncSliceStream, SliceStream,
};
use wsproto_core::{Config, Connection, Event, OpCode};

/// What a socket read delivers at a time.
const READ: usize = 64 * 1024;

fn decoding(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cases = [
        (
            "binary",
            16usize,
            OpCode::Binary,
            payload(16, OpCode::Binary),
        ),
        (
            "binary",
            1024,
            OpCode::Binary,
            payload(1024, OpCode::Binary),
        ),
        (
            "binary",
            16384,
            OpCode::Binary,
            payload(16384, OpCode::Binary),
        ),
        (
            "binary",
            65536,
            OpCode::Binary,
            payload(65536, OpCode::Binary),
        ),
        ("ascii", 16384, OpCode::Text, ascii_payload(16384)),
        ("text", 16384, OpCode::Text, payload(16384, OpCode::Text)),
    ];
    for (kind, size, opcode, body) in cases {
        let count = frame_count(size);
        let input = masked_frames_of(count, opcode, &body);
        let mut group = c.benchmark_group(format!("decode/{kind}_{size}"));
        group.throughput(Throughput::Elements(count as u64));

        group.bench_function(BenchmarkId::from_parameter("wsproto"), |b| {
            b.iter(|| {
                let mut conn = Connection::server(Config::default());
                let mut got = 0;
                for chunk in input.chunks(READ) {
                    conn.receive(chunk);
                    while let Some(Event::Message(m)) = conn.poll_event().unwrap() {
                        got += black_box(m).len();
                    }
                }
                assert_eq!(got, count * size);
            })
        });

        group.bench_function(BenchmarkId::from_parameter("tungstenite"), |b| {
            b.iter(|| {
                let stream = SliceStream::new(&input);
                let mut ws = tungstenite::WebSocket::from_raw_socket(
                    stream,
                    tungstenite::protocol::Role::Server,
                    None,
                );
                let mut got = 0;
                for _ in 0..count {
                    got += black_box(ws.read().unwrap()).len();
                }
                assert_eq!(got, count * size);
            })
        });

        group.bench_function(BenchmarkId::from_parameter("fastwebsockets"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let stream = AsyncSliceStream(SliceStream::new(&input));
                    let mut ws = fastwebsockets::WebSocket::after_handshake(
                        stream,
                        fastwebsockets::Role::Server,
                    );
                    let mut got = 0;
                    for _ in 0..count {
                        got += black_box(ws.read_frame().await.unwrap()).payload.len();
                    }
                    assert_eq!(got, count * size);
                })
            })
        });

        group.bench_function(BenchmarkId::from_parameter("tokio-websockets"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let stream = AsyncSliceStream(SliceStream::new(&input));
                    let mut ws = tokio_websockets::ServerBuilder::new().serve(stream);
                    let mut got = 0;
                    for _ in 0..count {
                        let message = ws.next().await.unwrap().unwrap();
                        got += black_box(message.into_payload()).len();
                    }
                    assert_eq!(got, count * size);
                })
            })
        });

        group.bench_function(BenchmarkId::from_parameter("yawc"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let stream = AsyncSliceStream(SliceStream::new(&input));
                    let options = yawc::Options::default()
                        .with_utf8()
                        .without_compression()
                        .with_limits(64 << 20, 64 << 20);
                    let mut ws =
                        yawc::WebSocket::from_stream(stream, yawc::Role::Server, options).unwrap();
                    let mut got = 0;
                    for _ in 0..count {
                        let frame = ws.next_frame().await.unwrap();
                        got += black_box(frame.into_parts().2).len();
                    }
                    assert_eq!(got, count * size);
                })
            })
        });

        let mut copy = vec![0u8; input.len()];
        group.bench_function(BenchmarkId::from_parameter("memcpy"), |b| {
            b.iter(|| {
                for (dst, src) in copy.chunks_mut(READ).zip(input.chunks(READ)) {
                    dst.copy_from_slice(black_box(src));
                }
            })
        });
        // The least a decoder that copies from its transport must do: every
        // read copied into one buffer that stays in cache, nothing else.
        let mut read_buf = vec![0u8; READ];
        group.bench_function(BenchmarkId::from_parameter("memcpy_reused"), |b| {
            b.iter(|| {
                for src in input.chunks(READ) {
                    read_buf[..src.len()].copy_from_slice(black_box(src));
                    black_box(&mut read_buf);
                }
            })
        });
        group.finish();
    }
}

criterion_group!(benches, decoding);
criterion_main!(benches);
