//! Opening handshakes over an async transport.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use wsproto_core::{
    Accept, ClientHandshake, ClientRequest, Config, HandshakeError, Proxy, ProxyHandshake, Reject,
    Request, Response, ServerHandshake, Status,
};

use crate::{Error, MaybeTlsStream, WebSocketStream};

/// What [`connect`] returns: the WebSocket over plain TCP or TLS, and the
/// server's response.
pub type Connected = (WebSocketStream<MaybeTlsStream<TcpStream>>, Response);

const HANDSHAKE_READ: usize = 4096;

/// Accepts a WebSocket on `io` with the default configuration, for any path
/// and without a subprotocol.
pub async fn accept<S>(io: S) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with(io, Config::default(), |_| Ok(Accept::default())).await
}

/// Accepts a WebSocket on `io` after `callback` has seen the request (path,
/// query, headers, offered subprotocols) and either accepted it, possibly
/// with a subprotocol and extra headers, or rejected it with a status.
///
/// Invalid requests are answered with the right HTTP error (400, 405, 426,
/// 431) and a rejection with the callback's status; both return
/// `Err(Error::Handshake(..))` after the response is written. A request
/// that does not arrive within `config.handshake_timeout` ends with
/// `Err(Error::HandshakeTimeout)`.
///
/// ```no_run
/// use wsproto_tokio::{Accept, Config, Reject};
/// # async fn run(tcp: tokio::net::TcpStream) -> Result<(), wsproto_tokio::Error> {
/// let ws = wsproto_tokio::accept_with(tcp, Config::default(), |request| {
///     if request.path() != "/ws/echo" {
///         return Err(Reject::new(404, "no such endpoint"));
///     }
///     Ok(match request.subprotocols().iter().any(|p| p == "echo") {
///         true => Accept::default().subprotocol("echo"),
///         false => Accept::default(),
///     })
/// })
/// .await?;
/// # drop(ws); Ok(())
/// # }
/// ```
pub async fn accept_with<S, F>(
    io: S,
    config: Config,
    callback: F,
) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    within(
        config.handshake_timeout,
        server_handshake(io, config, callback),
    )
    .await
}

async fn server_handshake<S, F>(
    mut io: S,
    config: Config,
    callback: F,
) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let mut hs = ServerHandshake::new(config);
    let mut buf = vec![0u8; HANDSHAKE_READ];
    let decision = loop {
        let n = io.read(&mut buf).await?;
        if n == 0 {
            return Err(Error::AbnormalClosure);
        }
        match hs.receive(&buf[..n]) {
            Ok(Status::Partial) => {}
            Ok(Status::Complete(request)) => break callback(request),
            Err(e) => return Err(refuse(io, e.response(), e).await),
        }
    };
    let accept = match decision {
        Ok(accept) => accept,
        Err(reject) => {
            let response = reject.response();
            return Err(refuse(io, response, HandshakeError::Rejected(reject.status)).await);
        }
    };
    match hs.accept(accept) {
        Ok((response, conn)) => {
            io.write_all(&response).await?;
            io.flush().await?;
            Ok(WebSocketStream::from_connection(io, conn))
        }
        Err(e) => Err(refuse(io, e.response(), e).await),
    }
}

/// Writes an HTTP error response and shuts the transport down.
async fn refuse<S: AsyncWrite + Unpin>(mut io: S, response: Vec<u8>, e: HandshakeError) -> Error {
    // The peer may already be gone; the handshake error is what matters.
    let _ = io.write_all(&response).await;
    let _ = io.shutdown().await;
    Error::Handshake(e)
}

/// Connects to a `ws://` or (with the feature `rustls`) `wss://` URL with
/// the default configuration, through the HTTP proxy the environment names
/// if any (`https_proxy`, `http_proxy`, `all_proxy`, `no_proxy`: see
/// [`Proxy::from_env_with`]).
///
/// ```no_run
/// # async fn run() -> Result<(), wsproto_tokio::Error> {
/// let (ws, response) = wsproto_tokio::connect("ws://127.0.0.1:9527/ws/echo").await?;
/// println!("subprotocol: {:?}", response.subprotocol());
/// # drop(ws); Ok(())
/// # }
/// ```
pub async fn connect(url: &str) -> Result<Connected, Error> {
    connect_with(&ClientRequest::new(url)?, Config::default()).await
}

/// Connects as described by `request` (URL, subprotocols, headers, proxy).
/// TCP connect, proxy CONNECT, TLS handshake and WebSocket handshake
/// together are bounded by `config.handshake_timeout`. Through a proxy,
/// TLS runs inside the tunnel and checks the server's name, not the
/// proxy's; a proxy's refusal is an [`Error::Handshake`] with
/// [`HandshakeError::ProxyRefused`] or [`HandshakeError::ProxyAuthRequired`].
/// `wss://` uses `tls::default_client_config()`, or fails with
/// [`Error::Unsupported`] in a build without the feature `rustls`.
pub async fn connect_with(request: &ClientRequest, config: Config) -> Result<Connected, Error> {
    if request.is_tls() {
        #[cfg(feature = "rustls")]
        return connect_tls(request, config, crate::tls::default_client_config()).await;
        #[cfg(not(feature = "rustls"))]
        return Err(Error::Unsupported(
            "wss:// URLs need TLS: build wsproto-tokio with the feature rustls",
        ));
    }
    within(config.handshake_timeout, async {
        let tcp = open_tcp(request).await?;
        client_handshake(MaybeTlsStream::Plain(tcp), request, config).await
    })
    .await
}

