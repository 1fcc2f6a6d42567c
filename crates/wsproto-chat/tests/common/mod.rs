//! Client-side helpers the chat tests share: reading the server's JSON
//! events and waiting for presence lists and closes.
#![allow(dead_code)] // each test binary uses some of them

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use wsproto_tokio::{CloseCode, MaybeTlsStream, Message, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The next JSON event, within 5 s.
pub async fn event(ws: &mut Ws) -> Value {
    let message = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("no event within 5 s");
    let Some(message) = message else {
        panic!("connection ended: {:?}", ws.close_frame());
    };
    let message = message.unwrap();
    serde_json::from_str(message.as_text().expect("text")).unwrap()
}

/// Skips events until one of type `kind`.
pub async fn event_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let e = event(ws).await;
        if e["type"] == kind {
            return e;
        }
    }
}

/// Waits (5 s at most) until the presence list is exactly `users`.
pub async fn presence(ws: &mut Ws, users: &[&str]) {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let Some(Ok(message)) = ws.next().await else {
                return false;
            };
            let e: Value = serde_json::from_str(message.as_text().expect("text")).unwrap();
            if e["type"] == "presence" && e["users"] == json!(users) {
                return true;
            }
            seen.push(e);
        }
    })
    .await;
    assert!(
        found == Ok(true),
        "presence {users:?} not seen; instead: {seen:?}"
    );
}

pub async fn send(ws: &mut Ws, text: impl Into<String>) {
    ws.send(Message::text(text.into())).await.unwrap();
}

/// Expects the server to end the connection with `code`.
pub async fn expect_close(ws: &mut Ws, code: CloseCode) {
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    assert!(end.is_ok(), "connection not closed");
    assert_eq!(ws.close_frame().map(|f| f.code), Some(code));
}

/// Reads a chat server's first stdout line, `wsproto chat on http://ADDR`,
/// and returns ADDR.
pub fn address_from(first_line: &str) -> String {
    first_line
        .strip_prefix("wsproto chat on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
        .to_string()
}
