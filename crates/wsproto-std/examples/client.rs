//! A small wscat on blocking sockets: connects to a URL, sends each stdin
//! line as a text message, prints every message that arrives, and closes
//! with 1000 at the end of stdin.
//!
//!     cargo run -p wsproto-std --example client -- ws://127.0.0.1:8003
//!
//! One thread reads stdin; the main thread owns the socket and polls it with
//! a short read timeout, which is also what lets keepalive timers run.

use std::sync::mpsc;
use std::time::Duration;

use wsproto_std::{CloseCode, Error, Message};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: client ws://HOST:PORT/PATH")?;
    let (mut ws, _) = wsproto_std::connect(&url)?;
    ws.get_ref()
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(50)))?;
    eprintln!("connected to {url}");

    let (lines_tx, lines) = mpsc::channel::<Option<String>>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(Some(line)).is_err() {
                return;
            }
        }
        let _ = lines_tx.send(None);
    });

    let mut closing = false;
    loop {
        while let Ok(line) = lines.try_recv() {
            match line {
                Some(line) if !closing => ws.send(Message::text(line))?,
                Some(_) => {}
                None if !closing => {
                    ws.close(CloseCode::Normal, "")?;
                    closing = true;
                }
                None => {}
            }
        }
        match ws.read() {
            Ok(Message::Text(text)) => println!("< {text}"),
            Ok(Message::Binary(data)) => println!("< [{} bytes of binary]", data.len()),
            Err(e) if is_timeout(&e) => {}
            Err(Error::ConnectionClosed(frame)) => {
                if let Some(f) = frame {
                    eprintln!("closed: {} {}", f.code, f.reason);
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn is_timeout(e: &Error) -> bool {
    matches!(e, Error::Io(io) if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}
