//! A blocking WebSocket adapter over the sans-IO [`wsproto_core`] state
//! machine, for any `Read + Write` transport.
//!
//! The adapter only moves bytes and time; the core parses, validates,
//! answers pings and completes the close handshake.
//!
//! - Servers: [`accept`] or [`accept_with`] (a callback sees the request and
//!   accepts with a subprotocol or rejects with a status).
//! - Clients: [`connect`] a `ws://` URL, or [`client`] over a transport you
//!   opened.
//! - [`WebSocket::read`] returns the next message; [`WebSocket::send`]
//!   queues and flushes one, [`WebSocket::feed`] only queues it (it goes out
//!   with the next read that has to wait for input, or a flush);
//!   [`WebSocket::close`] starts the close handshake.
//!
//! Non-blocking sockets work after the handshake: a `WouldBlock` comes back
//! as [`Error::Io`] and loses nothing. Bytes already read stay in the core;
//! a message whose write would block stays queued until the next send,
//! [`WebSocket::flush`], or read that has no received message left to
//! return; and while more than
//! `Config::write_high_water` bytes are queued, [`WebSocket::send`] returns
//! `WouldBlock` without taking the message (a blocking socket blocks
//! instead), so a peer that stops reading cannot grow the buffer.
//!
//! # An echo server, a thread per connection
//!
//! ```no_run
//! use std::net::TcpListener;
//!
//! let listener = TcpListener::bind("127.0.0.1:8003")?;
//! for tcp in listener.incoming() {
//!     let tcp = tcp?;
//!     std::thread::spawn(move || {
//!         let Ok(mut ws) = wsproto_std::accept(tcp) else { return };
//!         while let Ok(message) = ws.read() {
//!             if ws.send(message).is_err() {
//!                 break;
//!             }
//!         }
//!     });
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(missing_docs)]

mod error;
pub mod tls;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

pub use error::Error;
pub use tls::MaybeTlsStream;
pub use wsproto_core::handshake::{DeflateConfig, DeflateParams};
pub use wsproto_core::{
    Accept, ClientRequest, CloseCode, CloseFrame, Config, Connection, Event, Message, Proxy,
    Reject, Request, Response, State,
};
use wsproto_core::{
    ClientHandshake, DirectSend, HandshakeError, ProxyHandshake, ServerHandshake, Status,
};

/// Bytes read from the transport per call.
const READ_CHUNK: usize = 16 * 1024;

/// A WebSocket over a blocking or non-blocking `Read + Write` transport.
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    conn: Connection,
    start: Instant,
    close_frame: Option<CloseFrame>,
    /// The peer closed the transport.
    eof: bool,
}

/// At most this many chunks go into one vectored write (a frame is at most
/// two: header and payload).
const MAX_IO_SLICES: usize = 16;

