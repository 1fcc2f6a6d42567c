//! Group-chat load on the demo server: one instance, or several sharing a
//! Redis, started by this program on loopback.
//!
//! ```sh
//! cargo build --release -p wsproto-chat -p wsproto-benches
//! target/release/chat_load --instances 1
//! target/release/chat_load --instances 2          # starts redis-server on a free port
//! ```
//!
//! Users join the group chat spread evenly over the instances; `--senders`
//! of them send `--rate` messages per second each for `--seconds`; every
//! user counts the group messages it receives and their delivery latency
//! (send to receipt, one clock). Printed: messages delivered per second,
//! p50/p99/max latency, per-sender order violations, lost deliveries, and
//! the instances' resident memory per connected user. Users offer
//! permessage-deflate as browsers do (the server's zlib state is then most
//! of a user's memory); `--no-deflate` connects without it.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use wsproto_tokio::Message;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Options {
    instances: usize,
    redis: Option<String>,
    users: usize,
    senders: usize,
    rate: u64,
    seconds: u64,
    chat_bin: String,
    deflate: bool,
}

fn parse() -> Res<Options> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let num = |name: &str, default: u64| -> Res<u64> {
        Ok(match flag(name) {
            Some(v) => v
                .parse()
                .map_err(|_| format!("{name}: not a number: {v}"))?,
            None => default,
        })
    };
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!(
            "usage: chat_load [--instances N] [--redis URL] [--users N] [--senders N] \
             [--rate MSGS_PER_S] [--seconds S] [--chat-bin PATH] [--no-deflate]"
        );
        std::process::exit(0);
    }
    Ok(Options {
        instances: num("--instances", 1)? as usize,
        redis: flag("--redis"),
        users: num("--users", 100)? as usize,
        senders: num("--senders", 10)? as usize,
        rate: num("--rate", 50)?,
        seconds: num("--seconds", 10)?,
        chat_bin: flag("--chat-bin").unwrap_or_else(|| "target/release/wsproto-chat".into()),
        deflate: !args.iter().any(|a| a == "--no-deflate"),
    })
}

/// Child processes killed when this program ends, however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        // Newest first: the instances go before the Redis they use.
        for child in self.0.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn rss_kib(pid: u32) -> Res<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmRSS")?.parse()?)
}

