//! Two `wsproto-chat` processes sharing one real `redis-server`: users on
//! different instances chat as if on one, and the cluster survives a killed
//! instance and a Redis restart.
//!
//! Without `redis-server` on the PATH these tests are skipped with a message,
//! unless `CI` is set: then they fail.

#![cfg(unix)]

use std::net::TcpListener as StdListener;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use wsproto_tokio::CloseCode;

mod common;
use common::{address_from, event, event_of, expect_close, presence, send, Ws};

/// A `redis-server` on loopback, killed on drop.
struct Redis {
    port: u16,
    child: std::process::Child,
}

impl Redis {
    /// A fresh server on a free port, or `None` (test skipped) if there is
    /// no `redis-server`.
    async fn start() -> Option<Redis> {
        Redis::on(free_port()).await
    }

    async fn on(port: u16) -> Option<Redis> {
        let spawned = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "redis-server is required in CI"
                );
                println!("skipped: redis-server is not installed");
                return None;
            }
            Err(e) => panic!("start redis-server: {e}"),
        };
        let redis = Redis { port, child };
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `wsproto-chat` process, killed on drop; its stderr is collected.
struct Instance {
    addr: String,
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Instance {
    async fn start(redis: &Redis, presence_ttl: &str) -> Instance {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wsproto-chat"))
            .args(["--addr", "127.0.0.1:0", "--redis", &redis.url()])
            .args(["--presence-ttl", presence_ttl])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start wsproto-chat");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let collected = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                collected.lock().unwrap().push(line);
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the server prints its address")
            .unwrap()
            .unwrap_or_else(|| panic!("no address; stderr: {:?}", stderr.lock().unwrap()));
        let addr = address_from(&first);
        // Keep stdout drained so the server never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Instance {
            addr,
            child,
            stderr,
        }
    }

    async fn open(&self, path: &str) -> Ws {
        wsproto_tokio::connect(&format!("ws://{}{path}", self.addr))
            .await
            .unwrap()
            .0
    }

