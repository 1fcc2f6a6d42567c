//! Hostile peers over loopback: slow and oversized handshakes, absurd frame
//! lengths, endless messages, resets. Every case ends with a typed error and
//! the right response, never a panic or a hang.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsproto_core::frame::MAX_HEADER_LEN;
use wsproto_core::{FrameHeader, OpCode, ProtocolError};
use wsproto_tokio::{Accept, Config, Error};

mod common;

/// A server that accepts one connection with `config`, reads it to the
/// end, and returns how it ended.
async fn one_shot_server(
    config: Config,
) -> (SocketAddr, tokio::task::JoinHandle<Result<(), Error>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = wsproto_tokio::accept_with(tcp, config, |_| Ok(Accept::default())).await?;
        while let Some(message) = ws.next().await {
            message?;
        }
        Ok(())
    });
    (addr, task)
}

async fn handshaken(addr: SocketAddr) -> TcpStream {
    common::raw_client(addr, &[]).await.0
}

/// Reads until EOF and returns the close code of the first close frame seen.
async fn close_code_from(tcp: &mut TcpStream) -> Option<u16> {
    let mut all = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut all)).await;
    let at = all.iter().position(|&b| b == 0x88)?;
    Some(u16::from_be_bytes([*all.get(at + 2)?, *all.get(at + 3)?]))
}

/// A zero linger makes the close send RST instead of FIN. (Deprecated in
/// tokio because a non-zero linger blocks the thread on drop; zero does not.)
#[allow(deprecated)]
fn send_rst_on_drop(tcp: &TcpStream) {
    tcp.set_linger(Some(Duration::ZERO)).unwrap();
}

/// The header of a client frame with first byte `b0` (FIN, opcode) and a
/// zero masking key, so that payload bytes can follow as they are.
fn masked_header(b0: u8, len: u64) -> Vec<u8> {
    let header = FrameHeader {
        fin: b0 & 0x80 != 0,
        rsv: 0,
        opcode: OpCode::from_u8(b0 & 0x0f).unwrap(),
        mask: Some([0; 4]),
        payload_len: len,
    };
    let mut out = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut out);
    out[..n].to_vec()
}

/// How a peer that vanished or reset the connection must end: a transport
/// error or a closure without a close frame, never a hang or a panic.
fn assert_transport_error(end: &Result<(), Error>) {
    assert!(
        matches!(end, Err(Error::Io(_)) | Err(Error::AbnormalClosure)),
        "{end:?}"
    );
}

