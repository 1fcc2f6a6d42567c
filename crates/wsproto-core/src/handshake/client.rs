//! The client side of the opening handshake.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::deflate::PERMESSAGE_DEFLATE;
use super::negotiate::{has_token, parse_extensions, split_list};
use super::server::{httparse_error, is_field_value};
use super::{accept_key, find_header, joined_header, HeadBuffer, Header, Proxy};
use crate::config::Config;
use crate::connection::Connection;
use crate::error::HandshakeError;
use crate::frame::Role;
use crate::random::RandomSource;
use crate::Status;

/// What to ask the server for: a parsed `ws://` or `wss://` URL, offered
/// subprotocols and extra headers, and how to reach the server: through
/// the proxy the environment names (the default, as curl does), a
/// [`Proxy`] of your own, or directly.
///
/// ```
/// use wsproto_core::ClientRequest;
/// let req = ClientRequest::new("wss://[::1]:8443/feed?x=1").unwrap().subprotocol("v2");
/// assert!(req.is_tls());
/// assert_eq!(req.host(), "::1");
/// assert_eq!(req.port(), 8443);
/// assert_eq!(req.resource(), "/feed?x=1");
/// assert_eq!(req.host_header(), "[::1]:8443");
/// assert!(ClientRequest::new("http://example.com/").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    tls: bool,
    host: String,
    port: u16,
    resource: String,
    subprotocols: Vec<String>,
    headers: Vec<(String, String)>,
    proxy: ProxyChoice,
}

/// How a request reaches its server.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ProxyChoice {
    /// As the proxy environment variables say (curl's conventions).
    Environment,
    /// Straight to the server.
    Direct,
    /// Through this proxy.
    Via(Proxy),
}

impl ClientRequest {
    /// Parses a `ws://` or `wss://` URL (RFC 6455 section 3). Fragments and
    /// user credentials are refused.
    pub fn new(url: &str) -> Result<ClientRequest, HandshakeError> {
        let (tls, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "ws://") {
            (false, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(url, "wss://") {
            (true, rest)
        } else {
            return Err(HandshakeError::InvalidUrl("the scheme must be ws or wss"));
        };
        if rest.contains('#') {
            return Err(HandshakeError::InvalidUrl("fragments are not allowed"));
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(HandshakeError::InvalidUrl(
                "credentials in the URL are not supported",
            ));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) =
            parse_host_port(authority, default_port).map_err(HandshakeError::InvalidUrl)?;
        let resource = match resource {
            "" => "/".to_string(),
            r if r.starts_with('?') => alloc::format!("/{r}"),
            r => r.to_string(),
        };
        if !resource.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(HandshakeError::InvalidUrl(
                "the path must be percent-encoded ASCII",
            ));
        }
        Ok(ClientRequest {
            tls,
            host: host.to_string(),
            port,
            resource,
            subprotocols: Vec::new(),
            headers: Vec::new(),
            proxy: ProxyChoice::Environment,
        })
    }

    /// Connects through `proxy` (an HTTP CONNECT tunnel) whatever the
    /// environment says.
    pub fn proxy(mut self, proxy: Proxy) -> ClientRequest {
        self.proxy = ProxyChoice::Via(proxy);
        self
    }

    /// Connects straight to the server, ignoring the proxy environment
    /// variables.
    pub fn no_proxy(mut self) -> ClientRequest {
        self.proxy = ProxyChoice::Direct;
        self
    }

    /// The proxy to connect through: the one given to
    /// [`proxy`](Self::proxy), none after [`no_proxy`](Self::no_proxy), and
    /// by default what [`Proxy::from_env_with`] finds through `env`. Fails
    /// if the environment names a proxy URL that cannot be used.
    pub fn resolve_proxy_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Proxy>, HandshakeError> {
        match &self.proxy {
            ProxyChoice::Environment => Proxy::from_env_with(self, env),
            ProxyChoice::Direct => Ok(None),
            ProxyChoice::Via(proxy) => Ok(Some(proxy.clone())),
        }
    }

    /// [`resolve_proxy_with`](Self::resolve_proxy_with) over the process
    /// environment: what the adapters' `connect` uses.
    #[cfg(feature = "std")]
    pub fn resolve_proxy(&self) -> Result<Option<Proxy>, HandshakeError> {
        self.resolve_proxy_with(|name| std::env::var(name).ok())
    }

    /// Offers a subprotocol; call again to offer several, most preferred first.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> ClientRequest {
        self.subprotocols.push(protocol.into());
        self
    }

