//! Loopback echo comparison: the same load generator against an echo server
//! built on each library, every server on a current-thread tokio runtime (one
//! core each), and the memory each holds per idle connection.
//!
//! ```text
//! cargo run --release -p wsproto-benches --bin echo_bench -- run [--quick]
//! cargo run --release -p wsproto-benches --bin echo_bench -- run --deflate [--quick]
//! cargo run --release -p wsproto-benches --bin echo_bench -- run --corked --window 16 [--quick]
//! cargo run --release -p wsproto-benches --bin echo_bench -- server --lib wsproto --addr 127.0.0.1:9100
//! cargo run --release -p wsproto-benches --bin echo_bench -- load --addr 127.0.0.1:9100 --conns 100 --size 1024
//! ```
//!
//! With `--corked` the servers of the libraries that are a `Stream` and a
//! `Sink` feed each echo and flush only when no message is already
//! received (`next_item`), so that a burst read in one go goes back in
//! as few writes as the library allows; fastwebsockets has no queue to feed
//! and writes every frame as before. It only matters with more than one
//! message in flight per connection (`--window`).
//!
//! `run` starts each server as a child process, drives it with the load
//! generator below for every (connections, message size) cell, reads the
//! server's CPU time from `/proc`, then opens 10,000 idle connections and
//! reads its resident memory; it prints Markdown tables.
//!
//! The load generator speaks raw frames so that it costs the same against
//! every server: each connection keeps `window` masked binary messages in
//! flight, checks every echoed payload byte for byte, and records the time
//! from writing a message to reading its echo.
//!
//! With `--deflate` the servers negotiate permessage-deflate (window 15,
//! context takeover, zlib level 6, both through zlib-rs) and the load
//! generator is a `wsproto-core` client that compresses what it sends and
//! inflates what comes back: text cut from a JSON corpus at a moving offset,
//! so no two consecutive messages are the same. Only the libraries that
//! support the extension take part (wsproto and yawc).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIBS: [&str; 5] = [
    "wsproto",
    "tokio-tungstenite",
    "fastwebsockets",
    "tokio-websockets",
    "yawc",
];

/// The libraries that implement permessage-deflate.
const DEFLATE_LIBS: [&str; 2] = ["wsproto", "yawc"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("server") => server_main(&args[1..]),
        Some("load") => load_main(&args[1..]),
        Some("run") => run_main(&args[1..]),
        _ => Err("usage: echo_bench server|load|run [options] (see the source header)".into()),
    };
    if let Err(e) = result {
        eprintln!("echo_bench: {e}");
        std::process::exit(1);
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn num(args: &[String], name: &str, default: usize) -> Res<usize> {
    Ok(match flag(args, name) {
        Some(v) => v
            .parse()
            .map_err(|_| format!("{name}: not a number: {v}"))?,
        None => default,
    })
}

// ----- servers --------------------------------------------------------------

fn server_main(args: &[String]) -> Res<()> {
    let lib = flag(args, "--lib").ok_or("--lib is required")?;
    if !LIBS.contains(&lib.as_str()) && lib != "floor" {
        return Err(format!("--lib must be one of {LIBS:?} or floor").into());
    }
    let addr = flag(args, "--addr").unwrap_or_else(|| "127.0.0.1:0".into());
    let deflate = args.iter().any(|a| a == "--deflate");
    let corked = args.iter().any(|a| a == "--corked");
    if deflate && !DEFLATE_LIBS.contains(&lib.as_str()) {
        return Err(format!("--deflate: {lib} does not implement permessage-deflate").into());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        // The parent reads this line to learn the port.
        println!("listening {}", listener.local_addr()?);
        loop {
            let (tcp, _) = listener.accept().await?;
            tcp.set_nodelay(true)?;
            // One spawn per library: a task is as large as its future, and
            // one future matching over every library would be as large as
            // the largest of them, for every connection of every library.
            match lib.as_str() {
                "wsproto" => drop(tokio::spawn(echo_wsproto(tcp, deflate, corked))),
                "floor" => drop(tokio::spawn(echo_floor(tcp))),
                "yawc" => drop(tokio::spawn(echo_yawc(tcp, deflate, corked))),
                "tokio-tungstenite" => drop(tokio::spawn(echo_tungstenite(tcp, corked))),
                // It writes every frame as it goes: nothing to cork.
                "fastwebsockets" => drop(tokio::spawn(echo_fastwebsockets(tcp))),
                _ => drop(tokio::spawn(echo_tokio_websockets(tcp, corked))),
            }
        }
    })
}

