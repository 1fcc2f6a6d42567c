//! WebSockets inside a hyper (or axum) server, over HTTP/1.1 and HTTP/2.
//!
//! hyper parses the request; the core's handshake validates it, both forms:
//! HTTP/1.1 `GET` with `Upgrade: websocket` (answered `101`, RFC 6455) and
//! HTTP/2 extended `CONNECT` with `:protocol = websocket` (answered `200`,
//! RFC 8441; the WebSocket is one stream of the HTTP/2 connection, so one
//! connection can carry many). The response goes back through hyper, which
//! then hands over the upgraded IO.
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt};
//! use http_body_util::Full;
//! use hyper::body::{Bytes, Incoming};
//! use wsproto_tokio::upgrade::{self, Upgrade};
//! use wsproto_tokio::{Accept, Config};
//!
//! async fn handle(mut req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
//!     if !upgrade::is_upgrade_request(&req) {
//!         return hyper::Response::new(Full::new(Bytes::from("a WebSocket lives here\n")));
//!     }
//!     let upgrade = match Upgrade::from_request(&mut req) {
//!         Ok(upgrade) => upgrade,
//!         Err(response) => return response, // 400, 405, 426 ... with the reason
//!     };
//!     let protocol = upgrade.request().subprotocols().first().cloned();
//!     let accept = match protocol {
//!         Some(p) => Accept::default().subprotocol(p),
//!         None => Accept::default(),
//!     };
//!     match upgrade.accept(accept, Config::default()) {
//!         Ok((response, upgrading)) => {
//!             tokio::spawn(async move {
//!                 let Ok(mut ws) = upgrading.await else { return };
//!                 while let Some(Ok(message)) = ws.next().await {
//!                     if ws.send(message).await.is_err() {
//!                         break;
//!                     }
//!                 }
//!             });
//!             response
//!         }
//!         Err(response) => response,
//!     }
//! }
//! ```
//!
//! For HTTP/2, the server must advertise extended CONNECT:
//! `hyper::server::conn::http2::Builder::enable_connect_protocol()`; the
//! client side is [`connect_h2`].

// `Err` is the response a handler returns as it is, as large as the `Ok`
// side's; boxing it would only add an allocation and an unwrap for users.
#![allow(clippy::result_large_err)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, Version};
use http_body_util::Full;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use wsproto_core::{
    Accept, ClientHandshake, ClientRequest, Config, Connection, HandshakeError, Reject, Request,
    Response,
};

use crate::{Error, WebSocketStream};

/// A WebSocket over the IO hyper hands over after the upgrade.
pub type UpgradedStream = WebSocketStream<TokioIo<Upgraded>>;

/// The HTTP response type of this module: hyper and axum both take it.
pub type HttpResponse = http::Response<Full<Bytes>>;

/// True if `req` asks for a WebSocket: an HTTP/1.1 request with
/// `Upgrade: websocket`, or an HTTP/2 `CONNECT` with `:protocol = websocket`.
/// Whether it is a *valid* one is for [`Upgrade::from_request`] to say.
pub fn is_upgrade_request<B>(req: &http::Request<B>) -> bool {
    match req.version() {
        Version::HTTP_2 => {
            req.method() == Method::CONNECT
                && req
                    .extensions()
                    .get::<hyper::ext::Protocol>()
                    .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"))
        }
        _ => req
            .headers()
            .get_all(http::header::UPGRADE)
            .iter()
            .any(|v| wsproto_core::handshake::has_token(v.as_bytes(), "websocket")),
    }
}

/// Validates `req` and accepts it with the default [`Accept`]: the
/// response to send, and the future of the WebSocket.
pub fn upgrade<B>(
    req: &mut http::Request<B>,
    config: Config,
) -> Result<(HttpResponse, Upgrading), HttpResponse> {
    Upgrade::from_request(req)?.accept(Accept::default(), config)
}

/// A validated upgrade request, not answered yet.
#[derive(Debug)]
pub struct Upgrade {
    request: Request,
    on_upgrade: OnUpgrade,
}

