//! The tokio echo server as an Autobahn|Testsuite testee, with limits raised
//! so that group 9 (messages up to 16 MiB) passes.
//!
//!     cargo run --release -p wsproto-tokio --example autobahn_server [ADDR]
//!
//! ADDR defaults to 127.0.0.1:9001. See scripts/autobahn.sh.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use wsproto_tokio::{Accept, Config};

fn config() -> Config {
    Config {
        max_frame_size: 64 << 20,
        max_message_size: 64 << 20,
        max_fragments: 1 << 20,
        ..Config::default()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_string());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!(
        "autobahn testee (tokio server) on ws://{}",
        listener.local_addr()?
    );
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        tokio::spawn(async move {
            let Ok(mut ws) =
                wsproto_tokio::accept_with(tcp, config(), |_| Ok(Accept::default())).await
            else {
                return;
            };
            while let Some(Ok(message)) = ws.next().await {
                if ws.send(message).await.is_err() {
                    break;
                }
            }
        });
    }
}
