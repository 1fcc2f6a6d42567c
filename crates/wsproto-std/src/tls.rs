//! The transport [`connect`](crate::connect) returns: plain TCP for `ws://`,
//! TLS through rustls for `wss://` (feature `rustls`).
//!
//! Certificates are checked against the Mozilla root set compiled in
//! (`webpki-roots`) or, with the feature `rustls-native-roots`, the
//! operating system's roots; `connect_tls` takes a `rustls::ClientConfig`
//! of your own. Servers need nothing from here: `accept` runs over any
//! `Read + Write`, such as a `rustls::StreamOwned<ServerConnection, _>`.

use std::io::{self, IoSlice, Read, Write};

/// A client transport: plain, or TLS over it.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream<S: Read + Write> {
    /// `ws://`.
    Plain(S),
    /// `wss://`, through rustls.
    #[cfg(feature = "rustls")]
    Rustls(Box<rustls::StreamOwned<rustls::ClientConnection, S>>),
}

impl<S: Read + Write> MaybeTlsStream<S> {
    /// The plain transport (to set timeouts or non-blocking mode), under
    /// TLS if there is TLS.
    pub fn get_ref(&self) -> &S {
        match self {
            MaybeTlsStream::Plain(s) => s,
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.get_ref(),
        }
    }

    /// The plain transport, mutably. Reading or writing it directly under
    /// TLS would corrupt the TLS stream.
    pub fn get_mut(&mut self) -> &mut S {
        match self {
            MaybeTlsStream::Plain(s) => s,
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.get_mut(),
        }
    }

    /// True for `wss://`.
    pub fn is_tls(&self) -> bool {
        !matches!(self, MaybeTlsStream::Plain(_))
    }
}

impl<S: Read + Write> Read for MaybeTlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            MaybeTlsStream::Plain(s) => s.read(buf),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.read(buf),
        }
    }
}

impl<S: Read + Write> Write for MaybeTlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            MaybeTlsStream::Plain(s) => s.write(buf),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            MaybeTlsStream::Plain(s) => s.write_vectored(bufs),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            MaybeTlsStream::Plain(s) => s.flush(),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.flush(),
        }
    }
}

/// The client configuration `connect` uses for `wss://`: rustls with the
/// *ring* provider, safe default protocol versions and the root set this
/// build was made with, built once.
#[cfg(feature = "rustls")]
pub fn default_client_config() -> std::sync::Arc<rustls::ClientConfig> {
    use std::sync::{Arc, OnceLock};
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_root_certificates(roots())
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

#[cfg(all(feature = "rustls", not(feature = "rustls-native-roots")))]
fn roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

#[cfg(feature = "rustls-native-roots")]
fn roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    roots
}

/// Runs the TLS handshake for `host` over `io` (blocking; bounded by the
/// socket's read timeout).
#[cfg(feature = "rustls")]
pub(crate) fn wrap<S: Read + Write>(
    mut io: S,
    host: &str,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> io::Result<MaybeTlsStream<S>> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{host:?} is not a valid TLS server name: {e}"),
        )
    })?;
    let mut conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
    // Finish the handshake here, so that certificate errors surface from
    // connect rather than from the first read.
    while conn.is_handshaking() {
        conn.complete_io(&mut io)?;
    }
    Ok(MaybeTlsStream::Rustls(Box::new(rustls::StreamOwned::new(
        conn, io,
    ))))
}
