//! An async echo server: every text and binary message comes back as is.
//!
//!     cargo run --release -p wsproto-tokio --example echo_server -- [--addr HOST:PORT]
//!
//! The address defaults to 127.0.0.1:9002. It runs on a current-thread
//! runtime (one core), as the echo servers of the benchmarks do.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let addr = match args.iter().position(|a| a == "--addr") {
        Some(i) => match args.get(i + 1) {
            Some(addr) => addr.clone(),
            None => {
                eprintln!("--addr needs HOST:PORT");
                std::process::exit(2);
            }
        },
        None => "127.0.0.1:9002".to_string(),
    };
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
