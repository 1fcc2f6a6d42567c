//! Negotiating permessage-deflate (RFC 7692 section 7.1): what a client
//! offers, which offer a server accepts and with what parameters, and
//! whether a server's response is one the client may accept.
//!
//! Only the handshake side lives here; compressing and inflating messages
//! with the negotiated [`DeflateParams`] is the connection's job.

use alloc::format;
use alloc::string::String;

use super::negotiate::Extension;

/// The extension's registered name.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// permessage-deflate settings: what this endpoint allows or asks for when
/// negotiating, and how it compresses once agreed.
///
/// Window sizes are base-2 logarithms, 9 to 15 in this configuration. A peer
/// may still ask for 8 for our side: zlib cannot compress with an 8-bit
/// window (it silently uses 9, which could emit distances the peer cannot
/// resolve), so we agree and then send every message uncompressed, which
/// RFC 7692 allows. Inflating a peer's 8-bit stream needs nothing special.
///
/// ```
/// use wsproto_core::handshake::DeflateConfig;
/// let config = DeflateConfig { server_max_window_bits: 12, ..DeflateConfig::default() };
/// assert_eq!(
///     config.client_offer(),
///     "permessage-deflate; client_max_window_bits; server_max_window_bits=12"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// The server resets its compression context after every message.
    /// A client asks for it; a server imposes it on itself. Default `false`.
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after every message.
    /// A client offers it; a server may impose it. Default `false`.
    pub client_no_context_takeover: bool,
    /// Largest LZ77 window the server compresses with, 9 to 15. Default 15.
    pub server_max_window_bits: u8,
    /// Largest LZ77 window the client compresses with, 9 to 15. Default 15.
    pub client_max_window_bits: u8,
    /// zlib compression level for outgoing messages, 0 (stored) to 9
    /// (smallest). Default 6, zlib's own default.
    pub compression_level: u8,
    /// Messages shorter than this many bytes are sent uncompressed: below
    /// it, the deflate block overhead outweighs what compression saves.
    /// Default 64.
    pub compression_threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> DeflateConfig {
        DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            compression_level: 6,
            compression_threshold: 64,
        }
    }
}

/// A server's acceptance of one permessage-deflate offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateAgreement {
    /// The parameters both sides now use.
    pub params: DeflateParams,
    /// The `Sec-WebSocket-Extensions` value of the `101` response.
    pub response: String,
}

/// The parameters both sides agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compression context after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after every message.
    pub client_no_context_takeover: bool,
    /// The window the server compresses with, 8 to 15 (with 8 the server
    /// sends uncompressed messages only).
    pub server_max_window_bits: u8,
    /// The window the client compresses with, 8 to 15 (with 8 the client
    /// sends uncompressed messages only).
    pub client_max_window_bits: u8,
}

/// Why a server's permessage-deflate response cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeflateResponseError {
    /// A parameter RFC 7692 does not define.
    UnknownParameter(String),
    /// A parameter given twice.
    DuplicateParameter(String),
    /// A parameter with a missing, malformed or out-of-range value.
    InvalidValue(String),
    /// `client_max_window_bits` larger than offered, or
    /// `server_max_window_bits` larger than asked for.
    WindowLargerThanOffered(String),
    /// The response names another extension.
    NotPermessageDeflate(String),
}

impl core::fmt::Display for DeflateResponseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DeflateResponseError::UnknownParameter(p) => write!(f, "unknown parameter {p}"),
            DeflateResponseError::DuplicateParameter(p) => write!(f, "parameter {p} given twice"),
            DeflateResponseError::InvalidValue(p) => write!(f, "invalid value for {p}"),
            DeflateResponseError::WindowLargerThanOffered(p) => {
                write!(f, "{p} larger than offered")
            }
            DeflateResponseError::NotPermessageDeflate(name) => {
                write!(f, "{name} is not permessage-deflate")
            }
        }
    }
}

/// The parameters of one offer or response, each checked for being known,
/// single and well-formed.
#[derive(Debug, Default)]
struct Parsed {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: the parameter without a value (allowed in offers only).
    client_max_window_bits: Option<Option<u8>>,
}

