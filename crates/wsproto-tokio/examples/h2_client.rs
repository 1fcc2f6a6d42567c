//! Opens several WebSockets over one HTTP/2 connection (RFC 8441) and
//! sends a message on each.
//!
//! ```sh
//! cargo run -p wsproto-tokio --example hyper_server &
//! cargo run -p wsproto-tokio --example h2_client -- ws://127.0.0.1:9003/ws [STREAMS]
//! ```

use futures_util::{SinkExt, StreamExt};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use wsproto_tokio::{upgrade, ClientRequest, Config, Message};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:9003/ws".to_string());
    let streams: usize = args.next().map_or(Ok(3), |n| n.parse())?;
    let request = ClientRequest::new(&url)?;
    // One TCP connection, HTTP/2 with prior knowledge.
    let tcp = tokio::net::TcpStream::connect((request.host(), request.port())).await?;
    let (sender, connection) = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(tcp),
    )
    .await?;
    tokio::spawn(connection);
    let mut tasks = Vec::new();
    for i in 0..streams {
        let (mut sender, request) = (sender.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ws, _response) =
                upgrade::connect_h2(&mut sender, &request, Config::default()).await?;
            ws.send(Message::text(format!("hello from stream {i}")))
                .await?;
            let reply = ws.next().await.ok_or("closed")??;
            println!("stream {i}: {reply:?}");
            ws.close(wsproto_tokio::CloseCode::Normal, "bye").await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for task in tasks {
        task.await?.map_err(|e| e.to_string())?;
    }
    Ok(())
}
