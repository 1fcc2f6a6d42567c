//! The wsproto demo server: an echo page, a group chat and a private
//! (one-to-one) chat, served from one port.
//!
//! HTTP and the upgrade go through hyper; each upgraded connection becomes a
//! [`wsproto_tokio::WebSocketStream`] through `from_connection`, after the
//! request was validated by the core's handshake ([`wsproto_core::Request::from_parts`])
//! and permessage-deflate negotiated ([`Limits::deflate`]).
//!
//! | path | what |
//! |---|---|
//! | `/` | index linking the pages |
//! | `/echo`, `/ws/echo` | page and WebSocket: every text and binary message comes back |
//! | `/chat`, `/ws/chat?name=NAME` | group chat: each text frame is a message for everyone else |
//! | `/private`, `/ws/private/<user>` | private chat: each text frame is `{"from_user","to_user","info"}` for one user |
//!
//! The server's JSON events are described in [`protocol`].
//!
//! Several instances serve one chat when they share a Redis
//! ([`cluster`], [`serve_cluster_until`]; `wsproto-chat --redis URL`):
//! group messages, private messages, presence and unique names span the
//! instances, and local chat goes on while Redis is down. On shutdown
//! every WebSocket is closed with 1001 ([`serve_until`]).
//!
//! Several instances can serve one chat together through Redis
//! ([`serve_cluster_until`], [`cluster`]); without it everything stays in
//! process.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9527").await?;
//! // Until Ctrl-C, then every WebSocket is closed with 1001.
//! let stop = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! let report = wsproto_chat::serve_until(listener, wsproto_chat::Limits::default(), stop).await?;
//! println!("{} connections closed, {} abandoned", report.closed, report.abandoned);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod cluster;
pub mod protocol;
pub mod room;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request as HttpRequest, Response as HttpResponse, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wsproto_core::handshake::DeflateConfig;
use wsproto_core::{Accept, Request};
use wsproto_tokio::upgrade::{Upgrade, UpgradedStream};
use wsproto_tokio::{CloseCode, Config, Message, Shutdown, ShutdownReport, WsReader, WsWriter};

use cluster::{Chat, Claim, Cluster, Node};
use protocol::{percent_decode, validate_name, PrivateMessage, ServerEvent};
use room::{taken, Delivery, Member, Outgoing, Room, QUEUE_LEN};

const INDEX: &str = include_str!("../static/index.html");
const ECHO: &str = include_str!("../static/echo.html");
const CHAT: &str = include_str!("../static/chat.html");
const PRIVATE: &str = include_str!("../static/private.html");
const STYLE: &str = include_str!("../static/style.css");

/// Limits of the chat server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest message on the chat routes; bigger ones close with 1009.
    pub chat_message: usize,
    /// Largest message on the echo route.
    pub echo_message: usize,
    /// Keepalive ping interval for every WebSocket.
    pub keepalive: Duration,
    /// permessage-deflate settings, or `None` to never compress. Default:
    /// on, with the library's defaults (browsers offer it on every
    /// connection).
    pub deflate: Option<DeflateConfig>,
    /// How long a sender waits for a reader whose queue of
    /// [`QUEUE_LEN`] messages is full before that reader is
    /// disconnected with 1008 (see [`room`]).
    pub slow_reader_grace: Duration,
    /// On shutdown, how long the close handshakes (1001, going away) of the
    /// open WebSockets may take before the server exits anyway.
    pub shutdown_grace: Duration,
    /// In cluster mode, how long the users of an instance that stopped
    /// answering stay in the global presence (and keep their names). Each
    /// instance refreshes its users every third of it.
    pub presence_ttl: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            chat_message: 64 * 1024,
            echo_message: 16 << 20,
            keepalive: Duration::from_secs(30),
            deflate: Some(DeflateConfig::default()),
            slow_reader_grace: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(5),
            presence_ttl: Duration::from_secs(5),
        }
    }
}