fn window_bits(value: &Option<String>) -> Option<u8> {
    let value = value.as_deref()?;
    if value.is_empty() || value.len() > 2 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

fn parse(ext: &Extension) -> Result<Parsed, DeflateResponseError> {
    let mut parsed = Parsed::default();
    let mut seen = [false; 4];
    for (name, value) in &ext.params {
        let lower = name.to_ascii_lowercase();
        let index = match lower.as_str() {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return Err(DeflateResponseError::UnknownParameter(name.clone())),
        };
        if let Some(slot) = seen.get_mut(index) {
            if *slot {
                return Err(DeflateResponseError::DuplicateParameter(name.clone()));
            }
            *slot = true;
        }
        let invalid = || DeflateResponseError::InvalidValue(name.clone());
        match index {
            0 | 1 if value.is_some() => return Err(invalid()),
            0 => parsed.server_no_context_takeover = true,
            1 => parsed.client_no_context_takeover = true,
            2 => parsed.server_max_window_bits = Some(window_bits(value).ok_or_else(invalid)?),
            _ => {
                parsed.client_max_window_bits = Some(match value {
                    None => None,
                    Some(_) => Some(window_bits(value).ok_or_else(invalid)?),
                })
            }
        }
    }
    Ok(parsed)
}

fn is_deflate(ext: &Extension) -> bool {
    ext.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE)
}

fn clamp_bits(bits: u8) -> u8 {
    bits.clamp(9, 15)
}

fn render(params: &DeflateParams, client_bits: bool, server_bits: bool) -> String {
    let mut out = String::from(PERMESSAGE_DEFLATE);
    if params.server_no_context_takeover {
        out.push_str("; server_no_context_takeover");
    }
    if params.client_no_context_takeover {
        out.push_str("; client_no_context_takeover");
    }
    if server_bits {
        out.push_str(&format!(
            "; server_max_window_bits={}",
            params.server_max_window_bits
        ));
    }
    if client_bits {
        out.push_str(&format!(
            "; client_max_window_bits={}",
            params.client_max_window_bits
        ));
    }
    out
}

impl DeflateConfig {
    /// The `Sec-WebSocket-Extensions` value a client sends: one offer that
    /// lets the server choose our window (`client_max_window_bits`, with a
    /// value when ours is below 15) and asks for what this config sets.
    pub fn client_offer(&self) -> String {
        let mut out = String::from(PERMESSAGE_DEFLATE);
        if self.server_no_context_takeover {
            out.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            out.push_str("; client_no_context_takeover");
        }
        let client_bits = clamp_bits(self.client_max_window_bits);
        if client_bits < 15 {
            out.push_str(&format!("; client_max_window_bits={client_bits}"));
        } else {
            out.push_str("; client_max_window_bits");
        }
        let server_bits = clamp_bits(self.server_max_window_bits);
        if server_bits < 15 {
            out.push_str(&format!("; server_max_window_bits={server_bits}"));
        }
        out
    }

    /// The server's choice: the first permessage-deflate offer in `offers`
    /// this config can honour, with the response header value to send.
    /// `None` when there is no such offer (the connection then goes on
    /// without compression). Offers with unknown, repeated or malformed
    /// parameters are skipped, as RFC 7692 section 5 asks.
    ///
    /// ```
    /// use wsproto_core::handshake::{parse_extensions, DeflateConfig};
    /// // Chromium's offer.
    /// let offers = parse_extensions("permessage-deflate; client_max_window_bits");
    /// let agreed = DeflateConfig::default().accept_offer(&offers).unwrap();
    /// assert_eq!(agreed.response, "permessage-deflate");
    /// assert_eq!(agreed.params.client_max_window_bits, 15);
    /// ```
    pub fn accept_offer(&self, offers: &[Extension]) -> Option<DeflateAgreement> {
        offers
            .iter()
            .filter(|ext| is_deflate(ext))
            .find_map(|ext| self.accept_one(ext))
    }

