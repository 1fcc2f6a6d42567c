//! The blocking adapter over real loopback TCP sockets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use wsproto_core::{ClientHandshake, HandshakeError, Status};
use wsproto_std::{Accept, ClientRequest, CloseCode, Config, Error, Event, Message, Reject};

type Ends = mpsc::Receiver<Result<Option<(u16, String)>, String>>;

fn big() -> Config {
    Config {
        max_frame_size: 64 << 20,
        max_message_size: 64 << 20,
        ..Config::default()
    }
}

/// An echo server; reports how each connection ended.
fn echo_server() -> (SocketAddr, Ends) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let tx = tx.clone();
            thread::spawn(move || {
                let mut ws = match wsproto_std::accept_with(tcp.unwrap(), big(), |_| {
                    Ok(Accept::default())
                }) {
                    Ok(ws) => ws,
                    Err(e) => return drop(tx.send(Err(e.to_string()))),
                };
                let end = loop {
                    match ws.read() {
                        Ok(m) => {
                            if let Err(e) = ws.send(m) {
                                break Err(e.to_string());
                            }
                        }
                        Err(Error::ConnectionClosed(f)) => {
                            break Ok(f.map(|f| (u16::from(f.code), f.reason.to_string())))
                        }
                        Err(e) => break Err(e.to_string()),
                    }
                };
                let _ = tx.send(end);
            });
        }
    });
    (addr, rx)
}

#[test]
fn echo_text_and_binary_at_boundary_sizes() {
    let (addr, _) = echo_server();
    let (mut ws, _) = wsproto_std::connect_with(
        &ClientRequest::new(&format!("ws://{addr}/")).unwrap(),
        big(),
    )
    .unwrap();
    for size in [0usize, 125, 126, 65535, 65536, 1 << 20] {
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        ws.send(Message::binary(data.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::binary(data), "binary {size}");
        let text: String = "wsproto ✓ ".chars().cycle().take(size).collect();
        ws.send_text(&text).unwrap();
        assert_eq!(
            ws.read().unwrap(),
            Message::text(text.as_str()),
            "text {size}"
        );
    }
}

#[test]
fn ping_gets_a_pong() {
    let (addr, _) = echo_server();
    let (mut ws, _) = wsproto_std::connect(&format!("ws://{addr}/")).unwrap();
    ws.ping(b"hello?").unwrap();
    match ws.read_event().unwrap() {
        Event::Pong(payload) => assert_eq!(&payload[..], b"hello?"),
        other => panic!("expected a pong, got {other:?}"),
    }
}

#[test]
fn client_close_with_code_and_reason() {
    let (addr, ends) = echo_server();
    let (mut ws, _) = wsproto_std::connect(&format!("ws://{addr}/")).unwrap();
    ws.close(CloseCode::Other(4000), "bye now").unwrap();
    match ws.read() {
        Err(Error::ConnectionClosed(Some(frame))) => assert_eq!(frame.code, CloseCode::Other(4000)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ends.recv_timeout(Duration::from_secs(5)).unwrap(),
        Ok(Some((4000, "bye now".into())))
    );
}

#[test]
fn server_close_with_code_and_reason() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let mut ws = wsproto_std::accept(listener.accept().unwrap().0).unwrap();
        ws.close(CloseCode::Away, "shutting down").unwrap();
        match ws.read() {
            Err(Error::ConnectionClosed(Some(frame))) => frame.code,
            other => panic!("{other:?}"),
        }
    });
    let (mut ws, _) = wsproto_std::connect(&format!("ws://{addr}/")).unwrap();
    match ws.read() {
        Err(Error::ConnectionClosed(Some(frame))) => {
            assert_eq!(
                (frame.code, frame.reason.as_str()),
                (CloseCode::Away, "shutting down")
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.join().unwrap(), CloseCode::Away);
}

fn masked(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [9, 8, 7, 6];
    let mut out = vec![b0, 0x80 | payload.len() as u8];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Completes a client handshake by hand, writing `pipelined` in the same
/// write as the request; returns the socket and the connection. It offers no
/// extension, so the hand-made frames and the payload sizes the tests count
/// are what goes over the wire.
fn raw_client(addr: SocketAddr, pipelined: &[u8]) -> (TcpStream, wsproto_core::Connection) {
    let request = ClientRequest::new(&format!("ws://{addr}/")).unwrap();
    #[allow(unused_mut)]
    let mut config = Config::default();
    #[cfg(feature = "deflate")]
    {
        config.deflate = None;
    }
    let mut hs = ClientHandshake::new(&request, config);
    let mut tcp = TcpStream::connect(addr).unwrap();
    let mut first = hs.request_bytes().to_vec();
    first.extend_from_slice(pipelined);
    tcp.write_all(&first).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0);
        if let Status::Complete(_) = hs.receive(&buf[..n]).unwrap() {
            break;
        }
    }
    (tcp, hs.into_connection().unwrap())
}

