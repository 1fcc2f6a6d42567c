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
    // Repeated bodies reach the sizes a server unmasks while copying.
    let messages = common::messages(rest, true);
    // 1 to 15 bytes per frame, or whole messages in one frame.
    let frame_size = Some(usize::from(control & 0x0f) + 1).filter(|&n| n < 16);
    let chunk = usize::from(control >> 4) + 1;
    let mut client = Connection::client(
        Config { max_send_frame_size: frame_size, ..Config::default() },
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
