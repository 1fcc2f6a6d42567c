//! The tokio adapter over real loopback TCP sockets.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsproto_core::{Connection, Event};
use wsproto_tokio::{
    Accept, ClientRequest, CloseCode, Config, Error, Message, Reject, Role, WebSocketStream,
};

mod common;

/// Limits raised for the 1 MiB echoes.
fn big() -> Config {
    Config {
        max_frame_size: 64 << 20,
        max_message_size: 64 << 20,
        ..Config::default()
    }
}

/// An echo server; each connection's end (close frame or error) is reported.
async fn echo_server(
    config: Config,
) -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<Result<Option<(u16, String)>, String>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            let config = config.clone();
            tokio::spawn(async move {
                let mut ws = match wsproto_tokio::accept_with(
                    tcp,
                    config,
                    |_| Ok(Accept::default()),
                )
                .await
                {
                    Ok(ws) => ws,
                    Err(e) => return drop(tx.send(Err(e.to_string()))),
                };
                let end = loop {
                    match ws.next().await {
                        Some(Ok(m)) => {
                            if let Err(e) = ws.send(m).await {
                                break Err(e.to_string());
                            }
                        }
                        Some(Err(e)) => break Err(e.to_string()),
                        None => {
                            break Ok(ws
                                .close_frame()
                                .map(|f| (u16::from(f.code), f.reason.to_string())))
                        }
                    }
                };
                let _ = tx.send(end);
            });
        }
    });
    (addr, rx)
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

#[tokio::test]
async fn echo_text_and_binary_at_boundary_sizes() {
    let (addr, _ends) = echo_server(big()).await;
    let (mut ws, _) =
        wsproto_tokio::connect_with(&ClientRequest::new(&url(addr, "/")).unwrap(), big())
            .await
            .unwrap();
    for size in [0usize, 125, 126, 65535, 65536, 1 << 20] {
        let binary: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        ws.send(Message::binary(binary.clone())).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::binary(binary),
            "binary {size}"
        );
        let text: String = "wsproto ✓ ".chars().cycle().take(size).collect();
        ws.send(Message::text(text.as_str())).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::text(text.as_str()),
            "text {size}"
        );
    }
    ws.close(CloseCode::Normal, "done").await.unwrap();
    assert!(ws.next().await.is_none());
    assert_eq!(ws.close_frame().unwrap().code, CloseCode::Normal);
}

#[tokio::test]
async fn client_close_with_code_and_reason_reaches_the_server() {
    let (addr, mut ends) = echo_server(Config::default()).await;
    let (mut ws, _) = wsproto_tokio::connect(&url(addr, "/")).await.unwrap();
    ws.close(CloseCode::Other(4000), "bye now").await.unwrap();
    assert!(
        ws.next().await.is_none(),
        "stream ends once the server answers"
    );
    let echoed = ws.close_frame().unwrap();
    assert_eq!(
        echoed.code,
        CloseCode::Other(4000),
        "the server echoes our code"
    );
    assert_eq!(
        ends.recv().await.unwrap(),
        Ok(Some((4000, "bye now".to_string())))
    );
}

#[tokio::test]
async fn server_close_with_code_and_reason_reaches_the_client() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = wsproto_tokio::accept(tcp).await.unwrap();
        ws.close(CloseCode::Restart, "restarting").await.unwrap();
        assert!(ws.next().await.is_none());
        ws.close_frame().unwrap().code
    });
    let (mut ws, _) = wsproto_tokio::connect(&url(addr, "/")).await.unwrap();
    assert!(ws.next().await.is_none());
    let frame = ws.close_frame().unwrap();
    assert_eq!(
        (frame.code, frame.reason.as_str()),
        (CloseCode::Restart, "restarting")
    );
    assert_eq!(server.await.unwrap(), CloseCode::Restart);
}

/// A client driven by the core directly over a raw socket, to see frames the
/// adapter hides (pongs, keepalive pings, close codes).
struct RawClient {
    tcp: TcpStream,
    conn: Connection,
}

impl RawClient {
    async fn connect(addr: SocketAddr, pipelined: &[u8]) -> RawClient {
        let (tcp, conn) = common::raw_client(addr, pipelined).await;
        RawClient { tcp, conn }
    }