fn next_event(tcp: &mut TcpStream, conn: &mut wsproto_core::Connection) -> Option<Event> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(e) = conn.poll_event().unwrap() {
            return Some(e);
        }
        let n = tcp.read(&mut buf).unwrap();
        if n == 0 {
            return None;
        }
        conn.receive(&buf[..n]);
    }
}

#[test]
fn frames_pipelined_behind_the_handshake_are_not_lost() {
    let (addr, _) = echo_server();
    let (mut tcp, mut conn) = raw_client(addr, &masked(0x81, b"in the same packet"));
    assert_eq!(
        next_event(&mut tcp, &mut conn),
        Some(Event::Message(Message::text("in the same packet")))
    );
}

#[test]
fn protocol_violation_gets_close_1002() {
    let (addr, ends) = echo_server();
    let (mut tcp, mut conn) = raw_client(addr, &[0x81, 0x01, b'x']); // unmasked
    match next_event(&mut tcp, &mut conn) {
        Some(Event::Close(frame)) => assert_eq!(frame.code, CloseCode::Protocol),
        other => panic!("{other:?}"),
    }
    let end = ends
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .unwrap_err();
    assert!(end.contains("unmasked"), "{end}");
}

#[test]
fn non_blocking_reads_lose_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let (mut tcp, _) = raw_client(addr, &[]);
        let frame = masked(0x81, b"split across two writes");
        tcp.write_all(&frame[..9]).unwrap();
        go_rx.recv().unwrap();
        tcp.write_all(&frame[9..]).unwrap();
        thread::sleep(Duration::from_millis(200));
    });
    let mut ws = wsproto_std::accept(listener.accept().unwrap().0).unwrap();
    ws.get_mut().set_nonblocking(true).unwrap();
    // Until the first half arrives and after it, reads would block.
    let mut blocked = 0;
    for _ in 0..20 {
        match ws.read() {
            Err(e) if e.is_would_block() => blocked += 1,
            other => panic!("expected WouldBlock, got {other:?}"),
        }
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(blocked, 20);
    go_tx.send(()).unwrap();
    let message = loop {
        match ws.read() {
            Ok(m) => break m,
            Err(e) if e.is_would_block() => thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(message, Message::text("split across two writes"));
    peer.join().unwrap();
}

#[test]
fn non_blocking_sends_apply_backpressure_and_lose_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = thread::spawn(move || {
        let (mut tcp, mut conn) = raw_client(addr, &[]);
        thread::sleep(Duration::from_millis(300)); // let the server's buffers fill
        let mut total = 0;
        for i in 0..64u8 {
            match next_event(&mut tcp, &mut conn) {
                Some(Event::Message(m)) => {
                    // Each message whole and in order, whatever part of it
                    // went out from the caller's slice and what was copied.
                    assert_eq!(m.len(), 1 << 20);
                    assert!(m.payload().iter().all(|&b| b == i), "message {i}");
                    total += m.len();
                }
                other => panic!("{other:?}"),
            }
        }
        total
    });
    let mut ws = wsproto_std::accept(listener.accept().unwrap().0).unwrap();
    ws.get_mut().set_nonblocking(true).unwrap();
    let (mut would_block, mut sent, mut most_buffered) = (0, 0u8, 0);
    while sent < 64 {
        let chunk = vec![sent; 1 << 20];
        match ws.send_binary(&chunk) {
            // Taken: it goes out with later sends or flushes.
            Ok(()) => sent += 1,
            // Above the high-water mark: not taken; retry once writable.
            Err(e) if e.is_would_block() => {
                would_block += 1;
                thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("{e}"),
        }
        most_buffered = most_buffered.max(ws.buffered_out());
    }
    assert!(would_block > 0, "64 MiB should fill the socket buffers");
    // Never more than the high-water mark (64 KiB) plus one message.
    assert!(
        most_buffered <= (64 << 10) + (1 << 20) + 14,
        "{most_buffered} bytes buffered"
    );
    loop {
        match ws.flush() {
            Ok(()) => break,
            Err(e) if e.is_would_block() => thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        reader.join().unwrap(),
        64 << 20,
        "every queued byte arrived"
    );
}

#[test]
fn a_blocking_send_waits_for_a_peer_that_stops_reading() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let (tcp, _conn) = raw_client(addr, &[]);
        // Never reads; keeps the socket open until told.
        stop_rx.recv().unwrap();
        drop(tcp);
    });
    let ws = wsproto_std::accept(listener.accept().unwrap().0).unwrap();
    let (progress_tx, progress_rx) = mpsc::channel::<(usize, usize)>();
    let sender = thread::spawn(move || {
        let mut ws = ws;
        let chunk = vec![7u8; 1 << 20];
        // 1 GiB worth of messages; the peer takes none of it.
        for i in 0..1024 {
            if ws.send_binary(&chunk).is_err() {
                return;
            }
            let _ = progress_tx.send((i + 1, ws.buffered_out()));
        }
    });
    // Sending stalls once the high-water mark and the socket buffers are
    // full: no progress for a whole second.
    let mut last = (0, 0);
    loop {
        match progress_rx.recv_timeout(Duration::from_secs(1)) {
            Ok(p) => last = p,
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(e) => panic!("sender ended: {e}"),
        }
    }
    let (sent, buffered) = last;
    assert!(sent < 64, "{sent} MiB taken by a peer that reads nothing");
    assert!(
        buffered <= (64 << 10) + (1 << 20) + 14,
        "{buffered} buffered"
    );
    stop_tx.send(()).unwrap();
    peer.join().unwrap();
    sender.join().unwrap();
}

