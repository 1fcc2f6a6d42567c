//! A small wscat: connects to a URL, sends each stdin line as a text
//! message, prints every message that arrives, closes with 1000 at EOF.
//!
//!     cargo run -p wsproto-tokio --example client -- ws://127.0.0.1:9002

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use wsproto_tokio::{CloseCode, Message};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: client ws://HOST:PORT/PATH")?;
    let (ws, _) = wsproto_tokio::connect(&url).await?;
    eprintln!("connected to {url}");
    let (mut reader, mut writer) = ws.split();
    let printer = tokio::spawn(async move {
        while let Some(message) = reader.next().await {
            match message {
                Ok(Message::Text(text)) => println!("< {text}"),
                Ok(Message::Binary(data)) => println!("< [{} bytes of binary]", data.len()),
                Err(e) => {
                    eprintln!("error: {e}");
                    break;
                }
            }
        }
        if let Some(frame) = reader.close_frame() {
            eprintln!("closed: {} {}", frame.code, frame.reason);
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if writer.send(Message::text(line)).await.is_err() {
            break;
        }
    }
    let _ = writer.close(CloseCode::Normal, "").await;
    printer.await?;
    Ok(())
}
