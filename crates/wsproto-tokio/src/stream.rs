//! [`WebSocketStream`]: a `Connection` driven over an `AsyncRead + AsyncWrite`.
//!
//! Before a split, one task at a time polls the stream (it takes `&mut
//! self`): the stream owns its state outright and hands the transport that
//! task's waker as it is, so an echoed message costs no lock and no waker
//! of ours. A [`Shutdown`](crate::Shutdown) reaches the stream only
//! through flags it raises and a waker it wakes (`shutdown::Control`); the
//! task carries them out on its next poll.
//!
//! The split halves share the state behind a mutex that is only held
//! inside a `poll_*` call, never across an await. Both halves may need the
//! transport in either direction (the reader flushes automatic pongs and
//! close replies, the writer flushes messages), and a transport keeps one
//! waker per direction, so the halves poll the transport with a waker that
//! wakes both; each then retries what it was waiting for.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{ready, Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_core::Stream;
use futures_sink::Sink;
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};
use wsproto_core::{
    ChaChaSource, CloseCode, CloseFrame, Config, Connection, Event, Message, Role, State,
};

use crate::shutdown::{Control, Registry, ABANDON, CLOSE};
use crate::Error;

/// A payload the caller lends for one send.
#[derive(Clone, Copy)]
enum Borrowed<'p> {
    Binary(&'p [u8]),
    Text(&'p str),
}

/// Bytes to read from the transport per call at least.
const READ_CHUNK: usize = 16 * 1024;
/// The thread's scratch buffer, where a connection with nothing
/// half-received reads: one per thread, so it can take a whole 64 KiB
/// message with its header in one read (at 16 KiB such an echo took four
/// reads, fastwebsockets two).
const SCRATCH_SIZE: usize = 128 * 1024;
/// Bytes to read per call at most, when the frame being received is
/// longer: room reserved ahead of the bytes, so bounded even though the
/// peer's declared length is bounded only by `Config::max_frame_size`.
const MAX_READ: usize = 256 * 1024;
/// Buffer memory a connection keeps while idle (see
/// `Connection::release_memory`): enough for small messages to flow without
/// allocating, little enough for thousands of idle connections.
const IDLE_KEEP: usize = 4096;

thread_local! {
    /// Where idle connections read into: one buffer per thread instead of
    /// one per connection.
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
}

/// Reads into the thread's scratch buffer and hands what arrived to `conn`
/// (one copy of what one read returns, at most `SCRATCH_SIZE` bytes).
fn poll_read_scratch<S: AsyncRead + Unpin>(
    io: Pin<&mut S>,
    cx: &mut Context<'_>,
    conn: &mut Connection,
) -> Poll<io::Result<usize>> {
    SCRATCH.with(|scratch| {
        let Ok(mut scratch) = scratch.try_borrow_mut() else {
            // A transport that is itself driven by a WebSocket on this
            // thread is reading right now: read directly instead.
            let buf = conn.read_buf();
            buf.reserve(READ_CHUNK);
            return tokio_util::io::poll_read_buf(io, cx, buf);
        };
        let mut buf = tokio::io::ReadBuf::new(&mut scratch);
        ready!(io.poll_read(cx, &mut buf))?;
        let n = buf.filled().len();
        conn.receive(buf.filled());
        Poll::Ready(Ok(n))
    })
}

struct Inner<S> {
    io: S,
    conn: Connection,
    start: Instant,
    timer: Option<Pin<Box<Sleep>>>,
    /// A failure to report once the close frame it caused is written.
    error: Option<Error>,
    /// The stream has ended: `None` from now on.
    done: bool,
    /// The peer's close frame, once it arrived.
    close_frame: Option<CloseFrame>,
    /// Where a shutdown tracking this connection raises its requests.
    control: OnceLock<Arc<Control>>,
    /// The shutdown's requests already carried out.
    obeyed: u8,
}

/// Wakes whichever halves are waiting when the transport becomes ready.
#[derive(Default)]
struct Wakers {
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl Wake for Wakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.reader.wake();
        self.writer.wake();
    }
}