/// Connects to a `wss://` URL with your own rustls configuration (private
/// CA, client certificates, other roots). ALPN must not ask for `h2` (the
/// handshake here is HTTP/1.1; see [`upgrade::connect_h2`](crate::upgrade)
/// for HTTP/2).
///
/// ```no_run
/// # async fn run(roots: rustls::RootCertStore) -> Result<(), wsproto_tokio::Error> {
/// use std::sync::Arc;
/// let provider = Arc::new(rustls::crypto::ring::default_provider());
/// let tls = rustls::ClientConfig::builder_with_provider(provider)
///     .with_safe_default_protocol_versions()
///     .unwrap()
///     .with_root_certificates(roots)
///     .with_no_client_auth();
/// let request = wsproto_tokio::ClientRequest::new("wss://internal.example:8443/feed")?;
/// let (ws, _) = wsproto_tokio::connect_tls(&request, Default::default(), Arc::new(tls)).await?;
/// # drop(ws); Ok(())
/// # }
/// ```
#[cfg(feature = "rustls")]
pub async fn connect_tls(
    request: &ClientRequest,
    config: Config,
    tls: std::sync::Arc<rustls::ClientConfig>,
) -> Result<Connected, Error> {
    if !request.is_tls() {
        return Err(Error::Unsupported("connect_tls needs a wss:// URL"));
    }
    within(config.handshake_timeout, async {
        let tcp = open_tcp(request).await?;
        let io = crate::tls::wrap(tcp, request.host(), tls).await?;
        client_handshake(io, request, config).await
    })
    .await
}

/// Opens the TCP connection to the server: directly, or to the proxy
/// `request` resolves to and through a CONNECT tunnel.
async fn open_tcp(request: &ClientRequest) -> Result<TcpStream, Error> {
    let Some(proxy) = request.resolve_proxy()? else {
        let tcp = TcpStream::connect((request.host(), request.port())).await?;
        tcp.set_nodelay(true)?;
        return Ok(tcp);
    };
    let mut tcp = TcpStream::connect((proxy.host(), proxy.port()))
        .await
        .map_err(|e| {
            // Name the proxy: a refused connection to it must not read as
            // the server being down.
            std::io::Error::new(
                e.kind(),
                format!("proxy {}:{}: {e}", proxy.host(), proxy.port()),
            )
        })?;
    tcp.set_nodelay(true)?;
    tunnel(&mut tcp, &proxy, request).await?;
    Ok(tcp)
}

/// Asks the proxy on `tcp` for a tunnel to the server. The answer is
/// peeked and only its own bytes read, so whatever the server sends first
/// stays in the socket for the TLS or WebSocket handshake.
async fn tunnel(tcp: &mut TcpStream, proxy: &Proxy, request: &ClientRequest) -> Result<(), Error> {
    let mut hs = ProxyHandshake::new(proxy, request.host(), request.port())?;
    tcp.write_all(hs.request_bytes()).await?;
    let mut buf = vec![0u8; HANDSHAKE_READ];
    loop {
        let n = tcp.peek(&mut buf).await?;
        if n == 0 {
            return Err(Error::Handshake(HandshakeError::ProxyResponse(
                "the proxy closed the connection before answering",
            )));
        }
        let status = hs.receive(&buf[..n])?;
        // Until the head is complete every byte is the proxy's.
        let used = match status {
            Status::Partial => n,
            Status::Complete(used) => used,
        };
        tcp.read_exact(&mut buf[..used]).await?;
        if let Status::Complete(_) = status {
            return Ok(());
        }
    }
}

/// Runs the client handshake over a transport you opened (TCP, TLS, a
/// Unix socket, an in-memory duplex).
pub async fn client<S>(
    io: S,
    request: &ClientRequest,
    config: Config,
) -> Result<(WebSocketStream<S>, Response), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    within(
        config.handshake_timeout,
        client_handshake(io, request, config),
    )
    .await
}

async fn client_handshake<S>(
    mut io: S,
    request: &ClientRequest,
    config: Config,
) -> Result<(WebSocketStream<S>, Response), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut hs = ClientHandshake::new(request, config);
    io.write_all(hs.request_bytes()).await?;
    io.flush().await?;
    let mut buf = vec![0u8; HANDSHAKE_READ];
    let response = loop {
        let n = io.read(&mut buf).await?;
        if n == 0 {
            return Err(Error::AbnormalClosure);
        }
        if let Status::Complete(response) = hs.receive(&buf[..n])? {
            break response.clone();
        }
    };
    let conn = hs.into_connection()?;
    Ok((WebSocketStream::from_connection(io, conn), response))
}

/// Runs a handshake, giving up with [`Error::HandshakeTimeout`] after `limit`.
///
/// The handshake's state (the parser, the half-built connection, the
/// timer) is boxed: it lives only until the handshake completes, and
/// inline it would stay in the caller's future, a task that often lasts as
/// long as the connection (5.5 KiB per connection in an echo server).
fn within<'a, T: 'a>(
    limit: std::time::Duration,
    handshake: impl std::future::Future<Output = Result<T, Error>> + 'a,
) -> impl std::future::Future<Output = Result<T, Error>> + 'a {
    let handshake = Box::pin(tokio::time::timeout(limit, handshake));
    async move { handshake.await.unwrap_or(Err(Error::HandshakeTimeout)) }
}