    /// Adds a request header, such as `Origin` or `Authorization`.
    pub fn header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<ClientRequest, HandshakeError> {
        let (name, value) = (name.into(), value.into());
        let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !name_ok || !is_field_value(&value) {
            return Err(HandshakeError::InvalidHeader("extra request"));
        }
        self.headers.push((name, value));
        Ok(self)
    }

    /// Whether the URL was `wss://`.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The host, without brackets for IPv6.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or the scheme's default (80 or 443).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Path and query to request.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The `Host` header value: the host, bracketed for IPv6, with the port
    /// unless it is the scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            alloc::format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default_port = if self.tls { 443 } else { 80 };
        if self.port == default_port {
            host
        } else {
            alloc::format!("{host}:{}", self.port)
        }
    }
}

/// Splits an authority (without credentials) into the host, brackets
/// removed from IPv6, and the port or `default_port`. Shared by WebSocket
/// and proxy URLs so that both accept the same hosts.
pub(super) fn parse_host_port(
    authority: &str,
    default_port: u16,
) -> Result<(&str, u16), &'static str> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or("unclosed IPv6 bracket")?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("junk after host")?),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || !is_field_value(host) || host.contains([' ', '\t']) {
        return Err("missing or invalid host");
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err("invalid port"),
        },
    };
    Ok((host, port))
}

pub(super) fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The server's validated `101` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    headers: Vec<Header>,
    subprotocol: Option<String>,
    deflate: Option<super::DeflateParams>,
}

impl Response {
    /// The permessage-deflate parameters the server accepted, if it did.
    pub fn permessage_deflate(&self) -> Option<&super::DeflateParams> {
        self.deflate.as_ref()
    }

    /// The subprotocol the server selected, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The first header with this name (case-insensitive), raw.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        find_header(&self.headers, name)
    }

    /// All headers in the order received.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }
}

/// The client side of the opening handshake.
///
/// ```
/// use wsproto_core::{ChaChaSource, ClientHandshake, ClientRequest, Config, Status};
///
/// let request = ClientRequest::new("ws://127.0.0.1:9001/echo").unwrap();
/// let mut hs = ClientHandshake::with_random(&request, Config::default(), Box::new(ChaChaSource::from_seed([1; 32])));
/// let text = String::from_utf8(hs.request_bytes().to_vec()).unwrap();
/// assert!(text.starts_with("GET /echo HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n"));
///
/// // A server's answer, computed here from the key we sent.
/// let accept = wsproto_core::accept_key(hs.key().as_bytes());
/// let mut response = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").into_bytes();
/// response.extend_from_slice(&[0x81, 0x02, b'h', b'i']); // a first frame in the same packet
/// assert!(matches!(hs.receive(&response), Ok(Status::Complete(_))));
/// let mut conn = hs.into_connection().unwrap();
/// // The frame that came with the response is not lost.
/// assert!(conn.poll_event().unwrap().is_some());
/// ```
pub struct ClientHandshake {
    config: Config,
    request: Vec<u8>,
    fields: Vec<(String, String)>,
    key: String,
    offered: Vec<String>,
    head: HeadBuffer,
    response: Option<Response>,
    random: Box<dyn RandomSource>,
}

impl core::fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientHandshake")
            .field("key", &self.key)
            .field("response", &self.response)
            .finish_non_exhaustive()
    }
}

impl ClientHandshake {
    /// Starts a handshake with a key and, later, masking keys from the
    /// operating system's CSPRNG.
    #[cfg(feature = "std")]
    pub fn new(request: &ClientRequest, config: Config) -> ClientHandshake {
        ClientHandshake::with_random(request, config, Box::new(crate::ChaChaSource::from_os()))
    }