/// The state of a split stream, shared by its halves.
struct Shared<S> {
    inner: Mutex<Inner<S>>,
    wakers: Arc<Wakers>,
    both: Waker,
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        // A panic while polling poisons the lock; the state is then unknown,
        // but every operation on it is still memory-safe, so carry on and let
        // the next I/O or protocol check report what is wrong.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Clone, Copy)]
enum Half {
    Reader,
    Writer,
}

impl Half {
    /// Where the half leaves its waker for a shutdown.
    fn slot(self) -> usize {
        match self {
            Half::Reader => 0,
            Half::Writer => 1,
        }
    }
}

/// At most this many chunks go into one vectored write (Linux takes 1024;
/// a frame is two chunks, so this covers eight large frames).
const MAX_IO_SLICES: usize = 16;

impl<S> Inner<S> {
    fn new(io: S, conn: Connection) -> Inner<S> {
        Inner {
            io,
            conn,
            start: Instant::now(),
            timer: None,
            error: None,
            done: false,
            close_frame: None,
            control: OnceLock::new(),
            obeyed: 0,
        }
    }

    fn is_over(&self) -> bool {
        self.done || self.conn.state() == State::Closed
    }

    /// Carries out what a shutdown asked for since the last poll (nothing
    /// to look at for a connection no shutdown tracks).
    #[inline(always)]
    fn obey_shutdown(&mut self) {
        if let Some(control) = self.control.get() {
            if control.flags() & !self.obeyed & (CLOSE | ABANDON) != 0 {
                self.obey();
            }
        }
    }

    #[cold]
    fn obey(&mut self) {
        let Some(control) = self.control.get() else {
            return;
        };
        let asked = control.flags() & !self.obeyed & (CLOSE | ABANDON);
        self.obeyed |= asked;
        if asked & CLOSE != 0 && self.conn.state() == State::Open {
            if let Some((code, reason)) = control.close_request() {
                // Cannot fail: the shutdown checked the code and reason.
                let _ = self.conn.close(code, &reason);
            }
        }
        if asked & ABANDON != 0 {
            self.done = true;
        }
    }

    /// After a poll: tells a shutdown when the connection is over, and
    /// leaves it the waker of a task that is about to wait (registered
    /// before looking at the flags once more, so that a request raised
    /// meanwhile is not missed).
    #[inline(always)]
    fn after_poll(&self, slot: usize, waker: &Waker, pending: bool) {
        if let Some(control) = self.control.get() {
            self.report_to(control, slot, waker, pending);
        }
    }

