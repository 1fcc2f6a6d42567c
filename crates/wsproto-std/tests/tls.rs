//! `wss://` with the blocking adapter over loopback: a rustls server
//! (`StreamOwned<ServerConnection, TcpStream>` through `accept`) with a
//! certificate generated here; untrusted certificates and wrong names are
//! refused.
#![cfg(feature = "rustls")]

use std::net::SocketAddr;

use rustls::pki_types::CertificateDer;
use wsproto_std::{ClientRequest, CloseCode, Config, Error, Message};
use wsproto_testkit::{trusting, Pki};

mod common;

fn big() -> Config {
    Config {
        max_frame_size: 4 << 20,
        max_message_size: 4 << 20,
        ..Config::default()
    }
}

/// A self-signed certificate for `localhost` and a wss:// echo server using it.
fn wss_server() -> (SocketAddr, CertificateDer<'static>) {
    let pki = Pki::localhost();
    (common::wss_echo_server(&pki, big()), pki.cert)
}

#[test]
fn wss_echo_with_a_trusted_certificate() {
    let (addr, cert) = wss_server();
    let request = ClientRequest::new(&format!("wss://localhost:{}/", addr.port())).unwrap();
    let (mut ws, _) = wsproto_std::connect_tls(&request, big(), trusting(&cert)).unwrap();
    assert!(ws.get_ref().is_tls());
    for size in [0usize, 1, 125, 126, 65535, 65536, 1 << 20] {
        let message = Message::binary((0..size).map(|i| (i * 13) as u8).collect::<Vec<u8>>());
        ws.send(message.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), message, "{size} bytes");
    }
    ws.close(CloseCode::Normal, "done").unwrap();
    loop {
        match ws.read() {
            Err(Error::ConnectionClosed(frame)) => {
                assert_eq!(frame.map(|f| f.code), Some(CloseCode::Normal));
                break;
            }
            Ok(_) => continue,
            Err(e) => panic!("{e}"),
        }
    }
}

fn assert_tls_refused(result: Result<wsproto_std::Connected, Error>, what: &str) {
    match result {
        Err(Error::Io(e)) => {
            assert!(
                e.to_string().to_lowercase().contains("certificate"),
                "{what}: {e}"
            )
        }
        Err(other) => panic!("{what}: expected a TLS error, got {other:?}"),
        Ok(_) => panic!("{what}: connected"),
    }
}

#[test]
fn untrusted_certificates_and_wrong_names_are_refused() {
    let (addr, cert) = wss_server();
    assert_tls_refused(
        wsproto_std::connect(&format!("wss://localhost:{}/", addr.port())),
        "self-signed certificate against the default roots",
    );
    let request = ClientRequest::new(&format!("wss://127.0.0.1:{}/", addr.port())).unwrap();
    assert_tls_refused(
        wsproto_std::connect_tls(&request, big(), trusting(&cert)),
        "certificate for localhost used for 127.0.0.1",
    );
}
