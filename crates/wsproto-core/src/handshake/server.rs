//! The server side of the opening handshake.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::deflate::{DeflateAgreement, PERMESSAGE_DEFLATE};
use super::negotiate::{has_token, parse_extensions, split_list, Extension};
use super::{accept_key, find_header, joined_header, HeadBuffer, Header};
use crate::config::Config;
use crate::connection::Connection;
use crate::error::HandshakeError;
use crate::frame::Role;
use crate::Status;

/// Which HTTP the opening handshake runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.1: `GET` with `Upgrade: websocket`, answered `101` (RFC 6455).
    Http11,
    /// HTTP/2: extended `CONNECT` with `:protocol = websocket`, answered
    /// `200`; the WebSocket is one stream of the HTTP/2 connection (RFC 8441).
    Http2,
}

/// A validated WebSocket upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    version: HttpVersion,
    target: String,
    headers: Vec<Header>,
    subprotocols: Vec<String>,
    extensions: Vec<Extension>,
    key: String,
}

impl Request {
    /// Validates an upgrade request that an HTTP library already parsed
    /// (hyper, axum, a custom server): the method, whether it is HTTP/1.1,
    /// the request target and the headers as received.
    ///
    /// ```
    /// use wsproto_core::{Accept, Request};
    /// let headers = vec![
    ///     ("Host".to_string(), b"example.com".to_vec()),
    ///     ("Upgrade".to_string(), b"websocket".to_vec()),
    ///     ("Connection".to_string(), b"Upgrade".to_vec()),
    ///     ("Sec-WebSocket-Key".to_string(), b"dGhlIHNhbXBsZSBub25jZQ==".to_vec()),
    ///     ("Sec-WebSocket-Version".to_string(), b"13".to_vec()),
    /// ];
    /// let request = Request::from_parts("GET", "/chat", true, headers).unwrap();
    /// let headers = request.response_headers(&Accept::default()).unwrap();
    /// assert!(headers.contains(&("Sec-WebSocket-Accept".into(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into())));
    /// ```
    pub fn from_parts(
        method: &str,
        target: &str,
        http11: bool,
        headers: Vec<Header>,
    ) -> Result<Request, HandshakeError> {
        if method != "GET" {
            return Err(HandshakeError::MethodNotAllowed);
        }
        if !http11 {
            return Err(HandshakeError::HttpVersion);
        }
        let count = |name: &str| {
            headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .count()
        };
        if count("Host") != 1 {
            return Err(HandshakeError::InvalidHeader("Host"));
        }
        let upgrade = joined_header(&headers, "Upgrade").unwrap_or_default();
        if !has_token(upgrade.as_bytes(), "websocket") {
            return Err(HandshakeError::InvalidHeader("Upgrade"));
        }
        let connection = joined_header(&headers, "Connection").unwrap_or_default();
        if !has_token(connection.as_bytes(), "upgrade") {
            return Err(HandshakeError::InvalidHeader("Connection"));
        }
        match joined_header(&headers, "Sec-WebSocket-Version") {
            None => return Err(HandshakeError::InvalidHeader("Sec-WebSocket-Version")),
            Some(v) if v.trim() == "13" => {}
            Some(_) => return Err(HandshakeError::UnsupportedVersion),
        }
        if count("Sec-WebSocket-Key") != 1 {
            return Err(HandshakeError::InvalidKey);
        }
        let key = find_header(&headers, "Sec-WebSocket-Key")
            .and_then(|k| core::str::from_utf8(k).ok())
            .map(str::trim)
            .unwrap_or_default();
        match STANDARD.decode(key) {
            Ok(raw) if raw.len() == 16 => {}
            _ => return Err(HandshakeError::InvalidKey),
        }
        let key = key.to_string();
        Ok(Request::new(HttpVersion::Http11, target, headers, key))
    }

