//! A hyper server with a WebSocket echo at `/ws` and a page elsewhere, over
//! HTTP/1.1 and HTTP/2 (prior knowledge, extended CONNECT enabled) on the
//! same port.
//!
//! ```sh
//! cargo run -p wsproto-tokio --example hyper_server -- [--addr 127.0.0.1:9003]
//! cargo run -p wsproto-tokio --example client -- ws://127.0.0.1:9003/ws       # HTTP/1.1
//! cargo run -p wsproto-tokio --example h2_client -- ws://127.0.0.1:9003/ws    # HTTP/2
//! ```

use std::convert::Infallible;

use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use wsproto_tokio::upgrade::{self, HttpResponse, Upgrade};
use wsproto_tokio::{Accept, Config, Reject};

async fn handle(mut req: hyper::Request<Incoming>) -> Result<HttpResponse, Infallible> {
    if !upgrade::is_upgrade_request(&req) {
        let body = format!(
            "{:?} {}: connect a WebSocket to /ws\n",
            req.version(),
            req.uri()
        );
        return Ok(hyper::Response::new(Full::new(Bytes::from(body))));
    }
    let upgrade = match Upgrade::from_request(&mut req) {
        Ok(upgrade) => upgrade,
        Err(response) => return Ok(response),
    };
    if upgrade.request().path() != "/ws" {
        return Ok(upgrade.reject(Reject::new(404, "the WebSocket is at /ws")));
    }
    println!(
        "{:?} WebSocket from {}",
        upgrade.request().version(),
        req.uri()
    );
    Ok(
        upgrade.on_upgrade(Accept::default(), Config::default(), |mut ws| async move {
            while let Some(Ok(message)) = ws.next().await {
                if ws.send(message).await.is_err() {
                    break;
                }
            }
        }),
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .skip_while(|a| a != "--addr")
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9003".to_string());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("hyper + wsproto on http://{}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder.http2().enable_connect_protocol();
            let service = hyper::service::service_fn(handle);
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                .await
            {
                eprintln!("connection: {e}");
            }
        });
    }
}
