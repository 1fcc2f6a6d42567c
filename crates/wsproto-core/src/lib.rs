//! A sans-IO WebSocket (RFC 6455) implementation: bytes in, events out,
//! bytes out.
//!
//! This crate does no I/O. It never touches a socket, spawns a thread, reads
//! a clock or awaits a future. The caller owns the transport and the timers
//! and moves bytes and time between them and the state machine:
//!
//! 1. A handshake ([`ServerHandshake`] or [`ClientHandshake`]) is fed the
//!    peer's bytes until it has a complete request or response, then turns
//!    into a [`Connection`], carrying any bytes that followed the headers.
//! 2. [`Connection::receive`] takes bytes from the transport;
//!    [`Connection::poll_event`] hands out [`Event`]s (messages as zero-copy
//!    [`bytes::Bytes`], pings, pongs, close).
//! 3. [`Connection::send`], [`Connection::ping`], [`Connection::close`]
//!    queue frames; [`Connection::poll_transmit`] and
//!    [`Connection::advance`] move them to the transport.
//! 4. [`Connection::poll_timeout`] says when to call
//!    [`Connection::handle_timeout`] with the current time (keepalive pings,
//!    close-handshake timeout).
//!
//! Protocol violations become a [`ProtocolError`] that knows its close code;
//! the connection queues that close frame itself. Handshake failures become
//! a [`HandshakeError`] that knows its HTTP status and renders the response.
//!
//! # A whole server connection, bytes in and bytes out
//!
//! ```
//! use wsproto_core::{Accept, CloseCode, Config, Event, Message, ServerHandshake, State, Status};
//!
//! # fn client_bytes() -> Vec<u8> {
//! #     let mut v = b"GET /echo HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
//! #         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//! #         Sec-WebSocket-Version: 13\r\n\r\n".to_vec();
//! #     v.extend_from_slice(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
//! #     v.extend_from_slice(&[0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2]);
//! #     v
//! # }
//! // Whatever the socket delivered: here the request, a masked "Hello" the
//! // client pipelined right behind it, and a close frame with code 1000.
//! let from_socket: Vec<u8> = client_bytes();
//! let mut to_socket: Vec<u8> = Vec::new();
//!
//! let mut hs = ServerHandshake::new(Config::default());
//! let request = match hs.receive(&from_socket) {
//!     Ok(Status::Complete(request)) => request,
//!     Ok(Status::Partial) => unreachable!("read more and call receive again"),
//!     Err(e) => {
//!         to_socket.extend(e.response()); // 400, 405, 426 or 431
//!         return;
//!     }
//! };
//! assert_eq!(request.path(), "/echo");
//! let (response, mut conn) = hs.accept(Accept::default()).unwrap();
//! to_socket.extend(response);
//!
//! // The bytes after the request are already inside `conn`.
//! while let Some(event) = conn.poll_event().unwrap() {
//!     match event {
//!         Event::Message(msg) => conn.send(msg).unwrap(), // echo
//!         Event::Ping(_) | Event::Pong(_) => {}           // pongs are automatic
//!         Event::Close(frame) => assert_eq!(frame.code, CloseCode::Normal),
//!     }
//! }
//! while let Some(chunk) = conn.poll_transmit() {
//!     to_socket.extend_from_slice(chunk); // socket.write(chunk)
//!     let n = chunk.len();
//!     conn.advance(n);
//! }
//! // The echo and the close reply went out; the transport can be shut down.
//! assert_eq!(conn.state(), State::Closed);
//! assert!(to_socket.ends_with(&[0x81, 0x05, b'H', b'e', b'l', b'l', b'o', 0x88, 0x02, 0x03, 0xe8]));
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

extern crate alloc;

mod close;
#[cfg(feature = "deflate")]
mod compression;
mod config;
mod connection;
mod error;
pub mod frame;
pub mod handshake;
mod message;
mod random;
mod transmit;

pub use close::{CloseCode, CloseFrame, MAX_CLOSE_REASON};
pub use config::Config;
pub use connection::{Connection, Event, State};
pub use error::{Error, HandshakeError, ProtocolError};
pub use frame::{apply_mask, FrameHeader, OpCode, Role};
pub use handshake::{
    accept_key, render_response, Accept, ClientHandshake, ClientRequest, HttpVersion, Proxy,
    ProxyHandshake, Reject, Request, Response, ServerHandshake,
};
pub use message::{InvalidUtf8, Message, Utf8Bytes, Utf8Validator};
pub use random::{ChaChaSource, RandomSource};
pub use transmit::{Chunks, DirectSend};

/// The result of feeding input that may not be complete yet, as in `httparse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// More input is needed.
    Partial,
    /// Done, with the value.
    Complete(T),
}
