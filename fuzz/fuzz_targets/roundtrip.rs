//! Any sequence of messages, sent with any fragmentation by a client, split
//! at any byte boundaries on the way, arrives at a server as the same
//! messages in the same order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsproto_core::{ChaChaSource, Config, Connection};

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let messages = common::messages(rest, false);
    let frame_size = usize::from(control & 0x0f) + 1;
    let chunk = usize::from(control >> 4) + 1;
    let mut client = Connection::client(
        Config { max_send_frame_size: Some(frame_size), ..Config::default() },
        Box::new(ChaChaSource::from_seed([2; 32])),
    );
    for m in &messages {
        client.send(m.clone()).expect("send");
    }
    let wire = common::transmit(&mut client);
    let mut server = Connection::server(Config::default());
    let mut got = Vec::new();
    common::deliver(&mut server, &wire, chunk, &mut got);
    assert_eq!(got, messages);
});
