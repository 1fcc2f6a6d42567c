//! The opening handshake, both sides (RFC 6455 section 4).

mod accept;
pub(crate) mod client;
mod deflate;
mod negotiate;
mod proxy;
pub(crate) mod server;

pub use accept::{accept_key, WEBSOCKET_GUID};
pub use client::{ClientHandshake, ClientRequest, Response};
pub use deflate::{
    DeflateAgreement, DeflateConfig, DeflateParams, DeflateResponseError, PERMESSAGE_DEFLATE,
};
pub use negotiate::{has_token, parse_extensions, Extension};
pub use proxy::{Proxy, ProxyHandshake};
pub use server::{render_response, Accept, HttpVersion, Reject, Request, ServerHandshake};

use alloc::string::String;
use alloc::vec::Vec;

/// A header as received: the name as sent and the raw value.
pub type Header = (String, Vec<u8>);

/// Looks up a header by name, ignoring case; the first one wins.
pub(crate) fn find_header<'a>(headers: &'a [Header], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// All values of a header joined as one comma list (RFC 9110 section 5.3).
pub(crate) fn joined_header(headers: &[Header], name: &str) -> Option<String> {
    let mut joined: Option<String> = None;
    for (n, v) in headers {
        if n.eq_ignore_ascii_case(name) {
            let v = core::str::from_utf8(v).ok()?;
            match &mut joined {
                Some(j) => {
                    j.push_str(", ");
                    j.push_str(v);
                }
                None => joined = Some(String::from(v)),
            }
        }
    }
    joined
}

/// Accumulates an HTTP head until its terminating blank line, within a
/// size limit, remembering how far it has scanned so that input arriving a
/// byte at a time costs linear time overall.
#[derive(Debug, Default)]
pub(crate) struct HeadBuffer {
    pub(crate) buf: bytes::BytesMut,
    scanned: usize,
}

impl HeadBuffer {
    /// Appends `data`; returns the length of the head once it is complete.
    pub(crate) fn push(
        &mut self,
        data: &[u8],
        max: usize,
    ) -> Result<Option<usize>, crate::HandshakeError> {
        self.buf.extend_from_slice(data);
        match find_head_end(&self.buf, self.scanned) {
            Some(end) if end <= max => Ok(Some(end)),
            Some(_) => Err(crate::HandshakeError::HeadersTooLarge),
            None if self.buf.len() > max => Err(crate::HandshakeError::HeadersTooLarge),
            None => {
                self.scanned = self.buf.len();
                Ok(None)
            }
        }
    }
}

/// Finds the end of an HTTP head: an empty line, ended by CRLF or (leniently,
/// as RFC 9112 section 2.2 allows) a bare LF. Scans from `from`, backing up
/// far enough to see a terminator that straddles the previous input.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(2);
    let tail = buf.get(start..)?;
    for (i, &b) in tail.iter().enumerate() {
        if b != b'\n' {
            continue;
        }
        match tail.get(i + 1..) {
            Some([b'\n', ..]) => return Some(start + i + 2),
            Some([b'\r', b'\n', ..]) => return Some(start + i + 3),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_found_at_any_split() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        for cut in 0..head.len() {
            let mut hb = HeadBuffer::default();
            let first = hb.push(&head[..cut], 1024).unwrap();
            let end = match first {
                Some(end) => end,
                None => hb.push(&head[cut..], 1024).unwrap().unwrap(),
            };
            assert_eq!(end, head.len() - 4, "cut {cut}");
        }
        assert_eq!(find_head_end(b"GET / HTTP/1.1\nHost: a\n\n", 0), Some(24));
    }

    #[test]
    fn head_over_limit() {
        let mut hb = HeadBuffer::default();
        assert!(hb.push(&[b'a'; 100], 64).is_err());
    }
}
