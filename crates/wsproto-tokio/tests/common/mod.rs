//! What several test binaries need: a client driven by the core directly
//! over a raw socket, to see (or withhold) what the adapter hides.
#![allow(dead_code)] // each test binary uses some of it

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsproto_core::{ClientHandshake, ClientRequest, Config, Connection, Status};

/// Opens a WebSocket to `addr` with the core's client handshake, sending
/// `pipelined` in the same write as the request; returns the socket and
/// the open connection, reading nothing more.
pub async fn raw_client(addr: SocketAddr, pipelined: &[u8]) -> (TcpStream, Connection) {
    let request = ClientRequest::new(&format!("ws://{addr}/")).unwrap();
    let mut hs = ClientHandshake::new(&request, Config::default());
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut first = hs.request_bytes().to_vec();
    first.extend_from_slice(pipelined);
    tcp.write_all(&first).await.unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "server closed during handshake");
        if let Status::Complete(_) = hs.receive(&buf[..n]).unwrap() {
            break;
        }
    }
    (tcp, hs.into_connection().unwrap())
}

/// A wss:// echo server presenting `pki`'s certificate: TLS through
/// tokio-rustls, then the crate's `accept_with` with `config`.
#[cfg(feature = "rustls")]
pub async fn wss_echo_server(pki: &wsproto_testkit::Pki, config: Config) -> SocketAddr {
    use futures_util::{SinkExt, StreamExt};

    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, config) = (acceptor.clone(), config.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return; // the client refused our certificate
                };
                let accepted =
                    wsproto_tokio::accept_with(tls, config, |_| Ok(Default::default())).await;
                let Ok(mut ws) = accepted else { return };
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
