//! Cluster mode: several chat servers sharing their users through Redis.
//!
//! Every instance keeps serving its own users from its in-process [`Room`]s;
//! Redis only carries what crosses instances, so local chat never waits on
//! it and keeps working while it is down.
//!
//! Layout (`ROOM` is `group` or `private`, `ID` an instance's random id):
//!
//! | key / channel | what |
//! |---|---|
//! | `wsproto-chat:ROOM:user:NAME` (string) | the instance `ID` owning NAME; `PX` [`crate::Limits::presence_ttl`], refreshed every ttl/3 |
//! | `wsproto-chat:ROOM:events` (channel) | JSON `{"origin": ID, "kind": "message"/"join"/"leave", ...}` for every instance |
//! | `wsproto-chat:instance:ID` (channel) | JSON `{"origin", "kind": "private", "message": {...}}` for the recipient's instance |
//!
//! A name is claimed with a script that sets the key only when it is absent
//! or already ours, so two instances cannot both own it. Presence is the
//! union of local members and the names other instances own; each instance
//! rescans the keys on every heartbeat, so the users of a dead instance
//! disappear (and their leave is announced) at most ttl + ttl/3 after its
//! last refresh.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, ErrorKind, RedisError, RedisResult, Script};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::protocol::{PrivateMessage, ServerEvent};
use crate::room::{taken, Delivery, Outgoing, Room};

/// How long one Redis operation may take before it counts as an outage;
/// short, because a user's login waits on it.
const OP_TIMEOUT: Duration = Duration::from_secs(1);
/// Events waiting to be published. Beyond that (Redis slow or down) new
/// events are dropped rather than queued: other instances resynchronise
/// presence from the keys once Redis is back, and stale chat messages
/// delivered late would be worse than missing ones.
const OUTBOX_LEN: usize = 1024;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Claims each key in `KEYS` for instance `ARGV[1]` for `ARGV[2]` ms unless
/// another instance owns it; 1 per key claimed (or refreshed), 0 if taken.
const CLAIM: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner == false or owner == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
";

/// Deletes `KEYS[1]` only while instance `ARGV[1]` owns it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Which chat a name or event belongs to; group and private names are
/// separate, as on one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chat {
    /// `/ws/chat`.
    Group,
    /// `/ws/private/<user>`.
    Private,
}

impl Chat {
    fn as_str(self) -> &'static str {
        match self {
            Chat::Group => "group",
            Chat::Private => "private",
        }
    }

    fn key(self, name: &str) -> String {
        format!("wsproto-chat:{}:user:{name}", self.as_str())
    }

    fn channel(self) -> String {
        format!("wsproto-chat:{}:events", self.as_str())
    }
}

fn instance_channel(id: &str) -> String {
    format!("wsproto-chat:instance:{id}")
}

/// What instances tell each other.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Event {
    Message { from: String, text: String },
    Join { name: String },
    Leave { name: String },
    Private { message: PrivateMessage },
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// The sending instance, so that it skips its own events (it delivered
    /// them locally already).
    origin: String,
    #[serde(flatten)]
    event: Event,
}

/// The outcome of claiming a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The name is ours across the cluster.
    Owned,
    /// Another instance has a user of that name.
    Taken,
    /// Redis cannot be reached: the name is only known to be free here; it
    /// is claimed when Redis is back.
    Unavailable,
}

fn timed_out() -> RedisError {
    RedisError::from((ErrorKind::IoError, "Redis did not answer in time"))
}

async fn within<T>(op: impl std::future::Future<Output = RedisResult<T>>) -> RedisResult<T> {
    tokio::time::timeout(OP_TIMEOUT, op)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}