    async fn flush(&mut self) {
        while let Some(chunk) = self.conn.poll_transmit() {
            let n = chunk.len();
            self.tcp.write_all(chunk).await.unwrap();
            self.conn.advance(n);
        }
    }

    /// The next event, or None on EOF.
    async fn event(&mut self) -> Option<Event> {
        let mut buf = [0u8; 65536];
        loop {
            if let Some(e) = self.conn.poll_event().unwrap() {
                return Some(e);
            }
            let n = self.tcp.read(&mut buf).await.unwrap();
            if n == 0 {
                return None;
            }
            self.conn.receive(&buf[..n]);
        }
    }
}

fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![b0, 0x80 | payload.len() as u8];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

#[tokio::test]
async fn frames_pipelined_behind_the_handshake_are_not_lost() {
    let (addr, _ends) = echo_server(Config::default()).await;
    let mut first = client_frame(0x81, b"first");
    first.extend(client_frame(0x82, b"second"));
    let mut raw = RawClient::connect(addr, &first).await;
    assert_eq!(
        raw.event().await,
        Some(Event::Message(Message::text("first")))
    );
    assert_eq!(
        raw.event().await,
        Some(Event::Message(Message::binary(&b"second"[..])))
    );
}

#[tokio::test]
async fn pings_are_answered_with_pongs() {
    let (addr, _ends) = echo_server(Config::default()).await;
    let mut raw = RawClient::connect(addr, &[]).await;
    raw.conn.ping(b"are you there").unwrap();
    raw.flush().await;
    assert_eq!(
        raw.event().await,
        Some(Event::Pong(bytes::Bytes::from_static(b"are you there")))
    );
}

#[tokio::test]
async fn protocol_violation_gets_close_1002_and_an_error() {
    let (addr, mut ends) = echo_server(Config::default()).await;
    let mut raw = RawClient::connect(addr, &[]).await;
    raw.tcp.write_all(&[0x81, 0x02, b'h', b'i']).await.unwrap(); // unmasked
    let Some(Event::Close(frame)) = raw.event().await else {
        panic!("expected a close frame")
    };
    assert_eq!(frame.code, CloseCode::Protocol);
    assert_eq!(
        raw.event().await,
        None,
        "the server hangs up after its close"
    );
    let end = ends.recv().await.unwrap().unwrap_err();
    assert!(end.contains("unmasked"), "{end}");
}

#[tokio::test]
async fn keepalive_pings_and_gives_up_on_a_silent_peer() {
    let config = Config {
        ping_interval: Some(Duration::from_millis(100)),
        ping_timeout: Duration::from_millis(200),
        auto_pong: true,
        ..Config::default()
    };
    let (addr, mut ends) = echo_server(config).await;
    let mut raw = RawClient::connect(addr, &[]).await;
    // Read the keepalive ping but never answer it (the core queues a pong;
    // we do not flush it).
    assert!(matches!(raw.event().await, Some(Event::Ping(_))));
    let end = tokio::time::timeout(Duration::from_secs(5), ends.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(end.unwrap_err().contains("keepalive"));
}

#[tokio::test]
async fn close_timeout_ends_a_connection_whose_peer_never_answers() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let config = Config {
            close_timeout: Duration::from_millis(300),
            ..Config::default()
        };
        let mut ws = wsproto_tokio::accept_with(tcp, config, |_| Ok(Accept::default()))
            .await
            .unwrap();
        ws.close(CloseCode::Normal, "").await.unwrap();
        let started = tokio::time::Instant::now();
        assert!(ws.next().await.is_none());
        started.elapsed()
    });
    let mut raw = RawClient::connect(addr, &[]).await;
    assert!(matches!(raw.event().await, Some(Event::Close(_))));
    // Never flush the reply. The server gives up after its close timeout.
    let waited = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
}

#[tokio::test]
async fn rejection_reaches_the_client_as_its_status() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let result = wsproto_tokio::accept_with(tcp, Config::default(), |req| {
            if req.path() == "/ok" {
                Ok(Accept::default())
            } else {
                Err(Reject::new(404, "no such path"))
            }
        })
        .await;
        assert!(result.is_err());
    });
    let err = wsproto_tokio::connect(&url(addr, "/nope"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Handshake(wsproto_core::HandshakeError::UnexpectedStatus(404))
        ),
        "{err}"
    );
}