/// Starts a chat instance and returns it with the address it printed.
fn start_instance(bin: &str, redis: Option<&str>) -> Res<(Child, String)> {
    use std::io::BufRead;
    let mut command = Command::new(bin);
    command.args(["--addr", "127.0.0.1:0"]);
    if let Some(url) = redis {
        command.args(["--redis", url]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{bin}: {e} (build it: cargo build --release -p wsproto-chat)"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let first = lines.next().ok_or("the chat server exited")??;
    let addr = first
        .strip_prefix("wsproto chat on http://")
        .ok_or_else(|| format!("unexpected first line: {first}"))?
        .to_string();
    // Keep draining its output so that it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok((child, addr))
}

#[derive(Default)]
struct Stats {
    latencies_us: Vec<u32>,
    delivered: u64,
    out_of_order: u64,
}

fn main() -> Res<()> {
    let options = parse()?;
    // One thread for the load: the instances (and Redis) get the other core.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(options))
}

async fn run(o: Options) -> Res<()> {
    let mut children = Children(Vec::new());
    let redis = match (&o.redis, o.instances) {
        (Some(url), _) => Some(url.clone()),
        (None, 1) => None,
        (None, _) => {
            let port = free_port()?;
            let server = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| format!("redis-server: {e} (apt-get install redis-server)"))?;
            children.0.push(server);
            tokio::time::sleep(Duration::from_millis(300)).await;
            Some(format!("redis://127.0.0.1:{port}"))
        }
    };
    let mut addrs = Vec::new();
    let mut pids = Vec::new();
    for _ in 0..o.instances {
        let (child, addr) = start_instance(&o.chat_bin, redis.as_deref())?;
        pids.push(child.id());
        children.0.push(child);
        addrs.push(addr);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before: Vec<u64> = pids.iter().map(|&p| rss_kib(p)).collect::<Res<_>>()?;

    // Users, spread evenly; each reads until told to stop.
    let start = Instant::now();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for u in 0..o.users {
        let addr = &addrs[u % addrs.len()];
        let url = format!("ws://{addr}/ws/chat?name=u{u}");
        let request = wsproto_tokio::ClientRequest::new(&url)?;
        let config = wsproto_tokio::Config {
            deflate: o.deflate.then(Default::default),
            ..Default::default()
        };
        let (ws, _) = wsproto_tokio::connect_with(&request, config).await?;
        let (reader, writer) = ws.split();
        writers.push(writer);
        let stopped = stopped.clone();
        readers.push(tokio::spawn(read_user(reader, start, stopped)));
    }
    // Presence announcements settle before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after: Vec<u64> = pids.iter().map(|&p| rss_kib(p)).collect::<Res<_>>()?;

    let interval = Duration::from_nanos(1_000_000_000 / o.rate.max(1));
    let per_sender = o.rate * o.seconds;
    let measured = Instant::now();
    let mut sending = Vec::new();
    for (s, mut writer) in writers.drain(..).take(o.senders).enumerate() {
        sending.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for i in 0..per_sender {
                tick.tick().await;
                let t = start.elapsed().as_micros();
                let text = format!("t={t} s={s} i={i}");
                if writer.send(Message::text(text)).await.is_err() {
                    return i;
                }
            }
            per_sender
        }));
    }
    let mut sent = 0;
    for s in sending {
        sent += s.await?;
    }
    let send_time = measured.elapsed();
    // Deliveries in flight arrive; then everyone stops counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.send(true)?;
    let mut all = Stats::default();
    for r in readers {
        let s = r.await?;
        all.latencies_us.extend_from_slice(&s.latencies_us);
        all.delivered += s.delivered;
        all.out_of_order += s.out_of_order;
    }
    all.latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((all.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        all.latencies_us[i] as f64 / 1000.0
    };
    let expected = sent * (o.users as u64 - 1);
    let per_user: Vec<String> = rss_before
        .iter()
        .zip(&rss_after)
        .map(|(b, a)| {
            let users_here = o.users / o.instances;
            format!(
                "{:.1}",
                a.saturating_sub(*b) as f64 / users_here.max(1) as f64
            )
        })
        .collect();
    println!(
        "instances={} redis={} users={} senders={} rate={}/s each, {} s, permessage-deflate {}",
        o.instances,
        redis.as_deref().unwrap_or("none"),
        o.users,
        o.senders,
        o.rate,
        o.seconds,
        if o.deflate { "offered" } else { "off" }
    );
    println!(
        "sent {sent} messages in {:.2} s; delivered {} of {expected} ({} lost), {:.0} deliveries/s; \
         latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; out of order {}; \
         memory per user (KiB, per instance): {}",
        send_time.as_secs_f64(),
        all.delivered,
        expected.saturating_sub(all.delivered),
        all.delivered as f64 / send_time.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(1.0),
        all.out_of_order,
        per_user.join(", ")
    );
    drop(children);
    Ok(())
}

async fn read_user(
    mut reader: wsproto_tokio::WsReader<wsproto_tokio::MaybeTlsStream<tokio::net::TcpStream>>,
    start: Instant,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> Stats {
    let mut stats = Stats::default();
    let mut last: HashMap<u64, u64> = HashMap::new();
    loop {
        let message = tokio::select! {
            message = reader.next() => message,
            _ = stopped.changed() => break,
        };
        let Some(Ok(message)) = message else { break };
        let Some(text) = message.as_text() else {
            continue;
        };
        // Group messages carry our text in "text"; other events are skipped.
        let Some(at) = text.find("\"text\":\"t=") else {
            continue;
        };
        let body = &text[at + "\"text\":\"".len()..];
        let body = body.split('"').next().unwrap_or("");
        let mut t = 0u128;
        let (mut s, mut i) = (0u64, 0u64);
        for part in body.split(' ') {
            if let Some(v) = part.strip_prefix("t=") {
                t = v.parse().unwrap_or(0);
            } else if let Some(v) = part.strip_prefix("s=") {
                s = v.parse().unwrap_or(0);
            } else if let Some(v) = part.strip_prefix("i=") {
                i = v.parse().unwrap_or(0);
            }
        }
        let now = start.elapsed().as_micros();
        stats
            .latencies_us
            .push(now.saturating_sub(t).min(u32::MAX as u128) as u32);
        stats.delivered += 1;
        if let Some(&prev) = last.get(&s) {
            if i <= prev {
                stats.out_of_order += 1;
            }
        }
        last.insert(s, i);
    }
    stats
}
