//! `cargo run --release -p wsproto-chat [-- --addr HOST:PORT]`
//!
//! Serves the echo, group chat and private chat pages on
//! http://127.0.0.1:9527 (or `--addr`). On Ctrl-C or SIGTERM it stops
//! accepting, closes every WebSocket with 1001 (going away) and exits once
//! the close handshakes are over (5 s at most).

use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:9527".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => match args.next() {
                Some(a) => addr = a,
                None => return usage(),
            },
            a if a.starts_with("--addr=") => addr = a["--addr=".len()..].to_string(),
            "-h" | "--help" => {
                println!("usage: wsproto-chat [--addr HOST:PORT]   (default 127.0.0.1:9527)");
                return Ok(());
            }
            _ => return usage(),
        }
    }
    let listener = TcpListener::bind(&addr).await?;
    println!("wsproto chat on http://{}", listener.local_addr()?);
    let report =
        wsproto_chat::serve_until(listener, wsproto_chat::Limits::default(), terminated()).await?;
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

fn usage() -> std::io::Result<()> {
    eprintln!("usage: wsproto-chat [--addr HOST:PORT]");
    std::process::exit(2)
}
