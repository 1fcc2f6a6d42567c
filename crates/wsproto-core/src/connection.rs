//! [`Connection`]: the state machine of an open WebSocket.
//!
//! The caller moves bytes and time in and out; the connection does the rest:
//! it decodes frames, reassembles and validates messages, answers pings and
//! close frames, fails the connection with the right close code on a protocol
//! violation, and tells the caller when to wake it for keepalive and close
//! timeouts.

use alloc::boxed::Box;
use bytes::{Bytes, BytesMut};
use core::fmt;
use core::time::Duration;

use crate::close::{CloseCode, CloseFrame, MAX_CLOSE_REASON};
use crate::config::Config;
use crate::error::{Error, ProtocolError};
use crate::frame::MAX_CONTROL_PAYLOAD;
use crate::frame::{
    encode_frame_rsv, encode_header, Frame, FrameDecoder, FrameHeader, OpCode, Role, Step,
    Unmasker, RSV1,
};
use crate::message::{Message, Utf8Bytes, Utf8Validator};
use crate::random::RandomSource;
use crate::transmit::{Chunks, DirectSend, TxQueue, SHARE_MIN};
use crate::Status;

/// How many inputs of the current size the receive buffer makes room for
/// when it has to grow for an input of `LARGE_INPUT` bytes or more, up to
/// `RECEIVE_ROOM_MAX` bytes. Making room moves the unconsumed bytes (a
/// frame cut by the end of the last input) to the front of the buffer;
/// with room for several inputs that happens once every several. In the
/// decode bench's 64 KiB inputs, room for 2, 4 and 8 inputs spent 20.5%,
/// 10.9% and 5.9% of the time in that move (`perf record`) and decoded
/// 0.48, 0.54 and 0.61 M messages/s (three alternating runs each;
/// docs/performance.md, Decoding). Smaller inputs (small messages, the
/// std adapter's 16 KiB reads) grow the buffer by what they bring, so an
/// idle connection's message needs no more than that; `release_memory`
/// gives the room back when the connection goes idle.
const RECEIVE_ROOM: usize = 8;
/// The most room `RECEIVE_ROOM` makes: the tokio adapter's reads of up to
/// 128 KiB get room for four.
const RECEIVE_ROOM_MAX: usize = 512 * 1024;
const LARGE_INPUT: usize = 32 * 1024;

/// What the peer sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete text or binary message.
    Message(Message),
    /// A ping. With `Config::auto_pong` (the default) the pong is already queued.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// The peer's close frame. The reply (same code) is already queued unless
    /// we had sent our close first; once it is flushed the state is
    /// [`State::Closed`].
    Close(CloseFrame),
}

/// Where the close handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's (or the close timeout).
    /// Messages the peer sent before its close are still delivered.
    CloseSent,
    /// The peer's close frame arrived; our reply is queued but not yet
    /// written out.
    CloseReceived,
    /// Nothing more will be sent or received: once the outgoing buffer is
    /// empty (it is, in this state), shut the transport down.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

/// An open WebSocket connection, either side.
///
/// Created by a completed handshake
/// ([`ServerHandshake::accept`](crate::ServerHandshake::accept),
/// [`ClientHandshake::into_connection`](crate::ClientHandshake::into_connection))
/// or directly by [`Connection::server`] / [`Connection::client`] when the
/// handshake happened elsewhere.
///
/// ```
/// use wsproto_core::{Config, Connection, Event, Message};
///
/// let mut conn = Connection::server(Config::default());
/// // RFC 6455 section 5.7: a masked "Hello" from a client.
/// conn.receive(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// let Some(Event::Message(msg)) = conn.poll_event().unwrap() else { panic!() };
/// assert_eq!(msg.as_text(), Some("Hello"));
///
/// conn.send(msg).unwrap(); // echo it
/// let out = conn.poll_transmit().unwrap();
/// assert_eq!(out, &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
/// let n = out.len();
/// conn.advance(n);
/// assert!(conn.poll_transmit().is_none());
/// ```
pub struct Connection {
    role: Role,
    config: Config,
    decoder: FrameDecoder,
    /// Received bytes; payloads in it are unmasked up to the unmasker's
    /// mark, and after it by the decoder.
    rx: BytesMut,
    unmasker: Unmasker,
    tx: TxQueue,
    random: Option<Box<dyn RandomSource>>,

    /// The data message being received: its kind, fragments so far, bytes so far.
    msg_kind: Option<Kind>,
    msg_fragments: usize,
    msg_len: u64,
    msg_buf: BytesMut,
    utf8: Utf8Validator,
    /// Whether the payload of the frame being decoded is text to validate.
    frame_is_text: bool,
    /// Whether the message being received is compressed (RSV1 on its first frame).
    msg_compressed: bool,
    #[cfg(feature = "deflate")]
    deflate: Option<crate::compression::PerMessageDeflate>,
    /// The compressed message being received, inflated so far.
    #[cfg(feature = "deflate")]
    inflated: alloc::vec::Vec<u8>,

