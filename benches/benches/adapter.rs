//! What each library's tokio adapter costs per echoed message outside the
//! kernel: a server echo loop (receive a message, send it back) over an
//! in-memory socket that delivers one masked 16 B or 1 KiB frame per
//! readiness event, as the loopback echo with one message in flight does,
//! and takes every write. The loopback echo's server CPU is about 90%
//! kernel; this isolates the rest. Every library validates UTF-8 (yawc has
//! it switched on) and every echoed payload's length is summed.
//!
//! Run: `cargo bench -p wsproto-benches --bench adapter`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::{SinkExt, StreamExt};
use wsproto_benches::{masked_frames_of, payload, FramePerRead};
use wsproto_core::OpCode;

/// Different keys, so that the frames are not all alike.
const FRAMES: usize = 64;

fn echo(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for size in [16usize, 1024] {
        let frames = masked_frames_of(FRAMES, OpCode::Binary, &payload(size, OpCode::Binary));
        let frame_len = frames.len() / FRAMES;
        let mut group = c.benchmark_group(format!("adapter_echo/{size}"));
        group.throughput(Throughput::Elements(1));
        // Each library's echo of `iters` messages, timed on the runtime.
        let mut run = |name: &str, echo: &dyn Fn(FramePerRead, u64) -> Duration| {
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_custom(|iters| echo(FramePerRead::new(&frames, frame_len), iters))
            });
        };

        run("wsproto", &|io, iters| {
            rt.block_on(spawned(async move {
                let mut ws = wsproto_tokio::WebSocketStream::from_upgraded(
                    io,
                    wsproto_tokio::Role::Server,
                    wsproto_tokio::Config::default(),
                    &[],
                );
                let start = Instant::now();
                let mut echoed = 0;
                for _ in 0..iters {
                    let message = ws.next().await.unwrap().unwrap();
                    echoed += message.len();
                    ws.send(message).await.unwrap();
                }
                let time = start.elapsed();
                assert_eq!(echoed as u64, iters * size as u64);
                time
            }))
        });

        run("fastwebsockets", &|io, iters| {
            rt.block_on(spawned(async move {
                let ws =
                    fastwebsockets::WebSocket::after_handshake(io, fastwebsockets::Role::Server);
                let mut ws = fastwebsockets::FragmentCollector::new(ws);
                let start = Instant::now();
                let mut echoed = 0;
                for _ in 0..iters {
                    let frame = ws.read_frame().await.unwrap();
                    echoed += frame.payload.len();
                    ws.write_frame(frame).await.unwrap();
                }
                let time = start.elapsed();
                assert_eq!(echoed as u64, iters * size as u64);
                time
            }))
        });

        run("tokio-websockets", &|io, iters| {
            rt.block_on(spawned(async move {
                let mut ws = tokio_websockets::ServerBuilder::new().serve(io);
                let start = Instant::now();
                let mut echoed = 0;
                for _ in 0..iters {
                    let message = ws.next().await.unwrap().unwrap();
                    echoed += message.as_payload().len();
                    ws.send(message).await.unwrap();
                }
                let time = start.elapsed();
                assert_eq!(echoed as u64, iters * size as u64);
                time
            }))
        });

        run("tokio-tungstenite", &|io, iters| {
            rt.block_on(spawned(async move {
                let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                    io,
                    tokio_tungstenite::tungstenite::protocol::Role::Server,
                    None,
                )
                .await;
                let start = Instant::now();
                let mut echoed = 0;
                for _ in 0..iters {
                    let message = ws.next().await.unwrap().unwrap();
                    echoed += message.len();
                    ws.send(message).await.unwrap();
                }
                let time = start.elapsed();
                assert_eq!(echoed as u64, iters * size as u64);
                time
            }))
        });

        run("yawc", &|io, iters| {
            rt.block_on(spawned(async move {
                let options = yawc::Options::default()
                    .with_utf8()
                    .without_compression()
                    .with_limits(64 << 20, 64 << 20);
                let mut ws = yawc::WebSocket::from_stream(io, yawc::Role::Server, options).unwrap();
                let start = Instant::now();
                let mut echoed = 0;
                for _ in 0..iters {
                    let frame = ws.next_frame().await.unwrap();
                    let (_, _, payload) = frame.into_parts();
                    echoed += payload.len();
                    ws.send(yawc::Frame::binary(payload)).await.unwrap();
                }
                let time = start.elapsed();
                assert_eq!(echoed as u64, iters * size as u64);
                time
            }))
        });
        group.finish();
    }
}

/// Runs `echo` as a spawned task, as a server runs each connection, so
/// that the task's own waker is what the libraries see (`block_on`'s
/// differs from the clone it hands out, which made every stored waker a
/// fresh clone).
async fn spawned(echo: impl std::future::Future<Output = Duration> + Send + 'static) -> Duration {
    tokio::spawn(echo).await.unwrap()
}

criterion_group!(benches, echo);
criterion_main!(benches);
