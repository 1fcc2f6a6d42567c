//! Clients behind an HTTP proxy: the proxy's URL, which proxy the
//! environment asks for (curl's conventions), and the CONNECT exchange that
//! opens a tunnel to the server (RFC 9110 section 9.3.6).

use alloc::string::String;
use alloc::vec::Vec;
use core::net::IpAddr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::client::{parse_host_port, strip_prefix_ignore_case};
use super::server::{httparse_error, is_field_value};
use super::{ClientRequest, HeadBuffer};
use crate::error::HandshakeError;
use crate::Status;

/// The largest answer to CONNECT accepted; a proxy's status line and
/// headers are a few hundred bytes.
const MAX_RESPONSE_HEAD: usize = 8 * 1024;
/// The most header lines accepted in that answer.
const MAX_RESPONSE_HEADERS: usize = 64;

/// An HTTP proxy to tunnel through with CONNECT, optionally with Basic
/// credentials.
///
/// Give one to [`ClientRequest::proxy`], or let `connect` find one in the
/// environment ([`Proxy::from_env_with`]).
///
/// ```
/// use wsproto_core::{ClientRequest, Proxy};
///
/// let proxy = Proxy::new("http://Aladdin:open%20sesame@proxy.example:3128").unwrap();
/// assert_eq!((proxy.host(), proxy.port()), ("proxy.example", 3128));
/// assert_eq!(proxy.username(), Some("Aladdin"));
/// let request = ClientRequest::new("wss://feed.example/").unwrap().proxy(proxy);
/// # drop(request);
///
/// // What `connect` does by default, with a made-up environment.
/// let env = |name: &str| match name {
///     "HTTPS_PROXY" => Some("proxy.corp:8080".to_string()),
///     "NO_PROXY" => Some("localhost, .internal".to_string()),
///     _ => None,
/// };
/// let public = ClientRequest::new("wss://feed.example/").unwrap();
/// assert_eq!(Proxy::from_env_with(&public, env).unwrap().map(|p| p.port()), Some(8080));
/// let internal = ClientRequest::new("wss://db.internal/").unwrap();
/// assert_eq!(Proxy::from_env_with(&internal, env).unwrap(), None);
///
/// assert!(Proxy::new("https://proxy.example").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl core::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The password must not end up in logs.
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username())
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Parses `http://[user:password@]host[:port][/]`, or the same without
    /// the scheme as curl allows. The port defaults to 80; credentials are
    /// percent-decoded. HTTPS and SOCKS proxies are refused.
    pub fn new(url: &str) -> Result<Proxy, HandshakeError> {
        let url = url.trim();
        let rest = match strip_prefix_ignore_case(url, "http://") {
            Some(rest) => rest,
            None if strip_prefix_ignore_case(url, "https://").is_some() => {
                return Err(HandshakeError::InvalidProxyUrl(
                    "https:// proxies are not supported, only http://",
                ))
            }
            None if url.contains("://") => {
                return Err(HandshakeError::InvalidProxyUrl(
                    "the scheme must be http:// (SOCKS and other proxies are not supported)",
                ))
            }
            None => url,
        };
        let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        if !matches!(path, "" | "/") {
            return Err(HandshakeError::InvalidProxyUrl(
                "a proxy URL has no path or query",
            ));
        }
        // The last '@': an unencoded '@' in a password still parses.
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (host, port) =
            parse_host_port(hostport, 80).map_err(HandshakeError::InvalidProxyUrl)?;
        let credentials = match userinfo {
            None => None,
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                Some((percent_decode(user)?, percent_decode(password)?))
            }
        };
        if credentials
            .as_ref()
            .is_some_and(|(user, _)| user.contains(':'))
        {
            // Basic authentication cannot carry it (RFC 7617 section 2).
            return Err(HandshakeError::InvalidProxyUrl(
                "the user name contains ':'",
            ));
        }
        Ok(Proxy {
            host: host.into(),
            port,
            credentials,
        })
    }

    /// The proxy's host, without brackets for IPv6.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name sent to the proxy, if the URL had credentials.
    pub fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|(user, _)| user.as_str())
    }

    /// The proxy the environment asks `request` to use, with curl's
    /// conventions, reading variables through `env`:
    ///
    /// - `wss://` uses `https_proxy`, then `HTTPS_PROXY`; `ws://` uses
    ///   `http_proxy`, then `HTTP_PROXY` (not inside a CGI script, where a
    ///   request's `Proxy:` header arrives as `HTTP_PROXY`); both fall back
    ///   to `all_proxy`, then `ALL_PROXY`. Empty values count as unset.
    /// - `no_proxy`, else `NO_PROXY`, is a comma-separated list of hosts to
    ///   reach directly: `*` for all; a name, matching itself and its
    ///   subdomains (`example.com` and `.example.com` both match
    ///   `example.com` and `a.example.com`); an IPv4 or IPv6 address (with
    ///   or without brackets) or a CIDR block such as `10.0.0.0/8`; each
    ///   optionally with `:port` to bypass only that port. Case is ignored.
    ///
    /// Loopback targets (`localhost`, `*.localhost`, `127.0.0.0/8`, `::1`)
    /// are always reached directly, as Go's HTTP client does: a proxy
    /// cannot reach this machine's loopback, and a developer's or CI's
    /// `http_proxy` must not break local servers and tests. An explicit
    /// [`ClientRequest::proxy`] still applies to them.
    ///
    /// `Ok(None)` means connect directly. An unusable proxy URL (such as
    /// `https://`) is an error rather than a silent direct connection.
    pub fn from_env_with(
        request: &ClientRequest,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Proxy>, HandshakeError> {
        if is_loopback(request.host()) {
            return Ok(None);
        }
        let var = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let scheme_vars: &[&str] = if request.is_tls() {
            &["https_proxy", "HTTPS_PROXY"]
        } else if var("REQUEST_METHOD").is_some() {
            // httpoxy (CVE-2016-5385).
            &["http_proxy"]
        } else {
            &["http_proxy", "HTTP_PROXY"]
        };
        let url = scheme_vars
            .iter()
            .chain(&["all_proxy", "ALL_PROXY"])
            .find_map(|name| var(name));
        let Some(url) = url else {
            return Ok(None);
        };
        let no_proxy = var("no_proxy").or_else(|| var("NO_PROXY"));
        if no_proxy.is_some_and(|list| bypasses(&list, request.host(), request.port())) {
            return Ok(None);
        }
        Proxy::new(&url).map(Some)
    }

    /// [`from_env_with`](Self::from_env_with) over the process environment.
    #[cfg(feature = "std")]
    pub fn from_env(request: &ClientRequest) -> Result<Option<Proxy>, HandshakeError> {
        Proxy::from_env_with(request, |name| std::env::var(name).ok())
    }
}

