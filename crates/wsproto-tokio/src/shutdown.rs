//! [`Shutdown`]: closing every connection of a server with 1001 (going
//! away) and waiting, up to a deadline, for their close handshakes.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Waker;

use futures_util::task::AtomicWaker;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use wsproto_core::CloseCode;

/// The shutdown asked the connection to start its close handshake.
pub(crate) const CLOSE: u8 = 1;
/// The deadline passed: the connection is to end now.
pub(crate) const ABANDON: u8 = 2;
/// The connection is over (its close handshake finished, it failed, or it
/// was abandoned).
const FINISHED: u8 = 4;

/// What a shutdown and one tracked connection share. The shutdown only
/// raises flags and wakes the connection's task; the task carries them out
/// the next time it polls the stream, so the stream itself needs no lock
/// (an unsplit stream is polled by one task through `&mut`).
pub(crate) struct Control {
    registry: Arc<Registry>,
    flags: AtomicU8,
    /// The code and reason of the close to start, once `CLOSE` is set.
    close: Mutex<Option<(CloseCode, String)>>,
    /// The tasks to wake: the stream's, or each split half's.
    wakers: [AtomicWaker; 2],
}

impl Control {
    pub(crate) fn new(registry: Arc<Registry>) -> Control {
        Control {
            registry,
            flags: AtomicU8::new(0),
            close: Mutex::new(None),
            wakers: Default::default(),
        }
    }

    /// The flags raised so far.
    pub(crate) fn flags(&self) -> u8 {
        self.flags.load(Ordering::SeqCst)
    }

    /// The close the shutdown asked for.
    pub(crate) fn close_request(&self) -> Option<(CloseCode, String)> {
        self.close.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Leaves the waker of a task about to wait on the connection (`slot`
    /// 0 for the stream or its reading half, 1 for the writing half).
    pub(crate) fn register(&self, slot: usize, waker: &Waker) {
        self.wakers[slot].register(waker);
    }

    /// The connection is over: tells a waiting shutdown, once.
    pub(crate) fn finish(&self) {
        if self.flags.fetch_or(FINISHED, Ordering::SeqCst) & FINISHED == 0 {
            self.registry.changed.notify_waiters();
        }
    }

    fn raise(&self, flags: u8) {
        self.flags.fetch_or(flags, Ordering::SeqCst);
        for waker in &self.wakers {
            waker.wake();
        }
    }

    fn start_close(&self, code: CloseCode, reason: &str) {
        *self.close.lock().unwrap_or_else(|p| p.into_inner()) = Some((code, reason.to_string()));
        self.raise(CLOSE);
    }

    fn is_finished(&self) -> bool {
        self.flags() & FINISHED != 0
    }

    fn abandon(&self) {
        // Counted as over from now on, whenever its task gets to it.
        self.raise(ABANDON | FINISHED);
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        // The connection was dropped: a waiting shutdown counts it as over.
        self.registry.changed.notify_waiters();
    }
}

#[derive(Default)]
pub(crate) struct Registry {
    connections: Mutex<Tracked>,
    /// Woken whenever a tracked connection finishes or is dropped.
    pub(crate) changed: Notify,
}

#[derive(Default)]
struct Tracked {
    list: Vec<Weak<Control>>,
    /// Length after the last sweep of dropped connections: sweeping when
    /// the list doubles keeps tracking O(1) amortised on a server that
    /// runs for months.
    swept_len: usize,
    /// Set once `close_all` started: connections tracked later are closed
    /// right away with it.
    closing: Option<(CloseCode, String)>,
    /// Connections tracked after `close_all` started.
    late: usize,
}

/// Graceful shutdown for a server: register each connection with
/// [`track`](Shutdown::track), then [`close_all`](Shutdown::close_all)
/// sends every one of them a close frame (1001 "going away" is the code for
/// a server going down) and waits, up to a deadline, until each close
/// handshake is over.
///
/// The close frame goes out, and the peer's reply is read, by whichever
/// task polls the connection: keep reading each connection (its
/// [`Stream`](futures_core::Stream) or `next_event`) until it ends, as a
/// connection's task does anyway. Connections still open at the deadline
/// are abandoned: their streams end and their transports are dropped with
/// them.
///
/// Clones share the same set of connections.
///
/// ```no_run
/// use futures_util::StreamExt;
/// use std::time::Duration;
/// use wsproto_tokio::{CloseCode, Shutdown};
///
/// # async fn run() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9003").await?;
/// let shutdown = Shutdown::new();
/// let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
/// loop {
///     let (tcp, _) = tokio::select! {
///         accepted = listener.accept() => accepted?,
///         _ = &mut ctrl_c => break,
///     };
///     let shutdown = shutdown.clone();
///     tokio::spawn(async move {
///         let Ok(mut ws) = wsproto_tokio::accept(tcp).await else { return };
///         shutdown.track(&ws);
///         while let Some(Ok(message)) = ws.next().await {
///             // ...
///             # drop(message);
///         }
///     });
/// }
/// let report = shutdown
///     .close_all(CloseCode::Away, "server restarting", Duration::from_secs(5))
///     .await;
/// println!("{} closed cleanly, {} abandoned", report.closed, report.abandoned);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Shutdown {
    registry: Arc<Registry>,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("started", &self.is_started())
            .finish_non_exhaustive()
    }
}

