//! The adapter's error: transport, protocol, handshake, or the end.

use std::fmt;
use std::io;

use wsproto_core::{CloseCode, CloseFrame, HandshakeError};

/// What can go wrong on a blocking WebSocket.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed. On a non-blocking socket, `WouldBlock` lands
    /// here and loses nothing: call the same method again when ready.
    Io(io::Error),
    /// The protocol failed: the peer broke RFC 6455 (the matching close
    /// frame was sent before this was returned), keepalive timed out, or the
    /// application sent after closing.
    Protocol(wsproto_core::Error),
    /// The opening handshake failed (for a server, the HTTP error response
    /// has been written).
    Handshake(HandshakeError),
    /// The close handshake is complete; holds the peer's close frame if one
    /// arrived. Not a failure: the normal end of a connection.
    ConnectionClosed(Option<CloseFrame>),
    /// The peer closed the transport without a close frame (close code 1006).
    AbnormalClosure,
    /// The URL asks for something this build cannot do, such as `wss://`.
    Unsupported(&'static str),
}

impl Error {
    /// Whether this is a `WouldBlock` from a non-blocking socket.
    pub fn is_would_block(&self) -> bool {
        matches!(self, Error::Io(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// The close code that describes this error, if it has one.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Error::Protocol(e) => e.close_code(),
            Error::ConnectionClosed(frame) => frame.as_ref().map(|f| f.code),
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
            Error::ConnectionClosed(Some(frame)) => {
                write!(f, "connection closed: {} {}", frame.code, frame.reason)
            }
            Error::ConnectionClosed(None) => f.write_str("connection closed"),
            Error::AbnormalClosure => {
                f.write_str("the peer closed the connection without a close frame")
            }
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