struct Server {
    limits: Limits,
    group: Arc<Room>,
    private: Arc<Room>,
    cluster: Option<Arc<Node>>,
    shutdown: Shutdown,
    /// The WebSocket routes' tasks.
    tasks: TaskTracker,
}

type Body = Full<Bytes>;

/// Serves HTTP and WebSockets on `listener` until the process ends.
pub async fn serve(listener: TcpListener, limits: Limits) -> std::io::Result<()> {
    serve_until(listener, limits, std::future::pending())
        .await
        .map(drop)
}

/// Serves HTTP and WebSockets on `listener` until `stop` completes, then
/// stops accepting, closes every WebSocket with 1001 (going away) and
/// waits up to [`Limits::shutdown_grace`] for the close handshakes.
pub async fn serve_until(
    listener: TcpListener,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<ShutdownReport> {
    serve_cluster_until(listener, limits, None, stop).await
}

/// Like [`serve_until`], and with `cluster` shares users with the other
/// instances connected to the same Redis (see [`cluster`]): group messages,
/// private messages, presence and names span all of them.
pub async fn serve_cluster_until(
    listener: TcpListener,
    limits: Limits,
    cluster: Option<Cluster>,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<ShutdownReport> {
    let group = Arc::new(Room::new(limits.slow_reader_grace));
    let private = Arc::new(Room::new(limits.slow_reader_grace));
    let cluster = match cluster {
        Some(cluster) => Some(cluster.start(group.clone(), private.clone()).await),
        None => None,
    };
    let server = Arc::new(Server {
        group,
        private,
        cluster,
        limits,
        shutdown: Shutdown::new(),
        tasks: TaskTracker::new(),
    });
    let mut stop = std::pin::pin!(stop);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut stop => break,
        };
        let _ = tcp.set_nodelay(true);
        let server = server.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(route(server, req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades()
                .await;
        });
    }
    drop(listener);
    let deadline = tokio::time::Instant::now() + server.limits.shutdown_grace;
    let report = server
        .shutdown
        .close_all(
            CloseCode::Away,
            "server shutting down",
            server.limits.shutdown_grace,
        )
        .await;
    // The routes end their connections' lives (leaves, names given back);
    // then what they queued for other instances goes out.
    server.tasks.close();
    let _ = tokio::time::timeout_at(deadline, server.tasks.wait()).await;
    if let Some(cluster) = &server.cluster {
        cluster.flush().await;
    }
    Ok(report)
}

