//! Core hot paths: masking against memcpy and a naive loop, and decoding a
//! buffer of masked client frames into messages.
//!
//! Run: `cargo bench -p wsproto-benches --bench core`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wsproto_core::{apply_mask, Config, Connection, Event, OpCode};

fn naive_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

fn masking(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in [16usize, 1024, 16 * 1024, 64 * 1024, 1 << 20] {
        group.throughput(Throughput::Bytes(size as u64));
        // One byte in, so the buffer is misaligned as received payloads usually are.
        let mut buf = vec![0x5au8; size + 1];
        let src = vec![0xa5u8; size + 1];
        let key = [0x12, 0x34, 0x56, 0x78];
        group.bench_with_input(BenchmarkId::new("apply_mask", size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut buf[1..]), key, 0))
        });
        group.bench_with_input(BenchmarkId::new("naive", size), &size, |b, _| {
            b.iter(|| naive_mask(black_box(&mut buf[1..]), key, 0))
        });
        group.bench_with_input(BenchmarkId::new("memcpy", size), &size, |b, _| {
            b.iter(|| buf[1..].copy_from_slice(black_box(&src[1..])))
        });
    }
    group.finish();
}

fn decoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (size, opcode, name) in [
        (16usize, OpCode::Binary, "binary"),
        (1024, OpCode::Binary, "binary"),
        (64 * 1024, OpCode::Binary, "binary"),
        (16 * 1024, OpCode::Text, "text"),
    ] {
        let count = (4 << 20) / size.max(1024);
        let input = wsproto_benches::masked_frames(count, size, opcode);
        group.throughput(Throughput::Bytes((count * size) as u64));
        group.bench_function(BenchmarkId::new(name, size), |b| {
            b.iter(|| {
                let mut conn = Connection::server(Config::default());
                conn.read_buf().extend_from_slice(&input);
                let mut n = 0;
                while let Some(Event::Message(m)) = conn.poll_event().unwrap() {
                    n += m.len();
                }
                assert_eq!(n, count * size);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, masking, decoding);
criterion_main!(benches);