#[test]
fn rejection_reaches_the_client_as_its_status() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let result =
            wsproto_std::accept_with(listener.accept().unwrap().0, Config::default(), |req| {
                match req.path() {
                    "/ok" => Ok(Accept::default()),
                    _ => Err(Reject::new(404, "no such path")),
                }
            });
        assert!(matches!(
            result,
            Err(Error::Handshake(HandshakeError::Rejected(404)))
        ));
    });
    let err = wsproto_std::connect(&format!("ws://{addr}/nope")).unwrap_err();
    assert!(
        matches!(err, Error::Handshake(HandshakeError::UnexpectedStatus(404))),
        "{err}"
    );
}

#[test]
fn accept_with_sees_the_request_and_picks_a_subprotocol() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let _ws =
            wsproto_std::accept_with(listener.accept().unwrap().0, Config::default(), |req| {
                assert_eq!(req.path(), "/room");
                assert_eq!(req.query(), Some("id=7"));
                assert_eq!(req.header("x-token"), Some(&b"secret"[..]));
                Ok(Accept::default().subprotocol(req.subprotocols()[1].clone()))
            })
            .unwrap();
    });
    let request = ClientRequest::new(&format!("ws://{addr}/room?id=7"))
        .unwrap()
        .subprotocol("a")
        .subprotocol("b")
        .header("X-Token", "secret")
        .unwrap();
    let (_ws, response) = wsproto_std::connect_with(&request, Config::default()).unwrap();
    assert_eq!(response.subprotocol(), Some("b"));
    server.join().unwrap();
}

