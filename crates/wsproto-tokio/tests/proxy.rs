//! Clients through an HTTP CONNECT proxy over loopback: the test kit's
//! small proxy (it records what it was asked for and how many tunnels it
//! opened), the crate's own echo server behind it, `ws://` and `wss://`,
//! Basic credentials, and the proxy's refusals as typed errors.
#![cfg(feature = "rustls")]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use wsproto_core::HandshakeError;
use wsproto_testkit::{trusting, Mode, Pki, TestProxy, ALADDIN};
use wsproto_tokio::{ClientRequest, CloseCode, Config, Error, Message, Proxy};

mod common;

/// A ws:// echo server built on the crate's own `accept`.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let Ok(mut ws) = wsproto_tokio::accept(tcp).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Sends a few messages, expects them back, and closes.
async fn echo_a_few<S>(ws: &mut wsproto_tokio::WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let messages = [
        Message::text("through the tunnel"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::binary((0..100_000).map(|i| i as u8).collect::<Vec<u8>>()),
    ];
    for message in messages {
        ws.send(message.clone()).await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echoed, message);
    }
    ws.close(CloseCode::Normal, "done").await.unwrap();
    assert!(ws.next().await.is_none());
    assert_eq!(ws.close_frame().map(|f| f.code), Some(CloseCode::Normal));
}

fn request_via(url: &str, proxy_url: &str) -> ClientRequest {
    ClientRequest::new(url)
        .unwrap()
        .proxy(Proxy::new(proxy_url).unwrap())
}

#[tokio::test]
async fn echo_through_an_explicit_proxy() {
    let server = echo_server().await;
    let proxy = TestProxy::start(None, Mode::Tunnel);
    let request = request_via(&format!("ws://{server}/echo"), &proxy.url());
    let (mut ws, _) = wsproto_tokio::connect_with(&request, Config::default())
        .await
        .unwrap();
    echo_a_few(&mut ws).await;
    let target = format!("127.0.0.1:{}", server.port());
    assert_eq!(
        proxy.requests(),
        [format!(
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"
        )]
    );
    assert_eq!(proxy.tunnels(), 1);
}

#[tokio::test]
async fn an_answer_in_pieces_is_awaited() {
    let server = echo_server().await;
    let proxy = TestProxy::start(None, Mode::TunnelSlowly);
    let request = request_via(&format!("ws://{server}/"), &proxy.url());
    let (mut ws, _) = wsproto_tokio::connect_with(&request, Config::default())
        .await
        .unwrap();
    echo_a_few(&mut ws).await;
    assert_eq!(proxy.tunnels(), 1);
}

#[tokio::test]
async fn basic_credentials_are_accepted() {
    let server = echo_server().await;
    let proxy = TestProxy::start(Some(ALADDIN), Mode::Tunnel);
    let proxy_url = format!("http://Aladdin:open%20sesame@{}", proxy.addr);
    let request = request_via(&format!("ws://{server}/"), &proxy_url);
    let (mut ws, _) = wsproto_tokio::connect_with(&request, Config::default())
        .await
        .unwrap();
    echo_a_few(&mut ws).await;
    assert!(proxy.requests()[0].contains(&format!("\r\nProxy-Authorization: {ALADDIN}\r\n")));
    assert_eq!(proxy.tunnels(), 1);
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_a_407() {
    let server = echo_server().await;
    let proxy = TestProxy::start(Some(ALADDIN), Mode::Tunnel);
    let request = request_via(&format!("ws://{server}/"), &proxy.url());
    match wsproto_tokio::connect_with(&request, Config::default()).await {
        Err(Error::Handshake(HandshakeError::ProxyAuthRequired {
            credentials_sent: false,
        })) => {}
        other => panic!("expected a 407 error, got {:?}", other.map(|_| ())),
    }
    let wrong = format!("http://Aladdin:sesame@{}", proxy.addr);
    let error = wsproto_tokio::connect_with(
        &request_via(&format!("ws://{server}/"), &wrong),
        Config::default(),
    )
    .await
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

#[tokio::test]
async fn a_refusing_proxy_is_a_typed_error_with_its_status() {
    let server = echo_server().await;
    let proxy = TestProxy::start(
        None,
        Mode::Answer("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 11\r\n\r\nBad Gateway"),
    );
    let request = request_via(&format!("ws://{server}/"), &proxy.url());
    let error = wsproto_tokio::connect_with(&request, Config::default())
        .await
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
        wsproto_tokio::connect_with(&request, Config::default()).await,
        Err(Error::Handshake(HandshakeError::ProxyResponse(_)))
    ));

    let not_http = TestProxy::start(None, Mode::Answer("SSH-2.0-OpenSSH_9.6\r\n\r\n"));
    let request = request_via(&format!("ws://{server}/"), &not_http.url());
    assert!(matches!(
        wsproto_tokio::connect_with(&request, Config::default()).await,
        Err(Error::Handshake(HandshakeError::ProxyResponse(_)))
    ));
}

