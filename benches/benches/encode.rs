//! Encoding many messages into frames and writing them to an in-memory
//! sink: ours, tungstenite, fastwebsockets, tokio-websockets and yawc, as a
//! server (unmasked) and as a client (masked), and a memcpy of the payloads
//! as the baseline. Each library writes every message out (the sink counts
//! the bytes).
//!
//! Run: `cargo bench -p wsproto-benches --bench encode`

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::SinkExt;
use std::hint::black_box;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use wsproto_benches::{frame_count, payload, Sink};
use wsproto_core::{ChaChaSource, Config, Connection, Message, OpCode};

fn encoding(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for client in [false, true] {
        for size in [16usize, 1024, 64 * 1024] {
            let count = frame_count(size);
            let data = Bytes::from(payload(size, OpCode::Binary));
            let role = if client { "client" } else { "server" };
            let mut group = c.benchmark_group(format!("encode/{role}_{size}"));
            group.throughput(Throughput::Elements(count as u64));

            // `wsproto` sends a borrowed slice with `send_binary_direct`: a
            // server writes a payload of 16 KiB or more straight from it,
            // as fastwebsockets' `Payload::Borrowed` does; smaller ones and
            // a client's (masked) are copied into the outgoing buffer.
            // `wsproto_bytes` sends an owned `Bytes` (a refcount increment
            // per message), which a server queues by reference from 16 KiB
            // up. Both take the output as a socket with writev would: every
            // chunk at once.
            for (name, owned) in [("wsproto", false), ("wsproto_bytes", true)] {
                group.bench_function(BenchmarkId::from_parameter(name), |b| {
                    b.iter(|| {
                        let mut conn = if client {
                            Connection::client(
                                Config::default(),
                                Box::new(ChaChaSource::from_seed([7; 32])),
                            )
                        } else {
                            Connection::server(Config::default())
                        };
                        let mut sink = Sink::default();
                        for _ in 0..count {
                            if owned {
                                conn.send(Message::Binary(data.clone())).unwrap();
                                let n: usize =
                                    conn.transmit_chunks().map(|c| black_box(c).len()).sum();
                                sink.written += n;
                                conn.advance(n);
                            } else {
                                let mut send = conn.send_binary_direct(&data).unwrap();
                                let n: usize = send.chunks().map(|c| black_box(c).len()).sum();
                                sink.written += n;
                                send.advance(n);
                            }
                        }
                        assert!(sink.written >= count * size);
                    })
                });
            }

            group.bench_function(BenchmarkId::from_parameter("tungstenite"), |b| {
                let role = if client {
                    tungstenite::protocol::Role::Client
                } else {
                    tungstenite::protocol::Role::Server
                };
                b.iter(|| {
                    let mut ws =
                        tungstenite::WebSocket::from_raw_socket(Sink::default(), role, None);
                    for _ in 0..count {
                        ws.send(tungstenite::Message::Binary(data.clone())).unwrap();
                    }
                    assert!(ws.get_ref().written >= count * size);
                })
            });

            group.bench_function(BenchmarkId::from_parameter("fastwebsockets"), |b| {
                let role = if client {
                    fastwebsockets::Role::Client
                } else {
                    fastwebsockets::Role::Server
                };
                b.iter(|| {
                    rt.block_on(async {
                        let mut ws =
                            fastwebsockets::WebSocket::after_handshake(Sink::default(), role);
                        for _ in 0..count {
                            let frame = fastwebsockets::Frame::binary(
                                fastwebsockets::Payload::Borrowed(&data),
                            );
                            ws.write_frame(frame).await.unwrap();
                        }
                        assert!(ws.into_inner().written >= count * size);
                    })
                })
            });

            group.bench_function(BenchmarkId::from_parameter("tokio-websockets"), |b| {
                b.iter(|| {
                    rt.block_on(async {
                        let mut ws = if client {
                            tokio_websockets::ClientBuilder::new().take_over(Sink::default())
                        } else {
                            tokio_websockets::ServerBuilder::new().serve(Sink::default())
                        };
                        for _ in 0..count {
                            let message = tokio_websockets::Message::binary(data.clone());
                            ws.send(message).await.unwrap();
                        }
                        assert!(ws.get_ref().written >= count * size);
                    })
                })
            });

            group.bench_function(BenchmarkId::from_parameter("yawc"), |b| {
                let role = if client {
                    yawc::Role::Client
                } else {
                    yawc::Role::Server
                };
                b.iter(|| {
                    rt.block_on(async {
                        // yawc does not hand its transport back: count
                        // through a shared counter.
                        let written = Arc::new(AtomicUsize::new(0));
                        let sink = CountingSink(written.clone());
                        let options = yawc::Options::default().without_compression();
                        let mut ws = yawc::WebSocket::from_stream(sink, role, options).unwrap();
                        for _ in 0..count {
                            ws.send(yawc::Frame::binary(data.clone())).await.unwrap();
                        }
                        assert!(written.load(Ordering::Relaxed) >= count * size);
                    })
                })
            });

            let mut copy = vec![0u8; size];
            group.bench_function(BenchmarkId::from_parameter("memcpy"), |b| {
                b.iter(|| {
                    for _ in 0..count {
                        copy.copy_from_slice(black_box(&data));
                    }
                })
            });
            group.finish();
        }
    }
}

/// Discards writes and counts them in a counter the caller keeps. Kept
/// apart from `wsproto_benches::Sink` on purpose: giving that sink an
/// optional shared counter slowed fastwebsockets' 16-byte server encode
/// from 1.78 to 2.24 ms per run (one A/B run), so only yawc, which does
/// not hand its transport back, pays for the counter.
struct CountingSink(Arc<AtomicUsize>);

impl tokio::io::AsyncRead for CountingSink {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Pending
    }
}

impl tokio::io::AsyncWrite for CountingSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.fetch_add(buf.len(), Ordering::Relaxed);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let n = bufs.iter().map(|b| b.len()).sum();
        self.0.fetch_add(n, Ordering::Relaxed);
        Poll::Ready(Ok(n))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

criterion_group!(benches, encoding);
criterion_main!(benches);