impl Upgrade {
    /// Validates an upgrade request hyper parsed, HTTP/1.1 or HTTP/2.
    /// `Err` is the error response to send (400, 405, 426, ...).
    pub fn from_request<B>(req: &mut http::Request<B>) -> Result<Upgrade, HttpResponse> {
        let request = validate(
            req.method(),
            req.uri(),
            req.version(),
            req.headers(),
            req.extensions(),
        )?;
        let on_upgrade = hyper::upgrade::on(req);
        Ok(Upgrade {
            request,
            on_upgrade,
        })
    }

    /// As [`from_request`](Self::from_request), from the parts of a request
    /// (what an axum extractor sees).
    pub fn from_parts(parts: &mut http::request::Parts) -> Result<Upgrade, HttpResponse> {
        let request = validate(
            &parts.method,
            &parts.uri,
            parts.version,
            &parts.headers,
            &parts.extensions,
        )?;
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return Err(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "this connection cannot be upgraded (is hyper serving it with_upgrades()?)\n",
            ));
        };
        Ok(Upgrade {
            request,
            on_upgrade,
        })
    }

    /// The validated request: path, query, headers, offered subprotocols
    /// and extensions.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Accepts: the response to send (`101` over HTTP/1.1, `200` over
    /// HTTP/2, with permessage-deflate negotiated from `config.deflate`), and
    /// the future that yields the WebSocket once hyper has sent it. `Err` is
    /// a `500` if `accept` names a subprotocol the client did not offer or an
    /// invalid header.
    pub fn accept(
        self,
        accept: Accept,
        config: Config,
    ) -> Result<(HttpResponse, Upgrading), HttpResponse> {
        #[cfg(feature = "deflate")]
        let (accept, deflate) = match config
            .deflate
            .and_then(|d| d.accept_offer(self.request.extensions()))
        {
            Some(agreement) => {
                let params = agreement.params;
                (accept.permessage_deflate(agreement), Some(params))
            }
            None => (accept, None),
        };
        let headers = self.request.response_headers(&accept).map_err(|e| {
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the server's answer is invalid: {e}\n"),
            )
        })?;
        let mut response = http::Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::from_u16(self.request.response_status())
            .unwrap_or(StatusCode::SWITCHING_PROTOCOLS);
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                response.headers_mut().append(name, value);
            }
        }
        #[allow(unused_mut)]
        let mut conn = Connection::server(config);
        #[cfg(feature = "deflate")]
        if let Some(params) = deflate {
            conn = conn.with_permessage_deflate(params);
        }
        let upgrading = Upgrading {
            on_upgrade: self.on_upgrade,
            conn: Some(conn),
        };
        Ok((response, upgrading))
    }

    /// Refuses with `reject`'s status and body.
    pub fn reject(self, reject: Reject) -> HttpResponse {
        let status = StatusCode::from_u16(reject.status).unwrap_or(StatusCode::BAD_REQUEST);
        plain(status, reject.body)
    }

    /// Accepts with `accept` and `config`, runs `callback` with the
    /// WebSocket on a new task once the upgrade completes, and returns the
    /// response to send: the shape of an axum handler.
    ///
    /// ```no_run
    /// # #[cfg(feature = "axum")]
    /// # async fn run() {
    /// use axum::routing::get;
    /// use futures_util::{SinkExt, StreamExt};
    /// use wsproto_tokio::upgrade::{HttpResponse, Upgrade};
    /// use wsproto_tokio::{Accept, Config};
    ///
    /// async fn ws(upgrade: Upgrade) -> HttpResponse {
    ///     upgrade.on_upgrade(Accept::default(), Config::default(), |mut ws| async move {
    ///         while let Some(Ok(message)) = ws.next().await {
    ///             if ws.send(message).await.is_err() {
    ///                 break;
    ///             }
    ///         }
    ///     })
    /// }
    /// let app: axum::Router = axum::Router::new().route("/ws", get(ws));
    /// # drop(app);
    /// # }
    /// ```
    pub fn on_upgrade<F, Fut>(self, accept: Accept, config: Config, callback: F) -> HttpResponse
    where
        F: FnOnce(UpgradedStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        match self.accept(accept, config) {
            Ok((response, upgrading)) => {
                tokio::spawn(async move {
                    if let Ok(ws) = upgrading.await {
                        callback(ws).await;
                    }
                });
                response
            }
            Err(response) => response,
        }
    }
}

