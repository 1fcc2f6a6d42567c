//! 10,000 concurrent connections to a tokio echo server, each echoing one
//! message, held open together, then all closed cleanly; the server's
//! resident memory per idle connection is printed.
//!
//! The server runs in a child process (this test binary re-executed with
//! `WSPROTO_ECHO_CHILD` set), so that server and clients each get their own
//! open-file limit, and its memory can be read from /proc.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use wsproto_tokio::{CloseCode, Message};

/// 10,000 unless `WSPROTO_CONNECTIONS` says otherwise.
fn connections() -> usize {
    std::env::var("WSPROTO_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// The child: an echo server on an ephemeral port; prints the port, then
/// serves until killed.
/// Ignored in normal runs: the test below runs it, with `--ignored`, as
/// its child process.
#[test]
#[ignore = "the server half of ten_thousand_connections_then_all_closed_cleanly"]
fn echo_child() {
    assert!(
        std::env::var_os("WSPROTO_ECHO_CHILD").is_some(),
        "run by the test below"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("port {}", listener.local_addr().unwrap().port());
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let Ok(mut ws) = wsproto_tokio::accept(tcp).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if ws.send(m).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn open_file_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

#[test]
fn ten_thousand_connections_then_all_closed_cleanly() {
    #[allow(non_snake_case)]
    let CONNECTIONS = connections();
    let limit = open_file_limit();
    if limit < CONNECTIONS as u64 + 500 {
        assert!(
            std::env::var_os("CI").is_none(),
            "open-file limit {limit} is too low: ulimit -n 20000"
        );
        eprintln!(
            "skipping: open-file limit {limit} < {} (ulimit -n 20000)",
            CONNECTIONS + 500
        );
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "echo_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WSPROTO_ECHO_CHILD", "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = loop {
        let line = lines.next().expect("child output").unwrap();
        // libtest may print "test echo_child ... " on the same line first.
        if let Some((_, p)) = line.split_once("port ") {
            break p.trim().parse().unwrap();
        }
    };
    std::thread::sleep(Duration::from_millis(200));
    let idle_before = rss_kib(child.id());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (held, after_open) = rt.block_on(async {
        // Open with bounded concurrency so the listen backlog never overflows.
        let gate = Arc::new(Semaphore::new(256));
        let mut tasks = Vec::with_capacity(CONNECTIONS);
        for i in 0..CONNECTIONS {
            let gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                let permit = gate.acquire_owned().await.unwrap();
                let (mut ws, _) = wsproto_tokio::connect(&format!("ws://127.0.0.1:{port}/"))
                    .await
                    .unwrap();
                ws.send(Message::text(format!("hello {i}"))).await.unwrap();
                let echo = ws.next().await.unwrap().unwrap();
                assert_eq!(echo.as_text(), Some(format!("hello {i}").as_str()));
                drop(permit);
                ws
            }));
        }
        let mut held = Vec::with_capacity(CONNECTIONS);
        for t in tasks {
            held.push(t.await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        (held, rss_kib(child.id()))
    });
    let per_connection = (after_open.saturating_sub(idle_before)) as f64 / CONNECTIONS as f64;
    println!(
        "server RSS: {idle_before} KiB idle, {after_open} KiB with {CONNECTIONS} open connections: {per_connection:.1} KiB per connection"
    );

    // Close every connection with a full close handshake.
    let closed = rt.block_on(async move {
        let gate = Arc::new(Semaphore::new(512));
        let mut tasks = Vec::with_capacity(CONNECTIONS);
        for mut ws in held {
            let gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.unwrap();
                ws.close(CloseCode::Normal, "done").await.unwrap();
                while ws.next().await.is_some() {}
                ws.close_frame().map(|f| f.code)
            }));
        }
        let mut normal = 0;
        for t in tasks {
            if t.await.unwrap() == Some(CloseCode::Normal) {
                normal += 1;
            }
        }
        normal
    });
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(
        closed, CONNECTIONS,
        "every close handshake completed with 1000"
    );
}