/// Bytes waiting to be written: the connection's queue, or a message being
/// written from the caller's slice (`DirectSend`).
trait Outgoing {
    fn first(&self) -> Option<&[u8]>;
    fn len(&self) -> usize;
    fn io_slices<'a>(&'a self, slices: &mut [io::IoSlice<'a>]) -> usize;
    fn advance(&mut self, n: usize);
}

impl Outgoing for Connection {
    fn first(&self) -> Option<&[u8]> {
        self.poll_transmit()
    }
    fn len(&self) -> usize {
        self.buffered_out()
    }
    fn io_slices<'a>(&'a self, slices: &mut [io::IoSlice<'a>]) -> usize {
        self.transmit_io_slices(slices)
    }
    fn advance(&mut self, n: usize) {
        Connection::advance(self, n);
    }
}

impl Outgoing for DirectSend<'_, '_> {
    fn first(&self) -> Option<&[u8]> {
        DirectSend::first(self)
    }
    fn len(&self) -> usize {
        self.remaining()
    }
    fn io_slices<'a>(&'a self, slices: &mut [io::IoSlice<'a>]) -> usize {
        DirectSend::io_slices(self, slices)
    }
    fn advance(&mut self, n: usize) {
        DirectSend::advance(self, n);
    }
}

/// Writes everything `out` holds, without flushing the transport.
fn write_out<S: Write>(stream: &mut S, out: &mut impl Outgoing) -> Result<(), Error> {
    while let Some(first) = out.first() {
        // One contiguous run (small frames, the common case) goes out in a
        // plain write; headers and large payloads by reference in one writev.
        let written = if first.len() < out.len() {
            let mut slices = [io::IoSlice::new(&[]); MAX_IO_SLICES];
            let n = out.io_slices(&mut slices);
            stream.write_vectored(slices.get(..n).unwrap_or_default())
        } else {
            stream.write(first)
        };
        match written {
            Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
            Ok(n) => out.advance(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
    Ok(())
}

impl<S: Read + Write> WebSocket<S> {
    /// Drives an open `Connection` (from a handshake done elsewhere) over
    /// `stream`.
    pub fn from_connection(stream: S, conn: Connection) -> WebSocket<S> {
        WebSocket {
            stream,
            conn,
            start: Instant::now(),
            close_frame: None,
            eof: false,
        }
    }

    /// Reads until the next message. Pings are answered and the close
    /// handshake is completed on the way; once it is over this returns
    /// [`Error::ConnectionClosed`] with the peer's close frame.
    ///
    /// Keepalive pings and the close timeout (see [`Config`]) are checked
    /// whenever this is called; on a blocking socket, give it a read timeout
    /// (`TcpStream::set_read_timeout`) so that timers run while the peer is
    /// silent; a read that times out then comes back as [`Error::Io`].
    pub fn read(&mut self) -> Result<Message, Error> {
        loop {
            if let Event::Message(message) = self.read_event()? {
                return Ok(message);
            }
        }
    }

    /// Reads until the next event of any kind: messages, pings, pongs and
    /// the peer's close frame (pongs and the close reply are still sent
    /// automatically).
    pub fn read_event(&mut self) -> Result<Event, Error> {
        loop {
            // Events already received come first, without touching the
            // transport, so that what the caller queued meanwhile (replies
            // given to `feed`, automatic pongs) goes out in one write when
            // the input runs dry. The core stops handing out events while
            // its outgoing buffer is above `max_write_buffer`.
            match self.conn.poll_event() {
                Ok(Some(event)) => {
                    if let Event::Close(frame) = &event {
                        self.close_frame = Some(frame.clone());
                    }
                    return Ok(event);
                }
                Ok(None) => {}
                Err(e) => {
                    // Best effort: the close frame the violation called for.
                    let _ = self.flush();
                    return Err(Error::Protocol(e));
                }
            }
            // The core stopped handing out events because its outgoing
            // buffer is full, not because it needs input.
            let parked = !self.conn.wants_read();
            // Queued bytes (fed replies, pongs, the close reply) go out
            // before we wait for more input.
            match self.flush() {
                Ok(()) => {}
                Err(e) if e.is_would_block() => {}
                Err(e) => return Err(e),
            }
            if parked && self.conn.wants_read() {
                // The write made room: what is already buffered comes
                // before any more input, or a peer whose pings outrun
                // their pongs would grow the receive buffer without bound.
                continue;
            }
            if self.conn.state() == State::Closed {
                return Err(Error::ConnectionClosed(self.close_frame.clone()));
            }
            if self.run_timers() {
                continue;
            }
            if self.eof {
                return Err(self.end_of_stream());
            }
            if !self.conn.wants_read() {
                // Above the write buffer's high-water mark: wait for the
                // transport to take our bytes before reading more.
                self.flush()?;
                continue;
            }
            match self.fill() {
                Ok(0) => {
                    self.eof = true;
                    return Err(self.end_of_stream());
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // A read timeout may be what lets a timer fire.
                    if self.run_timers() {
                        continue;
                    }
                    return Err(Error::Io(e));
                }
            }
        }
    }

    /// Reads once from the transport straight into the core's buffer.
    fn fill(&mut self) -> io::Result<usize> {
        let buf = self.conn.read_buf();
        let len = buf.len();
        buf.resize(len + READ_CHUNK, 0);
        let result = self.stream.read(&mut buf[len..]);
        let n = *result.as_ref().unwrap_or(&0);
        buf.truncate(len + n);
        result
    }

    fn end_of_stream(&self) -> Error {
        match self.conn.state() {
            // After our close a peer may just hang up.
            State::CloseSent | State::Closed => Error::ConnectionClosed(self.close_frame.clone()),
            _ => Error::AbnormalClosure,
        }
    }

    /// Runs the core's timers if one is due; true if one ran.
    fn run_timers(&mut self) -> bool {
        let now = self.start.elapsed();
        match self.conn.poll_timeout() {
            Some(deadline) if deadline <= now => {
                self.conn.handle_timeout(now);
                true
            }
            _ => false,
        }
    }

    /// Queues a message and writes it out.
    ///
    /// Backpressure: while more than `Config::write_high_water` bytes
    /// (64 KiB by default) wait to be written, `send` first writes. On a
    /// blocking socket it blocks until the peer has taken enough; on a
    /// non-blocking one it returns a `WouldBlock` [`Error::Io`] and does
    /// **not** take the message: retry once the socket is writable (a
    /// [`Message`] is reference-counted, so keeping a clone to retry with
    /// costs nothing). Once taken, a message is never lost: if writing it
    /// would block, `send` returns `Ok` and the rest goes out with the next
    /// `send`, [`flush`](Self::flush), or [`read`](Self::read) that has no
    /// received message left to return. Memory for a
    /// peer that stops reading therefore stays under the high-water mark
    /// plus one message.
    pub fn send(&mut self, message: Message) -> Result<(), Error> {
        self.make_room()?;
        self.conn.send(message)?;
        self.write_queued()
    }

    /// Queues a message without writing it: it goes out with the next
    /// [`read`](Self::read) that has no received message left to return
    /// and has to wait for input, or with [`flush`](Self::flush),
    /// [`send`](Self::send) or [`close`](Self::close). A server answering a
    /// burst of pipelined requests this way makes one write for the whole
    /// burst instead of one per reply. Backpressure as with
    /// [`send`](Self::send): above `Config::write_high_water` queued bytes
    /// it writes first (or returns `WouldBlock` on a non-blocking socket,
    /// without taking the message).
    ///
    /// ```no_run
    /// # fn run(mut ws: wsproto_std::WebSocket<std::net::TcpStream>) -> Result<(), wsproto_std::Error> {
    /// loop {
    ///     let request = ws.read()?;
    ///     ws.feed(request)?; // an echo; written when the input runs dry
    /// }
    /// # }
    /// ```
    pub fn feed(&mut self, message: Message) -> Result<(), Error> {
        self.make_room()?;
        self.conn.send(message)?;
        Ok(())
    }

    /// Sends a text message, with the backpressure of [`send`](Self::send).
    /// A server writes a text of 16 KiB or more straight from `text`
    /// (header and text in one vectored write) and copies only what the
    /// socket did not take.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.make_room()?;
        let mut send = self.conn.send_text_direct(text)?;
        let written = write_out(&mut self.stream, &mut send);
        drop(send);
        self.finish_write(written)
    }

    /// Sends a binary message, with the backpressure of [`send`](Self::send).
    /// A server writes a payload of 16 KiB or more straight from `data`
    /// (header and payload in one vectored write) and copies only what the
    /// socket did not take.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.make_room()?;
        let mut send = self.conn.send_binary_direct(data)?;
        let written = write_out(&mut self.stream, &mut send);
        drop(send);
        self.finish_write(written)
    }

    /// Flushes the transport after a write of a message that was taken; a
    /// `WouldBlock` there is not an error (the rest stays queued).
    fn finish_write(&mut self, written: Result<(), Error>) -> Result<(), Error> {
        match written.and_then(|()| self.stream.flush().map_err(Error::Io)) {
            Err(e) if e.is_would_block() => Ok(()),
            other => other,
        }
    }

    /// How many bytes are queued and not yet written to the transport.
    pub fn buffered_out(&self) -> usize {
        self.conn.buffered_out()
    }

    /// Writes until the outgoing buffer is at or below the high-water mark;
    /// `WouldBlock` if a non-blocking socket cannot take that much now.
    fn make_room(&mut self) -> Result<(), Error> {
        if self.conn.send_ready() {
            return Ok(());
        }
        match self.flush() {
            Err(e) if e.is_would_block() && self.conn.send_ready() => Ok(()),
            other => other,
        }
    }

    /// Writes what was just queued; on a non-blocking socket the rest
    /// stays queued (the message was taken, so this is not an error).
    fn write_queued(&mut self) -> Result<(), Error> {
        let written = write_out(&mut self.stream, &mut self.conn);
        self.finish_write(written)
    }

    /// Sends a ping with up to 125 bytes of payload; the pong arrives as
    /// [`Event::Pong`] from [`read_event`](Self::read_event).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.conn.ping(payload)?;
        self.flush()
    }

    /// Starts the close handshake: sends a close frame with `code` and a
    /// reason of at most 123 bytes. Keep calling [`read`](Self::read) until
    /// it returns [`Error::ConnectionClosed`] to complete it.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.conn.close(code, reason)?;
        self.flush()
    }

