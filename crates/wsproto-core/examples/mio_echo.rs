//! A WebSocket echo server on a plain non-blocking event loop (mio), no
//! async runtime: the sans-IO core driven by hand. One thread, one `Poll`,
//! every connection a state machine plus the bytes it still has to write.
//!
//! ```sh
//! cargo run -p wsproto-core --example mio_echo -- [127.0.0.1:9005]
//! cargo run -p wsproto-tokio --example client -- ws://127.0.0.1:9005
//! ```
//!
//! The loop, per readiness event:
//! - handshake: read into [`ServerHandshake::receive`] until the request is
//!   complete, then write the 101 (or the error response) and switch to
//!   the connection, which already holds any frames sent behind the request;
//! - open: read into [`Connection::read_buf`], take [`Event`]s out with
//!   `poll_event`, echo messages with `send`; write what `poll_transmit`
//!   hands out and `advance` past what the socket took. `WouldBlock` on
//!   write keeps the rest in the core until the socket is writable again;
//! - time: `poll_timeout` gives the next deadline (keepalive ping, close
//!   timeout), which becomes the `Poll::poll` timeout; `handle_timeout`
//!   gets the time when it passes.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use wsproto_core::{Accept, Config, Connection, Event, ServerHandshake, State, Status};

const LISTENER: Token = Token(0);

enum Phase {
    Handshake(Box<ServerHandshake>),
    Open(Box<Connection>),
    /// The handshake failed: close once the error response is written.
    Refused,
}

struct Client {
    tcp: TcpStream,
    phase: Phase,
    /// HTTP response bytes not written yet.
    pending: Vec<u8>,
}

fn main() -> io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9005".into())
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let listener = std::net::TcpListener::bind(addr)?;
    println!("mio + wsproto-core echo on ws://{}", listener.local_addr()?);
    serve(listener, Config::default(), &AtomicBool::new(false))
}

/// Runs the echo server on `listener` until `stop` is set.
pub fn serve(listener: std::net::TcpListener, config: Config, stop: &AtomicBool) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(256);
    let mut clients: HashMap<Token, Client> = HashMap::new();
    let mut next = 1;
    let start = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // Sleep until a socket is ready or the earliest protocol deadline.
        let now = start.elapsed();
        let deadline = clients
            .values()
            .filter_map(|c| match &c.phase {
                Phase::Open(conn) => conn.poll_timeout(),
                Phase::Handshake(_) | Phase::Refused => None,
            })
            .min();
        let wait = deadline
            .map_or(Duration::from_millis(100), |d| d.saturating_sub(now))
            .min(Duration::from_millis(100));
        poll.poll(&mut events, Some(wait))?;

        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut tcp, _)) => {
                            let token = Token(next);
                            next += 1;
                            tcp.set_nodelay(true)?;
                            poll.registry().register(
                                &mut tcp,
                                token,
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            let phase =
                                Phase::Handshake(Box::new(ServerHandshake::new(config.clone())));
                            clients.insert(
                                token,
                                Client {
                                    tcp,
                                    phase,
                                    pending: Vec::new(),
                                },
                            );
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let token = event.token();
            let done = match clients.get_mut(&token) {
                Some(client) => drive(client, start.elapsed()).unwrap_or(true),
                None => false,
            };
            if done {
                if let Some(mut client) = clients.remove(&token) {
                    let _ = poll.registry().deregister(&mut client.tcp);
                }
            }
        }

        // Timers: keepalive pings and close timeouts that came due.
        let now = start.elapsed();
        let mut finished = Vec::new();
        for (token, client) in clients.iter_mut() {
            if let Phase::Open(conn) = &mut client.phase {
                if conn.poll_timeout().is_some_and(|d| d <= now) {
                    conn.handle_timeout(now);
                    if drive(client, now).unwrap_or(true) {
                        finished.push(*token);
                    }
                }
            }
        }
        for token in finished {
            if let Some(mut client) = clients.remove(&token) {
                let _ = poll.registry().deregister(&mut client.tcp);
            }
        }
    }
    Ok(())
}

/// Moves every byte the socket has and every byte the state machine wants
/// to send; true when the connection is over.
fn drive(client: &mut Client, now: Duration) -> io::Result<bool> {
    let mut buf = [0u8; 16 * 1024];
    if let Phase::Handshake(hs) = &mut client.phase {
        let complete = loop {
            let n = match client.tcp.read(&mut buf) {
                Ok(0) => return Ok(true),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            };
            match hs.receive(&buf[..n]) {
                Ok(Status::Partial) => continue,
                Ok(Status::Complete(_)) => break true,
                Err(e) => {
                    client.pending = e.response(); // 400, 405, 426 or 431
                    break false;
                }
            }
        };
        // Either way the handshake is over.
        if let Phase::Handshake(hs) = std::mem::replace(&mut client.phase, Phase::Refused) {
            if complete {
                let (response, mut conn) = hs
                    .accept(Accept::default())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                client.pending = response;
                conn.handle_timeout(now); // start the keepalive clock
                client.phase = Phase::Open(Box::new(conn));
            }
        }
    }
    // The HTTP response goes out before any frame.
    while !client.pending.is_empty() {
        match client.tcp.write(&client.pending) {
            Ok(n) => {
                client.pending.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    let conn = match &mut client.phase {
        Phase::Open(conn) => conn,
        Phase::Refused => return Ok(true),
        Phase::Handshake(_) => return Ok(false),
    };
    // Read until WouldBlock. (The adapters read into `conn.read_buf()`
    // directly and save the copy from `buf`.)
    loop {
        let n = match client.tcp.read(&mut buf) {
            Ok(0) => return Ok(true), // the peer went away
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        };
        conn.receive(&buf[..n]);
        loop {
            match conn.poll_event() {
                Ok(Some(Event::Message(message))) => {
                    // Echo; above the write-buffer limit, drop the echo
                    // rather than grow (the peer is not reading).
                    let _ = conn.send(message);
                }
                Ok(Some(_)) => {} // pings are answered, closes completed
                Ok(None) => break,
                Err(_) => break, // the close frame for it is queued
            }
        }
    }
    // Write what the state machine queued.
    while let Some(chunk) = conn.poll_transmit() {
        match client.tcp.write(chunk) {
            Ok(n) => conn.advance(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(conn.state() == State::Closed)
}

/// Lets the loopback test start the server on a thread.
#[allow(dead_code)]
pub fn spawn(config: Config) -> io::Result<(SocketAddr, Arc<AtomicBool>)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || serve(listener, config, &flag));
    Ok((addr, stop))
}