/// Each server is the library's idiomatic echo loop: read a whole message
/// (UTF-8 validated if text), send it back, flushing each one.
/// The next item of a library that is a `Stream` and a `Sink`. With
/// `--corked`, without flushing while one is already received; when the
/// stream would wait, what was fed goes out first (in one write where the
/// library queues it): the same loop for every such library, what
/// uWebSockets calls corking.
async fn next_item<W, T, I>(ws: &mut W, corked: bool) -> Res<Option<T>>
where
    W: futures_util::Stream<Item = T> + futures_util::Sink<I> + Unpin,
    W::Error: std::error::Error + Send + Sync + 'static,
{
    use futures_util::FutureExt;
    if corked {
        if let Some(next) = ws.next().now_or_never() {
            return Ok(next);
        }
        ws.flush().await?;
    }
    Ok(ws.next().await)
}

/// Sends `item` back: written out at once, or with `--corked` queued
/// (`feed`) for [`next_item`] to flush.
async fn reply<W, I>(ws: &mut W, item: I, corked: bool) -> Result<(), W::Error>
where
    W: futures_util::Sink<I> + Unpin,
{
    if corked {
        ws.feed(item).await
    } else {
        ws.send(item).await
    }
}

async fn echo_wsproto(tcp: TcpStream, deflate: bool, corked: bool) -> Res<()> {
    let config = wsproto_tokio::Config {
        deflate: deflate.then(wsproto_tokio::DeflateConfig::default),
        ..wsproto_tokio::Config::default()
    };
    let ws =
        wsproto_tokio::accept_with(tcp, config, |_| Ok(wsproto_tokio::Accept::default())).await?;
    // The stream yields data messages only.
    echo_messages(ws, corked, |_| true).await
}

/// The floor under every library's idle memory: a task per connection
/// that answers the handshake from a stack buffer and echoes 16-byte binary
/// frames with no WebSocket library state at all (`--libs floor --sizes 16`;
/// only that size).
async fn echo_floor(mut tcp: TcpStream) -> Res<()> {
    // The handshake's state lives in a box that is freed before the
    // connection goes idle.
    Box::pin(floor_handshake(&mut tcp)).await?;
    let mut frame = [0u8; 22];
    loop {
        tcp.read_exact(&mut frame).await?;
        if frame[..2] != [0x82, 0x90] {
            return Err("the floor server echoes 16-byte binary frames only".into());
        }
        let mut echo = [0u8; 18];
        echo[..2].copy_from_slice(&[0x82, 16]);
        for i in 0..16 {
            echo[2 + i] = frame[6 + i] ^ frame[2 + i % 4];
        }
        tcp.write_all(&echo).await?;
    }
}

async fn floor_handshake(tcp: &mut TcpStream) -> Res<()> {
    // Stack only, no validation: just enough for our own load generator.
    let mut buf = [0u8; 1024];
    let mut len = 0;
    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf[len..]).await?;
        if n == 0 || len + n == buf.len() {
            return Err("no request".into());
        }
        len += n;
    }
    let head = std::str::from_utf8(&buf[..len])?;
    let key = head
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .ok_or("no key")?;
    let accept = wsproto_core::accept_key(key.trim().as_bytes());
    let mut response = [0u8; 256];
    let mut w = &mut response[..];
    std::io::Write::write_all(
        &mut w,
        format_args!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .to_string()
        .as_bytes(),
    )?;
    let n = 256 - w.len();
    tcp.write_all(&response[..n]).await?;
    Ok(())
}