    /// Validates an HTTP/2 extended CONNECT request (RFC 8441 section 4)
    /// that an HTTP/2 library already parsed: the `:method` and `:protocol`
    /// pseudo-headers, the request target (`:path`) and the regular headers.
    /// There is no key and no `Upgrade`/`Connection` header in this form;
    /// the version must still be 13. Accepting it is a `200` response with
    /// [`response_headers`](Self::response_headers).
    ///
    /// ```
    /// use wsproto_core::{Accept, HttpVersion, Request};
    /// let headers = vec![("sec-websocket-version".to_string(), b"13".to_vec())];
    /// let request = Request::from_h2_parts("CONNECT", Some("websocket"), "/chat", headers).unwrap();
    /// assert_eq!(request.version(), HttpVersion::Http2);
    /// assert_eq!(request.response_status(), 200);
    /// assert!(request.response_headers(&Accept::default()).unwrap().is_empty());
    /// assert!(Request::from_h2_parts("GET", None, "/chat", vec![]).is_err());
    /// ```
    pub fn from_h2_parts(
        method: &str,
        protocol: Option<&str>,
        target: &str,
        headers: Vec<Header>,
    ) -> Result<Request, HandshakeError> {
        if method != "CONNECT" {
            return Err(HandshakeError::MethodNotAllowed);
        }
        if !protocol.is_some_and(|p| p.eq_ignore_ascii_case("websocket")) {
            return Err(HandshakeError::InvalidHeader(":protocol"));
        }
        match joined_header(&headers, "Sec-WebSocket-Version") {
            None => return Err(HandshakeError::InvalidHeader("Sec-WebSocket-Version")),
            Some(v) if v.trim() == "13" => {}
            Some(_) => return Err(HandshakeError::UnsupportedVersion),
        }
        Ok(Request::new(
            HttpVersion::Http2,
            target,
            headers,
            String::new(),
        ))
    }

    fn new(version: HttpVersion, target: &str, headers: Vec<Header>, key: String) -> Request {
        let subprotocols = joined_header(&headers, "Sec-WebSocket-Protocol")
            .map(|v| split_list(&v).map(str::to_string).collect())
            .unwrap_or_default();
        let extensions = joined_header(&headers, "Sec-WebSocket-Extensions")
            .map(|v| parse_extensions(&v))
            .unwrap_or_default();
        Request {
            version,
            target: target.to_string(),
            headers,
            subprotocols,
            extensions,
            key,
        }
    }

    /// Which HTTP the request came over.
    pub fn version(&self) -> HttpVersion {
        self.version
    }

    /// The status that accepts this request: `101` over HTTP/1.1, `200`
    /// over HTTP/2.
    pub fn response_status(&self) -> u16 {
        match self.version {
            HttpVersion::Http11 => 101,
            HttpVersion::Http2 => 200,
        }
    }

    /// The headers of the response that accepts this request as `accept`
    /// says (with status [`response_status`](Self::response_status)), for
    /// HTTP libraries that write the response themselves. Over HTTP/2 there
    /// is no `Upgrade`, `Connection` or `Sec-WebSocket-Accept`. Fails if the
    /// subprotocol or an extension was not offered or an extra header is not
    /// a valid name and value.
    pub fn response_headers(
        &self,
        accept: &Accept,
    ) -> Result<Vec<(String, String)>, HandshakeError> {
        let mut headers = Vec::new();
        if self.version == HttpVersion::Http11 {
            headers.extend([
                ("Upgrade".to_string(), "websocket".to_string()),
                ("Connection".to_string(), "Upgrade".to_string()),
                (
                    "Sec-WebSocket-Accept".to_string(),
                    accept_key(self.key.as_bytes()),
                ),
            ]);
        }
        if let Some(protocol) = &accept.subprotocol {
            if !self.subprotocols.iter().any(|p| p == protocol) {
                return Err(HandshakeError::InvalidAccept(
                    "subprotocol not offered by the client",
                ));
            }
            headers.push(("Sec-WebSocket-Protocol".to_string(), protocol.clone()));
        }
        if let Some(agreement) = &accept.deflate {
            let offered = self
                .extensions
                .iter()
                .any(|e| e.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE));
            if !offered {
                return Err(HandshakeError::InvalidAccept(
                    "permessage-deflate not offered by the client",
                ));
            }
            headers.push((
                "Sec-WebSocket-Extensions".to_string(),
                agreement.response.clone(),
            ));
        }
        for (name, value) in &accept.headers {
            if !is_token(name) || !is_field_value(value) {
                return Err(HandshakeError::InvalidAccept("invalid response header"));
            }
            headers.push((name.clone(), value.clone()));
        }
        Ok(headers)
    }

    /// The request target as sent: path and query.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query string after `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The first header with this name (case-insensitive), raw.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        find_header(&self.headers, name)
    }

    /// All headers in the order received.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Subprotocols the client offered, in its order of preference.
    pub fn subprotocols(&self) -> &[String] {
        &self.subprotocols
    }

    /// Extensions the client offered, in order.
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// The client's `Sec-WebSocket-Key`; empty over HTTP/2, which has none.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// How the application accepts a request: an optional subprotocol and extra
/// response headers.
///
/// ```
/// use wsproto_core::Accept;
/// let accept = Accept::default().subprotocol("chat").header("X-Server", "wsproto");
/// # let _ = accept;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accept {
    subprotocol: Option<String>,
    headers: Vec<(String, String)>,
    deflate: Option<DeflateAgreement>,
}

