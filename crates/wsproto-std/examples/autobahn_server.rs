//! The blocking echo server as an Autobahn|Testsuite testee, with limits
//! raised so that group 9 (messages up to 16 MiB) passes.
//!
//!     cargo run --release -p wsproto-std --example autobahn_server [ADDR]
//!
//! ADDR defaults to 127.0.0.1:9001. See scripts/autobahn.sh.

use std::net::TcpListener;

use wsproto_std::{Accept, Config};

fn config() -> Config {
    Config {
        max_frame_size: 64 << 20,
        max_message_size: 64 << 20,
        max_fragments: 1 << 20,
        ..Config::default()
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_string());
    let listener = TcpListener::bind(&addr)?;
    eprintln!(
        "autobahn testee (std server) on ws://{}",
        listener.local_addr()?
    );
    for tcp in listener.incoming() {
        let tcp = tcp?;
        tcp.set_nodelay(true)?;
        std::thread::spawn(move || {
            let Ok(mut ws) = wsproto_std::accept_with(tcp, config(), |_| Ok(Accept::default()))
            else {
                return;
            };
            while let Ok(message) = ws.read() {
                if ws.send(message).is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}
