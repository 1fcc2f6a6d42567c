#!/usr/bin/env bash
# Runs one fuzz target for a number of seconds, starting from the committed
# seeds and the WebSocket dictionary.
#
#   fuzz/run.sh TARGET [SECONDS]     (default 60)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on this stable toolchain
# RUSTC_BOOTSTRAP=1 lets it use the nightly-only sanitizer flags.
# The working corpus grows in fuzz/corpus/TARGET (not committed); crashes
# land in fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")"
target="$1"
seconds="${2:-60}"
mkdir -p "corpus/$target"
cp -n "seeds/$target/"* "corpus/$target/" 2>/dev/null || true
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" -- \
  -max_total_time="$seconds" -dict=dict/websocket.dict -max_len=4096 -print_final_stats=1