    close_sent: bool,
    close_received: bool,
    failed: bool,
    timed_out: bool,
    pending_error: Option<Error>,

    rx_activity: bool,
    keepalive_deadline: Option<Duration>,
    ping_outstanding: bool,
    close_deadline: Option<Duration>,
}

/// Drops `buf`'s allocation if it is larger than `keep`. `buf` must be
/// empty.
pub(crate) fn release(buf: &mut BytesMut, keep: usize) {
    // Messages are split off the front of the buffer. Once they are all
    // dropped, reclaiming takes the whole allocation back, and `capacity`
    // then shows its real size. While a message is still held, the
    // allocation is shared and only our unused tail is measured.
    let _ = buf.try_reclaim(buf.capacity() + 1);
    if buf.capacity() > keep {
        *buf = BytesMut::new();
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state())
            .field("buffered_in", &self.rx.len())
            .field("buffered_out", &self.tx.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The server side of a connection whose handshake is done.
    pub fn server(config: Config) -> Connection {
        Connection::new(Role::Server, config, None, BytesMut::new())
    }

    /// The client side of a connection whose handshake is done; masking keys
    /// come from `random`.
    pub fn client(config: Config, random: Box<dyn RandomSource>) -> Connection {
        Connection::new(Role::Client, config, Some(random), BytesMut::new())
    }

    pub(crate) fn new(
        role: Role,
        config: Config,
        random: Option<Box<dyn RandomSource>>,
        leftover: BytesMut,
    ) -> Connection {
        Connection {
            role,
            decoder: FrameDecoder::new(role, 0, config.max_frame_size),
            unmasker: Unmasker::new(role == Role::Server, !leftover.is_empty()),
            rx: leftover,
            tx: TxQueue::default(),
            random,
            msg_kind: None,
            msg_fragments: 0,
            msg_len: 0,
            msg_buf: BytesMut::new(),
            utf8: Utf8Validator::new(),
            frame_is_text: false,
            msg_compressed: false,
            #[cfg(feature = "deflate")]
            deflate: None,
            #[cfg(feature = "deflate")]
            inflated: alloc::vec::Vec::new(),
            close_sent: false,
            close_received: false,
            failed: false,
            timed_out: false,
            pending_error: None,
            rx_activity: false,
            keepalive_deadline: None,
            ping_outstanding: false,
            close_deadline: None,
            config,
        }
    }

    /// Turns on permessage-deflate with the parameters a handshake agreed
    /// on, for connections whose handshake happened elsewhere (the
    /// handshakes in this crate do it themselves). Call it before any
    /// frames are decoded. Compression level and threshold come from
    /// `Config::deflate` (or its defaults when that is `None`).
    ///
    /// ```
    /// use wsproto_core::handshake::{parse_extensions, DeflateConfig};
    /// use wsproto_core::{Config, Connection, Event, Message};
    ///
    /// let offer = parse_extensions("permessage-deflate; client_max_window_bits");
    /// let agreed = DeflateConfig::default().accept_offer(&offer).unwrap();
    /// let mut conn = Connection::server(Config::default()).with_permessage_deflate(agreed.params);
    ///
    /// // RFC 7692 section 7.2.3.1: "Hello" compressed, in a masked frame with RSV1.
    /// let mut frame = vec![0xc1, 0x87, 0, 0, 0, 0];
    /// frame.extend_from_slice(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    /// conn.receive(&frame);
    /// let Some(Event::Message(msg)) = conn.poll_event().unwrap() else { panic!() };
    /// assert_eq!(msg.as_text(), Some("Hello"));
    ///
    /// conn.send(Message::text("Hello ".repeat(20))).unwrap();
    /// let out = conn.poll_transmit().unwrap();
    /// assert_eq!(out[0], 0xc1); // FIN, RSV1, text
    /// assert!(out.len() < 20); // 120 bytes of text in a few
    /// ```
    #[cfg(feature = "deflate")]
    pub fn with_permessage_deflate(
        mut self,
        params: crate::handshake::DeflateParams,
    ) -> Connection {
        let config = self.config.deflate.unwrap_or_default();
        self.deflate = Some(crate::compression::PerMessageDeflate::new(
            self.role, params, &config,
        ));
        self.decoder = FrameDecoder::new(self.role, RSV1, self.config.max_frame_size);
        self
    }

    /// The permessage-deflate parameters in force, if it was negotiated.
    #[cfg(feature = "deflate")]
    pub fn permessage_deflate(&self) -> Option<&crate::handshake::DeflateParams> {
        self.deflate.as_ref().map(|d| d.params())
    }

    /// Which side this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the close handshake stands.
    pub fn state(&self) -> State {
        let handshake_done =
            self.close_sent && (self.close_received || self.failed) && self.tx.is_empty();
        if self.timed_out || handshake_done {
            State::Closed
        } else if self.close_received {
            State::CloseReceived
        } else if self.close_sent {
            State::CloseSent
        } else {
            State::Open
        }
    }

    fn reading_done(&self) -> bool {
        self.close_received || self.failed || self.timed_out
    }

    // ----- input -----------------------------------------------------------

    /// Whether the caller should read more from the transport now: false
    /// once the peer's close arrived or the connection failed (nothing more
    /// will be parsed), and while the outgoing buffer is above
    /// `Config::max_write_buffer` (write first, so the peer's pings cannot
    /// pile up pongs faster than they drain).
    pub fn wants_read(&self) -> bool {
        !self.reading_done() && self.tx.len() <= self.config.max_write_buffer
    }

    /// How many bytes of the frame being received have not arrived yet, as
    /// far as the decoder has parsed the input (0 between frames): a read
    /// of this size takes the rest of the frame in one system call.
    /// Adapters size their reads with it, capped by their own limit, since
    /// the peer declares the length before it sends the bytes.
    ///
    /// ```
    /// use wsproto_core::{Config, Connection};
    ///
    /// let mut conn = Connection::server(Config::default());
    /// // A masked binary frame of 1000 bytes: header, key, first 10 bytes.
    /// let mut input = vec![0x82, 0xfe, 0x03, 0xe8, 1, 2, 3, 4];
    /// input.extend_from_slice(&[0; 10]);
    /// conn.receive(&input);
    /// assert!(conn.poll_event().unwrap().is_none());
    /// assert_eq!(conn.frame_remaining(), 990);
    /// ```
    pub fn frame_remaining(&self) -> u64 {
        self.decoder
            .payload_progress()
            .map_or(0, |(_, _, remaining)| remaining)
    }

    /// Hands the connection bytes read from the transport.
    ///
    /// Bytes that arrive after the peer's close frame, or after the
    /// connection failed, are discarded.
    pub fn receive(&mut self, data: &[u8]) {
        if self.reading_done() {
            return;
        }
        if self.rx.capacity() - self.rx.len() < data.len() {
            // For large inputs, room for several: a frame cut by the end of
            // one input is then moved to the front of the buffer once every
            // few inputs instead of after each one. `release_memory` gives
            // the room back when the connection goes idle.
            let room = if data.len() >= LARGE_INPUT {
                data.len()
                    .saturating_mul(RECEIVE_ROOM)
                    .min(RECEIVE_ROOM_MAX)
                    .max(data.len())
            } else {
                data.len()
            };
            self.rx.reserve(room);
        }
        self.unmasker.extend(&mut self.rx, data);
        // Only bytes are a sign of life (adapters hand over an empty
        // leftover after an upgrade).
        self.rx_activity |= !data.is_empty();
    }

    /// The receive buffer, for adapters that read the transport straight into
    /// it (no extra copy). Append only; then call [`poll_event`](Self::poll_event).
    pub fn read_buf(&mut self) -> &mut BytesMut {
        &mut self.rx
    }

    /// Decodes buffered input until it yields the next event.
    ///
    /// `Ok(None)` means more input is needed (or nothing more will come: see
    /// [`state`](Self::state)). An `Err` is reported once; the close frame it
    /// calls for is already queued, so flush and shut down.
    ///
    /// While the outgoing buffer is above `Config::max_write_buffer`, input
    /// is left unparsed (`Ok(None)`) until the caller writes some out.
    pub fn poll_event(&mut self) -> Result<Option<Event>, Error> {
        if let Some(e) = self.pending_error.take() {
            return Err(e);
        }
        if self.reading_done() || self.tx.len() > self.config.max_write_buffer {
            return Ok(None);
        }
        if self.rx.is_empty() && self.decoder.at_frame_boundary() {
            // Between frames with nothing buffered, as an adapter finds it
            // each time it polls before reading: what a step would conclude.
            self.unmasker.sync(None, 0);
            return Ok(None);
        }
        loop {
            let before = self.rx.len();
            // Set to the header's length when a whole frame comes out in
            // one step, its header not reported on its own.
            let mut whole = 0;
            let step =
                self.decoder
                    .step_premasked(&mut self.rx, self.unmasker.done(), Some(&mut whole));
            // Text the unmasker checked as it copied it (while it was in
            // cache) needs no second pass; asked before the buffer
            // positions move, as a frame's payload was at the front (after
            // its header, for a whole frame).
            let prechecked = self.utf8.between_chars()
                && match &step {
                    Ok(Status::Complete(Step::Payload(range))) => {
                        self.unmasker.checked(range.start, range.end)
                    }
                    Ok(Status::Complete(Step::Frame { frame, seen })) => self
                        .unmasker
                        .checked(whole + *seen, whole + frame.payload.len()),
                    _ => false,
                };
            self.unmasker.consumed(before.saturating_sub(self.rx.len()));
            if let Ok(Status::Complete(_)) = step {
                self.rx_activity = true;
            }
            // The header is used where the decoder wrote it (`ref`): moving
            // the step out first copied it in whole words, loads that
            // waited for the decoder's narrower stores to reach the cache
            // (a store-forwarding stall, 13% of decoding 16-byte frames).
            let result = match step {
                Ok(Status::Complete(Step::Header(ref header))) => {
                    self.on_header(header).map(|()| None)
                }
                Ok(Status::Complete(Step::Payload(range))) => {
                    let newly = self.rx.get(range).unwrap_or_default();
                    if self.frame_is_text && !prechecked && self.utf8.feed(newly).is_err() {
                        Err(ProtocolError::InvalidUtf8)
                    } else {
                        Ok(None)
                    }
                }
                Ok(Status::Complete(Step::Frame {
                    frame:
                        Frame {
                            ref header,
                            payload,
                        },
                    seen,
                })) => {
                    if whole > 0 {
                        if let Err(e) = self.on_header(header) {
                            return Err(self.fail(e));
                        }
                    }
                    self.on_frame(header, payload, seen, prechecked)
                }
                Ok(Status::Partial) => {
                    // Everything buffered is parsed and unmasked: the
                    // unmasker can copy the next input unmasking as it goes.
                    self.unmasker
                        .sync(self.decoder.payload_progress(), self.rx.len());
                    return Ok(None);
                }
                Err(e) => return Err(self.fail(e)),
            };
            match result {
                Ok(Some(event)) => return Ok(Some(event)),
                Ok(None) => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    fn on_header(&mut self, header: &FrameHeader) -> Result<(), ProtocolError> {
        let kind = match header.opcode {
            OpCode::Text | OpCode::Binary => {
                if self.msg_kind.is_some() {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                let kind = if header.opcode == OpCode::Text {
                    Kind::Text
                } else {
                    Kind::Binary
                };
                self.msg_kind = Some(kind);
                self.msg_fragments = 0;
                self.msg_len = 0;
                // The decoder lets RSV1 through only when permessage-deflate
                // was negotiated.
                self.msg_compressed = header.rsv & RSV1 != 0;
                kind
            }
            OpCode::Continuation => {
                let kind = self.msg_kind.ok_or(ProtocolError::UnexpectedContinuation)?;
                // RSV1 marks the first frame of a message only.
                if header.rsv != 0 {
                    return Err(ProtocolError::ReservedBits(header.rsv));
                }
                kind
            }
            OpCode::Close | OpCode::Ping | OpCode::Pong => {
                // Control frames are never compressed.
                if header.rsv != 0 {
                    return Err(ProtocolError::ReservedBits(header.rsv));
                }
                self.frame_is_text = false;
                return Ok(());
            }
        };
        // Compressed text is validated after inflating, not on the wire.
        self.frame_is_text = kind == Kind::Text && !self.msg_compressed;
        self.msg_fragments += 1;
        if self.msg_fragments > self.config.max_fragments {
            return Err(ProtocolError::TooManyFragments {
                limit: self.config.max_fragments,
            });
        }
        self.msg_len = self.msg_len.saturating_add(header.payload_len);
        if self.msg_len > self.config.max_message_size as u64 {
            return Err(ProtocolError::MessageTooLarge {
                limit: self.config.max_message_size,
            });
        }
        Ok(())
    }

    /// A whole frame; `seen` bytes of its payload were validated already
    /// (all of them if `prechecked`).
    fn on_frame(
        &mut self,
        header: &FrameHeader,
        payload: Bytes,
        seen: usize,
        prechecked: bool,
    ) -> Result<Option<Event>, ProtocolError> {
        match header.opcode {
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                let kind = self.msg_kind.ok_or(ProtocolError::UnexpectedContinuation)?;
                #[cfg(feature = "deflate")]
                if self.msg_compressed {
                    return self.on_compressed_frame(kind, header.fin, &payload);
                }
                if kind == Kind::Text && !prechecked {
                    let unseen = payload.get(seen..).unwrap_or_default();
                    self.utf8
                        .feed(unseen)
                        .map_err(|_| ProtocolError::InvalidUtf8)?;
                }
                if !header.fin {
                    self.msg_buf.extend_from_slice(&payload);
                    return Ok(None);
                }
                let data = if self.msg_fragments == 1 {
                    payload // the common case: one frame, zero copy
                } else {
                    self.msg_buf.extend_from_slice(&payload);
                    self.msg_buf.split().freeze()
                };
                self.complete_message(kind, data)
            }
            OpCode::Ping => {
                if self.config.auto_pong && !self.close_sent {
                    self.queue_control(OpCode::Pong, &payload);
                }
                Ok(Some(Event::Ping(payload)))
            }
            OpCode::Pong => {
                self.ping_outstanding = false;
                Ok(Some(Event::Pong(payload)))
            }
            OpCode::Close => {
                let close = parse_close(payload)?;
                self.close_received = true;
                self.rx.clear();
                self.unmasker.reset();
                if !self.close_sent {
                    // Echo the code (RFC 6455 section 5.5.1); an empty close
                    // is answered with an empty close.
                    let code = match close.code {
                        CloseCode::NoStatus => None,
                        code => Some(code),
                    };
                    self.queue_close(code, "");
                }
                Ok(Some(Event::Close(close)))
            }
        }
    }

    /// The last frame of a data message arrived: validate and hand it out.
    fn complete_message(
        &mut self,
        kind: Kind,
        data: Bytes,
    ) -> Result<Option<Event>, ProtocolError> {
        self.msg_kind = None;
        self.msg_compressed = false;
        let message = match kind {
            Kind::Text => {
                self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                Message::Text(Utf8Bytes::from_validated(data))
            }
            Kind::Binary => Message::Binary(data),
        };
        Ok(Some(Event::Message(message)))
    }

    /// A frame of a compressed message: inflate it within the message size
    /// limit, and validate text as it comes out.
    #[cfg(feature = "deflate")]
    fn on_compressed_frame(
        &mut self,
        kind: Kind,
        fin: bool,
        payload: &[u8],
    ) -> Result<Option<Event>, ProtocolError> {
        use crate::compression::InflateError;
        let limit = self.config.max_message_size;
        let deflate = self
            .deflate
            .as_mut()
            .ok_or(ProtocolError::ReservedBits(RSV1))?;
        let start = self.inflated.len();
        let mut result = deflate.inflate(payload, &mut self.inflated, limit);
        if fin && result.is_ok() {
            result = deflate.finish_message(&mut self.inflated, limit);
        }
        result.map_err(|e| match e {
            InflateError::TooLarge => ProtocolError::MessageTooLarge { limit },
            InflateError::Corrupt => ProtocolError::InvalidCompressedData,
        })?;
        if kind == Kind::Text {
            let newly = self.inflated.get(start..).unwrap_or_default();
            self.utf8
                .feed(newly)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        if !fin {
            return Ok(None);
        }
        let data = Bytes::from(core::mem::take(&mut self.inflated));
        self.complete_message(kind, data)
    }

    /// Fails the connection: queues the close frame the error calls for
    /// (unless ours went out already) and stops reading.
    fn fail(&mut self, e: ProtocolError) -> Error {
        self.failed = true;
        self.rx.clear();
        self.unmasker.reset();
        #[cfg(feature = "deflate")]
        {
            self.inflated = alloc::vec::Vec::new();
        }
        if !self.close_sent {
            self.queue_close(Some(e.close_code()), e.reason());
        }
        Error::Protocol(e)
    }

    // ----- output ----------------------------------------------------------

    /// Queues a message, split into frames of at most
    /// `Config::max_send_frame_size` bytes when that is set.
    ///
    /// A server does not copy a payload of 16 KiB or more: it is queued by
    /// reference and comes out of [`transmit_chunks`](Self::transmit_chunks)
    /// as its own chunk, for a vectored write. A client masks, so it copies.
    ///
    /// With permessage-deflate negotiated, a message at or above
    /// `DeflateConfig::compression_threshold` is compressed first.
    pub fn send(&mut self, message: Message) -> Result<(), Error> {
        let (opcode, payload) = match message {
            Message::Text(text) => (OpCode::Text, text.into_bytes()),
            Message::Binary(data) => (OpCode::Binary, data),
        };
        if self.queue_header_for_reference(opcode, payload.len())? {
            // Queue the caller's `Bytes` itself rather than a slice of it
            // (one reference count taken and dropped fewer per message).
            self.tx.push_shared(payload);
            return Ok(());
        }
        self.send_data(opcode, &payload, Some(&payload))
    }

    /// Queues a text message (copying it).
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send_data(OpCode::Text, text.as_bytes(), None)
    }

    /// Queues a binary message (copying it).
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send_data(OpCode::Binary, data, None)
    }

    /// Queues a binary message whose payload the transport writes straight
    /// from `data`, without copying it: see [`DirectSend`]. This is the
    /// borrowed-slice counterpart of sending a `Bytes` payload, for a server
    /// sending large messages it does not own. The payload goes out by
    /// reference when it is at least 16 KiB (below that, one copied write
    /// costs less than a vectored one), this side does not mask (a server),
    /// permessage-deflate does not compress it and it fits in one frame;
    /// otherwise the message is queued as [`send_binary`](Self::send_binary)
    /// would and the returned [`DirectSend`] holds only the queue.
    ///
    /// ```
    /// use wsproto_core::{Config, Connection};
    ///
    /// let mut conn = Connection::server(Config::default());
    /// let data = vec![1u8; 20_000];
    /// let mut wire = Vec::new();
    /// let mut send = conn.send_binary_direct(&data).unwrap();
    /// while let Some(chunk) = send.first() {
    ///     wire.extend_from_slice(chunk); // socket.write(chunk)
    ///     let n = chunk.len();
    ///     send.advance(n);
    /// }
    /// drop(send);
    /// assert_eq!(&wire[..4], &[0x82, 126, 0x4e, 0x20]);
    /// assert_eq!(wire.len(), 4 + 20_000);
    /// assert_eq!(conn.buffered_out(), 0);
    /// ```
    #[inline]
    pub fn send_binary_direct<'p>(&mut self, data: &'p [u8]) -> Result<DirectSend<'_, 'p>, Error> {
        self.send_direct(OpCode::Binary, data)
    }

    /// Queues a text message whose payload the transport writes straight
    /// from `text`; as [`send_binary_direct`](Self::send_binary_direct).
    #[inline]
    pub fn send_text_direct<'p>(&mut self, text: &'p str) -> Result<DirectSend<'_, 'p>, Error> {
        self.send_direct(OpCode::Text, text.as_bytes())
    }

    #[inline]
    fn send_direct<'p>(
        &mut self,
        opcode: OpCode,
        payload: &'p [u8],
    ) -> Result<DirectSend<'_, 'p>, Error> {
        if self.queue_header_for_reference(opcode, payload.len())? {
            return Ok(DirectSend::new(&mut self.tx, payload));
        }
        self.send_data(opcode, payload, None)?;
        Ok(DirectSend::new(&mut self.tx, &[]))
    }

    /// Queues the header of a message of `len` bytes whose payload goes out
    /// by reference, and returns true, when it can: 16 KiB or more, not
    /// masked, not compressed, one frame. False (nothing queued) otherwise.
    #[inline]
    fn queue_header_for_reference(&mut self, opcode: OpCode, len: usize) -> Result<bool, Error> {
        if self.random.is_some() || len < SHARE_MIN {
            return Ok(false);
        }
        #[cfg(feature = "deflate")]
        if self.deflate.as_ref().is_some_and(|d| d.compresses(len)) {
            return Ok(false);
        }
        if self.config.max_send_frame_size.is_some_and(|max| len > max) {
            return Ok(false);
        }
        self.check_can_send()?;
        encode_header(self.tx.copy_buf(), opcode, true, 0, len, None);
        Ok(true)
    }

    fn check_can_send(&self) -> Result<(), Error> {
        if self.close_sent || self.timed_out {
            return Err(Error::Closed);
        }
        if self.tx.len() > self.config.max_write_buffer {
            return Err(Error::WriteBufferFull {
                limit: self.config.max_write_buffer,
            });
        }
        Ok(())
    }

    /// Queues `payload` as one message, in frames of at most
    /// `max_send_frame_size`; `shared` is the same bytes when the caller owns
    /// them as `Bytes`, so that large unmasked frames need no copy.
    fn send_data(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        shared: Option<&Bytes>,
    ) -> Result<(), Error> {
        self.check_can_send()?;
        #[cfg(feature = "deflate")]
        if let Some(compressed) = self.deflate.as_mut().and_then(|d| d.compress(payload)) {
            self.queue_message(opcode, RSV1, &compressed, Some(&compressed));
            return Ok(());
        }
        self.queue_message(opcode, 0, payload, shared);
        Ok(())
    }

    /// Queues one message's frames; `rsv` goes on the first frame only.
    fn queue_message(&mut self, opcode: OpCode, rsv: u8, payload: &[u8], shared: Option<&Bytes>) {
        let frame_size = self.config.max_send_frame_size.unwrap_or(usize::MAX).max(1);
        let (mut op, mut rsv) = (opcode, rsv);
        let mut start: usize = 0;
        loop {
            let end = start.saturating_add(frame_size).min(payload.len());
            let fin = end == payload.len();
            match shared {
                Some(bytes) if self.random.is_none() && end - start >= SHARE_MIN => {
                    self.queue_shared(op, fin, rsv, bytes.slice(start..end));
                }
                _ => self.queue_frame(op, fin, rsv, payload.get(start..end).unwrap_or_default()),
            }
            if fin {
                return;
            }
            start = end;
            op = OpCode::Continuation;
            rsv = 0;
        }
    }

    /// Queues a ping with up to 125 bytes of payload.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.check_control(payload)?;
        self.queue_control(OpCode::Ping, payload);
        Ok(())
    }

    /// Queues an unsolicited pong (a one-way heartbeat), up to 125 bytes.
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.check_control(payload)?;
        self.queue_control(OpCode::Pong, payload);
        Ok(())
    }

    fn check_control(&self, payload: &[u8]) -> Result<(), Error> {
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(Error::ControlPayloadTooLong(payload.len()));
        }
        self.check_can_send()
    }

    /// Starts the close handshake with `code` and a reason of at most 123
    /// bytes. Nothing can be sent afterwards; incoming messages are still
    /// delivered until the peer's close arrives or `Config::close_timeout`
    /// passes.
    ///
    /// ```
    /// use wsproto_core::{CloseCode, Config, Connection, State};
    /// let mut conn = Connection::server(Config::default());
    /// conn.close(CloseCode::Normal, "bye").unwrap();
    /// assert_eq!(conn.state(), State::CloseSent);
    /// assert_eq!(conn.poll_transmit().unwrap(), b"\x88\x05\x03\xe8bye");
    /// assert!(conn.send_text("late").is_err());
    /// ```
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if self.close_sent || self.timed_out {
            return Err(Error::Closed);
        }
        if !code.is_valid_on_wire() {
            return Err(Error::InvalidCloseCode(code.into()));
        }
        if reason.len() > MAX_CLOSE_REASON {
            return Err(Error::CloseReasonTooLong(reason.len()));
        }
        self.queue_close(Some(code), reason);
        Ok(())
    }

    // In bounds: the payload array holds 125 bytes and the reason is cut to
    // 123, so `2 + reason.len() <= 125`.
    #[allow(clippy::indexing_slicing)]
    fn queue_close(&mut self, code: Option<CloseCode>, reason: &str) {
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let mut len = 0;
        if let Some(code) = code {
            payload[..2].copy_from_slice(&u16::from(code).to_be_bytes());
            let reason = &reason.as_bytes()[..reason.len().min(MAX_CLOSE_REASON)];
            payload[2..2 + reason.len()].copy_from_slice(reason);
            len = 2 + reason.len();
        }
        self.queue_control(OpCode::Close, &payload[..len]);
        self.close_sent = true;
    }

    fn queue_control(&mut self, opcode: OpCode, payload: &[u8]) {
        self.queue_frame(opcode, true, 0, payload);
    }

    fn queue_frame(&mut self, opcode: OpCode, fin: bool, rsv: u8, payload: &[u8]) {
        let mask = self.random.as_mut().map(|random| {
            let mut key = [0u8; 4];
            random.fill(&mut key);
            key
        });
        encode_frame_rsv(self.tx.copy_buf(), opcode, fin, rsv, payload, mask);
    }

    /// Queues an unmasked frame whose payload is sent by reference.
    fn queue_shared(&mut self, opcode: OpCode, fin: bool, rsv: u8, payload: Bytes) {
        encode_header(self.tx.copy_buf(), opcode, fin, rsv, payload.len(), None);
        self.tx.push_shared(payload);
    }

    /// The next contiguous bytes waiting to be written to the transport, if
    /// any. Write some or all, then report how many with
    /// [`advance`](Self::advance).
    #[inline]
    pub fn poll_transmit(&self) -> Option<&[u8]> {
        self.tx.first()
    }

    /// Every chunk of bytes waiting to be written, in order: the same bytes
    /// as calling [`poll_transmit`](Self::poll_transmit) and
    /// [`advance`](Self::advance) in turn, for a transport that writes
    /// several buffers at once (`writev`). Report how many bytes the write
    /// took with [`advance`](Self::advance).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use wsproto_core::{Config, Connection, Message};
    ///
    /// let mut conn = Connection::server(Config::default());
    /// let big = Bytes::from(vec![7u8; 65536]);
    /// conn.send(Message::Binary(big.clone())).unwrap();
    /// let chunks: Vec<&[u8]> = conn.transmit_chunks().collect();
    /// // The header, then the payload itself: no copy was made.
    /// assert_eq!(chunks[0], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    /// assert_eq!(chunks[1].as_ptr(), big.as_ptr());
    /// let n = chunks.iter().map(|c| c.len()).sum();
    /// conn.advance(n);
    /// assert_eq!(conn.buffered_out(), 0);
    /// ```
    #[inline]
    pub fn transmit_chunks(&self) -> Chunks<'_> {
        self.tx.chunks()
    }

    /// Fills `slices` with the first chunks of
    /// [`transmit_chunks`](Self::transmit_chunks), for
    /// `Write::write_vectored`, and returns how many it filled (0 when
    /// nothing is waiting). With one chunk a plain `write` of it is the
    /// cheaper system call.
    ///
    /// ```
    /// use std::io::IoSlice;
    /// use wsproto_core::{Config, Connection};
    ///
    /// let mut conn = Connection::server(Config::default());
    /// conn.send_text("hi").unwrap();
    /// let mut slices = [IoSlice::new(&[]); 8];
    /// let n = conn.transmit_io_slices(&mut slices);
    /// assert_eq!(n, 1);
    /// assert_eq!(&*slices[0], b"\x81\x02hi");
    /// ```
    #[cfg(feature = "std")]
    pub fn transmit_io_slices<'a>(&'a self, slices: &mut [std::io::IoSlice<'a>]) -> usize {
        self.tx.chunks().fill_io_slices(slices)
    }

    /// Marks the first `n` bytes waiting to be written as written.
    #[inline]
    pub fn advance(&mut self, n: usize) {
        self.tx.advance(n);
    }

    /// How many bytes are waiting to be written.
    #[inline]
    pub fn buffered_out(&self) -> usize {
        self.tx.len()
    }

    /// Whether the application should hand over another message: true
    /// while at most `Config::write_high_water` bytes wait to be written.
    /// Adapters wait (or report `WouldBlock`) while it is false, which is
    /// how a peer that stops reading stops the sender instead of growing
    /// the buffer; [`send`](Self::send) itself only refuses beyond the hard
    /// limit `Config::max_write_buffer`.
    ///
    /// ```
    /// use wsproto_core::{Config, Connection};
    /// let config = Config { write_high_water: 1024, ..Config::default() };
    /// let mut conn = Connection::server(config);
    /// conn.send_binary(&[0; 1000]).unwrap();
    /// assert!(conn.send_ready()); // 1004 bytes queued
    /// conn.send_binary(&[0; 100]).unwrap();
    /// assert!(!conn.send_ready()); // 1106 bytes: wait for the socket
    /// conn.advance(conn.buffered_out());
    /// assert!(conn.send_ready());
    /// ```
    #[inline]
    pub fn send_ready(&self) -> bool {
        self.tx.len() <= self.config.write_high_water
    }

    /// Gives back buffer memory that holds no data, beyond `keep` bytes per
    /// buffer: the receive buffer once every message was taken out of it,
    /// the reassembly buffer between messages, the send buffer once written.
    /// Call it when the connection goes idle (a read would block): an idle
    /// connection then costs little, and a burst of large messages does not
    /// stay resident after it. Buffers of `keep` bytes or less are kept, so
    /// that a steady flow of small messages reuses them without allocating.
    /// Nothing queued or received is lost; zlib's state for
    /// permessage-deflate is kept (context takeover needs it). Memory that
    /// messages the application still holds share with the receive buffer
    /// is theirs; it is freed when they are dropped, unless the buffer's
    /// unused part was small enough to keep.
    ///
    /// ```
    /// use wsproto_core::{Config, Connection, Event};
    /// let mut conn = Connection::server(Config::default());
    /// conn.receive(&[0x82, 0x80, 1, 2, 3, 4]); // an empty binary message
    /// conn.read_buf().reserve(64 * 1024); // what a large read left behind
    /// assert!(matches!(conn.poll_event(), Ok(Some(Event::Message(_)))));
    /// conn.release_memory(4096);
    /// assert_eq!(conn.read_buf().capacity(), 0);
    /// ```
    pub fn release_memory(&mut self, keep: usize) {
        if self.rx.is_empty() {
            release(&mut self.rx, keep);
        }
        if self.msg_kind.is_none() {
            release(&mut self.msg_buf, keep);
        }
        self.tx.release_memory(keep);
    }

    // ----- time ------------------------------------------------------------

    /// When [`handle_timeout`](Self::handle_timeout) should next be called,
    /// as a time on the caller's monotonic clock (the same origin as `now`).
    ///
    /// A deadline at or before the present (including `Duration::ZERO`)
    /// means: call it right away; that is how the connection learns the
    /// current time when a timer starts.
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.state() == State::Closed {
            return None;
        }
        let close = if self.close_sent && !self.close_received {
            Some(self.close_deadline.unwrap_or(Duration::ZERO))
        } else {
            None
        };
        let keepalive = if self.config.ping_interval.is_some() && !self.close_sent {
            Some(self.keepalive_deadline.unwrap_or(Duration::ZERO))
        } else {
            None
        };
        match (close, keepalive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the timers at time `now` (the caller's monotonic clock): sends a
    /// keepalive ping after `ping_interval` of silence, fails the
    /// connection with [`Error::KeepaliveTimeout`] when even that got no
    /// answer, and ends a close handshake the peer never answered.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.state() == State::Closed {
            return;
        }
        if self.close_sent && !self.close_received {
            match self.close_deadline {
                None => self.close_deadline = Some(now + self.config.close_timeout),
                Some(deadline) if now >= deadline => {
                    self.abort();
                    return;
                }
                Some(_) => {}
            }
        }
        let Some(interval) = self.config.ping_interval else {
            return;
        };
        if self.close_sent {
            return;
        }
        match self.keepalive_deadline {
            None => self.keepalive_deadline = Some(now + interval),
            Some(deadline) if now >= deadline => {
                if self.rx_activity {
                    self.rx_activity = false;
                    self.ping_outstanding = false;
                    self.keepalive_deadline = Some(now + interval);
                } else if self.ping_outstanding {
                    self.abort();
                    self.pending_error = Some(Error::KeepaliveTimeout);
                } else {
                    self.queue_control(OpCode::Ping, b"");
                    self.ping_outstanding = true;
                    self.keepalive_deadline = Some(now + self.config.ping_timeout);
                }
            }
            Some(_) => {}
        }
    }

    /// Gives up on the connection without further exchange.
    fn abort(&mut self) {
        self.timed_out = true;
        self.rx.clear();
        self.unmasker.reset();
        self.tx.clear();
    }
}

fn parse_close(payload: Bytes) -> Result<CloseFrame, ProtocolError> {
    match *payload {
        [] => Ok(CloseFrame {
            code: CloseCode::NoStatus,
            reason: Utf8Bytes::default(),
        }),
        [_] => Err(ProtocolError::InvalidCloseLength),
        [hi, lo, ..] => {
            let code = u16::from_be_bytes([hi, lo]);
            if !CloseCode::from(code).is_valid_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code));
            }
            let reason = Utf8Bytes::try_from(payload.slice(2..))
                .map_err(|_| ProtocolError::InvalidCloseReason)?;
            Ok(CloseFrame {
                code: CloseCode::from(code),
                reason,
            })
        }
    }
}
