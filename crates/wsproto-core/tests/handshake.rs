//! The opening handshake: every rejection with its HTTP response, pipelined
//! bytes on both sides, and client-side verification of the response.

mod common;

use common::FixedRandom;
use wsproto_core::{
    accept_key, Accept, ClientHandshake, ClientRequest, Config, Event, HandshakeError, Message,
    ServerHandshake, Status,
};

fn request_with(lines: &[&str]) -> Vec<u8> {
    let mut s = String::new();
    for line in lines {
        s.push_str(line);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

const GOOD: &[&str] = &[
    "GET /chat HTTP/1.1",
    "Host: server.example.com",
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
];

fn with_replaced(name: &str, replacement: Option<&str>) -> Vec<u8> {
    let mut lines: Vec<String> = GOOD.iter().map(|s| s.to_string()).collect();
    lines.retain(|l| {
        !l.to_ascii_lowercase()
            .starts_with(&format!("{}:", name.to_ascii_lowercase()))
    });
    if let Some(r) = replacement {
        lines.push(r.to_string());
    }
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    request_with(&refs)
}

fn server_result(bytes: &[u8]) -> Result<(), HandshakeError> {
    let mut hs = ServerHandshake::new(Config::default());
    match hs.receive(bytes)? {
        Status::Complete(_) => Ok(()),
        Status::Partial => panic!("request should be complete"),
    }
}

fn assert_rejected(bytes: &[u8], status: u16) -> String {
    let err = server_result(bytes).expect_err("must be rejected");
    assert_eq!(err.status(), status, "{err}");
    let response = String::from_utf8(err.response()).unwrap();
    assert!(
        response.starts_with(&format!("HTTP/1.1 {status} ")),
        "{response}"
    );
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(&format!("Content-Length: {}", body.len())));
    assert!(head.contains("Connection: close"));
    response
}

#[test]
fn valid_request_one_byte_at_a_time() {
    let bytes = request_with(GOOD);
    let mut hs = ServerHandshake::new(Config::default());
    for (i, b) in bytes.iter().enumerate() {
        let status = hs.receive(std::slice::from_ref(b)).unwrap();
        assert_eq!(
            matches!(status, Status::Complete(_)),
            i == bytes.len() - 1,
            "byte {i}"
        );
    }
    let (response, _) = hs.accept(Accept::default()).unwrap();
    let response = String::from_utf8(response).unwrap();
    assert_eq!(
        response,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    );
}

#[test]
fn request_exposes_path_query_headers_protocols_extensions() {
    let bytes = request_with(&[
        "GET /ws/chat?name=ann&x=1 HTTP/1.1",
        "Host: localhost:9527",
        "upgrade: WebSocket",
        "connection: keep-alive, Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        "Origin: http://localhost:9527",
        "Sec-WebSocket-Protocol: chat, superchat",
        "Sec-WebSocket-Protocol: v3",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    ]);
    let mut hs = ServerHandshake::new(Config::default());
    let Status::Complete(req) = hs.receive(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(req.path(), "/ws/chat");
    assert_eq!(req.query(), Some("name=ann&x=1"));
    assert_eq!(req.target(), "/ws/chat?name=ann&x=1");
    assert_eq!(req.header("origin"), Some(&b"http://localhost:9527"[..]));
    assert_eq!(req.subprotocols(), ["chat", "superchat", "v3"]);
    assert_eq!(req.extensions()[0].name, "permessage-deflate");
    assert_eq!(
        req.extensions()[0].params,
        vec![("client_max_window_bits".to_string(), None)]
    );
    assert_eq!(req.key(), "dGhlIHNhbXBsZSBub25jZQ==");

    let (response, _) = hs
        .accept(
            Accept::default()
                .subprotocol("superchat")
                .header("X-Served-By", "wsproto"),
        )
        .unwrap();
    let response = String::from_utf8(response).unwrap();
    assert!(response.contains("\r\nSec-WebSocket-Protocol: superchat\r\n"));
    assert!(response.contains("\r\nX-Served-By: wsproto\r\n"));
    // Negotiated exactly when the crate is built with permessage-deflate.
    assert_eq!(
        response.contains("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"),
        cfg!(feature = "deflate"),
        "{response}"
    );
}

#[test]
fn accept_with_a_subprotocol_not_offered_fails() {
    let mut hs = ServerHandshake::new(Config::default());
    hs.receive(&request_with(GOOD)).unwrap();
    let err = hs
        .accept(Accept::default().subprotocol("chat"))
        .unwrap_err();
    assert_eq!(err.status(), 500);
}

#[test]
fn accept_refuses_header_injection() {
    for (name, value) in [
        ("X-A", "ok\r\nSet-Cookie: evil"),
        ("Bad Name", "v"),
        ("", "v"),
    ] {
        let mut hs = ServerHandshake::new(Config::default());
        hs.receive(&request_with(GOOD)).unwrap();
        assert!(
            hs.accept(Accept::default().header(name, value)).is_err(),
            "{name:?}"
        );
    }
}

#[test]
fn application_rejection_renders_the_status() {
    let mut hs = ServerHandshake::new(Config::default());
    hs.receive(&request_with(GOOD)).unwrap();
    let response = String::from_utf8(hs.reject(403, "no\n")).unwrap();
    assert!(response.starts_with("HTTP/1.1 403 Forbidden\r\n"));
    assert!(response.ends_with("\r\n\r\nno\n"));
}

#[test]
fn non_get_is_405_with_allow() {
    let mut lines = GOOD.to_vec();
    lines[0] = "POST /chat HTTP/1.1";
    let response = assert_rejected(&request_with(&lines), 405);
    assert!(response.contains("\r\nAllow: GET\r\n"));
}

#[test]
fn http_1_0_is_400() {
    let mut lines = GOOD.to_vec();
    lines[0] = "GET /chat HTTP/1.0";
    assert_rejected(&request_with(&lines), 400);
}

#[test]
fn missing_or_duplicate_host_is_400() {
    assert_rejected(&with_replaced("Host", None), 400);
    let mut lines = GOOD.to_vec();
    lines.push("Host: other");
    assert_rejected(&request_with(&lines), 400);
}

#[test]
fn upgrade_header_must_name_websocket() {
    assert_rejected(&with_replaced("Upgrade", None), 400);
    assert_rejected(&with_replaced("Upgrade", Some("Upgrade: h2c")), 400);
    assert!(server_result(&with_replaced("Upgrade", Some("Upgrade: foo, WEBSOCKET"))).is_ok());
}

#[test]
fn connection_header_must_contain_upgrade_token() {
    assert_rejected(&with_replaced("Connection", None), 400);
    assert_rejected(
        &with_replaced("Connection", Some("Connection: keep-alive")),
        400,
    );
    assert_rejected(
        &with_replaced("Connection", Some("Connection: upgraded")),
        400,
    );
    assert!(server_result(&with_replaced(
        "Connection",
        Some("Connection: keep-alive, UPGRADE")
    ))
    .is_ok());
}

#[test]
fn key_must_be_base64_of_16_bytes() {
    for bad in [
        None,
        Some("Sec-WebSocket-Key: not base64!!"),
        Some("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA"), // 15 bytes
        Some("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA"), // 18 bytes
        Some("Sec-WebSocket-Key: "),
    ] {
        assert_rejected(&with_replaced("Sec-WebSocket-Key", bad), 400);
    }
    let mut lines = GOOD.to_vec();
    lines.push("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==");
    assert_rejected(&request_with(&lines), 400);
}

#[test]
fn other_versions_get_426_with_version_13() {
    for v in [
        "Sec-WebSocket-Version: 8",
        "Sec-WebSocket-Version: 14",
        "Sec-WebSocket-Version: 13, 8",
    ] {
        let response = assert_rejected(&with_replaced("Sec-WebSocket-Version", Some(v)), 426);
        assert!(response.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    }
    assert_rejected(&with_replaced("Sec-WebSocket-Version", None), 400);
}

#[test]
fn header_block_over_the_limit_is_431() {
    let big = format!("X-Big: {}", "a".repeat(9000));
    let mut lines = GOOD.to_vec();
    lines.push(&big);
    assert_rejected(&request_with(&lines), 431);
    // Without the terminating blank line too: the limit stops reading.
    let mut hs = ServerHandshake::new(Config::default());
    let endless = vec![b'a'; 8 * 1024 + 1];
    assert_eq!(hs.receive(&endless).unwrap_err().status(), 431);
}

#[test]
fn too_many_headers_is_431() {
    let extra: Vec<String> = (0..70).map(|i| format!("X-{i}: v")).collect();
    let mut lines = GOOD.to_vec();
    lines.extend(extra.iter().map(String::as_str));
    assert_rejected(&request_with(&lines), 431);
}

#[test]
fn garbage_is_400() {
    assert_rejected(b"\x00\x01\x02 nonsense\r\n\r\n", 400);
    assert_rejected(b"GET /chat HTTP/1.1\r\nBad Header\r\n\r\n", 400);
}

#[test]
fn bytes_after_the_request_become_the_first_input() {
    let mut bytes = request_with(GOOD);
    // A client's first frame in the same packet, then half of a second one.
    bytes.extend([
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    bytes.extend([0x82, 0x81, 1, 2]);
    let mut hs = ServerHandshake::new(Config::default());
    assert!(matches!(hs.receive(&bytes).unwrap(), Status::Complete(_)));
    // More arrives before the application accepts: kept as well.
    hs.receive(&[3, 4, b'z' ^ 1]).unwrap();
    let (_, mut conn) = hs.accept(Accept::default()).unwrap();
    assert_eq!(
        conn.poll_event().unwrap(),
        Some(Event::Message(Message::text("Hello")))
    );
    assert_eq!(
        conn.poll_event().unwrap(),
        Some(Event::Message(Message::binary(&b"z"[..])))
    );
}

// ----- client side ---------------------------------------------------------

fn client_hs(request: &ClientRequest) -> ClientHandshake {
    ClientHandshake::with_random(
        request,
        Config::default(),
        Box::new(FixedRandom([1, 2, 3, 4])),
    )
}

fn response_for(hs: &ClientHandshake, extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
        accept_key(hs.key().as_bytes())
    )
}

#[test]
fn client_request_is_complete_and_valid_for_our_server() {
    let request = ClientRequest::new("ws://example.com:8080/ws/private/ann?x=1")
        .unwrap()
        .subprotocol("chat")
        .subprotocol("v2")
        .header("Origin", "http://example.com")
        .unwrap();
    let hs = ClientHandshake::new(&request, Config::default());
    let text = String::from_utf8(hs.request_bytes().to_vec()).unwrap();
    assert!(text.starts_with("GET /ws/private/ann?x=1 HTTP/1.1\r\nHost: example.com:8080\r\n"));
    assert!(text.contains("\r\nSec-WebSocket-Protocol: chat, v2\r\n"));
    assert!(text.contains("\r\nOrigin: http://example.com\r\n"));
    assert!(text.ends_with("\r\n\r\n"));

    let mut server = ServerHandshake::new(Config::default());
    let Status::Complete(req) = server.receive(hs.request_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(req.subprotocols(), ["chat", "v2"]);
    assert_eq!(req.key(), hs.key());
}

#[test]
fn client_keys_are_random_16_bytes() {
    use base64::Engine;
    let request = ClientRequest::new("ws://localhost/").unwrap();
    let a = ClientHandshake::new(&request, Config::default());
    let b = ClientHandshake::new(&request, Config::default());
    assert_ne!(a.key(), b.key());
    let raw = base64::engine::general_purpose::STANDARD
        .decode(a.key())
        .unwrap();
    assert_eq!(raw.len(), 16);
}

#[test]
fn client_urls() {
    let r = ClientRequest::new("ws://localhost").unwrap();
    assert_eq!(
        (r.host(), r.port(), r.resource(), r.host_header().as_str()),
        ("localhost", 80, "/", "localhost")
    );
    let r = ClientRequest::new("WSS://example.com?q=1").unwrap();
    assert_eq!((r.port(), r.resource(), r.is_tls()), (443, "/?q=1", true));
    for bad in [
        "http://x/",
        "ws://",
        "ws://:80/",
        "ws://h:0/",
        "ws://h:99999/",
        "ws://h/#frag",
        "ws://u:p@h/",
        "ws://[::1/",
        "ws://h/a b",
    ] {
        assert!(ClientRequest::new(bad).is_err(), "{bad}");
    }
}

#[test]
fn client_accepts_response_byte_at_a_time_and_keeps_following_bytes() {
    let request = ClientRequest::new("ws://127.0.0.1:9001/").unwrap();
    let mut hs = client_hs(&request);
    let mut bytes = response_for(&hs, "").into_bytes();
    bytes.extend([0x81, 0x02, b'h', b'i', 0x89]);
    let head_len = bytes.len() - 5;
    for (i, b) in bytes.iter().enumerate() {
        let status = hs.receive(std::slice::from_ref(b)).unwrap();
        assert_eq!(
            matches!(status, Status::Complete(_)),
            i >= head_len - 1,
            "byte {i}"
        );
    }
    let mut conn = hs.into_connection().unwrap();
    assert_eq!(
        conn.poll_event().unwrap(),
        Some(Event::Message(Message::text("hi")))
    );
    conn.receive(&[0x00]);
    assert!(matches!(conn.poll_event().unwrap(), Some(Event::Ping(_))));
}

fn client_error(extra_or_full: Result<&str, &str>, offered: &[&str]) -> HandshakeError {
    let mut request = ClientRequest::new("ws://h/").unwrap();
    for p in offered {
        request = request.subprotocol(*p);
    }
    let mut hs = client_hs(&request);
    let text = match extra_or_full {
        Ok(extra) => response_for(&hs, extra),
        Err(full) => full.to_string(),
    };
    hs.receive(text.as_bytes()).expect_err("must be refused")
}

#[test]
fn client_refuses_bad_responses() {
    assert_eq!(
        client_error(
            Err("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"),
            &[]
        ),
        HandshakeError::UnexpectedStatus(403)
    );
    assert_eq!(
        client_error(Err("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"), &[]),
        HandshakeError::AcceptMismatch
    );
    assert_eq!(
        client_error(
            Err("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n"),
            &[]
        ),
        HandshakeError::InvalidHeader("Upgrade")
    );
    assert_eq!(
        client_error(
            Err("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
            &[]
        ),
        HandshakeError::InvalidHeader("Connection")
    );
    assert_eq!(
        client_error(Ok("Sec-WebSocket-Protocol: chat\r\n"), &[]),
        HandshakeError::UnexpectedSubprotocol("chat".into())
    );
    assert_eq!(
        client_error(Ok("Sec-WebSocket-Protocol: a, b\r\n"), &["a", "b"]),
        HandshakeError::UnexpectedSubprotocol("a, b".into())
    );
    assert_eq!(
        client_error(
            Ok("Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n"),
            &[]
        ),
        HandshakeError::UnexpectedExtension("x-webkit-deflate-frame".into())
    );
    assert!(matches!(
        client_error(Err("nonsense\r\n\r\n"), &[]),
        HandshakeError::Malformed(_)
    ));
}

#[test]
fn client_reports_the_chosen_subprotocol() {
    let request = ClientRequest::new("ws://h/")
        .unwrap()
        .subprotocol("a")
        .subprotocol("b");
    let mut hs = client_hs(&request);
    let text = response_for(&hs, "Sec-WebSocket-Protocol: b\r\n");
    let Status::Complete(resp) = hs.receive(text.as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(resp.subprotocol(), Some("b"));
}

#[test]
fn client_and_server_talk_in_memory() {
    let request = ClientRequest::new("ws://localhost:9527/ws/echo")
        .unwrap()
        .subprotocol("echo");
    let mut client_hs = ClientHandshake::new(&request, Config::default());
    let mut server_hs = ServerHandshake::new(Config::default());
    assert!(matches!(
        server_hs.receive(client_hs.request_bytes()).unwrap(),
        Status::Complete(_)
    ));
    let (response, mut server) = server_hs
        .accept(Accept::default().subprotocol("echo"))
        .unwrap();
    let Status::Complete(resp) = client_hs.receive(&response).unwrap() else {
        panic!()
    };
    assert_eq!(resp.subprotocol(), Some("echo"));
    let mut client = client_hs.into_connection().unwrap();

    client.send_text("ping?").unwrap();
    server.receive(&common::drain(&mut client));
    let Some(Event::Message(m)) = server.poll_event().unwrap() else {
        panic!()
    };
    server.send(m).unwrap();
    client.receive(&common::drain(&mut server));
    assert_eq!(
        client.poll_event().unwrap(),
        Some(Event::Message(Message::text("ping?")))
    );
}

// HTTP/2 (RFC 8441): extended CONNECT.

fn h2_headers(extra: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    let mut headers = vec![("sec-websocket-version".to_string(), b"13".to_vec())];
    headers.extend(
        extra
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
    );
    headers
}

#[test]
fn h2_request_is_validated() {
    use wsproto_core::{HttpVersion, Request};
    let ok = Request::from_h2_parts(
        "CONNECT",
        Some("websocket"),
        "/chat?room=1",
        h2_headers(&[("sec-websocket-protocol", "a, b")]),
    )
    .unwrap();
    assert_eq!(ok.version(), HttpVersion::Http2);
    assert_eq!((ok.path(), ok.query()), ("/chat", Some("room=1")));
    assert_eq!(ok.subprotocols(), ["a", "b"]);
    assert_eq!(ok.key(), "");
    let err = |method, protocol, headers| {
        Request::from_h2_parts(method, protocol, "/", headers).unwrap_err()
    };
    let e = err("GET", Some("websocket"), h2_headers(&[]));
    assert_eq!(
        (e.clone(), e.status()),
        (HandshakeError::MethodNotAllowed, 405)
    );
    let e = err("CONNECT", None, h2_headers(&[]));
    assert_eq!(
        (e.clone(), e.status()),
        (HandshakeError::InvalidHeader(":protocol"), 400)
    );
    let e = err("CONNECT", Some("webtransport"), h2_headers(&[]));
    assert_eq!(e, HandshakeError::InvalidHeader(":protocol"));
    let e = err("CONNECT", Some("websocket"), vec![]);
    assert_eq!(e, HandshakeError::InvalidHeader("Sec-WebSocket-Version"));
    let e = err(
        "CONNECT",
        Some("websocket"),
        vec![("sec-websocket-version".into(), b"8".to_vec())],
    );
    assert_eq!(
        (e.clone(), e.status()),
        (HandshakeError::UnsupportedVersion, 426)
    );
}

#[test]
fn h2_response_has_no_upgrade_fields() {
    use wsproto_core::Request;
    let request = Request::from_h2_parts(
        "CONNECT",
        Some("websocket"),
        "/",
        h2_headers(&[("sec-websocket-protocol", "chat")]),
    )
    .unwrap();
    assert_eq!(request.response_status(), 200);
    let headers = request
        .response_headers(&Accept::default().subprotocol("chat"))
        .unwrap();
    assert_eq!(
        headers,
        [("Sec-WebSocket-Protocol".to_string(), "chat".to_string())]
    );
    assert!(request
        .response_headers(&Accept::default().subprotocol("other"))
        .is_err());
}

#[test]
fn h2_client_checks_the_response_and_talks_to_an_h2_server() {
    use wsproto_core::Request;
    let request = ClientRequest::new("ws://example.com/feed")
        .unwrap()
        .subprotocol("v1");
    // A status other than 2xx.
    let mut hs = client_hs(&request);
    assert_eq!(
        hs.receive_h2_response(404, vec![]).unwrap_err(),
        HandshakeError::UnexpectedStatus(404)
    );
    // A subprotocol that was not offered.
    let mut hs = client_hs(&request);
    let e = hs
        .receive_h2_response(200, h2_headers(&[("sec-websocket-protocol", "v2")]))
        .unwrap_err();
    assert!(
        matches!(e, HandshakeError::UnexpectedSubprotocol(_)),
        "{e:?}"
    );
    // No response yet: no connection.
    assert!(client_hs(&request).into_connection().is_err());

    // The whole exchange: the client's fields become the server's request.
    let mut client = client_hs(&request);
    let fields = client
        .h2_headers()
        .into_iter()
        .map(|(n, v)| (n, v.into_bytes()))
        .collect();
    let server_req = Request::from_h2_parts("CONNECT", Some("websocket"), "/feed", fields).unwrap();
    assert_eq!(server_req.subprotocols(), ["v1"]);
    #[allow(unused_mut)]
    let mut accept = Accept::default().subprotocol("v1");
    #[cfg(feature = "deflate")]
    let agreement = wsproto_core::handshake::DeflateConfig::default()
        .accept_offer(server_req.extensions())
        .expect("the client offered permessage-deflate");
    #[cfg(feature = "deflate")]
    {
        accept = accept.permessage_deflate(agreement.clone());
    }
    let response: Vec<(String, Vec<u8>)> = server_req
        .response_headers(&accept)
        .unwrap()
        .into_iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.into_bytes()))
        .collect();
    let got = client.receive_h2_response(200, response).unwrap();
    assert_eq!(got.subprotocol(), Some("v1"));
    #[cfg(feature = "deflate")]
    assert_eq!(got.permessage_deflate(), Some(&agreement.params));
    let mut client = client.into_connection().unwrap();
    #[allow(unused_mut)]
    let mut server = wsproto_core::Connection::server(Config::default());
    #[cfg(feature = "deflate")]
    {
        server = server.with_permessage_deflate(agreement.params);
    }
    let text = "over one HTTP/2 stream ".repeat(10);
    client.send(Message::text(text.clone())).unwrap();
    while let Some(chunk) = client.poll_transmit() {
        let n = chunk.len();
        server.receive(chunk);
        client.advance(n);
    }
    match server.poll_event().unwrap() {
        Some(Event::Message(m)) => assert_eq!(m.as_text(), Some(text.as_str())),
        other => panic!("{other:?}"),
    }
}