#[tokio::test]
async fn slow_handshake_is_cut_off_at_the_handshake_timeout() {
    let config = Config {
        handshake_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let (addr, server) = one_shot_server(config).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n";
    let started = tokio::time::Instant::now();
    for byte in request {
        if tcp.write_all(std::slice::from_ref(byte)).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if server.is_finished() {
            break;
        }
    }
    let end = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(end, Err(Error::HandshakeTimeout)), "{end:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest)).await;
    assert!(n.is_ok(), "the server dropped the socket, so the read ends");
}

#[tokio::test]
async fn header_block_over_the_limit_gets_431() {
    let (addr, server) = one_shot_server(Config::default()).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let _ = tcp.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tcp.read_to_end(&mut response).await;
    assert!(
        response.starts_with(b"HTTP/1.1 431 "),
        "{}",
        String::from_utf8_lossy(&response)
    );
    let end = server.await.unwrap();
    assert!(
        matches!(end, Err(Error::Handshake(ref e)) if e.status() == 431),
        "{end:?}"
    );
}

#[tokio::test]
async fn declared_length_of_2_pow_63_minus_1_gets_1009_without_allocating() {
    let (addr, server) = one_shot_server(Config::default()).await;
    let mut tcp = handshaken(addr).await;
    tcp.write_all(&masked_header(0x82, (1 << 63) - 1))
        .await
        .unwrap();
    assert_eq!(close_code_from(&mut tcp).await, Some(1009));
    let end = server.await.unwrap();
    assert!(
        matches!(
            end,
            Err(Error::Protocol(wsproto_core::Error::Protocol(
                ProtocolError::FrameTooLarge { .. }
            )))
        ),
        "{end:?}"
    );
}

#[tokio::test]
async fn endless_fragmented_message_gets_1009_at_the_message_limit() {
    let config = Config {
        max_message_size: 64 * 1024,
        ..Config::default()
    };
    let (addr, server) = one_shot_server(config).await;
    let mut tcp = handshaken(addr).await;
    let fragment = [b'x'; 4096];
    let mut sent = 0usize;
    let mut first = true;
    // Keep sending non-final fragments until the server stops us.
    while sent < 1 << 20 {
        let mut frame = masked_header(if first { 0x01 } else { 0x00 }, fragment.len() as u64);
        frame.extend_from_slice(&fragment);
        if tcp.write_all(&frame).await.is_err() {
            break;
        }
        first = false;
        sent += fragment.len();
        if server.is_finished() {
            break;
        }
    }
    assert_eq!(close_code_from(&mut tcp).await, Some(1009));
    let end = server.await.unwrap();
    assert!(
        matches!(
            end,
            Err(Error::Protocol(wsproto_core::Error::Protocol(
                ProtocolError::MessageTooLarge { limit: 65536 }
            )))
        ),
        "{end:?}"
    );
}

#[tokio::test]
async fn tcp_reset_in_the_middle_of_a_frame_is_a_typed_error() {
    let (addr, server) = one_shot_server(Config::default()).await;
    let mut tcp = handshaken(addr).await;
    let mut half = masked_header(0x82, 1000);
    half.extend_from_slice(&[1u8; 300]);
    tcp.write_all(&half).await.unwrap();
    send_rst_on_drop(&tcp);
    drop(tcp);
    let end = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert_transport_error(&end);
}

#[tokio::test]
async fn tcp_reset_in_the_middle_of_the_handshake_is_a_typed_error() {
    let (addr, server) = one_shot_server(Config::default()).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpg")
        .await
        .unwrap();
    send_rst_on_drop(&tcp);
    drop(tcp);
    let end = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert_transport_error(&end);
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_from_a_peer_that_never_reads_is_throttled() {
    let config = Config {
        max_write_buffer: 64 * 1024,
        ..Config::default()
    };
    let (addr, _server) = one_shot_server(config).await;
    let mut tcp = handshaken(addr).await;
    let mut ping = masked_header(0x89, 125);
    ping.extend_from_slice(&[b'p'; 125]);
    let burst: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 1000)
        .collect();
    let before = rss_kib();
    // Write pings for 3 s without ever reading a pong. Every ping asks for a
    // pong of the same size, so without backpressure the server would queue
    // as much as we manage to send.
    let mut sent = 0usize;
    let flood = async {
        loop {
            tcp.write_all(&burst).await.unwrap();
            sent += burst.len();
            if sent > 256 << 20 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), flood).await;
    let grown = rss_kib().saturating_sub(before);
    // The server stops reading once 64 KiB of pongs wait, so TCP's windows
    // stop us long before 256 MiB; memory stays flat.
    assert!(
        sent < 64 << 20,
        "sent {sent} bytes of pings: no backpressure"
    );
    assert!(grown < 32 * 1024, "memory grew by {grown} KiB");
    eprintln!("ping flood: {sent} bytes accepted before the stall, RSS grew {grown} KiB");
}

/// What a [`PingSource`] saw.
#[derive(Default)]
struct PingStats {
    delivered: usize,
    pongs: usize,
    most_unanswered: usize,
}

/// A peer that has sent `budget` bytes of 125-byte pings at once and takes
/// every write: it records the most input the server had read and not yet
/// answered when it asked for more.
struct PingSource {
    frame: Vec<u8>,
    budget: usize,
    stats: std::sync::Arc<std::sync::Mutex<PingStats>>,
}

impl tokio::io::AsyncRead for PingSource {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let mut stats = self.stats.lock().unwrap();
        // Each pong (2 + 125 bytes) answers one ping (2 + 4 + 125).
        let answered = stats.pongs / 127 * self.frame.len();
        let unanswered = stats.delivered - answered;
        stats.most_unanswered = stats.most_unanswered.max(unanswered);
        if stats.delivered >= self.budget {
            return std::task::Poll::Pending;
        }
        // As a socket does: as much as fits, frames cut anywhere.
        let n = buf.remaining().min(self.budget - stats.delivered);
        for i in stats.delivered..stats.delivered + n {
            buf.put_slice(&self.frame[i % self.frame.len()..][..1]);
        }
        stats.delivered += n;
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for PingSource {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.stats.lock().unwrap().pongs += buf.len();
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn buffered_pings_are_answered_before_more_input_is_read() {
    let mut frame = masked_header(0x89, 125);
    frame.extend_from_slice(&[b'p'; 125]);
    let budget = (16 << 20) / 131 * 131;
    let stats = std::sync::Arc::new(std::sync::Mutex::new(PingStats::default()));
    let source = PingSource {
        frame,
        budget,
        stats: stats.clone(),
    };
    let config = Config {
        max_write_buffer: 64 * 1024,
        ..Config::default()
    };
    let mut ws = wsproto_tokio::WebSocketStream::from_upgraded(
        source,
        wsproto_tokio::Role::Server,
        config,
        &[],
    );
    // Pings only: the stream answers them all and then waits for input.
    assert!(futures_util::FutureExt::now_or_never(ws.next()).is_none());
    let stats = stats.lock().unwrap();
    assert_eq!(stats.delivered, budget);
    // Every ping answered before the stream waits (without the rule below
    // it waited with 16 MB of pings read and 0.6 MB answered).
    assert_eq!(stats.pongs, budget / 131 * 127);
    // When the outgoing buffer stops the parsing, the stream writes and
    // parses what it holds before reading more, so what it has read and
    // not answered stays near one read plus the write limit.
    assert!(
        stats.most_unanswered < 1 << 20,
        "{} bytes read and not answered",
        stats.most_unanswered
    );
}
