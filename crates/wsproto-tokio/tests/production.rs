//! What production servers need beyond the protocol: cancel safety, split
//! halves under load, keepalive against a silent peer, refused close codes,
//! graceful shutdown. Real loopback sockets, except for the keepalive tests,
//! which run on paused time over an in-memory pipe.
//!
//! The soak of the cancel-safety test (100,000 messages up to 1 MiB) is
//! behind `cargo test -p wsproto-tokio --release --test production -- --ignored`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use wsproto_core::Event;
use wsproto_tokio::{
    Accept, ClientRequest, CloseCode, Config, Error, Message, Role, Shutdown, State,
    WebSocketStream,
};

mod common;
use common::raw_client;

/// Raised limits and no compression: these tests are about the adapter.
fn plain() -> Config {
    Config {
        max_frame_size: 64 << 20,
        max_message_size: 64 << 20,
        deflate: None,
        ..Config::default()
    }
}

/// A deterministic generator for message sizes.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Message `i` of a numbered sequence: its number, then bytes derived from
/// it, so that a lost, repeated, reordered or damaged message is caught.
fn numbered(i: u32, len: usize) -> Message {
    let mut payload = Vec::with_capacity(len.max(4));
    payload.extend_from_slice(&i.to_be_bytes());
    payload.extend((4..len).map(|k| (k as u32).wrapping_mul(31).wrapping_add(i) as u8));
    Message::binary(Bytes::from(payload))
}

fn number_of(message: &Message) -> u32 {
    let data = message.payload();
    let i = u32::from_be_bytes(data[..4].try_into().unwrap());
    assert_eq!(*message, numbered(i, data.len()), "message {i} damaged");
    i
}

/// A listener whose first connection is accepted with `config`.
async fn one_server(
    config: Config,
) -> (
    SocketAddr,
    tokio::task::JoinHandle<WebSocketStream<TcpStream>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        wsproto_tokio::accept_with(tcp, config, |_| Ok(Accept::default()))
            .await
            .unwrap()
    });
    (addr, server)
}

/// A client that reads the server's first event (its close frame) and
/// then holds the socket open for 3 s without answering; the task returns
/// that event.
async fn mute_client(addr: SocketAddr) -> tokio::task::JoinHandle<Event> {
    let (mut mute, mut conn) = raw_client(addr, &[]).await;
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        loop {
            if let Some(event) = conn.poll_event().unwrap() {
                tokio::time::sleep(Duration::from_secs(3)).await;
                return event;
            }
            let n = mute.read(&mut buf).await.unwrap();
            conn.receive(&buf[..n]);
        }
    })
}

async fn client(
    addr: SocketAddr,
    config: Config,
) -> WebSocketStream<wsproto_tokio::MaybeTlsStream<TcpStream>> {
    let request = ClientRequest::new(&format!("ws://{addr}/")).unwrap();
    wsproto_tokio::connect_with(&request, config)
        .await
        .unwrap()
        .0
}

// ----- cancel safety ---------------------------------------------------------

/// A transport that hands over at most 4 KiB per read and is not ready on
/// every other read (waking itself at once), so that a reader is pending
/// in the middle of most messages however fast the sender is: without it,
/// a sender ahead of the reader left next() nothing to be cancelled in
/// (0 to 85 cancellations in some runs).
struct Halting {
    tcp: TcpStream,
    halt: bool,
}

impl tokio::io::AsyncRead for Halting {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.halt = !self.halt;
        if self.halt {
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        let mut chunk = [0u8; 4096];
        let limit = buf.remaining().min(chunk.len());
        let mut small = tokio::io::ReadBuf::new(&mut chunk[..limit]);
        let result = std::pin::Pin::new(&mut self.tcp).poll_read(cx, &mut small);
        buf.put_slice(small.filled());
        result
    }
}