impl Accept {
    /// Selects a subprotocol; it must be one the client offered.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> Accept {
        self.subprotocol = Some(protocol.into());
        self
    }

    /// Adds a response header. Names must be HTTP tokens and values must not
    /// contain CR or LF, or [`ServerHandshake::accept`] fails.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Accept {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Accepts permessage-deflate as agreed by
    /// [`DeflateConfig::accept_offer`](crate::handshake::DeflateConfig::accept_offer),
    /// for [`Request::response_headers`]; the connection then needs
    /// [`Connection::with_permessage_deflate`] with the same parameters.
    /// [`ServerHandshake::accept`] negotiates from `Config::deflate` itself
    /// and replaces this.
    ///
    /// ```
    /// use wsproto_core::handshake::DeflateConfig;
    /// use wsproto_core::{Accept, Config, Connection, Request};
    /// let headers = vec![
    ///     ("Host".to_string(), b"example.com".to_vec()),
    ///     ("Upgrade".to_string(), b"websocket".to_vec()),
    ///     ("Connection".to_string(), b"Upgrade".to_vec()),
    ///     ("Sec-WebSocket-Key".to_string(), b"dGhlIHNhbXBsZSBub25jZQ==".to_vec()),
    ///     ("Sec-WebSocket-Version".to_string(), b"13".to_vec()),
    ///     ("Sec-WebSocket-Extensions".to_string(), b"permessage-deflate; client_max_window_bits".to_vec()),
    /// ];
    /// let request = Request::from_parts("GET", "/", true, headers).unwrap();
    /// let agreed = DeflateConfig::default().accept_offer(request.extensions()).unwrap();
    /// let conn = Connection::server(Config::default()).with_permessage_deflate(agreed.params);
    /// let headers = request.response_headers(&Accept::default().permessage_deflate(agreed)).unwrap();
    /// assert!(headers.contains(&("Sec-WebSocket-Extensions".into(), "permessage-deflate".into())));
    /// # drop(conn);
    /// ```
    #[cfg(feature = "deflate")]
    pub fn permessage_deflate(mut self, agreement: DeflateAgreement) -> Accept {
        self.deflate = Some(agreement);
        self
    }
}

/// How the application refuses a request: an HTTP status and a plain-text
/// body explaining why.
///
/// ```
/// use wsproto_core::Reject;
/// let reject = Reject::new(404, "no such room");
/// let bytes = reject.response();
/// assert!(bytes.starts_with(b"HTTP/1.1 404 Not Found\r\n"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The HTTP status, such as 400, 403 or 404.
    pub status: u16,
    /// The response body.
    pub body: String,
}

impl Reject {
    /// A rejection with this status and body.
    pub fn new(status: u16, body: impl Into<String>) -> Reject {
        Reject {
            status,
            body: body.into(),
        }
    }

    /// The complete HTTP response.
    pub fn response(&self) -> Vec<u8> {
        render_response(self.status, &[], self.body.as_bytes())
    }
}

/// The server side of the opening handshake, fed incrementally.
///
/// ```
/// use wsproto_core::{Accept, Config, ServerHandshake, Status};
///
/// let mut hs = ServerHandshake::new(Config::default());
/// let request = b"GET /chat?room=1 HTTP/1.1\r\nHost: server.example.com\r\n\
///     Upgrade: websocket\r\nConnection: Upgrade\r\n\
///     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";
/// // Headers may arrive in any pieces.
/// assert!(matches!(hs.receive(&request[..10]), Ok(Status::Partial)));
/// let Status::Complete(req) = hs.receive(&request[10..]).unwrap() else { panic!() };
/// assert_eq!(req.path(), "/chat");
/// assert_eq!(req.query(), Some("room=1"));
/// assert_eq!(req.subprotocols(), ["chat", "superchat"]);
///
/// let (response, _conn) = hs.accept(Accept::default().subprotocol("chat")).unwrap();
/// let response = String::from_utf8(response).unwrap();
/// assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
/// assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
/// assert!(response.contains("Sec-WebSocket-Protocol: chat\r\n"));
/// ```
#[derive(Debug)]
pub struct ServerHandshake {
    config: Config,
    head: HeadBuffer,
    request: Option<Request>,
}