#[test]
fn ping_timeout_with_a_read_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let config = Config {
            ping_interval: Some(Duration::from_millis(100)),
            ping_timeout: Duration::from_millis(200),
            ..Config::default()
        };
        let tcp = listener.accept().unwrap().0;
        tcp.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut ws = wsproto_std::accept_with(tcp, config, |_| Ok(Accept::default())).unwrap();
        loop {
            match ws.read() {
                Err(Error::Io(_)) => continue, // read timeouts let the timers run
                other => return other,
            }
        }
    });
    let (_silent, _conn) = raw_client(addr, &[]); // reads nothing, answers nothing
    let end = server.join().unwrap();
    assert!(
        matches!(
            end,
            Err(Error::Protocol(wsproto_core::Error::KeepaliveTimeout))
        ),
        "{end:?}"
    );
}

#[test]
fn close_refuses_codes_and_reasons_that_cannot_be_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let (mut tcp, mut conn) = raw_client(addr, &[]);
        next_event(&mut tcp, &mut conn)
    });
    let mut ws = wsproto_std::accept(listener.accept().unwrap().0).unwrap();
    for code in [1005u16, 1006, 1015, 999, 1004, 2999, 5000, 0] {
        match ws.close(CloseCode::from(code), "") {
            Err(Error::Protocol(wsproto_core::Error::InvalidCloseCode(c))) => assert_eq!(c, code),
            other => panic!("close({code}) gave {other:?}"),
        }
    }
    match ws.close(CloseCode::Normal, &"x".repeat(124)) {
        Err(Error::Protocol(wsproto_core::Error::CloseReasonTooLong(124))) => {}
        other => panic!("a 124-byte reason gave {other:?}"),
    }
    assert_eq!(ws.state(), wsproto_std::State::Open);
    assert_eq!(ws.buffered_out(), 0, "nothing was queued");
    // The peer's first frame is this message: nothing went out before it.
    ws.send_text("still open").unwrap();
    assert_eq!(
        peer.join().unwrap(),
        Some(Event::Message(Message::text("still open")))
    );
    ws.close(CloseCode::Other(4999), &"y".repeat(123)).unwrap();
    assert_eq!(ws.state(), wsproto_std::State::CloseSent);
}

/// A TCP socket that counts the writes that reach it.
struct CountingTcp {
    tcp: TcpStream,
    writes: usize,
}

impl Read for CountingTcp {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.tcp.read(buf)
    }
}

impl Write for CountingTcp {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writes += 1;
        self.tcp.write(buf)
    }
    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        self.writes += 1;
        self.tcp.write_vectored(bufs)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

/// Echoes ten frames that arrived in one read, fed (`feed`) or sent
/// (`send`) one by one, and returns how many writes reached the socket.
fn writes_for_ten_echoes(fed: bool) -> usize {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let tcp = listener.accept().unwrap().0;
    let frames: Vec<u8> = (0..10u8).flat_map(|i| masked(0x82, &[i; 16])).collect();
    // All ten are in the server's socket before it reads.
    client.write_all(&frames).unwrap();
    let server = thread::spawn(move || {
        let io = CountingTcp { tcp, writes: 0 };
        let conn = wsproto_std::Connection::server(Config::default());
        let mut ws = wsproto_std::WebSocket::from_connection(io, conn);
        // Until the client hangs up.
        while let Ok(message) = ws.read() {
            if fed {
                ws.feed(message).unwrap();
            } else {
                ws.send(message).unwrap();
            }
        }
        ws.get_ref().writes
    });
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut echoes = vec![0u8; 10 * 18];
    client
        .read_exact(&mut echoes)
        .expect("the echoes did not come back");
    let expected: Vec<u8> = (0..10u8)
        .flat_map(|i| [&[0x82, 16][..], &[i; 16][..]].concat())
        .collect();
    assert_eq!(echoes, expected);
    drop(client);
    server.join().unwrap()
}

#[test]
fn messages_fed_while_input_is_buffered_go_out_in_one_write() {
    // `send` writes each echo: ten writes, which shows the count is real.
    assert_eq!(writes_for_ten_echoes(false), 10);
    // `feed` queues them; `read` writes the queue out once, when the
    // buffered input runs dry and it is about to wait on the socket.
    assert_eq!(writes_for_ten_echoes(true), 1);
}
