//! The outgoing queue: bytes waiting for the transport, in order.
//!
//! Headers, control frames, small payloads and masked payloads are copied
//! into one contiguous buffer, so that many small frames leave in a single
//! write. A large unmasked payload given as [`Bytes`] is queued by
//! reference instead, so a server echoing or broadcasting a 64 KiB message
//! does not copy it: the transport writes the header and the payload together
//! with a vectored write (see [`Connection::transmit_chunks`]).
//!
//! [`Connection::transmit_chunks`]: crate::Connection::transmit_chunks

use alloc::collections::VecDeque;
use bytes::{Buf, Bytes, BytesMut};

/// Payloads at least this long are queued by reference rather than copied
/// when no mask has to be applied. Smaller ones are copied: they then
/// coalesce with their header into one `send` instead of a `writev`; with a
/// 1 KiB threshold `echo_bench` at 100 connections × 1 KiB measured more
/// server CPU per message than copying (docs/performance.md, "Vectored
/// writes"). From 16 KiB the copy saved is worth more than an I/O vector.
pub(crate) const SHARE_MIN: usize = 16 * 1024;

#[derive(Debug, Default)]
pub(crate) struct TxQueue {
    /// Headers and copied payloads, contiguous.
    copied: BytesMut,
    /// How many bytes of `copied` were written out so far, ever.
    consumed: u64,
    /// Payloads queued by reference, each with the position in `copied`
    /// (counted like `consumed`) before which it goes. Empty unless large
    /// unmasked payloads are waiting, so small frames never touch it.
    shared: VecDeque<(u64, Bytes)>,
    /// Bytes in `shared`.
    shared_len: usize,
}

impl TxQueue {
    /// Total bytes queued.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.copied.len() + self.shared_len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the buffers' memory beyond `keep` bytes once everything was
    /// written (see `Connection::release_memory`).
    pub(crate) fn release_memory(&mut self, keep: usize) {
        if !self.is_empty() {
            return;
        }
        crate::connection::release(&mut self.copied, keep);
        if self.shared.capacity() != 0 {
            self.shared = VecDeque::new();
        }
    }

    /// The copy buffer, for appending frames.
    #[inline]
    pub(crate) fn copy_buf(&mut self) -> &mut BytesMut {
        &mut self.copied
    }

    /// Queues `payload` without copying it.
    #[inline]
    pub(crate) fn push_shared(&mut self, payload: Bytes) {
        if payload.is_empty() {
            return;
        }
        self.shared_len += payload.len();
        let at = self.consumed + self.copied.len() as u64;
        self.shared.push_back((at, payload));
    }

    /// How many copied bytes go before the shared payload queued at `at`.
    #[inline]
    fn copied_before(&self, at: u64) -> usize {
        usize::try_from(at - self.consumed).unwrap_or(usize::MAX)
    }

    /// The first contiguous run of queued bytes.
    #[inline]
    pub(crate) fn first(&self) -> Option<&[u8]> {
        match self.shared.front() {
            None => (!self.copied.is_empty()).then_some(self.copied.as_ref()),
            Some((at, payload)) => match self.copied_before(*at) {
                0 => Some(payload),
                n => self.copied.get(..n),
            },
        }
    }

