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
                let ws = wsproto_tokio::WebSocketStream::from_upgraded(
                    io,
                    wsproto_tokio::Role::Server,
                    wsproto_tokio::Config::default(),
                    &[],
                );
                timed(iters, size, echo_messages(ws, iters, |m| m.len())).await
            }))
        });

        run("fastwebsockets", &|io, iters| {
            rt.block_on(spawned(async move {
                let ws =
                    fastwebsockets::WebSocket::after_handshake(io, fastwebsockets::Role::Server);
                let mut ws = fastwebsockets::FragmentCollector::new(ws);
                timed(iters, size, async move {
                    let mut echoed = 0;
                    for _ in 0..iters {
                        let frame = ws.read_frame().await.unwrap();
                        echoed += frame.payload.len();
                        ws.write_frame(frame).await.unwrap();
                    }
                    echoed
                })
                .await
            }))
        });

        run("tokio-websockets", &|io, iters| {
            rt.block_on(spawned(async move {
                let ws = tokio_websockets::ServerBuilder::new().serve(io);
                let echo = echo_messages(ws, iters, |m| m.as_payload().len());
                timed(iters, size, echo).await
            }))
        });

        run("tokio-tungstenite", &|io, iters| {
            rt.block_on(spawned(async move {
                let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                    io,
                    tokio_tungstenite::tungstenite::protocol::Role::Server,
                    None,
                )
                .await;
                timed(iters, size, echo_messages(ws, iters, |m| m.len())).await
            }))
        });

        run("yawc", &|io, iters| {
            rt.block_on(spawned(async move {
                let options = yawc::Options::default()
                    .with_utf8()
                    .without_compression()
                    .with_limits(64 << 20, 64 << 20);
                let mut ws = yawc::WebSocket::from_stream(io, yawc::Role::Server, options).unwrap();
                timed(iters, size, async move {
                    let mut echoed = 0;
                    for _ in 0..iters {
                        let frame = ws.next_frame().await.unwrap();
                        let (_, _, payload) = frame.into_parts();
                        echoed += payload.len();
                        ws.send(yawc::Frame::binary(payload)).await.unwrap();
                    }
                    echoed
                })
                .await
            }))
        });
        group.finish();
    }
}

/// The echo loop of a library that is a `Stream` and a `Sink` of
/// messages: `iters` messages back with `send`; returns the bytes echoed,
/// each message's counted by `len`.
async fn echo_messages<W, M, E>(mut ws: W, iters: u64, len: fn(&M) -> usize) -> usize
where
    W: futures_util::Stream<Item = Result<M, E>> + futures_util::Sink<M> + Unpin,
    E: std::fmt::Debug,
    <W as futures_util::Sink<M>>::Error: std::fmt::Debug,
{
    let mut echoed = 0;
    for _ in 0..iters {
        let message = ws.next().await.unwrap().unwrap();
        echoed += len(&message);
        ws.send(message).await.unwrap();
    }
    echoed
}

/// Times `echo`, which echoes `iters` messages of `size` bytes and
/// returns the bytes it echoed.
async fn timed(
    iters: u64,
    size: usize,
    echo: impl std::future::Future<Output = usize>,
) -> Duration {
    let start = Instant::now();
    let echoed = echo.await;
    let time = start.elapsed();
    assert_eq!(echoed as u64, iters * size as u64);
    time
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