    #[cold]
    fn report_to(&self, control: &Control, slot: usize, waker: &Waker, pending: bool) {
        if self.is_over() {
            control.finish();
        }
        if pending {
            control.register(slot, waker);
            if control.flags() & !self.obeyed & (CLOSE | ABANDON) != 0 {
                waker.wake_by_ref();
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }

    /// Writes out everything the connection has queued, then flushes.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(first) = self.conn.poll_transmit() {
            // One contiguous run (small frames, the common case) goes out in
            // a plain write; headers and large payloads queued by reference
            // in one writev where the transport has it.
            let written = if first.len() < self.conn.buffered_out() && self.io.is_write_vectored() {
                let mut slices = [io::IoSlice::new(&[]); MAX_IO_SLICES];
                let n = self.conn.transmit_io_slices(&mut slices);
                ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..n]))
            } else {
                ready!(Pin::new(&mut self.io).poll_write(cx, first))
            };
            match written {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.conn.advance(n),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Queues a message from a borrowed payload and writes what the
    /// transport takes at once straight from it; when the transport would
    /// block (or took part), dropping the `DirectSend` copies the rest into
    /// the queue, so this is always ready: the message is taken.
    fn send_direct(&mut self, cx: &mut Context<'_>, payload: Borrowed<'_>) -> Result<(), Error> {
        let mut send = match payload {
            Borrowed::Binary(data) => self.conn.send_binary_direct(data)?,
            Borrowed::Text(text) => self.conn.send_text_direct(text)?,
        };
        let vectored = self.io.is_write_vectored();
        while let Some(first) = send.first() {
            let written = if first.len() < send.remaining() && vectored {
                let mut slices = [io::IoSlice::new(&[]); MAX_IO_SLICES];
                let n = send.io_slices(&mut slices);
                Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..n])
            } else {
                Pin::new(&mut self.io).poll_write(cx, first)
            };
            match written {
                Poll::Pending => break,
                Poll::Ready(Ok(0)) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => send.advance(n),
                Poll::Ready(Err(e)) => return Err(Error::Io(e)),
            }
        }
        Ok(())
    }

    /// Runs the core's timers; true if one fired (state may have changed).
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.conn.poll_timeout() else {
            self.timer = None;
            return false;
        };
        let now = self.now();
        if deadline <= now {
            self.conn.handle_timeout(now);
            return true;
        }
        let when = self.start + deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(when)));
        if timer.deadline() != when {
            timer.as_mut().reset(when);
        }
        if timer.as_mut().poll(cx).is_ready() {
            let now = self.now();
            self.conn.handle_timeout(now);
            return true;
        }
        false
    }

    fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Event, Error>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            // Events already received come first, without touching the
            // transport: what the caller queued meanwhile (echoes fed with
            // `feed`, automatic pongs) goes out in one write when the input
            // runs dry, as uWebSockets corks its sends. The core stops
            // handing out events while its outgoing buffer is above
            // `max_write_buffer`, so the queue stays bounded.
            if self.error.is_none() {
                match self.conn.poll_event() {
                    Ok(Some(event)) => {
                        if let Event::Close(frame) = &event {
                            self.close_frame = Some(frame.clone());
                        }
                        return Poll::Ready(Some(Ok(event)));
                    }
                    Ok(None) => {}
                    // Reported once the close frame it queued is out.
                    Err(e) => self.error = Some(Error::Protocol(e)),
                }
            }
            // The core stopped handing out events because its outgoing
            // buffer is full, not because it needs input.
            let parked = !self.conn.wants_read();
            let written = match self.poll_write_out(cx) {
                Poll::Ready(Ok(())) => true,
                Poll::Ready(Err(e)) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(self.error.take().unwrap_or(Error::Io(e)))));
                }
                Poll::Pending => false,
            };
            if self.conn.state() == State::Closed {
                if !written {
                    return Poll::Pending;
                }
                // The close handshake is over (or failed, or timed out):
                // collect the reason the core may hold, end the transport.
                if self.error.is_none() {
                    if let Err(e) = self.conn.poll_event() {
                        self.error = Some(Error::Protocol(e));
                    }
                }
                let _ = ready!(Pin::new(&mut self.io).poll_shutdown(cx));
                self.done = true;
                return Poll::Ready(self.error.take().map(Err));
            }
            if self.poll_timer(cx) {
                continue;
            }
            if parked && self.conn.wants_read() {
                // The write made room: what is already buffered comes
                // before any more input, or a peer whose pings outrun
                // their pongs would grow the receive buffer without bound.
                continue;
            }
            if !self.conn.wants_read() {
                // Waiting for the transport to take our bytes (registered above).
                return Poll::Pending;
            }
            let read = if self.conn.read_buf().is_empty() {
                // Nothing half-received: read into the thread's scratch
                // buffer, so that a connection waiting for input holds no
                // receive buffer of its own.
                poll_read_scratch(Pin::new(&mut self.io), cx, &mut self.conn)
            } else {
                // The rest of a large frame in one read where the transport
                // has it (a 64 KiB echo took four reads at 16 KiB).
                let want = usize::try_from(self.conn.frame_remaining())
                    .unwrap_or(usize::MAX)
                    .clamp(READ_CHUNK, MAX_READ);
                let buf = self.conn.read_buf();
                if buf.capacity() - buf.len() < want {
                    buf.reserve(want);
                }
                tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, buf)
            };
            let Poll::Ready(read) = read else {
                // Going idle: buffers grown for large messages shrink back.
                self.conn.release_memory(IDLE_KEEP);
                return Poll::Pending;
            };
            match read {
                Ok(0) => {
                    self.done = true;
                    // After our close, a peer may just hang up: that ends it.
                    if self.conn.state() == State::CloseSent {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Err(Error::AbnormalClosure)));
                }
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(Error::Io(e))));
                }
            }
        }
    }

    fn poll_next_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        loop {
            match ready!(self.poll_next_event(cx)) {
                Some(Ok(Event::Message(message))) => return Poll::Ready(Some(Ok(message))),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => return Poll::Ready(None),
            }
        }
    }

    /// Ready while the outgoing buffer is at or below the high-water mark;
    /// above it, writes until it is (or until the transport would block).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.conn.send_ready() {
            return Poll::Ready(Ok(()));
        }
        match self.poll_write_out(cx) {
            Poll::Ready(result) => Poll::Ready(result.map_err(Error::Io)),
            Poll::Pending if self.conn.send_ready() => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        code: CloseCode,
        reason: &str,
    ) -> Poll<Result<(), Error>> {
        if self.conn.state() == State::Open {
            self.conn.close(code, reason)?;
        }
        ready!(self.poll_write_out(cx))?;
        Poll::Ready(Ok(()))
    }
}