    /// Every queued run, in order.
    #[inline]
    pub(crate) fn chunks(&self) -> Chunks<'_> {
        Chunks {
            copied: &self.copied,
            position: self.consumed,
            shared: self.shared.iter(),
            next_shared: None,
            tail: &[],
        }
    }

    /// Drops the first `n` queued bytes (fewer if fewer are queued).
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) {
        if n >= self.len() {
            // The common case: the transport took everything.
            self.consumed += self.copied.len() as u64;
            self.copied.clear();
            if !self.shared.is_empty() {
                self.shared.clear();
            }
            self.shared_len = 0;
            return;
        }
        self.advance_partly(n);
    }

    fn advance_partly(&mut self, mut n: usize) {
        while n > 0 {
            let before = match self.shared.front() {
                None => usize::MAX,
                Some((at, _)) => self.copied_before(*at),
            };
            if before > 0 {
                let k = n.min(before).min(self.copied.len());
                if k == 0 {
                    break; // only when `n` exceeded what is queued: cannot happen
                }
                self.copied.advance(k);
                self.consumed += k as u64;
                n -= k;
            } else if let Some((_, payload)) = self.shared.front_mut() {
                let k = n.min(payload.len());
                payload.advance(k);
                self.shared_len -= k;
                n -= k;
                if payload.is_empty() {
                    self.shared.pop_front();
                }
            }
        }
    }

    /// Forgets everything queued.
    pub(crate) fn clear(&mut self) {
        self.advance(usize::MAX);
    }
}

/// The queued runs of bytes, in the order they must be written; from
/// [`Connection::transmit_chunks`](crate::Connection::transmit_chunks).
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    copied: &'a [u8],
    /// Position of `copied[0]`, counted like `TxQueue::consumed`.
    position: u64,
    shared: alloc::collections::vec_deque::Iter<'a, (u64, Bytes)>,
    /// A shared payload whose preceding copied bytes were just handed out.
    next_shared: Option<&'a Bytes>,
    /// A borrowed payload that goes after everything queued ([`DirectSend`]).
    tail: &'a [u8],
}

impl<'a> Chunks<'a> {
    /// Puts the first chunks into `slices`; returns how many.
    #[cfg(feature = "std")]
    pub(crate) fn fill_io_slices(self, slices: &mut [std::io::IoSlice<'a>]) -> usize {
        let mut count = 0;
        for (slot, chunk) in slices.iter_mut().zip(self) {
            *slot = std::io::IoSlice::new(chunk);
            count += 1;
        }
        count
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if let Some(payload) = self.next_shared.take() {
            return Some(payload);
        }
        match self.shared.next() {
            None => {
                let rest = core::mem::take(&mut self.copied);
                if !rest.is_empty() {
                    return Some(rest);
                }
                let tail = core::mem::take(&mut self.tail);
                (!tail.is_empty()).then_some(tail)
            }
            Some((at, payload)) => {
                let n = usize::try_from(at - self.position).unwrap_or(usize::MAX);
                if n == 0 {
                    return Some(payload);
                }
                let (run, rest) = self.copied.split_at(n.min(self.copied.len()));
                self.copied = rest;
                self.position = *at;
                self.next_shared = Some(payload);
                Some(run)
            }
        }
    }
}

/// A message whose payload is written straight from the caller's slice,
/// from [`Connection::send_binary_direct`] or
/// [`Connection::send_text_direct`]: what was queued before it, its header,
/// then the borrowed payload, with no copy of the payload in between.
///
/// Write [`chunks`](Self::chunks) (or [`io_slices`](Self::io_slices)) to
/// the transport and report each write with [`advance`](Self::advance)
/// until [`remaining`](Self::remaining) is 0. Dropping it earlier is not a
/// loss: whatever of the payload was not written is copied into the
/// connection's outgoing queue then, behind everything before it, so the
/// message goes out whole with the next writes, as if it had been sent with
/// [`Connection::send_binary`]. The connection stays borrowed while this
/// exists, so nothing else can be queued in between.
///
/// ```
/// use wsproto_core::{Config, Connection};
///
/// let mut conn = Connection::server(Config::default());
/// let data = vec![7u8; 65536];
/// let mut send = conn.send_binary_direct(&data).unwrap();
/// let chunks: Vec<&[u8]> = send.chunks().collect();
/// assert_eq!(chunks[0], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
/// assert_eq!(chunks[1].as_ptr(), data.as_ptr()); // the caller's own bytes
/// send.advance(10 + 1000); // the socket took the header and 1000 bytes
/// drop(send); // the other 64536 are copied into the queue
/// assert_eq!(conn.buffered_out(), 64536);
/// ```
///
/// [`Connection::send_binary_direct`]: crate::Connection::send_binary_direct
/// [`Connection::send_text_direct`]: crate::Connection::send_text_direct
/// [`Connection::send_binary`]: crate::Connection::send_binary
#[derive(Debug)]
#[must_use = "dropped unwritten, the payload is copied into the queue"]
pub struct DirectSend<'c, 'p> {
    queue: &'c mut TxQueue,
    /// The part of the borrowed payload not written yet; empty when the
    /// message was queued the ordinary way (masked, compressed, small or
    /// split into frames).
    payload: &'p [u8],
}

impl<'c, 'p> DirectSend<'c, 'p> {
    #[inline]
    pub(crate) fn new(queue: &'c mut TxQueue, payload: &'p [u8]) -> Self {
        DirectSend { queue, payload }
    }