/// Decodes `%XX` escapes; the result must be UTF-8 (RFC 7617's charset).
fn percent_decode(s: &str) -> Result<String, HandshakeError> {
    const BAD: HandshakeError = HandshakeError::InvalidProxyUrl("invalid percent-encoding");
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let mut hex = || bytes.next().and_then(|h| char::from(h).to_digit(16));
        match (hex(), hex()) {
            (Some(hi), Some(lo)) => out.push((hi << 4 | lo) as u8),
            _ => return Err(BAD),
        }
    }
    String::from_utf8(out).map_err(|_| BAD)
}

/// Whether the `no_proxy` list exempts `host:port`.
fn is_loopback(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let lower = host.to_ascii_lowercase();
    lower == "localhost"
        || lower.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn bypasses(list: &str, host: &str, port: u16) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let host_ip = host.parse::<IpAddr>().ok();
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .any(|entry| entry == "*" || entry_matches(entry, host, host_ip, port))
}

fn entry_matches(entry: &str, host: &str, host_ip: Option<IpAddr>, port: u16) -> bool {
    let Some((pattern, entry_port)) = split_entry(entry) else {
        return false; // malformed entries match nothing, as in curl
    };
    if entry_port.is_some_and(|p| p != port) {
        return false;
    }
    if let Some(host_ip) = host_ip {
        return ip_matches(pattern, host_ip);
    }
    if pattern.parse::<IpAddr>().is_ok() || pattern.contains('/') {
        return false;
    }
    // `.example.com` and `*.example.com` mean what `example.com` does.
    let domain = pattern
        .strip_prefix("*.")
        .or_else(|| pattern.strip_prefix('.'))
        .unwrap_or(pattern);
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() {
        return false;
    }
    let Some(dot) = host.len().checked_sub(domain.len() + 1) else {
        return host.eq_ignore_ascii_case(domain);
    };
    host.get(dot..=dot) == Some(".")
        && host
            .get(dot + 1..)
            .is_some_and(|suffix| suffix.eq_ignore_ascii_case(domain))
}