/// A WebSocket over any async transport: a [`Stream`] of incoming
/// [`Message`]s and a [`Sink`] for outgoing ones.
///
/// Pings are answered and the close handshake is completed for you; the
/// stream ends (`None`) once the handshake is over, and
/// [`close_frame`](WebSocketStream::close_frame) tells what the peer sent.
/// Keepalive pings (`Config::ping_interval`, `Config::ping_timeout`) and
/// the close timeout run while the stream is polled.
///
/// # Backpressure
///
/// The [`Sink`] takes messages while at most `Config::write_high_water`
/// bytes (64 KiB by default) wait to be written; above that `poll_ready`
/// is pending until the transport has taken enough. A peer that stops
/// reading therefore stops `send`, `feed` and `send_all` instead of growing
/// memory: at most the high-water mark plus one message stays queued.
/// [`buffered_out`](WebSocketStream::buffered_out) tells how much is queued.
///
/// # Fewer writes: `feed` instead of `send`
///
/// `send` writes each message out before it returns. `feed` only queues
/// it, and `next()` writes the queue out when it has no received message
/// left to return and is about to wait for the transport, so a server
/// answering a burst of pipelined requests with
/// `while let Some(m) = ws.next().await { ws.feed(reply(m?)).await? }`
/// makes one write for the whole burst instead of one per message (what
/// uWebSockets calls corking). Queued messages also go out with `flush`,
/// `close`, or when the queue passes the high-water mark.
///
/// # Cancel safety
///
/// Every future of this type may be dropped at any await point (in a
/// `tokio::select!` branch that lost, or by a timeout) without losing or
/// corrupting data, because all state lives in the connection, not in the
/// future:
///
/// - `StreamExt::next()` (and [`next_event`](WebSocketStream::next_event)):
///   bytes read so far stay buffered; a message is returned whole or not
///   at all, and the next call continues where this one stopped.
/// - `SinkExt::send()`: dropped before the sink took the message (while
///   waiting for room under the high-water mark), the message is dropped
///   with the future and nothing of it was sent; dropped after, the
///   message is queued whole and goes out with the next poll of either
///   half. A message is never sent partly.
/// - [`close`](WebSocketStream::close) and [`ping`](WebSocketStream::ping):
///   once polled, the frame is queued and goes out later in any case.
///
/// ```no_run
/// use futures_util::{SinkExt, StreamExt};
///
/// # async fn run() -> Result<(), wsproto_tokio::Error> {
/// let (mut ws, _response) = wsproto_tokio::connect("ws://127.0.0.1:9527/ws/echo").await?;
/// ws.send(wsproto_tokio::Message::text("hello")).await?;
/// while let Some(message) = ws.next().await {
///     println!("{:?}", message?);
/// }
/// # Ok(())
/// # }
/// ```
pub struct WebSocketStream<S> {
    repr: Repr<S>,
}