    /// Every chunk still to be written, in order: the queue's chunks (which
    /// end with this message's header), then the payload.
    #[inline]
    pub fn chunks(&self) -> Chunks<'_> {
        Chunks {
            tail: self.payload,
            ..self.queue.chunks()
        }
    }

    /// Fills `slices` with the first chunks of [`chunks`](Self::chunks),
    /// for `Write::write_vectored`, and returns how many it filled.
    #[cfg(feature = "std")]
    pub fn io_slices<'a>(&'a self, slices: &mut [std::io::IoSlice<'a>]) -> usize {
        self.chunks().fill_io_slices(slices)
    }

    /// The first chunk still to be written, if any.
    #[inline]
    pub fn first(&self) -> Option<&[u8]> {
        self.chunks().next()
    }

    /// Marks the first `n` bytes of [`chunks`](Self::chunks) as written.
    #[inline]
    pub fn advance(&mut self, n: usize) {
        let queued = self.queue.len();
        self.queue.advance(n);
        if n > queued {
            let rest = self.payload.get(n - queued..).unwrap_or_default();
            self.payload = rest;
        }
    }

    /// How many bytes are still to be written, the queue's included.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.queue.len() + self.payload.len()
    }
}

impl Drop for DirectSend<'_, '_> {
    #[inline]
    fn drop(&mut self) {
        if !self.payload.is_empty() {
            self.queue.copy_buf().extend_from_slice(self.payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use bytes::BufMut;

    fn copy(q: &mut TxQueue, data: &[u8]) {
        q.copy_buf().put_slice(data);
    }

    fn contents(q: &TxQueue) -> Vec<u8> {
        q.chunks().flatten().copied().collect()
    }

    #[test]
    fn copies_coalesce_and_shared_payloads_stay_separate() {
        let mut q = TxQueue::default();
        copy(&mut q, b"ab");
        copy(&mut q, b"cd");
        q.push_shared(Bytes::from_static(b"efgh"));
        copy(&mut q, b"ij");
        let runs: Vec<&[u8]> = q.chunks().collect();
        assert_eq!(runs, [&b"abcd"[..], b"efgh", b"ij"]);
        assert_eq!(q.first(), Some(&b"abcd"[..]));
        assert_eq!(q.len(), 10);
    }

    #[test]
    fn advance_across_runs_keeps_the_order() {
        let mut q = TxQueue::default();
        copy(&mut q, b"abc");
        q.push_shared(Bytes::from_static(b"defg"));
        copy(&mut q, b"hi");
        q.advance(2);
        assert_eq!(contents(&q), b"cdefghi");
        q.advance(3);
        assert_eq!(q.first(), Some(&b"fg"[..]));
        assert_eq!(contents(&q), b"fghi");
        q.advance(100);
        assert!(q.is_empty());
        assert_eq!(q.first(), None);
        copy(&mut q, b"x");
        assert_eq!(contents(&q), b"x");
    }
}
