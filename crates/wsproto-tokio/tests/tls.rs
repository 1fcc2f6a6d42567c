//! `wss://` over loopback: a rustls server (any `TlsAcceptor` stream goes
//! through `accept`) with a certificate generated here, our client with
//! a `ClientConfig` that trusts it, and the checks that make TLS worth
//! having: an untrusted certificate and a wrong host name are refused.
#![cfg(feature = "rustls")]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use wsproto_testkit::{trusting, Pki};
use wsproto_tokio::{ClientRequest, CloseCode, Config, Error, Message};

mod common;

fn big() -> Config {
    Config {
        max_frame_size: 4 << 20,
        max_message_size: 4 << 20,
        ..Config::default()
    }
}

#[tokio::test]
async fn wss_echo_with_a_trusted_certificate() {
    let pki = Pki::localhost();
    let addr = common::wss_echo_server(&pki, big()).await;
    let request = ClientRequest::new(&format!("wss://localhost:{}/echo", addr.port())).unwrap();
    let (mut ws, response) = wsproto_tokio::connect_tls(&request, big(), trusting(&pki.cert))
        .await
        .unwrap();
    #[cfg(feature = "deflate")]
    assert!(response.permessage_deflate().is_some());
    let _ = response;
    for size in [0usize, 1, 125, 126, 65535, 65536, 1 << 20] {
        let message = Message::binary((0..size).map(|i| (i * 7) as u8).collect::<Vec<u8>>());
        ws.send(message.clone()).await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echoed, message, "{size} bytes");
    }
    ws.send(Message::text("über TLS ✓")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap().as_text(),
        Some("über TLS ✓")
    );
    ws.close(CloseCode::Normal, "done").await.unwrap();
    assert!(ws.next().await.is_none());
    assert_eq!(ws.close_frame().map(|f| f.code), Some(CloseCode::Normal));
}

fn assert_tls_refused(result: Result<wsproto_tokio::Connected, Error>, what: &str) {
    match result {
        Err(Error::Io(e)) => {
            let text = e.to_string().to_lowercase();
            assert!(text.contains("certificate"), "{what}: {e}");
        }
        Err(other) => panic!("{what}: expected a TLS error, got {other:?}"),
        Ok(_) => panic!("{what}: connected"),
    }
}

#[tokio::test]
async fn untrusted_certificates_and_wrong_names_are_refused() {
    let pki = Pki::localhost();
    let addr = common::wss_echo_server(&pki, big()).await;
    // The default configuration (webpki roots) does not trust a
    // self-signed certificate.
    assert_tls_refused(
        wsproto_tokio::connect(&format!("wss://localhost:{}/", addr.port())).await,
        "self-signed certificate against the default roots",
    );
    // A trusted certificate for another name.
    let request = ClientRequest::new(&format!("wss://127.0.0.1:{}/", addr.port())).unwrap();
    assert_tls_refused(
        wsproto_tokio::connect_tls(&request, big(), trusting(&pki.cert)).await,
        "certificate for localhost used for 127.0.0.1",
    );
    // connect_tls is for wss:// only.
    let plain = ClientRequest::new(&format!("ws://localhost:{}/", addr.port())).unwrap();
    assert!(matches!(
        wsproto_tokio::connect_tls(&plain, big(), trusting(&pki.cert)).await,
        Err(Error::Unsupported(_))
    ));
}

#[tokio::test]
async fn a_server_that_never_answers_the_tls_handshake_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _silent = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(tcp);
    });
    let request = ClientRequest::new(&format!("wss://localhost:{}/", addr.port())).unwrap();
    let config = Config {
        handshake_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let pki = Pki::localhost();
    let started = std::time::Instant::now();
    let result = wsproto_tokio::connect_tls(&request, config, trusting(&pki.cert)).await;
    assert!(
        matches!(result, Err(Error::HandshakeTimeout)),
        "{:?}",
        result.err()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}
