//! Hostile peers against the blocking adapter over loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use wsproto_core::frame::MAX_HEADER_LEN;
use wsproto_core::{ClientHandshake, FrameHeader, OpCode, ProtocolError, Status};
use wsproto_std::{Accept, ClientRequest, Config, Error};

/// Accepts one connection (with a handshake read timeout), reads it to the
/// end, and returns how it ended.
fn one_shot_server(config: Config) -> (SocketAddr, thread::JoinHandle<Result<(), Error>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let tcp = listener.accept().unwrap().0;
        tcp.set_read_timeout(Some(config.handshake_timeout))
            .unwrap();
        let mut ws = wsproto_std::accept_with(tcp, config, |_| Ok(Accept::default()))?;
        ws.get_ref().set_read_timeout(None).unwrap();
        loop {
            match ws.read() {
                Ok(_) => {}
                Err(Error::ConnectionClosed(_)) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    });
    (addr, handle)
}

fn handshaken(addr: SocketAddr) -> TcpStream {
    let request = ClientRequest::new(&format!("ws://{addr}/")).unwrap();
    let mut hs = ClientHandshake::new(&request, Config::default());
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.write_all(hs.request_bytes()).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0);
        if let Status::Complete(_) = hs.receive(&buf[..n]).unwrap() {
            return tcp;
        }
    }
}

fn close_code_from(tcp: &mut TcpStream) -> Option<u16> {
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut all = Vec::new();
    let _ = tcp.read_to_end(&mut all);
    let at = all.iter().position(|&b| b == 0x88)?;
    Some(u16::from_be_bytes([*all.get(at + 2)?, *all.get(at + 3)?]))
}

/// The header of a client frame with first byte `b0` (FIN, opcode) and a
/// zero masking key, so that payload bytes can follow as they are.
fn masked_header(b0: u8, len: u64) -> Vec<u8> {
    let header = FrameHeader {
        fin: b0 & 0x80 != 0,
        rsv: 0,
        opcode: OpCode::from_u8(b0 & 0x0f).unwrap(),
        mask: Some([0; 4]),
        payload_len: len,
    };
    let mut out = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut out);
    out[..n].to_vec()
}

/// How a peer that vanished or reset the connection must end: a transport
/// error or a closure without a close frame, never a hang or a panic.
fn assert_transport_error(end: &Result<(), Error>) {
    assert!(
        matches!(end, Err(Error::Io(_)) | Err(Error::AbnormalClosure)),
        "{end:?}"
    );
}

#[test]
fn slow_handshake_fails_at_the_read_timeout() {
    let config = Config {
        handshake_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let (addr, server) = one_shot_server(config);
    let mut tcp = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    for byte in b"GET / HTTP/1.1\r\nHost: x\r\n" {
        if tcp.write_all(std::slice::from_ref(byte)).is_err() || server.is_finished() {
            break;
        }
        // One byte per 400 ms: slower than the timeout.
        thread::sleep(Duration::from_millis(400));
    }
    let end = server.join().unwrap();
    assert!(matches!(end, Err(Error::Io(_))), "{end:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn header_block_over_the_limit_gets_431() {
    let (addr, server) = one_shot_server(Config::default());
    let mut tcp = TcpStream::connect(addr).unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let _ = tcp.write_all(request.as_bytes());
    let mut response = Vec::new();
    let _ = tcp.read_to_end(&mut response);
    assert!(
        response.starts_with(b"HTTP/1.1 431 "),
        "{}",
        String::from_utf8_lossy(&response)
    );
    assert!(matches!(server.join().unwrap(), Err(Error::Handshake(ref e)) if e.status() == 431));
}

#[test]
fn declared_length_of_2_pow_63_minus_1_gets_1009() {
    let (addr, server) = one_shot_server(Config::default());
    let mut tcp = handshaken(addr);
    tcp.write_all(&masked_header(0x82, (1 << 63) - 1)).unwrap();
    assert_eq!(close_code_from(&mut tcp), Some(1009));
    let end = server.join().unwrap();
    assert!(
        matches!(
            end,
            Err(Error::Protocol(wsproto_core::Error::Protocol(
                ProtocolError::FrameTooLarge { .. }
            )))
        ),
        "{end:?}"
    );
}

#[test]
fn endless_fragmented_message_gets_1009_at_the_limit() {
    let config = Config {
        max_message_size: 64 * 1024,
        ..Config::default()
    };
    let (addr, server) = one_shot_server(config);
    let mut tcp = handshaken(addr);
    let fragment = [b'x'; 4096];
    for i in 0..64 {
        let mut frame = masked_header(if i == 0 { 0x01 } else { 0x00 }, fragment.len() as u64);
        frame.extend_from_slice(&fragment);
        if tcp.write_all(&frame).is_err() || server.is_finished() {
            break;
        }
    }
    assert_eq!(close_code_from(&mut tcp), Some(1009));
    let end = server.join().unwrap();
    assert!(
        matches!(
            end,
            Err(Error::Protocol(wsproto_core::Error::Protocol(
                ProtocolError::MessageTooLarge { limit: 65536 }
            )))
        ),
        "{end:?}"
    );
}

#[test]
fn peer_vanishing_mid_frame_is_a_typed_error() {
    let (addr, server) = one_shot_server(Config::default());
    let mut tcp = handshaken(addr);
    let mut half = masked_header(0x82, 1000);
    half.extend_from_slice(&[1u8; 300]);
    tcp.write_all(&half).unwrap();
    drop(tcp);
    let end = server.join().unwrap();
    assert_transport_error(&end);
}

#[test]
fn peer_that_never_answers_our_close_is_dropped_after_the_close_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let tcp = listener.accept().unwrap().0;
        tcp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let config = Config {
            close_timeout: Duration::from_millis(300),
            ..Config::default()
        };
        let mut ws = wsproto_std::accept_with(tcp, config, |_| Ok(Accept::default())).unwrap();
        ws.close(wsproto_std::CloseCode::Normal, "").unwrap();
        let started = Instant::now();
        loop {
            match ws.read() {
                Err(Error::Io(_)) => continue, // read timeouts let the timer run
                Err(Error::ConnectionClosed(frame)) => return (started.elapsed(), frame),
                other => panic!("{other:?}"),
            }
        }
    });
    let _silent = handshaken(addr); // reads nothing, answers nothing
    let (waited, frame) = server.join().unwrap();
    assert!(frame.is_none(), "no close frame ever came back");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