#[tokio::test]
async fn subprotocol_is_negotiated() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ws = wsproto_tokio::accept_with(tcp, Config::default(), |req| {
            assert_eq!(req.subprotocols(), ["v1", "v2"]);
            Ok(Accept::default().subprotocol("v2"))
        })
        .await
        .unwrap();
    });
    let request = ClientRequest::new(&url(addr, "/"))
        .unwrap()
        .subprotocol("v1")
        .subprotocol("v2");
    let (_ws, response) = wsproto_tokio::connect_with(&request, Config::default())
        .await
        .unwrap();
    assert_eq!(response.subprotocol(), Some("v2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_work_from_two_tasks() {
    let (addr, _ends) = echo_server(Config::default()).await;
    let (ws, _) = wsproto_tokio::connect(&url(addr, "/")).await.unwrap();
    let (mut reader, mut writer) = ws.split();
    const N: usize = 2000;
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(message) = reader.next().await {
            got.push(message.unwrap());
        }
        (got, reader.close_frame())
    });
    let writing = tokio::spawn(async move {
        for i in 0..N {
            writer
                .feed(Message::text(format!("message {i}")))
                .await
                .unwrap();
        }
        writer.flush().await.unwrap();
        writer
    });
    let mut writer = writing.await.unwrap();
    // Let every echo arrive before closing, then close from the writer half.
    tokio::time::sleep(Duration::from_millis(200)).await;
    writer.close(CloseCode::Normal, "all sent").await.unwrap();
    let (got, close) = tokio::time::timeout(Duration::from_secs(10), reading)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), N);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.as_text(), Some(format!("message {i}").as_str()));
    }
    assert_eq!(close.unwrap().code, CloseCode::Normal);
}

#[tokio::test]
async fn from_upgraded_takes_the_leftover_bytes() {
    // A server whose HTTP layer did the upgrade itself and read one frame too many.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let leftover = client_frame(0x81, b"early");
        let mut ws =
            WebSocketStream::from_upgraded(tcp, Role::Server, Config::default(), &leftover);
        ws.next().await.unwrap().unwrap()
    });
    let _tcp = TcpStream::connect(addr).await.unwrap();
    assert_eq!(server.await.unwrap(), Message::text("early"));
}

#[tokio::test]
async fn peer_vanishing_is_an_abnormal_closure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = wsproto_tokio::accept(tcp).await.unwrap();
        ws.next().await
    });
    let raw = RawClient::connect(addr, &[]).await;
    drop(raw);
    let end = server.await.unwrap().unwrap().unwrap_err();
    assert!(matches!(end, Error::AbnormalClosure), "{end}");
    assert_eq!(end.close_code(), Some(CloseCode::Abnormal));
}

/// A TCP stream that counts the writes that reached the socket and the
/// reads that brought bytes.
struct CountingIo {
    tcp: TcpStream,
    writes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    reads: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl tokio::io::AsyncRead for CountingIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = std::pin::Pin::new(&mut self.tcp).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        result
    }
}

