//! The chat server in-process on loopback, driven by several wsproto clients.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsproto_tokio::{CloseCode, Message};

mod common;
use common::{event, event_of, expect_close, presence, send, Ws};

async fn start() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(wsproto_chat::serve(
        listener,
        wsproto_chat::Limits::default(),
    ));
    addr
}

async fn open(addr: SocketAddr, path: &str) -> Ws {
    wsproto_tokio::connect(&format!("ws://{addr}{path}"))
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn echo_route_echoes_text_and_binary() {
    let addr = start().await;
    let mut ws = open(addr, "/ws/echo").await;
    send(&mut ws, "κόσμε").await;
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("κόσμε"));
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(vec![0u8, 1, 2, 255])
    );
}

#[tokio::test]
async fn group_message_reaches_everyone_else_but_not_the_sender() {
    let addr = start().await;
    let mut alice = open(addr, "/ws/chat?name=alice").await;
    presence(&mut alice, &["alice"]).await;
    let mut bob = open(addr, "/ws/chat?name=bob").await;
    presence(&mut bob, &["alice", "bob"]).await;
    let mut carol = open(addr, "/ws/chat?name=carol").await;
    presence(&mut carol, &["alice", "bob", "carol"]).await;
    assert_eq!(event_of(&mut alice, "join").await["name"], "bob");
    presence(&mut alice, &["alice", "bob", "carol"]).await;
    presence(&mut bob, &["alice", "bob", "carol"]).await;

    send(&mut alice, "hello all").await;
    let expected = json!({"type": "message", "from": "alice", "text": "hello all"});
    assert_eq!(event(&mut bob).await, expected);
    assert_eq!(event(&mut carol).await, expected);
    // Alice's next event is Bob's reply: her own message never came back.
    send(&mut bob, "hi alice").await;
    assert_eq!(
        event(&mut alice).await,
        json!({"type": "message", "from": "bob", "text": "hi alice"})
    );

    carol.close(CloseCode::Normal, "").await.unwrap();
    assert_eq!(
        event(&mut alice).await,
        json!({"type": "leave", "name": "carol"})
    );
    presence(&mut alice, &["alice", "bob"]).await;
}

#[tokio::test]
async fn taken_missing_and_invalid_names_are_refused_with_1008() {
    let addr = start().await;
    let mut first = open(addr, "/ws/chat?name=dora").await;
    presence(&mut first, &["dora"]).await;
    for (path, words) in [
        ("/ws/chat?name=dora", "already taken"),
        ("/ws/chat", "required"),
        ("/ws/chat?name=no%20spaces", "invalid user name"),
        ("/ws/private/dora%21", "invalid user name"),
    ] {
        let mut ws = open(addr, path).await;
        let e = event(&mut ws).await;
        assert_eq!(e["type"], "error", "{path}");
        assert!(e["error"].as_str().unwrap().contains(words), "{path}: {e}");
        expect_close(&mut ws, CloseCode::Policy).await;
    }
    // The first dora is unaffected.
    let mut other = open(addr, "/ws/chat?name=eve").await;
    presence(&mut other, &["dora", "eve"]).await;
    send(&mut other, "still there?").await;
    assert_eq!(
        event_of(&mut first, "message").await["text"],
        "still there?"
    );
}

#[tokio::test]
async fn private_message_reaches_only_its_recipient() {
    let addr = start().await;
    let mut ann = open(addr, "/ws/private/ann").await;
    presence(&mut ann, &["ann"]).await;
    let mut ben = open(addr, "/ws/private/ben").await;
    presence(&mut ben, &["ann", "ben"]).await;
    let mut cat = open(addr, "/ws/private/cat").await;
    presence(&mut cat, &["ann", "ben", "cat"]).await;
    presence(&mut ann, &["ann", "ben", "cat"]).await;
    presence(&mut ben, &["ann", "ben", "cat"]).await;

    send(
        &mut ann,
        json!({"from_user": "ann", "to_user": "ben", "info": "psst"}).to_string(),
    )
    .await;
    assert_eq!(
        event(&mut ben).await,
        json!({"type": "message", "from_user": "ann", "to_user": "ben", "info": "psst"})
    );
    // Cat's next event is Ben's message to her: Ann's never reached her.
    send(
        &mut ben,
        json!({"from_user": "ben", "to_user": "cat", "info": "hi cat"}).to_string(),
    )
    .await;
    assert_eq!(event(&mut cat).await["info"], "hi cat");
    // And Ann got nothing back for her own message.
    send(
        &mut cat,
        json!({"from_user": "cat", "to_user": "ann", "info": "hey"}).to_string(),
    )
    .await;
    assert_eq!(event(&mut ann).await["info"], "hey");
}

