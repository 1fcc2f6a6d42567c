//! Arbitrary bytes as a server's response to our handshake, fed in two
//! pieces: never a panic; a completed handshake yields a connection that
//! holds whatever followed the response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsproto_core::{ChaChaSource, ClientHandshake, ClientRequest, Config, Status};

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let request = ClientRequest::new("ws://127.0.0.1:9001/fuzz").expect("valid URL").subprotocol("chat");
    // A fixed seed makes the key (and so the expected accept value) stable,
    // so the fuzzer can find responses that complete the handshake.
    let mut hs = ClientHandshake::with_random(
        &request,
        Config { max_header_size: 2048, ..Config::default() },
        Box::new(ChaChaSource::from_seed([0; 32])),
    );
    let split = usize::from(split).min(input.len());
    let mut complete = false;
    for piece in [&input[..split], &input[split..]] {
        match hs.receive(piece) {
            Ok(Status::Complete(response)) => {
                if let Some(p) = response.subprotocol() {
                    assert_eq!(p, "chat", "only an offered subprotocol is accepted");
                }
                complete = true;
            }
            Ok(Status::Partial) => {}
            Err(_) => return,
        }
    }
    if complete {
        let mut conn = hs.into_connection().expect("complete handshake");
        while let Ok(Some(_)) = conn.poll_event() {}
    }
});
