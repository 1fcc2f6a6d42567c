//! `cargo run --release -p wsproto-chat [-- --addr HOST:PORT]`
//!
//! Serves the echo, group chat and private chat pages on
//! http://127.0.0.1:9527 (or `--addr`).

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
    tokio::select! {
        result = wsproto_chat::serve(listener, wsproto_chat::Limits::default()) => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

fn usage() -> std::io::Result<()> {
    eprintln!("usage: wsproto-chat [--addr HOST:PORT]");
    std::process::exit(2)
}