impl ServerHandshake {
    /// A handshake waiting for the client's request.
    pub fn new(config: Config) -> ServerHandshake {
        ServerHandshake {
            config,
            head: HeadBuffer::default(),
            request: None,
        }
    }

    /// Feeds bytes from the client. Returns the validated request once the
    /// header block is complete; bytes after it are kept for the connection.
    ///
    /// On error, write [`HandshakeError::response`] to the client and close.
    pub fn receive(&mut self, data: &[u8]) -> Result<Status<&Request>, HandshakeError> {
        if self.request.is_none() {
            let Some(end) = self.head.push(data, self.config.max_header_size)? else {
                return Ok(Status::Partial);
            };
            let head = self.head.buf.get(..end).unwrap_or_default();
            let request = parse_request(head, self.config.max_headers)?;
            bytes::Buf::advance(&mut self.head.buf, end);
            self.request = Some(request);
        } else {
            self.head.buf.extend_from_slice(data);
        }
        Ok(self
            .request
            .as_ref()
            .map_or(Status::Partial, Status::Complete))
    }

    /// The request, once [`receive`](Self::receive) completed it.
    pub fn request(&self) -> Option<&Request> {
        self.request.as_ref()
    }

    /// Accepts the request: returns the `101 Switching Protocols` response to
    /// write and the open connection, which already holds any bytes the client
    /// sent after its request.
    ///
    /// With `Config::deflate` set, permessage-deflate is negotiated here:
    /// the first offer the configuration allows is accepted.
    pub fn accept(self, accept: Accept) -> Result<(Vec<u8>, Connection), HandshakeError> {
        let request = self
            .request
            .ok_or(HandshakeError::InvalidAccept("the request is not complete"))?;
        #[cfg(feature = "deflate")]
        let accept = Accept {
            deflate: self
                .config
                .deflate
                .and_then(|d| d.accept_offer(request.extensions())),
            ..accept
        };
        let mut response = String::from("HTTP/1.1 101 Switching Protocols\r\n");
        for (name, value) in request.response_headers(&accept)? {
            response.push_str(&name);
            response.push_str(": ");
            response.push_str(&value);
            response.push_str("\r\n");
        }
        response.push_str("\r\n");
        #[allow(unused_mut)]
        let mut conn = Connection::new(Role::Server, self.config, None, self.head.buf);
        #[cfg(feature = "deflate")]
        if let Some(agreement) = accept.deflate {
            conn = conn.with_permessage_deflate(agreement.params);
        }
        Ok((response.into_bytes(), conn))
    }

    /// Rejects the request with `status` and a plain-text body.
    pub fn reject(self, status: u16, body: &str) -> Vec<u8> {
        render_response(status, &[], body.as_bytes())
    }
}

fn parse_request(head: &[u8], max_headers: usize) -> Result<Request, HandshakeError> {
    let mut header_slots = alloc::vec![httparse::EMPTY_HEADER; max_headers];
    let mut parsed = httparse::Request::new(&mut header_slots);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(HandshakeError::Malformed("incomplete request"))
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::HeadersTooLarge),
        Err(e) => return Err(HandshakeError::Malformed(httparse_error(e))),
    }
    let headers = parsed
        .headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect();
    Request::from_parts(
        parsed.method.unwrap_or(""),
        parsed.path.unwrap_or("/"),
        parsed.version == Some(1),
        headers,
    )
}

pub(crate) fn httparse_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

/// Whether `s` is an HTTP token (RFC 9110 section 5.6.2).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `s` can be sent as a header value: no control characters but tab.
pub(crate) fn is_field_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Renders a complete HTTP/1.1 response with a plain-text body and
/// `Connection: close`, for rejecting a handshake. Extra headers whose name
/// is not a token or whose value holds a control character are left out.
///
/// ```
/// let bytes = wsproto_core::render_response(404, &[], b"no such room\n");
/// assert_eq!(
///     String::from_utf8(bytes).unwrap(),
///     "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n\
///      Content-Length: 13\r\nConnection: close\r\n\r\nno such room\n"
/// );
/// ```
pub fn render_response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason_phrase(status),
        body.len()
    );
    for (name, value) in headers
        .iter()
        .filter(|(n, v)| is_token(n) && is_field_value(v))
    {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}
