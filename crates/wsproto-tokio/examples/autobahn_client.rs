//! The tokio client as an Autobahn|Testsuite testee: asks the fuzzing server
//! for the number of cases, runs each one echoing every message, then asks it
//! to write the reports.
//!
//!     cargo run --release -p wsproto-tokio --example autobahn_client [URL] [AGENT]
//!
//! URL defaults to ws://127.0.0.1:9002, AGENT to wsproto-tokio-client.

use futures_util::{SinkExt, StreamExt};
use wsproto_tokio::{ClientRequest, Config};

fn config() -> Config {
    Config {
        max_frame_size: 64 << 20,
        max_message_size: 64 << 20,
        max_fragments: 1 << 20,
        ..Config::default()
    }
}

async fn open(
    url: &str,
) -> Result<
    wsproto_tokio::WebSocketStream<wsproto_tokio::MaybeTlsStream<tokio::net::TcpStream>>,
    wsproto_tokio::Error,
> {
    let request = ClientRequest::new(url)?;
    Ok(wsproto_tokio::connect_with(&request, config()).await?.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9002".to_string());
    let agent = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "wsproto-tokio-client".to_string());

    let mut ws = open(&format!("{base}/getCaseCount")).await?;
    let count: u32 = match ws.next().await {
        Some(Ok(message)) => message
            .as_text()
            .ok_or("case count is not text")?
            .trim()
            .parse()?,
        other => return Err(format!("no case count: {other:?}").into()),
    };
    while ws.next().await.is_some() {}
    eprintln!("{count} cases");

    for case in 1..=count {
        let mut ws = match open(&format!("{base}/runCase?case={case}&agent={agent}")).await {
            Ok(ws) => ws,
            Err(e) => {
                eprintln!("case {case}: {e}");
                continue;
            }
        };
        while let Some(Ok(message)) = ws.next().await {
            if ws.send(message).await.is_err() {
                break;
            }
        }
    }

    let mut ws = open(&format!("{base}/updateReports?agent={agent}")).await?;
    while ws.next().await.is_some() {}
    eprintln!("reports updated");
    Ok(())
}
