//! The blocking client as an Autobahn|Testsuite testee: asks the fuzzing
//! server for the number of cases, runs each one echoing every message, then
//! asks it to write the reports.
//!
//!     cargo run --release -p wsproto-std --example autobahn_client [URL] [AGENT]
//!
//! URL defaults to ws://127.0.0.1:9002, AGENT to wsproto-std-client.

use std::net::TcpStream;

use wsproto_std::{ClientRequest, Config, MaybeTlsStream, WebSocket};

fn open(url: &str) -> Result<WebSocket<MaybeTlsStream<TcpStream>>, wsproto_std::Error> {
    let config = Config {
        max_frame_size: 64 << 20,
        max_message_size: 64 << 20,
        max_fragments: 1 << 20,
        ..Config::default()
    };
    Ok(wsproto_std::connect_with(&ClientRequest::new(url)?, config)?.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9002".to_string());
    let agent = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "wsproto-std-client".to_string());

    let mut ws = open(&format!("{base}/getCaseCount"))?;
    let count: u32 = ws
        .read()?
        .as_text()
        .ok_or("case count is not text")?
        .trim()
        .parse()?;
    while ws.read().is_ok() {}
    eprintln!("{count} cases");

    for case in 1..=count {
        let mut ws = match open(&format!("{base}/runCase?case={case}&agent={agent}")) {
            Ok(ws) => ws,
            Err(e) => {
                eprintln!("case {case}: {e}");
                continue;
            }
        };
        while let Ok(message) = ws.read() {
            if ws.send(message).is_err() {
                break;
            }
        }
    }

    let mut ws = open(&format!("{base}/updateReports?agent={agent}"))?;
    while ws.read().is_ok() {}
    eprintln!("reports updated");
    Ok(())
}