enum Repr<S> {
    /// Not split: one task polls it, through `&mut`.
    Owned(Box<Inner<S>>),
    /// A half of a split stream, which may live in another task than the
    /// other half.
    Half(Arc<Shared<S>>, Half),
}

impl<S> std::fmt::Debug for WebSocketStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketStream").finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketStream<S> {
    /// Drives an open `Connection` (from a handshake done elsewhere) over `io`.
    pub fn from_connection(io: S, conn: Connection) -> WebSocketStream<S> {
        WebSocketStream {
            repr: Repr::Owned(Box::new(Inner::new(io, conn))),
        }
    }

    /// Wraps a transport whose HTTP upgrade already happened, such as the IO
    /// that hyper hands over after a `101`, with any bytes that were read
    /// past the handshake (`leftover`). Client connections get masking keys
    /// from the operating system's CSPRNG.
    ///
    /// ```
    /// # async fn run(io: tokio::net::TcpStream) {
    /// use wsproto_tokio::{Config, Role, WebSocketStream};
    /// let ws = WebSocketStream::from_upgraded(io, Role::Server, Config::default(), &[]);
    /// # drop(ws);
    /// # }
    /// ```
    pub fn from_upgraded(io: S, role: Role, config: Config, leftover: &[u8]) -> WebSocketStream<S> {
        let mut conn = match role {
            Role::Server => Connection::server(config),
            Role::Client => Connection::client(config, Box::new(ChaChaSource::from_os())),
        };
        conn.receive(leftover);
        WebSocketStream::from_connection(io, conn)
    }

    /// Runs a poll on the state: directly when the stream is not split,
    /// under the lock, with the waker that wakes both halves, when it is.
    fn with<T>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Inner<S>, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let mut guard;
        let (inner, slot, waker) = match &mut self.repr {
            Repr::Owned(inner) => (&mut **inner, 0, cx.waker()),
            Repr::Half(shared, half) => {
                guard = shared.lock();
                // Each half registers its task, and the transport wakes both.
                match half {
                    Half::Reader => shared.wakers.reader.register(cx.waker()),
                    Half::Writer => shared.wakers.writer.register(cx.waker()),
                }
                (&mut *guard, half.slot(), &shared.both)
            }
        };
        inner.obey_shutdown();
        let result = f(inner, &mut Context::from_waker(waker));
        inner.after_poll(slot, cx.waker(), result.is_pending());
        result
    }

    /// Reads or changes the state outside a poll.
    fn state_mut<R>(&mut self, f: impl FnOnce(&mut Inner<S>) -> R) -> R {
        match &mut self.repr {
            Repr::Owned(inner) => f(inner),
            Repr::Half(shared, _) => f(&mut shared.lock()),
        }
    }

    /// Reads the state.
    fn state_ref<R>(&self, f: impl FnOnce(&Inner<S>) -> R) -> R {
        match &self.repr {
            Repr::Owned(inner) => f(inner),
            Repr::Half(shared, _) => f(&shared.lock()),
        }
    }

    /// Where a [`Shutdown`](crate::Shutdown) raises its requests for this
    /// connection: a connection reports to the first shutdown that tracks
    /// it.
    pub(crate) fn control(&self, registry: Arc<Registry>) -> Arc<Control> {
        self.state_ref(|inner| {
            let control = inner
                .control
                .get_or_init(|| Arc::new(Control::new(registry)))
                .clone();
            if inner.is_over() {
                control.finish();
            }
            control
        })
    }

    /// How many bytes are queued and not yet written to the transport. The
    /// [`Sink`] stops taking messages (`poll_ready` is pending) while this
    /// is above `Config::write_high_water`.
    pub fn buffered_out(&self) -> usize {
        self.state_ref(|inner| inner.conn.buffered_out())
    }

    /// Sends a close frame with `code` and `reason` and flushes it. Keep
    /// reading until the stream ends to complete the handshake.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        std::future::poll_fn(|cx| self.with(cx, |inner, cx| inner.poll_close(cx, code, reason)))
            .await
    }

    /// Sends a ping with up to 125 bytes of payload and flushes it.
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.state_mut(|inner| inner.conn.ping(payload))?;
        std::future::poll_fn(|cx| self.with(cx, |inner, cx| inner.poll_write_out(cx))).await?;
        Ok(())
    }

    /// Sends a binary message from a borrowed slice and flushes it, with
    /// the [`Sink`]'s backpressure (it first waits while more than
    /// `Config::write_high_water` bytes are queued). A server writes a
    /// payload of 16 KiB or more straight from `data`, header and payload
    /// in one vectored write, and copies only what the transport did not
    /// take at once; anything smaller, a client's (masked) payload or one
    /// that permessage-deflate compresses is copied, as
    /// [`Message::binary`] would be. Once the first write was tried
    /// the message is taken: dropping the future then loses nothing, the
    /// rest goes out with the next writes.
    ///
    /// ```no_run
    /// # async fn run(mut ws: wsproto_tokio::WebSocketStream<tokio::net::TcpStream>) -> Result<(), wsproto_tokio::Error> {
    /// let snapshot: Vec<u8> = vec![0; 1 << 20];
    /// ws.send_binary(&snapshot).await?; // not copied into the connection
    /// # Ok(()) }
    /// ```
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send_borrowed(Borrowed::Binary(data)).await
    }

    /// Sends a text message from a borrowed string and flushes it; as
    /// [`send_binary`](Self::send_binary).
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send_borrowed(Borrowed::Text(text)).await
    }

    async fn send_borrowed(&mut self, payload: Borrowed<'_>) -> Result<(), Error> {
        std::future::poll_fn(|cx| self.with(cx, |inner, cx| inner.poll_ready(cx))).await?;
        std::future::poll_fn(|cx| {
            self.with(cx, |inner, cx| Poll::Ready(inner.send_direct(cx, payload)))
        })
        .await?;
        std::future::poll_fn(|cx| self.with(cx, |inner, cx| inner.poll_write_out(cx))).await?;
        Ok(())
    }

    /// The next event of any kind: messages, and also the pings, pongs and
    /// close frame that the [`Stream`] implementation handles silently (pongs
    /// and the close reply are still sent automatically). `None` once the
    /// connection is over.
    ///
    /// ```no_run
    /// use wsproto_tokio::Event;
    /// # async fn run(mut ws: wsproto_tokio::WebSocketStream<tokio::net::TcpStream>) -> Result<(), wsproto_tokio::Error> {
    /// ws.ping(b"rtt").await?;
    /// while let Some(event) = ws.next_event().await {
    ///     if let Event::Pong(payload) = event? {
    ///         assert_eq!(&payload[..], b"rtt");
    ///         break;
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn next_event(&mut self) -> Option<Result<Event, Error>> {
        std::future::poll_fn(|cx| self.with(cx, |inner, cx| inner.poll_next_event(cx))).await
    }

    /// The peer's close frame, once it arrived.
    pub fn close_frame(&self) -> Option<CloseFrame> {
        self.state_ref(|inner| inner.close_frame.clone())
    }

    /// Where the close handshake stands.
    pub fn state(&self) -> State {
        self.state_ref(|inner| inner.conn.state())
    }

    /// Splits into a reading half and a writing half that can be used from
    /// two tasks at once.
    ///
    /// ```no_run
    /// use futures_util::{SinkExt, StreamExt};
    /// # async fn run() -> Result<(), wsproto_tokio::Error> {
    /// let (ws, _) = wsproto_tokio::connect("ws://127.0.0.1:9527/ws/echo").await?;
    /// let (mut reader, mut writer) = ws.split();
    /// tokio::spawn(async move {
    ///     while let Some(Ok(message)) = reader.next().await {
    ///         println!("{message:?}");
    ///     }
    /// });
    /// writer.send(wsproto_tokio::Message::text("hi")).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn split(self) -> (WsReader<S>, WsWriter<S>) {
        let shared = match self.repr {
            Repr::Owned(inner) => {
                let wakers = Arc::new(Wakers::default());
                Arc::new(Shared {
                    inner: Mutex::new(*inner),
                    both: Waker::from(wakers.clone()),
                    wakers,
                })
            }
            // Not reachable through the public API (halves cannot be split
            // again); they would keep sharing the state.
            Repr::Half(shared, _) => shared,
        };
        // Nothing waits on a registration made before with the task's own
        // waker: `split` takes the stream, so no poll of it is pending, and
        // every poll that waits registers anew.
        let half = |half| WebSocketStream {
            repr: Repr::Half(shared.clone(), half),
        };
        (
            WsReader {
                stream: half(Half::Reader),
            },
            WsWriter {
                stream: half(Half::Writer),
            },
        )
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocketStream<S> {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.with(cx, |inner, cx| inner.poll_next_message(cx))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocketStream<S> {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.with(cx, |inner, cx| inner.poll_ready(cx))
    }

    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.state_mut(|inner| inner.conn.send(message))?;
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.with(cx, |inner, cx| inner.poll_write_out(cx).map_err(Error::Io))
    }

    /// Sends a close frame with code 1000 (if none was sent) and flushes.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.with(cx, |inner, cx| inner.poll_close(cx, CloseCode::Normal, ""))
    }
}