    fn accept_one(&self, ext: &Extension) -> Option<DeflateAgreement> {
        let offer = parse(ext).ok()?;
        let ours = clamp_bits(self.server_max_window_bits);
        let server_max_window_bits = match offer.server_max_window_bits {
            // 8 is agreed to; the connection then sends uncompressed.
            Some(asked) => asked.min(ours),
            None => ours,
        };
        let client_max_window_bits = match offer.client_max_window_bits {
            // The client did not say it can limit its window: it uses 15.
            None => 15,
            Some(limit) => limit
                .unwrap_or(15)
                .min(clamp_bits(self.client_max_window_bits)),
        };
        let params = DeflateParams {
            server_no_context_takeover: offer.server_no_context_takeover
                || self.server_no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover
                || self.client_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
        };
        let server_bits = offer.server_max_window_bits.is_some() || server_max_window_bits < 15;
        let client_bits = offer.client_max_window_bits.is_some() && client_max_window_bits < 15;
        let response = render(&params, client_bits, server_bits);
        Some(DeflateAgreement { params, response })
    }

    /// The client's check of a server's accepted extension, against the
    /// offer [`client_offer`](Self::client_offer) made from this config.
    ///
    /// ```
    /// use wsproto_core::handshake::{parse_extensions, DeflateConfig};
    /// let config = DeflateConfig::default();
    /// let response = &parse_extensions("permessage-deflate; server_max_window_bits=10")[0];
    /// let params = config.check_response(response).unwrap();
    /// assert_eq!(params.server_max_window_bits, 10);
    /// // We offered `client_max_window_bits` without a value: the server must give one.
    /// let bad = &parse_extensions("permessage-deflate; client_max_window_bits")[0];
    /// assert!(config.check_response(bad).is_err());
    /// ```
    pub fn check_response(&self, ext: &Extension) -> Result<DeflateParams, DeflateResponseError> {
        if !is_deflate(ext) {
            return Err(DeflateResponseError::NotPermessageDeflate(ext.name.clone()));
        }
        let response = parse(ext)?;
        let asked_server = clamp_bits(self.server_max_window_bits);
        let server_max_window_bits = match response.server_max_window_bits {
            Some(bits) if bits > asked_server => {
                return Err(DeflateResponseError::WindowLargerThanOffered(
                    "server_max_window_bits".into(),
                ))
            }
            Some(bits) => bits,
            None if asked_server < 15 => {
                // We asked for a limit; a response without one ignores it.
                return Err(DeflateResponseError::WindowLargerThanOffered(
                    "server_max_window_bits".into(),
                ));
            }
            None => 15,
        };
        let offered_client = clamp_bits(self.client_max_window_bits);
        let client_max_window_bits = match response.client_max_window_bits {
            None => offered_client,
            Some(None) => {
                return Err(DeflateResponseError::InvalidValue(
                    "client_max_window_bits".into(),
                ))
            }
            Some(Some(bits)) if bits > offered_client => {
                return Err(DeflateResponseError::WindowLargerThanOffered(
                    "client_max_window_bits".into(),
                ))
            }
            Some(Some(bits)) => bits,
        };
        Ok(DeflateParams {
            server_no_context_takeover: response.server_no_context_takeover,
            client_no_context_takeover: response.client_no_context_takeover
                || self.client_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::parse_extensions;

    fn accept(config: DeflateConfig, header: &str) -> Option<(DeflateParams, String)> {
        config
            .accept_offer(&parse_extensions(header))
            .map(|a| (a.params, a.response))
    }

    fn check(config: DeflateConfig, header: &str) -> Result<DeflateParams, DeflateResponseError> {
        config.check_response(&parse_extensions(header)[0])
    }

    #[test]
    fn server_takes_the_first_offer_it_can_honour() {
        let header = "permessage-deflate; server_max_window_bits=16, \
                      permessage-deflate; foo, \
                      permessage-deflate; server_max_window_bits=10; client_max_window_bits";
        let (params, response) = accept(DeflateConfig::default(), header).unwrap();
        assert_eq!(params.server_max_window_bits, 10);
        assert_eq!(params.client_max_window_bits, 15);
        assert_eq!(response, "permessage-deflate; server_max_window_bits=10");
    }

    #[test]
    fn server_declines_malformed_and_duplicate_parameters() {
        let config = DeflateConfig::default();
        for header in [
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=1a",
            "permessage-deflate; client_max_window_bits=0",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; x-unknown",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(accept(config, header), None, "{header}");
        }
    }

    #[test]
    fn server_applies_its_own_limits_and_context_takeover() {
        let config = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 11,
            client_max_window_bits: 12,
            ..DeflateConfig::default()
        };
        let (params, response) =
            accept(config, "permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!(
            params,
            DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: 11,
                client_max_window_bits: 12,
            }
        );
        assert_eq!(
            response,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=11; client_max_window_bits=12"
        );
        // Without client_max_window_bits in the offer the server cannot
        // limit the client's window, and does not name it.
        let (params, response) = accept(config, "permessage-deflate").unwrap();
        assert_eq!(params.client_max_window_bits, 15);
        assert!(!response.contains("client_max_window_bits"));
    }

    #[test]
    fn server_honours_the_clients_requests() {
        let (params, response) = accept(
            DeflateConfig::default(),
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=9",
        )
        .unwrap();
        assert!(params.server_no_context_takeover);
        assert_eq!(params.client_max_window_bits, 9);
        assert_eq!(
            response,
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=9"
        );
    }

    #[test]
    fn client_offer_and_accepted_responses() {
        let config = DeflateConfig {
            client_no_context_takeover: true,
            client_max_window_bits: 12,
            ..DeflateConfig::default()
        };
        assert_eq!(
            config.client_offer(),
            "permessage-deflate; client_no_context_takeover; client_max_window_bits=12"
        );
        let params = check(config, "permessage-deflate; client_max_window_bits=10").unwrap();
        assert_eq!(params.client_max_window_bits, 10);
        assert!(params.client_no_context_takeover);
        let params = check(config, "Permessage-Deflate; server_no_context_takeover").unwrap();
        assert!(params.server_no_context_takeover);
        assert_eq!(params.client_max_window_bits, 12);
    }

    /// zlib cannot compress with an 8-bit window; the side asked for one
    /// agrees and sends uncompressed (the connection's job), so 8 is kept.
    #[test]
    fn eight_bit_windows_are_agreed_to() {
        let (params, response) = accept(
            DeflateConfig::default(),
            "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8",
        )
        .unwrap();
        assert_eq!(params.server_max_window_bits, 8);
        assert_eq!(params.client_max_window_bits, 8);
        assert_eq!(
            response,
            "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8"
        );
        let params = check(
            DeflateConfig::default(),
            "permessage-deflate; client_max_window_bits=8",
        )
        .unwrap();
        assert_eq!(params.client_max_window_bits, 8);
    }

    #[test]
    fn client_rejects_what_was_not_offered() {
        let asked = DeflateConfig {
            server_max_window_bits: 10,
            client_max_window_bits: 12,
            ..DeflateConfig::default()
        };
        for (header, expected) in [
            (
                "permessage-deflate; server_max_window_bits=11",
                DeflateResponseError::WindowLargerThanOffered("server_max_window_bits".into()),
            ),
            (
                "permessage-deflate",
                DeflateResponseError::WindowLargerThanOffered("server_max_window_bits".into()),
            ),
            (
                "permessage-deflate; server_max_window_bits=10; client_max_window_bits=13",
                DeflateResponseError::WindowLargerThanOffered("client_max_window_bits".into()),
            ),
            (
                "permessage-deflate; server_max_window_bits=10; client_max_window_bits",
                DeflateResponseError::InvalidValue("client_max_window_bits".into()),
            ),
            (
                "permessage-deflate; server_max_window_bits=10; mystery",
                DeflateResponseError::UnknownParameter("mystery".into()),
            ),
            (
                "permessage-deflate; server_max_window_bits=10; server_max_window_bits=9",
                DeflateResponseError::DuplicateParameter("server_max_window_bits".into()),
            ),
        ] {
            assert_eq!(check(asked, header), Err(expected), "{header}");
        }
    }
}
