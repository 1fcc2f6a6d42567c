//! An async echo server: every text and binary message comes back as is.
//!
//!     cargo run --release -p wsproto-tokio --example echo_server [ADDR]
//!
//! ADDR defaults to 127.0.0.1:9002.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".to_string());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("echo server on ws://{}", listener.local_addr()?);
    loop {
        let (tcp, peer) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut ws = match wsproto_tokio::accept(tcp).await {
                Ok(ws) => ws,
                Err(e) => return eprintln!("{peer}: handshake failed: {e}"),
            };
            eprintln!("{peer}: connected");
            while let Some(message) = ws.next().await {
                match message {
                    Ok(message) => {
                        if let Err(e) = ws.send(message).await {
                            eprintln!("{peer}: {e}");
                            break;
                        }
                    }
                    Err(e) => {
                        eprintln!("{peer}: {e}");
                        break;
                    }
                }
            }
            match ws.close_frame() {
                Some(frame) => eprintln!(
                    "{peer}: closed with {} {:?}",
                    frame.code,
                    frame.reason.as_str()
                ),
                None => eprintln!("{peer}: gone"),
            }
        });
    }
}
