//! Header values made of comma-separated tokens: `Connection`, `Upgrade`,
//! `Sec-WebSocket-Protocol` and `Sec-WebSocket-Extensions`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// One extension offered or accepted in `Sec-WebSocket-Extensions`, such as
/// `permessage-deflate; client_max_window_bits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// The extension's name, as sent.
    pub name: String,
    /// Its parameters in order, each with its value if it has one (quotes removed).
    pub params: Vec<(String, Option<String>)>,
}

/// Splits a comma-separated header value into trimmed, non-empty items.
pub(crate) fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// Whether a comma-separated header value (such as `Connection` or
/// `Upgrade`) contains `token`, ignoring case.
///
/// ```
/// use wsproto_core::handshake::has_token;
/// assert!(has_token(b"keep-alive, Upgrade", "upgrade"));
/// assert!(!has_token(b"h2c", "websocket"));
/// ```
pub fn has_token(value: &[u8], token: &str) -> bool {
    core::str::from_utf8(value)
        .map(|v| split_list(v).any(|item| item.eq_ignore_ascii_case(token)))
        .unwrap_or(false)
}

/// Parses `Sec-WebSocket-Extensions` into its extensions, in order.
///
/// ```
/// use wsproto_core::handshake::parse_extensions;
/// let exts = parse_extensions("permessage-deflate; client_max_window_bits; server_max_window_bits=\"10\", x-foo");
/// assert_eq!(exts[0].name, "permessage-deflate");
/// assert_eq!(exts[0].params[1], ("server_max_window_bits".into(), Some("10".into())));
/// assert_eq!(exts[1].name, "x-foo");
/// ```
pub fn parse_extensions(value: &str) -> Vec<Extension> {
    split_list(value)
        .filter_map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let name = parts.next().filter(|n| !n.is_empty())?.to_string();
            let params = parts
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (
                        k.trim().to_string(),
                        Some(v.trim().trim_matches('"').to_string()),
                    ),
                    None => (p.to_string(), None),
                })
                .collect();
            Some(Extension { name, params })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_case_insensitive_in_lists() {
        assert!(has_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(has_token(b"UPGRADE", "upgrade"));
        assert!(!has_token(b"upgrades", "upgrade"));
        assert!(!has_token(b"", "upgrade"));
        assert!(!has_token(b"\xff", "upgrade"));
    }
}
