//! Compressing and inflating messages for permessage-deflate (RFC 7692
//! section 7.2), with the parameters the handshake agreed on.
//!
//! Each direction is one raw DEFLATE stream. A message is compressed and
//! flushed to a byte boundary (`Z_SYNC_FLUSH`), and the flush's empty stored
//! block trailer `00 00 ff ff` is cut off before sending and put back before
//! inflating. With context takeover the streams carry on across messages;
//! without it they are reset after each one.
//!
//! The zlib state is only allocated for the first message that needs it, so
//! a connection that negotiated compression but exchanges only small
//! messages costs no more than one without.

use alloc::vec::Vec;
use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::frame::Role;
use crate::handshake::{DeflateConfig, DeflateParams};

/// The empty stored block a sync flush ends with (RFC 7692 section 7.2.1).
const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Output grows by at least this much per step while inflating.
const INFLATE_STEP: usize = 4096;

/// Why an incoming compressed message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// The inflated message would exceed the limit.
    TooLarge,
    /// The payload is not a valid DEFLATE stream.
    Corrupt,
}

/// The compression state of one connection, both directions.
pub(crate) struct PerMessageDeflate {
    params: DeflateParams,
    level: u8,
    threshold: usize,
    /// Our window and whether we reset after each message.
    send_bits: u8,
    send_reset: bool,
    /// The peer's window and whether it resets after each message.
    receive_bits: u8,
    receive_reset: bool,
    deflater: Option<Compress>,
    inflater: Option<Decompress>,
    /// The peer's last block so far was a final one (BFINAL): the inflater
    /// was reset, and whatever follows starts a new stream.
    stream_ended: bool,
}

