//! The blocking client through an HTTP CONNECT proxy over loopback: the
//! test kit's small proxy (it records what it was asked for and how many
//! tunnels it opened), the crate's own echo server behind it, `ws://` and `wss://`,
//! Basic credentials, and the proxy's refusals as typed errors.
#![cfg(feature = "rustls")]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use wsproto_core::HandshakeError;
use wsproto_std::{ClientRequest, CloseCode, Config, Error, Message, Proxy};
use wsproto_testkit::{trusting, Mode, Pki, TestProxy, ALADDIN};

mod common;

/// A ws:// echo server built on the crate's own `accept`.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            thread::spawn(move || {
                let Ok(mut ws) = wsproto_std::accept(tcp) else {
                    return;
                };
                while let Ok(message) = ws.read() {
                    if ws.send(message).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Sends a few messages, expects them back, and closes.
fn echo_a_few<S: Read + Write>(ws: &mut wsproto_std::WebSocket<S>) {
    let messages = [
        Message::text("through the tunnel"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::binary((0..100_000).map(|i| i as u8).collect::<Vec<u8>>()),
    ];
    for message in messages {
        ws.send(message.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), message);
    }
    ws.close(CloseCode::Normal, "done").unwrap();
    match ws.read() {
        Err(Error::ConnectionClosed(Some(frame))) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected the close reply, got {other:?}"),
    }
}

fn request_via(url: &str, proxy_url: &str) -> ClientRequest {
    ClientRequest::new(url)
        .unwrap()
        .proxy(Proxy::new(proxy_url).unwrap())
}

#[test]
fn echo_through_an_explicit_proxy() {
    let server = echo_server();
    let proxy = TestProxy::start(None, Mode::Tunnel);
    let request = request_via(&format!("ws://{server}/echo"), &proxy.url());
    let (mut ws, _) = wsproto_std::connect_with(&request, Config::default()).unwrap();
    // The handshake's read timeout was lifted, tunnel or not.
    assert_eq!(ws.get_ref().get_ref().read_timeout().unwrap(), None);
    echo_a_few(&mut ws);
    let target = format!("127.0.0.1:{}", server.port());
    assert_eq!(
        proxy.requests(),
        [format!(
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"
        )]
    );
    assert_eq!(proxy.tunnels(), 1);
}

#[test]
fn an_answer_in_pieces_is_awaited() {
    let server = echo_server();
    let proxy = TestProxy::start(None, Mode::TunnelSlowly);
    let request = request_via(&format!("ws://{server}/"), &proxy.url());
    let (mut ws, _) = wsproto_std::connect_with(&request, Config::default()).unwrap();
    echo_a_few(&mut ws);
    assert_eq!(proxy.tunnels(), 1);
}

#[test]
fn basic_credentials_are_accepted() {
    let server = echo_server();
    let proxy = TestProxy::start(Some(ALADDIN), Mode::Tunnel);
    let proxy_url = format!("http://Aladdin:open%20sesame@{}", proxy.addr);
    let request = request_via(&format!("ws://{server}/"), &proxy_url);
    let (mut ws, _) = wsproto_std::connect_with(&request, Config::default()).unwrap();
    echo_a_few(&mut ws);
    assert!(proxy.requests()[0].contains(&format!("\r\nProxy-Authorization: {ALADDIN}\r\n")));
    assert_eq!(proxy.tunnels(), 1);
}

#[test]
fn missing_or_wrong_credentials_are_a_407() {
    let server = echo_server();
    let proxy = TestProxy::start(Some(ALADDIN), Mode::Tunnel);
    let request = request_via(&format!("ws://{server}/"), &proxy.url());
    match wsproto_std::connect_with(&request, Config::default()) {
        Err(Error::Handshake(HandshakeError::ProxyAuthRequired {
            credentials_sent: false,
        })) => {}
        other => panic!("expected a 407 error, got {:?}", other.map(|_| ())),
    }
    let wrong = format!("http://Aladdin:sesame@{}", proxy.addr);
    let error = wsproto_std::connect_with(
        &request_via(&format!("ws://{server}/"), &wrong),
        Config::default(),
    )
    .err()
    .unwrap();
    assert!(
        matches!(
            error,
            Error::Handshake(HandshakeError::ProxyAuthRequired {
                credentials_sent: true
            })
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("407"), "{error}");
    assert_eq!(proxy.tunnels(), 0);
}

#[test]
fn a_refusing_proxy_is_a_typed_error_with_its_status() {
    let server = echo_server();
    let proxy = TestProxy::start(
        None,
        Mode::Answer("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 11\r\n\r\nBad Gateway"),
    );
    let request = request_via(&format!("ws://{server}/"), &proxy.url());
    let error = wsproto_std::connect_with(&request, Config::default())
        .err()
        .unwrap();
    assert!(
        matches!(error, Error::Handshake(HandshakeError::ProxyRefused(502))),
        "{error:?}"
    );
    assert!(error.to_string().contains("502"), "{error}");

    let hangup = TestProxy::start(None, Mode::HangUp);
    let request = request_via(&format!("ws://{server}/"), &hangup.url());
    assert!(matches!(
        wsproto_std::connect_with(&request, Config::default()),
        Err(Error::Handshake(HandshakeError::ProxyResponse(_)))
    ));
}

#[test]
fn a_silent_proxy_hits_the_read_timeout() {
    let server = echo_server();
    let proxy = TestProxy::start(None, Mode::Silent);
    let request = request_via(&format!("ws://{server}/"), &proxy.url());
    let config = Config {
        handshake_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let started = Instant::now();
    match wsproto_std::connect_with(&request, config) {
        Err(Error::Io(e)) => assert!(
            matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{e}"
        ),
        other => panic!("expected a timeout, got {:?}", other.map(|_| ())),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn bytes_behind_the_answer_reach_the_websocket_handshake() {
    // As if the server spoke first and its bytes came in the proxy's
    // packet: they must reach the WebSocket handshake, not be dropped
    // with the proxy's answer (which would leave the client waiting).
    let proxy = TestProxy::start(
        None,
        Mode::Answer(
            "HTTP/1.1 200 Connection established\r\n\r\n\
             HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        ),
    );
    let request = request_via("ws://127.0.0.1:9/", &proxy.url());
    let config = Config {
        handshake_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    match wsproto_std::connect_with(&request, config) {
        Err(Error::Handshake(HandshakeError::UnexpectedStatus(404))) => {}
        other => panic!("expected the server's 404, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn no_proxy_connects_directly() {
    let server = echo_server();
    let proxy = TestProxy::start(None, Mode::Tunnel);
    // The last choice wins: this request goes straight to the server.
    let request = request_via(&format!("ws://{server}/"), &proxy.url()).no_proxy();
    let (mut ws, _) = wsproto_std::connect_with(&request, Config::default()).unwrap();
    echo_a_few(&mut ws);
    assert!(proxy.requests().is_empty());
    assert_eq!(proxy.tunnels(), 0);
}

/// A self-signed certificate for `localhost` and a wss:// echo server using it.
fn wss_server() -> (SocketAddr, CertificateDer<'static>) {
    let pki = Pki::localhost();
    (common::wss_echo_server(&pki, Config::default()), pki.cert)
}

#[test]
fn wss_through_the_proxy_checks_the_servers_name() {
    let (server, cert) = wss_server();
    let proxy = TestProxy::start(None, Mode::Tunnel);
    let request = request_via(&format!("wss://localhost:{}/", server.port()), &proxy.url());
    let (mut ws, _) =
        wsproto_std::connect_tls(&request, Config::default(), trusting(&cert)).unwrap();
    echo_a_few(&mut ws);
    let target = format!("localhost:{}", server.port());
    assert!(proxy.requests()[0].starts_with(&format!("CONNECT {target} HTTP/1.1\r\n")));
    assert_eq!(proxy.tunnels(), 1);
}
