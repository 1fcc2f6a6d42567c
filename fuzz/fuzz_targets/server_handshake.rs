//! Arbitrary bytes as an upgrade request, fed in two pieces: never a panic;
//! a rejection always renders a response with its status line; an accepted
//! request always yields a 101 response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsproto_core::{Accept, Config, ServerHandshake, Status};

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(input.len());
    let mut hs = ServerHandshake::new(Config { max_header_size: 1024, ..Config::default() });
    let mut complete = false;
    for piece in [&input[..split], &input[split..]] {
        match hs.receive(piece) {
            Ok(Status::Complete(_)) => complete = true,
            Ok(Status::Partial) => {}
            Err(e) => {
                let response = e.response();
                let status = format!("HTTP/1.1 {} ", e.status());
                assert!(response.starts_with(status.as_bytes()));
                return;
            }
        }
    }
    if complete {
        let (response, _conn) = hs.accept(Accept::default()).expect("a complete request can be accepted");
        assert!(response.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    }
});
