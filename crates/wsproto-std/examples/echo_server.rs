//! The raw-socket echo server: a thread per connection, every text and
//! binary message comes back as is.
//!
//!     cargo run --release -p wsproto-std --example echo_server [ADDR]
//!
//! ADDR defaults to 127.0.0.1:8003.

use std::net::TcpListener;

use wsproto_std::Error;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8003".to_string());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("echo server on ws://{}", listener.local_addr()?);
    for tcp in listener.incoming() {
        let tcp = tcp?;
        let peer = tcp.peer_addr()?;
        tcp.set_nodelay(true)?;
        // A client that sends its request a byte at a time is dropped after
        // the handshake timeout rather than holding a thread.
        let config = wsproto_std::Config::default();
        tcp.set_read_timeout(Some(config.handshake_timeout))?;
        std::thread::spawn(move || {
            let accepted =
                wsproto_std::accept_with(tcp, config, |_| Ok(wsproto_std::Accept::default()));
            let mut ws = match accepted {
                Ok(ws) => ws,
                Err(e) => return eprintln!("{peer}: handshake failed: {e}"),
            };
            if let Err(e) = ws.get_ref().set_read_timeout(None) {
                return eprintln!("{peer}: {e}");
            }
            eprintln!("{peer}: connected");
            loop {
                match ws.read() {
                    Ok(message) => {
                        if let Err(e) = ws.send(message) {
                            eprintln!("{peer}: {e}");
                            break;
                        }
                    }
                    Err(Error::ConnectionClosed(frame)) => {
                        match frame {
                            Some(f) => {
                                eprintln!("{peer}: closed with {} {:?}", f.code, f.reason.as_str())
                            }
                            None => eprintln!("{peer}: closed"),
                        }
                        break;
                    }
                    Err(e) => {
                        eprintln!("{peer}: {e}");
                        break;
                    }
                }
            }
        });
    }
    Ok(())
}