/// The core's validation of a request's parts, or the error response.
fn validate(
    method: &Method,
    uri: &http::Uri,
    version: Version,
    headers: &http::HeaderMap,
    extensions: &http::Extensions,
) -> Result<Request, HttpResponse> {
    validate_parts(method, uri, version, headers, extensions).map_err(|e| error_response(&e))
}

fn validate_parts(
    method: &Method,
    uri: &http::Uri,
    version: Version,
    headers: &http::HeaderMap,
    extensions: &http::Extensions,
) -> Result<Request, HandshakeError> {
    let protocol = extensions
        .get::<hyper::ext::Protocol>()
        .map(hyper::ext::Protocol::as_str);
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut fields: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
        .collect();
    match version {
        Version::HTTP_2 => Request::from_h2_parts(method.as_str(), protocol, target, fields),
        _ => {
            // hyper keeps an absolute-form target's authority in the URI only.
            if !headers.contains_key(http::header::HOST) {
                if let Some(authority) = uri.authority() {
                    fields.push(("host".to_string(), authority.as_str().as_bytes().to_vec()));
                }
            }
            Request::from_parts(method.as_str(), target, version == Version::HTTP_11, fields)
        }
    }
}

/// The HTTP response for a failed handshake: its status, the headers the
/// core names for it (`HandshakeError::response_headers`) and the reason as
/// the body. `Allow` names both methods this module upgrades: `GET` over
/// HTTP/1.1 and `CONNECT` over HTTP/2.
pub fn error_response(e: &HandshakeError) -> HttpResponse {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = plain(status, format!("{e}\n"));
    for &(name, value) in e.response_headers() {
        let value = if name.eq_ignore_ascii_case("Allow") {
            "GET, CONNECT"
        } else {
            value
        };
        if let Ok(name) = http::HeaderName::from_bytes(name.as_bytes()) {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

fn plain(status: StatusCode, body: impl Into<String>) -> HttpResponse {
    let mut response = http::Response::new(Full::new(Bytes::from(body.into())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The WebSocket of an accepted [`Upgrade`], once hyper has sent the
/// response and handed over the IO.
#[derive(Debug)]
pub struct Upgrading {
    on_upgrade: OnUpgrade,
    conn: Option<Connection>,
}

impl Future for Upgrading {
    type Output = Result<UpgradedStream, hyper::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let upgraded = match Pin::new(&mut self.on_upgrade).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result?,
        };
        let Some(conn) = self.conn.take() else {
            panic!("Upgrading polled after it completed");
        };
        Poll::Ready(Ok(WebSocketStream::from_connection(
            TokioIo::new(upgraded),
            conn,
        )))
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum_core::extract::FromRequestParts<S> for Upgrade {
    type Rejection = HttpResponse;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Upgrade, HttpResponse> {
        Upgrade::from_parts(parts)
    }
}

/// Opens a WebSocket as one stream of an HTTP/2 connection (RFC 8441):
/// sends an extended `CONNECT` with `:protocol = websocket` for `request`'s
/// URL (`ws://` is sent with scheme `http`, `wss://` with `https`) through
/// `sender`, checks the `200` response, and returns the WebSocket with the
/// response. Call it as many times as the connection allows streams; each
/// WebSocket is independent.
///
/// The server must allow extended CONNECT (`SETTINGS_ENABLE_CONNECT_PROTOCOL`,
/// which hyper's `Connection::is_extended_connect_protocol_enabled` reports
/// once the server's SETTINGS arrived); a server that does not resets the
/// stream, which fails here as [`Error::Io`]. The whole exchange is bounded
/// by `config.handshake_timeout` ([`Error::HandshakeTimeout`]).
pub async fn connect_h2<B>(
    sender: &mut hyper::client::conn::http2::SendRequest<B>,
    request: &ClientRequest,
    config: Config,
) -> Result<(UpgradedStream, Response), Error>
where
    B: hyper::body::Body + Default + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let timeout = config.handshake_timeout;
    let mut handshake = ClientHandshake::new(request, config);
    let deadline = tokio::time::Instant::now() + timeout;
    let scheme = if request.is_tls() { "https" } else { "http" };
    let uri = format!("{scheme}://{}{}", request.host_header(), request.resource());
    let mut http_request = http::Request::builder()
        .method(Method::CONNECT)
        .version(Version::HTTP_2)
        .uri(uri)
        .extension(hyper::ext::Protocol::from_static("websocket"));
    for (name, value) in handshake.h2_headers() {
        http_request = http_request.header(name, value);
    }
    let http_request = http_request
        .body(B::default())
        .map_err(|e| Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    let exchange = async {
        sender.ready().await.map_err(io_error)?;
        let mut response = sender.send_request(http_request).await.map_err(io_error)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
            .collect();
        let validated = handshake
            .receive_h2_response(status, headers)
            .map_err(Error::Handshake)?
            .clone();
        let upgraded = hyper::upgrade::on(&mut response).await.map_err(io_error)?;
        let conn = handshake.into_connection().map_err(Error::Handshake)?;
        Ok((
            WebSocketStream::from_connection(TokioIo::new(upgraded), conn),
            validated,
        ))
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(result) => result,
        Err(_) => Err(Error::HandshakeTimeout),
    }
}

fn io_error(e: hyper::Error) -> Error {
    Error::Io(std::io::Error::other(e))
}

// The validation needs a real hyper connection for the upgrade itself; the
// request checks are plain functions and tested here.
#[cfg(test)]
mod tests {
    use super::*;

    fn h1(headers: &[(&str, &str)]) -> http::Request<()> {
        let mut builder = http::Request::builder().uri("/chat?x=1");
        for (n, v) in headers {
            builder = builder.header(*n, *v);
        }
        builder.body(()).unwrap()
    }

    const GOOD: &[(&str, &str)] = &[
        ("host", "example.com"),
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ];

    #[test]
    fn recognises_both_forms() {
        assert!(is_upgrade_request(&h1(GOOD)));
        assert!(!is_upgrade_request(&h1(&[("host", "x")])));
        let mut h2 = http::Request::builder()
            .method(Method::CONNECT)
            .version(Version::HTTP_2)
            .uri("https://example.com/chat")
            .body(())
            .unwrap();
        assert!(!is_upgrade_request(&h2));
        h2.extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        assert!(is_upgrade_request(&h2));
    }

    #[test]
    fn invalid_requests_get_their_status_and_reason() {
        let mut req = h1(&GOOD[..4]);
        let response = Upgrade::from_request(&mut req).unwrap_err();
        assert_eq!(response.status(), 400);
        let mut req = h1(GOOD);
        *req.method_mut() = Method::POST;
        let response = Upgrade::from_request(&mut req).unwrap_err();
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "GET, CONNECT");
        let mut req = h1(&[
            ("host", "example.com"),
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "8"),
        ]);
        let response = Upgrade::from_request(&mut req).unwrap_err();
        assert_eq!(response.status(), 426);
        assert_eq!(response.headers()["sec-websocket-version"], "13");
        let mut h2 = http::Request::builder()
            .method(Method::CONNECT)
            .version(Version::HTTP_2)
            .uri("https://example.com/chat")
            .header("sec-websocket-version", "13")
            .body(())
            .unwrap();
        let response = Upgrade::from_request(&mut h2).unwrap_err();
        assert_eq!(response.status(), 400, "no :protocol");
    }
}