fn route(server: Arc<Server>, req: HttpRequest<Incoming>) -> HttpResponse<Body> {
    let path = req.uri().path().to_string();
    match path.as_str() {
        "/" => page(INDEX, "text/html; charset=utf-8"),
        "/echo" => page(ECHO, "text/html; charset=utf-8"),
        "/chat" => page(CHAT, "text/html; charset=utf-8"),
        "/private" => page(PRIVATE, "text/html; charset=utf-8"),
        "/style.css" => page(STYLE, "text/css; charset=utf-8"),
        "/ws/echo" => upgrade(server, req, Route::Echo),
        "/ws/chat" => upgrade(server, req, Route::Group),
        p if p.starts_with("/ws/private/") => {
            let user = percent_decode(&p["/ws/private/".len()..]).unwrap_or_default();
            upgrade(server, req, Route::Private(user))
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn page(body: &'static str, content_type: &'static str) -> HttpResponse<Body> {
    let mut response = HttpResponse::new(Full::new(Bytes::from_static(body.as_bytes())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn text(status: StatusCode, body: impl Into<String>) -> HttpResponse<Body> {
    let mut response = HttpResponse::new(Full::new(Bytes::from(body.into())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

enum Route {
    Echo,
    Group,
    Private(String),
}

/// Validates the upgrade with the core's handshake (through
/// [`wsproto_tokio::upgrade`]), answers 101 with permessage-deflate
/// negotiated, and hands the upgraded IO to the route's handler.
fn upgrade(
    server: Arc<Server>,
    mut req: HttpRequest<Incoming>,
    route: Route,
) -> HttpResponse<Body> {
    let upgrade = match Upgrade::from_request(&mut req) {
        Ok(upgrade) => upgrade,
        Err(response) => return response,
    };
    let request = upgrade.request().clone();
    let limit = match route {
        Route::Echo => server.limits.echo_message,
        _ => server.limits.chat_message,
    };
    let config = Config {
        max_message_size: limit,
        max_frame_size: limit,
        ping_interval: Some(server.limits.keepalive),
        deflate: server.limits.deflate,
        ..Config::default()
    };
    let tasks = server.tasks.clone();
    upgrade.on_upgrade(Accept::default(), config, move |ws| {
        // Tracked so that a shutdown waits for each route's cleanup (its
        // leave announced, its name given back), not only for the socket.
        tasks.track_future(async move {
            server.shutdown.track(&ws);
            match route {
                Route::Echo => echo(ws).await,
                Route::Group => group_chat(server, ws, &request).await,
                Route::Private(user) => private_chat(server, ws, user).await,
            }
        })
    })
}

type Ws = UpgradedStream;

async fn echo(mut ws: Ws) {
    while let Some(Ok(message)) = ws.next().await {
        if ws.send(message).await.is_err() {
            break;
        }
    }
}

/// Starts the writer task of one chat connection and returns the member
/// handle the rooms use to reach it.
fn start_writer(mut writer: WsWriter<TokioIo<hyper::upgrade::Upgraded>>) -> Member {
    let (queue, mut rx) = mpsc::channel::<Outgoing>(QUEUE_LEN);
    let kick = CancellationToken::new();
    let member = Member {
        queue,
        kick: kick.clone(),
    };
    tokio::spawn(async move {
        loop {
            let item = tokio::select! {
                item = rx.recv() => item,
                () = kick.cancelled() => break,
            };
            let done = match item {
                Some(Outgoing::Send(message)) => tokio::select! {
                    result = writer.send(message) => result.is_err(),
                    () = kick.cancelled() => true,
                },
                Some(Outgoing::Close(code, reason)) => {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), writer.close(code, &reason))
                            .await;
                    true
                }
                None => true,
            };
            if done {
                break;
            }
        }
        if kick.is_cancelled() {
            // Too slow to keep up: try to say so, but do not wait on it.
            let closing = writer.close(CloseCode::Policy, "too slow: messages were piling up");
            let _ = tokio::time::timeout(Duration::from_millis(200), closing).await;
        }
    });
    member
}

/// Refuses a login: an error object, then close 1008 with the reason.
async fn refuse(
    member: &Member,
    reader: &mut WsReader<TokioIo<hyper::upgrade::Upgraded>>,
    why: String,
) {
    let _ = member
        .queue
        .send(Outgoing::Send(ServerEvent::error(why.clone()).to_message()))
        .await;
    let reason: String = why.chars().take(40).collect();
    let _ = member
        .queue
        .send(Outgoing::Close(CloseCode::Policy, reason))
        .await;
    // Read until the client answers the close (or goes away).
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while reader.next().await.is_some() {}
    })
    .await;
}

async fn group_chat(server: Arc<Server>, ws: Ws, request: &Request) {
    let (mut reader, writer) = ws.split();
    let member = start_writer(writer);
    let name = protocol::query_param(request.query(), "name").unwrap_or_default();
    if let Err(why) = enter(&server, Chat::Group, &name, &member).await {
        return refuse(&member, &mut reader, why).await;
    }
    loop {
        let next = tokio::select! {
            next = reader.next() => next,
            () = member.kick.cancelled() => break,
        };
        match next {
            Some(Ok(Message::Text(text))) => {
                if let Some(cluster) = &server.cluster {
                    cluster.group_message(&name, &text);
                }
                let event = ServerEvent::Group {
                    from: name.clone(),
                    text: text.to_string(),
                };
                server.group.broadcast(&event, Some(&name)).await;
            }
            Some(Ok(Message::Binary(_))) => {
                member.offer(
                    ServerEvent::error("binary messages are not supported: send text").to_message(),
                );
            }
            // Protocol errors (1009 for oversized messages included) were
            // already answered with their close frame by the core.
            Some(Err(_)) | None => break,
        }
    }
    exit(&server, Chat::Group, name, &member).await;
}

impl Server {
    fn room(&self, chat: Chat) -> &Room {
        match chat {
            Chat::Group => &self.group,
            Chat::Private => &self.private,
        }
    }
}

/// Logs `member` in as `name`: the room takes the name (and, with a
/// cluster, every instance does), the others hear of the join.
async fn enter(server: &Server, chat: Chat, name: &str, member: &Member) -> Result<(), String> {
    let room = server.room(chat);
    validate_name(name).and_then(|()| room.join(name, member.clone()))?;
    if let Some(cluster) = &server.cluster {
        match cluster.claim(chat, name).await {
            Claim::Owned => cluster.joined(chat, name),
            // Redis is down: the user chats locally, the name is claimed
            // (or found taken) on reconnection.
            Claim::Unavailable => {}
            Claim::Taken => {
                room.leave(name, member);
                return Err(taken(name));
            }
        }
    }
    room.broadcast(
        &ServerEvent::Join {
            name: name.to_string(),
        },
        Some(name),
    )
    .await;
    room.announce_presence().await;
    Ok(())
}

/// Logs `member` out; also when a sender found it too slow and removed it
/// already, so that the leave is announced here, once.
async fn exit(server: &Server, chat: Chat, name: String, member: &Member) {
    let room = server.room(chat);
    room.leave(&name, member);
    if let Some(cluster) = &server.cluster {
        cluster.release(chat, &name).await;
    }
    room.broadcast(&ServerEvent::Leave { name }, None).await;
    room.announce_presence().await;
}

async fn private_chat(server: Arc<Server>, ws: Ws, user: String) {
    let (mut reader, writer) = ws.split();
    let member = start_writer(writer);
    if let Err(why) = enter(&server, Chat::Private, &user, &member).await {
        return refuse(&member, &mut reader, why).await;
    }
    loop {
        let next = tokio::select! {
            next = reader.next() => next,
            () = member.kick.cancelled() => break,
        };
        let text = match next {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                member.offer(
                    ServerEvent::error("binary messages are not supported: send JSON text")
                        .to_message(),
                );
                continue;
            }
            Some(Err(_)) | None => break,
        };
        if let Err(why) = deliver_private(&server, &user, &text).await {
            member.offer(ServerEvent::error(why).to_message());
        }
    }
    exit(&server, Chat::Private, user, &member).await;
}

/// Checks one private message from `user` and hands it to its recipient.
async fn deliver_private(server: &Server, user: &str, text: &str) -> Result<(), String> {
    let room = &server.private;
    let message: PrivateMessage = serde_json::from_str(text).map_err(|e| {
        format!(
            r#"malformed message ({e}): send {{"from_user": ..., "to_user": ..., "info": ...}}"#
        )
    })?;
    if message.from_user != user {
        return Err(format!(
            "from_user must be your own name {user:?}, not {:?}",
            message.from_user
        ));
    }
    let Some(recipient) = room.get(&message.to_user) else {
        return match &server.cluster {
            Some(cluster) => cluster.send_private(message).await,
            None => Err(format!("{:?} is not online", message.to_user)),
        };
    };
    let event = ServerEvent::Private(message.clone()).to_message();
    match recipient.deliver(event, room.deadline()).await {
        Delivery::Queued => Ok(()),
        Delivery::TooSlow => {
            room.leave(&message.to_user, &recipient);
            Err(format!(
                "{:?} is not keeping up and was disconnected",
                message.to_user
            ))
        }
        Delivery::Gone => Err(format!("{:?} is not online", message.to_user)),
    }
}