/// Splits `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
fn split_entry(entry: &str) -> Option<(&str, Option<u16>)> {
    if let Some(bracketed) = entry.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return Some((host, port));
    }
    match entry.split_once(':') {
        // Two colons or more: an IPv6 address, which only has a port in
        // brackets.
        Some((_, rest)) if rest.contains(':') => Some((entry, None)),
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((entry, None)),
    }
}

/// An address or CIDR block against an IP host.
fn ip_matches(pattern: &str, host: IpAddr) -> bool {
    let (addr, prefix) = match pattern.split_once('/') {
        Some((addr, bits)) => match bits.parse::<u32>() {
            Ok(bits) => (addr, Some(bits)),
            Err(_) => return false,
        },
        None => (pattern, None),
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return false;
    };
    match (addr, host) {
        (IpAddr::V4(a), IpAddr::V4(h)) => {
            same_prefix(u32::from(a).into(), u32::from(h).into(), prefix, 32)
        }
        (IpAddr::V6(a), IpAddr::V6(h)) => same_prefix(a.into(), h.into(), prefix, 128),
        _ => false,
    }
}

/// Whether the first `prefix` bits (all `width` if none) agree.
fn same_prefix(a: u128, b: u128, prefix: Option<u32>, width: u32) -> bool {
    let prefix = prefix.unwrap_or(width);
    if prefix > width {
        return false;
    }
    let ignored = width - prefix;
    a.checked_shr(ignored).unwrap_or(0) == b.checked_shr(ignored).unwrap_or(0)
}

/// The CONNECT exchange with a proxy, sans-IO: write
/// [`request_bytes`](Self::request_bytes) to the proxy, feed its answer to
/// [`receive`](Self::receive) until it completes; the connection is then a
/// tunnel to the server, for TLS and the WebSocket handshake.
///
/// ```
/// use wsproto_core::{Proxy, ProxyHandshake, Status};
///
/// let proxy = Proxy::new("http://Aladdin:open%20sesame@127.0.0.1:3128").unwrap();
/// let mut hs = ProxyHandshake::new(&proxy, "example.com", 443).unwrap();
/// assert_eq!(
///     hs.request_bytes(),
///     b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\
///       Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
/// );
/// // The server's first bytes may come in the same read as the answer.
/// let answer = b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03";
/// assert_eq!(hs.receive(answer), Ok(Status::Complete(answer.len() - 2)));
/// ```
pub struct ProxyHandshake {
    request: Vec<u8>,
    credentials_sent: bool,
    head: HeadBuffer,
    done: bool,
}