/// Closing this socket will send RST instead of FIN.
fn send_rst_on_drop(tcp: &TcpStream) {
    socket2::SockRef::from(tcp)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
}

#[test]
fn tcp_reset_in_the_middle_of_a_frame_is_a_typed_error() {
    let (addr, server) = one_shot_server(Config::default());
    let mut tcp = handshaken(addr);
    let mut half = masked_header(0x82, 1000);
    half.extend_from_slice(&[1u8; 300]);
    tcp.write_all(&half).unwrap();
    send_rst_on_drop(&tcp);
    drop(tcp);
    let end = server.join().unwrap();
    assert_transport_error(&end);
}

#[test]
fn tcp_reset_in_the_middle_of_the_handshake_is_a_typed_error() {
    let (addr, server) = one_shot_server(Config::default());
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpg").unwrap();
    send_rst_on_drop(&tcp);
    drop(tcp);
    let end = server.join().unwrap();
    assert_transport_error(&end);
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn ping_flood_from_a_peer_that_never_reads_is_throttled() {
    let config = Config {
        max_write_buffer: 64 * 1024,
        ..Config::default()
    };
    let (addr, _server) = one_shot_server(config);
    let mut tcp = handshaken(addr);
    tcp.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut ping = masked_header(0x89, 125);
    ping.extend_from_slice(&[b'p'; 125]);
    let burst: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 1000)
        .collect();
    let before = rss_kib();
    // Every ping asks for a pong of the same size; we never read one.
    let mut sent = 0usize;
    while sent < 256 << 20 {
        match tcp.write(&burst) {
            Ok(n) => sent += n,
            Err(_) => break, // the write timed out: backpressure
        }
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(
        sent < 64 << 20,
        "sent {sent} bytes of pings: no backpressure"
    );
    assert!(grown < 32 * 1024, "memory grew by {grown} KiB");
    eprintln!("ping flood: {sent} bytes accepted before the stall, RSS grew {grown} KiB");
}

/// A peer that has sent `budget` bytes of 125-byte pings at once and takes
/// every write, as a non-blocking socket: reads past the budget would
/// block. It records the most input the server had read and not yet
/// answered when it asked for more.
struct PingSource {
    frame: Vec<u8>,
    budget: usize,
    delivered: usize,
    pongs: usize,
    most_unanswered: usize,
}

impl Read for PingSource {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Each pong (2 + 125 bytes) answers one ping (2 + 4 + 125).
        let answered = self.pongs / 127 * self.frame.len();
        self.most_unanswered = self.most_unanswered.max(self.delivered - answered);
        if self.delivered >= self.budget {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        // As a socket does: as much as fits, frames cut anywhere.
        let n = buf.len().min(self.budget - self.delivered);
        for (i, byte) in buf[..n].iter_mut().enumerate() {
            *byte = self.frame[(self.delivered + i) % self.frame.len()];
        }
        self.delivered += n;
        Ok(n)
    }
}

impl Write for PingSource {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pongs += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn buffered_pings_are_answered_before_more_input_is_read() {
    let mut frame = masked_header(0x89, 125);
    frame.extend_from_slice(&[b'p'; 125]);
    let budget = (16 << 20) / 131 * 131;
    let source = PingSource {
        frame,
        budget,
        delivered: 0,
        pongs: 0,
        most_unanswered: 0,
    };
    let config = Config {
        max_write_buffer: 64 * 1024,
        ..Config::default()
    };
    let conn = wsproto_std::Connection::server(config);
    let mut ws = wsproto_std::WebSocket::from_connection(source, conn);
    // Pings only: every one is answered, then the read would block.
    match ws.read() {
        Err(e) if e.is_would_block() => {}
        other => panic!("{other:?}"),
    }
    let source = ws.get_ref();
    assert_eq!(source.delivered, budget);
    assert_eq!(source.pongs, budget / 131 * 127);
    // When the outgoing buffer stops the parsing, the adapter writes and
    // parses what it holds before reading more, so what it has read and
    // not answered stays near one read plus the write limit.
    assert!(
        source.most_unanswered < 1 << 20,
        "{} bytes read and not answered",
        source.most_unanswered
    );
}