    fn stderr_count(&self, needle: &str) -> usize {
        let lines = self.stderr.lock().unwrap();
        lines.iter().filter(|l| l.contains(needle)).count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_chat_spans_instances_in_order_without_duplicates() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let a = Instance::start(&redis, "5").await;
    let b = Instance::start(&redis, "5").await;
    let mut alice = a.open("/ws/chat?name=alice").await;
    presence(&mut alice, &["alice"]).await;
    let mut carol = a.open("/ws/chat?name=carol").await;
    presence(&mut carol, &["alice", "carol"]).await;
    let mut bob = b.open("/ws/chat?name=bob").await;
    presence(&mut bob, &["alice", "bob", "carol"]).await;
    assert_eq!(event_of(&mut alice, "join").await["name"], "carol");
    assert_eq!(event_of(&mut alice, "join").await["name"], "bob");
    presence(&mut alice, &["alice", "bob", "carol"]).await;
    presence(&mut carol, &["alice", "bob", "carol"]).await;

    for i in 0..50 {
        send(&mut alice, format!("m{i}")).await;
    }
    send(&mut alice, "end").await;
    // Carol (same instance) and Bob (other instance) each get every message
    // once, in order: a duplicate would show up before "end".
    for ws in [&mut bob, &mut carol] {
        for i in 0..50 {
            assert_eq!(
                event_of(ws, "message").await,
                json!({"type": "message", "from": "alice", "text": format!("m{i}")})
            );
        }
        assert_eq!(event_of(ws, "message").await["text"], "end");
    }
    send(&mut bob, "hi from b").await;
    assert_eq!(
        event_of(&mut alice, "message").await,
        json!({"type": "message", "from": "bob", "text": "hi from b"})
    );
    assert_eq!(event_of(&mut carol, "message").await["text"], "hi from b");

    bob.close(CloseCode::Normal, "").await.unwrap();
    assert_eq!(
        event_of(&mut alice, "leave").await,
        json!({"type": "leave", "name": "bob"})
    );
    presence(&mut alice, &["alice", "carol"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_messages_reach_a_user_on_another_instance() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let a = Instance::start(&redis, "5").await;
    let b = Instance::start(&redis, "5").await;
    let mut ann = a.open("/ws/private/ann").await;
    presence(&mut ann, &["ann"]).await;
    let mut ben = b.open("/ws/private/ben").await;
    presence(&mut ben, &["ann", "ben"]).await;
    presence(&mut ann, &["ann", "ben"]).await;

    let message = json!({"from_user": "ann", "to_user": "ben", "info": "psst"});
    send(&mut ann, message.to_string()).await;
    assert_eq!(
        event_of(&mut ben, "message").await,
        json!({"type": "message", "from_user": "ann", "to_user": "ben", "info": "psst"})
    );
    let reply = json!({"from_user": "ben", "to_user": "ann", "info": "hi ann"});
    send(&mut ben, reply.to_string()).await;
    assert_eq!(event_of(&mut ann, "message").await["info"], "hi ann");

    // The same error as on one instance for someone online nowhere.
    let lost = json!({"from_user": "ann", "to_user": "nobody", "info": "?"});
    send(&mut ann, lost.to_string()).await;
    assert_eq!(
        event_of(&mut ann, "error").await["error"],
        "\"nobody\" is not online"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_is_unique_across_instances() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let a = Instance::start(&redis, "5").await;
    let b = Instance::start(&redis, "5").await;
    let mut ann = a.open("/ws/chat?name=ann").await;
    presence(&mut ann, &["ann"]).await;
    let mut pat = a.open("/ws/private/pat").await;
    presence(&mut pat, &["pat"]).await;

    for path in ["/ws/chat?name=ann", "/ws/private/pat"] {
        let mut second = b.open(path).await;
        let name = if path.contains("ann") { "ann" } else { "pat" };
        assert_eq!(
            event(&mut second).await,
            json!({"type": "error", "error": format!("the name \"{name}\" is already taken")})
        );
        expect_close(&mut second, CloseCode::Policy).await;
    }
    // Once given up (which the other instance hears about), the name is
    // free there.
    let mut zed = b.open("/ws/chat?name=zed").await;
    presence(&mut zed, &["ann", "zed"]).await;
    ann.close(CloseCode::Normal, "").await.unwrap();
    assert_eq!(event_of(&mut zed, "leave").await["name"], "ann");
    let mut again = b.open("/ws/chat?name=ann").await;
    presence(&mut again, &["ann", "zed"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_of_a_killed_instance_leave_within_the_presence_ttl() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let ttl = Duration::from_secs(2);
    let a = Instance::start(&redis, "2").await;
    let mut b = Instance::start(&redis, "2").await;
    let mut ann = a.open("/ws/chat?name=ann").await;
    presence(&mut ann, &["ann"]).await;
    let mut bob = b.open("/ws/chat?name=bob").await;
    presence(&mut bob, &["ann", "bob"]).await;
    presence(&mut ann, &["ann", "bob"]).await;

    b.child.start_kill().unwrap(); // SIGKILL: no goodbye
    let killed = Instant::now();
    b.child.wait().await.unwrap();
    let left = tokio::time::timeout(ttl * 3, event_of(&mut ann, "leave"))
        .await
        .expect("bob leaves the presence");
    assert_eq!(left["name"], "bob");
    presence(&mut ann, &["ann"]).await;
    let took = killed.elapsed();
    println!("presence expired {took:?} after kill -9 (ttl {ttl:?})");
    // At most one ttl after the last refresh, plus one heartbeat to notice.
    assert!(
        took <= ttl + ttl / 3 + Duration::from_millis(700),
        "{took:?}"
    );
    // The name is free again.
    let mut bob_again = a.open("/ws/chat?name=bob").await;
    presence(&mut bob_again, &["ann", "bob"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_chat_survives_a_redis_outage_and_the_cluster_heals() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let port = redis.port;
    let a = Instance::start(&redis, "2").await;
    let b = Instance::start(&redis, "2").await;
    let mut ann = a.open("/ws/chat?name=ann").await;
    presence(&mut ann, &["ann"]).await;
    let mut amy = a.open("/ws/chat?name=amy").await;
    presence(&mut amy, &["amy", "ann"]).await;
    let mut bob = b.open("/ws/chat?name=bob").await;
    presence(&mut bob, &["amy", "ann", "bob"]).await;
    presence(&mut ann, &["amy", "ann", "bob"]).await;

    drop(redis);
    // Local delivery does not go through Redis.
    for i in 0..5 {
        send(&mut ann, format!("during {i}")).await;
        assert_eq!(
            event_of(&mut amy, "message").await["text"],
            format!("during {i}")
        );
    }
    // New local logins work too. Bob stays in the presence he was last
    // known in: a short outage should not look like everyone elsewhere left.
    let mut al = a.open("/ws/chat?name=al").await;
    presence(&mut al, &["al", "amy", "ann", "bob"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.stderr_count("lost Redis"), 1, "{:?}", a.stderr);

    let _redis = Redis::on(port).await.unwrap();
    let restarted = Instant::now();
    // Probe until Bob hears Ann again.
    let healed = tokio::time::timeout(Duration::from_secs(15), async {
        let mut i = 0;
        loop {
            send(&mut ann, format!("probe {i}")).await;
            i += 1;
            let heard = tokio::time::timeout(Duration::from_millis(300), async {
                loop {
                    let e = event(&mut bob).await;
                    if e["type"] == "message" {
                        return e;
                    }
                }
            })
            .await;
            if let Ok(e) = heard {
                return e;
            }
        }
    })
    .await
    .expect("cross-instance delivery resumes");
    assert_eq!(healed["from"], "ann");
    println!(
        "cross-instance delivery back {:?} after Redis restarted",
        restarted.elapsed()
    );
    // Presence is global again, including the user who logged in during the
    // outage, and names are claimed again.
    let mut bea = b.open("/ws/chat?name=bea").await;
    presence(&mut bea, &["al", "amy", "ann", "bea", "bob"]).await;
    let mut dup = b.open("/ws/chat?name=al").await;
    assert_eq!(event_of(&mut dup, "error").await["type"], "error");
    expect_close(&mut dup, CloseCode::Policy).await;
    assert_eq!(a.stderr_count("Redis is back"), 1, "{:?}", a.stderr);
    assert_eq!(a.stderr_count("lost Redis"), 1, "{:?}", a.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_at_start_is_a_clear_error() {
    let port = free_port();
    let output = tokio::time::timeout(
        Duration::from_secs(10),
        Command::new(env!("CARGO_BIN_EXE_wsproto-chat"))
            .args(["--addr", "127.0.0.1:0"])
            .args(["--redis", &format!("redis://127.0.0.1:{port}")])
            .output(),
    )
    .await
    .expect("exits promptly")
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot use Redis"), "{stderr}");
    assert!(output.stdout.is_empty(), "{:?}", output.stdout);
}

#[tokio::test]
async fn the_redis_url_can_come_from_the_environment() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let output = tokio::time::timeout(
        Duration::from_secs(10),
        Command::new(env!("CARGO_BIN_EXE_wsproto-chat"))
            .args(["--addr", "127.0.0.1:0"])
            .env("WSPROTO_CHAT_REDIS", &url)
            .output(),
    )
    .await
    .expect("exits promptly")
    .unwrap();
    // Asked for Redis through the variable, it refuses to start without it.
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot use Redis at {url}")),
        "{stderr}"
    );
}

/// A rolling restart: SIGTERM closes the instance's users with 1001 and
/// gives their names back at once (not after the presence ttl), so they
/// can log in again on the other instance right away.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_with_1001_and_frees_the_names_at_once() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    // A long ttl: names coming back in time can only be their release.
    let a = Instance::start(&redis, "60").await;
    let mut b = Instance::start(&redis, "60").await;
    let mut ann = a.open("/ws/chat?name=ann").await;
    presence(&mut ann, &["ann"]).await;
    let mut bob = b.open("/ws/chat?name=bob").await;
    presence(&mut bob, &["ann", "bob"]).await;

    let pid = b.child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    expect_close(&mut bob, CloseCode::Away).await;
    let status = tokio::time::timeout(Duration::from_secs(10), b.child.wait())
        .await
        .expect("the instance exits")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(event_of(&mut ann, "leave").await["name"], "bob");
    // Well before the 60 s ttl, bob is welcome on the remaining instance.
    let mut again = a.open("/ws/chat?name=bob").await;
    presence(&mut again, &["ann", "bob"]).await;
}