/// What [`Shutdown::close_all`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Connections that were open when the shutdown began or were tracked
    /// during it.
    pub connections: usize,
    /// Of those, how many finished (close handshake over, or dropped by
    /// their task) before the deadline.
    pub closed: usize,
    /// How many were still open at the deadline and were abandoned.
    pub abandoned: usize,
}

impl Shutdown {
    /// A shutdown with no connections yet.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Registers a connection. The shutdown holds it weakly: a connection
    /// its task dropped counts as finished. A connection tracked after
    /// `close_all` started is closed at once.
    pub fn track<S>(&self, ws: &crate::WebSocketStream<S>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let connection = ws.control(self.registry.clone());
        let mut tracked = self.lock();
        if let Some((code, reason)) = &tracked.closing {
            connection.start_close(*code, reason);
            tracked.late += 1;
        }
        tracked.list.push(Arc::downgrade(&connection));
        if tracked.list.len() >= 2 * tracked.swept_len.max(64) {
            tracked.list.retain(|c| c.strong_count() > 0);
            tracked.swept_len = tracked.list.len();
        }
    }

    /// Whether [`close_all`](Self::close_all) has been called: an accept
    /// loop can stop taking connections.
    pub fn is_started(&self) -> bool {
        self.lock().closing.is_some()
    }

    /// How many tracked connections are not finished yet.
    pub fn open_connections(&self) -> usize {
        self.live().iter().filter(|c| !c.is_finished()).count()
    }

    /// Starts the close handshake of every tracked connection with `code`
    /// and `reason` (a reason of at most 123 bytes; an invalid code or
    /// reason is replaced by 1001 with no reason, so that a shutdown always
    /// goes out), then waits until all of them are over or `deadline` has
    /// passed; those still open then are abandoned.
    pub async fn close_all(
        &self,
        code: CloseCode,
        reason: &str,
        deadline: Duration,
    ) -> ShutdownReport {
        let (code, reason) =
            if code.is_valid_on_wire() && reason.len() <= wsproto_core::MAX_CLOSE_REASON {
                (code, reason.to_string())
            } else {
                (CloseCode::Away, String::new())
            };
        let connections = {
            let mut tracked = self.lock();
            tracked.closing = Some((code, reason.clone()));
            tracked.list.retain(|c| c.strong_count() > 0);
            tracked.list.len()
        };
        for connection in self.live() {
            connection.start_close(code, &reason);
        }
        let until = Instant::now() + deadline;
        loop {
            let changed = self.registry.changed.notified();
            let mut changed = std::pin::pin!(changed);
            // Registered before checking, so that a connection finishing in
            // between is not missed.
            changed.as_mut().enable();
            if self.open_connections() == 0 {
                break;
            }
            if tokio::time::timeout_at(until, changed).await.is_err() {
                break;
            }
        }
        let total = connections + self.lock().late;
        let mut abandoned = 0;
        for connection in self.live() {
            if !connection.is_finished() {
                connection.abandon();
                abandoned += 1;
            }
        }
        ShutdownReport {
            connections: total,
            closed: total - abandoned,
            abandoned,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tracked> {
        self.registry
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn live(&self) -> Vec<Arc<Control>> {
        self.lock().list.iter().filter_map(Weak::upgrade).collect()
    }
}