    /// Writes everything queued, then flushes the transport.
    pub fn flush(&mut self) -> Result<(), Error> {
        write_out(&mut self.stream, &mut self.conn)?;
        self.stream.flush()?;
        Ok(())
    }

    /// Where the close handshake stands.
    pub fn state(&self) -> State {
        self.conn.state()
    }

    /// The peer's close frame, once it arrived.
    pub fn close_frame(&self) -> Option<&CloseFrame> {
        self.close_frame.as_ref()
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The transport, mutably (to set timeouts or non-blocking mode).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Gives back the transport.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

/// Accepts a WebSocket on `stream` for any path, without a subprotocol.
pub fn accept<S: Read + Write>(stream: S) -> Result<WebSocket<S>, Error> {
    accept_with(stream, Config::default(), |_| Ok(Accept::default()))
}

/// Accepts a WebSocket on `stream` after `callback` has seen the request
/// (path, query, headers, offered subprotocols) and accepted it, possibly
/// with a subprotocol and extra headers, or rejected it with a status.
///
/// Invalid requests get their HTTP error (400, 405, 426, 431) and a
/// rejection gets the callback's status; both return `Err(Error::Handshake)`
/// after the response is written. The handshake needs a blocking stream;
/// switch to non-blocking afterwards if you like.
///
/// A blocking read cannot be interrupted from here, so to stop a peer that
/// sends its request a byte at a time from holding the thread, give the
/// socket a read timeout first (`tcp.set_read_timeout(Some(config.handshake_timeout))`,
/// as the `echo_server` example does); a handshake that stalls then fails
/// with [`Error::Io`] (`WouldBlock` or `TimedOut`).
///
/// ```no_run
/// use wsproto_std::{Accept, Config, Reject};
/// # fn run(tcp: std::net::TcpStream) -> Result<(), wsproto_std::Error> {
/// let ws = wsproto_std::accept_with(tcp, Config::default(), |request| {
///     match request.path() {
///         "/ws/echo" => Ok(Accept::default()),
///         _ => Err(Reject::new(404, "no such endpoint")),
///     }
/// })?;
/// # drop(ws); Ok(())
/// # }
/// ```
pub fn accept_with<S, F>(mut stream: S, config: Config, callback: F) -> Result<WebSocket<S>, Error>
where
    S: Read + Write,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let mut hs = ServerHandshake::new(config);
    let mut buf = [0u8; 4096];
    let decision = loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Err(Error::AbnormalClosure),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(e)),
        };
        match hs.receive(&buf[..n]) {
            Ok(Status::Partial) => {}
            Ok(Status::Complete(request)) => break callback(request),
            Err(e) => return Err(refuse(stream, &e.response(), e)),
        }
    };
    let accept = match decision {
        Ok(accept) => accept,
        Err(reject) => {
            return Err(refuse(
                stream,
                &reject.response(),
                HandshakeError::Rejected(reject.status),
            ))
        }
    };
    match hs.accept(accept) {
        Ok((response, conn)) => {
            stream.write_all(&response)?;
            stream.flush()?;
            Ok(WebSocket::from_connection(stream, conn))
        }
        Err(e) => Err(refuse(stream, &e.response(), e)),
    }
}

