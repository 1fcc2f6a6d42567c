//! Masking side by side in interleaved rounds: our `apply_mask`, yawc's and
//! fastwebsockets' public masking functions and a memcpy of the same size,
//! on 1-byte-misaligned buffers, each round timing every function once in
//! turn, the fastest round of each kept.
//!
//! Criterion runs one function for seconds before the next, so a VM whose
//! speed drifts from minute to minute can favour whichever ran in a fast
//! minute; here every function sees the same minutes. For the sizes
//! between criterion's (384 B, 768 B) and to check its small-size rows.
//!
//!     cargo run --release -p wsproto-benches --bin mask_rounds [-- ROUNDS [SIZE,SIZE,...]]

use std::hint::black_box;
use std::time::Instant;

const SIZES: [usize; 12] = [
    16,
    64,
    256,
    384,
    512,
    768,
    1024,
    2048,
    4096,
    16384,
    65536,
    1 << 20,
];
const NAMES: [&str; 4] = ["wsproto", "yawc", "fastwebsockets", "memcpy"];

fn main() {
    let rounds: usize = match std::env::args().nth(1).map(|r| r.parse()) {
        None => 30,
        Some(Ok(rounds)) if rounds > 0 => rounds,
        Some(_) => {
            eprintln!("usage: mask_rounds [ROUNDS [SIZE,SIZE,...]]");
            std::process::exit(2);
        }
    };
    let sizes: Vec<usize> = match std::env::args().nth(2) {
        None => SIZES.to_vec(),
        Some(list) => match list
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(sizes) if !sizes.contains(&0) => sizes,
            _ => {
                eprintln!("usage: mask_rounds [ROUNDS [SIZE,SIZE,...]]");
                std::process::exit(2);
            }
        },
    };
    let key = [0x12, 0x34, 0x56, 0x78];
    println!("fastest of {rounds} interleaved rounds, ns per call; ratios are wsproto's speed over the column's");
    println!("| size | wsproto | yawc | fastwebsockets | memcpy | / yawc | / fastwebsockets | / memcpy |");
    println!("|---|---|---|---|---|---|---|---|");
    for size in sizes {
        // One byte past a page boundary: received payloads rarely start on
        // an aligned address, and a fixed place keeps runs comparable (a
        // heap address that changes from run to run moved the 384 B row by
        // half when the buffer happened to cross a page).
        let mut store = vec![0x5au8; size + 8192];
        let src_store = vec![0xa5u8; size + 8192];
        let (at, src_at) = (page_offset(&store), page_offset(&src_store));
        let buf = &mut store[at..at + size + 1];
        let src = &src_store[src_at..src_at + size + 1];
        // About 4 MB per function per round.
        let calls = (4_000_000 / size).max(4);
        let mut best = [f64::MAX; NAMES.len()];
        for _ in 0..rounds {
            for (which, best) in best.iter_mut().enumerate() {
                let start = Instant::now();
                for _ in 0..calls {
                    let buf = black_box(&mut buf[1..]);
                    match which {
                        0 => wsproto_core::apply_mask(buf, key, 0),
                        1 => yawc::mask::apply_mask(buf, key),
                        2 => fastwebsockets::unmask(buf, key),
                        _ => buf.copy_from_slice(black_box(&src[1..])),
                    }
                }
                *best = best.min(start.elapsed().as_secs_f64() * 1e9 / calls as f64);
            }
        }
        let [ours, yawc, fastwebsockets, memcpy] = best;
        println!(
            "| {size} B | {ours:.2} | {yawc:.2} | {fastwebsockets:.2} | {memcpy:.2} | {:.2}x | {:.2}x | {:.2}x |",
            yawc / ours,
            fastwebsockets / ours,
            memcpy / ours
        );
    }
}

/// Where the first 4 KiB boundary in `store` is.
fn page_offset(store: &[u8]) -> usize {
    store.as_ptr().align_offset(4096)
}