/// yawc upgrades through hyper; UTF-8 validation is switched on so that it
/// does the same work as the others.
async fn echo_yawc(tcp: TcpStream, deflate: bool, corked: bool) -> Res<()> {
    let service = hyper::service::service_fn(move |mut req| async move {
        let options = yawc::Options::default().with_utf8();
        let options = if deflate {
            options
                .with_compression_level(yawc::CompressionLevel::new(6))
                .with_compression_threshold(64)
        } else {
            options.without_compression()
        };
        let (response, upgrade) = yawc::WebSocket::upgrade_with_options(&mut req, options)?;
        tokio::spawn(async move {
            let Ok(mut ws) = upgrade.await else { return };
            while let Ok(Some(frame)) = next_item(&mut ws, corked).await {
                let (opcode, _, payload) = frame.into_parts();
                let echo = match opcode {
                    yawc::OpCode::Text => yawc::Frame::text(payload),
                    yawc::OpCode::Binary => yawc::Frame::binary(payload),
                    yawc::OpCode::Close => break,
                    _ => continue,
                };
                if reply(&mut ws, echo, corked).await.is_err() {
                    break;
                }
            }
        });
        Ok::<_, yawc::WebSocketError>(response)
    });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
        .with_upgrades()
        .await?;
    Ok(())
}

/// The echo loop of a library that is a `Stream` of messages and a `Sink`
/// of them: every data message goes back, with `send`, or with `feed`
/// when `corked`.
async fn echo_messages<W, M, E>(mut ws: W, corked: bool, is_data: fn(&M) -> bool) -> Res<()>
where
    W: futures_util::Stream<Item = Result<M, E>> + futures_util::Sink<M> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
    <W as futures_util::Sink<M>>::Error: std::error::Error + Send + Sync + 'static,
{
    while let Some(message) = next_item(&mut ws, corked).await? {
        let message = message?;
        if is_data(&message) {
            reply(&mut ws, message, corked).await?;
        }
    }
    Ok(())
}

async fn echo_tungstenite(tcp: TcpStream, corked: bool) -> Res<()> {
    let ws = tokio_tungstenite::accept_async(tcp).await?;
    echo_messages(ws, corked, |m| m.is_binary() || m.is_text()).await
}

async fn echo_fastwebsockets(mut tcp: TcpStream) -> Res<()> {
    handshake_by_hand(&mut tcp).await?;
    let ws = fastwebsockets::WebSocket::after_handshake(tcp, fastwebsockets::Role::Server);
    // The collector reassembles fragments and validates text, as the others do.
    let mut ws = fastwebsockets::FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            fastwebsockets::OpCode::Close => return Ok(()),
            fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => {
                ws.write_frame(frame).await?
            }
            _ => {}
        }
    }
}

async fn echo_tokio_websockets(mut tcp: TcpStream, corked: bool) -> Res<()> {
    handshake_by_hand(&mut tcp).await?;
    let ws = tokio_websockets::ServerBuilder::new().serve(tcp);
    echo_messages(ws, corked, |m| m.is_binary() || m.is_text()).await
}

/// The HTTP upgrade for libraries that take over an upgraded stream; the
/// load generator sends nothing before the 101, so no bytes are left over.
async fn handshake_by_hand(tcp: &mut TcpStream) -> Res<()> {
    let mut hs = wsproto_core::ServerHandshake::new(wsproto_core::Config::default());
    let mut buf = [0u8; 4096];
    loop {
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Err("closed during handshake".into());
        }
        if let wsproto_core::Status::Complete(_) = hs.receive(&buf[..n])? {
            break;
        }
    }
    let (response, _) = hs.accept(wsproto_core::Accept::default())?;
    tcp.write_all(&response).await?;
    Ok(())
}

// ----- load generator -------------------------------------------------------

#[derive(Debug, Default)]
struct LoadResult {
    messages: u64,
    elapsed: Duration,
    /// Round-trip times in nanoseconds, sorted.
    latencies: Vec<u64>,
    /// CPU time the server process used while messages were counted.
    server_cpu: Option<Duration>,
}