/// A connection to Redis, made before the server starts serving, so that an
/// unreachable Redis stops the server at once.
pub struct Cluster {
    id: String,
    client: redis::Client,
    conn: ConnectionManager,
    ttl: Duration,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("id", &self.id)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects to the Redis at `url` (`redis://HOST:PORT`) and checks that
    /// it answers. Names are held for `presence_ttl` after this instance's
    /// last heartbeat.
    pub async fn connect(url: &str, presence_ttl: Duration) -> RedisResult<Cluster> {
        let client = redis::Client::open(url)?;
        // Few, short retries: callers wait on them; the supervisor does the
        // long-term reconnecting.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(OP_TIMEOUT)
            .set_response_timeout(OP_TIMEOUT)
            .set_number_of_retries(1)
            .set_max_delay(200);
        let mut conn = tokio::time::timeout(
            OP_TIMEOUT * 3,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .unwrap_or_else(|_| Err(timed_out()))?;
        within(redis::cmd("PING").query_async::<String>(&mut conn)).await?;
        Ok(Cluster {
            id: instance_id(),
            client,
            conn,
            ttl: presence_ttl.max(Duration::from_millis(300)),
        })
    }

    /// Starts publishing and subscribing for `group` and `private`; returns
    /// once subscribed and synchronised (or after a few seconds anyway).
    pub(crate) async fn start(self, group: Arc<Room>, private: Arc<Room>) -> Arc<Node> {
        let (outbox, rx) = mpsc::channel(OUTBOX_LEN);
        let node = Arc::new(Node {
            id: self.id,
            client: self.client,
            conn: self.conn,
            ttl: self.ttl,
            group,
            private,
            up: AtomicBool::new(false),
            started: AtomicBool::new(false),
            outbox,
        });
        tokio::spawn(publish(node.clone(), rx));
        let ready = Arc::new(Notify::new());
        tokio::spawn(supervise(node.clone(), ready.clone()));
        let _ = tokio::time::timeout(OP_TIMEOUT * 5, ready.notified()).await;
        node
    }
}

/// A random enough id without a random-number crate: the process id, the
/// time, and the std hasher's per-process random keys.
fn instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    format!("{:016x}", hasher.finish())
}

/// A running cluster member.
pub(crate) struct Node {
    id: String,
    client: redis::Client,
    conn: ConnectionManager,
    ttl: Duration,
    group: Arc<Room>,
    private: Arc<Room>,
    /// Whether Redis is believed reachable; while not, nothing is sent to it.
    up: AtomicBool,
    /// Whether Redis was up once, so that "back" is only said after an outage.
    started: AtomicBool,
    outbox: mpsc::Sender<Outbound>,
}

/// What the publisher task is handed.
enum Outbound {
    /// An event for a channel.
    Publish(String, String),
    /// Answered once everything queued before it was written to Redis.
    Flush(oneshot::Sender<()>),
}

impl Node {
    fn room(&self, chat: Chat) -> &Room {
        match chat {
            Chat::Group => &self.group,
            Chat::Private => &self.private,
        }
    }

    fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    fn mark_down(&self, why: &RedisError) {
        if self.up.swap(false, Ordering::SeqCst) {
            eprintln!(
                "wsproto-chat: lost Redis ({why}); local chat goes on, \
                 other instances are out of reach until it is back; reconnecting"
            );
        }
    }

    fn mark_up(&self) {
        let was_up = self.up.swap(true, Ordering::SeqCst);
        if !was_up && self.started.swap(true, Ordering::SeqCst) {
            eprintln!("wsproto-chat: Redis is back; cross-instance delivery resumed");
        }
    }

    fn send(&self, channel: String, event: Event) -> bool {
        // Down: dropped, see OUTBOX_LEN.
        if !self.is_up() {
            return false;
        }
        let envelope = Envelope {
            origin: self.id.clone(),
            event,
        };
        let Ok(payload) = serde_json::to_string(&envelope) else {
            return false;
        };
        // Full: dropped, see OUTBOX_LEN.
        self.outbox
            .try_send(Outbound::Publish(channel, payload))
            .is_ok()
    }

    /// Claims `name` across the cluster.
    pub(crate) async fn claim(&self, chat: Chat, name: &str) -> Claim {
        if !self.is_up() {
            return Claim::Unavailable;
        }
        let mut conn = self.conn.clone();
        let claimed = within(
            Script::new(CLAIM)
                .key(chat.key(name))
                .arg(&self.id)
                .arg(self.ttl.as_millis() as u64)
                .invoke_async::<Vec<i64>>(&mut conn),
        )
        .await;
        match claimed {
            Ok(v) if v.first() == Some(&1) => Claim::Owned,
            Ok(_) => Claim::Taken,
            Err(e) => {
                self.mark_down(&e);
                Claim::Unavailable
            }
        }
    }

    /// Tells the other instances that `name` joined.
    pub(crate) fn joined(&self, chat: Chat, name: &str) {
        self.send(
            chat.channel(),
            Event::Join {
                name: name.to_string(),
            },
        );
    }

