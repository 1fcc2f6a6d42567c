//! The chat server binary on SIGTERM: every WebSocket gets close 1001 and
//! the process exits once the close handshakes are over.

#![cfg(unix)]

use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use wsproto_tokio::CloseCode;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_every_websocket_with_1001() {
    let mut server = Command::new(env!("CARGO_BIN_EXE_wsproto-chat"))
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start wsproto-chat");
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the server prints its address")
        .unwrap()
        .unwrap();
    let addr = common::address_from(&first);

    let mut clients = Vec::new();
    for path in [
        "/ws/echo",
        "/ws/chat?name=ann",
        "/ws/chat?name=bob",
        "/ws/private/cy",
    ] {
        let (ws, _) = wsproto_tokio::connect(&format!("ws://{addr}{path}"))
            .await
            .unwrap();
        clients.push(ws);
    }
    // Every connection is in its route's loop: the chat ones have been
    // sent their presence list.
    for ws in &mut clients[1..] {
        let first = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(first.as_text().unwrap().contains("\"type\""), "{first:?}");
    }
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                while let Some(Ok(_)) = ws.next().await {}
                ws.close_frame()
            })
        })
        .collect();

    let pid = server.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());

    for reader in readers {
        let frame = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("closed within the grace period")
            .unwrap()
            .expect("a close frame, not a dropped connection");
        assert_eq!(frame.code, CloseCode::Away);
        assert_eq!(frame.reason.as_str(), "server shutting down");
    }
    let status = tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .expect("the server exits")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let last = lines.next_line().await.unwrap().unwrap();
    assert_eq!(
        last,
        "shut down: 4 WebSockets closed with 1001, 0 did not answer in time"
    );
}
