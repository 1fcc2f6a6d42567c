//! `cargo run --release -p wsproto-chat [-- --addr HOST:PORT] [--redis redis://HOST:PORT]`
//!
//! Serves the echo, group chat and private chat pages on
//! http://127.0.0.1:9527 (or `--addr`). On Ctrl-C or SIGTERM it stops
//! accepting, closes every WebSocket with 1001 (going away) and exits once
//! the close handshakes are over (5 s at most).
//!
//! With `--redis URL` (or `WSPROTO_CHAT_REDIS=URL`) it serves one chat
//! together with every other instance using that Redis; it exits with
//! status 1 if Redis cannot be reached at start. `--presence-ttl SECONDS`
//! (default 5) bounds how long the users of a dead instance stay online.

use std::time::Duration;

use tokio::net::TcpListener;

const USAGE: &str =
    "usage: wsproto-chat [--addr HOST:PORT] [--redis redis://HOST:PORT] [--presence-ttl SECONDS]
  --addr          where to listen (default 127.0.0.1:9527)
  --redis         share the chat with other instances through this Redis
                  (default: $WSPROTO_CHAT_REDIS, else no Redis)
  --presence-ttl  how long users of an instance that died stay online (default 5)";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:9527".to_string();
    let mut redis = std::env::var("WSPROTO_CHAT_REDIS")
        .ok()
        .filter(|url| !url.is_empty());
    let mut limits = wsproto_chat::Limits::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (arg, None),
        };
        let mut value = || inline.clone().or_else(|| args.next());
        match flag.as_str() {
            "--addr" => addr = value().unwrap_or_else(|| usage()),
            "--redis" => redis = Some(value().unwrap_or_else(|| usage())),
            "--presence-ttl" => {
                let secs = value()
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .unwrap_or_else(|| usage());
                limits.presence_ttl = Duration::from_secs_f64(secs);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => usage(),
        }
    }
    let cluster = match redis {
        Some(url) => match wsproto_chat::cluster::Cluster::connect(&url, limits.presence_ttl).await
        {
            Ok(cluster) => Some(cluster),
            Err(e) => {
                eprintln!("wsproto-chat: cannot use Redis at {url}: {e}");
                std::process::exit(1);
            }
        },
        None => None,
    };
    let listener = TcpListener::bind(&addr).await?;
    // Connections that arrive before the cluster is synchronised wait in
    // the listen backlog: the accept loop starts after it.
    println!("wsproto chat on http://{}", listener.local_addr()?);
    let report = wsproto_chat::serve_cluster_until(listener, limits, cluster, terminated()).await?;
    println!(
        "shut down: {} WebSockets closed with 1001, {} did not answer in time",
        report.closed, report.abandoned
    );
    Ok(())
}

/// Ctrl-C, or SIGTERM (what service managers and `docker stop` send).
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn usage() -> ! {
    eprintln!("{USAGE}");
    std::process::exit(2)
}
