//! An async WebSocket adapter for tokio over the sans-IO
//! [`wsproto_core`] state machine.
//!
//! The adapter only moves bytes and time: the core parses, validates,
//! answers pings and closes; this crate reads and writes the transport and
//! runs the core's timers on tokio's clock.
//!
//! - Servers: [`accept`] or [`accept_with`] on any `AsyncRead + AsyncWrite`
//!   (a `TcpStream`, a `tokio_rustls` server stream), or, inside hyper and
//!   axum, `upgrade::Upgrade` (feature `hyper`/`axum`) for HTTP/1.1 and
//!   HTTP/2 (RFC 8441) upgrades.
//! - Clients: [`connect`] a `ws://` or, with the feature `rustls`, `wss://`
//!   URL; `connect_tls` with your own rustls configuration;
//!   `upgrade::connect_h2` for WebSockets as streams of one HTTP/2
//!   connection; [`client`] over a transport you opened yourself.
//! - A [`WebSocketStream`] is a `Stream<Item = Result<Message, Error>>` and
//!   a `Sink<Message>`; [`WebSocketStream::split`] gives halves for two tasks.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `deflate` | yes | permessage-deflate (RFC 7692), offered by clients and accepted by servers per `Config::deflate` |
//! | `hyper` | no | the `upgrade` module: hyper servers over HTTP/1.1 and HTTP/2, `connect_h2` |
//! | `axum` | no | `upgrade::Upgrade` as an axum extractor |
//! | `rustls` | no | `wss://` in [`connect`] (webpki roots) and `connect_tls` |
//! | `rustls-native-roots` | no | `wss://` checked against the operating system's roots |
//!
//! # An echo server
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt};
//! use tokio::net::TcpListener;
//!
//! # async fn run() -> std::io::Result<()> {
//! let listener = TcpListener::bind("127.0.0.1:9001").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     tokio::spawn(async move {
//!         let Ok(mut ws) = wsproto_tokio::accept(tcp).await else { return };
//!         while let Some(Ok(message)) = ws.next().await {
//!             if ws.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     });
//! }
//! # }
//! ```
#![deny(missing_docs)]

mod error;
mod handshake;
mod shutdown;
mod stream;
pub mod tls;
#[cfg(feature = "hyper")]
pub mod upgrade;

pub use error::Error;
#[cfg(feature = "rustls")]
pub use handshake::connect_tls;
pub use handshake::{accept, accept_with, client, connect, connect_with, Connected};
pub use shutdown::{Shutdown, ShutdownReport};
pub use stream::{WebSocketStream, WsReader, WsWriter};
pub use tls::MaybeTlsStream;
pub use wsproto_core::handshake::{DeflateConfig, DeflateParams};
pub use wsproto_core::{
    Accept, ClientRequest, CloseCode, CloseFrame, Config, Event, Message, Proxy, Reject, Request,
    Response, Role, State, Utf8Bytes,
};
