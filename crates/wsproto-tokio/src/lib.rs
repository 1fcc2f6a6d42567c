//! An async WebSocket adapter for tokio over the sans-IO
//! [`wsproto_core`] state machine.
//!
//! The adapter only moves bytes and time: the core parses, validates,
//! answers pings and closes; this crate reads and writes the transport and
//! runs the core's timers on tokio's clock.
//!
//! - Servers: [`accept`] or [`accept_with`] on any `AsyncRead + AsyncWrite`
//!   (a `TcpStream`, a TLS stream), or [`WebSocketStream::from_upgraded`]
//!   for IO that hyper or axum already upgraded.
//! - Clients: [`connect`] a `ws://` URL, or [`client`] over a transport
//!   you opened yourself.
//! - A [`WebSocketStream`] is a `Stream<Item = Result<Message, Error>>` and
//!   a `Sink<Message>`; [`WebSocketStream::split`] gives halves for two tasks.
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
mod stream;
pub mod tls;
#[cfg(feature = "hyper")]
pub mod upgrade;

pub use error::Error;
#[cfg(feature = "rustls")]
pub use handshake::connect_tls;
pub use handshake::{accept, accept_with, client, connect, connect_with, Connected};
pub use stream::{WebSocketStream, WsReader, WsWriter};
pub use tls::MaybeTlsStream;
pub use wsproto_core::handshake::{DeflateConfig, DeflateParams};
pub use wsproto_core::{
    Accept, ClientRequest, CloseCode, CloseFrame, Config, Event, Message, Reject, Request,
    Response, Role, State, Utf8Bytes,
};
