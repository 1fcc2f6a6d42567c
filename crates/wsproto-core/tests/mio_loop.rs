//! The `mio_echo` example (the core driven by a plain non-blocking event
//! loop) over real loopback sockets: echoes, a keepalive ping from its
//! timer, the close handshake, and an HTTP error for a bad request.
#![cfg(feature = "std")]

#[allow(dead_code)]
#[path = "../examples/mio_echo.rs"]
mod mio_echo;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

use wsproto_core::{
    ClientHandshake, ClientRequest, CloseCode, Config, Connection, Event, Message, State, Status,
};

fn connect(addr: std::net::SocketAddr) -> (TcpStream, Connection) {
    let request = ClientRequest::new(&format!("ws://{addr}/")).unwrap();
    let mut hs = ClientHandshake::new(&request, Config::default());
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(hs.request_bytes()).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0, "the server closed during the handshake");
        if let Status::Complete(_) = hs.receive(&buf[..n]).unwrap() {
            break;
        }
    }
    (tcp, hs.into_connection().unwrap())
}

fn flush(tcp: &mut TcpStream, conn: &mut Connection) {
    while let Some(chunk) = conn.poll_transmit() {
        tcp.write_all(chunk).unwrap();
        let n = chunk.len();
        conn.advance(n);
    }
}

fn next_event(tcp: &mut TcpStream, conn: &mut Connection) -> Option<Event> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(event) = conn.poll_event().unwrap() {
            return Some(event);
        }
        let n = tcp.read(&mut buf).unwrap();
        if n == 0 {
            return None;
        }
        conn.receive(&buf[..n]);
    }
}

#[test]
fn mio_loop_echoes_pings_and_closes() {
    let config = Config {
        ping_interval: Some(Duration::from_millis(200)),
        ..Config::default()
    };
    let (addr, stop) = mio_echo::spawn(config).unwrap();
    let (mut tcp, mut conn) = connect(addr);
    for size in [0usize, 125, 126, 70_000, 1 << 20] {
        let message = Message::binary(vec![size as u8; size]);
        conn.send(message.clone()).unwrap();
        flush(&mut tcp, &mut conn);
        match next_event(&mut tcp, &mut conn) {
            Some(Event::Message(m)) => assert_eq!(m, message, "{size} bytes"),
            other => panic!("{other:?}"),
        }
    }
    // Idle for longer than the keepalive interval: the loop's timer fires
    // and the server pings.
    match next_event(&mut tcp, &mut conn) {
        Some(Event::Ping(_)) => {}
        other => panic!("expected the server's keepalive ping, got {other:?}"),
    }
    flush(&mut tcp, &mut conn); // our automatic pong
    conn.close(CloseCode::Normal, "bye").unwrap();
    flush(&mut tcp, &mut conn);
    match next_event(&mut tcp, &mut conn) {
        Some(Event::Close(frame)) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("{other:?}"),
    }
    assert_eq!(conn.state(), State::Closed);
    // The server closes the TCP connection after the handshake.
    let mut rest = [0u8; 16];
    assert_eq!(tcp.read(&mut rest).unwrap(), 0);
    stop.store(true, Ordering::Relaxed);
}

#[test]
fn mio_loop_answers_a_bad_request_with_its_status() {
    let (addr, stop) = mio_echo::spawn(Config::default()).unwrap();
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    )
    .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 426 "), "{response}");
    stop.store(true, Ordering::Relaxed);
}
