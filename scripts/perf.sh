#!/usr/bin/env bash
# Runs the criterion benches (mask, decode, encode, adapter; peers side by
# side in the same run), masking and decoding again in interleaved rounds
# (mask_rounds, decode_rounds: every library timed once per round, which a
# VM whose speed drifts by the minute needs for ratios), and the loopback
# echo comparison (benches/src/bin/echo_bench.rs),
# the same with corked servers and 16 messages in flight per connection, and
# prints the tables of docs/performance.md.
#
#   scripts/perf.sh [--quick]
#
# --quick shortens criterion's warm-up and measurement and runs one echo round
# instead of three.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
echo_args=()
if [ "${1:-}" = "--quick" ]; then
  args=(-- --warm-up-time 1 --measurement-time 2)
  echo_args=(--quick)
fi
cargo build -q --release -p wsproto-benches --bin echo_bench --bin mask_rounds --bin decode_rounds
for bench in mask decode encode adapter; do
  cargo bench -q -p wsproto-benches --bench "$bench" "${args[@]}" > "target/bench-$bench.log" 2>&1
done
echo "## mask (GB/s; ratios: wsproto over the column named)"
scripts/bench_table.py mask memcpy fastwebsockets fastest-peer
echo
echo "## decode (million messages/s)"
scripts/bench_table.py decode memcpy memcpy_reused tungstenite fastwebsockets fastest-peer
echo
echo "## mask, interleaved rounds"
target/release/mask_rounds
echo
echo "## decode, interleaved rounds"
target/release/decode_rounds
echo
echo "## encode (million messages/s)"
scripts/bench_table.py encode memcpy tungstenite fastwebsockets fastest-peer
echo
echo "## adapter: echo loop over an in-memory socket, one frame per read (million messages/s)"
scripts/bench_table.py adapter_echo fastwebsockets fastest-peer
echo
echo "## echo over loopback (tokio, one server thread each)"
target/release/echo_bench run "${echo_args[@]}" 2> target/echo_bench.log
echo
echo "## echo, corked servers, 16 messages in flight per connection"
target/release/echo_bench run --corked --window 16 --conns 100,1000 --idle 0 "${echo_args[@]}" 2> target/echo_bench_corked.log