impl LoadResult {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        Duration::from_nanos(self.latencies[i])
    }
}

#[derive(Debug, Clone, Copy)]
struct Load {
    addr: SocketAddr,
    conns: usize,
    size: usize,
    window: usize,
    warmup: Duration,
    measure: Duration,
    /// The server's process id, to read its CPU time over the measurement.
    server_pid: Option<u32>,
    /// Negotiate permessage-deflate and send compressible text.
    deflate: bool,
}

fn load_main(args: &[String]) -> Res<()> {
    let load = Load {
        addr: flag(args, "--addr").ok_or("--addr is required")?.parse()?,
        conns: num(args, "--conns", 100)?,
        size: num(args, "--size", 1024)?,
        window: num(args, "--window", 1)?.max(1),
        warmup: Duration::from_secs(num(args, "--warmup", 1)? as u64),
        measure: Duration::from_secs(num(args, "--seconds", 5)? as u64),
        server_pid: None,
        deflate: args.iter().any(|a| a == "--deflate"),
    };
    let r = run_load(load)?;
    println!(
        "{} msgs/s, p50 {:?}, p99 {:?} ({} messages)",
        r.rate().round(),
        r.percentile(0.5),
        r.percentile(0.99),
        r.messages
    );
    Ok(())
}

/// Drives `load.conns` connections from one current-thread runtime.
fn run_load(load: Load) -> Res<LoadResult> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let measuring = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::with_capacity(load.conns);
        if load.deflate {
            let corpus = Arc::new(json_corpus());
            let mut conns = Vec::with_capacity(load.conns);
            for _ in 0..load.conns {
                conns.push(open_deflate(load.addr).await?);
            }
            for (i, (tcp, conn)) in conns.into_iter().enumerate() {
                let (corpus, measuring, stop) = (corpus.clone(), measuring.clone(), stop.clone());
                tasks.push(tokio::spawn(drive_deflate(
                    tcp, conn, load, corpus, i, measuring, stop,
                )));
            }
        } else {
            let mut conns = Vec::with_capacity(load.conns);
            for _ in 0..load.conns {
                conns.push(open(load.addr).await?);
            }
            for tcp in conns {
                tasks.push(tokio::spawn(drive(
                    tcp,
                    load,
                    measuring.clone(),
                    stop.clone(),
                )));
            }
        }
        tokio::time::sleep(load.warmup).await;
        let cpu_before = load.server_pid.map(cpu_time).transpose()?;
        measuring.store(true, Ordering::Relaxed);
        let started = Instant::now();
        tokio::time::sleep(load.measure).await;
        stop.store(true, Ordering::Relaxed);
        let elapsed = started.elapsed();
        let cpu_after = load.server_pid.map(cpu_time).transpose()?;
        let mut result = LoadResult {
            elapsed,
            server_cpu: cpu_before
                .zip(cpu_after)
                .map(|(before, after)| after.saturating_sub(before)),
            ..LoadResult::default()
        };
        for task in tasks {
            let (messages, latencies) = task.await??;
            result.messages += messages;
            result.latencies.extend(latencies);
        }
        result.latencies.sort_unstable();
        Ok(result)
    })
}

/// Connects and upgrades, returning the stream once the 101 is read.
async fn open(addr: SocketAddr) -> Res<TcpStream> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte so that nothing after the headers is consumed here.
    while !head.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut byte).await? == 0 {
            return Err("server closed during the handshake".into());
        }
        head.push(byte[0]);
        if head.len() > 8192 {
            return Err("handshake response too long".into());
        }
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(format!("handshake refused: {}", String::from_utf8_lossy(&head)).into());
    }
    Ok(tcp)
}

