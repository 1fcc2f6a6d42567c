//! Close codes (RFC 6455 section 7.4) and the close frame payload.

use core::fmt;

use crate::message::Utf8Bytes;

/// A close status code.
///
/// Any `u16` can be represented, but only some may appear on the wire:
/// see [`CloseCode::is_valid_on_wire`].
///
/// ```
/// use wsproto_core::CloseCode;
/// assert_eq!(u16::from(CloseCode::Normal), 1000);
/// assert_eq!(CloseCode::from(1009), CloseCode::TooBig);
/// assert!(CloseCode::from(4000).is_valid_on_wire());
/// assert!(!CloseCode::NoStatus.is_valid_on_wire());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    Normal,
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    Away,
    /// 1002: the peer broke the protocol.
    Protocol,
    /// 1003: a data type the endpoint cannot accept.
    Unsupported,
    /// 1005: no status code was present. Never sent on the wire.
    NoStatus,
    /// 1006: the connection dropped without a close frame. Never sent on the wire.
    Abnormal,
    /// 1007: message data inconsistent with its type (invalid UTF-8 in text).
    InvalidPayload,
    /// 1008: a message that violates the endpoint's policy.
    Policy,
    /// 1009: a message too big to process.
    TooBig,
    /// 1010: the client expected the server to negotiate an extension.
    MandatoryExtension,
    /// 1011: an unexpected condition on the server.
    Internal,
    /// 1012: the service is restarting.
    Restart,
    /// 1013: try again later.
    TryAgainLater,
    /// 1014: a gateway received an invalid response upstream.
    BadGateway,
    /// 1015: the TLS handshake failed. Never sent on the wire.
    Tls,
    /// Any other code; 3000-3999 are registered, 4000-4999 are private use.
    Other(u16),
}

impl CloseCode {
    /// Whether this code may be sent in a close frame.
    ///
    /// Allowed: 1000-1003, 1007-1014 and 3000-4999. Not allowed: 1004-1006,
    /// 1015, anything below 1000, the unassigned rest of 1000-2999, and 5000 up.
    pub fn is_valid_on_wire(self) -> bool {
        matches!(u16::from(self), 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> CloseCode {
        match code {
            1000 => CloseCode::Normal,
            1001 => CloseCode::Away,
            1002 => CloseCode::Protocol,
            1003 => CloseCode::Unsupported,
            1005 => CloseCode::NoStatus,
            1006 => CloseCode::Abnormal,
            1007 => CloseCode::InvalidPayload,
            1008 => CloseCode::Policy,
            1009 => CloseCode::TooBig,
            1010 => CloseCode::MandatoryExtension,
            1011 => CloseCode::Internal,
            1012 => CloseCode::Restart,
            1013 => CloseCode::TryAgainLater,
            1014 => CloseCode::BadGateway,
            1015 => CloseCode::Tls,
            other => CloseCode::Other(other),
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        match code {
            CloseCode::Normal => 1000,
            CloseCode::Away => 1001,
            CloseCode::Protocol => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::NoStatus => 1005,
            CloseCode::Abnormal => 1006,
            CloseCode::InvalidPayload => 1007,
            CloseCode::Policy => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::MandatoryExtension => 1010,
            CloseCode::Internal => 1011,
            CloseCode::Restart => 1012,
            CloseCode::TryAgainLater => 1013,
            CloseCode::BadGateway => 1014,
            CloseCode::Tls => 1015,
            CloseCode::Other(code) => code,
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", u16::from(*self))
    }
}

/// The content of a close frame: a code and a UTF-8 reason.
///
/// A close frame received without a payload is reported with
/// [`CloseCode::NoStatus`] and an empty reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, at most 123 bytes of UTF-8.
    pub reason: Utf8Bytes,
}

/// Longest close reason that fits a control frame after the 2-byte code.
pub const MAX_CLOSE_REASON: usize = 123;
