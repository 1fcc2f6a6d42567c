//! An axum router with a WebSocket route and shared state: every text
//! message is broadcast to everyone connected to `/ws`, prefixed with the
//! sender's number.
//!
//! ```sh
//! cargo run -p wsproto-tokio --example axum_server -- [--addr 127.0.0.1:9004]
//! cargo run -p wsproto-tokio --example client -- ws://127.0.0.1:9004/ws
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast;
use wsproto_tokio::upgrade::{HttpResponse, Upgrade};
use wsproto_tokio::{Accept, Config, Message};

#[derive(Clone)]
struct AppState {
    next_id: Arc<AtomicUsize>,
    room: broadcast::Sender<String>,
}

async fn ws(State(state): State<AppState>, upgrade: Upgrade) -> HttpResponse {
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    upgrade.on_upgrade(Accept::default(), Config::default(), move |ws| async move {
        let (mut reader, mut writer) = ws.split();
        let mut room = state.room.subscribe();
        let forward = tokio::spawn(async move {
            while let Ok(line) = room.recv().await {
                if writer.send(Message::text(line)).await.is_err() {
                    break;
                }
            }
        });
        while let Some(Ok(message)) = reader.next().await {
            if let Some(text) = message.as_text() {
                let _ = state.room.send(format!("#{id}: {text}"));
            }
        }
        forward.abort();
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .skip_while(|a| a != "--addr")
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9004".to_string());
    let state = AppState {
        next_id: Arc::new(AtomicUsize::new(1)),
        room: broadcast::channel(256).0,
    };
    let app = Router::new()
        .route("/", get(|| async { "connect a WebSocket to /ws\n" }))
        .route("/ws", get(ws))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("axum + wsproto on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