    /// Tells the other instances about a group message.
    pub(crate) fn group_message(&self, from: &str, text: &str) {
        self.send(
            Chat::Group.channel(),
            Event::Message {
                from: from.to_string(),
                text: text.to_string(),
            },
        );
    }

    /// Waits (a few seconds at most) until every event queued so far was
    /// written to Redis: a server shutting down calls it after its users'
    /// leaves were queued, so that the other instances hear them before
    /// this process exits.
    pub(crate) async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        let queued = self.outbox.send(Outbound::Flush(done));
        if tokio::time::timeout(OP_TIMEOUT, queued).await.is_ok() {
            let _ = tokio::time::timeout(OP_TIMEOUT * 2, flushed).await;
        }
    }

    /// Gives up `name` and tells the other instances it left. If Redis is
    /// down, the key expires by itself and the others notice on their next
    /// scan.
    pub(crate) async fn release(&self, chat: Chat, name: &str) {
        if !self.is_up() {
            return;
        }
        let mut conn = self.conn.clone();
        let released = within(
            Script::new(RELEASE)
                .key(chat.key(name))
                .arg(&self.id)
                .invoke_async::<i64>(&mut conn),
        )
        .await;
        match released {
            // Only the owner announces: a local duplicate refused after an
            // outage must not make the real owner look gone.
            Ok(1) => {
                self.send(
                    chat.channel(),
                    Event::Leave {
                        name: name.to_string(),
                    },
                );
            }
            Ok(_) => {}
            Err(e) => self.mark_down(&e),
        }
    }

    /// Forwards a private message to the instance of its recipient, who is
    /// not connected here.
    pub(crate) async fn send_private(&self, message: PrivateMessage) -> Result<(), String> {
        let to = message.to_user.clone();
        let unreachable = || {
            format!("{to:?} is not online here and the other servers cannot be reached right now")
        };
        if !self.is_up() {
            return Err(unreachable());
        }
        let mut conn = self.conn.clone();
        let owner: Option<String> = match within(conn.get(Chat::Private.key(&to))).await {
            Ok(owner) => owner,
            Err(e) => {
                self.mark_down(&e);
                return Err(unreachable());
            }
        };
        match owner {
            Some(owner) if owner != self.id => {
                if self.send(instance_channel(&owner), Event::Private { message }) {
                    Ok(())
                } else {
                    Err(unreachable())
                }
            }
            _ => Err(format!("{to:?} is not online")),
        }
    }

    /// Re-claims the names of local users and rescans who is online
    /// elsewhere, announcing the differences to local users.
    async fn heartbeat(&self) -> RedisResult<()> {
        for chat in [Chat::Group, Chat::Private] {
            self.reclaim(chat).await?;
            self.sync(chat).await?;
        }
        Ok(())
    }

    async fn reclaim(&self, chat: Chat) -> RedisResult<()> {
        let names = self.room(chat).local_names();
        if names.is_empty() {
            return Ok(());
        }
        let script = Script::new(CLAIM);
        let mut invocation = script.prepare_invoke();
        for name in &names {
            invocation.key(chat.key(name));
        }
        invocation.arg(&self.id).arg(self.ttl.as_millis() as u64);
        let mut conn = self.conn.clone();
        let owned: Vec<i64> = within(invocation.invoke_async(&mut conn)).await?;
        for (name, owned) in names.iter().zip(owned) {
            if owned == 1 {
                continue;
            }
            // Someone else logged in under this name elsewhere while Redis
            // was unreachable from here: the one who holds the key keeps it.
            eprintln!("wsproto-chat: {name:?} is also online on another instance; disconnecting the one here");
            if let Some(member) = self.room(chat).get(name) {
                let _ = member
                    .queue
                    .try_send(Outgoing::Send(ServerEvent::error(taken(name)).to_message()));
                let reason: String = taken(name).chars().take(40).collect();
                let _ = member
                    .queue
                    .try_send(Outgoing::Close(wsproto_tokio::CloseCode::Policy, reason));
            }
        }
        Ok(())
    }

    async fn sync(&self, chat: Chat) -> RedisResult<()> {
        let mut conn = self.conn.clone();
        let pattern = chat.key("*");
        let mut keys = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = within(
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn),
            )
            .await?;
            keys.extend(batch);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let mut remote = BTreeSet::new();
        if !keys.is_empty() {
            let owners: Vec<Option<String>> = within(
                redis::cmd("MGET")
                    .arg(&keys)
                    .query_async::<Vec<Option<String>>>(&mut conn),
            )
            .await?;
            let prefix = chat.key("");
            for (key, owner) in keys.iter().zip(owners) {
                if owner.is_some_and(|o| o != self.id) {
                    remote.insert(key[prefix.len()..].to_string());
                }
            }
        }
        let room = self.room(chat);
        let (added, removed) = room.set_remote(remote);
        for name in &added {
            room.broadcast(&ServerEvent::Join { name: name.clone() }, None)
                .await;
        }
        for name in &removed {
            room.broadcast(&ServerEvent::Leave { name: name.clone() }, None)
                .await;
        }
        if !added.is_empty() || !removed.is_empty() {
            room.announce_presence().await;
        }
        Ok(())
    }

    /// Delivers an event from another instance to the local users.
    async fn receive(&self, channel: &str, payload: &[u8]) {
        let Ok(Envelope { origin, event }) = serde_json::from_slice(payload) else {
            return;
        };
        if origin == self.id {
            return;
        }
        let chat = if channel == Chat::Group.channel() {
            Chat::Group
        } else {
            Chat::Private
        };
        let room = self.room(chat);
        match event {
            Event::Message { from, text } => {
                room.broadcast(&ServerEvent::Group { from, text }, None)
                    .await;
            }
            Event::Join { name } => {
                if room.add_remote(&name) {
                    room.broadcast(&ServerEvent::Join { name }, None).await;
                    room.announce_presence().await;
                }
            }
            Event::Leave { name } => {
                if room.remove_remote(&name) {
                    room.broadcast(&ServerEvent::Leave { name }, None).await;
                    room.announce_presence().await;
                }
            }
            Event::Private { message } => {
                let Some(member) = self.private.get(&message.to_user) else {
                    return;
                };
                let to = message.to_user.clone();
                let event = ServerEvent::Private(message).to_message();
                if member.deliver(event, self.private.deadline()).await == Delivery::TooSlow {
                    self.private.leave(&to, &member);
                }
            }
        }
    }

    /// One connected period: subscribe, resynchronise, then deliver events
    /// and beat until the connection fails.
    async fn session(&self, ready: &Notify) -> RedisResult<()> {
        let mut pubsub = within(self.client.get_async_pubsub()).await?;
        let channels = vec![
            Chat::Group.channel(),
            Chat::Private.channel(),
            instance_channel(&self.id),
        ];
        within(pubsub.subscribe(channels)).await?;
        self.heartbeat().await?;
        self.mark_up();
        ready.notify_one();
        let mut messages = pubsub.into_on_message();
        let mut beat = tokio::time::interval(self.ttl / 3);
        beat.reset();
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(message) => {
                        self.receive(message.get_channel_name(), message.get_payload_bytes()).await;
                    }
                    None => {
                        return Err(RedisError::from((ErrorKind::IoError, "pub/sub connection closed")));
                    }
                },
                _ = beat.tick() => {
                    self.heartbeat().await?;
                    // Heals a `mark_down` from a command that merely timed
                    // out while this session stayed connected.
                    self.mark_up();
                }
            }
        }
    }
}

/// Keeps a pub/sub session going, reconnecting with backoff.
async fn supervise(node: Arc<Node>, ready: Arc<Notify>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let err = match node.session(&ready).await {
            Ok(()) => continue,
            Err(err) => err,
        };
        if node.is_up() {
            backoff = MIN_BACKOFF;
        }
        node.mark_down(&err);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Publishes queued events in order (which keeps each sender's order),
/// everything queued at once in one pipeline: one round trip per batch
/// instead of one per event, so that the outbox drains as fast as Redis
/// takes commands rather than at one event per round trip.
async fn publish(node: Arc<Node>, mut rx: mpsc::Receiver<Outbound>) {
    const BATCH: usize = 256;
    let mut conn = node.conn.clone();
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        let mut flushes = Vec::new();
        for item in batch.drain(..) {
            match item {
                Outbound::Publish(channel, payload) => {
                    pipe.publish(channel, payload).ignore();
                }
                Outbound::Flush(done) => flushes.push(done),
            }
        }
        if node.is_up() && pipe.cmd_iter().next().is_some() {
            if let Err(e) = within(pipe.query_async::<()>(&mut conn)).await {
                node.mark_down(&e);
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}
