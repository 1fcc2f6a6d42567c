//! Typed errors: protocol violations know their close code, handshake
//! failures know their HTTP response.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::close::CloseCode;

/// A violation of RFC 6455 by the peer.
///
/// The connection has already queued a close frame with
/// [`close_code`](ProtocolError::close_code) when it reports one of these;
/// the caller only flushes the outgoing bytes and shuts the transport down.
///
/// ```
/// use wsproto_core::{CloseCode, ProtocolError};
/// assert_eq!(ProtocolError::InvalidUtf8.close_code(), CloseCode::InvalidPayload);
/// assert_eq!(ProtocolError::MessageTooLarge { limit: 10 }.close_code(), CloseCode::TooBig);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A server received a frame without a masking key.
    UnmaskedFrame,
    /// A client received a masked frame.
    MaskedFrame,
    /// RSV bits set without an extension that defines them.
    ReservedBits(u8),
    /// An opcode reserved for future use (3-7, 11-15).
    ReservedOpcode(u8),
    /// A 64-bit payload length with the most significant bit set.
    InvalidLength,
    /// A control frame with more than 125 bytes of payload.
    ControlFrameTooLong(u64),
    /// A control frame without FIN.
    FragmentedControlFrame,
    /// A continuation frame with no message to continue.
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is unfinished.
    ExpectedContinuation,
    /// A close frame with a 1-byte payload.
    InvalidCloseLength,
    /// A close frame with a code that may not appear on the wire.
    InvalidCloseCode(u16),
    /// Invalid UTF-8 in a text message.
    InvalidUtf8,
    /// Invalid UTF-8 in a close reason.
    InvalidCloseReason,
    /// A frame larger than `Config::max_frame_size`.
    FrameTooLarge {
        /// The declared payload length.
        len: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A message larger than `Config::max_message_size`.
    MessageTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// A message in more fragments than `Config::max_fragments`.
    TooManyFragments {
        /// The configured limit.
        limit: usize,
    },
    /// A compressed message (permessage-deflate) that does not inflate.
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code this violation is answered with.
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8
            | ProtocolError::InvalidCloseReason
            | ProtocolError::InvalidCompressedData => CloseCode::InvalidPayload,
            ProtocolError::FrameTooLarge { .. }
            | ProtocolError::MessageTooLarge { .. }
            | ProtocolError::TooManyFragments { .. } => CloseCode::TooBig,
            _ => CloseCode::Protocol,
        }
    }

    /// A short reason suitable for the close frame.
    pub fn reason(&self) -> &'static str {
        match self {
            ProtocolError::UnmaskedFrame => "unmasked client frame",
            ProtocolError::MaskedFrame => "masked server frame",
            ProtocolError::ReservedBits(_) => "reserved bits set",
            ProtocolError::ReservedOpcode(_) => "reserved opcode",
            ProtocolError::InvalidLength => "invalid payload length",
            ProtocolError::ControlFrameTooLong(_) => "control frame too long",
            ProtocolError::FragmentedControlFrame => "fragmented control frame",
            ProtocolError::UnexpectedContinuation => "unexpected continuation frame",
            ProtocolError::ExpectedContinuation => "expected continuation frame",
            ProtocolError::InvalidCloseLength => "invalid close payload",
            ProtocolError::InvalidCloseCode(_) => "invalid close code",
            ProtocolError::InvalidUtf8 => "invalid UTF-8 in text",
            ProtocolError::InvalidCloseReason => "invalid UTF-8 in close reason",
            ProtocolError::FrameTooLarge { .. } => "frame too large",
            ProtocolError::MessageTooLarge { .. } => "message too large",
            ProtocolError::TooManyFragments { .. } => "too many fragments",
            ProtocolError::InvalidCompressedData => "invalid compressed data",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedBits(bits) => write!(f, "reserved bits set: {bits:#05b}"),
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::ControlFrameTooLong(len) => {
                write!(f, "control frame of {len} bytes (at most 125)")
            }
            ProtocolError::InvalidCloseCode(code) => write!(f, "close code {code} not allowed"),
            ProtocolError::FrameTooLarge { len, limit } => {
                write!(f, "frame of {len} bytes exceeds the limit of {limit}")
            }
            ProtocolError::MessageTooLarge { limit } => {
                write!(f, "message exceeds the limit of {limit} bytes")
            }
            ProtocolError::TooManyFragments { limit } => {
                write!(f, "message exceeds the limit of {limit} fragments")
            }
            other => f.write_str(other.reason()),
        }?;
        write!(f, " (close code {})", self.close_code())
    }
}