/// One connection's loop: keep `window` messages in flight, check each echo.
async fn drive(
    mut tcp: TcpStream,
    load: Load,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Res<(u64, Vec<u64>)> {
    let payload: Vec<u8> = (0..load.size).map(|i| (i * 7 + 3) as u8).collect();
    let mut frame = bytes::BytesMut::new();
    wsproto_core::frame::encode_frame(
        &mut frame,
        wsproto_core::OpCode::Binary,
        true,
        &payload,
        Some([0x12, 0x34, 0x56, 0x78]),
    );
    // The echo comes back unmasked.
    let header_len = wsproto_core::FrameHeader {
        fin: true,
        rsv: 0,
        opcode: wsproto_core::OpCode::Binary,
        mask: None,
        payload_len: load.size as u64,
    }
    .encoded_len();
    let mut batch = Vec::with_capacity(frame.len() * load.window);
    let mut sent_at: VecDeque<Instant> = VecDeque::with_capacity(load.window);
    let mut buf = vec![0u8; (header_len + load.size).max(64 * 1024) * 2];
    let mut filled = 0;
    let mut messages = 0u64;
    let mut latencies = Vec::new();
    loop {
        let done = stop.load(Ordering::Relaxed);
        if !done && sent_at.len() < load.window {
            batch.clear();
            let now = Instant::now();
            while sent_at.len() < load.window {
                batch.extend_from_slice(&frame);
                sent_at.push_back(now);
            }
            tcp.write_all(&batch).await?;
        }
        if sent_at.is_empty() {
            break;
        }
        let n = tcp.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Err("server closed the connection".into());
        }
        filled += n;
        let mut pos = 0;
        while filled - pos >= header_len + load.size {
            let frame = &buf[pos..pos + header_len + load.size];
            if frame[0] != 0x82 || frame[header_len..] != payload[..] {
                return Err("echo differs from what was sent".into());
            }
            pos += header_len + load.size;
            let sent = sent_at.pop_front().ok_or("an echo nobody asked for")?;
            if measuring.load(Ordering::Relaxed) && !done {
                messages += 1;
                latencies.push(sent.elapsed().as_nanos() as u64);
            }
        }
        buf.copy_within(pos..filled, 0);
        filled -= pos;
    }
    Ok((messages, latencies))
}

/// About 1 MiB of JSON chat events: what permessage-deflate is for.
fn json_corpus() -> Vec<u8> {
    const WORDS: [&str; 24] = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "lazy",
        "dog",
        "websocket",
        "frame",
        "message",
        "deflate",
        "window",
        "server",
        "client",
        "hello",
        "world",
        "latency",
        "throughput",
        "κόσμε",
        "世界",
        "rust",
        "tokio",
        "chat",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut out = String::with_capacity(1 << 20);
    let mut id = 0u64;
    while out.len() < 1 << 20 {
        id += 1;
        let words: Vec<&str> = (0..4 + next() % 12)
            .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
            .collect();
        out.push_str(&format!(
            "{{\"type\":\"message\",\"id\":{id},\"from\":\"user{}\",\"room\":\"lobby\",\"ts\":{},\"text\":\"{}\"}}\n",
            next() % 500,
            1_764_000_000_000u64 + next() % 100_000_000,
            words.join(" ")
        ));
    }
    // Only ASCII at cut points would matter for text; the corpus is cut on
    // char boundaries by `message_at` instead.
    out.into_bytes()
}

/// The `size`-byte text message starting near `offset` in the corpus,
/// moved back to a UTF-8 boundary.
fn message_at(corpus: &[u8], offset: usize, size: usize) -> String {
    let mut start = offset % (corpus.len() - size - 4);
    while start > 0 && (corpus[start] & 0xc0) == 0x80 {
        start -= 1;
    }
    let mut end = start + size;
    while (corpus[end] & 0xc0) == 0x80 {
        end -= 1;
    }
    String::from_utf8(corpus[start..end].to_vec()).expect("cut on char boundaries")
}

