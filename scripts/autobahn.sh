#!/usr/bin/env bash
# Runs Autobahn|Testsuite against our agents; fails on any FAILED or
# NON-STRICT case.
#
#   scripts/autobahn.sh [--quick] [AGENT...]
#
# AGENTs: tokio-server tokio-client std-server std-client (default: all four).
# --quick runs groups 1-7 and 10 and the permessage-deflate subsets 12.1 and
# 13.1 (what CI runs); without it every group runs (9, 12 and 13 are slow).
# AUTOBAHN_CASES="12.* 13.*" picks the case patterns instead.
# Reports: target/autobahn/AGENT/index.html; summaries on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

AB="${AUTOBAHN_DIR:-../shared/autobahn}"
VENV="${WSTEST_VENV:-$HOME/.cache/wstest-venv}"
QUICK=0
AGENTS=()
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    tokio-server|tokio-client|std-server|std-client) AGENTS+=("$arg") ;;
    *) echo "usage: $0 [--quick] [tokio-server|tokio-client|std-server|std-client ...]" >&2; exit 2 ;;
  esac
done
[ ${#AGENTS[@]} -gt 0 ] || AGENTS=(tokio-server tokio-client std-server std-client)
[ -x "$VENV/bin/wstest" ] || "$AB/install.sh"

if [ -n "${AUTOBAHN_CASES:-}" ]; then
  read -r -a CASES <<< "$AUTOBAHN_CASES"
elif [ "$QUICK" = 1 ]; then
  CASES=("1.*" "2.*" "3.*" "4.*" "5.*" "6.*" "7.*" "10.*" "12.1.*" "13.1.*")
else
  CASES=("*")
fi

# Both adapters name their testees autobahn_server / autobahn_client, which
# share target/release/examples: build one crate at a time and copy them aside.
BIN=target/autobahn/bin
mkdir -p "$BIN"
for crate in $(printf '%s\n' "${AGENTS[@]}" | sed 's/-.*//' | sort -u); do
  cargo build --release --quiet -p "wsproto-$crate" --example autobahn_server --example autobahn_client
  cp target/release/examples/autobahn_server "$BIN/$crate-server"
  cp target/release/examples/autobahn_client "$BIN/$crate-client"
done

PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

summaries=()
status=0
for agent in "${AGENTS[@]}"; do
  out="target/autobahn/$agent"
  rm -rf "$out"; mkdir -p "$out"
  port=$(free_port)
  name="wsproto-$agent"
  echo "== autobahn: $name, cases ${CASES[*]}"
  case "$agent" in
    *-server)
      "$BIN/$agent" "127.0.0.1:$port" > "$out/testee.log" 2>&1 &
      PIDS+=($!)
      for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
      TIMEOUT="${TIMEOUT:-1500}" "$AB/fuzzingclient.sh" "ws://127.0.0.1:$port" "$name" "$out" "${CASES[@]}" > "$out/run.log" 2>&1 || true
      kill "${PIDS[-1]}" 2>/dev/null || true
      ;;
    *-client)
      TIMEOUT="${TIMEOUT:-1500}" "$AB/fuzzingserver.sh" "$port" "$out" "${CASES[@]}" > "$out/run.log" 2>&1 &
      PIDS+=($!)
      for _ in $(seq 150); do grep -q "ready ws://" "$out/run.log" 2>/dev/null && break; sleep 0.2; done
      timeout 1500 "$BIN/$agent" "ws://127.0.0.1:$port" "$name" > "$out/testee.log" 2>&1 || echo "testee exited with $?"
      kill "$(cat "$out/fuzzingserver.pid")" 2>/dev/null || true
      wait "${PIDS[-1]}" 2>/dev/null || true
      ;;
  esac
  if [ ! -f "$out/index.json" ]; then
    echo "!! no report for $name (see $out/run.log)"; status=1; continue
  fi
  summary=$("$VENV/bin/python" "$AB/summarize.py" "$out")
  echo "$summary" | grep -v 'UNIMPLEMENTED)' || true
  line=$(echo "$summary" | grep '^autobahn: ')
  summaries+=("$line")
  if ! echo "$line" | grep -q ' non_strict=0 .*failed=0 '; then
    echo "!! $name has FAILED or NON-STRICT cases"; status=1
  fi
done

echo
echo "== autobahn summary"
printf '%s\n' "${summaries[@]}"
exit $status