/// An error from a [`Connection`](crate::Connection).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke the protocol; a close frame with the matching code is
    /// queued and the connection is closing.
    Protocol(ProtocolError),
    /// Keepalive is on and nothing arrived within `ping_timeout` of a
    /// ping: the peer is gone. No close frame is sent; drop the transport.
    KeepaliveTimeout,
    /// The connection is closing or closed: nothing more may be sent.
    Closed,
    /// A ping or pong payload over 125 bytes.
    ControlPayloadTooLong(usize),
    /// A close code that an application may not send (1005, 1006, 1015,
    /// reserved ranges).
    InvalidCloseCode(u16),
    /// A close reason over 123 bytes.
    CloseReasonTooLong(usize),
    /// More than `Config::max_write_buffer` bytes are waiting to be written:
    /// flush before sending more.
    WriteBufferFull {
        /// The configured limit.
        limit: usize,
    },
}

impl Error {
    /// The close code the connection sent because of this error, if any.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Error::Protocol(e) => Some(e.close_code()),
            _ => None,
        }
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Error {
        Error::Protocol(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(e) => write!(f, "protocol error: {e}"),
            Error::KeepaliveTimeout => {
                f.write_str("keepalive timeout: the peer stopped responding")
            }
            Error::Closed => f.write_str("the connection is closing or closed"),
            Error::ControlPayloadTooLong(n) => {
                write!(f, "control frame payload of {n} bytes (at most 125)")
            }
            Error::InvalidCloseCode(code) => write!(f, "close code {code} may not be sent"),
            Error::CloseReasonTooLong(n) => write!(f, "close reason of {n} bytes (at most 123)"),
            Error::WriteBufferFull { limit } => {
                write!(f, "outgoing buffer above its limit of {limit} bytes")
            }
        }
    }
}