    /// Starts a handshake with randomness from `random` (for the key and for
    /// every masking key after).
    pub fn with_random(
        request: &ClientRequest,
        config: Config,
        mut random: Box<dyn RandomSource>,
    ) -> ClientHandshake {
        let mut nonce = [0u8; 16];
        random.fill(&mut nonce);
        let key = STANDARD.encode(nonce);
        // The fields both HTTP/1.1 and HTTP/2 requests carry.
        let mut fields = alloc::vec![("Sec-WebSocket-Version".to_string(), "13".to_string())];
        if !request.subprotocols.is_empty() {
            fields.push((
                "Sec-WebSocket-Protocol".to_string(),
                request.subprotocols.join(", "),
            ));
        }
        #[cfg(feature = "deflate")]
        if let Some(deflate) = &config.deflate {
            fields.push((
                "Sec-WebSocket-Extensions".to_string(),
                deflate.client_offer(),
            ));
        }
        fields.extend(request.headers.iter().cloned());
        let mut text = alloc::format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\n",
            request.resource,
            request.host_header()
        );
        for (name, value) in &fields {
            text.push_str(name);
            text.push_str(": ");
            text.push_str(value);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        ClientHandshake {
            config,
            request: text.into_bytes(),
            fields,
            key,
            offered: request.subprotocols.clone(),
            head: HeadBuffer::default(),
            response: None,
            random,
        }
    }

    /// The request to write to the server.
    pub fn request_bytes(&self) -> &[u8] {
        &self.request
    }

    /// The `Sec-WebSocket-Key` sent.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// HTTP/2 (RFC 8441): the regular header fields of the extended CONNECT
    /// request, names in lower case. The HTTP/2 library sets the
    /// pseudo-headers: `:method = CONNECT`, `:protocol = websocket`,
    /// `:scheme`, `:authority` and `:path` (the request's
    /// [`resource`](ClientRequest::resource)). Feed the response to
    /// [`receive_h2_response`](Self::receive_h2_response).
    ///
    /// ```
    /// use wsproto_core::{ClientHandshake, ClientRequest, Config};
    /// let request = ClientRequest::new("ws://example.com/chat").unwrap().subprotocol("v1");
    /// let mut hs = ClientHandshake::new(&request, Config::default());
    /// assert_eq!(
    ///     hs.h2_headers()[..2],
    ///     [("sec-websocket-version".to_string(), "13".to_string()),
    ///      ("sec-websocket-protocol".to_string(), "v1".to_string())]
    /// );
    /// let response = hs.receive_h2_response(200, vec![("sec-websocket-protocol".into(), b"v1".to_vec())]).unwrap();
    /// assert_eq!(response.subprotocol(), Some("v1"));
    /// let conn = hs.into_connection().unwrap();
    /// # drop(conn);
    /// ```
    pub fn h2_headers(&self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect()
    }

    /// HTTP/2 (RFC 8441): validates the server's response to the extended
    /// CONNECT: a 2xx status, then the subprotocol and extensions as over
    /// HTTP/1.1. [`into_connection`](Self::into_connection) follows.
    pub fn receive_h2_response(
        &mut self,
        status: u16,
        headers: Vec<Header>,
    ) -> Result<&Response, HandshakeError> {
        if !(200..300).contains(&status) {
            return Err(HandshakeError::UnexpectedStatus(status));
        }
        let response = self.negotiated(headers)?;
        Ok(self.response.insert(response))
    }

    /// Feeds bytes from the server. Returns the validated response once its
    /// header block is complete; bytes after it are kept for the connection.
    pub fn receive(&mut self, data: &[u8]) -> Result<Status<&Response>, HandshakeError> {
        if self.response.is_none() {
            let Some(end) = self.head.push(data, self.config.max_header_size)? else {
                return Ok(Status::Partial);
            };
            let response = self.parse_response(end)?;
            bytes::Buf::advance(&mut self.head.buf, end);
            self.response = Some(response);
        } else {
            self.head.buf.extend_from_slice(data);
        }
        Ok(self
            .response
            .as_ref()
            .map_or(Status::Partial, Status::Complete))
    }