impl tokio::io::AsyncWrite for Halting {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.tcp).poll_write(cx, data)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// Sends `count` numbered messages of random sizes up to `max` bytes while
/// the receiver races every `next()` against a timer or a yield, so that
/// most calls are cancelled, many of them with a message half read.
async fn next_is_cancel_safe(count: u32, max: usize) {
    let (addr, server) = one_server(plain()).await;
    let request = ClientRequest::new(&format!("ws://{addr}/")).unwrap();
    let io = Halting {
        tcp: TcpStream::connect(addr).await.unwrap(),
        halt: false,
    };
    let mut ws = wsproto_tokio::client(io, &request, plain())
        .await
        .unwrap()
        .0;
    let mut server = server.await.unwrap();
    let sender = tokio::spawn(async move {
        let mut sizes = XorShift(0x9e37_79b9_7f4a_7c15);
        for i in 0..count {
            server
                .feed(numbered(i, 4 + sizes.below(max - 3)))
                .await
                .unwrap();
        }
        server.flush().await.unwrap();
        server
    });
    let (mut next_expected, mut cancelled) = (0u32, 0u64);
    while next_expected < count {
        let message = tokio::select! {
            message = ws.next() => message,
            () = tokio::time::sleep(Duration::from_millis(1)), if next_expected % 2 == 0 => {
                cancelled += 1;
                continue;
            }
            () = tokio::task::yield_now(), if next_expected % 2 == 1 => {
                cancelled += 1;
                continue;
            }
        };
        let message = message.expect("stream ended early").unwrap();
        assert_eq!(number_of(&message), next_expected, "out of order or lost");
        next_expected += 1;
    }
    eprintln!("{count} messages in order, {cancelled} next() calls cancelled");
    assert!(cancelled > 100, "only {cancelled} calls were cancelled");
    let mut server = sender.await.unwrap();
    server.close(CloseCode::Normal, "").await.unwrap();
    assert!(ws.next().await.is_none(), "nothing after the last message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_in_select_loses_nothing() {
    next_is_cancel_safe(5_000, 64 << 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: run with --release -- --ignored"]
async fn next_in_select_loses_nothing_soak() {
    next_is_cancel_safe(100_000, 1 << 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_sends_never_send_part_of_a_message() {
    let (addr, server) = one_server(plain()).await;
    let mut ws = client(addr, plain()).await;
    let mut server = server.await.unwrap();
    const N: u32 = 3_000;
    let sender = tokio::spawn(async move {
        let mut sizes = XorShift(7);
        let (mut completed, mut cancelled) = (Vec::new(), 0u32);
        for i in 0..N {
            let message = numbered(i, 4 + sizes.below(64 << 10));
            tokio::select! {
                result = server.send(message) => {
                    result.unwrap();
                    completed.push(i);
                }
                () = tokio::task::yield_now(), if i % 2 == 0 => cancelled += 1,
                () = tokio::time::sleep(Duration::from_millis(1)), if i % 2 == 1 => cancelled += 1,
            }
        }
        server.flush().await.unwrap();
        server.close(CloseCode::Normal, "").await.unwrap();
        (completed, cancelled)
    });
    let mut received = Vec::new();
    while let Some(message) = ws.next().await {
        received.push(number_of(&message.unwrap()));
        if received.len() % 50 == 0 {
            // A reader that pauses now and then fills the socket buffers,
            // so that sends have to wait and can be cancelled.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    let (completed, cancelled) = sender.await.unwrap();
    eprintln!(
        "{} sends completed, {cancelled} cancelled, {} messages arrived whole",
        completed.len(),
        received.len()
    );
    assert!(cancelled > 0, "no send was cancelled");
    assert!(
        received.len() < N as usize,
        "every cancelled send was taken: none proves the other case"
    );
    // Whole messages, in order, each at most once; every completed send
    // arrived; a cancelled one either arrived whole or not at all.
    assert!(
        received.windows(2).all(|w| w[0] < w[1]),
        "reordered or repeated"
    );
    let mut at = received.iter().peekable();
    for i in completed {
        while at.next_if(|&&r| r < i).is_some() {}
        assert_eq!(at.next(), Some(&i), "completed send {i} never arrived");
    }
    assert_eq!(ws.close_frame().unwrap().code, CloseCode::Normal);
}

// ----- split halves under load -----------------------------------------------

/// 10,000 messages each way at once, every 100th of 1 MiB so that writes
/// are partial; the client's writer pings while the server's writer is
/// busy with its own large messages, and the pong comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_under_load_in_both_directions() {
    const N: u32 = 10_000;
    let size = |i: u32| {
        if i % 100 == 99 {
            1 << 20
        } else {
            64 + (i as usize % 1000)
        }
    };
    let (addr, server) = one_server(plain()).await;
    let ws = client(addr, plain()).await;
    let server = server.await.unwrap();
    let (mut client_reader, mut client_writer) = ws.split();
    let (mut server_reader, mut server_writer) = server.split();

    let work = async move {
        let server_writing = tokio::spawn(async move {
            for i in 0..N {
                server_writer.send(numbered(i, size(i))).await.unwrap();
            }
            server_writer
        });
        let server_reading = tokio::spawn(async move {
            for i in 0..N {
                let message = server_reader.next().await.unwrap().unwrap();
                assert_eq!(number_of(&message), i);
            }
            server_reader
        });
        let client_writing = tokio::spawn(async move {
            for i in 0..N {
                client_writer.send(numbered(i, size(i))).await.unwrap();
                if i == N / 2 {
                    client_writer.ping(b"while busy").await.unwrap();
                }
            }
            client_writer
        });
        let client_reading = tokio::spawn(async move {
            let (mut messages, mut pongs) = (0u32, 0);
            while messages < N {
                match client_reader.next_event().await.unwrap().unwrap() {
                    Event::Message(message) => {
                        assert_eq!(number_of(&message), messages);
                        messages += 1;
                    }
                    Event::Pong(payload) => {
                        assert_eq!(&payload[..], b"while busy");
                        pongs += 1;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            (client_reader, pongs)
        });
        let mut client_writer = client_writing.await.unwrap();
        let _server_writer = server_writing.await.unwrap();
        let mut server_reader = server_reading.await.unwrap();
        let (mut client_reader, pongs) = client_reading.await.unwrap();
        // The pong can only trail the messages if the server sent it after
        // its last one; then it is the next event.
        let pongs = if pongs == 0 {
            match client_reader.next_event().await.unwrap().unwrap() {
                Event::Pong(payload) if &payload[..] == b"while busy" => 1,
                other => panic!("expected the pong, got {other:?}"),
            }
        } else {
            pongs
        };
        assert_eq!(pongs, 1);
        client_writer
            .close(CloseCode::Normal, "done")
            .await
            .unwrap();
        assert!(server_reader.next().await.is_none());
        assert!(client_reader.next().await.is_none());
        assert_eq!(client_reader.close_frame().unwrap().code, CloseCode::Normal);
    };
    tokio::time::timeout(Duration::from_secs(120), work)
        .await
        .expect("split halves froze");
}

// ----- keepalive (paused time) -----------------------------------------------

/// A server stream over an in-memory pipe whose other end swallows
/// everything: it reads, records, and never answers.
fn silent_peer(
    config: Config,
) -> (
    WebSocketStream<tokio::io::DuplexStream>,
    tokio::task::JoinHandle<Vec<u8>>,
) {
    let (ours, mut theirs) = tokio::io::duplex(64 << 10);
    let swallowed = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = theirs.read(&mut buf).await {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        seen
    });
    (
        WebSocketStream::from_upgraded(ours, Role::Server, config, &[]),
        swallowed,
    )
}

#[tokio::test(start_paused = true)]
async fn keepalive_closes_a_peer_that_swallows_pings() {
    let config = Config {
        ping_interval: Some(Duration::from_secs(20)),
        ping_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let (mut ws, swallowed) = silent_peer(config);
    let started = tokio::time::Instant::now();
    match ws.next().await {
        Some(Err(Error::Protocol(wsproto_core::Error::KeepaliveTimeout))) => {}
        other => panic!("expected a keepalive timeout, got {other:?}"),
    }
    let waited = started.elapsed();
    // 20 s of silence, one ping, 10 s without an answer.
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
        "{waited:?}"
    );
    assert_eq!(
        ws.next().await.map(|r| r.is_ok()),
        None,
        "the stream is over"
    );
    drop(ws);
    assert_eq!(
        swallowed.await.unwrap(),
        [0x89, 0x00],
        "exactly one empty ping"
    );
}

#[tokio::test(start_paused = true)]
async fn keepalive_keeps_an_answering_peer() {
    let config = Config {
        ping_interval: Some(Duration::from_secs(20)),
        ping_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let (ours, theirs) = tokio::io::duplex(64 << 10);
    let mut ws = WebSocketStream::from_upgraded(ours, Role::Server, config, &[]);
    let mut peer = WebSocketStream::from_upgraded(theirs, Role::Client, Config::default(), &[]);
    // The peer only reads: its pongs are automatic.
    let peer = tokio::spawn(async move { while peer.next().await.is_some() {} });
    let started = tokio::time::Instant::now();
    let quiet = tokio::time::timeout(Duration::from_secs(600), ws.next()).await;
    assert!(quiet.is_err(), "ten minutes of pings and pongs: {quiet:?}");
    assert_eq!(ws.state(), State::Open);
    assert!(started.elapsed() >= Duration::from_secs(600));
    ws.close(CloseCode::Normal, "").await.unwrap();
    assert!(ws.next().await.is_none());
    peer.await.unwrap();
}

// ----- close codes on the way out ----------------------------------------------

#[tokio::test]
async fn close_refuses_codes_and_reasons_that_cannot_be_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (mut tcp, mut conn) = raw_client(addr, &[]).await;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(event) = conn.poll_event().unwrap() {
                return event;
            }
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0);
            conn.receive(&buf[..n]);
        }
    });
    let (tcp, _) = listener.accept().await.unwrap();
    let mut ws = wsproto_tokio::accept(tcp).await.unwrap();
    for code in [1005u16, 1006, 1015, 999, 1004, 2999, 5000, 0] {
        match ws.close(CloseCode::from(code), "").await {
            Err(Error::Protocol(wsproto_core::Error::InvalidCloseCode(c))) => assert_eq!(c, code),
            other => panic!("close({code}) gave {other:?}"),
        }
    }
    let long = "x".repeat(124);
    match ws.close(CloseCode::Normal, &long).await {
        Err(Error::Protocol(wsproto_core::Error::CloseReasonTooLong(124))) => {}
        other => panic!("a 124-byte reason gave {other:?}"),
    }
    assert_eq!(ws.state(), State::Open);
    assert_eq!(ws.buffered_out(), 0, "nothing was queued");
    // The peer's first frame is this message: nothing went out before it.
    ws.send(Message::text("still open")).await.unwrap();
    assert_eq!(
        peer.await.unwrap(),
        Event::Message(Message::text("still open"))
    );
    // The longest reason that fits goes out.
    ws.close(CloseCode::Other(4000), &"y".repeat(123))
        .await
        .unwrap();
    assert_eq!(ws.state(), State::CloseSent);
}

// ----- graceful shutdown -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_connection_with_1001_and_waits() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let (ends_tx, mut ends) = tokio::sync::mpsc::unbounded_channel();
    let accepting = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let shutdown = shutdown.clone();
                let ends_tx = ends_tx.clone();
                tokio::spawn(async move {
                    let mut ws = wsproto_tokio::accept(tcp).await.unwrap();
                    shutdown.track(&ws);
                    // An echo loop, as any server's connection task.
                    while let Some(Ok(message)) = ws.next().await {
                        if ws.send(message).await.is_err() {
                            break;
                        }
                    }
                    let _ = ends_tx.send(ws.state());
                });
            }
        })
    };
    // Four well-behaved clients that read until the end...
    let mut clients = Vec::new();
    for k in 0..4 {
        let mut ws = client(addr, Config::default()).await;
        ws.send(Message::text(format!("hello {k}"))).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::text(format!("hello {k}"))
        );
        clients.push(tokio::spawn(async move {
            while let Some(Ok(_)) = ws.next().await {}
            ws.close_frame()
        }));
    }
    // ...and one that reads the close frame but never answers it.
    let mute = mute_client(addr).await;
    while shutdown.open_connections() < 5 {
        tokio::task::yield_now().await;
    }
    let started = std::time::Instant::now();
    let report = shutdown
        .close_all(
            CloseCode::Away,
            "server restarting",
            Duration::from_millis(700),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(report.connections, 5);
    assert_eq!(report.closed, 4);
    assert_eq!(report.abandoned, 1, "the client that never answers");
    assert!(
        took >= Duration::from_millis(650) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(shutdown.is_started());
    for client in clients {
        let frame = client.await.unwrap().expect("a close frame");
        assert_eq!(frame.code, CloseCode::Away);
        assert_eq!(frame.reason.as_str(), "server restarting");
    }
    match mute.await.unwrap() {
        Event::Close(frame) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("{other:?}"),
    }
    // Every connection task ended: four after the handshake, one abandoned.
    let mut states = Vec::new();
    for _ in 0..5 {
        states.push(
            tokio::time::timeout(Duration::from_secs(5), ends.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(
        states.iter().filter(|s| **s == State::Closed).count(),
        4,
        "{states:?}"
    );
    // A connection accepted after the shutdown began is closed at once.
    let mut late = client(addr, Config::default()).await;
    assert!(late.next().await.is_none());
    assert_eq!(late.close_frame().unwrap().code, CloseCode::Away);
    accepting.abort();
}

/// A split connection's halves live in two tasks; the shutdown reaches
/// them through the flags it raises and the wakers each half left: the
/// reader waiting for input writes the close frame and reads the reply,
/// and at the deadline the reader of a peer that never answers ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reaches_split_halves() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let (ends_tx, mut ends) = tokio::sync::mpsc::unbounded_channel();
    let accepting = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let ws = wsproto_tokio::accept(tcp).await.unwrap();
                shutdown.track(&ws);
                let (mut reader, writer) = ws.split();
                let ends_tx = ends_tx.clone();
                tokio::spawn(async move {
                    while let Some(Ok(_)) = reader.next().await {}
                    let _ = ends_tx.send(reader.close_frame().is_some());
                    // The writer half is idle all along, in its own task.
                    drop(writer);
                });
            }
        })
    };
    let mut polite = client(addr, Config::default()).await;
    let polite = tokio::spawn(async move {
        while let Some(Ok(_)) = polite.next().await {}
        polite.close_frame()
    });
    let mute = mute_client(addr).await;
    while shutdown.open_connections() < 2 {
        tokio::task::yield_now().await;
    }
    let report = shutdown
        .close_all(CloseCode::Away, "split", Duration::from_millis(500))
        .await;
    assert_eq!(
        (report.connections, report.closed, report.abandoned),
        (2, 1, 1)
    );
    let frame = polite.await.unwrap().expect("a close frame");
    assert_eq!(
        (frame.code, frame.reason.as_str()),
        (CloseCode::Away, "split")
    );
    match mute.await.unwrap() {
        Event::Close(frame) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("{other:?}"),
    }
    // Both readers ended: the polite one after the handshake (it has the
    // peer's close frame), the abandoned one without.
    let mut ended = Vec::new();
    for _ in 0..2 {
        let end = tokio::time::timeout(Duration::from_secs(5), ends.recv()).await;
        ended.push(end.unwrap().unwrap());
    }
    ended.sort();
    assert_eq!(ended, [false, true]);
    accepting.abort();
}