impl core::fmt::Debug for ProxyHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Not the request: its Proxy-Authorization is the password.
        f.debug_struct("ProxyHandshake")
            .field("credentials_sent", &self.credentials_sent)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl ProxyHandshake {
    /// Prepares `CONNECT host:port` through `proxy`, with its credentials
    /// if it has some. Fails if `host` cannot be written in a request.
    pub fn new(proxy: &Proxy, host: &str, port: u16) -> Result<ProxyHandshake, HandshakeError> {
        if host.is_empty() || !is_field_value(host) || host.contains([' ', '\t']) || port == 0 {
            return Err(HandshakeError::InvalidUrl("missing or invalid host"));
        }
        let authority = if host.contains(':') {
            alloc::format!("[{host}]:{port}")
        } else {
            alloc::format!("{host}:{port}")
        };
        let mut text = alloc::format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some((user, password)) = &proxy.credentials {
            let token = STANDARD.encode(alloc::format!("{user}:{password}"));
            text.push_str("Proxy-Authorization: Basic ");
            text.push_str(&token);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        Ok(ProxyHandshake {
            request: text.into_bytes(),
            credentials_sent: proxy.credentials.is_some(),
            head: HeadBuffer::default(),
            done: false,
        })
    }

    /// The CONNECT request to write to the proxy.
    pub fn request_bytes(&self) -> &[u8] {
        &self.request
    }

    /// Feeds bytes from the proxy. Once its answer's head is complete and
    /// a 2xx, returns how many bytes of `data` belonged to it: the rest
    /// already come from the server, through the tunnel. After that every
    /// call returns `Complete(0)`.
    ///
    /// A 407 is [`HandshakeError::ProxyAuthRequired`], any other status
    /// [`HandshakeError::ProxyRefused`]; an answer that is not HTTP or
    /// exceeds 8 KiB is [`HandshakeError::ProxyResponse`].
    pub fn receive(&mut self, data: &[u8]) -> Result<Status<usize>, HandshakeError> {
        if self.done {
            return Ok(Status::Complete(0));
        }
        let before = self.head.buf.len();
        // Beyond the limit plus one byte nothing can complete the head:
        // don't buffer it.
        let wanted = (MAX_RESPONSE_HEAD + 1).saturating_sub(before);
        let data = data.get(..wanted).unwrap_or(data);
        let end = match self.head.push(data, MAX_RESPONSE_HEAD) {
            Ok(Some(end)) => end,
            Ok(None) => return Ok(Status::Partial),
            Err(_) => {
                return Err(HandshakeError::ProxyResponse(
                    "the response head exceeds 8 KiB",
                ))
            }
        };
        let status = self.parse_status(end)?;
        self.head = HeadBuffer::default();
        match status {
            200..=299 => {
                self.done = true;
                Ok(Status::Complete(end - before))
            }
            407 => Err(HandshakeError::ProxyAuthRequired {
                credentials_sent: self.credentials_sent,
            }),
            status => Err(HandshakeError::ProxyRefused(status)),
        }
    }

    fn parse_status(&self, end: usize) -> Result<u16, HandshakeError> {
        let mut slots = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
        let mut parsed = httparse::Response::new(&mut slots);
        let head = self.head.buf.get(..end).unwrap_or_default();
        match parsed.parse(head) {
            Ok(httparse::Status::Complete(_)) => parsed
                .code
                .ok_or(HandshakeError::ProxyResponse("no status")),
            Ok(httparse::Status::Partial) => {
                Err(HandshakeError::ProxyResponse("incomplete response"))
            }
            Err(e) => Err(HandshakeError::ProxyResponse(httparse_error(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn proxy(url: &str) -> Proxy {
        Proxy::new(url).unwrap()
    }

    fn parts(p: &Proxy) -> (&str, u16, Option<(&str, &str)>) {
        let creds = p
            .credentials
            .as_ref()
            .map(|(u, pw)| (u.as_str(), pw.as_str()));
        (p.host(), p.port(), creds)
    }

    #[test]
    fn parses_proxy_urls() {
        assert_eq!(parts(&proxy("http://proxy:3128")), ("proxy", 3128, None));
        assert_eq!(
            parts(&proxy("HTTP://Proxy.Example/")),
            ("Proxy.Example", 80, None)
        );
        assert_eq!(parts(&proxy("proxy.corp:8080")), ("proxy.corp", 8080, None));
        assert_eq!(parts(&proxy("proxy.corp")), ("proxy.corp", 80, None));
        assert_eq!(parts(&proxy("http://[::1]:3128")), ("::1", 3128, None));
        assert_eq!(parts(&proxy("[fe80::1]")), ("fe80::1", 80, None));
        assert_eq!(
            parts(&proxy(" http://10.0.0.1:8080 ")),
            ("10.0.0.1", 8080, None)
        );
        assert_eq!(
            parts(&proxy("http://Aladdin:open%20sesame@proxy:3128")),
            ("proxy", 3128, Some(("Aladdin", "open sesame")))
        );
        assert_eq!(
            parts(&proxy("http://user@proxy:3128")),
            ("proxy", 3128, Some(("user", "")))
        );
        assert_eq!(
            parts(&proxy("http://us%40er:p@ss:w%3Ard@proxy:1")),
            ("proxy", 1, Some(("us@er", "p@ss:w:rd")))
        );
        assert_eq!(
            parts(&proxy("http://j%C3%B6rg:%E2%9C%93@proxy:1")),
            ("proxy", 1, Some(("jörg", "✓")))
        );
    }

    #[test]
    fn refuses_unusable_proxy_urls() {
        for (url, why) in [
            (
                "https://proxy:443",
                "https:// proxies are not supported, only http://",
            ),
            (
                "HTTPS://proxy",
                "https:// proxies are not supported, only http://",
            ),
            (
                "socks5://proxy:1080",
                "the scheme must be http:// (SOCKS and other proxies are not supported)",
            ),
            ("http://proxy:3128/path", "a proxy URL has no path or query"),
            ("http://proxy:3128?x", "a proxy URL has no path or query"),
            ("http://", "missing or invalid host"),
            ("", "missing or invalid host"),
            ("http://user:pw@", "missing or invalid host"),
            ("http://proxy:0", "invalid port"),
            ("http://proxy:65536", "invalid port"),
            ("http://proxy:http", "invalid port"),
            ("http://[::1", "unclosed IPv6 bracket"),
            ("http://u:%zz@proxy", "invalid percent-encoding"),
            ("http://u:%4@proxy", "invalid percent-encoding"),
            ("http://u:%ff@proxy", "invalid percent-encoding"),
            ("http://a%3Ab:pw@proxy", "the user name contains ':'"),
        ] {
            assert_eq!(
                Proxy::new(url),
                Err(HandshakeError::InvalidProxyUrl(why)),
                "{url}"
            );
        }
        let text = Proxy::new("https://p").unwrap_err().to_string();
        assert!(text.starts_with("invalid proxy URL: https://"), "{text}");
    }

    #[test]
    fn debug_hides_the_password() {
        let p = proxy("http://user:hunter2@proxy:1");
        let text = alloc::format!("{p:?}");
        assert!(text.contains("user") && !text.contains("hunter2"), "{text}");
        let hs = ProxyHandshake::new(&p, "example.com", 443).unwrap();
        let text = alloc::format!("{hs:?}");
        assert!(!text.contains(&STANDARD.encode("user:hunter2")), "{text}");
    }

    #[test]
    fn request_bytes_are_exact() {
        let hs = ProxyHandshake::new(&proxy("http://proxy:3128"), "127.0.0.1", 9001).unwrap();
        assert_eq!(
            hs.request_bytes(),
            b"CONNECT 127.0.0.1:9001 HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n\r\n"
        );
        let hs = ProxyHandshake::new(&proxy("http://proxy:3128"), "::1", 443).unwrap();
        assert_eq!(
            hs.request_bytes(),
            b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n"
        );
        let authed = proxy("http://Aladdin:open%20sesame@proxy:3128");
        let hs = ProxyHandshake::new(&authed, "example.com", 80).unwrap();
        assert_eq!(
            hs.request_bytes(),
            &b"CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\
               Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"[..]
        );
        for host in ["", "a b", "a\r\nX: y", "a\tb"] {
            assert!(ProxyHandshake::new(&authed, host, 80).is_err(), "{host:?}");
        }
        assert!(ProxyHandshake::new(&authed, "a", 0).is_err());
    }

    /// Feeds `answer` cut at every byte and returns each outcome together
    /// with the bytes the handshake left over.
    fn at_every_split(answer: &[u8]) -> Vec<Result<Vec<u8>, HandshakeError>> {
        let proxy = proxy("http://proxy:3128");
        (0..=answer.len())
            .map(|cut| {
                let mut hs = ProxyHandshake::new(&proxy, "example.com", 443).unwrap();
                let (first, second) = answer.split_at(cut);
                let mut leftover = Vec::new();
                let mut complete = false;
                for part in [first, second] {
                    if let Status::Complete(used) = hs.receive(part)? {
                        // Only the first completion consumes anything.
                        assert!(!complete || used == 0);
                        complete = true;
                        leftover.extend_from_slice(&part[used..]);
                    }
                }
                assert!(complete, "cut {cut}: never completed");
                Ok(leftover)
            })
            .collect()
    }

    #[test]
    fn success_at_every_split_keeps_the_leftover() {
        let answer = b"HTTP/1.1 200 Connection established\r\nVia: 1.1 squid\r\n\r\nserver says hi";
        for (cut, outcome) in at_every_split(answer).into_iter().enumerate() {
            assert_eq!(outcome.as_deref(), Ok(&b"server says hi"[..]), "cut {cut}");
        }
        let http10 = b"HTTP/1.0 200 OK\n\n";
        for outcome in at_every_split(http10) {
            assert_eq!(outcome, Ok(Vec::new()));
        }
    }

    #[test]
    fn refusals_at_every_split() {
        let auth = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                     Proxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n";
        for outcome in at_every_split(auth) {
            assert_eq!(
                outcome,
                Err(HandshakeError::ProxyAuthRequired {
                    credentials_sent: false
                })
            );
        }
        for outcome in at_every_split(b"HTTP/1.1 502 Bad Gateway\r\n\r\n") {
            assert_eq!(outcome, Err(HandshakeError::ProxyRefused(502)));
        }
        let mut hs = ProxyHandshake::new(&proxy("http://u:p@proxy:1"), "example.com", 443).unwrap();
        assert_eq!(
            hs.receive(auth),
            Err(HandshakeError::ProxyAuthRequired {
                credentials_sent: true
            })
        );
    }

    #[test]
    fn garbage_and_oversized_answers() {
        let p = proxy("http://proxy:3128");
        let mut hs = ProxyHandshake::new(&p, "example.com", 443).unwrap();
        assert!(matches!(
            hs.receive(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(HandshakeError::ProxyResponse(_))
        ));

        // Never more than the limit buffered, however the bytes come.
        let too_large = HandshakeError::ProxyResponse("the response head exceeds 8 KiB");
        let mut hs = ProxyHandshake::new(&p, "example.com", 443).unwrap();
        assert_eq!(hs.receive(&[b'a'; 1 << 20]), Err(too_large.clone()));
        let mut hs = ProxyHandshake::new(&p, "example.com", 443).unwrap();
        assert_eq!(hs.receive(b"HTTP/1.1 200 OK\r\n"), Ok(Status::Partial));
        let header = b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        let outcome = (0..1000)
            .map(|_| hs.receive(header))
            .find(|r| r != &Ok(Status::Partial));
        assert_eq!(outcome, Some(Err(too_large)));
        assert!(hs.head.buf.len() <= MAX_RESPONSE_HEAD + 1);

        // Just under the limit is fine, and a large read after it too.
        let mut answer = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        answer.resize(MAX_RESPONSE_HEAD - 4, b'a');
        answer.extend_from_slice(b"\r\n\r\n");
        let tail = [b'z'; 20_000];
        let mut input = answer.clone();
        input.extend_from_slice(&tail);
        let mut hs = ProxyHandshake::new(&p, "example.com", 443).unwrap();
        assert_eq!(hs.receive(&input), Ok(Status::Complete(MAX_RESPONSE_HEAD)));
        assert_eq!(hs.receive(b"more"), Ok(Status::Complete(0)));
    }

    /// An environment made of `vars`.
    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    /// The proxy host `url` would go through, if any.
    fn via(url: &str, vars: &[(&str, &str)]) -> Option<String> {
        let request = ClientRequest::new(url).unwrap();
        Proxy::from_env_with(&request, env(vars))
            .unwrap()
            .map(|p| alloc::format!("{}:{}", p.host(), p.port()))
    }

    #[test]
    fn env_precedence_by_scheme() {
        let all = [
            ("https_proxy", "lower-https:1"),
            ("HTTPS_PROXY", "upper-https:2"),
            ("http_proxy", "lower-http:3"),
            ("HTTP_PROXY", "upper-http:4"),
            ("all_proxy", "lower-all:5"),
            ("ALL_PROXY", "upper-all:6"),
        ];
        assert_eq!(
            via("wss://a.example/", &all).as_deref(),
            Some("lower-https:1")
        );
        assert_eq!(
            via("ws://a.example/", &all).as_deref(),
            Some("lower-http:3")
        );
        assert_eq!(
            via("wss://a.example/", &all[1..]).as_deref(),
            Some("upper-https:2")
        );
        assert_eq!(
            via("ws://a.example/", &all[3..]).as_deref(),
            Some("upper-http:4")
        );
        // The other scheme's variables are not used.
        assert_eq!(via("wss://a.example/", &all[2..4]), None);
        assert_eq!(via("ws://a.example/", &all[..2]), None);
        assert_eq!(
            via("wss://a.example/", &all[2..]).as_deref(),
            Some("lower-all:5")
        );
        assert_eq!(
            via("ws://a.example/", &all[4..]).as_deref(),
            Some("lower-all:5")
        );
        assert_eq!(
            via("ws://a.example/", &all[5..]).as_deref(),
            Some("upper-all:6")
        );
        assert_eq!(via("ws://a.example/", &[]), None);
        // In a CGI script HTTP_PROXY may come from the client's request.
        let cgi = [("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "evil:1")];
        assert_eq!(via("ws://a.example/", &cgi), None);
        let cgi = [("REQUEST_METHOD", "GET"), ("http_proxy", "good:1")];
        assert_eq!(via("ws://a.example/", &cgi).as_deref(), Some("good:1"));
    }

    #[test]
    fn env_empty_values_are_unset() {
        let vars = [
            ("https_proxy", ""),
            ("HTTPS_PROXY", " "),
            ("ALL_PROXY", "all:1"),
        ];
        assert_eq!(via("wss://a.example/", &vars).as_deref(), Some("all:1"));
        assert_eq!(via("wss://a.example/", &vars[..2]), None);
        let vars = [
            ("https_proxy", "p:1"),
            ("no_proxy", ""),
            ("NO_PROXY", "a.example"),
        ];
        assert_eq!(via("wss://a.example/", &vars), None);
        assert_eq!(via("wss://b.example/", &vars).as_deref(), Some("p:1"));
    }

    #[test]
    fn env_credentials_and_errors() {
        let request = ClientRequest::new("wss://a.example/").unwrap();
        let vars = [("HTTPS_PROXY", "http://u:p%21@proxy:8080/")];
        let found = Proxy::from_env_with(&request, env(&vars)).unwrap().unwrap();
        assert_eq!(parts(&found), ("proxy", 8080, Some(("u", "p!"))));
        let vars = [("HTTPS_PROXY", "https://proxy:443")];
        assert!(matches!(
            Proxy::from_env_with(&request, env(&vars)),
            Err(HandshakeError::InvalidProxyUrl(_))
        ));
        // A bypassed host does not care whether the proxy URL is usable.
        let vars = [("HTTPS_PROXY", "https://proxy:443"), ("NO_PROXY", "*")];
        assert_eq!(Proxy::from_env_with(&request, env(&vars)), Ok(None));
    }

    /// Whether `NO_PROXY=list` sends `url` directly.
    fn bypassed(list: &str, url: &str) -> bool {
        let request = ClientRequest::new(url).unwrap();
        bypasses(list, request.host(), request.port())
    }

    #[test]
    fn loopback_targets_never_use_the_environments_proxy() {
        let vars = [("https_proxy", "proxy:1"), ("http_proxy", "proxy:1")];
        for url in [
            "ws://127.0.0.1:9001/",
            "ws://127.9.8.7/",
            "wss://[::1]:8443/",
            "ws://localhost/",
            "ws://LOCALHOST.:80/",
            "wss://app.localhost/",
        ] {
            assert_eq!(via(url, &vars), None, "{url}");
        }
        for url in ["ws://128.0.0.1/", "ws://localhost.example/", "ws://[::2]/"] {
            assert_eq!(via(url, &vars).as_deref(), Some("proxy:1"), "{url}");
        }
        // An explicit proxy still applies.
        let request = ClientRequest::new("ws://127.0.0.1:9001/")
            .unwrap()
            .proxy(proxy("mine:3128"));
        assert!(request.resolve_proxy_with(env(&vars)).unwrap().is_some());
    }

    #[test]
    fn no_proxy_names() {
        for list in [
            "example.com",
            ".example.com",
            "*.example.com",
            "EXAMPLE.COM",
            "example.com.",
        ] {
            assert!(bypassed(list, "ws://example.com/"), "{list}");
            assert!(bypassed(list, "ws://a.example.com/"), "{list}");
            assert!(bypassed(list, "wss://a.b.Example.Com/"), "{list}");
            assert!(!bypassed(list, "ws://badexample.com/"), "{list}");
            assert!(!bypassed(list, "ws://example.com.evil/"), "{list}");
            assert!(!bypassed(list, "ws://example.org/"), "{list}");
        }
        assert!(bypassed("localhost", "ws://localhost:9001/"));
        assert!(bypassed("example.com.", "ws://example.com./"));
        assert!(!bypassed("a.example.com", "ws://example.com/"));
        assert!(!bypassed("com", "ws://example.org/"));
        assert!(bypassed("com", "ws://example.com/"));
        assert!(bypassed("*", "ws://anything.example/"));
        assert!(bypassed("*", "wss://[::1]:1/"));
        assert!(!bypassed("*.", "ws://example.com/"));
        assert!(!bypassed(".", "ws://example.com/"));
        assert!(!bypassed("", "ws://example.com/"));
        assert!(!bypassed("example", "ws://example.com/"));
        // A list: whitespace around entries, empty entries.
        let list = " foo.test , ,bar.test,\tbaz.test ";
        for host in ["foo.test", "bar.test", "baz.test", "x.bar.test"] {
            assert!(bypassed(list, &alloc::format!("ws://{host}/")), "{host}");
        }
        assert!(!bypassed(list, "ws://qux.test/"));
        // `*` only means all on its own.
        assert!(bypassed("foo.test, *", "ws://example.com/"));
        assert!(!bypassed("*foo", "ws://example.com/"));
    }

    #[test]
    fn no_proxy_ports() {
        assert!(bypassed("example.com:8080", "ws://example.com:8080/"));
        assert!(bypassed("example.com:8080", "ws://a.example.com:8080/"));
        assert!(!bypassed("example.com:8080", "ws://example.com:8081/"));
        assert!(!bypassed("example.com:80", "wss://example.com/"));
        assert!(bypassed("example.com:443", "wss://example.com/"));
        assert!(bypassed("example.com:80", "ws://example.com/"));
        assert!(bypassed("10.0.0.1:9001", "ws://10.0.0.1:9001/"));
        assert!(!bypassed("10.0.0.1:9001", "ws://10.0.0.1:9002/"));
        // A port that does not parse makes the entry match nothing.
        assert!(!bypassed("example.com:x", "ws://example.com/"));
        assert!(!bypassed("example.com:99999", "ws://example.com/"));
    }

    #[test]
    fn no_proxy_ip_literals() {
        assert!(bypassed("127.0.0.1", "ws://127.0.0.1:9001/"));
        assert!(!bypassed("127.0.0.1", "ws://127.0.0.2/"));
        // No suffix matching for addresses.
        assert!(!bypassed("0.0.1", "ws://127.0.0.1/"));
        assert!(!bypassed(".0.0.1", "ws://127.0.0.1/"));
        assert!(!bypassed("127.0.0.1", "ws://localhost/"));
        assert!(!bypassed("localhost", "ws://127.0.0.1/"));
        // IPv6, with and without brackets, compared as addresses.
        for list in ["::1", "[::1]", "0:0::1", "[0:0:0:0:0:0:0:1]"] {
            assert!(bypassed(list, "ws://[::1]:9001/"), "{list}");
            assert!(!bypassed(list, "ws://[::2]:9001/"), "{list}");
            assert!(!bypassed(list, "ws://127.0.0.1:9001/"), "{list}");
        }
        assert!(bypassed("[::1]:9001", "ws://[::1]:9001/"));
        assert!(!bypassed("[::1]:9001", "ws://[::1]:9002/"));
        assert!(bypassed("FE80::ABCD", "ws://[fe80::abcd]/"));
        assert!(!bypassed("::ffff:127.0.0.1", "ws://127.0.0.1/"));
        // CIDR blocks.
        assert!(bypassed("10.0.0.0/8", "ws://10.20.30.40/"));
        assert!(!bypassed("10.0.0.0/8", "ws://11.0.0.1/"));
        assert!(bypassed("192.168.1.0/24", "ws://192.168.1.200/"));
        assert!(!bypassed("192.168.1.0/24", "ws://192.168.2.1/"));
        assert!(bypassed("0.0.0.0/0", "ws://8.8.8.8/"));
        assert!(!bypassed("10.0.0.0/33", "ws://10.0.0.0/"));
        assert!(!bypassed("10.0.0.0/8", "ws://[::1]/"));
        assert!(bypassed("fd00::/8", "ws://[fd12::1]/"));
        assert!(!bypassed("fd00::/8", "ws://[fe80::1]/"));
        assert!(!bypassed("10.0.0.0/8", "ws://ten.example/"));
    }

    #[test]
    fn request_proxy_choice() {
        let vars = [("HTTPS_PROXY", "env-proxy:1")];
        let request = ClientRequest::new("wss://a.example/").unwrap();
        let chosen = |r: &ClientRequest| {
            r.resolve_proxy_with(env(&vars))
                .unwrap()
                .map(|p| p.host().to_string())
        };
        assert_eq!(chosen(&request).as_deref(), Some("env-proxy"));
        assert_eq!(chosen(&request.clone().no_proxy()), None);
        let explicit = request.clone().proxy(proxy("mine:3128"));
        assert_eq!(chosen(&explicit).as_deref(), Some("mine"));
        // The last choice wins.
        assert_eq!(
            chosen(&explicit.no_proxy().proxy(proxy("other:1"))).as_deref(),
            Some("other")
        );
    }
}