#[tokio::test]
async fn a_silent_proxy_hits_the_handshake_timeout() {
    let server = echo_server().await;
    let proxy = TestProxy::start(None, Mode::Silent);
    let request = request_via(&format!("ws://{server}/"), &proxy.url());
    let config = Config {
        handshake_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let started = std::time::Instant::now();
    let result = wsproto_tokio::connect_with(&request, config).await;
    assert!(
        matches!(result, Err(Error::HandshakeTimeout)),
        "{:?}",
        result.err()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_unreachable_proxy_is_named_in_the_error() {
    // Bound and dropped: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let request = request_via("ws://127.0.0.1:9/", &format!("http://{addr}"));
    match wsproto_tokio::connect_with(&request, Config::default()).await {
        Err(Error::Io(e)) => assert!(e.to_string().contains(&format!("proxy {addr}")), "{e}"),
        other => panic!("expected an I/O error, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn bytes_behind_the_answer_reach_the_websocket_handshake() {
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
    match wsproto_tokio::connect_with(&request, config).await {
        Err(Error::Handshake(HandshakeError::UnexpectedStatus(404))) => {}
        other => panic!("expected the server's 404, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn no_proxy_connects_directly() {
    let server = echo_server().await;
    let proxy = TestProxy::start(None, Mode::Tunnel);
    // The last choice wins: this request goes straight to the server.
    let request = request_via(&format!("ws://{server}/"), &proxy.url()).no_proxy();
    let (mut ws, _) = wsproto_tokio::connect_with(&request, Config::default())
        .await
        .unwrap();
    echo_a_few(&mut ws).await;
    assert!(proxy.requests().is_empty());
    assert_eq!(proxy.tunnels(), 0);
}

#[tokio::test]
async fn wss_through_the_proxy_checks_the_servers_name() {
    let pki = Pki::localhost();
    let server = common::wss_echo_server(&pki, Config::default()).await;
    let proxy = TestProxy::start(Some(ALADDIN), Mode::Tunnel);
    let proxy_url = format!("http://Aladdin:open%20sesame@{}", proxy.addr);
    // The proxy is reached as 127.0.0.1; TLS inside the tunnel is for
    // `localhost`, the name in the certificate.
    let request = request_via(
        &format!("wss://localhost:{}/feed", server.port()),
        &proxy_url,
    );
    let (mut ws, _) = wsproto_tokio::connect_tls(&request, Config::default(), trusting(&pki.cert))
        .await
        .unwrap();
    echo_a_few(&mut ws).await;
    let requests = proxy.requests();
    assert_eq!(requests.len(), 1);
    let target = format!("localhost:{}", server.port());
    assert!(
        requests[0].starts_with(&format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n")),
        "{requests:?}"
    );
    assert_eq!(proxy.tunnels(), 1);

    // A certificate for another name is still refused through the tunnel.
    let request = request_via(&format!("wss://127.0.0.1:{}/", server.port()), &proxy_url);
    match wsproto_tokio::connect_tls(&request, Config::default(), trusting(&pki.cert)).await {
        Err(Error::Io(e)) => assert!(e.to_string().contains("certificate"), "{e}"),
        other => panic!("expected a certificate error, got {:?}", other.map(|_| ())),
    }
}
