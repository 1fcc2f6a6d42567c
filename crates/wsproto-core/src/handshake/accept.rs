//! `Sec-WebSocket-Accept` from `Sec-WebSocket-Key` (RFC 6455 section 4.2.2).

use alloc::string::String;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The GUID every WebSocket server appends to the client's key.
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// base64(SHA-1(key + GUID)): the value of `Sec-WebSocket-Accept`.
///
/// ```
/// // The example from RFC 6455 section 1.3.
/// assert_eq!(
///     wsproto_core::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key);
    sha1.update(WEBSOCKET_GUID.as_bytes());
    STANDARD.encode(sha1.digest().bytes())
}
