//! Decoding a buffer of many masked client frames into messages, as a server
//! does: ours, tungstenite, fastwebsockets, tokio-websockets and yawc
//! reading the same bytes from an in-memory transport, and a memcpy of the
//! input as the bandwidth baseline. Every library validates UTF-8 on text
//! (yawc has it switched on) and every payload length is summed, so no one
//! skips work. The decoders are in `wsproto_benches::decoders`, shared with
//! the `decode_rounds` binary.
//!
//! Run: `cargo bench -p wsproto-benches --bench decode`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use wsproto_benches::decoders::{self, READ};
use wsproto_benches::{frame_count, masked_frames_of};

fn decoding(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for (kind, size, opcode, body) in decoders::cases() {
        let count = frame_count(size);
        let input = masked_frames_of(count, opcode, &body);
        let mut group = c.benchmark_group(format!("decode/{kind}_{size}"));
        group.throughput(Throughput::Elements(count as u64));
        let expected = count * size;

        group.bench_function(BenchmarkId::from_parameter("wsproto"), |b| {
            b.iter(|| assert_eq!(decoders::wsproto(&input), expected))
        });
        group.bench_function(BenchmarkId::from_parameter("tungstenite"), |b| {
            b.iter(|| assert_eq!(decoders::tungstenite(&input, count), expected))
        });
        group.bench_function(BenchmarkId::from_parameter("fastwebsockets"), |b| {
            b.iter(|| assert_eq!(decoders::fastwebsockets(&rt, &input, count), expected))
        });
        group.bench_function(BenchmarkId::from_parameter("tokio-websockets"), |b| {
            b.iter(|| assert_eq!(decoders::tokio_websockets(&rt, &input, count), expected))
        });
        group.bench_function(BenchmarkId::from_parameter("yawc"), |b| {
            b.iter(|| assert_eq!(decoders::yawc(&rt, &input, count), expected))
        });

        let mut copy = vec![0u8; input.len()];
        group.bench_function(BenchmarkId::from_parameter("memcpy"), |b| {
            b.iter(|| {
                for (dst, src) in copy.chunks_mut(READ).zip(input.chunks(READ)) {
                    dst.copy_from_slice(black_box(src));
                }
            })
        });
        let mut read_buf = vec![0u8; READ];
        group.bench_function(BenchmarkId::from_parameter("memcpy_reused"), |b| {
            b.iter(|| decoders::memcpy_reused(&input, &mut read_buf))
        });
        group.finish();
    }
}

criterion_group!(benches, decoding);
criterion_main!(benches);
