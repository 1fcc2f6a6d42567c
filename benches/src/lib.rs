//! Shared inputs and in-memory transports for the benchmarks in `benches/`,
//! so that every implementation reads the same bytes the same way.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use wsproto_core::frame::encode_frame;
use wsproto_core::OpCode;

pub mod decoders;

/// A payload of `size` bytes: mixed-script UTF-8 for text, a byte ramp otherwise.
pub fn payload(size: usize, opcode: OpCode) -> Vec<u8> {
    match opcode {
        OpCode::Text => {
            let mut text = String::with_capacity(size);
            for c in "wsproto κόσμε 世界 😀 ".chars().cycle() {
                if text.len() + c.len_utf8() > size {
                    break;
                }
                text.push(c);
            }
            while text.len() < size {
                text.push('a');
            }
            text.into_bytes()
        }
        _ => (0..size).map(|i| i as u8).collect(),
    }
}

/// A text payload of `size` ASCII bytes (UTF-8 validation's fast path).
pub fn ascii_payload(size: usize) -> Vec<u8> {
    b"wsproto: hello, world! 0123456789 "
        .iter()
        .copied()
        .cycle()
        .take(size)
        .collect()
}

/// `count` masked client frames of `size` bytes each, as a server receives them.
pub fn masked_frames(count: usize, size: usize, opcode: OpCode) -> BytesMut {
    masked_frames_of(count, opcode, &payload(size, opcode))
}

/// `count` masked client frames carrying `payload`, each with its own key.
pub fn masked_frames_of(count: usize, opcode: OpCode, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    for i in 0..count {
        let key = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes();
        encode_frame(&mut out, opcode, true, payload, Some(key));
    }
    out
}

/// How many frames of `size` bytes make about 4 MiB of input (at least 64).
pub fn frame_count(size: usize) -> usize {
    ((4 << 20) / (size + 14)).max(64)
}

/// Reads from a byte slice, discards writes: a socket whose peer already
/// sent everything, for blocking implementations.
pub struct SliceStream<'a> {
    data: &'a [u8],
}

impl<'a> SliceStream<'a> {
    /// A stream that will deliver `data`.
    pub fn new(data: &'a [u8]) -> SliceStream<'a> {
        SliceStream { data }
    }
}

impl io::Read for SliceStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

impl io::Write for SliceStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The same for async implementations: always ready.
pub struct AsyncSliceStream<'a>(pub SliceStream<'a>);

impl tokio::io::AsyncRead for AsyncSliceStream<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = buf.remaining().min(self.0.data.len());
        buf.put_slice(&self.0.data[..n]);
        self.0.data = &self.0.data[n..];
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for AsyncSliceStream<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A socket that receives one frame per readiness event: every read hands
/// over the next frame of `frames` (cycling through them) and the read
/// after it is pending (waking the task at once), as a server with one
/// message in flight per connection sees it. Writes are counted and
/// discarded. For measuring what each library costs per echoed message
/// outside the kernel.
pub struct FramePerRead {
    frames: Vec<u8>,
    frame_len: usize,
    at: usize,
    delivered: bool,
    /// Where writes go (counted).
    pub out: Sink,
}

impl FramePerRead {
    /// A socket that delivers `frames`, `frame_len` bytes each, in turn.
    pub fn new(frames: &[u8], frame_len: usize) -> FramePerRead {
        assert!(frame_len > 0 && frames.len().is_multiple_of(frame_len));
        FramePerRead {
            frames: frames.to_vec(),
            frame_len,
            at: 0,
            delivered: false,
            out: Sink::default(),
        }
    }
}

impl tokio::io::AsyncRead for FramePerRead {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if std::mem::take(&mut self.delivered) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let this = &mut *self;
        let n = buf
            .remaining()
            .min(this.frame_len - this.at % this.frame_len);
        buf.put_slice(&this.frames[this.at..this.at + n]);
        this.at = (this.at + n) % this.frames.len();
        this.delivered = this.at.is_multiple_of(this.frame_len);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for FramePerRead {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.out).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.out).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Counts bytes written and discards them.
#[derive(Default)]
pub struct Sink {
    /// Bytes written so far.
    pub written: usize,
}

impl io::Read for Sink {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl tokio::io::AsyncRead for Sink {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Pending
    }
}

impl tokio::io::AsyncWrite for Sink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.written += buf.len();
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let n = bufs.iter().map(|b| b.len()).sum();
        self.written += n;
        Poll::Ready(Ok(n))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The README's code blocks, compiled (and, where not `no_run`, run) as
/// doctests so that the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// docs/integration.md's code blocks, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/integration.md")]
pub struct IntegrationDoctests;

/// docs/production.md's code blocks, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/production.md")]
pub struct ProductionDoctests;