/// The reading half of a split [`WebSocketStream`]: a [`Stream`] of messages.
///
/// It also writes what reading calls for (pongs, the close reply), so
/// keep polling it even if the application only sends.
#[derive(Debug)]
pub struct WsReader<S> {
    stream: WebSocketStream<S>,
}

/// The writing half of a split [`WebSocketStream`]: a [`Sink`] of messages.
#[derive(Debug)]
pub struct WsWriter<S> {
    stream: WebSocketStream<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsReader<S> {
    /// The next event of any kind, as [`WebSocketStream::next_event`].
    pub async fn next_event(&mut self) -> Option<Result<Event, Error>> {
        self.stream.next_event().await
    }

    /// The peer's close frame, once it arrived.
    pub fn close_frame(&self) -> Option<CloseFrame> {
        self.stream.close_frame()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsWriter<S> {
    /// Sends a close frame and flushes it; the reader sees the end of the
    /// stream once the peer answers.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.stream.close(code, reason).await
    }

    /// Sends a ping with up to 125 bytes of payload.
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.stream.ping(payload).await
    }

    /// Sends a binary message from a borrowed slice, as
    /// [`WebSocketStream::send_binary`].
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.stream.send_binary(data).await
    }

    /// Sends a text message from a borrowed string, as
    /// [`WebSocketStream::send_text`].
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.stream.send_text(text).await
    }

    /// How many bytes are queued and not yet written, as
    /// [`WebSocketStream::buffered_out`].
    pub fn buffered_out(&self) -> usize {
        self.stream.buffered_out()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WsReader<S> {
    type Item = Result<Message, Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.stream).poll_next(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WsWriter<S> {
    type Error = Error;
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.stream).poll_ready(cx)
    }
    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        Pin::new(&mut self.stream).start_send(message)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.stream).poll_close(cx)
    }
}
