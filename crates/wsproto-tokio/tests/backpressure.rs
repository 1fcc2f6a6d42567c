//! A peer that stops reading while we try to send 1 GiB: the sink stops
//! taking messages once the high-water mark and the socket buffers are
//! full, and the process's memory stays flat. Alone in its test binary so
//! that the resident-memory reading is this test's own.

use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::net::TcpListener;
use wsproto_tokio::{Config, Message};

mod common;

/// Resident memory of this process, in bytes (Linux).
fn resident() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_stops_the_sender() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // A peer that completes the handshake and never reads.
    let peer = tokio::spawn(async move { common::raw_client(addr, &[]).await });
    let (tcp, _) = listener.accept().await.unwrap();
    let config = Config {
        deflate: None,
        ..Config::default()
    };
    let high_water = config.write_high_water;
    let mut ws = wsproto_tokio::accept_with(tcp, config, |_| Ok(Default::default()))
        .await
        .unwrap();
    let _peer = peer.await.unwrap();

    // One 1 MiB payload shared by every message: memory growth can only
    // come from what the connection buffers.
    let payload = Bytes::from(vec![0x5a; 1 << 20]);
    let before = resident();
    let mut taken = 0usize;
    let mut most_buffered = 0;
    let mut stalled = false;
    for _ in 0..1024 {
        // `feed` waits for `poll_ready` and queues without flushing.
        let fed = ws.feed(Message::binary(payload.clone()));
        match tokio::time::timeout(Duration::from_secs(1), fed).await {
            Ok(result) => {
                result.unwrap();
                taken += 1;
                most_buffered = most_buffered.max(ws.buffered_out());
            }
            Err(_) => {
                stalled = true;
                break;
            }
        }
    }
    let after = resident();
    assert!(stalled, "all 1 GiB was taken by a peer that reads nothing");
    // The socket buffers on both sides hold a few MiB; we hold at most the
    // high-water mark plus one message.
    assert!(taken < 64, "{taken} MiB taken before the sink pushed back");
    assert!(
        most_buffered <= high_water + (1 << 20) + 14,
        "{most_buffered} bytes buffered"
    );
    assert!(ws.buffered_out() <= high_water + (1 << 20) + 14);
    if let (Some(before), Some(after)) = (before, after) {
        let grown = after.saturating_sub(before);
        assert!(grown < 16 << 20, "resident memory grew by {grown} bytes");
        eprintln!(
            "{taken} messages of 1 MiB taken, at most {most_buffered} bytes buffered, resident memory +{} KiB",
            grown / 1024
        );
    }
}
