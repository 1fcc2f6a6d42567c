//! Limits and switches, with documented defaults.

use core::time::Duration;

/// Configuration of a handshake and of the connection it produces.
///
/// Every limit has a safe default; raise them for trusted peers or for test
/// suites that send very large messages.
///
/// ```
/// use wsproto_core::Config;
/// let config = Config {
///     max_message_size: 1 << 20,
///     ..Config::default()
/// };
/// assert_eq!(config.max_frame_size, 16 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest HTTP header block accepted in the handshake, in bytes.
    /// Default 8 KiB. Beyond it a server answers 431.
    pub max_header_size: usize,
    /// Most header lines accepted in the handshake. Default 64. Beyond it a
    /// server answers 431.
    pub max_headers: usize,
    /// Largest frame payload accepted, in bytes. Default 16 MiB. Beyond it
    /// the connection fails with close code 1009.
    pub max_frame_size: usize,
    /// Largest message accepted (all fragments together), in bytes.
    /// Default 64 MiB. Beyond it the connection fails with close code 1009.
    pub max_message_size: usize,
    /// Most fragments in one message. Default 65,536 (4 MiB in 64-byte
    /// fragments). Beyond it the connection fails with close code 1009.
    pub max_fragments: usize,
    /// High-water mark of the outgoing buffer, in bytes. Default 16 MiB.
    /// While more than this is waiting to be written, `send` returns
    /// [`Error::WriteBufferFull`](crate::Error::WriteBufferFull) and incoming
    /// frames are left unparsed so that automatic pongs cannot grow the buffer.
    pub max_write_buffer: usize,
    /// Backpressure threshold of the outgoing buffer, in bytes. Default
    /// 64 KiB. The adapters stop taking new messages while more than this
    /// waits to be written (tokio's `Sink::poll_ready` is pending, a
    /// blocking std socket blocks, a non-blocking one returns
    /// `WouldBlock`) so that a peer that stops reading costs at most this
    /// plus one message. The core itself only reports it, through
    /// [`Connection::send_ready`](crate::Connection::send_ready);
    /// `max_write_buffer` is the hard limit behind it.
    pub write_high_water: usize,
    /// When set, outgoing messages are split into frames of at most this many
    /// payload bytes. Default `None`: one frame per message.
    pub max_send_frame_size: Option<usize>,
    /// Answer pings with pongs automatically. Default `true`.
    pub auto_pong: bool,
    /// Send a ping after this long without receiving anything. Default
    /// `None` (no keepalive). Servers behind proxies and load balancers
    /// with idle timeouts want it shorter than those timeouts.
    pub ping_interval: Option<Duration>,
    /// With `ping_interval` set: fail the connection with
    /// [`Error::KeepaliveTimeout`](crate::Error::KeepaliveTimeout) (close
    /// code 1006, nothing more is sent) when nothing at all arrives within
    /// this long after a keepalive ping. Default 30 s.
    pub ping_timeout: Duration,
    /// How long to wait for the peer's close frame after sending ours before
    /// giving up. Default 5 s.
    pub close_timeout: Duration,
    /// How long an adapter waits for the opening handshake to complete
    /// before dropping the connection (a peer sending its request a byte at
    /// a time holds a socket otherwise). The core has no clock and does not
    /// use it itself. Default 10 s.
    pub handshake_timeout: Duration,
    /// permessage-deflate (RFC 7692): offered by a client and accepted by a
    /// server with these settings, or never negotiated when `None`.
    /// Default `Some(DeflateConfig::default())`. The zlib state of a
    /// connection (about 300 KiB to compress at the default window, 40 KiB
    /// to inflate) is only allocated once a message needs it.
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::handshake::DeflateConfig>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_header_size: 8 * 1024,
            max_headers: 64,
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_fragments: 65_536,
            max_write_buffer: 16 << 20,
            write_high_water: 64 * 1024,
            max_send_frame_size: None,
            auto_pong: true,
            ping_interval: None,
            ping_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            #[cfg(feature = "deflate")]
            deflate: Some(crate::handshake::DeflateConfig::default()),
        }
    }
}
