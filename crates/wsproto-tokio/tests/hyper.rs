//! WebSockets inside hyper and axum servers over real loopback sockets:
//! HTTP/1.1 upgrades, HTTP/2 extended CONNECT (RFC 8441) with several
//! WebSockets on one connection, and an axum route with shared state.
#![cfg(feature = "axum")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsproto_tokio::upgrade::{self, HttpResponse, Upgrade, UpgradedStream};
use wsproto_tokio::{Accept, ClientRequest, Config, Message, Reject};

fn big() -> Config {
    Config {
        max_frame_size: 4 << 20,
        max_message_size: 4 << 20,
        ..Config::default()
    }
}

async fn echo(mut ws: UpgradedStream) {
    while let Some(Ok(message)) = ws.next().await {
        if ws.send(message).await.is_err() {
            break;
        }
    }
}

/// The handler a hyper user writes: pages for plain requests, a WebSocket
/// (echo) at `/ws` with the first offered subprotocol, 404 elsewhere.
async fn handle(mut req: hyper::Request<Incoming>) -> Result<HttpResponse, Infallible> {
    if !upgrade::is_upgrade_request(&req) {
        return Ok(hyper::Response::new(Full::new(Bytes::from("plain page\n"))));
    }
    let upgrade = match Upgrade::from_request(&mut req) {
        Ok(upgrade) => upgrade,
        Err(response) => return Ok(response),
    };
    if upgrade.request().path() != "/ws" {
        return Ok(upgrade.reject(Reject::new(404, "no WebSocket here")));
    }
    let accept = match upgrade.request().subprotocols().first() {
        Some(p) => Accept::default().subprotocol(p.clone()),
        None => Accept::default(),
    };
    Ok(upgrade.on_upgrade(accept, big(), echo))
}

/// A hyper server speaking HTTP/1.1 or, with `h2`, HTTP/2 with prior
/// knowledge and extended CONNECT enabled.
async fn hyper_server(h2: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let io = TokioIo::new(tcp);
            let service = hyper::service::service_fn(handle);
            tokio::spawn(async move {
                if h2 {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .enable_connect_protocol()
                        .serve_connection(io, service)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .with_upgrades()
                        .await;
                }
            });
        }
    });
    addr
}

async fn round_trips<S>(ws: &mut wsproto_tokio::WebSocketStream<S>, tag: usize, count: usize)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for i in 0..count {
        let message = if i % 25 == 24 {
            // 1 MiB: more than HTTP/2's initial flow-control windows.
            Message::binary(vec![(tag + i) as u8; 1 << 20])
        } else {
            Message::text(format!("stream {tag} message {i} ").repeat(i % 7 + 1))
        };
        ws.send(message.clone()).await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an echo within 10 s")
            .expect("open")
            .unwrap();
        assert_eq!(echoed, message, "stream {tag} message {i}");
    }
}

#[tokio::test]
async fn http1_upgrade_through_hyper() {
    let addr = hyper_server(false).await;
    let request = ClientRequest::new(&format!("ws://{addr}/ws"))
        .unwrap()
        .subprotocol("echo.v1");
    let (mut ws, response) = wsproto_tokio::connect_with(&request, big()).await.unwrap();
    assert_eq!(response.subprotocol(), Some("echo.v1"));
    #[cfg(feature = "deflate")]
    assert!(
        response.permessage_deflate().is_some(),
        "deflate negotiated"
    );
    round_trips(&mut ws, 1, 50).await;
    ws.close(wsproto_tokio::CloseCode::Normal, "done")
        .await
        .unwrap();
}