impl core::fmt::Debug for PerMessageDeflate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PerMessageDeflate")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl PerMessageDeflate {
    pub(crate) fn new(role: Role, params: DeflateParams, config: &DeflateConfig) -> Self {
        let (send_bits, send_reset, receive_bits, receive_reset) = match role {
            Role::Server => (
                params.server_max_window_bits,
                params.server_no_context_takeover,
                params.client_max_window_bits,
                params.client_no_context_takeover,
            ),
            Role::Client => (
                params.client_max_window_bits,
                params.client_no_context_takeover,
                params.server_max_window_bits,
                params.server_no_context_takeover,
            ),
        };
        PerMessageDeflate {
            params,
            level: config.compression_level.min(9),
            threshold: config.compression_threshold,
            send_bits,
            send_reset,
            receive_bits,
            receive_reset,
            deflater: None,
            inflater: None,
            stream_ended: false,
        }
    }

    pub(crate) fn params(&self) -> &DeflateParams {
        &self.params
    }

    /// Whether [`compress`](Self::compress) would compress a message of
    /// `len` bytes (it can still fall back to sending it as it is).
    pub(crate) fn compresses(&self, len: usize) -> bool {
        len >= self.threshold && self.send_bits >= 9
    }

    /// Compresses one whole message, or `None` to send it as it is: below
    /// the threshold, with an 8-bit window zlib cannot produce, or (should
    /// zlib ever fail) after resetting the stream so both sides stay in step.
    pub(crate) fn compress(&mut self, payload: &[u8]) -> Option<Bytes> {
        if !self.compresses(payload.len()) {
            return None;
        }
        if payload.is_empty() {
            // zlib makes no output for a flush with nothing new to flush, so
            // send the empty block RFC 7692 section 7.2.3.6 gives; the stream
            // is at a byte boundary after every message, so it fits in.
            return Some(Bytes::from_static(&[0x00]));
        }
        let (level, bits) = (self.level, self.send_bits);
        let deflater = self.deflater.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(u32::from(level)), false, bits)
        });
        let mut out = Vec::with_capacity(payload.len() / 2 + 64);
        let start = deflater.total_in();
        loop {
            let consumed = usize::try_from(deflater.total_in() - start).unwrap_or(usize::MAX);
            let input = payload.get(consumed..).unwrap_or_default();
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            if deflater
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .is_err()
            {
                deflater.reset();
                return None;
            }
            // Done when all input is in and zlib left output room unused:
            // then the flush is complete.
            let consumed = usize::try_from(deflater.total_in() - start).unwrap_or(usize::MAX);
            if consumed >= payload.len() && out.len() < out.capacity() {
                break;
            }
        }
        if !out.ends_with(&TRAILER) {
            deflater.reset();
            return None;
        }
        out.truncate(out.len() - TRAILER.len());
        if self.send_reset {
            deflater.reset();
        }
        Some(Bytes::from(out))
    }

    /// Inflates the next piece of a compressed message onto `out`, failing
    /// as soon as `out` would grow past `limit` bytes. Output memory grows
    /// with what was inflated, never past `limit` plus one step.
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        if input.is_empty() {
            return Ok(());
        }
        self.stream_ended = false;
        let bits = self.receive_bits.clamp(9, 15);
        let inflater = self
            .inflater
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, bits));
        let mut input = input;
        loop {
            if out.len() > limit {
                return Err(InflateError::TooLarge);
            }
            if out.len() == out.capacity() {
                let step = out.len().max(INFLATE_STEP).min(limit + 1 - out.len());
                out.reserve_exact(step);
            }
            let (in_before, out_before) = (inflater.total_in(), out.len());
            let status = inflater
                .decompress_vec(input, out, FlushDecompress::None)
                .map_err(|_| InflateError::Corrupt)?;
            let consumed = usize::try_from(inflater.total_in() - in_before).unwrap_or(usize::MAX);
            input = input.get(consumed..).unwrap_or_default();
            if out.len() > limit {
                return Err(InflateError::TooLarge);
            }
            if status == Status::StreamEnd {
                // A final block (RFC 7692 section 7.2.3.4). What follows,
                // if anything, is a new stream.
                inflater.reset(false);
                if input.is_empty() {
                    self.stream_ended = true;
                    return Ok(());
                }
                continue;
            }
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(());
            }
            if consumed == 0 && out.len() == out_before {
                // Input left and room to write, yet no progress.
                return Err(InflateError::Corrupt);
            }
        }
    }

    /// Ends a compressed message: inflates the trailer the sender cut off
    /// (unless the message ended on a final block, after which there is no
    /// block for it to complete) and resets the stream if the peer does not
    /// keep its context.
    pub(crate) fn finish_message(
        &mut self,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        if !self.stream_ended {
            self.inflate(&TRAILER, out, limit)?;
        }
        self.stream_ended = false;
        if self.receive_reset {
            if let Some(inflater) = &mut self.inflater {
                inflater.reset(false);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn params(bits: u8, no_takeover: bool) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: no_takeover,
            client_no_context_takeover: no_takeover,
            server_max_window_bits: bits,
            client_max_window_bits: bits,
        }
    }

    fn pair(bits: u8, no_takeover: bool) -> (PerMessageDeflate, PerMessageDeflate) {
        let config = DeflateConfig {
            compression_threshold: 0,
            ..DeflateConfig::default()
        };
        (
            PerMessageDeflate::new(Role::Server, params(bits, no_takeover), &config),
            PerMessageDeflate::new(Role::Client, params(bits, no_takeover), &config),
        )
    }

    fn roundtrip(tx: &mut PerMessageDeflate, rx: &mut PerMessageDeflate, msg: &[u8]) -> usize {
        let wire = tx.compress(msg).unwrap();
        let mut out = Vec::new();
        rx.inflate(&wire, &mut out, usize::MAX - 1).unwrap();
        rx.finish_message(&mut out, usize::MAX - 1).unwrap();
        assert_eq!(out, msg);
        wire.len()
    }

    /// RFC 7692 section 7.2.3.1: "Hello" compressed is
    /// `f2 48 cd c9 c9 07 00`, and inflating it gives "Hello" back.
    #[test]
    fn rfc_7692_hello() {
        let (mut server, mut client) = pair(15, false);
        let mut out = Vec::new();
        client
            .inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut out, 100)
            .unwrap();
        client.finish_message(&mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
        assert_eq!(
            &server.compress(b"Hello").unwrap()[..],
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
    }

    /// RFC 7692 section 7.2.3.2: with context takeover the second "Hello"
    /// is a back-reference, `f2 00 11 00 00`.
    #[test]
    fn rfc_7692_context_takeover() {
        let (mut server, mut client) = pair(15, false);
        assert_eq!(roundtrip(&mut server, &mut client, b"Hello"), 7);
        assert_eq!(
            &server.compress(b"Hello").unwrap()[..],
            &[0xf2, 0x00, 0x11, 0x00, 0x00]
        );
        let mut out = Vec::new();
        client
            .inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], &mut out, 100)
            .unwrap();
        client.finish_message(&mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
    }

    fn inflate_one(rx: &mut PerMessageDeflate, wire: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        rx.inflate(wire, &mut out, 100).unwrap();
        rx.finish_message(&mut out, 100).unwrap();
        out
    }

    /// RFC 7692 sections 7.2.3.3 to 7.2.3.5: a stored block, a final block
    /// followed by the byte that lets the trailer complete a new one, and a
    /// message in two blocks. Each inflates to "Hello", one after another
    /// on the same stream.
    #[test]
    fn rfc_7692_other_block_layouts() {
        let (_, mut client) = pair(15, false);
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        let two_blocks = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        for wire in [&stored[..], &bfinal, &two_blocks, &bfinal[..7], &stored] {
            assert_eq!(inflate_one(&mut client, wire), b"Hello", "{wire:02x?}");
        }
    }

    #[test]
    fn no_context_takeover_compresses_each_message_alone() {
        let (mut server, mut client) = pair(15, true);
        assert_eq!(roundtrip(&mut server, &mut client, b"Hello"), 7);
        assert_eq!(roundtrip(&mut server, &mut client, b"Hello"), 7);
    }

    #[test]
    fn inflating_stops_at_the_limit() {
        let (mut server, mut client) = pair(15, false);
        let bomb = vec![0u8; 10 << 20];
        let wire = server.compress(&bomb).unwrap();
        assert!(wire.len() < 20_000, "{}", wire.len());
        let mut out = Vec::new();
        assert_eq!(
            client.inflate(&wire, &mut out, 1 << 20),
            Err(InflateError::TooLarge)
        );
        // Memory stayed near the limit, not the 10 MiB the frame holds.
        assert!(out.capacity() <= (1 << 20) + 1, "{}", out.capacity());
    }

    /// zlib refuses a second sync flush with no input in between, so an
    /// empty message after another on a carried-over context must not go
    /// through zlib (found by `messages_roundtrip`).
    #[test]
    fn empty_message_after_another_is_compressed() {
        for no_takeover in [false, true] {
            let (mut server, mut client) = pair(15, no_takeover);
            for msg in [&b"hello hello"[..], b"", b"", b"hello again", b""] {
                roundtrip(&mut server, &mut client, msg);
            }
        }
        let (mut server, _) = pair(15, false);
        assert_eq!(server.compress(b"").as_deref(), Some(&[0x00][..]));
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        let (_, mut client) = pair(15, false);
        let mut out = Vec::new();
        assert_eq!(
            client.inflate(&[0xff; 64], &mut out, 1000),
            Err(InflateError::Corrupt)
        );
    }

    #[test]
    fn eight_bit_window_sends_uncompressed() {
        let (mut server, _) = pair(8, false);
        assert_eq!(server.compress(&[b'a'; 1000]), None);
    }

    #[test]
    fn threshold_leaves_small_messages_alone() {
        let config = DeflateConfig::default();
        let mut server = PerMessageDeflate::new(Role::Server, params(15, false), &config);
        assert_eq!(server.compress(&[b'a'; 63]), None);
        assert!(server.compress(&[b'a'; 64]).is_some());
    }

    proptest::proptest! {
        /// Any sequence of messages survives compression and inflation, with
        /// and without context takeover, at any window and any split of
        /// the compressed bytes.
        #[test]
        fn messages_roundtrip(
            messages in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(Vec::new()),
                    proptest::collection::vec(0u8..4, 0..3000),
                ], 1..6),
            bits in 9u8..=15,
            no_takeover: bool,
            cut in 0usize..4000,
        ) {
            let (mut server, mut client) = pair(bits, no_takeover);
            for msg in &messages {
                let wire = server.compress(msg).unwrap();
                let cut = cut.min(wire.len());
                let mut out = Vec::new();
                client.inflate(&wire[..cut], &mut out, 1 << 20).unwrap();
                client.inflate(&wire[cut..], &mut out, 1 << 20).unwrap();
                client.finish_message(&mut out, 1 << 20).unwrap();
                proptest::prop_assert_eq!(&out, msg);
            }
        }
    }
}