impl tokio::io::AsyncWrite for CountingIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let result = std::pin::Pin::new(&mut self.tcp).poll_write(cx, buf);
        if result.is_ready() {
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        result
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

/// Echoes ten frames that arrived in one read, fed (`feed`) or sent
/// (`send`) one by one, and returns how many writes reached the socket
/// before the echoes were all back at the client.
async fn writes_for_ten_echoes(fed: bool) -> usize {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (mut client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let client = client.as_mut().unwrap();
    let frames: Vec<u8> = (0..10u8)
        .flat_map(|i| client_frame(0x82, &[i; 16]))
        .collect();
    // All ten are in the server's socket before it reads.
    client.write_all(&frames).await.unwrap();
    let writes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let io = CountingIo {
        tcp: accepted.unwrap().0,
        writes: writes.clone(),
        reads: Default::default(),
    };
    let server = tokio::spawn(async move {
        let mut ws = WebSocketStream::from_upgraded(io, Role::Server, Config::default(), &[]);
        while let Some(message) = ws.next().await {
            let message = message.unwrap();
            if fed {
                ws.feed(message).await.unwrap();
            } else {
                ws.send(message).await.unwrap();
            }
        }
    });
    let mut echoes = vec![0u8; 10 * 18];
    tokio::time::timeout(Duration::from_secs(10), client.read_exact(&mut echoes))
        .await
        .expect("the echoes did not come back")
        .unwrap();
    let expected: Vec<u8> = (0..10u8)
        .flat_map(|i| [&[0x82, 16][..], &[i; 16][..]].concat())
        .collect();
    assert_eq!(echoes, expected);
    let writes = writes.load(std::sync::atomic::Ordering::SeqCst);
    server.abort();
    writes
}

#[tokio::test]
async fn messages_fed_while_input_is_buffered_go_out_in_one_write() {
    // `send` flushes each echo: ten writes, which shows the count is real.
    assert_eq!(writes_for_ten_echoes(false).await, 10);
    // `feed` queues them; the reader writes the queue out once, when the
    // buffered input runs dry and it is about to wait on the socket.
    assert_eq!(writes_for_ten_echoes(true).await, 1);
}

#[tokio::test]
async fn a_64_kib_frame_already_in_the_socket_is_not_read_16_kib_at_a_time() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (mut client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let client = client.as_mut().unwrap();
    let payload: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let key = [9, 8, 7, 6];
    let mut frame = vec![0x82, 0x80 | 127];
    frame.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    // The whole frame waits in the server's socket (64 KiB fits the
    // default receive buffer) before the server reads.
    client.write_all(&frame).await.unwrap();
    let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let io = CountingIo {
        tcp: accepted.unwrap().0,
        writes: Default::default(),
        reads: reads.clone(),
    };
    let mut ws = WebSocketStream::from_upgraded(io, Role::Server, Config::default(), &[]);
    let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("no message")
        .unwrap()
        .unwrap();
    assert_eq!(message, Message::binary(payload));
    // One read where the kernel hands it over in one piece (16 KiB reads
    // took four). Loopback may still split it once.
    let reads = reads.load(std::sync::atomic::Ordering::SeqCst);
    assert!(reads <= 2, "{reads} reads for one 64 KiB frame");
}

/// A server's borrowed sends (`send_binary`, `send_text`) from the writer
/// half, to a client that starts reading late (so writes stop part-way and
/// the rest is copied) and pings on every message (so the reader half
/// queues pongs while the writer sends): every message arrives whole and in
/// order, and the pongs come back between messages, never inside a frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn borrowed_sends_from_a_split_writer_arrive_whole() {
    const N: u8 = 16;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = wsproto_tokio::accept(tcp).await.unwrap();
        let (mut reader, mut writer) = ws.split();
        // Drives the automatic pongs until the client closes.
        let reading = tokio::spawn(async move { while reader.next().await.is_some() {} });
        for i in 0..N {
            let data = vec![i; 1 << 20];
            writer.send_binary(&data).await.unwrap();
        }
        let text = "é".repeat(50_000);
        writer.send_text(&text).await.unwrap();
        writer.send_binary(b"small").await.unwrap();
        reading.await.unwrap();
    });
    let request = ClientRequest::new(&url(addr, "/")).unwrap();
    // Without permessage-deflate, which would compress (and so copy) them.
    let config = Config {
        deflate: None,
        ..big()
    };
    let (mut ws, _) = wsproto_tokio::connect_with(&request, config).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await; // let the server's writes stall
    let (mut messages, mut pongs) = (Vec::new(), 0);
    while messages.len() < N as usize + 2 {
        match ws.next_event().await.unwrap().unwrap() {
            Event::Message(m) => {
                messages.push(m);
                ws.ping(b"p").await.unwrap();
            }
            Event::Pong(_) => pongs += 1,
            other => panic!("{other:?}"),
        }
    }
    for (i, m) in messages.iter().take(N as usize).enumerate() {
        assert_eq!(m.len(), 1 << 20);
        assert!(m.payload().iter().all(|&b| b == i as u8), "message {i}");
    }
    assert_eq!(
        messages[N as usize].as_text(),
        Some("é".repeat(50_000).as_str())
    );
    assert_eq!(messages[N as usize + 1].payload().as_ref(), b"small");
    ws.close(CloseCode::Normal, "").await.unwrap();
    while let Some(event) = ws.next_event().await {
        if let Ok(Event::Pong(_)) = event {
            pongs += 1;
        }
    }
    assert_eq!(pongs, N as usize + 2, "every ping answered");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
}