/// Connects with a `wsproto-core` client that offers permessage-deflate.
async fn open_deflate(addr: SocketAddr) -> Res<(TcpStream, wsproto_core::Connection)> {
    use wsproto_core::{ClientHandshake, ClientRequest, Status};
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let request = ClientRequest::new(&format!("ws://{addr}/"))?;
    let config = wsproto_core::Config {
        max_message_size: 64 << 20,
        max_frame_size: 64 << 20,
        ..wsproto_core::Config::default()
    };
    let mut hs = ClientHandshake::new(&request, config);
    tcp.write_all(hs.request_bytes()).await?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Err("server closed during the handshake".into());
        }
        if let Status::Complete(response) = hs.receive(&buf[..n])? {
            if response.permessage_deflate().is_none() {
                return Err("the server did not accept permessage-deflate".into());
            }
            break;
        }
    }
    Ok((tcp, hs.into_connection()?))
}

/// One compressed connection's loop, `window` messages in flight.
async fn drive_deflate(
    mut tcp: TcpStream,
    mut conn: wsproto_core::Connection,
    load: Load,
    corpus: Arc<Vec<u8>>,
    index: usize,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Res<(u64, Vec<u64>)> {
    use wsproto_core::{Event, Message};
    let mut offset = index * 7919;
    let mut in_flight: VecDeque<(Instant, String)> = VecDeque::with_capacity(load.window);
    let mut buf = vec![0u8; 64 * 1024];
    let mut messages = 0u64;
    let mut latencies = Vec::new();
    loop {
        let done = stop.load(Ordering::Relaxed);
        if !done && in_flight.len() < load.window {
            while in_flight.len() < load.window {
                let text = message_at(&corpus, offset, load.size);
                offset += load.size / 3 + 1;
                conn.send(Message::text(text.as_str()))?;
                in_flight.push_back((Instant::now(), text));
            }
            while let Some(chunk) = conn.poll_transmit() {
                tcp.write_all(chunk).await?;
                let n = chunk.len();
                conn.advance(n);
            }
        }
        if in_flight.is_empty() {
            break;
        }
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Err("server closed the connection".into());
        }
        conn.receive(&buf[..n]);
        while let Some(event) = conn.poll_event()? {
            let Event::Message(message) = event else {
                continue;
            };
            let (sent, text) = in_flight.pop_front().ok_or("an echo nobody asked for")?;
            if message.as_text() != Some(text.as_str()) {
                return Err("echo differs from what was sent".into());
            }
            if measuring.load(Ordering::Relaxed) && !done {
                messages += 1;
                latencies.push(sent.elapsed().as_nanos() as u64);
            }
        }
    }
    Ok((messages, latencies))
}

