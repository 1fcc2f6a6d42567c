//! Decoding side by side in interleaved rounds: ours and the four peers
//! decoding the same 4 MiB of masked client frames (the `decode` criterion
//! bench's cases and decoders), each round timing every library once in
//! turn, the fastest round of each kept.
//!
//! Criterion runs one library for seconds before the next, so on a VM
//! whose speed drifts from minute to minute a row's ratio depends on which
//! library ran in a slow minute (the 1 KiB row gave our rate as 15.9 and
//! 10.1 M messages/s in two runs minutes apart, tungstenite 8.0 and 7.2); here
//! every library sees the same minutes.
//!
//!     cargo run --release -p wsproto-benches --bin decode_rounds [-- ROUNDS [CASE,CASE,...]]
//!
//! CASE is a row name such as `binary_16` or `text_16384`.

use std::time::Instant;

use wsproto_benches::decoders;
use wsproto_benches::{frame_count, masked_frames_of};

const NAMES: [&str; 6] = [
    "wsproto",
    "tungstenite",
    "fastwebsockets",
    "tokio-websockets",
    "yawc",
    "memcpy_reused",
];

fn main() {
    let usage = || -> ! {
        eprintln!("usage: decode_rounds [ROUNDS [CASE,CASE,...]]");
        std::process::exit(2);
    };
    let rounds: usize = match std::env::args().nth(1).map(|r| r.parse()) {
        None => 30,
        Some(Ok(rounds)) if rounds > 0 => rounds,
        Some(_) => usage(),
    };
    let wanted: Option<Vec<String>> = std::env::args()
        .nth(2)
        .map(|list| list.split(',').map(str::to_owned).collect());
    let cases: Vec<_> = decoders::cases()
        .into_iter()
        .filter(|(kind, size, ..)| {
            wanted
                .as_ref()
                .is_none_or(|w| w.contains(&format!("{kind}_{size}")))
        })
        .collect();
    if cases.is_empty() {
        usage();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    println!("fastest of {rounds} interleaved rounds, M messages/s; ratios are wsproto's rate over the column's");
    println!("| row | wsproto | tungstenite | fastwebsockets | tokio-websockets | yawc | memcpy_reused | / tungstenite | / fastwebsockets | / fastest peer |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut read_buf = vec![0u8; decoders::READ];
    for (kind, size, opcode, body) in cases {
        let count = frame_count(size);
        let input = masked_frames_of(count, opcode, &body);
        let expected = count * size;
        let mut best = [f64::MAX; NAMES.len()];
        for _ in 0..rounds {
            for (which, best) in best.iter_mut().enumerate() {
                let start = Instant::now();
                let got = match which {
                    0 => decoders::wsproto(&input),
                    1 => decoders::tungstenite(&input, count),
                    2 => decoders::fastwebsockets(&rt, &input, count),
                    3 => decoders::tokio_websockets(&rt, &input, count),
                    4 => decoders::yawc(&rt, &input, count),
                    _ => {
                        decoders::memcpy_reused(&input, &mut read_buf);
                        expected
                    }
                };
                let elapsed = start.elapsed().as_secs_f64();
                assert_eq!(got, expected, "{} decoded the wrong bytes", NAMES[which]);
                *best = best.min(elapsed);
            }
        }
        // Messages per second, in millions.
        let rate = best.map(|secs| count as f64 / secs / 1e6);
        let (peer, fastest) =
            (1..5)
                .map(|i| (NAMES[i], rate[i]))
                .fold(("", 0.0), |a, b| if b.1 > a.1 { b } else { a });
        println!(
            "| {kind}_{size} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}x | {:.2}x | {:.2}x ({peer}) |",
            rate[0],
            rate[1],
            rate[2],
            rate[3],
            rate[4],
            rate[5],
            rate[0] / rate[1],
            rate[0] / rate[2],
            rate[0] / fastest,
        );
    }
}
