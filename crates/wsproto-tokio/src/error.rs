//! The adapter's error: transport, protocol or handshake.

use std::fmt;
use std::io;

use wsproto_core::{CloseCode, HandshakeError};

/// What can go wrong on a WebSocket driven by this adapter.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    Io(io::Error),
    /// The protocol failed: the peer broke RFC 6455 (the matching close frame
    /// was sent before this error was returned), keepalive timed out, or the
    /// application sent after closing.
    Protocol(wsproto_core::Error),
    /// The opening handshake failed (for a server, the HTTP error response
    /// has been written).
    Handshake(HandshakeError),
    /// The peer closed the transport without a close frame (close code 1006).
    AbnormalClosure,
    /// The opening handshake did not complete within
    /// `Config::handshake_timeout`; the transport was dropped.
    HandshakeTimeout,
    /// The URL asks for something this build cannot do (such as `wss://`
    /// without TLS support).
    Unsupported(&'static str),
}

impl Error {
    /// The close code that describes this error, if it has one: the code we
    /// sent for a protocol violation, or 1006 for an abnormal closure.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Error::Protocol(e) => e.close_code(),
            Error::AbnormalClosure => Some(CloseCode::Abnormal),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Protocol(e) => write!(f, "WebSocket error: {e}"),
            Error::Handshake(e) => write!(f, "handshake failed: {e}"),
            Error::AbnormalClosure => {
                f.write_str("the peer closed the connection without a close frame")
            }
            Error::HandshakeTimeout => f.write_str("the opening handshake timed out"),
            Error::Unsupported(what) => write!(f, "unsupported: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Protocol(e) => Some(e),
            Error::Handshake(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<wsproto_core::Error> for Error {
    fn from(e: wsproto_core::Error) -> Error {
        Error::Protocol(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Error {
        Error::Handshake(e)
    }
}