    fn parse_response(&self, end: usize) -> Result<Response, HandshakeError> {
        let mut slots = alloc::vec![httparse::EMPTY_HEADER; self.config.max_headers];
        let mut parsed = httparse::Response::new(&mut slots);
        let head = self.head.buf.get(..end).unwrap_or_default();
        match parsed.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(HandshakeError::Malformed("incomplete response"))
            }
            Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::HeadersTooLarge),
            Err(e) => return Err(HandshakeError::Malformed(httparse_error(e))),
        }
        let status = parsed.code.unwrap_or(0);
        if status != 101 {
            return Err(HandshakeError::UnexpectedStatus(status));
        }
        let headers: Vec<Header> = parsed
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect();
        let upgrade = joined_header(&headers, "Upgrade").unwrap_or_default();
        if !has_token(upgrade.as_bytes(), "websocket") {
            return Err(HandshakeError::InvalidHeader("Upgrade"));
        }
        let connection = joined_header(&headers, "Connection").unwrap_or_default();
        if !has_token(connection.as_bytes(), "upgrade") {
            return Err(HandshakeError::InvalidHeader("Connection"));
        }
        let accept = find_header(&headers, "Sec-WebSocket-Accept")
            .and_then(|v| core::str::from_utf8(v).ok())
            .map(str::trim);
        if accept != Some(accept_key(self.key.as_bytes()).as_str()) {
            return Err(HandshakeError::AcceptMismatch);
        }
        self.negotiated(headers)
    }

    /// Checks the subprotocol and extensions a response chose against what
    /// was offered.
    fn negotiated(&self, headers: Vec<Header>) -> Result<Response, HandshakeError> {
        let subprotocol = match joined_header(&headers, "Sec-WebSocket-Protocol") {
            None => None,
            Some(value) => {
                let mut chosen = split_list(&value);
                match (chosen.next(), chosen.next()) {
                    (Some(p), None) if self.offered.iter().any(|o| o == p) => Some(p.to_string()),
                    _ => return Err(HandshakeError::UnexpectedSubprotocol(value.clone())),
                }
            }
        };
        let mut deflate = None;
        if let Some(value) = joined_header(&headers, "Sec-WebSocket-Extensions") {
            for ext in parse_extensions(&value) {
                deflate = match (deflate, self.offered_deflate()) {
                    (None, Some(offer)) if ext.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) => {
                        Some(
                            offer
                                .check_response(&ext)
                                .map_err(HandshakeError::InvalidDeflateResponse)?,
                        )
                    }
                    // Not offered, or accepted twice.
                    _ => return Err(HandshakeError::UnexpectedExtension(ext.name)),
                };
            }
        }
        Ok(Response {
            headers,
            subprotocol,
            deflate,
        })
    }

    /// The permessage-deflate settings our request offered with, if any.
    fn offered_deflate(&self) -> Option<super::DeflateConfig> {
        #[cfg(feature = "deflate")]
        return self.config.deflate;
        #[cfg(not(feature = "deflate"))]
        return None;
    }

    /// The response, once [`receive`](Self::receive) completed it.
    pub fn response(&self) -> Option<&Response> {
        self.response.as_ref()
    }

    /// The open connection, holding any bytes the server sent after its
    /// response. Fails if the response is not complete yet.
    pub fn into_connection(self) -> Result<Connection, HandshakeError> {
        let Some(response) = &self.response else {
            return Err(HandshakeError::Malformed("the response is not complete"));
        };
        let deflate = response.deflate;
        let conn = Connection::new(Role::Client, self.config, Some(self.random), self.head.buf);
        match deflate {
            #[cfg(feature = "deflate")]
            Some(params) => Ok(conn.with_permessage_deflate(params)),
            _ => Ok(conn),
        }
    }
}