#[tokio::test]
async fn bad_private_messages_get_errors_and_the_connection_stays_open() {
    let addr = start().await;
    let mut ann = open(addr, "/ws/private/ann").await;
    presence(&mut ann, &["ann"]).await;
    let mut ben = open(addr, "/ws/private/ben").await;
    presence(&mut ann, &["ann", "ben"]).await;
    for (bad, words) in [
        ("this is not json".to_string(), "malformed"),
        (
            json!({"from_user": "ann", "info": "no recipient"}).to_string(),
            "malformed",
        ),
        (
            json!({"from_user": "ben", "to_user": "ann", "info": "spoof"}).to_string(),
            "your own name",
        ),
        (
            json!({"from_user": "ann", "to_user": "zed", "info": "hello?"}).to_string(),
            "not online",
        ),
    ] {
        send(&mut ann, bad.clone()).await;
        let e = event(&mut ann).await;
        assert_eq!(e["type"], "error", "{bad}");
        assert!(e["error"].as_str().unwrap().contains(words), "{bad}: {e}");
    }
    ann.send(Message::binary(vec![1u8])).await.unwrap();
    assert!(event(&mut ann).await["error"]
        .as_str()
        .unwrap()
        .contains("binary"));
    // Still logged in and working.
    send(
        &mut ann,
        json!({"from_user": "ann", "to_user": "ben", "info": "ok now"}).to_string(),
    )
    .await;
    assert_eq!(event_of(&mut ben, "message").await["info"], "ok now");
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let addr = start().await;
    let mut big = open(addr, "/ws/chat?name=big").await;
    presence(&mut big, &["big"]).await;
    send(&mut big, "x".repeat(100 * 1024)).await;
    expect_close(&mut big, CloseCode::TooBig).await;
    // The server keeps running.
    let mut next = open(addr, "/ws/chat?name=big").await;
    presence(&mut next, &["big"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected_and_others_get_everything() {
    let addr = start().await;
    // A client that completes the handshake and then never reads.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(
        b"GET /ws/chat?name=slow HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut watcher = open(addr, "/ws/chat?name=watcher").await;
    presence(&mut watcher, &["slow", "watcher"]).await;
    let mut flooder = open(addr, "/ws/chat?name=flooder").await;
    presence(&mut flooder, &["flooder", "slow", "watcher"]).await;

    const N: usize = 1500;
    let chunk = "z".repeat(16 * 1024);
    let reader = tokio::spawn(async move {
        let (mut got, mut slow_left) = (0, false);
        while got < N {
            let e = event(&mut watcher).await;
            match e["type"].as_str() {
                Some("message") => got += 1,
                Some("leave") if e["name"] == "slow" => slow_left = true,
                _ => {}
            }
        }
        (got, slow_left)
    });
    for i in 0..N {
        send(&mut flooder, format!("{i} {chunk}")).await;
    }
    let (got, slow_left) = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, N, "the reading client got every message");
    assert!(slow_left, "the client that never reads was dropped");
    // The server is still up.
    let mut late = open(addr, "/ws/chat?name=late").await;
    event_of(&mut late, "presence").await;
    drop(slow);
}

async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn http_pages_and_errors() {
    let addr = start().await;
    for path in ["/", "/echo", "/chat", "/private"] {
        let response = http_get(addr, path).await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{path}");
        assert!(response.contains("text/html"), "{path}");
        assert!(response.contains("<html"), "{path}");
    }
    assert!(http_get(addr, "/style.css").await.contains("text/css"));
    assert!(http_get(addr, "/nope").await.starts_with("HTTP/1.1 404 "));
    let plain = http_get(addr, "/ws/echo").await;
    assert!(plain.starts_with("HTTP/1.1 400 "), "{plain}");
    assert!(plain.contains("Upgrade"), "{plain}");
}
