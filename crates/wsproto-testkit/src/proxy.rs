//! A small HTTP CONNECT proxy that records what it was asked for and how
//! many tunnels it opened, with ways to misbehave.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the test proxy does with a CONNECT that passed its credentials
/// check.
#[derive(Clone, Copy)]
pub enum Mode {
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
pub const ALADDIN: &str = "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==";

/// A running proxy (its threads live as long as the test process).
pub struct TestProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The CONNECT request heads received, in order.
    requests: Arc<Mutex<Vec<String>>>,
    tunnels: Arc<AtomicUsize>,
}

impl TestProxy {
    /// Starts a CONNECT proxy that requires `auth` as its
    /// `Proxy-Authorization` value, if given.
    pub fn start(auth: Option<&'static str>, mode: Mode) -> TestProxy {
        start_proxy(auth, mode)
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The CONNECT request heads received, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// How many tunnels it opened.
    pub fn tunnels(&self) -> usize {
        self.tunnels.load(Ordering::SeqCst)
    }
}

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
