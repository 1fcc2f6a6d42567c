//! Interoperability with independent implementations, both directions:
//! Python's `websockets` (client and server) and Node's `ws` (client).
//!
//! The peers are installed by `interop/setup.sh`. Without them the tests
//! print a notice and pass, unless `CI` is set, where a missing peer fails.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;
use wsproto_tokio::{Accept, ClientRequest, CloseCode, Config, Event, Message};

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("INTEROP_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/wsproto-interop-venv"))
        })?;
    let python = venv.join("bin/python");
    peer_available(python.exists(), "Python websockets").then_some(python)
}

fn node() -> bool {
    let installed = interop_dir().join("node_modules/ws").exists()
        && std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok();
    peer_available(installed, "Node ws")
}

fn peer_available(found: bool, what: &str) -> bool {
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is missing: run interop/setup.sh"
        );
        eprintln!("skipping: {what} is not installed (run interop/setup.sh)");
    }
    found
}

fn big() -> Config {
    Config {
        max_frame_size: 64 << 20,
        max_message_size: 64 << 20,
        ..Config::default()
    }
}

/// Our echo server; returns its port and a channel with each connection's
/// received close frame.
async fn our_echo_server() -> (
    u16,
    tokio::sync::mpsc::UnboundedReceiver<Option<(u16, String)>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut ws = wsproto_tokio::accept_with(tcp, big(), |_| Ok(Accept::default()))
                    .await
                    .unwrap();
                while let Some(Ok(m)) = ws.next().await {
                    ws.send(m).await.unwrap();
                }
                let _ = tx.send(
                    ws.close_frame()
                        .map(|f| (u16::from(f.code), f.reason.to_string())),
                );
            });
        }
    });
    (port, rx)
}

async fn run_peer(mut command: Command) -> String {
    let output = tokio::time::timeout(Duration::from_secs(60), command.kill_on_drop(true).output())
        .await
        .expect("peer timed out")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "peer failed: {}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn python_websockets_client_against_our_server() {
    python_client_against_our_server(false).await;
}

/// The same exchange with permessage-deflate negotiated (the script checks
/// the response header and fails otherwise).
#[tokio::test]
async fn python_websockets_client_with_deflate_against_our_server() {
    python_client_against_our_server(true).await;
}

async fn python_client_against_our_server(deflate: bool) {
    let Some(python) = python() else { return };
    let (port, mut closes) = our_echo_server().await;
    let mut command = Command::new(python);
    command
        .arg(interop_dir().join("python_client.py"))
        .arg(format!("ws://127.0.0.1:{port}/"))
        .args(deflate.then_some("deflate"));
    assert_eq!(run_peer(command).await.trim(), "ok");
    assert_eq!(
        closes.recv().await.unwrap(),
        Some((4001, "python done".to_string()))
    );
}

#[tokio::test]
async fn node_ws_client_against_our_server() {
    node_client_against_our_server(false).await;
}

#[tokio::test]
async fn node_ws_client_with_deflate_against_our_server() {
    node_client_against_our_server(true).await;
}

async fn node_client_against_our_server(deflate: bool) {
    if !node() {
        return;
    }
    let (port, mut closes) = our_echo_server().await;
    let mut command = Command::new("node");
    command
        .arg(interop_dir().join("node_client.js"))
        .arg(format!("ws://127.0.0.1:{port}/"))
        .args(deflate.then_some("deflate"));
    assert_eq!(run_peer(command).await.trim(), "ok");
    assert_eq!(
        closes.recv().await.unwrap(),
        Some((4002, "node done".to_string()))
    );
}

#[tokio::test]
async fn our_client_against_python_websockets_server() {
    our_client_against_python(false).await;
}

/// Python's server accepts permessage-deflate with 12-bit windows both ways.
#[tokio::test]
async fn our_client_with_deflate_against_python_websockets_server() {
    our_client_against_python(true).await;
}

async fn our_client_against_python(deflate: bool) {
    let Some(python) = python() else { return };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut server = Command::new(python)
        .arg(interop_dir().join("python_server.py"))
        .arg(port.to_string())
        .args(deflate.then_some("deflate"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ready.as_deref(), Some("ready"));
    let url = format!("ws://127.0.0.1:{port}/");

    // Messages of several sizes, both types.
    let (mut ws, response) = wsproto_tokio::connect_with(&ClientRequest::new(&url).unwrap(), big())
        .await
        .unwrap();
    match response.permessage_deflate() {
        Some(params) => {
            assert!(deflate, "negotiated without being offered by the server");
            assert_eq!(params.server_max_window_bits, 12);
            assert_eq!(params.client_max_window_bits, 12);
        }
        None => assert!(!deflate, "permessage-deflate not negotiated"),
    }
    for size in [0usize, 1, 125, 126, 65535, 65536, 1 << 20] {
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        ws.send(Message::binary(data.clone())).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::binary(data),
            "binary {size}"
        );
        let text: String = "wsproto ✓ ".chars().cycle().take(size).collect();
        ws.send(Message::text(text.as_str())).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::text(text.as_str()),
            "text {size}"
        );
    }
    // Ping: the server's pong comes back with our payload.
    ws.ping(b"rust ping").await.unwrap();
    match ws.next_event().await.unwrap().unwrap() {
        Event::Pong(payload) => assert_eq!(&payload[..], b"rust ping"),
        other => panic!("expected the pong, got {other:?}"),
    }
    ws.close(CloseCode::Other(4003), "rust done").await.unwrap();
    assert!(ws.next().await.is_none());
    assert_eq!(ws.close_frame().unwrap().code, CloseCode::Other(4003));
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(line, r#"{"code": 4003, "reason": "rust done"}"#);

    // Fragmented messages: our client splits into 7-byte frames.
    let fragmenting = Config {
        max_send_frame_size: Some(7),
        ..big()
    };
    let (mut ws, _) = wsproto_tokio::connect_with(&ClientRequest::new(&url).unwrap(), fragmenting)
        .await
        .unwrap();
    let text = "a fragmented message, κόσμε, split every 7 bytes";
    ws.send(Message::text(text)).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(text));
    ws.send(Message::binary(vec![7u8; 100])).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(vec![7u8; 100])
    );
    ws.close(CloseCode::Normal, "").await.unwrap();
    assert!(ws.next().await.is_none());
}
