//! Masking: ours against the public masking functions of the peers
//! (fastwebsockets' `unmask`, yawc's `mask::apply_mask`; tungstenite's and
//! tokio-websockets' are private), a naive loop and a memcpy of the same
//! size, on 1-byte-misaligned buffers.
//!
//! Run: `cargo bench -p wsproto-benches --bench mask`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

fn naive(buf: &mut [u8], key: [u8; 4]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

fn masking(c: &mut Criterion) {
    let key = [0x12, 0x34, 0x56, 0x78];
    for size in [16usize, 64, 256, 1024, 4096, 16 * 1024, 64 * 1024, 1 << 20] {
        let mut group = c.benchmark_group(format!("mask/{size}"));
        group.throughput(Throughput::Bytes(size as u64));
        // One byte in: received payloads rarely start on an aligned address.
        let mut buf = vec![0x5au8; size + 1];
        let src = vec![0xa5u8; size + 1];
        group.bench_function(BenchmarkId::from_parameter("wsproto"), |b| {
            b.iter(|| wsproto_core::apply_mask(black_box(&mut buf[1..]), key, 0))
        });
        group.bench_function(BenchmarkId::from_parameter("wsproto_portable"), |b| {
            b.iter(|| wsproto_core::frame::apply_mask_portable(black_box(&mut buf[1..]), key, 0))
        });
        group.bench_function(BenchmarkId::from_parameter("wsproto_offset3"), |b| {
            b.iter(|| wsproto_core::apply_mask(black_box(&mut buf[1..]), key, 3))
        });
        group.bench_function(BenchmarkId::from_parameter("fastwebsockets"), |b| {
            b.iter(|| fastwebsockets::unmask(black_box(&mut buf[1..]), key))
        });
        group.bench_function(BenchmarkId::from_parameter("yawc"), |b| {
            b.iter(|| yawc::mask::apply_mask(black_box(&mut buf[1..]), key))
        });
        group.bench_function(BenchmarkId::from_parameter("naive"), |b| {
            b.iter(|| naive(black_box(&mut buf[1..]), key))
        });
        group.bench_function(BenchmarkId::from_parameter("memcpy"), |b| {
            b.iter(|| buf[1..].copy_from_slice(black_box(&src[1..])))
        });
        group.finish();
    }
}

criterion_group!(benches, masking);
criterion_main!(benches);