/// Why an opening handshake failed.
///
/// On the server side each variant maps to an HTTP status and
/// [`response`](HandshakeError::response) renders the complete reply.
///
/// ```
/// use wsproto_core::HandshakeError;
/// let err = HandshakeError::UnsupportedVersion;
/// assert_eq!(err.status(), 426);
/// let reply = String::from_utf8(err.response()).unwrap();
/// assert!(reply.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
/// assert!(reply.contains("Sec-WebSocket-Version: 13\r\n"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The header block exceeds `Config::max_header_size` or has more than
    /// `Config::max_headers` lines (431).
    HeadersTooLarge,
    /// The HTTP message could not be parsed (400; a client reports it as is).
    Malformed(&'static str),
    /// The request method is not GET (405).
    MethodNotAllowed,
    /// Not HTTP/1.1 (400).
    HttpVersion,
    /// A required header is missing or wrong (400). Holds the header name.
    InvalidHeader(&'static str),
    /// `Sec-WebSocket-Version` is not 13 (426).
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` is not base64 of 16 bytes (400).
    InvalidKey,
    /// The application accepted with a subprotocol the client did not offer,
    /// or an extra header that cannot be sent (500).
    InvalidAccept(&'static str),
    /// The application rejected the request with this status.
    Rejected(u16),
    /// Client: the URL is not a valid `ws://` or `wss://` URL.
    InvalidUrl(&'static str),
    /// Client: the server answered with a status other than 101.
    UnexpectedStatus(u16),
    /// Client: `Sec-WebSocket-Accept` does not match our key.
    AcceptMismatch,
    /// Client: the server chose a subprotocol we did not offer.
    UnexpectedSubprotocol(String),
    /// Client: the server enabled an extension we did not offer.
    UnexpectedExtension(String),
    /// Client: the server accepted permessage-deflate with parameters our
    /// offer does not allow.
    InvalidDeflateResponse(crate::handshake::DeflateResponseError),
    /// Client: a proxy URL (given, or from the environment) that cannot be
    /// used: not `http://host:port`, or with credentials that do not decode.
    InvalidProxyUrl(&'static str),
    /// Client: the proxy answered CONNECT with 407 Proxy Authentication
    /// Required.
    ProxyAuthRequired {
        /// Whether we sent credentials (then the proxy refused them).
        credentials_sent: bool,
    },
    /// Client: the proxy answered CONNECT with this status instead of a
    /// 2xx (a 502 when it cannot reach the server, a 403 when its rules
    /// forbid the target).
    ProxyRefused(u16),
    /// Client: the proxy's answer to CONNECT is not an HTTP response, is
    /// larger than 8 KiB, or never came.
    ProxyResponse(&'static str),
}

impl HandshakeError {
    /// The HTTP status a server answers this failure with.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::HeadersTooLarge => 431,
            HandshakeError::MethodNotAllowed => 405,
            HandshakeError::UnsupportedVersion => 426,
            HandshakeError::InvalidAccept(_) => 500,
            HandshakeError::Rejected(status) => *status,
            _ => 400,
        }
    }

    /// The headers RFC 6455 and HTTP ask for beside this failure's status:
    /// `Sec-WebSocket-Version: 13` with 426, `Allow: GET` with 405.
    ///
    /// ```
    /// use wsproto_core::HandshakeError;
    /// assert_eq!(HandshakeError::UnsupportedVersion.response_headers(), [("Sec-WebSocket-Version", "13")]);
    /// assert!(HandshakeError::InvalidKey.response_headers().is_empty());
    /// ```
    pub fn response_headers(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            HandshakeError::UnsupportedVersion => &[("Sec-WebSocket-Version", "13")],
            HandshakeError::MethodNotAllowed => &[("Allow", "GET")],
            _ => &[],
        }
    }

    /// The complete HTTP response a server sends for this failure: the
    /// status, [`response_headers`](Self::response_headers) and the reason
    /// as the body.
    pub fn response(&self) -> Vec<u8> {
        let body = alloc::format!("{self}\n");
        crate::handshake::server::render_response(
            self.status(),
            self.response_headers(),
            body.as_bytes(),
        )
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::HeadersTooLarge => f.write_str("request header fields too large"),
            HandshakeError::Malformed(what) => write!(f, "malformed HTTP message: {what}"),
            HandshakeError::MethodNotAllowed => f.write_str("a WebSocket handshake must be a GET"),
            HandshakeError::HttpVersion => f.write_str("a WebSocket handshake needs HTTP/1.1"),
            HandshakeError::InvalidHeader(name) => write!(f, "missing or invalid {name} header"),
            HandshakeError::UnsupportedVersion => {
                f.write_str("unsupported Sec-WebSocket-Version (only 13 is supported)")
            }
            HandshakeError::InvalidKey => {
                f.write_str("Sec-WebSocket-Key must be base64 of 16 bytes")
            }
            HandshakeError::InvalidAccept(what) => write!(f, "cannot accept: {what}"),
            HandshakeError::Rejected(status) => write!(f, "rejected with status {status}"),
            HandshakeError::InvalidUrl(what) => write!(f, "invalid WebSocket URL: {what}"),
            HandshakeError::UnexpectedStatus(status) => {
                write!(f, "server answered {status} instead of 101")
            }
            HandshakeError::AcceptMismatch => f.write_str("Sec-WebSocket-Accept does not match"),
            HandshakeError::UnexpectedSubprotocol(p) => {
                write!(f, "server chose subprotocol {p:?} that was not offered")
            }
            HandshakeError::UnexpectedExtension(e) => {
                write!(f, "server enabled extension {e:?} that was not offered")
            }
            HandshakeError::InvalidDeflateResponse(e) => {
                write!(f, "server's permessage-deflate response refused: {e}")
            }
            HandshakeError::InvalidProxyUrl(what) => write!(f, "invalid proxy URL: {what}"),
            HandshakeError::ProxyAuthRequired {
                credentials_sent: false,
            } => f.write_str(
                "the proxy requires authentication (407): \
                 give credentials as http://user:password@host:port",
            ),
            HandshakeError::ProxyAuthRequired {
                credentials_sent: true,
            } => f.write_str("the proxy refused our credentials (407)"),
            HandshakeError::ProxyRefused(status) => {
                write!(f, "the proxy refused the tunnel with status {status}")
            }
            HandshakeError::ProxyResponse(what) => {
                write!(f, "invalid answer from the proxy: {what}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ProtocolError {}
#[cfg(feature = "std")]
impl std::error::Error for Error {}
#[cfg(feature = "std")]
impl std::error::Error for HandshakeError {}
