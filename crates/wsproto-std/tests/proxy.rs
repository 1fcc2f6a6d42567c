//! The blocking client through an HTTP CONNECT proxy over loopback: a small
//! proxy started here (it records what it was asked for and how many tunnels
//! it opened), the crate's own echo server behind it, `ws://` and `wss://`,
//! Basic credentials, and the proxy's refusals as typed errors.
#![cfg(feature = "rustls")]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use wsproto_core::HandshakeError;
use wsproto_std::{ClientRequest, CloseCode, Config, Error, Message, Proxy};

/// What the test proxy does with a CONNECT that passed its credentials
/// check.
#[derive(Clone, Copy)]
enum Mode {
    /// Opens the tunnel.
    Tunnel,
    /// Opens the tunnel, but writes its `200` a byte at a time.
    TunnelSlowly,
    /// Answers with these bytes, then reads until the client hangs up.
    Answer(&'static str),
    /// Hangs up without answering.
    HangUp,
    /// Reads the request and never answers.
    Silent,
}

/// `Basic base64("Aladdin:open sesame")`, RFC 7617's example.
const ALADDIN: &str = "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==";

struct TestProxy {
    addr: SocketAddr,
    /// The CONNECT request heads received, in order.
    requests: Arc<Mutex<Vec<String>>>,
    tunnels: Arc<AtomicUsize>,
}

impl TestProxy {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn tunnels(&self) -> usize {
        self.tunnels.load(Ordering::SeqCst)
    }
}

/// Starts a CONNECT proxy that requires `auth` as its
/// `Proxy-Authorization` value, if given.
fn start_proxy(auth: Option<&'static str>, mode: Mode) -> TestProxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = TestProxy {
        addr: listener.local_addr().unwrap(),
        requests: Arc::default(),
        tunnels: Arc::default(),
    };
    let (requests, tunnels) = (proxy.requests.clone(), proxy.tunnels.clone());
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let (requests, tunnels) = (requests.clone(), tunnels.clone());
            thread::spawn(move || serve(client, auth, mode, &requests, &tunnels));
        }
    });
    proxy
}

fn serve(
    mut client: TcpStream,
    auth: Option<&'static str>,
    mode: Mode,
    requests: &Mutex<Vec<String>>,
    tunnels: &AtomicUsize,
) {
    // The client sends nothing more before the answer, so reading up to
    // the blank line cannot swallow tunnel bytes.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        if client.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    requests.lock().unwrap().push(head.clone());
    let target = head
        .strip_prefix("CONNECT ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .to_string();
    let given = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_string())
    });
    if auth.is_some() && given.as_deref() != auth {
        let refusal = "HTTP/1.1 407 Proxy Authentication Required\r\n\
                       Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n";
        let _ = client.write_all(refusal.as_bytes());
        return;
    }
    let established = b"HTTP/1.1 200 Connection established\r\n\r\n";
    match mode {
        Mode::Answer(response) => {
            let _ = client.write_all(response.as_bytes());
            let mut sink = Vec::new();
            let _ = client.read_to_end(&mut sink);
            return;
        }
        Mode::HangUp => return,
        Mode::Silent => {
            thread::sleep(Duration::from_secs(30));
            return;
        }
        Mode::Tunnel | Mode::TunnelSlowly => {}
    }
    let Ok(server) = TcpStream::connect(&target) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        return;
    };
    if let Mode::TunnelSlowly = mode {
        for byte in established {
            client.write_all(&[*byte]).unwrap();
            thread::sleep(Duration::from_millis(1));
        }
    } else {
        client.write_all(established).unwrap();
    }
    tunnels.fetch_add(1, Ordering::SeqCst);
    // One thread per direction; each passes on the end of its stream.
    let pump = |mut from: TcpStream, mut to: TcpStream| {
        thread::spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        })
    };
    let up = pump(client.try_clone().unwrap(), server.try_clone().unwrap());
    let down = pump(server, client);
    let _ = (up.join(), down.join());
}

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
    let proxy = start_proxy(None, Mode::Tunnel);
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
    let proxy = start_proxy(None, Mode::TunnelSlowly);
    let request = request_via(&format!("ws://{server}/"), &proxy.url());
    let (mut ws, _) = wsproto_std::connect_with(&request, Config::default()).unwrap();
    echo_a_few(&mut ws);
    assert_eq!(proxy.tunnels(), 1);
}

#[test]
fn basic_credentials_are_accepted() {
    let server = echo_server();
    let proxy = start_proxy(Some(ALADDIN), Mode::Tunnel);
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
    let proxy = start_proxy(Some(ALADDIN), Mode::Tunnel);
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
    let proxy = start_proxy(
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

    let hangup = start_proxy(None, Mode::HangUp);
    let request = request_via(&format!("ws://{server}/"), &hangup.url());
    assert!(matches!(
        wsproto_std::connect_with(&request, Config::default()),
        Err(Error::Handshake(HandshakeError::ProxyResponse(_)))
    ));
}

#[test]
fn a_silent_proxy_hits_the_read_timeout() {
    let server = echo_server();
    let proxy = start_proxy(None, Mode::Silent);
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
    let proxy = start_proxy(
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
    let proxy = start_proxy(None, Mode::Tunnel);
    // The last choice wins: this request goes straight to the server.
    let request = request_via(&format!("ws://{server}/"), &proxy.url()).no_proxy();
    let (mut ws, _) = wsproto_std::connect_with(&request, Config::default()).unwrap();
    echo_a_few(&mut ws);
    assert!(proxy.requests().is_empty());
    assert_eq!(proxy.tunnels(), 0);
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for `localhost` and a wss:// echo server using it.
fn wss_server() -> (SocketAddr, CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = certified.cert.der().clone();
    let key: PrivateKeyDer<'static> =
        PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()).into();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let config = config.clone();
            thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let Ok(mut ws) = wsproto_std::accept(rustls::StreamOwned::new(conn, tcp)) else {
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
    (addr, cert)
}

fn trusting(cert: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[test]
fn wss_through_the_proxy_checks_the_servers_name() {
    let (server, cert) = wss_server();
    let proxy = start_proxy(None, Mode::Tunnel);
    let request = request_via(&format!("wss://localhost:{}/", server.port()), &proxy.url());
    let (mut ws, _) =
        wsproto_std::connect_tls(&request, Config::default(), trusting(&cert)).unwrap();
    echo_a_few(&mut ws);
    let target = format!("localhost:{}", server.port());
    assert!(proxy.requests()[0].starts_with(&format!("CONNECT {target} HTTP/1.1\r\n")));
    assert_eq!(proxy.tunnels(), 1);
}