fn refuse<S: Write>(mut stream: S, response: &[u8], e: HandshakeError) -> Error {
    // The peer may be gone already; the handshake error is what matters.
    let _ = stream.write_all(response).and_then(|()| stream.flush());
    Error::Handshake(e)
}

/// What [`connect`] returns: the WebSocket over plain TCP or TLS, and the
/// server's response.
pub type Connected = (WebSocket<MaybeTlsStream<TcpStream>>, Response);

/// Connects to a `ws://` or (with the feature `rustls`) `wss://` URL with
/// the default configuration, through the HTTP proxy the environment names
/// if any (`https_proxy`, `http_proxy`, `all_proxy`, `no_proxy`: see
/// [`Proxy::from_env_with`]).
///
/// ```no_run
/// let (mut ws, _response) = wsproto_std::connect("ws://127.0.0.1:8003/")?;
/// ws.send_text("hello")?;
/// println!("{:?}", ws.read()?);
/// # Ok::<(), wsproto_std::Error>(())
/// ```
pub fn connect(url: &str) -> Result<Connected, Error> {
    connect_with(&ClientRequest::new(url)?, Config::default())
}

/// Connects as described by `request` (URL, subprotocols, headers, proxy).
/// Each read of the proxy CONNECT, TLS and WebSocket handshakes waits at
/// most `config.handshake_timeout`. Through a proxy, TLS runs inside the
/// tunnel and checks the server's name, not the proxy's; a proxy's refusal
/// is an [`Error::Handshake`] with [`HandshakeError::ProxyRefused`] or
/// [`HandshakeError::ProxyAuthRequired`]. `wss://` uses `tls::default_client_config()`,
/// or fails with [`Error::Unsupported`] in a build without the feature
/// `rustls`.
pub fn connect_with(request: &ClientRequest, config: Config) -> Result<Connected, Error> {
    if request.is_tls() {
        #[cfg(feature = "rustls")]
        return connect_tls(request, config, tls::default_client_config());
        #[cfg(not(feature = "rustls"))]
        return Err(Error::Unsupported(
            "wss:// URLs need TLS: build wsproto-std with the feature rustls",
        ));
    }
    let tcp = open_tcp(request, &config)?;
    finish(client(MaybeTlsStream::Plain(tcp), request, config)?)
}

