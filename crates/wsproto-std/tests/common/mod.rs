//! What several test binaries need.
#![allow(dead_code)] // each test binary uses some of it

use std::net::{SocketAddr, TcpListener};
use std::thread;

use wsproto_std::Config;

/// A wss:// echo server presenting `pki`'s certificate: a thread per
/// connection, rustls's `StreamOwned`, then the crate's `accept_with` with
/// `config`.
#[cfg(feature = "rustls")]
pub fn wss_echo_server(pki: &wsproto_testkit::Pki, config: Config) -> SocketAddr {
    let tls_config = pki.server_config();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let (tls_config, config) = (tls_config.clone(), config.clone());
            thread::spawn(move || {
                let conn = rustls::ServerConnection::new(tls_config).unwrap();
                let tls = rustls::StreamOwned::new(conn, tcp);
                let Ok(mut ws) = wsproto_std::accept_with(tls, config, |_| Ok(Default::default()))
                else {
                    return; // the client refused our certificate
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