// ----- the whole comparison ---------------------------------------------------

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(lib: &str, deflate: bool, corked: bool) -> Res<Server> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["server", "--lib", lib])
            .args(deflate.then_some("--deflate"))
            .args(corked.then_some("--corked"))
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        io::BufRead::read_line(&mut io::BufReader::new(stdout), &mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .ok_or_else(|| format!("unexpected server output: {line:?}"))?
            .parse()?;
        Ok(Server { child, addr })
    }

    fn rss_kib(&self) -> Res<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .ok_or("no VmRSS")?;
        Ok(line.split_whitespace().nth(1).ok_or("bad VmRSS")?.parse()?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User plus system CPU time process `pid` has used so far.
fn cpu_time(pid: u32) -> Res<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are
    // the 14th and 15th fields of the whole line, in clock ticks.
    let rest = stat.rsplit_once(')').ok_or("bad /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

struct Cell {
    conns: usize,
    size: usize,
    rate: f64,
    p50: Duration,
    p99: Duration,
    cpu_per_msg: Duration,
}

fn run_main(args: &[String]) -> Res<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let deflate = args.iter().any(|a| a == "--deflate");
    let corked = args.iter().any(|a| a == "--corked");
    let libs: Vec<String> = match flag(args, "--libs") {
        Some(list) => list.split(',').map(str::to_string).collect(),
        None if deflate => DEFLATE_LIBS.iter().map(|s| s.to_string()).collect(),
        None => LIBS.iter().map(|s| s.to_string()).collect(),
    };
    let window = num(args, "--window", 1)?;
    let idle = num(args, "--idle", 10_000)?;
    let seconds = if quick { 2 } else { 5 };
    let list = |name: &str, default: &[usize]| -> Res<Vec<usize>> {
        match flag(args, name) {
            Some(v) => v
                .split(',')
                .map(|n| n.parse().map_err(|_| format!("{name}: {v}").into()))
                .collect(),
            None => Ok(default.to_vec()),
        }
    };
    let conn_counts = list("--conns", &[1, 100, 1000])?;
    let default_sizes: &[usize] = if deflate {
        &[1024, 16 * 1024]
    } else {
        &[16, 1024, 64 * 1024]
    };
    let sizes = list("--sizes", default_sizes)?;
    let seconds = num(args, "--seconds", seconds as usize)? as u64;

    // Cells outer, libraries inner: a burst of noise from other tenants of
    // the machine then hits neighbouring columns of one row, not one
    // library's whole column. With --rounds N each cell is measured N times
    // per library (rounds interleaved) and the median rate is kept.
    let rounds = num(args, "--rounds", if quick { 1 } else { 3 })?.max(1);
    let mut results: Vec<(String, Vec<Cell>, f64)> =
        libs.iter().map(|l| (l.clone(), Vec::new(), 0.0)).collect();
    for &conns in &conn_counts {
        for &size in &sizes {
            let mut samples: Vec<Vec<Cell>> = libs.iter().map(|_| Vec::new()).collect();
            for _ in 0..rounds {
                for (lib, samples) in libs.iter().zip(&mut samples) {
                    let cell = measure_cell(lib, conns, size, window, seconds, deflate, corked)?;
                    eprintln!(
                        "{lib:>18} {conns:>5} conns x {size:>6} B: {:>9.0} msgs/s  p50 {:>9.1?}  p99 {:>9.1?}  server CPU/msg {:>7.2?}",
                        cell.rate, cell.p50, cell.p99, cell.cpu_per_msg
                    );
                    samples.push(cell);
                }
            }
            for (result, mut samples) in results.iter_mut().zip(samples) {
                samples.sort_by(|a, b| a.rate.total_cmp(&b.rate));
                let median = samples.swap_remove(samples.len() / 2);
                result.1.push(median);
            }
        }
    }
    for (lib, _, per_conn) in &mut results {
        if idle > 0 {
            *per_conn = idle_memory(lib, idle, deflate)?;
            eprintln!(
                "{lib:>18} idle memory: {per_conn:.1} KiB per connection ({idle} connections)"
            );
        }
    }
    print_tables(&results, window, seconds, rounds, idle, deflate, corked);
    Ok(())
}

/// One library, one (connections, size) cell, against a fresh server so
/// that one cell's buffers or leftover connections never weigh on the next.
fn measure_cell(
    lib: &str,
    conns: usize,
    size: usize,
    window: usize,
    seconds: u64,
    deflate: bool,
    corked: bool,
) -> Res<Cell> {
    let server = Server::start(lib, deflate, corked)?;
    let load = Load {
        addr: server.addr,
        conns,
        size,
        window,
        warmup: Duration::from_secs(1),
        measure: Duration::from_secs(seconds),
        server_pid: Some(server.child.id()),
        deflate,
    };
    let handle = std::thread::spawn(move || run_load(load).map_err(|e| e.to_string()));
    let r = handle.join().map_err(|_| "load thread panicked")??;
    // Server CPU over the measured seconds only (not the connection set-up
    // or the warm-up), divided by the messages echoed in them.
    let cpu = r.server_cpu.unwrap_or_default();
    Ok(Cell {
        conns,
        size,
        rate: r.rate(),
        p50: r.percentile(0.5),
        p99: r.percentile(0.99),
        cpu_per_msg: cpu.div_f64((r.messages as f64).max(1.0)),
    })
}

/// Resident memory the server gains per idle connection: `n` connections
/// upgraded, each having echoed one 16-byte message (with `deflate`, one
/// compressed 1 KiB text message, so that both zlib streams exist), then
/// left idle.
fn idle_memory(lib: &str, n: usize, deflate: bool) -> Res<f64> {
    let server = Server::start(lib, deflate, false)?;
    let addr = server.addr;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let before = server.rss_kib()?;
    let mut frame = bytes::BytesMut::new();
    wsproto_core::frame::encode_frame(
        &mut frame,
        wsproto_core::OpCode::Binary,
        true,
        &[7; 16],
        Some([1, 2, 3, 4]),
    );
    let conns = rt.block_on(async move {
        let corpus = json_corpus();
        let mut conns = Vec::with_capacity(n);
        for i in 0..n {
            if deflate {
                let (mut tcp, mut conn) = open_deflate(addr).await?;
                conn.send(wsproto_core::Message::text(message_at(
                    &corpus,
                    i * 131,
                    1024,
                )))?;
                while let Some(chunk) = conn.poll_transmit() {
                    tcp.write_all(chunk).await?;
                    let n = chunk.len();
                    conn.advance(n);
                }
                let mut buf = vec![0u8; 4096];
                loop {
                    let got = tcp.read(&mut buf).await?;
                    if got == 0 {
                        return Err("server closed the connection".into());
                    }
                    conn.receive(&buf[..got]);
                    if let Some(wsproto_core::Event::Message(_)) = conn.poll_event()? {
                        break;
                    }
                }
                conns.push(tcp);
            } else {
                let mut tcp = open(addr).await?;
                tcp.write_all(&frame).await?;
                let mut echo = [0u8; 18];
                tcp.read_exact(&mut echo).await?;
                conns.push(tcp);
            }
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(conns)
    })?;
    std::thread::sleep(Duration::from_millis(500));
    let after = server.rss_kib()?;
    drop(conns);
    Ok(after.saturating_sub(before) as f64 / n as f64)
}

fn print_tables(
    results: &[(String, Vec<Cell>, f64)],
    window: usize,
    seconds: u64,
    rounds: usize,
    idle: usize,
    deflate: bool,
    corked: bool,
) {
    let names: Vec<&str> = results.iter().map(|(l, _, _)| l.as_str()).collect();
    let ours = results.iter().position(|(l, _, _)| l == "wsproto");
    let what = if deflate {
        "JSON text with permessage-deflate (window 15, context takeover, level 6)"
    } else {
        "binary messages"
    };
    let what = if corked {
        format!("{what}, corked servers (each Stream + Sink library feeds its echoes and flushes only when no message is already received; fastwebsockets writes every frame)")
    } else {
        what.to_string()
    };
    println!(
        "Echo over loopback, {what}: {window} message(s) in flight per connection, {seconds} s measured after 1 s warm-up, median of {rounds} interleaved round(s); server on a current-thread runtime.\n"
    );
    println!("| connections × size | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    let Some((_, first, _)) = results.first() else {
        return;
    };
    for (i, cell) in first.iter().enumerate() {
        let row: Vec<String> = results
            .iter()
            .map(|(_, cells, _)| {
                let c = &cells[i];
                let ratio = match ours {
                    Some(o) if c.rate > 0.0 => {
                        format!(" ({:.2}x)", results[o].1[i].rate / c.rate)
                    }
                    _ => String::new(),
                };
                format!(
                    "{:.0} msgs/s{ratio}, p50 {:.2} ms, p99 {:.2} ms, CPU {:.1} µs/msg",
                    c.rate,
                    c.p50.as_secs_f64() * 1e3,
                    c.p99.as_secs_f64() * 1e3,
                    c.cpu_per_msg.as_secs_f64() * 1e6
                )
            })
            .collect();
        println!("| {} × {} B | {} |", cell.conns, cell.size, row.join(" | "));
    }
    println!("\n(x) is wsproto's messages/s divided by that column's.\n");
    if idle == 0 {
        return;
    }
    let first = if deflate {
        "one compressed 1 KiB echo"
    } else {
        "one 16 B echo"
    };
    println!("Resident memory per idle connection ({idle} connections, each after {first}):\n");
    println!("| {} |", names.join(" | "));
    println!("|{}", "---|".repeat(names.len()));
    let mem: Vec<String> = results
        .iter()
        .map(|(_, _, kib)| format!("{kib:.1} KiB"))
        .collect();
    println!("| {} |", mem.join(" | "));
}