/// Connects to a `wss://` URL with your own rustls configuration (private
/// CA, client certificates, other roots).
///
/// ```no_run
/// # fn run(roots: rustls::RootCertStore) -> Result<(), wsproto_std::Error> {
/// use std::sync::Arc;
/// let provider = Arc::new(rustls::crypto::ring::default_provider());
/// let tls = rustls::ClientConfig::builder_with_provider(provider)
///     .with_safe_default_protocol_versions()
///     .unwrap()
///     .with_root_certificates(roots)
///     .with_no_client_auth();
/// let request = wsproto_std::ClientRequest::new("wss://internal.example:8443/feed")?;
/// let (ws, _) = wsproto_std::connect_tls(&request, Default::default(), Arc::new(tls))?;
/// # drop(ws); Ok(())
/// # }
/// ```
#[cfg(feature = "rustls")]
pub fn connect_tls(
    request: &ClientRequest,
    config: Config,
    tls: std::sync::Arc<rustls::ClientConfig>,
) -> Result<Connected, Error> {
    if !request.is_tls() {
        return Err(Error::Unsupported("connect_tls needs a wss:// URL"));
    }
    let tcp = open_tcp(request, &config)?;
    let io = tls::wrap(tcp, request.host(), tls)?;
    finish(client(io, request, config)?)
}

/// Opens the TCP connection to the server: directly, or to the proxy
/// `request` resolves to and through a CONNECT tunnel.
fn open_tcp(request: &ClientRequest, config: &Config) -> Result<TcpStream, Error> {
    let proxy = request.resolve_proxy()?;
    let tcp = match &proxy {
        None => TcpStream::connect((request.host(), request.port()))?,
        Some(proxy) => TcpStream::connect((proxy.host(), proxy.port())).map_err(|e| {
            // Name the proxy: a refused connection to it must not read as
            // the server being down.
            io::Error::new(
                e.kind(),
                format!("proxy {}:{}: {e}", proxy.host(), proxy.port()),
            )
        })?,
    };
    tcp.set_nodelay(true)?;
    // A server that never answers must not hold us forever.
    tcp.set_read_timeout(Some(config.handshake_timeout))?;
    if let Some(proxy) = proxy {
        tunnel(&tcp, &proxy, request)?;
    }
    Ok(tcp)
}

/// Asks the proxy on `tcp` for a tunnel to the server. The answer is
/// peeked and only its own bytes read, so whatever the server sends first
/// stays in the socket for the TLS or WebSocket handshake.
fn tunnel(mut tcp: &TcpStream, proxy: &Proxy, request: &ClientRequest) -> Result<(), Error> {
    let mut hs = ProxyHandshake::new(proxy, request.host(), request.port())?;
    tcp.write_all(hs.request_bytes())?;
    let mut buf = [0u8; 4096];
    loop {
        let n = match tcp.peek(&mut buf) {
            Ok(0) => {
                return Err(Error::Handshake(HandshakeError::ProxyResponse(
                    "the proxy closed the connection before answering",
                )))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(e)),
        };
        let status = hs.receive(&buf[..n])?;
        // Until the head is complete every byte is the proxy's.
        let used = match status {
            Status::Partial => n,
            Status::Complete(used) => used,
        };
        tcp.read_exact(&mut buf[..used])?;
        if let Status::Complete(_) = status {
            return Ok(());
        }
    }
}

/// Lifts the handshake's read timeout once the WebSocket is open.
fn finish(connected: Connected) -> Result<Connected, Error> {
    connected.0.get_ref().get_ref().set_read_timeout(None)?;
    Ok(connected)
}

/// Runs the client handshake over a transport you opened.
pub fn client<S: Read + Write>(
    mut stream: S,
    request: &ClientRequest,
    config: Config,
) -> Result<(WebSocket<S>, Response), Error> {
    let mut hs = ClientHandshake::new(request, config);
    stream.write_all(hs.request_bytes())?;
    stream.flush()?;
    let mut buf = [0u8; 4096];
    let response = loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Err(Error::AbnormalClosure),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(e)),
        };
        if let Status::Complete(response) = hs.receive(&buf[..n])? {
            break response.clone();
        }
    };
    let conn = hs.into_connection()?;
    Ok((WebSocket::from_connection(stream, conn), response))
}
