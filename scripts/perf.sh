#!/usr/bin/env bash
# Runs the criterion benches (mask, decode, encode; peers side by side in the
# same run) and prints the tables of docs/performance.md.
#
#   scripts/perf.sh [--quick]
#
# --quick shortens warm-up and measurement (about 4 minutes instead of 10).
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
if [ "${1:-}" = "--quick" ]; then args=(-- --warm-up-time 1 --measurement-time 2); fi
for bench in mask decode encode; do
  cargo bench -q -p wsproto-benches --bench "$bench" "${args[@]}" > "target/bench-$bench.log" 2>&1
done
echo "## mask (GB/s; ratios: wsproto over the column named)"
scripts/bench_table.py mask memcpy fastwebsockets
echo
echo "## decode (million messages/s)"
scripts/bench_table.py decode memcpy tungstenite fastwebsockets
echo
echo "## encode (million messages/s)"
scripts/bench_table.py encode memcpy tungstenite fastwebsockets
