//! A real browser uses the chat pages: headless Chromium, driven through the
//! Chrome DevTools Protocol, which is itself spoken over a WebSocket (our
//! own client).
//!
//! Without Chromium (`/usr/bin/chromium`, or `$CHROMIUM`) the test prints a
//! notice and passes, unless `CI` is set: then a missing browser fails it.
//! Set `WSPROTO_UPDATE_SCREENSHOT=1` to also write `docs/chat.png`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use wsproto_tokio::{ClientRequest, Config, MaybeTlsStream, Message, WebSocketStream};

fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("CHROMIUM").map(PathBuf::from),
        Some("/usr/bin/chromium".into()),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "Chromium is missing: apt-get install -y chromium"
        );
        eprintln!("skipping the browser test: no Chromium (apt-get install -y chromium)");
    }
    found
}

struct Browser {
    _child: Child,
    _profile: TempDir,
    cdp: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Browser {
    async fn launch(binary: PathBuf) -> Browser {
        let profile = std::env::temp_dir().join(format!("wsproto-chromium-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                "--window-size=1100,720",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromium");
        // Chromium writes its DevTools port and browser path once it listens.
        let port_file = profile.join("DevToolsActivePort");
        let mut contents = String::new();
        for _ in 0..300 {
            if let Ok(c) = std::fs::read_to_string(&port_file) {
                if c.lines().count() >= 2 {
                    contents = c;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut lines = contents.lines();
        let (port, path) = (
            lines.next().expect("DevToolsActivePort"),
            lines.next().unwrap(),
        );
        let request = ClientRequest::new(&format!("ws://127.0.0.1:{port}{path}")).unwrap();
        let config = Config {
            max_message_size: 64 << 20,
            max_frame_size: 64 << 20,
            ..Config::default()
        };
        let (cdp, _) = wsproto_tokio::connect_with(&request, config)
            .await
            .expect("connect to DevTools");
        Browser {
            _child: child,
            _profile: TempDir(profile),
            cdp,
            next_id: 0,
        }
    }

    /// One DevTools command; events that arrive meanwhile are skipped.
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        self.cdp
            .send(Message::text(command.to_string()))
            .await
            .unwrap();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(20), self.cdp.next())
                .await
                .expect("DevTools answers")
                .expect("DevTools connection open")
                .unwrap();
            let reply: Value = serde_json::from_str(message.as_text().unwrap()).unwrap();
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Opens `url` in a new tab; returns the tab's session.
    async fn open(&mut self, url: &str) -> String {
        let target = self
            .call(None, "Target.createTarget", json!({"url": url}))
            .await;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        let session = attached["sessionId"].as_str().unwrap().to_string();
        let loaded = format!("location.href === {url:?} && document.readyState === 'complete'");
        self.wait_for(&session, &loaded).await;
        session
    }

    async fn eval(&mut self, session: &str, expression: &str) -> Value {
        let result = self.try_eval(session, expression).await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    async fn try_eval(&mut self, session: &str, expression: &str) -> Value {
        self.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )
        .await
    }

    /// Polls `condition` in the page until it is true (10 s at most).
    async fn wait_for(&mut self, session: &str, condition: &str) {
        for _ in 0..100 {
            // An exception (element not there yet) counts as "not yet".
            if self.try_eval(session, condition).await["result"]["value"] == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let text = self
            .eval(session, "document.body ? document.body.innerText : ''")
            .await;
        panic!(
            "timed out waiting for `{condition}`; the page shows:\n{}",
            text.as_str().unwrap_or("")
        );
    }

    async fn type_and_click(&mut self, session: &str, input: &str, value: &str, button: &str) {
        let js = format!(
            "document.getElementById({input:?}).value = {value:?}; document.getElementById({button:?}).click(); true"
        );
        self.eval(session, &js).await;
    }

    async fn screenshot(&mut self, session: &str) -> Vec<u8> {
        let shot = self
            .call(
                Some(session),
                "Page.captureScreenshot",
                json!({"format": "png"}),
            )
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap()
    }
}

fn messages_contain(text: &str) -> String {
    format!("document.getElementById('messages').innerText.includes({text:?})")
}

fn users_are(users: &str) -> String {
    format!("[...document.querySelectorAll('#users li')].map(li => li.textContent).join(',') === {users:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_chat_in_a_real_browser() {
    let Some(binary) = chromium() else { return };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(wsproto_chat::serve(
        listener,
        wsproto_chat::Limits::default(),
    ));
    let mut browser = Browser::launch(binary).await;

    // The echo page.
    let echo = browser.open(&format!("{base}/echo")).await;
    browser
        .wait_for(
            &echo,
            "document.getElementById('status').textContent === 'connected'",
        )
        .await;
    browser
        .type_and_click(&echo, "input", "echo me ✓", "send")
        .await;
    browser
        .wait_for(&echo, &messages_contain("echo: echo me ✓"))
        .await;
    // Chromium offers permessage-deflate and the server accepts it; a long,
    // repetitive message goes through compressed both ways.
    assert_eq!(
        browser.eval(&echo, "ws.extensions").await,
        json!("permessage-deflate")
    );
    let long = "compress me, ✓".repeat(100);
    browser.type_and_click(&echo, "input", &long, "send").await;
    browser
        .wait_for(&echo, &messages_contain(&format!("echo: {long}")))
        .await;

    // Group chat between two pages.
    let alice = browser.open(&format!("{base}/chat")).await;
    browser
        .type_and_click(&alice, "name", "alice", "join")
        .await;
    browser
        .wait_for(
            &alice,
            "document.getElementById('status').textContent === 'connected as alice'",
        )
        .await;
    assert_eq!(
        browser.eval(&alice, "ws.extensions").await,
        json!("permessage-deflate")
    );
    let bob = browser.open(&format!("{base}/chat")).await;
    browser.type_and_click(&bob, "name", "bob", "join").await;
    browser.wait_for(&alice, &users_are("alice,bob")).await;
    browser
        .wait_for(&alice, &messages_contain("bob joined"))
        .await;

    browser
        .type_and_click(&alice, "input", "hello from alice", "send")
        .await;
    browser
        .wait_for(&bob, &messages_contain("alicehello from alice"))
        .await;
    browser
        .wait_for(
            &alice,
            "document.querySelector('#messages .msg.mine').textContent === 'mehello from alice'",
        )
        .await;
    browser
        .type_and_click(&bob, "input", "hi alice, bob here", "send")
        .await;
    browser
        .wait_for(&alice, &messages_contain("bobhi alice, bob here"))
        .await;
    // Alice's page shows her message once (her own copy), not echoed back.
    let count = browser
        .eval(&alice, "[...document.querySelectorAll('#messages .msg')].filter(m => m.textContent.includes('hello from alice')).length")
        .await;
    assert_eq!(count, json!(1));

    // A duplicate name is refused with a reason the page shows.
    let impostor = browser.open(&format!("{base}/chat")).await;
    browser
        .type_and_click(&impostor, "name", "alice", "join")
        .await;
    browser
        .wait_for(&impostor, &messages_contain("already taken"))
        .await;
    browser
        .wait_for(
            &impostor,
            "document.getElementById('status').textContent.includes('1008')",
        )
        .await;

    let shot = browser.screenshot(&alice).await;
    assert!(shot.starts_with(b"\x89PNG"), "a PNG screenshot");
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("chat.png"), &shot).unwrap();
    if std::env::var_os("WSPROTO_UPDATE_SCREENSHOT").is_some() {
        std::fs::write(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/chat.png"),
            &shot,
        )
        .unwrap();
    }

    // Private chat between three users: only the recipient sees the message.
    let ann = browser.open(&format!("{base}/private")).await;
    browser.type_and_click(&ann, "name", "ann", "join").await;
    let ben = browser.open(&format!("{base}/private")).await;
    browser.type_and_click(&ben, "name", "ben", "join").await;
    let cat = browser.open(&format!("{base}/private")).await;
    browser.type_and_click(&cat, "name", "cat", "join").await;
    browser
        .wait_for(&ann, &users_are("ann (you),ben,cat"))
        .await;
    browser
        .eval(&ann, "document.getElementById('to').value = 'ben'; true")
        .await;
    browser
        .type_and_click(&ann, "input", "a secret for ben", "send")
        .await;
    browser
        .wait_for(&ben, &messages_contain("a secret for ben"))
        .await;
    browser.wait_for(&ben, &messages_contain("ann → you")).await;
    browser.wait_for(&ann, &messages_contain("you → ben")).await;
    // Cat then gets a message from Ben; Ann's secret must not be on her page.
    browser
        .eval(&ben, "document.getElementById('to').value = 'cat'; true")
        .await;
    browser
        .type_and_click(&ben, "input", "hello cat", "send")
        .await;
    browser.wait_for(&cat, &messages_contain("hello cat")).await;
    let leaked = browser
        .eval(&cat, &messages_contain("a secret for ben"))
        .await;
    assert_eq!(leaked, json!(false));
}