async fn raw_http(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn http1_bad_upgrades_get_their_status_from_hyper() {
    let addr = hyper_server(false).await;
    let version_8 = raw_http(
        addr,
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    )
    .await;
    assert!(version_8.starts_with("HTTP/1.1 426 "), "{version_8}");
    assert!(
        version_8.contains("sec-websocket-version: 13\r\n"),
        "{version_8}"
    );
    let no_key = raw_http(
        addr,
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    assert!(no_key.starts_with("HTTP/1.1 400 "), "{no_key}");
    let elsewhere = raw_http(
        addr,
        "GET /other HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    assert!(elsewhere.starts_with("HTTP/1.1 404 "), "{elsewhere}");
    assert!(elsewhere.ends_with("no WebSocket here"), "{elsewhere}");
    let page = raw_http(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(page.ends_with("plain page\n"), "{page}");
}

async fn h2_client(
    addr: SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    tokio::task::JoinHandle<()>,
) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (sender, task)
}

#[tokio::test]
async fn several_websockets_over_one_http2_connection() {
    let addr = hyper_server(true).await;
    let (sender, _conn) = h2_client(addr).await;
    let mut streams = Vec::new();
    for tag in 0..4 {
        let mut sender = sender.clone();
        streams.push(tokio::spawn(async move {
            let request = ClientRequest::new(&format!("ws://{addr}/ws"))
                .unwrap()
                .subprotocol(format!("v{tag}"));
            let (mut ws, response) = upgrade::connect_h2(&mut sender, &request, big())
                .await
                .unwrap();
            assert_eq!(response.subprotocol(), Some(format!("v{tag}").as_str()));
            #[cfg(feature = "deflate")]
            assert!(
                response.permessage_deflate().is_some(),
                "deflate negotiated"
            );
            // All four streams exchange messages at the same time.
            round_trips(&mut ws, tag, 50).await;
            ws.close(wsproto_tokio::CloseCode::Normal, "done")
                .await
                .unwrap();
            assert!(ws.next().await.is_none(), "closed after the handshake");
        }));
    }
    for stream in streams {
        tokio::time::timeout(Duration::from_secs(60), stream)
            .await
            .expect("every stream finishes")
            .unwrap();
    }
    // The connection is still usable: one more WebSocket on it.
    let mut sender = sender.clone();
    let request = ClientRequest::new(&format!("ws://{addr}/ws")).unwrap();
    let (mut ws, _) = upgrade::connect_h2(&mut sender, &request, big())
        .await
        .unwrap();
    round_trips(&mut ws, 9, 3).await;
}

#[tokio::test]
async fn http2_refusals_and_missing_extended_connect() {
    let addr = hyper_server(true).await;
    let (mut sender, _conn) = h2_client(addr).await;
    let request = ClientRequest::new(&format!("ws://{addr}/elsewhere")).unwrap();
    let err = upgrade::connect_h2(&mut sender, &request, big())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            wsproto_tokio::Error::Handshake(wsproto_core::HandshakeError::UnexpectedStatus(404))
        ),
        "{err:?}"
    );

    // A plain HTTP/2 server that does not enable extended CONNECT.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(tcp), hyper::service::service_fn(handle))
            .await;
    });
    let (mut sender, _conn) = h2_client(plain).await;
    let request = ClientRequest::new(&format!("ws://{plain}/ws")).unwrap();
    let result = upgrade::connect_h2(&mut sender, &request, big()).await;
    assert!(result.is_err(), "no WebSocket without extended CONNECT");
}

#[derive(Clone, Default)]
struct AppState {
    connections: Arc<AtomicUsize>,
}

async fn numbered_echo(
    axum::extract::State(state): axum::extract::State<AppState>,
    upgrade: Upgrade,
) -> HttpResponse {
    let number = state.connections.fetch_add(1, Ordering::SeqCst) + 1;
    upgrade.on_upgrade(
        Accept::default(),
        Config::default(),
        move |mut ws| async move {
            while let Some(Ok(message)) = ws.next().await {
                let Some(text) = message.as_text() else {
                    continue;
                };
                let reply = Message::text(format!("#{number}: {text}"));
                if ws.send(reply).await.is_err() {
                    break;
                }
            }
        },
    )
}

#[tokio::test]
async fn axum_route_with_shared_state() {
    let state = AppState::default();
    let app = axum::Router::new()
        .route("/ws", axum::routing::get(numbered_echo))
        .route("/", axum::routing::get(|| async { "index" }))
        .with_state(state.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    for n in 1..=3 {
        let (mut ws, _) = wsproto_tokio::connect(&format!("ws://{addr}/ws"))
            .await
            .unwrap();
        ws.send(Message::text("hi")).await.unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        assert_eq!(reply.as_text(), Some(format!("#{n}: hi").as_str()));
    }
    assert_eq!(state.connections.load(Ordering::SeqCst), 3);
    // A plain GET on the WebSocket route is refused by the extractor.
    let refused = raw_http(addr, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(refused.starts_with("HTTP/1.1 400 "), "{refused}");
    let index = raw_http(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(index.ends_with("index"), "{index}");
}
