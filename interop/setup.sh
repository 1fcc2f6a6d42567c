#!/usr/bin/env bash
# Installs the independent peers used by crates/wsproto-tokio/tests/interop.rs:
# Python `websockets` (a venv in ~/.cache/wsproto-interop-venv) and Node's `ws`
# (interop/node_modules), pinned. Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${INTEROP_VENV:-$HOME/.cache/wsproto-interop-venv}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import websockets' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check websockets==17.4
fi
if [ ! -d node_modules/ws ]; then
  npm install --silent --no-audit --no-fund
fi
echo "interop peers: python websockets $("$VENV/bin/python" -c 'import websockets; print(websockets.__version__)'), node ws $(node -p 'require("./node_modules/ws/package.json").version')"
